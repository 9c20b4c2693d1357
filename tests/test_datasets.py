"""Tests for fusenn.datasets: the real MNIST test files, small IDX files written here (valid
and broken), the embedded 8x8 digits, XOR and train_test_split."""
import gzip
import io
import re
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import fusenn
from fusenn import datasets
from fusenn.errors import FormatError, ShapeError

from bombs import gzip_bomb
# The tests run from a clone at some directory X with the shared folder at X/../shared.
from support import SHARED_DATA, bad_input
MNIST_IMAGES = SHARED_DATA / "t10k-images-idx3-ubyte.gz"
MNIST_LABELS = SHARED_DATA / "t10k-labels-idx1-ubyte.gz"
needs_mnist = pytest.mark.skipif(not (MNIST_IMAGES.is_file() and MNIST_LABELS.is_file()),
                                 reason=f"MNIST test files not found in {SHARED_DATA} "
                                        "(optional: README, Optional data)")


# --------------------------------------------------------------------------------------------
# Writing small IDX files
# --------------------------------------------------------------------------------------------

def idx_bytes(arr, type_code=0x08):
    """The IDX encoding of ``arr``: magic (0, 0, type, ndim), big-endian dims, data."""
    be = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    arr = np.asarray(arr)
    header = bytes([0, 0, type_code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(be[type_code]).tobytes()


def write(path, data, compress=False):
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def small_set(n=5, rows=3, cols=4, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return images, labels


def write_set(directory, prefix="t10k", compress=False, n=5, rows=3, cols=4, seed=0):
    images, labels = small_set(n, rows, cols, seed)
    ext = ".gz" if compress else ""
    write(directory / f"{prefix}-images-idx3-ubyte{ext}", idx_bytes(images), compress)
    write(directory / f"{prefix}-labels-idx1-ubyte{ext}", idx_bytes(labels), compress)
    return images, labels


# --------------------------------------------------------------------------------------------
# Real MNIST test set
# --------------------------------------------------------------------------------------------

@needs_mnist
def test_load_mnist_real_test_set():
    X, y = datasets.load_mnist(SHARED_DATA)
    assert X.shape == (10000, 784) and X.dtype == np.float32
    assert y.shape == (10000,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert y.min() == 0 and y.max() == 9 and np.unique(y).size == 10
    assert y[:5].tolist() == [7, 2, 1, 0, 4]
    assert X.flags.c_contiguous and X.flags.writeable


@needs_mnist
def test_real_files_by_path_and_read_idx():
    files = datasets.find_mnist(SHARED_DATA)
    assert files.kind == "t10k"
    assert files.images.name == MNIST_IMAGES.name and files.labels.name == MNIST_LABELS.name
    images = datasets.read_idx(MNIST_IMAGES)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    X, y = datasets.load_mnist(MNIST_IMAGES, dtype=np.float64)  # labels file found by name
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, images.reshape(10000, 784) / 255.0)
    np.testing.assert_array_equal(y, datasets.read_idx(MNIST_LABELS))


def test_fusenn_datasets_attribute():
    assert fusenn.datasets is datasets


# --------------------------------------------------------------------------------------------
# Valid IDX files written here
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_load_mnist_small_valid(tmp_path, compress):
    images, labels = write_set(tmp_path, compress=compress)
    X, y = datasets.load_mnist(tmp_path)
    assert X.shape == (5, 12) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(X, images.reshape(5, 12) / np.float32(255), rtol=1e-7)
    assert X[0, 0] == 0.0 and X[0, 1] == 1.0
    np.testing.assert_array_equal(y, labels)


def test_gzip_detected_by_magic_not_name(tmp_path):
    images, _ = small_set()
    gz_named_raw = write(tmp_path / "a.gz", idx_bytes(images))
    raw_named_gz = write(tmp_path / "b-idx3-ubyte", idx_bytes(images), compress=True)
    np.testing.assert_array_equal(datasets.read_idx(gz_named_raw), images)
    np.testing.assert_array_equal(datasets.read_idx(raw_named_gz), images)


@pytest.mark.parametrize("type_code,dtype", [(0x08, np.uint8), (0x09, np.int8),
                                             (0x0B, np.int16), (0x0C, np.int32),
                                             (0x0D, np.float32), (0x0E, np.float64)])
def test_read_idx_types(tmp_path, type_code, dtype):
    arr = np.arange(24).reshape(2, 3, 4).astype(dtype) - (0 if type_code == 0x08 else 7)
    out = datasets.read_idx(write(tmp_path / "x.idx", idx_bytes(arr, type_code)))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative and out.flags.writeable
    np.testing.assert_array_equal(out, arr)


def test_read_idx_file_object(tmp_path):
    arr = np.arange(6, dtype=np.uint8)
    path = write(tmp_path / "x.idx", idx_bytes(arr), compress=True)
    with open(path, "rb") as f:
        np.testing.assert_array_equal(datasets.read_idx(f), arr)


def test_find_mnist_prefers_train_when_present(tmp_path):
    write_set(tmp_path, "t10k", n=4)
    assert datasets.find_mnist(tmp_path).kind == "t10k"
    train_images, _ = write_set(tmp_path, "train", compress=True, n=6, seed=1)
    files = datasets.find_mnist(tmp_path)
    assert files.kind == "train" and files.images.name == "train-images-idx3-ubyte.gz"
    X, _ = datasets.load_mnist(tmp_path)
    assert X.shape == (6, 12)
    assert datasets.load_mnist(tmp_path, kind="t10k").X.shape == (4, 12)
    assert datasets.load_mnist(tmp_path, kind="test").X.shape == (4, 12)
    assert datasets.find_mnist(tmp_path, "t10k").kind == "t10k"


def test_find_mnist_half_a_train_set_is_an_error(tmp_path):
    write_set(tmp_path, "t10k")
    images, _ = small_set()
    write(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(images), compress=True)
    with pytest.raises(FileNotFoundError, match="no MNIST train labels file"):
        datasets.load_mnist(tmp_path)
    assert datasets.load_mnist(tmp_path, kind="t10k").X.shape == (5, 12)


def test_find_mnist_dotted_names(tmp_path):
    images, labels = small_set()
    write(tmp_path / "train-images.idx3-ubyte", idx_bytes(images))
    write(tmp_path / "train-labels.idx1-ubyte", idx_bytes(labels))
    X, y = datasets.load_mnist(tmp_path, kind="train")
    assert X.shape == (5, 12)
    np.testing.assert_array_equal(y, labels)


def test_explicit_labels_file(tmp_path):
    images, labels = small_set()
    img = write(tmp_path / "imgs.bin", idx_bytes(images))
    lab = write(tmp_path / "labs.bin", idx_bytes(labels))
    X, y = datasets.load_mnist(img, labels=lab)
    np.testing.assert_array_equal(y, labels)
    with bad_input(ValueError, match="labels=PATH"):
        datasets.load_mnist(img)


# --------------------------------------------------------------------------------------------
# Broken IDX files
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_truncated_images(tmp_path, compress):
    images, labels = small_set()
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images)[:-7], compress)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels), compress)
    with pytest.raises(FormatError, match=r"t10k-images-idx3-ubyte.*truncated"):
        datasets.load_mnist(tmp_path)


