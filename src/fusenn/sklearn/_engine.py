"""The training and prediction engine behind the scikit-learn face.

scikit-learn's MLP keeps its weights in two lists, ``coefs_`` (``W_i`` of shape
``(fan_in, fan_out)``) and ``intercepts_``, and packs them for L-BFGS as ``W0, W1, ..., b0,
b1, ...``. :class:`FlatNet` keeps them in one vector of exactly that order (the lists are views
into it), with a gradient vector of the same layout, so that

* one Numba pass applies scikit-learn's gradient scaling and optimiser update to the whole
  network (the L2 penalty touches the first ``n_w`` entries only: the weights);
* L-BFGS works on the vector as it is, without packing and unpacking.

:class:`Passes` runs the forward and backward passes of a mini-batch with fusenn's compiled
dense kernels (``dense_forward``: ``z = x W + b, a = f(z)``; ``dense_backward``:
``dz = dy f'(z), dW = x^T dz, db = sum dz, dx = dz W^T``), writing into buffers allocated
once per fit. The output layer is computed as raw values ``z`` and handed to the output
kernels of :mod:`._kernels`, which apply scikit-learn's output activation, its loss value
and its error term ``delta = (output - target) * sample_weight`` in one pass.

One compiled call per epoch
---------------------------
For dense input, :class:`CompiledEpoch` runs a whole epoch in one call of
:func:`._kernels.train_epoch` (a Python loop over mini-batches calling about eight compiled
kernels each cost ~40 us per batch of a 64-64-10 network, most of it call overhead). The
backends' whole-epoch ``train_epoch`` cannot give scikit-learn's numbers; the face's own
kernel does what they would need beyond it:

1. weight decay on the weights only (biases exempt): the first ``n_w`` entries of the flat
   vector in scikit-learn's packing order ``W0, W1, ..., b0, b1, ...``;
2. scikit-learn's scaling, per batch: ``g_W = (x^T delta + alpha W) / d``, ``g_b =
   sum(delta) / d`` with ``delta = output - target`` undivided and ``d`` the batch's rows (the
   last batch is smaller) or the sum of its sample weights - i.e. a decay ``alpha / d`` that
   changes with the batch, applied after the product;
3. scikit-learn's SGD form ``v = momentum v - lr g; p += v`` (Nesterov: ``p += momentum v -
   lr g``): the velocity holds ``lr`` inside it, so a learning rate changed between epochs
   (invscaling, adaptive) does not rescale the past, unlike ``v = momentum v + g; p -= lr v``;
4. scikit-learn's Adam form ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); p -= lr_t m / (sqrt(v)
   + eps)`` (epsilon added to the uncorrected ``sqrt(v)``);
5. per-row sample weights multiplying ``delta`` and the loss;
6. the output losses as scikit-learn reports them: log-loss with probabilities clipped to
   ``[eps, 1 - eps]`` (value only), several independent logistic outputs (multilabel; the
   loss summed over outputs, averaged over rows), half squared error averaged over rows and
   outputs whose gradient is ``output - target`` (not divided by the outputs), Poisson with an
   exponential output;
7. the batch loss including ``0.5 alpha ||W||^2 / d`` of the weights before the update,
   accumulated as ``sum(batch loss * batch rows)``;
8. moments flushed to zero below the dtype's smallest normal number (see
   :mod:`._kernels`).

Its products go to NumPy's own BLAS (the library scikit-learn's run on), its activations are
the generated scalar functions of :mod:`fusenn.backends._numba_generated`, and every step
keeps scikit-learn's order of operations, so that it gives the per-batch path's numbers (a
test checks both paths against each other). The per-batch path remains for sparse input
(the first layer's sparse product), L-BFGS (one full batch) and the NumPy reference backend.
The permutation is scikit-learn's ``shuffle``; stopping, schedules and validation stay per
epoch in Python.

The backend's own epoch
-----------------------
float32 multiclass SGD without sample weights trains on the Cython backend's ``train_epoch``
instead (:class:`SplitEpoch`), which shares each mini-batch between threads (the split epoch)
where fusenn's thread policy picks it; its contract has scikit-learn's L2 penalty
(``hyper[H_L2]``) and the velocity is scikit-learn's up to the factor ``-lr``. Its rounding
differs from scikit-learn's order, so float64 keeps the face's kernel.
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple, cast

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.utils.extmath import safe_sparse_dot

from .. import activations as _acts
from .. import backends
from ..backends import _contract
from ..model import PREDICT_BATCH
from . import _kernels

#: scikit-learn's hidden activation names -> fusenn's.
HIDDEN = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
#: An activation for the kernels: ``(code, p0, p1)``.
Code = Tuple[int, float, float]
_LINEAR: Code = (_acts.LINEAR, 0.0, 0.0)


def hidden_code(name: str) -> Code:
    """``(code, p0, p1)`` of scikit-learn's hidden activation ``name`` for the kernels."""
    act = _acts.get(HIDDEN[name])
    return act.code, act.p0, act.p1


