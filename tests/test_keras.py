"""The Keras face: Keras scripts run with the import changed, and Keras's behaviour, one
test per behaviour."""
import contextlib
import io
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fusenn as fn
from fusenn.bench.faces import KERAS_SCRIPT_DIR
from fusenn.errors import FormatError, ShapeError, UnsupportedFeatureError
from fusenn.keras import (callbacks, initializers, layers, losses, metrics, models,
                          optimizers, regularizers, utils)
from fusenn.keras import Sequential
from fusenn.keras.utils import set_random_seed

from support import SHARED_DATA, bad_input

SCRIPTS = KERAS_SCRIPT_DIR


def swap_imports(text):
    """A Keras script with ``tensorflow.keras``/``keras`` imports turned into fusenn.keras."""
    text = re.sub(r"^import tensorflow as tf\n", "", text, flags=re.M)
    text = text.replace("tensorflow.keras", "fusenn.keras")
    return re.sub(r"^from keras(\.| import)", r"from fusenn.keras\1", text, flags=re.M)


def run_script(text, seed=None):
    """Run a script's text in this process; its printed output."""
    if seed is not None:
        set_random_seed(seed)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(text, "<keras script>", "exec"), {"__name__": "__main__"})
    return out.getvalue()


def xor_model(hidden=8, act="tanh", out=2, out_act="softmax"):
    return Sequential([layers.Dense(hidden, activation=act, input_shape=(2,)),
                       layers.Dense(out, activation=out_act)])


@pytest.fixture(autouse=True)
def _seeded():
    set_random_seed(0)


# -- the scripts --------------------------------------------------------------------------------
def test_notes_xor_script_runs_with_the_import_swapped():
    text = (SCRIPTS / "xor_notes.py.txt").read_text()
    assert "from tensorflow.keras.models import Sequential" in text
    out = run_script(swap_imports(text), seed=4)
    assert "Accuracy: 100.00%" in out
    lines = [l for l in out.splitlines() if l.startswith("Input:")]
    assert lines == ["Input: [0 0] => Predicted Output: [0], Actual Output: [0]",
                     "Input: [0 1] => Predicted Output: [1], Actual Output: [1]",
                     "Input: [1 0] => Predicted Output: [1], Actual Output: [1]",
                     "Input: [1 1] => Predicted Output: [0], Actual Output: [0]"]
    # evaluate and predict print Keras's progress lines by default
    assert re.search(r"1/1 \u2501+ \d+s \d+[mu]?s/step - accuracy: 1\.0000 - loss: ", out)


def test_mnist_script_runs_with_the_import_swapped():
    text = swap_imports((SCRIPTS / "mnist_mlp.py.txt").read_text())
    env = {**os.environ, "MNIST_DIR": str(SHARED_DATA)}
    out = subprocess.run([sys.executable, "-c", text], env=env, capture_output=True, text=True,
                         timeout=600, check=True).stdout
    assert 'Model: "sequential"' in out and "Total params: 101,770 (397.54 KB)" in out
    assert len(re.findall(r"^250/250 - \d+s - \d+[mu]?s/step - accuracy: 0\.\d{4} - loss: "
                          r"0\.\d{4}$", out, flags=re.M)) == 5
    acc = float(re.search(r"test_accuracy: ([\d.]+)", out).group(1))
    assert acc >= 0.93


# -- modules and names ----------------------------------------------------------------------------
def test_modules_mirror_keras():
    from fusenn.keras.callbacks import (CSVLogger, EarlyStopping, History, LambdaCallback,
                                        ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN)
    from fusenn.keras.layers import (ELU, PReLU, Activation, BatchNormalization, Dense,
                                     Dropout, Flatten, Input, LeakyReLU, ReLU, Softmax)
    from fusenn.keras.models import Sequential as S, load_model  # noqa: F401
    from fusenn.keras.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop  # noqa: F401
    from fusenn.keras.regularizers import l1, l1_l2, l2  # noqa: F401

    assert S is Sequential
    assert utils.to_categorical([1, 0], 3).tolist() == [[0, 1, 0], [1, 0, 0]]


