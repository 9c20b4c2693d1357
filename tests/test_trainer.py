import numpy as np
import pytest

import fusenn as fn
from fusenn.layers import Dense
from support import bad_input

pytestmark = pytest.mark.usefixtures("numpy_backend")


def _xor_model(seed=0, dtype=np.float64):
    return fn.Sequential([Dense(2, 8, "tanh"), Dense(8, 2)], dtype=dtype, random_state=seed)


def test_mlp_learns_xor():
    X, y = fn.datasets.xor()
    model = _xor_model()
    trainer = fn.Trainer(model, optimizer=fn.optim.SGD(lr=0.5, momentum=0.9), batch_size=4,
                         random_state=0)
    history = trainer.fit(X, y, epochs=300)
    assert history.history["accuracy"][-1] == 1.0
    np.testing.assert_array_equal(model.predict(X), y)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_digits_reach_97_percent(digits):
    X, y = digits
    Xtr, Xte, ytr, yte = fn.datasets.train_test_split(X, y, test_size=0.2, random_state=0,
                                                      stratify=True)
    model = fn.Sequential([Dense(64, 64, "relu"), Dense(64, 10)], random_state=0)
    fn.Trainer(model, optimizer=fn.optim.Adam(lr=3e-3), batch_size=32, random_state=0,
               metrics=[]).fit(Xtr, ytr, epochs=40)
    acc = fn.metrics.accuracy(yte, model.predict(Xte))
    assert acc >= 0.97, acc


def test_same_seed_bit_identical():
    X, y = fn.datasets.xor()
    X = np.tile(X, (8, 1))
    y = np.tile(y, 8)
    results = []
    for _ in range(2):
        model = fn.Sequential([Dense(2, 8, "relu"), fn.layers.Dropout(0.2), Dense(8, 2)],
                              random_state=1)
        fn.Trainer(model, batch_size=5, random_state=7).fit(X, y, epochs=5)
        results.append(model.flat_params.copy())
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("batch_size", [1, 3, None])
def test_batch_modes(batch_size):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 3))
    y = (X[:, 0] > 0).astype(int)
    model = fn.Sequential([Dense(3, 2)], dtype=np.float64, random_state=0)
    before = model.flat_params.copy()
    trainer = fn.Trainer(model, optimizer=fn.optim.SGD(lr=0.1), batch_size=batch_size,
                         shuffle=False)
    trainer.fit(X, y, epochs=1)
    # replay the same updates by hand
    ref = fn.Sequential([Dense(3, 2)], dtype=np.float64)
    ref.flat_params[...] = before
    bs = 10 if batch_size is None else batch_size
    for i in range(0, 10, bs):
        out = ref.forward(X[i:i + bs], training=True)
        _, g = fn.functional.softmax_cross_entropy(out, y[i:i + bs])
        ref.backward(g)
        ref.flat_params -= 0.1 * ref.flat_grads
    np.testing.assert_allclose(model.flat_params, ref.flat_params, rtol=1e-12)
    assert trainer.optimizer.t == -(-10 // bs)


def test_softmax_output_and_logits_train_identically():
    X, y = fn.datasets.xor()
    a = fn.Sequential([Dense(2, 4, "tanh"), Dense(4, 2, "softmax")], random_state=3,
                      dtype=np.float64)
    b = fn.Sequential([Dense(2, 4, "tanh"), Dense(4, 2)], random_state=3, dtype=np.float64)
    c = fn.Sequential([Dense(2, 4, "tanh"), Dense(4, 2), fn.layers.Activation("softmax")],
                      random_state=3, dtype=np.float64)
    for m in (a, b, c):
        fn.Trainer(m, batch_size=2, random_state=0).fit(X, y, epochs=3)
    np.testing.assert_allclose(a.flat_params, b.flat_params, rtol=1e-12)
    np.testing.assert_allclose(c.flat_params, b.flat_params, rtol=1e-12)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-12)


