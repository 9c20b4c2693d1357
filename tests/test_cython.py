"""Checks specific to the Cython backend (csrc/_cykernels.pyx via fusenn.backends._cython).

The kernel-by-kernel parity with the NumPy oracle lives in test_parity.py; here: the extension
and how it was built, whole-epoch training against the oracle for every loss and optimiser,
that an epoch does not allocate per mini-batch, divergence, the threaded paths, and that bad
input raises instead of crashing.

The tests skip when the extension is not built, unless ``FUSENN_REQUIRE_BACKENDS`` names
``cython`` (as .ci/run does): then they fail, so that a silent fallback cannot land.
"""
from __future__ import annotations

import importlib
import itertools
import os
import tracemalloc

import numpy as np
import pytest

import fusenn
from fusenn import activations as A
from fusenn import backends
from fusenn.backends import _numpy as ref

from support import bad_input, run_epochs, split_epoch_on

REQUIRED = {s.strip().lower() for s in os.environ.get("FUSENN_REQUIRE_BACKENDS", "").split(",")
            if s.strip()}


@pytest.fixture(scope="module")
def cy():
    """The cython backend module, or skip (fail when it is required)."""
    if "cython" not in backends.available_backends():
        reason = backends.unavailable_reasons().get("cython", "unknown")
        if "cython" in REQUIRED:
            pytest.fail(f"the cython backend is required but not available: {reason}")
        pytest.skip(f"cython backend not available: {reason}")
    return backends.get("cython")


@pytest.fixture
def parallel(cy):
    """Make every loop take its OpenMP path (2 threads), restoring the settings after."""
    old = cy.set_parallel_threshold(0)
    fusenn.set_num_threads(2)
    try:
        yield
    finally:
        cy.set_parallel_threshold(old)
        fusenn.set_num_threads(None)


# --------------------------------------------------------------------------- the extension
def test_extension_imports_and_reports_openmp(cy):
    assert cy.NAME == "cython"
    assert isinstance(cy.OPENMP, bool)
    assert cy.OPENMP is bool(cy._ext.OPENMP)
    if cy.OPENMP:  # the OpenMP runtime really is linked in
        from threadpoolctl import threadpool_info

        assert any(p["user_api"] == "openmp" for p in threadpool_info())


def test_contract_names_match_numpy(cy):
    for name in ("act_forward", "act_derivative", "dense_forward", "dense_backward",
                 "softmax", "log_softmax", "logsumexp", "softmax_xent", "softmax_xent_probs",
                 "sigmoid_bce", "mse", "sgd_update", "adam_update", "rmsprop_update",
                 "adagrad_update", "train_epoch", "layer_views"):
        assert callable(getattr(cy, name)), name
    for name in ("LOSS_SOFTMAX_XENT", "LOSS_SIGMOID_BCE", "LOSS_MSE", "LOSS_HALF_MSE",
                 "OPT_SGD", "OPT_ADAM", "OPT_RMSPROP", "OPT_ADAGRAD", "N_HYPER", "H_STEP"):
        assert getattr(cy, name) == getattr(ref, name)


def test_activation_codes_match_registry(cy):
    codes = cy._ext.ACTIVATION_CODES
    assert codes == {name: getattr(A, name) for name in codes}
    assert set(codes.values()) == set(A.BY_CODE)


def test_avx2_variant_runs_where_the_cpu_has_it(cy):
    """On x86-64 with AVX2 and FMA the kernels compiled for them run (a build that silently
    lost them fails here); FUSENN_CPU=baseline picks the portable build."""
    import platform
    import subprocess
    import sys

    from fusenn.backends import _cython

    x86 = platform.machine().lower() in ("x86_64", "amd64")
    forced = os.environ.get("FUSENN_CPU", "").strip().lower() == "baseline"
    want = "avx2" if x86 and _cython.cpu_has_avx2_fma() and not forced else "baseline"
    if want == "avx2" and cy.VARIANT == "baseline" and ("cython" not in REQUIRED
                                                        or cy._ext.DEBUG_BUILD):
        pytest.skip("the AVX2 build is absent (debug and sanitizer builds leave it out)")
    assert cy.VARIANT == want
    assert cy._ext.__name__ == ("fusenn._cykernels_avx2" if want == "avx2"
                                else "fusenn._cykernels")
    env = {**os.environ, "FUSENN_CPU": "baseline"}
    out = subprocess.run([sys.executable, "-c", "from fusenn import backends; "
                          "cy = backends.get('cython'); print(cy.VARIANT, cy._ext.__name__)"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["baseline", "fusenn._cykernels"], out.stderr


def test_both_builds_train_alike(cy):
    """The portable and the AVX2 builds are one source: an epoch agrees to rounding (FMA
    contracts some products), float32 and float64."""
    import importlib

    try:
        other = importlib.import_module("fusenn._cykernels_avx2" if cy.VARIANT == "baseline"
                                        else "fusenn._cykernels")
    except ImportError:
        pytest.skip("only one build of the kernels here")
    for dt, tol in ((np.float64, 1e-10), (np.float32, 1e-4)):
        prob = _problem(dt, ref.LOSS_SOFTMAX_XENT, codes=(A.TANH, A.SIGMOID, A.LINEAR))
        hyper = _hyper(OPTIMIZERS["adam"][1])
        got = run_epochs(cy._ext, prob, 8, ref.LOSS_SOFTMAX_XENT, ref.OPT_ADAM, hyper)
        want = run_epochs(other, prob, 8, ref.LOSS_SOFTMAX_XENT, ref.OPT_ADAM, hyper)
        _assert_same(got, want, tol)


def _ulps(got, want):
    """|got - want| in units in the last place of float32 at ``want`` (float64)."""
    want32 = want.astype(np.float32)
    return np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want32)).astype(np.float64)


