"""Small real datasets and a train/test split, so that a network can be trained end to end.

What is here:

- :func:`xor` - the four XOR points, the classic problem a single perceptron cannot solve.
- :func:`load_digits` - the UCI 8x8 optical digits (1,797 images), shipped inside the package
  in ``fusenn/data/`` with its attribution and licence (CC BY 4.0) beside it.
- :func:`load_mnist` - MNIST (or any dataset in the same IDX format, such as Fashion-MNIST)
  read from files the user has; :func:`find_mnist` says which files a directory holds and
  :func:`read_idx` reads any single IDX file.
- :func:`load_table` - features and labels from a CSV or NPZ file of one's own, read by
  :func:`read_table` (with :func:`as_labels` and :func:`split_features_labels`, the steps
  ``fusenn train --data`` and ``fusenn predict`` take).
- :func:`train_test_split` - a seeded (optionally stratified) split.

Every loader returns a :class:`Dataset`, a named tuple ``(X, y)``: ``X`` is a 2-D float array
of shape ``(n_samples, n_features)`` scaled to [0, 1] (a table of one's own is not rescaled),
``y`` an int64 vector of class labels.
So ``X, y = fusenn.datasets.load_digits()`` works, and so does ``data.X``.

Files are checked, not trusted: a file that is truncated, has the wrong magic number, the
wrong dimensions or a label count that does not match its images raises
:class:`fusenn.errors.FormatError` naming the file and the problem. A missing file raises
:class:`FileNotFoundError` naming it. Reading is bounded: an IDX header is read first and no
more is read or decompressed than it declares (a declared size that the file on disk cannot
hold is refused before reading), and a digits CSV is read up to 16 MiB decompressed, so a
small compressed file can never inflate into gigabytes. Nothing here downloads anything.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import math
import numbers
import os
import stat
import warnings
import zlib
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple, Tuple

import numpy as np

from ._typing import Array, ArrayLike, DTypeLike, PathLike, Seed
from ._validation import check_random_state, float_dtype
from .errors import ArgumentError, ArgumentTypeError, FormatError, ShapeError

__all__ = ["Dataset", "MnistFiles", "xor", "load_digits", "load_mnist", "find_mnist",
           "read_idx", "train_test_split", "read_table", "as_labels", "split_features_labels",
           "load_table"]


class Dataset(NamedTuple):
    """Features and labels: ``X`` of shape (n_samples, n_features), float32 or float64, and
    ``y`` of shape (n_samples,), int64. Unpacks as ``X, y = dataset``."""

    X: np.ndarray
    y: np.ndarray


# --------------------------------------------------------------------------------------------
# XOR
# --------------------------------------------------------------------------------------------

def xor(dtype: DTypeLike = np.float64) -> Dataset:
    """The XOR truth table as a classification problem.

    Returns ``Dataset(X, y)`` with ``X`` of shape (4, 2) in ``dtype`` (float32 or float64)
    holding the inputs (0, 0), (0, 1), (1, 0), (1, 1), and ``y`` = [0, 1, 1, 0] (int64).

    Parameters
    ----------
    dtype : float32 or float64, default float64
        The dtype of ``X``.

    Returns
    -------
    Dataset

    Raises
    ------
    TypeError
        ``dtype`` is not float32 or float64.

    Examples
    --------

    >>> X, y = xor()
    >>> X.tolist(), y.tolist()
    ([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0, 1, 1, 0])
    """
    dt = float_dtype(dtype)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dt)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return Dataset(X, y)


# --------------------------------------------------------------------------------------------
# Reading files: gzip is detected by its magic bytes, never by the file name, and nothing is
# read or inflated beyond what the file's own header declares
# --------------------------------------------------------------------------------------------

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20  # bytes read (or inflated) at a time
#: Deflate cannot expand its input more than 1032 times: a gzip file of n bytes holds at most
#: about 1032 n bytes of data, whatever its header claims.
_DEFLATE_MAX_RATIO = 1032
_EXTRA_SHOWN = 1 << 16  # trailing bytes counted exactly in a "too long" message
_PREALLOCATE = 64 << 20  # declared sizes up to this are read into one buffer at once


class _Prefixed(io.RawIOBase):
    """``head`` (bytes already read) followed by the rest of the binary stream ``rest``."""

    def __init__(self, head: Any, rest: Any) -> None:
        super().__init__()
        self._head, self._rest = head, rest

    def readable(self) -> Any:
        return True

    def readinto(self, b: Any) -> Any:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(b))
        if not isinstance(data, (bytes, bytearray)):
            raise ArgumentTypeError("expected a binary file object, got text")
        b[:len(data)] = data
        return len(data)


class _Source(NamedTuple):
    """An opened data file: its decompressed contents as a stream, a name for messages, its
    size on disk when known (regular files) and whether it is gzip-compressed."""

    stream: io.RawIOBase
    name: str
    size: int | None
    gzip: bool


@contextlib.contextmanager
def _open_data(file: Any, name: Any = None) -> Any:
    """The :class:`_Source` of ``file`` (a path or a binary file object).

    Nothing is read but the first two bytes (the gzip magic 1f 8b); decompression happens as
    the stream is read, so a caller that reads n bytes inflates no more than that.
    """
    with contextlib.ExitStack() as stack:
        if hasattr(file, "read"):
            name = name or str(getattr(file, "name", "<stream>"))
            raw, size = file, None
        else:
            path = Path(os.fspath(file))
            name = name or str(path)
            raw = stack.enter_context(open(path, "rb"))  # FileNotFoundError names the path
            st = os.fstat(raw.fileno())
            size = st.st_size if stat.S_ISREG(st.st_mode) else None
        head = raw.read(2)
        if not isinstance(head, (bytes, bytearray)):
            raise ArgumentTypeError(f"{name}: expected a binary file object, got text")
        stream: Any = _Prefixed(bytes(head), raw)
        is_gzip = bytes(head) == _GZIP_MAGIC
        if is_gzip:
            stream = stack.enter_context(gzip.GzipFile(fileobj=stream, mode="rb"))
        yield _Source(stream, name, size, is_gzip)


@contextlib.contextmanager
def _gzip_errors(source: Any) -> Any:
    """Corrupt gzip data (bad header, CRC, truncated stream) as FormatError naming the file."""
    if not source.gzip:
        yield
        return
    try:
        yield
    except (OSError, EOFError, zlib.error) as exc:
        raise FormatError(f"{source.name}: corrupt or truncated gzip data ({exc})") from None


def _read_upto(source: Any, n: Any) -> Any:
    """The next ``n`` bytes of ``source`` as a uint8 array (shorter only where the data end),
    read ``_CHUNK`` at a time: never more is inflated.

    Where ``n`` is known to be plausible - a raw regular file, whose size has been checked,
    or a gzip file whose size bounds what it can inflate to, up to ``_PREALLOCATE`` bytes -
    the data are read into one buffer of ``n`` bytes. Anything else (a stream, a large gzip
    file whose header may lie) is gathered chunk by chunk, so that memory follows the data
    actually there, never the size a header claims.
    """
    trusted = source.size is not None and (not source.gzip or n <= _PREALLOCATE)
    out = np.empty(n if trusted else 0, dtype=np.uint8)
    view, chunks, got = memoryview(out), [], 0  # type: ignore[arg-type]  # a buffer
    with _gzip_errors(source):
        while got < n:
            want = min(_CHUNK, n - got)
            if trusted:
                k = source.stream.readinto(view[got:got + want])
            else:
                chunk = source.stream.read(want)
                chunks.append(chunk)
                k = len(chunk)
            if not k:
                break
            got += k
    if trusted:
        return out[:got]
    return np.frombuffer(b"".join(chunks), dtype=np.uint8)


def _read_bytes(file: Any, limit: Any, name: Any = None) -> Any:
    """The decompressed contents of ``file`` (a path or binary file object) and its name, or
    FormatError if they exceed ``limit`` bytes (the rest is never read)."""
    chunks, total = [], 0
    with _open_data(file, name) as source, _gzip_errors(source):
        while total <= limit:  # chunk by chunk: memory follows the data, not the limit
            chunk = source.stream.read(min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    if total > limit:
        raise FormatError(f"{source.name}: more than {limit} bytes"
                          f"{' after decompression' if source.gzip else ''}, more than a file "
                          f"of this kind can hold")
    return b"".join(chunks), source.name


# --------------------------------------------------------------------------------------------
# IDX files (the MNIST format)
# --------------------------------------------------------------------------------------------

# IDX magic number: two zero bytes, a type code, the number of dimensions; then one
# big-endian uint32 per dimension; then the data, big-endian, C order.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IMAGES_MAGIC = 0x0803  # 2051: unsigned bytes, 3 dimensions (n, rows, cols)
_LABELS_MAGIC = 0x0801  # 2049: unsigned bytes, 1 dimension (n,)
_MAGIC_NAMES = {_IMAGES_MAGIC: "an images file", _LABELS_MAGIC: "a labels file"}


def _idx_header(source: Any, expected_magic: Any = None) -> Any:
    """Read and check an IDX header; return ``(shape, big-endian dtype, header bytes)``."""
    name = source.name
    magic_bytes = _read_upto(source, 4).tobytes()
    if len(magic_bytes) < 4:
        raise FormatError(f"{name}: truncated IDX file: {len(magic_bytes)} byte(s), too short "
                          f"for the 4-byte magic number")
    magic = int.from_bytes(magic_bytes, "big")
    if magic_bytes[0] != 0 or magic_bytes[1] != 0:
        raise FormatError(f"{name}: not an IDX file: magic number 0x{magic:08x} does not "
                          f"start with two zero bytes")
    if expected_magic is not None and magic != expected_magic:
        what = _MAGIC_NAMES.get(magic)
        raise FormatError(
            f"{name}: wrong magic number {magic}, expected {expected_magic} "
            f"({_MAGIC_NAMES[expected_magic]}: unsigned bytes, "
            f"{expected_magic & 0xFF} dimension(s))" + (f"; this looks like {what}" if what
                                                         else ""))
    type_code, ndim = magic_bytes[2], magic_bytes[3]
    if type_code not in _IDX_TYPES:
        raise FormatError(f"{name}: unknown IDX data type code 0x{type_code:02x} (known: "
                          f"{', '.join(f'0x{c:02x}' for c in _IDX_TYPES)})")
    if ndim == 0:
        raise FormatError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    dims = _read_upto(source, 4 * ndim).tobytes()
    if len(dims) < 4 * ndim:
        raise FormatError(f"{name}: truncated IDX header: {ndim} dimension(s) need {header} "
                          f"bytes, the file has {4 + len(dims)}")
    shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
    return shape, np.dtype(_IDX_TYPES[type_code]), header


def _idx_payload(source: Any, shape: Any, dtype: Any, header: Any) -> Any:
    """The data after an IDX header: exactly what the header declares, checked against the
    file's size before anything is read where that size is known."""
    name = source.name
    expected = math.prod(shape) * dtype.itemsize

    def truncated(actual: Any) -> Any:
        return FormatError(f"{name}: truncated: header declares shape {shape} ({expected} "
                           f"bytes of data) but only {actual} bytes follow")

    def too_long(extra: Any, exact: Any = True) -> Any:
        return FormatError(f"{name}: too long: header declares shape {shape} ({expected} bytes "
                           f"of data) but {expected + extra} bytes follow "
                           f"({'' if exact else 'at least '}{extra} extra)")

    if source.size is not None and not source.gzip:  # a raw regular file: sizes tell all
        actual = source.size - header
        if actual < expected:
            raise truncated(actual)
        if actual > expected:
            raise too_long(actual - expected)
    elif source.size is not None and expected > _DEFLATE_MAX_RATIO * source.size + 1024:
        raise FormatError(f"{name}: truncated: header declares shape {shape} ({expected} bytes "
                          f"of data) but a gzip file of {source.size} bytes inflates to at "
                          f"most about {_DEFLATE_MAX_RATIO * source.size}")
    data = _read_upto(source, expected)
    if data.size < expected:
        raise truncated(data.size)
    extra = _read_upto(source, _EXTRA_SHOWN + 1).size
    if extra:
        raise too_long(min(extra, _EXTRA_SHOWN), exact=extra <= _EXTRA_SHOWN)
    return data.view(dtype).reshape(shape)


