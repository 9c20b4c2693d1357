"""Saving and loading models and Trainer checkpoints: one ``.npz`` file, never pickle.

A saved model is a NumPy ``.npz`` archive (a zip of ``.npy`` files) holding

- one array per parameter, named ``layers.<i>.<name>`` (``layers.0.W``, ``layers.0.b``,
  ``layers.2.gamma``, ...), in :meth:`fusenn.Sequential.get_weights` order, and one per buffer
  (``layers.2.running_mean``, ...), all in the model's dtype;
- ``description``: UTF-8 JSON stored as a uint8 array, saying what the file is
  (``"format": "fusenn-model"``, ``"format_version": "1.0"``), which fusenn wrote it, the
  dtype, the task, and every layer as its class name and ``get_config()`` (activations with
  their parameters), with the names of its parameter and buffer arrays.

A Trainer checkpoint (``"format": "fusenn-checkpoint"``) is the same file plus the optimiser's
settings, step count and state (array ``optimizer.state``), the trainer's settings and the
exact state of its random generator and of every stochastic layer's, so that training resumed
from it gives bit-identical weights to training that was never interrupted.

Writing is atomic: the archive goes to a temporary file in the target's directory
(``.<name>.fusenn-tmp-<pid>-<random>``), is flushed to disk, then renamed over the target, so
a crash mid-save leaves the old file intact. Only a regular file or a new path is written: a
symbolic link is followed to its target (the link stays), and a directory, FIFO, socket or
device node raises :class:`fusenn.errors.SaveError` before anything is written. Each save
removes the temporary files that killed saves left in its directory (see
:func:`_remove_stale_temporaries`).

Reading trusts nothing and is bounded by what the file declares. In order: the zip directory
(members must be stored or deflated ``.npy`` files whose declared sizes the file can hold);
the description (at most :data:`MAX_DESCRIPTION_BYTES`), validated completely - every field's
type and range, unknown fields in a file of this format version, the layers' sizes and how
they chain, the optimiser and trainer settings, the random generators' states - into the list
of arrays it implies; then each array's declared size and ``.npy`` header against that list,
before its data is read (so an extra or oversized member is never inflated); then the values
(finite; BatchNorm running variances and optimiser second moments non-negative). Only then is
the model built, from the arrays, without a random initialisation. Arrays are never unpickled
(no code from the file ever runs). Anything malformed raises
:class:`fusenn.errors.FormatError` naming the file and the problem; a missing file raises
FileNotFoundError.

>>> import fusenn as fn, numpy as np, tempfile, os
>>> net = fn.Sequential([fn.layers.Dense(4, 8, "relu"), fn.layers.Dense(8, 3)], random_state=0)
>>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
>>> net.save(path)
>>> X = np.random.default_rng(0).random((5, 4), dtype=np.float32)
>>> bool(np.array_equal(fn.load(path).forward(X), net.forward(X)))
True
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
import struct
import zipfile
import zlib
from typing import Any, Dict

import numpy as np

from . import _archive
from . import activations as _acts
from . import initializers as _inits
from . import layers as _layers
from . import losses as _losses
from . import optim as _optim
from ._archive import (CHECKPOINT_FORMAT, DESCRIPTION, FORMAT_VERSION,  # noqa: F401
                       MODEL_FORMAT, OPTIMIZER_STATE, STALE_TEMPORARY_SECONDS, _array_name,
                       _jsonable, _what_is)
from ._typing import PathLike
from ._version import __version__
from ._validation import BIT_GENERATORS as _BIT_GENERATORS
from .errors import ArgumentTypeError, FormatError, FusennError
from .model import TASKS, Sequential
from .trainer import Trainer

__all__ = ["save", "load", "save_checkpoint", "load_checkpoint", "read_description",
           "FORMAT_VERSION"]



def save(model: Sequential, path: PathLike) -> None:
    """Write ``model`` to ``path`` as one ``.npz`` file (arrays plus a JSON description).

    The path is used exactly as given (no ``.npz`` is appended). The write is atomic: a
    temporary file in the same directory is written, flushed to disk and renamed over
    ``path``; if anything fails the temporary file is removed and an existing ``path`` is left
    as it was. Nothing is pickled. Read it back with :func:`load` (``fusenn.load``).

    Parameters
    ----------
    model : fusenn.Sequential
        The model to save.
    path : str or os.PathLike
        A regular file (replaced, its permissions kept), a new path, or a symbolic link to
        either (the link's target is written; the link stays).

    Raises
    ------
    SaveError
        If ``path`` is a directory, a FIFO, a socket or a device node (or a link to one, or a
        loop of links); nothing is written.
    FileNotFoundError
        If the target's directory does not exist.
    TypeError
        If ``model`` is not a :class:`fusenn.Sequential`.

    Examples
    --------
    >>> import fusenn as fn, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
    >>> fn.Sequential([fn.layers.Dense(2, 1)]).save(path)
    >>> fn.load(path).n_params
    3
    """
    if not isinstance(model, Sequential):
        raise ArgumentTypeError(f"expected a fusenn.Sequential, got {type(model).__name__}")
    _archive.write_model(model, path)


def save_checkpoint(trainer: Trainer, path: PathLike) -> None:
    """Write ``trainer`` (its model, optimiser and random state) to ``path`` atomically.

    :func:`load_checkpoint` gives back a Trainer whose next ``fit`` continues exactly where
    this one stopped: ``fit(epochs=2)``, checkpoint, load, ``fit(epochs=2)`` gives the same
    weights, bit for bit, as ``fit(epochs=4)``. Callbacks are not saved (pass them to
    :func:`load_checkpoint`). The loss and optimiser must be fusenn's own (by name).

    Parameters
    ----------
    trainer : fusenn.Trainer
        The trainer to save (its model, optimiser, settings and random generators).
    path : str or os.PathLike
        As for :func:`save`: a regular file, a new path, or a symbolic link to either;
        written atomically.

    Raises
    ------
    SaveError
        If ``path`` is a directory, a FIFO, a socket or a device node; nothing is written.
    TypeError
        If ``trainer`` is not a :class:`fusenn.Trainer`.
    ValueError
        If its loss or optimiser is not one of fusenn's own.

    Examples
    --------
    >>> import fusenn as fn, fusenn.io as fio, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
    >>> fio.save_checkpoint(fn.Trainer(fn.Sequential([fn.layers.Dense(2, 2)])), path)
    >>> fio.load_checkpoint(path).optimizer.t
    0
    """
    if not isinstance(trainer, Trainer):
        raise ArgumentTypeError(f"expected a fusenn.Trainer, got {type(trainer).__name__}")
    _archive.write_checkpoint(trainer.model, trainer.state_dict(), path)


# --------------------------------------------------------------------------------------------
# Reading. Order matters: the zip directory, then the description (bounded), then the whole
# description validated into a plan of the arrays it implies, then each array's declared size
# and .npy header checked against the plan before its data is read, then the values, and only
# then is a model built - from the arrays, with no random initialisation.
# --------------------------------------------------------------------------------------------

#: The largest description read, in bytes (a model's JSON takes a few hundred per layer).
MAX_DESCRIPTION_BYTES = 16 * 2**20
_MAX_NPY_HEADER = 10_000  # NumPy's own default limit on a .npy header
#: Deflate cannot expand its input more than 1032 times; a member claiming more is forged.
_DEFLATE_MAX_RATIO = 1032
_MAX_WIDTH = 2**31 - 1  # the kernels index with 32-bit sizes
_MAX_LAYERS = 100_000
_MAX_STEP = 2**53  # optimiser step counts: exact in the float64 hyper-parameter vector
# What zipfile and NumPy's header parser raise for damaged input.
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
                   ValueError, NotImplementedError, RuntimeError, struct.error, OverflowError,
                   IndexError, KeyError, TypeError, SyntaxError, RecursionError)


@contextlib.contextmanager
def _archive_errors(path: Any, what: Any = "") -> Any:
    """Turn what a damaged archive makes zipfile or NumPy raise into FormatError."""
    try:
        yield
    except FusennError:
        raise
    except _ARCHIVE_ERRORS as exc:
        raise FormatError(f"{path}: truncated or corrupt .npz archive{what} ({exc})") from None


def _short(value: Any, limit: Any = 120) -> Any:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


@contextlib.contextmanager
def _open_archive(path: Any) -> Any:
    """``(zipfile.ZipFile, {array name: ZipInfo})`` for the .npz at ``path``; every member
    must be a plain .npy whose declared sizes the file can actually hold."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, not a fusenn model file")
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise FormatError(f"{path}: not a fusenn model file (it is {_what_is(st.st_mode)})")
    with open(path, "rb") as f:
        head = f.read(4)
        if head[:2] != b"PK":
            what = "an empty file" if not head else "not a zip/.npz archive"
            raise FormatError(f"{path}: not a fusenn model file ({what})")
        f.seek(0)
        with _archive_errors(path):
            zf = zipfile.ZipFile(f)
        with zf:
            yield zf, _members(path, zf, st.st_size)