@pytest.mark.parametrize("name, ref_fn, max_ulps", [
    ("tanh", np.tanh, 2.5),
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x)), 2.5),
])
def test_float32_transcendentals_accuracy(cy, name, ref_fn, max_ulps):
    """The call-free float32 tanh and sigmoid (inlined exp and polynomials) stay within a
    couple of ulps over a dense sweep of every binade, keep odd symmetry, and handle the
    special values."""
    bits = np.arange(0x30000000, 0x41300000, 61, dtype=np.uint32)  # 1e-9 .. 11, every binade
    x = np.concatenate([bits.view(np.float32), np.float32([0.4999999, 0.5, 0.5000001])])
    x = np.concatenate([x, -x]).reshape(2, -1)
    out = np.empty_like(x)
    cy.act_forward(x, getattr(A, name.upper()), 0.0, 0.0, out)
    err = _ulps(out, ref_fn(x.astype(np.float64)))
    assert err.max() <= max_ulps, (name, x.ravel()[np.argmax(err)], err.max())
    special = np.float32([[0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, 20.0, -20.0]])
    got = np.empty_like(special)
    cy.act_forward(special, getattr(A, name.upper()), 0.0, 0.0, got)
    if name == "tanh":
        np.testing.assert_array_equal(got, np.float32([[0.0, -0.0, 1, -1, np.nan, 1e-30, 1, -1]]))
        assert np.signbit(got[0, 1]) and not np.signbit(got[0, 0])
        np.testing.assert_array_equal(out[1], -out[0])  # odd, bit for bit
    else:
        np.testing.assert_array_equal(
            got, np.float32([[0.5, 0.5, 1, 0, np.nan, 0.5, 1, 2.0611537e-9]]))


# --------------------------------------------------------------------------- BLAS
@pytest.fixture
def numpy_blas(cy):
    """NumPy's CBLAS gemm as found by backends._blas (skip where NumPy has none we can use);
    the extension is routed back to it after the test."""
    from fusenn.backends import _blas

    found = _blas.find_numpy_cblas()
    if found is None:
        pytest.skip("NumPy's BLAS is not an ILP64 OpenBLAS here")
    yield found
    cy._ext.use_cblas(*found)


