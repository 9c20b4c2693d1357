"""Keras's metrics (``keras.metrics``) for MLPs, computed from the model's outputs.

``"accuracy"`` (or ``"acc"``) is resolved as Keras resolves it, from the shapes: one output
column is binary accuracy (threshold 0.5), integer labels against several outputs sparse
categorical accuracy, one-hot rows categorical accuracy. The others: ``binary_accuracy``,
``categorical_accuracy``, ``sparse_categorical_accuracy``, ``mae``, ``mse``, ``AUC()`` (the
exact area under the ROC curve; Keras approximates it on 200 thresholds), ``Precision()`` and
``Recall()`` (threshold 0.5, over every output column).

``fit`` logs each metric on the training data at the end of the epoch, with the epoch's final
weights (Keras averages it over the epoch's batches as the weights change), and on the
validation data as ``val_<name>``.

>>> import numpy as np
>>> BinaryAccuracy()(np.array([1, 0, 1]), np.array([[0.9], [0.2], [0.4]]))
0.6666666666666666
"""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._common import missing_attribute, unsupported


def _column(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[NDArray[np.float64],
                                                            NDArray[np.float64]]:
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    if t.ndim == 1:
        t = t[:, None]
    return t, p


class Metric:
    """Base of the face's metrics: a name and ``__call__(y_true, y_pred) -> float``.

    Parameters
    ----------
    name : str, optional
        The metric's key in the logs (Keras's snake-case name by default).
    dtype : str, optional
        Accepted for Keras's signature; metrics are computed in float64.
    """

    keras_name = "metric"

    def __init__(self, name: Optional[str] = None, dtype: Optional[str] = None) -> None:
        self.name = name or self.keras_name

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike) -> float:  # pragma: no cover
        """The metric of predictions ``y_pred`` against targets ``y_true``.

        Parameters
        ----------
        y_true : array_like of shape (n,) or (n, k)
            Targets: labels, one-hot rows or values.
        y_pred : array_like of shape (n,) or (n, k)
            The model's outputs (probabilities for the classification metrics).

        Returns
        -------
        float
            The metric over all samples.
        """
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Keras's config: the arguments that rebuild the metric.

        Returns
        -------
        dict
            ``{"name": ...}`` and the metric's own arguments.
        """
        return {"name": self.name}

    def keras_config(self) -> Union[str, dict[str, Any]]:
        """The metric as Keras serialises it, for saving.

        Returns
        -------
        dict or str
            ``{"class_name": ..., "config": get_config()}``, what :func:`get` takes back
            (``"accuracy"`` stays a name).
        """
        return {"class_name": type(self).__name__, "config": self.get_config()}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


class BinaryAccuracy(Metric):
    """Fraction of outputs on the right side of ``threshold`` (0.5).

    Parameters
    ----------
    name : str, optional
        The metric's key in the logs (Keras's snake-case name by default).
    dtype : str, optional
        Accepted for Keras's signature; metrics are computed in float64.
    threshold : float, default=0.5
        Outputs above it count as predicting 1.
    """

    keras_name = "binary_accuracy"

    def __init__(self, name: Optional[str] = None, dtype: Optional[str] = None,
                 threshold: float = 0.5) -> None:
        super().__init__(name, dtype)
        self.threshold = float(threshold)

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike) -> float:
        t, p = _column(y_true, y_pred)
        return float(np.mean((p > self.threshold) == (t > 0.5)))


class CategoricalAccuracy(Metric):
    """Fraction of rows whose largest output is the one-hot target's class.

    Parameters
    ----------
    name : str, optional
        The metric's key in the logs (Keras's snake-case name by default).
    dtype : str, optional
        Accepted for Keras's signature; metrics are computed in float64.
    """

    keras_name = "categorical_accuracy"

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike) -> float:
        t, p = _column(y_true, y_pred)
        return float(np.mean(np.argmax(p, axis=1) == np.argmax(t, axis=1)))


class SparseCategoricalAccuracy(Metric):
    """Fraction of rows whose largest output is the integer label.

    Parameters
    ----------
    name : str, optional
        The metric's key in the logs (Keras's snake-case name by default).
    dtype : str, optional
        Accepted for Keras's signature; metrics are computed in float64.
    """

    keras_name = "sparse_categorical_accuracy"

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike) -> float:
        t, p = _column(y_true, y_pred)
        return float(np.mean(np.argmax(p, axis=1) == t[:, 0].astype(np.int64)))


class MeanAbsoluteError(Metric):
    """Mean of ``|y_pred - y_true|``.

    Parameters
    ----------
    name : str, optional
        The metric's key in the logs (Keras's snake-case name by default).
    dtype : str, optional
        Accepted for Keras's signature; metrics are computed in float64.
    """

    keras_name = "mean_absolute_error"

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike) -> float:
        t, p = _column(y_true, y_pred)
        return float(np.mean(np.abs(p - t)))


class MeanSquaredError(Metric):
    """Mean of ``(y_pred - y_true) ** 2``.

    Parameters
    ----------
    name : str, optional
        The metric's key in the logs (Keras's snake-case name by default).
    dtype : str, optional
        Accepted for Keras's signature; metrics are computed in float64.
    """

    keras_name = "mean_squared_error"

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike) -> float:
        t, p = _column(y_true, y_pred)
        return float(np.mean((p - t) ** 2))


class AUC(Metric):
    """Area under the ROC curve over every output column (exact, ties counted half).

    Parameters
    ----------
    num_thresholds : int, default=200
        Accepted for Keras's signature; the area is exact.
    curve : {"ROC"}, default="ROC"
        Only the ROC curve.
    name : str, optional
        The metric's key in the logs (Keras's snake-case name by default).
    dtype : str, optional
        Accepted for Keras's signature; metrics are computed in float64.
    **kwargs
        Keras's other arguments; ``multi_label=True`` is refused.

    Raises
    ------
    UnsupportedFeatureError
        For ``curve="PR"`` or ``multi_label=True``.

    Examples
    --------
    >>> AUC()([0, 0, 1, 1], [[0.1], [0.4], [0.35], [0.8]])
    0.75
    """

    keras_name = "auc"

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC",
                 name: Optional[str] = None, dtype: Optional[str] = None,
                 **kwargs: Any) -> None:
        super().__init__(name, dtype)
        if curve != "ROC" or kwargs.get("multi_label"):
            raise unsupported(f"AUC(curve={curve!r}, multi_label=...)", "ROC over all outputs")

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike) -> float:
        from scipy.stats import rankdata

        t_col, p_col = _column(y_true, y_pred)
        t, p = (t_col > 0.5).ravel(), p_col.ravel()
        n_pos, n_neg = int(t.sum()), int((~t).sum())
        if n_pos == 0 or n_neg == 0:
            return 0.0
        ranks = rankdata(p)
        return float((ranks[t].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


class Precision(Metric):
    """True positives over predicted positives (outputs above 0.5); 0 when none.

    Parameters
    ----------
    thresholds : float, optional
        The threshold of a positive prediction (default 0.5).
    name : str, optional
        The metric's key in the logs (Keras's snake-case name by default).
    dtype : str, optional
        Accepted for Keras's signature; metrics are computed in float64.
    **kwargs
        Keras's other arguments; ``top_k`` and ``class_id`` are refused.

    Raises
    ------
    UnsupportedFeatureError
        For ``top_k`` or ``class_id``.
    """

    keras_name = "precision"

    def __init__(self, thresholds: Optional[float] = None, name: Optional[str] = None,
                 dtype: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(name, dtype)
        if kwargs.get("top_k") is not None or kwargs.get("class_id") is not None:
            raise unsupported(f"{type(self).__name__}(top_k=..., class_id=...)")
        self.threshold = 0.5 if thresholds is None else float(thresholds)

    def _counts(self, y_true: ArrayLike, y_pred: ArrayLike) -> tuple[int, int, int]:
        t, p = _column(y_true, y_pred)
        pred, true = p > self.threshold, t > 0.5
        return int(np.sum(pred & true)), int(np.sum(pred)), int(np.sum(true))

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike) -> float:
        tp, predicted, _ = self._counts(y_true, y_pred)
        return float(tp / predicted) if predicted else 0.0


class Recall(Precision):
    """True positives over actual positives (outputs above 0.5); 0 when none.

    Parameters
    ----------
    thresholds : float, optional
        The threshold of a positive prediction (default 0.5).
    name : str, optional
        The metric's key in the logs (Keras's snake-case name by default).
    dtype : str, optional
        Accepted for Keras's signature; metrics are computed in float64.
    **kwargs
        Keras's other arguments; ``top_k`` and ``class_id`` are refused.
    """

    keras_name = "recall"

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike) -> float:
        tp, _, actual = self._counts(y_true, y_pred)
        return float(tp / actual) if actual else 0.0


class _Accuracy(Metric):
    """``"accuracy"``: which accuracy is decided by the shapes of the first data seen."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.resolved: Optional[Metric] = None

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike) -> float:
        if self.resolved is None:
            self.resolved = resolve_accuracy(np.shape(y_true), np.shape(y_pred))
        return self.resolved(y_true, y_pred)

    def keras_config(self) -> Union[str, dict[str, Any]]:
        return self.name


