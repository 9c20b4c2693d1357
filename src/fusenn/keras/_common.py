"""What the modules of the Keras face share: the error for what the face leaves out, Keras's
layer names, the face's random seed and Keras's progress lines.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Iterable, Optional, Union

import numpy as np

from ..errors import ArgumentError, UnsupportedFeatureError, UnsupportedNameError


def unsupported(feature: str, hint: str = "",
                error: type[UnsupportedFeatureError] = UnsupportedFeatureError
                ) -> UnsupportedFeatureError:
    """The one error for a Keras feature outside fusenn's Keras face.

    Parameters
    ----------
    feature : str
        What the user asked for, as Keras names it (``"keras.layers.Conv2D"``).
    hint : str, optional
        What to do instead.
    error : class
        :class:`UnsupportedFeatureError` or its subclass for a missing name.

    Returns
    -------
    UnsupportedFeatureError
        To be raised by the caller.

    Examples
    --------
    >>> print(unsupported("keras.layers.Conv2D"))  # doctest: +ELLIPSIS
    keras.layers.Conv2D is not part of fusenn's Keras face...
    """
    text = (f"{feature} is not part of fusenn's Keras face, which covers Sequential "
            f"multi-layer perceptrons (Dense, Dropout, BatchNormalization and activation "
            f"layers)")
    return error(text + (f"; {hint}" if hint else ""))


def missing_attribute(module: str, known: Iterable[str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that raises :func:`unsupported` for Keras names the face
    does not have (names starting with ``_`` raise AttributeError as usual)."""

    def __getattr__(name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        where = module.split(".", 2)[-1]
        raise unsupported(f"keras.{where}.{name}" if where != "keras" else f"keras.{name}",
                          f"this module offers {', '.join(sorted(known))}",
                          UnsupportedNameError)

    return __getattr__


# -- names ---------------------------------------------------------------------------------
_NAME_COUNTS: dict[str, int] = {}


def unique_name(base: str) -> str:
    """Keras's automatic names: ``dense``, ``dense_1``, ``dense_2``, ... per base name."""
    count = _NAME_COUNTS.get(base, 0)
    _NAME_COUNTS[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def snake_case(name: str) -> str:
    """``BatchNormalization`` -> ``batch_normalization``: Keras's layer names."""
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or
                                   (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


# -- randomness ----------------------------------------------------------------------------
_SEED: dict[str, Optional[np.random.Generator]] = {"rng": None}


def set_random_seed(seed: int) -> None:
    """Seed the face's weight initialisation, dropout and shuffling (Keras's
    ``keras.utils.set_random_seed``); models built afterwards are reproducible.

    Parameters
    ----------
    seed : int
        A non-negative integer.

    Raises
    ------
    ValueError
        For a negative or non-integer seed.

    Examples
    --------
    >>> set_random_seed(0)
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ArgumentError(f"seed must be a non-negative integer, got {seed!r}")
    _SEED["rng"] = np.random.default_rng(int(seed))


def draw_seed() -> Optional[int]:
    """A seed for one model's weights or one trainer, from the face's seeded generator, or
    fresh entropy when no seed was set."""
    rng = _SEED["rng"]
    if rng is None:
        return None
    return int(rng.integers(2 ** 63))


# -- progress lines ------------------------------------------------------------------------
BAR = "\u2501" * 20


def resolve_verbose(verbose: Union[str, int]) -> int:
    """Keras's ``verbose="auto"`` is 1; otherwise 0, 1 or 2."""
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ArgumentError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def format_value(v: float) -> str:
    """A logged number as Keras's progress bar writes it."""
    v = float(v)
    return f"{v:.4f}" if abs(v) > 1e-3 else f"{v:.4e}"


def _per_step(seconds: float, steps: int) -> str:
    t = seconds / max(steps, 1)
    if t >= 1:
        return f"{t:.0f}s/step"
    if t >= 1e-3:
        return f"{t * 1e3:.0f}ms/step"
    return f"{t * 1e6:.0f}us/step"


def progress_line(steps: int, seconds: float, logs: Optional[dict[str, Any]],
                  verbose: int) -> str:
    """Keras's finished progress line for ``steps`` steps in ``seconds``: with the bar for
    ``verbose=1``, without for ``verbose=2``."""
    values = "".join(f" - {k}: {format_value(v)}" for k, v in (logs or {}).items())
    if verbose == 2:
        return f"{steps}/{steps} - {seconds:.0f}s - {_per_step(seconds, steps)}{values}"
    return f"{steps}/{steps} {BAR} {seconds:.0f}s {_per_step(seconds, steps)}{values}"


def print_line(text: str) -> None:
    """Print one line at once (flushed), as Keras's progress output."""
    print(text, file=sys.stdout, flush=True)


class Timer:
    """Seconds since creation, for the progress lines."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start
