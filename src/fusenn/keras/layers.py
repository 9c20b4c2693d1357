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

from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import ArgumentError
from .. import layers as _layers
from . import activations as _activations
from . import initializers as _initializers
from . import regularizers as _regularizers
from ._common import missing_attribute, snake_case, unique_name, unsupported


def _input_width(shape: Union[int, Sequence[Optional[int]], None], what: str) -> Optional[int]:
    if shape is None:
        return None
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not shape or any(s is None or int(s) < 1 for s in shape):
        raise ArgumentError(f"{what} must be a tuple of positive sizes, got {shape!r}")
    return int(np.prod([int(s) for s in shape if s is not None]))


def _no(feature: str, value: Any, default: Any = None) -> None:
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
    trainable : bool, default=True
        Only True (frozen weights are outside the face).
    batch_input_shape : tuple, optional
        Keras 2's input shape with the batch axis first.
    **kwargs
        Any other Keras argument raises :class:`fusenn.errors.UnsupportedFeatureError`.

    Attributes
    ----------
    core : list of fusenn.layers.Layer
        The fusenn layers that do the work, once the model is built.
    n_in, n_out : int or None
        The input and output widths, once built.
    """

    def __init__(self, name: Optional[str] = None,
                 input_shape: Optional[Sequence[Optional[int]]] = None,
                 input_dim: Optional[int] = None, dtype: Optional[str] = None,
                 trainable: bool = True, batch_input_shape: Optional[Sequence[Any]] = None,
                 **kwargs: Any) -> None:
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
        self.core: list[Any] = []  # the fusenn layers, once built
        self.n_in: Optional[int] = None
        self.n_out: Optional[int] = None

    # -- building ----------------------------------------------------------------------------
    def build(self, n_in: int, dtype: Any, rng: Any) -> int:
        """Make the fusenn layers for input width ``n_in``; return the output width.

        Parameters
        ----------
        n_in : int
            The input width.
        dtype : numpy dtype
            The model's dtype.
        rng : numpy.random.Generator
            The model's generator, which draws the initial weights.

        Returns
        -------
        int
            The output width.
        """
        self.n_in = n_in
        self.core = self._make(n_in, dtype, rng)
        width = n_in
        for layer in self.core:
            width = layer.build(width)
        self.n_out = self._width(n_in)
        return self.n_out

    def _make(self, n_in: int, dtype: Any, rng: Any) -> list[Any]:
        return []

    def _width(self, n_in: int) -> int:
        return n_in

    @property
    def built(self) -> bool:
        """Whether the layer has been built (has its weights)."""
        return self.n_in is not None

    # -- weights -----------------------------------------------------------------------------
    def _slots(self) -> list[tuple[Any, str]]:
        """``[(fusenn layer, attribute)]`` of the weights in Keras's order."""
        return []

    @property
    def weights(self) -> list[NDArray[Any]]:
        """The layer's weight arrays themselves (not copies), in Keras's order."""
        return [getattr(layer, attr) for layer, attr in self._slots()]

    def get_weights(self) -> list[NDArray[Any]]:
        """Copies of the layer's weights in Keras's order.

        Returns
        -------
        list of ndarray
            For a Dense: the kernel ``(n_in, units)`` then the bias; empty before building.
        """
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: Sequence[ArrayLike]) -> None:
        """Set the layer's weights from a list in :meth:`get_weights` order.

        Parameters
        ----------
        weights : list of array_like
            One array per weight, of the shapes :meth:`get_weights` gives.

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

    def count_params(self) -> int:
        """The number of weights of the layer (0 before it is built).

        Returns
        -------
        int
            Trained and not trained weights, as Keras counts them.
        """
        return int(sum(w.size for w in self.weights))

    def _n_trainable(self) -> int:
        return self.count_params()

    def _penalties(self) -> list[tuple[Any, Any, str]]:
        """``[(regularizer, fusenn layer, attribute)]``."""
        return []

    def get_config(self) -> dict[str, Any]:
        """The layer's settings, for :meth:`fusenn.keras.models.Sequential.save`.

        Returns
        -------
        dict
            The arguments that rebuild the layer (its name, input width and own settings).
        """
        cfg: dict[str, Any] = {"name": self.name}
        if self.input_dim is not None:
            cfg["input_dim"] = self.input_dim
        return cfg

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


class InputLayer(Layer):
    """The input of a Sequential model: ``Input(shape=(784,))``; no weights.

    A shape of more than one axis (``(28, 28)``) is read as its flattened width, for a
    ``Flatten`` that follows.

    Parameters
    ----------
    shape : tuple of int
        The shape of one sample.
    batch_size : int, optional
        Accepted for Keras's signature.
    dtype, name : str, optional
        As :class:`Layer`.
    input_shape : tuple of int, optional
        Keras 2's spelling of ``shape``.
    **kwargs
        As :class:`Layer`.

    Raises
    ------
    fusenn.errors.ArgumentError
        Without a shape, or with a size that is not positive.
    """

    def __init__(self, shape: Optional[Sequence[int]] = None, batch_size: Optional[int] = None,
                 dtype: Optional[str] = None, name: Optional[str] = None,
                 input_shape: Optional[Sequence[int]] = None, **kwargs: Any) -> None:
        super().__init__(name=name, input_shape=shape if shape is not None else input_shape,
                         dtype=dtype, **kwargs)
        if self.input_dim is None:
            raise ArgumentError("Input needs a shape, e.g. Input(shape=(784,))")
        self.shape = tuple(shape if shape is not None else input_shape or ())

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape)}


def Input(shape: Optional[Sequence[int]] = None, batch_size: Optional[int] = None,
          dtype: Optional[str] = None, name: Optional[str] = None,
          **kwargs: Any) -> InputLayer:
    """Keras's ``Input(shape=...)``: in a Sequential model, the layer that fixes the input
    width.

    Parameters
    ----------
    shape : tuple of int
        The shape of one sample, ``(n_features,)``.
    batch_size : int, optional
        Accepted for Keras's signature.
    dtype : str, optional
        As :class:`Layer`.
    name : str, optional
        ``"input_layer"``, ``"input_layer_1"``, ... by default.
    **kwargs
        As :class:`Layer`.

    Returns
    -------
    InputLayer
        The input layer, first in a Sequential.

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
    activation : str, function of :mod:`fusenn.keras.activations` or None, default=None
        None is linear.
    use_bias : bool, default=True
        Whether the layer adds a bias.
    kernel_initializer, bias_initializer : str or initialiser
        Keras's defaults, ``"glorot_uniform"`` and ``"zeros"``.
    kernel_regularizer, bias_regularizer : Regularizer, str or None, default=None
        ``"l1"``, ``"l2"``, ``"l1_l2"`` or a :mod:`fusenn.keras.regularizers` object; the
        penalty is added to the loss.
    activity_regularizer, kernel_constraint, bias_constraint, lora_rank : None
        Only None.
    **kwargs
        ``name``, ``input_shape``, ``input_dim``, ``dtype``, as :class:`Layer`.

    Raises
    ------
    UnsupportedFeatureError
        For ``activity_regularizer``, ``kernel_constraint``, ``bias_constraint`` or ``lora_rank``.

    Examples
    --------
    >>> Dense(3, use_bias=False).use_bias
    False
    """

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None,
                 bias_constraint: Any = None, lora_rank: Optional[int] = None,
                 **kwargs: Any) -> None:
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

    def _make(self, n_in: int, dtype: Any, rng: Any) -> list[Any]:
        if self.use_bias:
            return [_layers.Dense(n_in, self.units, self.activation, init=self.kernel_initializer,
                                  bias_init=self.bias_initializer, random_state=rng,
                                  dtype=dtype)]
        core: list[Any] = [_layers.DenseNoBias(n_in, self.units, init=self.kernel_initializer,
                                    random_state=rng, dtype=dtype)]
        if self.activation.name != "linear":
            core.append(_layers.Activation(self.activation, dtype=dtype))
        return core

    def _width(self, n_in: int) -> int:
        return self.units

    def _slots(self) -> list[tuple[Any, str]]:
        if not self.core:
            return []
        return [(self.core[0], "W")] + ([(self.core[0], "b")] if self.use_bias else [])

    @property
    def kernel(self) -> NDArray[Any]:
        """The kernel ``(n_in, units)`` (the fusenn layer's ``W`` itself; built models only)."""
        W: NDArray[Any] = self.core[0].W
        return W

    @property
    def bias(self) -> Optional[NDArray[Any]]:
        """The bias ``(units,)``, or None with ``use_bias=False`` (built models only)."""
        return self.core[0].b if self.use_bias else None

    def _penalties(self) -> list[tuple[Any, Any, str]]:
        out: list[tuple[Any, Any, str]] = []
        if self.kernel_regularizer is not None:
            out.append((self.kernel_regularizer, self.core[0], "W"))
        if self.bias_regularizer is not None and self.use_bias:
            out.append((self.bias_regularizer, self.core[0], "b"))
        return out

    def get_config(self) -> dict[str, Any]:
        reg: Callable[[Any], Any] = (lambda r: None if r is None else r.get_config())
        return {**super().get_config(), "units": self.units,
                "activation": _activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_regularizer": reg(self.kernel_regularizer),
                "bias_regularizer": reg(self.bias_regularizer)}


class Dropout(Layer):
    """Keras's ``Dropout(rate, seed=None)``: inverted dropout in training, identity otherwise.

    Parameters
    ----------
    rate : float in [0, 1)
        The fraction of inputs zeroed while training (the others are scaled by
        ``1 / (1 - rate)``).
    noise_shape : None
        Only None.
    seed : int, optional
        Seed of the layer's own generator; by default the model's generator draws.
    **kwargs
        ``name``, ``input_shape``, ``input_dim``, ``dtype``, as :class:`Layer`.

    Raises
    ------
    fusenn.errors.ArgumentError
        For a rate outside [0, 1).
    """

    def __init__(self, rate: float, noise_shape: Any = None, seed: Optional[int] = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _no("Dropout(noise_shape=...)", noise_shape)
        if not 0.0 <= float(rate) < 1.0:
            raise ArgumentError(f"Dropout rate must be in [0, 1), got {rate!r}")
        self.rate, self.seed = float(rate), seed

    def _make(self, n_in: int, dtype: Any, rng: Any) -> list[Any]:
        return [_layers.Dropout(self.rate, random_state=rng if self.seed is None else self.seed,
                                dtype=dtype)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class BatchNormalization(Layer):
    """Keras's ``BatchNormalization(momentum=0.99, epsilon=1e-3)``.

    Keras's ``momentum`` is the weight of the old moving statistic (fusenn's BatchNorm takes
    ``1 - momentum``). Weights in Keras's order: gamma, beta, moving_mean, moving_variance
    (the last two not trained).

    Parameters
    ----------
    axis : int, default=-1
        Only the feature axis (-1 or 1).
    momentum : float in [0, 1), default=0.99
        The weight of the old moving statistic.
    epsilon : float, default=1e-3
        Added to the variance.
    center, scale : bool, default=True
        Only True (beta and gamma are learnt).
    **kwargs
        ``name``, ``input_shape``, ``input_dim``, ``dtype``, as :class:`Layer`.

    Raises
    ------
    UnsupportedFeatureError
        For another axis, ``center=False`` or ``scale=False``.
    fusenn.errors.ArgumentError
        For a momentum outside [0, 1).
    """

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if axis not in (-1, 1):
            raise unsupported(f"BatchNormalization(axis={axis!r})", "MLP features are axis -1")
        _no("BatchNormalization(center=False)", center, True)
        _no("BatchNormalization(scale=False)", scale, True)
        if not 0.0 <= float(momentum) < 1.0:
            raise ArgumentError(f"BatchNormalization momentum must be in [0, 1), got {momentum!r}")
        self.momentum, self.epsilon = float(momentum), float(epsilon)

    def _make(self, n_in: int, dtype: Any, rng: Any) -> list[Any]:
        return [_layers.BatchNorm(n_in, momentum=1.0 - self.momentum, eps=self.epsilon,
                                  dtype=dtype)]

    def _slots(self) -> list[tuple[Any, str]]:
        if not self.core:
            return []
        bn = self.core[0]
        return [(bn, "gamma"), (bn, "beta"), (bn, "running_mean"), (bn, "running_var")]

    def _n_trainable(self) -> int:
        return 2 * int(self.n_in or 0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


class Activation(Layer):
    """Keras's ``Activation(activation)``: an activation function as a layer.

    Parameters
    ----------
    activation : str or function of :mod:`fusenn.keras.activations`
        The activation.
    **kwargs
        ``name``, ``input_shape``, ``input_dim``, ``dtype``, as :class:`Layer`.
    """

    def __init__(self, activation: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = _activations.get(activation)

    def _make(self, n_in: int, dtype: Any, rng: Any) -> list[Any]:
        return [_layers.Activation(self.activation, dtype=dtype)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                "activation": _activations.serialize(self.activation)}


class ReLU(Activation):
    """Keras's ``ReLU()``; ``negative_slope > 0`` makes it a leaky ReLU.

    Parameters
    ----------
    max_value : None
        Only None.
    negative_slope : float, default=0.0
        The slope below 0.
    threshold : float, default=0.0
        Only 0.
    **kwargs
        ``name``, ``input_shape``, ``input_dim``, ``dtype``, as :class:`Layer`.
    """

    def __init__(self, max_value: Optional[float] = None, negative_slope: float = 0.0,
                 threshold: float = 0.0, **kwargs: Any) -> None:
        _no("ReLU(max_value=...)", max_value)
        if threshold != 0.0:
            raise unsupported("ReLU(threshold=...)")
        super().__init__("relu", **kwargs)
        if negative_slope:
            from .. import activations as _acts

            self.activation = _acts.get("leaky_relu", alpha=float(negative_slope))
        self.negative_slope = float(negative_slope)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "negative_slope": self.negative_slope,
                **({"input_dim": self.input_dim} if self.input_dim else {})}


class LeakyReLU(Activation):
    """Keras's ``LeakyReLU(negative_slope=0.3)`` (Keras 2's ``alpha=`` is accepted too).

    Parameters
    ----------
    negative_slope : float, default=0.3
        The slope below 0.
    alpha : float, optional
        Keras 2's name of ``negative_slope``; wins when given.
    **kwargs
        ``name``, ``input_shape``, ``input_dim``, ``dtype``, as :class:`Layer`.
    """

    def __init__(self, negative_slope: float = 0.3, alpha: Optional[float] = None,
                 **kwargs: Any) -> None:
        from .. import activations as _acts

        super().__init__("linear", **kwargs)
        self.negative_slope = float(negative_slope if alpha is None else alpha)
        self.activation = _acts.get("leaky_relu", alpha=self.negative_slope)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "negative_slope": self.negative_slope,
                **({"input_dim": self.input_dim} if self.input_dim else {})}


class ELU(Activation):
    """Keras's ``ELU(alpha=1.0)``.

    Parameters
    ----------
    alpha : float, default=1.0
        ``alpha (exp(x) - 1)`` below 0.
    **kwargs
        ``name``, ``input_shape``, ``input_dim``, ``dtype``, as :class:`Layer`.
    """

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        from .. import activations as _acts

        super().__init__("linear", **kwargs)
        self.alpha = float(alpha)
        self.activation = _acts.get("elu", alpha=self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "alpha": self.alpha,
                **({"input_dim": self.input_dim} if self.input_dim else {})}


class Softmax(Activation):
    """Keras's ``Softmax(axis=-1)`` over the features.

    Parameters
    ----------
    axis : int, default=-1
        Only the feature axis (-1 or 1).
    **kwargs
        ``name``, ``input_shape``, ``input_dim``, ``dtype``, as :class:`Layer`.
    """

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        if axis not in (-1, 1):
            raise unsupported(f"Softmax(axis={axis!r})", "MLP features are axis -1")
        super().__init__("softmax", **kwargs)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, **({"input_dim": self.input_dim} if self.input_dim else {})}


class PReLU(Layer):
    """Keras's ``PReLU()``: a learnt slope per unit for negative inputs, starting at
    ``alpha_initializer`` (Keras's default: zeros).

    Parameters
    ----------
    alpha_initializer : str or initialiser, default="zeros"
        A constant initial slope (``"zeros"``, ``"ones"``, ``Constant(v)``).
    alpha_regularizer, alpha_constraint, shared_axes : None
        Only None.
    **kwargs
        ``name``, ``input_shape``, ``input_dim``, ``dtype``, as :class:`Layer`.

    Raises
    ------
    UnsupportedFeatureError
        For a random initial slope or an argument that must be None.
    """

    def __init__(self, alpha_initializer: Any = "zeros", alpha_regularizer: Any = None,
                 alpha_constraint: Any = None, shared_axes: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _no("PReLU(alpha_regularizer=...)", alpha_regularizer)
        _no("PReLU(alpha_constraint=...)", alpha_constraint)
        _no("PReLU(shared_axes=...)", shared_axes)
        init = _initializers.get(alpha_initializer)
        if not hasattr(init, "value") and type(init).__name__ != "Zeros":
            raise unsupported(f"PReLU(alpha_initializer={alpha_initializer!r})",
                              "use a constant initial slope")
        self.alpha_init = float(getattr(init, "value", 0.0))

    def _make(self, n_in: int, dtype: Any, rng: Any) -> list[Any]:
        return [_layers.PReLU(n_in, init=self.alpha_init, dtype=dtype)]

    def _slots(self) -> list[tuple[Any, str]]:
        return [(self.core[0], "alpha")] if self.core else []

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                "alpha_initializer": {"class_name": "Constant",
                                      "config": {"value": self.alpha_init}}}


class Flatten(Layer):
    """Keras's ``Flatten()``: samples of several axes become rows; the input of an MLP.

    Parameters
    ----------
    name, input_shape, input_dim, dtype, trainable, batch_input_shape : optional
        As :class:`Layer`.
    **kwargs
        As :class:`Layer`.

    Examples
    --------
    >>> from fusenn.keras.models import Sequential
    >>> model = Sequential([Flatten(input_shape=(2, 3)), Dense(4)])
    >>> model.input_shape
    (None, 6)
    """


__all__ = ["Layer", "InputLayer", "Input", "Dense", "Dropout", "BatchNormalization",
           "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "PReLU", "Flatten", "LAYERS"]

#: The layers of the face, by Keras's class name (for loading saved models).
LAYERS = {cls.__name__: cls for cls in (InputLayer, Dense, Dropout, BatchNormalization,
                                         Activation, ReLU, LeakyReLU, ELU, Softmax, PReLU,
                                         Flatten)}

__all__ = ["Layer", *LAYERS, "Input"]
__getattr__ = missing_attribute(__name__, tuple(LAYERS) + ("Input",))
