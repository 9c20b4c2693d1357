"""A Keras-style face: ``Sequential``, ``compile``, ``fit``, ``evaluate``, ``predict``.

>>> import fusenn as fn
>>> from fusenn.keras import Sequential, layers
>>> model = Sequential([layers.Dense(16, activation="relu", input_shape=(2,)),
...                     layers.Dense(2, activation="softmax")])
>>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
...               metrics=["accuracy"])

Layers may leave their input width open; it is taken from ``input_shape``/``input_dim`` or from
the first data the model sees. As in Keras, ``predict`` returns the network's outputs
(probabilities for a softmax output), not labels. Underneath it is a :class:`fusenn.Sequential`
(``model.network``) trained by a :class:`fusenn.Trainer`.
"""
from __future__ import annotations

import types

import numpy as np

from . import layers as _layers
from .model import Sequential as _Network
from .trainer import Trainer


class _Spec:
    """A layer whose input width is not known yet."""

    def __init__(self, input_shape=None, input_dim=None):
        if input_shape is not None:
            input_dim = int(np.prod(input_shape))
        self.input_dim = input_dim

    def make(self, n_in, dtype):  # pragma: no cover - abstract
        raise NotImplementedError


class Dense(_Spec):
    """``Dense(units, activation=None, use_bias=True, kernel_initializer="glorot_uniform")``."""

    def __init__(self, units, activation=None, kernel_initializer="glorot_uniform",
                 input_shape=None, input_dim=None):
        super().__init__(input_shape, input_dim)
        self.units, self.activation, self.kernel_initializer = units, activation, \
            kernel_initializer

    def make(self, n_in, dtype):
        return _layers.Dense(n_in, self.units, self.activation, init=self.kernel_initializer,
                             dtype=dtype)


class Dropout(_Spec):
    def __init__(self, rate, seed=None, input_shape=None):
        super().__init__(input_shape)
        self.rate, self.seed = rate, seed

    def make(self, n_in, dtype):
        return _layers.Dropout(self.rate, random_state=self.seed, dtype=dtype)


class Activation(_Spec):
    def __init__(self, activation, input_shape=None, **params):
        super().__init__(input_shape)
        self.activation, self.params = activation, params

    def make(self, n_in, dtype):
        return _layers.Activation(self.activation, dtype=dtype, **self.params)


class BatchNormalization(_Spec):
    """Keras' ``momentum`` is the weight of the old running value (0.99)."""

    def __init__(self, momentum=0.99, epsilon=1e-3, input_shape=None):
        super().__init__(input_shape)
        self.momentum, self.epsilon = momentum, epsilon

    def make(self, n_in, dtype):
        return _layers.BatchNorm(n_in, momentum=1.0 - self.momentum, eps=self.epsilon,
                                 dtype=dtype)


layers = types.SimpleNamespace(Dense=Dense, Dropout=Dropout, Activation=Activation,
                               BatchNormalization=BatchNormalization)


class Sequential:
    """Keras-style model. ``dtype`` is float32 unless given."""

    def __init__(self, layers=None, dtype="float32"):
        self._specs = list(layers or [])
        self.dtype = dtype
        self.network = None
        self._compiled = None
        self.history = None

    def add(self, layer):
        if self.network is not None:
            raise RuntimeError("layers cannot be added after the model is built")
        self._specs.append(layer)

    def build(self, input_dim=None):
        if self.network is not None:
            return self.network
        if not self._specs:
            raise ValueError("the model has no layers")
        first = self._specs[0]
        n_in = input_dim if input_dim is not None else getattr(first, "input_dim", None)
        if n_in is None:
            raise ValueError("the input width is unknown: give input_shape to the first layer "
                             "or call fit/predict first")
        built = []
        for spec in self._specs:
            layer = spec.make(n_in, self.dtype) if isinstance(spec, _Spec) else spec
            n_in = layer.build(n_in)
            built.append(layer)
        self.network = _Network(built, dtype=self.dtype)
        return self.network

    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        if loss is None:
            raise ValueError("compile needs a loss, e.g. 'sparse_categorical_crossentropy'")
        self._compiled = {"optimizer": optimizer, "loss": loss,
                          "metrics": [m for m in (metrics or []) if m in ("accuracy", "acc")]}

    def _trainer(self, batch_size=32, shuffle=True, callbacks=(), verbose=0, random_state=None):
        if self._compiled is None:
            raise RuntimeError("call compile(optimizer, loss) before fit/evaluate")
        metrics = ["accuracy"] if self._compiled["metrics"] else []
        return Trainer(self.network, loss=self._compiled["loss"],
                       optimizer=self._compiled["optimizer"], batch_size=batch_size,
                       shuffle=shuffle, callbacks=callbacks, metrics=metrics, verbose=verbose,
                       random_state=random_state)

    def fit(self, x, y, batch_size=32, epochs=1, verbose=0, callbacks=None,
            validation_split=None, validation_data=None, shuffle=True, random_state=None):
        self.build(np.shape(x)[1] if np.ndim(x) == 2 else None)
        if self._trainer_obj is None:
            self._trainer_obj = self._trainer(batch_size, shuffle, callbacks, verbose,
                                              random_state)
            # compile's optimiser string became an object: keep it across fit calls
            self._compiled["optimizer"] = self._trainer_obj.optimizer
        t = self._trainer_obj
        t.batch_size, t.shuffle, t.verbose = batch_size, shuffle, verbose
        t.callbacks = list(callbacks or [])
        self.history = t.fit(x, y, epochs=epochs, validation_data=validation_data,
                             validation_split=validation_split)
        return self.history

    _trainer_obj = None

    def evaluate(self, x, y, verbose=0):
        self.build(np.shape(x)[1] if np.ndim(x) == 2 else None)
        scores = self._trainer().evaluate(x, y)
        return [scores["loss"], scores["accuracy"]] if "accuracy" in scores else scores["loss"]

    def predict(self, x, batch_size=None, verbose=0):
        self.build(np.shape(x)[1] if np.ndim(x) == 2 else None)
        return self.network.forward(x) if batch_size is None else \
            np.concatenate([self.network.forward(x[i:i + batch_size])
                            for i in range(0, len(x), batch_size)])

    def summary(self, print_fn=print):
        return self.build().summary(print_fn)

    def get_weights(self):
        return self.build().get_weights()

    def set_weights(self, weights):
        self.build().set_weights(weights)

    def save(self, path):
        self.build().save(path)

    @property
    def layers(self):
        return self.build().layers
