"""Hardened edges (issue 12): what a hostile or careless caller gets.

Each test reproduces one defect found by an adversarial pass: memory-unsafe public calls,
fork after a kernel ran, NaN weights after divergence, float32 accumulation, auto not falling
back, interrupts splitting the step count from the weights, a layer shared twice, predicting
while another thread trains, and errors that were not FusennErrors.
"""
import multiprocessing
import os
import signal
import sys
import threading

import numpy as np
import pytest

import fusenn as fn
from fusenn import backends
from fusenn.errors import (ArgumentError, ArgumentTypeError, DivergenceError, FusennError,
                           LabelError, ShapeError)
from fusenn.layers import Activation, Dense


def _model(seed=0, act="relu", out="softmax"):
    return fn.Sequential([Dense(4, 8, act), Dense(8, 3, out)], random_state=seed)


def _data(n=40, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)).astype(np.float32), rng.integers(0, 3, n)


# --------------------------------------------------------------------- 1. public calls
def test_backward_with_too_few_rows_is_refused(any_backend):
    model = _model()
    model.forward(np.ones((8, 4)))
    with pytest.raises(ShapeError, match=r"dy must have shape \(8, 3\)"):
        model.backward(np.ones((2, 3), dtype=np.float32))


def test_backward_with_wrong_columns_is_refused(any_backend):
    model = _model()
    model.forward(np.ones((5, 4)))
    with pytest.raises(ShapeError, match="dy"):
        model.backward(np.ones((5, 7), dtype=np.float32))


def test_backward_before_forward_and_with_nan_are_refused(any_backend):
    model = _model()
    with pytest.raises(ArgumentError, match="forward pass first"):
        model.backward(np.ones((5, 3)))
    model.forward(np.ones((5, 4)))
    dy = np.ones((5, 3))
    dy[2, 1] = np.nan
    with pytest.raises(ArgumentError, match="NaN"):
        model.backward(dy)


def test_backward_takes_other_layouts_and_dtypes(any_backend):
    model = _model()
    model.forward(np.ones((5, 4)))
    ref = model.backward(np.ones((5, 3), dtype=np.float32))
    np.testing.assert_array_equal(ref, model.backward(np.asfortranarray(np.ones((5, 3)))))
    np.testing.assert_array_equal(ref, model.backward(np.ones((3, 5)).T))


def test_layer_backward_refuses_a_dy_of_another_batch(any_backend):
    layer = Dense(4, 3, "tanh")
    layer.forward(np.ones((6, 4), dtype=np.float32))
    with pytest.raises(ShapeError, match="dy"):
        layer.backward(np.ones((2, 3), dtype=np.float32))
    act = Activation("relu")
    act.forward(np.ones((6, 4), dtype=np.float32))
    with pytest.raises(ShapeError, match="dy"):
        act.backward(np.ones((6, 9), dtype=np.float32))


def test_layer_forward_refuses_a_wrong_width(any_backend):
    with pytest.raises(ShapeError, match=r"x must have shape \(6, 4\)"):
        Dense(4, 3).forward(np.ones((6, 5), dtype=np.float32))


@pytest.mark.parametrize("label", [10 ** 8, -5, 3, 2.5, 1e300])
def test_loss_object_refuses_labels_out_of_range(any_backend, label):
    loss = fn.losses.get("cross_entropy")
    out = np.zeros((4, 3), dtype=np.float32)
    y = np.array([0, 1, 2, 0], dtype=np.float64 if isinstance(label, float) else np.int64)
    y[1] = label
    with pytest.raises(LabelError):
        loss(out, y)
    with pytest.raises(LabelError):
        loss.value(out, y)


def test_loss_object_refuses_mismatched_shapes(any_backend):
    mse = fn.losses.get("mse")
    with pytest.raises(ShapeError):
        mse(np.zeros((4, 3), dtype=np.float32), np.zeros((2, 3)))
    xent = fn.losses.get("cross_entropy")
    with pytest.raises(ShapeError):
        xent(np.zeros((4, 3)), np.zeros(7, dtype=np.int64))
    with pytest.raises(ShapeError, match="grad"):
        xent(np.zeros((4, 3)), np.zeros(4, dtype=np.int64), np.zeros((2, 3)))


