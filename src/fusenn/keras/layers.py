"""Keras's layers for multi-layer perceptrons (``keras.layers``), built on fusenn's layers.

A Keras layer here is a description (its units, activation, initialisers, name) until its
model is built, when it becomes one or two :mod:`fusenn.layers` layers: ``Dense`` a fused
:class:`fusenn.layers.Dense` (or, with ``use_bias=False``, a
:class:`fusenn.layers.DenseNoBias` then an :class:`fusenn.layers.Activation`). Its weights are
then Keras's, in Keras's order and shapes (a Dense's kernel ``(n_in, units)`` then its bias).

Layers outside the face (``Conv2D``, ``LSTM``, ``Embedding``, ...) raise
:class:`fusenn.errors.UnsupportedFeatureError` naming the layer.

>>> layer = Dense(4, activation="relu", name="hidden")
>>> layer.name, layer.units
('hidden', 4)
"""
from __future__ import annotations

import numpy as np

from ..errors import ArgumentError
from .. import layers as _layers
from . import activations as _activations
from . import initializers as _initializers
from . import regularizers as _regularizers
from ._common import missing_attribute, snake_case, unique_name, unsupported


def _input_width(shape, what):
    if shape is None:
        return None
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not shape or any(s is None or int(s) < 1 for s in shape):
        raise ArgumentError(f"{what} must be a tuple of positive sizes, got {shape!r}")
    return int(np.prod(shape))


def _no(feature, value, default=None):
    if value is not default:
        raise unsupported(feature)


class Layer:
    """Base of the face's layers: a name, an optional input width, and after the model is
    built the fusenn layers that do the work.

    Parameters
    ----------
    name : str, optional
        Keras's automatic name (``dense``, ``dense_1``, ...) when not given.
    input_shape : tuple of int, optional
        The input's shape without the batch axis (only on a model's first layer).
    input_dim : int, optional
        The input width, Keras 2's spelling of ``input_shape=(input_dim,)``.
    dtype : str, optional
        Only ``"float32"`` or ``"float64"``; the model's dtype rules.
    """

    def __init__(self, name=None, input_shape=None, input_dim=None, dtype=None,
                 trainable=True, batch_input_shape=None, **kwargs):
        if kwargs:
            raise unsupported(f"the argument(s) {', '.join(sorted(kwargs))} of "
                              f"keras.layers.{type(self).__name__}")
        if trainable is not True:
            raise unsupported("a layer with trainable=False (frozen weights)")
        if batch_input_shape is not None:
            input_shape = tuple(batch_input_shape)[1:]
        if input_dim is not None:
            input_shape = (input_dim,)
        self.input_dim = _input_width(input_shape, "input_shape")
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.dtype = dtype
        self.core = []  # the fusenn layers, once built
        self.n_in = self.n_out = None

    # -- building ----------------------------------------------------------------------------
    def build(self, n_in, dtype, rng):
        """Make the fusenn layers for input width ``n_in``; return the output width."""
        self.n_in = n_in
        self.core = self._make(n_in, dtype, rng)
        width = n_in
        for layer in self.core:
            width = layer.build(width)
        self.n_out = self._width(n_in)
        return self.n_out

    def _make(self, n_in, dtype, rng):
        return []

    def _width(self, n_in):
        return n_in

    @property
    def built(self):
        return self.n_in is not None

    # -- weights -----------------------------------------------------------------------------
    def _slots(self):
        """``[(fusenn layer, attribute)]`` of the weights in Keras's order."""
        return []

    @property
    def weights(self):
        return [getattr(layer, attr) for layer, attr in self._slots()]

    def get_weights(self):
        """Copies of the layer's weights in Keras's order."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        """Set the layer's weights from a list in :meth:`get_weights` order.

        Raises
        ------
        ShapeError
            For a wrong number of arrays or a wrong shape.
        """
        from ..errors import ShapeError

        slots = self._slots()
        weights = list(weights)
        if len(weights) != len(slots):
            raise ShapeError(f"layer {self.name!r} expects {len(slots)} weight arrays, got "
                             f"{len(weights)}")
        for (layer, attr), w in zip(slots, weights):
            w = np.asarray(w)
            if w.shape != getattr(layer, attr).shape:
                raise ShapeError(f"layer {self.name!r}: weight {attr} must have shape "
                                 f"{getattr(layer, attr).shape}, got {w.shape}")
        for (layer, attr), w in zip(slots, weights):
            getattr(layer, attr)[...] = w

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    def _n_trainable(self):
        return self.count_params()

    def _penalties(self):
        """``[(regularizer, fusenn layer, attribute)]``."""
        return []

    def get_config(self):
        """The layer's settings, for :meth:`fusenn.keras.models.Sequential.save`."""
        cfg = {"name": self.name}
        if self.input_dim is not None:
            cfg["input_dim"] = self.input_dim
        return cfg

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


