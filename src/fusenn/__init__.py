"""fusenn: fast, readable multi-layer perceptrons on the CPU.

The hot kernels (fused dense forward and backward, softmax cross-entropy, optimiser updates, a
whole training epoch) exist three times behind one API: Cython (compiled from csrc/), Numba,
and a pure-NumPy reference that is always present. See :func:`show_config` for what runs here.
"""
from ._version import __version__
from . import errors
from .errors import (BackendUnavailableError, DivergenceError, FormatError, FusennError,
                     ShapeError)
from .backends import available_backends, get_backend, set_backend, use_backend
from ._threads import get_num_threads, set_num_threads
from . import activations, functional

_LAZY = {
    "layers": ".layers", "optim": ".optim", "losses": ".losses", "callbacks": ".callbacks",
    "metrics": ".metrics", "initializers": ".initializers", "datasets": ".datasets",
    "sklearn": ".sklearn", "keras": ".keras", "diagnostics": ".diagnostics", "io": ".io",
    "bench": ".bench", "plot": ".plot", "dask": ".dask",
}
_LAZY_ATTRS = {
    "Sequential": (".model", "Sequential"), "Trainer": (".trainer", "Trainer"),
    "History": (".callbacks", "History"), "Perceptron": (".perceptron", "Perceptron"),
    "load": (".io", "load"), "show_config": (".config", "show_config"),
    "config": (".config", "config"),
}

__all__ = [
    "__version__", "available_backends", "set_backend", "get_backend", "use_backend",
    "show_config", "set_num_threads", "get_num_threads", "activations", "functional",
    "errors", "Sequential", "Trainer", "History", "Perceptron", "load",
    # plot needs matplotlib, dask needs dask.distributed: not in import *
    *(name for name in _LAZY if name not in ("plot", "dask")),
    "FusennError", "ShapeError", "BackendUnavailableError", "DivergenceError", "FormatError",
]


def __getattr__(name):
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


def __dir__():
    return sorted(set(globals()) | set(__all__))
