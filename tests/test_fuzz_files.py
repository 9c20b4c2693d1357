"""Fuzzing every file reader: real files (MNIST when ../shared/data holds it, the embedded 8x8
digits, models and checkpoints saved by fusenn), mutated by hypothesis with byte flips,
truncations, insertions, deletions and duplications, optionally with a decompression bomb
added (tens of MiB of zeros in a few kB: gzip members appended, or an extra deflated member in
a model archive), and model descriptions with any field replaced by any JSON value.

Every outcome must be a correct load or a FormatError: never another exception, never a hang,
never a large allocation (the peak of traced memory is checked on every example). Examples are
derandomized (the same on every run) and bounded to a few seconds in all.
"""
import gzip
import json
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fusenn as fn
import fusenn.io as fio
from fusenn import datasets
from fusenn import layers as L
from fusenn.errors import FormatError

from bombs import deflate_bomb, gzip_bomb, npy_header, stored_members, zip_bytes
from support import SHARED_DATA

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
#: No reader may allocate more than this on any mutated file (the files are a few kB).
PEAK_LIMIT = 32 << 20


# --------------------------------------------------------------------------------------------
# The corpus: small real files
# --------------------------------------------------------------------------------------------

def _idx(arr):
    header = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _real_idx_pair(n=12):
    """(images IDX bytes, labels IDX bytes) of the first ``n`` real images: MNIST's test set
    when it is on hand, else the embedded 8x8 digits written as IDX."""
    images_gz = SHARED_DATA / "t10k-images-idx3-ubyte.gz"
    labels_gz = SHARED_DATA / "t10k-labels-idx1-ubyte.gz"
    if images_gz.is_file() and labels_gz.is_file():
        images = gzip.decompress(images_gz.read_bytes())
        labels = gzip.decompress(labels_gz.read_bytes())
        rows, cols = struct.unpack(">2I", images[8:16])
        return (images[:4] + struct.pack(">3I", n, rows, cols) + images[16:16 + n * rows * cols],
                labels[:4] + struct.pack(">I", n) + labels[8:8 + n])
    X, y = datasets.load_digits()
    return _idx((X[:n] * 16).reshape(n, 8, 8)), _idx(y[:n])


def _digits_csv(n=12):
    from importlib import resources

    data = resources.files("fusenn").joinpath("data", "optdigits-8x8.csv.gz").read_bytes()
    return b"\n".join(gzip.decompress(data).splitlines()[:n]) + b"\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    directory = tmp_path_factory.mktemp("corpus")
    images, labels = _real_idx_pair()
    model = fn.Sequential([L.Dense(5, 6, "tanh"), L.BatchNorm(), L.PReLU(), L.Dropout(0.2),
                           L.Swish(1.5), L.Dense(6, 4, fn.activations.get("elu", alpha=0.5)),
                           L.Maxout(4, 3, k=2)], random_state=0)
    model.save(directory / "model.npz")
    X = np.random.default_rng(0).normal(size=(32, 5)).astype(np.float32)
    y = np.arange(32) % 3
    with fn.use_backend("numpy"):
        trainer = fn.Trainer(model, optimizer=fn.optim.Adam(), batch_size=8, random_state=1)
        trainer.fit(X, y, epochs=1)
    fio.save_checkpoint(trainer, directory / "checkpoint.npz")
    # The corpus itself loads (so that the mutations, not the corpus, make any failure).
    assert datasets.read_idx(_write_to(directory / "ok.idx", images)).shape[0] == 12
    assert datasets.load_digits(path=_write_to(directory / "ok.csv", _digits_csv())).X.shape \
        == (12, 64)
    fn.load(directory / "model.npz")
    fio.load_checkpoint(directory / "checkpoint.npz")
    return {"images": images, "labels": labels, "csv": _digits_csv(),
            "model": (directory / "model.npz").read_bytes(),
            "checkpoint": (directory / "checkpoint.npz").read_bytes(), "dir": directory}