class InputLayer(Layer):
    """The input of a Sequential model: ``Input(shape=(784,))``; no weights.

    A shape of more than one axis (``(28, 28)``) is read as its flattened width, for a
    ``Flatten`` that follows.
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, input_shape=None,
                 **kwargs):
        super().__init__(name=name, input_shape=shape if shape is not None else input_shape,
                         dtype=dtype, **kwargs)
        if self.input_dim is None:
            raise ArgumentError("Input needs a shape, e.g. Input(shape=(784,))")
        self.shape = tuple(shape if shape is not None else input_shape)

    def get_config(self):
        return {"name": self.name, "shape": list(self.shape)}


def Input(shape=None, batch_size=None, dtype=None, name=None, **kwargs):
    """Keras's ``Input(shape=...)``: in a Sequential model, the layer that fixes the input
    width.

    Parameters
    ----------
    shape : tuple of int
        The shape of one sample, ``(n_features,)``.

    Returns
    -------
    InputLayer

    Examples
    --------
    >>> Input(shape=(3,)).input_dim
    3
    """
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype,
                      name=name or unique_name("input_layer"), **kwargs)


class Dense(Layer):
    """Keras's ``Dense``: ``y = activation(x @ kernel + bias)``.

    Parameters
    ----------
    units : int
        Output width.
    activation : str, function of :mod:`fusenn.keras.activations` or None
    use_bias : bool
    kernel_initializer, bias_initializer : str or initialiser
        Keras's defaults, ``"glorot_uniform"`` and ``"zeros"``.
    kernel_regularizer, bias_regularizer : Regularizer, ``"l1"``, ``"l2"``, ``"l1_l2"`` or None
    name, input_shape, input_dim : see :class:`Layer`

    Raises
    ------
    UnsupportedFeatureError
        For ``activity_regularizer``, ``kernel_constraint``, ``bias_constraint`` or ``lora_rank``.

    Examples
    --------
    >>> Dense(3, use_bias=False).use_bias
    False
    """

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ArgumentError(f"Dense units must be a positive integer, got {units!r}")
        _no("Dense(activity_regularizer=...)", activity_regularizer)
        _no("Dense(kernel_constraint=...)", kernel_constraint)
        _no("Dense(bias_constraint=...)", bias_constraint)
        _no("Dense(lora_rank=...)", lora_rank)
        self.units = int(units)
        self.activation = _activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _initializers.get(kernel_initializer)
        self.bias_initializer = _initializers.get(bias_initializer)
        self.kernel_regularizer = _regularizers.get(kernel_regularizer)
        self.bias_regularizer = _regularizers.get(bias_regularizer)

    def _make(self, n_in, dtype, rng):
        if self.use_bias:
            return [_layers.Dense(n_in, self.units, self.activation, init=self.kernel_initializer,
                                  bias_init=self.bias_initializer, random_state=rng,
                                  dtype=dtype)]
        core = [_layers.DenseNoBias(n_in, self.units, init=self.kernel_initializer,
                                    random_state=rng, dtype=dtype)]
        if self.activation.name != "linear":
            core.append(_layers.Activation(self.activation, dtype=dtype))
        return core

    def _width(self, n_in):
        return self.units

    def _slots(self):
        if not self.core:
            return []
        return [(self.core[0], "W")] + ([(self.core[0], "b")] if self.use_bias else [])

    @property
    def kernel(self):
        return self.core[0].W

    @property
    def bias(self):
        return self.core[0].b if self.use_bias else None

    def _penalties(self):
        out = []
        if self.kernel_regularizer is not None:
            out.append((self.kernel_regularizer, self.core[0], "W"))
        if self.bias_regularizer is not None and self.use_bias:
            out.append((self.bias_regularizer, self.core[0], "b"))
        return out

    def get_config(self):
        reg = (lambda r: None if r is None else r.get_config())
        return {**super().get_config(), "units": self.units,
                "activation": _activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_regularizer": reg(self.kernel_regularizer),
                "bias_regularizer": reg(self.bias_regularizer)}


class Dropout(Layer):
    """Keras's ``Dropout(rate, seed=None)``: inverted dropout in training, identity otherwise."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        _no("Dropout(noise_shape=...)", noise_shape)
        if not 0.0 <= float(rate) < 1.0:
            raise ArgumentError(f"Dropout rate must be in [0, 1), got {rate!r}")
        self.rate, self.seed = float(rate), seed

    def _make(self, n_in, dtype, rng):
        return [_layers.Dropout(self.rate, random_state=rng if self.seed is None else self.seed,
                                dtype=dtype)]

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class BatchNormalization(Layer):
    """Keras's ``BatchNormalization(momentum=0.99, epsilon=1e-3)``.

    Keras's ``momentum`` is the weight of the old moving statistic (fusenn's BatchNorm takes
    ``1 - momentum``). Weights in Keras's order: gamma, beta, moving_mean, moving_variance
    (the last two not trained).
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 **kwargs):
        super().__init__(**kwargs)
        if axis not in (-1, 1):
            raise unsupported(f"BatchNormalization(axis={axis!r})", "MLP features are axis -1")
        _no("BatchNormalization(center=False)", center, True)
        _no("BatchNormalization(scale=False)", scale, True)
        if not 0.0 <= float(momentum) < 1.0:
            raise ArgumentError(f"BatchNormalization momentum must be in [0, 1), got {momentum!r}")
        self.momentum, self.epsilon = float(momentum), float(epsilon)

    def _make(self, n_in, dtype, rng):
        return [_layers.BatchNorm(n_in, momentum=1.0 - self.momentum, eps=self.epsilon,
                                  dtype=dtype)]

    def _slots(self):
        if not self.core:
            return []
        bn = self.core[0]
        return [(bn, "gamma"), (bn, "beta"), (bn, "running_mean"), (bn, "running_var")]

    def _n_trainable(self):
        return 2 * self.n_in

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


class Activation(Layer):
    """Keras's ``Activation(activation)``: an activation function as a layer."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = _activations.get(activation)

    def _make(self, n_in, dtype, rng):
        return [_layers.Activation(self.activation, dtype=dtype)]

    def get_config(self):
        return {**super().get_config(),
                "activation": _activations.serialize(self.activation)}


