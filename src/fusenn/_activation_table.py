"""The activation table: every activation defined once, for every backend.

Each entry (:class:`ActivationDef`) holds what the course notes say of an activation - its
formula and derivative as text, its range and parameters - together with

* its **NumPy reference** (``forward``/``derivative``, vectorised): the oracle that every
  compiled backend is tested against, written so that it neither overflows nor warns for
  ``|z|`` up to ``1e4``;
* its **kernel** (:class:`Kernel`): one scalar expression for ``f(z)`` and one for ``f'(z)``,
  in the small subset of Python that Cython and Numba both compile (arithmetic, comparisons,
  ``x if c else y``, ``name = expr;`` bindings, the functions of :data:`FUNCTIONS` and the
  helpers of :data:`HELPERS`, the constants of :data:`CONSTANTS`). The parameters are used by
  name. At build time ``setup.py`` generates the Cython ``.pxi`` and the Numba module from
  these expressions (:mod:`fusenn.backends._codegen`);
* the facts other parts need: the usual initialiser, whether it is ReLU-like (units that can
  die), the relative cost of an element (for the thread decision), and from how many elements
  NumPy's own SIMD loops beat the compiled loops (for ``auto``).

To add an activation: a new code at the top (append, never renumber) and one :func:`_define`
call below, with its reference and its kernel, then rebuild (``pip install .``). The
test-suite compares the new kernels with the reference on every backend.

This module imports only the standard library and NumPy, because ``setup.py`` loads it by path
at build time.

Several names share a kernel: ``prelu`` (fixed slope) and ``rrelu`` (its evaluation form, the
mean slope ``(lower + upper) / 2``) are ``leaky_relu`` with another slope; ``silu`` is
``swish`` with ``beta = 1``; ``gelu(approximate="tanh")`` has its own code.

Derivatives at kinks follow PyTorch: ``relu'(0) = 0``, ``leaky_relu'(0) = alpha``; step-like
functions (step, heaviside, sign) have derivative 0 everywhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple

import numpy as np

if TYPE_CHECKING:  # annotations only: setup.py loads this file on its own
    from ._typing import Array

try:
    from .errors import ArgumentError
except ImportError:  # loaded on its own by the code generator at build time (setup.py)
    ArgumentError = ValueError  # type: ignore[misc, assignment]

# --------------------------------------------------------------------------- scalar language
# Each kernel's code: the number the compiled backends switch on. Never renumber; append.
LINEAR, STEP, HEAVISIDE, SIGN, PIECEWISE_LINEAR, SIGMOID, TANH, RELU, LEAKY_RELU = range(9)
ELU, SELU, GELU, GELU_TANH, SWISH, MISH, SOFTPLUS, SOFTSIGN, LOG_SIGMOID = range(10, 19)
SINC, HARD_SWISH, HARD_SIGMOID, HARD_TANH, TANH_SHRINK, SOFT_SHRINK, HARD_SHRINK = range(19, 26)
SOFTMAX = 26

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
GELU_TANH_K = math.sqrt(2.0 / math.pi)
GELU_TANH_C = 0.044715
INV_SQRT2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
SINC_SERIES_BELOW = 1e-2  # |z| below this: sinc'(z) by its Taylor series
#: The constants the kernel expressions may name (typed constants in each backend).
CONSTANTS = {name: globals()[name] for name in (
    "SELU_ALPHA", "SELU_SCALE", "GELU_TANH_K", "GELU_TANH_C", "INV_SQRT2", "INV_SQRT_2PI",
    "SINC_SERIES_BELOW")}

#: Elementary functions the kernel expressions may call: each backend maps them to its own
#: (Cython: a float and a double C function; Numba: ``math``).
FUNCTIONS = ("exp", "expm1", "log1p", "tanh", "erf", "sin", "cos", "sqrt", "abs")

#: Helpers written once as expressions, callable from the kernels: name -> (args, body).
HELPERS = {
    # 1 / (1 + exp(-z)) without overflow: exp only ever sees -|z|; a select, not a branch
    "sigmoid": (("z",), "e = exp(-abs(z)); (1 if z >= 0 else e) / (1 + e)"),
    # log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))
    "softplus": (("z",), "(z if z > 0 else 0) + log1p(exp(-abs(z)))"),
    "clip": (("z", "lo", "hi"), "lo if z < lo else (hi if z > hi else z)"),
}


@dataclass(frozen=True)
class Kernel:
    """The compiled form of an activation: scalar expressions of ``z`` and the parameters.

    ``backward`` (optional) is ``dy * f'(z)`` written with ``dy``, ``z`` and the output
    ``a = f(z)``, where that is cheaper than the derivative (tanh: ``1 - a^2``) or vectorises
    better (relu: a select on ``dy``). ``cost`` is an element's cost relative to an add.
    """

    forward: str
    derivative: str
    backward: Optional[str] = None
    cost: int = 1


# --------------------------------------------------------------------------- NumPy pieces
def _sigmoid(z: Array) -> Array:
    """1 / (1 + exp(-z)) without overflow: exp only ever sees -|z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(z: Array) -> Array:
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def _erf(z: Array) -> Array:
    from scipy.special import erf  # imported on first use: keeps `import fusenn` fast

    out: Array = erf(z)
    return out


