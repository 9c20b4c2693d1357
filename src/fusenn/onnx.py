"""ONNX export: a trained fusenn model as a standard ONNX graph, for any ONNX runtime.

A model that is served from ONNX Runtime, a browser or a C++ program does not need Python or
fusenn there. :func:`export` writes, and :func:`to_onnx` returns, one ONNX graph that
computes what the model predicts:

* each :class:`~fusenn.layers.Dense` is one ``Gemm`` (``x @ W + b``), followed by its
  activation written with ONNX operators;
* every activation of the catalogue (:func:`fusenn.activations.names`) is written with the
  formula of fusenn's NumPy reference and its parameters (leaky slope, ELU alpha, the SELU
  constants, exact or tanh GELU, the shrink thresholds, ...), built from elementary operators
  in the model's dtype rather than from ONNX's own activation operators, whose parameters are
  float32 attributes and whose kernels ONNX Runtime does not provide in float64. Where the
  reference calls ``expm1`` or ``log1p``, which ONNX lacks, the graph uses Kahan's
  cancellation-free forms (``x (u - 1) / log u`` with ``u = exp x``, and ``w log(u) /
  (u - 1)`` with ``u = 1 + w``), so that ELU, SELU, softplus, mish and log-sigmoid keep their
  relative accuracy near 0;
* ``Dropout`` disappears (evaluation mode); ``BatchNorm`` is folded into the ``Gemm`` before
  it when that Dense has no activation, and is a ``BatchNormalization`` node otherwise
  (evaluation form, ``(x - running_mean) / sqrt(running_var + eps) * gamma + beta``); ``PReLU``,
  ``Swish``, ``RReLU`` (its mean slope), ``DenseNoBias`` (``MatMul``) and ``Maxout``
  (``Gemm``, ``Reshape``, ``ReduceMax``) have their evaluation forms;
* the output is what the model predicts: for a classifier the probabilities of
  ``model.predict_proba`` (a softmax or sigmoid applied to logits where ``predict_proba``
  applies it; one binary column becomes the two columns ``[1 - p, p]``), for a regressor the
  values of ``model.predict``. ``output="raw"`` exports ``model.forward`` instead.

The scikit-learn face's fitted ``MLPClassifier`` (output ``probabilities``, with
``predict_proba``'s semantics: softmax, two columns for a binary problem, independent
sigmoids for multilabel) and ``MLPRegressor`` (output ``predictions``, ``exp`` for the Poisson
loss, always 2-D) export too, as does the Keras face's built ``Sequential`` (its ``predict``:
the network's outputs; a model that starts with ``Input(shape=(28, 28))`` and ``Flatten``
takes samples of that shape).

The graph has one input (``X``, shape ``(N, n_features)``, ``N`` a dynamic batch dimension)
and one output, both in the model's dtype (float32 or float64), and passes
``onnx.checker.check_model``. ONNX Runtime reproduces ``model.predict`` to about 1e-6
relative in float32 and 1e-13 in float64 (the test-suite checks 1e-5 and 1e-12).

Writing goes through fusenn's atomic save (:func:`fusenn._archive.write_atomic`): a regular
file or a new path only, never half written. The ``onnx`` package is imported when a graph is
built; without it :class:`~fusenn.errors.MissingDependencyError` says to install
``fusenn[onnx]`` (which also installs ``onnxruntime``).

>>> import numpy as np, fusenn as fn                       # doctest: +SKIP
>>> model = fn.Sequential([fn.layers.Dense(4, 8, "elu"),   # doctest: +SKIP
...                        fn.layers.Dense(8, 3, "softmax")])
>>> fn.onnx.export(model, "model.onnx")                    # doctest: +SKIP
>>> import onnxruntime as ort                              # doctest: +SKIP
>>> sess = ort.InferenceSession("model.onnx")              # doctest: +SKIP
>>> sess.run(None, {"X": np.ones((2, 4), np.float32)})[0].shape   # doctest: +SKIP
(2, 3)
"""
from __future__ import annotations

import math
import sys
from typing import (TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple,
                    Union)

import numpy as np

from . import _archive
from . import _activation_table as _table
from . import activations as _acts
from . import layers as _layers
from ._version import __version__
from .errors import (ArgumentError, ArgumentTypeError, MissingDependencyError,
                     UnsupportedFeatureError)
