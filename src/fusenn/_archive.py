"""Writing fusenn's files: one ``.npz`` archive of arrays and a JSON description, atomically.

The format is described in :mod:`fusenn.io`, which reads it (and trusts nothing it reads).
This module only writes: :meth:`fusenn.Sequential.save` and
:meth:`fusenn.Trainer.save_checkpoint` call it, so that the model and the trainer need nothing
from the reader (imports point one way: ``io`` reads models and trainers, they do not import
``io``).

Saving writes only to a regular file or a new path: a symbolic link is followed to its target
(the link stays a link), and a directory, FIFO, socket or device node is refused with
:class:`fusenn.errors.SaveError` before anything is written. The archive goes to a temporary
file in the target's directory (named ``.<name>.fusenn-tmp-<pid>-<random>``), is flushed to
disk, then renamed over the target; temporaries left by killed saves are removed by later
saves in the same directory.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import stat
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ._version import __version__
from .errors import SaveError

MODEL_FORMAT = "fusenn-model"
CHECKPOINT_FORMAT = "fusenn-checkpoint"
#: (major, minor). A reader accepts any minor version of its major: minor versions only add
#: optional fields. A new major version is a change this reader cannot follow.
FORMAT_VERSION = (1, 0)
DESCRIPTION = "description"
OPTIMIZER_STATE = "optimizer.state"



# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
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


def _array_name(index: int, name: str) -> str:
    return f"layers.{index}.{name}"


def _describe_model(model: Any) -> Tuple[Dict[str, Any], Dict[str, Any]]:
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


def _new_file_mode() -> int:
    """Permissions an ordinary new file gets here (0666 less the umask)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


# Temporary files are named ".<target name>.fusenn-tmp-<pid>-<random>", in the target's
# directory, so that a save killed before its rename leaves a file that a later save can
# recognise as fusenn's own and remove (see _remove_stale_temporaries).
_TMP_TAG = ".fusenn-tmp-"
_TMP_PATTERN = re.compile(r"\A\..+\.fusenn-tmp-(?P<pid>[0-9]{1,10})-[0-9a-f]{8}\Z")
#: A temporary file untouched for this long is stale even if a process with its pid runs
#: (pids are reused). A live save rewrites its file continuously until the final rename.
STALE_TEMPORARY_SECONDS = 15 * 60
_MAX_SYMLINKS = 40  # as Linux's limit on links followed in one lookup