def test_products_go_to_numpy_blas(cy, numpy_blas):
    """Where NumPy ships OpenBLAS, the kernels use it (one library and pool per process)."""
    from fusenn.config import config

    assert cy.BLAS.startswith("NumPy's OpenBLAS") and cy.BLAS == cy._ext.BLAS
    assert config()["cython's BLAS"] == cy.BLAS


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_numpy_blas_and_scipy_blas_agree(cy, numpy_blas, dt):
    """Every product shape of the kernels (x W, x.T dz, dz W.T; and the in-place SGD update of
    train_epoch) gives the same result through NumPy's CBLAS and SciPy's cython_blas."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((33, 40)).astype(dt)
    W = rng.standard_normal((40, 24)).astype(dt)
    b = rng.standard_normal(24).astype(dt)
    dy = rng.standard_normal((33, 24)).astype(dt)
    runs = []
    for route in ("scipy", "numpy"):
        if route == "scipy":
            cy._ext.use_cblas(0, 0, "")
            assert cy._ext.BLAS == "scipy.linalg.cython_blas"
        else:
            cy._ext.use_cblas(*numpy_blas)
        z, a = np.empty((33, 24), dt), np.empty((33, 24), dt)
        cy.dense_forward(x, W, b, A.RELU, 0.0, 0.0, z, a)
        dz, dW, db, dx = (np.empty((33, 24), dt), np.empty_like(W), np.empty_like(b),
                          np.empty_like(x))
        cy.dense_backward(x, W, z, a, dy, A.RELU, 0.0, 0.0, dz, dW, db, dx)
        runs.append((a, dW, db, dx))
    tol = 1e-5 if dt == np.float32 else 1e-12
    for got, want in zip(runs[1], runs[0]):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    z_ref = x.astype(np.float64) @ W.astype(np.float64) + b
    np.testing.assert_allclose(runs[1][0], np.maximum(z_ref, 0), rtol=tol * 10, atol=tol * 10)


def test_blas_choice_checked_and_switchable(cy):
    """FUSENN_BLAS=scipy keeps SciPy's BLAS; a library whose product comes out wrong is not
    used; use_cblas takes both addresses or neither."""
    import subprocess
    import sys

    from fusenn.backends import _blas

    env = {**os.environ, "FUSENN_BLAS": "scipy"}
    out = subprocess.run([sys.executable, "-c", "from fusenn import backends; "
                          "print(backends.get('cython').BLAS)"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "scipy.linalg.cython_blas", out.stderr
    for var in ("FUSENN_BLAS", "FUSENN_CPU"):  # a typo is reported, not ignored
        env = {**os.environ, var: "fastest"}
        out = subprocess.run([sys.executable, "-c", "import fusenn; fusenn.set_backend('cython')"],
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode != 0 and f"{var} must be" in out.stderr, out.stderr

    class WrongExt:  # an extension whose products come out as zeros
        BLAS = "scipy.linalg.cython_blas"
        calls = []

        def use_cblas(self, s, d, name):
            self.calls.append((s, d))
            self.BLAS = name if s else "scipy.linalg.cython_blas"

        def dense_forward(self, x, W, b, code, p0, p1, z, a):
            z[...] = 0

    ext = WrongExt()
    assert _blas.checked(ext, (1, 2, "bogus")) == "scipy.linalg.cython_blas"
    assert ext.calls == [(1, 2), (0, 0)]
    assert _blas.checked(ext, None) == "scipy.linalg.cython_blas"
    with bad_input(ValueError, match="both"):
        cy._ext.use_cblas(1, 0, "half")


def test_omp_wait_policy_set_only_while_loading(cy):
    """libgomp is loaded passive, and the environment is left as the user had it."""
    import subprocess
    import sys

    code = ("import os; from fusenn.backends import _cython as c; "
            "print(os.environ.get('OMP_WAIT_POLICY'), c.OMP_WAIT_POLICY)")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["None", "passive"]
    env["OMP_WAIT_POLICY"] = "active"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["active", "active"]


# --------------------------------------------------------------------------- whole epochs
OPTIMIZERS = {
    "sgd": (ref.OPT_SGD, {"lr": 0.1}),
    "sgd-momentum-wd": (ref.OPT_SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}),
    "nesterov": (ref.OPT_SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": 1.0,
                               "weight_decay": 5e-4}),
    "adam": (ref.OPT_ADAM, {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
    "adam-wd": (ref.OPT_ADAM, {"lr": 1e-2, "beta1": 0.8, "beta2": 0.99, "eps": 1e-7,
                               "weight_decay": 1e-2}),
    "rmsprop": (ref.OPT_RMSPROP, {"lr": 1e-2, "rho": 0.9, "eps": 1e-8, "weight_decay": 1e-3}),
    "adagrad": (ref.OPT_ADAGRAD, {"lr": 5e-2, "eps": 1e-10, "weight_decay": 1e-3}),
    # the L2 penalty on the loss (scikit-learn's alpha), alone and with a weight decay
    "nesterov-l2": (ref.OPT_SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": 1.0, "l2": 0.2}),
    "adam-l2": (ref.OPT_ADAM, {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                               "weight_decay": 1e-3, "l2": 0.05}),
}
_HYPER = {"lr": ref.H_LR, "momentum": ref.H_MOMENTUM, "nesterov": ref.H_NESTEROV,
          "weight_decay": ref.H_WEIGHT_DECAY, "beta1": ref.H_BETA1, "beta2": ref.H_BETA2,
          "eps": ref.H_EPS, "rho": ref.H_RHO, "l2": ref.H_L2}
LOSSES = {"xent": ref.LOSS_SOFTMAX_XENT, "bce": ref.LOSS_SIGMOID_BCE, "mse": ref.LOSS_MSE,
          "half_mse": ref.LOSS_HALF_MSE}


def _hyper(settings, step=0):
    h = np.zeros(ref.N_HYPER)
    for key, value in settings.items():
        h[_HYPER[key]] = value
    h[ref.H_STEP] = step
    return h


def _problem(dtype, loss_code, widths=(7, 11, 6, 3), codes=(A.TANH, A.RELU, A.LINEAR), n=29,
             seed=3):
    """A small stack of Dense layers and data; 29 samples leave a partial last batch."""
    rng = np.random.default_rng(seed)
    widths = np.asarray(widths, dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    params = np.zeros((len(codes), 2))
    sizes = [int(widths[i] * widths[i + 1] + widths[i + 1]) for i in range(len(codes))]
    P = sum(sizes)
    flat = (rng.standard_normal(P) * 0.4).astype(dtype)
    X = rng.standard_normal((n, int(widths[0]))).astype(dtype)
    k = int(widths[-1])
    if loss_code == ref.LOSS_SOFTMAX_XENT:
        labels = rng.integers(0, k, size=n).astype(np.int64)
        targets = np.empty((0, k), dtype=dtype)
    else:
        labels = np.empty(0, dtype=np.int64)
        if loss_code == ref.LOSS_SIGMOID_BCE:
            targets = (rng.random((n, k)) < 0.5).astype(dtype)
        else:
            targets = rng.standard_normal((n, k)).astype(dtype)
    perm = rng.permutation(n).astype(np.int64)
    state = np.zeros((2, P), dtype=dtype)
    return dict(flat=flat, widths=widths, codes=codes, params=params, X=X, labels=labels,
                targets=targets, perm=perm, state=state)


def _assert_same(got, want, tol):
    assert got[3] == want[3]
    for g, w, what in zip(got[:3], want[:3], ("weights", "state", "losses")):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol, err_msg=what)


@pytest.fixture(params=[1, 2, 3], ids=["one-thread", "split-2", "split-3"])
def epoch_path(cy, request, monkeypatch):
    """The one-thread epoch (the default for this problem's size), or the split epoch on 2
    or 3 threads."""
    if request.param == 1:
        yield 1
    else:
        yield from split_epoch_on(cy, monkeypatch, request.param)


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("loss", list(LOSSES))
def test_train_epoch_matches_numpy_float64(cy, epoch_path, loss, opt):
    loss_code = LOSSES[loss]
    opt_code, settings = OPTIMIZERS[opt]
    prob = _problem(np.float64, loss_code)
    hyper = _hyper(settings)
    got = run_epochs(cy, prob, 5, loss_code, opt_code, hyper)
    want = run_epochs(ref, prob, 5, loss_code, opt_code, hyper)
    assert got[3] == [6, 6]
    _assert_same(got, want, 1e-10)


@pytest.mark.parametrize("batch_size", [1, 3, 7, 28, 29, 30, 100])
def test_train_epoch_odd_batches(cy, batch_size):
    """Batch 1, odd sizes, a last batch of 1 (28), exactly n, and more than n."""
    prob = _problem(np.float64, ref.LOSS_SOFTMAX_XENT, codes=(A.SIGMOID, A.GELU, A.LINEAR))
    hyper = _hyper(OPTIMIZERS["nesterov"][1])
    got = run_epochs(cy, prob, batch_size, ref.LOSS_SOFTMAX_XENT, ref.OPT_SGD, hyper)
    want = run_epochs(ref, prob, batch_size, ref.LOSS_SOFTMAX_XENT, ref.OPT_SGD, hyper)
    _assert_same(got, want, 1e-10)


@pytest.mark.parametrize("loss", list(LOSSES))
def test_train_epoch_float32(cy, loss):
    loss_code = LOSSES[loss]
    prob = _problem(np.float32, loss_code)
    hyper = _hyper(OPTIMIZERS["adam"][1])
    got = run_epochs(cy, prob, 8, loss_code, ref.OPT_ADAM, hyper)
    want = run_epochs(ref, prob, 8, loss_code, ref.OPT_ADAM, hyper)
    _assert_same(got, want, 1e-4)


def test_train_epoch_every_activation(cy):
    """Each hidden activation code (softmax too) through forward and backward of an epoch."""
    params = {A.LEAKY_RELU: (0.1, 0), A.ELU: (0.7, 0), A.SWISH: (1.3, 0), A.SOFTPLUS: (2.0, 0),
              A.HARD_TANH: (-0.5, 0.8), A.SOFT_SHRINK: (0.3, 0), A.HARD_SHRINK: (0.2, 0)}
    for code in sorted(A.BY_CODE):
        prob = _problem(np.float64, ref.LOSS_MSE, codes=(code, A.TANH, A.LINEAR))
        prob["params"][0] = params.get(code, (0.0, 0.0))
        hyper = _hyper(OPTIMIZERS["sgd-momentum-wd"][1])
        got = run_epochs(cy, prob, 4, ref.LOSS_MSE, ref.OPT_SGD, hyper, epochs=1)
        want = run_epochs(ref, prob, 4, ref.LOSS_MSE, ref.OPT_SGD, hyper, epochs=1)
        _assert_same(got, want, 1e-10)


def test_train_epoch_read_only_inputs(cy):
    prob = _problem(np.float64, ref.LOSS_SIGMOID_BCE)
    for key in ("widths", "codes", "params", "X", "labels", "targets", "perm"):
        prob[key].setflags(write=False)
    hyper = _hyper(OPTIMIZERS["rmsprop"][1])
    hyper.setflags(write=False)
    got = run_epochs(cy, prob, 6, ref.LOSS_SIGMOID_BCE, ref.OPT_RMSPROP, hyper)
    want = run_epochs(ref, prob, 6, ref.LOSS_SIGMOID_BCE, ref.OPT_RMSPROP, hyper)
    _assert_same(got, want, 1e-10)


def test_train_epoch_parallel_paths(cy, parallel):
    """With every loop on OpenMP threads the epoch still matches the oracle."""
    prob = _problem(np.float64, ref.LOSS_SOFTMAX_XENT, widths=(13, 40, 33, 5),
                    codes=(A.MISH, A.SOFTMAX, A.LINEAR), n=71)
    hyper = _hyper(OPTIMIZERS["adam-wd"][1])
    got = run_epochs(cy, prob, 16, ref.LOSS_SOFTMAX_XENT, ref.OPT_ADAM, hyper)
    want = run_epochs(ref, prob, 16, ref.LOSS_SOFTMAX_XENT, ref.OPT_ADAM, hyper)
    _assert_same(got, want, 1e-10)


def test_kernels_parallel_paths(cy, parallel):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((37, 19))
    W = rng.standard_normal((19, 23))
    b = rng.standard_normal(23)
    for code in (A.RELU, A.TANH, A.SOFTMAX, A.GELU_TANH):
        outs = []
        for mod in (cy, ref):
            z, a = np.empty((37, 23)), np.empty((37, 23))
            mod.dense_forward(x, W, b, code, 0.0, 0.0, z, a)
            dy = np.cos(a)
            dz, dW, db, dx = (np.empty((37, 23)), np.empty((19, 23)), np.empty(23),
                              np.empty((37, 19)))
            mod.dense_backward(x, W, z, a, dy, code, 0.0, 0.0, dz, dW, db, dx)
            outs.append((z, a, dz, dW, db, dx))
        for g, w in zip(*outs):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    p, g = rng.standard_normal(1000), rng.standard_normal(1000)
    p2, m, v, m2, v2 = p.copy(), np.zeros(1000), np.zeros(1000), np.zeros(1000), np.zeros(1000)
    cy.adam_update(p, g, m, v, 1e-2, 0.9, 0.999, 1e-8, 1e-3, 3)
    ref.adam_update(p2, g, m2, v2, 1e-2, 0.9, 0.999, 1e-8, 1e-3, 3)
    np.testing.assert_allclose(p, p2, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- split epoch
@pytest.fixture(params=[2, 3])
def split(cy, request, monkeypatch):
    """Make train_epoch take the column-split epoch on ``request.param`` threads (3 on a
    2-core machine: more threads than cores still meet at the barriers)."""
    yield from split_epoch_on(cy, monkeypatch, request.param)


def test_the_split_epoch_is_chosen_by_the_policy(cy, split, monkeypatch):
    """From SPLIT_FROM to SPLIT_BELOW the split epoch runs: its forward sums, split over
    the input features, round differently from the one-thread epoch's (and agree to 1e-12);
    outside that range the one-thread epoch runs, bit for bit."""
    from fusenn import _threads

    prob = _problem(np.float64, ref.LOSS_SOFTMAX_XENT, widths=(40, 30, 20, 5), n=64)
    hyper = _hyper(OPTIMIZERS["nesterov"][1])
    work = 8 * (41 * 30 + 31 * 20 + 21 * 5)  # rows x parameters, the Trainer's measure
    assert _threads.split_threads(work) == split
    split_run = run_epochs(cy, prob, 8, ref.LOSS_SOFTMAX_XENT, ref.OPT_SGD, hyper)
    monkeypatch.setattr(_threads, "SPLIT_FROM", work + 1)
    assert _threads.split_threads(work) == 1
    serial = run_epochs(cy, prob, 8, ref.LOSS_SOFTMAX_XENT, ref.OPT_SGD, hyper)
    assert not np.array_equal(split_run[0], serial[0])
    _assert_same(split_run, serial, 1e-12)
    monkeypatch.setattr(_threads, "SPLIT_FROM", 0)
    monkeypatch.setattr(_threads, "SPLIT_BELOW", work)
    assert _threads.split_threads(work) == 1
    np.testing.assert_array_equal(
        run_epochs(cy, prob, 8, ref.LOSS_SOFTMAX_XENT, ref.OPT_SGD, hyper)[0], serial[0])


@pytest.mark.parametrize("widths", [(7, 11, 6, 3), (5, 1, 2), (2, 9, 1)])
@pytest.mark.parametrize("batch_size", [1, 3, 28, 29, 100])
def test_split_epoch_odd_shapes(cy, split, widths, batch_size):
    """Layers narrower than the team (a thread with no share), odd and whole batches."""
    codes = (A.SIGMOID, A.GELU, A.LINEAR)[-(len(widths) - 1):]
    prob = _problem(np.float64, ref.LOSS_MSE, widths=widths, codes=codes)
    hyper = _hyper(OPTIMIZERS["nesterov"][1])
    with np.errstate(all="ignore"):  # (the batch-1 runs of (2, 9, 1) diverge, alike)
        got = run_epochs(cy, prob, batch_size, ref.LOSS_MSE, ref.OPT_SGD, hyper)
        want = run_epochs(ref, prob, batch_size, ref.LOSS_MSE, ref.OPT_SGD, hyper)
    _assert_same(got, want, 1e-10)


def test_split_epoch_float32_counts_and_every_activation(cy, split):
    """float32, the per-batch correct counts, and every code (softmax falls back to the
    one-thread epoch, which needs a row's every column)."""
    for code in sorted(A.BY_CODE):
        prob = _problem(np.float32, ref.LOSS_SOFTMAX_XENT, codes=(code, A.TANH, A.LINEAR),
                        n=41)
        hyper = _hyper(OPTIMIZERS["adam"][1])
        outs = []
        for mod in (cy, ref):
            flat, state = prob["flat"].copy(), prob["state"].copy()
            grad = np.zeros_like(flat)
            losses, correct = np.zeros(6), np.zeros(6)
            with np.errstate(all="ignore"):  # (the oracle's default parameters of some codes)
                mod.train_epoch(flat, grad, prob["widths"], prob["codes"], prob["params"],
                                prob["X"], prob["labels"], prob["targets"], prob["perm"], 7,
                                ref.LOSS_SOFTMAX_XENT, ref.OPT_ADAM, hyper, state, losses,
                                correct)
            outs.append((flat, losses, correct))
        np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=2e-4, atol=2e-4)
        np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-4)
        np.testing.assert_array_equal(outs[0][2], outs[1][2])


