"""Activation functions: each one defined once, with its derivative, range and parameters.

Every activation is an :class:`ActivationDef` in one registry. The definition holds

* the formula and derivative as text (what the course notes write),
* the output range,
* its parameters and their defaults,
* a vectorised NumPy forward and derivative - the reference that every compiled backend is
  tested against - written so that they neither overflow nor warn for ``|z|`` up to ``1e4``,
* an integer ``code``: the compiled backends (Cython, Numba) implement one scalar function per
  code and pick it from this number, so the name is resolved once, outside the kernels.

Several names share a kernel: ``prelu`` (fixed slope) and ``rrelu`` (its evaluation form, the
mean slope ``(lower + upper) / 2``) are ``leaky_relu`` with another slope; ``silu`` is
``swish`` with ``beta = 1``; ``gelu(approximate="tanh")`` has its own code.

Derivatives at kinks follow PyTorch: ``relu'(0) = 0``, ``leaky_relu'(0) = alpha``; step-like
functions (step, heaviside, sign) have derivative 0 everywhere.

>>> import fusenn as fn
>>> act = fn.activations.get("sigmoid")
>>> float(act.forward(0.0))
0.5
>>> float(act.derivative(0.0))
0.25
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import ShapeError

# --------------------------------------------------------------------------- kernel codes
# The numbers are the contract with the compiled backends (csrc/_cykernels.pyx and
# backends/_numba.py switch on them). Never renumber; append.
LINEAR, STEP, HEAVISIDE, SIGN, PIECEWISE_LINEAR, SIGMOID, TANH, RELU, LEAKY_RELU = range(9)
ELU, SELU, GELU, GELU_TANH, SWISH, MISH, SOFTPLUS, SOFTSIGN, LOG_SIGMOID = range(10, 19)
SINC, HARD_SWISH, HARD_SIGMOID, HARD_TANH, TANH_SHRINK, SOFT_SHRINK, HARD_SHRINK = range(19, 26)
SOFTMAX = 26

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
GELU_TANH_K = math.sqrt(2.0 / math.pi)  # sqrt(2/pi)
GELU_TANH_C = 0.044715
SINC_SERIES_BELOW = 1e-2  # |z| below this: sinc'(z) by its Taylor series (no cancellation)


# --------------------------------------------------------------------------- stable pieces
def _sigmoid(z):
    """1 / (1 + exp(-z)) without overflow: exp only ever sees -|z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(z):
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def _erf(z):
    from scipy.special import erf  # imported on first use: keeps `import fusenn` fast

    return erf(z)


def _sinc_derivative(z):
    small = np.abs(z) < SINC_SERIES_BELOW
    zs = np.where(small, 1.0, z)
    big = (np.cos(zs) - np.sin(zs) / zs) / zs
    series = -z / 3.0 + z ** 3 / 30.0
    return np.where(small, series, big)


def _gelu_tanh_parts(z):
    t = np.tanh(GELU_TANH_K * (z + GELU_TANH_C * z ** 3))
    return t


# --------------------------------------------------------------------------- definitions
@dataclass(frozen=True)
class ActivationDef:
    """One activation function: the single place where it is defined."""

    name: str
    code: int
    formula: str
    derivative_formula: str
    range: str
    forward: Callable  # (z, p0, p1) -> array, NumPy reference
    derivative: Callable  # (z, p0, p1) -> array, NumPy reference
    params: tuple = ()  # ((name, default), ...) in the order they map to p0, p1
    aliases: tuple = ()
    kinks: tuple = ()  # points (in units of the parameters, see kink_points) where f' jumps
    rowwise: bool = False  # softmax: a function of the whole row, not elementwise
    resolve: Callable = None  # params dict -> (code, p0, p1) when not the plain mapping
    check: Callable = None  # params dict -> None, raises ValueError on a bad value
    doc: str = ""

    def kernel_args(self, params):
        """``(code, p0, p1)`` for the compiled kernels from this definition's parameters."""
        if self.resolve is not None:
            return self.resolve(params)
        values = [float(params[name]) for name, _ in self.params] + [0.0, 0.0]
        return self.code, values[0], values[1]


