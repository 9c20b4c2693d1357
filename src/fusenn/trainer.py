"""The Trainer: mini-batch gradient descent over a model, with callbacks and a History.

One epoch visits the training samples in a fresh random order (``shuffle=True``),
``batch_size`` at a time; ``batch_size=1`` is stochastic gradient descent and
``batch_size=None`` the full batch. For every batch: forward, fused loss and its gradient,
backward, one optimiser step.

Two paths give the same weights:

* the **fast path**, taken whenever the model is a stack of Dense layers, the loss and
  optimiser have compiled forms and a compiled backend is selected: the whole epoch runs in
  one call to the backend's ``train_epoch`` (no Python per batch);
* the **per-batch path** through the layers' ``forward``/``backward``, for everything else
  (Dropout, BatchNorm, PReLU, ..., or the NumPy backend).

``trainer.last_path`` says which one ran. Workspaces are allocated once per fit. The same
``random_state`` and data give bit-identical weights.
"""
from __future__ import annotations

import contextlib
import importlib
import math
import os
import signal
import threading
from types import FrameType
from typing import (Any, Dict, Iterator, Iterable, List, Literal, Optional, Sequence, Tuple,
                    Union, cast)

import numpy as np

try:  # the C function that signal.signal wraps: the wrapper's conversion of the old handler
    # to an enum member (an exception caught when the handler is a function) cost a fit
    # 10 us per install and restore, a tenth of the Python in a one-epoch XOR fit
    _set_signal_handler = importlib.import_module("_signal").signal
except (ImportError, AttributeError):  # pragma: no cover - an interpreter without _signal
    _set_signal_handler = signal.signal

from . import _archive, backends
from . import losses as _losses
from . import optim as _optim
from ._threads import thread_limits
from ._typing import Array, ArrayLike, Seed
from ._validation import (all_finite, check_in_range, check_positive, check_random_state,
                          generator_from_state)
from .activations import LINEAR
from .backends._auto import epoch_work
from .backends._contract import LOSS_MSE, LOSS_SIGMOID_BCE, LOSS_SOFTMAX_XENT
from .backends._numpy import _count_correct
from .callbacks import Callback, History, ProgressBar
from .errors import ArgumentError, ArgumentTypeError, DivergenceError
from .layers import Activation, Dense, Layer
from .model import PREDICT_BATCH, Sequential