@pytest.fixture(scope="module", autouse=True)
def traced():
    tracemalloc.start()
    yield
    tracemalloc.stop()


# --------------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------------

_where = st.floats(0, 1, exclude_max=True)
_mutation = st.one_of(
    st.tuples(st.just("flip"), _where, st.integers(1, 255)),
    st.tuples(st.just("set"), _where, st.sampled_from([0, 1, 0x7F, 0x80, 0xFF])),
    st.tuples(st.just("truncate"), _where),
    st.tuples(st.just("insert"), _where, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), _where, st.integers(1, 64)),
    st.tuples(st.just("duplicate"), _where, st.integers(1, 64)),
)
mutations = st.lists(_mutation, max_size=4)
#: MiB of zeros a bomb adds (0: none); more than PEAK_LIMIT, so inflating it all is caught.
bombs = st.sampled_from([0, 0, 48])


def mutate(data, ops):
    data = bytearray(data)
    for op, where, *arg in ops:
        i = int(where * len(data)) if data else 0
        if op == "flip" and data:
            data[i] ^= arg[0]
        elif op == "set" and data:
            data[i] = arg[0]
        elif op == "truncate":
            del data[i:]
        elif op == "insert":
            data[i:i] = arg[0]
        elif op == "delete":
            del data[i:i + arg[0]]
        elif op == "duplicate":
            data[i:i] = data[i:i + arg[0]]
    return bytes(data)


def outcome(call):
    """Run ``call``: it must return or raise FormatError, within the memory limit."""
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        result = call()
    except FormatError as exc:
        assert str(exc), "a FormatError must say what is wrong"
        result = exc
    peak = tracemalloc.get_traced_memory()[1] - base
    assert peak < PEAK_LIMIT, f"{peak / 2**20:.0f} MiB allocated"
    return result


def _write_to(path, data):
    path.write_bytes(data)
    return path


def _write(corpus, name, data):
    return _write_to(corpus["dir"] / name, data)


# --------------------------------------------------------------------------------------------
# IDX files and load_mnist
# --------------------------------------------------------------------------------------------

@FUZZ
@given(ops=mutations, which=st.sampled_from(["images", "labels"]), compress=st.booleans(),
       bomb=bombs)
def test_fuzz_read_idx(corpus, ops, which, compress, bomb):
    original = corpus[which]
    data = mutate(gzip.compress(original, mtime=0) if compress else original, ops)
    if compress and bomb:
        data += gzip_bomb(b"", bomb)
    got = outcome(lambda: datasets.read_idx(_write(corpus, "fuzz.idx", data)))
    if isinstance(got, np.ndarray):  # a correct load: the header's shape, all the data
        assert got.size * got.itemsize <= max(len(original), len(data)) * 2


@FUZZ
@given(image_ops=st.lists(_mutation, max_size=3), label_ops=st.lists(_mutation, max_size=3),
       compress=st.booleans(), bomb=bombs)
def test_fuzz_load_mnist(corpus, image_ops, label_ops, compress, bomb):
    directory = corpus["dir"] / "mnist"
    directory.mkdir(exist_ok=True)
    ext = ".gz" if compress else ""
    for which, ops in (("images", image_ops), ("labels", label_ops)):
        data = gzip.compress(corpus[which], mtime=0) if compress else corpus[which]
        for stale in directory.iterdir():
            if which in stale.name:
                stale.unlink()
        data = mutate(data, ops) + (gzip_bomb(b"", bomb) if compress and bomb else b"")
        (directory / f"t10k-{which}-idx{3 if which == 'images' else 1}-ubyte{ext}").write_bytes(
            data)
    got = outcome(lambda: datasets.load_mnist(directory))
    if not isinstance(got, FormatError):
        X, y = got
        assert X.shape[0] == y.shape[0] and X.min() >= 0 and X.max() <= 1


# --------------------------------------------------------------------------------------------
# The 8x8 digits CSV
# --------------------------------------------------------------------------------------------