def test_split_epoch_stops_at_a_diverging_batch(cy, split):
    """A non-finite loss stops every thread before the batch's update, as the one-thread
    epoch does."""
    prob = _problem(np.float64, ref.LOSS_MSE, n=40)
    prob["targets"][23] = np.inf  # in the batch of rows 20-24 of the order below
    prob["perm"] = np.arange(40, dtype=np.int64)
    hyper = _hyper(OPTIMIZERS["sgd-momentum-wd"][1])
    results = []
    for mod in (cy, ref):
        flat, state = prob["flat"].copy(), prob["state"].copy()
        grad = np.zeros_like(flat)
        losses = np.zeros(8)
        done = mod.train_epoch(flat, grad, prob["widths"], prob["codes"], prob["params"],
                               prob["X"], prob["labels"], prob["targets"], prob["perm"], 5,
                               ref.LOSS_MSE, ref.OPT_SGD, hyper, state, losses)
        results.append((done, flat, losses[:done]))
    assert results[0][0] == results[1][0] == 4
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(results[0][2], results[1][2], rtol=1e-10)


def _row_product_modules():
    """Every build of the extension this machine can run: both carry fusenn_rowmm.h's two
    products (vectorised where FUSENN_ROWMM, plain loops elsewhere)."""
    from fusenn.backends import _cython

    mods = [pytest.importorskip("fusenn._cykernels")]
    if _cython.cpu_has_avx2_fma():
        try:
            mods.append(importlib.import_module("fusenn._cykernels_avx2"))
        except ImportError:  # (built without the AVX2 twin)
            pass
    return mods


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_thread_epoch_products_match_numpy(dtype):
    """The one-thread epoch's products (``product``: the plain loop and, for float32 outputs
    of at most 8 columns, fusenn_gemm_tiny below 512 multiply-adds; BLAS above) against
    NumPy in every build: each transpose, 1 to 9 output columns, inner sizes around the
    tiny kernel's limits, alpha and beta as the epoch's plain SGD update uses them; with
    beta 0 a NaN already in C is not read."""
    rng = np.random.default_rng(3)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for mod in _row_product_modules():
        for ta, tb in itertools.product((False, True), repeat=2):
            for m, n, k in [(4, 8, 2), (4, 2, 8), (1, 1, 1), (3, 5, 7), (2, 8, 32), (1, 3, 64),
                            (1, 2, 65), (2, 9, 4), (16, 8, 4), (5, 7, 0), (40, 8, 30)]:
                A = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
                B = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
                a64 = (A.T if ta else A).astype(np.float64)
                b64 = (B.T if tb else B).astype(np.float64)
                for alpha, beta in ((1.0, 0.0), (-0.1, 1.0), (2.0, 0.5)):
                    C0 = rng.standard_normal((m, n)).astype(dtype)
                    C = np.full_like(C0, np.nan) if beta == 0 else C0.copy()
                    mod.product(A, B, C, alpha, beta, ta, tb)
                    want = alpha * (a64 @ b64) + (beta * C0 if beta else 0)
                    np.testing.assert_allclose(C, want, rtol=tol, atol=tol * max(k, 1),
                                               err_msg=f"{mod.__name__} {ta} {tb} {m, n, k}")
        with bad_input(ValueError, match="does not give"):
            mod.product(np.ones((2, 3), dtype), np.ones((2, 4), dtype), np.ones((2, 4), dtype))


