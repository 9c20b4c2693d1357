import numpy as np
import pytest

from fusenn import initializers as I
from support import bad_input


@pytest.mark.parametrize("name,var", [
    ("glorot_uniform", 2 / (400 + 600)), ("glorot_normal", 2 / (400 + 600)),
    ("he_uniform", 2 / 400), ("he_normal", 2 / 400),
    ("lecun_uniform", 1 / 400), ("lecun_normal", 1 / 400),
])
def test_variance_scaling(name, var):
    w = I.get(name)((400, 600), np.random.default_rng(0))
    assert w.shape == (400, 600)
    assert abs(w.mean()) < 0.01 * np.sqrt(var) * 10
    assert w.var() == pytest.approx(var, rel=0.03)
    if name.endswith("uniform"):
        assert np.abs(w).max() <= np.sqrt(3 * var)


def test_aliases_constant_and_reproducible():
    assert I.get("xavier_uniform").name == "glorot_uniform"
    assert I.get("kaiming_normal").name == "he_normal"
    np.testing.assert_array_equal(I.get("constant", value=0.5)((2, 3), None), 0.5)
    np.testing.assert_array_equal(I.get("zeros")((2, 3), None), 0)
    a = I.get("normal", std=1.0)((3, 3), np.random.default_rng(7))
    b = I.get("normal", std=1.0)((3, 3), np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    u = I.get("uniform", low=-1, high=2)((1000,), np.random.default_rng(0))
    assert u.min() >= -1 and u.max() < 2


def test_errors():
    with bad_input(ValueError, match="unknown initialiser 'he'.*he_normal"):
        I.get("he")
    with bad_input(ValueError, match="low < high"):
        I.get("uniform", low=1, high=0)
    with bad_input(ValueError, match="initialiser 'zeros'"):
        I.get("zeros", value=3)
