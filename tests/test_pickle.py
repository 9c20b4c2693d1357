"""Pickling: public objects travel by name and values, never by function or backend handle."""
import pickle

import numpy as np

import fusenn as fn
from fusenn.activations import get
from fusenn.layers import BatchNorm, Dense, Dropout


def _trainer():
    model = fn.Sequential([Dense(4, 6, "relu"), Dropout(0.2), BatchNorm(6),
                           Dense(6, 3, get("gelu", approximate="tanh")), Dense(3, 2)],
                          random_state=0)
    return fn.Trainer(model, optimizer=fn.optim.Adam(lr=0.01), batch_size=8, random_state=0)


def _data():
    rng = np.random.default_rng(1)
    return rng.random((40, 4)), rng.integers(0, 2, 40)


def test_activation_round_trip():
    act = get("leaky_relu", alpha=0.2)
    back = pickle.loads(pickle.dumps(act))
    assert back.name == "leaky_relu" and back.params == {"alpha": 0.2}
    z = np.linspace(-2, 2, 9)
    np.testing.assert_array_equal(back.forward(z), act.forward(z))


def test_model_round_trip_keeps_flat_views():
    trainer = _trainer()
    back = pickle.loads(pickle.dumps(trainer.model))
    for layer in back.layers:
        for name in layer.param_names:
            assert np.shares_memory(getattr(layer, name), back.flat_params)
            assert np.shares_memory(getattr(layer, "d" + name), back.flat_grads)
    X, _ = _data()
    np.testing.assert_array_equal(back.predict(X), trainer.model.predict(X))


def test_trainer_resumes_bit_identically():
    X, y = _data()
    trainer = _trainer()
    trainer.fit(X, y, epochs=2)
    copy = pickle.loads(pickle.dumps(trainer))
    trainer.fit(X, y, epochs=3)
    copy.fit(X, y, epochs=3)
    for a, b in zip(trainer.model.get_weights(), copy.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_keras_face_round_trip():
    """A compiled and fitted Keras-face model pickles to one that predicts alike and trains on."""
    from fusenn.keras import Sequential, layers

    X, y = _data()
    model = Sequential([layers.Dense(6, activation="relu", input_shape=(4,)),
                        layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(X, y, epochs=2, batch_size=8, verbose=0)
    back = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(back.predict(X, verbose=0), model.predict(X, verbose=0))
    back.fit(X, y, epochs=1, batch_size=8, verbose=0)
    assert back.evaluate(X, y, verbose=0)[0] >= 0