def _members(path: Any, zf: Any, disk_size: Any) -> Any:
    with _archive_errors(path):
        infos = zf.infolist()
    keys = [i.filename[:-4] if i.filename.endswith(".npy") else i.filename for i in infos]
    if DESCRIPTION not in keys:
        shown = ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")
        raise FormatError(f"{path}: not a fusenn model file (an .npz archive without a "
                          f"{DESCRIPTION!r} entry; it holds: {shown or 'nothing'})")
    members = {}
    for info, key in zip(infos, keys):
        if not info.filename.endswith(".npy") or info.is_dir():
            raise FormatError(f"{path}: entry {key!r} of the archive is not a NumPy array")
        if key in members:
            raise FormatError(f"{path}: the archive holds {key!r} twice")
        if info.flag_bits & 0x1:
            raise FormatError(f"{path}: array {key!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise FormatError(f"{path}: array {key!r} uses zip compression method "
                              f"{info.compress_type}; fusenn reads stored or deflated arrays")
        if info.compress_size > disk_size:
            raise FormatError(f"{path}: truncated or corrupt .npz archive: array {key!r} "
                              f"declares {info.compress_size} bytes of data in a file of "
                              f"{disk_size}")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise FormatError(f"{path}: truncated or corrupt .npz archive: array {key!r} is "
                              f"stored uncompressed but declares {info.file_size} bytes in "
                              f"{info.compress_size}")
        if info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 1024:
            raise FormatError(f"{path}: array {key!r} declares {info.file_size} bytes "
                              f"inflated from {info.compress_size}, more than deflate can "
                              f"produce (a decompression bomb?)")
        members[key] = info
    return members


