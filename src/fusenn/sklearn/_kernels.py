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

``train_epoch(...) -> (accumulated loss, t)``
    a whole epoch of mini-batches in one call (see :mod:`._engine`): for each batch of the
    permutation, the gathered rows go forward (``matmul``, bias, the generated activation),
    through the output kernel above, backward (the generated activation's backward) and
    through ``sgd_step`` or ``adam_step``.
``matmul(a, trans_a, b, trans_b, out, address)``
    ``out = op(a) @ op(b)`` through the CBLAS gemm at ``address`` (NumPy's own BLAS, found by
    :func:`gemm_address`), or ``np.dot`` when ``address`` is 0.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Literal, Optional, Tuple, TypedDict

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ..backends import _blas
from .._activation_table import RELU, SIGMOID, TANH
from ..backends import _numba_generated
from ..backends._numba_generated import (_b_linear, _b_relu, _b_sigmoid, _b_tanh, _f_linear,
                                        _f_relu, _f_sigmoid, _f_tanh)

#: ``_typed(x, value)``: ``value`` in the float type of ``x`` (the generated helper, untyped).
_typed: Any = _numba_generated._typed


class _JitOptions(TypedDict):
    """The options every kernel here is compiled with (typed, so that ``njit(**_JIT)`` keeps
    the kernels' signatures for mypy)."""

    cache: bool
    nogil: bool
    error_model: Literal["python", "numpy"]


#: Cached on disk where the Numba backend found a writable cache directory (its probe, run
#: once at import); compiled in every process otherwise, instead of failing to import.
_JIT = _JitOptions(cache=bool(_numba_generated._JIT["cache"]), nogil=True,
                   error_model="numpy")


@njit(inline="always", **_JIT)
def _flush(x: float, tiny: float) -> float:
    # Subnormal numbers are flushed to zero: on x86 an operation on one can cost ~100 cycles,
    # and training can make them - a confident softmax puts exp(-90) ~ 1e-39 (subnormal in
    # float32) into its error term, which the backward products would then carry; a momentum
    # decaying on a weight whose gradient has become zero turns subnormal after ~800 float32
    # steps. A subnormal error term or step changes no normal weight, so the numbers stay
    # scikit-learn's. (A safeguard: the MNIST benchmark did not show such a slowdown.)
    return _typed(x, 0.0) if abs(x) < tiny else x


@njit(**_JIT)
def out_softmax(z: np.ndarray, labels: np.ndarray, w: np.ndarray, eps: float, tiny: float,
                delta: np.ndarray) -> float:
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
def out_logistic(z: np.ndarray, targets: np.ndarray, w: np.ndarray, eps: float, tiny: float,
                 delta: np.ndarray) -> float:
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
def out_identity(z: np.ndarray, targets: np.ndarray, w: np.ndarray, tiny: float,
                 delta: np.ndarray) -> float:
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
def out_exp(z: np.ndarray, targets: np.ndarray, w: np.ndarray, tiny: float,
            delta: np.ndarray) -> float:
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
def _sumsq(p: np.ndarray, n: int) -> float:
    """``sum p[:n]^2`` in float64. Reassociation (only here) lets LLVM vectorise the sum: in
    order, it is a chain of dependent additions that cost 25 us of a 71 us update of 79,510
    parameters. It only reorders the rounding of the loss's L2 term."""
    s = 0.0
    for i in range(n):
        x = np.float64(p[i])
        s += x * x
    return s


@njit(**_JIT)
def scale_grad(p: np.ndarray, g: np.ndarray, n_w: int, alpha: float, denom: float) -> float:
    sq = _sumsq(p, n_w) if alpha != 0.0 else 0.0
    for i in range(n_w):
        g[i] = (g[i] + alpha * p[i]) / denom
    for i in range(n_w, p.shape[0]):
        g[i] = g[i] / denom
    return sq


@njit(inline="always", **_JIT)
def _sgd_range(p: np.ndarray, g: np.ndarray, vel: np.ndarray, lo: int, hi: int, alpha: float,
               scale: float, lr: float, momentum: float, nesterov: bool, tiny: float) -> None:
    # in the parameters' own type, as scikit-learn's NumPy expressions compute (float32 stays
    # float32), with the Nesterov branch outside the loop: the loop vectorises (3.5x faster)
    a, s, rate, mu = (_typed(p[0], alpha), _typed(p[0], scale), _typed(p[0], lr),
                      _typed(p[0], momentum))
    small = _typed(p[0], tiny)
    if nesterov:
        for i in range(lo, hi):
            gi = (g[i] + a * p[i]) * s  # the biases' a is 0: g + 0 p = g for finite p
            v = _flush(mu * vel[i] - rate * gi, small)
            vel[i] = v
            p[i] += mu * v - rate * gi
    else:
        for i in range(lo, hi):
            gi = (g[i] + a * p[i]) * s
            v = _flush(mu * vel[i] - rate * gi, small)
            vel[i] = v
            p[i] += v


@njit(**_JIT)
def sgd_step(p: np.ndarray, g: np.ndarray, vel: np.ndarray, n_w: int, alpha: float,
             denom: float, lr: float, momentum: float, nesterov: bool, tiny: float) -> float:
    sq = _sumsq(p, n_w) if alpha != 0.0 else 0.0
    scale = 1.0 / denom
    _sgd_range(p, g, vel, 0, n_w, alpha, scale, lr, momentum, nesterov, tiny)
    _sgd_range(p, g, vel, n_w, p.shape[0], 0.0, scale, lr, momentum, nesterov, tiny)
    return sq


@njit(inline="always", **_JIT)
def _adam_range(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, lo: int, hi: int,
                alpha: float, scale: float, lr: float, beta1: float, beta2: float, eps: float,
                tiny: float) -> None:
    for i in range(lo, hi):
        gi = (g[i] + alpha * p[i]) * scale if alpha != 0.0 else g[i] * scale
        mi = _flush(beta1 * m[i] + (1 - beta1) * gi, tiny)
        vi = _flush(beta2 * v[i] + (1 - beta2) * (gi * gi), tiny)
        m[i] = mi
        v[i] = vi
        p[i] += -lr * mi / (math.sqrt(vi) + eps)


@njit(**_JIT)
def adam_step(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, n_w: int,
              alpha: float, denom: float, lr: float, beta1: float, beta2: float, eps: float,
              tiny: float) -> float:
    sq = _sumsq(p, n_w) if alpha != 0.0 else 0.0
    scale = 1.0 / denom
    _adam_range(p, g, m, v, 0, n_w, alpha, scale, lr, beta1, beta2, eps, tiny)
    _adam_range(p, g, m, v, n_w, p.shape[0], 0.0, scale, lr, beta1, beta2, eps, tiny)
    return sq


# ----------------------------------------------------------------------------- products
# CBLAS's enumerations (cblas.h)
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


@intrinsic
def _cblas_gemm(typingctx: Any, address: Any, trans_a: Any, trans_b: Any, m: Any, n: Any,
                k: Any, a: Any, b: Any, c: Any) -> Tuple[Any, Any]:
    """``c = op(a) @ op(b)`` through the ILP64 ``cblas_?gemm`` at ``address`` (row-major,
    ``alpha = 1``, ``beta = 0``; ``a``, ``b``, ``c`` C-ordered, their leading dimensions
    their row lengths). The address is an argument, not a constant, so that the caller's
    machine code stays valid in Numba's on-disk cache."""
    sig = types.void(address, trans_a, trans_b, m, n, k, a, b, c)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        addr, ta, tb, m_, n_, k_, av, bv, cv = args
        i32, i64 = ir.IntType(32), ir.IntType(64)
        flt = ir.FloatType() if a.dtype == types.float32 else ir.DoubleType()
        ptr = flt.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, flt, ptr, i64,
                                               ptr, i64, flt, ptr, i64])
        arrays = [context.make_array(ty)(context, builder, v)
                  for ty, v in ((a, av), (b, bv), (c, cv))]
        lds = [builder.extract_value(arr.shape, 1) for arr in arrays]
        data = [builder.bitcast(arr.data, ptr) for arr in arrays]
        fn = builder.inttoptr(addr, fnty.as_pointer())
        builder.call(fn, [ir.Constant(i32, _ROW_MAJOR), builder.trunc(ta, i32),
                          builder.trunc(tb, i32), m_, n_, k_, ir.Constant(flt, 1.0), data[0],
                          lds[0], data[1], lds[1], ir.Constant(flt, 0.0), data[2], lds[2]])
        return context.get_dummy_value()

    return sig, codegen


