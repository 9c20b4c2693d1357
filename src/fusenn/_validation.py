"""Checks at the Python boundary, so that bad input never reaches a kernel.

The dtype rule, in one place: float32 and float64 arrays keep their dtype; every other dtype
(integers, booleans, float16, ...) is converted to float64. A model converts inputs to its own
dtype (float32 unless created otherwise).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Tuple

import numpy as np

from ._typing import Array, ArrayLike, DTypeLike

from .errors import ArgumentError, ArgumentTypeError, LabelError, ShapeError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    """Normalise a dtype argument to float32 or float64, or raise naming the value."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ArgumentTypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise ArgumentTypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def as_float_array(x: ArrayLike, name: str = "X", dtype: DTypeLike = None) -> Array:
    """``x`` as a float32/float64 array (see the module's dtype rule), no copy when possible."""
    if isinstance(x, np.ndarray) and x.dtype == object or isinstance(x, str):
        raise ArgumentTypeError(f"{name} must be numeric, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except Exception as exc:
        raise ArgumentTypeError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise ArgumentTypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if dtype is not None:
        return arr.astype(dtype, copy=False)
    if arr.dtype not in FLOAT_DTYPES:
        arr = arr.astype(np.float64)
    return arr


def _surely_finite(arr: Array) -> bool:
    """True when every element of the float array is finite, by one sum of its elements: a
    BLAS dot product x.x from 4096 elements, a plain sum below (NaN and infinity reach the
    sum; twice as fast as ``isfinite(...).all()`` and no temporary). False means "look element
    by element": a huge finite value can overflow the sum too."""
    if arr.dtype.kind != "f" or not arr.flags.c_contiguous:
        return False
    flat = arr.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        if flat.shape[0] < 4096:
            return math.isfinite(np.add.reduce(flat))
        return bool(np.isfinite(np.dot(flat, flat)))


def all_finite(arr: Array) -> bool:
    """Whether every element of the float array ``arr`` is finite (one dot product when that
    can tell, else an elementwise pass)."""
    return _surely_finite(arr) or bool(np.isfinite(arr).all())


def check_batch(arr: ArrayLike, shape: Tuple[int, ...], dtype: DTypeLike, name: str) -> Array:
    """``arr`` as a C-contiguous array of exactly ``shape`` and ``dtype``, for the arrays a
    layer or a model is handed mid-computation (``backward``'s ``dy``).

    The common case (already right) costs a few attribute reads and returns ``arr`` itself;
    anything else is converted once or refused with a :class:`ShapeError` naming ``name``, the
    shape it has and the shape it needs, so that no kernel sees an array that does not fit.
    """
    if (type(arr) is np.ndarray and arr.shape == shape and arr.dtype == dtype
            and arr.flags.c_contiguous):
        return arr
    arr = as_float_array(arr, name, dtype)
    if arr.shape != shape:
        raise ShapeError(f"{name} must have shape {shape}, got {arr.shape}")
    return np.ascontiguousarray(arr)


def check_finite(arr: Array, name: str) -> None:
    """Raise ArgumentError naming ``name`` and the first bad index if ``arr`` holds NaN or inf."""
    if _surely_finite(arr):
        return
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ArgumentError(f"{name} contains NaN or infinity (first at index "
                         f"{tuple(int(i) for i in bad)})")


def check_2d(x: ArrayLike, name: str = "X", dtype: DTypeLike = None,
             finite: bool = True) -> Array:
    """A finite, non-empty 2-D float array."""
    arr = as_float_array(x, name, dtype)
    if arr.ndim != 2:
        raise ShapeError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}"
                         + (" - reshape a single sample with x.reshape(1, -1)"
                            if arr.ndim == 1 else ""))
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ShapeError(f"{name} is empty (shape {arr.shape})")
    if finite:
        check_finite(arr, name)
    return arr