def test_optimizer_step_refuses_vectors_that_do_not_fit(any_backend):
    opt = fn.optim.Adam()
    opt.setup(10, np.float32)
    with pytest.raises(ShapeError, match="grads"):
        opt.step(np.zeros(10, np.float32), np.zeros(3, np.float32))
    with pytest.raises(ShapeError, match="params"):
        opt.step(np.zeros(10, np.float64), np.zeros(10, np.float32))
    assert opt.t == 0


# --------------------------------------------------------------------- 2. fork
def _predict_in_child(args):
    backend, X = args
    with fn.use_backend(backend):
        return fn.Sequential([Dense(64, 256, "relu"), Dense(256, 10, "softmax")],
                             random_state=0).predict_proba(X)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_pool_after_a_kernel_ran(any_backend, method):
    """Kernels run in the parent (with threads), then in the children of a Pool."""
    name = fn.get_backend()
    X = np.random.default_rng(0).standard_normal((512, 64)).astype(np.float32)
    parent = _predict_in_child((name, X))  # a parallel kernel has run here
    fn.functional.softmax(np.ones((512, 256)))
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(2) as pool:
        res = pool.map_async(_predict_in_child, [(name, X)] * 2)
        children = res.get(timeout=120)  # a hang in libgomp fails here instead of forever
    for child in children:
        np.testing.assert_allclose(child, parent, rtol=1e-5, atol=1e-6)


def test_forked_child_runs_single_threaded():
    from fusenn import _threads

    fn.set_num_threads(2)
    try:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.write(w, str(fn.get_num_threads()).encode())
            os._exit(0)
        os.waitpid(pid, 0)
        assert os.read(r, 16) == b"1"
        assert _threads.get_num_threads() == 2
    finally:
        fn.set_num_threads(None)


# --------------------------------------------------------------------- 6. divergence
@pytest.mark.parametrize("fast_path", ["auto", False])
def test_divergence_leaves_finite_weights(any_backend, fast_path):
    X, y = _data(200)
    model = _model()
    trainer = fn.Trainer(model, optimizer=fn.optim.SGD(lr=1e6), batch_size=8, random_state=0,
                         fast_path=fast_path)
    with pytest.raises(DivergenceError, match="restored"):
        trainer.fit(X * 100, y, epochs=5)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert np.isfinite(trainer.optimizer.state).all()


@pytest.mark.parametrize("opt, rows", [(lambda: fn.optim.SGD(lr=0.1), 0),
                                       (lambda: fn.optim.SGD(lr=0.1, momentum=0.9), 1),
                                       (lambda: fn.optim.RMSprop(lr=0.1), 1),
                                       (lambda: fn.optim.Adam(lr=0.1), 2)])
def test_divergence_restores_the_state_rows_the_optimizer_uses(compiled_backend, opt, rows):
    """Before each epoch the Trainer keeps the rows of the optimiser's state that its update
    uses (none for plain SGD) and, when the epoch diverges, puts back those rows as they were
    at its start, with the weights."""
    from fusenn.trainer import _LastGood

    X, y = _data(64)
    model = _model()
    trainer = fn.Trainer(model, optimizer=opt(), batch_size=8, random_state=0)
    trainer.fit(X, y, epochs=1)
    assert trainer.optimizer.state_rows() == rows
    kept = _LastGood(model, trainer.optimizer)
    assert (0 if kept.state is None else kept.state.shape[0]) == rows
    weights, state = model.get_weights(), trainer.optimizer.state.copy()
    trainer.optimizer.lr = 1e38  # every update overflows
    with pytest.raises(DivergenceError, match="restored"):
        trainer.fit(X * 100, y, epochs=1)
    for a, b in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(trainer.optimizer.state[:rows], state[:rows])


def test_a_custom_optimizer_keeps_every_state_row():
    class Halving(fn.optim.Optimizer):  # no n_state: every row of its state counts
        def _update(self, be, p, g, t):
            self.state[1] += 1
            p -= self.lr * g

    opt = Halving(lr=0.1)
    opt.setup(5, np.float64)
    assert opt.state_rows() == 2
    assert fn.optim.SGD().state_rows() == 0  # before setup: no state at all


def test_the_last_update_of_a_fit_is_checked(any_backend):
    X, y = _data(32)
    model = _model()
    before = model.get_weights()
    trainer = fn.Trainer(model, optimizer=fn.optim.SGD(lr=3e38), batch_size=None)
    with pytest.raises(DivergenceError, match="last update"):
        trainer.fit(X * 100, y, epochs=1)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert trainer.optimizer.t == 0