# --------------------------------------------------------------------------- definitions
@dataclass(frozen=True)
class ActivationDef:
    """One activation function: the single place where it is defined."""

    name: str
    code: int
    formula: str
    derivative_formula: str
    range: str
    forward: Callable[..., Any]  # (z, p0, p1) -> array, NumPy reference
    derivative: Callable[..., Any]  # (z, p0, p1) -> array, NumPy reference
    kernel: Optional[Kernel] = None  # None: runs another entry's kernel (same code)
    params: Tuple[Tuple[str, Any], ...] = ()  # ((name, default), ...) in the order they map to p0, p1
    aliases: Tuple[str, ...] = ()
    kinks: Tuple[float, ...] = ()  # points (in units of the parameters, see kink_points) where f' jumps
    rowwise: bool = False  # softmax: a function of the whole row, not elementwise
    resolve: Optional[Callable[[Dict[str, Any]], Tuple[int, float, float]]] = None  # params dict -> (code, p0, p1) when not the plain mapping
    check: Optional[Callable[[Dict[str, Any]], None]] = None  # params dict -> None, raises ValueError on a bad value
    init: str = "glorot_uniform"  # the usual initialiser of a layer it follows
    relu_like: bool = False  # units can die (output 0 with derivative 0 for z < 0)
    numpy_from: float = math.inf  # elements from which NumPy's ufuncs beat compiled loops
    doc: str = ""

    def kernel_args(self, params: Dict[str, Any]) -> Tuple[int, float, float]:
        """``(code, p0, p1)`` for the compiled kernels from this definition's parameters."""
        if self.resolve is not None:
            return self.resolve(params)
        values = [float(params[name]) for name, _ in self.params] + [0.0, 0.0]
        return self.code, values[0], values[1]


#: name -> definition; alias -> name; code -> the definition whose kernel runs that code.
REGISTRY: Dict[str, ActivationDef] = {}
ALIASES: Dict[str, str] = {}
BY_CODE: Dict[int, ActivationDef] = {}


def _define(name: str, code: int, formula: str, derivative_formula: str, range_: str,
            forward: Callable[..., Any], derivative: Callable[..., Any],
            **kw: Any) -> ActivationDef:
    d = ActivationDef(name, code, formula, derivative_formula, range_, forward, derivative, **kw)
    if not name.startswith("_"):
        REGISTRY[name] = d
    for a in d.aliases:
        ALIASES[a] = name
    if d.kernel is not None or d.rowwise:
        assert code not in BY_CODE, f"code {code} defined twice"
        BY_CODE[code] = d
    return d