from ._typing import Array, ArrayLike, DTypeLike, PathLike
from .model import Sequential

if TYPE_CHECKING:  # the annotations only; onnx itself is imported when a graph is built
    import onnx as _onnx_types

__all__ = ["export", "to_onnx", "DEFAULT_OPSET", "MIN_OPSET", "supported_activations"]

#: The opset written when none is asked for: supported by every onnxruntime >= 1.14.
DEFAULT_OPSET = 17
#: The oldest opset the exporter writes (``Softmax`` along the last axis, ``Clip`` and
#: ``ReduceMax`` as they are from opset 13).
MIN_OPSET = 13
#: float64 erf (ONNX Runtime has no float64 Erf): terms of its series, and where it is +-1.
ERF_SERIES_TERMS = 100
ERF_SERIES_LIMIT = 6.0
#: ``output=`` choices: what the model predicts, or its raw forward pass.
OUTPUTS = ("auto", "raw")

#: What a node takes as an input: a value's name, or a number made a scalar constant.
_Input = Union[str, float, np.floating[Any]]


def _onnx() -> Any:
    """The ``onnx`` module, or MissingDependencyError naming the extra that installs it."""
    try:
        import onnx
        from onnx import helper, numpy_helper  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"ONNX export needs the onnx package ({exc}); install it with "
            f"pip install 'fusenn[onnx]'", name="onnx") from exc
    return onnx


# --------------------------------------------------------------------------------------------
# The graph under construction
# --------------------------------------------------------------------------------------------