def _read_idx(file: Any, expected_magic: Any = None) -> Any:
    """``(big-endian array, name)`` of one IDX file, bounded by its header."""
    with _open_data(file) as source:
        shape, dtype, header = _idx_header(source, expected_magic)
        return _idx_payload(source, shape, dtype, header), source.name


def read_idx(file: Any) -> Array:
    """Read one IDX file (the format of the MNIST files), gzip-compressed or raw.

    ``file`` is a path or a binary file object; gzip is detected from the first two bytes
    (1f 8b), not from the name. The header is read first and no more data than it declares
    is read or decompressed (a gzip "bomb" whose header declares a few bytes fails at once).

    Parameters
    ----------
    file : str, os.PathLike or binary file object
        The IDX file.

    Returns
    -------
    numpy.ndarray
        A writable array in native byte order whose shape and dtype are the file's: e.g.
        (10000, 28, 28) uint8 for ``t10k-images-idx3-ubyte.gz`` and (10000,) uint8 for
        ``t10k-labels-idx1-ubyte.gz``. Supported IDX types: uint8, int8, int16, int32,
        float32, float64.

    Raises
    ------
    FormatError
        Naming the file, for a truncated file or header, a magic number that is not IDX, an
        unknown type code, a payload shorter or longer than the header's dimensions say, or
        corrupt gzip data.
    FileNotFoundError
        For a missing file.
    """
    arr, _ = _read_idx(file)
    native: Array = arr.astype(arr.dtype.newbyteorder("="))
    return native


