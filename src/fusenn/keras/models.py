"""Keras's ``Sequential`` model and ``load_model`` (``keras.models``), trained by fusenn.

A Keras script runs on fusenn with its import changed::

    from fusenn.keras.models import Sequential      # was: from tensorflow.keras.models ...
    from fusenn.keras.layers import Dense

    model = Sequential()
    model.add(Dense(2, input_dim=2, activation="relu"))
    model.add(Dense(1, activation="sigmoid"))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(X, y, epochs=1000, verbose=0)
    loss, acc = model.evaluate(X, y)
    probs = model.predict(X)

Underneath, the layers become a :class:`fusenn.Sequential` (``model.network``) trained by a
:class:`fusenn.Trainer`: whole epochs in compiled code when the model is a stack of Dense
layers with a compiled loss and optimiser and no regulariser, weights or decay, the per-batch
path otherwise. ``compile`` may be called again at any time and takes effect at the next
``fit``/``evaluate``; the weights stay.

Training accuracy (``"accuracy"`` and the binary, categorical and sparse categorical
accuracies, where the loss's own rule judges the same predictions) is counted as Keras counts
it, over the epoch's batches before each update, inside the compiled epoch at no extra cost;
when nothing else needs Python between epochs (no callbacks, ``verbose=0``, no validation), a
small data set trains many epochs per compiled call.

What differs from Keras: other metrics on the training data (mae, mse, AUC, precision,
recall) are measured once per epoch with the epoch's final weights (Keras averages them over
the epoch's batches); a NaN loss raises
:class:`fusenn.errors.DivergenceError` unless a ``TerminateOnNaN`` callback stops training;
``save`` writes fusenn's own ``.keras`` file (a zip of a JSON description and a fusenn
``.npz`` model, no pickle), without the optimiser's state.
"""
from __future__ import annotations

import io as _io
import json
import math
import os
import tempfile
import zipfile
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import io as _fio
from ..callbacks import Callback as _CoreCallback
from .. import losses as _core_losses
from .._typing import Logs
from ..errors import ArgumentError, ArgumentTypeError, DivergenceError, FormatError, ShapeError
from ..model import Sequential as _Network
from ..trainer import Trainer
from . import callbacks as _callbacks
from . import layers as _layers
from . import losses as _losses
from . import metrics as _metrics
from . import optimizers as _optimizers
from ._common import (Timer, draw_seed, missing_attribute, print_line, progress_line,
                      resolve_verbose, unique_name, unsupported)

#: The members of a ``.keras`` file written by the face.
__all__ = ["Sequential", "load_model"]

CONFIG_MEMBER = "fusenn-keras.json"
NETWORK_MEMBER = "network.npz"
FORMAT = "fusenn-keras-model"
_PREDICT_CHUNK = 4096


def _sorted_logs(train: dict[str, Any], val: dict[str, Any]) -> dict[str, Any]:
    """Keras's order of the logs: the training values by name, then the validation ones."""
    return {**dict(sorted(train.items())), **dict(sorted(val.items()))}


class _Penalty:
    """The sum of the layers' regulariser penalties (added to the loss)."""

    def __init__(self, terms: list[tuple[Any, Any, str]]) -> None:
        self.terms = terms  # (regulariser, fusenn layer, attribute name)

    def value(self) -> float:
        return float(sum(reg(getattr(layer, attr)) for reg, layer, attr in self.terms))


class _EpochBridge(_CoreCallback):
    """Runs the Keras side of each epoch inside the fusenn Trainer: the metrics, the logs in
    Keras's keys and order, the progress line, and the Keras callbacks."""

    def __init__(self, model: Sequential, callbacks: list[_callbacks.Callback],
                 history: _callbacks.History, train: tuple[NDArray[Any], NDArray[Any]],
                 val: Optional[tuple[NDArray[Any], NDArray[Any]]], initial_epoch: int,
                 epochs: int, steps: int, verbose: int, counted: list[_metrics.Metric]
                 ) -> None:
        self.kmodel, self.kcallbacks, self.history = model, callbacks, history
        self.train, self.val = train, val
        self.initial_epoch, self.epochs, self.steps, self.verbose = (initial_epoch, epochs,
                                                                     steps, verbose)
        self.counted = counted  # metrics read from the Trainer's batch counts ("accuracy")
        self.last_logs: dict[str, Any] = {}
        # nothing here looks at the weights between epochs: the Trainer may run many per call
        self.replayable = (not callbacks and not verbose and val is None
                           and len(counted) == len(model._metrics))

    def _all(self) -> list[_callbacks.Callback]:
        return self.kcallbacks + [self.history]

    def on_train_begin(self, logs: Logs = None) -> None:
        for cb in self._all():
            cb.on_train_begin({})

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        self._timer = Timer()
        if self.verbose:
            print_line(f"Epoch {epoch + self.initial_epoch + 1}/{self.epochs}")
        for cb in self._all():
            cb.on_epoch_begin(epoch + self.initial_epoch, {})

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        assert logs is not None  # the Trainer always passes its logs
        train = {"loss": logs["loss"], **{m.name: logs["accuracy"] for m in self.counted},
                 **self.kmodel._metric_values(*self.train, skip=self.counted)}
        val: dict[str, Any] = {}
        if self.val is not None:
            val = {"val_loss": logs["val_loss"],
                   **{"val_" + k: v for k, v in self.kmodel._metric_values(*self.val).items()}}
        ordered = _sorted_logs(train, val)
        logs.clear()
        logs.update(ordered)
        if self.verbose:
            print_line(progress_line(self.steps, self._timer.seconds(), logs, self.verbose))
        for cb in self._all():
            cb.on_epoch_end(epoch + self.initial_epoch, logs)
        self.last_logs = dict(logs)
        if self.kmodel.stop_training:
            self.trainer.stop_training = True

    def on_epochs_end(self, first: int, logs: dict[str, list[Any]]) -> None:
        # replayable: no Keras callbacks, no progress line, every metric from the batch counts
        counted = {m.name: logs["accuracy"] for m in self.counted}
        columns = _sorted_logs({"loss": logs["loss"], **counted}, {})
        start = first + self.initial_epoch
        self.history.epoch.extend(range(start, start + len(logs["loss"])))
        for k, v in columns.items():
            self.history.history.setdefault(k, []).extend(v)
        self.last_logs = {k: v[-1] for k, v in columns.items()}

    def on_train_end(self, logs: Logs = None) -> None:
        for cb in self._all():
            cb.on_train_end(dict(self.last_logs))


