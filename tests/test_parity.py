"""Parity of the compiled backends with the NumPy oracle, kernel by kernel and epoch by epoch.

Every kernel of the contract (:mod:`fusenn.backends._numpy`) is run on each compiled backend
(``cython``, ``numba``) and on the oracle from the same inputs, for float32 and float64, every
activation code (with non-default parameters for the parametrised ones, and inputs that sit
exactly on the kinks), read-only inputs, odd shapes (batch 1, width 1, widths that are not
multiples of 8 or 16) and sizes that take the kernels' parallel paths. The public wrappers are
checked with F-ordered and non-contiguous inputs. Whole epochs of training are compared for
every loss and optimiser, including a partial last batch and a diverging run.

A compiled backend that is not available is skipped, unless its name is listed in the
environment variable ``FUSENN_REQUIRE_BACKENDS`` (comma separated): then its tests fail.

Tolerances (DESIGN.md): float32 within 1e-5 relative, float64 within 1e-12, with an absolute
floor of the same order scaled to the magnitude of the values compared (a difference of one
rounding in a sum of terms of size ``s`` is about ``eps * s``, whatever the result's size).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import fusenn
from fusenn import activations as A
from fusenn import backends
from fusenn.backends import _numpy as ref
from fusenn.errors import BackendUnavailableError

from support import bad_input, run_epochs

COMPILED = ("cython", "numba")
REQUIRED = {s.strip().lower() for s in os.environ.get("FUSENN_REQUIRE_BACKENDS", "").split(",")
            if s.strip()}
DTYPES = (np.float32, np.float64)
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
ATOL = {np.float32: 1e-6, np.float64: 1e-12}
EPOCH_RTOL = {np.float32: 1e-4, np.float64: 1e-10}


def _load(name):
    """The backend module ``name``, or skip (fail when ``name`` is required)."""
    try:
        if name not in backends.available_backends():
            raise BackendUnavailableError(backends.unavailable_reasons().get(name, "unknown"))
        return backends.get(name)
    except BackendUnavailableError as exc:
        if name in REQUIRED:
            pytest.fail(f"backend {name!r} is required by FUSENN_REQUIRE_BACKENDS but is not "
                        f"available: {exc}")
        pytest.skip(f"backend {name!r} not available: {exc}")


@pytest.fixture(params=COMPILED)
def backend(request):
    return _load(request.param)


@pytest.fixture(params=DTYPES, ids=["f32", "f64"])
def dtype(request):
    return request.param


def _close(got, want, dtype, what="", rtol=None, scale=None):
    """assert_allclose with an absolute floor scaled to the magnitude of the values."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if scale is None:
        scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype] if rtol is None else rtol,
                               atol=ATOL[dtype] * scale, err_msg=what)


def _readonly(*arrays):
    out = []
    for a in arrays:
        a = a.copy()
        a.flags.writeable = False
        out.append(a)
    return out if len(out) > 1 else out[0]


# --------------------------------------------------------------------------- activations
# Non-default parameters for every parametrised activation.
_PARAMS = {
    "leaky_relu": {"alpha": 0.2}, "prelu": {"alpha": 0.3},
    "rrelu": {"lower": 0.1, "upper": 0.4}, "elu": {"alpha": 0.7}, "swish": {"beta": 1.7},
    "softplus": {"beta": 2.5}, "hard_tanh": {"min_val": -0.7, "max_val": 1.3},
    "soft_shrink": {"lambd": 0.3}, "hard_shrink": {"lambd": 0.8},
}


def _activation_cases():
    cases = [(n, A.get(n)) for n in A.names()]
    cases.append(("gelu_tanh", A.get("gelu", approximate="tanh")))
    cases += [(f"{n}-{'-'.join(f'{k}={v}' for k, v in p.items())}", A.get(n, **p))
              for n, p in _PARAMS.items()]
    return cases


ACTS = _activation_cases()
ACT_IDS = [c[0] for c in ACTS]
ACT_OBJS = [c[1] for c in ACTS]
_ELEMENTWISE = [a for a in ACT_OBJS if not a.rowwise]