class MnistFiles(NamedTuple):
    """The images and labels files of one MNIST-format set, and which set it is
    (``"train"`` or ``"t10k"``)."""

    images: Path
    labels: Path
    kind: str


_KINDS = {"train": "train", "t10k": "t10k", "test": "t10k"}


def _candidates(directory: Any, prefix: Any, what: Any, idx: Any) -> Any:
    stems = (f"{prefix}-{what}-{idx}-ubyte", f"{prefix}-{what}.{idx}-ubyte")
    return [directory / (stem + ext) for stem in stems for ext in ("", ".gz")]


def _first_existing(paths: Any) -> Any:
    return next((p for p in paths if p.is_file()), None)


def find_mnist(directory: PathLike, kind: str = "auto") -> MnistFiles:
    """Locate the MNIST-format files of one set in ``directory``.

    ``kind`` is ``"train"`` (``train-images-idx3-ubyte[.gz]`` and
    ``train-labels-idx1-ubyte[.gz]``), ``"t10k"`` or its alias ``"test"``
    (``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``), or ``"auto"``: the
    training set when its files are present, otherwise the t10k test set. The returned
    ``kind`` says which was found, so a caller can split the test set itself when there is no
    training set. Raises FileNotFoundError listing the names it looked for (with ``"auto"``,
    a training set with only one of its two files is an error, not a reason to fall back).

    Parameters
    ----------
    directory : str or path-like
        The folder holding the files.
    kind : {"auto", "train", "t10k", "test"}, default "auto"
        Which set to look for.

    Returns
    -------
    MnistFiles
        The images and labels paths, and the kind found.

    Raises
    ------
    FileNotFoundError
        The directory or a file is missing (the names looked for are listed).
    ValueError
        An unknown ``kind``.
    """
    directory = Path(os.fspath(directory))
    if not directory.is_dir():
        raise FileNotFoundError(f"MNIST directory not found: {directory}")
    if kind == "auto":
        has_train = any(_first_existing(_candidates(directory, "train", what, idx))
                        for what, idx in (("images", "idx3"), ("labels", "idx1")))
        kinds = ["train"] if has_train else ["t10k"]
    elif isinstance(kind, str) and kind in _KINDS:
        kinds = [_KINDS[kind]]
    else:
        raise ArgumentError(f"kind must be 'auto', 'train', 't10k' or 'test', got {kind!r}")
    prefix = kinds[0]
    found = []
    for what, idx in (("images", "idx3"), ("labels", "idx1")):
        candidates = _candidates(directory, prefix, what, idx)
        path = _first_existing(candidates)
        if path is None:
            raise FileNotFoundError(
                f"no MNIST {prefix} {what} file in {directory} (looked for "
                f"{', '.join(p.name for p in candidates)})")
        found.append(path)
    return MnistFiles(found[0], found[1], prefix)


