"""The Numba backend: fusenn's kernel contract compiled by Numba, cached on disk.

Every function of the contract (:mod:`fusenn.backends._contract`; the oracle is
:mod:`fusenn.backends._numpy`) is here with the same arguments and the same in-place
semantics. The module has three tiers, like scikit-learn's Cython losses:

1. scalar functions and each optimiser's update, generated from the activation table and the
   contract into
   :mod:`fusenn.backends._numba_generated`: ``_act`` (every activation's forward, picked by
   its ``code``), ``_act_prime`` (every derivative), ``_act_back`` (``dy * f'``, from the output
   where that is cheaper), and the stable pieces (``_sigmoid``, ``_softplus``). They compute in
   the array's own float type: constants go through ``_typed``, and the Python layer casts the
   activation parameters to that type, so float32 stays float32 where NumPy's does;
2. array kernels at module level (``@njit(cache=True)``): each row-wise loop is written once
   with ``prange`` and compiled twice (:func:`_twins`), serially and with ``parallel=True``;
   the parallel one runs only when a kernel's size pays for threads (:data:`PARALLEL_MIN`).
   Matrix products go through ``np.dot`` inside the compiled code (BLAS via scipy), then one
   fused pass per row applies bias and activation, or the activation's derivative;
3. the contract's functions: thin Python wrappers that cast the parameters, pick the serial or
   the parallel twin from the size and :func:`fusenn.get_num_threads`, and call it.

:func:`train_epoch` runs a whole epoch (every mini-batch's forward pass, fused loss, backward
pass and optimiser update) in one compiled call, with its workspaces allocated once. Its kernel
is compiled per model kind - the set of the layers' activations, the loss and the optimiser
(:func:`_epoch_kernel`): the code of :func:`_train_epoch` compiled against row loops, a loss
and an update generated for that kind alone
(:func:`fusenn.backends._codegen.numba_epoch_source`) and inlined into one function. One
kernel that took the codes at run time compiled all ~29 activations' forward and backward, 4
losses and 4 optimisers: 15 s before a first fit, against under 4 s for a relu network with
softmax cross-entropy and SGD (64-32-10 on the digits, 2 cores). The results are the same to
the bit: the same scalar functions run in the same order.

Nothing compiles at import: Numba compiles a kernel the first time it is called with a new
signature and stores the machine code next to this file in ``__pycache__`` (or under
``NUMBA_CACHE_DIR`` when set, else the user's cache), so a second process loads it instead of
compiling; each model kind's epoch kernel has its own entry, named after its codes and a digest
of the generated code. The training kernel's compile says so on stderr after
:data:`NOTICE_AFTER` seconds. Where no cache directory is writable, the kernels compile in
every process, with a warning, instead of failing.

Every reduction (the losses, ``db``) accumulates in float64, whatever the arrays' type:
``float()`` of a float32 stays float32 in Numba, so values are widened with ``np.float64``
before they are added (a float32 square of 2e19 is inf, its float64 square is not).

No kernel uses ``fastmath``: they all may see zeros, and the loss kernels must see NaN and
infinity to report a diverging run. Division and ``exp`` follow NumPy's error model
(``inf``/``nan`` results, no exceptions).
"""
from __future__ import annotations

import hashlib
import math
import os
import sys
import threading
import types as _pytypes
from typing import Any, NamedTuple, Tuple

import numba
import numpy as np
from numba import njit, prange

from .._activation_table import BY_CODE, LINEAR, RELU, SIGMOID, SOFTMAX, TANH
from .._threads import get_num_threads
from ._contract import (H_L2, H_STEP, HYPER, LOSS_HALF_MSE, LOSS_MSE,  # noqa: F401
                        LOSS_SIGMOID_BCE, LOSS_SOFTMAX_XENT, N_HYPER, OPT_ADAGRAD, OPT_ADAM,
                        OPT_RMSPROP, OPT_SGD, plan_epoch)
from ._numba_generated import (_INLINE, _JIT, UPDATES, _act, _act_back, _act_prime, _b_relu,
                               _b_sigmoid, _b_tanh, _f_relu, _sigmoid, _twins, _typed)
from ..errors import ArgumentError

NAME = "numba"
#: The Trainer runs whole epochs in one call of :func:`train_epoch` here.
WHOLE_EPOCHS = True