def test_binary_and_regression_losses():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2))
    yb = (X[:, 0] + X[:, 1] > 0).astype(float)
    m = fn.Sequential([Dense(2, 1, "sigmoid")], random_state=0)
    h = fn.Trainer(m, loss="binary_cross_entropy", optimizer=fn.optim.Adam(lr=0.05), batch_size=8,
                   random_state=0).fit(X, yb, epochs=30)
    assert h.history["accuracy"][-1] > 0.95
    yr = X @ np.array([1.5, -2.0]) + 0.5
    r = fn.Sequential([Dense(2, 1)], random_state=0)
    for loss in ("mse", "half_mse"):
        fn.Trainer(r, loss=loss, optimizer=fn.optim.SGD(lr=0.05), batch_size=8,
                   random_state=0).fit(X, yr, epochs=60)
        np.testing.assert_allclose(r.predict(X)[:, 0], yr, atol=1e-2)


@pytest.mark.parametrize("opt,update", [
    (fn.optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), "sgd"),
    (fn.optim.Adam(lr=0.01, weight_decay=0.01), "adam"),
    (fn.optim.RMSprop(lr=0.01), "rmsprop"),
    (fn.optim.Adagrad(lr=0.1), "adagrad"),
])
def test_optimizer_update_rules(opt, update):
    rng = np.random.default_rng(0)
    p = rng.normal(size=6)
    opt.setup(6, np.float64)
    ref = p.copy()
    s1, s2 = np.zeros(6), np.zeros(6)
    for t in range(1, 4):
        g = rng.normal(size=6)
        with fn.use_backend("numpy"):
            opt.step(p, g)
        if update == "sgd":
            gd = g + 0.01 * ref
            s1 = 0.9 * s1 + gd
            ref -= 0.1 * (gd + 0.9 * s1)
        elif update == "adam":
            gd = g + 0.01 * ref
            s1 = 0.9 * s1 + 0.1 * gd
            s2 = 0.999 * s2 + 0.001 * gd ** 2
            ref -= 0.01 * (s1 / (1 - 0.9 ** t)) / (np.sqrt(s2 / (1 - 0.999 ** t)) + 1e-8)
        elif update == "rmsprop":
            s1 = 0.99 * s1 + 0.01 * g ** 2
            ref -= 0.01 * g / (np.sqrt(s1) + 1e-8)
        else:
            s1 += g ** 2
            ref -= 0.1 * g / (np.sqrt(s1) + 1e-10)
        np.testing.assert_allclose(p, ref, rtol=1e-12)


