"""The kernel contract: what every backend implements, with the codes and layouts it shares.

Three backends implement the same kernels with the same arguments: :mod:`._numpy` (the
reference and oracle), the Cython extension compiled from ``csrc/``, and :mod:`._numba`. This
module is what they agree on, and everything else imports the agreement from here: the kernel
names (:data:`KERNELS`), the loss and optimiser codes of ``train_epoch``, the indexes of its
``hyper`` vector, each optimiser's state size, and the layout of the whole-epoch workspace
(:func:`plan_epoch`), planned once here for both compiled epochs. Activation codes come from
:mod:`fusenn._activation_table`.

It imports nothing but the standard library, so that ``setup.py`` can read it at build time
(the Cython constants are generated from it).

Arguments are already validated by the Python layer: arrays are 2-D and C-contiguous unless
said otherwise, all of one float dtype ``D`` (float32 or float64), finite, with fitting shapes.
Outputs are preallocated by the caller and written in place; kernels allocate nothing that
outlives the call. Activations are passed as ``(code, p0, p1)`` from
:meth:`fusenn._activation_table.ActivationDef.kernel_args`.

``act_forward(z, code, p0, p1, out)``
    ``out = f(z)``; ``out`` may be ``z``.
``act_derivative(z, a, code, p0, p1, out)``
    ``out = f'(z)`` elementwise given ``a = f(z)`` (softmax: its Jacobian's diagonal ``a(1-a)``).
``dense_forward(x, W, b, code, p0, p1, z, a) -> bool``
    ``z = x @ W + b`` then ``a = f(z)``. ``b`` may be None (no bias). ``a`` may be ``z`` only
    for LINEAR. Softmax (code 26) is applied per row. Returns whether every element of ``z``
    is finite (a NaN or infinity of ``x``, ``W`` or ``b`` reaches ``z``), so that a caller
    checks its inputs in the kernel's own pass.
``dense_backward(x, W, z, a, dy, code, p0, p1, dz, dW, db, dx)``
    ``dz = dy * f'(z)`` (softmax: ``a * (dy - sum(dy * a, row))``), then ``dW = x.T @ dz``,
    ``db = dz.sum(0)``, ``dx = dz @ W.T``. ``dz`` may be ``dy``; ``db`` and ``dx`` may be None.
    ``a`` is ``f(z)``, so a backend may take ``f'`` from it where that is cheaper (sigmoid:
    ``a (1 - a)``; tanh: ``1 - a^2``); the results agree to rounding.
``softmax(z, out)``, ``log_softmax(z, out)``, ``logsumexp(z, out)``
    along the last axis, max-subtracted; ``logsumexp``'s ``out`` is 1-D of length ``z.shape[0]``;
    the others' ``out`` may be ``z``.
``softmax_xent(logits, labels, grad) -> float``
    mean over rows of ``logsumexp(z) - z[label]``; ``labels`` int64 1-D. ``grad`` (or None)
    receives the gradient of that mean: ``(softmax(z) - onehot(labels)) / n``.
``softmax_xent_probs(logits, targets, grad) -> float``
    the same with target distributions (one-hot or soft rows):
    loss ``mean_i sum_k t_ik (logsumexp(z_i) - z_ik)``, grad ``(softmax(z) sum_k t - t) / n``.
``sigmoid_bce(logits, targets, grad) -> float``
    mean over all elements of ``softplus(z) - t z``; grad ``(sigmoid(z) - t) / (n k)``.
``mse(pred, targets, grad, half) -> float``
    ``half=False``: mean over all elements of ``(y - t)^2``, grad ``2 (y - t) / (n k)``.
    ``half=True``: the notes' ``1/(2n) sum_i sum_k (t - y)^2``, grad ``(y - t) / n``.
    Loss values are accumulated in float64 and returned as Python floats.
``sgd_update(p, g, vel, lr, momentum, nesterov, weight_decay)``
    1-D arrays. ``g' = g + wd p``; with momentum ``vel = momentum vel + g'`` and the step is
    ``g' + momentum vel`` (Nesterov) or ``vel``; without, the step is ``g'`` (``vel`` may be
    None). ``p -= lr step``. ``g`` is not modified.
``adam_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, t)``
    ``t`` is the 1-based step. ``g' = g + wd p``; ``m = b1 m + (1-b1) g'``;
    ``v = b2 v + (1-b2) g'^2``; ``p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.
``rmsprop_update(p, g, sq, lr, rho, eps, weight_decay)``
    ``sq = rho sq + (1-rho) g'^2``; ``p -= lr g' / (sqrt(sq) + eps)``.
``adagrad_update(p, g, acc, lr, eps, weight_decay)``
    ``acc += g'^2``; ``p -= lr g' / (sqrt(acc) + eps)``.
``train_epoch(flat, grad, widths, codes, params, X, labels, targets, perm, batch_size,
loss_code, opt_code, hyper, state, losses, correct=None) -> int``
    Mini-batch training of a stack of Dense layers for one epoch, or for several in one call
    (one row of ``perm`` per epoch); ``correct`` receives each batch's count of correct
    predictions, see :func:`train_epoch`.
"""
from __future__ import annotations