def _zeros(z: Array, p0: float, p1: float) -> Array:
    return np.zeros_like(z)


def _positive(name: str) -> Callable[[Dict[str, Any]], None]:
    def check(p: Dict[str, Any]) -> None:
        for key in p:
            if not p[key] > 0:
                raise ArgumentError(f"{name}: parameter {key} must be > 0, got {p[key]!r}")
    return check


def _nonnegative(name: str) -> Callable[[Dict[str, Any]], None]:
    def check(p: Dict[str, Any]) -> None:
        for key in p:
            if not p[key] >= 0:
                raise ArgumentError(f"{name}: parameter {key} must be >= 0, got {p[key]!r}")
    return check


def _linear(z: Array, a: float, b: float) -> Array:
    return z


def _ones(z: Array, a: float, b: float) -> Array:
    return np.ones_like(z)


_define("linear", LINEAR, "f(z) = z", "f'(z) = 1", "(-inf, inf)", _linear, _ones,
        kernel=Kernel("z", "1", backward="dy"), aliases=("identity", "none"))


def _step(z: Array, a: float, b: float) -> Array:
    return np.where(z >= 0, 1.0, 0.0)


_define("step", STEP, "f(z) = 1 if z >= 0 else 0", "f'(z) = 0", "{0, 1}", _step, _zeros,
        kernel=Kernel("1 if z >= 0 else 0", "0"), aliases=("binary_step",))


def _heaviside(z: Array, a: float, b: float) -> Array:
    return np.where(z > 0, 1.0, np.where(z == 0, 0.5, 0.0))


_define("heaviside", HEAVISIDE, "f(z) = 0 if z < 0, 0.5 if z = 0, 1 if z > 0", "f'(z) = 0",
        "{0, 0.5, 1}", _heaviside, _zeros,
        kernel=Kernel("1 if z > 0 else (0.5 if z == 0 else 0)", "0"))


def _sign(z: Array, a: float, b: float) -> Array:
    return np.sign(z)


_define("sign", SIGN, "f(z) = -1 if z < 0, 0 if z = 0, 1 if z > 0", "f'(z) = 0", "{-1, 0, 1}",
        _sign, _zeros, kernel=Kernel("1 if z > 0 else (-1 if z < 0 else 0)", "0"),
        aliases=("signum",))


def _piecewise_linear(z: Array, a: float, b: float) -> Array:
    return np.clip(z + 0.5, 0.0, 1.0)


def _piecewise_linear_d(z: Array, a: float, b: float) -> Array:
    return np.where((z > -0.5) & (z < 0.5), 1.0, 0.0)


_define("piecewise_linear", PIECEWISE_LINEAR,
        "f(z) = 0 if z <= -1/2, z + 1/2 if -1/2 < z < 1/2, 1 if z >= 1/2",
        "f'(z) = 1 if -1/2 < z < 1/2 else 0", "[0, 1]", _piecewise_linear, _piecewise_linear_d,
        kernel=Kernel("clip(z + 0.5, 0, 1)", "1 if z > -0.5 and z < 0.5 else 0"),
        kinks=(-0.5, 0.5))


def _sigmoid_f(z: Array, a: float, b: float) -> Array:
    return _sigmoid(z)


def _sigmoid_d(z: Array, a: float, b: float) -> Array:
    return _sigmoid(z) * _sigmoid(-z)


_define("sigmoid", SIGMOID, "f(z) = 1 / (1 + exp(-z))", "f'(z) = f(z) (1 - f(z))", "(0, 1)",
        _sigmoid_f, _sigmoid_d,
        # the derivative as sigmoid(z) sigmoid(-z), both from one exp(-|z|)
        kernel=Kernel("sigmoid(z)", "e = exp(-abs(z)); s = (1 if z >= 0 else e) / (1 + e); "
                      "t = (1 if z <= 0 else e) / (1 + e); s * t",
                      backward="dy * (a * (1 - a))", cost=8),
        aliases=("logistic",))