class _Graph:
    """Nodes and initialisers of one graph, in one dtype; every value a unique name."""

    def __init__(self, onnx: Any, dtype: DTypeLike, opset: int) -> None:
        self.onnx = onnx
        self.dtype: np.dtype[Any] = np.dtype(dtype)
        self.opset = opset
        self.nodes: List[Any] = []  # onnx.NodeProto
        self.initializers: List[Any] = []  # onnx.TensorProto
        self._used: Set[str] = set()
        self._constants: Dict[bytes, str] = {}

    def fresh(self, hint: str) -> str:
        """A value name not used yet, from ``hint``."""
        name, i = hint, 0
        while name in self._used:
            i += 1
            name = f"{hint}_{i}"
        self._used.add(name)
        return name

    def tensor(self, value: ArrayLike, hint: str, dtype: DTypeLike = None) -> str:
        """An initialiser holding ``value`` (in the graph's dtype unless ``dtype``)."""
        arr = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(
            np.ascontiguousarray(arr), name))
        return name

    def const(self, value: Union[float, np.floating[Any]]) -> str:
        """A scalar constant of the graph's dtype, shared by every node that uses it."""
        scalar = self.dtype.type(value)
        key = scalar.tobytes()
        if key not in self._constants:
            self._constants[key] = self.tensor(scalar, f"c_{float(scalar):.6g}".replace(
                "-", "m").replace(".", "p").replace("+", ""))
        return self._constants[key]

    def op(self, op_type: str, *inputs: _Input, hint: Optional[str] = None, **attrs: Any) -> str:
        """Append node ``op_type(inputs)``; return its output's name. Numbers among
        ``inputs`` become scalar constants."""
        names = [self.const(v) if isinstance(v, (int, float, np.floating)) else v
                 for v in inputs]
        out = self.fresh(hint or op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(
            op_type, names, [out], name=self.fresh(f"{op_type}_node"), **attrs))
        return out

    # -- formulas used by several activations ------------------------------------------------
    def where(self, cond: _Input, a: _Input, b: _Input) -> str:
        return self.op("Where", cond, a, b)

    def sigmoid(self, z: str) -> str:
        """``1 / (1 + exp(-z))`` as the reference computes it: ``exp`` sees only ``-|z|``."""
        e = self.op("Exp", self.op("Neg", self.op("Abs", z)))
        num = self.where(self.op("GreaterOrEqual", z, 0.0), 1.0, e)
        return self.op("Div", num, self.op("Add", 1.0, e), hint="sigmoid")

    def log1p(self, w: str) -> str:
        """``log(1 + w)`` for ``w >= 0`` without cancellation: ``w log(u) / (u - 1)``,
        ``u = 1 + w`` (Kahan), and ``w`` itself where ``u`` rounds to 1."""
        u = self.op("Add", 1.0, w)
        d = self.op("Sub", u, 1.0)
        ratio = self.op("Div", self.op("Log", u), d)
        return self.where(self.op("Equal", d, 0.0), w, self.op("Mul", w, ratio))

    def expm1(self, x: str) -> str:
        """``exp(x) - 1`` for ``x <= 0`` without cancellation: ``x (u - 1) / log u``,
        ``u = exp x`` (Kahan) for ``x >= -1``; ``u - 1`` below, where nothing cancels."""
        u = self.op("Exp", x)
        d = self.op("Sub", u, 1.0)
        kahan = self.op("Mul", x, self.op("Div", d, self.op("Log", u)))
        near = self.where(self.op("Equal", d, 0.0), x, kahan)
        return self.where(self.op("Less", x, -1.0), d, near)

    def erf(self, x: str) -> str:
        """``erf(x)``: ONNX's Erf in float32; in float64, where ONNX Runtime has no Erf, the
        series ``2/sqrt(pi) x exp(-x^2) sum_n (2x^2)^n / (1 3 5 ... (2n+1))`` (positive
        terms, no cancellation), nested as ``1 + 2x^2/3 (1 + 2x^2/5 (1 + ...))``, on ``x``
        clipped to ``[-6, 6]``, beyond which erf is +-1 in float64: within 2e-15 of erf."""
        if self.dtype == np.float32:
            return self.op("Erf", x)
        xc = self.clip(x, -ERF_SERIES_LIMIT, ERF_SERIES_LIMIT)
        t2 = self.op("Mul", 2.0, self.op("Mul", xc, xc))
        s = self.const(1.0)
        for n in range(ERF_SERIES_TERMS - 1, 0, -1):
            s = self.op("Add", 1.0, self.op("Mul", self.op("Div", t2, 2 * n + 1.0), s))
        scale = self.op("Mul", 2.0 / math.sqrt(math.pi),
                        self.op("Exp", self.op("Neg", self.op("Mul", xc, xc))))
        return self.op("Mul", scale, self.op("Mul", xc, s), hint="erf")

    def softplus(self, z: str) -> str:
        """``max(z, 0) + log1p(exp(-|z|))``."""
        e = self.op("Exp", self.op("Neg", self.op("Abs", z)))
        return self.op("Add", self.op("Relu", z), self.log1p(e), hint="softplus")

    def clip(self, z: str, lo: float, hi: float) -> str:
        return self.op("Clip", z, self.const(lo), self.const(hi))

    def elu_negative(self, z: str, alpha: float) -> str:
        """``z if z > 0 else alpha expm1(z)`` (expm1 of ``min(z, 0)``, as the reference)."""
        neg = self.op("Mul", alpha, self.expm1(self.op("Min", z, 0.0)))
        return self.where(self.op("Greater", z, 0.0), z, neg)


# --------------------------------------------------------------------------------------------
# Activations: name -> function(graph, z, params) -> output name
# --------------------------------------------------------------------------------------------

def _leaky(g: _Graph, z: str, slope: float) -> str:
    return g.where(g.op("Greater", z, 0.0), z, g.op("Mul", slope, z))


def _softplus_beta(g: _Graph, z: str, p: Dict[str, Any]) -> str:
    beta = p["beta"]
    return g.op("Div", g.softplus(g.op("Mul", beta, z)), beta)


def _gelu(g: _Graph, z: str, p: Dict[str, Any]) -> str:
    if p["approximate"] == "tanh":
        cube = g.op("Mul", g.op("Mul", z, z), z)
        inner = g.op("Mul", _table.GELU_TANH_K, g.op("Add", z, g.op("Mul", _table.GELU_TANH_C,
                                                                      cube)))
        t = g.op("Tanh", inner)
    else:
        t = g.erf(g.op("Mul", z, _table.INV_SQRT2))
    return g.op("Mul", g.op("Mul", 0.5, z), g.op("Add", 1.0, t), hint="gelu")