@pytest.mark.parametrize("what", [lambda: layers.Conv2D, lambda: layers.LSTM,
                                  lambda: __import__("fusenn.keras").keras.Model,
                                  lambda: optimizers.Nadam, lambda: losses.Hinge])
def test_features_outside_the_face_raise_one_clear_error(what):
    with pytest.raises(UnsupportedFeatureError, match="not part of fusenn's Keras face"):
        what()
    assert not hasattr(layers, "Conv2D")


def test_custom_train_step_and_unknown_names_are_refused():
    class Custom(Sequential):
        def train_step(self, data):
            return {}

    model = Custom([layers.Dense(1, input_dim=2)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(UnsupportedFeatureError, match="train_step"):
        model.fit(np.zeros((4, 2)), np.zeros(4), verbose=0)
    with pytest.raises(UnsupportedFeatureError, match="optimizer 'nadam'"):
        model.compile(optimizer="nadam", loss="mse")
    with pytest.raises(UnsupportedFeatureError, match="metric 'top_k'"):
        model.compile(optimizer="sgd", loss="mse", metrics=["top_k"])
    with pytest.raises(UnsupportedFeatureError, match="loss 'hinge'"):
        model.compile(optimizer="sgd", loss="hinge")


# -- compile, fit, evaluate, predict ----------------------------------------------------------
def test_face_trains_xor():
    # from test_faces.py: fit's random_state (not Keras's) became keras.utils.set_random_seed,
    # and summary prints its table through print_fn and returns None, as Keras's does
    X, y = fn.datasets.xor()
    model = xor_model()
    model.compile(optimizer=fn.optim.SGD(lr=0.5, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(X, y, epochs=300, batch_size=4, verbose=0)
    assert history.history["accuracy"][-1] == 1.0
    probs = model.predict(X, verbose=0)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(probs.argmax(1), y)
    loss, acc = model.evaluate(X, y, verbose=0)
    assert acc == 1.0 and loss < 0.1
    printed = []
    assert model.summary(print_fn=printed.append) is None
    assert "Total params: 42 (168.00 B)" in printed[0]


def test_infers_input_width_and_needs_compile():
    # from test_faces.py, unchanged but for verbose=0
    model = Sequential()
    model.add(layers.Dense(6, activation="relu"))
    model.add(layers.BatchNormalization())
    model.add(layers.Dropout(0.1, seed=0))
    model.add(layers.Dense(1))
    model.compile(optimizer="adam", loss="mse")
    X = np.random.default_rng(0).normal(size=(16, 3))
    model.fit(X, X.sum(1), epochs=2, batch_size=8, verbose=0)
    assert model.network.n_in == 3 and model.predict(X, verbose=0).shape == (16, 1)
    with pytest.raises(RuntimeError, match="compile"):
        Sequential([layers.Dense(2, input_dim=3)]).fit(X, X[:, 0] > 0)


def test_compile_again_takes_effect():
    X, y = fn.datasets.xor()
    model = xor_model()
    model.compile(optimizer=optimizers.SGD(learning_rate=0.5), loss="mse")
    model.fit(X, np.eye(2)[y], epochs=3, verbose=0)
    assert model._trainer.loss.name == "mse"
    before = model.get_weights()
    model.compile(optimizer=optimizers.Adam(learning_rate=0.05),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(X, y, epochs=200, batch_size=4, verbose=0)
    assert isinstance(model._trainer.optimizer, optimizers.Adam)
    assert model._trainer.loss.name == "cross_entropy"
    assert list(h.history) == ["accuracy", "loss"] and h.history["accuracy"][-1] == 1.0
    assert not np.array_equal(before[0], model.get_weights()[0])


def test_history_keys_order_and_verbose_line(capsys):
    X, y = fn.datasets.xor()
    model = xor_model(out=1, out_act="sigmoid")
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=["mae", "accuracy", metrics.AUC()])
    h = model.fit(X, y, epochs=2, validation_data=(X, y))
    assert list(h.history) == ["accuracy", "auc", "loss", "mae", "val_accuracy", "val_auc",
                               "val_loss", "val_mae"]
    assert h.epoch == [0, 1] and h.params == {"verbose": 1, "epochs": 2, "steps": 1}
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/2" and out[2] == "Epoch 2/2"
    assert re.fullmatch(r"1/1 \u2501{20} \d+s \d+[mu]?s/step - accuracy: \d\.\d{4} - auc: "
                        r"\d\.\d{4} - loss: \d\.\d{4} - mae: \d\.\d{4} - val_accuracy: .* - "
                        r"val_mae: \d\.\d{4}", out[1])
    model.fit(X, y, epochs=1, verbose=2)
    assert re.fullmatch(r"1/1 - \d+s - \d+[mu]?s/step - accuracy: .*", 
                        capsys.readouterr().out.splitlines()[1])


def test_evaluate_order_scalar_and_dict():
    X, y = fn.datasets.xor()
    model = xor_model(out=1, out_act="sigmoid")
    model.compile(optimizer="adam", loss="mse", metrics=["mae", "accuracy"])
    values = model.evaluate(X, y, verbose=0)
    out = model.predict(X, verbose=0)[:, 0]
    np.testing.assert_allclose(values, [np.mean((out - y) ** 2), np.mean(np.abs(out - y)),
                                        np.mean((out > 0.5) == y)], rtol=1e-5)
    d = model.evaluate(X, y, verbose=0, return_dict=True)
    assert list(d) == ["loss", "mae", "accuracy"] and d["loss"] == values[0]
    model.compile(optimizer="adam", loss="mse")
    assert isinstance(model.evaluate(X, y, verbose=0), float)


def test_accuracy_resolved_from_shapes_as_keras_does():
    X, y = fn.datasets.xor()
    onehot = utils.to_categorical(y)
    model = xor_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, onehot, epochs=1, verbose=0)
    assert type(model._metrics[0].resolved).__name__ == "CategoricalAccuracy"
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(X, y, epochs=1, verbose=0)
    assert type(model._metrics[0].resolved).__name__ == "SparseCategoricalAccuracy"


def test_predict_returns_probabilities_never_labels():
    X, y = fn.datasets.xor()
    model = xor_model(out=1, out_act="sigmoid")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    p = model.predict(X, verbose=0)
    assert p.shape == (4, 1) and p.dtype == np.float32
    assert np.all((p > 0) & (p < 1)) and not np.all(np.isin(p, [0, 1]))


def test_prints_by_default(capsys):
    X, y = fn.datasets.xor()
    model = xor_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(X, y, epochs=1)
    model.evaluate(X, y)
    model.predict(X)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/1" and " - loss: " in out[1]
    assert re.fullmatch(r"1/1 \u2501{20} \d+s \d+[mu]?s/step - loss: \d\.\d{4}", out[2])
    assert re.fullmatch(r"1/1 \u2501{20} \d+s \d+[mu]?s/step", out[3])


def test_fit_validation_split_takes_the_last_samples():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 3)).astype(np.float32)
    y = X.sum(1)
    model = Sequential([layers.Dense(1, input_dim=3)])
    model.compile(optimizer="sgd", loss="mse")
    h = model.fit(X, y, epochs=1, validation_split=0.2, verbose=0, shuffle=False)
    assert h.params["steps"] == 1
    val = np.mean((model.predict(X[8:], verbose=0)[:, 0] - y[8:]) ** 2)
    np.testing.assert_allclose(h.history["val_loss"][0], val, rtol=1e-5)


def test_initial_epoch_numbers_the_epochs():
    X, y = fn.datasets.xor()
    model = xor_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    seen = []
    h = model.fit(X, y, epochs=5, initial_epoch=3, verbose=0,
                  callbacks=[callbacks.LambdaCallback(on_epoch_end=lambda e, l: seen.append(e))])
    assert seen == [3, 4] and h.epoch == [3, 4]


def test_sample_and_class_weights_weight_the_loss():
    X, y = fn.datasets.xor()
    model = xor_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    base = model.evaluate(X, y, verbose=0)
    per = losses.sparse_categorical_crossentropy(y, model.predict(X, verbose=0))
    w = np.array([1.0, 2.0, 0.0, 3.0])
    np.testing.assert_allclose(model.evaluate(X, y, sample_weight=w, verbose=0),
                               np.sum(w * per) / 4, rtol=1e-5)
    np.testing.assert_allclose(base, per.mean(), rtol=1e-5)
    # class 1 weighted 0: training only ever sees class 0's samples
    h = model.fit(X, y, epochs=1, class_weight={0: 1.0, 1: 0.0}, batch_size=4, verbose=0,
                  shuffle=False)
    assert model._trainer.last_path.startswith("per-batch")
    assert h.history["loss"][0] == pytest.approx(per[y == 0].sum() / 4, rel=1e-5)


# -- layers -------------------------------------------------------------------------------------
def test_dense_use_bias_false_name_initialisers_and_weights_order():
    model = Sequential([layers.Input(shape=(3,)),
                        layers.Dense(4, activation="relu", use_bias=False, name="hidden",
                                     kernel_initializer="ones"),
                        layers.Dense(2, bias_initializer=initializers.Constant(0.5))])
    w = model.get_weights()
    assert [a.shape for a in w] == [(3, 4), (4, 2), (2,)]
    assert np.all(w[0] == 1) and np.all(w[2] == 0.5)
    assert model.get_layer("hidden").use_bias is False and model.layers[0].name == "hidden"
    X = np.array([[1.0, -2.0, 0.5]], dtype=np.float32)
    expected = np.maximum(X @ w[0], 0) @ w[1] + w[2]
    np.testing.assert_allclose(model.predict(X, verbose=0), expected, rtol=1e-6)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), epochs=2, verbose=0)
    assert len(model.get_weights()) == 3


