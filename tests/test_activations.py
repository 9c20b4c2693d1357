import math
import warnings

import numpy as np
import pytest

import fusenn as fn
from fusenn import activations as A
from support import bad_input

pytestmark = pytest.mark.usefixtures("numpy_backend")

REQUIRED = ["linear", "step", "heaviside", "sign", "piecewise_linear", "sigmoid", "tanh", "relu",
            "leaky_relu", "prelu", "rrelu", "elu", "selu", "gelu", "swish", "silu", "mish",
            "softplus", "softsign", "log_sigmoid", "sinc", "hard_swish", "hard_sigmoid",
            "hard_tanh", "tanh_shrink", "soft_shrink", "hard_shrink", "softmax"]

# Every activation with non-default parameters too, and gelu's tanh form.
VARIANTS = [(n, {}) for n in REQUIRED] + [
    ("leaky_relu", {"alpha": 0.2}), ("elu", {"alpha": 0.5}), ("swish", {"beta": 2.0}),
    ("softplus", {"beta": 3.0}), ("hard_tanh", {"min_val": -2.0, "max_val": 0.5}),
    ("soft_shrink", {"lambd": 1.0}), ("hard_shrink", {"lambd": 0.25}),
    ("gelu", {"approximate": "tanh"}), ("rrelu", {"lower": 0.1, "upper": 0.3}),
    ("prelu", {"alpha": 0.1})]
IDS = [f"{n}-{p}" if p else n for n, p in VARIANTS]


def test_every_required_name_is_registered():
    assert set(REQUIRED) <= set(A.names())


def test_aliases():
    assert A.get("identity").name == "linear"
    assert A.get("logistic").name == "sigmoid"


@pytest.mark.parametrize("name,expected", [
    ("step", [0, 0, 1, 1, 1]), ("heaviside", [0, 0, 0.5, 1, 1]), ("sign", [-1, -1, 0, 1, 1]),
    ("relu", [0, 0, 0, 0.5, 3]), ("piecewise_linear", [0, 0, 0.5, 1, 1]),
    ("hard_sigmoid", [0, 5 / 12, 0.5, 7 / 12, 1]), ("hard_tanh", [-1, -0.5, 0, 0.5, 1]),
    ("soft_shrink", [-2.5, 0, 0, 0, 2.5]), ("hard_shrink", [-3, 0, 0, 0, 3]),
    ("hard_swish", [0, -0.5 * 2.5 / 6, 0, 0.5 * 3.5 / 6, 3]), ("linear", [-3, -0.5, 0, 0.5, 3]),
])
def test_values(name, expected):
    z = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(A.get(name).forward(z), expected, atol=1e-12)


def test_standard_constants():
    z = np.array([-1.0, 1.0])
    np.testing.assert_allclose(A.get("selu").forward(z),
                               [1.0507009873554805 * 1.6732632423543772 * (math.exp(-1) - 1),
                                1.0507009873554805])
    np.testing.assert_allclose(A.get("gelu").forward(np.array([1.0])), [0.8413447460685429])
    np.testing.assert_allclose(A.get("gelu", approximate="tanh").forward(np.array([1.0])),
                               [0.8411919906082768])
    np.testing.assert_allclose(A.get("softplus", beta=2.0).forward(np.array([0.0])),
                               [math.log(2) / 2])
    assert A.get("sinc").forward(np.array([0.0]))[0] == 1.0
    np.testing.assert_allclose(A.get("sinc").forward(np.array([math.pi / 2])), [2 / math.pi])
    np.testing.assert_allclose(A.get("rrelu").forward(np.array([-1.0])),
                               [-(1 / 8 + 1 / 3) / 2])


def test_kink_conventions():
    assert A.get("relu").derivative(np.array([0.0]))[0] == 0
    assert A.get("leaky_relu").derivative(np.array([0.0]))[0] == pytest.approx(0.01)
    for name in ("step", "heaviside", "sign"):
        np.testing.assert_array_equal(A.get(name).derivative(np.array([-1.0, 0.0, 2.0])), 0)


def _points(act):
    z = np.linspace(-4.3, 4.1, 37)
    kinks = A.kink_points(act)
    keep = np.all([np.abs(z - k) > 1e-3 for k in kinks], axis=0) if kinks else np.ones_like(z, bool)
    return z[keep]