def kernels() -> Any:
    """The concrete backend module the face runs on (the current choice; for ``"auto"``, the
    first available: the dense kernels are the ones that matter here)."""
    return backends.get(backends.resolve())


class FlatNet:
    """Weights and biases in one vector in scikit-learn's packing order, and its gradient.

    ``coefs`` and ``intercepts`` are lists of views into ``flat``; ``dcoefs``/``dintercepts``
    views into ``grad``; ``n_w`` is the number of weights (the entries that the L2 penalty
    covers).
    """

    def __init__(self, coefs: Sequence[np.ndarray], intercepts: Sequence[np.ndarray],
                 dtype: Any) -> None:
        self.units = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
        arrays = list(coefs) + list(intercepts)
        self.n_w = int(sum(c.size for c in coefs))
        self.flat = np.empty(int(sum(a.size for a in arrays)), dtype=dtype)
        self.grad = np.zeros_like(self.flat)
        views: List[np.ndarray] = []
        grads: List[np.ndarray] = []
        off = 0
        for a in arrays:
            views.append(self.flat[off:off + a.size].reshape(a.shape))
            grads.append(self.grad[off:off + a.size].reshape(a.shape))
            views[-1][...] = a
            off += a.size
        n = len(coefs)
        self.coefs, self.intercepts = views[:n], views[n:]
        self.dcoefs, self.dintercepts = grads[:n], grads[n:]


class Passes:
    """Forward and backward passes of up to ``rows`` rows through ``net``, buffers kept."""

    def __init__(self, net: FlatNet, activation: str, rows: int, sparse: bool) -> None:
        self.net = net
        self.be = kernels()
        self.code = hidden_code(activation)
        self.sparse = sparse
        dtype = net.flat.dtype
        widths = net.units[1:]
        last = len(widths) - 1
        self.z = [np.empty((rows, w), dtype) for w in widths]
        self.a = [z if (i == last or self.code[0] == _acts.LINEAR) else np.empty_like(z)
                  for i, z in enumerate(self.z)]
        # dx[i]: gradient with respect to layer i's input (none for the first layer)
        self.dx: List[Optional[np.ndarray]] = [None] + [np.empty((rows, w), dtype)
                                                        for w in net.units[1:-1]]
        self.delta = np.empty((rows, widths[-1]), dtype)
        self.der: Optional[np.ndarray] = np.empty((rows, widths[0]), dtype) if sparse else None

    def forward(self, x: Any, r: int) -> np.ndarray:
        """Raw outputs ``z`` (r, n_outputs) of the last layer for the batch ``x``."""
        be, net, last = self.be, self.net, len(self.z) - 1
        for i, (W, b) in enumerate(zip(net.coefs, net.intercepts)):
            code = self.code if i < last else _LINEAR
            z, a = self.z[i][:r], self.a[i][:r]
            _dense(be, x, W, b, code, z, a, sparse=i == 0 and self.sparse)
            x = a
        return self.z[last][:r]

    def backward(self, x0: Any, r: int) -> None:
        """Backpropagate ``self.delta[:r]`` (dL/dz of the output); fills ``net.grad``.

        The gradients are scikit-learn's unscaled ``x^T delta`` and ``sum delta``: the scaling
        by the weight sum and the L2 term come with the update."""
        be, net, last = self.be, self.net, len(self.z) - 1
        dy = self.delta[:r]
        for i in range(last, -1, -1):
            code = self.code if i < last else _LINEAR
            x = x0 if i == 0 else self.a[i - 1][:r]
            z, a = self.z[i][:r], self.a[i][:r]
            dxi = self.dx[i]
            dx = dxi[:r] if dxi is not None else None  # None for the first layer only
            if i == 0 and self.sparse:
                if code[0] != _acts.LINEAR:
                    assert self.der is not None  # allocated for sparse input
                    der = self.der[:r]
                    be.act_derivative(z, a, *code, der)
                    dy *= der
                net.dcoefs[0][...] = safe_sparse_dot(x.T, dy)
                np.sum(dy, axis=0, out=net.dintercepts[0])
            else:
                be.dense_backward(x, net.coefs[i], z, a, dy, *code, dy, net.dcoefs[i],
                                  net.dintercepts[i], dx)
            if dx is not None:  # (None after the first layer, the last of the loop)
                dy = dx