_REGISTRY: dict = {}
_ALIASES: dict = {}
BY_CODE: dict = {}


def _define(name, code, formula, derivative_formula, range_, forward, derivative, **kw):
    d = ActivationDef(name, code, formula, derivative_formula, range_, forward, derivative, **kw)
    _REGISTRY[name] = d
    for a in d.aliases:
        _ALIASES[a] = name
    BY_CODE.setdefault(code, d)
    return d


def _zeros(z, p0, p1):
    return np.zeros_like(z)


def _positive(name):
    def check(p):
        for key in p:
            if not p[key] > 0:
                raise ValueError(f"{name}: parameter {key} must be > 0, got {p[key]!r}")
    return check


def _nonnegative(name):
    def check(p):
        for key in p:
            if not p[key] >= 0:
                raise ValueError(f"{name}: parameter {key} must be >= 0, got {p[key]!r}")
    return check


_define("linear", LINEAR, "f(z) = z", "f'(z) = 1", "(-inf, inf)",
        lambda z, a, b: z, lambda z, a, b: np.ones_like(z), aliases=("identity", "none"))
_define("step", STEP, "f(z) = 1 if z >= 0 else 0", "f'(z) = 0", "{0, 1}",
        lambda z, a, b: np.where(z >= 0, 1.0, 0.0), _zeros, aliases=("binary_step",))
_define("heaviside", HEAVISIDE, "f(z) = 0 if z < 0, 0.5 if z = 0, 1 if z > 0", "f'(z) = 0",
        "{0, 0.5, 1}", lambda z, a, b: np.where(z > 0, 1.0, np.where(z == 0, 0.5, 0.0)), _zeros)
_define("sign", SIGN, "f(z) = -1 if z < 0, 0 if z = 0, 1 if z > 0", "f'(z) = 0", "{-1, 0, 1}",
        lambda z, a, b: np.sign(z), _zeros, aliases=("signum",))
_define("piecewise_linear", PIECEWISE_LINEAR,
        "f(z) = 0 if z <= -1/2, z + 1/2 if -1/2 < z < 1/2, 1 if z >= 1/2",
        "f'(z) = 1 if -1/2 < z < 1/2 else 0", "[0, 1]",
        lambda z, a, b: np.clip(z + 0.5, 0.0, 1.0),
        lambda z, a, b: np.where((z > -0.5) & (z < 0.5), 1.0, 0.0), kinks=(-0.5, 0.5))
_define("sigmoid", SIGMOID, "f(z) = 1 / (1 + exp(-z))", "f'(z) = f(z) (1 - f(z))", "(0, 1)",
        lambda z, a, b: _sigmoid(z),
        lambda z, a, b: _sigmoid(z) * _sigmoid(-z), aliases=("logistic",))
_define("tanh", TANH, "f(z) = (exp(z) - exp(-z)) / (exp(z) + exp(-z))", "f'(z) = 1 - f(z)^2",
        "(-1, 1)", lambda z, a, b: np.tanh(z), lambda z, a, b: 1.0 - np.tanh(z) ** 2)
_define("relu", RELU, "f(z) = max(0, z)", "f'(z) = 1 if z > 0 else 0", "[0, inf)",
        lambda z, a, b: np.maximum(z, 0), lambda z, a, b: np.where(z > 0, 1.0, 0.0),
        kinks=(0.0,))
_leaky_fwd = lambda z, a, b: np.where(z > 0, z, a * z)  # noqa: E731
_leaky_der = lambda z, a, b: np.where(z > 0, 1.0, a)  # noqa: E731
_define("leaky_relu", LEAKY_RELU, "f(z) = z if z > 0 else alpha z",
        "f'(z) = 1 if z > 0 else alpha", "(-inf, inf)", _leaky_fwd, _leaky_der,
        params=(("alpha", 0.01),), kinks=(0.0,))