def _launch_threads():
    """Start Numba's thread pool now, with OpenMP's idle threads sleeping rather than spinning.

    Numba's default threading layer on Linux is OpenMP (libgomp), which reads
    ``OMP_WAIT_POLICY`` once, when it loads. With its default policy, idle threads spin after
    each parallel loop and starve the BLAS threads of the next product on a 2-core machine
    (measured: a 256 x 1024 relu epilogue after sgemm, 8 ms spinning against 0.8 ms passive).
    Unless the user chose a policy, ``passive`` is set only while the pool starts (the Cython
    backend does the same when it loads libgomp first). Returns the threading layer's name.
    """
    user_policy = os.environ.get("OMP_WAIT_POLICY")
    if user_policy is None:
        os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        numba.get_num_threads()  # launches the pool (and loads libgomp for the omp layer)
    finally:
        if user_policy is None:
            del os.environ["OMP_WAIT_POLICY"]
    return numba.threading_layer()


#: The Numba threading layer in use ("omp", "tbb" or "workqueue").
THREADING_LAYER = _launch_threads()

__all__ = [
    "NAME", "act_forward", "act_derivative", "dense_forward", "dense_backward", "softmax",
    "log_softmax", "logsumexp", "softmax_xent", "softmax_xent_probs", "sigmoid_bce", "mse",
    "sgd_update", "adam_update", "rmsprop_update", "adagrad_update", "train_epoch",
    "prepare_epoch", "PARALLEL_MIN", "N_HYPER",
]

#: Element count from which a row-wise or elementwise kernel runs its ``parallel=True`` twin.
#: Below it, waking threads costs more than the loop (measured on the 2-core machine: a
#: 256 x 1024 relu epilogue gains from two threads, a 64 x 128 one loses).
PARALLEL_MIN = 1 << 16

# =========================================================================== tier 1: rows
@njit(**_INLINE)
def _row_max(z, i):
    m = z[i, 0]
    for j in range(1, z.shape[1]):
        if z[i, j] > m:
            m = z[i, j]
    return m


@njit(**_INLINE)
def _row_logsumexp(z, i):
    """logsumexp(z[i]) = m + log(sum(exp(z[i] - m))), in ``z``'s type."""
    m = _row_max(z, i)
    s = 0.0
    for j in range(z.shape[1]):
        s += math.exp(z[i, j] - m)
    return m + _typed(m, math.log(s))


@njit(**_INLINE)
def _row_exp_lse(z, e, i):
    """``e[i] = exp(z[i] - max)``; returns ``(logsumexp(z[i]), sum(e[i]))`` in ``z``'s type.

    The fused losses take the softmax (``e / sum``) and the log-sum-exp from this one pass of
    ``exp``, which is what makes them cheaper than NumPy's separate passes.
    """
    m = _row_max(z, i)
    s = 0.0
    for j in range(z.shape[1]):
        v = math.exp(z[i, j] - m)
        e[i, j] = v
        s += v
    return m + _typed(m, math.log(s)), _typed(m, s)


@njit(**_INLINE)
def _softmax_row_into(src, dst, i):
    """dst[i] = softmax(src[i]) (``dst`` may be ``src``), from :func:`_row_exp_lse`'s pass."""
    _, s = _row_exp_lse(src, dst, i)
    for j in range(src.shape[1]):
        dst[i, j] = dst[i, j] / s


@njit(**_INLINE)
def _softmax_back_row(a, dy, out, i):
    """out[i] = a[i] * (dy[i] - sum(dy[i] * a[i])), softmax's backward (``out`` may be ``dy``)."""
    s = 0.0
    for j in range(a.shape[1]):
        s += dy[i, j] * a[i, j]
    st = _typed(a[i, 0], s)
    for j in range(a.shape[1]):
        out[i, j] = (dy[i, j] - st) * a[i, j]


# =========================================================================== tier 2: kernels
def _bias_act(src, b, has_bias, code, p0, p1, z, a, check):
    """Per row: ``z = src + b`` and ``a = f(z)`` with a bias; ``a = f(src)`` without. With
    ``check``, returns how many rows of ``src`` (after the bias) hold a NaN or infinity.

    dense_forward passes ``src`` = ``z`` (the product, biased in place); act_forward passes
    its read-only input as ``src`` and ``out`` as ``z`` and ``a``. ``a`` may be ``z``.
    """
    n, k = src.shape
    bad = 0
    for i in prange(n):
        if has_bias:
            if code == SOFTMAX:
                for j in range(k):
                    z[i, j] = src[i, j] + b[j]
                _softmax_row_into(z, a, i)
            elif code == RELU:  # the common case without the per-element switch: vectorises
                for j in range(k):
                    v = src[i, j] + b[j]
                    z[i, j] = v
                    a[i, j] = _f_relu(v, p0, p1)
            else:
                for j in range(k):
                    v = src[i, j] + b[j]
                    z[i, j] = v
                    a[i, j] = _act(v, code, p0, p1)
        elif code == SOFTMAX:
            _softmax_row_into(src, a, i)
        elif code == RELU:
            for j in range(k):
                a[i, j] = _f_relu(src[i, j], p0, p1)
        else:
            for j in range(k):
                a[i, j] = _act(src[i, j], code, p0, p1)
        if check:  # x - x is 0 for a finite x, NaN otherwise
            row_bad = False
            for j in range(k):
                row_bad |= src[i, j] - src[i, j] != 0
            if row_bad:
                bad += 1
    return bad


