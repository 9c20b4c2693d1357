"""Fused kernels as plain functions, on the selected backend.

These validate their arguments once (shape, dtype, finiteness), allocate the outputs, and call
the backend kernel. Inputs keep float32 or float64; other dtypes become float64; mixed float
inputs are converted to the dtype of the first array argument.

>>> import numpy as np, fusenn as fn
>>> np.round(fn.functional.softmax(np.array([2.0, 1.0, 0.1])), 3)
array([0.659, 0.242, 0.099])
"""
from __future__ import annotations

import functools
from typing import Any, Dict, Tuple

import numpy as np

from . import activations as _acts
from . import backends
from ._typing import Array, ArrayLike
from ._validation import FLOAT_DTYPES, as_float_array, check_finite, check_labels
from .errors import ShapeError


def _rows(z: ArrayLike, name: str = "z") -> Tuple[Array, Tuple[int, ...]]:
    """``z`` as a C-contiguous 2-D array plus the shape to give the result back."""
    z = as_float_array(z, name)
    if z.ndim == 0:
        raise ShapeError(f"{name} must have at least one dimension, got a scalar")
    if z.size == 0:
        raise ShapeError(f"{name} is empty (shape {z.shape})")
    check_finite(z, name)
    shape = z.shape
    z2 = np.ascontiguousarray(z.reshape(-1, shape[-1]) if z.ndim > 1 else z.reshape(1, -1))
    return z2, shape


def linear(x: ArrayLike, W: ArrayLike, b: ArrayLike | None = None, activation: Any = None,
           **params: Any) -> Array:
    """Fused dense forward ``act(x @ W + b)``.

    ``x``: (n, n_in); ``W``: (n_in, n_out); ``b``: (n_out,) or None; ``activation``: a name
    from :func:`fusenn.activations.names` (with ``params``) or an Activation. Returns (n, n_out)
    in ``x``'s dtype.

    NaN or infinity in ``x``, ``W`` or ``b`` is looked for in the pre-activation ``x @ W +
    b``, where any of them lands, by the kernel's own pass over it (the inputs are searched
    only to name the culprit), so that this call is not slower than the NumPy expression it
    replaces.

    Parameters
    ----------
    x : array_like of shape (n, n_in)
        The inputs; float32 and float64 keep their dtype.
    W : array_like of shape (n_in, n_out)
        The weights (converted to ``x``'s dtype).
    b : array_like of shape (n_out,) or None, default None
        The bias.
    activation : str, Activation or None, default None
        The activation (None: linear).
    **params
        The activation's parameters (``alpha=0.1``).

    Returns
    -------
    ndarray of shape (n, n_out)

    Raises
    ------
    ShapeError
        Shapes that do not chain.
    ValueError
        NaN or infinity in an input, or an unknown activation.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> fn.functional.linear(np.array([[1.0, -2.0]]), np.eye(2), np.zeros(2), "relu")
    array([[1., 0.]])
    """
    x = _matrix(x, "x")
    W = _matrix(W, "W", x.dtype)
    if W.shape[0] != x.shape[1]:
        raise ShapeError(f"W must have shape ({x.shape[1]}, n_out) to multiply x of shape "
                         f"{x.shape}, got {W.shape}")
    if b is not None:
        if not (type(b) is np.ndarray and b.dtype == x.dtype and b.flags.c_contiguous):
            b = np.ascontiguousarray(as_float_array(b, "b", x.dtype))
        if b.shape != (W.shape[1],):
            raise ShapeError(f"b must have shape ({W.shape[1]},), got {b.shape}")
    code, p0, p1 = _kernel_args(activation, params)
    shape, dtype = (x.shape[0], W.shape[1]), x.dtype
    z = np.empty(shape, dtype)
    a = z if code == _acts.LINEAR else np.empty(shape, dtype)
    if not backends.get().dense_forward(x, W, b, code, p0, p1, z, a):
        # a NaN or infinity somewhere in x, W or b reached z: name the input that holds it
        for arr, name in ((x, "x"), (W, "W"), (b, "b")):
            if arr is not None:
                check_finite(arr, name)
    return a