def test_truncated_gzip_stream(tmp_path):
    images, labels = small_set()
    data = gzip.compress(idx_bytes(images))
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])
    write(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(labels), compress=True)
    with pytest.raises(FormatError, match=r"t10k-images-idx3-ubyte.gz.*gzip"):
        datasets.load_mnist(tmp_path)


@pytest.mark.parametrize("data,match", [
    (b"", "too short for the 4-byte magic"),
    (b"\x00\x00", "too short for the 4-byte magic"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x05", "truncated IDX header"),
    (b"PK\x03\x04" + bytes(20), "not an IDX file"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "unknown IDX data type"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
])
def test_read_idx_broken_headers(tmp_path, data, match):
    path = write(tmp_path / "broken.idx", data)
    with pytest.raises(FormatError, match=match) as info:
        datasets.read_idx(path)
    assert "broken.idx" in str(info.value)


def test_payload_too_long(tmp_path):
    path = write(tmp_path / "long.idx", idx_bytes(np.arange(6, dtype=np.uint8)) + b"\x01\x02")
    with pytest.raises(FormatError, match=r"long.idx.*too long.*2 extra"):
        datasets.read_idx(path)


def test_wrong_magic_labels_as_images(tmp_path):
    images, labels = small_set()
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(labels))  # a labels file
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels))
    with pytest.raises(FormatError, match=r"images-idx3-ubyte: wrong magic number 2049, "
                                          r"expected 2051.*looks like a labels file"):
        datasets.load_mnist(tmp_path)


