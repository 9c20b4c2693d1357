"""Keras's losses (``keras.losses``) for MLPs, trained through fusenn's fused losses.

===============================  =================================================  ===============
Keras name (class)               per sample (``z``: outputs, ``t``: targets)        fusenn path
===============================  =================================================  ===============
binary_crossentropy              mean_k softplus(z) - t z  (z logits)               fused, compiled
categorical_crossentropy         logsumexp(z) - sum_k t z                           fused, compiled
sparse_categorical_crossentropy  logsumexp(z) - z[y]                                fused, compiled
mse (mean_squared_error)         mean_k (z - t)^2                                   compiled
mae (mean_absolute_error)        mean_k abs(z - t)                                  per-batch
huber (Huber(delta=1.0))         mean_k e^2/2 if abs(e) <= d else d (abs(e) - d/2)  per-batch
===============================  =================================================  ===============

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

from typing import Any, Callable, Optional, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import losses as _core
from ..errors import ArgumentError, ShapeError
from ._common import missing_attribute, unsupported

_EPS = 1e-7  # Keras's clipping of probabilities when a loss is called on them directly


class Loss:
    """Base of the face's losses.

    Parameters
    ----------
    reduction : str, default="sum_over_batch_size"
        Only Keras's default ``"sum_over_batch_size"`` (or ``"auto"``, the same).
    name : str, optional
        The loss's name (Keras's snake-case name by default).
    dtype : str, optional
        Accepted for Keras's signature; the model's dtype is used.

    Raises
    ------
    UnsupportedFeatureError
        For another reduction.
    """

    keras_name = "loss"
    core_name: Optional[str] = None  # the fusenn loss it trains through, when compiled

    def __init__(self, reduction: str = "sum_over_batch_size", name: Optional[str] = None,
                 dtype: Optional[str] = None) -> None:
        if reduction not in ("sum_over_batch_size", "auto"):
            raise unsupported(f"the loss reduction {reduction!r}")
        self.name = name or self.keras_name

    # per-sample values and gradients with respect to the outputs the trainer feeds the loss
    def per_sample(self, out: NDArray[Any], t: NDArray[Any]
                   ) -> tuple[NDArray[Any], NDArray[Any]]:  # pragma: no cover - abstract
        """Per-sample losses and their gradient with respect to the outputs.

        Parameters
        ----------
        out : ndarray of shape (n, k)
            The outputs the loss is computed from (logits for the cross-entropies).
        t : ndarray
            The targets, as the base loss prepares them (class indices or rows of shape
            (n, k)).

        Returns
        -------
        loss : ndarray of shape (n,)
            The loss of each sample.
        grad : ndarray of shape (n, k)
            ``d loss_i / d out_i``.
        """
        raise NotImplementedError

    def base(self) -> _core.Loss:
        """The fusenn loss whose targets, task and fused activation this loss shares.

        Returns
        -------
        fusenn.losses.Loss
            fusenn's loss of the same family (``mse`` for the regression losses).
        """
        return _core.get(self.core_name or "mse")

    def to_core(self, weighted: bool = False, penalty: Any = None) -> _core.Loss:
        """The fusenn Loss that trains this one.

        Parameters
        ----------
        weighted : bool, default=False
            Whether the targets carry sample weights (see :meth:`WeightedLoss.encode`).
        penalty : object or None, default=None
            The model's regularisation penalty (with a ``value()`` method), added to the loss.

        Returns
        -------
        fusenn.losses.Loss
            fusenn's own (compiled) loss when there is one and there are no sample weights and
            no penalty, else a :class:`WeightedLoss`.
        """
        if self.core_name is not None and not weighted and penalty is None:
            return _core.get(self.core_name)
        return WeightedLoss(self, weighted, penalty)

    def _outputs_from_predictions(self, y_pred: NDArray[Any]) -> NDArray[Any]:
        return y_pred

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike,
                 sample_weight: Optional[ArrayLike] = None) -> float:
        """The mean loss of predictions ``y_pred`` for targets ``y_true`` (Keras's call).

        Parameters
        ----------
        y_true : array_like
            Targets: class labels, one-hot rows or values, as the loss takes them.
        y_pred : array_like of shape (n,) or (n, k)
            Predictions: probabilities, or logits with ``from_logits=True``.
        sample_weight : array_like of shape (n,), optional
            Weights of the samples.

        Returns
        -------
        float
            ``sum_i w_i loss_i / n``.
        """
        y_pred = np.asarray(y_pred, dtype=np.float64)
        if y_pred.ndim == 1:
            y_pred = y_pred[:, None]
        base = self.base()
        t = base.prepare_targets(y_true, y_pred.shape[0], y_pred.shape[1], np.float64)
        l, _ = self.per_sample(self._outputs_from_predictions(y_pred), t)
        w = np.ones_like(l) if sample_weight is None else np.asarray(sample_weight, float)
        return float(np.sum(w * l) / l.shape[0])

    def get_config(self) -> dict[str, Any]:
        """Keras's config: the arguments that rebuild the loss.

        Returns
        -------
        dict
            ``{"name": ...}`` and the loss's own arguments.
        """
        return {"name": self.name}

    def keras_config(self) -> dict[str, Any]:
        """The loss as Keras serialises it, for saving.

        Returns
        -------
        dict
            ``{"class_name": ..., "config": get_config()}``, what :func:`get` takes back.
        """
        return {"class_name": type(self).__name__, "config": self.get_config()}


class _FromLogits(Loss):
    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if label_smoothing:
            raise unsupported(f"{type(self).__name__}(label_smoothing=...)")
        if axis not in (-1, 1):
            raise unsupported(f"{type(self).__name__}(axis={axis!r})")
        self.from_logits = bool(from_logits)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits}


class BinaryCrossentropy(_FromLogits):
    """Binary cross-entropy, one sigmoid output per label.

    Parameters
    ----------
    from_logits : bool, default=False
        Whether predictions given to a direct call are logits rather than probabilities.
    label_smoothing : float, default=0.0
        Only 0 (smoothing raises :class:`fusenn.errors.UnsupportedFeatureError`).
    axis : int, default=-1
        Only the last axis.
    **kwargs
        ``reduction``, ``name``, ``dtype``, as :class:`Loss`.

    Examples
    --------
    >>> round(BinaryCrossentropy(from_logits=True)([[1.0]], [[0.0]]), 6)
    0.693147
    """

    keras_name = "binary_crossentropy"
    core_name = "binary_cross_entropy"

    def per_sample(self, z: NDArray[Any], t: NDArray[Any]
                   ) -> tuple[NDArray[Any], NDArray[Any]]:
        k = z.shape[1]
        l = np.mean(np.logaddexp(0.0, z) - t * z, axis=1)
        return l, (np.exp(-np.logaddexp(0.0, -z)) - t) / k  # sigmoid(z), stable

    def _outputs_from_predictions(self, p: NDArray[Any]) -> NDArray[Any]:
        if self.from_logits:
            return p
        p = np.clip(p, _EPS, 1 - _EPS)
        logits: NDArray[Any] = np.log(p) - np.log1p(-p)
        return logits


class CategoricalCrossentropy(_FromLogits):
    """Cross-entropy against one-hot (or soft) target rows.

    Parameters
    ----------
    from_logits : bool, default=False
        Whether predictions given to a direct call are logits rather than probabilities.
    label_smoothing : float, default=0.0
        Only 0 (smoothing raises :class:`fusenn.errors.UnsupportedFeatureError`).
    axis : int, default=-1
        Only the last axis.
    **kwargs
        ``reduction``, ``name``, ``dtype``, as :class:`Loss`.
    """

    keras_name = "categorical_crossentropy"
    core_name = "cross_entropy"

    def per_sample(self, z: NDArray[Any], t: NDArray[Any]
                   ) -> tuple[NDArray[Any], NDArray[Any]]:
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

    def _outputs_from_predictions(self, p: NDArray[Any]) -> NDArray[Any]:
        if self.from_logits:
            return p
        p = np.clip(p, _EPS, 1.0)
        logits: NDArray[Any] = np.log(p / p.sum(axis=1, keepdims=True))
        return logits


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Cross-entropy against integer class labels.

    Parameters
    ----------
    from_logits : bool, default=False
        Whether predictions given to a direct call are logits rather than probabilities.
    ignore_class : None
        Only None.
    **kwargs
        ``reduction``, ``name``, ``dtype``, as :class:`Loss`.

    Examples
    --------
    >>> round(SparseCategoricalCrossentropy()([1], [[0.5, 0.5]]), 6)
    0.693147
    """

    keras_name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits: bool = False, ignore_class: Optional[int] = None,
                 **kwargs: Any) -> None:
        if ignore_class is not None:
            raise unsupported("SparseCategoricalCrossentropy(ignore_class=...)")
        super().__init__(from_logits=from_logits, **kwargs)