def _soft_shrink(g: _Graph, z: str, p: Dict[str, Any]) -> str:
    lam = p["lambd"]
    inner = g.where(g.op("Less", z, -lam), g.op("Add", z, lam), 0.0)
    return g.where(g.op("Greater", z, lam), g.op("Sub", z, lam), inner)


#: How each activation of the catalogue is written in ONNX operators, following the NumPy
#: reference of :mod:`fusenn._activation_table` formula for formula.
#: Each entry: ``emit(graph, input name, the activation's parameters) -> output name``.
_Emit = Callable[[_Graph, str, Dict[str, Any]], str]

ACTIVATIONS: Dict[str, _Emit] = {
    "linear": lambda g, z, p: z,
    "step": lambda g, z, p: g.where(g.op("GreaterOrEqual", z, 0.0), 1.0, 0.0),
    "heaviside": lambda g, z, p: g.where(g.op("Greater", z, 0.0), 1.0,
                                         g.where(g.op("Equal", z, 0.0), 0.5, 0.0)),
    "sign": lambda g, z, p: g.op("Sign", z),
    "piecewise_linear": lambda g, z, p: g.clip(g.op("Add", z, 0.5), 0.0, 1.0),
    "sigmoid": lambda g, z, p: g.sigmoid(z),
    "tanh": lambda g, z, p: g.op("Tanh", z),
    "relu": lambda g, z, p: g.op("Relu", z),
    "leaky_relu": lambda g, z, p: _leaky(g, z, p["alpha"]),
    "prelu": lambda g, z, p: _leaky(g, z, p["alpha"]),
    "rrelu": lambda g, z, p: _leaky(g, z, 0.5 * (p["lower"] + p["upper"])),
    "elu": lambda g, z, p: g.elu_negative(z, p["alpha"]),
    "selu": lambda g, z, p: g.op("Mul", _table.SELU_SCALE,
                                 g.elu_negative(z, _table.SELU_ALPHA)),
    "gelu": _gelu,
    "swish": lambda g, z, p: g.op("Mul", z, g.sigmoid(g.op("Mul", p["beta"], z))),
    "silu": lambda g, z, p: g.op("Mul", z, g.sigmoid(z)),
    "mish": lambda g, z, p: g.op("Mul", z, g.op("Tanh", g.softplus(z))),
    "softplus": _softplus_beta,
    "softsign": lambda g, z, p: g.op("Div", z, g.op("Add", 1.0, g.op("Abs", z))),
    "log_sigmoid": lambda g, z, p: g.op("Neg", g.softplus(g.op("Neg", z))),
    "sinc": lambda g, z, p: g.where(g.op("Equal", z, 0.0), 1.0,
                                    g.op("Div", g.op("Sin", z), z)),
    "hard_swish": lambda g, z, p: g.op("Div", g.op("Mul", z, g.clip(g.op("Add", z, 3.0),
                                                                     0.0, 6.0)), 6.0),
    "hard_sigmoid": lambda g, z, p: g.clip(g.op("Add", g.op("Div", z, 6.0), 0.5), 0.0, 1.0),
    "hard_tanh": lambda g, z, p: g.clip(z, p["min_val"], p["max_val"]),
    "tanh_shrink": lambda g, z, p: g.op("Sub", z, g.op("Tanh", z)),
    "soft_shrink": _soft_shrink,
    "hard_shrink": lambda g, z, p: g.where(g.op("Greater", g.op("Abs", z), p["lambd"]), z,
                                           0.0),
    "softmax": lambda g, z, p: g.op("Softmax", z, axis=-1, hint="softmax"),
}


def supported_activations() -> List[str]:
    """The activation names :func:`export` writes as ONNX operators.

    Returns
    -------
    list of str
        Sorted canonical names (every name of :func:`fusenn.activations.names` today).

    Examples
    --------
    >>> "gelu" in supported_activations()
    True
    """
    return sorted(ACTIVATIONS)


def _activation(g: _Graph, z: str, act: _acts.Activation, where: str) -> str:
    """Append ``act`` (a :class:`fusenn.activations.Activation`) applied to ``z``."""
    emit = ACTIVATIONS.get(act.name)
    if emit is None:
        raise UnsupportedFeatureError(
            f"{where}: activation {act.name!r} has no ONNX form in fusenn's exporter; "
            f"supported: {', '.join(supported_activations())}")
    return emit(g, z, act.params)


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------

