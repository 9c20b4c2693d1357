"""fusenn: fast, readable multi-layer perceptrons on the CPU.

The hot kernels (fused dense forward and backward, softmax cross-entropy, optimiser updates, a
whole training epoch) exist three times behind one API: Cython (compiled from csrc/), Numba,
and a pure-NumPy reference that is always present. See :func:`show_config` for what runs here.
"""
from typing import Any

from ._version import __version__
from . import errors
from .errors import (BackendUnavailableError, DivergenceError, FormatError, FusennError,
                     ShapeError)
from .backends import available_backends, get_backend, set_backend, use_backend
from ._threads import get_num_threads, set_num_threads
from . import activations, functional
# Bound eagerly: the name ``config`` is both this function and the submodule it lives in, and
# importing the submodule later (``fusenn.show_config``, ``import fusenn.config``) would
# otherwise leave ``fusenn.config`` bound to the module, not the function.
from .config import config, show_config  # noqa: F401 - fn.config() and fn.show_config()

_LAZY = {
    "layers": ".layers", "optim": ".optim", "losses": ".losses", "callbacks": ".callbacks",
    "metrics": ".metrics", "initializers": ".initializers", "datasets": ".datasets",
    "sklearn": ".sklearn", "keras": ".keras", "diagnostics": ".diagnostics", "io": ".io",
    "bench": ".bench", "plot": ".plot", "onnx": ".onnx", "dask": ".dask",
}
_LAZY_ATTRS = {
    "Sequential": (".model", "Sequential"), "Trainer": (".trainer", "Trainer"),
    "History": (".callbacks", "History"), "Perceptron": (".perceptron", "Perceptron"),
    "load": (".io", "load"),
}

__all__ = [
    "__version__", "available_backends", "set_backend", "get_backend", "use_backend",
    "show_config", "set_num_threads", "get_num_threads", "activations", "functional",
    "errors", "Sequential", "Trainer", "History", "Perceptron", "load",
    # plot needs matplotlib, dask needs dask.distributed: not in import *
    *(name for name in _LAZY if name not in ("plot", "dask")),
    "FusennError", "ShapeError", "BackendUnavailableError", "DivergenceError", "FormatError",
]


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        mod = importlib.import_module(_LAZY[name], __name__)
        globals()[name] = mod
        return mod
    if name in _LAZY_ATTRS:
        modname, attr = _LAZY_ATTRS[name]
        value = getattr(importlib.import_module(modname, __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fusenn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