def _tanh(z: Array, a: float, b: float) -> Array:
    return np.tanh(z)


def _tanh_d(z: Array, a: float, b: float) -> Array:
    return 1.0 - np.tanh(z) ** 2


_define("tanh", TANH, "f(z) = (exp(z) - exp(-z)) / (exp(z) + exp(-z))", "f'(z) = 1 - f(z)^2",
        "(-1, 1)", _tanh, _tanh_d,
        kernel=Kernel("tanh(z)", "t = tanh(z); 1 - t * t", backward="dy * (1 - a * a)",
                      cost=8),
        numpy_from=512)


def _relu(z: Array, a: float, b: float) -> Array:
    return np.maximum(z, 0)


def _relu_d(z: Array, a: float, b: float) -> Array:
    return np.where(z > 0, 1.0, 0.0)


_define("relu", RELU, "f(z) = max(0, z)", "f'(z) = 1 if z > 0 else 0", "[0, inf)", _relu, _relu_d,
        # dy loaded unconditionally: a select, so the loop vectorises
        kernel=Kernel("z if z > 0 else 0", "1 if z > 0 else 0", backward="dy if z > 0 else 0"),
        kinks=(0.0,), init="he_uniform", relu_like=True)


def _leaky(z: Array, alpha: float, b: float) -> Array:
    return np.where(z > 0, z, alpha * z)


def _leaky_d(z: Array, alpha: float, b: float) -> Array:
    return np.where(z > 0, 1.0, alpha)


_define("leaky_relu", LEAKY_RELU, "f(z) = z if z > 0 else alpha z",
        "f'(z) = 1 if z > 0 else alpha",
        "(-inf, inf)", _leaky, _leaky_d,
        kernel=Kernel("z if z > 0 else alpha * z", "1 if z > 0 else alpha"),
        params=(("alpha", 0.01),), kinks=(0.0,), init="he_uniform")
_define("prelu", LEAKY_RELU,
        "f(z) = z if z > 0 else alpha z (alpha learnt per unit in the PReLU layer)",
        "f'(z) = 1 if z > 0 else alpha", "(-inf, inf)", _leaky, _leaky_d,
        params=(("alpha", 0.25),), kinks=(0.0,), init="he_uniform")


def _rrelu_check(p: Dict[str, Any]) -> None:
    if not 0 <= p["lower"] <= p["upper"]:
        raise ArgumentError(f"rrelu: need 0 <= lower <= upper, got lower={p['lower']!r}, "
                         f"upper={p['upper']!r}")


def _rrelu(z: Array, lo: float, up: float) -> Array:
    return _leaky(z, 0.5 * (lo + up), 0)


def _rrelu_d(z: Array, lo: float, up: float) -> Array:
    return _leaky_d(z, 0.5 * (lo + up), 0)


def _rrelu_resolve(p: Dict[str, Any]) -> Tuple[int, float, float]:
    return LEAKY_RELU, 0.5 * (float(p["lower"]) + float(p["upper"])), 0.0


_define("rrelu", LEAKY_RELU, "f(z) = z if z >= 0 else a z, a ~ U(lower, upper) in training, "
        "a = (lower + upper) / 2 in evaluation", "f'(z) = 1 if z > 0 else a", "(-inf, inf)",
        _rrelu, _rrelu_d, params=(("lower", 1.0 / 8.0), ("upper", 1.0 / 3.0)), kinks=(0.0,),
        check=_rrelu_check, resolve=_rrelu_resolve, init="he_uniform",
        doc="As a plain function this is the evaluation form; the RReLU layer draws slopes.")


def _elu(z: Array, alpha: float, b: float) -> Array:
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))


def _elu_d(z: Array, alpha: float, b: float) -> Array:
    return np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0)))


