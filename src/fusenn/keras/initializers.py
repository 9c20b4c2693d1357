"""Keras's weight initialisers (``keras.initializers``), as fusenn initialisers.

Names and classes are Keras's: ``"glorot_uniform"`` (Keras's default for a Dense kernel),
``"zeros"`` (its default for a bias), ``GlorotUniform(seed=None)``, ``RandomNormal(mean,
stddev)``, ``Constant(value)``, ... Keras draws its ``*_normal`` variance-scaling weights from
a truncated normal; fusenn from the plain normal of the same variance.

>>> get("he_normal").name
'he_normal'
>>> get(RandomUniform(-0.1, 0.1)).low
-0.1
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Union, cast

from ..errors import ArgumentTypeError
from .. import initializers as _inits
from ._common import missing_attribute, unsupported

_NAMES: dict[str, Callable[[], Optional[_inits.Initializer]]] = {
    "zeros": lambda: _inits.Zeros(),
    "ones": lambda: _inits.Constant(1.0),
    "random_uniform": lambda: _inits.Uniform(-0.05, 0.05),
    "random_normal": lambda: _inits.Normal(0.0, 0.05),
    "glorot_uniform": lambda: _inits.get("glorot_uniform"),
    "glorot_normal": lambda: _inits.get("glorot_normal"),
    "he_uniform": lambda: _inits.get("he_uniform"),
    "he_normal": lambda: _inits.get("he_normal"),
    "lecun_uniform": lambda: _inits.get("lecun_uniform"),
    "lecun_normal": lambda: _inits.get("lecun_normal"),
}


def Zeros() -> _inits.Initializer:
    """All zeros.

    Returns
    -------
    fusenn.initializers.Initializer
        The initialiser, for ``Dense(kernel_initializer=...)`` or ``bias_initializer``.
    """
    return _inits.Zeros()


def Ones() -> _inits.Initializer:
    """All ones.

    Returns
    -------
    fusenn.initializers.Initializer
        The initialiser, for ``Dense(kernel_initializer=...)`` or ``bias_initializer``.
    """
    return _inits.Constant(1.0)


def Constant(value: float = 0.0) -> _inits.Initializer:
    """Every weight ``value``.

    Parameters
    ----------
    value : float, default=0.0
        The value of every weight.

    Returns
    -------
    fusenn.initializers.Initializer
        The initialiser, for ``Dense(kernel_initializer=...)`` or ``bias_initializer``.

    Examples
    --------
    >>> Constant(0.5).value
    0.5
    """
    return _inits.Constant(value)


def RandomUniform(minval: float = -0.05, maxval: float = 0.05,
                  seed: Optional[int] = None) -> _inits.Initializer:
    """Uniform on ``[minval, maxval)``.

    Parameters
    ----------
    minval, maxval : float, default=-0.05, 0.05
        The bounds.
    seed : int or None, default=None
        Accepted for Keras's signature; the layer's generator (the model's ``random_state``)
        draws the weights.

    Returns
    -------
    fusenn.initializers.Initializer
        The initialiser, for ``Dense(kernel_initializer=...)`` or ``bias_initializer``.
    """
    return _inits.Uniform(minval, maxval)


def RandomNormal(mean: float = 0.0, stddev: float = 0.05,
                 seed: Optional[int] = None) -> _inits.Initializer:
    """Normal with ``mean`` and ``stddev``.

    Parameters
    ----------
    mean, stddev : float, default=0.0, 0.05
        The normal's mean and standard deviation.
    seed : int or None, default=None
        Accepted for Keras's signature; the layer's generator (the model's ``random_state``)
        draws the weights.

    Returns
    -------
    fusenn.initializers.Initializer
        The initialiser, for ``Dense(kernel_initializer=...)`` or ``bias_initializer``.
    """
    return _inits.Normal(mean, stddev)


def _named(name: str) -> Callable[..., _inits.Initializer]:
    def make(seed: Optional[int] = None) -> _inits.Initializer:
        # a name always gives an initialiser (None only comes back for None)
        init = cast(_inits.Initializer, _inits.get(name))
        return init

    make.__name__ = make.__qualname__ = "".join(p.title() for p in name.split("_"))
    make.__doc__ = f"""Keras's ``{name}`` (variance scaling).

    Parameters
    ----------
    seed : int or None, default=None
        Accepted for Keras's signature; the layer's generator (the model's ``random_state``)
        draws the weights.

    Returns
    -------
    fusenn.initializers.Initializer
        fusenn's ``{name}`` initialiser.
    """
    return make


GlorotUniform, GlorotNormal = _named("glorot_uniform"), _named("glorot_normal")
HeUniform, HeNormal = _named("he_uniform"), _named("he_normal")
LecunUniform, LecunNormal = _named("lecun_uniform"), _named("lecun_normal")


def get(identifier: Union[str, dict[str, Any], _inits.Initializer, None]
        ) -> Optional[_inits.Initializer]:
    """A fusenn initialiser from a Keras name, a Keras-style config dict or an initialiser.

    Parameters
    ----------
    identifier : str, dict, fusenn Initializer or None
        A Keras name (``"glorot_uniform"``) or class name (``"GlorotUniform"``), a config
        ``{"class_name": ..., "config": {...}}``, an initialiser (returned as it is) or None.

    Returns
    -------
    fusenn.initializers.Initializer or None
        None for None.

    Raises
    ------
    UnsupportedFeatureError
        For a Keras initialiser the face does not have (``"orthogonal"``, ``"identity"``).
    fusenn.errors.ArgumentTypeError
        For anything that is neither a name, a dict nor an initialiser.
    """
    if identifier is None or isinstance(identifier, _inits.Initializer):
        return identifier
    if isinstance(identifier, dict):
        cfg = dict(identifier.get("config", {}))
        identifier = identifier.get("class_name", "")
        if cfg and identifier in globals() and callable(globals()[identifier]):
            init: _inits.Initializer = globals()[identifier](**cfg)
            return init
    if not isinstance(identifier, str):
        raise ArgumentTypeError(f"initializer must be a name or an initializer, got "
                                f"{type(identifier).__name__}")
    key = identifier.strip()
    if key in _CLASSES:
        named: _inits.Initializer = globals()[key]()
        return named
    key = key.lower()
    if key not in _NAMES:
        raise unsupported(f"the initializer {identifier!r}",
                          f"valid names: {', '.join(sorted(_NAMES))}")
    return _NAMES[key]()


_CLASSES = ("Zeros", "Ones", "Constant", "RandomUniform", "RandomNormal", "GlorotUniform",
            "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform", "LecunNormal")
__all__ = [*_CLASSES, "get"]
__getattr__ = missing_attribute(__name__, _CLASSES + tuple(_NAMES))
