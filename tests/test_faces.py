"""The Keras face (the scikit-learn face is tested in test_sklearn.py)."""
import numpy as np
import pytest

import fusenn as fn

pytestmark = pytest.mark.usefixtures("numpy_backend")


def test_keras_face_trains_xor():
    from fusenn.keras import Sequential, layers

    X, y = fn.datasets.xor()
    model = Sequential([layers.Dense(8, activation="tanh", input_shape=(2,)),
                        layers.Dense(2, activation="softmax")])
    model.compile(optimizer=fn.optim.SGD(lr=0.5, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(X, y, epochs=300, batch_size=4, random_state=0)
    assert history.history["accuracy"][-1] == 1.0
    probs = model.predict(X)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(probs.argmax(1), y)
    loss, acc = model.evaluate(X, y)
    assert acc == 1.0 and loss < 0.1
    assert "Total params: 42" in model.summary(print_fn=None)


def test_keras_infers_input_width_and_layers():
    from fusenn.keras import Sequential, layers

    model = Sequential()
    model.add(layers.Dense(6, activation="relu"))
    model.add(layers.BatchNormalization())
    model.add(layers.Dropout(0.1, seed=0))
    model.add(layers.Dense(1))
    model.compile(optimizer="adam", loss="mse")
    X = np.random.default_rng(0).normal(size=(16, 3))
    model.fit(X, X.sum(1), epochs=2, batch_size=8)
    assert model.network.n_in == 3 and model.predict(X).shape == (16, 1)
    with pytest.raises(RuntimeError, match="compile"):
        Sequential([layers.Dense(2, input_dim=3)]).fit(X, X[:, 0] > 0)