_define("elu", ELU, "f(z) = z if z > 0 else alpha (exp(z) - 1)",
        "f'(z) = 1 if z > 0 else alpha exp(z)", "(-alpha, inf)", _elu, _elu_d,
        kernel=Kernel("z if z > 0 else alpha * expm1(z)", "1 if z > 0 else alpha * exp(z)",
                      cost=8),
        params=(("alpha", 1.0),), kinks=(0.0,), check=_positive("elu"), init="he_uniform")


def _selu(z: Array, a: float, b: float) -> Array:
    return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0)))


def _selu_d(z: Array, a: float, b: float) -> Array:
    return SELU_SCALE * np.where(z > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(z, 0)))


_define("selu", SELU, "f(z) = scale (z if z > 0 else alpha (exp(z) - 1)), "
        "alpha = 1.6733, scale = 1.0507", "f'(z) = scale (1 if z > 0 else alpha exp(z))",
        "(-scale alpha, inf)", _selu, _selu_d,
        kernel=Kernel("SELU_SCALE * (z if z > 0 else SELU_ALPHA * expm1(z))",
                      "SELU_SCALE * (1 if z > 0 else SELU_ALPHA * exp(z))", cost=8),
        kinks=(0.0,), init="lecun_normal")


def _gelu_resolve(p: Dict[str, Any]) -> Tuple[int, float, float]:
    mode = p["approximate"]
    if mode not in ("none", "tanh"):
        raise ArgumentError(f"gelu: approximate must be 'none' or 'tanh', got {mode!r}")
    return (GELU if mode == "none" else GELU_TANH), 0.0, 0.0


def _gelu(z: Array, a: float, b: float) -> Array:
    return 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0)))


def _gelu_d(z: Array, a: float, b: float) -> Array:
    return (0.5 * (1.0 + _erf(z / math.sqrt(2.0)))
            + z * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi))


_define("gelu", GELU, "f(z) = z Phi(z) (exact, approximate='none'); "
        "z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) (approximate='tanh')",
        "f'(z) = Phi(z) + z phi(z)", "(-0.17, inf)", _gelu, _gelu_d,
        kernel=Kernel("0.5 * z * (1 + erf(z * INV_SQRT2))",
                      "0.5 * (1 + erf(z * INV_SQRT2)) + z * exp(-0.5 * z * z) * INV_SQRT_2PI",
                      cost=8),
        params=(("approximate", "none"),), resolve=_gelu_resolve, init="he_uniform")


def _gelu_tanh_t(z: Array) -> Array:
    # z^3 overflows to +-inf from |z| > about 7e12 in float32 (5.6e102 in float64), where
    # tanh has long saturated: tanh(+-inf) = +-1 is the exact value, so the overflow is no
    # error to report.
    with np.errstate(over="ignore"):
        return np.tanh(GELU_TANH_K * (z + GELU_TANH_C * z ** 3))


def _gelu_tanh(z: Array, a: float, b: float) -> Array:
    return 0.5 * z * (1.0 + _gelu_tanh_t(z))


def _gelu_tanh_d(z: Array, a: float, b: float) -> Array:
    # Where tanh has saturated (|z| > about 10) the second term is exactly 0; computing it
    # would multiply 0 by an overflowing z^2 (NaN in float32 from |z| > 5e19).
    t = _gelu_tanh_t(z)
    with np.errstate(over="ignore", invalid="ignore"):
        slope = 0.5 * z * (1.0 - t * t) * GELU_TANH_K * (1.0 + 3.0 * GELU_TANH_C * z * z)
    out: Array = 0.5 * (1.0 + t) + np.where(t * t < 1.0, slope, 0.0).astype(np.result_type(z))
    return out


