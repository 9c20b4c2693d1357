"""The ``auto`` backend: every kernel call goes to the path measured fastest for its size.

The three backends implement one contract (see :mod:`fusenn.backends._contract`), but they are not
fastest at the same things: a compiled kernel's call costs a fraction of a microsecond where a
NumPy expression costs several, while at large sizes the work is BLAS's or memory's and the
paths draw level. :data:`CROSSOVERS` records, per kernel, which backend won at which size in
the kernel benchmarks (``fusenn bench --what kernels``, and
``pytest benchmarks/test_bench_kernels.py``) on the 2-core development machine. A kernel's size
is its work measure (:data:`WORK`): multiply-adds for the dense kernels, elements for the
elementwise and row kernels, parameters for the optimiser updates, and a batch's
multiply-adds for ``train_epoch``.

A rule is ``(largest work, preference)``: the first rule whose bound is not below the call's
work applies, and within it the first backend that is available here. Numba is never the only
choice: where it is not installed the next in line takes over.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Dict, Iterable, List, SupportsInt, Tuple

from .. import _activation_table as _table
from .._typing import Array
from ..errors import BackendUnavailableError
from . import _contract

NAME = "auto"

_COMPILED = ("cython", "numba", "numpy")
_NUMPY_FIRST = ("numpy",)
_NUMBA_FIRST = ("numba", "cython", "numpy")

#: kernel -> ((largest work, preference order), ...), measured (see the module docstring).
#: ``"kernel:activation"`` entries override the kernel's rules for one activation.
#: Measured with the AVX2 build of the Cython kernels and NumPy's OpenBLAS behind both
#: (``fusenn bench --what kernels`` and the same kernels at the sizes in between, float32):
#: The dense kernels stay on Cython at every size (1.05-1.3x the NumPy backend; the products
#: are the same BLAS's, the epilogue is fused).
#: NumPy's own SIMD loops for tanh and softplus beat the compiled loops from about a thousand
#: elements (tanh: Cython 1.5x NumPy at 256 elements, level at 1,024, NumPy 2.2x at 262,144;
#: softplus: Cython 1.9x at 128, NumPy 2.3x at 1,024 and 10x at 262,144).
#: Row-wise softmax: Cython 4.2x NumPy at 2,560 elements and still 1.3x at 1,024,000.
#: log_softmax: Cython ahead up to 102,400 elements (1.06x), NumPy from 256,000 (1.3x).
#: logsumexp: Cython 2.6x at 2,560, level at 25,600, NumPy 1.1x at 102,400 and 1.5x at
#: 1,024,000. Adam: Cython 1.7x Numba at 109,386 parameters, Numba's parallel loop 1.07-1.14x
#: Cython from 262,144 (the first call in a process imports Numba and loads its cache, or
#: compiles).
#: A kernel's rules: ((largest work, backends in order of preference), ...).
_Rules = Tuple[Tuple[float, Tuple[str, ...]], ...]

CROSSOVERS: Dict[str, _Rules] = {
    "dense_forward": ((math.inf, _COMPILED),),
    "dense_backward": ((math.inf, _COMPILED),),
    "act_forward": ((math.inf, _COMPILED),),
    "act_derivative": ((math.inf, _COMPILED),),
    "softmax": ((math.inf, _COMPILED),),
    "log_softmax": ((131072, _COMPILED), (math.inf, _NUMPY_FIRST)),
    "logsumexp": ((32768, _COMPILED), (math.inf, _NUMPY_FIRST)),
    "softmax_xent": ((math.inf, _COMPILED),),
    "softmax_xent_probs": ((math.inf, _COMPILED),),
    "sigmoid_bce": ((math.inf, _COMPILED),),
    "mse": ((math.inf, _COMPILED),),
    "sgd_update": ((math.inf, _COMPILED),),
    "adam_update": ((262144, _COMPILED), (math.inf, _NUMBA_FIRST)),
    "rmsprop_update": ((math.inf, _COMPILED),),
    "adagrad_update": ((math.inf, _COMPILED),),
    "train_epoch": ((math.inf, _COMPILED),),
}
# Activations whose NumPy ufuncs win from some size on (the table's ``numpy_from``).
CROSSOVERS.update({f"act_forward:{d.name}": ((d.numpy_from, _COMPILED), (math.inf, _NUMPY_FIRST))
                   for d in _table.BY_CODE.values() if d.numpy_from < math.inf})

#: kernel -> position of the activation code among its arguments (for the overrides).
CODE_ARG = {"act_forward": 1, "act_derivative": 2, "dense_forward": 3, "dense_backward": 5}


def epoch_work(widths: Iterable[SupportsInt], rows: int) -> int:
    """A mini-batch's multiply-adds through layers of ``widths``, with ``rows`` rows."""
    w = [int(v) for v in widths]
    return rows * sum(a * b for a, b in zip(w[:-1], w[1:]))


def _epoch_work(flat: Array, grad: Array, widths: Array, codes: Array, params: Array, X: Array,
                labels: Array, targets: Array, perm: Array, batch_size: int, *rest: Any) -> int:
    return epoch_work(widths, min(int(batch_size), len(X)))