def _inputs(act, shape, dtype, rng, spread=4.0):
    """Random values in [-spread, spread] with the activation's kinks, 0 and tiny values."""
    z = rng.uniform(-spread, spread, size=shape)
    special = [0.0, 1e-3, -1e-3, 0.5, -0.5, 3.0, -3.0, 2e-2, -7e-3]
    special += [float(k) for k in A.kink_points(act)]
    flat = z.reshape(-1)
    for i, v in enumerate(special[:flat.size]):
        flat[(7 * i) % flat.size] = v
    return z.astype(dtype)


def test_activation_codes_covered():
    """The cases reach every activation code of the registry."""
    assert {a.code for a in ACT_OBJS} == set(A.BY_CODE)


@pytest.mark.parametrize("act", ACT_OBJS, ids=ACT_IDS)
def test_act_forward_derivative(backend, dtype, act):
    rng = np.random.default_rng(1)
    for shape in ((1, 1), (7, 13), (3, 33)):
        z = _readonly(_inputs(act, shape, dtype, rng))
        want = np.empty_like(z)
        ref.act_forward(z, act.code, act.p0, act.p1, want)
        got = np.full_like(z, np.nan)
        backend.act_forward(z, act.code, act.p0, act.p1, got)
        _close(got, want, dtype, f"{act} forward {shape}")
        a = _readonly(want)
        dwant = np.empty_like(z)
        ref.act_derivative(z, a, act.code, act.p0, act.p1, dwant)
        dgot = np.full_like(z, np.nan)
        backend.act_derivative(z, a, act.code, act.p0, act.p1, dgot)
        _close(dgot, dwant, dtype, f"{act} derivative {shape}")
        # in place: out is z
        zz = z.copy()
        backend.act_forward(zz, act.code, act.p0, act.p1, zz)
        _close(zz, want, dtype, f"{act} forward in place {shape}")


@pytest.mark.parametrize("act", [A.get(n) for n in ("relu", "sigmoid", "gelu", "softmax")],
                         ids=["relu", "sigmoid", "gelu", "softmax"])
def test_act_large_parallel_path(backend, dtype, act):
    """Sizes past the compiled kernels' threshold for threads."""
    rng = np.random.default_rng(2)
    z = _inputs(act, (300, 257), dtype, rng)
    want, got = np.empty_like(z), np.empty_like(z)
    ref.act_forward(z, act.code, act.p0, act.p1, want)
    backend.act_forward(z, act.code, act.p0, act.p1, got)
    _close(got, want, dtype, "forward")
    ref.act_derivative(z, want, act.code, act.p0, act.p1, want)
    backend.act_derivative(z, got, act.code, act.p0, act.p1, got)
    _close(got, want, dtype, "derivative")


# --------------------------------------------------------------------------- dense layer
# (batch, n_in, n_out): batch 1, width 1, widths not multiples of 8 or 16.
SHAPES = [(1, 1, 1), (7, 13, 33), (13, 7, 1), (1, 33, 7)]


def _dense_case(act, shape, dtype, seed):
    n, n_in, n_out = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in)).astype(dtype)
    W = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    dy = rng.standard_normal((n, n_out)).astype(dtype)
    return x, W, b, dy


def _dense(mod, x, W, b, dy, act, with_bias=True, with_dx=True, inplace=False):
    n, n_out = x.shape[0], W.shape[1]
    z = np.empty((n, n_out), dtype=x.dtype)
    a = z if act.code == A.LINEAR else np.empty_like(z)
    mod.dense_forward(x, W, b if with_bias else None, act.code, act.p0, act.p1, z, a)
    z_saved, a_saved = z.copy(), a.copy()
    if inplace:
        dy = dy.copy()
        dz = dy
    else:
        z, a = _readonly(z, a)
        dz = np.empty_like(dy)
    dW = np.empty_like(W)
    db = np.empty_like(b) if with_bias else None
    dx = np.empty_like(x) if with_dx else None
    mod.dense_backward(x, W, z, a, dy, act.code, act.p0, act.p1, dz, dW, db, dx)
    return {"z": z_saved, "a": a_saved, "dz": dz, "dW": dW, "db": db, "dx": dx}


