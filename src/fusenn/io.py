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

Writing is atomic: the archive goes to a temporary file in the target's directory, is flushed
to disk, then renamed over the target, so a crash mid-save leaves the old file intact.

Reading trusts nothing: arrays are read with ``allow_pickle=False`` (no code from the file
ever runs) and the file is refused with :class:`fusenn.errors.FormatError`, naming the file
and the problem, when it is truncated or not a zip archive, holds no fusenn description, has
a format version this fusenn cannot read, malformed JSON, an unknown layer type, missing or
extra arrays, or arrays of the wrong shape or dtype. A missing file raises FileNotFoundError.

>>> import fusenn as fn, numpy as np, tempfile, os
>>> net = fn.Sequential([fn.layers.Dense(4, 8, "relu"), fn.layers.Dense(8, 3)], random_state=0)
>>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
>>> net.save(path)
>>> X = np.random.default_rng(0).random((5, 4), dtype=np.float32)
>>> bool(np.array_equal(fn.load(path).forward(X), net.forward(X)))
True
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

from ._version import __version__
from .errors import FormatError, FusennError

__all__ = ["save", "load", "save_checkpoint", "load_checkpoint", "read_description",
           "FORMAT_VERSION"]

MODEL_FORMAT = "fusenn-model"
CHECKPOINT_FORMAT = "fusenn-checkpoint"
#: (major, minor). A reader accepts any minor version of its major: minor versions only add
#: optional fields. A new major version is a change this reader cannot follow.
FORMAT_VERSION = (1, 0)
DESCRIPTION = "description"
OPTIMIZER_STATE = "optimizer.state"

# The bit generators whose state can be restored by name (numpy.random.<name>).
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def _jsonable(value):
    """``value`` with numpy scalars and arrays turned into JSON types (arrays tagged)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot describe {type(value).__name__} {value!r} in JSON")


def _from_jsonable(value):
    """Inverse of :func:`_jsonable` for tagged arrays."""
    if isinstance(value, dict):
        if set(value) == {"__ndarray__", "dtype"}:
            return np.array(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
        return {k: _from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    return value


def _array_name(index, name):
    return f"layers.{index}.{name}"


def _describe_model(model):
    """The JSON description of ``model`` and its arrays ``{name: array}``."""
    layers, arrays = [], {}
    for i, layer in enumerate(model.layers):
        entry = {"class": type(layer).__name__, "config": layer.get_config(),
                 "params": [], "buffers": []}
        for kind, names in (("params", layer.param_names), ("buffers", layer.buffer_names)):
            for name in names:
                key = _array_name(i, name)
                arrays[key] = np.ascontiguousarray(getattr(layer, name))
                entry[kind].append(name)
        layers.append(entry)
    desc = {
        "format": MODEL_FORMAT,
        "format_version": "%d.%d" % FORMAT_VERSION,
        "fusenn_version": __version__,
        "dtype": np.dtype(model.dtype).name,
        "task": model.task,
        "n_in": int(model.n_in),
        "n_out": int(model.n_out),
        "n_params": int(model.n_params),
        "layers": layers,
    }
    return desc, arrays


def _new_file_mode():
    """Permissions an ordinary new file gets here (0666 less the umask)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _write_atomic(path, desc, arrays):
    """Write ``arrays`` and the JSON ``desc`` to ``path`` as one .npz, atomically."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to {path}: it is a directory")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save to {path}: directory {directory} does not exist")
    if DESCRIPTION in arrays:
        raise ValueError(f"array name {DESCRIPTION!r} is reserved")
    text = json.dumps(_jsonable(desc), allow_nan=False, sort_keys=False)
    payload = {DESCRIPTION: np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays}
    mode = (os.stat(path).st_mode & 0o777) if os.path.exists(path) else _new_file_mode()

    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            # A file object, not a name: np.savez would append ".npz" to a name without it.
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory):
    """Make the rename itself durable where the platform allows it (POSIX)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _check_model(model):
    from .model import Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"expected a fusenn.Sequential, got {type(model).__name__}")


def save(model, path):
    """Write ``model`` to ``path`` as one ``.npz`` file (arrays plus a JSON description).

    The path is used exactly as given (no ``.npz`` is appended). The write is atomic: a
    temporary file in the same directory is written, flushed to disk and renamed over
    ``path``; if anything fails the temporary file is removed and an existing ``path`` is left
    as it was. Nothing is pickled. Read it back with :func:`load` (``fusenn.load``).
    """
    _check_model(model)
    desc, arrays = _describe_model(model)
    _write_atomic(path, desc, arrays)


def _rng_state(rng):
    return _jsonable(rng.bit_generator.state)