def _read_npy(path: Any, zf: Any, info: Any, key: Any, expect: Any, max_data: Any) -> Any:
    """The array in member ``info``, never reading more than its .npy header declares.

    ``max_data`` bounds the data the zip directory may declare (checked before the member is
    opened); ``expect(shape, fortran, dtype)`` raises FormatError when the header disagrees
    with the description (called before any data is read).
    """
    if info.file_size > max_data + _MAX_NPY_HEADER + 128:
        raise FormatError(f"{path}: array {key!r} declares {info.file_size} bytes, more than "
                          f"the description allows ({max_data} bytes of data)")
    fmt = np.lib.format
    with _archive_errors(path, f": array {key!r} is unreadable"):
        with zf.open(info) as fp:
            version = fmt.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(
                    fp, max_header_size=_MAX_NPY_HEADER)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(
                    fp, max_header_size=_MAX_NPY_HEADER)
            else:
                raise FormatError(f"{path}: array {key!r} has .npy format version "
                                  f"{version[0]}.{version[1]}, which fusenn does not read")
            if dtype.hasobject:
                raise FormatError(f"{path}: array {key!r} holds Python objects (pickled "
                                  f"data), which fusenn never loads")
            if any(s < 0 for s in shape):
                raise FormatError(f"{path}: array {key!r} has a negative dimension {shape}")
            expect(shape, fortran, dtype)
            offset = fp.tell()
            nbytes = math.prod(shape) * dtype.itemsize
            if info.file_size != offset + nbytes:
                raise FormatError(f"{path}: array {key!r}: its header declares {nbytes} "
                                  f"bytes of data (shape {shape}, dtype {dtype}) but the "
                                  f"archive declares {info.file_size - offset}")
            data = fp.read(nbytes)
            if len(data) != nbytes or fp.read(1):
                raise FormatError(f"{path}: truncated or corrupt .npz archive: array {key!r} "
                                  f"holds {len(data)} of its {nbytes} bytes")
    arr = np.frombuffer(data, dtype=dtype)
    return arr.reshape(shape, order="F" if fortran else "C")


def _read_description(path: Any, zf: Any, members: Any) -> Any:
    def expect(shape: Any, fortran: Any, dtype: Any) -> None:
        if not ((dtype == np.uint8 and len(shape) == 1)
                or (dtype.kind == "U" and shape == ())):
            raise FormatError(f"{path}: malformed description: expected UTF-8 JSON bytes, "
                              f"got an array of dtype {dtype} and shape {shape}")

    raw = _read_npy(path, zf, members[DESCRIPTION], DESCRIPTION, expect, MAX_DESCRIPTION_BYTES)
    return _parse_description(path, raw)


def _refuse_constant(name: Any) -> None:
    raise ValueError(f"non-finite number {name}")


def _finite_float(text: Any) -> Any:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:30]} is out of range")
    return value


def _parse_description(path: Any, raw: Any) -> Any:
    if raw.dtype == np.uint8 and raw.ndim == 1:
        data = raw.tobytes()
    elif raw.dtype.kind == "U" and raw.ndim == 0:
        data = str(raw[()]).encode("utf-8")
    else:
        raise FormatError(f"{path}: malformed description: expected UTF-8 JSON bytes, got an "
                          f"array of dtype {raw.dtype} and shape {raw.shape}")
    try:
        desc = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant,
                          parse_float=_finite_float)
    except RecursionError:
        raise FormatError(f"{path}: malformed description: JSON nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"{path}: malformed description: not valid JSON "
                          f"({str(exc)[:200]})") from None
    if not isinstance(desc, dict):
        raise FormatError(f"{path}: malformed description: expected a JSON object, got "
                          f"{type(desc).__name__}")
    fmt = desc.get("format")
    if fmt not in (MODEL_FORMAT, CHECKPOINT_FORMAT):
        raise FormatError(f"{path}: not a fusenn model file (format {_short(fmt)}, expected "
                          f"{MODEL_FORMAT!r})")
    version = desc.get("format_version")
    match = re.fullmatch(r"([0-9]{1,6})\.([0-9]{1,6})", version) if isinstance(
        version, str) else None
    if match is None:
        raise FormatError(f"{path}: malformed description: format_version {_short(version)} "
                          f"is not 'major.minor'")
    major = int(match.group(1))
    if major != FORMAT_VERSION[0]:
        newer = major > FORMAT_VERSION[0]
        raise FormatError(
            f"{path}: incompatible format version {version} (written by fusenn "
            f"{_short(desc.get('fusenn_version', '?'))}); this fusenn {__version__} reads "
            f"format version {FORMAT_VERSION[0]}.x" + ("; upgrade fusenn to read it" if newer
                                                        else ""))
    return desc