def _compare_dense(got, want, dtype, label):
    for key, w in want.items():
        if w is None:
            assert got[key] is None
            continue
        _close(got[key], w, dtype, f"{label} {key}")


@pytest.mark.parametrize("act", ACT_OBJS, ids=ACT_IDS)
def test_dense_forward_backward(backend, dtype, act):
    for k, shape in enumerate(SHAPES):
        x, W, b, dy = _readonly(*_dense_case(act, shape, dtype, 10 + k))
        opts = dict(with_bias=k != 2, with_dx=k != 3, inplace=k == 1)
        want = _dense(ref, x, W, b, dy, act, **opts)
        got = _dense(backend, x, W, b, dy, act, **opts)
        _compare_dense(got, want, dtype, f"{act} {shape} {opts}")


@pytest.mark.parametrize("act", [A.get(n) for n in ("relu", "tanh", "linear", "softmax")],
                         ids=["relu", "tanh", "linear", "softmax"])
def test_dense_large_parallel_path(backend, dtype, act):
    x, W, b, dy = _dense_case(act, (256, 65, 300), dtype, 3)
    want = _dense(ref, x, W, b, dy, act)
    got = _dense(backend, x, W, b, dy, act)
    _compare_dense(got, want, dtype, f"{act} large")


@pytest.mark.parametrize("shape", [(7, 13, 33), (64, 64, 10), (256, 65, 300)],
                         ids=["small", "narrow", "parallel"])
@pytest.mark.parametrize("where", ["none", "x", "W", "b", "x-no-bias"])
def test_dense_forward_says_whether_z_is_finite(backend, dtype, shape, where):
    """The contract's finiteness answer, from the oracle and each compiled backend alike;
    relu maps NaN to 0 in the compiled kernels, so ``a`` alone could not tell (``narrow``:
    outputs narrow enough that the Cython epilogue checks them in one pass)."""
    act = A.get("linear" if where == "x-no-bias" else "relu")
    x, W, b, _ = _dense_case(act, shape, dtype, 5)
    if where in ("x", "x-no-bias"):
        x[shape[0] // 2, 3] = np.nan
    elif where == "W":
        W[shape[1] - 1, 0] = -np.inf
    elif where == "b":
        b[-1] = np.nan
    bias = None if where == "x-no-bias" else b
    for mod in (ref, backend):
        z = np.empty((shape[0], shape[2]), dtype)
        a = z if act.code == A.LINEAR else np.empty_like(z)
        assert mod.dense_forward(x, W, bias, act.code, act.p0, act.p1, z, a) is (
            where == "none"), (mod.NAME, where)


# --------------------------------------------------------------------------- softmax family
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (9, 13), (5, 1), (300, 230)])
def test_softmax_family(backend, dtype, shape):
    rng = np.random.default_rng(4)
    z = (rng.standard_normal(shape) * 5).astype(dtype)
    z[0] += dtype(500.0)  # a row that overflows exp without the max subtraction
    z = _readonly(z)
    for kernel in ("softmax", "log_softmax"):
        want, got = np.empty_like(z), np.empty_like(z)
        getattr(ref, kernel)(z, want)
        getattr(backend, kernel)(z, got)
        _close(got, want, dtype, f"{kernel} {shape}")
        inplace = z.copy()  # out is z (the scikit-learn face's predict_proba)
        getattr(backend, kernel)(inplace, inplace)
        np.testing.assert_array_equal(inplace, got, err_msg=f"{kernel} in place {shape}")
    want = np.empty(shape[0], dtype=dtype)
    got = np.empty_like(want)
    ref.logsumexp(z, want)
    backend.logsumexp(z, got)
    _close(got, want, dtype, f"logsumexp {shape}")


# --------------------------------------------------------------------------- fused losses
LOSS_SHAPES = [(1, 1), (1, 5), (7, 3), (13, 10), (700, 100)]