def _act_grad(z, a, dy, has_dy, code, p0, p1, out):
    """``out = dy * f'(z)`` (softmax: ``a * (dy - sum(dy * a))``), or ``f'(z)`` without ``dy``
    (softmax: the Jacobian's diagonal ``a (1 - a)``). ``out`` may be ``dy``."""
    n, k = z.shape
    for i in prange(n):
        if code == SOFTMAX:
            if has_dy:
                _softmax_back_row(a, dy, out, i)
            else:
                for j in range(k):
                    out[i, j] = a[i, j] * (_typed(a[i, j], 1.0) - a[i, j])
        elif has_dy:
            if code == LINEAR:
                for j in range(k):
                    out[i, j] = dy[i, j]
            elif code == RELU:  # the common cases without the per-element switch: vectorise
                for j in range(k):
                    out[i, j] = _b_relu(dy[i, j], z[i, j], a[i, j], p0, p1)
            elif code == TANH:
                for j in range(k):
                    out[i, j] = _b_tanh(dy[i, j], z[i, j], a[i, j], p0, p1)
            elif code == SIGMOID:
                for j in range(k):
                    out[i, j] = _b_sigmoid(dy[i, j], z[i, j], a[i, j], p0, p1)
            else:
                for j in range(k):
                    out[i, j] = _act_back(dy[i, j], z[i, j], a[i, j], code, p0, p1)
        else:
            for j in range(k):
                out[i, j] = _act_prime(z[i, j], code, p0, p1)


def _column_sums(dz, db, acc):
    """``db = dz.sum(0)``, accumulated in the float64 workspace ``acc`` (length >= k)."""
    n, k = dz.shape
    acc[:k] = 0.0
    for i in range(n):
        for j in range(k):
            acc[j] += dz[i, j]
    for j in range(k):
        db[j] = acc[j]


def _softmax_rows(z, out):
    for i in prange(z.shape[0]):
        _softmax_row_into(z, out, i)


def _logsumexp_rows(z, out):
    for i in prange(z.shape[0]):
        out[i] = _row_logsumexp(z, i)


def _log_softmax_rows(z, out):
    for i in prange(z.shape[0]):
        lse = _row_logsumexp(z, i)
        for j in range(z.shape[1]):
            out[i, j] = z[i, j] - lse


def _softmax_xent(logits, labels, grad, has_grad):
    """Mean of ``logsumexp(z_i) - z_i[y_i]``; ``grad = (softmax(z) - onehot(y)) / n``.

    Without ``has_grad``, ``grad`` is still the row workspace for ``exp(z - max)``.
    """
    n = logits.shape[0]
    total = 0.0
    for i in prange(n):
        lse, s = _row_exp_lse(logits, grad, i)
        y = labels[i]
        total += np.float64(lse) - np.float64(logits[i, y])
        if has_grad:
            nt = _typed(lse, n)
            one = _typed(lse, 1.0)
            for j in range(logits.shape[1]):
                g = grad[i, j] / s
                if j == y:
                    g -= one
                grad[i, j] = g / nt
    return total / n


def _softmax_xent_probs(logits, targets, grad, has_grad):
    """Cross-entropy against target rows: ``mean_i sum_k t_ik (lse_i - z_ik)`` and its grad."""
    n, k = logits.shape
    total = 0.0
    for i in prange(n):
        lse, s = _row_exp_lse(logits, grad, i)
        tsum = 0.0
        tz = 0.0
        for j in range(k):
            tsum += np.float64(targets[i, j])
            tz += np.float64(targets[i, j]) * np.float64(logits[i, j])
        total += np.float64(lse) * tsum - tz
        if has_grad:
            ts = _typed(lse, tsum)
            nt = _typed(lse, n)
            for j in range(k):
                grad[i, j] = ((grad[i, j] / s) * ts - targets[i, j]) / nt
    return total / n


def _sigmoid_bce(logits, targets, grad, has_grad):
    """Mean of ``softplus(z) - t z`` over all elements; grad ``(sigmoid(z) - t) / (n k)``."""
    n, k = logits.shape
    count = n * k
    total = 0.0
    for i in prange(n):
        for j in range(k):
            z = logits[i, j]
            t = targets[i, j]
            zd = np.float64(z)
            total += max(zd, 0.0) - np.float64(t) * zd + math.log1p(math.exp(-abs(zd)))
            if has_grad:
                grad[i, j] = (_sigmoid(z) - t) / _typed(z, count)
    return total / count