def test_wrong_dims_images(tmp_path):
    # 2-D "images" (magic 2050) and float images (magic 0x0D03) are not MNIST image files
    images, labels = small_set()
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels))
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images.reshape(5, 12)))
    with pytest.raises(FormatError, match="wrong magic number 2050, expected 2051"):
        datasets.load_mnist(tmp_path)
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images, 0x0D))
    with pytest.raises(FormatError, match="expected 2051"):
        datasets.load_mnist(tmp_path)


def test_wrong_dims_header_disagrees_with_payload(tmp_path):
    images, labels = small_set()
    data = bytearray(idx_bytes(images))
    data[8:12] = struct.pack(">I", 28)  # header says 28 rows, payload holds 3
    write(tmp_path / "t10k-images-idx3-ubyte", bytes(data))
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels))
    with pytest.raises(FormatError, match=r"truncated: header declares shape \(5, 28, 4\)"):
        datasets.load_mnist(tmp_path)


def test_wrong_magic_labels(tmp_path):
    images, labels = small_set()
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images))
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels.reshape(5, 1)))
    with pytest.raises(FormatError, match=r"labels-idx1-ubyte: wrong magic number 2050, "
                                          r"expected 2049"):
        datasets.load_mnist(tmp_path)


def test_label_count_mismatch(tmp_path):
    images, labels = small_set()
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images))
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels[:4]))
    with pytest.raises(FormatError, match=r"labels-idx1-ubyte: 4 labels but .*images-idx3-"
                                          r"ubyte holds 5 images"):
        datasets.load_mnist(tmp_path)


def test_empty_images(tmp_path):
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(np.zeros((0, 3, 4), np.uint8)))
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(0, np.uint8)))
    with pytest.raises(FormatError, match="no pixels"):
        datasets.load_mnist(tmp_path)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        datasets.load_mnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"no MNIST t10k images file.*t10k-images-idx3"):
        datasets.load_mnist(tmp_path)
    images, _ = small_set()
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images))
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        datasets.load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        datasets.load_mnist(tmp_path / "t10k-images-idx3-ubyte")  # labels derived by name
    with pytest.raises(FileNotFoundError, match="absent.idx"):
        datasets.read_idx(tmp_path / "absent.idx")
    with pytest.raises(FileNotFoundError, match="no MNIST train images"):
        datasets.find_mnist(tmp_path, kind="train")


def test_bad_kind_and_dtype(tmp_path):
    write_set(tmp_path)
    with bad_input(ValueError, match="kind must be"):
        datasets.load_mnist(tmp_path, kind="validation")
    with bad_input(TypeError, match="dtype"):
        datasets.load_mnist(tmp_path, dtype=np.int32)


# --------------------------------------------------------------------------------------------
# Embedded 8x8 digits
# --------------------------------------------------------------------------------------------

def test_load_digits():
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.all(np.isin(X * 16, np.arange(17)))
    assert np.unique(y).tolist() == list(range(10))
    assert np.bincount(y).min() > 150  # roughly balanced
    X32, y32 = datasets.load_digits(np.float32)
    assert X32.dtype == np.float32
    np.testing.assert_array_equal(X32, X.astype(np.float32))
    np.testing.assert_array_equal(y32, y)