@pytest.mark.parametrize("name,params", VARIANTS, ids=IDS)
def test_derivative_matches_finite_difference(name, params):
    act = A.get(name, **params)
    if act.rowwise:
        z = np.array([[0.3, -1.2, 2.0, 0.1]])
        eps = 1e-6
        num = np.array([[(act.forward(z + eps * np.eye(4)[j])[0, j]
                          - act.forward(z - eps * np.eye(4)[j])[0, j]) / (2 * eps)
                         for j in range(4)]])
        np.testing.assert_allclose(act.derivative(z), num, rtol=1e-6)
        # the Jacobian-vector product used by layers
        dy = np.array([[0.5, -1.0, 0.25, 2.0]])
        s = act.forward(z)
        jac = np.diag(s[0]) - np.outer(s[0], s[0])
        np.testing.assert_allclose(act.backward(z, s, dy), dy @ jac, rtol=1e-12)
        return
    z = _points(act)
    eps = 1e-6
    num = (act.forward(z + eps) - act.forward(z - eps)) / (2 * eps)
    if name in ("step", "heaviside", "sign"):
        z = z[np.abs(z) > 1e-3]
        num = np.zeros_like(z)
    np.testing.assert_allclose(act.derivative(z), num, rtol=1e-5, atol=1e-7)


def test_sinc_derivative_near_zero_is_smooth():
    act = A.get("sinc")
    z = np.array([-1e-3, -1e-6, 0.0, 1e-6, 1e-3, 0.02])
    np.testing.assert_allclose(act.derivative(z), (np.cos(z) * z - np.sin(z)) / np.where(
        z == 0, 1, z) ** 2 * (z != 0), atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,params", VARIANTS, ids=IDS)
def test_stable_for_huge_inputs(name, params, dtype):
    act = A.get(name, **params)
    z = np.array([-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = act.forward(z)
        d = act.derivative(z)
    assert y.dtype == dtype and d.dtype == dtype
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(d))


@pytest.mark.parametrize("dtype,far", [(np.float32, 1e30), (np.float64, 1e200)])
def test_gelu_tanh_far_out_is_exact_without_warnings(dtype, far):
    """z^3 overflows long after tanh has saturated: the limits, and no RuntimeWarning."""
    act = A.get("gelu", approximate="tanh")
    z = np.array([-far, -20.0, 20.0, far], dtype=dtype)
    with fn.use_backend("numpy"), warnings.catch_warnings():
        warnings.simplefilter("error")
        y = act.forward(z)
        d = act.derivative(z)
    np.testing.assert_array_equal(y, np.array([0.0, 0.0, 20.0, far], dtype=dtype))
    np.testing.assert_array_equal(d, np.array([0.0, 0.0, 1.0, 1.0], dtype=dtype))


def test_saturating_values():
    assert A.get("sigmoid").forward(np.array([-1e4]))[0] == 0.0
    assert A.get("log_sigmoid").forward(np.array([-1e4]))[0] == -1e4
    assert A.get("softplus").forward(np.array([1e4]))[0] == 1e4
    assert A.get("mish").forward(np.array([1e4]))[0] == 1e4


def test_shapes_and_dtypes_kept():
    act = A.get("tanh")
    z = np.ones((2, 3, 4), dtype=np.float32)
    assert act.forward(z).shape == (2, 3, 4)
    assert act.forward(z).dtype == np.float32
    assert act.forward(np.arange(3)).dtype == np.float64  # integers become float64
    assert float(act.forward(0.0)) == 0.0


def test_unknown_name_lists_valid():
    with bad_input(ValueError, match="unknown activation 'rellu'.*relu"):
        A.get("rellu")


def test_unknown_parameter_lists_valid():
    with bad_input(ValueError, match="unknown parameter.*gamma.*valid parameters: alpha"):
        A.get("elu", gamma=1.0)


@pytest.mark.parametrize("name,params", [("hard_tanh", {"min_val": 1, "max_val": 0}),
                                         ("softplus", {"beta": 0}), ("gelu", {"approximate": "x"}),
                                         ("rrelu", {"lower": 0.5, "upper": 0.1}),
                                         ("elu", {"alpha": float("nan")})])
def test_bad_parameters(name, params):
    with bad_input(ValueError, match=name):
        A.get(name, **params)


def test_every_definition_documents_itself():
    for name in A.names():
        d = A.definition(name)
        assert d.formula and d.derivative_formula and d.range