def output_activation(be: Any, name: str, out: np.ndarray) -> np.ndarray:
    """Apply scikit-learn's output activation ``name`` to ``out`` in place, as it does (the
    softmax in backend ``be``'s row kernel: scikit-learn's max-subtracted form, without NumPy's
    four passes and temporaries over short rows)."""
    if name == "softmax":
        be.softmax(out, out)
    elif name == "logistic":
        expit(out, out=out)
    elif name == "exp":
        np.exp(out, out=out)
    return out


def _dense(be: Any, x: Any, W: np.ndarray, b: np.ndarray, code: Code, z: np.ndarray,
           a: np.ndarray, sparse: bool, check: bool = False) -> bool:
    """One layer: ``z = x @ W + b``, ``a = f(z)`` (``code``: activation code and parameters),
    through the fused dense kernel, or for a sparse ``x`` its product then the activation.
    Returns whether every element of ``z`` is finite (the dense kernel's answer; for a sparse
    ``x`` looked for only with ``check``, else True)."""
    if sparse:
        z[...] = safe_sparse_dot(x, W)
        z += b
        if a is not z:
            be.act_forward(z, *code, a)
        if not check:
            return True
        with np.errstate(invalid="ignore", over="ignore"):
            return bool(np.isfinite(z.sum()))
    return bool(be.dense_forward(x, W, b, *code, z, a))


def predict_raw(X: Any, coefs: Sequence[np.ndarray], intercepts: Sequence[np.ndarray],
                activation: str, out_activation: str,
                check_finite: Optional[Callable[[], Any]] = None) -> np.ndarray:
    """Outputs of the network for ``X`` (dense or CSR), ``PREDICT_BATCH`` rows at a time.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_samples, n_features)
        The input, already validated (converted to the network's dtype chunk by chunk).
    coefs, intercepts : list of ndarray
        C-ordered weights ``(fan_in, fan_out)`` and biases, in one dtype.
    activation, out_activation : str
        scikit-learn's names of the hidden and the output activation.
    check_finite : callable or None, default=None
        Called (once) when a chunk's first-layer values ``x W + b`` are not all finite: the
        caller's deferred finiteness check of ``X`` (scikit-learn's, raising its error), made
        only then. A NaN or infinity in a row of ``X`` makes that row's products NaN or
        infinite, so a finite result proves a finite input without a pass of its own over
        ``X``; an overflow of finite input calls it too, and it passes.

    Returns
    -------
    ndarray of shape (n_samples, n_outputs)
        ``out_activation`` of the last layer.

    Every layer runs through the fused dense kernel and the output activation follows each
    chunk while it is in cache; the workspaces are reused from chunk to chunk.
    """
    be = kernels()
    dtype = coefs[0].dtype
    code = hidden_code(activation)
    n = X.shape[0]
    sparse = sp.issparse(X)
    if sparse:
        X = X.tocsr()
    out = np.empty((n, coefs[-1].shape[1]), dtype)
    rows = min(n, PREDICT_BATCH)
    hidden = [(np.empty((rows, W.shape[1]), dtype),
               np.empty((rows, W.shape[1]), dtype) if code[0] != _acts.LINEAR else None)
              for W in coefs[:-1]]
    last = len(coefs) - 1
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        r = stop - start
        x = X[start:stop]
        if not sparse:
            x = np.ascontiguousarray(x, dtype=dtype)
        for i, (W, b) in enumerate(zip(coefs, intercepts)):
            if i == last:
                z = a = out[start:stop]
                layer_code = _LINEAR
            else:
                z = hidden[i][0][:r]
                act_buf = hidden[i][1]
                a = z if act_buf is None else act_buf[:r]
                layer_code = code
            finite = _dense(be, x, W, b, layer_code, z, a, i == 0 and sparse,
                            check=i == 0 and check_finite is not None)
            if i == 0 and check_finite is not None and not finite:
                check_finite()
                check_finite = None
            x = a
        output_activation(be, out_activation, out[start:stop])
    return out