def check_labels(y: ArrayLike, n_samples: int, n_classes: Optional[int] = None,
                 name: str = "y") -> Array:
    """Integer class labels 0..n_classes-1 as an int64 vector of length n_samples."""
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ShapeError(f"{name} must be a 1-D vector of class labels, got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ShapeError(f"X and {name} have different numbers of samples: {n_samples} and "
                         f"{arr.shape[0]}")
    if arr.size == 0:
        raise ShapeError(f"{name} is empty")
    if arr.dtype.kind == "f":
        check_finite(arr, name)
        if not np.all(arr == np.round(arr)):
            raise LabelError(f"{name} must hold integer class labels, got non-integer values "
                             f"such as {arr[arr != np.round(arr)][0]!r}")
    elif arr.dtype.kind not in "iub":
        raise ArgumentTypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    hi = "" if n_classes is None else f"..{n_classes - 1}"
    if arr.dtype.kind in "fu" and (arr.max() > 2 ** 62 or arr.min() < 0):
        # beyond int64 before the cast below could wrap them into range
        raise LabelError(f"{name} holds labels out of range [0{hi}]: min {arr.min()!r}, "
                         f"max {arr.max()!r}")
    labels = arr.astype(np.int64)
    if labels.min() < 0 or (n_classes is not None and labels.max() >= n_classes):
        raise LabelError(f"{name} holds labels out of range [0{hi}]: min {labels.min()}, "
                         f"max {labels.max()}")
    return labels


def check_targets(y: ArrayLike, n_samples: int, n_outputs: int, dtype: DTypeLike,
                  name: str = "y") -> Array:
    """Real targets as a 2-D (n_samples, n_outputs) array of ``dtype``."""
    arr = as_float_array(y, name, dtype)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ShapeError(f"{name} must be 1-D or 2-D, got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ShapeError(f"X and {name} have different numbers of samples: {n_samples} and "
                         f"{arr.shape[0]}")
    if arr.shape[1] != n_outputs:
        raise ShapeError(f"{name} has {arr.shape[1]} column(s) but the model has {n_outputs} "
                         f"output(s)")
    check_finite(arr, name)
    return np.ascontiguousarray(arr)


def check_positive(value: Any, name: str, integer: bool = False,
                   allow_none: bool = False) -> Any:
    """``value`` as a positive float (or int with ``integer``; None with ``allow_none``)."""
    if value is None and allow_none:
        return None
    kind = numbers.Integral if integer else numbers.Real
    number: Any = value  # the isinstance test below does not narrow what is compared
    if isinstance(number, bool) or not isinstance(number, kind):
        raise ArgumentTypeError(f"{name} must be {'an integer' if integer else 'a number'}, got "
                        f"{value!r}")
    if not value > 0 or not _is_finite(value):
        raise ArgumentError(f"{name} must be > 0, got {value!r}")
    if integer:
        if value > MAX_COUNT:
            raise ArgumentError(f"{name} must be at most {MAX_COUNT:,} (2**63 - 1), got "
                                f"{value!r}")
        return int(value)
    return float(value)


#: The largest count (samples, epochs, batch size) fusenn takes: what an int64 holds.
MAX_COUNT = 2 ** 63 - 1


def _is_finite(value: Any) -> bool:
    """``math.isfinite`` that also takes integers too large for a float (False for them)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_in_range(value: Any, name: str, lo: float, hi: float, lo_open: bool = False,
                   hi_open: bool = True) -> float:
    """``value`` as a float inside the interval from ``lo`` to ``hi``."""
    number: Any = value  # the isinstance test below does not narrow what is compared
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
        raise ArgumentTypeError(f"{name} must be a number, got {value!r}")
    ok_lo = value > lo if lo_open else value >= lo
    ok_hi = value < hi if hi_open else value <= hi
    if not (ok_lo and ok_hi and _is_finite(value)):
        raise ArgumentError(f"{name} must be in {'(' if lo_open else '['}{lo}, {hi}"
                         f"{')' if hi_open else ']'}, got {value!r}")
    return float(value)


def check_random_state(random_state: Any) -> np.random.Generator:
    """A numpy Generator from None, an int seed or a Generator."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.SeedSequence)):
        if isinstance(random_state, bool):
            raise ArgumentTypeError("random_state must be None, an int or a numpy Generator")
        seed: Any = random_state
        return np.random.default_rng(seed)
    raise ArgumentTypeError(f"random_state must be None, an int or a numpy Generator, got "
                    f"{type(random_state).__name__}")


#: The bit generators whose state a Generator can be restored from (``numpy.random.<name>``).
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def generator_from_state(state: Any) -> np.random.Generator:
    """A ``numpy.random.Generator`` whose bit generator has ``state`` (a
    ``bit_generator.state`` dict); ValueError naming the problem for anything else."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in BIT_GENERATORS:
        raise ArgumentError(f"bit generator {name!r} is not one of "
                            f"{', '.join(BIT_GENERATORS)}")
    bitgen = getattr(np.random, name)()
    try:
        bitgen.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise ArgumentError(f"invalid {name} state ({exc})") from None
    return np.random.Generator(bitgen)