@pytest.mark.parametrize("K", [1, 7, 8, 9, 64, 65, 257, 300])
def test_row_products_match_numpy(cy, K):
    """The split epoch's float32 products over row pointers, at every tiling edge: rows not a
    multiple of the tile's 4, full 24-column tiles, last blocks of 9-23 columns (masked
    tiles) and of 1-8 (dot products), k past a 64-block and past the forward's 256-block of
    transposed columns, operands with wider rows than the product's (``extra``), and the
    weight gradient's alpha and beta. Columns outside the product are left alone."""
    rng = np.random.default_rng(K)
    for mod in _row_product_modules():
        for m, n, extra in [(1, 1, 0), (3, 4, 3), (5, 8, 0), (4, 9, 1), (9, 17, 0),
                            (33, 24, 0), (2, 25, 3), (32, 100, 0), (7, 101, 5), (16, 48, 1)]:
            X = rng.standard_normal((40, K + 5)).astype(np.float32)
            idx = rng.integers(0, 40, m)
            x = X[idx, 2:2 + K].astype(np.float64)
            W = rng.standard_normal((K, n + extra)).astype(np.float32)
            Z = np.full((m, n + extra), 7.0, np.float32)
            mod.rowmm_nn(X, idx, 2, K, W, n, Z)
            np.testing.assert_allclose(Z[:, :n], x @ W[:, :n], rtol=2e-5, atol=2e-5 * K)
            assert (Z[:, n:] == 7).all()
            D = rng.standard_normal((m, n + extra)).astype(np.float32)
            G0 = rng.standard_normal((K, n + extra)).astype(np.float32)
            for alpha, beta in ((1.0, 0.0), (-0.1, 1.0), (2.0, 0.5)):
                G = G0.copy()
                mod.rowmm_tn(X, idx, 2, K, D, n, alpha, beta, G)
                want = alpha * (x.T @ D[:, :n]) + beta * G0[:, :n]
                np.testing.assert_allclose(G[:, :n], want, rtol=2e-5, atol=4e-5 * m)
                assert (G[:, n:] == G0[:, n:]).all()