def _matrix(arr: ArrayLike, name: str, dtype: Any = None) -> Array:
    """``arr`` as a C-contiguous 2-D float array (itself when it is one already)."""
    if not (type(arr) is np.ndarray and arr.ndim == 2 and arr.flags.c_contiguous
            and (arr.dtype == dtype if dtype is not None else arr.dtype in FLOAT_DTYPES)):
        arr = np.ascontiguousarray(as_float_array(arr, name, dtype))
    if arr.ndim != 2:
        raise ShapeError(f"{name} must be 2-D, got shape {arr.shape}")
    return arr


def _kernel_args(activation: Any, params: Dict[str, Any]) -> Tuple[int, float, float]:
    """``(code, p0, p1)`` of an activation given by name (cached) or as an Activation."""
    if params or not (activation is None or isinstance(activation, str)):
        act = _acts.get(activation, **params)
        return act.code, act.p0, act.p1
    return _named_kernel_args(activation)


@functools.lru_cache(maxsize=None)
def _named_kernel_args(name: Any) -> Tuple[int, float, float]:
    act = _acts.get(name)
    return act.code, act.p0, act.p1


def softmax(z: ArrayLike) -> Array:
    """Softmax along the last axis, max-subtracted; same shape and dtype as ``z``.

    Parameters
    ----------
    z : array_like, at least 1-D
        The logits.

    Returns
    -------
    ndarray
        ``exp(z - max) / sum(exp(z - max))`` along the last axis.

    Raises
    ------
    ShapeError
        A scalar or an empty array.
    ValueError
        NaN or infinity in ``z``.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> fn.functional.softmax(np.array([[0.0, 0.0], [1000.0, 1000.0]]))
    array([[0.5, 0.5],
           [0.5, 0.5]])
    """
    z2, shape = _rows(z)
    out = np.empty_like(z2)
    backends.get().softmax(z2, out)
    return out.reshape(shape)


def log_softmax(z: ArrayLike) -> Array:
    """``z - logsumexp(z)`` along the last axis.

    Parameters
    ----------
    z : array_like, at least 1-D
        The logits.

    Returns
    -------
    ndarray
        Same shape and dtype as ``z``.

    Raises
    ------
    ShapeError
        A scalar or an empty array.
    ValueError
        NaN or infinity in ``z``.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> np.round(fn.functional.log_softmax(np.array([0.0, 0.0])), 4)
    array([-0.6931, -0.6931])
    """
    z2, shape = _rows(z)
    out = np.empty_like(z2)
    backends.get().log_softmax(z2, out)
    return out.reshape(shape)


def logsumexp(z: ArrayLike) -> Any:
    """``log(sum(exp(z)))`` along the last axis, computed as ``m + log(sum(exp(z - m)))``.

    Parameters
    ----------
    z : array_like, at least 1-D
        The values.

    Returns
    -------
    ndarray or scalar
        ``z``'s shape without its last axis (a scalar for 1-D ``z``).

    Raises
    ------
    ShapeError
        A scalar or an empty array.
    ValueError
        NaN or infinity in ``z``.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> float(fn.functional.logsumexp(np.array([1000.0, 1000.0])))
    1000.6931471805599
    """
    z2, shape = _rows(z)
    out = np.empty(z2.shape[0], dtype=z2.dtype)
    backends.get().logsumexp(z2, out)
    return out.reshape(shape[:-1]) if len(shape) > 1 else out[0]


def softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> Tuple[float, Array]:
    """Mean softmax cross-entropy from raw logits, and its gradient wrt the logits.

    ``logits``: (n, k). ``labels``: integer classes (n,) or target distributions (n, k), e.g.
    one-hot rows. Returns ``(loss, grad)`` where ``loss = mean_i(logsumexp(z_i) - z_i[y_i])``
    and ``grad = (softmax(z) - onehot(y)) / n`` is the gradient of that mean.

    Parameters
    ----------
    logits : array_like of shape (n, k)
        Raw outputs, before any softmax.
    labels : array_like of shape (n,) or (n, k)
        Integer classes in ``0..k-1``, or rows of target probabilities.

    Returns
    -------
    loss : float
        The mean cross-entropy.
    grad : ndarray of shape (n, k)
        Its gradient with respect to ``logits``.

    Raises
    ------
    ShapeError
        ``logits`` not 2-D or empty, or targets of another shape.
    ValueError
        NaN or infinity, or labels out of range.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> loss, grad = fn.functional.softmax_cross_entropy(np.zeros((2, 2)), [0, 1])
    >>> round(loss, 4), grad
    (0.6931, array([[-0.25,  0.25],
           [ 0.25, -0.25]]))
    """
    z = as_float_array(logits, "logits")
    if z.ndim != 2:
        raise ShapeError(f"logits must be 2-D (n_samples, n_classes), got shape {z.shape}")
    if z.size == 0:
        raise ShapeError(f"logits is empty (shape {z.shape})")
    check_finite(z, "logits")
    z = np.ascontiguousarray(z)
    grad = np.empty_like(z)
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] > 1 or (y.ndim == 2 and z.shape[1] == 1):
        t = as_float_array(y, "labels", z.dtype)
        if t.shape != z.shape:
            raise ShapeError(f"target distributions must have the logits' shape {z.shape}, "
                             f"got {t.shape}")
        check_finite(t, "labels")
        loss = backends.get().softmax_xent_probs(z, np.ascontiguousarray(t), grad)
    else:
        y = check_labels(y, z.shape[0], z.shape[1], "labels")
        loss = backends.get().softmax_xent(z, y, grad)
    return loss, grad


def binary_cross_entropy_with_logits(logits: ArrayLike,
                                     targets: ArrayLike) -> Tuple[float, Array]:
    """Mean of ``softplus(z) - t z`` over all elements, and its gradient wrt the logits.

    Parameters
    ----------
    logits : array_like of shape (n,) or (n, k)
        Raw outputs, before the sigmoid.
    targets : array_like of the same shape
        Targets in [0, 1].

    Returns
    -------
    loss : float
        The mean binary cross-entropy.
    grad : ndarray of shape (n, k)
        Its gradient with respect to ``logits`` (a 1-D input gives one column).

    Raises
    ------
    ShapeError
        Shapes that differ, or an empty input.
    ValueError
        NaN or infinity.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> loss, grad = fn.functional.binary_cross_entropy_with_logits([0.0], [1.0])
    >>> round(loss, 4), grad
    (0.6931, array([[-0.5]]))
    """
    z, t = _pair(logits, targets)
    grad = np.empty_like(z)
    return backends.get().sigmoid_bce(z, t, grad), grad


def mse(pred: ArrayLike, targets: ArrayLike, half: bool = False) -> Tuple[float, Array]:
    """Mean squared error (``half=True``: the notes' ``1/(2n) sum (t - y)^2``) and gradient.

    Parameters
    ----------
    pred : array_like of shape (n,) or (n, k)
        Predictions.
    targets : array_like of the same shape
        Targets.
    half : bool, default False
        The notes' half sum of squares over the samples instead of the mean over elements.

    Returns
    -------
    loss : float
    grad : ndarray of shape (n, k)
        The gradient with respect to ``pred``.

    Raises
    ------
    ShapeError
        Shapes that differ, or an empty input.
    ValueError
        NaN or infinity.

    Examples
    --------
    >>> import fusenn as fn
    >>> loss, grad = fn.functional.mse([1.0, 3.0], [0.0, 3.0])
    >>> loss, grad.ravel()
    (0.5, array([1., 0.]))
    """
    y, t = _pair(pred, targets, "pred")
    grad = np.empty_like(y)
    return backends.get().mse(y, t, grad, bool(half)), grad


def _pair(a: ArrayLike, t: ArrayLike, name: str = "logits") -> Tuple[Array, Array]:
    a = as_float_array(a, name)
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    if a.ndim != 2 or a.size == 0:
        raise ShapeError(f"{name} must be a non-empty 1-D or 2-D array, got shape {a.shape}")
    t = as_float_array(t, "targets", a.dtype)
    if t.ndim == 1:
        t = t.reshape(-1, 1)
    if t.shape != a.shape:
        raise ShapeError(f"targets must have the shape of {name} {a.shape}, got {t.shape}")
    check_finite(a, name)
    check_finite(t, "targets")
    return np.ascontiguousarray(a), np.ascontiguousarray(t)
