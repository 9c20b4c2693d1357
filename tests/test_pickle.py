"""Pickling: public objects travel by name and values, never by function or backend handle."""
import functools
import importlib
import inspect
import io
import math
import multiprocessing
import os
import pickle
import pickletools
import sys

import cloudpickle
import joblib
import numpy as np
import pytest

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


# ------------------------------------------------------------------ every public class

#: The modules whose ``__all__`` lists the public classes (a new class is covered by being
#: exported; ``test_every_public_class_is_exported`` sees that it is).
PUBLIC_MODULES = ["fusenn", "fusenn.layers", "fusenn.optim", "fusenn.callbacks", "fusenn.losses",
                  "fusenn.initializers", "fusenn.activations", "fusenn.errors", "fusenn.sklearn",
                  "fusenn.keras", "fusenn.keras.models", "fusenn.keras.layers",
                  "fusenn.keras.optimizers", "fusenn.keras.callbacks", "fusenn.keras.losses",
                  "fusenn.keras.metrics", "fusenn.keras.regularizers"]


def _module_classes(mod):
    names = getattr(mod, "__all__", None)
    if names is None:  # no __all__ (activations, errors): the classes defined there
        names = [n for n, v in vars(mod).items() if inspect.isclass(v)
                 and v.__module__ == mod.__name__ and not n.startswith("_")]
    return {n: getattr(mod, n) for n in names if inspect.isclass(getattr(mod, n))}


