"""The NumPy backend: the reference implementation of fusenn's kernel contract.

This module is the oracle. Every compiled backend (``fusenn._cykernels`` from csrc/, and
:mod:`fusenn.backends._numba`) implements the same functions with the same arguments, and the
test-suite checks them against these, for float32 and float64.

"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .._activation_table import BY_CODE, LINEAR, SOFTMAX
from ._contract import (H_BETA1, H_BETA2, H_EPS, H_LR, H_MOMENTUM, H_NESTEROV,  # noqa: F401
                        H_L2, H_RHO, H_STEP, H_WEIGHT_DECAY, LOSS_HALF_MSE, LOSS_MSE,
                        LOSS_SIGMOID_BCE, LOSS_SOFTMAX_XENT, N_HYPER, OPT_ADAGRAD, OPT_ADAM,
                        OPT_RMSPROP, OPT_SGD)
from ..errors import ArgumentError as _ArgumentError

if TYPE_CHECKING:  # for the annotations only: this module's public callables are the kernels
    from typing import List, Optional, Tuple

    from .._typing import Array

NAME = "numpy"


#: Whether the Trainer runs whole epochs here. No: :func:`train_epoch` is the reference the
#: compiled epochs are tested against; the Trainer's per-batch path is the NumPy path.
WHOLE_EPOCHS = False


# --------------------------------------------------------------------------- activations
def act_forward(z: Array, code: int, p0: float, p1: float, out: Array) -> None:
    if code == SOFTMAX:
        softmax(z, out)
    else:
        out[...] = BY_CODE[code].forward(z, p0, p1)


def act_derivative(z: Array, a: Array, code: int, p0: float, p1: float, out: Array) -> None:
    if code == SOFTMAX:
        np.multiply(a, 1 - a, out=out)
    else:
        out[...] = BY_CODE[code].derivative(z, p0, p1)


def _act_backward(z: Array, a: Array, dy: Array, code: int, p0: float, p1: float,
                  dz: Array) -> None:
    """dz = dy * f'(z), or the softmax Jacobian-vector product; dz may be dy."""
    if code == SOFTMAX:
        s = np.sum(dy * a, axis=1, keepdims=True)
        np.subtract(dy, s, out=dz)
        dz *= a
    elif code == LINEAR:
        if dz is not dy:
            dz[...] = dy
    else:
        np.multiply(dy, BY_CODE[code].derivative(z, p0, p1), out=dz)


# --------------------------------------------------------------------------- dense layer
def dense_forward(x: Array, W: Array, b: Optional[Array], code: int, p0: float, p1: float,
                  z: Array, a: Array) -> bool:
    # silent like the compiled kernels: the caller learns of a NaN or infinity from the result
    with np.errstate(over="ignore", invalid="ignore"):
        np.matmul(x, W, out=z)
        if b is not None:
            z += b
        if a is not z:
            act_forward(z, code, p0, p1, a)
    return bool(np.isfinite(z).all())


def dense_backward(x: Array, W: Array, z: Array, a: Array, dy: Array, code: int, p0: float,
                   p1: float, dz: Array, dW: Array, db: Optional[Array],
                   dx: Optional[Array]) -> None:
    _act_backward(z, a, dy, code, p0, p1, dz)
    np.matmul(x.T, dz, out=dW)
    if db is not None:
        np.sum(dz, axis=0, out=db)
    if dx is not None:
        np.matmul(dz, W.T, out=dx)


# --------------------------------------------------------------------------- softmax family
def logsumexp(z: Array, out: Array) -> None:
    m = np.max(z, axis=1)
    out[...] = m + np.log(np.sum(np.exp(z - m[:, None]), axis=1))


