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

import numpy as np

from . import _activation_table as _table
from .errors import ArgumentError, ArgumentTypeError


__all__ = ["Initializer", "Zeros", "Constant", "Uniform", "Normal", "VarianceScaling", "names", "get",
           "default_for"]


class Initializer:
    """Base class: subclasses implement :meth:`sample`."""

    name = "initializer"

    def __call__(self, shape, rng):
        shape = tuple(int(s) for s in shape)
        return np.asarray(self.sample(shape, rng), dtype=np.float64).reshape(shape)

    def sample(self, shape, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name, **{k: v for k, v in vars(self).items()}}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def _fans(shape):
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[0], shape[-1]


class Zeros(Initializer):
    name = "zeros"

    def sample(self, shape, rng):
        return np.zeros(shape)


class Constant(Initializer):
    name = "constant"

    def __init__(self, value=0.0):
        self.value = float(value)

    def sample(self, shape, rng):
        return np.full(shape, self.value)


class Uniform(Initializer):
    name = "uniform"

    def __init__(self, low=-0.05, high=0.05):
        if not low < high:
            raise ArgumentError(f"uniform initialiser needs low < high, got {low} and {high}")
        self.low, self.high = float(low), float(high)

    def sample(self, shape, rng):
        return rng.uniform(self.low, self.high, size=shape)


class Normal(Initializer):
    name = "normal"

    def __init__(self, mean=0.0, std=0.05):
        if not std >= 0:
            raise ArgumentError(f"normal initialiser needs std >= 0, got {std}")
        self.mean, self.std = float(mean), float(std)

    def sample(self, shape, rng):
        return rng.normal(self.mean, self.std, size=shape)


class VarianceScaling(Initializer):
    """Uniform or normal with variance ``scale / fan`` (fan: in, out or their mean)."""

    def __init__(self, scale, mode, distribution, name):
        self.scale, self.mode, self.distribution, self.name = scale, mode, distribution, name

    def get_config(self):
        return {"name": self.name}

    def sample(self, shape, rng):
        fan_in, fan_out = _fans(shape)
        fan = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        var = self.scale / max(fan, 1.0)
        if self.distribution == "uniform":
            a = math.sqrt(3.0 * var)
            return rng.uniform(-a, a, size=shape)
        return rng.normal(0.0, math.sqrt(var), size=shape)


_REGISTRY = {
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


def names():
    """Every initialiser name (aliases xavier_* and kaiming_* not included)."""
    return sorted(_REGISTRY)


def get(init, **params):
    """An initialiser from a name (with parameters), an Initializer, or None (returns None)."""
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


def default_for(activation_name):
    """The usual initialiser for a layer followed by ``activation_name`` (the activation
    table's ``init``: He for the ReLU family, LeCun for SELU, Glorot otherwise)."""
    d = _table.REGISTRY.get(activation_name)
    return get(d.init if d is not None else "glorot_uniform")
