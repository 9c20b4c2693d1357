"""Saving and loading: round trips of every layer type, refused files, atomic writes, and
Trainer checkpoints that resume training bit for bit."""
import json
import os
import zipfile

import numpy as np
import pytest

import fusenn as fn
import fusenn.io as fio
from fusenn import layers as L
from fusenn.errors import FormatError


def _trained_batchnorm(dtype):
    """A BatchNorm whose running statistics are not the defaults (0 and 1)."""
    bn = L.BatchNorm(5, momentum=0.3, dtype=dtype)
    rng = np.random.default_rng(0)
    for _ in range(3):
        bn.forward((rng.normal(2.0, 3.0, (16, 5))).astype(dtype), training=True)
    bn.gamma[...] = rng.uniform(0.5, 2, 5)
    bn.beta[...] = rng.normal(size=5)
    return bn


# Each case builds a small model (input width 5) around one layer type.
LAYER_CASES = {
    "dense_relu": lambda dt: [L.Dense(5, 7, "relu", dtype=dt), L.Dense(7, 3, dtype=dt)],
    "dense_leaky_relu_alpha": lambda dt: [
        L.Dense(5, 7, fn.activations.get("leaky_relu", alpha=0.2), dtype=dt),
        L.Dense(7, 3, "softmax", dtype=dt)],
    "dense_gelu_tanh": lambda dt: [
        L.Dense(5, 7, fn.activations.get("gelu", approximate="tanh"), dtype=dt),
        L.Dense(7, 3, "sigmoid", dtype=dt)],
    "dense_elu_selu_hard_tanh": lambda dt: [
        L.Dense(5, 6, fn.activations.get("elu", alpha=0.5), dtype=dt),
        L.Dense(6, 6, "selu", dtype=dt),
        L.Dense(6, 3, fn.activations.get("hard_tanh", min_val=-0.5, max_val=2.0), dtype=dt)],
    "activation": lambda dt: [L.Dense(5, 4, dtype=dt),
                              L.Activation("softplus", beta=2.0, dtype=dt),
                              L.Dense(4, 3, dtype=dt), L.Activation("softmax", dtype=dt)],
    "dropout": lambda dt: [L.Dense(5, 8, "tanh", dtype=dt), L.Dropout(0.3, dtype=dt),
                           L.Dense(8, 3, dtype=dt)],
    "batchnorm": lambda dt: [_trained_batchnorm(dt), L.Dense(5, 3, dtype=dt)],
    "prelu": lambda dt: [L.Dense(5, 6, dtype=dt), L.PReLU(6, init=0.1, dtype=dt),
                         L.Dense(6, 3, dtype=dt)],
    "swish_trainable": lambda dt: [L.Dense(5, 6, dtype=dt), L.Swish(1.5, dtype=dt),
                                   L.Dense(6, 3, dtype=dt)],
    "swish_fixed": lambda dt: [L.Dense(5, 6, dtype=dt),
                               L.Swish(0.7, trainable=False, dtype=dt),
                               L.Dense(6, 3, dtype=dt)],
    "rrelu": lambda dt: [L.Dense(5, 6, dtype=dt), L.RReLU(0.1, 0.3, dtype=dt),
                         L.Dense(6, 3, dtype=dt)],
    "maxout": lambda dt: [L.Maxout(5, 4, k=3, dtype=dt), L.Dense(4, 3, dtype=dt)],
}


def _perturb(model):
    """Give every parameter distinct values (PReLU slopes, Swish beta, biases...)."""
    rng = np.random.default_rng(42)
    model.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype)
                       for w in model.get_weights()])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_round_trip_every_layer_type(tmp_path, case, dtype):
    model = fn.Sequential(LAYER_CASES[case](dtype), dtype=dtype, random_state=1)
    _perturb(model)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fn.load(path)

    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    assert [l.get_config() for l in loaded.layers] == [l.get_config() for l in model.layers]
    assert loaded.dtype == model.dtype
    assert loaded.task == model.task
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    for a, b in zip(loaded.get_buffers(), model.get_buffers()):
        assert np.array_equal(a, b)
    X = np.random.default_rng(3).normal(size=(11, 5)).astype(dtype)
    assert np.array_equal(loaded.forward(X), model.forward(X))
    assert np.array_equal(loaded.predict(X), model.predict(X))