def save_checkpoint(trainer, path):
    """Write ``trainer`` (its model, optimiser and random state) to ``path`` atomically.

    :func:`load_checkpoint` gives back a Trainer whose next ``fit`` continues exactly where
    this one stopped: ``fit(epochs=2)``, checkpoint, load, ``fit(epochs=2)`` gives the same
    weights, bit for bit, as ``fit(epochs=4)``. Callbacks are not saved (pass them to
    :func:`load_checkpoint`). The loss and optimiser must be fusenn's own (by name).
    """
    from . import losses as _losses
    from . import optim as _optim
    from .trainer import Trainer

    if not isinstance(trainer, Trainer):
        raise TypeError(f"expected a fusenn.Trainer, got {type(trainer).__name__}")
    model, opt = trainer.model, trainer.optimizer
    if trainer.loss.name not in _losses.names() or type(trainer.loss) is not type(
            _losses.get(trainer.loss.name)):
        raise ValueError(f"cannot checkpoint a custom loss ({type(trainer.loss).__name__}); "
                         f"only fusenn's losses can be saved by name")
    if opt.name not in _optim.names() or type(opt) is not type(_optim.get(opt.name)):
        raise ValueError(f"cannot checkpoint a custom optimiser ({type(opt).__name__}); only "
                         f"fusenn's optimisers can be saved by name")
    desc, arrays = _describe_model(model)
    desc["format"] = CHECKPOINT_FORMAT
    random_state = trainer.random_state
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        random_state = int(random_state)
    elif random_state is not None:
        random_state = "generator"  # a Generator: its state is the saved "rng" below
    state = opt.state
    if state is not None:
        arrays[OPTIMIZER_STATE] = np.ascontiguousarray(state)
    desc["optimizer"] = {"name": opt.name, "config": opt.get_config(), "t": int(opt.t),
                         "state": None if state is None else OPTIMIZER_STATE}
    desc["trainer"] = {
        "loss": trainer.loss.name,
        "batch_size": trainer.batch_size,
        "shuffle": trainer.shuffle,
        "random_state": random_state,
        "metrics": list(trainer.metrics),
        "verbose": trainer.verbose,
        "fast_path": trainer.fast_path,
        "rng": _rng_state(trainer.rng),
        "rng_handed_out": bool(trainer._rng_handed_out),
        "layer_rngs": {str(i): _rng_state(layer.rng) for i, layer in enumerate(model.layers)
                       if layer.stochastic and getattr(layer, "rng", None) is not None},
    }
    _write_atomic(path, desc, arrays)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

