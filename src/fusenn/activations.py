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
from typing import Any, Dict, List, Tuple

import numpy as np

from . import backends
from ._activation_table import (  # noqa: F401 - re-exported: the activation codes
    ELU as ELU, GELU as GELU, GELU_TANH as GELU_TANH, HARD_SHRINK as HARD_SHRINK,
    HARD_SIGMOID as HARD_SIGMOID, HARD_SWISH as HARD_SWISH, HARD_TANH as HARD_TANH,
    HEAVISIDE as HEAVISIDE, LEAKY_RELU as LEAKY_RELU, LINEAR as LINEAR,
    LOG_SIGMOID as LOG_SIGMOID, MISH as MISH, PIECEWISE_LINEAR as PIECEWISE_LINEAR,
    RELU as RELU, SELU as SELU, SIGMOID as SIGMOID, SIGN as SIGN, SINC as SINC,
    SOFT_SHRINK as SOFT_SHRINK, SOFTMAX as SOFTMAX, SOFTPLUS as SOFTPLUS, SOFTSIGN as SOFTSIGN,
    STEP as STEP, SWISH as SWISH, TANH as TANH, TANH_SHRINK as TANH_SHRINK, BY_CODE as BY_CODE,
    ActivationDef as ActivationDef)
from ._activation_table import ALIASES as _ALIASES
from ._activation_table import REGISTRY as _REGISTRY
from ._typing import Array, ArrayLike
from ._validation import as_float_array
from .errors import ArgumentError, ArgumentTypeError, ShapeError