def output_step(out_activation: str, z: np.ndarray, targets: np.ndarray, w: np.ndarray,
                eps: float, tiny: float, delta: np.ndarray) -> float:
    """Output activation, loss sum and error term of a batch (see :mod:`._kernels`)."""
    if out_activation == "softmax":
        return _kernels.out_softmax(z, targets, w, eps, tiny, delta)
    if out_activation == "logistic":
        return _kernels.out_logistic(z, targets, w, eps, tiny, delta)
    if out_activation == "exp":
        return _kernels.out_exp(z, targets, w, tiny, delta)
    return _kernels.out_identity(z, targets, w, tiny, delta)


def mean_loss(out_activation: str, total: float, denom: float, n_outputs: int) -> float:
    """scikit-learn's loss of a batch from the kernel's weighted sum: log-loss and Poisson
    deviance average over samples and add over outputs; squared error averages both (and
    halves)."""
    if out_activation == "identity":
        return 0.5 * total / denom / n_outputs
    return total / denom


def compiled_epoch_usable(X: Any) -> bool:
    """Whether :class:`CompiledEpoch` trains on ``X``: dense input, unless the NumPy
    reference backend was chosen (which keeps every batch on the reference kernels).
    Sparse input takes the per-batch path, whose first layer uses SciPy's sparse product."""
    return not sp.issparse(X) and backends.get_backend() != "numpy"


class CompiledEpoch:
    """A whole epoch of mini-batches in one call of :func:`._kernels.train_epoch`.

    It reuses the workspaces of the per-batch path (``passes``' layer buffers, the gather
    buffers ``xbuf``, ``tbuf``, ``wbuf``) and hands the kernel the network as tuples of views
    into the flat vectors, so that the update still runs over the flat vectors in
    scikit-learn's packing order. Only the per-epoch work stays in Python: the permutation,
    the schedules, stopping and validation.
    """

    def __init__(self, est: Any, net: FlatNet, X: np.ndarray, targets: np.ndarray,
                 w: Optional[np.ndarray], passes: Passes, xbuf: np.ndarray, tbuf: np.ndarray,
                 wbuf: Optional[np.ndarray]) -> None:
        dtype = net.flat.dtype
        self.net = net
        self.X = X
        self.out_code = _kernels.OUT_CODES[est.out_activation_]
        softmax = self.out_code == _kernels.OUT_SOFTMAX
        n_out = passes.delta.shape[1]
        no_labels, no_targets = np.empty(0, np.int64), np.empty((0, n_out), dtype)
        self.labels: np.ndarray
        self.lbuf: np.ndarray
        self.Y: np.ndarray
        self.ybuf: np.ndarray
        self.labels, self.lbuf = (targets, tbuf) if softmax else (no_labels, no_labels)
        self.Y, self.ybuf = (no_targets, no_targets) if softmax else (targets, tbuf)
        self.w = np.empty(0, dtype) if w is None else np.ascontiguousarray(w)
        self.wbuf = np.empty(0, dtype) if wbuf is None else wbuf
        self.xbuf = xbuf
        self.order = np.arange(X.shape[0], dtype=np.int64)
        self.layers = (tuple(net.coefs), tuple(net.intercepts), tuple(net.dcoefs),
                       tuple(net.dintercepts))
        self.buffers = (tuple(passes.z), tuple(passes.a),
                        (np.empty((0, 0), dtype),)
                        + tuple(cast(List[np.ndarray], passes.dx[1:])))  # None: first only
        self.delta = passes.delta
        code = hidden_code(est.activation)
        self.act = (int(code[0]), float(code[1]), float(code[2]))
        self.alpha = float(est.alpha)
        self.batch_size = int(xbuf.shape[0])
        self.eps = float(np.finfo(dtype).eps)
        self.tiny = float(np.finfo(dtype).tiny)
        self.gemm = _kernels.gemm_address(dtype)

    def run(self, idx: Optional[np.ndarray], opt: Any) -> float:
        """Train one epoch on the rows in the order ``idx`` (as stored when None) with the
        optimiser ``opt`` (the face's ``_SGD`` or ``_Adam``, whose state it advances); return
        scikit-learn's accumulated loss."""
        idx = self.order if idx is None else np.ascontiguousarray(idx, dtype=np.int64)
        net = self.net
        if hasattr(opt, "velocity"):
            code, s0, s1, t = _kernels.OPT_SGD, opt.velocity, opt.velocity, 0
            lr, momentum, nesterov = float(opt.learning_rate), float(opt.momentum), \
                bool(opt.nesterov)
            beta1 = beta2 = adam_eps = 0.0
        else:
            code, s0, s1, t = _kernels.OPT_ADAM, opt.m, opt.v, int(opt.t)
            lr, momentum, nesterov = float(opt.learning_rate_init), 0.0, False
            beta1, beta2, adam_eps = float(opt.beta_1), float(opt.beta_2), float(opt.epsilon)
        coefs, intercepts, dcoefs, dintercepts = self.layers
        zs, acts, dxs = self.buffers
        accumulated, t = _kernels.train_epoch(
            self.X, self.labels, self.Y, self.w, idx, self.batch_size, self.out_code, coefs,
            intercepts, dcoefs, dintercepts, net.flat, net.grad, net.n_w, zs, acts, dxs,
            self.xbuf, self.lbuf, self.ybuf, self.wbuf, self.delta, *self.act, self.alpha,
            code, s0, s1, lr, momentum, nesterov, beta1, beta2, adam_eps, t, self.eps,
            self.tiny, self.gemm)
        if code == _kernels.OPT_ADAM and t > opt.t:
            opt.t = t
            opt.learning_rate = (opt.learning_rate_init * np.sqrt(1 - opt.beta_2 ** t)
                                 / (1 - opt.beta_1 ** t))
        return accumulated

    def sync(self) -> None:
        """Nothing to write back: this epoch trains ``net`` and the optimiser in place."""