def _labels_path_for(images_path: Any) -> Any:
    name = images_path.name
    derived = name.replace("images", "labels").replace("idx3", "idx1")
    if derived == name:
        raise ArgumentError(f"cannot tell the labels file that goes with {images_path} (its name "
                            f"has no 'images'/'idx3' to replace); pass labels=PATH")
    return images_path.with_name(derived)


def load_mnist(path: PathLike, kind: str = "auto", dtype: DTypeLike = np.float32,
               labels: PathLike | None = None) -> Dataset:
    """MNIST-format images and labels, flattened and scaled to [0, 1].

    ``path`` is either a directory holding the files (see :func:`find_mnist` for the names and
    for ``kind``: ``"auto"`` takes the training set when present, else the t10k test set), or
    the images file itself, in which case the labels file is ``labels`` or, by default, the
    same name with ``images``/``idx3`` replaced by ``labels``/``idx1``. Files may be
    gzip-compressed or raw.

    Returns ``Dataset(X, y)``: ``X`` of shape (n, rows * cols) in ``dtype`` (float32 or
    float64), the grey levels divided by 255, row-major (pixel ``r * cols + c``); ``y`` of
    shape (n,), int64. For the MNIST test set: (10000, 784) and labels 0..9.

    Raises FormatError naming the file for anything that is not an unsigned-byte IDX images
    file (magic 2051, shape n x rows x cols) with a matching labels file (magic 2049, shape n),
    including truncated files and a label count that differs from the image count;
    FileNotFoundError for a missing file or directory.

    Parameters
    ----------
    path : str or path-like
        A directory holding the files, or the images file.
    kind : {"auto", "train", "t10k", "test"}, default "auto"
        Which set to read from a directory.
    dtype : float32 or float64, default float32
        The dtype of ``X``.
    labels : str, path-like or None, default None
        The labels file, when ``path`` is an images file with an unusual name.

    Returns
    -------
    Dataset

    Raises
    ------
    FormatError
        A malformed or truncated file, or counts that differ.
    FileNotFoundError
        A missing file or directory.
    """
    dt = float_dtype(dtype)
    path = Path(os.fspath(path))
    if path.is_dir():
        files = find_mnist(path, kind)
        images_path, labels_path = files.images, files.labels
        if labels is not None:
            labels_path = Path(os.fspath(labels))
    elif path.exists():
        images_path = path
        labels_path = (Path(os.fspath(labels)) if labels is not None
                       else _labels_path_for(path))
    else:
        raise FileNotFoundError(f"MNIST path not found: {path}")

    # Both headers first: a label count that does not match is found before any pixel is read.
    with _open_data(images_path) as images_src, _open_data(labels_path) as labels_src:
        images_head = _idx_header(images_src, _IMAGES_MAGIC)
        labels_head = _idx_header(labels_src, _LABELS_MAGIC)
        (n, rows, cols), (n_labels,) = images_head[0], labels_head[0]
        if n == 0 or rows == 0 or cols == 0:
            raise FormatError(f"{images_src.name}: holds no pixels (shape {(n, rows, cols)})")
        if n_labels != n:
            raise FormatError(f"{labels_src.name}: {n_labels} labels but {images_src.name} "
                              f"holds {n} images")
        images = _idx_payload(images_src, *images_head)
        y = _idx_payload(labels_src, *labels_head)
    X = images.reshape(n, rows * cols).astype(dt)
    X /= dt.type(255)
    return Dataset(X, y.astype(np.int64))


