"""Weight initialisers, each drawing from an explicit random Generator.

An initialiser is called as ``init(shape, rng)`` with ``shape = (fan_in, fan_out)`` and returns
a float64 array (the layer casts it to its dtype). The variance-scaling ones follow the usual
definitions:

=================  ==========================================  ==========================
name               distribution                                scale
=================  ==========================================  ==========================
glorot_uniform     U(-a, a)                                    a = sqrt(6 / (in + out))
glorot_normal      N(0, s^2)                                   s = sqrt(2 / (in + out))
he_uniform         U(-a, a)                                    a = sqrt(6 / in)
he_normal          N(0, s^2)                                   s = sqrt(2 / in)
lecun_uniform      U(-a, a)                                    a = sqrt(3 / in)
lecun_normal       N(0, s^2)                                   s = sqrt(1 / in)
=================  ==========================================  ==========================

``zeros`` is kept honest: a network whose weights all start equal keeps its hidden units
identical forever (the symmetry problem of the notes). fusenn does not quietly "fix" it.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _activation_table as _table
from ._typing import Array
from .errors import ArgumentError, ArgumentTypeError


__all__ = ["Initializer", "Zeros", "Constant", "Uniform", "Normal", "VarianceScaling", "names", "get",
           "default_for"]


class Initializer:
    """Base class: subclasses implement :meth:`sample`.

    Calling an initialiser, ``init(shape, rng)``, returns :meth:`sample`'s values as a float64
    array of ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> init = fn.initializers.get("he_normal")
    >>> init((784, 30), np.random.default_rng(0)).shape
    (784, 30)
    """

    name = "initializer"

    def __call__(self, shape: Sequence[int], rng: np.random.Generator) -> Array:
        shape = tuple(int(s) for s in shape)
        return np.asarray(self.sample(shape, rng), dtype=np.float64).reshape(shape)

    def sample(self, shape: Tuple[int, ...],
               rng: np.random.Generator) -> Array:  # pragma: no cover - abstract
        """Draw initial values.

        Parameters
        ----------
        shape : tuple of int
            ``(fan_in, fan_out)`` for a weight matrix, ``(n,)`` for a vector.
        rng : numpy.random.Generator
            The random source.

        Returns
        -------
        ndarray of ``shape``
        """
        raise NotImplementedError

    def get_config(self) -> Dict[str, Any]:
        """The name and settings, which :func:`get` takes back: ``get(**cfg)``-style.

        Returns
        -------
        dict
        """
        return {"name": self.name, **{k: v for k, v in vars(self).items()}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def _fans(shape: Tuple[int, ...]) -> Tuple[int, int]:
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[0], shape[-1]


class Zeros(Initializer):
    """All zeros (every unit starts equal: the symmetry problem; for biases).

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.initializers.Zeros()((2,), None)
    array([0., 0.])
    """

    name = "zeros"

    def sample(self, shape: Tuple[int, ...], rng: Any) -> Array:
        return np.zeros(shape)


class Constant(Initializer):
    """Every value equal to ``value``.

    Parameters
    ----------
    value : float, default 0
        The value.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.initializers.Constant(0.5)((2,), None)
    array([0.5, 0.5])
    """

    name = "constant"

    def __init__(self, value: float = 0.0) -> None:
        self.value = float(value)

    def sample(self, shape: Tuple[int, ...], rng: Any) -> Array:
        return np.full(shape, self.value)


class Uniform(Initializer):
    """Values drawn uniformly from ``[low, high)``.

    Parameters
    ----------
    low, high : float, default -0.05 and 0.05
        The bounds.

    Raises
    ------
    ValueError
        ``low`` is not below ``high``.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> w = fn.initializers.Uniform(0.0, 1.0)((3, 3), np.random.default_rng(0))
    >>> bool(((0 <= w) & (w < 1)).all())
    True
    """

    name = "uniform"

    def __init__(self, low: float = -0.05, high: float = 0.05) -> None:
        if not low < high:
            raise ArgumentError(f"uniform initialiser needs low < high, got {low} and {high}")
        self.low, self.high = float(low), float(high)

    def sample(self, shape: Tuple[int, ...], rng: np.random.Generator) -> Array:
        return rng.uniform(self.low, self.high, size=shape)


class Normal(Initializer):
    """Values drawn from the normal distribution ``N(mean, std^2)``.

    Parameters
    ----------
    mean : float, default 0
        The mean.
    std : float >= 0, default 0.05
        The standard deviation.

    Raises
    ------
    ValueError
        A negative ``std``.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> fn.initializers.Normal(std=0.0)((2,), np.random.default_rng(0))
    array([0., 0.])
    """

    name = "normal"

    def __init__(self, mean: float = 0.0, std: float = 0.05) -> None:
        if not std >= 0:
            raise ArgumentError(f"normal initialiser needs std >= 0, got {std}")
        self.mean, self.std = float(mean), float(std)

    def sample(self, shape: Tuple[int, ...], rng: np.random.Generator) -> Array:
        return rng.normal(self.mean, self.std, size=shape)


class VarianceScaling(Initializer):
    """Uniform or normal with variance ``scale / fan`` (fan: in, out or their mean).

    The Glorot, He and LeCun initialisers are instances (see the module's table).

    Parameters
    ----------
    scale : float
        The variance's numerator (1 for Glorot and LeCun, 2 for He).
    mode : {"fan_in", "fan_avg"}
        The fan the variance divides by.
    distribution : {"uniform", "normal"}
        ``U(-a, a)`` with ``a = sqrt(3 var)``, or ``N(0, var)``.
    name : str
        The registry name it is known by.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> he = fn.initializers.VarianceScaling(2.0, "fan_in", "normal", "he_normal")
    >>> w = he((1000, 200), np.random.default_rng(0))
    >>> round(float(w.var() * 1000), 1)
    2.0
    """

    def __init__(self, scale: float, mode: str, distribution: str, name: str) -> None:
        self.scale, self.mode, self.distribution, self.name = scale, mode, distribution, name

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name}

    def sample(self, shape: Tuple[int, ...], rng: np.random.Generator) -> Array:
        fan_in, fan_out = _fans(shape)
        fan = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        var = self.scale / max(fan, 1.0)
        if self.distribution == "uniform":
            a = math.sqrt(3.0 * var)
            return rng.uniform(-a, a, size=shape)
        return rng.normal(0.0, math.sqrt(var), size=shape)


_REGISTRY: Dict[str, Callable[..., Initializer]] = {
    "zeros": Zeros,
    "constant": Constant,
    "uniform": Uniform,
    "normal": Normal,
    "glorot_uniform": lambda: VarianceScaling(1.0, "fan_avg", "uniform", "glorot_uniform"),
    "glorot_normal": lambda: VarianceScaling(1.0, "fan_avg", "normal", "glorot_normal"),
    "he_uniform": lambda: VarianceScaling(2.0, "fan_in", "uniform", "he_uniform"),
    "he_normal": lambda: VarianceScaling(2.0, "fan_in", "normal", "he_normal"),
    "lecun_uniform": lambda: VarianceScaling(1.0, "fan_in", "uniform", "lecun_uniform"),
    "lecun_normal": lambda: VarianceScaling(1.0, "fan_in", "normal", "lecun_normal"),
}
_ALIASES = {
    "xavier_uniform": "glorot_uniform", "xavier_normal": "glorot_normal",
    "kaiming_uniform": "he_uniform", "kaiming_normal": "he_normal", "zero": "zeros",
}


def names() -> List[str]:
    """Every initialiser name (aliases xavier_* and kaiming_* not included).

    Returns
    -------
    list of str

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.initializers.names()[:3]
    ['constant', 'glorot_normal', 'glorot_uniform']
    """
    return sorted(_REGISTRY)


def get(init: Any, **params: Any) -> Optional[Initializer]:
    """An initialiser from a name (with parameters), an Initializer, or None (returns None).

    Parameters
    ----------
    init : str, Initializer or None
        A name of :func:`names` or an alias (``xavier_*``, ``kaiming_*``), in any case; an
        initialiser is returned as it is.
    **params
        The named initialiser's settings (``value=`` for ``"constant"``).

    Returns
    -------
    Initializer or None

    Raises
    ------
    ValueError
        An unknown name or setting, or settings with an instance.
    TypeError
        ``init`` is neither a string, an Initializer nor None.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.initializers.get("constant", value=0.1)
    Constant(value=0.1)
    """
    if init is None or isinstance(init, Initializer):
        if params:
            raise ArgumentError("initialiser parameters need an initialiser name")
        return init
    if not isinstance(init, str):
        raise ArgumentTypeError(f"init must be a name or an Initializer, got {type(init).__name__}")
    key = init.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ArgumentError(f"unknown initialiser {init!r}; valid names: {', '.join(names())}")
    try:
        return _REGISTRY[key](**params)
    except TypeError as exc:
        raise ArgumentError(f"initialiser {key!r}: {exc}") from None


def default_for(activation_name: str) -> Initializer:
    """The usual initialiser for a layer followed by ``activation_name`` (the activation
    table's ``init``: He for the ReLU family, LeCun for SELU, Glorot otherwise).

    Parameters
    ----------
    activation_name : str
        A canonical activation name.

    Returns
    -------
    Initializer

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.initializers.default_for("relu")
    VarianceScaling(scale=2.0, mode='fan_in', distribution='uniform', name='he_uniform')
    """
    d = _table.REGISTRY.get(activation_name)
    init = get(d.init if d is not None else "glorot_uniform")
    assert init is not None
    return init
