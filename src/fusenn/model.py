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

import threading

import numpy as np

from . import _archive
from . import activations as _acts
from ._threads import thread_limits
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
    """

    def __init__(self, layers=(), dtype=None, random_state=None, task=None):
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ArgumentTypeError(f"layer {i} is a {type(layer).__name__}, not a fusenn layer")
        if not layers:
            raise ArgumentError("Sequential needs at least one layer")
        first = {}
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
        self._rows = None  # rows of the last forward pass (what backward's dy must have)
        self._build()
        if random_state is not None:
            rng = check_random_state(random_state)
            for layer in layers:
                layer.reset_parameters(rng)
                if layer.stochastic:
                    layer.set_rng(rng)
        self._pack()

    # -- structure --------------------------------------------------------------------------
    def _build(self):
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

    def _pack(self):
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

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_lock", None)  # a lock does not travel; the copy gets its own
        return state

    def __setstate__(self, state):
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
    def n_params(self):
        """Number of trainable parameters."""
        return int(self.flat_params.size)

    @property
    def output_activation(self):
        """The activation applied by the last layer (linear when it has none)."""
        last = self.layers[-1]
        if isinstance(last, (Dense, Activation)):
            return last.activation
        return _acts.get("linear")

    # -- mode -------------------------------------------------------------------------------
    def train(self, mode=True):
        """Training mode: Dropout drops, BatchNorm uses batch statistics, RReLU draws slopes."""
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    # -- running ----------------------------------------------------------------------------
    def _check_input(self, X):
        X = check_2d(X, "X", self.dtype)
        if X.shape[1] != self.n_in:
            raise ShapeError(f"X has {X.shape[1]} features but the model expects {self.n_in}")
        return np.ascontiguousarray(X)

    def forward(self, X, training=None):
        """Outputs of the last layer for ``X`` (n, n_in), in the model's dtype."""
        X = self._check_input(X)
        with self._lock:
            return self._forward(X, self.training if training is None else training)

    __call__ = forward

    def _forward(self, X, training):
        self._rows = X.shape[0]
        for layer in self.layers:
            X = layer.forward(X, training)
        return X

    def backward(self, dy):
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

    def _backward(self, dy):
        """:meth:`backward` for a ``dy`` known to fit (the Trainer's own)."""
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def _predict_batches(self, X, batch_size):
        X = self._check_input(X)
        if batch_size is None:
            batch_size = PREDICT_BATCH
        else:
            batch_size = check_positive(batch_size, "batch_size", integer=True)
        with thread_limits(), self._lock:  # BLAS and OpenMP on fusenn's count, as in fit
            if X.shape[0] <= batch_size:
                return self._forward(X, False)
            parts = [self._forward(X[i:i + batch_size], False)
                     for i in range(0, X.shape[0], batch_size)]
        return np.concatenate(parts)

    def predict_proba(self, X, batch_size=None):
        """Class probabilities (n, n_classes) for a classifier.

        Outputs of a softmax (sigmoid) last layer are returned as they are; raw outputs
        (logits) are passed through softmax, or sigmoid for a single binary output. A single
        binary column becomes two columns ``[1 - p, p]``.
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

        return softmax(out)

    def is_classifier(self):
        if self.task is not None:
            return self.task != "regression"
        return self.output_activation.name in ("softmax", "sigmoid")

    def predict(self, X, batch_size=None):
        """Class labels (int64) for a classifier, output values for a regressor.

        Rows go through the network ``batch_size`` at a time (default :data:`PREDICT_BATCH`);
        the result does not depend on it."""
        if not self.is_classifier():
            return self._predict_batches(X, batch_size)
        out = self._predict_batches(X, batch_size)
        if out.shape[1] == 1:
            act = self.output_activation.name
            threshold = 0.5 if act == "sigmoid" else 0.0
            return (out[:, 0] > threshold).astype(np.int64)
        return np.argmax(out, axis=1).astype(np.int64)

    # -- weights ----------------------------------------------------------------------------
    def get_weights(self):
        """Copies of every parameter in order ``[W0, b0, W1, b1, ...]`` (W: (n_in, n_out))."""
        return [p.copy() for layer in self.layers for p in layer.params]

    def set_weights(self, weights):
        """Set parameters from a list in :meth:`get_weights` order; shapes must match."""
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

    def get_buffers(self):
        """Copies of the non-trained state (BatchNorm running statistics), in layer order."""
        return [getattr(layer, n).copy() for layer in self.layers for n in layer.buffer_names]

    def set_buffers(self, buffers):
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
    def summary(self, print_fn=print):
        """Print (and return) a table of layers, output widths and parameter counts."""
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

    def __repr__(self):
        inner = ",\n  ".join(repr(l) for l in self.layers)
        return f"Sequential([\n  {inner}\n], dtype={self.dtype})"

    def save(self, path):
        """Write the model to one ``.npz`` file atomically (see :func:`fusenn.io.save`)."""
        _archive.write_model(self, path)