def test_embedded_digits_ship_with_licence():
    from importlib import resources

    data = resources.files("fusenn").joinpath("data")
    readme = data.joinpath("README.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in readme and "Alpaydin" in readme and "Kaynak" in readme
    assert data.joinpath("optdigits-8x8.csv.gz").is_file()


def test_load_digits_from_path(tmp_path):
    rows = np.array([[i % 17] * 64 + [i % 10] for i in range(12)])
    text = "\n".join(",".join(map(str, r)) for r in rows).encode()
    for path, compress in ((tmp_path / "d.csv", False), (tmp_path / "d.csv.gz", True)):
        X, y = datasets.load_digits(np.float32, path=write(path, text, compress))
        assert X.shape == (12, 64) and X.dtype == np.float32
        np.testing.assert_array_equal(X[:, 0], (np.arange(12) % 17) / np.float32(16))
        np.testing.assert_array_equal(y, np.arange(12) % 10)


@pytest.mark.parametrize("text,match", [
    ("1,2,3\n", "expected 65 columns"),
    (",".join(["1"] * 64 + ["3"]) + "\n" + ",".join(["1"] * 63) + "\n", "malformed CSV"),
    (",".join(["a"] * 65) + "\n", "malformed CSV"),
    (",".join(["17"] * 64 + ["3"]) + "\n", "0..16"),
    (",".join(["1.5"] * 64 + ["3"]) + "\n", "integers"),
    (",".join(["1"] * 64 + ["10"]) + "\n", "labels must be digits"),
    ("", "no rows"),
])
def test_load_digits_malformed(tmp_path, text, match):
    path = write(tmp_path / "bad.csv", text.encode())
    with pytest.raises(FormatError, match=match) as info:
        datasets.load_digits(path=path)
    assert "bad.csv" in str(info.value)


def test_load_digits_truncated_gzip(tmp_path):
    data = gzip.compress(b"1,2\n" * 1000)
    path = tmp_path / "bad.csv.gz"
    path.write_bytes(data[:-10])
    with pytest.raises(FormatError, match="gzip"):
        datasets.load_digits(path=path)


def test_load_digits_bad_dtype():
    with bad_input(TypeError, match="dtype"):
        datasets.load_digits(np.int64)


# --------------------------------------------------------------------------------------------
# XOR
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_xor(dtype):
    X, y = datasets.xor(dtype)
    assert X.dtype == dtype and X.shape == (4, 2) and y.dtype == np.int64
    np.testing.assert_array_equal(y, np.logical_xor(X[:, 0], X[:, 1]).astype(np.int64))
    assert y.tolist() == [0, 1, 1, 0]
    d = datasets.xor()
    assert d.X is d[0] and d.y is d[1]


# --------------------------------------------------------------------------------------------
# train_test_split
# --------------------------------------------------------------------------------------------

def _data(n=100, n_features=3):
    X = np.arange(n * n_features, dtype=np.float64).reshape(n, n_features)
    y = np.arange(n) % 4
    return X, y


def test_split_shapes_and_partition():
    X, y = _data()
    X_tr, X_te, y_tr, y_te = datasets.train_test_split(X, y, test_size=0.25, random_state=0)
    assert X_tr.shape == (75, 3) and X_te.shape == (25, 3)
    assert y_tr.shape == (75,) and y_te.shape == (25,)
    ids = np.concatenate([X_tr[:, 0], X_te[:, 0]]) / 3
    assert sorted(ids.astype(int).tolist()) == list(range(100))  # a partition
    np.testing.assert_array_equal(X_tr[:, 0] / 3 % 4, y_tr)  # rows stay paired
    np.testing.assert_array_equal(X_te[:, 0] / 3 % 4, y_te)


def test_split_deterministic_and_seeded():
    X, y = _data()
    a = datasets.train_test_split(X, y, random_state=42)
    b = datasets.train_test_split(X, y, random_state=42)
    c = datasets.train_test_split(X, y, random_state=43)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1])
    g1 = datasets.train_test_split(X, y, random_state=np.random.default_rng(7))
    g2 = datasets.train_test_split(X, y, random_state=np.random.default_rng(7))
    np.testing.assert_array_equal(g1[1], g2[1])


def test_split_never_uses_global_rng():
    X, y = _data()
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    datasets.train_test_split(X, y)
    datasets.train_test_split(X, y, stratify=True)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_split_sizes():
    X, y = _data(10)
    assert datasets.train_test_split(X, y, 0.7, random_state=0)[1].shape[0] == 7
    assert datasets.train_test_split(X, y, 0.25, random_state=0)[1].shape[0] == 3  # rounded up
    assert datasets.train_test_split(X, y, 4, random_state=0)[1].shape[0] == 4