class SplitEpoch:
    """A float32 epoch of multiclass SGD on the Cython backend's own ``train_epoch``: the
    split epoch of :mod:`fusenn.backends._cython`, which shares every batch between threads
    (and, at a few dozen rows, multiplies the first layer over row pointers), where fusenn's
    thread policy picks it; else its one-thread epoch.

    scikit-learn's numbers in the backend's terms, the same in exact arithmetic:

    * its gradient ``(x^T delta + alpha W) / d`` is the backend's loss gradient (the mean
      cross-entropy's, ``delta / d``) plus the gradient of its L2 penalty ``hyper[H_L2] =
      alpha`` (``alpha / (2 d) sum W^2``, biases exempt), whose value it adds to each batch's
      loss as scikit-learn does;
    * its velocity ``v = momentum v - lr g`` is ``-lr`` times the backend's ``v = momentum v +
      g`` (``p -= lr v``, or with Nesterov ``p -= lr (g + momentum v)``): converted before and
      after each epoch at that epoch's learning rate, which the schedules change only between
      epochs;
    * the backend keeps each layer's ``W`` then ``b`` (:func:`fusenn.backends._numpy.layer_views`),
      scikit-learn's packing every ``W`` first: ``order`` maps the one onto the other.

    The network and the velocity stay in the backend's form from epoch to epoch (rescaled when
    the learning rate changes) and go back to the face's ``net`` and optimiser at
    :meth:`sync`, which the face calls whenever it reads the weights: after the last epoch, and
    before each validation score of early stopping.

    The rounding differs (float32 sums in other orders; the loss from log-sum-exp instead of
    clipped probabilities, which differ by under ``eps`` for a row unless its probability falls
    below ``eps``), so float64, which promises scikit-learn's numbers to 1e-8, never comes
    here. A batch whose loss is not finite stops the backend before its update; the face's own
    kernel (``rest``) then runs the rest of the epoch as scikit-learn does.
    """

    def __init__(self, est: Any, net: FlatNet, X: np.ndarray, labels: np.ndarray,
                 batch_size: int, rest: "CompiledEpoch") -> None:
        self.be = kernels()
        self.net, self.X, self.labels, self.rest = net, X, labels, rest
        self.batch_size = batch_size
        units = net.units
        L = len(units) - 1
        self.widths = np.asarray(units, dtype=np.int64)
        code = hidden_code(est.activation)
        self.codes = np.array([code[0]] * (L - 1) + [_acts.LINEAR], dtype=np.int64)
        self.params = np.zeros((L, 2))
        self.params[:L - 1] = code[1], code[2]
        # order[i]: where the backend's entry i lies in scikit-learn's packing
        sk_w = np.cumsum([0] + [units[i] * units[i + 1] for i in range(L)])
        sk_b = net.n_w + np.cumsum([0] + units[1:])
        self.order = np.concatenate([np.r_[np.arange(sk_w[i], sk_w[i + 1]),
                                           np.arange(sk_b[i], sk_b[i + 1])] for i in range(L)])
        self.flat = np.empty_like(net.flat)
        self.grad = np.zeros_like(net.flat)
        self.state = np.zeros((1, net.flat.size), net.flat.dtype)
        self.no_targets = np.empty((0, units[-1]), net.flat.dtype)
        self.identity = np.arange(X.shape[0], dtype=np.int64)
        self.losses = np.empty(-(-X.shape[0] // batch_size))
        self.hyper = np.zeros(_contract.N_HYPER)
        self.hyper[_contract.H_L2] = float(est.alpha)
        self.opt: Any = None  # the optimiser whose velocity is held here, in the backend's form
        self.lr = 0.0  # the learning rate that form holds

    @staticmethod
    def usable(est: Any, X: Any, sample_weight: Optional[np.ndarray]) -> bool:
        """Whether this epoch trains ``est`` on ``X``: float32 dense input without sample
        weights, softmax outputs, SGD, and the Cython backend's split epoch built."""
        return (est.solver == "sgd" and est.out_activation_ == "softmax"
                and sample_weight is None and not sp.issparse(X) and X.dtype == np.float32
                and bool(getattr(kernels(), "SPLIT_EPOCH", False)))

    def run(self, idx: Optional[np.ndarray], opt: Any) -> float:
        """As :meth:`CompiledEpoch.run`: one epoch in the order ``idx`` with the face's
        ``_SGD`` ``opt``; returns scikit-learn's accumulated loss."""
        c = _contract
        idx = self.identity if idx is None else np.ascontiguousarray(idx, dtype=np.int64)
        lr = float(opt.learning_rate)
        vel = self.state[0]
        if self.opt is None:  # the network and the velocity into the backend's form
            np.take(self.net.flat, self.order, out=self.flat)
            np.take(opt.velocity, self.order, out=vel)
            vel *= vel.dtype.type(-1.0 / lr)
        elif lr != self.lr:  # (a schedule changed the rate: the velocity holds the old one)
            vel *= vel.dtype.type(self.lr / lr)
        self.opt, self.lr = opt, lr
        h = self.hyper
        h[c.H_LR], h[c.H_MOMENTUM], h[c.H_NESTEROV] = lr, opt.momentum, float(opt.nesterov)
        done = int(self.be.train_epoch(
            self.flat, self.grad, self.widths, self.codes, self.params, self.X, self.labels,
            self.no_targets, idx, self.batch_size, c.LOSS_SOFTMAX_XENT, c.OPT_SGD, h,
            self.state, self.losses))
        bs, n = self.batch_size, idx.shape[0]
        rows = np.minimum(bs, n - bs * np.arange(done))
        accumulated = float(np.dot(self.losses[:done], rows))
        if done * bs < n:  # a diverging batch: the rest as scikit-learn runs it
            self.sync()
            accumulated += self.rest.run(idx[done * bs:], opt)
        return accumulated

    def sync(self) -> None:
        """Write the network and the velocity back into the face's ``net`` and optimiser
        (their own form); the next :meth:`run` takes them from there."""
        if self.opt is None:
            return
        self.net.flat[self.order] = self.flat
        vel = self.state[0]
        vel *= vel.dtype.type(-self.lr)
        self.opt.velocity[self.order] = vel
        self.opt = None