def _dense(g: _Graph, x: str, W: Array, b: Optional[Array], hint: str) -> str:
    """``x @ W + b`` as one Gemm (``b`` None: a MatMul)."""
    w = g.tensor(W, f"{hint}.W")
    if b is None:
        return g.op("MatMul", x, w, hint=f"{hint}.z")
    return g.op("Gemm", x, w, g.tensor(b, f"{hint}.b"), hint=f"{hint}.z")


def _batchnorm_scale(layer: _layers.BatchNorm) -> Array:
    """``1 / sqrt(running_var + eps)`` as BatchNorm's evaluation computes it."""
    scale: Array = (1.0 / np.sqrt(layer.running_var + layer.eps)).astype(layer.dtype)
    return scale


def _layer_plan(layers: List[_layers.Layer]
                ) -> List[Tuple[_layers.Layer, Optional[_layers.BatchNorm]]]:
    """``[(layer, folded BatchNorm or None), ...]`` without Dropout: a BatchNorm that follows
    a Dense without activation is folded into it."""
    plan: List[Tuple[_layers.Layer, Optional[_layers.BatchNorm]]] = []
    for layer in layers:
        if isinstance(layer, _layers.Dropout):
            continue
        prev = plan[-1] if plan else None
        if (isinstance(layer, _layers.BatchNorm) and prev is not None and prev[1] is None
                and type(prev[0]) is _layers.Dense
                and prev[0].activation.name == "linear"):
            plan[-1] = (prev[0], layer)
            continue
        plan.append((layer, None))
    return plan


def _layer(g: _Graph, x: str, layer: _layers.Layer, bn: Optional[_layers.BatchNorm],
           i: int) -> str:
    """Append layer ``i`` (evaluation mode) applied to ``x``; return the output's name."""
    hint = f"layer{i}"
    where = f"layer {i} ({layer.describe()})"
    if type(layer) is _layers.Dense:
        W, b = layer.W, layer.b
        if bn is not None:  # y = ((x W + b) - mean) s gamma + beta, s = 1/sqrt(var + eps)
            scale = (_batchnorm_scale(bn) * bn.gamma).astype(np.float64)
            W = (W.astype(np.float64) * scale).astype(layer.dtype)
            b = ((b.astype(np.float64) - bn.running_mean) * scale + bn.beta).astype(layer.dtype)
        z = _dense(g, x, W, b, hint)
        return _activation(g, z, layer.activation, where)
    if type(layer) is _layers.DenseNoBias:
        return _dense(g, x, layer.W, None, hint)
    if type(layer) is _layers.Activation:
        return _activation(g, x, layer.activation, where)
    if type(layer) is _layers.BatchNorm:
        # Evaluation: the running statistics. eps goes into the variance (epsilon=0): ONNX's
        # epsilon is a float32 attribute, which would cost a float64 model its precision.
        return g.op("BatchNormalization", x, g.tensor(layer.gamma, f"{hint}.gamma"),
                    g.tensor(layer.beta, f"{hint}.beta"),
                    g.tensor(layer.running_mean, f"{hint}.mean"),
                    g.tensor(layer.running_var.astype(np.float64) + layer.eps, f"{hint}.var"),
                    epsilon=0.0, hint=f"{hint}.y")
    if type(layer) is _layers.PReLU:  # x * (1 if x > 0 else alpha), alpha per unit
        slope = g.where(g.op("Greater", x, 0.0), 1.0, g.tensor(layer.alpha, f"{hint}.alpha"))
        return g.op("Mul", x, slope, hint=f"{hint}.y")
    if type(layer) is _layers.Swish:
        beta = float(layer.beta[0])
        return g.op("Mul", x, g.sigmoid(g.op("Mul", x, beta)), hint=f"{hint}.y")
    if type(layer) is _layers.RReLU:  # evaluation: the mean slope
        slope = g.where(g.op("Greater", x, 0.0), 1.0, 0.5 * (layer.lower + layer.upper))
        return g.op("Mul", x, slope, hint=f"{hint}.y")
    if type(layer) is _layers.Maxout:  # max over each unit's k pieces
        z = _dense(g, x, layer.W, layer.b, hint)
        shape = g.tensor([0, layer.n_out, layer.k], f"{hint}.pieces_shape", dtype=np.int64)
        pieces = g.op("Reshape", z, shape)
        if g.opset >= 18:
            axes = g.tensor([2], f"{hint}.axes", dtype=np.int64)
            return g.op("ReduceMax", pieces, axes, keepdims=0, hint=f"{hint}.y")
        return g.op("ReduceMax", pieces, axes=[2], keepdims=0, hint=f"{hint}.y")
    raise UnsupportedFeatureError(f"{where}: the layer {type(layer).__module__}."
                                  f"{type(layer).__name__} has no ONNX form in fusenn's "
                                  f"exporter")