_define("prelu", LEAKY_RELU, "f(z) = z if z > 0 else alpha z (alpha learnt per unit in the "
        "PReLU layer)", "f'(z) = 1 if z > 0 else alpha", "(-inf, inf)", _leaky_fwd, _leaky_der,
        params=(("alpha", 0.25),), kinks=(0.0,))


def _rrelu_check(p):
    if not 0 <= p["lower"] <= p["upper"]:
        raise ValueError(f"rrelu: need 0 <= lower <= upper, got lower={p['lower']!r}, "
                         f"upper={p['upper']!r}")


_define("rrelu", LEAKY_RELU, "f(z) = z if z >= 0 else a z, a ~ U(lower, upper) in training, "
        "a = (lower + upper) / 2 in evaluation", "f'(z) = 1 if z > 0 else a", "(-inf, inf)",
        lambda z, lo, up: _leaky_fwd(z, 0.5 * (lo + up), 0),
        lambda z, lo, up: _leaky_der(z, 0.5 * (lo + up), 0),
        params=(("lower", 1.0 / 8.0), ("upper", 1.0 / 3.0)), kinks=(0.0,), check=_rrelu_check,
        resolve=lambda p: (LEAKY_RELU, 0.5 * (float(p["lower"]) + float(p["upper"])), 0.0),
        doc="As a plain function this is the evaluation form; the RReLU layer draws slopes.")
_define("elu", ELU, "f(z) = z if z > 0 else alpha (exp(z) - 1)",
        "f'(z) = 1 if z > 0 else alpha exp(z)", "(-alpha, inf)",
        lambda z, a, b: np.where(z > 0, z, a * np.expm1(np.minimum(z, 0))),
        lambda z, a, b: np.where(z > 0, 1.0, a * np.exp(np.minimum(z, 0))),
        params=(("alpha", 1.0),), kinks=(0.0,), check=_positive("elu"))
_define("selu", SELU, "f(z) = scale (z if z > 0 else alpha (exp(z) - 1)), "
        "alpha = 1.6733, scale = 1.0507", "f'(z) = scale (1 if z > 0 else alpha exp(z))",
        "(-scale alpha, inf)",
        lambda z, a, b: SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0))),
        lambda z, a, b: SELU_SCALE * np.where(z > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(z, 0))),
        kinks=(0.0,))


def _gelu_resolve(p):
    mode = p["approximate"]
    if mode not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {mode!r}")
    return (GELU if mode == "none" else GELU_TANH), 0.0, 0.0


_SQRT_2PI = math.sqrt(2.0 * math.pi)
_define("gelu", GELU, "f(z) = z Phi(z) (exact, approximate='none'); "
        "z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) (approximate='tanh')",
        "f'(z) = Phi(z) + z phi(z)", "(-0.17, inf)",
        lambda z, a, b: 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0))),
        lambda z, a, b: 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))
        + z * np.exp(-0.5 * z * z) / _SQRT_2PI,
        params=(("approximate", "none"),), resolve=_gelu_resolve)


def _gelu_tanh_derivative(z, a, b):
    t = _gelu_tanh_parts(z)
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * GELU_TANH_K * (
        1.0 + 3.0 * GELU_TANH_C * z * z)


# Reachable by code (gelu with approximate="tanh"); registered under its own internal name.
BY_CODE[GELU_TANH] = ActivationDef(
    "gelu_tanh", GELU_TANH, "z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))",
    "1/2 (1 + t) + z/2 (1 - t^2) sqrt(2/pi) (1 + 3 0.044715 z^2)", "(-0.17, inf)",
    lambda z, a, b: 0.5 * z * (1.0 + _gelu_tanh_parts(z)), _gelu_tanh_derivative)

_define("swish", SWISH, "f(z) = z sigmoid(beta z)",
        "f'(z) = s + beta z s (1 - s), s = sigmoid(beta z)", "(-0.28/beta, inf)",
        lambda z, beta, b: z * _sigmoid(beta * z),
        lambda z, beta, b: _sigmoid(beta * z) * (1.0 + beta * z * _sigmoid(-beta * z)),
        params=(("beta", 1.0),))