@FUZZ
@given(ops=mutations, compress=st.booleans(), bomb=bombs)
def test_fuzz_load_digits(corpus, ops, compress, bomb):
    data = corpus["csv"]
    data = mutate(gzip.compress(data, mtime=0) if compress else data, ops)
    if compress and bomb:
        data += gzip_bomb(b"", bomb)
    got = outcome(lambda: datasets.load_digits(path=_write(corpus, "fuzz.csv", data)))
    if not isinstance(got, FormatError):
        X, y = got
        assert X.shape[1] == 64 and np.all((0 <= X) & (X <= 1)) and set(y) <= set(range(10))


# --------------------------------------------------------------------------------------------
# Models and checkpoints: bytes, and descriptions
# --------------------------------------------------------------------------------------------

def _check_model(model):
    out = model.forward(np.ones((2, model.n_in), dtype=model.dtype))
    assert out.shape == (2, model.n_out) and np.all(np.isfinite(out) | np.isnan(out))


@FUZZ
@given(ops=mutations, which=st.sampled_from(["model", "checkpoint"]),
       reader=st.sampled_from(["load", "load_checkpoint", "read_description"]), bomb=bombs,
       bomb_name=st.sampled_from(["extra", "layers.0.W"]))
def test_fuzz_model_files(corpus, ops, which, reader, bomb, bomb_name):
    data = corpus[which]
    if bomb:  # an extra member, or one replacing a real array, inflating to `bomb` MiB
        raw, crc, size = deflate_bomb(npy_header((bomb << 20,), np.uint8), bomb)
        data = zip_bytes([m for m in stored_members(data) if m[0] != bomb_name + ".npy"]
                         + [(bomb_name + ".npy", 8, raw, crc, size)])
    path = _write(corpus, "fuzz.npz", mutate(data, ops))
    read = {"load": fn.load, "load_checkpoint": fio.load_checkpoint,
            "read_description": fio.read_description}[reader]
    got = outcome(lambda: read(path))
    if isinstance(got, fn.Sequential):
        _check_model(got)
    elif isinstance(got, fn.Trainer):
        _check_model(got.model)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.sampled_from([0, 1, -1, 2**31])
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
    | st.sampled_from(["relu", "PCG64", "MT19937", "<u4", "O", "auto", "generator", "Dense",
                       "BatchNorm", "optimizer.state", "layers.0.W", "float64", "1.0"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                               max_size=4),
    max_leaves=12)


def _paths(node, prefix=()):
    """Every path (tuple of keys) in a JSON tree, the root excluded."""
    items = (node.items() if isinstance(node, dict)
             else enumerate(node) if isinstance(node, list) else ())
    for key, value in items:
        yield prefix + (key,)
        yield from _paths(value, prefix + (key,))


@FUZZ
@given(which=st.sampled_from(["model", "checkpoint"]), pick=_where, value=_json,
       delete=st.booleans())
def test_fuzz_descriptions(corpus, which, pick, value, delete):
    """Any field of a real description replaced by any JSON value, or deleted: a correct load
    or a FormatError."""
    original = _write(corpus, "original.npz", corpus[which])
    with np.load(original, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    desc = json.loads(arrays.pop("description").tobytes())
    paths = sorted(_paths(desc), key=repr)
    where = paths[int(pick * len(paths))]
    node = desc
    for key in where[:-1]:
        node = node[key]
    if delete and isinstance(node, dict):
        del node[where[-1]]
    else:
        node[where[-1]] = value
    path = corpus["dir"] / "fuzz.npz"
    with open(path, "wb") as f:
        np.savez(f, description=np.frombuffer(json.dumps(desc).encode(), dtype=np.uint8),
                 **arrays)
    read = fio.load_checkpoint if which == "checkpoint" else fn.load
    got = outcome(lambda: read(path))
    if not isinstance(got, FormatError):
        _check_model(got.model if which == "checkpoint" else got)