class Trainer:
    """Fits a :class:`fusenn.Sequential`.

    ``loss``: a name from :func:`fusenn.losses.names` or a Loss. ``optimizer``: an Optimizer or
    a name (default ``SGD(lr=0.1)``). ``batch_size``: positive int, or None for the full batch.
    ``metrics``: ``"auto"`` (accuracy for classifiers), or a list of ``"accuracy"``; ``[]`` for
    none. ``fast_path``: ``"auto"`` or False to force the per-batch path.

    **Targets** ``y`` that :meth:`fit` and :meth:`evaluate` accept, by loss:

    * ``"cross_entropy"`` (multiclass; the default): integer class labels ``0..k-1`` of shape
      (n,) or (n, 1), where k is the model's output width; or one-hot rows of shape (n, k)
      (turned into labels); or rows of target probabilities (n, k) that sum to 1 (soft
      targets: trained on the per-batch path). Float labels must be whole numbers.
    * ``"binary_cross_entropy"``: targets in [0, 1] of shape (n,) for one output, or
      (n, n_outputs) (one independent binary target per output).
    * ``"mse"`` and ``"half_mse"`` (regression): real targets of shape (n,) for one output,
      or (n, n_outputs).

    A model whose last layer already applies the loss's activation (a softmax output with
    cross-entropy, a sigmoid with binary cross-entropy) is trained on its logits: both ways
    of writing the model train identically.

    Parameters
    ----------
    model : Sequential
        The model to train (in place).
    loss : str or Loss, default "cross_entropy"
        The loss, by name (:func:`fusenn.losses.names`, aliases accepted) or object.
    optimizer : str, Optimizer or None, default None
        The optimiser (None: ``SGD(lr=0.1)``).
    batch_size : int or None, default 32
        Samples per mini-batch (None: the full batch; 1: stochastic gradient descent).
    shuffle : bool, default True
        Visit the samples in a fresh random order every epoch.
    random_state : None, int or numpy.random.Generator
        Random source of the shuffling and of stochastic layers; the same seed and data give
        bit-identical weights.
    callbacks : iterable of Callback, default ()
        Called at the start and end of training and of every epoch.
    metrics : "auto" or list of str, default "auto"
        Metrics logged per epoch: ``"auto"`` is ``["accuracy"]`` for a classification loss
        and ``[]`` for regression.
    verbose : int, default 0
        1: a progress bar; 2: one line per epoch.
    fast_path : "auto" or False, default "auto"
        False forces the per-batch path (the compiled whole-epoch path otherwise runs when
        the model is a stack of Dense layers and a compiled backend is selected).

    Raises
    ------
    TypeError
        ``model`` is not a Sequential, or a callback is not a Callback.
    ValueError
        An unknown loss, optimiser or metric, a batch size that is not a positive integer,
        or a bad ``fast_path``.

    Examples
    --------
    >>> import fusenn as fn
    >>> X, y = fn.datasets.xor()                    # 4 samples, integer labels 0 and 1
    >>> model = fn.Sequential([fn.layers.Dense(2, 8, activation="tanh"),
    ...                        fn.layers.Dense(8, 2)], random_state=0)
    >>> trainer = fn.Trainer(model, optimizer=fn.optim.SGD(lr=0.5, momentum=0.9),
    ...                      batch_size=4, random_state=0)
    >>> history = trainer.fit(X, y, epochs=300)
    >>> model.predict(X).tolist(), history["accuracy"][-1]
    ([0, 1, 1, 0], 1.0)

    One-hot rows train the same model as labels do, and regression takes real targets:

    >>> import numpy as np
    >>> onehot = np.eye(2)[y]
    >>> sorted(fn.Trainer(model).evaluate(X, onehot))
    ['accuracy', 'loss']
    >>> reg = fn.Sequential([fn.layers.Dense(2, 1)], random_state=0)
    >>> fn.Trainer(reg, loss="mse", batch_size=None).fit(X, X.sum(axis=1), epochs=2).epoch
    [0, 1]
    """

    def __init__(self, model: Sequential, loss: Any = "cross_entropy", optimizer: Any = None,
                 batch_size: Optional[int] = 32, shuffle: bool = True,
                 random_state: Seed = None, callbacks: Iterable[Callback] = (),
                 metrics: Union[str, Sequence[str]] = "auto", verbose: int = 0,
                 fast_path: Union[str, bool] = "auto") -> None:
        if not isinstance(model, Sequential):
            raise ArgumentTypeError(f"model must be a fusenn.Sequential, got {type(model).__name__}")
        self.model = model
        self.loss = _losses.get(loss)
        self.optimizer = _optim.SGD(lr=0.1) if optimizer is None else _optim.get(optimizer)
        self.batch_size = check_positive(batch_size, "batch_size", integer=True,
                                         allow_none=True)
        self.shuffle = bool(shuffle)
        self.random_state = random_state
        self.rng = check_random_state(random_state)
        callbacks = list(callbacks or ())
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise ArgumentTypeError(f"callbacks must be fusenn Callbacks, got {type(cb).__name__}")
        self.callbacks = callbacks
        if metrics == "auto":
            metrics = ["accuracy"] if self.loss.task != "regression" else []
        for m in metrics:
            if m != "accuracy":
                raise ArgumentError(f"unknown metric {m!r}; valid: accuracy")
            if self.loss.task == "regression":
                raise ArgumentError(f"accuracy is not defined for a regression loss "
                                    f"({self.loss.name}); use metrics=[]")
        self.metrics = list(metrics)
        self.verbose = int(verbose)
        if fast_path not in ("auto", False):
            raise ArgumentError(f"fast_path must be 'auto' or False, got {fast_path!r}")
        self.fast_path = fast_path
        self.last_path: Optional[str] = None
        self.stop_training = False
        self.epochs = 0
        self._rng_handed_out = False

    # -- data -------------------------------------------------------------------------------
    def _prepare(self, X: ArrayLike, y: ArrayLike) -> Tuple[Array, Array]:
        X = self.model._check_input(X)
        y = self.loss.prepare_targets(y, X.shape[0], self.model.n_out, self.model.dtype)
        return X, y

    # -- output fusion ----------------------------------------------------------------------
    def _fuses_output(self) -> bool:
        """Whether the model's last activation is the loss's own (then the loss takes its
        input, the logits)."""
        last = self.model.layers[-1]
        return (self.loss.fused_activation is not None
                and isinstance(last, (Dense, Activation))
                and last.activation.name == self.loss.fused_activation)

    @contextlib.contextmanager
    def _training_mode(self, reuse: bool) -> Iterator[None]:
        """Output logits from the last layer when fused; reuse workspaces while training."""
        model = self.model
        fuse = self._fuses_output()
        last = model.layers[-1]
        was_training = model.training
        with model._lock:  # a predict from another thread waits for the model as it was
            yield from self._mode_inside(model, fuse, last, was_training, reuse)

    @staticmethod
    def _mode_inside(model: Sequential, fuse: bool, last: Layer, was_training: bool,
                     reuse: bool) -> Iterator[None]:
        # where fuse is True, _fuses_output found a Dense or an Activation last
        fused = cast(Union[Dense, Activation], last)
        try:
            if fuse:
                fused.output_logits = True
            for layer in model.layers:
                layer._reuse = reuse
            yield
        finally:
            if fuse:
                fused.output_logits = False
            for layer in model.layers:
                layer._reuse = False
            model.training = was_training

    def _logits(self, X: Array) -> Array:
        """Model outputs before the fused activation, in evaluation mode."""
        with self._training_mode(reuse=False):
            parts = [self.model._forward(X[i:i + PREDICT_BATCH], False)
                     for i in range(0, X.shape[0], PREDICT_BATCH)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _scores(self, X: Array, y: Array) -> Dict[str, float]:
        out = self._logits(X)
        # y is prepared
        logs: Dict[str, float] = {"loss": self.loss.kernel(backends.get(), out, y, None)}
        if "accuracy" in self.metrics:
            right, judged = self._correct(out, y)
            logs["accuracy"] = right / judged
        return logs

    def _judgement(self) -> int:
        """The loss code whose rule of :func:`fusenn.backends._numpy._count_correct` (the
        compiled epochs' counting rule) judges this loss's outputs: the softmax
        cross-entropy's argmax, a logit's sign (the sigmoid cross-entropy, or any loss whose
        activation is fused and so sees logits), or an output against 0.5."""
        if self.loss.code == _losses.CrossEntropy.code:
            return LOSS_SOFTMAX_XENT
        if self.loss.code == _losses.BinaryCrossEntropy.code or self._fuses_output():
            return LOSS_SIGMOID_BCE
        return LOSS_MSE

    def _correct(self, out: Array, y: Array,
                 judgement: Optional[int] = None) -> Tuple[float, int]:
        """``(correct predictions, predictions judged)`` of outputs ``out`` (logits when the
        output is fused) against prepared targets ``y`` (soft targets judged by their
        argmax): one judgement per row for the softmax cross-entropy, one per output
        otherwise. ``judgement``: :meth:`_judgement`, when the caller has it already."""
        rule = self._judgement() if judgement is None else judgement
        if rule == LOSS_SOFTMAX_XENT:
            labels = y if y.ndim == 1 else np.argmax(y, axis=1)
            return _count_correct(rule, out, labels, y), out.shape[0]
        return _count_correct(rule, out, y, y), out.size

    def evaluate(self, X: ArrayLike, y: ArrayLike) -> Dict[str, float]:
        """``{"loss": ..., "accuracy": ...}`` on ``(X, y)`` in evaluation mode.

        Parameters
        ----------
        X : array_like of shape (n, n_in)
            The inputs.
        y : array_like
            The targets, in any form the loss accepts (see the class's docstring).

        Returns
        -------
        dict
            The loss, and the metrics (``"accuracy"`` for a classifier by default).

        Raises
        ------
        ShapeError, ValueError
            ``X`` or ``y`` does not fit the model and the loss.
        """
        X, y = self._prepare(X, y)
        return self._scores(X, y)

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """Everything but the model that the next ``fit`` depends on, as plain values.

        ``{"settings": {...}, "optimizer": optimizer.state_dict(), "rng": ..., "rng_handed_out":
        ..., "layer_rngs": {layer index: ...}}``: the constructor's settings, the optimiser
        (settings, step count, state array) and the bit-generator states of the trainer and of
        every stochastic layer. :meth:`from_state_dict` on the same model gives a Trainer whose
        ``fit`` continues bit for bit. The loss and optimiser must be fusenn's own (they are
        kept by name); :func:`fusenn.io.save_checkpoint` writes this with the model.

        Returns
        -------
        dict

        Raises
        ------
        ValueError
            A custom loss or optimiser (not one of fusenn's own).
        """
        if self.loss.name not in _losses.names() or type(self.loss) is not type(
                _losses.get(self.loss.name)):
            raise ValueError(f"a custom loss ({type(self.loss).__name__}) has no state by "
                             f"name; only fusenn's losses can be saved")
        opt = self.optimizer
        if opt.name not in _optim.names() or type(opt) is not type(_optim.get(opt.name)):
            raise ValueError(f"a custom optimiser ({type(opt).__name__}) has no state by "
                             f"name; only fusenn's optimisers can be saved")
        random_state: Union[Seed, str] = self.random_state
        if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
            random_state = int(random_state)
        elif random_state is not None:
            random_state = "generator"  # a Generator: its state is "rng"
        return {
            "settings": {"loss": self.loss.name, "batch_size": self.batch_size,
                         "shuffle": self.shuffle, "random_state": random_state,
                         "metrics": list(self.metrics), "verbose": self.verbose,
                         "fast_path": self.fast_path},
            "optimizer": opt.state_dict(),
            "rng": self.rng.bit_generator.state,
            "rng_handed_out": bool(self._rng_handed_out),
            "layer_rngs": {i: layer.rng.bit_generator.state
                           for i, layer in enumerate(self.model.layers)
                           if layer.stochastic and getattr(layer, "rng", None) is not None},
        }

    @classmethod
    def from_state_dict(cls, model: Sequential, state: Dict[str, Any],
                        callbacks: Iterable[Callback] = ()) -> Trainer:
        """The Trainer that :meth:`state_dict` describes, training ``model``.

        Raises ValueError (or TypeError) for a state that does not fit: an unknown loss or
        optimiser, a bit-generator state NumPy refuses, a layer index that is not a
        stochastic layer of ``model``.

        Parameters
        ----------
        model : Sequential
            The model to train (the one whose trainer's state this is, or a copy).
        state : dict
            What :meth:`state_dict` returned.
        callbacks : iterable of Callback, default ()
            The new trainer's callbacks (they are not part of the state).

        Returns
        -------
        Trainer

        Raises
        ------
        ValueError, TypeError
            A state that does not fit (see above).

        Examples
        --------
        >>> import fusenn as fn
        >>> X, y = fn.datasets.xor()
        >>> model = fn.Sequential([fn.layers.Dense(2, 2)], random_state=0)
        >>> trainer = fn.Trainer(model, optimizer="adam", random_state=0)
        >>> _ = trainer.fit(X, y, epochs=2)
        >>> again = fn.Trainer.from_state_dict(model, trainer.state_dict())
        >>> again.optimizer.t == trainer.optimizer.t
        True
        """
        settings = dict(state["settings"])
        rng = generator_from_state(state["rng"])
        if settings.get("random_state") == "generator":
            settings["random_state"] = rng
        trainer = cls(model, optimizer=_optim.from_state(state["optimizer"]),
                      callbacks=callbacks, **settings)
        trainer.rng = rng
        trainer._rng_handed_out = bool(state["rng_handed_out"])
        for index, layer_state in state["layer_rngs"].items():
            i = int(index)
            if not (0 <= i < len(model.layers) and model.layers[i].stochastic):
                raise ArgumentError(f"layer_rngs names layer {index!r}, which is not a "
                                    f"stochastic layer of the model")
            model.layers[i].rng = generator_from_state(layer_state)
        return trainer

    def save_checkpoint(self, path: Union[str, os.PathLike[str]]) -> None:
        """Save the model and :meth:`state_dict` to ``path`` (see
        :func:`fusenn.io.save_checkpoint`), so that a Trainer read back with
        :func:`fusenn.io.load_checkpoint` resumes ``fit`` exactly.

        Parameters
        ----------
        path : str or path-like
            The file (one ``.npz``), written atomically.

        Raises
        ------
        ValueError
            A custom loss or optimiser.
        SaveError, OSError
            The path cannot be written.
        """
        _archive.write_checkpoint(self.model, self.state_dict(), path)

    # -- the two paths -------------------------------------------------------------------
    def _dense_layout(self, y: Array) -> Optional[Tuple[Array, Array, Array]]:
        """``(widths, codes, params)`` of the model as a stack of Dense layers for a compiled
        epoch (the output activation left out when it is fused with the loss), or None when
        the model or the targets need the per-batch path."""
        layers = self.model.layers
        if self.fast_path is False or not all(isinstance(l, Dense) for l in layers):
            return None
        if self.loss.code == _losses.CrossEntropy.code and y.ndim != 1:
            return None  # soft target distributions: per-batch path
        widths = np.array([layers[0].n_in] + [l.n_out for l in layers], dtype=np.int64)
        codes = np.empty(len(layers), dtype=np.int64)
        params = np.zeros((len(layers), 2))
        for i, l in enumerate(cast(List[Dense], layers)):  # all Dense (checked above)
            codes[i], params[i, 0], params[i, 1] = (
                l.activation.code, l.activation.p0, l.activation.p1)
        if self._fuses_output():
            codes[-1], params[-1] = LINEAR, 0.0
        return widths, codes, params

    def _epoch_path(self, X: Array, y: Array, bs: int) -> Union[CompiledEpoch, PerBatchEpoch]:
        """The object that runs one epoch: the compiled epoch where a backend offers one for
        this model, loss and optimiser, else the per-batch path through the layers."""
        layout = self._dense_layout(y)
        if layout is not None:
            # a loss or optimiser without a code (a custom one) has no compiled epoch:
            # for_epoch's contract check answers None for it
            be = backends.for_epoch(self.loss.code, self.optimizer.code,
                                    epoch_work(layout[0], bs))
            if be is not None:
                return CompiledEpoch(self, be, X, y, bs, layout)
        return PerBatchEpoch(self, backends.get(), X, y, bs)

    # -- fit --------------------------------------------------------------------------------
    def fit(self, X: ArrayLike, y: ArrayLike, epochs: int = 10,
            validation_data: Optional[Tuple[ArrayLike, ArrayLike]] = None,
            validation_split: Optional[float] = None,
            verbose: Optional[int] = None) -> History:
        """Train for ``epochs`` epochs; return the :class:`fusenn.History`.

        ``validation_data=(X_val, y_val)``, or ``validation_split=f`` to hold out the last
        fraction ``f`` of the samples (before shuffling, as Keras does). Logs per epoch:
        ``loss`` (mean over the epoch's samples, measured as the batches went), ``accuracy``
        (the share of correct predictions over the epoch's batches, each judged on the
        outputs it was trained on, before its update, as Keras reports it: no extra pass over
        the data), and ``val_loss``/``val_*`` when validating (computed on the validation data
        after the epoch).

        Parameters
        ----------
        X : array_like of shape (n, n_in)
            The training inputs (converted to the model's dtype).
        y : array_like
            The targets: integer labels, one-hot or probability rows, binary or real
            targets, as the loss takes them (see the class's docstring).
        epochs : int > 0, default 10
            Passes over the data (a callback may stop earlier).
        validation_data : (X_val, y_val) or None, default None
            Data scored after every epoch (logged as ``val_*``).
        validation_split : float in (0, 1) or None, default None
            Fraction of the samples, taken from the end, held out for validation.
        verbose : int or None, default None
            Overrides the trainer's ``verbose`` for this call.

        Returns
        -------
        History
            The logs of every epoch.

        Raises
        ------
        ShapeError, ValueError
            Data that does not fit the model or the loss (the message names it), or both
            ``validation_data`` and ``validation_split``.
        DivergenceError
            The loss or the weights became NaN or infinite; the weights and the optimiser are
            restored to the start of the failing epoch.

        Examples
        --------
        >>> import fusenn as fn
        >>> X, y = fn.datasets.xor()
        >>> model = fn.Sequential([fn.layers.Dense(2, 2)], random_state=0)
        >>> history = fn.Trainer(model, random_state=0).fit(X, y, epochs=3,
        ...                                                 validation_data=(X, y))
        >>> sorted(history.history)
        ['accuracy', 'loss', 'val_accuracy', 'val_loss']
        """
        epochs = check_positive(epochs, "epochs", integer=True)
        model = self.model
        X, y = self._prepare(X, y)
        if validation_split is not None:
            if validation_data is not None:
                raise ArgumentError("give validation_data or validation_split, not both")
            f = check_in_range(validation_split, "validation_split", 0.0, 1.0, lo_open=True)
            n_val = int(round(X.shape[0] * f))
            if n_val < 1 or n_val >= X.shape[0]:
                raise ArgumentError(f"validation_split={f} leaves {n_val} validation samples out "
                                 f"of {X.shape[0]}")
            X, Xv, y, yv = X[:-n_val], X[-n_val:], y[:-n_val], y[-n_val:]
            validation_data = (Xv, yv)
        elif validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise ArgumentError("validation_data must be a pair (X_val, y_val)")
            validation_data = self._prepare(*validation_data)
        if model.task is None:
            model.task = self.loss.task
        n = X.shape[0]
        bs = n if self.batch_size is None else min(self.batch_size, n)
        self.epochs = epochs
        self.stop_training = False
        verbose = self.verbose if verbose is None else int(verbose)

        if self.random_state is not None and not self._rng_handed_out:
            for layer in model.layers:
                if layer.stochastic:
                    layer.set_rng(np.random.default_rng(self.rng.integers(2 ** 63)))
            self._rng_handed_out = True
        self.optimizer.setup(model.n_params, model.dtype)
        history = History()
        # user callbacks first, so that what they add to the logs is shown and recorded
        callbacks = self.callbacks + ([ProgressBar(verbose)] if verbose else []) + [history]
        for cb in callbacks:
            cb.set_trainer(self)

        path = self._epoch_path(X, y, bs)
        self.last_path = path.describe()
        order = np.arange(n, dtype=np.int64)
        last_good = _LastGood(model, self.optimizer)

        # one thread for small networks' batches (see fusenn._threads.threads_for)
        with thread_limits(work=bs * model.n_params), _InterruptsAtSafePoints() as interrupts:
            for cb in callbacks:
                cb.on_train_begin()
            try:
                self._epochs(path, epochs, n, bs, order, y, validation_data, callbacks,
                             last_good, interrupts)
            finally:  # callbacks see the end of training, also when it diverged or stopped
                for cb in callbacks:
                    cb.on_train_end()
        return history

    def _epochs(self, path: Union[CompiledEpoch, PerBatchEpoch], epochs: int, n: int, bs: int,
                order: Array, y: Array, validation_data: Optional[Tuple[Array, Array]],
                callbacks: List[Callback], last_good: _LastGood,
                interrupts: _InterruptsAtSafePoints) -> None:
        """The epoch loop of :meth:`fit`.

        When every callback is replayable and nothing is validated, the path may run several
        epochs per call (:meth:`CompiledEpoch.span`); their callbacks are then replayed in
        order with each epoch's logs. If such a call diverges, the weights go back to its
        start and its epochs are run again one at a time, with the same sample orders, so that
        divergence is reported and restored per epoch as always.
        """
        span = 1
        if validation_data is None and all(cb.replayable for cb in callbacks):
            span = path.span(n)
        counting = "accuracy" in self.metrics
        replay: List[Array] = []  # sample orders of epochs to run again one at a time
        epoch = 0
        while epoch < epochs:
            interrupts.deliver()
            if replay:
                orders = replay.pop(0)[None]
            else:
                orders = self._orders(min(span, epochs - epoch), n, order)
            one = orders.shape[0] == 1
            if one:
                for cb in callbacks:
                    cb.on_epoch_begin(epoch)
            last_good.keep()
            # overflow on the way to divergence is reported as DivergenceError below
            with self._training_mode(reuse=True), np.errstate(over="ignore", invalid="ignore"):
                self.model.training = True
                losses, correct, done = path.run(orders, counting, interrupts)
            interrupts.deliver()  # a Ctrl-C during the epoch, now that t and weights agree
            if done < losses.size or not last_good.finite_now():
                last_good.restore()
                if not one:
                    replay = list(orders)
                    continue
                self._diverged(losses.reshape(-1), done, epoch)
            # each epoch's logs, one value per epoch of the call
            columns = {"loss": ((losses * path.sizes).sum(axis=1) / n).tolist()}
            if counting:
                judged = n if self.loss.code == _losses.CrossEntropy.code else y[:1].size * n
                columns["accuracy"] = (correct.sum(axis=1) / judged).tolist()
            if not one:
                for cb in callbacks:
                    cb.on_epochs_end(epoch, columns)
                epoch += orders.shape[0]
                continue
            logs = {k: v[0] for k, v in columns.items()}
            if validation_data is not None:
                logs.update({"val_" + k: v for k, v in self._scores(*validation_data).items()})
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            epoch += 1
            if self.stop_training:
                return

    def _orders(self, count: int, n: int, order: Array) -> Array:
        """``count`` epochs' sample orders, one per row: fresh permutations when shuffling
        (the same as ``count`` calls of ``rng.permutation(n)``), else ``order``."""
        if not self.shuffle:
            return np.broadcast_to(order, (count, n))
        return self.rng.permuted(np.broadcast_to(order, (count, n)), axis=1)

    @staticmethod
    def _diverged(losses: Array, done: int, epoch: int) -> None:
        what = (f"the loss became {losses[done]} at epoch {epoch + 1}, batch {done + 1}"
                if done < losses.size else
                f"the weights became infinite or NaN at epoch {epoch + 1}, batch "
                f"{losses.size} (the last update)")
        raise DivergenceError(
            f"training diverged: {what}; the weights and the optimiser state are restored to "
            f"their values at the start of epoch {epoch + 1}, the last finite ones (try a "
            f"smaller learning rate)")


class _EpochPath:
    """What both epoch paths share: the batch sizes of an epoch, and the buffers of losses
    and correct counts that :meth:`run` fills (one row per epoch of a call)."""

    kind: str  # set by each path's class
    backend: Any  # the backend module that runs the kernels

    def __init__(self, n: int, bs: int) -> None:
        self.n_batches = -(-n // bs)
        self.sizes = np.full(self.n_batches, bs, dtype=np.float64)
        self.sizes[-1] = n - bs * (self.n_batches - 1)
        self._buffers = (np.empty((0, self.n_batches)), np.empty((0, self.n_batches)))

    def describe(self) -> str:
        """``"<kind>:<backend>"``, such as ``"fast:cython"`` or ``"per-batch:numpy"``.

        Returns
        -------
        str
        """
        return f"{self.kind}:{self.backend.NAME}"

    def span(self, n: int) -> int:
        """How many epochs one call of :meth:`run` may run when nothing needs Python between
        them.

        Parameters
        ----------
        n : int
            The number of training samples.

        Returns
        -------
        int
            One here: a path that runs Python per batch gains nothing from more.
        """
        return 1

    def _outputs(self, epochs: int) -> Tuple[Array, Array]:
        """``(losses, correct)``, ``(epochs, n_batches)`` each, reused between calls."""
        if self._buffers[0].shape[0] < epochs:
            self._buffers = (np.empty((epochs, self.n_batches)),
                             np.zeros((epochs, self.n_batches)))
        return self._buffers[0][:epochs], self._buffers[1][:epochs]


class CompiledEpoch(_EpochPath):
    """Epochs in one call of a compiled backend's ``train_epoch``: every mini-batch's
    forward pass, fused loss, correct-prediction count, backward pass and optimiser step with
    no Python per batch, and with no Python per epoch when several run in one call.

    Made by :meth:`Trainer.fit`; ``trainer.last_path`` is its :meth:`describe`.

    Parameters
    ----------
    trainer : Trainer
        The trainer whose model, loss and optimiser run.
    backend : module
        A compiled backend with ``train_epoch``.
    X : ndarray of shape (n, n_in)
        The prepared training inputs.
    y : ndarray
        The prepared targets (labels for cross-entropy).
    bs : int
        The batch size.
    layout : (widths, codes, params)
        The model as a stack of Dense layers.
    """

    kind = "fast"
    #: Samples one call may visit when it runs several epochs (small data sets: many epochs
    #: per call, so that Python's per-epoch cost does not dominate; Ctrl-C waits at most
    #: this long).
    SPAN_SAMPLES = 8192

    def __init__(self, trainer: Trainer, backend: Any, X: Array, y: Array, bs: int,
                 layout: Tuple[Array, Array, Array]) -> None:
        self.trainer, self.backend, self.bs = trainer, backend, bs
        self.X = np.ascontiguousarray(X)
        super().__init__(self.X.shape[0], bs)
        self.widths, self.codes, self.params = layout
        xent = trainer.loss.code == _losses.CrossEntropy.code
        model = trainer.model
        self.labels = y if xent else np.empty(0, dtype=np.int64)
        self.targets = np.empty((0, model.n_out), dtype=model.dtype) if xent else y
        prepare = getattr(backend, "prepare_epoch", None)
        if prepare is not None:  # a backend that compiles on first use does it now, not in epoch 1
            opt = trainer.optimizer
            losses, correct = self._outputs(1)
            prepare(model.flat_params, model.flat_grads, self.widths, self.codes, self.params,
                    self.X, self.labels, self.targets, np.arange(self.X.shape[0]), bs,
                    trainer.loss.code, opt.code, opt.hyper(), opt.state, losses, correct)

    def span(self, n: int) -> int:
        """How many epochs one compiled call may run: as many as visit at most
        :data:`SPAN_SAMPLES` samples, at least one.

        Parameters
        ----------
        n : int
            The number of training samples.

        Returns
        -------
        int
        """
        return max(1, self.SPAN_SAMPLES // n)

    def run(self, orders: Array, count: bool = True,
            interrupts: Any = None) -> Tuple[Array, Array, int]:
        """``(losses, correct, batches done)`` for the epochs whose sample orders are the rows
        of ``orders``: each batch's loss and correct predictions, ``(epochs, n_batches)``
        (``correct`` is not written unless ``count``).

        The step count moves with the weights: a Ctrl-C is held back by ``interrupts`` (see
        :class:`_InterruptsAtSafePoints`) until both are updated.

        Parameters
        ----------
        orders : ndarray of int64, shape (epochs, n)
            The order of the samples in each epoch of the call.
        count : bool, default True
            Whether to count each batch's correct predictions.
        interrupts : object or None, default None
            The Ctrl-C holder of :meth:`Trainer.fit`.

        Returns
        -------
        losses, correct : ndarray of shape (epochs, n_batches)
            Each batch's loss and count of correct predictions.
        done : int
            Batches completed over all epochs (fewer than ``losses.size`` when the loss
            became NaN).
        """
        model, opt = self.trainer.model, self.trainer.optimizer
        losses, correct = self._outputs(orders.shape[0])
        done = self.backend.train_epoch(
            model.flat_params, model.flat_grads, self.widths, self.codes, self.params, self.X,
            self.labels, self.targets, orders, self.bs, self.trainer.loss.code, opt.code,
            opt.hyper(), opt.state, losses, correct if count else None)
        opt.t += int(done)
        return losses, correct, int(done)


class PerBatchEpoch(_EpochPath):
    """One epoch through the layers' ``forward``/``backward``, a mini-batch at a time; the
    batch buffers are allocated once per fit.

    Parameters
    ----------
    trainer : Trainer
        The trainer whose model, loss and optimiser run.
    backend : module
        The backend of the kernels.
    X : ndarray of shape (n, n_in)
        The prepared training inputs.
    y : ndarray
        The prepared targets.
    bs : int
        The batch size.
    """

    kind = "per-batch"

    def __init__(self, trainer: Trainer, backend: Any, X: Array, y: Array, bs: int) -> None:
        self.trainer, self.backend, self.X, self.y, self.bs = trainer, backend, X, y, bs
        super().__init__(X.shape[0], bs)
        model = trainer.model
        self.xbuf = np.empty((bs, X.shape[1]), dtype=X.dtype)
        self.ybuf = np.empty((bs,) + y.shape[1:], dtype=y.dtype)
        self.gbuf = np.empty((bs, model.n_out), dtype=model.dtype)

    def run(self, orders: Array, count: bool = True,
            interrupts: Any = None) -> Tuple[Array, Array, int]:
        """``(losses, correct, batches done)`` for the epochs of ``orders`` (one row each, as
        :meth:`CompiledEpoch.run`); a Ctrl-C that ``interrupts`` saw is delivered after the
        batch in which it came (the step count and the weights agree at every batch
        boundary).

        Parameters
        ----------
        orders : ndarray of int64, shape (epochs, n)
            The order of the samples in each epoch of the call.
        count : bool, default True
            Whether to count each batch's correct predictions.
        interrupts : object or None, default None
            The Ctrl-C holder of :meth:`Trainer.fit`.

        Returns
        -------
        losses, correct : ndarray of shape (epochs, n_batches)
            Each batch's loss and count of correct predictions.
        done : int
            Batches completed over all epochs (fewer than ``losses.size`` when the loss
            became NaN).
        """
        model, opt, loss_fn = self.trainer.model, self.trainer.optimizer, self.trainer.loss
        bs, X, y = self.bs, self.X, self.y
        losses, correct = self._outputs(orders.shape[0])
        flat_losses, flat_correct = losses.reshape(-1), correct.reshape(-1)
        judgement = self.trainer._judgement()
        kk = 0
        for perm in orders:
            for k in range(self.n_batches):
                idx = perm[k * bs:(k + 1) * bs]
                m = idx.shape[0]
                xb = np.take(X, idx, axis=0, out=self.xbuf[:m])
                yb = np.take(y, idx, axis=0, out=self.ybuf[:m])
                out = model._forward(xb, True)
                if count:
                    flat_correct[kk] = self.trainer._correct(out, yb, judgement)[0]
                flat_losses[kk] = loss_fn.kernel(self.backend, out, yb, self.gbuf[:m])
                if not math.isfinite(flat_losses[kk]):
                    return losses, correct, kk
                model._backward(self.gbuf[:m])
                opt._step(model.flat_params, model.flat_grads)
                kk += 1
                if interrupts is not None and interrupts.pending:
                    # raises KeyboardInterrupt, or calls the handler the fit found (which
                    # may ignore it) and training goes on
                    interrupts.deliver()
        return losses, correct, kk


class _LastGood:
    """The weights, buffers (BatchNorm's statistics) and optimiser state at the start of the
    epoch, kept in buffers allocated once per fit, to restore when the epoch diverges (of the
    state, the rows the update uses: none for plain SGD, whose unused rows cost the large
    network two copies of its weights per epoch)."""

    def __init__(self, model: Sequential, optimizer: _optim.Optimizer) -> None:
        self.model, self.opt = model, optimizer
        self.params = np.empty_like(model.flat_params)
        rows = optimizer.state_rows()
        self.state = (None if optimizer.state is None or rows == 0
                      else np.empty_like(optimizer.state[:rows]))
        self.buffers = model.get_buffers()
        self.t = optimizer.t

    def keep(self) -> None:
        np.copyto(self.params, self.model.flat_params)
        if self.state is not None:
            assert self.opt.state is not None  # the optimiser had a state when this was made
            np.copyto(self.state, self.opt.state[:self.state.shape[0]])
        for kept, now in zip(self.buffers, self._live_buffers()):
            np.copyto(kept, now)
        self.t = self.opt.t

    def finite_now(self) -> bool:
        """Whether every weight (and BatchNorm statistic) is finite after the epoch."""
        arrays = [self.model.flat_params] + self._live_buffers()
        return all(all_finite(a) for a in arrays)

    def restore(self) -> None:
        np.copyto(self.model.flat_params, self.params)
        if self.state is not None:
            assert self.opt.state is not None  # the optimiser had a state when this was made
            np.copyto(self.opt.state[:self.state.shape[0]], self.state)
        for kept, now in zip(self.buffers, self._live_buffers()):
            np.copyto(now, kept)
        self.opt.t = self.t
        self.model.flat_grads[...] = 0

    def _live_buffers(self) -> List[Array]:
        return [getattr(layer, n) for layer in self.model.layers for n in layer.buffer_names]


class _InterruptsAtSafePoints:
    """Hold a Ctrl-C (SIGINT) back until a safe point of :meth:`Trainer.fit`.

    A KeyboardInterrupt raised between a compiled epoch's return and the update of the
    optimiser's step count, or between a per-batch update and its count, would leave ``t``
    behind the weights (and Adam's bias correction wrong on resume). While fitting, SIGINT
    only sets :attr:`pending`, and :meth:`deliver` raises the interrupt (or calls the handler
    that was installed, which may ignore it, and training goes on) once the weights and the
    count agree: after the compiled call, or at the per-batch path's next batch boundary.
    Only in the main thread, where Python runs signal handlers; elsewhere it does nothing.
    """

    def __init__(self) -> None:
        self.pending = False
        self._old: Any = None  # the SIGINT handler to put back (the one replaced)
        self._installed = False

    def __enter__(self) -> _InterruptsAtSafePoints:
        if threading.current_thread() is threading.main_thread():
            try:
                self._old = _set_signal_handler(signal.SIGINT, self._hold)
                self._installed = True
            except ValueError:  # pragma: no cover - signals unavailable here
                pass
        return self

    def _hold(self, signum: int, frame: Optional[FrameType]) -> None:
        self.pending = True

    def deliver(self) -> None:
        """Raise the held interrupt now (the caller is at a safe point)."""
        if self.pending:
            self.pending = False
            old = self._old
            if callable(old) and old is not signal.default_int_handler:
                old(signal.SIGINT, None)
            elif old != signal.SIG_IGN:
                raise KeyboardInterrupt

    def __exit__(self, exc_type: Optional[type], exc: Optional[BaseException],
                 tb: Any) -> Literal[False]:
        if self._installed:
            _set_signal_handler(signal.SIGINT, self._old if self._old is not None
                                else signal.default_int_handler)
        if exc_type is None:
            self.deliver()
        return False