class ReLU(Activation):
    """Keras's ``ReLU()``; ``negative_slope > 0`` makes it a leaky ReLU."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        _no("ReLU(max_value=...)", max_value)
        if threshold != 0.0:
            raise unsupported("ReLU(threshold=...)")
        super().__init__("relu", **kwargs)
        if negative_slope:
            from .. import activations as _acts

            self.activation = _acts.get("leaky_relu", alpha=float(negative_slope))
        self.negative_slope = float(negative_slope)

    def get_config(self):
        return {"name": self.name, "negative_slope": self.negative_slope,
                **({"input_dim": self.input_dim} if self.input_dim else {})}


class LeakyReLU(Activation):
    """Keras's ``LeakyReLU(negative_slope=0.3)`` (Keras 2's ``alpha=`` is accepted too)."""

    def __init__(self, negative_slope=0.3, alpha=None, **kwargs):
        from .. import activations as _acts

        super().__init__("linear", **kwargs)
        self.negative_slope = float(negative_slope if alpha is None else alpha)
        self.activation = _acts.get("leaky_relu", alpha=self.negative_slope)

    def get_config(self):
        return {"name": self.name, "negative_slope": self.negative_slope,
                **({"input_dim": self.input_dim} if self.input_dim else {})}


class ELU(Activation):
    """Keras's ``ELU(alpha=1.0)``."""

    def __init__(self, alpha=1.0, **kwargs):
        from .. import activations as _acts

        super().__init__("linear", **kwargs)
        self.alpha = float(alpha)
        self.activation = _acts.get("elu", alpha=self.alpha)

    def get_config(self):
        return {"name": self.name, "alpha": self.alpha,
                **({"input_dim": self.input_dim} if self.input_dim else {})}


class Softmax(Activation):
    """Keras's ``Softmax(axis=-1)`` over the features."""

    def __init__(self, axis=-1, **kwargs):
        if axis not in (-1, 1):
            raise unsupported(f"Softmax(axis={axis!r})", "MLP features are axis -1")
        super().__init__("softmax", **kwargs)

    def get_config(self):
        return {"name": self.name, **({"input_dim": self.input_dim} if self.input_dim else {})}


class PReLU(Layer):
    """Keras's ``PReLU()``: a learnt slope per unit for negative inputs, starting at
    ``alpha_initializer`` (Keras's default: zeros)."""

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None,
                 alpha_constraint=None, shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        _no("PReLU(alpha_regularizer=...)", alpha_regularizer)
        _no("PReLU(alpha_constraint=...)", alpha_constraint)
        _no("PReLU(shared_axes=...)", shared_axes)
        init = _initializers.get(alpha_initializer)
        if not hasattr(init, "value") and type(init).__name__ != "Zeros":
            raise unsupported(f"PReLU(alpha_initializer={alpha_initializer!r})",
                              "use a constant initial slope")
        self.alpha_init = float(getattr(init, "value", 0.0))

    def _make(self, n_in, dtype, rng):
        return [_layers.PReLU(n_in, init=self.alpha_init, dtype=dtype)]

    def _slots(self):
        return [(self.core[0], "alpha")] if self.core else []

    def get_config(self):
        return {**super().get_config(),
                "alpha_initializer": {"class_name": "Constant",
                                      "config": {"value": self.alpha_init}}}


class Flatten(Layer):
    """Keras's ``Flatten()``: samples of several axes become rows; the input of an MLP."""


#: The layers of the face, by Keras's class name (for loading saved models).
LAYERS = {cls.__name__: cls for cls in (InputLayer, Dense, Dropout, BatchNormalization,
                                         Activation, ReLU, LeakyReLU, ELU, Softmax, PReLU,
                                         Flatten)}

__all__ = ["Layer", *LAYERS, "Input"]
__getattr__ = missing_attribute(__name__, tuple(LAYERS) + ("Input",))
