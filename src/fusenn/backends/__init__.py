"""The backend registry: which implementations of the kernel contract exist and which runs.

A backend is a module that implements every kernel of the contract documented in
:mod:`fusenn.backends._numpy` (the reference, always present). The compiled ones are imported
lazily, the first time they are asked for, and the reason for a failure is kept so that
:func:`available_backends` and :func:`fusenn.show_config` can say it instead of hiding it.

The selection is thread-local: :func:`use_backend` changes it only inside a ``with`` block and
restores it on exit, also when the block raises.

``"auto"`` (the default) is not one backend: :func:`get` then returns a dispatcher that sends
each kernel call to the backend measured fastest for its size (:mod:`fusenn.backends._auto`),
and :func:`resolve` names the backend that auto's preference puts first.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import threading

from ..errors import ArgumentTypeError, BackendUnavailableError
from . import _contract

#: name -> module path, in the order of preference (fastest first overall).
_MODULES = {
    "cython": "fusenn.backends._cython",
    "numba": "fusenn.backends._numba",
    "numpy": "fusenn.backends._numpy",
}
NAMES = tuple(_MODULES)
_loaded: dict = {}
_errors: dict = {}
_lock = threading.Lock()
_state = threading.local()


def _default_choice():
    name = os.environ.get("FUSENN_BACKEND", "auto").strip().lower() or "auto"
    if name != "auto" and name not in _MODULES:
        raise BackendUnavailableError(
            f"FUSENN_BACKEND={name!r} is not a backend; choose one of "
            f"{', '.join(('auto',) + NAMES)}")
    return name


_global_choice = None  # set lazily from the environment, changed by set_backend


def _load(name):
    """Import backend ``name`` once; return the module or None, remembering why it failed."""
    if name in _loaded:
        return _loaded[name]
    with _lock:
        if name in _loaded:
            return _loaded[name]
        try:
            mod = importlib.import_module(_MODULES[name])
        except Exception as exc:  # ImportError, or a compiled module that fails to load
            mod = None
            _errors[name] = f"{type(exc).__name__}: {exc}"
        _loaded[name] = mod
        return mod


def _probe(name):
    """Whether backend ``name`` can be used, without importing heavy modules when avoidable."""
    if name in _loaded:
        return _loaded[name] is not None
    if name == "numpy":
        return True
    if name == "cython":
        # A compiled extension imports in microseconds: just try it.
        return _load(name) is not None
    if name == "numba":
        # Importing numba takes half a second: look for it (and our module) without importing.
        for module, why in (("numba", "numba is not installed"),
                            (_MODULES[name], f"{_MODULES[name]} is missing")):
            if importlib.util.find_spec(module) is None:
                _errors[name] = f"ImportError: {why}"
                _loaded[name] = None
                return False
        return True
    return False


def available_backends():
    """Names of the backends that can run here, fastest first (``numpy`` is always last)."""
    return [n for n in NAMES if _probe(n)]


def unavailable_reasons():
    """``{name: reason}`` for every backend that cannot run here."""
    for n in NAMES:
        _probe(n)
    return {n: _errors[n] for n in NAMES if n in _errors}


def _check_name(name):
    if not isinstance(name, str):
        raise ArgumentTypeError(f"backend name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key != "auto" and key not in _MODULES:
        raise BackendUnavailableError(
            f"unknown backend {name!r}; choose one of {', '.join(('auto',) + NAMES)}")
    if key != "auto" and not _probe(key):
        raise BackendUnavailableError(
            f"backend {key!r} is not available: {_errors.get(key, 'unknown reason')}")
    return key


def set_backend(name):
    """Select the backend for this process (threads without their own ``use_backend``)."""
    global _global_choice
    _global_choice = _check_name(name)


def get_backend():
    """The name selected now: ``"auto"``, ``"numpy"``, ``"cython"`` or ``"numba"``."""
    global _global_choice
    local = getattr(_state, "choice", None)
    if local is not None:
        return local
    if _global_choice is None:
        _global_choice = _default_choice()
    return _global_choice


def for_epoch(loss_code, opt_code, work):
    """The backend that runs a whole training epoch (``train_epoch``) with this loss and
    optimiser, for mini-batches of ``work`` multiply-adds, or None: then the Trainer takes the
    per-batch path. Under ``"auto"``, the backend auto's table picks for that work."""
    be = get()
    if be.NAME == "auto":
        be = be.module(be.pick("train_epoch", work))  # falls back if the pick fails to load
    return be if be.WHOLE_EPOCHS and _contract.epoch_supports(loss_code, opt_code) else None


@contextlib.contextmanager
def use_backend(name):
    """Run a block with another backend, restoring the previous choice on exit."""
    key = _check_name(name)
    previous = getattr(_state, "choice", None)
    _state.choice = key
    try:
        yield key
    finally:
        _state.choice = previous


def resolve(name=None):
    """The concrete backend a call made now would run on; for ``"auto"``, the first available
    in the order of preference (each kernel's own pick: :func:`auto_picks`)."""
    key = get_backend() if name is None else _check_name(name)
    if key != "auto":
        if not _probe(key):
            raise BackendUnavailableError(
                f"backend {key!r} is not available: {_errors.get(key, 'unknown reason')}")
        return key
    for n in NAMES:
        if _probe(n) and _load(n) is not None:
            return n
    return "numpy"  # pragma: no cover - numpy always loads


def get(name=None):
    """Return the backend for ``name`` (default: the current selection): a backend module,
    or for ``"auto"`` the dispatcher that picks one per kernel call and size."""
    key = get_backend() if name is None else _check_name(name)
    if key == "auto":
        return _auto_backend()
    key = resolve(key)
    mod = _load(key)
    if mod is None:
        raise BackendUnavailableError(f"backend {key!r} is not available: {_errors[key]}")
    return mod


_auto_instance = None


def _auto_backend():
    global _auto_instance
    if _auto_instance is None:
        from ._auto import AutoBackend

        _auto_instance = AutoBackend(available_backends(), get)
    return _auto_instance


def auto_picks():
    """``{kernel: what auto runs it on}``, by size where the pick changes with size."""
    return _auto_backend().describe()