# --------------------------------------------------------------------------------------------
# UCI 8x8 digits (shipped in the package)
# --------------------------------------------------------------------------------------------

_DIGITS_FILE = "optdigits-8x8.csv.gz"
_DIGITS_FEATURES = 64
_DIGITS_MAX = 16
#: The largest digits CSV read, after decompression (UCI's optdigits.tra is 0.56 MB).
_DIGITS_MAX_BYTES = 16 << 20


def _parse_digits_csv(data: Any, name: Any) -> Any:
    """(features as an int64 (n, 64) array, labels as int64 (n,)) from the CSV bytes."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{name}: not a text CSV file ({exc})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": checked below
            table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise FormatError(f"{name}: malformed CSV ({exc})") from None
    if table.shape[0] == 0:
        raise FormatError(f"{name}: holds no rows")
    if table.shape[1] != _DIGITS_FEATURES + 1:
        raise FormatError(f"{name}: expected {_DIGITS_FEATURES + 1} columns (64 pixels and "
                          f"the label), got {table.shape[1]}")
    if not np.all(np.isfinite(table)) or not np.all(table == np.round(table)):
        raise FormatError(f"{name}: values must be integers")
    features = table[:, :-1].astype(np.int64)
    labels = table[:, -1].astype(np.int64)
    if features.min() < 0 or features.max() > _DIGITS_MAX:
        raise FormatError(f"{name}: pixel counts must be in 0..{_DIGITS_MAX}, got "
                          f"{features.min()}..{features.max()}")
    if labels.min() < 0 or labels.max() > 9:
        raise FormatError(f"{name}: labels must be digits 0..9, got "
                          f"{labels.min()}..{labels.max()}")
    return features, labels


def load_digits(dtype: DTypeLike = np.float64, path: PathLike | None = None) -> Dataset:
    """The UCI 8x8 optical handwritten digits: 1,797 images of the digits 0-9.

    Each image is 8x8 cells, each cell the count (0..16) of set pixels in a 4x4 block of the
    original 32x32 bitmap. Returns ``Dataset(X, y)``: ``X`` of shape (1797, 64) in ``dtype``
    (float32 or float64), counts divided by 16 so that values lie in [0, 1], row-major
    (cell ``r * 8 + c``); ``y`` of shape (1797,), int64 labels 0..9.

    The data ship inside the package (``fusenn/data/optdigits-8x8.csv.gz``; E. Alpaydin and
    C. Kaynak, 1998, UCI Machine Learning Repository, CC BY 4.0 - see ``fusenn/data/README.md``).
    ``path`` reads another file in the same format instead (65 comma-separated integers per
    row, label last, gzip-compressed or not), such as UCI's ``optdigits.tra``.

    Raises FormatError naming the file if it is malformed (wrong column count, non-integer or
    out-of-range values, truncated gzip) or larger than 16 MiB once decompressed (more is
    never read or inflated).

    Parameters
    ----------
    dtype : float32 or float64, default float64
        The dtype of ``X``.
    path : str, path-like or None, default None
        Another file in the same format (None: the copy inside the package).

    Returns
    -------
    Dataset

    Raises
    ------
    FormatError
        A malformed file.
    FileNotFoundError
        ``path`` does not exist.

    Examples
    --------
    >>> X, y = load_digits()
    >>> X.shape, y.shape, float(X.max()), sorted(set(y.tolist())) == list(range(10))
    ((1797, 64), (1797,), 1.0, True)
    """
    dt = float_dtype(dtype)
    if path is None:
        resource = resources.files("fusenn").joinpath("data").joinpath(_DIGITS_FILE)
        with resource.open("rb") as f:
            data, name = _read_bytes(f, _DIGITS_MAX_BYTES, f"fusenn/data/{_DIGITS_FILE}")
    else:
        data, name = _read_bytes(path, _DIGITS_MAX_BYTES)
    features, labels = _parse_digits_csv(data, name)
    X = features.astype(dt)
    X /= dt.type(_DIGITS_MAX)
    return Dataset(X, labels)


# --------------------------------------------------------------------------------------------
# Train/test split
# --------------------------------------------------------------------------------------------

def _n_test(test_size: Any, n: Any) -> Any:
    """The number of test samples: a fraction in (0, 1) (rounded up) or a count."""
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise ArgumentTypeError(f"test_size must be a fraction in (0, 1) or an integer count, got "
                                f"{test_size!r}")
    if isinstance(test_size, numbers.Integral):
        if not 1 <= int(test_size) <= n - 1:
            raise ArgumentError(f"test_size={test_size} must be between 1 and n_samples - 1 = "
                                f"{n - 1}")
        return int(test_size)
    if not 0.0 < float(test_size) < 1.0:
        raise ArgumentError(f"test_size as a fraction must be in (0, 1), got {test_size!r}")
    # round() first so that 0.7 * 10 = 7.000000000000001 gives 7, not 8
    n_test = math.ceil(round(test_size * n, 9))
    if n_test >= n:
        raise ArgumentError(f"test_size={test_size} of {n} samples leaves no training samples")
    return n_test


def _stratified_indices(strata: Any, n_test: Any, rng: Any) -> Any:
    """(train, test) indices with each class's share of the test set as close as possible to
    its share of the data: floor(count * n_test / n) per class, then the leftover samples to
    the classes with the largest remainders (ties broken at random)."""
    n = strata.shape[0]
    classes, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    if np.any(counts < 2):
        lonely = classes[np.argmax(counts < 2)]
        raise ArgumentError(f"cannot stratify: class {lonely!r} has only 1 sample (each class "
                            f"needs at least 2)")
    k = counts * n_test // n
    remainder = counts * n_test % n
    leftover = n_test - int(k.sum())
    order = np.lexsort((rng.random(classes.size), -remainder))
    k[order[:leftover]] += 1

    # A random permutation, then grouped by class (stable, so random within a class): the
    # first k[c] of class c's group go to the test set.
    perm = rng.permutation(n)
    grouped = perm[np.argsort(inverse[perm], kind="stable")]
    group_start = np.concatenate(([0], np.cumsum(counts)[:-1]))
    cls = inverse[grouped]
    is_test = np.arange(n) - group_start[cls] < k[cls]
    return rng.permutation(grouped[~is_test]), rng.permutation(grouped[is_test])


def train_test_split(X: ArrayLike, y: ArrayLike, test_size: float = 0.2,
                     random_state: Seed = None, stratify: bool = False,
                     shuffle: bool = True) -> Tuple[Array, Array, Array, Array]:
    """Split samples into a training set and a test set.

    Parameters
    ----------
    X : array-like, shape (n_samples, ...)
        Features; any dtype, kept as is.
    y : array-like, shape (n_samples, ...)
        Labels or targets.
    test_size : float in (0, 1) or int
        The fraction of samples for the test set (rounded up), or their number.
    random_state : None, int or numpy.random.Generator
        The source of randomness; an int gives the same split every time. The global NumPy
        random state is never used (None draws a fresh, unseeded Generator).
    stratify : bool or array-like of shape (n_samples,)
        ``True`` keeps each class's proportion of ``y`` in both sets (as closely as whole
        samples allow); an array stratifies by those labels instead; ``False`` (default)
        does not stratify. Every class needs at least 2 samples.
    shuffle : bool
        With ``False`` the split is not random: the first samples train and the last
        ``test_size`` test, in their original order (stratify must then be False).

    Returns
    -------
    X_train, X_test, y_train, y_test : arrays (copies), the rows of ``X`` and ``y``.

    Raises ShapeError if X and y (or stratify) differ in length, ValueError for a bad
    test_size or an impossible stratification.

    >>> X, y = load_digits()
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, 0.25, random_state=0,
    ...                                                     stratify=True)
    >>> X_train.shape, X_test.shape
    ((1347, 64), (450, 64))
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim == 0 or y.ndim == 0:
        raise ShapeError(f"X and y must be arrays of samples, got shapes {X.shape} and "
                         f"{y.shape}")
    n = X.shape[0]
    if y.shape[0] != n:
        raise ShapeError(f"X and y have different numbers of samples: {n} and {y.shape[0]}")
    if n < 2:
        raise ArgumentError(f"cannot split {n} sample(s) into a training and a test set")
    n_test = _n_test(test_size, n)

    if stratify is None or stratify is False:
        strata = None
    elif stratify is True:
        strata = y
    else:
        strata = np.asarray(stratify)
        if strata.ndim != 1 or strata.shape[0] != n:
            raise ShapeError(f"stratify must be a vector of {n} labels, got shape "
                             f"{strata.shape}")
    if strata is not None and strata.ndim != 1:
        raise ShapeError(f"stratify=True needs y to be a vector of class labels, got shape "
                         f"{strata.shape}")

    if not shuffle:
        if strata is not None:
            raise ArgumentError("stratify needs shuffle=True")
        train, test = np.arange(n - n_test), np.arange(n - n_test, n)
    else:
        rng = check_random_state(random_state)
        if strata is None:
            perm = rng.permutation(n)
            train, test = perm[n_test:], perm[:n_test]
        else:
            train, test = _stratified_indices(strata, n_test, rng)
    return X[train], X[test], y[train], y[test]