@njit(**_JIT)
def matmul(a: np.ndarray, trans_a: bool, b: np.ndarray, trans_b: bool, out: np.ndarray,
           address: Optional[int]) -> None:
    """``out = op(a) @ op(b)`` (``op``: transpose when its flag is set) for C-ordered 2-D
    arrays of one dtype: through the CBLAS gemm at ``address`` (NumPy's own BLAS, see
    :data:`GEMM`), or Numba's ``np.dot`` (SciPy's BLAS) when ``address`` is 0."""
    if address != 0:
        m, n = out.shape
        k = a.shape[0] if trans_a else a.shape[1]
        # (Numba's stubs type an intrinsic's call with its typing context as an argument)
        _cblas_gemm(address, _TRANS if trans_a else _NO_TRANS,  # type: ignore[call-arg]
                    _TRANS if trans_b else _NO_TRANS, m, n, k, a, b, out)
    elif trans_a:
        np.dot(a.T, b, out)
    elif trans_b:
        np.dot(a, b.T, out)
    else:
        np.dot(a, b, out)


_GEMM: Dict[np.dtype[Any], Optional[int]] = {}


def gemm_address(dtype: Any) -> Optional[int]:
    """The address of the ``cblas_?gemm`` that the whole-epoch kernel calls for ``dtype``.

    NumPy's own BLAS where :func:`fusenn.backends._blas.find_numpy_cblas` finds it (the
    library scikit-learn's products go through, and the thread pool fusenn's Cython kernels
    share; Numba's ``np.dot`` goes to SciPy's copy, measured 20 % slower on a 32x784 @
    784x100 float32 product), checked once on a small product of every transpose case
    against NumPy; else 0, which makes :func:`matmul` use ``np.dot``. Looked up on first use.
    """
    dtype = np.dtype(dtype)
    if dtype not in _GEMM:
        found = _blas.find_numpy_cblas()
        address = 0 if found is None else (found[0] if dtype == np.float32 else found[1])
        rng = np.random.default_rng(0)
        a, b, c, d = (rng.standard_normal(shape).astype(dtype)
                      for shape in ((5, 7), (7, 3), (5, 3), (6, 7)))
        for x, ta, y, tb, want in ((a, False, b, False, a @ b), (a, True, c, False, a.T @ c),
                                   (a, False, d, True, a @ d.T)):
            if address:
                out = np.empty(want.shape, dtype)
                matmul(x, ta, y, tb, out, address)
                if not np.allclose(out, want, rtol=1e-4, atol=1e-4):
                    address = 0
        _GEMM[dtype] = address
    return _GEMM[dtype]