def _loss_inputs(shape, dtype, seed=5):
    rng = np.random.default_rng(seed)
    n, k = shape
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    labels = rng.integers(0, k, size=n).astype(np.int64)
    soft = rng.random(shape).astype(dtype)
    soft /= soft.sum(axis=1, keepdims=True)
    t01 = (rng.random(shape) < 0.5).astype(dtype)
    return _readonly(z, labels, soft, t01)


def _loss_pair(mod_a, mod_b, name, args, dtype, what):
    """Run loss ``name`` on both modules with and without a gradient; compare."""
    z = args[0]
    results = []
    for mod in (mod_a, mod_b):
        grad = np.full_like(z, np.nan)
        loss = getattr(mod, name)(*args[:2], grad, *args[2:])
        loss_only = getattr(mod, name)(*args[:2], None, *args[2:])
        assert isinstance(loss, float) and isinstance(loss_only, float)
        assert loss_only == pytest.approx(loss, rel=1e-12, abs=0)
        results.append((loss, grad))
    (lg, gg), (lw, gw) = results
    scale = max(1.0, float(np.mean(np.abs(z))) + 1.0)
    _close(np.array(lg), np.array(lw), np.float64, f"{what} loss",
           rtol=RTOL[dtype], scale=scale if dtype == np.float64 else scale * 1e6)
    _close(gg, gw, dtype, f"{what} grad", scale=1.0 / z.shape[0])


@pytest.mark.parametrize("shape", LOSS_SHAPES)
def test_losses(backend, dtype, shape):
    z, labels, soft, t01 = _loss_inputs(shape, dtype)
    _loss_pair(backend, ref, "softmax_xent", (z, labels), dtype, f"xent {shape}")
    onehot = np.eye(shape[1], dtype=dtype)[labels]
    for t, label in ((soft, "soft"), (_readonly(onehot), "onehot")):
        _loss_pair(backend, ref, "softmax_xent_probs", (z, t), dtype, f"xent {label} {shape}")
    _loss_pair(backend, ref, "sigmoid_bce", (z, t01), dtype, f"bce {shape}")
    for half in (False, True):
        _loss_pair(backend, ref, "mse", (z, soft, half), dtype, f"mse half={half} {shape}")


# --------------------------------------------------------------------------- optimisers
def _opt_inputs(P, dtype, seed=6):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(P).astype(dtype)
    g = rng.standard_normal(P).astype(dtype)
    s1 = rng.standard_normal(P).astype(dtype)
    s2 = rng.random(P).astype(dtype)  # second moments are >= 0
    return p, g, s1, s2


_OPT_CASES = [
    ("sgd", lambda m, p, g, s1, s2: m.sgd_update(p, g, None, 0.1, 0.0, False, 0.0)),
    ("sgd-wd", lambda m, p, g, s1, s2: m.sgd_update(p, g, s1, 0.1, 0.0, False, 0.01)),
    ("sgd-momentum", lambda m, p, g, s1, s2: m.sgd_update(p, g, s1, 0.05, 0.9, False, 0.0)),
    ("sgd-nesterov-wd", lambda m, p, g, s1, s2: m.sgd_update(p, g, s1, 0.05, 0.9, True, 1e-3)),
    ("adam-t1", lambda m, p, g, s1, s2: m.adam_update(p, g, s1, s2, 1e-3, 0.9, 0.999, 1e-8,
                                                      0.0, 1)),
    ("adam-t7-wd", lambda m, p, g, s1, s2: m.adam_update(p, g, s1, s2, 1e-2, 0.8, 0.99, 1e-7,
                                                         0.01, 7)),
    ("rmsprop", lambda m, p, g, s1, s2: m.rmsprop_update(p, g, s2, 1e-2, 0.9, 1e-8, 0.0)),
    ("rmsprop-wd", lambda m, p, g, s1, s2: m.rmsprop_update(p, g, s2, 1e-2, 0.95, 1e-6, 0.1)),
    ("adagrad", lambda m, p, g, s1, s2: m.adagrad_update(p, g, s2, 0.1, 1e-10, 0.0)),
    ("adagrad-wd", lambda m, p, g, s1, s2: m.adagrad_update(p, g, s2, 0.1, 1e-10, 0.05)),
]


