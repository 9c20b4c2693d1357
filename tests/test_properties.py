"""Property-based tests (hypothesis) of every public kernel call on every backend.

Shapes (batch 1, width 1, sizes around the SIMD width), dtypes (float32, float64 and
integers, which become float64), layouts (C, Fortran, strided views, read-only) and values
(large, tiny, signed zeros) are drawn; each call on a backend must agree with the NumPy
oracle, and each malformed call (wrong shape, labels out of range, non-finite values) must
raise a FusennError rather than reach a kernel.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fusenn as fn
from fusenn.errors import FusennError

BACKENDS = [b for b in ("numpy", "cython", "numba") if b in fn.available_backends()]
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
ACTS = ["linear", "relu", "sigmoid", "tanh", "elu", "gelu", "softplus", "swish", "mish",
        "hard_tanh", "leaky_relu", "selu", "softsign", "softmax"]

dims = st.integers(1, 19)
dtypes = st.sampled_from([np.float32, np.float64, np.int32])
layouts = st.sampled_from(["C", "F", "strided", "readonly"])


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if np.dtype(dtype) == np.float32 else \
        dict(rtol=1e-12, atol=1e-13)


def _layout(a, how):
    if how == "F":
        return np.asfortranarray(a)
    if how == "strided":
        big = np.zeros((a.shape[0], a.shape[1] * 2), dtype=a.dtype)
        big[:, ::2] = a
        return big[:, ::2]
    if how == "readonly":
        a = a.copy()
        a.flags.writeable = False
    return a


@st.composite
def matrices(draw, rows=None, cols=None, lo=-30, hi=30):
    n = draw(dims) if rows is None else rows
    k = draw(dims) if cols is None else cols
    dtype = draw(dtypes)
    elems = (st.integers(lo, hi) if np.dtype(dtype).kind == "i" else
             st.floats(lo, hi, width=32, allow_subnormal=False))
    a = draw(hnp.arrays(dtype, (n, k), elements=elems))
    return _layout(a, draw(layouts))


def _on(backend, f, *args, **kw):
    with fn.use_backend(backend):
        return f(*args, **kw)


def _agree(got, want, like):
    """``got`` equals ``want`` to the tolerance of the dtype the call computed in (that of
    the input ``like``: float32 stays, anything else is float64)."""
    dtype = like.dtype if like.dtype == np.float32 else np.float64
    if isinstance(want, tuple):
        for g, w in zip(got, want):
            _agree(g, w, like)
        return
    np.testing.assert_allclose(got, np.asarray(want), **_tol(dtype))


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(data=st.data(), act=st.sampled_from(ACTS), bias=st.booleans())
def test_linear_agrees_with_the_oracle(backend, data, act, bias):
    x = data.draw(matrices(lo=-3, hi=3))
    W = data.draw(matrices(rows=x.shape[1], lo=-3, hi=3))
    b = np.linspace(-1, 1, W.shape[1]) if bias else None
    want = _on("numpy", fn.functional.linear, x, W, b, act)
    _agree(_on(backend, fn.functional.linear, x, W, b, act), want, x)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
@SETTINGS
@given(z=matrices(lo=-80, hi=80))
def test_row_functions_agree_with_the_oracle(backend, name, z):
    f = getattr(fn.functional, name)
    got, want = _on(backend, f, z), _on("numpy", f, z)
    if name == "log_softmax":
        # z - logsumexp(z) cancels: near the row's maximum the result is tiny, and each
        # backend's rounding of logsumexp (a number of the size of z) is all that is left,
        # so the two agree to a few units in the last place of max |z|, not relatively.
        dtype = z.dtype if z.dtype == np.float32 else np.float64
        scale = float(np.max(np.abs(z), initial=1.0))
        np.testing.assert_allclose(got, want, rtol=_tol(dtype)["rtol"],
                                   atol=4 * np.finfo(dtype).eps * scale)
    else:
        _agree(got, want, z)


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(data=st.data())
def test_losses_agree_with_the_oracle(backend, data):
    z = data.draw(matrices(lo=-50, hi=50))
    n, k = z.shape
    labels = np.asarray(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    t = data.draw(matrices(rows=n, cols=k, lo=0, hi=1))
    for f, args in ((fn.functional.softmax_cross_entropy, (z, labels)),
                    (fn.functional.binary_cross_entropy_with_logits, (z, t)),
                    (fn.functional.mse, (z, t))):
        _agree(_on(backend, f, *args), _on("numpy", f, *args), z)


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(data=st.data(), act=st.sampled_from(ACTS[:-1]))
def test_activation_objects_agree_with_the_oracle(backend, data, act):
    z = data.draw(matrices(lo=-40, hi=40))
    a = fn.activations.get(act)
    want = (_on("numpy", a.forward, z), _on("numpy", a.derivative, z))
    got = (_on(backend, a.forward, z), _on(backend, a.derivative, z))
    _agree(got, want, z)


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(data=st.data(), act=st.sampled_from(ACTS[:-1]))
def test_model_forward_backward_agree_with_the_oracle(backend, data, act):
    x = data.draw(matrices(lo=-2, hi=2))
    width = data.draw(dims)
    dy = data.draw(matrices(rows=x.shape[0], cols=3, lo=-1, hi=1))
    out = {}
    for name in ("numpy", backend):
        model = fn.Sequential([fn.layers.Dense(x.shape[1], width, act),
                               fn.layers.Dense(width, 3)], dtype=np.float64, random_state=0)
        with fn.use_backend(name):
            y = model.forward(x)
            model.backward(dy)  # the first layer computes no input gradient: None
        out[name] = (y, model.flat_grads.copy())
    _agree(out[backend], out["numpy"], np.zeros(1))


# --------------------------------------------------------------------- malformed calls
@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(data=st.data())
def test_malformed_backward_is_refused(backend, data):
    x = data.draw(matrices(lo=-2, hi=2))
    rows = data.draw(st.integers(1, 25).filter(lambda r: r != x.shape[0]))
    cols = data.draw(st.integers(1, 6))
    model = fn.Sequential([fn.layers.Dense(x.shape[1], 4, "relu"), fn.layers.Dense(4, 3)],
                          random_state=0)
    with fn.use_backend(backend):
        model.forward(x)
        with pytest.raises(FusennError):
            model.backward(np.ones((rows, cols)))


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(data=st.data(), bad=st.one_of(st.integers(-10 ** 12, -1), st.integers(3, 10 ** 12)))
def test_labels_out_of_range_are_refused(backend, data, bad):
    z = data.draw(matrices(cols=3))
    labels = np.zeros(z.shape[0], dtype=np.int64)
    labels[data.draw(st.integers(0, z.shape[0] - 1))] = bad
    with fn.use_backend(backend):
        with pytest.raises(FusennError):
            fn.functional.softmax_cross_entropy(z, labels)
        with pytest.raises(FusennError):
            fn.losses.get("cross_entropy")(np.ascontiguousarray(z, dtype=np.float64), labels)


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(data=st.data(), bad=st.sampled_from([np.nan, np.inf, -np.inf]))
def test_non_finite_inputs_are_refused(backend, data, bad):
    x = np.array(data.draw(matrices(lo=-2, hi=2)), dtype=np.float64)
    x[data.draw(st.integers(0, x.shape[0] - 1)), data.draw(st.integers(0, x.shape[1] - 1))] = bad
    W = np.ones((x.shape[1], 2))
    with fn.use_backend(backend):
        for call in (lambda: fn.functional.linear(x, W), lambda: fn.functional.softmax(x),
                     lambda: fn.functional.mse(x, np.zeros_like(x)),
                     lambda: fn.losses.get("mse").value(x, np.zeros_like(x))):
            with pytest.raises(FusennError):
                call()
