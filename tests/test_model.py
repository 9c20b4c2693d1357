"""The notes' worked examples, and Sequential's API."""
import numpy as np
import pytest

import fusenn as fn
from fusenn.layers import Dense
from support import bad_input

pytestmark = pytest.mark.usefixtures("numpy_backend")


def test_single_neuron_example():
    layer = Dense(2, 1, "sigmoid", dtype=np.float64)
    layer.W[...] = [[0.0], [1.0]]
    layer.b[...] = 4.0
    out = fn.Sequential([layer]).forward(np.array([[2.0, 3.0]]))
    assert out[0, 0] == pytest.approx(0.999, abs=5e-4)


def _two_two_one(w=(0.0, 1.0)):
    model = fn.Sequential([Dense(2, 2, "sigmoid"), Dense(2, 1, "sigmoid")], dtype=np.float64)
    W0, b0, W1, b1 = model.get_weights()
    W0[...] = np.array([w, w]).T  # each hidden neuron has weights [0, 1]
    W1[...] = np.array([w]).T
    model.set_weights([W0, np.zeros(2), W1, np.zeros(1)])
    return model


def test_two_two_one_network_example():
    model = _two_two_one()
    assert model.forward(np.array([[2.0, 3.0]]))[0, 0] == pytest.approx(0.7216, abs=5e-5)


def test_backpropagation_example():
    model = fn.Sequential([Dense(2, 2, "sigmoid"), Dense(2, 1, "sigmoid")], dtype=np.float64)
    model.set_weights([np.ones((2, 2)), np.zeros(2), np.ones((2, 1)), np.zeros(1)])
    out = model.forward(np.array([[-2.0, -1.0]]), training=True)
    assert out[0, 0] == pytest.approx(0.524, abs=5e-4)
    loss, grad = fn.functional.mse(out, np.array([[1.0]]))  # L = (1 - y_pred)^2
    model.backward(grad)
    dW0 = model.layers[0].dW
    # the notes round intermediates (0.952 * 0.249 * 0.0904) and print 0.0214
    assert dW0[0, 0] == pytest.approx(0.0214, abs=1e-4)  # dL/dw1: x1 -> h1


def test_hand_set_xor_weights():
    model = fn.Sequential([Dense(2, 2, "sigmoid"), Dense(2, 1, "sigmoid")], dtype=np.float64)
    model.set_weights([np.array([[20.0, -20.0], [20.0, -20.0]]), np.array([-10.0, 30.0]),
                       np.array([[20.0], [20.0]]), np.array([-30.0])])
    X, y = fn.datasets.xor()
    np.testing.assert_array_equal(model.predict(X), y)
    np.testing.assert_allclose(model.forward(X)[:, 0], y, atol=1e-4)


def test_parameter_count_of_notes_example():
    model = fn.Sequential([Dense(1024, 5), Dense(5, 10), Dense(10, 10), Dense(10, 1000)])
    assert model.n_params == 16295
    text = model.summary(print_fn=None)
    for count in ("5,125", "60", "110", "11,000", "16,295"):
        assert count in text


def test_weights_order_and_shapes():
    model = fn.Sequential([Dense(3, 4, "relu"), Dense(4, 2)], random_state=0)
    ws = model.get_weights()
    assert [w.shape for w in ws] == [(3, 4), (4,), (4, 2), (2,)]
    ws[0][...] = 7  # copies: the model is unchanged
    assert not np.any(model.layers[0].W == 7)
    model.set_weights(ws)
    assert np.all(model.layers[0].W == 7)
    with pytest.raises(fn.ShapeError, match=r"weight 2 .*must have shape \(4, 2\)"):
        model.set_weights([ws[0], ws[1], np.ones((2, 4)), ws[3]])
    with pytest.raises(fn.ShapeError, match="expected 4 arrays"):
        model.set_weights(ws[:3])


def test_random_state_reproducible_and_dtype():
    a = fn.Sequential([Dense(3, 4, "relu"), Dense(4, 2)], random_state=5)
    b = fn.Sequential([Dense(3, 4, "relu"), Dense(4, 2)], random_state=5)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert a.dtype == np.float32 and a.forward(np.ones((1, 3))).dtype == np.float32
    c = fn.Sequential([Dense(3, 4, "relu"), Dense(4, 2)], dtype="float64")
    assert c.forward(np.ones((1, 3), dtype=np.float32)).dtype == np.float64


def test_predict_and_predict_proba():
    model = fn.Sequential([Dense(3, 4, "relu"), Dense(4, 3, "softmax")], random_state=0)
    X = np.random.default_rng(0).normal(size=(6, 3))
    p = model.predict_proba(X)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(X), p.argmax(1))
    logits = fn.Sequential([Dense(3, 3)], random_state=0, task="multiclass")
    np.testing.assert_allclose(logits.predict_proba(X).sum(1), 1, rtol=1e-6)
    reg = fn.Sequential([Dense(3, 2)], task="regression")
    assert reg.predict(X).shape == (6, 2)
    binary = fn.Sequential([Dense(3, 1, "sigmoid")], random_state=0)
    assert binary.predict_proba(X).shape == (6, 2)
    assert set(binary.predict(X)) <= {0, 1}