def test_schedules():
    X, y = fn.datasets.xor()
    for sched, expected in ((fn.optim.StepLR(2, gamma=0.5), [1, 1, 0.5, 0.5, 0.25]),
                            (fn.optim.ExponentialLR(0.5), [1, 0.5, 0.25, 0.125, 0.0625]),
                            (fn.optim.InverseScalingLR(1.0), [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])):
        seen = []

        class Spy(fn.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                seen.append(self.trainer.optimizer.lr)

        fn.Trainer(_xor_model(), optimizer=fn.optim.SGD(lr=1.0), callbacks=[sched, Spy()]
                   ).fit(X, y, epochs=5)
        np.testing.assert_allclose(seen, expected)


def test_reduce_on_plateau():
    X, y = fn.datasets.xor()
    opt = fn.optim.SGD(lr=1e-9)  # no progress: a plateau
    fn.Trainer(_xor_model(), optimizer=opt, callbacks=[
        fn.optim.ReduceLROnPlateau("loss", factor=0.5, patience=2, min_delta=1e-3)]).fit(
        X, y, epochs=7)
    assert opt.lr == pytest.approx(1e-9 * 0.5 ** 3)


def test_early_stopping_restores_best():
    X, y = fn.datasets.xor()
    model = _xor_model()
    snapshots = []

    class Snap(fn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append(self.trainer.model.flat_params.copy())

    stop = fn.callbacks.EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    # a learning rate so large that the loss stops improving quickly
    h = fn.Trainer(model, optimizer=fn.optim.SGD(lr=40.0), batch_size=4,
                   callbacks=[Snap(), stop], shuffle=False).fit(X, y, epochs=200)
    assert stop.stopped_epoch is not None and len(h.epoch) < 200
    best = int(np.argmin(h.history["loss"]))
    assert stop.best_epoch == best and stop.stopped_epoch == best + 2
    np.testing.assert_array_equal(model.flat_params, snapshots[best])


def test_early_stopping_on_validation():
    X, y = fn.datasets.xor()
    stop = fn.callbacks.EarlyStopping(monitor="val_accuracy", patience=20)
    h = fn.Trainer(_xor_model(), optimizer=fn.optim.SGD(lr=0.5, momentum=0.9), batch_size=4,
                   callbacks=[stop], random_state=0).fit(X, y, epochs=500,
                                                         validation_data=(X, y))
    assert "val_loss" in h.history and h.history["val_accuracy"][stop.best_epoch] == 1.0
    assert len(h.epoch) < 500
    with pytest.raises(KeyError, match="val_loss.*not among"):
        fn.Trainer(_xor_model(), callbacks=[fn.callbacks.EarlyStopping()]).fit(X, y, epochs=1)


def test_validation_split_holds_out_the_tail():
    X = np.random.default_rng(0).normal(size=(10, 2))
    y = np.arange(10) % 2
    h = fn.Trainer(_xor_model()).fit(X, y, epochs=1, validation_split=0.3)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    with bad_input(ValueError, match="validation_split"):
        fn.Trainer(_xor_model()).fit(X, y, validation_split=1.5)


def test_divergence_raises_and_keeps_finite_weights():
    X = np.array([[1e3, -1e3], [2e3, 1e3]])
    y = np.array([[1e3], [-1e3]])
    model = fn.Sequential([Dense(2, 1)], dtype=np.float64, random_state=0)
    trainer = fn.Trainer(model, loss="mse", optimizer=fn.optim.SGD(lr=10.0), batch_size=1,
                         shuffle=False)
    with pytest.raises(fn.DivergenceError, match=r"epoch \d+, batch \d+"):
        trainer.fit(X, y, epochs=50)
    assert np.all(np.isfinite(model.flat_params))


def test_zero_initialisation_shows_symmetry():
    X, y = fn.datasets.xor()
    model = fn.Sequential([Dense(2, 4, "sigmoid", init="zeros"), Dense(4, 2, init="zeros")],
                          dtype=np.float64)
    fn.Trainer(model, optimizer=fn.optim.SGD(lr=0.5), batch_size=4).fit(X, y, epochs=50)
    W0 = model.layers[0].W
    assert np.allclose(W0, W0[:, :1])  # hidden units stay identical
    h = model.layers[0].forward(X)
    assert np.allclose(h, h[:, :1])


def test_progress_bar_plain_and_silent(capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    X, y = fn.datasets.xor()
    fn.Trainer(_xor_model(), callbacks=[fn.callbacks.ProgressBar(verbose=1)]).fit(X, y,
                                                                                   epochs=2)
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "loss=" in out
    fn.Trainer(_xor_model(), callbacks=[fn.callbacks.ProgressBar(verbose=0)]).fit(X, y,
                                                                                   epochs=2)
    assert capsys.readouterr().out == ""


def test_workspaces_reused_across_batches():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5))
    y = rng.integers(0, 3, 64)
    model = fn.Sequential([Dense(5, 7, "relu"), Dense(7, 3)], random_state=0)
    trainer = fn.Trainer(model, batch_size=8, random_state=0, metrics=[])
    trainer.fit(X, y, epochs=1)
    ids = {k: id(v) for k, v in model.layers[0]._ws.items()}
    trainer.fit(X, y, epochs=3)
    assert {k: id(v) for k, v in model.layers[0]._ws.items()} == ids


@pytest.mark.parametrize("kwargs,fit_args,err,msg", [
    ({"optimizer": fn.optim.SGD(lr=0.1)}, {"y": np.array([0, 1, 1])}, fn.ShapeError,
     "different numbers of samples"),
    ({}, {"y": np.array([0, 1, 2, 0])}, ValueError, "out of range"),
    ({}, {"y": np.array([0.5, 1, 1, 0])}, ValueError, "integer class labels"),
    ({}, {"y": np.array([0, 1, np.nan, 0])}, ValueError, "NaN"),
    ({}, {"X": np.ones((4, 3))}, fn.ShapeError, "3 features but the model expects 2"),
    ({}, {"X": np.ones(4)}, fn.ShapeError, "2-D"),
    ({}, {"X": np.full((4, 2), np.inf)}, ValueError, "infinity"),
    ({}, {"X": np.ones((0, 2)), "y": np.zeros(0, int)}, fn.ShapeError, "empty"),
    ({"loss": "hinge"}, {}, ValueError, "unknown loss 'hinge'.*cross_entropy"),
    ({"optimizer": "adamw"}, {}, ValueError, "unknown optimizer 'adamw'.*adam"),
    ({"batch_size": 0}, {}, ValueError, "batch_size must be > 0"),
    ({"batch_size": -3}, {}, ValueError, "batch_size must be > 0"),
    ({"optimizer": "sgd", "loss": "mse"}, {"y": np.zeros((4, 3))}, fn.ShapeError,
     "3 column"),
])
def test_bad_input(kwargs, fit_args, err, msg):
    X, y = fn.datasets.xor()
    args = {"X": X, "y": y, **fit_args}
    with bad_input(err, match=msg):
        fn.Trainer(_xor_model(), **kwargs).fit(args["X"], args["y"], epochs=1)


@pytest.mark.parametrize("make,msg", [
    (lambda: fn.optim.SGD(lr=0), "lr must be > 0"),
    (lambda: fn.optim.SGD(lr=-1), "lr must be > 0"),
    (lambda: fn.optim.Adam(lr=0.1, beta1=1.0), "beta1"),
    (lambda: fn.optim.SGD(lr=0.1, nesterov=True), "Nesterov"),
])
def test_bad_hyperparameters(make, msg):
    with bad_input(ValueError, match=msg):
        make()


def test_float32_stays_float32():
    X, y = fn.datasets.xor(dtype=np.float32)
    model = fn.Sequential([Dense(2, 4, "tanh"), Dense(4, 2)], random_state=0)
    fn.Trainer(model).fit(X, y, epochs=2)
    assert model.flat_params.dtype == np.float32
    assert model.forward(X).dtype == np.float32


def test_state_dict_resumes_bit_for_bit():
    """Trainer.state_dict() and Trainer.from_state_dict(): the trainer's whole state but the
    model, as plain values; a trainer rebuilt from it continues exactly."""
    import copy

    rng = np.random.default_rng(3)
    X, y = rng.random((60, 5)), rng.integers(0, 3, 60)

    def model():
        return fn.Sequential([fn.layers.Dense(5, 8, "relu"), fn.layers.Dropout(0.3),
                              fn.layers.Dense(8, 3)], random_state=1)

    a = fn.Trainer(model(), optimizer=fn.optim.Adam(lr=0.01), batch_size=7, random_state=2)
    a.fit(X, y, epochs=2)
    state = copy.deepcopy(a.state_dict())
    assert state["optimizer"]["t"] == a.optimizer.t and 1 in state["layer_rngs"]
    b = fn.Trainer.from_state_dict(copy.deepcopy(a.model), state)
    a.fit(X, y, epochs=2)
    b.fit(X, y, epochs=2)
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    bad = dict(state, layer_rngs={0: state["rng"]})
    with bad_input(ValueError, match="not a stochastic layer"):
        fn.Trainer.from_state_dict(model(), bad)
    with bad_input(ValueError, match="bit generator"):
        fn.Trainer.from_state_dict(model(), dict(state, rng={"bit_generator": "nope"}))