_define("silu", SWISH, "f(z) = z sigmoid(z)", "f'(z) = s (1 + z (1 - s)), s = sigmoid(z)",
        "(-0.28, inf)", lambda z, beta, b: z * _sigmoid(z),
        lambda z, beta, b: _sigmoid(z) * (1.0 + z * _sigmoid(-z)),
        resolve=lambda p: (SWISH, 1.0, 0.0))


def _mish_derivative(z, a, b):
    t = np.tanh(_softplus(z))
    return t + z * _sigmoid(z) * (1.0 - t * t)


_define("mish", MISH, "f(z) = z tanh(softplus(z))",
        "f'(z) = t + z sigmoid(z) (1 - t^2), t = tanh(softplus(z))", "(-0.31, inf)",
        lambda z, a, b: z * np.tanh(_softplus(z)), _mish_derivative)
_define("softplus", SOFTPLUS, "f(z) = log(1 + exp(beta z)) / beta",
        "f'(z) = sigmoid(beta z)", "(0, inf)",
        lambda z, beta, b: _softplus(beta * z) / beta,
        lambda z, beta, b: _sigmoid(beta * z), params=(("beta", 1.0),),
        check=_positive("softplus"))
_define("softsign", SOFTSIGN, "f(z) = z / (1 + |z|)", "f'(z) = 1 / (1 + |z|)^2", "(-1, 1)",
        lambda z, a, b: z / (1.0 + np.abs(z)), lambda z, a, b: 1.0 / (1.0 + np.abs(z)) ** 2)
_define("log_sigmoid", LOG_SIGMOID, "f(z) = log(sigmoid(z)) = -softplus(-z)",
        "f'(z) = 1 - sigmoid(z) = sigmoid(-z)", "(-inf, 0)",
        lambda z, a, b: -_softplus(-z), lambda z, a, b: _sigmoid(-z),
        aliases=("logsigmoid",))
_define("sinc", SINC, "f(z) = sin(z) / z, f(0) = 1", "f'(z) = (cos z - sin(z)/z) / z, f'(0) = 0",
        "[-0.217, 1]",
        lambda z, a, b: np.sin(z) / np.where(z == 0, 1.0, z) * (z != 0) + (z == 0),
        lambda z, a, b: _sinc_derivative(z))
_define("hard_swish", HARD_SWISH, "f(z) = 0 if z <= -3, z if z >= 3, z (z + 3) / 6 otherwise",
        "f'(z) = 0 if z < -3, 1 if z > 3, (2z + 3) / 6 otherwise", "[-0.375, inf)",
        lambda z, a, b: z * np.clip(z + 3.0, 0.0, 6.0) / 6.0,
        lambda z, a, b: np.where(z < -3, 0.0, np.where(z > 3, 1.0, (2.0 * z + 3.0) / 6.0)),
        kinks=(-3.0, 3.0), aliases=("hardswish",))
_define("hard_sigmoid", HARD_SIGMOID, "f(z) = 0 if z <= -3, 1 if z > 3, z/6 + 1/2 otherwise",
        "f'(z) = 1/6 if -3 < z < 3 else 0", "[0, 1]",
        lambda z, a, b: np.clip(z / 6.0 + 0.5, 0.0, 1.0),
        lambda z, a, b: np.where((z > -3) & (z < 3), 1.0 / 6.0, 0.0),
        kinks=(-3.0, 3.0), aliases=("hardsigmoid",))


def _hard_tanh_check(p):
    if not p["min_val"] < p["max_val"]:
        raise ValueError(f"hard_tanh: need min_val < max_val, got {p['min_val']!r} and "
                         f"{p['max_val']!r}")


_define("hard_tanh", HARD_TANH, "f(z) = min_val if z < min_val, max_val if z > max_val, "
        "z otherwise", "f'(z) = 1 if min_val < z < max_val else 0", "[min_val, max_val]",
        lambda z, lo, hi: np.clip(z, lo, hi),
        lambda z, lo, hi: np.where((z > lo) & (z < hi), 1.0, 0.0),
        params=(("min_val", -1.0), ("max_val", 1.0)), kinks=(-1.0, 1.0), check=_hard_tanh_check,
        aliases=("hardtanh",))