@pytest.mark.parametrize("P", [1, 37, 70_001])
@pytest.mark.parametrize("case", _OPT_CASES, ids=[c[0] for c in _OPT_CASES])
def test_optimizer_updates(backend, dtype, case, P):
    _, update = case
    p, g, s1, s2 = _opt_inputs(P, dtype)
    g = _readonly(g)
    want = [p.copy(), s1.copy(), s2.copy()]
    got = [p.copy(), s1.copy(), s2.copy()]
    update(ref, want[0], g, want[1], want[2])
    update(backend, got[0], g, got[1], got[2])
    for name, u, v in zip(("p", "state1", "state2"), got, want):
        _close(u, v, dtype, f"{case[0]} {name}")


# --------------------------------------------------------------------------- whole epoch
OPTIMIZERS = {
    "sgd": (ref.OPT_SGD, dict(lr=0.1)),
    "sgd-momentum": (ref.OPT_SGD, dict(lr=0.05, momentum=0.9)),
    "sgd-nesterov-wd": (ref.OPT_SGD, dict(lr=0.05, momentum=0.9, nesterov=1.0,
                                          weight_decay=1e-3)),
    "adam": (ref.OPT_ADAM, dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, step=3)),
    "adam-wd": (ref.OPT_ADAM, dict(lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-7,
                                   weight_decay=0.01)),
    "rmsprop": (ref.OPT_RMSPROP, dict(lr=1e-2, rho=0.9, eps=1e-8, weight_decay=1e-3)),
    "adagrad": (ref.OPT_ADAGRAD, dict(lr=0.1, eps=1e-10)),
    "sgd-nesterov-l2": (ref.OPT_SGD, dict(lr=0.05, momentum=0.9, nesterov=1.0, l2=0.1)),
}
LOSSES = {"xent": ref.LOSS_SOFTMAX_XENT, "bce": ref.LOSS_SIGMOID_BCE, "mse": ref.LOSS_MSE,
          "half_mse": ref.LOSS_HALF_MSE}
_HYPER_INDEX = {"lr": ref.H_LR, "momentum": ref.H_MOMENTUM, "nesterov": ref.H_NESTEROV,
                "weight_decay": ref.H_WEIGHT_DECAY, "beta1": ref.H_BETA1,
                "beta2": ref.H_BETA2, "eps": ref.H_EPS, "rho": ref.H_RHO, "step": ref.H_STEP,
                "l2": ref.H_L2}


def _hyper(settings):
    h = np.zeros(ref.N_HYPER)
    for key, value in settings.items():
        h[_HYPER_INDEX[key]] = value
    return h


def _epoch_problem(dtype, loss_code, widths=(6, 9, 5, 3), codes=None, n=23, seed=7):
    """A small network and data set: 23 samples, so batch 5 leaves a partial last batch."""
    rng = np.random.default_rng(seed)
    widths = np.asarray(widths, dtype=np.int64)
    if codes is None:
        codes = [A.TANH, A.ELU] + [A.LINEAR] * (len(widths) - 3)
    codes = np.asarray(codes, dtype=np.int64)
    params = np.zeros((len(codes), 2))
    params[:, 0] = [0.7 if c == A.ELU else 0.0 for c in codes]
    P = int(sum(widths[i] * widths[i + 1] + widths[i + 1] for i in range(len(codes))))
    flat = (rng.standard_normal(P) * 0.5).astype(dtype)
    X = rng.standard_normal((n, widths[0])).astype(dtype)
    k = int(widths[-1])
    if loss_code == ref.LOSS_SOFTMAX_XENT:
        labels = rng.integers(0, k, size=n).astype(np.int64)
        targets = np.empty((0, k), dtype=dtype)
    else:
        labels = np.empty(0, dtype=np.int64)
        targets = (rng.random((n, k)) < 0.5).astype(dtype) if loss_code == ref.LOSS_SIGMOID_BCE \
            else rng.standard_normal((n, k)).astype(dtype)
    perm = rng.permutation(n).astype(np.int64)
    state = (rng.random((2, P)) * 0.01).astype(dtype)
    return dict(flat=flat, widths=widths, codes=codes, params=params, X=X, labels=labels,
                targets=targets, perm=perm, state=state)


