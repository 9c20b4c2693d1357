"""Classification metrics: accuracy, precision, recall, F1 and the confusion matrix.

``y_true`` and ``y_pred`` are 1-D arrays of integer labels of the same length. For precision,
recall and F1, ``average`` is ``"binary"`` (the class ``pos_label``), ``"macro"`` (unweighted
mean over classes), ``"micro"`` (from global counts; equals accuracy for single-label data),
``"weighted"`` (mean weighted by each class's support) or None (one value per class). A class
with no predicted (or no true) samples scores 0 for precision (recall), as in scikit-learn.
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from ._typing import Array, ArrayLike
from .errors import ArgumentError, ShapeError

AVERAGES = ("binary", "macro", "micro", "weighted", None)


def _labels_pair(y_true: ArrayLike, y_pred: ArrayLike) -> Tuple[Array, Array]:
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.ndim != 1 or p.ndim != 1:
        raise ShapeError(f"y_true and y_pred must be 1-D, got shapes {t.shape} and {p.shape}")
    if t.shape != p.shape:
        raise ShapeError(f"y_true and y_pred have different lengths: {t.size} and {p.size}")
    if t.size == 0:
        raise ShapeError("y_true and y_pred are empty")
    return t, p


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of samples whose predicted label equals the true one.

    Parameters
    ----------
    y_true : array_like of shape (n,)
        The true labels.
    y_pred : array_like of shape (n,)
        The predicted labels.

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    ShapeError
        ``y_true`` and ``y_pred`` are not 1-D arrays of one length.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.metrics.accuracy([0, 1, 2, 2], [0, 1, 1, 2])
    0.75
    """
    t, p = _labels_pair(y_true, y_pred)
    return float(np.mean(t == p))


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike,
                     labels: ArrayLike | None = None) -> Array:
    """``C[i, j]`` = number of samples of true class ``labels[i]`` predicted as ``labels[j]``.

    ``labels`` defaults to the sorted union of the labels present.

    Parameters
    ----------
    y_true : array_like of shape (n,)
        The true labels.
    y_pred : array_like of shape (n,)
        The predicted labels.
    labels : array_like or None, default None
        The classes, in the order of the rows and columns.

    Returns
    -------
    ndarray of int64, shape (k, k)

    Raises
    ------
    ShapeError
        Labels of different lengths, or an empty ``labels``.
    ValueError
        ``labels`` repeats a class or misses one present in the data.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.metrics.confusion_matrix([0, 1, 1], [0, 1, 0])
    array([[1, 0],
           [1, 1]])
    """
    t, p = _labels_pair(y_true, y_pred)
    labels = np.union1d(t, p) if labels is None else np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ShapeError(f"labels must be a non-empty 1-D list, got shape {labels.shape}")
    values, counts = np.unique(labels, return_counts=True)
    if np.any(counts > 1):
        raise ArgumentError(f"labels must not repeat a label, got {labels.tolist()} "
                            f"({values[counts > 1].tolist()} more than once)")
    index = {v: i for i, v in enumerate(labels.tolist())}
    k = len(labels)
    try:
        ti = np.array([index[v] for v in t.tolist()], dtype=np.int64)
        pi = np.array([index[v] for v in p.tolist()], dtype=np.int64)
    except KeyError as exc:
        raise ArgumentError(f"label {exc.args[0]!r} is not in labels {labels.tolist()}") from None
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (ti, pi), 1)
    return cm


def _per_class(y_true: Array, y_pred: Array, labels: Array) -> Tuple[Array, Array, Array]:
    cm = confusion_matrix(y_true, y_pred, labels)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    actual = cm.sum(axis=1).astype(np.float64)
    return tp, predicted, actual


def _safe_div(a: Array, b: Array) -> Array:
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


def _score(kind: str, y_true: ArrayLike, y_pred: ArrayLike, average: str | None,
           pos_label: Any, labels: ArrayLike | None) -> Any:
    if average not in AVERAGES:
        raise ArgumentError(f"average must be one of {AVERAGES}, got {average!r}")
    t, p = _labels_pair(y_true, y_pred)
    labels = np.union1d(t, p) if labels is None else np.asarray(labels)
    tp, predicted, actual = _per_class(t, p, labels)

    def f(tp: Array, predicted: Array, actual: Array) -> Array:
        prec = _safe_div(tp, predicted)
        rec = _safe_div(tp, actual)
        if kind == "precision":
            return prec
        if kind == "recall":
            return rec
        return _safe_div(2 * prec * rec, prec + rec)

    if average == "binary":
        if len(labels) > 2:
            raise ArgumentError(f"average='binary' needs at most 2 classes, got {len(labels)}; "
                             f"choose macro, micro or weighted")
        if pos_label not in labels.tolist():
            return 0.0
        i = labels.tolist().index(pos_label)
        return float(f(tp, predicted, actual)[i])
    if average == "micro":
        return float(f(np.array([tp.sum()]), np.array([predicted.sum()]),
                       np.array([actual.sum()]))[0])
    per = f(tp, predicted, actual)
    if average is None:
        return per
    if average == "macro":
        return float(per.mean())
    return float(np.dot(per, actual) / actual.sum())