# -- validating the description ---------------------------------------------------------------

def _is_int(value: Any) -> Any:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


class _Checker:
    """Validates one description, raising FormatError that names the file and the field."""

    def __init__(self, path: Any, desc: Any) -> None:
        self.path = path
        minor = int(desc["format_version"].split(".")[1])
        # A newer minor version may add fields; this version's own files may not.
        self.strict = minor <= FORMAT_VERSION[1]

    def fail(self, message: Any) -> Any:
        return FormatError(f"{self.path}: malformed description: {message}")

    def keys(self, d: Any, what: Any, known: Any, required: Any = ()) -> None:
        if not isinstance(d, dict):
            raise self.fail(f"{what} is {_short(d)}, expected a JSON object")
        for key in required:
            if key not in d:
                raise self.fail(f"{what} has no {key!r}")
        if self.strict:
            unknown = sorted(set(d) - set(known))
            if unknown:
                raise self.fail(f"{what} has unknown field(s) "
                                f"{', '.join(_short(k, 40) for k in unknown[:5])}")

    def field(self, d: Any, key: Any, what: Any, test: Any, expected: Any, default: Any = None) -> Any:
        value = d.get(key, default)
        if not test(value):
            raise self.fail(f"{what} {key!r} is {_short(value)}, expected {expected}")
        return value


# Every layer type's configuration fields: kind of value, and whether it must be present.
_SIZE, _SIZE_OR_NONE, _NUMBER, _BOOL, _ACTIVATION = ("size", "size_or_none", "number",
                                                      "bool", "activation")
_LAYER_FIELDS = {
    "Dense": {"n_in": _SIZE, "n_out": _SIZE, "activation": _ACTIVATION},
    "DenseNoBias": {"n_in": _SIZE, "n_out": _SIZE},
    "Activation": {"activation": _ACTIVATION},
    "Dropout": {"rate": _NUMBER},
    "BatchNorm": {"n_features": _SIZE_OR_NONE, "momentum": _NUMBER, "eps": _NUMBER},
    "PReLU": {"n_units": _SIZE_OR_NONE, "init": _NUMBER},
    "Swish": {"beta": _NUMBER, "trainable": _BOOL},
    "RReLU": {"lower": _NUMBER, "upper": _NUMBER},
    "Maxout": {"n_in": _SIZE, "n_out": _SIZE, "k": _SIZE},
}
_LAYER_REQUIRED = {"Dense": ("n_in", "n_out"), "DenseNoBias": ("n_in", "n_out"),
                   "Activation": ("activation",), "Maxout": ("n_in", "n_out")}


def _check_value(kind: Any, value: Any) -> Any:
    if kind == _SIZE:
        return _is_int(value) and 1 <= value <= _MAX_WIDTH
    if kind == _SIZE_OR_NONE:
        return value is None or _is_int(value) and 1 <= value <= _MAX_WIDTH
    if kind == _NUMBER:
        return _is_number(value)
    if kind == _BOOL:
        return isinstance(value, bool)
    return True  # activations are checked by _check_activation


def _check_activation(spec: Any) -> None:
    """Raise ValueError/TypeError unless ``spec`` (None, a name, or {"name": ..., params})
    names an activation with valid parameters."""

    if spec is None or isinstance(spec, str):
        _acts.get(spec)
        return
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ValueError(f"activation must be a name or an object with a 'name', got "
                         f"{_short(spec)}")
    params = {k: v for k, v in spec.items() if k != "name"}
    for k, v in params.items():
        if not (_is_number(v) or isinstance(v, (bool, str))):
            raise ValueError(f"activation parameter {k!r} is {_short(v)}")
    _acts.get(spec["name"], **params)


def _describe_layer(kind: Any, cfg: Any, n_in: Any, n_out: Any) -> Any:
    """The layer's ``describe()`` text, from its configuration (for messages)."""
    if kind in ("Dense", "DenseNoBias"):
        return f"{kind}({n_in} -> {n_out})"
    if kind == "Maxout":
        return f"Maxout({n_in} -> {n_out}, k={cfg.get('k', 2)})"
    if kind in ("BatchNorm", "PReLU"):
        return f"{kind}({n_in})"
    return kind