def test_split_no_shuffle_takes_the_tail():
    X, y = _data(10)
    X_tr, X_te, y_tr, y_te = datasets.train_test_split(X, y, 0.2, shuffle=False)
    np.testing.assert_array_equal(X_tr, X[:8])
    np.testing.assert_array_equal(X_te, X[8:])
    np.testing.assert_array_equal(y_te, y[8:])


def test_split_stratified_keeps_proportions():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [600, 300, 100])
    rng.shuffle(y)
    X = rng.normal(size=(1000, 2))
    X_tr, X_te, y_tr, y_te = datasets.train_test_split(X, y, 0.2, random_state=1,
                                                      stratify=True)
    assert np.bincount(y_te).tolist() == [120, 60, 20]
    assert np.bincount(y_tr).tolist() == [480, 240, 80]
    # the test set is shuffled, not grouped by class
    assert np.any(np.diff(y_te) < 0)


def test_split_stratified_uneven_and_separate_labels():
    y = np.repeat([0, 1, 2], [7, 5, 3])  # 15 samples, 5 for test: ideal 2.33, 1.67, 1.0
    X = np.arange(15)
    _, _, _, y_te = datasets.train_test_split(X, y, 5, random_state=0, stratify=True)
    assert np.bincount(y_te, minlength=3).tolist() == [2, 2, 1]
    groups = np.array(["a", "b"] * 10)
    X_tr, X_te, y_tr, y_te = datasets.train_test_split(np.arange(20), np.arange(20), 0.5,
                                                      random_state=3, stratify=groups)
    assert sorted(groups[X_te].tolist()) == ["a"] * 5 + ["b"] * 5


def test_split_stratified_digits():
    X, y = datasets.load_digits()
    _, _, y_tr, y_te = datasets.train_test_split(X, y, 0.25, random_state=0, stratify=True)
    share = np.bincount(y) / y.size
    np.testing.assert_allclose(np.bincount(y_te) / y_te.size, share, atol=0.01)
    np.testing.assert_allclose(np.bincount(y_tr) / y_tr.size, share, atol=0.01)


@pytest.mark.parametrize("test_size", [0.0, 1.0, -0.1, 1.5, 0, 10, 11, -1])
def test_split_bad_test_size(test_size):
    X, y = _data(10)
    with bad_input(ValueError, match="test_size"):
        datasets.train_test_split(X, y, test_size)


@pytest.mark.parametrize("test_size", ["0.2", None, True])
def test_split_test_size_type(test_size):
    X, y = _data(10)
    with bad_input(TypeError, match="test_size"):
        datasets.train_test_split(X, y, test_size)


def test_split_errors():
    X, y = _data(10)
    with pytest.raises(ShapeError, match="10 and 9"):
        datasets.train_test_split(X, y[:9])
    assert issubclass(ShapeError, ValueError)
    with pytest.raises(ShapeError, match="stratify"):
        datasets.train_test_split(X, y, stratify=y[:5])
    with bad_input(ValueError, match="only 1 sample"):
        datasets.train_test_split(X, np.r_[np.zeros(9, int), 1], stratify=True)
    with bad_input(ValueError, match="shuffle"):
        datasets.train_test_split(X, y, stratify=True, shuffle=False)
    with bad_input(ValueError, match="cannot split"):
        datasets.train_test_split(X[:1], y[:1])
    with bad_input(TypeError, match="random_state"):
        datasets.train_test_split(X, y, random_state=np.random.RandomState(0))


# --------------------------------------------------------------------------------------------
# Tables of one's own: read_table, as_labels, split_features_labels, load_table
# --------------------------------------------------------------------------------------------

def test_read_table_csv_header_comments_and_gzip(tmp_path):
    text = "# made by hand\nx1,x2,label\n0.5,1.5,0\n\n2.0,3.0,1  # last\n"
    plain = tmp_path / "points.csv"
    plain.write_text(text)
    packed = tmp_path / "points.csv.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    for path in (plain, str(packed)):
        X, y = datasets.read_table(path)
        assert X.dtype == np.float64 and y is None
        assert X.tolist() == [[0.5, 1.5, 0.0], [2.0, 3.0, 1.0]]