def test_set_weights_in_keras_order_and_shapes():
    model = Sequential([layers.Dense(3, input_dim=2), layers.BatchNormalization(),
                        layers.Dense(1)])
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(2, 3), (3,), (3,), (3,), (3,), (3,), (3, 1), (1,)]
    new = [np.full(s, i, dtype=np.float32) for i, s in enumerate(shapes)]
    model.set_weights(new)
    for a, b in zip(model.get_weights(), new):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ShapeError):
        model.set_weights(new[:-1])


def test_activation_layers_match_their_formulas():
    x = np.array([[-2.0, -0.5, 0.0, 1.5]], dtype=np.float32)
    cases = [(layers.ReLU(), np.maximum(x, 0)),
             (layers.LeakyReLU(), np.where(x > 0, x, 0.3 * x)),
             (layers.ELU(alpha=0.5), np.where(x > 0, x, 0.5 * (np.exp(x) - 1))),
             (layers.Softmax(), np.exp(x) / np.exp(x).sum()),
             (layers.PReLU(), np.maximum(x, 0)),
             (layers.Activation("sigmoid"), 1 / (1 + np.exp(-x))),
             (layers.Flatten(), x)]
    for layer, expected in cases:
        model = Sequential([layers.Input(shape=(4,)), layer, layers.Dense(4, use_bias=False)])
        model.set_weights([w for w in model.get_weights()[:-1]] + [np.eye(4)])
        np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5,
                                   atol=1e-7, err_msg=type(layer).__name__)