# --------------------------------------------------------------------------------------------
# What is exported: a Sequential, the scikit-learn face, the Keras face
# --------------------------------------------------------------------------------------------

def _sequential_outputs(g: _Graph, x: str, model: Sequential, output: str) -> Tuple[str, int]:
    """The graph of ``model`` from ``x``: ``(output value, its width)``."""
    for i, (layer, bn) in enumerate(_layer_plan(model.layers)):
        x = _layer(g, x, layer, bn, i)
    if output == "raw" or not model.is_classifier():
        return x, model.n_out
    # predict_proba, step for step
    act = model.output_activation.name
    binary = model.task == "binary" or (model.task is None and act == "sigmoid")
    if binary:
        p = x if act == "sigmoid" else g.sigmoid(x)
        if model.n_out == 1:
            return g.op("Concat", g.op("Sub", 1.0, p), p, axis=1), 2
        return p, model.n_out
    if act != "softmax":
        x = g.op("Softmax", x, axis=-1, hint="softmax")
    return x, model.n_out


def _sklearn_outputs(g: _Graph, x: str, est: Any) -> Tuple[str, int]:
    """The graph of a fitted fusenn.sklearn estimator, with predict_proba's (classifier) or
    predict's (regressor, 2-D) semantics: ``(output value, its width)``."""
    from .sklearn import _engine

    hidden = _engine.HIDDEN[est.activation]

    act = _acts.get(hidden)
    last = len(est.coefs_) - 1
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        x = _dense(g, x, np.asarray(W, g.dtype), np.asarray(b, g.dtype), f"layer{i}")
        if i < last:
            x = _activation(g, x, act, f"hidden layer {i}")
    out, width = est.out_activation_, est.n_outputs_
    if out == "softmax":
        return g.op("Softmax", x, axis=-1, hint="softmax"), width
    if out == "logistic":
        p = g.sigmoid(x)
        if width == 1:  # binary: [1 - p, p], as predict_proba
            return g.op("Concat", g.op("Sub", 1.0, p), p, axis=1), 2
        return p, width
    if out == "exp":
        return g.op("Exp", x, hint="exp"), width
    if out == "identity":
        return x, width
    raise UnsupportedFeatureError(f"output activation {out!r} of {type(est).__name__} has no "
                                  f"ONNX form in fusenn's exporter")


def _estimator_is_classifier(est: Any) -> bool:
    """Whether a fusenn.sklearn estimator is a classifier (has classes)."""
    return hasattr(est, "classes_")


def _source(obj: Any) -> Tuple[str, Any, DTypeLike, Tuple[int, ...], str]:
    """``(kind, thing, dtype, sample shape, description)`` of what is exported."""
    if isinstance(obj, Sequential):
        return "sequential", obj, obj.dtype, (obj.n_in,), "fusenn.Sequential"
    sk = sys.modules.get("fusenn.sklearn._mlp")
    if sk is not None and isinstance(obj, sk._BaseMLP):
        name = type(obj).__name__
        if not hasattr(obj, "coefs_"):
            raise ArgumentError(f"this {name} is not fitted yet: call fit before exporting it")
        dtype = np.dtype(obj.coefs_[0].dtype)
        return "sklearn", obj, dtype, (int(obj.coefs_[0].shape[0]),), f"fusenn.sklearn.{name}"
    ks = sys.modules.get("fusenn.keras.models")
    if ks is not None and isinstance(obj, ks.Sequential):
        if obj.network is None:
            raise ArgumentError("this Keras Sequential is not built yet: build it (or fit or "
                                "predict once) before exporting it")
        net = obj.network
        shape: Tuple[int, ...] = (net.n_in,)
        first = obj._layers[0]
        if isinstance(first, sys.modules["fusenn.keras.layers"].InputLayer) and obj._flattens():
            shape = tuple(int(d) for d in first.shape)  # Input((28, 28)) then Flatten
        return "keras", net, net.dtype, shape, "fusenn.keras.Sequential"
    raise ArgumentTypeError(
        f"cannot export a {type(obj).__module__}.{type(obj).__name__}: export takes a "
        f"fusenn.Sequential, a fitted fusenn.sklearn.MLPClassifier or MLPRegressor, or a "
        f"built fusenn.keras Sequential")