# ----------------------------------------------------------------------------- whole epoch
#: Output codes of :func:`train_epoch` (scikit-learn's ``out_activation_``).
OUT_SOFTMAX, OUT_LOGISTIC, OUT_IDENTITY, OUT_EXP = 0, 1, 2, 3
OUT_CODES = {"softmax": OUT_SOFTMAX, "logistic": OUT_LOGISTIC, "identity": OUT_IDENTITY,
             "exp": OUT_EXP}
#: Optimiser codes of :func:`train_epoch`.
OPT_SGD, OPT_ADAM = 0, 1
#: One array per layer (a tuple: Numba types it as a heterogeneous tuple of arrays).
Layers = Tuple[np.ndarray, ...]


@njit(**_JIT)
def _gather_rows(src: np.ndarray, idx: np.ndarray, start: int, r: int, out: np.ndarray) -> None:
    """``out[k] = src[idx[start + k]]`` for ``k < r`` (rows of a 1-D or 2-D array)."""
    for k in range(r):
        out[k] = src[idx[start + k]]


@njit(inline="always", **_JIT)
def _bias_act_with(f: Any, z: np.ndarray, b: np.ndarray, a: np.ndarray, p0: float,
                   p1: float) -> None:
    for k in range(z.shape[0]):
        for j in range(z.shape[1]):
            v = z[k, j] + b[j]
            z[k, j] = v
            a[k, j] = f(v, p0, p1)