def test_flatten_first_takes_images():
    model = Sequential([layers.Input(shape=(2, 3)), layers.Flatten(), layers.Dense(1)])
    assert model.predict(np.ones((5, 2, 3)), verbose=0).shape == (5, 1)
    with pytest.raises(ShapeError):
        Sequential([layers.Dense(1, input_dim=6)]).predict(np.ones((5, 2, 3)), verbose=0)


def test_regulariser_is_added_to_the_loss_and_gradient():
    X = np.eye(3, dtype=np.float32)
    y = np.zeros((3, 1))
    model = Sequential([layers.Dense(1, input_dim=3, kernel_regularizer=regularizers.l2(0.1),
                                     kernel_initializer="ones")])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="mse")
    # loss = mean((x W)^2) + 0.1 sum W^2 = 1 + 0.3
    assert model.evaluate(X, y, verbose=0) == pytest.approx(1.3, rel=1e-6)
    model.fit(X, y, epochs=1, batch_size=3, verbose=0)
    # dW = 2/3 (x W) x + 0.2 W = 2/3 + 0.2 per weight
    np.testing.assert_allclose(model.get_weights()[0], 1 - 0.1 * (2 / 3 + 0.2), rtol=1e-6)
    l1 = regularizers.l1_l2(l1=0.5, l2=0.0)
    assert l1(np.array([-1.0, 2.0])) == 1.5