import array
import functools
from typing import Iterable, NamedTuple, Optional, SupportsInt, Tuple

#: Every kernel of the contract, in the order documented above: its arguments and what it
#: computes (in short). The compiled backends' Python entry points are generated from this.
KERNELS = {
    "act_forward": ("z, code, p0, p1, out",
                    "``out = f(z)`` elementwise (softmax: per row); ``out`` may be ``z``."),
    "act_derivative": ("z, a, code, p0, p1, out",
                       "``out = f'(z)`` given ``a = f(z)`` (softmax: ``a (1 - a)``)."),
    "dense_forward": ("x, W, b, code, p0, p1, z, a",
                      "``z = x @ W + b`` then ``a = f(z)``, fused; ``b`` may be None. "
                      "Returns whether every element of ``z`` is finite."),
    "dense_backward": ("x, W, z, a, dy, code, p0, p1, dz, dW, db, dx",
                       "``dz = dy * f'(z)``; ``dW = x.T @ dz``; ``db = dz.sum(0)``; "
                       "``dx = dz @ W.T``."),
    "softmax": ("z, out", "``out = exp(z - max) / sum`` along the last axis."),
    "log_softmax": ("z, out", "``out = z - logsumexp(z)`` along the last axis."),
    "logsumexp": ("z, out", "``out[i] = max z[i] + log(sum exp(z[i] - max z[i]))``."),
    "softmax_xent": ("logits, labels, grad",
                     "Mean softmax cross-entropy of int64 ``labels``; gradient into ``grad``."),
    "softmax_xent_probs": ("logits, targets, grad",
                           "Softmax cross-entropy against target distributions."),
    "sigmoid_bce": ("logits, targets, grad",
                    "Mean binary cross-entropy from logits, ``softplus(z) - t z``."),
    "mse": ("pred, targets, grad, half",
            "Mean squared error (``half``: the notes' 1/(2n) sum); gradient into ``grad``."),
    "sgd_update": ("p, g, vel, lr, momentum, nesterov, weight_decay",
                   "In place SGD step with momentum/Nesterov and weight decay."),
    "adam_update": ("p, g, m, v, lr, beta1, beta2, eps, weight_decay, t",
                    "In place Adam step ``t`` (1-based) with bias correction."),
    "rmsprop_update": ("p, g, sq, lr, rho, eps, weight_decay", "In place RMSprop step."),
    "adagrad_update": ("p, g, acc, lr, eps, weight_decay", "In place Adagrad step."),
    "train_epoch": ("flat, grad, widths, codes, params, X, labels, targets, perm, batch_size, "
                    "loss_code, opt_code, hyper, state, losses, correct=None",
                    "Epochs of mini-batch training of a stack of Dense layers (one per row of "
                    "``perm``), counting correct predictions."),
}

#: train_epoch's loss codes, by name (never renumber; append).
LOSSES = ("softmax_xent", "sigmoid_bce", "mse", "half_mse")
#: train_epoch's optimiser codes, by name, with the number of state vectors each keeps
#: (SGD keeps its velocity only with momentum).
OPTIMIZERS = {"sgd": 1, "adam": 2, "rmsprop": 1, "adagrad": 1}
#: The entries of train_epoch's ``hyper`` vector, by position. ``l2`` is an L2 penalty on the
#: loss rather than a decay in the optimiser: each batch's loss gains ``l2 / (2 m) * sum(W**2)``
#: over every layer's weights (not the biases; m the batch's rows, before the batch's update)
#: and each weight's gradient ``(l2 / m) W`` (scikit-learn's ``alpha``).
HYPER = ("lr", "momentum", "nesterov", "weight_decay", "beta1", "beta2", "eps", "rho", "step",
         "l2")



class Update(NamedTuple):
    """One optimiser's step of one parameter, in the kernel language of the activation table.

    ``body`` computes the new value of the parameter ``p`` from ``g``, its gradient with the
    weight decay added (``g + weight_decay p``): ``name = expression;`` bindings (a binding to
    one of the ``state`` names stores that state element), then the new ``p``. It may use the
    hyper-parameters by their names in :data:`HYPER` and the ``setup`` values, computed once per
    step in double precision from the hyper-parameters and the 1-based step ``t``. Where
    ``plain`` holds, the step is ``p - lr * g`` and the state is neither read nor written.
    """

    state: Tuple[str, ...]
    body: str
    setup: Tuple[Tuple[str, str], ...] = ()  # ((name, expression), ...)
    plain: str = ""


