"""Saving and loading: round trips of every layer type, refused files, atomic writes, and
Trainer checkpoints that resume training bit for bit."""
import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

from support import bad_input
import fusenn as fn
import fusenn.io as fio
from fusenn import layers as L
from fusenn.errors import FormatError, FusennError, SaveError

from bombs import deflate_bomb, npy_header, stored_members, zip_bytes


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
    with bad_input(TypeError, match="Sequential"):
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


# --------------------------------------------------------------------------------------------
# Where save writes: regular files and new paths only, symbolic links followed
# --------------------------------------------------------------------------------------------


TMP_NAME = re.compile(r"\A\.(?P<name>.+)\.fusenn-tmp-(?P<pid>[0-9]+)-[0-9a-f]{8}\Z")


def _small_model(seed=0, width=3):
    return fn.Sequential([L.Dense(4, width, "relu"), L.Dense(width, 2)], random_state=seed)


SAVERS = {
    "model": lambda target: _small_model(1).save(target),
    "checkpoint": lambda target: fio.save_checkpoint(fn.Trainer(_small_model(1)), target),
}


@pytest.mark.parametrize("saver", sorted(SAVERS))
def test_save_refuses_fifo(tmp_path, saver):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    with pytest.raises(SaveError, match=r"pipe.npz: it is a named pipe \(FIFO\)") as info:
        SAVERS[saver](fifo)
    assert isinstance(info.value, OSError) and isinstance(info.value, FusennError)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still the pipe, not replaced by a file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.npz"]  # no temporary left


def test_save_refuses_socket(tmp_path):
    path = tmp_path / "s.npz"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        with pytest.raises(SaveError, match="it is a socket"):
            _small_model().save(path)
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
    finally:
        sock.close()


def test_save_refuses_directory(tmp_path):
    (tmp_path / "d.npz").mkdir()
    (tmp_path / "d.npz" / "inside").write_text("kept")
    with pytest.raises(SaveError, match="it is a directory"):
        _small_model().save(tmp_path / "d.npz")
    assert (tmp_path / "d.npz" / "inside").read_text() == "kept"