def resolve_accuracy(true_shape: tuple[int, ...],
                     pred_shape: tuple[Optional[int], ...]) -> Metric:
    """Keras's choice of accuracy for ``metrics=["accuracy"]``, from the shapes.

    Parameters
    ----------
    true_shape, pred_shape : tuple of int
        The shapes of the targets and of the model's outputs (the batch axis of
        ``pred_shape`` may be None, as in Keras's ``(None, n_out)``).

    Returns
    -------
    Metric
        :class:`BinaryAccuracy` for one output column, :class:`SparseCategoricalAccuracy`
        for integer labels against several outputs, else :class:`CategoricalAccuracy`.

    Examples
    --------
    >>> resolve_accuracy((32,), (32, 10))
    <SparseCategoricalAccuracy name=sparse_categorical_accuracy>
    """
    width = pred_shape[-1] if len(pred_shape) > 1 else 1
    if width == 1:
        return BinaryAccuracy()
    if len(true_shape) == 1 or true_shape[-1] == 1:
        return SparseCategoricalAccuracy()
    return CategoricalAccuracy()


__all__ = ["Metric", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
           "MeanAbsoluteError", "MeanSquaredError", "AUC", "Precision", "Recall",
           "resolve_accuracy", "get"]

_CLASSES: dict[str, type[Metric]] = {cls.__name__: cls for cls in (BinaryAccuracy, CategoricalAccuracy,
                                          SparseCategoricalAccuracy, MeanAbsoluteError,
                                          MeanSquaredError, AUC, Precision, Recall)}