@pytest.mark.parametrize("K", [1, 8, 9, 65, 300])
def test_row_products_over_the_active_columns(cy, K):
    """With ``active``, the row products run over the columns of X that are not 0 in some row
    (``rowmm_active``, NaN counting as not 0): the same numbers to the bit as over every column
    (a zero term adds nothing), for none, some and every column active, plain and scaled
    weight gradients (the rows of the other columns: ``beta G``), and every tiling edge."""
    rng = np.random.default_rng(K)
    for mod in _row_product_modules():
        for m, n, share in [(1, 1, 0.5), (3, 4, 0.0), (5, 8, 0.3), (4, 9, 1.0), (9, 17, 0.5),
                            (33, 24, 0.2), (2, 25, 0.7), (32, 100, 0.55), (7, 101, 0.4)]:
            X = rng.standard_normal((40, K + 5)).astype(np.float32)
            X[:, 2 + np.flatnonzero(rng.random(K) >= share)] = 0  # inactive columns
            X[rng.random(X.shape) < 0.5] = 0  # and zeros elsewhere
            idx = rng.integers(0, 40, m)
            if K > 8:
                X[idx[0], 2 + K - 1] = np.nan
            want = 2 + np.flatnonzero((X[idx, 2:2 + K] != 0).any(axis=0))
            np.testing.assert_array_equal(mod.rowmm_active(X, idx, 2, K), want)
            W = rng.standard_normal((K, n + 3)).astype(np.float32)
            Z = np.full((m, n + 3), 7.0, np.float32)
            Za = Z.copy()
            mod.rowmm_nn(X, idx, 2, K, W, n, Z)
            mod.rowmm_nn(X, idx, 2, K, W, n, Za, active=True)
            np.testing.assert_array_equal(Za, Z)
            D = rng.standard_normal((m, n + 3)).astype(np.float32)
            G0 = rng.standard_normal((K, n + 3)).astype(np.float32)
            for alpha, beta in ((1.0, 0.0), (-0.1, 1.0), (2.0, 0.5)):
                G, Ga = G0.copy(), G0.copy()
                mod.rowmm_tn(X, idx, 2, K, D, n, alpha, beta, G)
                mod.rowmm_tn(X, idx, 2, K, D, n, alpha, beta, Ga, active=True)
                np.testing.assert_array_equal(Ga, G)


def test_row_products_check_their_operands(cy):
    X = np.ones((4, 6), np.float32)
    W = np.ones((3, 5), np.float32)
    Z = np.zeros((2, 5), np.float32)
    for mod in _row_product_modules():
        mod.rowmm_nn(X, [0, 3], 1, 3, W, 5, Z)
        assert (Z == 3).all()
        with bad_input(ValueError, match="outside X"):
            mod.rowmm_nn(X, [0, 4], 1, 3, W, 5, Z)
        with bad_input(ValueError, match=r"columns \[4, 7\)"):
            mod.rowmm_nn(X, [0, 3], 4, 3, W, 5, Z)
        with bad_input(ValueError, match="W is smaller"):
            mod.rowmm_nn(X, [0, 3], 1, 3, W, 6, Z)
        with bad_input(ValueError, match="out is smaller"):
            mod.rowmm_tn(X, [0, 3], 1, 4, Z, 5, 1.0, 0.0, W)
        with bad_input(ValueError, match="X has dtype float64"):
            mod.rowmm_nn(X.astype(np.float64), [0, 3], 1, 3, W, 5, Z)


