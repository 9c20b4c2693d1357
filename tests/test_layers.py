"""Finite-difference gradient checks for every layer, and each layer's behaviour."""
import numpy as np
import pytest

import fusenn as fn
from fusenn import layers as L
from support import bad_input, numeric_grad

pytestmark = pytest.mark.usefixtures("numpy_backend")


def _check_layer(layer, x, training=True, rtol=1e-6):
    """Compare backward's dx and parameter gradients with central differences of
    L = sum(forward(x) * r)."""
    rng = np.random.default_rng(42)
    state = None
    if layer.stochastic:
        state = rng.bit_generator.state
    y = layer.forward(x, training)
    r = rng.normal(size=y.shape)

    def loss():
        if state is not None:
            layer.rng.bit_generator.state = saved
        return float(np.sum(layer.forward(x, training) * r))

    if state is not None:
        saved = layer.rng.bit_generator.state
        layer.forward(x, training)
        layer.rng.bit_generator.state = saved
    layer.forward(x, training)
    dx = layer.backward(r.copy())
    grads = [g.copy() for g in layer.grads]
    if state is not None:
        layer.rng.bit_generator.state = saved
    if dx is not None:
        np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=rtol, atol=1e-8)
    for p, g in zip(layer.params, grads):
        np.testing.assert_allclose(g, numeric_grad(loss, p), rtol=rtol, atol=1e-8)


X = np.random.default_rng(0).normal(size=(5, 4))


@pytest.mark.parametrize("activation", ["linear", "sigmoid", "tanh", "relu", "elu", "gelu",
                                        "mish", "softplus", "softmax", "swish", "selu"])
def test_dense_gradients(activation):
    layer = L.Dense(4, 3, activation, random_state=0, dtype=np.float64)
    _check_layer(layer, X.copy())


def test_activation_layer_gradients():
    for name in ("tanh", "softmax", "log_sigmoid"):
        _check_layer(L.Activation(name, dtype=np.float64), X.copy())


def test_batchnorm_gradients_training_and_eval():
    bn = L.BatchNorm(4, dtype=np.float64)
    bn.gamma[...] = [1.0, 2.0, 0.5, -1.0]
    bn.beta[...] = [0.1, 0.0, -0.3, 0.2]
    bn.momentum = 0.0  # keep running statistics fixed while differencing
    _check_layer(bn, X.copy(), training=True)
    bn.running_mean[...] = [0.1, -0.2, 0.3, 0.0]
    bn.running_var[...] = [1.5, 0.5, 2.0, 1.0]
    _check_layer(bn, X.copy(), training=False)


def test_batchnorm_statistics():
    bn = L.BatchNorm(4, momentum=0.5, dtype=np.float64)
    y = bn.forward(X, training=True)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(0), X.var(0) / (X.var(0) + 1e-5), rtol=1e-9)
    np.testing.assert_allclose(bn.running_mean, 0.5 * X.mean(0))
    np.testing.assert_allclose(bn.running_var, 0.5 + 0.5 * X.var(0, ddof=1))
    y_eval = bn.forward(X, training=False)
    np.testing.assert_allclose(y_eval, (X - bn.running_mean) / np.sqrt(bn.running_var + 1e-5))


def test_prelu_gradients():
    layer = L.PReLU(4, dtype=np.float64)
    layer.alpha[...] = [0.1, 0.25, 0.5, -0.2]
    _check_layer(layer, X.copy())


def test_swish_gradients_with_trainable_beta():
    layer = L.Swish(beta=1.5, dtype=np.float64)
    _check_layer(layer, X.copy())
    assert layer.n_params == 1
    assert L.Swish(trainable=False).n_params == 0


def test_maxout_gradients_and_value():
    layer = L.Maxout(4, 3, k=3, random_state=1, dtype=np.float64)
    _check_layer(layer, X.copy())
    z = (X @ layer.W + layer.b).reshape(5, 3, 3)
    np.testing.assert_allclose(layer.forward(X), z.max(axis=2))


def test_dropout_inverted_and_eval_identity():
    layer = L.Dropout(0.25, random_state=0, dtype=np.float64)
    x = np.ones((2000, 50))
    y = layer.forward(x, training=True)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), y)
    assert layer.forward(x, training=False) is x
    _check_layer(L.Dropout(0.5, random_state=3, dtype=np.float64), X.copy())


def test_rrelu_training_draws_and_eval_mean():
    layer = L.RReLU(0.1, 0.3, random_state=0, dtype=np.float64)
    x = -np.ones((100, 10))
    y = layer.forward(x, training=True)
    assert np.all((y <= -0.1) & (y >= -0.3)) and y.std() > 0.01
    np.testing.assert_allclose(layer.forward(x, training=False), -0.2)
    np.testing.assert_allclose(layer.forward(-x, training=True), 1.0)
    _check_layer(layer, X.copy())


def test_whole_network_gradient():
    model = fn.Sequential([L.Dense(4, 6, "tanh"), L.BatchNorm(), L.PReLU(), L.Dense(6, 5, "elu"),
                           L.Swish(), L.Maxout(5, 4, k=2), L.Dense(4, 3)],
                          dtype=np.float64, random_state=0)
    y = np.array([0, 2, 1, 1, 0])
    x = X.copy()

    def loss():
        out = model.forward(x, training=True)
        return fn.functional.softmax_cross_entropy(out, y)[0]

    out = model.forward(x, training=True)
    _, g = fn.functional.softmax_cross_entropy(out, y)
    model.backward(g)
    analytic = model.flat_grads.copy()
    numeric = numeric_grad(loss, model.flat_params)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


def test_bad_layer_arguments():
    with bad_input(ValueError, match="dropout rate must be in"):
        L.Dropout(1.0)
    with bad_input(ValueError, match="dropout rate"):
        L.Dropout(-0.1)
    with bad_input(ValueError, match="n_out must be > 0"):
        L.Dense(3, 0)
    with bad_input(ValueError, match="unknown activation"):
        L.Dense(3, 2, "sigmoidd")
    with bad_input(ValueError, match="unknown initialiser 'glorot'.*glorot_uniform"):
        L.Dense(3, 2, init="glorot")


def test_dense_bias_init_none_means_zeros():
    # found by the type annotations: bias_init=None was called as an initialiser (TypeError)
    layer = fn.layers.Dense(2, 3, bias_init=None, random_state=0)
    assert layer.b.tolist() == [0.0, 0.0, 0.0]
    assert layer.W.shape == (2, 3)
