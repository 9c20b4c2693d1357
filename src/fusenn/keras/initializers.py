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

from ..errors import ArgumentTypeError
from .. import initializers as _inits
from ._common import missing_attribute, unsupported

_NAMES = {
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


def Zeros():
    """All zeros."""
    return _inits.Zeros()


def Ones():
    """All ones."""
    return _inits.Constant(1.0)


def Constant(value=0.0):
    """Every weight ``value``."""
    return _inits.Constant(value)


def RandomUniform(minval=-0.05, maxval=0.05, seed=None):
    """Uniform on ``[minval, maxval)``."""
    return _inits.Uniform(minval, maxval)


def RandomNormal(mean=0.0, stddev=0.05, seed=None):
    """Normal with ``mean`` and ``stddev``."""
    return _inits.Normal(mean, stddev)


def _named(name):
    def make(seed=None):
        return _inits.get(name)

    make.__name__ = make.__qualname__ = "".join(p.title() for p in name.split("_"))
    make.__doc__ = f"Keras's ``{name}`` (variance scaling)."
    return make


GlorotUniform, GlorotNormal = _named("glorot_uniform"), _named("glorot_normal")
HeUniform, HeNormal = _named("he_uniform"), _named("he_normal")
LecunUniform, LecunNormal = _named("lecun_uniform"), _named("lecun_normal")


def get(identifier):
    """A fusenn initialiser from a Keras name, a Keras-style config dict or an initialiser.

    Parameters
    ----------
    identifier : str, dict, fusenn Initializer or None

    Returns
    -------
    fusenn.initializers.Initializer or None

    Raises
    ------
    UnsupportedFeatureError
        For a Keras initialiser the face does not have (``"orthogonal"``, ``"identity"``).
    """
    if identifier is None or isinstance(identifier, _inits.Initializer):
        return identifier
    if isinstance(identifier, dict):
        cfg = dict(identifier.get("config", {}))
        identifier = identifier.get("class_name", "")
        if cfg and identifier in globals() and callable(globals()[identifier]):
            return globals()[identifier](**cfg)
    if not isinstance(identifier, str):
        raise ArgumentTypeError(f"initializer must be a name or an initializer, got "
                                f"{type(identifier).__name__}")
    key = identifier.strip()
    if key in _CLASSES:
        return globals()[key]()
    key = key.lower()
    if key not in _NAMES:
        raise unsupported(f"the initializer {identifier!r}",
                          f"valid names: {', '.join(sorted(_NAMES))}")
    return _NAMES[key]()


_CLASSES = ("Zeros", "Ones", "Constant", "RandomUniform", "RandomNormal", "GlorotUniform",
            "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform", "LecunNormal")
__all__ = [*_CLASSES, "get"]
__getattr__ = missing_attribute(__name__, _CLASSES + tuple(_NAMES))