def _plan_layer(check: Any, i: Any, entry: Any, width: Any) -> Any:
    """``(kind, config, describe, n_in, n_out, [(name, shape, is_param)])`` of layer ``i``,
    from its description alone (``width``: its input width, None for the first layer)."""

    path = check.path
    check.keys(entry, f"layer {i}", ("class", "config", "params", "buffers"),
               ("class", "config"))
    kind = check.field(entry, "class", f"layer {i}", lambda v: isinstance(v, str), "a name")
    config = entry["config"]
    if kind not in _layers.LAYERS:
        raise FormatError(f"{path}: unknown layer type {_short(kind, 40)} (layer {i}); this "
                          f"fusenn knows {', '.join(sorted(_layers.LAYERS))}")
    fields = _LAYER_FIELDS[kind]

    def invalid(reason: Any) -> Any:
        return FormatError(f"{path}: layer {i} ({kind}) has an invalid configuration "
                           f"{_short(config)}: {reason}")

    if not isinstance(config, dict):
        raise check.fail(f"layer {i} 'config' is {_short(config)}, expected a JSON object")
    for key in _LAYER_REQUIRED.get(kind, ()):
        if key not in config:
            raise invalid(f"no {key!r}")
    for key, value in config.items():
        if key not in fields:
            raise invalid(f"unknown field {_short(key, 40)}")
        if not _check_value(fields[key], value):
            raise invalid(f"{key} is {_short(value)}")
    if "activation" in config:
        try:
            _check_activation(config["activation"])
        except (TypeError, ValueError) as exc:
            raise invalid(str(exc)) from None

    def mismatch(n_in: Any) -> Any:
        return FormatError(f"{path}: the layers do not fit together: layer {i} "
                           f"({_describe_layer(kind, config, n_in, None)}) expects {n_in} "
                           f"inputs but receives {width}")

    if kind in ("Dense", "DenseNoBias", "Maxout"):
        n_in, n_out = config["n_in"], config["n_out"]
        if width is not None and width != n_in:
            raise mismatch(n_in)
        cols = n_out * config.get("k", 2) if kind == "Maxout" else n_out
        arrays: Any = [("W", (n_in, cols), True)]
        if kind != "DenseNoBias":
            arrays.append(("b", (cols,), True))
    else:
        n = config.get({"BatchNorm": "n_features", "PReLU": "n_units"}.get(kind, ""))
        if n is not None and width is not None and n != width:
            raise mismatch(n)
        n_in = n_out = width if width is not None else n
        if n_in is None:
            raise FormatError(f"{path}: the layers do not fit together: the first layer "
                              f"({kind}) must know its input width")
        arrays = {"BatchNorm": [("gamma", (n_in,), True), ("beta", (n_in,), True),
                                ("running_mean", (n_in,), False),
                                ("running_var", (n_in,), False)],
                  "PReLU": [("alpha", (n_in,), True)],
                  "Swish": [("beta", (1,), True)] if config.get("trainable", True) else [],
                  }.get(kind, [])
    for kind_of, is_param in (("params", True), ("buffers", False)):
        names = [name for name, _, p in arrays if p is is_param]
        if kind_of in entry and entry[kind_of] != names:
            raise check.fail(f"layer {i} ({kind}) lists {kind_of} {_short(entry[kind_of])}, "
                             f"expected {names}")
    return kind, config, _describe_layer(kind, config, n_in, n_out), n_in, n_out, arrays


class _Plan:
    """What a valid description implies: the model's dtype and layers, and every array the
    file must hold, as ``{name: (shape, what, nonneg)}``. Every array must be finite;
    ``nonneg`` says which part cannot be negative: None (no part), ``...`` (all of it) or a
    tuple of row indices."""

    def __init__(self, desc: Any) -> None:
        self.desc = desc
        self.layers: Any = []  # (kind, config)
        self.arrays: Dict[str, Any] = {}
        self.dtype = None
        self.task = None
        self.n_params = 0
        self.stochastic: Any = set()  # indices of layers that draw random numbers


_MODEL_KEYS = ("format", "format_version", "fusenn_version", "dtype", "task", "n_in", "n_out",
               "n_params", "layers")
_CHECKPOINT_KEYS = ("optimizer", "trainer")


def _plan(path: Any, desc: Any) -> Any:
    """Validate the whole description ``desc`` (model and, for a checkpoint, optimiser and
    trainer) and return the :class:`_Plan` of the arrays it implies. Nothing is allocated
    beyond the description itself."""

    check = _Checker(path, desc)
    is_checkpoint = desc["format"] == CHECKPOINT_FORMAT
    check.keys(desc, "the model", _MODEL_KEYS + (_CHECKPOINT_KEYS if is_checkpoint else ()),
               ("dtype", "layers") + (_CHECKPOINT_KEYS if is_checkpoint else ()))
    plan = _Plan(desc)
    check.field(desc, "fusenn_version", "the model", lambda v: v is None or isinstance(v, str),
                "a version string")
    dtype_name = check.field(desc, "dtype", "the model", lambda v: isinstance(v, str),
                             "'float32' or 'float64'")
    if dtype_name not in ("float32", "float64"):
        raise check.fail(f"dtype {_short(dtype_name)} (expected float32 or float64)")
    plan.dtype = np.dtype(dtype_name)
    plan.task = desc.get("task")
    if plan.task is not None and plan.task not in TASKS:
        raise check.fail(f"task {_short(plan.task)} (expected one of {', '.join(TASKS)} or "
                         f"null)")
    entries = check.field(desc, "layers", "the model", lambda v: isinstance(v, list),
                          "a list of layers")
    if not entries:
        raise check.fail("the model has no layers")
    if len(entries) > _MAX_LAYERS:
        raise check.fail(f"{len(entries)} layers (at most {_MAX_LAYERS})")
    width = None
    n_in = None
    for i, entry in enumerate(entries):
        kind, config, describe, layer_in, width_out, arrays = _plan_layer(check, i, entry,
                                                                          width)
        n_in = layer_in if i == 0 else n_in
        plan.layers.append((kind, config))
        if _layers.LAYERS[kind].stochastic:
            plan.stochastic.add(i)
        for name, shape, is_param in arrays:
            nonneg = ... if (kind, name) == ("BatchNorm", "running_var") else None
            plan.arrays[_array_name(i, name)] = (shape, f"{describe}.{name}", nonneg)
            if is_param:
                plan.n_params += math.prod(shape)
        width = width_out
    for key, actual in (("n_in", n_in), ("n_out", width), ("n_params", plan.n_params)):
        if key in desc and desc[key] != actual:
            raise check.fail(f"{key} is {_short(desc[key])} but the layers give {actual}")
    if is_checkpoint:
        _plan_checkpoint(check, desc, plan)
    return plan