def _check_opset(onnx: Any, opset: object) -> int:
    newest: int = onnx.defs.onnx_opset_version()
    if opset is None:
        return min(DEFAULT_OPSET, newest)
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise ArgumentTypeError(f"opset must be an integer, got {opset!r}")
    opset = int(opset)
    if opset < MIN_OPSET:
        raise UnsupportedFeatureError(f"opset {opset}: fusenn's exporter writes opset "
                                      f"{MIN_OPSET} or newer")
    if opset > newest:
        raise ArgumentError(f"opset {opset} is newer than this onnx package knows "
                            f"(up to {newest}); upgrade onnx or ask for {newest}")
    return opset


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ArgumentTypeError(f"{what} must be a non-empty string, got {value!r}")
    return value


def to_onnx(model: Any, opset: Optional[int] = None, *, output: str = "auto",
            input_name: str = "X", output_name: Optional[str] = None,
            graph_name: Optional[str] = None) -> _onnx_types.ModelProto:
    """The ONNX graph (an ``onnx.ModelProto``) that computes what ``model`` predicts.

    Parameters
    ----------
    model : Sequential, sklearn.MLPClassifier, sklearn.MLPRegressor or keras Sequential
        The model (all of fusenn): a Sequential in any state (evaluated as in ``predict``), a fitted
        scikit-learn face estimator, or a built Keras face model.
    opset : int, optional
        ONNX opset to write, from :data:`MIN_OPSET` (13) to the newest the installed onnx
        knows; default :data:`DEFAULT_OPSET` (17).
    output : {"auto", "raw"}
        ``"auto"``: a classifier's probabilities as ``predict_proba`` gives them (softmax or
        sigmoid applied where it applies them; ``[1 - p, p]`` for one binary column), a
        regressor's values as ``predict`` gives them. ``"raw"``: ``model.forward``'s outputs
        (a fusenn Sequential only). The Keras face always exports its ``predict``, the
        network's outputs.
    input_name : str
        Name of the graph's input, of shape ``(N, n_features)`` (``N`` dynamic).
    output_name : str, optional
        Name of its output; default ``"probabilities"`` for a classifier, ``"predictions"``
        for a regressor, ``"outputs"`` for ``output="raw"`` and the Keras face.
    graph_name : str, optional
        Name of the graph (default ``"fusenn"``).

    Returns
    -------
    onnx.ModelProto
        Checked with ``onnx.checker.check_model``.

    Raises
    ------
    MissingDependencyError
        The onnx package is not installed (``pip install 'fusenn[onnx]'``).
    UnsupportedFeatureError
        A layer or activation without an ONNX form (the message names it), or an opset
        older than 13.
    ArgumentTypeError
        ``model`` is not something fusenn exports, or a bad ``opset`` or name type.
    ArgumentError
        An unfitted estimator, an unbuilt Keras model, an unknown ``output``, an opset newer
        than onnx knows.

    Examples
    --------
    >>> import fusenn as fn                                         # doctest: +SKIP
    >>> model = fn.Sequential([fn.layers.Dense(2, 3, "tanh"), fn.layers.Dense(3, 2)],
    ...                       task="multiclass")                    # doctest: +SKIP
    >>> proto = fn.onnx.to_onnx(model)                              # doctest: +SKIP
    >>> [o.name for o in proto.graph.output]                        # doctest: +SKIP
    ['probabilities']
    """
    if output not in OUTPUTS:
        raise ArgumentError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    kind, thing, dtype, sample_shape, what = _source(model)
    if output == "raw" and kind == "sklearn":
        raise ArgumentError("output='raw' applies to a fusenn Sequential; a scikit-learn face "
                            "estimator exports predict_proba (classifier) or predict "
                            "(regressor)")
    input_name = _check_name(input_name, "input_name")
    onnx = _onnx()
    opset = _check_opset(onnx, opset)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):  # pragma: no cover - models are one of these
        raise UnsupportedFeatureError(f"dtype {dtype}: ONNX export writes float32 or float64")
    if kind == "sklearn":
        default_name = "probabilities" if _estimator_is_classifier(thing) else "predictions"
    elif kind == "keras" or output == "raw":
        default_name = "outputs"
    else:
        default_name = "probabilities" if thing.is_classifier() else "predictions"
    output_name = _check_name(output_name or default_name, "output_name")
    if output_name == input_name:
        raise ArgumentError(f"input_name and output_name are both {input_name!r}")
    g = _Graph(onnx, dtype, opset)
    g._used.update((input_name, output_name))
    x = input_name
    if len(sample_shape) > 1:  # the Keras face's samples of several axes, flattened
        x = g.op("Flatten", x, axis=1, hint="flat")
    if kind == "sklearn":
        out, width = _sklearn_outputs(g, x, thing)
    else:
        out, width = _sequential_outputs(g, x, thing, "raw" if kind == "keras" else output)
    if out == input_name:  # a model that computes nothing in evaluation
        g.nodes.append(onnx.helper.make_node("Identity", [out], [output_name],
                                             name=g.fresh("Identity_node")))
    else:  # the last value takes the public name
        for node in g.nodes:
            for names in (node.input, node.output):
                for j, name in enumerate(names):
                    if name == out:
                        names[j] = output_name
    elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    inp = onnx.helper.make_tensor_value_info(input_name, elem, ["N", *sample_shape])
    outp = onnx.helper.make_tensor_value_info(output_name, elem, ["N", int(width)])
    semantics = {"probabilities": "predict_proba", "predictions": "predict",
                 "outputs": "forward"}.get(default_name)
    graph = onnx.helper.make_graph(
        g.nodes, graph_name or "fusenn", [inp], [outp], initializer=g.initializers,
        doc_string=f"{what} exported by fusenn {__version__}: {semantics}")
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto: _onnx_types.ModelProto = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="fusenn",
                                                           producer_version=__version__)
    proto.ir_version = onnx.helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model: Any, path: PathLike, opset: Optional[int] = None, *, output: str = "auto",
           input_name: str = "X", output_name: Optional[str] = None,
           graph_name: Optional[str] = None) -> _onnx_types.ModelProto:
    """Write ``model`` as an ONNX file at ``path`` (atomically) and return the graph.

    Parameters
    ----------
    model : Sequential, sklearn.MLPClassifier, sklearn.MLPRegressor or keras Sequential
        What to export (see :func:`to_onnx`).
    path : str or os.PathLike
        The file to write: a regular file (replaced atomically) or a new path; a symbolic
        link is followed. Conventionally ``*.onnx``.
    opset, output, input_name, output_name, graph_name
        As for :func:`to_onnx`.

    Returns
    -------
    onnx.ModelProto
        The graph written.

    Raises
    ------
    SaveError
        ``path`` is a directory, a FIFO, a socket or a device node (nothing is written).
    FileNotFoundError
        Its directory does not exist.
    MissingDependencyError, UnsupportedFeatureError, ArgumentTypeError, ArgumentError
        As for :func:`to_onnx`, before anything is written.

    Examples
    --------
    >>> import fusenn as fn                                         # doctest: +SKIP
    >>> model = fn.Sequential([fn.layers.Dense(4, 3, "softmax")])    # doctest: +SKIP
    >>> _ = fn.onnx.export(model, "model.onnx", opset=17)           # doctest: +SKIP
    """
    _archive.check_target(path)  # a FIFO or a directory is refused before the graph is built
    proto = to_onnx(model, opset, output=output, input_name=input_name,
                    output_name=output_name, graph_name=graph_name)
    data = proto.SerializeToString()
    _archive.write_atomic(path, lambda f: f.write(data))
    return proto