def test_read_table_npz_keeps_arrays_as_stored(tmp_path):
    X = np.arange(6, dtype=np.int32).reshape(3, 2)
    np.savez(tmp_path / "with_y.npz", X=X, y=np.array([2, 0, 1]))
    got, y = datasets.read_table(tmp_path / "with_y.npz")
    assert got.dtype == np.int32 and np.array_equal(got, X) and y.tolist() == [2, 0, 1]
    np.savez(tmp_path / "no_y.npz", X=X)
    got, y = datasets.read_table(tmp_path / "no_y.npz")
    assert np.array_equal(got, X) and y is None


@pytest.mark.parametrize("content, match", [
    (b"1,2,0\n3,oops,1\n", "malformed CSV"),
    (b"1,2,0\n3,nan,1\n", "data row 2 holds a NaN"),
    (b"# only a comment\n\n", "holds no data rows"),
    (b"a,b,c\n", "holds no data rows"),
    (bytes(range(256)) * 4, "bad.csv"),
])
def test_read_table_malformed_csv(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=match):
        datasets.read_table(path)


def test_read_table_malformed_npz(tmp_path):
    np.savez(tmp_path / "noX.npz", features=np.zeros((4, 2)))
    with pytest.raises(FormatError, match="needs an array 'X'.*it holds features"):
        datasets.read_table(tmp_path / "noX.npz")
    np.savez(tmp_path / "obj.npz", X=np.array([[object()]], dtype=object))
    with pytest.raises(FormatError, match="unreadable NPZ"):
        datasets.read_table(tmp_path / "obj.npz")
    np.savez(tmp_path / "flat.npz", X=np.zeros(4))
    with pytest.raises(FormatError, match=r"X must be a 2-D array of numbers, got shape \(4,\)"):
        datasets.read_table(tmp_path / "flat.npz")
    np.savez(tmp_path / "short_y.npz", X=np.zeros((4, 2)), y=np.zeros(3))
    with pytest.raises(FormatError, match="y must be a vector of 4 labels"):
        datasets.read_table(tmp_path / "short_y.npz")


def test_read_table_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file: .*nope.csv"):
        datasets.read_table(tmp_path / "nope.csv")
    with pytest.raises(IsADirectoryError, match="is a directory, not a data file"):
        datasets.read_table(tmp_path)


