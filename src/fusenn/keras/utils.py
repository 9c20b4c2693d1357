"""Keras's utilities for MLP scripts (``keras.utils``): ``to_categorical`` and
``set_random_seed``.

>>> to_categorical([0, 2, 1]).tolist()
[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import ArgumentError
from ._common import missing_attribute, set_random_seed

__all__ = ["to_categorical", "set_random_seed"]


def to_categorical(x: ArrayLike, num_classes: Optional[int] = None) -> NDArray[np.float64]:
    """One-hot rows (float64, as Keras 3 gives them) for integer class labels.

    Parameters
    ----------
    x : array-like of int
        Labels 0..num_classes-1, of any shape (a trailing axis of 1 is dropped).
    num_classes : int, optional
        Default: the largest label plus one.

    Returns
    -------
    ndarray of float64, shape ``x.shape + (num_classes,)``
        One row per label, 1.0 in the label's column.

    Raises
    ------
    ValueError
        For non-integer or negative labels, or a label not below ``num_classes``.
    """
    arr = np.asarray(x)
    if arr.ndim > 1 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.size and (arr.dtype.kind not in "iub" and not np.all(arr == np.round(arr))):
        raise ArgumentError("to_categorical needs integer class labels")
    labels = arr.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ArgumentError(f"to_categorical needs labels >= 0, got {labels.min()}")
    k = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    if labels.size and labels.max() >= k:
        raise ArgumentError(f"label {labels.max()} is not below num_classes={k}")
    out = np.zeros(labels.shape + (k,))
    np.put_along_axis(out, labels[..., None], 1.0, axis=-1)
    return out


__getattr__ = missing_attribute(__name__, __all__)
