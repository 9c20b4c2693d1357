"""Sequential: a stack of layers, its parameters packed into one flat vector.

Packing every parameter (``W0, b0, W1, b1, ...``) into one contiguous vector, and every gradient
into another of the same layout, means an optimiser updates the whole network in one pass and
the compiled backends can train a stack of Dense layers from a single buffer. Each layer still
sees its own ``W`` and ``b`` - they are views into that vector.

>>> import fusenn as fn
>>> net = fn.Sequential([fn.layers.Dense(1024, 5), fn.layers.Dense(5, 10),
...                      fn.layers.Dense(10, 10), fn.layers.Dense(10, 1000)])
>>> net.n_params
16295
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable, Iterable, List, Optional, Union

import numpy as np

from . import _archive
from . import activations as _acts
from ._threads import thread_limits
from ._typing import Array, ArrayLike, DTypeLike, Seed
from ._validation import (check_2d, check_batch, check_finite, check_positive,
                          check_random_state, float_dtype)
from .errors import ArgumentError, ArgumentTypeError, ShapeError
from .layers import Activation, Dense, Layer

TASKS = ("multiclass", "binary", "regression")
#: Rows per forward pass when predicting or evaluating many rows. Chunks keep every layer's
#: output in cache and reuse memory; one pass over 100,000 rows of a 784-128-64-10 network
#: allocates about 80 MB of fresh pages each call (the kernel zeroing them took 11% of the
#: time) and ran 1.2x slower.
PREDICT_BATCH = 4096


class Sequential:
    """Layers applied one after the other.

    ``layers``: a list of :mod:`fusenn.layers` objects, the first with a known input width.
    ``dtype``: float32 (default, like PyTorch and Keras) or float64; every layer is converted
    to it and inputs are converted to it. ``random_state``: if given, every layer's
    parameters are drawn afresh from one Generator seeded by it, in order, so that the same
    seed gives the same network. ``task``: ``"multiclass"``, ``"binary"`` or ``"regression"``
    decides what :meth:`predict` returns; a Trainer sets it from its loss when left None.

    Parameters
    ----------
    layers : iterable of Layer
        The layers, in order; each object may appear once.
    dtype : float32, float64 or None, default None
        The model's dtype (None: the first layer with parameters', else float32).
    random_state : None, int or numpy.random.Generator
        If given, redraw every layer's parameters from one Generator seeded by it.
    task : {"multiclass", "binary", "regression"} or None, default None
        What :meth:`predict` returns (None: decided by the Trainer's loss, or by the output
        activation).

    Raises
    ------
    ValueError
        No layers, a layer given twice, or an unknown task.
    TypeError
        Something in ``layers`` that is not a fusenn layer.
    ShapeError
        The first layer does not know its input width, or the widths do not chain.

    Examples
    --------
    >>> import fusenn as fn
    >>> model = fn.Sequential([fn.layers.Dense(2, 8, activation="tanh"),
    ...                        fn.layers.Dense(8, 2)], random_state=0)
    >>> model.n_in, model.n_out, model.n_params
    (2, 2, 42)
    >>> [w.shape for w in model.get_weights()]
    [(2, 8), (8,), (8, 2), (2,)]
    """

    def __init__(self, layers: Iterable[Layer] = (), dtype: DTypeLike = None,
                 random_state: Seed = None, task: Optional[str] = None) -> None:
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ArgumentTypeError(f"layer {i} is a {type(layer).__name__}, not a fusenn layer")
        if not layers:
            raise ArgumentError("Sequential needs at least one layer")
        first: dict[int, int] = {}
        for i, layer in enumerate(layers):
            j = first.setdefault(id(layer), i)
            if j != i:
                raise ArgumentError(
                    f"layer {i} is the same object as layer {j} ({layer.describe()}): a layer "
                    f"keeps its own parameters and the inputs of its last forward pass, so it "
                    f"cannot appear twice; use a copy (copy.deepcopy(layer)) or a new layer")
        if task is not None and task not in TASKS:
            raise ArgumentError(f"task must be one of {', '.join(TASKS)} or None, got {task!r}")
        if dtype is None:
            dtype = next((l.dtype for l in layers if l.param_names), np.dtype(np.float32))
        self.dtype = float_dtype(dtype)
        self.layers = layers
        self.task = task
        self.training = False
        # Held by a Trainer while an epoch or an evaluation runs (layers then reuse their
        # workspaces and the last layer may output logits), and by forward and predict, so
        # that a prediction from another thread waits for a consistent model.
        self._lock = threading.RLock()
        self._rows: Optional[int] = None  # rows of the last forward pass (backward's dy's)
        self._build()
        if random_state is not None:
            rng = check_random_state(random_state)
            for layer in layers:
                layer.reset_parameters(rng)
                if layer.stochastic:
                    layer.set_rng(rng)
        self._pack()

    # -- structure --------------------------------------------------------------------------
    def _build(self) -> None:
        width = self.layers[0].n_in
        if width is None:
            raise ShapeError(f"the first layer ({self.layers[0].describe()}) must know its "
                             f"input width")
        for i, layer in enumerate(self.layers):
            if layer.dtype != self.dtype:
                layer.astype(self.dtype)
            try:
                width = layer.build(width)
            except ShapeError as exc:
                raise ShapeError(f"layer {i}: {exc}") from None
            layer.need_input_grad = i > 0
        self.n_in = self.layers[0].n_in
        self.n_out = width

    def _pack(self) -> None:
        """Move every parameter and gradient into one flat vector each; layers keep views."""
        sizes = [p.size for layer in self.layers for p in layer.params]
        total = int(sum(sizes))
        self.flat_params = np.empty(total, dtype=self.dtype)
        self.flat_grads = np.zeros(total, dtype=self.dtype)
        off = 0
        for layer in self.layers:
            for name in layer.param_names:
                p = getattr(layer, name)
                view = self.flat_params[off:off + p.size].reshape(p.shape)
                view[...] = p
                setattr(layer, name, view)
                setattr(layer, "d" + name, self.flat_grads[off:off + p.size].reshape(p.shape))
                off += p.size

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)  # a lock does not travel; the copy gets its own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Pickle stores each layer's W and b as arrays of their own; pack them into one flat
        # vector again, so that the layers see views of it as before.
        self.__dict__.update(state)
        self._lock = threading.RLock()
        self.__dict__.setdefault("_rows", None)
        grads = [(layer, "d" + n, getattr(layer, "d" + n, None))
                 for layer in self.layers for n in layer.param_names]
        self._pack()
        for layer, name, grad in grads:  # the gradients of the last backward pass come along
            if grad is not None and grad.shape == getattr(layer, name).shape:
                getattr(layer, name)[...] = grad

    @property
    def n_params(self) -> int:
        """Number of trainable parameters."""
        return int(self.flat_params.size)

    @property
    def output_activation(self) -> _acts.Activation:
        """The activation applied by the last layer (linear when it has none)."""
        last = self.layers[-1]
        if isinstance(last, (Dense, Activation)):
            return last.activation
        return _acts.get("linear")

    # -- mode -------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Sequential:
        """Training mode: Dropout drops, BatchNorm uses batch statistics, RReLU draws slopes.

        Parameters
        ----------
        mode : bool, default True
            True for training mode, False for evaluation mode.

        Returns
        -------
        Sequential
            The model itself.
        """
        self.training = bool(mode)
        return self

    def eval(self) -> Sequential:
        """Evaluation mode (``train(False)``): the mode :meth:`predict` always uses.

        Returns
        -------
        Sequential
            The model itself.
        """
        return self.train(False)

    # -- running ----------------------------------------------------------------------------
    def _check_input(self, X: ArrayLike, finite: bool = True) -> Array:
        X = check_2d(X, "X", self.dtype, finite=finite)
        if X.shape[1] != self.n_in:
            raise ShapeError(f"X has {X.shape[1]} features but the model expects {self.n_in}")
        return np.ascontiguousarray(X)

    def forward(self, X: ArrayLike, training: Optional[bool] = None) -> Array:
        """Outputs of the last layer for ``X`` (n, n_in), in the model's dtype.

        Parameters
        ----------
        X : array_like of shape (n, n_in)
            The inputs (converted to the model's dtype).
        training : bool or None, default None
            Training mode for this pass (None: the model's mode, see :meth:`train`).

        Returns
        -------
        ndarray of shape (n, n_out)
            The raw outputs (after the last layer's activation, if it has one).

        Raises
        ------
        ShapeError
            ``X`` is not 2-D, is empty or has the wrong number of features.
        ValueError
            ``X`` holds NaN or infinity.

        Examples
        --------
        >>> import numpy as np
        >>> import fusenn as fn
        >>> model = fn.Sequential([fn.layers.Dense(3, 2, activation="softmax")])
        >>> model.forward(np.ones((4, 3))).sum(axis=1).round(5)
        array([1., 1., 1., 1.], dtype=float32)
        """
        X = self._check_input(X)
        with self._lock:
            return self._forward(X, self.training if training is None else training)

    __call__ = forward

    def _forward(self, X: Array, training: bool) -> Array:
        self._rows = X.shape[0]
        for layer in self.layers:
            X = layer.forward(X, training)
        return X

    def backward(self, dy: ArrayLike) -> Optional[Array]:
        """Backpropagate ``dL/d(output)``; fills every layer's gradients (``flat_grads``).

        Parameters
        ----------
        dy : array of shape (n, n_out)
            The gradient of the loss wrt the outputs of the last :meth:`forward`, whose
            ``n`` rows it must have; converted to the model's dtype.

        Returns
        -------
        ndarray or None
            ``dL/dX`` of shape (n, n_in), or None (the first layer computes no input
            gradient).

        Raises
        ------
        ShapeError
            ``dy`` does not have the shape of the last forward pass's output.
        ArgumentError
            No forward pass ran yet, or ``dy`` holds NaN or infinity.
        """
        if self._rows is None:
            raise ArgumentError("backward needs a forward pass first: call model.forward(X) "
                                "(or model(X)), then model.backward(dy)")
        dy = check_batch(dy, (self._rows, self.n_out), self.dtype, "dy")
        check_finite(dy, "dy")
        with self._lock:
            return self._backward(dy)

    def _backward(self, dy: Optional[Array]) -> Optional[Array]:
        """:meth:`backward` for a ``dy`` known to fit (the Trainer's own)."""
        for layer in reversed(self.layers):
            assert dy is not None
            dy = layer.backward(dy)
        return dy

    def _predict_batches(self, X: ArrayLike, batch_size: Optional[int]) -> Array:
        # Behind a Dense first layer, NaN or infinity in X is looked for where it lands: in
        # that layer's pre-activation, by the dense kernel's own pass over it (a pass over X
        # itself cost a quarter of a medium network's prediction).
        first = self.layers[0] if isinstance(self.layers[0], Dense) else None
        X = self._check_input(X, finite=first is None)
        if batch_size is None:
            batch_size = PREDICT_BATCH
        else:
            batch_size = check_positive(batch_size, "batch_size", integer=True)
        # BLAS and OpenMP on fusenn's count for this size, as in fit
        with thread_limits(work=min(X.shape[0], batch_size) * self.n_params), self._lock:
            parts = []
            for i in range(0, X.shape[0], batch_size):
                with np.errstate(invalid="ignore", over="ignore"):  # bad X is named below
                    parts.append(self._forward(X[i:i + batch_size], False))
                if first is not None and not first._z_finite:
                    check_finite(X, "X")
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def predict_proba(self, X: ArrayLike, batch_size: Optional[int] = None) -> Array:
        """Class probabilities (n, n_classes) for a classifier.

        Outputs of a softmax (sigmoid) last layer are returned as they are; raw outputs
        (logits) are passed through softmax, or sigmoid for a single binary output. A single
        binary column becomes two columns ``[1 - p, p]``.

        Parameters
        ----------
        X : array_like of shape (n, n_in)
            The inputs.
        batch_size : int or None, default None
            Rows per forward pass (None: :data:`PREDICT_BATCH`); the result does not depend
            on it.

        Returns
        -------
        ndarray of shape (n, n_classes)
            Rows that sum to 1.

        Raises
        ------
        TypeError
            The model is a regressor.
        ShapeError
            ``X`` does not fit the model.

        Examples
        --------
        >>> import numpy as np
        >>> import fusenn as fn
        >>> model = fn.Sequential([fn.layers.Dense(2, 3)], task="multiclass")
        >>> model.predict_proba(np.zeros((1, 2)))
        array([[0.33333334, 0.33333334, 0.33333334]], dtype=float32)
        """
        out = self._predict_batches(X, batch_size)
        act = self.output_activation.name
        binary = self.task == "binary" or (self.task is None and act == "sigmoid")
        if binary:
            p = out if act == "sigmoid" else _acts.get("sigmoid").forward(out)
            if p.shape[1] == 1:
                return np.hstack([1 - p, p])
            return p
        if self.task == "regression":
            raise ArgumentTypeError("predict_proba is for classifiers; this model is a regressor")
        if act == "softmax":
            return out
        from .functional import softmax

        proba: Array = softmax(out)
        return proba

    def is_classifier(self) -> bool:
        """Whether :meth:`predict` returns class labels (the task, or a softmax or sigmoid
        output when the task is not set).

        Returns
        -------
        bool
        """
        if self.task is not None:
            return self.task != "regression"
        return self.output_activation.name in ("softmax", "sigmoid")

    def predict(self, X: ArrayLike, batch_size: Optional[int] = None) -> Array:
        """Class labels (int64) for a classifier, output values for a regressor.

        Rows go through the network ``batch_size`` at a time (default :data:`PREDICT_BATCH`);
        the result does not depend on it.

        Parameters
        ----------
        X : array_like of shape (n, n_in)
            The inputs.
        batch_size : int or None, default None
            Rows per forward pass.

        Returns
        -------
        ndarray
            Labels of shape (n,) (the arg-max of the outputs, or a threshold on a single
            output: 0.5 after a sigmoid, 0 on a logit), or the outputs (n, n_out) of a
            regressor.

        Raises
        ------
        ShapeError
            ``X`` does not fit the model.

        Examples
        --------
        >>> import numpy as np
        >>> import fusenn as fn
        >>> model = fn.Sequential([fn.layers.Dense(2, 2, activation="softmax")])
        >>> model.set_weights([np.eye(2), np.zeros(2)])
        >>> model.predict(np.array([[1.0, 0.0], [0.0, 1.0]]))
        array([0, 1])
        """
        if not self.is_classifier():
            return self._predict_batches(X, batch_size)
        out = self._predict_batches(X, batch_size)
        if out.shape[1] == 1:
            act = self.output_activation.name
            threshold = 0.5 if act == "sigmoid" else 0.0
            return (out[:, 0] > threshold).astype(np.int64)
        labels: Array = np.argmax(out, axis=1).astype(np.int64)
        return labels

    # -- weights ----------------------------------------------------------------------------
    def get_weights(self) -> List[Array]:
        """Copies of every parameter in order ``[W0, b0, W1, b1, ...]`` (W: (n_in, n_out)).

        Returns
        -------
        list of ndarray
        """
        return [p.copy() for layer in self.layers for p in layer.params]

    def set_weights(self, weights: Iterable[ArrayLike]) -> None:
        """Set parameters from a list in :meth:`get_weights` order; shapes must match.

        Parameters
        ----------
        weights : iterable of array_like
            One array per parameter, ``[W0, b0, W1, b1, ...]``; copied into the model.

        Raises
        ------
        ShapeError
            The wrong number of arrays, or an array of the wrong shape.
        ValueError
            An array that is not finite numbers.
        """
        weights = list(weights)
        targets = [(layer, name) for layer in self.layers for name in layer.param_names]
        if len(weights) != len(targets):
            raise ShapeError(f"expected {len(targets)} arrays, got {len(weights)}")
        for i, ((layer, name), w) in enumerate(zip(targets, weights)):
            p = getattr(layer, name)
            w = np.asarray(w)
            if w.shape != p.shape:
                raise ShapeError(f"weight {i} ({layer.describe()}.{name}) must have shape "
                                 f"{p.shape}, got {w.shape}")
            if w.dtype.kind not in "biuf" or not np.all(np.isfinite(w)):
                raise ArgumentError(f"weight {i} ({layer.describe()}.{name}) must be finite "
                                 f"numbers")
        for (layer, name), w in zip(targets, weights):
            getattr(layer, name)[...] = w

    def get_buffers(self) -> List[Array]:
        """Copies of the non-trained state (BatchNorm running statistics), in layer order.

        Returns
        -------
        list of ndarray
        """
        return [getattr(layer, n).copy() for layer in self.layers for n in layer.buffer_names]

    def set_buffers(self, buffers: Iterable[ArrayLike]) -> None:
        """Set the non-trained state from a list in :meth:`get_buffers` order.

        Parameters
        ----------
        buffers : iterable of array_like
            One array per buffer, copied into the model.

        Raises
        ------
        ShapeError
            The wrong number of arrays, or an array of the wrong shape.
        """
        buffers = list(buffers)
        targets = [(layer, n) for layer in self.layers for n in layer.buffer_names]
        if len(buffers) != len(targets):
            raise ShapeError(f"expected {len(targets)} buffers, got {len(buffers)}")
        for (layer, n), b in zip(targets, buffers):
            cur = getattr(layer, n)
            if np.shape(b) != cur.shape:
                raise ShapeError(f"buffer {layer.describe()}.{n} must have shape {cur.shape}")
            cur[...] = b

    # -- description ------------------------------------------------------------------------
    def summary(self, print_fn: Optional[Callable[[str], Any]] = print) -> str:
        """Print (and return) a table of layers, output widths and parameter counts.

        Parameters
        ----------
        print_fn : callable or None, default print
            Called with the table's text (None: only return it).

        Returns
        -------
        str
            The table.

        Examples
        --------
        >>> import fusenn as fn
        >>> _ = fn.Sequential([fn.layers.Dense(2, 8, activation="tanh"),
        ...                    fn.layers.Dense(8, 2)]).summary()
        -----------------------------------
        #  layer          output     params
        -----------------------------------
        0  Dense(2 -> 8)  (None, 8)      24
        1  Dense(8 -> 2)  (None, 2)      18
        -----------------------------------
        Total params: 42  (dtype float32)
        -----------------------------------
        """
        rows = [("#", "layer", "output", "params")]
        for i, layer in enumerate(self.layers):
            rows.append((str(i), layer.describe(), f"(None, {layer.n_out})",
                         f"{layer.n_params:,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        line = "-" * (sum(widths) + 6)
        text = [line]
        for j, r in enumerate(rows):
            text.append("  ".join(v.ljust(w) if c < 3 else v.rjust(w)
                                  for c, (v, w) in enumerate(zip(r, widths))))
            if j == 0:
                text.append(line)
        text += [line, f"Total params: {self.n_params:,}  (dtype {self.dtype})", line]
        out = "\n".join(text)
        if print_fn is not None:
            print_fn(out)
        return out

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(l) for l in self.layers)
        return f"Sequential([\n  {inner}\n], dtype={self.dtype})"

    def save(self, path: Union[str, os.PathLike[str]]) -> None:
        """Write the model to one ``.npz`` file atomically (see :func:`fusenn.io.save`).

        Parameters
        ----------
        path : str or path-like
            The file; read it back with :func:`fusenn.load`.

        Raises
        ------
        SaveError
            The path is a directory, a FIFO or another special file.
        OSError
            The file cannot be written.
        """
        _archive.write_model(self, path)