def precision(y_true: ArrayLike, y_pred: ArrayLike, average: str | None = "binary",
              pos_label: Any = 1, labels: ArrayLike | None = None) -> Any:
    """tp / (tp + fp): the fraction of predicted positives that are right.

    Parameters
    ----------
    y_true : array_like of shape (n,)
        The true labels.
    y_pred : array_like of shape (n,)
        The predicted labels.
    average : {"binary", "macro", "micro", "weighted"} or None, default "binary"
        How the per-class scores are combined (see the module's docstring); None returns
        one score per class.
    pos_label : label, default 1
        The positive class, for ``average="binary"`` (a score of 0 when absent).
    labels : array_like or None, default None
        The classes, in order (default: the sorted labels present).

    Returns
    -------
    float or ndarray
        The score, or one per class (in ``labels`` order) when ``average`` is None.

    Raises
    ------
    ShapeError
        ``y_true`` and ``y_pred`` are not 1-D arrays of one length.
    ValueError
        An unknown ``average``, or ``"binary"`` with more than two classes.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.metrics.precision([0, 1, 1, 0], [1, 1, 1, 0])
    0.6666666666666666
    """
    return _score("precision", y_true, y_pred, average, pos_label, labels)


def recall(y_true: ArrayLike, y_pred: ArrayLike, average: str | None = "binary",
           pos_label: Any = 1, labels: ArrayLike | None = None) -> Any:
    """tp / (tp + fn): the fraction of actual positives that are found.

    Parameters
    ----------
    y_true : array_like of shape (n,)
        The true labels.
    y_pred : array_like of shape (n,)
        The predicted labels.
    average : {"binary", "macro", "micro", "weighted"} or None, default "binary"
        How the per-class scores are combined (see the module's docstring); None returns
        one score per class.
    pos_label : label, default 1
        The positive class, for ``average="binary"`` (a score of 0 when absent).
    labels : array_like or None, default None
        The classes, in order (default: the sorted labels present).

    Returns
    -------
    float or ndarray
        The score, or one per class (in ``labels`` order) when ``average`` is None.

    Raises
    ------
    ShapeError
        ``y_true`` and ``y_pred`` are not 1-D arrays of one length.
    ValueError
        An unknown ``average``, or ``"binary"`` with more than two classes.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.metrics.recall([0, 1, 1, 2], [0, 1, 2, 2], average=None)
    array([1. , 0.5, 1. ])
    """
    return _score("recall", y_true, y_pred, average, pos_label, labels)


def f1_score(y_true: ArrayLike, y_pred: ArrayLike, average: str | None = "binary",
             pos_label: Any = 1, labels: ArrayLike | None = None) -> Any:
    """Harmonic mean of precision and recall, 2 p r / (p + r).

    Parameters
    ----------
    y_true : array_like of shape (n,)
        The true labels.
    y_pred : array_like of shape (n,)
        The predicted labels.
    average : {"binary", "macro", "micro", "weighted"} or None, default "binary"
        How the per-class scores are combined (see the module's docstring); None returns
        one score per class.
    pos_label : label, default 1
        The positive class, for ``average="binary"`` (a score of 0 when absent).
    labels : array_like or None, default None
        The classes, in order (default: the sorted labels present).

    Returns
    -------
    float or ndarray
        The score, or one per class (in ``labels`` order) when ``average`` is None.

    Raises
    ------
    ShapeError
        ``y_true`` and ``y_pred`` are not 1-D arrays of one length.
    ValueError
        An unknown ``average``, or ``"binary"`` with more than two classes.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.metrics.f1_score([0, 1, 1, 0], [0, 1, 0, 0])
    0.6666666666666666
    """
    return _score("f1", y_true, y_pred, average, pos_label, labels)


precision_score = precision
recall_score = recall
accuracy_score = accuracy


def classification_report(y_true: ArrayLike, y_pred: ArrayLike,
                          labels: ArrayLike | None = None) -> str:
    """Text table of precision, recall, F1 and support per class, with the averages.

    Parameters
    ----------
    y_true : array_like of shape (n,)
        The true labels.
    y_pred : array_like of shape (n,)
        The predicted labels.
    labels : array_like or None, default None
        The classes, in the order of the rows (default: the sorted labels present).

    Returns
    -------
    str
        One line per class, then the macro and weighted averages and the accuracy.

    Raises
    ------
    ShapeError
        ``y_true`` and ``y_pred`` are not 1-D arrays of one length.

    Examples
    --------
    >>> import fusenn as fn
    >>> print(fn.metrics.classification_report([0, 1, 1], [0, 1, 0]))
       class precision    recall        f1  support
           0    0.5000    1.0000    0.6667        1
           1    1.0000    0.5000    0.6667        2
       macro    0.7500    0.7500    0.6667        3
    weighted    0.8333    0.6667    0.6667        3
    accuracy                        0.6667        3
    """
    t, p = _labels_pair(y_true, y_pred)
    labels = np.union1d(t, p) if labels is None else np.asarray(labels)
    prec = precision(t, p, None, labels=labels)
    rec = recall(t, p, None, labels=labels)
    f1 = f1_score(t, p, None, labels=labels)
    support = confusion_matrix(t, p, labels).sum(axis=1)
    lines = [f"{'class':>8} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}"]
    for i, lab in enumerate(labels.tolist()):
        lines.append(f"{lab!s:>8} {prec[i]:9.4f} {rec[i]:9.4f} {f1[i]:9.4f} {support[i]:8d}")
    for avg in ("macro", "weighted"):
        lines.append(f"{avg:>8} {precision(t, p, avg, labels=labels):9.4f} "
                     f"{recall(t, p, avg, labels=labels):9.4f} "
                     f"{f1_score(t, p, avg, labels=labels):9.4f} {support.sum():8d}")
    lines.append(f"{'accuracy':>8} {accuracy(t, p):29.4f} {support.sum():8d}")
    return "\n".join(lines)
