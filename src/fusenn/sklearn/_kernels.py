"""Numba kernels of the scikit-learn face: the output layer with its loss, and the updates.

Each kernel is one pass over its arrays, doing in one loop what scikit-learn's MLP does in
several NumPy expressions, with the same floating-point operations in the same order (so
that float64 runs agree with scikit-learn's to rounding):

``out_softmax(z, labels, w, eps, tiny, delta) -> float``
    softmax of each row of ``z`` as scikit-learn computes it (max-subtracted ``exp``, divided
    by the row sum); ``delta = (p - onehot(labels)) * w``; returns
    ``sum_i w_i * -log(clip(p_i,label_i, eps, 1 - eps))``.
``out_logistic(z, targets, w, eps, tiny, delta) -> float``
    ``p = 1 / (1 + exp(-z))`` elementwise (binary and multilabel outputs); ``delta = (p - t) w``;
    returns ``sum_i w_i sum_k -[t log(clip p) + (1 - t) log(1 - clip p)]``.
``out_identity(z, targets, w, tiny, delta) -> float``
    ``delta = (z - t) w``; returns ``sum_i w_i sum_k (t - z)^2``.
``out_exp(z, targets, w, tiny, delta) -> float``
    ``p = exp(z)`` (Poisson); ``delta = (p - t) w``; returns
    ``sum_i w_i sum_k (t log(t / p) - t + p)`` (``0 log 0 = 0``).

``w`` of length 0 means unweighted; ``eps`` is the dtype's machine epsilon (scikit-learn's
clipping of probabilities in the loss value; the gradient is not clipped), ``tiny`` its
smallest normal number: error terms below it are flushed to zero. The callers divide by the weight sum and the output count
as scikit-learn's losses do.

``sgd_step(p, g, vel, n_w, alpha, denom, lr, momentum, nesterov, tiny) -> float``
    scikit-learn's gradient scaling and SGD update over the flat vectors in its packing order
    (all weights first, ``n_w`` of them, then all biases)::

        g_i = (g_i + alpha p_i) / denom    (weights)      g_i = g_i / denom    (biases)

    (as a product with ``1 / denom``: exact when ``denom`` is a power of two, else within an
    ulp of scikit-learn's quotient; the division made the update loop twice as slow)
        vel = momentum vel - lr g;  p += momentum vel - lr g (Nesterov)  or  p += vel

``adam_step(p, g, m, v, n_w, alpha, denom, lr, beta1, beta2, eps, tiny) -> float``
    the same scaling, then ``m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    p += -lr m / (sqrt(v) + eps)`` with ``lr`` already bias-corrected by the caller.
``scale_grad(p, g, n_w, alpha, denom) -> float``
    the scaling alone (L-BFGS's gradient).

Each of the last three returns ``sum p_i^2`` over the weights *before* the update: the L2
term of the mini-batch's loss, taken in the same pass (0 when ``alpha`` is 0, as the term
is). ``tiny`` is the smallest normal number of the dtype: moments below it are flushed to zero.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@njit(inline="always", **_JIT)
def _flush(x, tiny):
    # Subnormal numbers are flushed to zero: on x86 an operation on one can cost ~100 cycles,
    # and training can make them - a confident softmax puts exp(-90) ~ 1e-39 (subnormal in
    # float32) into its error term, which the backward products would then carry; a momentum
    # decaying on a weight whose gradient has become zero turns subnormal after ~800 float32
    # steps. A subnormal error term or step changes no normal weight, so the numbers stay
    # scikit-learn's. (A safeguard: the MNIST benchmark did not show such a slowdown.)
    return 0.0 if abs(x) < tiny else x


@njit(**_JIT)
def out_softmax(z, labels, w, eps, tiny, delta):
    n, k = z.shape
    weighted = w.shape[0] > 0
    total = 0.0
    for i in range(n):
        m = z[i, 0]
        for j in range(1, k):
            if z[i, j] > m or z[i, j] != z[i, j]:
                m = z[i, j]
        s = 0.0
        for j in range(k):
            e = math.exp(z[i, j] - m)
            delta[i, j] = e
            s += e
        for j in range(k):
            delta[i, j] = delta[i, j] / s
        c = labels[i]
        p = min(max(delta[i, c], eps), 1 - eps)
        loss = -math.log(p)
        delta[i, c] -= 1
        for j in range(k):
            delta[i, j] = _flush(delta[i, j] * w[i] if weighted else delta[i, j], tiny)
        total += loss * w[i] if weighted else loss
    return total


@njit(**_JIT)
def out_logistic(z, targets, w, eps, tiny, delta):
    n, k = z.shape
    weighted = w.shape[0] > 0
    total = 0.0
    for i in range(n):
        row = 0.0
        for j in range(k):
            p = 1 / (1 + math.exp(-z[i, j]))
            t = targets[i, j]
            q = min(max(p, eps), 1 - eps)
            row -= t * math.log(q) + (1 - t) * math.log(1 - q) if 0 < t < 1 else (
                math.log(q) if t == 1 else math.log(1 - q))
            d = p - t
            delta[i, j] = _flush(d * w[i] if weighted else d, tiny)
        total += row * w[i] if weighted else row
    return total


@njit(**_JIT)
def out_identity(z, targets, w, tiny, delta):
    n, k = z.shape
    weighted = w.shape[0] > 0
    total = 0.0
    for i in range(n):
        row = 0.0
        for j in range(k):
            d = z[i, j] - targets[i, j]
            row += d * d
            delta[i, j] = _flush(d * w[i] if weighted else d, tiny)
        total += row * w[i] if weighted else row
    return total


@njit(**_JIT)
def out_exp(z, targets, w, tiny, delta):
    n, k = z.shape
    weighted = w.shape[0] > 0
    total = 0.0
    for i in range(n):
        row = 0.0
        for j in range(k):
            p = math.exp(z[i, j])
            t = targets[i, j]
            row += (t * math.log(t / p) if t != 0 else 0.0) - t + p
            d = p - t
            delta[i, j] = _flush(d * w[i] if weighted else d, tiny)
        total += row * w[i] if weighted else row
    return total


@njit(fastmath={"reassoc"}, **_JIT)
def _sumsq(p, n):
    """``sum p[:n]^2`` in float64. Reassociation (only here) lets LLVM vectorise the sum: in
    order, it is a chain of dependent additions that cost 25 us of a 71 us update of 79,510
    parameters. It only reorders the rounding of the loss's L2 term."""
    s = 0.0
    for i in range(n):
        x = np.float64(p[i])
        s += x * x
    return s