def _mse(pred, targets, grad, has_grad, half):
    """Mean squared error (``half``: ``1/(2n) sum (y - t)^2``) and its gradient."""
    n, k = pred.shape
    count = n * k
    scale = 1.0 / n if half else 2.0 / count
    total = 0.0
    for i in prange(n):
        for j in range(k):
            d = pred[i, j] - targets[i, j]
            dd = np.float64(pred[i, j]) - np.float64(targets[i, j])
            total += dd * dd
            if has_grad:
                grad[i, j] = d * _typed(d, scale)
    return total / (2 * n) if half else total / count


_bias_act_serial, _bias_act_parallel = _twins(_bias_act)
_act_grad_serial, _act_grad_parallel = _twins(_act_grad)
_column_sums = njit(**_JIT)(_column_sums)
_softmax_serial, _softmax_parallel = _twins(_softmax_rows)
_logsumexp_serial, _logsumexp_parallel = _twins(_logsumexp_rows)
_log_softmax_serial, _log_softmax_parallel = _twins(_log_softmax_rows)
_xent_serial, _xent_parallel = _twins(_softmax_xent)
_xent_probs_serial, _xent_probs_parallel = _twins(_softmax_xent_probs)
_bce_serial, _bce_parallel = _twins(_sigmoid_bce)
_mse_serial, _mse_parallel = _twins(_mse)