# Reachable by code (gelu with approximate="tanh"); not a name of its own.
_define("_gelu_tanh", GELU_TANH, "z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))",
        "1/2 (1 + t) + z/2 (1 - t^2) sqrt(2/pi) (1 + 3 0.044715 z^2)", "(-0.17, inf)",
        _gelu_tanh, _gelu_tanh_d,
        kernel=Kernel("t = tanh(GELU_TANH_K * (z + GELU_TANH_C * (z * z * z))); "
                      "0.5 * z * (1 + t)",
                      "t = tanh(GELU_TANH_K * (z + GELU_TANH_C * (z * z * z))); "
                      "0.5 * (1 + t) + (0.5 * z * (1 - t * t) * GELU_TANH_K "
                      "* (1 + 3 * GELU_TANH_C * z * z) if t * t < 1 else 0)", cost=8),
        init="he_uniform")


def _swish(z: Array, beta: float, b: float) -> Array:
    return z * _sigmoid(beta * z)


def _swish_d(z: Array, beta: float, b: float) -> Array:
    return _sigmoid(beta * z) * (1.0 + beta * z * _sigmoid(-beta * z))


_define("swish", SWISH, "f(z) = z sigmoid(beta z)",
        "f'(z) = s + beta z s (1 - s), s = sigmoid(beta z)", "(-0.28/beta, inf)", _swish, _swish_d,
        kernel=Kernel("z * sigmoid(beta * z)",
                      "bz = beta * z; sigmoid(bz) * (1 + bz * sigmoid(-bz))", cost=8),
        params=(("beta", 1.0),), init="he_uniform")


def _silu(z: Array, beta: float, b: float) -> Array:
    return _swish(z, 1.0, b)


def _silu_d(z: Array, beta: float, b: float) -> Array:
    return _swish_d(z, 1.0, b)


def _silu_resolve(p: Dict[str, Any]) -> Tuple[int, float, float]:
    return SWISH, 1.0, 0.0


_define("silu", SWISH, "f(z) = z sigmoid(z)", "f'(z) = s (1 + z (1 - s)), s = sigmoid(z)",
        "(-0.28, inf)", _silu, _silu_d, resolve=_silu_resolve, init="he_uniform")


def _mish(z: Array, a: float, b: float) -> Array:
    return z * np.tanh(_softplus(z))


def _mish_d(z: Array, a: float, b: float) -> Array:
    t = np.tanh(_softplus(z))
    return t + z * _sigmoid(z) * (1.0 - t * t)


_define("mish", MISH, "f(z) = z tanh(softplus(z))",
        "f'(z) = t + z sigmoid(z) (1 - t^2), t = tanh(softplus(z))", "(-0.31, inf)", _mish,
        _mish_d,
        kernel=Kernel("z * tanh(softplus(z))",
                      "t = tanh(softplus(z)); t + z * sigmoid(z) * (1 - t * t)", cost=8),
        init="he_uniform")


def _softplus_f(z: Array, beta: float, b: float) -> Array:
    return _softplus(beta * z) / beta


def _softplus_d(z: Array, beta: float, b: float) -> Array:
    return _sigmoid(beta * z)


_define("softplus", SOFTPLUS, "f(z) = log(1 + exp(beta z)) / beta", "f'(z) = sigmoid(beta z)",
        "(0, inf)", _softplus_f, _softplus_d,
        kernel=Kernel("softplus(beta * z) / beta", "sigmoid(beta * z)", cost=8),
        params=(("beta", 1.0),), check=_positive("softplus"), numpy_from=256)


def _softsign(z: Array, a: float, b: float) -> Array:
    return z / (1.0 + np.abs(z))


def _softsign_d(z: Array, a: float, b: float) -> Array:
    return 1.0 / (1.0 + np.abs(z)) ** 2


_define("softsign", SOFTSIGN, "f(z) = z / (1 + |z|)", "f'(z) = 1 / (1 + |z|)^2", "(-1, 1)",
        _softsign,
        _softsign_d, kernel=Kernel("z / (1 + abs(z))", "q = 1 + abs(z); 1 / (q * q)", cost=8))


def _log_sigmoid(z: Array, a: float, b: float) -> Array:
    return -_softplus(-z)


def _log_sigmoid_d(z: Array, a: float, b: float) -> Array:
    return _sigmoid(-z)