#: Each optimiser's step, by name as in :data:`OPTIMIZERS`. The compiled backends' update
#: loops are generated from these (fusenn.backends._codegen); the NumPy backend is the oracle.
UPDATES = {
    "sgd": Update(("vel",), "v = vel * momentum + g; vel = v; "
                            "p - lr * (g + momentum * v if nesterov else v)",
                  plain="momentum == 0"),
    "adam": Update(("m", "v"), "mi = m * beta1 + c1 * g; vi = v * beta2 + c2 * (g * g); "
                               "m = mi; v = vi; p - lr * (mi / bc1) / (sqrt(vi / bc2) + eps)",
                   setup=(("c1", "1 - beta1"), ("c2", "1 - beta2"),
                          ("bc1", "1 - pow(beta1, t)"), ("bc2", "1 - pow(beta2, t)"))),
    "rmsprop": Update(("sq",), "s = sq * rho + c * (g * g); sq = s; "
                               "p - lr * g / (sqrt(s) + eps)", setup=(("c", "1 - rho"),)),
    "adagrad": Update(("acc",), "s = acc + g * g; acc = s; p - lr * g / (sqrt(s) + eps)"),
}

LOSS_SOFTMAX_XENT, LOSS_SIGMOID_BCE, LOSS_MSE, LOSS_HALF_MSE = range(len(LOSSES))
OPT_SGD, OPT_ADAM, OPT_RMSPROP, OPT_ADAGRAD = range(len(OPTIMIZERS))
(H_LR, H_MOMENTUM, H_NESTEROV, H_WEIGHT_DECAY, H_BETA1, H_BETA2, H_EPS, H_RHO, H_STEP,
 H_L2) = range(len(HYPER))
N_HYPER = len(HYPER)

#: The integer constants of the contract, by name (generated into the Cython module too).
CONSTANTS = {name: value for name, value in globals().items()
             if name.startswith(("LOSS_", "OPT_", "H_")) or name == "N_HYPER"}


def epoch_supports(loss_code: Optional[int], opt_code: Optional[int]) -> bool:
    """Whether a compiled ``train_epoch`` runs this loss and optimiser (both have codes)."""
    return loss_code in range(len(LOSSES)) and opt_code in range(len(OPTIMIZERS))


def state_rows(opt_code: int, momentum: float = 0.0) -> int:
    """How many state vectors optimiser ``opt_code`` keeps (plain SGD: none)."""
    if opt_code == OPT_SGD and momentum == 0:
        return 0
    return list(OPTIMIZERS.values())[opt_code]


class EpochPlan(NamedTuple):
    """Where each buffer of a whole-epoch run lives in one workspace of ``size`` elements.

    ``woff[l]``: layer l's ``W`` in the flat parameter vector (its ``b`` follows, and the
    gradient vector has the same layout). In the workspace: ``aoff[0]`` the batch's rows,
    ``zoff[l]`` layer l's pre-activation, ``aoff[l + 1]`` its output (the same as ``zoff[l]``
    for a linear layer, which keeps no separate output) and ``dzoff[l + 1]`` the gradient wrt
    its pre-activation. Each holds ``rows`` rows of the layer's width.
    """

    woff: array.array[int]  # int64 ("q"), readable as NumPy arrays or typed memoryviews
    aoff: array.array[int]
    zoff: array.array[int]
    dzoff: array.array[int]
    n_params: int
    size: int


def plan_epoch(widths: Iterable[SupportsInt], codes: Iterable[SupportsInt], rows: int,
               linear_code: int = 0) -> EpochPlan:
    """The :class:`EpochPlan` of layers of ``widths`` with activation ``codes``, batches of at
    most ``rows`` rows (planned once per network and batch size: the plans are cached)."""
    return _plan(tuple(int(w) for w in widths), tuple(int(c) for c in codes), int(rows),
                 int(linear_code))


@functools.lru_cache(maxsize=64)
def _plan(widths: Tuple[int, ...], codes: Tuple[int, ...], rows: int,
          linear_code: int) -> EpochPlan:
    L = len(widths) - 1
    woff: list[int] = []
    p = 0
    for l in range(L):
        woff.append(p)
        p += widths[l] * widths[l + 1] + widths[l + 1]
    zoff: list[int] = []
    aoff, dzoff = [0], [0]  # dzoff[0] is never used: the first layer has no dx
    off = rows * widths[0]
    for l in range(L):
        size = rows * widths[l + 1]
        zoff.append(off)
        off += size
        if codes[l] == linear_code:
            aoff.append(zoff[l])
        else:
            aoff.append(off)
            off += size
        dzoff.append(off)
        off += size
    # int64 buffers
    return EpochPlan(array.array("q", woff), array.array("q", aoff), array.array("q", zoff),
                     array.array("q", dzoff), p, off)


assert list(UPDATES) == list(OPTIMIZERS), "UPDATES follows the optimiser codes"