# --------------------------------------------------------------------------- whole epoch
# Inside the epoch every elementwise pass runs serially and BLAS has the threads: on 2 cores
# a parallel region per mini-batch fights the BLAS threads that still spin after each product
# (measured, medium 784-128-64-10 at batch 64 on 2 threads: 7.6k samples/s with parallel
# optimiser updates, 170k serial).
#
# _train_epoch is not compiled as it stands: :func:`_epoch_kernel` compiles a copy of it per
# model, whose ``_forward_epilogue``, ``_backward_prologue``, ``_loss`` and ``_optimizer_step``
# are generated for that model's activations, loss and optimiser only
# (:func:`fusenn.backends._codegen.numba_epoch_source`). The body avoids what costs compile
# time and not run time: no slice assignment (Numba compiles a formatted error message for
# each), no allocation (the workspaces come in), no ``.max()``.
def _train_epoch(flat, grad, widths, codes, pr, X, labels, targets, perm, batch_size,
                 loss_code, opt_code, hyper, state, losses, correct, woff, aoff, zoff, dzoff,
                 work, yl_buf, yt_buf, acc):
    """The epochs (one per ``n`` entries of ``perm``), the workspace ``work`` laid out by
    :func:`fusenn.backends._contract.plan_epoch` (a[0] the batch, then per layer z, a (z
    itself for a linear layer) and dz); ``pr``: the activation parameters in the data's type
    (kinks compare as the oracle's do); ``yl_buf``/``yt_buf``: a batch's labels/targets;
    ``acc``: float64, the widest layer's width; ``correct`` empty: not counted."""
    n = X.shape[0]
    n_epochs = perm.shape[0] // n
    L = codes.shape[0]
    n_first = widths[0]
    n_last = widths[L]
    xent = loss_code == LOSS_SOFTMAX_XENT
    step = np.int64(hyper[H_STEP])
    l2 = hyper[H_L2]
    n_batches = (n + batch_size - 1) // batch_size
    count = correct.shape[0] > 0
    for kk in range(n_epochs * n_batches):
        start = (kk % n_batches) * batch_size
        m = min(batch_size, n - start)
        first = (kk // n_batches) * n + start
        idx = perm[first:first + m]
        a0 = work[0:m * n_first].reshape(m, n_first)
        for i in range(m):
            for j in range(n_first):
                a0[i, j] = X[idx[i], j]
        for l in range(L):
            n_in, n_out = widths[l], widths[l + 1]
            W = flat[woff[l]:woff[l] + n_in * n_out].reshape(n_in, n_out)
            b = flat[woff[l] + n_in * n_out:woff[l] + n_in * n_out + n_out]
            x = work[aoff[l]:aoff[l] + m * n_in].reshape(m, n_in)
            z = work[zoff[l]:zoff[l] + m * n_out].reshape(m, n_out)
            a = work[aoff[l + 1]:aoff[l + 1] + m * n_out].reshape(m, n_out)
            np.dot(x, W, z)
            _forward_epilogue(z, b, codes[l], pr[l, 0], pr[l, 1], a)
        out = work[aoff[L]:aoff[L] + m * n_last].reshape(m, n_last)
        dout = work[dzoff[L]:dzoff[L] + m * n_last].reshape(m, n_last)
        yl = yl_buf[:m] if xent else yl_buf
        yt = yt_buf[:m * n_last].reshape(m, n_last) if not xent else out
        for i in range(m):
            if xent:
                yl[i] = labels[idx[i]]
            else:
                for j in range(n_last):
                    yt[i, j] = targets[idx[i], j]
        if count:
            correct[kk] = _count_correct(loss_code, out, yl, yt)
        loss = _loss(loss_code, out, yl, yt, dout)
        losses[kk] = loss
        if not math.isfinite(loss):
            return kk
        for l in range(L - 1, -1, -1):
            n_in, n_out = widths[l], widths[l + 1]
            W = flat[woff[l]:woff[l] + n_in * n_out].reshape(n_in, n_out)
            gW = grad[woff[l]:woff[l] + n_in * n_out].reshape(n_in, n_out)
            gb = grad[woff[l] + n_in * n_out:woff[l] + n_in * n_out + n_out]
            x = work[aoff[l]:aoff[l] + m * n_in].reshape(m, n_in)
            z = work[zoff[l]:zoff[l] + m * n_out].reshape(m, n_out)
            a = work[aoff[l + 1]:aoff[l + 1] + m * n_out].reshape(m, n_out)
            dz = work[dzoff[l + 1]:dzoff[l + 1] + m * n_out].reshape(m, n_out)
            _backward_prologue(z, a, dz, codes[l], pr[l, 0], pr[l, 1])
            np.dot(x.T, dz, gW)
            _column_sums(dz, gb, acc)
            if l > 0:
                dx = work[dzoff[l]:dzoff[l] + m * n_in].reshape(m, n_in)
                np.dot(dz, W.T, dx)
        if _L2:  # (a constant: Numba drops this branch from kernels without the penalty)
            if l2 != 0:
                losses[kk] = loss + _l2_penalty(flat, grad, widths, woff, l2, m)
        step += 1
        _optimizer_step(opt_code, flat, grad, hyper, state, step)
    return n_epochs * n_batches


#: Whether an epoch kernel has the L2 penalty's code (each kernel's own, in its namespace;
#: read by _train_epoch when compiled).
_L2 = True


@njit(**_JIT)
def _l2_penalty(flat, grad, widths, woff, l2, m):
    """train_epoch's L2 penalty (:func:`fusenn.backends._numpy._l2_penalty`): its gradient
    added to the weights' gradients, its loss term returned."""
    total = 0.0
    c = _typed(grad, l2 / m)
    for l in range(widths.shape[0] - 1):
        for i in range(woff[l], woff[l] + widths[l] * widths[l + 1]):
            w = flat[i]
            total += np.float64(w) * np.float64(w)
            grad[i] += c * w
    return 0.5 * l2 * total / m


@njit(**_JIT)
def _count_correct(loss_code, out, labels, targets):
    """A batch's correct predictions (:func:`fusenn.backends._numpy._count_correct`)."""
    count = 0.0
    m, k = out.shape
    if loss_code == LOSS_SOFTMAX_XENT:
        for i in range(m):
            best = 0
            for j in range(1, k):
                if out[i, j] > out[i, best]:
                    best = j
            if best == labels[i]:
                count += 1.0
        return count
    threshold = 0.0 if loss_code == LOSS_SIGMOID_BCE else 0.5
    for i in range(m):
        for j in range(k):
            if (out[i, j] > threshold) == (targets[i, j] > 0.5):
                count += 1.0
    return count


# =========================================================================== tier 3: contract
_EMPTY = {np.dtype(np.float32): np.zeros(1, np.float32),
          np.dtype(np.float64): np.zeros(1, np.float64)}


def _threads(size):
    """Threads for a kernel of ``size`` elements: 1 below PARALLEL_MIN, else fusenn's count."""
    if size < PARALLEL_MIN:
        return 1
    return min(get_num_threads(), numba.config.NUMBA_NUM_THREADS)


def _call(serial, parallel, size, *args):
    """Run the serial twin, or the parallel one on fusenn's thread count, restoring Numba's."""
    n = _threads(size)
    if n == 1:
        return serial(*args)
    old = numba.get_num_threads()
    if old == n:
        return parallel(*args)
    numba.set_num_threads(n)
    try:
        return parallel(*args)
    finally:
        numba.set_num_threads(old)


def _params(arr, p0, p1):
    """Activation parameters as scalars of ``arr``'s type (kinks compare as NumPy's do)."""
    t = arr.dtype.type
    return t(p0), t(p1)


def act_forward(z, code, p0, p1, out):
    """``out = f(z)`` (softmax per row); ``out`` may be ``z``."""
    p0, p1 = _params(z, p0, p1)
    _call(_bias_act_serial, _bias_act_parallel, z.size, z, _EMPTY[z.dtype], False, int(code),
          p0, p1, out, out, False)


def act_derivative(z, a, code, p0, p1, out):
    """``out = f'(z)``; softmax: the Jacobian's diagonal ``a (1 - a)``."""
    p0, p1 = _params(z, p0, p1)
    _call(_act_grad_serial, _act_grad_parallel, z.size, z, a, z, False, int(code), p0, p1, out)


def dense_forward(x, W, b, code, p0, p1, z, a):
    """``z = x @ W + b``, ``a = f(z)``: one BLAS product, then one fused pass per row, which
    also tells whether every element of ``z`` is finite (returned)."""
    p0, p1 = _params(z, p0, p1)
    _dot(x, W, z)
    has_bias = b is not None
    return _call(_bias_act_serial, _bias_act_parallel, z.size, z,
                 b if has_bias else _EMPTY[z.dtype], has_bias, int(code), p0, p1, z, a,
                 True) == 0


def dense_backward(x, W, z, a, dy, code, p0, p1, dz, dW, db, dx):
    """``dz = dy * f'(z)`` in one pass, then ``dW = x.T @ dz``, ``db``, ``dx = dz @ W.T``."""
    p0, p1 = _params(z, p0, p1)
    _call(_act_grad_serial, _act_grad_parallel, z.size, z, a, dy, True, int(code), p0, p1, dz)
    _dot_tn(x, dz, dW)
    if db is not None:
        _column_sums(dz, db, np.empty(db.shape[0]))
    if dx is not None:
        _dot_nt(dz, W, dx)


@njit(**_JIT)
def _dot(x, W, out):
    np.dot(x, W, out)


@njit(**_JIT)
def _dot_tn(x, dz, out):
    np.dot(x.T, dz, out)


@njit(**_JIT)
def _dot_nt(dz, W, out):
    np.dot(dz, W.T, out)


def softmax(z, out):
    _call(_softmax_serial, _softmax_parallel, z.size, z, out)


def log_softmax(z, out):
    _call(_log_softmax_serial, _log_softmax_parallel, z.size, z, out)


def logsumexp(z, out):
    _call(_logsumexp_serial, _logsumexp_parallel, z.size, z, out)


def _grad_arg(grad, like):
    return (grad, True) if grad is not None else (np.empty_like(like), False)


def softmax_xent(logits, labels, grad):
    g, has = _grad_arg(grad, logits)
    return float(_call(_xent_serial, _xent_parallel, logits.size, logits, labels, g, has))


def softmax_xent_probs(logits, targets, grad):
    g, has = _grad_arg(grad, logits)
    return float(_call(_xent_probs_serial, _xent_probs_parallel, logits.size, logits, targets,
                       g, has))


def sigmoid_bce(logits, targets, grad):
    g, has = _grad_arg(grad, logits)
    return float(_call(_bce_serial, _bce_parallel, logits.size, logits, targets, g, has))


def mse(pred, targets, grad, half):
    g, has = _grad_arg(grad, pred)
    return float(_call(_mse_serial, _mse_parallel, pred.size, pred, targets, g, has,
                       bool(half)))


def _update(opt, p, g, s0, s1, t, lr, momentum=0.0, nesterov=False, weight_decay=0.0,
            beta1=0.0, beta2=0.0, eps=0.0, rho=0.0):
    """One optimiser step of the contract's ``<opt>_update`` (settings as in ``hyper``)."""
    if s0 is None and not (opt == OPT_SGD and momentum == 0):
        raise ArgumentError("this update keeps state: its state vector is None")
    if p.size == 0:
        return
    hyper = np.array((lr, momentum, nesterov, weight_decay, beta1, beta2, eps, rho, 0.0))
    serial, parallel = UPDATES[opt]
    s0 = p if s0 is None else s0  # never read: plain SGD
    _call(serial, parallel, p.size, p, g, s0, s0 if s1 is None else s1, hyper, int(t))


def sgd_update(p, g, vel, lr, momentum, nesterov, weight_decay):
    _update(OPT_SGD, p, g, vel, None, 0, lr, momentum, nesterov, weight_decay)


def adam_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, t):
    _update(OPT_ADAM, p, g, m, v, t, lr, weight_decay=weight_decay, beta1=beta1, beta2=beta2,
            eps=eps)