def softmax(z: Array, out: Array) -> None:
    np.subtract(z, np.max(z, axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= np.sum(out, axis=1, keepdims=True)


def log_softmax(z: Array, out: Array) -> None:
    lse = np.empty(z.shape[0], dtype=z.dtype)
    logsumexp(z, lse)
    np.subtract(z, lse[:, None], out=out)


# --------------------------------------------------------------------------- fused losses
def softmax_xent(logits: Array, labels: Array, grad: Optional[Array]) -> float:
    n = logits.shape[0]
    lse = np.empty(n, dtype=logits.dtype)
    logsumexp(logits, lse)
    rows = np.arange(n)
    loss: float = float(np.sum(lse.astype(np.float64) - logits[rows, labels])) / n
    if grad is not None:
        softmax(logits, grad)
        grad[rows, labels] -= 1
        grad /= n
    return loss


def softmax_xent_probs(logits: Array, targets: Array, grad: Optional[Array]) -> float:
    n = logits.shape[0]
    lse = np.empty(n, dtype=logits.dtype)
    logsumexp(logits, lse)
    tsum: Array = targets.sum(axis=1, dtype=np.float64)
    loss: float = float(np.sum(lse * tsum - np.sum(targets * logits, axis=1, dtype=np.float64))) / n
    if grad is not None:
        softmax(logits, grad)
        grad *= tsum[:, None].astype(grad.dtype)
        grad -= targets
        grad /= n
    return loss


def sigmoid_bce(logits: Array, targets: Array, grad: Optional[Array]) -> float:
    count = logits.size
    z = logits
    per = np.maximum(z, 0) - targets * z + np.log1p(np.exp(-np.abs(z)))
    loss = float(np.sum(per, dtype=np.float64)) / count
    if grad is not None:
        e = np.exp(-np.abs(z))
        grad[...] = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
        grad -= targets
        grad /= count
    return loss


def mse(pred: Array, targets: Array, grad: Optional[Array], half: bool) -> float:
    diff = pred - targets
    total = float(np.sum(np.square(diff, dtype=np.float64)))
    if half:
        n: int = pred.shape[0]
        loss = total / (2 * n)
        scale = 1.0 / n
    else:
        loss = total / pred.size
        scale = 2.0 / pred.size
    if grad is not None:
        np.multiply(diff, scale, out=grad)
    return loss


# --------------------------------------------------------------------------- optimisers
def _decayed(p: Array, g: Array, weight_decay: float) -> Array:
    return g + weight_decay * p if weight_decay else g


def sgd_update(p: Array, g: Array, vel: Array, lr: float, momentum: float, nesterov: bool,
               weight_decay: float) -> None:
    g = _decayed(p, g, weight_decay)
    if momentum:
        vel *= momentum
        vel += g
        step = g + momentum * vel if nesterov else vel
    else:
        step = g
    p -= lr * step


def adam_update(p: Array, g: Array, m: Array, v: Array, lr: float, beta1: float, beta2: float,
                eps: float, weight_decay: float, t: int) -> None:
    g = _decayed(p, g, weight_decay)
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * (g * g)
    bc1 = 1.0 - beta1 ** t
    bc2 = 1.0 - beta2 ** t
    p -= lr * (m / bc1) / (np.sqrt(v / bc2) + eps)


def rmsprop_update(p: Array, g: Array, sq: Array, lr: float, rho: float, eps: float,
                   weight_decay: float) -> None:
    g = _decayed(p, g, weight_decay)
    sq *= rho
    sq += (1 - rho) * (g * g)
    p -= lr * g / (np.sqrt(sq) + eps)


def adagrad_update(p: Array, g: Array, acc: Array, lr: float, eps: float,
                   weight_decay: float) -> None:
    g = _decayed(p, g, weight_decay)
    acc += g * g
    p -= lr * g / (np.sqrt(acc) + eps)


def _optimizer_step(opt_code: int, flat: Array, grad: Array, hyper: Array, state: Array,
                    t: int) -> None:
    """Apply optimiser ``opt_code`` with the ``hyper`` vector; ``t`` is the 1-based step."""
    lr, wd, eps = hyper[H_LR], hyper[H_WEIGHT_DECAY], hyper[H_EPS]
    if opt_code == OPT_SGD:
        sgd_update(flat, grad, state[0], lr, hyper[H_MOMENTUM], bool(hyper[H_NESTEROV]), wd)
    elif opt_code == OPT_ADAM:
        adam_update(flat, grad, state[0], state[1], lr, hyper[H_BETA1], hyper[H_BETA2], eps,
                    wd, t)
    elif opt_code == OPT_RMSPROP:
        rmsprop_update(flat, grad, state[0], lr, hyper[H_RHO], eps, wd)
    elif opt_code == OPT_ADAGRAD:
        adagrad_update(flat, grad, state[0], lr, eps, wd)
    else:
        raise _ArgumentError(f"unknown optimiser code {opt_code}")


# --------------------------------------------------------------------------- whole epoch
def _l2_penalty(flat: Array, grad: Array, widths: Array, l2: float, m: int) -> float:
    """Add the gradient ``(l2 / m) W`` of train_epoch's L2 penalty to every layer's weight
    gradient in ``grad`` and return the penalty ``l2 / (2 m) * sum(W**2)`` (biases exempt)."""
    total = 0.0
    c = flat.dtype.type(l2 / m)
    for (W, _), (gW, _) in zip(layer_views(flat, widths), layer_views(grad, widths)):
        total += float(np.sum(np.square(W, dtype=np.float64)))
        gW += c * W
    return 0.5 * l2 * total / m


def layer_views(flat: Array, widths: Array) -> List[Tuple[Array, Array]]:
    """``[(W, b), ...]`` views into the flat parameter vector (W row-major ``(n_in, n_out)``)."""
    views: List[Tuple[Array, Array]] = []
    off = 0
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        n_in, n_out = int(n_in), int(n_out)
        W = flat[off:off + n_in * n_out].reshape(n_in, n_out)
        off += n_in * n_out
        b = flat[off:off + n_out]
        off += n_out
        views.append((W, b))
    return views


def _loss_forward_backward(loss_code: int, out: Array, labels: Array, targets: Array,
                           grad: Optional[Array]) -> float:
    """Loss value and its gradient wrt ``out`` for train_epoch's ``loss_code``."""
    if loss_code == LOSS_SOFTMAX_XENT:
        return softmax_xent(out, labels, grad)
    if loss_code == LOSS_SIGMOID_BCE:
        return sigmoid_bce(out, targets, grad)
    if loss_code in (LOSS_MSE, LOSS_HALF_MSE):
        return mse(out, targets, grad, loss_code == LOSS_HALF_MSE)
    raise _ArgumentError(f"unknown loss code {loss_code}")


def train_epoch(flat: Array, grad: Array, widths: Array, codes: Array, params: Array, X: Array,
                labels: Array, targets: Array, perm: Array, batch_size: int, loss_code: int,
                opt_code: int, hyper: Array, state: Array, losses: Array,
                correct: Optional[Array] = None) -> int:
    """Train a stack of Dense layers for one epoch, or several; return the number of batches
    completed.

    ``flat`` holds every layer's ``W`` then ``b`` (see :func:`layer_views`), ``grad`` is a
    workspace of the same size. ``widths`` (int64, L+1) are the layer sizes, ``codes`` (int64,
    L) and ``params`` (float64, (L, 2)) the activations. Samples are visited in the order
    ``perm`` (int64), ``batch_size`` at a time (the last batch may be smaller); a 2-D ``perm``
    of shape ``(E, n)`` runs ``E`` epochs, one row each, in one call. ``labels`` (int64) serve
    the softmax cross-entropy, ``targets`` (2-D, dtype D) the others; the unused one may be
    empty. ``hyper`` (float64, N_HYPER) holds the optimiser's settings and, at ``H_STEP``, the
    number of steps taken before this call. ``state`` (2, P) is the optimiser's state.
    ``losses`` (float64, one entry per batch of every epoch: ``(n_batches,)`` or ``(E,
    n_batches)``) receives each batch's mean loss. ``hyper[H_L2]`` > 0 adds an L2 penalty on
    the weights (:func:`_l2_penalty`): to each batch's loss (after the finiteness check, which
    looks at the data's loss) and to the weights' gradients, before the optimiser's step.

    ``correct`` (None, empty, or shaped as ``losses``) receives each batch's count of correct
    predictions, judged on the batch's outputs before its update (as Keras reports training
    accuracy): softmax cross-entropy, rows whose largest logit (the first, on ties) is the
    label; sigmoid cross-entropy, outputs whose sign of the logit matches ``target > 0.5``;
    squared errors, outputs with ``(output > 0.5) == (target > 0.5)``.

    If a batch's loss is not finite the call stops before updating on it, leaving the weights
    at their last finite values, and its index counted over all epochs is returned (fewer than
    ``E * n_batches``).
    """
    perm = np.asarray(perm)
    if np.ndim(hyper) != 1 or len(hyper) < N_HYPER:
        raise _ArgumentError(f"hyper has shape {np.shape(hyper)}, expected ({N_HYPER},)")
    orders = perm.reshape(1, -1) if perm.ndim == 1 else perm
    n: int = X.shape[0]
    views = layer_views(flat, widths)
    gviews = layer_views(grad, widths)
    L = len(views)
    # workspaces, once per call: activations a[l] (a[0] is the batch input) and z[l]
    a = [np.empty((batch_size, int(w)), dtype=X.dtype) for w in widths]
    z = [np.empty((batch_size, int(w)), dtype=X.dtype) for w in widths[1:]]
    dz = [np.empty((batch_size, int(w)), dtype=X.dtype) for w in widths]
    step = int(hyper[H_STEP])
    n_batches = (n + batch_size - 1) // batch_size
    flat_losses = losses.reshape(-1)
    counts = None if correct is None or np.size(correct) == 0 else correct.reshape(-1)
    for e, order in enumerate(orders):
        for k in range(n_batches):
            kk = e * n_batches + k
            idx = order[k * batch_size:(k + 1) * batch_size]
            m = idx.shape[0]
            np.take(X, idx, axis=0, out=a[0][:m])
            for l in range(L):
                W, b = views[l]
                dense_forward(a[l][:m], W, b, codes[l], params[l, 0], params[l, 1], z[l][:m],
                              a[l + 1][:m])
            out = a[L][:m]
            yl = labels[idx] if loss_code == LOSS_SOFTMAX_XENT else labels
            yt = targets if loss_code == LOSS_SOFTMAX_XENT else targets[idx]
            if counts is not None:
                counts[kk] = _count_correct(loss_code, out, yl, yt)
            loss = _loss_forward_backward(loss_code, out, yl, yt, dz[L][:m])
            flat_losses[kk] = loss
            if not math.isfinite(loss):
                return kk
            for l in range(L - 1, -1, -1):
                W, _ = views[l]
                gW, gb = gviews[l]
                dense_backward(a[l][:m], W, z[l][:m], a[l + 1][:m], dz[l + 1][:m], codes[l],
                               params[l, 0], params[l, 1], dz[l + 1][:m], gW, gb,
                               dz[l][:m] if l > 0 else None)
            if hyper[H_L2] != 0:
                flat_losses[kk] += _l2_penalty(flat, grad, widths, hyper[H_L2], m)
            step += 1
            _optimizer_step(opt_code, flat, grad, hyper, state, step)
    done: int = orders.shape[0] * n_batches
    return done


def _count_correct(loss_code: int, out: Array, labels: Array, targets: Array) -> float:
    """How many of a batch's predictions are correct, as :func:`train_epoch` counts them:
    ``out`` are the last layer's outputs (logits for the two cross-entropies)."""
    if loss_code == LOSS_SOFTMAX_XENT:
        return float(np.count_nonzero(np.argmax(out, axis=1) == labels))
    threshold = 0.0 if loss_code == LOSS_SIGMOID_BCE else 0.5
    return float(np.count_nonzero((out > threshold) == (targets > 0.5)))
