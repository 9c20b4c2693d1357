"""Keras's losses (``keras.losses``) for MLPs, trained through fusenn's fused losses.

================================  ==========================================  =============
Keras name (class)                per sample (``z``: outputs, ``t``: targets)   fusenn path
================================  ==========================================  =============
binary_crossentropy               mean_k softplus(z) - t z  (z logits)        fused, compiled
categorical_crossentropy          logsumexp(z) - sum_k t z                    fused, compiled
sparse_categorical_crossentropy   logsumexp(z) - z[y]                         fused, compiled
mse (mean_squared_error)          mean_k (z - t)^2                            compiled
mae (mean_absolute_error)         mean_k |z - t|                              per-batch
huber (Huber(delta=1.0))          mean_k 0.5 e^2 if |e| <= d else d(|e|-d/2)  per-batch
================================  ==========================================  =============

The batch's loss is the mean of the per-sample losses, each times its sample weight when
``fit`` gets ``sample_weight`` or ``class_weight`` (Keras's ``"sum_over_batch_size"``). As in
fusenn, a model whose last activation is the loss's own (softmax with a cross-entropy, sigmoid
with the binary one) is trained from its logits, which is what Keras's ``from_logits=False``
computes, without clipping; ``from_logits=True`` with a linear last layer is the same loss.

Called directly, a loss takes ``(y_true, y_pred)`` as Keras's do (``y_pred`` probabilities
unless ``from_logits``) and returns the mean:

>>> import numpy as np
>>> round(BinaryCrossentropy()(np.array([[1.0]]), np.array([[0.5]])), 6)
0.693147
>>> MeanAbsoluteError()(np.array([[1.0], [2.0]]), np.array([[0.0], [0.0]]))
1.5
"""
from __future__ import annotations

import numpy as np

from .. import losses as _core
from ..errors import ArgumentError, ShapeError
from ._common import missing_attribute, unsupported

_EPS = 1e-7  # Keras's clipping of probabilities when a loss is called on them directly