def rmsprop_update(p, g, sq, lr, rho, eps, weight_decay):
    _update(OPT_RMSPROP, p, g, sq, None, 0, lr, weight_decay=weight_decay, eps=eps, rho=rho)


def adagrad_update(p, g, acc, lr, eps, weight_decay):
    _update(OPT_ADAGRAD, p, g, acc, None, 0, lr, weight_decay=weight_decay, eps=eps)


def train_epoch(flat, grad, widths, codes, params, X, labels, targets, perm, batch_size,
                loss_code, opt_code, hyper, state, losses, correct=None):
    """Epochs (one per row of ``perm``) in one compiled call; see
    :func:`fusenn.backends._numpy.train_epoch`.

    Returns the number of batches completed over all epochs (the index of the first
    non-finite batch if the loss diverged, with the weights left at their last finite
    values). Every elementwise pass inside runs serially; BLAS threads are the caller's
    (:func:`fusenn._threads.thread_limits`). The kernel is the model's own
    (:func:`_epoch_kernel`), compiled or loaded from Numba's cache on the first call.
    """
    args = _epoch_args(flat, grad, widths, codes, params, X, labels, targets, perm,
                       batch_size, loss_code, opt_code, hyper, state, losses, correct)
    if args is None:
        return 0
    kernel = _epoch_kernel(args[3], args[10], args[11], args[12][H_L2] != 0)
    _compile_for(kernel, args)
    return int(kernel.dispatcher(*args))