class MeanSquaredError(Loss):
    """Mean squared error.

    Parameters
    ----------
    reduction, name, dtype : str or None
        As :class:`Loss`.
    """

    keras_name = "mean_squared_error"
    core_name = "mse"

    def per_sample(self, z: NDArray[Any], t: NDArray[Any]
                   ) -> tuple[NDArray[Any], NDArray[Any]]:
        e = z - t
        return np.mean(e * e, axis=1), (2.0 / z.shape[1]) * e


class MeanAbsoluteError(Loss):
    """Mean absolute error (gradient ``sign(z - t) / k``, 0 at 0).

    Parameters
    ----------
    reduction, name, dtype : str or None
        As :class:`Loss`.
    """

    keras_name = "mean_absolute_error"

    def per_sample(self, z: NDArray[Any], t: NDArray[Any]
                   ) -> tuple[NDArray[Any], NDArray[Any]]:
        e = z - t
        return np.mean(np.abs(e), axis=1), np.sign(e) / z.shape[1]


class Huber(Loss):
    """Huber loss: quadratic for errors up to ``delta``, linear beyond.

    Parameters
    ----------
    delta : float > 0, default=1.0
        Where the loss turns from quadratic to linear.
    **kwargs
        ``reduction``, ``name``, ``dtype``, as :class:`Loss`.

    Raises
    ------
    fusenn.errors.ArgumentError
        For ``delta <= 0``.
    """

    keras_name = "huber_loss"

    def __init__(self, delta: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not delta > 0:
            raise ArgumentError(f"Huber delta must be > 0, got {delta!r}")
        self.delta = float(delta)

    def per_sample(self, z: NDArray[Any], t: NDArray[Any]
                   ) -> tuple[NDArray[Any], NDArray[Any]]:
        e = z - t
        a, d = np.abs(e), self.delta
        l = np.where(a <= d, 0.5 * e * e, d * (a - 0.5 * d))
        return np.mean(l, axis=1), np.clip(e, -d, d) / z.shape[1]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "delta": self.delta}