def _read_archive(path):
    """``(description dict, {name: array})`` from ``path``; FormatError for anything that is
    not a readable fusenn archive."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, not a fusenn model file")
    with open(path, "rb") as f:
        head = f.read(4)
        if head[:2] != b"PK":
            what = "an empty file" if not head else "not a zip/.npz archive"
            raise FormatError(f"{path}: not a fusenn model file ({what})")
        f.seek(0)
        try:
            archive = np.load(f, allow_pickle=False)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise FormatError(f"{path}: truncated or corrupt .npz archive ({exc})") from None
        with archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):  # pragma: no cover
                raise FormatError(f"{path}: not a fusenn model file (not an .npz archive)")
            names = list(archive.files)
            if DESCRIPTION not in names:
                shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
                raise FormatError(f"{path}: not a fusenn model file (an .npz archive without "
                                  f"a {DESCRIPTION!r} entry; it holds: {shown or 'nothing'})")
            arrays = {}
            for name in names:
                try:
                    arrays[name] = archive[name]
                except ValueError as exc:
                    if "pickle" in str(exc):
                        raise FormatError(f"{path}: array {name!r} holds Python objects "
                                          f"(pickled data), which fusenn never loads") from None
                    raise FormatError(f"{path}: array {name!r} is unreadable ({exc})") from None
                except (zipfile.BadZipFile, EOFError, OSError) as exc:
                    raise FormatError(f"{path}: truncated or corrupt .npz archive: array "
                                      f"{name!r} is unreadable ({exc})") from None
                if not isinstance(arrays[name], np.ndarray):  # a member that is no .npy
                    raise FormatError(f"{path}: entry {name!r} of the archive is not a NumPy "
                                      f"array")
    desc = _parse_description(path, arrays.pop(DESCRIPTION))
    return desc, arrays


def _parse_description(path, raw):
    if raw.dtype == np.uint8 and raw.ndim == 1:
        data = raw.tobytes()
    elif raw.dtype.kind == "U" and raw.ndim == 0:
        data = str(raw[()]).encode("utf-8")
    else:
        raise FormatError(f"{path}: malformed description: expected UTF-8 JSON bytes, got an "
                          f"array of dtype {raw.dtype} and shape {raw.shape}")
    try:
        desc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path}: malformed description: not valid JSON ({exc})") from None
    if not isinstance(desc, dict):
        raise FormatError(f"{path}: malformed description: expected a JSON object, got "
                          f"{type(desc).__name__}")
    fmt = desc.get("format")
    if fmt not in (MODEL_FORMAT, CHECKPOINT_FORMAT):
        raise FormatError(f"{path}: not a fusenn model file (format {fmt!r}, expected "
                          f"{MODEL_FORMAT!r})")
    version = desc.get("format_version")
    try:
        major, minor = (int(v) for v in str(version).split("."))
    except ValueError:
        raise FormatError(f"{path}: malformed description: format_version {version!r} is not "
                          f"'major.minor'") from None
    if major != FORMAT_VERSION[0]:
        newer = major > FORMAT_VERSION[0]
        raise FormatError(
            f"{path}: incompatible format version {version} (written by fusenn "
            f"{desc.get('fusenn_version', '?')}); this fusenn {__version__} reads format "
            f"version {FORMAT_VERSION[0]}.x" + ("; upgrade fusenn to read it" if newer else ""))
    return desc


def _field(path, desc, key, types, what):
    if key not in desc:
        raise FormatError(f"{path}: malformed description: {what} has no {key!r}")
    value = desc[key]
    if not isinstance(value, types) or isinstance(value, bool) and bool not in (
            types if isinstance(types, tuple) else (types,)):
        raise FormatError(f"{path}: malformed description: {what} {key!r} is "
                          f"{value!r}")
    return value


def _build_model(path, desc, arrays):
    """Rebuild the Sequential described by ``desc``, check and load its arrays (taking them
    out of ``arrays``)."""
    from . import layers as _layers
    from ._validation import float_dtype
    from .model import TASKS, Sequential

    dtype_name = _field(path, desc, "dtype", str, "the model")
    if dtype_name not in ("float32", "float64"):
        raise FormatError(f"{path}: malformed description: dtype {dtype_name!r} (expected "
                          f"float32 or float64)")
    dtype = float_dtype(dtype_name)
    task = desc.get("task")
    if task is not None and task not in TASKS:
        raise FormatError(f"{path}: malformed description: task {task!r} (expected one of "
                          f"{', '.join(TASKS)} or null)")
    entries = _field(path, desc, "layers", list, "the model")
    if not entries:
        raise FormatError(f"{path}: malformed description: the model has no layers")

    layers = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise FormatError(f"{path}: malformed description: layer {i} is {entry!r}")
        kind = _field(path, entry, "class", str, f"layer {i}")
        config = _field(path, entry, "config", dict, f"layer {i}")
        if kind not in _layers.LAYERS:
            raise FormatError(f"{path}: unknown layer type {kind!r} (layer {i}); this fusenn "
                              f"knows {', '.join(sorted(_layers.LAYERS))}")
        try:
            layers.append(_layers.from_config(kind, config, dtype))
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{path}: layer {i} ({kind}) has an invalid configuration "
                              f"{config!r}: {exc}") from None
    try:
        model = Sequential(layers, dtype=dtype, task=task)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{path}: the layers do not fit together: {exc}") from None

    # Arrays: exactly those the rebuilt layers need, each of the right shape and dtype.
    expected = []  # (array name, layer, attribute, is_param)
    for i, layer in enumerate(model.layers):
        for name in layer.param_names:
            expected.append((_array_name(i, name), layer, name, True))
        for name in layer.buffer_names:
            expected.append((_array_name(i, name), layer, name, False))
    missing = [key for key, *_ in expected if key not in arrays]
    if missing:
        raise FormatError(f"{path}: missing array(s) {', '.join(map(repr, missing))}")
    for key, layer, name, _ in expected:
        arr, target = arrays[key], getattr(layer, name)
        if arr.shape != target.shape:
            raise FormatError(f"{path}: array {key!r} ({layer.describe()}.{name}) has shape "
                              f"{arr.shape}, expected {target.shape}")
        if arr.dtype != model.dtype:
            raise FormatError(f"{path}: array {key!r} ({layer.describe()}.{name}) has dtype "
                              f"{arr.dtype}, expected {model.dtype} (the model's dtype)")
    weights = [arrays.pop(key) for key, _, _, is_param in expected if is_param]
    buffers = [arrays.pop(key) for key, _, _, is_param in expected if not is_param]
    try:
        model.set_weights(weights)
        model.set_buffers(buffers)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{path}: {exc}") from None
    return model


def _refuse_extra(path, arrays):
    if arrays:
        raise FormatError(f"{path}: unexpected extra array(s) "
                          f"{', '.join(map(repr, sorted(arrays)))}")


def read_description(path):
    """The JSON description of a saved model or checkpoint, as a dict (arrays not checked)."""
    return _read_archive(path)[0]


def load(path):
    """Rebuild the model saved at ``path`` by :func:`save` (or the model of a checkpoint).

    Returns a :class:`fusenn.Sequential` whose predictions are identical to the saved one's.
    Raises FileNotFoundError if ``path`` does not exist and FormatError naming the problem if
    the file is not a fusenn model this version can read (see the module docstring).
    """
    desc, arrays = _read_archive(path)
    model = _build_model(os.fspath(path), desc, arrays)
    if desc["format"] == CHECKPOINT_FORMAT:
        arrays.pop(OPTIMIZER_STATE, None)
    _refuse_extra(os.fspath(path), arrays)
    return model


def _restore_rng(path, state, what):
    state = _from_jsonable(state)
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        raise FormatError(f"{path}: malformed checkpoint: {what} has bit generator {name!r} "
                          f"(expected one of {', '.join(_BIT_GENERATORS)})")
    bitgen = getattr(np.random, name)()
    try:
        bitgen.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise FormatError(f"{path}: malformed checkpoint: {what} state is invalid "
                          f"({exc})") from None
    return np.random.Generator(bitgen)


def load_checkpoint(path, callbacks=()):
    """A :class:`fusenn.Trainer` restored from a :func:`save_checkpoint` file.

    Its model, optimiser (settings, step count and state), settings and random generators are
    exactly those saved, so its next ``fit`` continues the interrupted training bit for bit.
    ``callbacks`` are given to the new Trainer. Raises FormatError as :func:`load` does, and
    for a file that is a plain model rather than a checkpoint.
    """
    from . import optim as _optim
    from .trainer import Trainer

    desc, arrays = _read_archive(path)
    path = os.fspath(path)
    if desc["format"] != CHECKPOINT_FORMAT:
        raise FormatError(f"{path}: a fusenn model, not a Trainer checkpoint (write one with "
                          f"fusenn.io.save_checkpoint; read a model with fusenn.load)")
    model = _build_model(path, desc, arrays)
    opt_desc = _field(path, desc, "optimizer", dict, "the checkpoint")
    tr = _field(path, desc, "trainer", dict, "the checkpoint")

    state = None
    if opt_desc.get("state") is not None:
        if OPTIMIZER_STATE not in arrays:
            raise FormatError(f"{path}: missing array {OPTIMIZER_STATE!r}")
        state = arrays.pop(OPTIMIZER_STATE)
        if state.shape != (2, model.n_params) or state.dtype != model.dtype:
            raise FormatError(f"{path}: array {OPTIMIZER_STATE!r} has shape {state.shape} and "
                              f"dtype {state.dtype}, expected {(2, model.n_params)} and "
                              f"{model.dtype}")
    _refuse_extra(path, arrays)
    try:
        opt = _optim.from_state({"name": _field(path, opt_desc, "name", str, "the optimizer"),
                                 "config": _field(path, opt_desc, "config", dict,
                                                  "the optimizer"),
                                 "t": _field(path, opt_desc, "t", int, "the optimizer"),
                                 "state": state})
    except (TypeError, ValueError) as exc:
        if isinstance(exc, FusennError):
            raise
        raise FormatError(f"{path}: malformed checkpoint: optimizer: {exc}") from None

    rng = _restore_rng(path, _field(path, tr, "rng", dict, "the trainer"), "the trainer's rng")
    random_state = tr.get("random_state")
    if random_state == "generator":
        random_state = rng
    try:
        trainer = Trainer(model, loss=_field(path, tr, "loss", str, "the trainer"),
                          optimizer=opt, batch_size=tr.get("batch_size"),
                          shuffle=tr.get("shuffle", True), random_state=random_state,
                          callbacks=callbacks, metrics=tr.get("metrics", "auto"),
                          verbose=tr.get("verbose", 0), fast_path=tr.get("fast_path", "auto"))
    except (TypeError, ValueError) as exc:
        if isinstance(exc, FusennError):
            raise
        raise FormatError(f"{path}: malformed checkpoint: trainer settings: {exc}") from None
    trainer.rng = rng
    trainer._rng_handed_out = bool(tr.get("rng_handed_out", False))
    layer_rngs = tr.get("layer_rngs") or {}
    if not isinstance(layer_rngs, dict):
        raise FormatError(f"{path}: malformed checkpoint: layer_rngs is {layer_rngs!r}")
    for key, st in layer_rngs.items():
        if not (key.isdigit() and int(key) < len(model.layers)
                and model.layers[int(key)].stochastic):
            raise FormatError(f"{path}: malformed checkpoint: layer_rngs names layer {key!r}, "
                              f"which is not a stochastic layer of the model")
        model.layers[int(key)].rng = _restore_rng(path, st, f"layer {key}'s rng")
    return trainer
