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

import numpy as np

from . import activations as _acts
from . import backends
from ._validation import FLOAT_DTYPES, all_finite, as_float_array, check_finite, check_labels
from .errors import ShapeError


def _rows(z, name="z"):
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


def linear(x, W, b=None, activation=None, **params):
    """Fused dense forward ``act(x @ W + b)``.

    ``x``: (n, n_in); ``W``: (n_in, n_out); ``b``: (n_out,) or None; ``activation``: a name
    from :func:`fusenn.activations.names` (with ``params``) or an Activation. Returns (n, n_out)
    in ``x``'s dtype.

    NaN or infinity in ``x``, ``W`` or ``b`` raises ArgumentError naming the array. The check
    costs one pass over the pre-activation ``x @ W + b`` (where any of them would land) instead
    of one over each input, so that this call is not slower than the NumPy expression it
    replaces.
    """
    x = _matrix(x, "x")
    W = _matrix(W, "W", x.dtype)
    if W.shape[0] != x.shape[1]:
        raise ShapeError(f"W must have shape ({x.shape[1]}, n_out) to multiply x of shape "
                         f"{x.shape}, got {W.shape}")
    if b is not None:
        b = as_float_array(b, "b", x.dtype)
        if b.shape != (W.shape[1],):
            raise ShapeError(f"b must have shape ({W.shape[1]},), got {b.shape}")
        b = np.ascontiguousarray(b)
    code, p0, p1 = _kernel_args(activation, params)
    z = np.empty((x.shape[0], W.shape[1]), dtype=x.dtype)
    a = z if code == _acts.LINEAR else np.empty_like(z)
    with np.errstate(invalid="ignore", over="ignore"):  # bad inputs are named below
        backends.get().dense_forward(x, W, b, code, p0, p1, z, a)
    if not all_finite(z):  # a NaN or infinity anywhere in x, W or b reaches z
        for arr, name in ((x, "x"), (W, "W"), (b, "b")):
            if arr is not None:
                check_finite(arr, name)
    return a


def _matrix(arr, name, dtype=None):
    """``arr`` as a C-contiguous 2-D float array (itself when it is one already)."""
    if not (type(arr) is np.ndarray and arr.ndim == 2 and arr.flags.c_contiguous
            and (arr.dtype == dtype if dtype is not None else arr.dtype in FLOAT_DTYPES)):
        arr = np.ascontiguousarray(as_float_array(arr, name, dtype))
    if arr.ndim != 2:
        raise ShapeError(f"{name} must be 2-D, got shape {arr.shape}")
    return arr


def _kernel_args(activation, params):
    """``(code, p0, p1)`` of an activation given by name (cached) or as an Activation."""
    if params or not (activation is None or isinstance(activation, str)):
        act = _acts.get(activation, **params)
        return act.code, act.p0, act.p1
    return _named_kernel_args(activation)


@functools.lru_cache(maxsize=None)
def _named_kernel_args(name):
    act = _acts.get(name)
    return act.code, act.p0, act.p1


def softmax(z):
    """Softmax along the last axis, max-subtracted; same shape and dtype as ``z``."""
    z2, shape = _rows(z)
    out = np.empty_like(z2)
    backends.get().softmax(z2, out)
    return out.reshape(shape)


def log_softmax(z):
    """``z - logsumexp(z)`` along the last axis."""
    z2, shape = _rows(z)
    out = np.empty_like(z2)
    backends.get().log_softmax(z2, out)
    return out.reshape(shape)


def logsumexp(z):
    """``log(sum(exp(z)))`` along the last axis, computed as ``m + log(sum(exp(z - m)))``."""
    z2, shape = _rows(z)
    out = np.empty(z2.shape[0], dtype=z2.dtype)
    backends.get().logsumexp(z2, out)
    return out.reshape(shape[:-1]) if len(shape) > 1 else out[0]


def softmax_cross_entropy(logits, labels):
    """Mean softmax cross-entropy from raw logits, and its gradient wrt the logits.

    ``logits``: (n, k). ``labels``: integer classes (n,) or target distributions (n, k), e.g.
    one-hot rows. Returns ``(loss, grad)`` where ``loss = mean_i(logsumexp(z_i) - z_i[y_i])``
    and ``grad = (softmax(z) - onehot(y)) / n`` is the gradient of that mean.
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


def binary_cross_entropy_with_logits(logits, targets):
    """Mean of ``softplus(z) - t z`` over all elements, and its gradient wrt the logits."""
    z, t = _pair(logits, targets)
    grad = np.empty_like(z)
    return backends.get().sigmoid_bce(z, t, grad), grad


def mse(pred, targets, half=False):
    """Mean squared error (``half=True``: the notes' ``1/(2n) sum (t - y)^2``) and gradient."""
    y, t = _pair(pred, targets, "pred")
    grad = np.empty_like(y)
    return backends.get().mse(y, t, grad, bool(half)), grad


def _pair(a, t, name="logits"):
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
