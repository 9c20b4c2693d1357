import warnings

import numpy as np
import pytest

import fusenn as fn
from fusenn import functional as F
from support import bad_input, numeric_grad

pytestmark = pytest.mark.usefixtures("numpy_backend")


def test_softmax_worked_examples_from_the_notes():
    np.testing.assert_allclose(F.softmax(np.array([8.0, 5.0, 0.0])),
                               [0.9523, 0.0474, 0.0003], atol=5e-5)
    np.testing.assert_allclose(F.softmax(np.array([2.0, 1.0, 0.1])), [0.659, 0.242, 0.099],
                               atol=5e-4)


def test_log_softmax_and_logsumexp_are_stable():
    z = np.array([[1e4, 0.0, -1e4], [3.0, 3.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lse = F.logsumexp(z)
        ls = F.log_softmax(z)
    np.testing.assert_allclose(lse, [1e4, 3 + np.log(3)])
    np.testing.assert_allclose(ls[1], -np.log(3) * np.ones(3))
    assert ls[0, 0] == 0.0 and ls[0, 2] == -2e4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_fused(dtype):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4)).astype(dtype)
    y = np.array([0, 3, 1, 1, 2])
    loss, grad = F.softmax_cross_entropy(z, y)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(5), y]))
    assert loss == pytest.approx(expected, rel=1e-5)
    onehot = np.eye(4)[y]
    np.testing.assert_allclose(grad, (p - onehot) / 5, rtol=1e-5, atol=1e-7)
    assert grad.dtype == dtype
    loss2, grad2 = F.softmax_cross_entropy(z, onehot)  # one-hot targets give the same
    assert loss2 == pytest.approx(loss, rel=1e-6)
    np.testing.assert_allclose(grad2, grad, rtol=1e-5, atol=1e-7)


def test_cross_entropy_finite_for_huge_logits():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad = F.softmax_cross_entropy(z, np.array([1, 1]))
        bce, gb = F.binary_cross_entropy_with_logits(np.array([1e4, -1e4]), np.array([0.0, 1.0]))
    assert loss == pytest.approx(1e4) and np.all(np.isfinite(grad))
    assert bce == pytest.approx(1e4) and np.all(np.isfinite(gb))


def test_loss_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 3))
    y = np.array([2, 0, 1, 2])
    t = rng.random(size=(4, 3))
    for f, target in ((F.softmax_cross_entropy, y), (F.softmax_cross_entropy, t / t.sum(1, keepdims=True)),
                      (F.binary_cross_entropy_with_logits, t), (F.mse, t),
                      (lambda a, b: F.mse(a, b, half=True), t)):
        _, g = f(z, target)
        num = numeric_grad(lambda: f(z, target)[0], z)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


def test_half_mse_is_the_notes_formula():
    y = np.array([[1.0, 2.0], [3.0, 5.0]])
    t = np.array([[0.0, 2.0], [3.0, 3.0]])
    loss, _ = F.mse(y, t, half=True)
    assert loss == pytest.approx((1 + 4) / (2 * 2))
    assert F.mse(y, t)[0] == pytest.approx(5 / 4)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "softmax", None])
def test_linear_fused(activation):
    rng = np.random.default_rng(2)
    x, W, b = rng.normal(size=(6, 5)), rng.normal(size=(5, 3)), rng.normal(size=3)
    z = x @ W + b
    ref = z if activation is None else fn.activations.get(activation).forward(z)
    np.testing.assert_allclose(F.linear(x, W, b, activation), ref, rtol=1e-12)
    np.testing.assert_allclose(F.linear(x, W), x @ W, rtol=1e-12)
    np.testing.assert_allclose(F.linear(x, W, b, "leaky_relu", alpha=0.3),
                               np.where(z > 0, z, 0.3 * z), rtol=1e-12)


def test_linear_accepts_fortran_and_readonly():
    rng = np.random.default_rng(3)
    x = np.asfortranarray(rng.normal(size=(4, 3)))
    W = rng.normal(size=(3, 2))
    W.flags.writeable = False
    np.testing.assert_allclose(F.linear(x, W, None, "tanh"), np.tanh(x @ W), rtol=1e-12)


@pytest.mark.parametrize("culprit", ["x", "W", "b"])
def test_linear_names_the_input_that_holds_a_nan(culprit):
    rng = np.random.default_rng(0)
    args = {"x": rng.normal(size=(4, 3)), "W": rng.normal(size=(3, 2)), "b": np.zeros(2)}
    args[culprit][-1, ...] = np.nan if culprit != "W" else np.inf
    with bad_input(ValueError, match=f"^{culprit} contains NaN or infinity"):
        F.linear(args["x"], args["W"], args["b"], "relu")  # relu would hide the NaN in a


def test_bad_input_errors():
    with pytest.raises(fn.ShapeError, match="W must have shape"):
        F.linear(np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(fn.ShapeError, match="b must have shape"):
        F.linear(np.ones((2, 3)), np.ones((3, 2)), np.ones(3))
    with bad_input(ValueError, match="NaN"):
        F.softmax(np.array([1.0, np.nan]))
    with bad_input(ValueError, match="out of range"):
        F.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with bad_input(ValueError, match="integer class labels"):
        F.softmax_cross_entropy(np.zeros((2, 3)), np.array([0.5, 1.0]))
    with pytest.raises(fn.ShapeError, match="different numbers of samples"):
        F.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(fn.ShapeError, match="empty"):
        F.softmax(np.zeros((0, 3)))
