"""Diagnostics the notes teach: vanishing and exploding gradients, and dead ReLUs.

* :func:`gradient_norms` - the norm of ``dL/dW`` per layer for one batch. In a deep sigmoid
  network the norms shrink layer by layer towards the input (vanishing gradients: each layer
  multiplies by ``sigmoid' <= 1/4``); with large weights they grow (exploding gradients).
* :func:`dead_units` - for every layer with a ReLU-like activation, the fraction of units that
  output zero for every sample of ``X``: such units get no gradient and never recover.
* :func:`saturation` - per layer, the share of sigmoid/tanh outputs in their flat tails (where
  the derivative, and so the gradient through the unit, is nearly zero) and of ReLU-like units
  that never fire: the two ways a unit stops learning.
* :class:`GradientMonitor` - a callback that logs gradient norms and dead units per epoch and
  keeps them, ready for :func:`fusenn.plot.gradient_norms`.

Everything here is NumPy only; :mod:`fusenn.plot` draws it.

>>> import fusenn as fn
>>> model = fn.Sequential([fn.layers.Dense(2, 3, "sigmoid"), fn.layers.Dense(3, 2)],
...                       random_state=0)
>>> X, y = fn.datasets.xor()
>>> len(fn.diagnostics.gradient_norms(model, X, y))
2
>>> fn.diagnostics.saturation(model, X)[0].kind
'tails'
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import _activation_table as _table
from . import losses as _losses
from ._typing import ArrayLike, Logs
from .callbacks import Callback
from .layers import Dense
from .errors import ArgumentError

if TYPE_CHECKING:
    from .model import Sequential

#: ReLU-like activations (units that can die), from the activation table.
_RELU_LIKE = tuple(name for name, d in _table.REGISTRY.items() if d.relu_like)
#: Squashing activations and their output range: a unit is in a flat tail when its output is
#: within ``tail`` (a fraction of the range) of either end.
_SQUASHING = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "hard_sigmoid": (0.0, 1.0)}


def gradient_norms(model: Sequential, X: ArrayLike, y: ArrayLike,
                   loss: Any = "cross_entropy") -> list[float]:
    """``[||dL/dW_l||_2 for each layer with parameters]`` for the batch ``(X, y)``.

    One forward and backward pass in training mode (the weights do not change).

    Parameters
    ----------
    model : Sequential
        The model.
    X : array_like of shape (n, n_in)
        The batch's inputs.
    y : array_like
        Its targets, as the loss takes them.
    loss : str or Loss, default "cross_entropy"
        The loss whose gradient is measured.

    Returns
    -------
    list of float
        The Frobenius norm of each parameterised layer's first parameter's gradient (``W``
        for Dense), first layer first.

    Raises
    ------
    ShapeError, ValueError
        ``X`` or ``y`` does not fit the model and the loss.

    Examples
    --------
    >>> import fusenn as fn
    >>> X, y = fn.datasets.xor()
    >>> model = fn.Sequential([fn.layers.Dense(2, 4, activation="sigmoid"),
    ...                        fn.layers.Dense(4, 2)], random_state=0)
    >>> len(fn.diagnostics.gradient_norms(model, X, y))
    2
    """
    loss = _losses.get(loss)
    X = model._check_input(X)
    y = loss.prepare_targets(y, X.shape[0], model.n_out, model.dtype)
    from .trainer import Trainer

    trainer = Trainer(model, loss=loss)
    with trainer._training_mode(reuse=False):
        out = model._forward(X, True)
        _, grad = loss(out, y)
        model.backward(grad)
    return [float(np.linalg.norm(layer.grads[0])) for layer in model.layers if layer.params]


def dead_units(model: Sequential, X: ArrayLike) -> dict[int, float]:
    """``{layer index: fraction of units never active on X}`` for ReLU-like Dense layers.

    Parameters
    ----------
    model : Sequential
        The model.
    X : array_like of shape (n, n_in)
        The inputs (a unit is dead when its output is <= 0 on every row).

    Returns
    -------
    dict of int to float

    Raises
    ------
    ShapeError
        ``X`` does not fit the model.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> model = fn.Sequential([fn.layers.Dense(2, 2, activation="relu")])
    >>> model.set_weights([np.array([[1.0, -1.0], [1.0, -1.0]]), np.zeros(2)])
    >>> fn.diagnostics.dead_units(model, np.ones((3, 2)))
    {0: 0.5}
    """
    X = model._check_input(X)
    result: dict[int, float] = {}
    for i, layer in enumerate(model.layers):
        X = layer.forward(X, False)
        if isinstance(layer, Dense) and layer.activation.name in _RELU_LIKE:
            result[i] = float(np.mean(np.all(X <= 0, axis=0)))
    return result


class Saturation(NamedTuple):
    """One layer's entry in :func:`saturation`."""

    activation: str  #: the layer's activation name
    kind: str  #: "tails" (sigmoid/tanh: share of outputs in the flat tails) or "dead" (ReLU)
    fraction: float  #: the share, in [0, 1]