_NAMES: dict[str, type[Metric]] = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "auc": AUC, "precision": Precision, "recall": Recall,
}


def get(identifier: Union[str, dict[str, Any], Metric]) -> Metric:
    """A metric from a Keras name (kept as its log key), a class name, a config or a Metric.

    Parameters
    ----------
    identifier : str, dict or Metric
        ``"accuracy"``, ``"mae"``, ..., a class name (``"AUC"``), a config
        ``{"class_name": ..., "config": {...}}``, or a Metric (returned as it is).

    Returns
    -------
    Metric
        The metric, named as given (its key in the History).

    Raises
    ------
    UnsupportedFeatureError
        For a metric outside the face (``"top_k_categorical_accuracy"``, a custom function).

    Examples
    --------
    >>> get("mae").name
    'mae'
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        return _CLASSES[identifier["class_name"]](**identifier.get("config", {}))
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc"):
            return _Accuracy(identifier)
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        key = identifier.strip().lower()
        if key in _NAMES:
            return _NAMES[key](name=identifier)
    raise unsupported(f"the metric {identifier!r}",
                      f"valid names: accuracy, {', '.join(sorted(_NAMES))}")


__all__ = ["Metric", *_CLASSES, "get"]
__getattr__ = missing_attribute(__name__, tuple(_CLASSES) + ("accuracy",) + tuple(_NAMES))
