import numpy as np
import pytest

import fusenn as fn
from fusenn.layers import Dense
from support import bad_input

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


def test_gradient_monitor_keeps_its_records():
    X, y = fn.datasets.xor()
    model = fn.Sequential([Dense(2, 4, "sigmoid"), Dense(4, 4, "relu"), Dense(4, 2)],
                          random_state=0)
    monitor = fn.diagnostics.GradientMonitor(X, y)
    h = fn.Trainer(model, callbacks=[monitor]).fit(X, y, epochs=3)
    assert monitor.epochs == [0, 1, 2]
    assert [[h.history[f"grad_norm_{l}"][e] for l in range(3)] for e in range(3)] == \
        monitor.grad_norms
    assert [d[1] for d in monitor.dead] == h.history["dead_1"]
    assert monitor.layer_names == ["0: Dense(2 -> 4) sigmoid", "1: Dense(4 -> 4) relu",
                                   "2: Dense(4 -> 2) linear"]
    # the final norms are those of the trained model on the same batch
    assert monitor.grad_norms[-1] == fn.diagnostics.gradient_norms(model, X, y)
    fn.Trainer(model, callbacks=[monitor]).fit(X, y, epochs=1)  # a new run starts afresh
    assert monitor.epochs == [0] and len(monitor.grad_norms) == 1


def test_saturation_counts_sigmoid_and_tanh_tails():
    model = fn.Sequential([Dense(1, 2, "sigmoid"), Dense(2, 2, "tanh"), Dense(2, 1)],
                          dtype=np.float64)
    model.set_weights([np.array([[1.0, 0.0]]), np.zeros(2), np.eye(2) * 10, np.zeros(2),
                       np.ones((2, 1)), np.zeros(1)])
    X = np.array([[-5.0], [-1.0], [1.0], [5.0]])
    sat = fn.diagnostics.saturation(model, X)
    # sigmoid unit 0: 0.007, 0.27, 0.73, 0.993 -> two of four in the tails; unit 1 is 0.5
    assert sat[0] == ("sigmoid", "tails", 0.25)
    # tanh(10 s) of those outputs s (and of 0.5): in the tail where |tanh| >= 0.9
    a = np.tanh(10 * fn.activations.get("sigmoid").forward(X @ np.array([[1.0, 0.0]])))
    assert sat[1] == ("tanh", "tails", float(np.mean(np.abs(a) >= 0.9)))
    assert 2 not in sat  # linear output layer: nothing to saturate
    # a wider tail counts more
    assert fn.diagnostics.saturation(model, X, tail=0.3)[0].fraction == 0.5


def test_saturation_counts_dead_relus_and_activation_layers():
    model = fn.Sequential([Dense(3, 6, "relu"), Dense(6, 4), fn.layers.Activation("sigmoid"),
                           Dense(4, 2)], dtype=np.float64, random_state=0)
    model.layers[0].b[:3] = -100.0
    X = np.random.default_rng(0).normal(size=(50, 3))
    sat = fn.diagnostics.saturation(model, X)
    assert sat[0] == ("relu", "dead", 0.5)
    assert sat[2].kind == "tails" and sorted(sat) == [0, 2]


def test_saturation_bad_input():
    model = fn.Sequential([Dense(3, 2, "tanh")])
    with bad_input(ValueError, match="tail must be"):
        fn.diagnostics.saturation(model, np.zeros((2, 3)), tail=0.5)
    with pytest.raises(fn.ShapeError, match="3"):
        fn.diagnostics.saturation(model, np.zeros((2, 4)))