#: kernel -> its work measure, from the call's arguments.
WORK: Dict[str, Callable[..., float]] = {
    "dense_forward": lambda x, W, *rest: x.shape[0] * W.size,
    "dense_backward": lambda x, W, *rest: x.shape[0] * W.size,
    "train_epoch": _epoch_work,
}
for _k in CROSSOVERS:
    _k = _k.split(":")[0]
    WORK.setdefault(_k, lambda first, *rest: first.size)


class AutoBackend:
    """A backend object whose kernels dispatch, per call, to the backend that
    :data:`CROSSOVERS` picks for the call's size.

    ``available`` names the backends that can run here (numpy among them); ``load(name)``
    returns a backend's module. A backend is loaded the first time a call is routed to it, so
    that a table which never picks Numba never pays for importing it.
    """

    NAME = NAME

    def __init__(self, available: Iterable[str], load: Callable[[str], Any]) -> None:
        self.available = tuple(available)
        self._load = load
        self._modules: Dict[str, Any] = {}  # name -> the backend's module
        self.fallback = self.module("numpy")  # the reference: always there, runs what no rule takes
        for kernel in WORK:
            setattr(self, kernel, self._dispatcher(kernel))
        # the contract's constants (loss and optimiser codes, hyper indexes)
        for attr, value in _contract.CONSTANTS.items():
            setattr(self, attr, value)

    def module(self, name: str) -> Any:
        """Backend ``name``'s module, loaded on first use.

        Where it fails to load (Numba installed but unable to compile or cache, a compiled
        extension that does not import), auto falls back to the next backend in the order
        of preference, says so once with a RuntimeWarning, and no longer picks ``name``.
        """
        mod = self._modules.get(name)
        if mod is None:
            try:
                mod = self._load(name)
            except BackendUnavailableError as exc:
                if name == "numpy":  # pragma: no cover - the reference always loads
                    raise
                self.available = tuple(n for n in self.available if n != name)
                instead = next(n for n in _COMPILED if n in self.available)
                warnings.warn(f"fusenn: the {name} backend failed to load, so auto runs its "
                              f"kernels on {instead} instead ({exc})", RuntimeWarning,
                              stacklevel=3)
                mod = self.module(instead)
                for kernel in WORK:  # rules without it, for every later call
                    setattr(self, kernel, self._dispatcher(kernel))
            self._modules[name] = mod
        return mod

    def rules(self, kernel: str) -> List[Tuple[float, str]]:
        """``[(largest work, backend name), ...]`` for ``kernel`` with what is available here,
        neighbouring rules that land on the same backend merged."""
        out: List[Tuple[float, str]] = []
        for bound, order in CROSSOVERS[kernel]:
            name = next((n for n in order if n in self.available), "numpy")
            if out and out[-1][1] == name:
                out[-1] = (bound, name)
            else:
                out.append((bound, name))
        return out

    def pick(self, kernel: str, work: float) -> str:
        """The name of the backend that runs ``kernel`` at ``work`` (see :data:`WORK`)."""
        return next((name for bound, name in self.rules(kernel) if work <= bound), "numpy")

    def _dispatcher(self, kernel: str) -> Callable[..., Any]:
        default = self.rules(kernel)
        # activation code -> its own rules, where the table has some
        by_code: Dict[int, List[Tuple[float, str]]] = {}
        if kernel in CODE_ARG:
            for key in CROSSOVERS:
                if key.startswith(kernel + ":"):
                    act = key.split(":")[1]
                    code = next(c for c, d in _table.BY_CODE.items() if d.name == act)
                    by_code[code] = self.rules(key)
        at = CODE_ARG.get(kernel, -1)  # read only where by_code has rules: kernel in CODE_ARG
        measure = WORK[kernel]
        module, fallback = self.module, self.fallback
        if not by_code and len(default) == 1 and default[0][0] == math.inf:
            # one backend at every size (the dense forward's rule): the first call loads it
            # and puts its kernel in the dispatcher's place, so that later calls cost nothing
            only = default[0][1]

            def first(*args: Any) -> Any:
                func = getattr(module(only), kernel)
                if getattr(self, kernel) is first:  # (a failed load re-dispatched already)
                    setattr(self, kernel, func)
                return func(*args)

            first.__name__ = kernel
            first.__doc__ = f"``{kernel}`` on {only} (auto's rule for every size)."
            return first

        def call(*args: Any) -> Any:
            work = measure(*args)
            rules = by_code.get(args[at], default) if by_code else default
            for bound, name in rules:
                if work <= bound:
                    return getattr(module(name), kernel)(*args)
            return getattr(fallback, kernel)(*args)

        call.__name__ = kernel
        call.__doc__ = f"``{kernel}`` on the backend measured fastest for its size."
        return call

    def describe(self) -> Dict[str, str]:
        """``{kernel: "cython", or "cython up to 4,096, then numpy", ...}`` (show_config)."""
        out: Dict[str, str] = {}
        for kernel in CROSSOVERS:
            rules = self.rules(kernel)
            text = rules[0][1]
            for (bound, _), (_, name) in zip(rules[:-1], rules[1:]):
                text += f" up to {bound:,.0f}, then {name}"
            out[kernel] = text
        return out