def test_round_trip_keeps_task_and_parametrised_activation(tmp_path):
    model = fn.Sequential([L.Dense(4, 1, fn.activations.get("leaky_relu", alpha=0.2))],
                          task="regression")
    model.save(tmp_path / "m.npz")
    loaded = fn.load(tmp_path / "m.npz")
    assert loaded.task == "regression"
    assert loaded.layers[0].activation.params == {"alpha": 0.2}


def test_saved_model_trains_on(tmp_path, numpy_backend, digits):
    X, y = digits
    model = fn.Sequential([L.Dense(64, 16, "relu"), L.Dense(16, 10)], random_state=0)
    fn.Trainer(model, optimizer=fn.optim.Adam(lr=1e-2), random_state=0).fit(X, y, epochs=2)
    model.save(tmp_path / "m.npz")
    loaded = fn.load(tmp_path / "m.npz")
    assert np.array_equal(loaded.predict(X), model.predict(X))
    fn.Trainer(loaded, optimizer=fn.optim.Adam(lr=1e-2), random_state=0).fit(X, y, epochs=1)


def test_path_kept_exactly_and_str_paths(tmp_path):
    model = fn.Sequential([L.Dense(3, 2)], random_state=0)
    path = str(tmp_path / "weights.bin")
    model.save(path)
    assert os.listdir(tmp_path) == ["weights.bin"]  # no ".npz" appended, no temp left
    assert np.array_equal(fn.load(path).get_weights()[0], model.get_weights()[0])


def test_file_is_plain_npz_with_json_description(tmp_path):
    model = fn.Sequential([L.Dense(3, 4, "tanh"), L.BatchNorm(), L.Dense(4, 2)],
                          dtype="float64", random_state=0)
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        names = set(npz.files)
        desc = json.loads(npz["description"].tobytes().decode("utf-8"))
        assert np.array_equal(npz["layers.0.W"], model.layers[0].W)
    assert names == {"description", "layers.0.W", "layers.0.b", "layers.1.gamma",
                     "layers.1.beta", "layers.1.running_mean", "layers.1.running_var",
                     "layers.2.W", "layers.2.b"}
    assert desc["format"] == "fusenn-model" and desc["format_version"] == "1.0"
    assert desc["fusenn_version"] == fn.__version__
    assert desc["dtype"] == "float64"
    assert [l["class"] for l in desc["layers"]] == ["Dense", "BatchNorm", "Dense"]
    assert desc["layers"][0]["config"]["activation"] == {"name": "tanh"}
    assert desc["layers"][1]["buffers"] == ["running_mean", "running_var"]


def test_save_refuses_non_model(tmp_path):
    with pytest.raises(TypeError, match="Sequential"):  # plain: io.py (other branch)
        fio.save("not a model", tmp_path / "m.npz")


def test_save_to_missing_directory(tmp_path):
    model = fn.Sequential([L.Dense(3, 2)])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.save(tmp_path / "nope" / "m.npz")


# --------------------------------------------------------------------------------------------
# Refused files
# --------------------------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    """A saved float32 model: (path, description dict, {name: array})."""
    model = fn.Sequential([L.Dense(4, 3, "relu"), L.BatchNorm(), L.Dense(3, 2)],
                          random_state=0)
    path = tmp_path / "good.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    desc = json.loads(arrays.pop("description").tobytes())
    return path, desc, arrays


def _write(path, desc, arrays, raw_description=None):
    data = raw_description if raw_description is not None else json.dumps(desc).encode()
    with open(path, "wb") as f:
        np.savez(f, description=np.frombuffer(data, dtype=np.uint8), **arrays)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        fn.load(tmp_path / "nope.npz")


def test_truncated_file(saved, tmp_path):
    path = saved[0]
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(FormatError, match="truncated or corrupt"):
            fn.load(bad)