_define("log_sigmoid", LOG_SIGMOID, "f(z) = log(sigmoid(z)) = -softplus(-z)",
        "f'(z) = 1 - sigmoid(z) = sigmoid(-z)", "(-inf, 0)", _log_sigmoid, _log_sigmoid_d,
        kernel=Kernel("-softplus(-z)", "sigmoid(-z)", cost=8), aliases=("logsigmoid",))


def _sinc(z: Array, a: float, b: float) -> Array:
    out: Array = np.sin(z) / np.where(z == 0, 1.0, z) * (z != 0) + (z == 0)
    return out


def _sinc_d(z: Array, a: float, b: float) -> Array:
    small = np.abs(z) < SINC_SERIES_BELOW
    zs = np.where(small, 1.0, z)
    big = (np.cos(zs) - np.sin(zs) / zs) / zs
    series = -z / 3.0 + z ** 3 / 30.0
    return np.where(small, series, big)


_define("sinc", SINC, "f(z) = sin(z) / z, f(0) = 1", "f'(z) = (cos z - sin(z)/z) / z, f'(0) = 0",
        "[-0.217, 1]", _sinc, _sinc_d,
        # the Taylor series near 0: no cancellation
        kernel=Kernel("1 if z == 0 else sin(z) / z",
                      "-z / 3 + z * z * z / 30 if abs(z) < SINC_SERIES_BELOW "
                      "else (cos(z) - sin(z) / z) / z", cost=8))


def _hard_swish(z: Array, a: float, b: float) -> Array:
    return z * np.clip(z + 3.0, 0.0, 6.0) / 6.0


def _hard_swish_d(z: Array, a: float, b: float) -> Array:
    return np.where(z < -3, 0.0, np.where(z > 3, 1.0, (2.0 * z + 3.0) / 6.0))


_define("hard_swish", HARD_SWISH, "f(z) = 0 if z <= -3, z if z >= 3, z (z + 3) / 6 otherwise",
        "f'(z) = 0 if z < -3, 1 if z > 3, (2z + 3) / 6 otherwise", "[-0.375, inf)", _hard_swish,
        _hard_swish_d,
        kernel=Kernel("z * clip(z + 3, 0, 6) / 6",
                      "0 if z < -3 else (1 if z > 3 else (2 * z + 3) / 6)"),
        kinks=(-3.0, 3.0), aliases=("hardswish",), init="he_uniform", relu_like=True)


def _hard_sigmoid(z: Array, a: float, b: float) -> Array:
    return np.clip(z / 6.0 + 0.5, 0.0, 1.0)


def _hard_sigmoid_d(z: Array, a: float, b: float) -> Array:
    return np.where((z > -3) & (z < 3), 1.0 / 6.0, 0.0)


_define("hard_sigmoid", HARD_SIGMOID, "f(z) = 0 if z <= -3, 1 if z > 3, z/6 + 1/2 otherwise",
        "f'(z) = 1/6 if -3 < z < 3 else 0", "[0, 1]", _hard_sigmoid, _hard_sigmoid_d,
        kernel=Kernel("clip(z / 6 + 0.5, 0, 1)", "1 / 6 if z > -3 and z < 3 else 0"),
        kinks=(-3.0, 3.0), aliases=("hardsigmoid",))


def _hard_tanh_check(p: Dict[str, Any]) -> None:
    if not p["min_val"] < p["max_val"]:
        raise ArgumentError(f"hard_tanh: need min_val < max_val, got {p['min_val']!r} and "
                         f"{p['max_val']!r}")


def _hard_tanh(z: Array, lo: float, hi: float) -> Array:
    return np.clip(z, lo, hi)


def _hard_tanh_d(z: Array, lo: float, hi: float) -> Array:
    return np.where((z > lo) & (z < hi), 1.0, 0.0)