def test_sequential_checks_layer_widths():
    with pytest.raises(fn.ShapeError, match="layer 1: Dense\\(5 -> 2\\) expects 5 inputs but "
                                            "receives 4"):
        fn.Sequential([Dense(3, 4), Dense(5, 2)])


@pytest.mark.parametrize("X,err,msg", [
    (np.ones(3), fn.ShapeError, "must be 2-D"),
    (np.ones((2, 4)), fn.ShapeError, "4 features but the model expects 3"),
    (np.array([[1.0, np.nan, 0.0]]), ValueError, "NaN"),
    (np.array([[1.0, np.inf, 0.0]]), ValueError, "infinity"),
    (np.ones((0, 3)), fn.ShapeError, "empty"),
    (np.array([["a", "b", "c"]]), TypeError, "numbers"),
])
def test_forward_rejects_bad_input(X, err, msg):
    model = fn.Sequential([Dense(3, 2)])
    with bad_input(err, match=msg):
        model.predict(X)


# Huge finite inputs are the point: their products overflow to infinity (NumPy warns).
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_input_checked_for_nan_and_inf_exactly(dtype):
    """Big arrays take the fast finite check (one dot product): NaN and infinity anywhere are
    still found at their index, and huge but finite values (whose squares overflow) pass."""
    model = fn.Sequential([Dense(3, 2)], dtype=dtype)
    X = np.ones((5000, 3), dtype=dtype)
    for bad, word in ((np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")):
        Xb = X.copy()
        Xb[4321, 2] = bad
        with bad_input(ValueError, match=f"{word}.*index \\(4321, 2\\)"):
            model.predict(Xb)
    huge = X.copy()
    huge[7] = np.finfo(dtype).max / 2
    assert model.predict(huge).shape == (5000, 2)


def test_predict_in_chunks_matches_one_pass(monkeypatch):
    """Many rows are predicted PREDICT_BATCH at a time (or batch_size at a time); the result
    is the one forward pass over all rows would give."""
    from fusenn import model as model_mod

    model = fn.Sequential([Dense(5, 7, "tanh"), Dense(7, 3)], random_state=0, task="multiclass")
    X = np.random.default_rng(1).standard_normal((1000, 5)).astype(np.float32)
    whole = model.forward(X)
    monkeypatch.setattr(model_mod, "PREDICT_BATCH", 128)
    np.testing.assert_allclose(model.predict_proba(X), fn.functional.softmax(whole),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.predict(X), np.argmax(whole, axis=1))
    np.testing.assert_array_equal(model.predict(X, batch_size=7), np.argmax(whole, axis=1))
    with bad_input(ValueError, match="batch_size"):
        model.predict(X, batch_size=0)


def test_train_eval_modes():
    model = fn.Sequential([Dense(3, 4), fn.layers.Dropout(0.5), Dense(4, 2)], random_state=0)
    X = np.ones((4, 3))
    np.testing.assert_array_equal(model.forward(X), model.forward(X))  # eval: deterministic
    model.train()
    assert model.training
    assert not np.array_equal(model.forward(X), model.forward(X))
    model.eval()
    assert not model.training


def test_predict_runs_blas_on_fusenns_thread_count(monkeypatch):
    from threadpoolctl import threadpool_info

    model = fn.Sequential([Dense(4, 3)], random_state=0)
    seen = []
    forward = model.layers[0].forward
    monkeypatch.setattr(model.layers[0], "forward", lambda x, training=False: (
        seen.append({p["num_threads"] for p in threadpool_info()
                     if p["user_api"] == "blas"}), forward(x, training))[1])
    fn.set_num_threads(1)
    try:
        model.predict(np.zeros((5, 4), np.float32))
    finally:
        fn.set_num_threads(None)
    assert seen == [{1}]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("first", ["dense", "prelu"])
def test_predict_names_non_finite_input_in_any_chunk(any_backend, bad, first):
    """The finiteness of X is checked where it lands (the first Dense layer's pre-activation,
    chunk by chunk) or on X itself: either way the error names X and the first bad index."""
    layers = [fn.layers.Dense(3, 4, "relu"), fn.layers.Dense(4, 2)]
    if first == "prelu":
        layers.insert(0, fn.layers.PReLU(3))
    model = fn.Sequential(layers, random_state=0)
    model.layers[-2].W[1] = 0.0  # inf * 0 lands as NaN
    X = np.ones((10, 3))
    X[7, 1] = bad
    with bad_input(ValueError, r"X contains NaN or infinity \(first at index \(7, 1\)\)"):
        model.predict(X, batch_size=4)
