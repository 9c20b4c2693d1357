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
from typing import Any, Dict, Iterator, List, Optional

from ..errors import ArgumentTypeError, BackendUnavailableError
from . import _contract

#: name -> module path, in the order of preference (fastest first overall).
_MODULES = {
    "cython": "fusenn.backends._cython",
    "numba": "fusenn.backends._numba",
    "numpy": "fusenn.backends._numpy",
}
NAMES = tuple(_MODULES)
_loaded: Dict[str, Any] = {}
_errors: Dict[str, str] = {}
_lock = threading.Lock()


class _ThreadChoice(threading.local):
    """This thread's :func:`use_backend` choice; None (the class default, which a lookup finds
    without the exception a missing thread-local attribute costs) where it has none."""

    choice: Optional[str] = None


_state = _ThreadChoice()


def _default_choice() -> str:
    name = os.environ.get("FUSENN_BACKEND", "auto").strip().lower() or "auto"
    if name != "auto" and name not in _MODULES:
        raise BackendUnavailableError(
            f"FUSENN_BACKEND={name!r} is not a backend; choose one of "
            f"{', '.join(('auto',) + NAMES)}")
    return name


_global_choice: Optional[str] = None  # set lazily from the environment, by set_backend


def _load(name: str) -> Any:
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


def _probe(name: str) -> bool:
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


def available_backends() -> List[str]:
    """Names of the backends that can run here, fastest first (``numpy`` is always last).

    Returns
    -------
    list of str
        A sub-list of ``["cython", "numba", "numpy"]``; :func:`unavailable_reasons` says why
        a backend is missing.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.available_backends()[-1]
    'numpy'
    """
    return [n for n in NAMES if _probe(n)]


def unavailable_reasons() -> Dict[str, str]:
    """``{name: reason}`` for every backend that cannot run here.

    Returns
    -------
    dict of str to str
        The import error's type and text for each backend that failed to load (empty when
        all three run).
    """
    for n in NAMES:
        _probe(n)
    return {n: _errors[n] for n in NAMES if n in _errors}


def _check_name(name: Any) -> str:
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


def set_backend(name: str) -> None:
    """Select the backend for this process (threads without their own ``use_backend``).

    Parameters
    ----------
    name : {"auto", "cython", "numba", "numpy"}
        The backend; ``"auto"`` picks the fastest available per kernel call and size.

    Raises
    ------
    BackendUnavailableError
        An unknown name, or a backend that cannot run here (the message says why).
    TypeError
        ``name`` is not a string.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.set_backend("numpy")
    >>> fn.get_backend()
    'numpy'
    >>> fn.set_backend("auto")
    """
    global _global_choice
    _global_choice = _check_name(name)


def get_backend() -> str:
    """The name selected now: ``"auto"``, ``"numpy"``, ``"cython"`` or ``"numba"``.

    Returns
    -------
    str
        This thread's :func:`use_backend` choice, else the process's (:func:`set_backend`,
        else ``FUSENN_BACKEND``, else ``"auto"``).
    """
    global _global_choice
    local = _state.choice
    if local is not None:
        return local
    if _global_choice is None:
        _global_choice = _default_choice()
    return _global_choice


def for_epoch(loss_code: Optional[int], opt_code: Optional[int], work: float) -> Any:
    """The backend that runs a whole training epoch (``train_epoch``) with this loss and
    optimiser, for mini-batches of ``work`` multiply-adds, or None: then the Trainer takes the
    per-batch path. Under ``"auto"``, the backend auto's table picks for that work.

    Parameters
    ----------
    loss_code : int
        The fused loss's code in the kernel contract (``_contract.LOSS_*``).
    opt_code : int
        The optimiser's code (``_contract.OPT_*``).
    work : float
        Multiply-adds of one mini-batch's forward pass.

    Returns
    -------
    module or None
        The backend, or None when no backend runs that combination in one call.
    """
    be = get()
    if be.NAME == "auto":
        be = be.module(be.pick("train_epoch", work))  # falls back if the pick fails to load
    return be if be.WHOLE_EPOCHS and _contract.epoch_supports(loss_code, opt_code) else None


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Run a block with another backend, restoring the previous choice on exit.

    The choice is thread-local: other threads keep theirs.

    Parameters
    ----------
    name : {"auto", "cython", "numba", "numpy"}
        The backend for the block.

    Yields
    ------
    str
        The normalised name.

    Raises
    ------
    BackendUnavailableError
        An unknown name, or a backend that cannot run here.

    Examples
    --------
    >>> import fusenn as fn
    >>> with fn.use_backend("numpy") as name:
    ...     print(name, fn.get_backend())
    numpy numpy
    """
    key = _check_name(name)
    previous = _state.choice
    _state.choice = key
    try:
        yield key
    finally:
        _state.choice = previous


def resolve(name: Optional[str] = None) -> str:
    """The concrete backend a call made now would run on; for ``"auto"``, the first available
    in the order of preference (each kernel's own pick: :func:`auto_picks`).

    Parameters
    ----------
    name : str or None, default None
        A backend name (None: the current selection).

    Returns
    -------
    str
        ``"cython"``, ``"numba"`` or ``"numpy"``.

    Raises
    ------
    BackendUnavailableError
        An unknown name or a backend that cannot run here.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.backends.resolve("numpy")
    'numpy'
    """
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


def get(name: Optional[str] = None) -> Any:
    """Return the backend for ``name`` (default: the current selection): a backend module,
    or for ``"auto"`` the dispatcher that picks one per kernel call and size.

    Parameters
    ----------
    name : str or None, default None
        A backend name (None: the current selection).

    Returns
    -------
    module or AutoBackend
        An object with every kernel of the contract (``dense_forward``, ...) and ``NAME``.

    Raises
    ------
    BackendUnavailableError
        An unknown name or a backend that cannot run here.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.backends.get("numpy").NAME
    'numpy'
    """
    key = get_backend() if name is None else _check_name(name)
    if key == "auto":
        return _auto_backend()
    key = resolve(key)
    mod = _load(key)
    if mod is None:
        raise BackendUnavailableError(f"backend {key!r} is not available: {_errors[key]}")
    return mod


_auto_instance: Any = None


def _auto_backend() -> Any:
    global _auto_instance
    if _auto_instance is None:
        from ._auto import AutoBackend

        _auto_instance = AutoBackend(available_backends(), get)
    return _auto_instance


def auto_picks() -> Dict[str, Any]:
    """``{kernel: what auto runs it on}``, by size where the pick changes with size.

    Returns
    -------
    dict
        For each kernel, a backend name or a description of the picks by size.
    """
    picks: Dict[str, Any] = _auto_backend().describe()
    return picks