def _compare_epochs(got, want, dtype, what):
    (fg, sg, lg, kg), (fw, sw, lw, kw) = got, want
    assert kg == kw, f"{what}: batches completed {kg} != {kw}"
    rtol = EPOCH_RTOL[dtype]
    np.testing.assert_allclose(fg, fw, rtol=rtol, atol=rtol, err_msg=f"{what} weights")
    np.testing.assert_allclose(sg, sw, rtol=rtol, atol=rtol, err_msg=f"{what} state")
    np.testing.assert_allclose(lg, lw, rtol=rtol, atol=rtol, err_msg=f"{what} losses")


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("loss", list(LOSSES))
def test_train_epoch_parity(backend, dtype, loss, opt):
    loss_code = LOSSES[loss]
    opt_code, settings = OPTIMIZERS[opt]
    prob = _epoch_problem(dtype, loss_code)
    hyper = _hyper(settings)
    got = run_epochs(backend, prob, 5, loss_code, opt_code, hyper)
    want = run_epochs(ref, prob, 5, loss_code, opt_code, hyper)
    assert got[3] == [5, 5]
    _compare_epochs(got, want, dtype, f"{loss}/{opt}")


@pytest.mark.parametrize("batch_size", [1, 23, 64])
def test_train_epoch_batch_sizes(backend, dtype, batch_size):
    """Batch 1, one batch of everything, and a batch larger than the data set."""
    prob = _epoch_problem(dtype, ref.LOSS_SOFTMAX_XENT, widths=(4, 1, 7, 2),
                          codes=[A.SIGMOID, A.SOFTPLUS, A.LINEAR])
    prob["params"][1, 0] = 1.5
    hyper = _hyper(OPTIMIZERS["sgd-momentum"][1])
    got = run_epochs(backend, prob, batch_size, ref.LOSS_SOFTMAX_XENT, ref.OPT_SGD, hyper)
    want = run_epochs(ref, prob, batch_size, ref.LOSS_SOFTMAX_XENT, ref.OPT_SGD, hyper)
    _compare_epochs(got, want, dtype, f"batch {batch_size}")


def test_train_epoch_softmax_output_and_large_layers(backend, dtype):
    """A softmax output layer under MSE, and layers big enough for the parallel paths."""
    prob = _epoch_problem(dtype, ref.LOSS_MSE, widths=(20, 300, 4), codes=[A.RELU, A.SOFTMAX],
                          n=530)
    hyper = _hyper(OPTIMIZERS["adam"][1])
    got = run_epochs(backend, prob, 256, ref.LOSS_MSE, ref.OPT_ADAM, hyper, epochs=1)
    want = run_epochs(ref, prob, 256, ref.LOSS_MSE, ref.OPT_ADAM, hyper, epochs=1)
    _compare_epochs(got, want, dtype, "softmax output, large")


def test_train_epoch_checks_the_hyper_vector(backend):
    """A ``hyper`` vector shorter than the contract's (say, from before ``l2`` was added) is a
    clear error in every backend, not a read past its end."""
    prob = _epoch_problem(np.float64, ref.LOSS_SOFTMAX_XENT)
    short = _hyper(OPTIMIZERS["sgd"][1])[:ref.N_HYPER - 1]
    with bad_input(ValueError, match="hyper"):
        run_epochs(backend, prob, 5, ref.LOSS_SOFTMAX_XENT, ref.OPT_SGD, short)