def _plan_checkpoint(check: Any, desc: Any, plan: Any) -> None:
    opt = desc["optimizer"]
    check.keys(opt, "the optimizer", ("name", "config", "t", "state"), ("name", "config", "t"))
    name = check.field(opt, "name", "the optimizer", lambda v: isinstance(v, str), "a name")
    config = check.field(opt, "config", "the optimizer", lambda v: isinstance(v, dict) and all(
        _is_number(x) or isinstance(x, bool) for x in v.values()), "an object of numbers")
    try:
        _optim.get(name, **config)
    except (TypeError, ValueError) as exc:
        raise check.fail(f"optimizer: {exc}") from None
    check.field(opt, "t", "the optimizer", lambda v: _is_int(v) and 0 <= v <= _MAX_STEP,
                f"a step count in 0..{_MAX_STEP}")
    state = check.field(opt, "state", "the optimizer", lambda v: v in (None, OPTIMIZER_STATE),
                        f"null or {OPTIMIZER_STATE!r}")
    if state is not None:
        # The second moments of Adam (row 1), RMSprop and Adagrad (row 0) cannot be negative.
        rows = {"adam": (1,), "rmsprop": (0,), "adagrad": (0,)}.get(_optim.get(name).name, ())
        plan.arrays[OPTIMIZER_STATE] = ((2, plan.n_params), "", rows)

    tr = desc["trainer"]
    check.keys(tr, "the trainer", ("loss", "batch_size", "shuffle", "random_state", "metrics",
                                   "verbose", "fast_path", "rng", "rng_handed_out",
                                   "layer_rngs"), ("loss", "rng"))
    loss = check.field(tr, "loss", "the trainer", lambda v: isinstance(v, str), "a loss name")
    try:
        _losses.get(loss)
    except (TypeError, ValueError) as exc:
        raise check.fail(f"trainer: {exc}") from None
    check.field(tr, "batch_size", "the trainer",
                lambda v: v is None or _is_int(v) and 1 <= v <= 2**62, "null or a positive "
                "integer")
    check.field(tr, "shuffle", "the trainer", lambda v: isinstance(v, bool), "true or false",
                True)
    check.field(tr, "random_state", "the trainer",
                lambda v: v is None or v == "generator" or _is_int(v) and 0 <= v < 2**128,
                "null, a non-negative integer seed or 'generator'")
    check.field(tr, "metrics", "the trainer", lambda v: isinstance(v, list) and len(v) <= 16
                and all(isinstance(m, str) for m in v), "a list of metric names", [])
    check.field(tr, "verbose", "the trainer", lambda v: _is_int(v) and 0 <= v <= 2**31,
                "a non-negative integer", 0)
    check.field(tr, "fast_path", "the trainer", lambda v: v == "auto" or v is False,
                "'auto' or false", "auto")
    check.field(tr, "rng_handed_out", "the trainer", lambda v: isinstance(v, bool),
                "true or false", False)
    _check_rng_state(check.path, tr.get("rng"), "the trainer's rng")
    layer_rngs = check.field(tr, "layer_rngs", "the trainer", lambda v: isinstance(v, dict),
                             "an object", {})
    for key, st in layer_rngs.items():
        if not (key.isdigit() and len(key) < 7 and int(key) in plan.stochastic):
            raise FormatError(f"{check.path}: malformed checkpoint: layer_rngs names layer "
                              f"{_short(key, 40)}, which is not a stochastic layer of the "
                              f"model")
        _check_rng_state(check.path, st, f"layer {key}'s rng")


# The state of each bit generator that can be restored: every field's kind and bounds.
_U32, _U64, _U128 = 2**32, 2**64, 2**128
_PCG_STATE = {"state": {"state": ("int", _U128), "inc": ("int", _U128)},
              "has_uint32": ("int", 2), "uinteger": ("int", _U32)}