# --------------------------------------------------------------------------------------------
# Tables of one's own: CSV and NPZ files of features and labels
# --------------------------------------------------------------------------------------------

def _is_zip(path: Any) -> Any:
    with open(path, "rb") as f:
        return f.read(2) == b"PK"


def _first_data_line(path: Any) -> Any:
    """``(index, text)`` of the first line that is neither blank nor a comment, or None."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f):
            stripped = line.split("#", 1)[0].strip()
            if stripped:
                return i, stripped
    return None


def _read_npz(path: Any) -> Any:
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            if "X" not in names:
                raise FormatError(f"{path}: an NPZ data file needs an array 'X' (and 'y' for "
                                  f"labels); it holds {', '.join(names) or 'none'}")
            X = npz["X"]
            y = npz["y"] if "y" in names else None
    except FormatError:
        raise
    except Exception as exc:  # BadZipFile, pickled arrays, corrupt members
        raise FormatError(f"{path}: unreadable NPZ file ({exc})") from None
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise FormatError(f"{path}: X must be a 2-D array of numbers, got shape {X.shape} "
                          f"and dtype {X.dtype}")
    if y is not None and (y.ndim != 1 or y.shape[0] != X.shape[0]):
        raise FormatError(f"{path}: y must be a vector of {X.shape[0]} labels, got shape "
                          f"{y.shape}")
    return X, y


def _read_csv(path: Any) -> Any:
    first = _first_data_line(path)
    if first is None:
        raise FormatError(f"{path}: holds no data rows")
    index, text = first
    try:
        [float(v) for v in text.split(",")]
        skip = 0
    except ValueError:
        skip = index + 1  # a header line of column names
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2, comments="#",
                               skiprows=skip)
    except ValueError as exc:
        raise FormatError(f"{path}: malformed CSV ({exc})") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not a text CSV file") from None
    if table.shape[0] == 0:
        raise FormatError(f"{path}: holds no data rows")
    if not np.all(np.isfinite(table)):
        row = int(np.argmax(~np.all(np.isfinite(table), axis=1)))
        raise FormatError(f"{path}: data row {row + 1} holds a NaN or infinite value")
    return table, None


def read_table(path: PathLike) -> Array:
    """Read a CSV or NPZ file of samples, without deciding what its columns mean.

    A file whose first bytes are ``PK`` is an NPZ archive: it must hold an array ``X`` of
    shape (n, features) and may hold ``y``, a vector of n labels. Any other file is a CSV of
    numbers, one sample per row, comma-separated: a first line that is not numbers is a header
    and is skipped, ``#`` starts a comment, and a name ending in ``.gz`` is read compressed.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    X : numpy.ndarray, shape (n, columns)
        For a CSV, every column, float64 (the caller decides whether the last is a label); for
        an NPZ, its ``X`` as stored.
    y : numpy.ndarray of shape (n,), or None
        An NPZ's ``y`` as stored; None for a CSV or an NPZ without ``y``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    IsADirectoryError
        If ``path`` is a directory.
    FormatError
        Naming the file: an NPZ without ``X``, unreadable, or with arrays of the wrong shape or
        kind; a CSV with no data rows, a malformed or non-text row, or a NaN or infinity.

    See Also
    --------
    load_table : features and integer labels from such a file.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "points.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("x1,x2,label\\n0.5,1.5,0\\n2.0,3.0,1\\n")
    >>> X, y = read_table(path)
    >>> X.tolist(), y
    ([[0.5, 1.5, 0.0], [2.0, 3.0, 1.0]], None)
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, not a data file")
    table: Array = _read_npz(path) if _is_zip(path) else _read_csv(path)
    return table