# -- optimisers, losses, metrics -----------------------------------------------------------------
def test_optimisers_take_keras_names_and_defaults():
    assert optimizers.get("rmsprop").learning_rate == 0.001
    assert optimizers.get("adagrad").learning_rate == 0.001
    assert optimizers.get("sgd").learning_rate == 0.01
    assert optimizers.RMSprop().rho == 0.9 and optimizers.Adam().epsilon == 1e-7
    assert optimizers.AdamW().decay == 0.004
    sgd = optimizers.SGD(learning_rate=0.2, momentum=0.9, nesterov=True)
    assert (sgd.lr, sgd.momentum, sgd.nesterov) == (0.2, 0.9, True)
    sgd.learning_rate = 0.05
    assert sgd.lr == 0.05
    ada = optimizers.Adagrad()
    ada.setup(3, np.float32)
    np.testing.assert_allclose(ada.state[0], 0.1)


def test_adamw_decays_weights_decoupled():
    X = np.zeros((2, 1), dtype=np.float32)
    model = Sequential([layers.Dense(1, input_dim=1, kernel_initializer="ones")])
    model.compile(optimizer=optimizers.AdamW(learning_rate=0.1, weight_decay=0.5), loss="mse")
    model.fit(X, np.zeros(2), epochs=1, batch_size=2, verbose=0)
    # zero input: no gradient for the kernel, only the decay w -= lr wd w
    assert model.get_weights()[0][0, 0] == pytest.approx(1 - 0.05, rel=1e-6)


@pytest.mark.parametrize("name", ["mae", "huber", "mse", "binary_crossentropy"])
def test_losses_train_and_match_their_formulas(name):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(32, 2)).astype(np.float32)
    y = (X[:, :1] > 0).astype(np.float32)
    model = Sequential([layers.Dense(1, input_dim=2, activation="sigmoid")])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.5), loss=name)
    first = model.evaluate(X, y, verbose=0)
    p = model.predict(X, verbose=0)
    e = p - y
    expected = {"mae": np.mean(np.abs(e)), "mse": np.mean(e ** 2),
                "huber": np.mean(0.5 * e ** 2),
                "binary_crossentropy": -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))}[name]
    assert first == pytest.approx(expected, rel=1e-5)
    h = model.fit(X, y, epochs=20, batch_size=8, verbose=0)
    assert h.history["loss"][-1] < first


def test_sparse_crossentropy_from_logits():
    X, y = fn.datasets.xor()
    model = Sequential([layers.Dense(8, activation="tanh", input_dim=2), layers.Dense(2)])
    model.compile(optimizer=optimizers.Adam(learning_rate=0.05),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    h = model.fit(X, y, epochs=200, batch_size=4, verbose=0)
    assert h.history["accuracy"][-1] == 1.0
    z = model.predict(X, verbose=0)
    lse = np.log(np.exp(z).sum(1))
    assert model.evaluate(X, y, verbose=0)[0] == pytest.approx(
        np.mean(lse - z[np.arange(4), y]), rel=1e-3, abs=1e-6)


def test_metric_values():
    t = np.array([1, 0, 1, 1])
    p = np.array([[0.9], [0.6], [0.4], [0.8]])
    assert metrics.get("precision")(t, p) == pytest.approx(2 / 3)
    assert metrics.get("recall")(t, p) == pytest.approx(2 / 3)
    assert metrics.AUC()(t, p) == pytest.approx(2 / 3)
    assert metrics.get("mae")(t, p) == pytest.approx(np.mean(np.abs(p[:, 0] - t)))
    assert metrics.get("mse").name == "mse"


# -- callbacks -----------------------------------------------------------------------------------
def test_early_stopping_stops_and_restores():
    X, y = fn.datasets.xor()
    model = xor_model()
    model.compile(optimizer=optimizers.SGD(learning_rate=1e-9),
                  loss="sparse_categorical_crossentropy")
    stop = callbacks.EarlyStopping(monitor="loss", patience=2, min_delta=1.0,
                                   restore_best_weights=True)
    h = model.fit(X, y, epochs=50, verbose=0, callbacks=[stop])
    assert len(h.epoch) == 3 and stop.stopped_epoch == 2


def test_model_checkpoint_csv_logger_reduce_lr(tmp_path):
    X, y = fn.datasets.xor()
    model = xor_model()
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1),
                  loss="sparse_categorical_crossentropy")
    cbs = [callbacks.ModelCheckpoint(str(tmp_path / "m-{epoch:02d}.keras")),
           callbacks.CSVLogger(str(tmp_path / "log.csv")),
           callbacks.ReduceLROnPlateau(monitor="loss", patience=0, min_delta=10.0, factor=0.5)]
    h = model.fit(X, y, epochs=3, verbose=0, callbacks=cbs)
    assert sorted(os.listdir(tmp_path)) == ["log.csv", "m-01.keras", "m-02.keras",
                                            "m-03.keras"]
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0] == "epoch,loss" and len(rows) == 4 and rows[1].startswith("0,")
    # logged before the epoch's reduction, as Keras logs it
    assert h.history["learning_rate"] == [0.1, 0.1, 0.05]
    assert model.optimizer.learning_rate == 0.025
    loaded = models.load_model(tmp_path / "m-03.keras")
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), model.predict(X, verbose=0))