@njit(**_JIT)
def _bias_act(z: np.ndarray, b: np.ndarray, a: np.ndarray, act: int, p0: float,
              p1: float) -> None:
    """``z += b`` row by row, then ``a = f(z)`` (``a`` may be ``z``) with the generated
    scalar activation ``act``, one of scikit-learn's four (:data:`._engine.HIDDEN`), each in
    its own loop (which vectorises)."""
    if act == RELU:
        _bias_act_with(_f_relu, z, b, a, p0, p1)
    elif act == TANH:
        _bias_act_with(_f_tanh, z, b, a, p0, p1)
    elif act == SIGMOID:
        _bias_act_with(_f_sigmoid, z, b, a, p0, p1)
    else:  # LINEAR (scikit-learn's identity)
        _bias_act_with(_f_linear, z, b, a, p0, p1)


@njit(**_JIT)
def _bias(z: np.ndarray, b: np.ndarray) -> None:
    for k in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[k, j] += b[j]


@njit(**_JIT)
def _column_sums(d: np.ndarray, out: np.ndarray) -> None:
    """``out = d.sum(axis=0)`` in NumPy's order for a C-ordered ``d``: row after row."""
    out[:] = 0
    for k in range(d.shape[0]):
        for j in range(d.shape[1]):
            out[j] += d[k, j]


@njit(inline="always", **_JIT)
def _act_backward_with(f: Any, dy: np.ndarray, z: np.ndarray, a: np.ndarray, p0: float,
                       p1: float) -> None:
    for k in range(dy.shape[0]):
        for j in range(dy.shape[1]):
            dy[k, j] = f(dy[k, j], z[k, j], a[k, j], p0, p1)


@njit(**_JIT)
def _act_backward(dy: np.ndarray, z: np.ndarray, a: np.ndarray, act: int, p0: float,
                  p1: float) -> None:
    """``dy *= f'(z)`` in place through the generated backward of ``act`` (given
    ``a = f(z)``), one loop per activation as in :func:`_bias_act`."""
    if act == RELU:
        _act_backward_with(_b_relu, dy, z, a, p0, p1)
    elif act == TANH:
        _act_backward_with(_b_tanh, dy, z, a, p0, p1)
    elif act == SIGMOID:
        _act_backward_with(_b_sigmoid, dy, z, a, p0, p1)
    else:  # LINEAR
        _act_backward_with(_b_linear, dy, z, a, p0, p1)