def as_labels(values: ArrayLike, source: PathLike,
              what: str = "labels (the last column)") -> Array:
    """Class labels 0, 1, 2, ... as int64, from numbers read from a file.

    Parameters
    ----------
    values : array-like
        Integers, or floats that are whole numbers (as a CSV column reads).
    source : str or os.PathLike
        The file the values come from, named in errors.
    what : str
        What the values are, named in errors (default ``"labels (the last column)"``).

    Returns
    -------
    numpy.ndarray of int64
        The labels, of the shape of ``values``.

    Raises
    ------
    FormatError
        Naming ``source`` and ``what``: a value that is not a whole number, a non-numeric
        dtype, or a negative label.

    Examples
    --------
    >>> as_labels([0.0, 2.0, 1.0], "data.csv").tolist()
    [0, 2, 1]
    """
    values = np.asarray(values)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise FormatError(f"{source}: {what} must be integer class indices 0, 1, 2, ...")
    elif values.dtype.kind not in "biu":
        raise FormatError(f"{source}: {what} must be integer class indices, got dtype "
                          f"{values.dtype}")
    labels = values.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise FormatError(f"{source}: {what} must be class indices 0, 1, 2, ..., got "
                          f"{labels.min()}")
    return labels


def split_features_labels(table: Array, source: PathLike) -> Dataset:
    """Split a table of samples into features (every column but the last) and labels (the last).

    Parameters
    ----------
    table : numpy.ndarray, shape (n, columns)
        Samples, one per row, their class label last (as :func:`read_table` gives a CSV).
    source : str or os.PathLike
        The file the table comes from, named in errors.

    Returns
    -------
    Dataset
        ``X``: a view of the first ``columns - 1`` columns; ``y``: the last column as int64
        labels (:func:`as_labels`).

    Raises
    ------
    FormatError
        Naming ``source``: fewer than 2 columns, or a last column that is not class indices.

    Examples
    --------
    >>> X, y = split_features_labels(np.array([[0.5, 1.5, 0.0], [2.0, 3.0, 1.0]]), "data.csv")
    >>> X.tolist(), y.tolist()
    ([[0.5, 1.5], [2.0, 3.0]], [0, 1])
    """
    if table.shape[1] < 2:
        raise FormatError(f"{source}: needs at least 2 columns (features, then the label), got "
                          f"{table.shape[1]}")
    return Dataset(table[:, :-1], as_labels(table[:, -1], source))