class Loss:
    """Base of the face's losses.

    Parameters
    ----------
    name : str, optional
        The loss's name (Keras's snake-case name by default).
    reduction : str
        Only Keras's default ``"sum_over_batch_size"``.
    """

    keras_name = "loss"
    core_name = None  # the fusenn loss it trains through, when it has a compiled form

    def __init__(self, reduction="sum_over_batch_size", name=None, dtype=None):
        if reduction not in ("sum_over_batch_size", "auto"):
            raise unsupported(f"the loss reduction {reduction!r}")
        self.name = name or self.keras_name

    # per-sample values and gradients with respect to the outputs the trainer feeds the loss
    def per_sample(self, out, t):  # pragma: no cover - abstract
        raise NotImplementedError

    def base(self):
        """The fusenn loss whose targets, task and fused activation this loss shares."""
        return _core.get(self.core_name or "mse")

    def to_core(self, weighted=False, penalty=None):
        """The fusenn Loss that trains this one: fusenn's own (compiled) when it has one and
        there are no sample weights and no penalty, else a :class:`WeightedLoss`."""
        if self.core_name is not None and not weighted and penalty is None:
            return _core.get(self.core_name)
        return WeightedLoss(self, weighted, penalty)

    def _outputs_from_predictions(self, y_pred):
        return y_pred

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The mean loss of predictions ``y_pred`` for targets ``y_true`` (Keras's call)."""
        y_pred = np.asarray(y_pred, dtype=np.float64)
        if y_pred.ndim == 1:
            y_pred = y_pred[:, None]
        base = self.base()
        t = base.prepare_targets(y_true, y_pred.shape[0], y_pred.shape[1], np.float64)
        l, _ = self.per_sample(self._outputs_from_predictions(y_pred), t)
        w = np.ones_like(l) if sample_weight is None else np.asarray(sample_weight, float)
        return float(np.sum(w * l) / l.shape[0])

    def get_config(self):
        return {"name": self.name}

    def keras_config(self):
        return {"class_name": type(self).__name__, "config": self.get_config()}


class _FromLogits(Loss):
    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if label_smoothing:
            raise unsupported(f"{type(self).__name__}(label_smoothing=...)")
        if axis not in (-1, 1):
            raise unsupported(f"{type(self).__name__}(axis={axis!r})")
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


class BinaryCrossentropy(_FromLogits):
    """Binary cross-entropy, one sigmoid output per label."""

    keras_name = "binary_crossentropy"
    core_name = "binary_cross_entropy"

    def per_sample(self, z, t):
        k = z.shape[1]
        l = np.mean(np.logaddexp(0.0, z) - t * z, axis=1)
        return l, (np.exp(-np.logaddexp(0.0, -z)) - t) / k  # sigmoid(z), stable

    def _outputs_from_predictions(self, p):
        if self.from_logits:
            return p
        p = np.clip(p, _EPS, 1 - _EPS)
        return np.log(p) - np.log1p(-p)


class CategoricalCrossentropy(_FromLogits):
    """Cross-entropy against one-hot (or soft) target rows."""

    keras_name = "categorical_crossentropy"
    core_name = "cross_entropy"

    def per_sample(self, z, t):
        m = z.max(axis=1, keepdims=True)
        e = np.exp(z - m)
        s = e.sum(axis=1, keepdims=True)
        lse = (m + np.log(s))[:, 0]
        p = e / s
        rows = np.arange(z.shape[0])
        if t.ndim == 1:
            labels = t.astype(np.int64)
            l = lse - z[rows, labels]
            p[rows, labels] -= 1
            return l, p
        st = t.sum(axis=1)
        return st * lse - np.sum(t * z, axis=1), p * st[:, None] - t

    def _outputs_from_predictions(self, p):
        if self.from_logits:
            return p
        p = np.clip(p, _EPS, 1.0)
        return np.log(p / p.sum(axis=1, keepdims=True))


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Cross-entropy against integer class labels."""

    keras_name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False, ignore_class=None, **kwargs):
        if ignore_class is not None:
            raise unsupported("SparseCategoricalCrossentropy(ignore_class=...)")
        super().__init__(from_logits=from_logits, **kwargs)


class MeanSquaredError(Loss):
    """Mean squared error."""

    keras_name = "mean_squared_error"
    core_name = "mse"

    def per_sample(self, z, t):
        e = z - t
        return np.mean(e * e, axis=1), (2.0 / z.shape[1]) * e


class MeanAbsoluteError(Loss):
    """Mean absolute error (gradient ``sign(z - t) / k``, 0 at 0)."""

    keras_name = "mean_absolute_error"

    def per_sample(self, z, t):
        e = z - t
        return np.mean(np.abs(e), axis=1), np.sign(e) / z.shape[1]


class Huber(Loss):
    """Huber loss: quadratic for errors up to ``delta``, linear beyond."""

    keras_name = "huber_loss"

    def __init__(self, delta=1.0, **kwargs):
        super().__init__(**kwargs)
        if not delta > 0:
            raise ArgumentError(f"Huber delta must be > 0, got {delta!r}")
        self.delta = float(delta)

    def per_sample(self, z, t):
        e = z - t
        a, d = np.abs(e), self.delta
        l = np.where(a <= d, 0.5 * e * e, d * (a - 0.5 * d))
        return np.mean(l, axis=1), np.clip(e, -d, d) / z.shape[1]

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


class WeightedLoss(_core.Loss):
    """A fusenn Loss made from a face loss: per-sample weights and regularisation penalties,
    computed in NumPy on the per-batch path.

    With ``weighted``, targets carry their sample weight as a last column (see
    :meth:`encode`), so that the weights travel with their rows when batches are shuffled.
    The value is ``sum_i w_i l_i / n + penalty`` and the gradient ``w_i dl_i/dz / n``.
    """

    code = None  # no compiled form: the per-batch path

    def __init__(self, loss, weighted, penalty):
        self.keras = loss
        self.weighted = bool(weighted)
        self.penalty = penalty
        base = loss.base()
        self._base = base
        self.name = loss.keras_name
        self.fused_activation = base.fused_activation
        self.task = base.task

    def encode(self, y, weights, n_samples, n_outputs, dtype):
        """Targets prepared as the base loss prepares them, with the weights as a last
        column (float, in the model's dtype)."""
        t = self._base.prepare_targets(y, n_samples, n_outputs, dtype)
        t = t[:, None] if t.ndim == 1 else t
        w = np.ones(n_samples) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (n_samples,):
            raise ShapeError(f"sample_weight must have shape ({n_samples},), got {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ArgumentError("sample weights must be finite and >= 0")
        return np.ascontiguousarray(np.column_stack([t, w]).astype(dtype))

    def prepare_targets(self, y, n_samples, n_outputs, dtype):
        if not self.weighted:
            return self._base.prepare_targets(y, n_samples, n_outputs, dtype)
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[0] != n_samples:
            raise ShapeError("weighted targets must be encoded by WeightedLoss.encode")
        return y

    def _split(self, y, n_out):
        if not self.weighted:
            return y, None
        t, w = y[:, :-1], y[:, -1]
        if t.shape[1] == 1 and self._base.code == _core.CrossEntropy.code and n_out > 1:
            t = t[:, 0].astype(np.int64)
        return t, w

    def kernel(self, be, out, y, grad):
        t, w = self._split(y, out.shape[1])
        l, g = self.keras.per_sample(out, t)
        n = out.shape[0]
        scale = np.full(n, 1.0 / n) if w is None else w / n
        value = float(np.dot(scale, l))
        if grad is not None:
            np.multiply(g, scale[:, None], out=grad, casting="unsafe")
        if self.penalty is not None:
            value += self.penalty.value()
        return value


_CLASSES = {cls.__name__: cls for cls in (BinaryCrossentropy, CategoricalCrossentropy,
                                          SparseCategoricalCrossentropy, MeanSquaredError,
                                          MeanAbsoluteError, Huber)}
_NAMES = {
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
}


def _function(key, cls):
    def f(y_true, y_pred, from_logits=False):
        loss = cls(from_logits=from_logits) if issubclass(cls, _FromLogits) else cls()
        y_pred = np.asarray(y_pred, dtype=np.float64)
        y_pred = y_pred[:, None] if y_pred.ndim == 1 else y_pred
        t = loss.base().prepare_targets(y_true, y_pred.shape[0], y_pred.shape[1], np.float64)
        return loss.per_sample(loss._outputs_from_predictions(y_pred), t)[0]

    f.__name__ = f.__qualname__ = key
    f.__doc__ = f"Keras's ``losses.{key}(y_true, y_pred)``: the per-sample losses."
    f._keras_loss = cls
    return f


binary_crossentropy = _function("binary_crossentropy", BinaryCrossentropy)
categorical_crossentropy = _function("categorical_crossentropy", CategoricalCrossentropy)
sparse_categorical_crossentropy = _function("sparse_categorical_crossentropy",
                                            SparseCategoricalCrossentropy)
mean_squared_error = mse = _function("mean_squared_error", MeanSquaredError)
mean_absolute_error = mae = _function("mean_absolute_error", MeanAbsoluteError)
huber = _function("huber", Huber)


def get(identifier):
    """A face loss from a Keras name, class name, config dict, loss function or Loss.

    Raises
    ------
    UnsupportedFeatureError
        For a loss outside the face (``"hinge"``, ``"kl_divergence"``, a custom function).
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        return _CLASSES[identifier["class_name"]](**identifier.get("config", {}))
    if callable(identifier) and hasattr(identifier, "_keras_loss"):
        return identifier._keras_loss()
    if isinstance(identifier, str):
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        key = identifier.strip().lower()
        if key in _NAMES:
            loss = _NAMES[key]()
            loss.name = identifier
            return loss
    raise unsupported(f"the loss {identifier!r}",
                      f"valid names: {', '.join(sorted(_NAMES))}")


__all__ = ["Loss", *_CLASSES, "WeightedLoss", "get"]
__getattr__ = missing_attribute(__name__, tuple(_CLASSES) + tuple(_NAMES))