def prepare_epoch(*args):
    """Compile :func:`train_epoch`'s kernel for its arguments (``args``: as
    :func:`train_epoch` takes them) now, or load it from Numba's cache, so that the first
    epoch's time is the epoch's. A compile is the first use of a model's kind (its
    activations, loss and optimiser) on a machine: if it has not finished after
    :data:`NOTICE_AFTER` seconds, one line on stderr says what is happening."""
    args = _epoch_args(*args)
    if args is not None:
        _compile_for(_epoch_kernel(args[3], args[10], args[11], args[12][H_L2] != 0), args)


class EpochKernel(NamedTuple):
    """One model kind's whole-epoch kernel: :func:`_train_epoch` compiled against the
    functions of ``source`` (:func:`fusenn.backends._codegen.numba_epoch_source`)."""

    #: ``(activation codes, loss code, optimiser code, L2 penalty)``, the codes sorted and
    #: unique.
    key: Tuple[Tuple[int, ...], int, int, bool]
    #: The generated text of its model-specific functions.
    source: str
    #: The Numba dispatcher (cached on disk under its own name, see :func:`_epoch_kernel`).
    dispatcher: Any


def _epoch_kernel(codes, loss_code, opt_code, l2=False):
    """The :class:`EpochKernel` of these layers' activation ``codes``, loss and optimiser,
    with the code of the L2 penalty (``hyper[H_L2]``) only when ``l2``, made once per process.

    Its source is generated from the activation table for these codes only and run in a
    namespace holding this module's and :mod:`._numba_generated`'s functions; then
    :func:`_train_epoch`'s code is compiled with that namespace as its globals, under a name
    of its own (``_train_epoch__a0_7__l0__o0__<digest>``: the codes, ``__p`` with the
    penalty, and a digest of the
    generated code it inlines), so that Numba caches each kind in its own index beside this
    file's other kernels, and a changed table or kernel never loads a stale one.
    """
    key = (tuple(sorted({int(c) for c in codes})), int(loss_code), int(opt_code), bool(l2))
    kernel = _KERNELS.get(key)
    if kernel is not None:
        return kernel
    with _KERNELS_LOCK:
        kernel = _KERNELS.get(key)
        if kernel is None:
            kernel = _KERNELS[key] = _make_epoch_kernel(key)
    return kernel


def _make_epoch_kernel(key):
    from .. import _activation_table
    from . import _codegen, _contract, _numba_generated

    codes, loss_code, opt_code, l2 = key
    source = _codegen.numba_epoch_source(_activation_table, _contract, codes, loss_code,
                                         opt_code)
    digest = hashlib.sha256((source + _numba_generated.SOURCE_DIGEST).encode()).hexdigest()
    tag = (f"_a{'_'.join(map(str, codes))}__l{loss_code}__o{opt_code}{'__p' if l2 else ''}"
           f"__{digest[:10]}")
    namespace = dict(vars(_numba_generated))
    namespace.update(globals())
    namespace["_L2"] = l2  # (a constant to Numba: without the penalty, its code is pruned)
    # One compiled function, not a dozen: each function Numba compiles on its own costs a
    # pipeline and an LLVM module (~0.1-0.4 s), so the kernel inlines all that it calls
    # but the products.
    namespace["_INNER"] = _INLINE
    for name in ("_softmax_xent", "_sigmoid_bce", "_mse", "_count_correct", "_column_sums",
                 "_l2_penalty",
                 *(f"_update_{opt}" for opt in _contract.UPDATES)):
        namespace[name] = njit(**_INLINE)(getattr(namespace[name], "py_func", namespace[name]))
    exec(compile(source, f"<fusenn.backends._numba epoch {tag}>", "exec"), namespace)
    body = _train_epoch
    clone = _pytypes.FunctionType(body.__code__, namespace, body.__name__ + tag,
                                  body.__defaults__, body.__closure__)
    clone.__qualname__ = body.__qualname__ + tag
    clone.__doc__ = body.__doc__
    return EpochKernel(key, source, njit(**_JIT)(clone))