def _what_is(mode: int) -> str:
    """What a non-regular file is, in words, for messages."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device node"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def _save_target(path: Any) -> Tuple[str, Optional[os.stat_result]]:
    """``(file to write, its os.stat result or None when it does not exist yet)``.

    Symbolic links are followed (the link stays, its target is written; a dangling link
    creates its target). Anything but a regular file or a new path raises SaveError.
    """
    target = path
    for _ in range(_MAX_SYMLINKS):
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            return target, None
        if not stat.S_ISLNK(st.st_mode):
            break
        link = os.readlink(target)
        target = os.path.join(os.path.dirname(target), link)  # an absolute link replaces
    else:
        raise SaveError(f"cannot save to {path}: too many levels of symbolic links (a loop?)")
    if not stat.S_ISREG(st.st_mode):
        via = "" if target == path else f" (the symbolic link points to {target})"
        raise SaveError(f"cannot save to {path}: it is {_what_is(st.st_mode)}{via}; fusenn "
                        f"saves only to a regular file or a new path")
    return target, st


def _pid_running(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (True when it cannot be told)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there; go by age only
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or a pid we cannot ask about
    return True


def _remove_stale_temporaries(directory: str, now: Optional[float] = None) -> List[str]:
    """Remove the temporary files of fusenn saves that were killed before their rename.

    Only regular files named like fusenn's own (``.<name>.fusenn-tmp-<pid>-<random>``) and
    owned by this user are touched, and only when their process no longer runs here or they
    have not been modified for :data:`STALE_TEMPORARY_SECONDS`. Errors are ignored: cleaning
    up never makes a save fail. Returns the names removed.
    """
    now = time.time() if now is None else now
    removed: List[str] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        match = _TMP_PATTERN.match(entry.name)
        if match is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or (uid is not None and st.st_uid != uid):
                continue
            pid = int(match.group("pid"))
            if (now - st.st_mtime > STALE_TEMPORARY_SECONDS
                    or (pid != os.getpid() and not _pid_running(pid))):
                os.unlink(entry.path)
                removed.append(entry.name)
        except OSError:
            continue
    return removed


def _create_temporary(directory: str, name: str) -> Tuple[int, str]:
    """``(fd, path)`` of a new, empty, private file ``.<name>.fusenn-tmp-<pid>-<random>``."""
    prefix = os.path.join(directory, f".{name[:100]}{_TMP_TAG}{os.getpid()}-")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = prefix + secrets.token_hex(4)
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file in {directory}")  # pragma: no cover


def check_target(path: Any) -> Tuple[str, str, Optional[os.stat_result]]:
    """``(file to write, its directory, its os.stat result or None)`` for a save to ``path``:
    SaveError for anything but a regular file or a new path (links followed),
    FileNotFoundError when the directory does not exist. Nothing is written."""
    path = os.fspath(path)
    target, st = _save_target(path)
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save to {path}: directory {directory} does not exist")
    return target, directory, st


def write_atomic(path: Any, write: Callable[[Any], None]) -> None:
    """Write ``path`` atomically with ``write(binary file object)``.

    The file written is ``path`` itself or, when ``path`` is a symbolic link, the file it
    points to; anything but a regular file or a new path there raises SaveError before a
    byte is written. ``write`` fills a temporary file in the same directory, which is flushed
    to disk, given the old file's permissions, and renamed over the target; if anything fails
    the temporary file is removed and the old file is left as it was.
    """
    target, directory, st = check_target(path)
    mode = stat.S_IMODE(st.st_mode) if st is not None else _new_file_mode()
    _remove_stale_temporaries(directory)

    fd, tmp = _create_temporary(directory, os.path.basename(target))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        # Checked again just before the rename, which would replace whatever is there.
        _save_target(target)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _write_atomic(path: Any, desc: Dict[str, Any], arrays: Dict[str, Any]) -> None:
    """Write ``arrays`` and the JSON ``desc`` to ``path`` as one .npz, atomically."""
    if DESCRIPTION in arrays:
        raise ValueError(f"array name {DESCRIPTION!r} is reserved")
    text = json.dumps(_jsonable(desc), allow_nan=False, sort_keys=False)
    payload = {DESCRIPTION: np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays}
    # A file object, not a name: np.savez would append ".npz" to a name without it.
    write_atomic(path, lambda f: np.savez(f, **payload))


def _fsync_directory(directory: str) -> None:
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


def write_model(model: Any, path: Any) -> None:
    """Write ``model`` (a :class:`fusenn.Sequential`) to ``path`` atomically."""
    desc, arrays = _describe_model(model)
    _write_atomic(path, desc, arrays)


def write_checkpoint(model: Any, state: Dict[str, Any], path: Any) -> None:
    """Write ``model`` and a :meth:`fusenn.Trainer.state_dict` ``state`` to ``path``."""
    desc, arrays = _describe_model(model)
    desc["format"] = CHECKPOINT_FORMAT
    opt = state["optimizer"]
    if opt["state"] is not None:
        arrays[OPTIMIZER_STATE] = np.ascontiguousarray(opt["state"])
    desc["optimizer"] = {"name": opt["name"], "config": _jsonable(opt["config"]),
                         "t": int(opt["t"]),
                         "state": None if opt["state"] is None else OPTIMIZER_STATE}
    desc["trainer"] = {**state["settings"], "rng": _jsonable(state["rng"]),
                       "rng_handed_out": bool(state["rng_handed_out"]),
                       "layer_rngs": {str(i): _jsonable(st)
                                      for i, st in state["layer_rngs"].items()}}
    _write_atomic(path, desc, arrays)
