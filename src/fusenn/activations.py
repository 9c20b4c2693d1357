"""Activation functions: the public face of the activation table.

Every activation is defined once, in :mod:`fusenn._activation_table` (formula, derivative,
range, parameters, NumPy reference, and the scalar expressions from which the compiled
backends' code is generated). This module looks them up by name and binds their parameters:
:func:`get` returns an :class:`Activation` whose ``forward`` and ``derivative`` run on the
selected backend.

>>> import fusenn as fn
>>> act = fn.activations.get("sigmoid")
>>> float(act.forward(0.0))
0.5
>>> float(act.derivative(0.0))
0.25
"""
from __future__ import annotations

import math

import numpy as np

from . import backends
from ._activation_table import (ELU, GELU, GELU_TANH, HARD_SHRINK, HARD_SIGMOID,  # noqa: F401
                                HARD_SWISH, HARD_TANH, HEAVISIDE, LEAKY_RELU, LINEAR,
                                LOG_SIGMOID, MISH, PIECEWISE_LINEAR, RELU, SELU, SIGMOID, SIGN,
                                SINC, SOFT_SHRINK, SOFTMAX, SOFTPLUS, SOFTSIGN, STEP, SWISH,
                                TANH, TANH_SHRINK, BY_CODE, ActivationDef)
from ._activation_table import ALIASES as _ALIASES
from ._activation_table import REGISTRY as _REGISTRY
from ._validation import as_float_array
from .errors import ArgumentError, ArgumentTypeError, ShapeError


# --------------------------------------------------------------------------- public objects
class Activation:
    """An activation with its parameters bound: ``forward``, ``derivative`` and ``backward``.

    ``forward(z)`` and ``derivative(z)`` take any array (or scalar) of float32 or float64 and
    return the same shape and dtype (other inputs are converted to float64). They run on the
    selected backend. ``backward(z, a, dy)`` is the vector-Jacobian product used by layers:
    ``dy * f'(z)`` elementwise, and the full softmax Jacobian for softmax.
    """

    def __init__(self, definition: ActivationDef, params: dict):
        self.definition = definition
        self.name = definition.name
        self.params = dict(params)
        self.code, self.p0, self.p1 = definition.kernel_args(self.params)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Activation({self.name!r}{', ' + args if args else ''})"

    @property
    def rowwise(self):
        return self.definition.rowwise

    def _prepare(self, z):
        z = as_float_array(z, "z")
        if self.rowwise and z.ndim == 0:
            raise ShapeError("softmax needs at least a 1-D array, got a scalar")
        return z

    def _run(self, kernel, z, *extra):
        z = self._prepare(z)
        shape = z.shape
        z2 = np.ascontiguousarray(z.reshape(-1, shape[-1]) if z.ndim >= 2 else z.reshape(1, -1))
        out = np.empty_like(z2)
        getattr(backends.get(), kernel)(z2, *extra, self.code, self.p0, self.p1, out)
        return out.reshape(shape)

    def forward(self, z):
        """``f(z)``, same shape and dtype as ``z``."""
        return self._run("act_forward", z)

    __call__ = forward

    def derivative(self, z):
        """``f'(z)`` elementwise (for softmax, the Jacobian's diagonal ``f(1 - f)``)."""
        z = self._prepare(z)
        if self.rowwise:
            s = self.forward(z)
            return s * (1 - s)
        a = self.forward(z)
        return self._run_pair("act_derivative", z, a)

    def _run_pair(self, kernel, z, a):
        shape = z.shape
        z2 = np.ascontiguousarray(z.reshape(1, -1) if z.ndim < 2 else z.reshape(-1, shape[-1]))
        a2 = np.ascontiguousarray(a.reshape(z2.shape))
        out = np.empty_like(z2)
        getattr(backends.get(), kernel)(z2, a2, self.code, self.p0, self.p1, out)
        return out.reshape(shape)

    def backward(self, z, a, dy):
        """Gradient wrt ``z`` given the upstream gradient ``dy`` (2-D arrays, one dtype)."""
        if self.rowwise:
            return a * (dy - np.sum(dy * a, axis=-1, keepdims=True))
        return dy * self._run_pair("act_derivative", z, a)

    def get_config(self):
        return {"name": self.name, **self.params}

    def __reduce__(self):
        # By name and parameters: the definition (with its NumPy functions) is looked up
        # afresh on unpickling, as the backend is.
        return _from_config, (self.get_config(),)


def _from_config(config):
    """The Activation that :meth:`Activation.get_config` describes."""
    config = dict(config)
    return get(config.pop("name"), **config)


def names():
    """Every registered activation name (canonical names, sorted), aliases not included."""
    return sorted(_REGISTRY)


def aliases():
    """``{alias: canonical name}``."""
    return dict(_ALIASES)


def definition(name):
    """The :class:`ActivationDef` registered under ``name`` (or an alias)."""
    if not isinstance(name, str):
        raise ArgumentTypeError(f"activation name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ArgumentError(f"unknown activation {name!r}; valid names: {', '.join(names())}")
    return _REGISTRY[key]


def get(name, **params):
    """Return the activation ``name`` with its parameters bound.

    ``name`` may be an alias (``"logistic"``, ``"identity"``) or an :class:`Activation` (returned
    as is; then ``params`` must be empty). Unknown names and unknown parameters raise
    ``ValueError`` listing what is valid. ``None`` means linear.
    """
    if isinstance(name, Activation):
        if params:
            raise ArgumentError("parameters cannot be given together with an Activation object")
        return name
    if name is None:
        name = "linear"
    d = definition(name)
    allowed = dict(d.params)
    unknown = set(params) - set(allowed)
    if unknown:
        valid = ", ".join(allowed) if allowed else "none"
        raise ArgumentError(f"activation {d.name!r} got unknown parameter(s) "
                         f"{', '.join(sorted(unknown))}; valid parameters: {valid}")
    bound = {**allowed, **params}
    for key, value in bound.items():
        if key == "approximate":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise ArgumentTypeError(f"activation {d.name!r}: parameter {key} must be a number, got "
                            f"{value!r}")
        if not math.isfinite(float(value)):
            raise ArgumentError(f"activation {d.name!r}: parameter {key} must be finite, got "
                             f"{value!r}")
        bound[key] = float(value)
    if d.check is not None:
        d.check(bound)
    return Activation(d, bound)


def kink_points(act: Activation):
    """Points where ``act``'s derivative is discontinuous, scaled by its parameters."""
    d = act.definition
    p = act.params
    if d.name == "hard_tanh":
        return (p["min_val"], p["max_val"])
    if d.name in ("soft_shrink", "hard_shrink"):
        return (-p["lambd"], p["lambd"])
    return d.kinks