@pytest.mark.parametrize("loss", ["mse", "xent"])
def test_train_epoch_divergence(backend, loss):
    """A non-finite loss stops the epoch at that batch, before its update."""
    dtype = np.float64
    loss_code = LOSSES[loss]
    codes = None if loss == "mse" else [A.LINEAR] * 3  # nothing to saturate the overflow
    prob = _epoch_problem(dtype, loss_code, codes=codes)
    bad = prob["perm"][2 * 5 + 1]  # a sample of batch 2
    if loss == "mse":
        prob["targets"][bad] = 1e300  # (y - t)^2 overflows
    else:
        prob["X"][bad] = 1e300  # the logits overflow
    hyper = _hyper(OPTIMIZERS["sgd-momentum"][1])
    got = run_epochs(backend, prob, 5, loss_code, ref.OPT_SGD, hyper, epochs=1)
    with np.errstate(over="ignore", invalid="ignore"):
        want = run_epochs(ref, prob, 5, loss_code, ref.OPT_SGD, hyper, epochs=1)
    k = want[3][0]
    assert 2 <= k < 5 and got[3] == [k]
    if loss == "mse":
        assert k == 2
    assert not np.isfinite(got[2][k]) and np.all(np.isfinite(got[2][:k]))
    _compare_epochs((got[0], got[1], got[2][:k], got[3]), (want[0], want[1], want[2][:k],
                                                           want[3]), dtype, "diverged")
    assert np.all(np.isfinite(got[0]))


# --------------------------------------------------------------------------- public wrappers
@pytest.mark.parametrize("layout", ["F", "strided"])
def test_public_wrappers_layouts(backend, dtype, layout):
    """F-ordered and non-contiguous inputs go through fusenn.functional and Activation."""
    rng = np.random.default_rng(8)

    def arrange(a):
        if layout == "F":
            return np.asfortranarray(a)
        big = np.zeros((a.shape[0] * 2, a.shape[1] * 3), dtype=a.dtype)
        big[::2, ::3] = a
        return big[::2, ::3]

    x = arrange(rng.standard_normal((9, 13)).astype(dtype))
    W = arrange(rng.standard_normal((13, 7)).astype(dtype))
    b = rng.standard_normal(14).astype(dtype)[::2]
    z = arrange((rng.standard_normal((9, 11)) * 3).astype(dtype))
    labels = rng.integers(0, 11, size=9)
    assert not x.flags.c_contiguous and not b.flags.c_contiguous

    def run(name):
        with fusenn.use_backend(name):
            out = [fusenn.functional.linear(x, W, b, activation="gelu", approximate="tanh"),
                   fusenn.functional.linear(x, W, None, activation="leaky_relu", alpha=0.2),
                   fusenn.functional.softmax(z), fusenn.functional.log_softmax(z),
                   fusenn.functional.logsumexp(z)]
            loss, grad = fusenn.functional.softmax_cross_entropy(z, labels)
            out += [np.array(loss, dtype=dtype), grad]
            for act in (A.get("elu", alpha=0.7), A.get("sinc"), A.get("softmax")):
                out += [act.forward(z), act.derivative(z)]
            return out

    name = backend.NAME
    for i, (g, w) in enumerate(zip(run(name), run("numpy"))):
        _close(g, w, dtype, f"output {i}")


# --------------------------------------------------------------------------- cython vs numba
def test_compiled_backends_agree(dtype):
    """Where both compiled backends exist, they agree with each other as with the oracle."""
    cy, nb = _load("cython"), _load("numba")
    for act in (A.get("relu"), A.get("sigmoid"), A.get("gelu"), A.get("softmax"),
                A.get("hard_tanh", min_val=-0.7, max_val=1.3)):
        for k, shape in enumerate(SHAPES):
            x, W, b, dy = _dense_case(act, shape, dtype, 20 + k)
            _compare_dense(_dense(cy, x, W, b, dy, act), _dense(nb, x, W, b, dy, act), dtype,
                           f"cython vs numba {act} {shape}")
    for loss, opt in (("xent", "sgd-nesterov-wd"), ("bce", "adam"), ("half_mse", "rmsprop")):
        loss_code = LOSSES[loss]
        opt_code, settings = OPTIMIZERS[opt]
        prob = _epoch_problem(dtype, loss_code)
        hyper = _hyper(settings)
        _compare_epochs(run_epochs(cy, prob, 5, loss_code, opt_code, hyper),
                        run_epochs(nb, prob, 5, loss_code, opt_code, hyper), dtype,
                        f"cython vs numba {loss}/{opt}")