@pytest.mark.parametrize("inputs", ["dense", "sparse"])
@pytest.mark.parametrize("opt", ["sgd", "sgd-momentum-wd", "adam", "nesterov-l2"])
def test_split_epoch_row_products_against_blas(cy, split, opt, inputs):
    """float32 split epochs whose first layer runs on the row-pointer kernels (where built;
    batches of 32 rows and a last one of 13) agree with the same epochs gathering each batch
    for BLAS, and with the oracle: a first layer with full tiles and dot-product columns, plain
    SGD (the update inside the product) and optimisers updating by blocks of rows. With
    ``sparse`` inputs (as MNIST's digits: a third of the columns 0 in every row, half the
    other entries 0), both products run over each batch's active columns."""
    opt_code, settings = OPTIMIZERS[opt]
    prob = _problem(np.float32, ref.LOSS_SOFTMAX_XENT, widths=(61, 53, 30, 7), n=45)
    if inputs == "sparse":
        rng = np.random.default_rng(7)
        X = prob["X"].copy()
        X[:, rng.permutation(61)[:20]] = 0
        X[rng.random(X.shape) < 0.5] = 0
        prob["X"] = X
    hyper = _hyper(settings)
    previous = cy.use_rowmm(True)
    try:
        assert cy.use_rowmm(True) == cy.ROWMM  # (no effect where the kernels are not built)
        rows = run_epochs(cy, prob, 32, ref.LOSS_SOFTMAX_XENT, opt_code, hyper)
        cy.use_rowmm(False)
        blas = run_epochs(cy, prob, 32, ref.LOSS_SOFTMAX_XENT, opt_code, hyper)
    finally:
        cy.use_rowmm(previous)
    want = run_epochs(ref, prob, 32, ref.LOSS_SOFTMAX_XENT, opt_code, hyper)
    # (the 5 dot-product columns sum in another order than BLAS: the paths did differ)
    assert np.array_equal(rows[0], blas[0]) != cy.ROWMM
    _assert_same(rows, blas, 1e-4)
    _assert_same(rows, want, 1e-4)


# --------------------------------------------------------------------------- allocation
def _traced_peak(cy, n, batch_size=4):
    prob = _problem(np.float64, ref.LOSS_SOFTMAX_XENT, n=n)
    flat, state = prob["flat"], prob["state"]
    grad = np.zeros_like(flat)
    hyper = _hyper(OPTIMIZERS["adam"][1])
    losses = np.zeros(-(-n // batch_size))
    args = (flat, grad, prob["widths"], prob["codes"], prob["params"], prob["X"],
            prob["labels"], prob["targets"], prob["perm"], batch_size, ref.LOSS_SOFTMAX_XENT,
            ref.OPT_ADAM, hyper, state, losses)
    cy.train_epoch(*args)  # warm up (first-call caches)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        done = cy.train_epoch(*args)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert done == len(losses)
    return peak - base, current - base


def test_train_epoch_does_not_allocate_per_batch(cy):
    """An epoch of 5,000 batches traces no more memory than one of 5 batches."""
    small_peak, small_left = _traced_peak(cy, 20)
    long_peak, long_left = _traced_peak(cy, 20_000)
    assert long_peak <= small_peak + 1024, (small_peak, long_peak)
    assert long_left <= 1024 and small_left <= 1024


# --------------------------------------------------------------------------- divergence
# The NumPy reference's (y - t)^2 overflows, as the test means it to: not a stray warning.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_divergence_stops_before_the_update(cy):
    prob = _problem(np.float64, ref.LOSS_MSE)
    bad = prob["perm"][2 * 5 + 3]  # a sample of batch 2
    prob["targets"][bad] = 1e300  # (y - t)^2 overflows
    hyper = _hyper(OPTIMIZERS["sgd-momentum-wd"][1])
    got = run_epochs(cy, prob, 5, ref.LOSS_MSE, ref.OPT_SGD, hyper, epochs=1)
    want = run_epochs(ref, prob, 5, ref.LOSS_MSE, ref.OPT_SGD, hyper, epochs=1)
    assert got[3] == [2] and want[3] == [2]
    assert np.all(np.isfinite(got[0])) and not np.isfinite(got[2][2])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got[2][:2], want[2][:2], rtol=1e-10)
    # the weights are exactly those after the first two batches
    first = dict(prob, X=prob["X"][prob["perm"][:10]], targets=prob["targets"][prob["perm"][:10]],
                 perm=np.arange(10, dtype=np.int64))
    two = run_epochs(cy, first, 5, ref.LOSS_MSE, ref.OPT_SGD, hyper, epochs=1)
    assert two[3] == [2]
    np.testing.assert_array_equal(got[0], two[0])


def test_divergence_from_nan_logits(cy):
    prob = _problem(np.float64, ref.LOSS_SOFTMAX_XENT, codes=(A.LINEAR, A.LINEAR, A.LINEAR))
    prob["X"][prob["perm"][0]] = np.inf  # inf * 0-sum weights -> nan in the first batch
    hyper = _hyper(OPTIMIZERS["sgd"][1])
    start = prob["flat"].copy()
    got = run_epochs(cy, prob, 5, ref.LOSS_SOFTMAX_XENT, ref.OPT_SGD, hyper, epochs=1)
    assert got[3] == [0]
    np.testing.assert_array_equal(got[0], start)


# --------------------------------------------------------------------------- bad input
def test_bad_input_raises(cy):
    f = np.float64
    x, W, z = np.ones((3, 4)), np.ones((4, 5)), np.empty((3, 5))
    with bad_input(ValueError):
        cy.dense_forward(x, np.ones((5, 5)), None, A.RELU, 0.0, 0.0, z, np.empty((3, 5)))
    with bad_input(ValueError):
        cy.dense_forward(x, W, np.ones(4), A.RELU, 0.0, 0.0, z, np.empty((3, 5)))
    with bad_input(ValueError):
        cy.dense_forward(x, W, None, A.RELU, 0.0, 0.0, z, np.empty((3, 6)))
    with pytest.raises(ValueError):  # plain: Cython's own buffer check (mixed dtypes)
        cy.dense_forward(x, W.astype(np.float32), None, A.RELU, 0.0, 0.0, z, z)
    with pytest.raises(ValueError):  # plain: Cython's own buffer check (layout)
        cy.dense_forward(x, np.asfortranarray(np.ones((4, 5))[:, :4]), None, 7, 0, 0, z, z)
    with bad_input(ValueError):
        cy.act_forward(x, 99, 0.0, 0.0, np.empty_like(x))
    with bad_input(TypeError):
        cy.act_forward(x.astype(np.int64), A.RELU, 0.0, 0.0, np.empty_like(x))
    ro = np.empty_like(x)
    ro.setflags(write=False)
    with pytest.raises(ValueError):  # plain: Cython's own buffer check
        cy.act_forward(x, A.RELU, 0.0, 0.0, ro)
    with pytest.raises(IndexError):
        cy.softmax_xent(np.ones((2, 3)), np.array([0, 3]), None)
    with pytest.raises(IndexError):
        cy.softmax_xent(np.ones((2, 3)), np.array([-1, 0]), None)
    with bad_input(ValueError):
        cy.softmax_xent(np.ones((2, 3)), np.array([0, 1, 2]), None)
    with bad_input(ValueError):
        cy.sgd_update(np.ones(3), np.ones(4), None, 0.1, 0.0, False, 0.0)
    with bad_input(ValueError):
        cy.sgd_update(np.ones(3), np.ones(3), None, 0.1, 0.9, False, 0.0)
    with bad_input(ValueError):
        cy.logsumexp(np.ones((2, 3), dtype=f), np.empty(3))
    with bad_input(ValueError):
        cy.mse(np.ones((2, 3)), np.ones((3, 2)), None, False)


def test_dense_calls_check_their_arrays_as_a_memoryview_would(cy):
    """The dense layer's boundary reads NumPy's C API instead of typed memoryviews: the same
    arrays pass, the same ones are refused, each with an error that names the array."""
    rng = np.random.default_rng(0)
    x, W, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=5)
    want = np.maximum(x @ W + b, 0)
    z, a = np.empty((3, 5)), np.empty((3, 5))
    with bad_input(TypeError, match="W must be a NumPy array, got list"):
        cy.dense_forward(x, W.tolist(), b, A.RELU, 0.0, 0.0, z, a)
    with bad_input(ValueError, match="b has dtype float32, expected x's float64"):
        cy.dense_forward(x, W, b.astype(np.float32), A.RELU, 0.0, 0.0, z, a)
    with bad_input(ValueError, match="W has dtype >f8"):
        cy.dense_forward(x, W.astype(">f8"), b, A.RELU, 0.0, 0.0, z, a)
    with bad_input(ValueError, match="x must be a C-contiguous array"):
        cy.dense_forward(np.asfortranarray(x), W, b, A.RELU, 0.0, 0.0, z, a)
    with bad_input(ValueError, match="b must have 1 dimension"):
        cy.dense_forward(x, W, b[None], A.RELU, 0.0, 0.0, z, a)
    ro = np.empty((3, 5))
    ro.flags.writeable = False
    with bad_input(ValueError, match="a is read-only"):
        cy.dense_forward(x, W, b, A.RELU, 0.0, 0.0, z, ro)
    dW_ro = np.empty_like(W)
    dW_ro.flags.writeable = False
    with bad_input(ValueError, match="dW is read-only"):
        cy.dense_backward(x, W, z, a, z, A.RELU, 0.0, 0.0, np.empty_like(z), dW_ro, None, None)
    # read-only inputs, and inputs that are not aligned (dask and pickle rebuild such arrays
    # from byte buffers), are taken as they are
    raw = np.frombuffer(b"\0" + x.tobytes(), dtype=np.uint8)[1:].view(np.float64)
    unaligned = raw.reshape(3, 4)
    assert not unaligned.flags.aligned and not unaligned.flags.writeable
    assert cy.dense_forward(unaligned, W, b, A.RELU, 0.0, 0.0, z, a) is True
    np.testing.assert_allclose(a, want, rtol=1e-12)
    # empty products: no rows, no outputs
    assert cy.dense_forward(x[:0], W, b, A.RELU, 0.0, 0.0, z[:0], a[:0]) is True
    dW, db, dx = np.full_like(W, 7.0), np.full(5, 7.0), np.full_like(x, 7.0)
    cy.dense_backward(x[:0], W, z[:0], a[:0], z[:0], A.RELU, 0.0, 0.0, z[:0], dW, db, None)
    assert not dW.any() and not db.any()
    cy.dense_backward(x, W[:, :0], z[:, :0], a[:, :0], z[:, :0], A.RELU, 0.0, 0.0,
                      z[:, :0].copy(), W[:, :0].copy(), db[:0], dx)
    assert not dx.any()