_define("tanh_shrink", TANH_SHRINK, "f(z) = z - tanh(z)", "f'(z) = tanh(z)^2", "(-inf, inf)",
        lambda z, a, b: z - np.tanh(z), lambda z, a, b: np.tanh(z) ** 2,
        aliases=("tanhshrink",))
_define("soft_shrink", SOFT_SHRINK, "f(z) = z - lambd if z > lambd, z + lambd if z < -lambd, "
        "0 otherwise", "f'(z) = 1 if |z| > lambd else 0", "(-inf, inf)",
        lambda z, lam, b: np.where(z > lam, z - lam, np.where(z < -lam, z + lam, 0.0)),
        lambda z, lam, b: np.where(np.abs(z) > lam, 1.0, 0.0),
        params=(("lambd", 0.5),), kinks=(-0.5, 0.5), check=_nonnegative("soft_shrink"),
        aliases=("softshrink",))
_define("hard_shrink", HARD_SHRINK, "f(z) = z if |z| > lambd else 0",
        "f'(z) = 1 if |z| > lambd else 0", "(-inf, inf)",
        lambda z, lam, b: np.where(np.abs(z) > lam, z, 0.0),
        lambda z, lam, b: np.where(np.abs(z) > lam, 1.0, 0.0),
        params=(("lambd", 0.5),), kinks=(-0.5, 0.5), check=_nonnegative("hard_shrink"),
        aliases=("hardshrink",))


def _softmax_rows(z, a=0, b=0):
    m = np.max(z, axis=-1, keepdims=True)
    e = np.exp(z - m)
    return e / np.sum(e, axis=-1, keepdims=True)


_define("softmax", SOFTMAX, "f(z)_i = exp(z_i - max z) / sum_j exp(z_j - max z)",
        "df_i/dz_j = f_i (delta_ij - f_j); .derivative gives the diagonal f_i (1 - f_i)",
        "(0, 1), rows sum to 1", _softmax_rows,
        lambda z, a, b: _softmax_rows(z) * (1.0 - _softmax_rows(z)), rowwise=True)


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
        from ._validation import as_float_array

        z = as_float_array(z, "z")
        if self.rowwise and z.ndim == 0:
            raise ShapeError("softmax needs at least a 1-D array, got a scalar")
        return z

    def _run(self, kernel, z, *extra):
        from . import backends

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
        from . import backends

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
        raise TypeError(f"activation name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ValueError(f"unknown activation {name!r}; valid names: {', '.join(names())}")
    return _REGISTRY[key]


def get(name, **params):
    """Return the activation ``name`` with its parameters bound.

    ``name`` may be an alias (``"logistic"``, ``"identity"``) or an :class:`Activation` (returned
    as is; then ``params`` must be empty). Unknown names and unknown parameters raise
    ``ValueError`` listing what is valid. ``None`` means linear.
    """
    if isinstance(name, Activation):
        if params:
            raise ValueError("parameters cannot be given together with an Activation object")
        return name
    if name is None:
        name = "linear"
    d = definition(name)
    allowed = dict(d.params)
    unknown = set(params) - set(allowed)
    if unknown:
        valid = ", ".join(allowed) if allowed else "none"
        raise ValueError(f"activation {d.name!r} got unknown parameter(s) "
                         f"{', '.join(sorted(unknown))}; valid parameters: {valid}")
    bound = {**allowed, **params}
    for key, value in bound.items():
        if key == "approximate":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise TypeError(f"activation {d.name!r}: parameter {key} must be a number, got "
                            f"{value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"activation {d.name!r}: parameter {key} must be finite, got "
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


def numpy_forward(code, z, p0=0.0, p1=0.0):
    """The reference forward for kernel ``code`` (used by the NumPy backend)."""
    return BY_CODE[code].forward(z, p0, p1)


def numpy_derivative(code, z, p0=0.0, p1=0.0):
    """The reference derivative for kernel ``code`` (used by the NumPy backend)."""
    return BY_CODE[code].derivative(z, p0, p1)