def _compile_for(kernel, args):
    """Compile (or load) ``kernel`` for the types of its arguments ``args``, unless this
    process has it already (typing 22 arguments would cost tens of microseconds a fit)."""
    ready = (kernel.key, args[5].dtype, type(args[13]))
    if ready in _READY:
        return
    dispatcher = kernel.dispatcher
    types = tuple(numba.typeof(a) for a in args)
    if types not in dispatcher.overloads:
        notice = threading.Timer(NOTICE_AFTER, _say_compiling)
        notice.daemon = True
        notice.start()
        try:
            dispatcher.compile(types)
        finally:
            notice.cancel()
    _READY.add(ready)


def _say_compiling():
    later = ("once; later runs load it from Numba's cache" if _JIT["cache"] else
             "in every process: Numba has no writable cache directory")
    print(f"fusenn: Numba is compiling the training kernel for this model on this machine "
          f"({later})...", file=sys.stderr, flush=True)


#: Seconds a compile may take before :func:`prepare_epoch` says that it is compiling.
NOTICE_AFTER = 1.0
#: (kernel key, data type, state type) for which an epoch kernel is ready in this process.
_READY = set()
#: kernel key -> :class:`EpochKernel`, made in this process.
_KERNELS = {}
_KERNELS_LOCK = threading.Lock()


def _epoch_args(flat, grad, widths, codes, params, X, labels, targets, perm, batch_size,
                loss_code, opt_code, hyper, state, losses, correct):
    """The compiled kernel's arguments (None for no samples), checked and planned, with the
    workspaces it needs allocated."""
    if loss_code not in (LOSS_SOFTMAX_XENT, LOSS_SIGMOID_BCE, LOSS_MSE, LOSS_HALF_MSE):
        raise ArgumentError(f"unknown loss code {loss_code}")
    if opt_code not in (OPT_SGD, OPT_ADAM, OPT_RMSPROP, OPT_ADAGRAD):
        raise ArgumentError(f"unknown optimiser code {opt_code}")
    n = X.shape[0]
    perm = np.ravel(perm)
    if n == 0:
        return None
    if perm.shape[0] == 0 or perm.shape[0] % n:
        raise ArgumentError(f"perm has {perm.shape[0]} entries, expected one or more rows of "
                            f"{n} (one order of the samples per epoch)")
    widths = np.asarray(widths, dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    unknown = sorted(set(codes.tolist()) - set(BY_CODE))
    if unknown:
        raise ArgumentError(f"unknown activation codes {unknown}")
    batch_size = int(batch_size)
    plan = plan_epoch(widths, codes, max(1, min(batch_size, n)), LINEAR)
    offsets = [np.frombuffer(o, dtype=np.int64) for o in (plan.woff, plan.aoff, plan.zoff,
                                                          plan.dzoff)]
    counts = _NO_COUNTS if correct is None or np.size(correct) == 0 else correct.reshape(-1)
    xent = loss_code == LOSS_SOFTMAX_XENT
    hyper = np.asarray(hyper, dtype=np.float64)
    if hyper.ndim != 1 or hyper.shape[0] < N_HYPER:
        raise ArgumentError(f"hyper has shape {hyper.shape}, expected ({N_HYPER},)")
    # the activation parameters in the data's type (kinks compare as the oracle compares)
    pr = np.asarray(params, dtype=np.float64).astype(X.dtype)
    yl_buf = np.empty(batch_size if xent else 0, dtype=np.int64)
    yt_buf = np.empty(0 if xent else batch_size * int(widths[-1]), dtype=X.dtype)
    acc = np.empty(int(widths[1:].max()), dtype=np.float64)
    return (flat, grad, widths, codes, pr, X, labels, targets, perm, batch_size,
            int(loss_code), int(opt_code), hyper, state,
            losses.reshape(-1), counts, *offsets, np.empty(plan.size, dtype=X.dtype),
            yl_buf, yt_buf, acc)


_NO_COUNTS = np.empty(0)