def load_table(path: PathLike, dtype: DTypeLike = np.float64) -> Dataset:
    """Features and integer class labels from a CSV or NPZ file of one's own.

    The file is read by :func:`read_table`. Its labels are an NPZ's ``y`` or, for a CSV (or an
    NPZ without ``y``), the last column, which must hold class indices 0, 1, 2, ... Unlike the
    other loaders of this module, the features are not rescaled.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    dtype : float32 or float64
        The dtype of ``X`` (default float64).

    Returns
    -------
    Dataset
        ``X`` of shape (n, features) in ``dtype`` and ``y`` of shape (n,), int64.

    Raises
    ------
    FileNotFoundError, IsADirectoryError, FormatError
        As :func:`read_table`; FormatError also for labels that are not class indices or a
        table of fewer than 2 columns.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "points.npz")
    >>> np.savez(path, X=np.array([[0, 1], [1, 0]]), y=np.array([1, 0]))
    >>> X, y = load_table(path, dtype=np.float32)
    >>> X.dtype, y.tolist()
    (dtype('float32'), [1, 0])
    """
    dt = float_dtype(dtype)
    X, y = read_table(path)
    if y is None:
        X, y = split_features_labels(X, path)
    else:
        y = as_labels(y, path, "y")
    return Dataset(X.astype(dt), y)