def test_early_stopping_restores_best_weights_on_divergence(any_backend):
    X, y = _data(64)
    model = _model()
    seen = []

    class Ramp(fn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(model.get_weights())
            self.trainer.optimizer.lr *= 1e4

        def on_train_end(self, logs=None):
            seen.append("end")

    stop = fn.callbacks.EarlyStopping(monitor="loss", patience=50, restore_best_weights=True)
    trainer = fn.Trainer(model, optimizer=fn.optim.SGD(lr=0.05), batch_size=16,
                         callbacks=[Ramp(), stop], random_state=0)
    with pytest.raises(DivergenceError):
        trainer.fit(X, y, epochs=30)
    assert seen[-1] == "end"
    for a, b in zip(model.get_weights(), seen[0]):  # epoch 1 had the lowest loss
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------- 7. accumulation
def test_losses_accumulate_in_float64(any_backend):
    out = np.array([[2e19]], dtype=np.float32)
    loss = fn.functional.mse(out, np.zeros((1, 1), np.float32))[0]
    assert loss == pytest.approx(4e38, rel=1e-6)
    z = np.full((1, 2), 3e19, np.float32)
    z[0, 1] = -3e19
    loss, _ = fn.functional.softmax_cross_entropy(z, np.array([1]))
    assert loss == pytest.approx(6e19, rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_tanh_derivative_is_finite_far_out(any_backend, dtype):
    act = fn.activations.get("gelu", approximate="tanh")
    z = np.array([[-1e30, -6e19, -20.0, 20.0, 6e19, 1e30]], dtype=dtype)
    d = act.derivative(z)
    np.testing.assert_array_equal(d, np.array([[0, 0, 0, 1, 1, 1]], dtype=dtype))


# --------------------------------------------------------------------- 8. auto falls back
def test_auto_falls_back_when_a_backend_fails_to_load(tmp_path, monkeypatch):
    from fusenn.backends._auto import AutoBackend

    (tmp_path / "broken_numba_backend.py").write_text(
        "raise RuntimeError('cannot cache function: no locator available')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(backends._MODULES, "numba", "broken_numba_backend")
    monkeypatch.delitem(backends._loaded, "numba", raising=False)
    monkeypatch.delitem(backends._errors, "numba", raising=False)
    monkeypatch.setattr(backends, "_probe", lambda name: name in ("cython", "numba", "numpy"))
    auto = AutoBackend(["cython", "numba", "numpy"], backends.get)
    n = 300_000  # Adam beyond 262,144 parameters is Numba's in the table
    p, g = np.zeros(n, np.float32), np.ones(n, np.float32)
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    with pytest.warns(RuntimeWarning, match="numba backend failed to load"):
        auto.adam_update(p, g, m, v, 0.1, 0.9, 0.999, 1e-8, 0.0, 1)
    assert p[0] == pytest.approx(-0.1)
    assert "numba" not in auto.describe()["adam_update"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        auto.adam_update(p, g, m, v, 0.1, 0.9, 0.999, 1e-8, 0.0, 2)


# --------------------------------------------------------------------- 9. interrupts
@pytest.mark.parametrize("fast_path", ["auto", False])
def test_interrupt_keeps_the_step_count_with_the_weights(compiled_backend, monkeypatch,
                                                         fast_path):
    X, y = _data(64)
    model = _model()
    trainer = fn.Trainer(model, optimizer=fn.optim.Adam(lr=0.01), batch_size=16,
                         random_state=0, fast_path=fast_path)
    calls = []
    if fast_path == "auto":
        be = backends.get(fn.get_backend())
        original = be.train_epoch

        def epoch_then_sigint(*args):
            done = original(*args)
            calls.append(done)
            signal.raise_signal(signal.SIGINT)  # lands right after the epoch returned
            return done

        monkeypatch.setattr(be, "train_epoch", epoch_then_sigint)
    else:
        opt = trainer.optimizer
        original = type(opt)._update

        def update_then_sigint(self, *args):
            original(self, *args)
            calls.append(1)
            signal.raise_signal(signal.SIGINT)  # lands between the update and the count

        monkeypatch.setattr(type(opt), "_update", update_then_sigint)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(X, y, epochs=3)
    assert trainer.optimizer.t == sum(calls) > 0


@pytest.mark.parametrize("handler", ["ignore", "function", "default"])
def test_fit_puts_back_the_sigint_handler_it_found(monkeypatch, handler):
    """A held Ctrl-C goes to the handler that was there before the fit (ignored, a user's
    function, or the KeyboardInterrupt of Python's default), which is in place again after."""
    seen = []
    before = {"ignore": signal.SIG_IGN, "function": lambda signum, frame: seen.append(signum),
              "default": signal.default_int_handler}[handler]
    previous = signal.signal(signal.SIGINT, before)
    try:
        X, y = _data(64)
        trainer = fn.Trainer(_model(), batch_size=16, random_state=0, fast_path=False)
        opt = trainer.optimizer
        original = type(opt)._update

        def update_then_sigint(self, *args):
            original(self, *args)
            signal.raise_signal(signal.SIGINT)

        monkeypatch.setattr(type(opt), "_update", update_then_sigint)
        if handler == "default":
            with pytest.raises(KeyboardInterrupt):
                trainer.fit(X, y, epochs=1)
        else:
            trainer.fit(X, y, epochs=1)  # runs on: the interrupt is ignored or handled
        assert signal.getsignal(signal.SIGINT) == before
        assert seen == ([signal.SIGINT] * 4 if handler == "function" else [])
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------- 10. sharing
def test_the_same_layer_twice_is_refused():
    layer = Dense(4, 4, "relu")
    with pytest.raises(ArgumentError, match="same object as layer 0"):
        fn.Sequential([layer, layer])


def test_predict_while_another_thread_trains(any_backend):
    X, y = _data(2000)
    model = _model(out="softmax")
    trainer = fn.Trainer(model, optimizer=fn.optim.SGD(lr=0.01), batch_size=32,
                         random_state=0)
    stop = threading.Event()
    worker = threading.Thread(target=lambda: [trainer.fit(X, y, epochs=1)
                                              for _ in range(200) if not stop.is_set()])
    worker.start()
    try:
        results = []
        for _ in range(30):
            p = model.predict_proba(X[:50])
            results.append((p, p.copy()))
            np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)  # not logits
    finally:
        stop.set()
        worker.join()
    for p, copy in results:  # not views of a workspace that kept changing
        np.testing.assert_array_equal(p, copy)


# --------------------------------------------------------------------- 11. error policy
@pytest.mark.parametrize("make, error", [
    (lambda: fn.Trainer(_model(), batch_size=0), ArgumentError),
    (lambda: Dense(4, 0), ArgumentError),
    (lambda: Dense(10 ** 20, 3), ArgumentError),
    (lambda: Dense(10 ** 6, 10 ** 6), ShapeError),
    (lambda: fn.optim.SGD(lr=10 ** 400), ArgumentError),
    (lambda: fn.optim.SGD(lr=0.1, weight_decay=10 ** 400), ArgumentError),
    (lambda: fn.optim.SGD(lr="0.1"), ArgumentTypeError),
    (lambda: fn.set_num_threads(10 ** 14), ArgumentError),
    (lambda: fn.Sequential([Dense(2, 2)], task="classify"), ArgumentError),
    (lambda: fn.metrics.confusion_matrix([0, 1], [1, 0], labels=[0, 1, 1]), ArgumentError),
    (lambda: fn.losses.get("nope"), ArgumentError),
    (lambda: fn.activations.get("nope"), ArgumentError),
    (lambda: fn.optim.get("nope"), ArgumentError),
    (lambda: fn.Trainer(_model()).fit(np.full((4, 4), np.nan), [0, 1, 2, 0]), ArgumentError),
    (lambda: fn.Trainer(_model()).fit(np.ones((4, 4)), [0, 1, 2, 7]), LabelError),
    (lambda: fn.optim.Adam().load_state_dict({"t": -5, "state": None}), ArgumentError),
])
def test_bad_input_raises_a_fusenn_error(make, error):
    with pytest.raises(error) as info:
        make()
    assert isinstance(info.value, FusennError)


def test_huge_counts_are_taken_as_counts():
    X, y = _data(16)

    class StopNow(fn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.trainer.stop_training = True

    trainer = fn.Trainer(_model(), batch_size=10 ** 12, callbacks=[StopNow()])
    history = trainer.fit(X, y, epochs=10 ** 15)
    assert len(history.history["loss"]) == 1
    with pytest.raises(ArgumentError, match="batch_size must be at most"):
        fn.Trainer(_model(), batch_size=10 ** 23)
    with pytest.raises(ArgumentError, match="epochs must be at most"):
        trainer.fit(X, y, epochs=10 ** 20)


def test_env_thread_count_out_of_range(monkeypatch):
    from fusenn import _threads

    monkeypatch.setenv("FUSENN_NUM_THREADS", str(10 ** 14))
    with pytest.raises(ArgumentError, match="FUSENN_NUM_THREADS"):
        _threads._env_threads()


def test_no_test_pins_a_bare_value_or_type_error():
    """Every ``pytest.raises(ValueError/TypeError)`` for bad input also checks FusennError
    (through ``support.bad_input``)."""
    here = os.path.dirname(__file__)
    offenders = []
    for name in sorted(os.listdir(here)):
        if name.endswith(".py") and name != os.path.basename(__file__):
            with open(os.path.join(here, name)) as f:
                for i, line in enumerate(f, 1):
                    if ("pytest.raises(ValueError" in line or "pytest.raises(TypeError" in line) \
                            and "# plain:" not in line:  # plain: marks another branch's module
                        offenders.append(f"{name}:{i}")
    assert not offenders, offenders


# --------------------------------------------------------------------- 12. the command line
def _cli(argv, capsys):
    from fusenn.cli import main

    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    return code, err


def _csv(path, labels):
    rows = [f"{i % 3}.5,{(i * 7) % 5}.25,{lab}" for i, lab in enumerate(labels)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_cli_corrupt_gzip_is_a_user_error(tmp_path, capsys):
    bad = tmp_path / "data.csv.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"garbage that does not inflate")
    code, err = _cli(["train", "--data", bad, "--epochs", "1", "--quiet"], capsys)
    assert code == 1 and err.startswith("fusenn: error: ") and "internal" not in err, err


def test_cli_huge_settings_are_user_errors(tmp_path, capsys, monkeypatch):
    data = _csv(tmp_path / "d.csv", [0, 1] * 20)
    code, err = _cli(["train", "--data", data, "--epochs", "1", "--quiet",
                      "--batch-size", 10 ** 30], capsys)
    assert code == 1 and "batch_size" in err and "internal" not in err, err
    monkeypatch.setenv("FUSENN_NUM_THREADS", str(10 ** 14))
    code, err = _cli(["train", "--data", data, "--epochs", "1", "--quiet"], capsys)
    assert code == 1 and "FUSENN_NUM_THREADS" in err and "internal" not in err, err


def test_cli_refuses_a_label_beyond_the_samples(tmp_path, capsys, monkeypatch):
    data = _csv(tmp_path / "d.csv", [0, 1] * 20 + [3_000_000])
    built = []
    monkeypatch.setattr(fn.layers.Dense, "__init__", lambda self, *a, **k: built.append(a)
                        or pytest.fail("a model was built"))
    code, err = _cli(["train", "--data", data, "--epochs", "1", "--quiet"], capsys)
    assert code == 1 and "3000000" in err, err
    assert not built


def test_cli_refuses_special_files_as_data(tmp_path, capsys):
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)  # would block (or, like /dev/zero, never end) if it were read
    code, err = _cli(["train", "--data", fifo, "--epochs", "1", "--quiet"], capsys)
    assert code == 1 and "not a regular file" in err, err


def test_cli_save_target_checked_before_training(tmp_path, capsys, monkeypatch):
    import tempfile

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    monkeypatch.setattr(fn.Trainer, "fit", lambda *a, **k: pytest.fail("training started"))
    data = _csv(tmp_path / "d.csv", [0, 1] * 20)
    code, err = _cli(["train", "--data", data, "--epochs", "1", "--quiet",
                      "--save", tmp_path / "m.npz"], capsys)
    assert code == 1 and "cannot save to" in err and "Read-only" in err, err


# --------------------------------------------------------------------- the debug builds
def test_numba_debug_mode_checks_bounds(tmp_path):
    """FUSENN_NUMBA_DEBUG=1: an internal kernel handed a label past its row raises
    IndexError instead of reading past the buffer (the test suite's mode; see README)."""
    import subprocess

    code = (
        "import numpy as np\n"
        "from fusenn.backends import _numba, _numba_generated as acts\n"
        "assert acts.DEBUG and acts._JIT['boundscheck'] is True\n"
        "z = np.zeros((2, 3)); g = np.empty_like(z)\n"
        "try:\n"
        "    _numba._xent_serial(z, np.array([0, 10 ** 8]), g, True)\n"
        "except IndexError:\n"
        "    print('bounds checked')\n")
    env = {**os.environ, "FUSENN_NUMBA_DEBUG": "1", "NUMBA_CACHE_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "bounds checked"