class Sequential:
    """Keras's ``Sequential``: a stack of :mod:`fusenn.keras.layers`.

    Parameters
    ----------
    layers : list of layers, optional
        The first (or an ``Input``) gives the input width; else it is taken from the first
        data the model sees.
    trainable : bool, default=True
        Only True.
    name : str, optional
        The model's name (``"sequential"``, ``"sequential_1"``, ... by default).

    Attributes
    ----------
    network : fusenn.Sequential or None
        The fusenn network the layers build (None until built).
    optimizer, loss
        What :meth:`compile` set.
    history : History or None
        The History of the last :meth:`fit`.
    stop_training : bool
        Set by a callback to stop :meth:`fit` after the current epoch.

    Raises
    ------
    UnsupportedFeatureError
        For ``trainable=False`` or a layer outside :mod:`fusenn.keras.layers`.

    Examples
    --------
    >>> from fusenn.keras.layers import Dense, Input
    >>> model = Sequential([Input(shape=(2,)), Dense(3, activation="relu"), Dense(1)])
    >>> model.count_params()
    13
    >>> [w.shape for w in model.get_weights()]
    [(2, 3), (3,), (3, 1), (1,)]
    """

    def __init__(self, layers: Optional[Sequence[_layers.Layer]] = None,
                 trainable: bool = True, name: Optional[str] = None) -> None:
        if trainable is not True:
            raise unsupported("a model with trainable=False")
        self.name = name or unique_name("sequential")
        self._layers: list[_layers.Layer] = []
        self.network: Optional[_Network] = None
        self.optimizer: Any = None  # a fusenn.keras or fusenn.optim optimiser once compiled
        self.loss: Optional[_losses.Loss] = None
        self.compiled = False
        self._metrics: list[_metrics.Metric] = []
        self._trainer: Optional[Trainer] = None
        self.stop_training = False
        self.history: Optional[_callbacks.History] = None
        for layer in layers or ():
            self.add(layer)

    # -- structure ---------------------------------------------------------------------------
    def add(self, layer: _layers.Layer) -> None:
        """Append a layer (the model is rebuilt at its next use; built layers keep their
        weights).

        Parameters
        ----------
        layer : fusenn.keras.layers.Layer
            The layer; an ``Input`` only as the first.

        Raises
        ------
        UnsupportedFeatureError
            For a layer that is not one of :mod:`fusenn.keras.layers`.
        fusenn.errors.ArgumentError
            For an ``Input`` after other layers.
        """
        if not isinstance(layer, _layers.Layer):
            raise unsupported(f"the layer {type(layer).__module__}.{type(layer).__name__}",
                              "use the layers of fusenn.keras.layers")
        if isinstance(layer, _layers.InputLayer) and self._layers:
            raise ArgumentError("an Input layer can only be the first layer of a Sequential")
        self._layers.append(layer)
        self._unbuild()

    def pop(self) -> _layers.Layer:
        """Remove and return the last layer.

        Returns
        -------
        fusenn.keras.layers.Layer
            The layer removed.

        Raises
        ------
        TypeError
            When the model has no layers (as Keras raises it).
        """
        layers = [l for l in self._layers if not isinstance(l, _layers.InputLayer)]
        if not layers:
            raise ArgumentTypeError("There are no layers in the model.")
        self._layers.remove(layers[-1])
        self._unbuild()
        return layers[-1]

    def _unbuild(self) -> None:
        self.network = None
        self._trainer = None

    @property
    def layers(self) -> list[_layers.Layer]:
        """The layers, without the Input (as Keras lists them)."""
        return [l for l in self._layers if not isinstance(l, _layers.InputLayer)]

    def get_layer(self, name: Optional[str] = None,
                  index: Optional[int] = None) -> _layers.Layer:
        """A layer by name or by index in :attr:`layers`.

        Parameters
        ----------
        name : str, optional
            The layer's name.
        index : int, optional
            Its position in :attr:`layers` (wins over ``name``).

        Returns
        -------
        fusenn.keras.layers.Layer
            The layer.

        Raises
        ------
        fusenn.errors.ArgumentError
            For a name no layer has.
        """
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ArgumentError(f"No such layer: {name}. Existing layers are: "
                            f"{[l.name for l in self.layers]}.")

    def _flattens(self) -> bool:
        first = [l for l in self._layers if not isinstance(l, _layers.InputLayer)]
        inp = self._layers[0] if self._layers and isinstance(
            self._layers[0], _layers.InputLayer) else None
        return (first and isinstance(first[0], _layers.Flatten)) or (
            inp is not None and len(inp.shape) > 1)

    def _input(self, x: Optional[ArrayLike], what: str = "x") -> NDArray[Any]:
        """``x`` as the 2-D float32 rows the network takes (flattened for a Flatten)."""
        if x is None or not (isinstance(x, (np.ndarray, list, tuple)) or
                             hasattr(x, "__array__")):
            raise unsupported(f"{what} of type {type(x).__name__} (datasets, generators)",
                              "give NumPy arrays")
        x = np.asarray(x)
        if x.dtype.kind in "biuf" and x.dtype != np.float32:
            x = x.astype(np.float32)  # once, not at every epoch's metrics
        if x.ndim > 2 and self._flattens():
            x = x.reshape(x.shape[0], -1)
        if x.ndim != 2:
            raise ShapeError(f"{what} must be 2-D (samples, features)"
                             f"{' or begin with a Flatten layer' if x.ndim > 2 else ''}, "
                             f"got shape {x.shape}")
        return x

    def build(self, input_shape: Optional[Sequence[Optional[int]]] = None) -> Any:
        """Create the fusenn network for inputs of ``input_shape``.

        Parameters
        ----------
        input_shape : tuple, optional
            ``(None, n)`` or ``(n,)`` (``(None, h, w)`` before a Flatten); the first layer's
            ``input_shape`` or the ``Input`` is used when not given.

        Returns
        -------
        fusenn.Sequential or None
            The network (also :attr:`network`), or None while the input width is unknown.

        Raises
        ------
        fusenn.errors.ShapeError
            For an input shape that disagrees with the built model's.
        """
        if self.network is not None:
            return self.network
        if not self._layers:
            raise ArgumentError("Sequential model has no layers: add some before using it")
        n_in = None
        if input_shape is not None:
            shape: tuple[Any, ...] = tuple(input_shape)
            n_in = int(np.prod([s for s in shape[1:]])) if len(shape) > 1 and \
                shape[0] is None else int(np.prod(shape))
        first = self._layers[0].input_dim
        if n_in is None:
            n_in = first
        elif first is not None and first != n_in:
            raise ShapeError(f"the model expects {first} input features, got {n_in}")
        if n_in is None:
            raise ArgumentError("the input width is unknown: give the first layer input_shape= "
                                "or start with Input(shape=...), or call fit/predict first")
        rng = np.random.default_rng(draw_seed())
        width = n_in
        for layer in self._layers:
            if layer.built and layer.n_in == width:
                assert layer.n_out is not None  # set when the layer was built
                width = layer.n_out
            else:
                width = layer.build(width, np.float32, rng)
        core = [c for layer in self._layers for c in layer.core]
        if not core:
            raise ArgumentError("the model has no layer that computes anything (only Input or "
                                "Flatten)")
        self.network = _Network(core, dtype=np.float32)
        self._trainer = None
        return self.network

    @property
    def built(self) -> bool:
        """Whether the layers have their weights."""
        return self.network is not None

    @property
    def input_shape(self) -> tuple[Optional[int], int]:
        """``(None, n_in)``, Keras's shape of the input (the model is built on access)."""
        return (None, self.build().n_in)

    @property
    def output_shape(self) -> tuple[Optional[int], int]:
        """``(None, units)`` of the last layer (the model is built on access)."""
        return (None, self.build().n_out)

    # -- compile -----------------------------------------------------------------------------
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, loss_weights: Any = None,
                metrics: Optional[Sequence[Any]] = None, weighted_metrics: Any = None,
                run_eagerly: bool = False, steps_per_execution: int = 1,
                jit_compile: Union[str, bool] = "auto", auto_scale_loss: bool = True) -> None:
        """Set the optimiser, loss and metrics; may be called again at any time.

        Parameters
        ----------
        optimizer : str or optimiser, default="rmsprop"
            A name (Keras's defaults) or an object of :mod:`fusenn.keras.optimizers`.
        loss : str, loss function or Loss, optional
            See :mod:`fusenn.keras.losses`; required before :meth:`fit`.
        loss_weights : None
            Only None (one output).
        metrics : list, optional
            Names or objects of :mod:`fusenn.keras.metrics`.
        weighted_metrics : None
            Only None.
        run_eagerly, steps_per_execution, jit_compile, auto_scale_loss : optional
            Accepted for Keras's signature and ignored: fusenn compiles its own kernels.

        Raises
        ------
        UnsupportedFeatureError
            For ``loss_weights``, ``weighted_metrics``, per-output dicts, or an optimiser,
            loss or metric outside the face.

        Examples
        --------
        >>> from fusenn.keras.layers import Dense, Input
        >>> model = Sequential([Input(shape=(4,)), Dense(3, activation="softmax")])
        >>> model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
        ...               metrics=["accuracy"])
        >>> model.metrics_names
        ['loss', 'accuracy']
        """
        if loss_weights is not None:
            raise unsupported("compile(loss_weights=...) (models with several outputs)")
        if weighted_metrics is not None:
            raise unsupported("compile(weighted_metrics=...)")
        if isinstance(metrics, dict) or isinstance(loss, (dict, list, tuple)):
            raise unsupported("per-output losses or metrics (models with several outputs)")
        self.optimizer = _optimizers.get(optimizer)
        self.loss = None if loss is None else _losses.get(loss)
        self._metrics = [_metrics.get(m) for m in (metrics or [])]
        self.compiled = True
        self._trainer = None

    @property
    def metrics_names(self) -> list[str]:
        """``"loss"`` then the compiled metrics' names: the order of :meth:`evaluate`."""
        return ["loss"] + [m.name for m in self._metrics]

    def _check_compiled(self) -> None:
        if not self.compiled:
            raise RuntimeError("You must call `compile()` before using the model (fit, "
                               "evaluate).")
        if self.loss is None:
            raise ArgumentError("No loss to compute: give compile() a loss, e.g. "
                                "loss='sparse_categorical_crossentropy'")

    def _penalties(self) -> list[tuple[Any, Any, str]]:
        return [p for layer in self._layers for p in layer._penalties()]

    def _prepare_training(self, weighted: bool) -> Trainer:
        """The Trainer with this compile's loss and optimiser (made once per compile)."""
        self._check_compiled()
        if type(self).train_step is not Sequential.train_step or \
                type(self).test_step is not Sequential.test_step:
            raise unsupported("a custom train_step/test_step")
        net = self.build()
        terms = self._penalties()
        opt = self.optimizer
        if terms and not isinstance(opt, _optimizers.Optimizer):
            raise unsupported("regularizers with a fusenn.optim optimiser",
                              "use one of fusenn.keras.optimizers")
        if isinstance(opt, _optimizers.Optimizer):
            opt.penalties = terms
        penalty = _Penalty(terms) if terms else None
        assert self.loss is not None  # _check_compiled raised otherwise
        core_loss = self.loss.to_core(weighted, penalty)
        if self._trainer is None:
            self._trainer = Trainer(net, loss=core_loss, optimizer=opt,
                                    random_state=draw_seed(), metrics=[])
        t = self._trainer
        t.loss = core_loss
        slow = core_loss.code is None or getattr(opt, "needs_python_step", False)
        t.fast_path = False if slow else "auto"
        return t

    def _targets(self, loss: Any, y: NDArray[Any], w: Optional[NDArray[Any]], n: int) -> Any:
        """Targets as the fusenn loss takes them (with the weights when weighted)."""
        if isinstance(loss, _losses.WeightedLoss) and loss.weighted:
            assert self.network is not None  # built by fit/evaluate before the targets
            return loss.encode(y, w, n, self.network.n_out, self.network.dtype)
        return y

    def _sample_weights(self, y: Any, sample_weight: Any, class_weight: Any, n: int
                        ) -> Optional[NDArray[Any]]:
        if sample_weight is None and class_weight is None:
            return None
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
        if w.ndim == 2 and w.shape[1] == 1:
            w = w[:, 0]
        if w.shape != (n,):
            raise ShapeError(f"sample_weight must have shape ({n},), got {w.shape}")
        if class_weight is not None:
            if not isinstance(class_weight, dict):
                raise ArgumentTypeError("class_weight must be a dict {class: weight}")
            yy = np.asarray(y)
            labels = np.argmax(yy, axis=1) if yy.ndim == 2 and yy.shape[1] > 1 else \
                yy.reshape(n).astype(np.int64)
            cw = np.array([class_weight.get(int(c), 1.0) for c in range(labels.max() + 1)])
            w = w * cw[labels]
        return w

    # -- outputs and metrics -----------------------------------------------------------------
    def _outputs(self, x: NDArray[Any]) -> NDArray[np.float32]:
        net = self.network
        assert net is not None  # built by the caller
        if x.shape[0] <= _PREDICT_CHUNK:
            return net.forward(x)
        return np.concatenate([net.forward(x[i:i + _PREDICT_CHUNK])
                               for i in range(0, x.shape[0], _PREDICT_CHUNK)])

    def _metric_values(self, x: NDArray[Any], y: Any, skip: Sequence[_metrics.Metric] = ()
                       ) -> dict[str, Any]:
        metrics = [m for m in self._metrics if m not in skip]
        if not metrics:
            return {}
        out = self._outputs(x)
        return {m.name: m(y, out) for m in metrics}

    def _counted_metrics(self, trainer: Trainer, y: Any) -> list[_metrics.Metric]:
        """The metrics whose value on the training data is the Trainer's batch accuracy:
        accuracies that judge each prediction as the loss's compiled count does (argmax for
        the softmax cross-entropy; for a sigmoid output or a squared error, the output against
        0.5), with unweighted targets."""
        core = trainer.loss
        if core.code is None:
            return []
        xent = core.code == _core_losses.CrossEntropy.code
        binary = (core.code == _core_losses.BinaryCrossEntropy.code and trainer._fuses_output()
                  or core.task == "regression")
        counted: list[_metrics.Metric] = []
        for m in self._metrics:
            rule = m
            if isinstance(m, _metrics._Accuracy):  # resolved by the first data, as Keras does
                if m.resolved is None:
                    assert self.network is not None  # built by fit
                    m.resolved = _metrics.resolve_accuracy(np.shape(y),
                                                           (None, self.network.n_out))
                rule = m.resolved
            if (xent and type(rule) in (_metrics.SparseCategoricalAccuracy,
                                        _metrics.CategoricalAccuracy)
                    or binary and type(rule) is _metrics.BinaryAccuracy
                    and rule.threshold == 0.5):
                counted.append(m)
        return counted

    # -- fit ---------------------------------------------------------------------------------
    def fit(self, x: Optional[ArrayLike] = None, y: Optional[ArrayLike] = None,
            batch_size: Optional[int] = None, epochs: int = 1, verbose: Union[str, int] = "auto",
            callbacks: Optional[Sequence[_callbacks.Callback]] = None,
            validation_split: float = 0.0, validation_data: Optional[tuple[Any, ...]] = None,
            shuffle: bool = True, class_weight: Optional[dict[int, float]] = None,
            sample_weight: Optional[ArrayLike] = None, initial_epoch: int = 0,
            steps_per_epoch: Optional[int] = None, validation_steps: Optional[int] = None,
            validation_batch_size: Optional[int] = None,
            validation_freq: int = 1) -> _callbacks.History:
        """Train for ``epochs - initial_epoch`` epochs; return the :class:`History`.

        Parameters
        ----------
        x, y : array_like
            Samples ``(n, features)`` (or ``(n, ...)`` before a Flatten) and targets.
        batch_size : int, default=32
            Samples per gradient step.
        epochs : int, default=1
            The index of the last epoch (training starts at ``initial_epoch``).
        verbose : "auto", 0, 1 or 2, default="auto"
            1 (and "auto"): Keras's progress line per epoch; 2: the line without the bar.
        callbacks : list of :mod:`fusenn.keras.callbacks` callbacks, optional
            Called around every epoch (per-batch hooks are refused).
        validation_split : float, default=0.0
            The last fraction of the samples (before shuffling) held out.
        validation_data : tuple, optional
            ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``; wins over
            ``validation_split``.
        shuffle : bool, default=True
            Shuffle the samples before each epoch.
        class_weight : dict, optional
            Weight per class index, multiplying the samples' losses.
        sample_weight : array_like of shape (n,), optional
            Weight of each sample's loss.
        initial_epoch : int, default=0
            The epoch to start at (to resume training).
        steps_per_epoch, validation_steps, validation_batch_size : None
            Only None (arrays, not datasets).
        validation_freq : int, default=1
            Only 1.

        Returns
        -------
        History
            ``history.history`` holds Keras's keys: ``loss``, the metrics, ``val_*``.

        Raises
        ------
        UnsupportedFeatureError
            For datasets or generators, ``steps_per_epoch``, ``validation_steps``,
            ``validation_freq`` other than 1, or per-batch callbacks.
        fusenn.errors.DivergenceError
            When the loss becomes NaN or infinite without a ``TerminateOnNaN`` callback.

        Examples
        --------
        >>> import numpy as np
        >>> from fusenn.keras.layers import Dense, Input
        >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")
        >>> y = np.array([0, 1, 1, 0])
        >>> model = Sequential([Input(shape=(2,)), Dense(8, activation="tanh"),
        ...                     Dense(2, activation="softmax")])
        >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
        ...               metrics=["accuracy"])
        >>> history = model.fit(X, y, epochs=3, batch_size=4, verbose=0)
        >>> sorted(history.history), len(history.history["loss"])
        (['accuracy', 'loss'], 3)
        """
        for arg, value in (("steps_per_epoch", steps_per_epoch),
                           ("validation_steps", validation_steps),
                           ("validation_batch_size", validation_batch_size)):
            if value is not None:
                raise unsupported(f"fit({arg}=...)")
        if validation_freq != 1:
            raise unsupported("fit(validation_freq=...)")
        verbose = resolve_verbose(verbose)
        batch_size = 32 if batch_size is None else batch_size
        x = self._input(x)
        self.build((None, x.shape[1]))
        if y is None:
            raise ArgumentError("fit needs targets y")
        y = np.asarray(y)
        n = x.shape[0]
        if y.shape[0] != n:
            raise ShapeError(f"x and y have different numbers of samples: {n} and "
                             f"{y.shape[0]}")
        w = self._sample_weights(y, sample_weight, class_weight, n)
        val_w = None
        if validation_data is None and validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ArgumentError(f"validation_split must be in [0, 1), got {validation_split}")
            split = int(math.floor(n * (1.0 - validation_split)))
            if split < 1 or split >= n:
                raise ArgumentError(f"validation_split={validation_split} leaves no training or "
                                    f"no validation samples out of {n}")
            validation_data = (x[split:], y[split:]) + (() if w is None else (w[split:],))
            x, y, w = x[:split], y[:split], None if w is None else w[:split]
            n = split
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or \
                    len(validation_data) not in (2, 3):
                raise unsupported("validation_data that is not (x_val, y_val[, weights])")
            xv = self._input(validation_data[0], "validation x")
            yv = np.asarray(validation_data[1])
            val_w = None if len(validation_data) == 2 or validation_data[2] is None else \
                self._sample_weights(yv, validation_data[2], None, xv.shape[0])
            val = (xv, yv)
        weighted = w is not None or val_w is not None
        kcallbacks = list(callbacks or [])
        for cb in kcallbacks:
            _callbacks.check_callback(cb)
        trainer = self._prepare_training(weighted)
        trainer.batch_size = int(batch_size)
        trainer.shuffle = bool(shuffle)
        loss = trainer.loss
        y_fit = self._targets(loss, y, w, n)
        val_fit = None if val is None else \
            (val[0], self._targets(loss, val[1], val_w, val[0].shape[0]))

        history = _callbacks.History()
        steps = -(-n // min(int(batch_size), n))
        params = {"verbose": verbose, "epochs": epochs, "steps": steps}
        for cb in kcallbacks + [history]:
            cb.set_model(self)
            cb.set_params(params)
        self.history = history
        history.on_train_begin()
        self.stop_training = False
        n_epochs = int(epochs) - int(initial_epoch)
        if n_epochs <= 0:
            return history
        counted = self._counted_metrics(trainer, y)
        trainer.metrics = ["accuracy"] if counted else []
        bridge = _EpochBridge(self, kcallbacks, history, (x, y), val, int(initial_epoch),
                              int(epochs), steps, verbose, counted)
        trainer.callbacks = [bridge]
        try:
            trainer.fit(x, y_fit, epochs=n_epochs, validation_data=val_fit)
        except DivergenceError as exc:
            if not any(isinstance(cb, _callbacks.TerminateOnNaN) for cb in kcallbacks):
                raise
            print_line(f"{exc}: Invalid loss, terminating training")
            bridge.on_train_end()
        finally:
            trainer.callbacks = []
        return history

    # -- evaluate and predict ---------------------------------------------------------------
    def evaluate(self, x: Optional[ArrayLike] = None, y: Optional[ArrayLike] = None,
                 batch_size: Optional[int] = None, verbose: Union[str, int] = "auto",
                 sample_weight: Optional[ArrayLike] = None, steps: Optional[int] = None,
                 callbacks: Any = None,
                 return_dict: bool = False) -> Union[float, list[float], dict[str, float]]:
        """The loss (with the regularisers' penalties) and the metrics on ``(x, y)``.

        Parameters
        ----------
        x, y : array_like
            Samples and targets, as :meth:`fit` takes them.
        batch_size : int, optional
            Only counts the steps of the progress line (the whole set is evaluated at once).
        verbose : "auto", 0, 1 or 2, default="auto"
            Print Keras's progress line.
        sample_weight : array_like of shape (n,), optional
            Weight of each sample's loss.
        steps, callbacks : None
            Only None.
        return_dict : bool, default=False
            Return ``{name: value}``.

        Returns
        -------
        float, list of float or dict
            The loss alone when compiled without metrics, else ``[loss, *metrics]`` in
            compile's order; with ``return_dict``, ``{name: value}``.

        Raises
        ------
        UnsupportedFeatureError
            For ``steps`` or ``callbacks``.
        """
        if steps is not None or callbacks:
            raise unsupported("evaluate(steps=..., callbacks=...)")
        verbose = resolve_verbose(verbose)
        timer = Timer()
        x = self._input(x)
        self.build((None, x.shape[1]))
        y = np.asarray(y)
        w = self._sample_weights(y, sample_weight, None, x.shape[0])
        trainer = self._prepare_training(w is not None)
        loss = trainer.evaluate(x, self._targets(trainer.loss, y, w, x.shape[0]))["loss"]
        values: dict[str, float] = {"loss": loss, **self._metric_values(x, y)}
        if verbose:
            steps = -(-x.shape[0] // (32 if batch_size is None else batch_size))
            print_line(progress_line(steps, timer.seconds(), _sorted_logs(values, {}),
                                     verbose))
        if return_dict:
            return values
        if not self._metrics:
            return values["loss"]
        return [values[k] for k in self.metrics_names]

    def predict(self, x: ArrayLike, batch_size: Optional[int] = None,
                verbose: Union[str, int] = "auto", steps: Optional[int] = None,
                callbacks: Any = None) -> NDArray[np.float32]:
        """The network's outputs for ``x``.

        Parameters
        ----------
        x : array_like of shape (n, features)
            The samples.
        batch_size : int, optional
            Only counts the steps of the progress line.
        verbose : "auto", 0, 1 or 2, default="auto"
            Print Keras's progress line.
        steps, callbacks : None
            Only None.

        Returns
        -------
        ndarray of float32, shape (n, units)
            The last layer's outputs (probabilities for a softmax or sigmoid output), never
            labels.

        Raises
        ------
        UnsupportedFeatureError
            For ``steps`` or ``callbacks``.
        """
        if steps is not None or callbacks:
            raise unsupported("predict(steps=..., callbacks=...)")
        verbose = resolve_verbose(verbose)
        timer = Timer()
        x = self._input(x)
        self.build((None, x.shape[1]))
        out = self._outputs(x)
        if verbose:
            steps = -(-x.shape[0] // (32 if batch_size is None else batch_size))
            print_line(progress_line(steps, timer.seconds(), {}, verbose))
        return out

    def predict_on_batch(self, x: ArrayLike) -> NDArray[np.float32]:
        """:meth:`predict` without the progress line.

        Parameters
        ----------
        x : array_like of shape (n, features)
            The samples.

        Returns
        -------
        ndarray of float32, shape (n, units)
            The outputs.
        """
        return self.predict(x, verbose=0)

    def __call__(self, x: ArrayLike, training: bool = False) -> NDArray[np.float32]:
        x = self._input(x)
        out: NDArray[np.float32] = self.build((None, x.shape[1])).forward(
            x, training=bool(training))
        return out

    def train_step(self, data: Any) -> Any:
        """Keras's hook for a custom training step, which fusenn does not run.

        Parameters
        ----------
        data : object
            Keras's batch.

        Raises
        ------
        UnsupportedFeatureError
            Always: overriding it is refused.
        """
        raise unsupported("train_step (a custom training step)")

    def test_step(self, data: Any) -> Any:
        """Keras's hook for a custom evaluation step, which fusenn does not run.

        Parameters
        ----------
        data : object
            Keras's batch.

        Raises
        ------
        UnsupportedFeatureError
            Always: overriding it is refused.
        """
        raise unsupported("test_step (a custom evaluation step)")

    # -- weights -----------------------------------------------------------------------------
    def get_weights(self) -> list[NDArray[Any]]:
        """Every layer's weights in Keras's order (kernel ``(n_in, units)``, then bias).

        Returns
        -------
        list of ndarray
            Copies of the weights.
        """
        self.build()
        return [w for layer in self._layers for w in layer.get_weights()]

    def set_weights(self, weights: Sequence[ArrayLike]) -> None:
        """Set the weights from a list in :meth:`get_weights` order.

        Parameters
        ----------
        weights : list of array_like
            One array per weight, of the shapes :meth:`get_weights` gives.

        Raises
        ------
        ShapeError
            For a wrong number of arrays or a wrong shape.
        """
        self.build()
        weights = list(weights)
        total = sum(len(layer._slots()) for layer in self._layers)
        if len(weights) != total:
            raise ShapeError(f"You called `set_weights(weights)` on the model with a weight "
                             f"list of length {len(weights)}, but the model expects {total} "
                             f"weights.")
        i = 0
        for layer in self._layers:
            k = len(layer._slots())
            layer.set_weights(weights[i:i + k])
            i += k

    @property
    def weights(self) -> list[NDArray[Any]]:
        """The weights, as :meth:`get_weights` gives them."""
        self.build()
        return [w for layer in self._layers for w in layer.weights]

    def count_params(self) -> int:
        """The number of weights (trained and not, as Keras counts them).

        Returns
        -------
        int
            0 while the model is not built.
        """
        return int(sum(layer.count_params() for layer in self._layers if layer.built)) \
            if self.build() is not None else 0

    # -- summary -----------------------------------------------------------------------------
    def summary(self, line_length: Optional[int] = None, positions: Any = None,
                print_fn: Optional[Callable[[str], Any]] = None, expand_nested: bool = False,
                show_trainable: bool = False, layer_range: Any = None) -> None:
        """Print Keras's table of the layers (name and type, output shape, parameters) and
        the parameter counts.

        Parameters
        ----------
        line_length : int, optional
            The table's width.
        positions : list, optional
            Accepted for Keras's signature and ignored.
        print_fn : callable, optional
            Receives the text instead of ``print``.
        expand_nested, show_trainable, layer_range : optional
            Accepted for Keras's signature and ignored.
        """
        self.build()
        rows = [(f"{l.name} ({type(l).__name__})", f"(None, {l.n_out})", f"{l.count_params():,}")
                for l in self.layers]
        widths = [max(33, max(len(r[0]) for r in rows) + 2), 24, 15]
        heads = ("Layer (type)", "Output Shape", "Param #")

        def line(left: str, mid: str, right: str, fill: str) -> str:
            return left + mid.join(fill * w for w in widths) + right

        def row(cells: Sequence[str], bar: str) -> str:
            parts = [f" {c:<{w - 2}} " if i < 2 else f" {c:>{w - 2}} "
                     for i, (c, w) in enumerate(zip(cells, widths))]
            return bar + bar.join(parts) + bar

        text = [f'Model: "{self.name}"', line("\u250f", "\u2533", "\u2513", "\u2501"),
                row(heads, "\u2503"), line("\u2521", "\u2547", "\u2529", "\u2501")]
        for i, r in enumerate(rows):
            text.append(row(r, "\u2502"))
            text.append(line("\u251c", "\u253c", "\u2524", "\u2500") if i < len(rows) - 1
                        else line("\u2514", "\u2534", "\u2518", "\u2500"))
        total = self.count_params()
        trainable = sum(l._n_trainable() for l in self.layers)

        def size(count: int) -> str:
            b, unit = 4.0 * count, "B"
            for u in ("KB", "MB", "GB"):
                if b < 1024:
                    break
                b, unit = b / 1024, u
            return f"{count:,} ({b:.2f} {unit})"

        text += [f" Total params: {size(total)}", f" Trainable params: {size(trainable)}",
                 f" Non-trainable params: {size(total - trainable)}"]
        out = "\n".join(text)
        (print_fn or print)(out)

    # -- saving ------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Keras's config of the model: its name and each layer's class and config.

        Returns
        -------
        dict
            ``{"name": ..., "layers": [...]}``.
        """
        return {"name": self.name,
                "layers": [{"class_name": type(l).__name__, "config": l.get_config(),
                            "n_core": len(l.core)} for l in self._layers]}

    def _compile_config(self) -> Optional[dict[str, Any]]:
        if not self.compiled:
            return None
        opt = self.optimizer
        return {"optimizer": opt.keras_config() if hasattr(opt, "keras_config") else
                {"class_name": type(opt).__name__, "fusenn": True, "config": opt.get_config()},
                "loss": None if self.loss is None else self.loss.keras_config(),
                "metrics": [m.keras_config() for m in self._metrics]}

    def save(self, filepath: Union[str, "os.PathLike[str]"], overwrite: bool = True,
             zipped: Optional[bool] = None) -> None:
        """Write the model to a ``.keras`` file: fusenn's format, read back by :func:`load_model`.

        The file is a zip of a JSON description (layers, compile settings) and a fusenn
        ``.npz`` model, without pickle and without the optimiser's state.

        Parameters
        ----------
        filepath : str or path-like
            Ends in ``.keras``.
        overwrite : bool, default=True
            Replace an existing file.
        zipped : bool, optional
            Accepted for Keras's signature.

        Raises
        ------
        ValueError
            For a path that does not end in ``.keras``.
        UnsupportedFeatureError
            For the legacy ``.h5`` format.
        FileExistsError
            For an existing file with ``overwrite=False``.
        """
        path = os.fspath(filepath)
        if path.endswith((".h5", ".hdf5")):
            raise unsupported("saving in the legacy HDF5 (.h5) format", "save to a .keras file")
        if not path.endswith(".keras"):
            raise ArgumentError(f"Invalid filepath extension for saving: give a `.keras` "
                                f"extension. Received: filepath={path}")
        if not overwrite and os.path.exists(path):
            raise FileExistsError(f"{path} exists and overwrite=False")
        net = self.build()
        desc = {"format": FORMAT, "format_version": "1.0", "model": self.get_config(),
                "compile": self._compile_config()}
        directory = os.path.dirname(os.path.abspath(path))
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            npz = os.path.join(tmp, NETWORK_MEMBER)
            _fio.save(net, npz)
            staged = os.path.join(tmp, "model.keras")
            with zipfile.ZipFile(staged, "w", zipfile.ZIP_STORED) as zf:
                zf.writestr(CONFIG_MEMBER, json.dumps(desc, indent=1))
                zf.write(npz, NETWORK_MEMBER)
            os.replace(staged, path)

    def save_weights(self, filepath: Union[str, "os.PathLike[str]"],
                     overwrite: bool = True) -> None:
        """Write the weights (Keras's order) to ``filepath`` as a NumPy ``.npz`` archive,
        whatever its name (Keras's ``.weights.h5`` included).

        Parameters
        ----------
        filepath : str or path-like
            The file.
        overwrite : bool, default=True
            Replace an existing file.

        Raises
        ------
        FileExistsError
            For an existing file with ``overwrite=False``.
        """
        path = os.fspath(filepath)
        if not overwrite and os.path.exists(path):
            raise FileExistsError(f"{path} exists and overwrite=False")
        buf = _io.BytesIO()
        arrays: dict[str, Any] = {f"w{i:04d}": w for i, w in enumerate(self.get_weights())}
        np.savez(buf, **arrays)
        with open(path, "wb") as f:
            f.write(buf.getvalue())

    def load_weights(self, filepath: Union[str, "os.PathLike[str]"]) -> None:
        """Read weights written by :meth:`save_weights`.

        Parameters
        ----------
        filepath : str or path-like
            The file.

        Raises
        ------
        FormatError
            For a file that is not such an archive (an HDF5 file written by Keras included).
        """
        path = os.fspath(filepath)
        try:
            with np.load(path, allow_pickle=False) as data:
                weights = [data[k] for k in sorted(data.files)]
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise FormatError(f"{path}: not a weights file written by fusenn's Keras face "
                              f"({exc}); weights saved by Keras itself (HDF5) cannot be read")
        self.set_weights(weights)


def load_model(filepath: Union[str, "os.PathLike[str]"], custom_objects: Any = None,
               compile: bool = True, safe_mode: bool = True) -> Sequential:
    """Read a model written by :meth:`Sequential.save`, compiled again when it was compiled.

    Parameters
    ----------
    filepath : str or path-like
        The ``.keras`` file.
    custom_objects : dict, optional
        Accepted for Keras's signature and unused: the face has no custom layers or losses.
    compile : bool, default=True
        Compile with the saved optimiser settings, loss and metrics (the optimiser's state
        starts afresh).
    safe_mode : bool, default=True
        Accepted for Keras's signature: nothing in the file is ever executed.

    Returns
    -------
    Sequential
        The model, with the saved weights.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    FormatError
        For a file that is not a ``.keras`` file of fusenn's Keras face; a ``.keras`` file
        written by Keras itself is named as such.

    Examples
    --------
    >>> import os, tempfile
    >>> from fusenn.keras.layers import Dense
    >>> model = Sequential([Dense(2, input_dim=3)])
    >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> model.save(path)
    >>> [w.shape for w in load_model(path).get_weights()]
    [(3, 2), (2,)]
    """
    path = os.fspath(filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if CONFIG_MEMBER not in names or NETWORK_MEMBER not in names:
                if "config.json" in names or "model.weights.h5" in names:
                    raise FormatError(
                        f"{path} was written by Keras itself; fusenn's Keras face reads only "
                        f".keras files it wrote (fusenn's own format). Rebuild the model with "
                        f"fusenn.keras and copy the weights with set_weights")
                raise FormatError(f"{path} is not a .keras file written by fusenn's Keras "
                                  f"face (no {CONFIG_MEMBER})")
            desc = json.loads(zf.read(CONFIG_MEMBER).decode("utf-8"))
            raw = zf.read(NETWORK_MEMBER)
    except zipfile.BadZipFile:
        raise FormatError(f"{path} is not a .keras file (not a zip archive)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path}: malformed description ({exc})") from None
    if not isinstance(desc, dict) or desc.get("format") != FORMAT:
        raise FormatError(f"{path}: not a fusenn Keras-face model description")
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, NETWORK_MEMBER)
        with open(npz, "wb") as f:
            f.write(raw)
        net = _fio.load(npz)
    try:
        spec = desc["model"]
        layers, i = [], 0
        for entry in spec["layers"]:
            cls = _layers.LAYERS[entry["class_name"]]
            layer: _layers.Layer = cls(**entry["config"])
            k = int(entry["n_core"])
            layer.core = net.layers[i:i + k]
            i += k
            layers.append(layer)
        model = Sequential(layers, name=spec["name"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{path}: malformed model description ({exc!r})") from None
    if i != len(net.layers):
        raise FormatError(f"{path}: the description has {i} fusenn layers, the network "
                          f"{len(net.layers)}")
    width = net.n_in
    for layer in model._layers:
        layer.n_in = width
        width = layer.n_out = layer._width(width)
    model.network = net
    cfg = desc.get("compile")
    if compile and cfg is not None:
        opt = cfg["optimizer"]
        if opt.get("fusenn"):
            from .. import optim as _optim

            optimizer = _optim.get(opt["class_name"].lower(), **opt["config"])
        else:
            optimizer = _optimizers.get(opt)
        model.compile(optimizer=optimizer,
                      loss=None if cfg["loss"] is None else _losses.get(cfg["loss"]),
                      metrics=[_metrics.get(m) for m in cfg["metrics"]])
    return model


__all__ = ["Sequential", "load_model"]
__getattr__ = missing_attribute(__name__, ("Sequential", "load_model"))