def test_save_refuses_device_node(tmp_path, monkeypatch):
    """A device node cannot be made without root, so os.lstat reports one for the path
    (never a real device): nothing may be written or renamed over it."""
    path = str(tmp_path / "dev.npz")
    real_lstat = os.lstat

    def lstat(p, *args, **kwargs):
        if os.fspath(p) == path:
            return os.stat_result((stat.S_IFCHR | 0o666, 1, 1, 1, 0, 0, 0, 0, 0, 0))
        return real_lstat(p, *args, **kwargs)

    def replace(*args):
        raise AssertionError("os.replace must not be reached")

    monkeypatch.setattr(fio.os, "lstat", lstat)
    monkeypatch.setattr(fio.os, "replace", replace)
    with pytest.raises(SaveError, match="dev.npz: it is a device node"):
        _small_model().save(path)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_symlink_to_fifo_and_symlink_loops(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    os.symlink("pipe", tmp_path / "link.npz")
    with pytest.raises(SaveError, match="named pipe.*points to"):
        _small_model().save(tmp_path / "link.npz")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe").st_mode)
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(SaveError, match="too many levels of symbolic links"):
        _small_model().save(tmp_path / "a")
    assert os.path.islink(tmp_path / "a") and os.path.islink(tmp_path / "b")


@pytest.mark.parametrize("saver", sorted(SAVERS))
def test_save_through_symlink_updates_its_target(tmp_path, saver):
    (tmp_path / "store").mkdir()
    (tmp_path / "links").mkdir()
    real = tmp_path / "store" / "real.npz"
    _small_model(0, width=5).save(real)
    os.chmod(real, 0o640)
    link = tmp_path / "links" / "current.npz"
    os.symlink("../store/real.npz", link)
    os.symlink(link, tmp_path / "links" / "chained.npz")  # a link to the link

    SAVERS[saver](tmp_path / "links" / "chained.npz")
    assert os.readlink(link) == "../store/real.npz"  # both links are still links
    assert os.path.islink(tmp_path / "links" / "chained.npz")
    assert fn.load(real).n_params == _small_model(1).n_params  # the target was updated
    assert np.array_equal(fn.load(real).get_weights()[0], _small_model(1).get_weights()[0])
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o640
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["real.npz"]
    assert sorted(p.name for p in (tmp_path / "links").iterdir()) == ["chained.npz",
                                                                      "current.npz"]


def test_save_through_dangling_symlink_creates_its_target(tmp_path):
    os.symlink("new.npz", tmp_path / "link.npz")
    _small_model().save(tmp_path / "link.npz")
    assert os.path.islink(tmp_path / "link.npz")
    assert (tmp_path / "new.npz").is_file() and not os.path.islink(tmp_path / "new.npz")
    assert fn.load(tmp_path / "link.npz").n_params == _small_model().n_params


def test_temporary_file_is_named_recognisably(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def replace(src, dst):
        seen.append((src, dst))
        return real_replace(src, dst)

    monkeypatch.setattr(fio.os, "replace", replace)
    _small_model().save(tmp_path / "model.npz")
    (src, dst), = seen
    match = TMP_NAME.match(os.path.basename(src))
    assert match and match.group("name") == "model.npz"
    assert int(match.group("pid")) == os.getpid()
    assert os.path.dirname(src) == str(tmp_path) and dst == str(tmp_path / "model.npz")


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_killed_saves_are_removed(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    old = time.time() - 2 * fio.STALE_TEMPORARY_SECONDS
    stale = [f".model.npz.fusenn-tmp-{dead}-0123abcd",      # its process is gone
             f".other.npz.fusenn-tmp-{alive}-89abcdef"]     # untouched for too long
    kept = [f".model.npz.fusenn-tmp-{alive}-00aa11bb",      # a save running now
            ".model.npz.abc123.tmp",                        # not fusenn's pattern
            f"model.npz.fusenn-tmp-{dead}-0123abcd",        # no leading dot
            f".model.npz.fusenn-tmp-{dead}-0123abcz",       # not hex
            f".model.npz.fusenn-tmp-{dead}-0123abcd.bak",   # something after it
            "notes.txt"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"partial")
    os.utime(tmp_path / stale[1], (old, old))
    (tmp_path / f".dir.fusenn-tmp-{dead}-0123abcd").mkdir()  # a directory: not a temporary
    os.symlink("notes.txt", tmp_path / f".link.fusenn-tmp-{dead}-0123abcd")  # nor a link

    _small_model().save(tmp_path / "model.npz")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(kept + ["model.npz", f".dir.fusenn-tmp-{dead}-0123abcd",
                                   f".link.fusenn-tmp-{dead}-0123abcd"])
    assert (tmp_path / "notes.txt").read_bytes() == b"partial"


def test_load_refuses_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    outcome = []

    def run():
        try:
            fn.load(fifo)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # unblock the reader that opened the pipe, then fail
        with open(fifo, "wb"):
            pass
        thread.join(10)
        pytest.fail("fn.load blocked on a FIFO")
    assert isinstance(outcome[0], FormatError) and "named pipe" in str(outcome[0])


# --------------------------------------------------------------------------------------------
# Reading is bounded: decompression bombs and absurd declared sizes
# --------------------------------------------------------------------------------------------

def _peak_of(fn_, *args):
    """(exception raised by fn_(*args), peak traced memory in bytes)."""
    tracemalloc.start()
    try:
        fn_(*args)
    except Exception as exc:  # noqa: BLE001 - returned for the test to inspect
        return exc, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return None, None


GIB_MIB = 1024  # a GiB, in MiB


def test_extra_gigabyte_member_is_refused_without_inflating(saved, tmp_path):
    raw, crc, size = deflate_bomb(npy_header((1 << 30,), np.uint8), GIB_MIB)
    data = zip_bytes(stored_members(saved[0]) + [("extra.npy", 8, raw, crc, size)])
    path = tmp_path / "bomb.npz"
    path.write_bytes(data)
    assert len(data) < 2 << 20  # about 1 MB on disk
    exc, peak = _peak_of(fn.load, path)
    assert isinstance(exc, FormatError) and "unexpected extra array(s) 'extra'" in str(exc)
    assert peak < 8 << 20


def test_gigabyte_member_under_a_valid_name_is_refused_without_inflating(saved, tmp_path):
    members = stored_members(saved[0])
    raw, crc, size = deflate_bomb(npy_header((4, 3), np.float32), GIB_MIB)
    members = [m if m[0] != "layers.0.W.npy" else ("layers.0.W.npy", 8, raw, crc, size)
               for m in members]
    path = tmp_path / "bomb.npz"
    path.write_bytes(zip_bytes(members))
    exc, peak = _peak_of(fn.load, path)
    assert isinstance(exc, FormatError) and "'layers.0.W'" in str(exc), exc
    assert peak < 8 << 20


def test_absurd_declared_layer_is_refused_before_anything_is_built(saved, tmp_path):
    """A Dense of 10^6 x 10^6 whose .npy header agrees (10^12 elements) but whose member
    holds only the header: no layer is built, nothing of that size is allocated."""
    _, desc, arrays = saved
    members = stored_members(saved[0])
    desc = json.loads(json.dumps(desc))
    desc["layers"] = [{"class": "Dense", "config": {"n_in": 10**6, "n_out": 10**6,
                                                    "activation": None},
                       "params": ["W", "b"], "buffers": []}]
    for key in ("n_in", "n_out", "n_params"):
        desc.pop(key)
    text = json.dumps(desc).encode()
    header = npy_header((text.__len__(),), np.uint8)
    description = header + text
    W = npy_header((10**6, 10**6), np.float32)
    b = npy_header((10**6,), np.float32) + bytes(4 * 10**6)
    path = tmp_path / "huge.npz"
    path.write_bytes(zip_bytes([
        ("description.npy", 0, description, zlib.crc32(description), len(description)),
        ("layers.0.W.npy", 0, W, zlib.crc32(W), len(W)),
        ("layers.0.b.npy", 0, b, zlib.crc32(b), len(b))]))
    del members, arrays
    exc, peak = _peak_of(fn.load, path)
    assert isinstance(exc, FormatError) and "'layers.0.W'" in str(exc), exc
    assert peak < 16 << 20


def test_load_draws_no_random_initial_weights(saved, monkeypatch):
    """Loaded layers are built from the file's arrays, not randomly initialised first; the
    loaded layers keep the initialiser a fresh layer has (for a later re-initialisation)."""
    from fusenn import initializers

    def no_draws(self, shape, rng):
        raise AssertionError("fn.load drew random initial weights")

    monkeypatch.setattr(initializers.VarianceScaling, "sample", no_draws)
    model = fn.load(saved[0])
    monkeypatch.undo()
    fresh = [L.Dense(4, 3, "relu"), L.Dense(3, 2)]
    for got, want in zip([model.layers[0], model.layers[2]], fresh):
        assert got.init.get_config() == want.init.get_config()
    maxout = fn.Sequential([L.Maxout(4, 2, k=3)], random_state=0)
    maxout.save(saved[0].parent / "maxout.npz")
    assert (fn.load(saved[0].parent / "maxout.npz").layers[0].init.get_config()
            == L.Maxout(4, 2).init.get_config())


def test_every_layer_type_has_a_reading_plan():
    """The reader checks each layer type's configuration field by field: a new layer type
    needs its entry there."""
    assert set(fio._LAYER_FIELDS) == set(L.LAYERS)
    samples = {"Dense": L.Dense(2, 3), "Activation": L.Activation("relu"),
               "Dropout": L.Dropout(), "BatchNorm": L.BatchNorm(3), "PReLU": L.PReLU(3),
               "Swish": L.Swish(), "RReLU": L.RReLU(), "Maxout": L.Maxout(2, 3)}
    for kind, layer in samples.items():
        assert set(layer.get_config()) == set(fio._LAYER_FIELDS[kind]), kind


# --------------------------------------------------------------------------------------------
# The description is validated completely: every malformed field is a FormatError
# --------------------------------------------------------------------------------------------

@pytest.fixture
def saved_checkpoint(tmp_path, numpy_backend, digits):
    """A checkpoint of a fitted Trainer (Adam, Dropout): (path, description, arrays)."""
    X, y = digits[0][:64], digits[1][:64]
    model = fn.Sequential([L.Dense(64, 8, "relu"), L.Dropout(0.2), L.BatchNorm(),
                           L.Dense(8, 10)], random_state=0)
    trainer = fn.Trainer(model, optimizer=fn.optim.Adam(), batch_size=16, random_state=0)
    trainer.fit(X, y, epochs=1)
    path = tmp_path / "ckpt.npz"
    fio.save_checkpoint(trainer, path)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return path, json.loads(arrays.pop("description").tobytes()), arrays


def _set(desc, where, value):
    """``desc`` with the field at ``where`` (a list of keys) set to ``value``, or deleted
    when value is the class _DELETE."""
    desc = json.loads(json.dumps(desc))
    node = desc
    for key in where[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[where[-1]]
    else:
        node[where[-1]] = value
    return desc


class _DELETE:
    pass


MODEL_CASES = {
    "activation_without_name": (["layers", 0, "config", "activation"], {"alpha": 0.2},
                                "layer 0 \\(Dense\\).*'name'"),
    "unknown_top_level_field": (["colour"], "red", "unknown field.*'colour'"),
    "unknown_layer_field": (["layers", 0, "extra"], 1, "layer 0 has unknown field.*'extra'"),
    "string_size": (["layers", 0, "config", "n_in"], "4", "layer 0 \\(Dense\\).*n_in is '4'"),
    "float_size": (["layers", 0, "config", "n_out"], 3.0, "n_out is 3.0"),
    "bool_size": (["layers", 0, "config", "n_out"], True, "n_out is True"),
    "absurd_size": (["layers", 0, "config", "n_out"], 2**40, "n_out is 1099511627776"),
    "param_names_disagree": (["layers", 0, "params"], ["W"], "lists params \\['W'\\]"),
    "n_params_disagrees": (["n_params"], 7, "n_params is 7 but the layers give"),
    "momentum_not_a_number": (["layers", 1, "config", "momentum"], "0.1", "momentum is '0.1'"),
    "format_version_not_a_string": (["format_version"], 1.0, "format_version 1.0"),
}


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_malformed_model_description(saved, tmp_path, case):
    _, desc, arrays = saved
    where, value, match = MODEL_CASES[case]
    with pytest.raises(FormatError, match=match) as info:
        fn.load(_write(tmp_path / "b.npz", _set(desc, where, value), arrays))
    assert "b.npz" in str(info.value)


@pytest.mark.parametrize("raw,match", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"format": "fusenn-model", "format_version": "1.1", "x": ' + b"[" * 100_000
     + b"]" * 100_000 + b"}", "nested too deeply"),
    (b'{"format": NaN}', "non-finite number NaN"),
    (b'{"format": 1e999}', "out of range"),
])
def test_unreadable_json(saved, tmp_path, raw, match):
    _, desc, arrays = saved
    with pytest.raises(FormatError, match=match):
        fn.load(_write(tmp_path / "b.npz", desc, arrays, raw_description=raw))


def _rng(desc, key="rng"):
    return ["trainer", key] if key == "rng" else ["trainer", "layer_rngs", key]


CHECKPOINT_CASES_BAD = {
    "negative_step": (["optimizer", "t"], -5, "the optimizer 't' is -5"),
    "step_not_an_int": (["optimizer", "t"], 2.5, "'t' is 2.5"),
    "shuffle_a_string": (["trainer", "shuffle"], "no", "'shuffle' is 'no'"),
    "batch_size_zero": (["trainer", "batch_size"], 0, "'batch_size' is 0"),
    "negative_seed": (["trainer", "random_state"], -1, "'random_state' is -1"),
    "unknown_loss": (["trainer", "loss"], "hinge", "unknown loss 'hinge'"),
    "unknown_optimizer": (["optimizer", "name"], "lbfgs", "unknown optimizer 'lbfgs'"),
    "optimizer_config_bad": (["optimizer", "config", "beta1"], 2.0, "beta1"),
    "optimizer_config_string": (["optimizer", "config", "lr"], "fast", "an object of numbers"),
    "metrics_not_a_list": (["trainer", "metrics"], "accuracy", "'metrics' is 'accuracy'"),
    "fast_path_bad": (["trainer", "fast_path"], True, "'fast_path' is True"),
    "unknown_trainer_field": (["trainer", "clip"], 1.0, "unknown field.*'clip'"),
    "rng_bogus_generator": (["trainer", "rng", "bit_generator"], "Evil",
                            "bit generator 'Evil'"),
    "rng_state_missing": (["trainer", "rng", "state"], _DELETE, "state is invalid"),
    "rng_state_negative": (["trainer", "rng", "state", "state"], -1, "state is invalid"),
    "rng_state_huge": (["trainer", "rng", "state", "inc"], 2**200, "state is invalid"),
    "rng_state_string": (["trainer", "rng", "has_uint32"], "x", "state is invalid"),
    "layer_rng_not_stochastic": (["trainer", "layer_rngs", "0"], {}, "layer_rngs names layer "
                                                                    "'0'"),
    "layer_rng_bogus": (["trainer", "layer_rngs", "1", "bit_generator"], 5,
                        "layer 1's rng has bit generator 5"),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES_BAD))
def test_malformed_checkpoint_description(saved_checkpoint, tmp_path, case):
    _, desc, arrays = saved_checkpoint
    where, value, match = CHECKPOINT_CASES_BAD[case]
    bad = _write(tmp_path / "b.npz", _set(desc, where, value), arrays)
    with pytest.raises(FormatError, match=match):
        fio.load_checkpoint(bad)
    with pytest.raises(FormatError, match=match):  # the whole file is checked by load too
        fn.load(bad)


MT_KEY = {"__ndarray__": [1] * 624, "dtype": "<u4"}


@pytest.mark.parametrize("state,match", [
    ({"bit_generator": "MT19937", "state": {"key": MT_KEY, "pos": 10**6}}, "state is invalid"),
    ({"bit_generator": "MT19937", "state": {"key": {**MT_KEY, "dtype": "O"}, "pos": 0}},
     "state is invalid"),
    ({"bit_generator": "MT19937", "state": {"key": {**MT_KEY, "dtype": "no such"},
                                            "pos": 0}}, "state is invalid"),
    ({"bit_generator": "MT19937", "state": {"key": {"__ndarray__": [1] * 3, "dtype": "<u4"},
                                            "pos": 0}}, "state is invalid"),
    ({"bit_generator": "SFC64", "state": {"state": {"__ndarray__": [2**64, 0, 0, 0],
                                                    "dtype": "<u8"}},
      "has_uint32": 0, "uinteger": 0}, "state is invalid"),
])
def test_bogus_rng_states(saved_checkpoint, tmp_path, state, match):
    _, desc, arrays = saved_checkpoint
    valid = fio._jsonable(np.random.MT19937(3).state)  # a valid state of the same kind loads
    trainer = fio.load_checkpoint(_write(tmp_path / "a.npz",
                                         _set(desc, ["trainer", "rng"], valid), arrays))
    assert trainer.rng.random() == np.random.Generator(np.random.MT19937(3)).random()
    with pytest.raises(FormatError, match=match):
        fio.load_checkpoint(_write(tmp_path / "b.npz", _set(desc, ["trainer", "rng"], state),
                                   arrays))


@pytest.mark.parametrize("key,change,match", [
    ("layers.2.running_var", lambda a: np.where(np.arange(a.size) == 1, np.nan, a),
     "'layers.2.running_var' \\(BatchNorm\\(8\\).running_var\\) holds NaN"),
    ("layers.2.running_var", lambda a: a - a.max() - 1, "running_var.*negative values"),
    ("layers.2.running_mean", lambda a: np.full_like(a, np.inf), "running_mean.*NaN or inf"),
    ("optimizer.state", lambda a: np.vstack([a[0], -np.abs(a[1]) - 1]),
     "'optimizer.state' holds negative values"),
    ("optimizer.state", lambda a: np.vstack([np.full_like(a[0], np.nan), a[1]]),
     "'optimizer.state' holds NaN"),
])
def test_impossible_array_values(saved_checkpoint, tmp_path, key, change, match):
    _, desc, arrays = saved_checkpoint
    arrays = dict(arrays)
    arrays[key] = change(arrays[key]).astype(arrays[key].dtype)
    with pytest.raises(FormatError, match=match):
        fio.load_checkpoint(_write(tmp_path / "b.npz", desc, arrays))