def test_terminate_on_nan_and_per_batch_hooks():
    X = np.array([[1e30, 1e30]] * 4, dtype=np.float32)
    model = Sequential([layers.Dense(1, input_dim=2)])
    model.compile(optimizer=optimizers.SGD(learning_rate=1e10), loss="mse")
    with pytest.raises(fn.errors.DivergenceError):
        model.fit(X, np.ones(4), epochs=3, verbose=0)
    h = model.fit(X, np.ones(4), epochs=3, verbose=0, callbacks=[callbacks.TerminateOnNaN()])
    assert len(h.epoch) < 3

    class PerBatch(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    with pytest.raises(UnsupportedFeatureError, match="on_train_batch_end"):
        model.fit(X, np.ones(4), verbose=0, callbacks=[PerBatch()])


# -- saving ---------------------------------------------------------------------------------------
def test_save_and_load_model_round_trip(tmp_path):
    X, y = fn.datasets.xor()
    model = Sequential([layers.Input(shape=(2,)), layers.Dense(8, activation="relu", name="h"),
                        layers.Dropout(0.1), layers.Dense(4, use_bias=False, activation="tanh"),
                        layers.LeakyReLU(0.1), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="binary_crossentropy",
                  metrics=["accuracy", metrics.AUC()])
    model.fit(X, y, epochs=5, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = models.load_model(path)
    assert isinstance(loaded, Sequential)
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), model.predict(X, verbose=0))
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert loaded.get_layer("h").activation.name == "relu"
    assert loaded.evaluate(X, y, verbose=0) == pytest.approx(model.evaluate(X, y, verbose=0))
    assert loaded.optimizer.learning_rate == 0.01
    loaded.fit(X, y, epochs=1, verbose=0)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["fusenn-keras.json", "network.npz"]
    with bad_input(ValueError, match=".keras"):
        model.save(tmp_path / "model.npz")


def test_load_model_refuses_keras_files_and_junk(tmp_path):
    keras_file = tmp_path / "k.keras"
    with zipfile.ZipFile(keras_file, "w") as zf:
        zf.writestr("metadata.json", "{}")
        zf.writestr("config.json", "{}")
        zf.writestr("model.weights.h5", b"\x89HDF")
    with pytest.raises(FormatError, match="written by Keras itself"):
        models.load_model(keras_file)
    junk = tmp_path / "j.keras"
    junk.write_bytes(b"not a zip")
    with pytest.raises(FormatError, match="not a zip"):
        models.load_model(junk)
    with pytest.raises(FileNotFoundError):
        models.load_model(tmp_path / "missing.keras")


def test_save_and_load_weights(tmp_path):
    model = xor_model()
    model.save_weights(tmp_path / "w.weights.h5")
    other = xor_model()
    other.load_weights(tmp_path / "w.weights.h5")
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


# -- equivalence with Keras 3 --------------------------------------------------------------------
KERAS_EQUIVALENCE = r"""
import json, os, sys
import numpy as np
os.environ["KERAS_BACKEND"] = "jax"
import keras
assert int(keras.__version__.split(".")[0]) >= 3, keras.__version__
data = np.load(sys.argv[1])
X, y, Xv = data["X"], data["y"], data["Xv"]
weights = [data[f"w{i}"] for i in range(4)]
model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(5, activation="tanh"),
                          keras.layers.Dense(3, activation="softmax")])
model.set_weights(weights)
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
before = {"predict": model.predict(Xv, verbose=0).tolist(),
          "evaluate": model.evaluate(X, y, verbose=0)}
model.fit(X, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
before["after"] = [w.tolist() for w in model.get_weights()]
print(json.dumps(before))
"""


def test_equivalent_to_keras_3(tmp_path):
    """Same model and weights in Keras 3 (JAX backend, its own process) and in the face."""
    import importlib.util
    import json

    if importlib.util.find_spec("keras") is None or importlib.util.find_spec("jax") is None:
        pytest.skip("Keras 3 with JAX is not installed (it is not required)")

    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 4)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    Xv = rng.normal(size=(6, 4)).astype(np.float32)
    model = Sequential([layers.Input(shape=(4,)), layers.Dense(5, activation="tanh"),
                        layers.Dense(3, activation="softmax")])
    weights = model.get_weights()
    np.savez(tmp_path / "data.npz", X=X, y=y, Xv=Xv,
             **{f"w{i}": w for i, w in enumerate(weights)})
    script = tmp_path / "k.py"
    script.write_text(KERAS_EQUIVALENCE)
    ref = json.loads(subprocess.run([sys.executable, str(script), str(tmp_path / "data.npz")],
                                    capture_output=True, text=True, check=True,
                                    timeout=600).stdout.splitlines()[-1])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    np.testing.assert_allclose(model.predict(Xv, verbose=0), ref["predict"], rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(model.evaluate(X, y, verbose=0), ref["evaluate"], rtol=1e-5)
    model.fit(X, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for ours, theirs in zip(model.get_weights(), ref["after"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_dense_no_bias_gradients_match_finite_differences():
    from support import numeric_grad

    rng = np.random.default_rng(0)
    layer = fn.layers.DenseNoBias(3, 2, random_state=0, dtype=np.float64)
    net = fn.Sequential([fn.layers.Dense(4, 3, "tanh", random_state=1, dtype=np.float64),
                         layer], dtype=np.float64)
    X = rng.normal(size=(5, 4))
    dy = rng.normal(size=(5, 2))
    net.forward(X, training=True)
    net.backward(dy)
    W = net.layers[1].W
    expected = numeric_grad(lambda: float(np.sum(net.forward(X) * dy)), W)
    np.testing.assert_allclose(net.layers[1].dW, expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(net.layers[0].dW, numeric_grad(
        lambda: float(np.sum(net.forward(X) * dy)), net.layers[0].W), rtol=1e-6, atol=1e-8)


def test_strings_and_objects_where_keras_takes_both():
    from fusenn.keras import activations

    a = Sequential([layers.Dense(3, input_dim=2, activation=activations.relu,
                                 kernel_initializer=initializers.HeNormal(),
                                 kernel_regularizer="l2")])
    b = Sequential([layers.Dense(3, input_dim=2, activation="relu",
                                 kernel_initializer="he_normal",
                                 kernel_regularizer=regularizers.L2(0.01))])
    assert a.layers[0].activation.name == b.layers[0].activation.name == "relu"
    assert a.layers[0].kernel_regularizer.l2 == b.layers[0].kernel_regularizer.l2 == 0.01
    np.testing.assert_array_equal(activations.relu(np.array([-1.0, 3.0])), [0.0, 3.0])
    for opt, loss, metric in [("adam", "mse", "mae"),
                              (optimizers.Adam(), losses.MeanSquaredError(),
                               metrics.MeanAbsoluteError())]:
        a.compile(optimizer=opt, loss=loss, metrics=[metric])
        assert a.evaluate(np.ones((2, 2)), np.zeros((2, 3)), verbose=0)[1] >= 0
    assert utils.to_categorical([2]).dtype == np.float64  # as Keras 3's