_RNG_STATES = {
    "PCG64": _PCG_STATE,
    "PCG64DXSM": _PCG_STATE,
    "MT19937": {"state": {"key": ("array", "uint32", 624), "pos": ("int", 625)}},
    "Philox": {"state": {"counter": ("array", "uint64", 4), "key": ("array", "uint64", 2)},
               "buffer": ("array", "uint64", 4), "buffer_pos": ("int", 5),
               "has_uint32": ("int", 2), "uinteger": ("int", _U32)},
    "SFC64": {"state": {"state": ("array", "uint64", 4)}, "has_uint32": ("int", 2),
              "uinteger": ("int", _U32)},
}
assert set(_RNG_STATES) == set(_BIT_GENERATORS)


def _rng_state_value(spec: Any, value: Any) -> Any:
    """``value`` (JSON) as the bit-generator state field ``spec`` describes, or None."""
    if isinstance(spec, dict):
        if not isinstance(value, dict) or set(value) != set(spec):
            return None
        out = {}
        for key, sub in spec.items():
            out[key] = _rng_state_value(sub, value[key])
            if out[key] is None:
                return None
        return out
    if spec[0] == "int":
        return value if _is_int(value) and 0 <= value < spec[1] else None
    _, dtype, length = spec
    dtype = np.dtype(dtype)
    if not (isinstance(value, dict) and set(value) == {"__ndarray__", "dtype"}
            and value["dtype"] in (dtype.str, dtype.name)):
        return None
    items = value["__ndarray__"]
    limit = 2 ** (8 * dtype.itemsize)
    if not (isinstance(items, list) and len(items) == length
            and all(_is_int(x) and 0 <= x < limit for x in items)):
        return None
    return np.array(items, dtype=dtype)


def _check_rng_state(path: Any, value: Any, what: Any) -> Any:
    """The numpy state dict of a saved random generator, every field checked."""
    name = value.get("bit_generator") if isinstance(value, dict) else None
    if not isinstance(name, str) or name not in _RNG_STATES:
        raise FormatError(f"{path}: malformed checkpoint: {what} has bit generator "
                          f"{_short(name, 40)} (expected one of {', '.join(_BIT_GENERATORS)})")
    fields = {k: v for k, v in value.items() if k != "bit_generator"}
    state = _rng_state_value(_RNG_STATES[name], fields)
    if state is None:
        raise FormatError(f"{path}: malformed checkpoint: {what} state is invalid (a "
                          f"{name} state has fields {_rng_fields(_RNG_STATES[name])}, got "
                          f"{_short(fields)})")
    return {"bit_generator": name, **state}


def _rng_fields(spec: Any) -> Any:
    return "{" + ", ".join(k + (": " + _rng_fields(v) if isinstance(v, dict) else "")
                           for k, v in spec.items()) + "}"


# -- reading the arrays -----------------------------------------------------------------------

def _read_arrays(path: Any, zf: Any, members: Any, plan: Any) -> Any:
    """``{name: array}`` for every array of ``plan``, each checked (name, declared size,
    header, then values) before the next is read; extra or missing members are refused
    before any is read."""
    names = set(members) - {DESCRIPTION}
    missing = [key for key in plan.arrays if key not in names]
    if missing:
        s = "s" if len(missing) > 1 else ""
        raise FormatError(f"{path}: missing array{s} {', '.join(map(repr, missing[:10]))}")
    extra = sorted(names - set(plan.arrays))
    if extra:
        raise FormatError(f"{path}: unexpected extra array(s) "
                          f"{', '.join(_short(k, 60) for k in extra[:10])}")
    arrays = {}
    for key, (shape, what, nonneg) in plan.arrays.items():
        label = f"array {key!r}" + (f" ({what})" if what else "")

        def expect(got_shape: Any, fortran: Any, dtype: Any, shape: Any = shape, label: Any = label) -> None:
            if got_shape != shape:
                raise FormatError(f"{path}: {label} has shape {got_shape}, expected {shape}")
            if dtype.newbyteorder("=") != plan.dtype or dtype.fields is not None:
                raise FormatError(f"{path}: {label} has dtype {dtype}, expected {plan.dtype} "
                                  f"(the model's dtype)")

        arr = _read_npy(path, zf, members[key], key, expect,
                        math.prod(shape) * plan.dtype.itemsize)
        arr = arr.astype(plan.dtype, copy=False)
        if not np.all(np.isfinite(arr)):
            raise FormatError(f"{path}: {label} holds NaN or infinite values; a saved model "
                              f"is finite")
        if nonneg is not None and np.any(arr[nonneg if nonneg is ... else list(nonneg)] < 0):
            raise FormatError(f"{path}: {label} holds negative values where only "
                              f"non-negative ones are possible (a variance or a sum of "
                              f"squares)")
        arrays[key] = arr
    return arrays


# -- building ---------------------------------------------------------------------------------