def saturation(model: Sequential, X: ArrayLike, tail: float = 0.05) -> dict[int, Saturation]:
    """Per layer, the share of units that have stopped passing gradient on ``X``.

    For a layer with a squashing activation (sigmoid, tanh, hard_sigmoid) the share of its
    outputs (every sample, every unit) within ``tail`` of either end of the activation's range,
    as a fraction of the range: with ``tail=0.05`` a sigmoid output below 0.05 or above 0.95,
    a tanh output beyond +-0.9. There ``f'(z)`` is under a fifth of its peak, so the gradient
    that flows back through the unit all but vanishes. For a layer with a ReLU-like activation,
    the share of its units that never fire on ``X`` (as :func:`dead_units`). Layers with other
    activations, or none, are left out.

    Parameters
    ----------
    model : fusenn.Sequential
        The network; Dense and Activation layers are inspected.
    X : array_like of shape (n_samples, n_features)
        Inputs, for example a sample of the training data.
    tail : float, default 0.05
        Width of each flat tail, as a fraction of the activation's output range, in (0, 0.5).

    Returns
    -------
    dict of int to Saturation
        ``{layer index: Saturation(activation, kind, fraction)}``, ``kind`` being ``"tails"``
        or ``"dead"``.

    Raises
    ------
    ShapeError
        If ``X`` is not 2-D with the model's input width.
    ValueError
        If ``tail`` is not in (0, 0.5).

    Examples
    --------
    >>> import numpy as np, fusenn as fn
    >>> model = fn.Sequential([fn.layers.Dense(1, 1, "sigmoid")], dtype=np.float64)
    >>> model.set_weights([np.array([[1.0]]), np.array([0.0])])
    >>> X = np.array([[-5.0], [0.0], [0.5], [5.0]])  # sigmoid: 0.007, 0.5, 0.62, 0.993
    >>> fn.diagnostics.saturation(model, X)[0].fraction
    0.5
    """
    if not (isinstance(tail, (int, float, np.floating)) and 0 < tail < 0.5):
        raise ArgumentError(f"tail must be a number in (0, 0.5), got {tail!r}")
    X = model._check_input(X)
    result = {}
    for i, layer in enumerate(model.layers):
        X = layer.forward(X, False)
        act = getattr(layer, "activation", None)
        if act is None:
            continue
        if act.name in _SQUASHING:
            lo, hi = _SQUASHING[act.name]
            margin = tail * (hi - lo)
            flat = (X <= lo + margin) | (X >= hi - margin)
            result[i] = Saturation(act.name, "tails", float(np.mean(flat)))
        elif act.name in _RELU_LIKE:
            result[i] = Saturation(act.name, "dead", float(np.mean(np.all(X <= 0, axis=0))))
    return result


class GradientMonitor(Callback):
    """Records per-layer gradient norms and dead units after every epoch.

    Measured on ``(X, y)`` (a sample of the training data) with the Trainer's loss. Each epoch
    logs ``grad_norm_<l>`` for the ``l``-th layer with parameters and ``dead_<l>`` for each
    ReLU-like layer (``l`` its index in ``model.layers``), so that they reach the History,
    and keeps them on the monitor itself for :func:`fusenn.plot.gradient_norms`.

    Parameters
    ----------
    X : array_like of shape (n_samples, n_features)
        Inputs to measure on.
    y : array_like
        Their targets, as the Trainer's loss takes them.

    Attributes
    ----------
    epochs : list of int
        The epochs recorded (0-based), in order.
    grad_norms : list of list of float
        ``grad_norms[e][l]``: the norm of ``dL/dW`` of the ``l``-th layer with parameters after
        epoch ``epochs[e]``.
    dead : list of dict
        ``dead[e]``: :func:`dead_units` after epoch ``epochs[e]``.
    layer_names : list of str
        One name per layer with parameters, e.g. ``"0: Dense(64 -> 32) sigmoid"``.

    Examples
    --------
    >>> import fusenn as fn
    >>> X, y = fn.datasets.xor()
    >>> model = fn.Sequential([fn.layers.Dense(2, 4, "tanh"), fn.layers.Dense(4, 2)],
    ...                       random_state=0)
    >>> monitor = fn.diagnostics.GradientMonitor(X, y)
    >>> _ = fn.Trainer(model, callbacks=[monitor]).fit(X, y, epochs=3)
    >>> len(monitor.grad_norms), len(monitor.grad_norms[0])
    (3, 2)
    """

    def __init__(self, X: Any, y: Any) -> None:
        self.X, self.y = X, y
        self.epochs: list[int] = []
        self.grad_norms: list[Any] = []
        self.dead: list[Any] = []
        self.layer_names: list[str] = []

    def on_train_begin(self, logs: Logs = None) -> None:
        model = self.trainer.model
        self.epochs, self.grad_norms, self.dead = [], [], []
        self.layer_names = [_layer_name(i, layer) for i, layer in enumerate(model.layers)
                            if layer.params]

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        model = self.trainer.model
        norms = gradient_norms(model, self.X, self.y, self.trainer.loss)
        dead = dead_units(model, self.X)
        for l, norm in enumerate(norms):
            logs[f"grad_norm_{l}"] = norm
        for l, frac in dead.items():
            logs[f"dead_{l}"] = frac
        self.epochs.append(epoch)
        self.grad_norms.append(norms)
        self.dead.append(dead)


def _layer_name(index: Any, layer: Any) -> Any:
    act = getattr(layer, "activation", None)
    return f"{index}: {layer.describe()}" + (f" {act.name}" if act is not None else "")
