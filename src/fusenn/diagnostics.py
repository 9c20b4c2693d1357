"""Diagnostics the notes teach: vanishing and exploding gradients, and dead ReLUs.

* :func:`gradient_norms` - the norm of ``dL/dW`` per layer for one batch. In a deep sigmoid
  network the norms shrink layer by layer towards the input (vanishing gradients: each layer
  multiplies by ``sigmoid' <= 1/4``); with large weights they grow (exploding gradients).
* :func:`dead_units` - for every layer with a ReLU-like activation, the fraction of units that
  output zero for every sample of ``X``: such units get no gradient and never recover.
* :class:`GradientMonitor` - a callback that logs both per epoch.
"""
from __future__ import annotations

import numpy as np

from . import losses as _losses
from .callbacks import Callback
from .layers import Dense

_RELU_LIKE = ("relu", "hard_swish", "hard_tanh")


def gradient_norms(model, X, y, loss="cross_entropy"):
    """``[||dL/dW_l||_2 for each layer with parameters]`` for the batch ``(X, y)``."""
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


def dead_units(model, X):
    """``{layer index: fraction of units never active on X}`` for ReLU-like Dense layers."""
    X = model._check_input(X)
    result = {}
    for i, layer in enumerate(model.layers):
        X = layer.forward(X, False)
        if isinstance(layer, Dense) and layer.activation.name in _RELU_LIKE:
            result[i] = float(np.mean(np.all(X <= 0, axis=0)))
    return result


class GradientMonitor(Callback):
    """Logs ``grad_norm_<l>`` for each layer and ``dead_<l>`` for ReLU layers after every
    epoch, measured on ``(X, y)`` (a sample of the training data)."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def on_epoch_end(self, epoch, logs=None):
        model = self.trainer.model
        for l, norm in enumerate(gradient_norms(model, self.X, self.y, self.trainer.loss)):
            logs[f"grad_norm_{l}"] = norm
        for l, frac in dead_units(model, self.X).items():
            logs[f"dead_{l}"] = frac