def _build_model(path: Any, plan: Any, arrays: Any) -> Any:
    """The Sequential of ``plan``, its parameters and buffers those of ``arrays`` (already
    checked). Dense and Maxout layers start from zeros, not from a pointless random draw."""

    layers = []
    zeros = _inits.get("zeros")
    for i, (kind, config) in enumerate(plan.layers):
        cfg = dict(config)
        if kind in ("Dense", "DenseNoBias", "Maxout"):
            cfg["init"] = zeros
        try:
            layer = _layers.from_config(kind, cfg, plan.dtype)
        except (TypeError, ValueError, OverflowError) as exc:
            raise FormatError(f"{path}: layer {i} ({kind}) has an invalid configuration "
                              f"{_short(config)}: {exc}") from None
        # The initialiser a fresh layer would have (for a later reset_parameters).
        if isinstance(layer, _layers.Dense):
            layer.init = _inits.default_for(layer.activation.name)
        elif isinstance(layer, (_layers.Maxout, _layers.DenseNoBias)):
            layer.init = _inits.default_for("linear")  # glorot_uniform
        layers.append(layer)
    try:
        model = Sequential(layers, dtype=plan.dtype, task=plan.task)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{path}: the layers do not fit together: {exc}") from None
    names = [(_array_name(i, n), p) for i, layer in enumerate(model.layers)
             for names, p in ((layer.param_names, True), (layer.buffer_names, False))
             for n in names]
    try:
        model.set_weights([arrays[key] for key, p in names if p])
        model.set_buffers([arrays[key] for key, p in names if not p])
    except (TypeError, ValueError) as exc:  # pragma: no cover - the plan checked them
        raise FormatError(f"{path}: {exc}") from None
    return model


def _read(path: Any, arrays: Any = True) -> Any:
    """``(description, plan, {name: array} or None)`` of the file at ``path``."""
    with _open_archive(path) as (zf, members):
        desc = _read_description(path, zf, members)
        plan = _plan(path, desc)
        data = _read_arrays(path, zf, members, plan) if arrays else None
    return desc, plan, data


def read_description(path: PathLike) -> Dict[str, Any]:
    """The JSON description of a saved model or checkpoint.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save` or :func:`save_checkpoint`.

    Returns
    -------
    dict
        The description, validated completely; the arrays are not read.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    FormatError
        If the file or its description is malformed (see the module docstring).
    """
    path = os.fspath(path)
    desc: Dict[str, Any] = _read(path, arrays=False)[0]
    return desc


def load(path: PathLike) -> Sequential:
    """Rebuild the model saved at ``path`` by :func:`save` (or the model of a checkpoint).

    Nothing is built before the whole file is checked: the description completely, every
    array's declared size and header, then its values (finite; BatchNorm running variances
    non-negative). No more is read or inflated than the description implies.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.

    Returns
    -------
    fusenn.Sequential
        A model whose predictions are identical to the saved one's.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    FormatError
        Naming the file and the problem, if it is not a fusenn model this version can read
        (see the module docstring).
    """
    path = os.fspath(path)
    _, plan, arrays = _read(path)
    model: Sequential = _build_model(path, plan, arrays)
    return model


def _restore_trainer(path: Any, desc: Any, model: Any, arrays: Any, callbacks: Any) -> Any:
    """The Trainer that :meth:`fusenn.Trainer.state_dict` described, around ``model`` (the
    description already checked by the plan)."""
    opt, tr = desc["optimizer"], dict(desc["trainer"])
    state = {
        "settings": {key: tr[key] for key in ("loss", "batch_size", "shuffle", "random_state",
                                              "metrics", "verbose", "fast_path") if key in tr},
        "optimizer": {"name": opt["name"], "config": opt["config"], "t": opt["t"],
                      "state": arrays.get(OPTIMIZER_STATE)},
        "rng": _check_rng_state(path, tr["rng"], "the trainer's rng"),
        "rng_handed_out": tr.get("rng_handed_out", False),
        "layer_rngs": {key: _check_rng_state(path, st, f"layer {key}'s rng")
                       for key, st in (tr.get("layer_rngs") or {}).items()},
    }
    try:
        return Trainer.from_state_dict(model, state, callbacks=callbacks)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{path}: malformed checkpoint: {exc}") from None


def load_checkpoint(path: PathLike, callbacks: Any = ()) -> Trainer:
    """A :class:`fusenn.Trainer` restored from a :func:`save_checkpoint` file.

    Its model, optimiser (settings, step count and state), settings and random generators are
    exactly those saved, so its next ``fit`` continues the interrupted training bit for bit.
    The file is checked as completely as by :func:`load` before anything is built.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.
    callbacks : sequence of fusenn.callbacks.Callback
        Given to the new Trainer (callbacks are not saved).

    Returns
    -------
    fusenn.Trainer

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    FormatError
        As :func:`load` does, and for a file that is a plain model rather than a checkpoint.
    """
    path = os.fspath(path)
    desc = None
    with _open_archive(path) as (zf, members):
        desc = _read_description(path, zf, members)
        if desc["format"] != CHECKPOINT_FORMAT:
            raise FormatError(f"{path}: a fusenn model, not a Trainer checkpoint (write one "
                              f"with fusenn.io.save_checkpoint; read a model with "
                              f"fusenn.load)")
        plan = _plan(path, desc)
        arrays = _read_arrays(path, zf, members, plan)
    model = _build_model(path, plan, arrays)
    trainer: Trainer = _restore_trainer(path, desc, model, arrays, callbacks)
    return trainer