def test_read_table_through_a_symlink(tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("1,2,0\n3,4,1\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    assert datasets.read_table(link)[0].tolist() == [[1, 2, 0], [3, 4, 1]]
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "gone.csv")
    with pytest.raises(FileNotFoundError, match="dangling.csv"):
        datasets.read_table(tmp_path / "dangling.csv")


def test_as_labels():
    got = datasets.as_labels(np.array([0.0, 2.0, 1.0]), "f.csv")
    assert got.dtype == np.int64 and got.tolist() == [0, 2, 1]
    assert datasets.as_labels(np.array([3, 1], dtype=np.uint8), "f.csv").dtype == np.int64
    with pytest.raises(FormatError, match=r"f.csv: labels \(the last column\) must be integer"):
        datasets.as_labels([0.5, 1.0], "f.csv")
    with pytest.raises(FormatError, match="f.csv: y must be class indices 0, 1, 2, ..., got -1"):
        datasets.as_labels([1, -1], "f.csv", "y")
    with pytest.raises(FormatError, match="must be integer class indices, got dtype <U1"):
        datasets.as_labels(np.array(["a"]), "f.csv")
    with pytest.raises(FormatError, match="integer class indices"):
        datasets.as_labels([np.inf, 1.0], "f.csv")


def test_split_features_labels():
    table = np.array([[0.5, 1.5, 1.0], [2.0, 3.0, 0.0]])
    data = datasets.split_features_labels(table, "f.csv")
    assert isinstance(data, datasets.Dataset)
    assert np.shares_memory(data.X, table) and data.X.tolist() == [[0.5, 1.5], [2.0, 3.0]]
    assert data.y.tolist() == [1, 0]
    with pytest.raises(FormatError, match="f.csv: needs at least 2 columns .*got 1"):
        datasets.split_features_labels(np.zeros((3, 1)), "f.csv")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_load_table_csv_and_npz_agree(tmp_path, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = rng.integers(0, 3, size=20)
    np.savetxt(tmp_path / "d.csv", np.column_stack([X, y]), delimiter=",", fmt="%.17g")
    np.savez(tmp_path / "d.npz", X=X, y=y)
    np.savez(tmp_path / "last_column.npz", X=np.column_stack([X, y]))
    for name in ("d.csv", "d.npz", "last_column.npz"):
        data = datasets.load_table(tmp_path / name, dtype=dtype)
        assert isinstance(data, datasets.Dataset)
        assert data.X.dtype == dtype and data.X.flags.writeable
        np.testing.assert_array_equal(data.X, X.astype(dtype))
        assert data.y.dtype == np.int64 and np.array_equal(data.y, y)


def test_load_table_errors(tmp_path):
    np.savez(tmp_path / "bad_y.npz", X=np.zeros((2, 2)), y=np.array([0.5, 1.0]))
    with pytest.raises(FormatError, match="bad_y.npz: y must be integer class indices"):
        datasets.load_table(tmp_path / "bad_y.npz")
    (tmp_path / "one.csv").write_text("5\n6\n")
    with pytest.raises(FormatError, match="at least 2 columns"):
        datasets.load_table(tmp_path / "one.csv")
    (tmp_path / "ok.csv").write_text("1,0\n2,1\n")
    with bad_input(TypeError, match="dtype must be float32 or float64"):
        datasets.load_table(tmp_path / "ok.csv", dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Bounded reading: decompression bombs fail fast, with a small memory peak
# --------------------------------------------------------------------------------------------


def peak_of(call):
    """(exception raised by call(), seconds taken, peak traced memory in bytes)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - returned for the test to inspect
        return exc, time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    raise AssertionError("no error raised")


def test_idx_gzip_bomb_declaring_one_pixel_fails_fast(tmp_path):
    images = tmp_path / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(gzip_bomb(idx_bytes(np.zeros((1, 1, 1), np.uint8)), 1024))
    write(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.zeros(1, np.uint8)), True)
    assert images.stat().st_size < 2 << 20  # about 1 MB on disk, 1 GiB inflated
    for call in (lambda: datasets.read_idx(images), lambda: datasets.load_mnist(tmp_path),
                 lambda: datasets.read_idx(io.BytesIO(images.read_bytes()))):
        exc, seconds, peak = peak_of(call)
        assert isinstance(exc, FormatError) and "too long" in str(exc), exc
        assert peak < 8 << 20 and seconds < 10


def test_idx_header_claiming_more_than_the_file_can_hold(tmp_path):
    """A header declaring 4 GB of pixels in a small file is refused before reading (raw: the
    file size; gzip: deflate's 1032:1 limit), and a stream is read only as far as it goes."""
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**32 - 1, 1, 1)
    raw = write(tmp_path / "raw.idx", header + bytes(100))
    packed = write(tmp_path / "packed.idx.gz", gzip_bomb(header, 8))
    for call, match in ((lambda: datasets.read_idx(raw), "only 100 bytes follow"),
                        (lambda: datasets.read_idx(packed), "inflates to at most"),
                        (lambda: datasets.read_idx(io.BytesIO(packed.read_bytes())),
                         "only 8388608 bytes follow")):
        exc, seconds, peak = peak_of(call)
        assert isinstance(exc, FormatError) and re.search(match, str(exc)), exc
        assert peak < 40 << 20 and seconds < 10


def test_mnist_label_count_checked_before_pixels_are_read(tmp_path, monkeypatch):
    images, labels = small_set()
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images))
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels[:4]))
    read = []
    real = datasets._read_upto
    monkeypatch.setattr(datasets, "_read_upto", lambda s, n: read.append(n) or real(s, n))
    with pytest.raises(FormatError, match="4 labels but"):
        datasets.load_mnist(tmp_path)
    assert max(read) < images.size  # headers only, never the pixels


def test_digits_gzip_bomb_fails_fast(tmp_path):
    path = tmp_path / "digits.csv.gz"
    path.write_bytes(gzip_bomb(b"0," * 64 + b"1\n", 1024))
    exc, seconds, peak = peak_of(lambda: datasets.load_digits(path=path))
    assert isinstance(exc, FormatError) and "digits.csv.gz: more than" in str(exc), exc
    assert peak < 48 << 20 and seconds < 10