_define("hard_tanh", HARD_TANH,
        "f(z) = min_val if z < min_val, max_val if z > max_val, z otherwise",
        "f'(z) = 1 if min_val < z < max_val else 0", "[min_val, max_val]", _hard_tanh,
        _hard_tanh_d,
        kernel=Kernel("clip(z, min_val, max_val)", "1 if z > min_val and z < max_val else 0"),
        params=(("min_val", -1.0), ("max_val", 1.0)), kinks=(-1.0, 1.0), check=_hard_tanh_check,
        aliases=("hardtanh",), relu_like=True)


def _tanh_shrink(z: Array, a: float, b: float) -> Array:
    return z - np.tanh(z)


def _tanh_shrink_d(z: Array, a: float, b: float) -> Array:
    return np.tanh(z) ** 2


_define("tanh_shrink", TANH_SHRINK, "f(z) = z - tanh(z)", "f'(z) = tanh(z)^2", "(-inf, inf)",
        _tanh_shrink, _tanh_shrink_d,
        kernel=Kernel("z - tanh(z)", "t = tanh(z); t * t", cost=8), aliases=("tanhshrink",))


def _soft_shrink(z: Array, lam: float, b: float) -> Array:
    return np.where(z > lam, z - lam, np.where(z < -lam, z + lam, 0.0))


def _shrink_d(z: Array, lam: float, b: float) -> Array:
    return np.where(np.abs(z) > lam, 1.0, 0.0)


_define("soft_shrink", SOFT_SHRINK, "f(z) = z - lambd if z > lambd, z + lambd if z < -lambd, "
        "0 otherwise", "f'(z) = 1 if |z| > lambd else 0", "(-inf, inf)", _soft_shrink, _shrink_d,
        kernel=Kernel("z - lambd if z > lambd else (z + lambd if z < -lambd else 0)",
                      "1 if abs(z) > lambd else 0"),
        params=(("lambd", 0.5),), kinks=(-0.5, 0.5), check=_nonnegative("soft_shrink"),
        aliases=("softshrink",))


def _hard_shrink(z: Array, lam: float, b: float) -> Array:
    return np.where(np.abs(z) > lam, z, 0.0)


_define("hard_shrink", HARD_SHRINK, "f(z) = z if |z| > lambd else 0",
        "f'(z) = 1 if |z| > lambd else 0",
        "(-inf, inf)", _hard_shrink, _shrink_d,
        kernel=Kernel("z if abs(z) > lambd else 0", "1 if abs(z) > lambd else 0"),
        params=(("lambd", 0.5),), kinks=(-0.5, 0.5), check=_nonnegative("hard_shrink"),
        aliases=("hardshrink",))


def _softmax_rows(z: Array, a: float = 0, b: float = 0) -> Array:
    m = np.max(z, axis=-1, keepdims=True)
    e = np.exp(z - m)
    out: Array = e / np.sum(e, axis=-1, keepdims=True)
    return out


def _softmax_d(z: Array, a: float, b: float) -> Array:
    s = _softmax_rows(z)
    return s * (1.0 - s)


# Row-wise: the backends' softmax kernels implement it (not a scalar expression).
_define("softmax", SOFTMAX, "f(z)_i = exp(z_i - max z) / sum_j exp(z_j - max z)",
        "df_i/dz_j = f_i (delta_ij - f_j); .derivative gives the diagonal f_i (1 - f_i)",
        "(0, 1), rows sum to 1", _softmax_rows, _softmax_d, rowwise=True)

# --------------------------------------------------------------------------- codes
#: The codes a per-element dispatcher (Numba's ``_act``) tests first: the common ones.
DISPATCH_FIRST = (RELU, TANH, SIGMOID, LINEAR)

#: ``{"LINEAR": 0, "RELU": 7, ...}``: each kernel's code under its name in capitals.
CODES = {d.name.lstrip("_").upper(): code for code, d in sorted(BY_CODE.items())}
assert all(globals()[name] == code for name, code in CODES.items())