def _public_classes():
    out = {}
    for name in PUBLIC_MODULES:
        for cls in _module_classes(importlib.import_module(name)).values():
            out[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return out


def test_every_public_class_is_exported():
    """A public class defined in a module with ``__all__`` is listed in it, so the round
    trips below cannot miss it."""
    for name in PUBLIC_MODULES:
        mod = importlib.import_module(name)
        if not hasattr(mod, "__all__") or name in ("fusenn", "fusenn.keras"):
            continue
        defined = {n for n, v in vars(mod).items() if inspect.isclass(v)
                   and v.__module__ == name and not n.startswith("_")}
        assert defined <= set(mod.__all__), (name, defined - set(mod.__all__))


def _xy(n=48, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    return X, (X[:, 0] * X[:, 1] > 0).astype(np.int64)


def _fit_with(callbacks, epochs=2, **kw):
    X, y = _xy()
    model = fn.Sequential([Dense(4, 6, "relu"), Dense(6, 2, "softmax")], random_state=0)
    trainer = fn.Trainer(model, optimizer=fn.optim.SGD(lr=0.05, momentum=0.9), batch_size=8,
                         random_state=0, callbacks=callbacks, **kw)
    trainer.fit(X, y, epochs=epochs, validation_data=(X, y))
    return trainer


def _used_core_callback(cls, *args, **kwargs):
    """A core callback after it took part in a fit (it then holds its trainer)."""
    cb = cls(*args, **kwargs)
    _fit_with([cb])
    return cb


@functools.lru_cache(maxsize=None)
def _fitted_sklearn(kind):
    from fusenn.sklearn import MLPClassifier, MLPRegressor

    X, y = _xy()
    est = (MLPClassifier if kind == "classifier" else MLPRegressor)(
        hidden_layer_sizes=(5,), max_iter=20, random_state=0)
    return est.fit(X, y if kind == "classifier" else X[:, 0])


def _keras_model(callbacks=(), fit=True):
    from fusenn.keras import Sequential, layers

    X, y = _xy()
    model = Sequential([layers.Dense(6, activation="relu", input_shape=(4,)),
                        layers.Dropout(0.1), layers.BatchNormalization(),
                        layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    if fit:
        model.fit(X, y, epochs=2, batch_size=8, verbose=0, validation_data=(X, y),
                  callbacks=list(callbacks))
    return model


def _used_keras_callback(make):
    cb = make()
    _keras_model([cb])
    return cb


def _epoch_logger(epoch, logs):
    """A module-level hook, so that standard pickle can carry a LambdaCallback."""


def _tmp_file(name):
    import tempfile

    return os.path.join(tempfile.mkdtemp(prefix="fusenn-pickle-"), name)


#: How to make an instance of each public class that needs arguments, or that is worth
#: pickling in a used state (fitted, holding its trainer); every other class is made with
#: no arguments.
EXAMPLES = {
    "fusenn.model.Sequential": lambda: _trainer().model,
    "fusenn.trainer.Trainer": lambda: _fit_with([], epochs=1),
    "fusenn.perceptron.Perceptron": lambda: fn.Perceptron(max_iter=50).fit(
        _xy()[0], (_xy()[0][:, 0] > 0).astype(int)),
    "fusenn.layers.Dense": lambda: _trainer().model.layers[0],
    "fusenn.layers.DenseNoBias": lambda: fn.Sequential([fn.layers.DenseNoBias(3, 2)]).layers[0],
    "fusenn.layers.Activation": lambda: fn.layers.Activation("elu", alpha=0.5),
    "fusenn.layers.Dropout": lambda: _trainer().model.layers[1],
    "fusenn.layers.BatchNorm": lambda: _trainer().model.layers[2],
    "fusenn.layers.Maxout": lambda: fn.Sequential([fn.layers.Maxout(3, 2)],
                                                  random_state=0).layers[0],
    "fusenn.optim.Optimizer": lambda: fn.optim.Optimizer(0.1),
    "fusenn.optim.SGD": lambda: _fit_with([], epochs=1).optimizer,
    "fusenn.optim.StepLR": lambda: _used_core_callback(fn.optim.StepLR, 1),
    "fusenn.optim.ExponentialLR": lambda: _used_core_callback(fn.optim.ExponentialLR, 0.9),
    "fusenn.optim.InverseScalingLR": lambda: _used_core_callback(fn.optim.InverseScalingLR),
    "fusenn.optim.ReduceLROnPlateau": lambda: _used_core_callback(fn.optim.ReduceLROnPlateau),
    "fusenn.callbacks.History": lambda: _fit_with([], epochs=2).callbacks or _history(),
    "fusenn.callbacks.MonitorCallback": lambda: fn.callbacks.MonitorCallback("loss", 0),
    "fusenn.callbacks.EarlyStopping": lambda: _used_core_callback(fn.callbacks.EarlyStopping),
    "fusenn.callbacks.ProgressBar": lambda: _used_core_callback(fn.callbacks.ProgressBar, 1,
                                                                io.StringIO()),
    "fusenn.initializers.VarianceScaling": lambda: fn.initializers.get("he_normal"),
    "fusenn.initializers.Constant": lambda: fn.initializers.Constant(0.5),
    "fusenn.activations.Activation": lambda: fn.activations.get("leaky_relu", alpha=0.2),
    "fusenn.sklearn._mlp.MLPClassifier": lambda: _fitted_sklearn("classifier"),
    "fusenn.sklearn._mlp.MLPRegressor": lambda: _fitted_sklearn("regressor"),
    "fusenn.keras.models.Sequential": _keras_model,
    "fusenn.keras.layers.InputLayer": lambda: _keras_model().layers[0],
    "fusenn.keras.layers.Dense": lambda: _keras_model().layers[0],
    "fusenn.keras.layers.Dropout": lambda: _keras_model().layers[1],
    "fusenn.keras.layers.BatchNormalization": lambda: _keras_model().layers[2],
    "fusenn.keras.layers.Activation": lambda: __import__("fusenn.keras.layers").keras.layers
    .Activation("tanh"),
    "fusenn.keras.losses.WeightedLoss": lambda: fn.keras.losses.WeightedLoss(
        fn.keras.losses.SparseCategoricalCrossentropy(), True, None),
    "fusenn.keras.optimizers.Adam": lambda: _keras_model().optimizer,
    "fusenn.keras.callbacks.EarlyStopping": lambda: _used_keras_callback(
        lambda: fn.keras.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True)),
    "fusenn.keras.callbacks.ReduceLROnPlateau": lambda: _used_keras_callback(
        fn.keras.callbacks.ReduceLROnPlateau),
    "fusenn.keras.callbacks.History": lambda: _keras_model().history,
    "fusenn.keras.callbacks.ModelCheckpoint": lambda: _used_keras_callback(
        lambda: fn.keras.callbacks.ModelCheckpoint(_tmp_file("best.keras"))),
    "fusenn.keras.callbacks.CSVLogger": lambda: _used_keras_callback(
        lambda: fn.keras.callbacks.CSVLogger(_tmp_file("log.csv"))),
    "fusenn.keras.callbacks.LambdaCallback": lambda: _used_keras_callback(
        lambda: fn.keras.callbacks.LambdaCallback(on_epoch_end=_epoch_logger)),
}


def _history():
    return _fit_with([], epochs=2).fit(*_xy(), epochs=1)


def _make(qualified, cls):
    make = EXAMPLES.get(qualified)
    if make is None:
        if issubclass(cls, BaseException):
            return cls("a message naming the problem")
        return cls()
    return make()


def _joblib_round_trip(obj):
    buf = io.BytesIO()
    joblib.dump(obj, buf)
    buf.seek(0)
    return joblib.load(buf)


ROUND_TRIPS = {
    "pickle": lambda o: pickle.loads(pickle.dumps(o, protocol=pickle.HIGHEST_PROTOCOL)),
    "cloudpickle": lambda o: cloudpickle.loads(cloudpickle.dumps(o)),
    "joblib": _joblib_round_trip,
}

#: Modules whose objects must not travel in a pickle: backend handles, compiled functions,
#: thread pools and locks are found or made afresh by the process that unpickles.
FORBIDDEN = ("fusenn.backends", "fusenn._cy", "numba", "llvmlite", "threading", "_thread",
             "concurrent", "multiprocessing", "threadpoolctl", "ctypes", "tqdm")


def _globals_in(data):
    """The ``module.name`` of every class or function a pickle refers to."""
    out, strings = [], []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            out.append(".".join(strings[-2:]))
        elif op.name in ("GLOBAL", "INST"):
            out.append(arg.replace(" ", "."))
    return out


def _assert_same(a, b, path="obj", seen=None):
    """``b`` has the type and state of ``a``, all the way down (arrays bit for bit)."""
    seen = set() if seen is None else seen
    if id(a) in seen:
        return
    seen.add(id(a))
    assert type(a) is type(b), f"{path}: {type(a)} became {type(b)}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, np.random.Generator):
        assert a.bit_generator.state == b.bit_generator.state, path
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}[{k!r}]", seen)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]", seen)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    elif isinstance(a, (int, float, str, bytes, type(None), np.generic, np.dtype, type)):
        assert a == b, path
    elif inspect.isfunction(a) or inspect.isbuiltin(a) or isinstance(a, np.ufunc):
        assert a.__qualname__ == b.__qualname__, path
    elif isinstance(a, io.StringIO):
        assert a.getvalue() == b.getvalue(), path
    elif type(a).__name__ in ("RLock", "lock"):
        pass  # a fresh lock, by design
    else:
        state_a = a.__getstate__() if hasattr(a, "__getstate__") else a.__dict__
        state_b = b.__getstate__() if hasattr(b, "__getstate__") else b.__dict__
        _assert_same(state_a, state_b, f"{path}.__dict__", seen)


PUBLIC = _public_classes()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short fits
@pytest.mark.parametrize("how", sorted(ROUND_TRIPS))
@pytest.mark.parametrize("qualified", sorted(PUBLIC))
def test_every_public_class_round_trips(qualified, how):
    obj = _make(qualified, PUBLIC[qualified])
    data = cloudpickle.dumps(obj) if how == "cloudpickle" else pickle.dumps(obj)
    bad = [g for g in _globals_in(data) if g.startswith(FORBIDDEN)]
    assert not bad, f"{qualified} pickles {bad}"
    back = ROUND_TRIPS[how](obj)
    _assert_same(obj, back, qualified)


def test_a_progress_bar_on_a_standard_stream_travels_by_name():
    bar = fn.callbacks.ProgressBar(1, file=sys.stderr)
    trainer = _fit_with([bar])
    for how, round_trip in ROUND_TRIPS.items():
        back = round_trip(trainer)
        assert back.callbacks[0].file is sys.stderr, how
        assert back.callbacks[0].trainer is back, how


def _predictions(obj, X):
    if hasattr(obj, "predict_proba"):
        return obj.predict_proba(X)
    if hasattr(obj, "compile"):  # the Keras face
        return obj.predict(X, verbose=0)
    return obj.predict(X)


@pytest.mark.parametrize("how", sorted(ROUND_TRIPS))
@pytest.mark.parametrize("qualified", ["fusenn.model.Sequential", "fusenn.perceptron.Perceptron",
                                       "fusenn.sklearn._mlp.MLPClassifier",
                                       "fusenn.sklearn._mlp.MLPRegressor",
                                       "fusenn.keras.models.Sequential"])
def test_fitted_models_predict_identically(qualified, how):
    obj = _make(qualified, PUBLIC[qualified])
    back = ROUND_TRIPS[how](obj)
    X, _ = _xy(30, seed=7)
    np.testing.assert_array_equal(_predictions(back, X), _predictions(obj, X))


@pytest.mark.parametrize("how", sorted(ROUND_TRIPS))
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop", "adagrad"])
@pytest.mark.parametrize("fast_path", ["auto", False])
def test_trainers_resume_bit_identically(optimizer, fast_path, how):
    """Optimiser state, step count and random streams travel: a copy goes on exactly as the
    original does, on the compiled epoch and on the per-batch path."""
    X, y = _xy()
    opt = fn.optim.get(optimizer, **({"momentum": 0.9} if optimizer == "sgd" else {}))
    model = fn.Sequential([Dense(4, 6, "tanh"), Dense(6, 2, "softmax")], random_state=0)
    trainer = fn.Trainer(model, optimizer=opt, batch_size=8, random_state=3,
                         fast_path=fast_path)
    trainer.fit(X, y, epochs=2)
    copy = ROUND_TRIPS[how](trainer)
    assert copy.optimizer.t == trainer.optimizer.t > 0
    h1, h2 = trainer.fit(X, y, epochs=2), copy.fit(X, y, epochs=2)
    assert h1["loss"] == h2["loss"]
    for a, b in zip(trainer.model.get_weights(), copy.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def _train_and_predict_in_child(blob):
    """Unpickle a fitted trainer, train it on and predict (runs in a pool's child)."""
    trainer = pickle.loads(blob)
    X, y = _xy(64, seed=2)
    trainer.fit(X, y, epochs=2)
    return trainer.model.get_weights(), trainer.model.predict_proba(X)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_pools_train_and_predict(method):
    """A trainer whose kernels ran (with threads) here trains on and predicts in the children
    of each kind of pool, as it does here."""
    X, y = _xy(64, seed=2)
    trainer = _fit_with([], epochs=1)
    fn.functional.softmax(np.ones((512, 256)))  # a parallel kernel has run in the parent
    blob = pickle.dumps(trainer)
    expected = _train_and_predict_in_child(blob)
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(2) as pool:
        children = pool.map_async(_train_and_predict_in_child, [blob] * 2).get(timeout=120)
    for weights, proba in children:
        for a, b in zip(weights, expected[0]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(proba, expected[1])


def _unfitted():
    from fusenn.keras import Sequential, layers
    from fusenn.sklearn import MLPClassifier, MLPRegressor

    return {"MLPClassifier": MLPClassifier(hidden_layer_sizes=(7,), alpha=0.5),
            "MLPRegressor": MLPRegressor(solver="sgd", momentum=0.5),
            "keras.Sequential": Sequential([layers.Dense(3, input_shape=(4,))]),
            "keras.Sequential(compiled)": _keras_model(fit=False)}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("how", sorted(ROUND_TRIPS))
@pytest.mark.parametrize("name", sorted(_unfitted()))
def test_unfitted_faces_round_trip_and_then_fit(name, how):
    obj = _unfitted()[name]
    back = ROUND_TRIPS[how](obj)
    _assert_same(obj, back, name)
    X, y = _xy()
    if name.startswith("MLP"):
        assert back.get_params() == obj.get_params()
        target = y if name == "MLPClassifier" else X[:, 0]
        assert back.fit(X, target).score(X, target) > -1e9
    elif "compiled" in name:
        back.fit(X, y, epochs=1, verbose=0)
        np.testing.assert_array_equal(back.predict(X, verbose=0).shape, (X.shape[0], 2))
    else:  # not built yet: the copy draws its own weights when it builds, as Keras would
        assert back.predict(X, verbose=0).shape == (X.shape[0], 3)
