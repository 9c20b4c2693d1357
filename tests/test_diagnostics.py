import numpy as np
import pytest

import fusenn as fn
from fusenn.layers import Dense

pytestmark = pytest.mark.usefixtures("numpy_backend")


def test_vanishing_gradients_in_deep_sigmoid_network():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 10))
    y = rng.integers(0, 2, 64)
    layers = [Dense(10, 10, "sigmoid")] + [Dense(10, 10, "sigmoid") for _ in range(7)] + \
        [Dense(10, 2)]
    model = fn.Sequential(layers, dtype=np.float64, random_state=0)
    norms = fn.diagnostics.gradient_norms(model, X, y)
    assert len(norms) == 9
    assert norms[0] < norms[-1] / 100  # the first layer learns far slower


def test_exploding_gradients_with_large_weights():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 8))
    y = rng.normal(size=(32, 1))

    def first_layer_norm(std):
        layers = [Dense(8, 8, init=fn.initializers.Normal(0, std)) for _ in range(6)] + \
            [Dense(8, 1, init=fn.initializers.Normal(0, std))]
        model = fn.Sequential(layers, dtype=np.float64, random_state=1)
        return fn.diagnostics.gradient_norms(model, X, y, loss="mse")[0]

    # each layer multiplies the backpropagated signal by about std * sqrt(8)
    assert first_layer_norm(3.0) > 1e5 * first_layer_norm(0.3)


def test_dead_relus_detected():
    model = fn.Sequential([Dense(3, 6, "relu"), Dense(6, 2)], dtype=np.float64, random_state=0)
    model.layers[0].b[:3] = -100.0  # three units pushed far below zero
    X = np.random.default_rng(0).normal(size=(50, 3))
    assert fn.diagnostics.dead_units(model, X) == {0: 0.5}


def test_gradient_monitor_logs_per_epoch():
    X, y = fn.datasets.xor()
    model = fn.Sequential([Dense(2, 4, "relu"), Dense(4, 2)], random_state=0)
    h = fn.Trainer(model, callbacks=[fn.diagnostics.GradientMonitor(X, y)]).fit(X, y, epochs=2)
    assert len(h.history["grad_norm_0"]) == 2 and "dead_0" in h.history