class WeightedLoss(_core.Loss):
    """A fusenn Loss made from a face loss: per-sample weights and regularisation penalties,
    computed in NumPy on the per-batch path.

    With ``weighted``, targets carry their sample weight as a last column (see
    :meth:`encode`), so that the weights travel with their rows when batches are shuffled.
    The value is ``sum_i w_i l_i / n + penalty`` and the gradient ``w_i dl_i/dz / n``.

    Parameters
    ----------
    loss : Loss
        The face loss.
    weighted : bool
        Whether the targets carry sample weights.
    penalty : object or None
        The regularisation penalty (``penalty.value()`` is added to the loss), or None.
    """

    code = None  # no compiled form: the per-batch path

    def __init__(self, loss: Loss, weighted: bool, penalty: Any) -> None:
        self.keras = loss
        self.weighted = bool(weighted)
        self.penalty = penalty
        base = loss.base()
        self._base = base
        self.name = loss.keras_name
        self.fused_activation = base.fused_activation
        self.task = base.task

    def encode(self, y: ArrayLike, weights: Optional[ArrayLike], n_samples: int,
               n_outputs: int, dtype: Any) -> NDArray[Any]:
        """Targets prepared as the base loss prepares them, with the weights as a last column.

        Parameters
        ----------
        y : array_like
            The targets.
        weights : array_like of shape (n_samples,) or None
            The sample weights (None: all 1).
        n_samples, n_outputs : int
            The number of samples and of the model's outputs.
        dtype : numpy dtype
            The model's dtype.

        Returns
        -------
        ndarray of shape (n_samples, n_targets + 1)
            The targets, then the weights, in ``dtype``.

        Raises
        ------
        fusenn.errors.ShapeError
            For weights of another shape.
        fusenn.errors.ArgumentError
            For negative or non-finite weights.
        """
        t = self._base.prepare_targets(y, n_samples, n_outputs, dtype)
        t = t[:, None] if t.ndim == 1 else t
        w = np.ones(n_samples) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (n_samples,):
            raise ShapeError(f"sample_weight must have shape ({n_samples},), got {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ArgumentError("sample weights must be finite and >= 0")
        return np.ascontiguousarray(np.column_stack([t, w]).astype(dtype))

    def prepare_targets(self, y: ArrayLike, n_samples: int, n_outputs: int,
                        dtype: Any) -> NDArray[Any]:
        """Targets as the loss takes them: the base loss's, or those :meth:`encode` made.

        Parameters
        ----------
        y : array_like
            The targets (encoded when the loss is weighted).
        n_samples, n_outputs : int
            The number of samples and of the model's outputs.
        dtype : numpy dtype
            The model's dtype.

        Returns
        -------
        ndarray
            The prepared targets.

        Raises
        ------
        fusenn.errors.ShapeError
            For weighted targets that :meth:`encode` did not make.
        """
        if not self.weighted:
            return self._base.prepare_targets(y, n_samples, n_outputs, dtype)
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[0] != n_samples:
            raise ShapeError("weighted targets must be encoded by WeightedLoss.encode")
        return y

    def _split(self, y: NDArray[Any], n_out: int
               ) -> tuple[NDArray[Any], Optional[NDArray[Any]]]:
        if not self.weighted:
            return y, None
        t, w = y[:, :-1], y[:, -1]
        if t.shape[1] == 1 and self._base.code == _core.CrossEntropy.code and n_out > 1:
            t = t[:, 0].astype(np.int64)
        return t, w

    def kernel(self, be: Any, out: NDArray[Any], y: NDArray[Any],
               grad: Optional[NDArray[Any]]) -> float:
        """The loss of a batch and, into ``grad``, its gradient (fusenn's loss protocol).

        Parameters
        ----------
        be : module
            The backend (unused: the loss is computed in NumPy).
        out : ndarray of shape (n, k)
            The model's outputs (logits when the activation is fused).
        y : ndarray
            The prepared targets.
        grad : ndarray of shape (n, k) or None
            Receives ``w_i d loss_i / d out_i / n`` when given.

        Returns
        -------
        float
            ``sum_i w_i loss_i / n`` plus the penalty.
        """
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


__all__ = ["Loss", "BinaryCrossentropy", "CategoricalCrossentropy",
           "SparseCategoricalCrossentropy", "MeanSquaredError", "MeanAbsoluteError", "Huber",
           "WeightedLoss", "binary_crossentropy", "categorical_crossentropy",
           "sparse_categorical_crossentropy", "mean_squared_error", "mse",
           "mean_absolute_error", "mae", "huber", "get"]

_CLASSES: dict[str, type[Loss]] = {cls.__name__: cls for cls in (BinaryCrossentropy, CategoricalCrossentropy,
                                          SparseCategoricalCrossentropy, MeanSquaredError,
                                          MeanAbsoluteError, Huber)}
_NAMES: dict[str, type[Loss]] = {
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
}


def _function(key: str, cls: type[Loss]) -> Callable[..., NDArray[Any]]:
    def f(y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False) -> NDArray[Any]:
        loss: Loss = cls(from_logits=from_logits) if issubclass(cls, _FromLogits) else cls()
        y_pred = np.asarray(y_pred, dtype=np.float64)
        y_pred = y_pred[:, None] if y_pred.ndim == 1 else y_pred
        t = loss.base().prepare_targets(y_true, y_pred.shape[0], y_pred.shape[1], np.float64)
        return loss.per_sample(loss._outputs_from_predictions(y_pred), t)[0]

    f.__name__ = f.__qualname__ = key
    f.__doc__ = f"""Keras's ``losses.{key}(y_true, y_pred)``: the per-sample losses.

    Parameters
    ----------
    y_true : array_like
        Targets, as :class:`{cls.__name__}` takes them.
    y_pred : array_like of shape (n,) or (n, k)
        Predictions (probabilities unless ``from_logits``).
    from_logits : bool, default=False
        Whether ``y_pred`` holds logits (ignored by the regression losses).

    Returns
    -------
    ndarray of shape (n,)
        The loss of each sample.
    """
    f._keras_loss = cls  # type: ignore[attr-defined]
    return f


binary_crossentropy = _function("binary_crossentropy", BinaryCrossentropy)
categorical_crossentropy = _function("categorical_crossentropy", CategoricalCrossentropy)
sparse_categorical_crossentropy = _function("sparse_categorical_crossentropy",
                                            SparseCategoricalCrossentropy)
mean_squared_error = mse = _function("mean_squared_error", MeanSquaredError)
mean_absolute_error = mae = _function("mean_absolute_error", MeanAbsoluteError)
huber = _function("huber", Huber)


def get(identifier: Union[str, dict[str, Any], Callable[..., Any], Loss]) -> Loss:
    """A face loss from a Keras name, class name, config dict, loss function or Loss.

    Parameters
    ----------
    identifier : str, dict, callable or Loss
        ``"binary_crossentropy"``, ``"mse"``, ..., a class name (``"Huber"``), a config
        ``{"class_name": ..., "config": {...}}``, one of this module's functions, or a Loss
        (returned as it is).

    Returns
    -------
    Loss
        The loss (named as given, for the History's keys).

    Raises
    ------
    UnsupportedFeatureError
        For a loss outside the face (``"hinge"``, ``"kl_divergence"``, a custom function).

    Examples
    --------
    >>> get("mse").name
    'mse'
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        return _CLASSES[identifier["class_name"]](**identifier.get("config", {}))
    if callable(identifier) and hasattr(identifier, "_keras_loss"):
        loss_: Loss = identifier._keras_loss()
        return loss_
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