@njit(**_JIT)
def scale_grad(p, g, n_w, alpha, denom):
    sq = _sumsq(p, n_w) if alpha != 0.0 else 0.0
    for i in range(n_w):
        g[i] = (g[i] + alpha * p[i]) / denom
    for i in range(n_w, p.shape[0]):
        g[i] = g[i] / denom
    return sq


@njit(inline="always", **_JIT)
def _sgd_range(p, g, vel, lo, hi, alpha, scale, lr, momentum, nesterov, tiny):
    for i in range(lo, hi):
        gi = (g[i] + alpha * p[i]) * scale if alpha != 0.0 else g[i] * scale
        v = _flush(momentum * vel[i] - lr * gi, tiny)
        vel[i] = v
        if nesterov:
            p[i] += momentum * v - lr * gi
        else:
            p[i] += v


@njit(**_JIT)
def sgd_step(p, g, vel, n_w, alpha, denom, lr, momentum, nesterov, tiny):
    sq = _sumsq(p, n_w) if alpha != 0.0 else 0.0
    scale = 1.0 / denom
    _sgd_range(p, g, vel, 0, n_w, alpha, scale, lr, momentum, nesterov, tiny)
    _sgd_range(p, g, vel, n_w, p.shape[0], 0.0, scale, lr, momentum, nesterov, tiny)
    return sq


@njit(inline="always", **_JIT)
def _adam_range(p, g, m, v, lo, hi, alpha, scale, lr, beta1, beta2, eps, tiny):
    for i in range(lo, hi):
        gi = (g[i] + alpha * p[i]) * scale if alpha != 0.0 else g[i] * scale
        mi = _flush(beta1 * m[i] + (1 - beta1) * gi, tiny)
        vi = _flush(beta2 * v[i] + (1 - beta2) * (gi * gi), tiny)
        m[i] = mi
        v[i] = vi
        p[i] += -lr * mi / (math.sqrt(vi) + eps)


@njit(**_JIT)
def adam_step(p, g, m, v, n_w, alpha, denom, lr, beta1, beta2, eps, tiny):
    sq = _sumsq(p, n_w) if alpha != 0.0 else 0.0
    scale = 1.0 / denom
    _adam_range(p, g, m, v, 0, n_w, alpha, scale, lr, beta1, beta2, eps, tiny)
    _adam_range(p, g, m, v, n_w, p.shape[0], 0.0, scale, lr, beta1, beta2, eps, tiny)
    return sq