def test_train_epoch_bad_input_raises(cy):
    prob = _problem(np.float64, ref.LOSS_SOFTMAX_XENT)
    hyper = _hyper(OPTIMIZERS["adam"][1])

    def run(**changes):
        p = dict(prob, **changes)
        flat = p.pop("flat_override", prob["flat"].copy())
        cy.train_epoch(flat, np.zeros_like(flat), p["widths"], p["codes"], p["params"], p["X"],
                       p["labels"], p["targets"], p["perm"], p.get("bs", 5),
                       p.get("loss", ref.LOSS_SOFTMAX_XENT), p.get("opt", ref.OPT_ADAM),
                       hyper, p["state"], np.zeros(6))

    run()
    bad_perm = prob["perm"].copy()
    bad_perm[4] = 29
    with pytest.raises(IndexError):
        run(perm=bad_perm)
    bad_labels = prob["labels"].copy()
    bad_labels[7] = 3
    with pytest.raises(IndexError):
        run(labels=bad_labels)
    with bad_input(ValueError):
        run(perm=prob["perm"][:-1])
    with bad_input(ValueError):
        run(flat_override=prob["flat"][:-1].copy())
    with bad_input(ValueError):
        run(X=prob["X"][:, :-1].copy())
    with bad_input(ValueError):
        run(codes=np.array([A.TANH, 99, A.LINEAR]))
    with bad_input(ValueError):
        run(bs=0)
    with bad_input(ValueError):
        run(loss=7)
    with bad_input(ValueError):
        run(opt=9)
    with bad_input(ValueError):
        run(state=prob["state"][:1].copy())
    with bad_input(ValueError):
        run(loss=ref.LOSS_MSE, targets=np.zeros((29, 2)))
    with bad_input(ValueError):
        run(params=np.zeros((2, 2)))