@njit(**_JIT)
def train_epoch(X: np.ndarray, labels: np.ndarray, Y: np.ndarray, w: np.ndarray,
                idx: np.ndarray, batch_size: int, out_code: int, coefs: Layers,
                intercepts: Layers, dcoefs: Layers, dintercepts: Layers, flat: np.ndarray,
                grad: np.ndarray, n_w: int, zs: Layers, acts: Layers, dxs: Layers,
                xbuf: np.ndarray, lbuf: np.ndarray, ybuf: np.ndarray, wbuf: np.ndarray,
                delta: np.ndarray, act: int, p0: float, p1: float, alpha: float, opt: int,
                s0: np.ndarray, s1: np.ndarray, lr: float, momentum: float, nesterov: bool,
                beta1: float, beta2: float, adam_eps: float, t: int, eps: float, tiny: float,
                gemm: Optional[int]) -> Tuple[float, int]:
    """One epoch of scikit-learn's mini-batch training in one call; see :mod:`._engine`.

    For each batch of the rows ``idx[start:start + batch_size]``: gather them, forward
    (``z = x W`` by the BLAS at ``gemm`` (see :func:`matmul`), ``+ b``, the hidden activation), the output kernel, backward
    (``dW = x^T delta``, ``db = sum delta``, ``delta_prev = (delta W^T) f'``), and the
    optimiser's step (``opt``: :data:`OPT_SGD` with state ``s0`` = velocity, or
    :data:`OPT_ADAM` with ``s0, s1`` = moments, ``t`` its step count). Returns
    ``(sum of batch loss * batch rows, t)``.
    """
    n = idx.shape[0]
    n_out = delta.shape[1]
    last = len(coefs) - 1
    weighted = w.shape[0] > 0
    accumulated = 0.0
    for start in range(0, n, batch_size):
        r = min(batch_size, n - start)
        _gather_rows(X, idx, start, r, xbuf)
        x = xbuf[:r]
        if out_code == OUT_SOFTMAX:
            _gather_rows(labels, idx, start, r, lbuf)
        else:
            _gather_rows(Y, idx, start, r, ybuf)
        wb = wbuf[:0]
        if weighted:
            _gather_rows(w, idx, start, r, wbuf)
            wb = wbuf[:r]
        # forward, as scikit-learn: z = x W, z += b, then the activation
        for i in range(last + 1):
            z = zs[i][:r]
            matmul(x if i == 0 else acts[i - 1][:r], False, coefs[i], False, z, gemm)
            if i < last:
                _bias_act(z, intercepts[i], acts[i][:r], act, p0, p1)
            else:
                _bias(z, intercepts[i])
        d = delta[:r]
        z = zs[last][:r]
        if out_code == OUT_SOFTMAX:
            total = out_softmax(z, lbuf[:r], wb, eps, tiny, d)
        elif out_code == OUT_LOGISTIC:
            total = out_logistic(z, ybuf[:r], wb, eps, tiny, d)
        elif out_code == OUT_EXP:
            total = out_exp(z, ybuf[:r], wb, tiny, d)
        else:
            total = out_identity(z, ybuf[:r], wb, tiny, d)
        denom = float(r)
        if weighted:
            denom = 0.0
            for k in range(r):
                denom += wb[k]
        # backward: unscaled gradients; the scaling and the L2 term come with the step
        dy = d
        for i in range(last, -1, -1):
            matmul(x if i == 0 else acts[i - 1][:r], True, dy, False, dcoefs[i], gemm)
            _column_sums(dy, dintercepts[i])
            if i > 0:
                dx = dxs[i][:r]
                matmul(dy, False, coefs[i], True, dx, gemm)
                _act_backward(dx, zs[i - 1][:r], acts[i - 1][:r], act, p0, p1)
                dy = dx
        if opt == OPT_SGD:
            sq = sgd_step(flat, grad, s0, n_w, alpha, denom, lr, momentum, nesterov, tiny)
        else:
            t += 1
            lr_t = lr * np.sqrt(1 - beta2 ** float(t)) / (1 - beta1 ** float(t))
            sq = adam_step(flat, grad, s0, s1, n_w, alpha, denom, lr_t, beta1, beta2,
                           adam_eps, tiny)
        if out_code == OUT_IDENTITY:
            loss = 0.5 * total / denom / n_out
        else:
            loss = total / denom
        accumulated += (loss + 0.5 * alpha * sq / denom) * r
    return accumulated, t