def test_empty_and_non_zip_files(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(FormatError, match="not a fusenn model file.*empty"):
        fn.load(tmp_path / "empty.npz")
    (tmp_path / "text.npz").write_text("hello, world\n")
    with pytest.raises(FormatError, match="not a fusenn model file.*not a zip"):
        fn.load(tmp_path / "text.npz")
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(FormatError, match="not a fusenn model file"):
        fn.load(tmp_path / "array.npy")


def test_npz_that_is_not_a_model(tmp_path):
    np.savez(tmp_path / "data.npz", X=np.zeros((2, 2)), y=np.zeros(2))
    with pytest.raises(FormatError, match="not a fusenn model file.*'description'.*X, y"):
        fn.load(tmp_path / "data.npz")


def test_other_format_name(saved, tmp_path):
    _, desc, arrays = saved
    desc["format"] = "keras"
    with pytest.raises(FormatError, match="not a fusenn model file.*'keras'"):
        fn.load(_write(tmp_path / "b.npz", desc, arrays))


def test_newer_format_version(saved, tmp_path):
    _, desc, arrays = saved
    desc["format_version"] = "2.0"
    with pytest.raises(FormatError, match="incompatible format version 2.0.*upgrade"):
        fn.load(_write(tmp_path / "b.npz", desc, arrays))


def test_newer_minor_version_is_read(saved, tmp_path):
    _, desc, arrays = saved
    desc["format_version"] = "1.7"
    desc["something_new"] = {"added": "in 1.7"}
    fn.load(_write(tmp_path / "b.npz", desc, arrays))


def test_malformed_version(saved, tmp_path):
    _, desc, arrays = saved
    desc["format_version"] = "one"
    with pytest.raises(FormatError, match="format_version"):
        fn.load(_write(tmp_path / "b.npz", desc, arrays))


def test_bad_json(saved, tmp_path):
    _, desc, arrays = saved
    raw = json.dumps(desc).encode()[:-5]
    with pytest.raises(FormatError, match="malformed description: not valid JSON"):
        fn.load(_write(tmp_path / "b.npz", desc, arrays, raw_description=raw))
    with pytest.raises(FormatError, match="malformed description: expected a JSON object"):
        fn.load(_write(tmp_path / "c.npz", desc, arrays, raw_description=b"[1, 2]"))


def test_description_of_wrong_type(saved, tmp_path):
    _, desc, arrays = saved
    with open(tmp_path / "b.npz", "wb") as f:
        np.savez(f, description=np.zeros(3), **arrays)
    with pytest.raises(FormatError, match="malformed description: expected UTF-8 JSON"):
        fn.load(tmp_path / "b.npz")


def test_unknown_layer_type(saved, tmp_path):
    _, desc, arrays = saved
    desc["layers"][1]["class"] = "Conv2D"
    with pytest.raises(FormatError, match="unknown layer type 'Conv2D' \\(layer 1\\)"):
        fn.load(_write(tmp_path / "b.npz", desc, arrays))


def test_invalid_layer_config(saved, tmp_path):
    _, desc, arrays = saved
    desc["layers"][0]["config"]["activation"] = {"name": "no_such_activation"}
    with pytest.raises(FormatError, match="layer 0 \\(Dense\\).*no_such_activation"):
        fn.load(_write(tmp_path / "b.npz", desc, arrays))
    desc["layers"][0]["config"] = {"n_in": 4, "n_out": 3, "colour": "red"}
    with pytest.raises(FormatError, match="layer 0 \\(Dense\\).*colour"):
        fn.load(_write(tmp_path / "c.npz", desc, arrays))
    del desc["layers"][0]["config"]
    with pytest.raises(FormatError, match="layer 0 has no 'config'"):
        fn.load(_write(tmp_path / "d.npz", desc, arrays))


def test_layers_that_do_not_fit(saved, tmp_path):
    _, desc, arrays = saved
    desc["layers"][2]["config"]["n_in"] = 9
    with pytest.raises(FormatError, match="do not fit together"):
        fn.load(_write(tmp_path / "b.npz", desc, arrays))


def test_bad_dtype_in_description(saved, tmp_path):
    _, desc, arrays = saved
    desc["dtype"] = "int8"
    with pytest.raises(FormatError, match="dtype 'int8'"):
        fn.load(_write(tmp_path / "b.npz", desc, arrays))


def test_missing_array(saved, tmp_path):
    _, desc, arrays = saved
    del arrays["layers.1.running_var"]
    with pytest.raises(FormatError, match="missing array.*'layers.1.running_var'"):
        fn.load(_write(tmp_path / "b.npz", desc, arrays))


def test_extra_array(saved, tmp_path):
    _, desc, arrays = saved
    arrays["layers.5.W"] = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(FormatError, match="unexpected extra array.*'layers.5.W'"):
        fn.load(_write(tmp_path / "b.npz", desc, arrays))


def test_wrong_shape(saved, tmp_path):
    _, desc, arrays = saved
    arrays["layers.0.W"] = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(FormatError, match="'layers.0.W'.*Dense\\(4 -> 3\\).W.*shape \\(3, 4\\), "
                                          "expected \\(4, 3\\)"):
        fn.load(_write(tmp_path / "b.npz", desc, arrays))


def test_wrong_dtype(saved, tmp_path):
    _, desc, arrays = saved
    arrays["layers.2.b"] = arrays["layers.2.b"].astype(np.float64)
    with pytest.raises(FormatError, match="'layers.2.b'.*dtype float64, expected float32"):
        fn.load(_write(tmp_path / "b.npz", desc, arrays))
    arrays["layers.2.b"] = arrays["layers.2.b"].astype(np.int32)
    with pytest.raises(FormatError, match="'layers.2.b'.*dtype int32"):
        fn.load(_write(tmp_path / "c.npz", desc, arrays))


def test_non_finite_weights(saved, tmp_path):
    _, desc, arrays = saved
    arrays["layers.0.W"] = arrays["layers.0.W"].copy()
    arrays["layers.0.W"][0, 0] = np.nan
    with pytest.raises(FormatError, match="finite"):
        fn.load(_write(tmp_path / "b.npz", desc, arrays))


def test_corrupt_member(saved, tmp_path):
    """A flipped byte inside an array's data fails the zip CRC check."""
    path = saved[0]
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        start = z.getinfo("layers.0.W.npy").header_offset
    # local file header: 30 fixed bytes (name and extra lengths at 26 and 28), name, extra
    name_len = int.from_bytes(data[start + 26:start + 28], "little")
    extra_len = int.from_bytes(data[start + 28:start + 30], "little")
    data[start + 30 + name_len + extra_len + 130] ^= 0xFF  # past the 128-byte .npy header
    bad = tmp_path / "crc.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="corrupt"):
        fn.load(bad)


def test_archive_member_that_is_not_an_array(saved, tmp_path):
    path = tmp_path / "b.npz"
    path.write_bytes(saved[0].read_bytes())
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("notes.txt", "hello")
    with pytest.raises(FormatError, match="'notes.txt' of the archive is not a NumPy array"):
        fn.load(path)


def test_never_unpickles(saved, tmp_path):
    """An object array would need pickle to load: it is refused, and nothing runs."""
    _, desc, arrays = saved
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    arrays["layers.0.W"] = np.array([Evil()], dtype=object)
    path = tmp_path / "evil.npz"
    with open(path, "wb") as f:
        np.savez(f, description=np.frombuffer(json.dumps(desc).encode(), dtype=np.uint8),
                 allow_pickle=True, **arrays)
    with pytest.raises(FormatError, match="'layers.0.W' holds Python objects"):
        fn.load(path)
    assert not marker.exists()


# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------

def _leftovers(directory, keep):
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


@pytest.mark.parametrize("where", ["writer", "replace", "fsync"])
def test_interrupted_save_keeps_old_file(tmp_path, monkeypatch, where):
    old = fn.Sequential([L.Dense(4, 3, "relu"), L.Dense(3, 2)], random_state=0)
    path = tmp_path / "model.npz"
    old.save(path)
    before = path.read_bytes()
    new = fn.Sequential([L.Dense(4, 5), L.Dense(5, 2)], random_state=1)

    def boom(*args, **kwargs):
        raise OSError("disk full (simulated)")

    if where == "writer":
        real = np.lib.format.write_array
        calls = []

        def write_some(*args, **kwargs):  # the first arrays are written, then a crash
            calls.append(1)
            if len(calls) == 3:
                raise OSError("disk full (simulated)")
            return real(*args, **kwargs)

        monkeypatch.setattr(np.lib.format, "write_array", write_some)
    elif where == "replace":
        monkeypatch.setattr(fio.os, "replace", boom)
    else:
        monkeypatch.setattr(fio.os, "fsync", boom)
    with pytest.raises(OSError, match="simulated"):
        new.save(path)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert _leftovers(tmp_path, {"model.npz"}) == []  # the temporary file is gone
    loaded = fn.load(path)
    assert np.array_equal(loaded.get_weights()[0], old.get_weights()[0])


def test_keyboard_interrupt_mid_save_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    model = fn.Sequential([L.Dense(4, 2)], random_state=0)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fio.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_and_keeps_permissions(tmp_path):
    path = tmp_path / "model.npz"
    fn.Sequential([L.Dense(4, 2)], random_state=0).save(path)
    os.chmod(path, 0o640)
    new = fn.Sequential([L.Dense(4, 3), L.Dense(3, 2)], random_state=1)
    new.save(path)
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert fn.load(path).n_params == new.n_params
    assert _leftovers(tmp_path, {"model.npz"}) == []


def test_new_file_permissions_follow_umask(tmp_path):
    old = os.umask(0o027)
    try:
        fn.Sequential([L.Dense(4, 2)]).save(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "m.npz").st_mode & 0o777 == 0o640


# --------------------------------------------------------------------------------------------
# Trainer checkpoints
# --------------------------------------------------------------------------------------------

def _make_trainer(layers_fn, optimizer, seed=3):
    model = fn.Sequential(layers_fn(), random_state=0)
    return fn.Trainer(model, optimizer=optimizer, batch_size=16, random_state=seed)


CHECKPOINT_CASES = {
    "adam_dense": (lambda: [L.Dense(64, 24, "relu"), L.Dense(24, 10)],
                   lambda: fn.optim.Adam(lr=3e-3)),
    "sgd_nesterov_dropout_rrelu": (
        lambda: [L.Dense(64, 24, "tanh"), L.Dropout(0.2), L.RReLU(), L.Dense(24, 10)],
        lambda: fn.optim.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)),
    "rmsprop_batchnorm": (lambda: [L.Dense(64, 24), L.BatchNorm(), L.PReLU(), L.Dense(24, 10)],
                          lambda: fn.optim.RMSprop(lr=1e-3)),
    "adagrad": (lambda: [L.Dense(64, 10, "softmax")], lambda: fn.optim.Adagrad(lr=0.05)),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_checkpoint_resumes_bit_identically(tmp_path, numpy_backend, digits, case):
    layers_fn, opt_fn = CHECKPOINT_CASES[case]
    X, y = digits[0][:400], digits[1][:400]

    straight = _make_trainer(layers_fn, opt_fn())
    straight.fit(X, y, epochs=4)

    first = _make_trainer(layers_fn, opt_fn())
    first.fit(X, y, epochs=2)
    path = tmp_path / "ckpt.npz"
    fio.save_checkpoint(first, path)
    del first
    resumed = fio.load_checkpoint(path)
    resumed.fit(X, y, epochs=2)

    assert np.array_equal(resumed.model.flat_params, straight.model.flat_params)
    assert np.array_equal(resumed.optimizer.state, straight.optimizer.state)
    assert resumed.optimizer.t == straight.optimizer.t
    for a, b in zip(resumed.model.get_buffers(), straight.model.get_buffers()):
        assert np.array_equal(a, b)


def test_checkpoint_before_any_fit(tmp_path, numpy_backend, digits):
    """Never trained: no optimiser state, stochastic layers not yet seeded by the trainer."""
    X, y = digits[0][:200], digits[1][:200]
    layers_fn = lambda: [L.Dense(64, 16, "relu"), L.Dropout(0.3), L.Dense(16, 10)]  # noqa
    a = _make_trainer(layers_fn, fn.optim.Adam())
    a.fit(X, y, epochs=2)
    b = _make_trainer(layers_fn, fn.optim.Adam())
    fio.save_checkpoint(b, tmp_path / "c.npz")
    b = fio.load_checkpoint(tmp_path / "c.npz")
    assert b.optimizer.state is None
    b.fit(X, y, epochs=2)
    assert np.array_equal(a.model.flat_params, b.model.flat_params)


def test_checkpoint_with_generator_random_state(tmp_path, numpy_backend, digits):
    X, y = digits[0][:200], digits[1][:200]

    def make():
        model = fn.Sequential([L.Dense(64, 16, "relu"), L.Dropout(0.3), L.Dense(16, 10)],
                              random_state=0)
        return fn.Trainer(model, optimizer=fn.optim.SGD(lr=0.1), batch_size=8,
                          random_state=np.random.Generator(np.random.MT19937(5)))

    a = make()
    a.fit(X, y, epochs=2)
    b = make()
    b.fit(X, y, epochs=1)
    fio.save_checkpoint(b, tmp_path / "c.npz")
    b = fio.load_checkpoint(tmp_path / "c.npz")
    b.fit(X, y, epochs=1)
    assert np.array_equal(a.model.flat_params, b.model.flat_params)


def test_checkpoint_keeps_settings(tmp_path):
    model = fn.Sequential([L.Dense(3, 1)], random_state=0)
    tr = fn.Trainer(model, loss="mse", optimizer=fn.optim.Adam(lr=0.02, beta1=0.8),
                    batch_size=None, shuffle=False, random_state=7, fast_path=False)
    fio.save_checkpoint(tr, tmp_path / "c.npz")
    back = fio.load_checkpoint(tmp_path / "c.npz")
    assert back.loss.name == "mse" and back.batch_size is None and back.shuffle is False
    assert back.random_state == 7 and back.fast_path is False and back.metrics == []
    assert isinstance(back.optimizer, fn.optim.Adam)
    assert back.optimizer.get_config() == tr.optimizer.get_config()


def test_load_reads_model_of_checkpoint_and_load_checkpoint_refuses_model(tmp_path,
                                                                          numpy_backend,
                                                                          digits):
    X, y = digits[0][:100], digits[1][:100]
    tr = _make_trainer(lambda: [L.Dense(64, 10)], fn.optim.Adam())
    tr.fit(X, y, epochs=1)
    fio.save_checkpoint(tr, tmp_path / "c.npz")
    assert np.array_equal(fn.load(tmp_path / "c.npz").predict(X), tr.model.predict(X))
    tr.model.save(tmp_path / "m.npz")
    with pytest.raises(FormatError, match="not a Trainer checkpoint"):
        fio.load_checkpoint(tmp_path / "m.npz")


def test_checkpoint_with_wrong_optimizer_state(tmp_path, numpy_backend, digits):
    X, y = digits[0][:100], digits[1][:100]
    tr = _make_trainer(lambda: [L.Dense(64, 10)], fn.optim.Adam())
    tr.fit(X, y, epochs=1)
    fio.save_checkpoint(tr, tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    desc = json.loads(arrays.pop("description").tobytes())
    arrays["optimizer.state"] = arrays["optimizer.state"][:, :-1]
    with pytest.raises(FormatError, match="'optimizer.state' has shape"):
        fio.load_checkpoint(_write(tmp_path / "b.npz", desc, arrays))
    del arrays["optimizer.state"]
    with pytest.raises(FormatError, match="missing array 'optimizer.state'"):
        fio.load_checkpoint(_write(tmp_path / "d.npz", desc, arrays))