# --------------------------------------------------------------------------- public objects
class Activation:
    """An activation with its parameters bound: ``forward``, ``derivative`` and ``backward``.

    ``forward(z)`` and ``derivative(z)`` take any array (or scalar) of float32 or float64 and
    return the same shape and dtype (other inputs are converted to float64). They run on the
    selected backend. ``backward(z, a, dy)`` is the vector-Jacobian product used by layers:
    ``dy * f'(z)`` elementwise, and the full softmax Jacobian for softmax.

    Use :func:`get` to make one (it checks the name and the parameters).

    Parameters
    ----------
    definition : ActivationDef
        The table entry (formula, derivative, parameters).
    params : dict
        The parameters, bound (every one of the definition's, as floats).

    Examples
    --------
    >>> import fusenn as fn
    >>> elu = fn.activations.get("elu", alpha=0.5)
    >>> elu
    Activation('elu', alpha=0.5)
    >>> elu.forward([-100.0, 2.0])
    array([-0.5,  2. ])
    """

    def __init__(self, definition: ActivationDef, params: Dict[str, Any]) -> None:
        self.definition = definition
        self.name = definition.name
        self.params = dict(params)
        self.code, self.p0, self.p1 = definition.kernel_args(self.params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Activation({self.name!r}{', ' + args if args else ''})"

    @property
    def rowwise(self) -> bool:
        """Whether the activation couples a row's values (softmax) instead of acting
        elementwise."""
        return bool(self.definition.rowwise)

    def _prepare(self, z: ArrayLike) -> Array:
        z = as_float_array(z, "z")
        if self.rowwise and z.ndim == 0:
            raise ShapeError("softmax needs at least a 1-D array, got a scalar")
        return z

    def _run(self, kernel: str, z: ArrayLike, *extra: Any) -> Array:
        z = self._prepare(z)
        shape = z.shape
        z2 = np.ascontiguousarray(z.reshape(-1, shape[-1]) if z.ndim >= 2 else z.reshape(1, -1))
        out = np.empty_like(z2)
        getattr(backends.get(), kernel)(z2, *extra, self.code, self.p0, self.p1, out)
        return out.reshape(shape)

    def forward(self, z: ArrayLike) -> Array:
        """``f(z)``, same shape and dtype as ``z``.

        Parameters
        ----------
        z : array_like
            Pre-activations (float32 and float64 keep their dtype; others become float64).

        Returns
        -------
        ndarray
            ``f(z)``, of ``z``'s shape.

        Raises
        ------
        TypeError
            ``z`` is not numeric.
        ShapeError
            A scalar given to softmax.
        """
        return self._run("act_forward", z)

    __call__ = forward

    def derivative(self, z: ArrayLike) -> Array:
        """``f'(z)`` elementwise (for softmax, the Jacobian's diagonal ``f(1 - f)``).

        Parameters
        ----------
        z : array_like
            Pre-activations.

        Returns
        -------
        ndarray
            ``f'(z)``, of ``z``'s shape (0 at the kinks of step-like functions, and
            PyTorch's one-sided value at other kinks: relu'(0) = 0).

        Examples
        --------
        >>> import fusenn as fn
        >>> fn.activations.get("relu").derivative([-1.0, 0.0, 2.0])
        array([0., 0., 1.])
        """
        z = self._prepare(z)
        if self.rowwise:
            s = self.forward(z)
            out: Array = s * (1 - s)
            return out
        a = self.forward(z)
        return self._run_pair("act_derivative", z, a)

    def _run_pair(self, kernel: str, z: Array, a: Array) -> Array:
        shape = z.shape
        z2 = np.ascontiguousarray(z.reshape(1, -1) if z.ndim < 2 else z.reshape(-1, shape[-1]))
        a2 = np.ascontiguousarray(a.reshape(z2.shape))
        out = np.empty_like(z2)
        getattr(backends.get(), kernel)(z2, a2, self.code, self.p0, self.p1, out)
        return out.reshape(shape)

    def backward(self, z: Array, a: Array, dy: Array) -> Array:
        """Gradient wrt ``z`` given the upstream gradient ``dy`` (2-D arrays, one dtype).

        Parameters
        ----------
        z : ndarray of shape (n, k)
            Pre-activations.
        a : ndarray of shape (n, k)
            ``f(z)``.
        dy : ndarray of shape (n, k)
            The loss's gradient with respect to ``a``.

        Returns
        -------
        ndarray of shape (n, k)
            ``dy * f'(z)`` (for softmax, ``a * (dy - sum(dy * a, axis=-1))``).
        """
        if self.rowwise:
            out: Array = a * (dy - np.sum(dy * a, axis=-1, keepdims=True))
            return out
        return dy * self._run_pair("act_derivative", z, a)

    def get_config(self) -> Dict[str, Any]:
        """The name and parameters: ``get(**cfg)`` style, ``{"name": "elu", "alpha": 1.0}``.

        Returns
        -------
        dict
        """
        return {"name": self.name, **self.params}

    def __reduce__(self) -> Tuple[Any, Tuple[Dict[str, Any]]]:
        # By name and parameters: the definition (with its NumPy functions) is looked up
        # afresh on unpickling, as the backend is.
        return _from_config, (self.get_config(),)


def _from_config(config: Dict[str, Any]) -> Activation:
    """The Activation that :meth:`Activation.get_config` describes."""
    config = dict(config)
    return get(config.pop("name"), **config)


def names() -> List[str]:
    """Every registered activation name (canonical names, sorted), aliases not included.

    Returns
    -------
    list of str

    Examples
    --------
    >>> import fusenn as fn
    >>> "relu" in fn.activations.names(), "logistic" in fn.activations.names()
    (True, False)
    """
    return sorted(_REGISTRY)


def aliases() -> Dict[str, str]:
    """``{alias: canonical name}``.

    Returns
    -------
    dict of str to str

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.activations.aliases()["logistic"]
    'sigmoid'
    """
    return dict(_ALIASES)


def definition(name: str) -> ActivationDef:
    """The :class:`ActivationDef` registered under ``name`` (or an alias).

    Parameters
    ----------
    name : str
        A name or alias, in any case; ``-`` may stand for ``_``.

    Returns
    -------
    ActivationDef
        The table entry: formula, derivative, range, parameters.

    Raises
    ------
    ValueError
        An unknown name (the message lists the valid ones).
    TypeError
        ``name`` is not a string.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.activations.definition("Leaky-ReLU").name
    'leaky_relu'
    """
    if not isinstance(name, str):
        raise ArgumentTypeError(f"activation name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ArgumentError(f"unknown activation {name!r}; valid names: {', '.join(names())}")
    return _REGISTRY[key]


def get(name: Any, **params: Any) -> Activation:
    """Return the activation ``name`` with its parameters bound.

    ``name`` may be an alias (``"logistic"``, ``"identity"``) or an :class:`Activation` (returned
    as is; then ``params`` must be empty). Unknown names and unknown parameters raise
    ``ValueError`` listing what is valid. ``None`` means linear.

    Parameters
    ----------
    name : str, Activation or None
        The activation.
    **params
        Its parameters by name (``alpha=0.1``); the others keep their defaults.

    Returns
    -------
    Activation

    Raises
    ------
    ValueError
        An unknown name or parameter, or a parameter that is not finite.
    TypeError
        A parameter that is not a number, or a name that is not a string.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.activations.get("leaky_relu", alpha=0.2).forward([-1.0, 1.0])
    array([-0.2,  1. ])
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


def kink_points(act: Activation) -> Tuple[float, ...]:
    """Points where ``act``'s derivative is discontinuous, scaled by its parameters.

    Parameters
    ----------
    act : Activation
        The activation, its parameters bound.

    Returns
    -------
    tuple of float
        The kinks (empty for a smooth activation).

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.activations.kink_points(fn.activations.get("hard_tanh", min_val=-2.0, max_val=2.0))
    (-2.0, 2.0)
    """
    d = act.definition
    p = act.params
    if d.name == "hard_tanh":
        return (p["min_val"], p["max_val"])
    if d.name in ("soft_shrink", "hard_shrink"):
        return (-p["lambd"], p["lambd"])
    return d.kinks
