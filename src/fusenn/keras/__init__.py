"""fusenn's Keras face: Keras scripts for multi-layer perceptrons run on fusenn with the import
changed (``from tensorflow.keras.models import Sequential`` becomes
``from fusenn.keras.models import Sequential``).

The modules mirror Keras's: :mod:`~fusenn.keras.models` (``Sequential``, ``load_model``),
:mod:`~fusenn.keras.layers`, :mod:`~fusenn.keras.optimizers`, :mod:`~fusenn.keras.losses`,
:mod:`~fusenn.keras.metrics`, :mod:`~fusenn.keras.callbacks`,
:mod:`~fusenn.keras.initializers`, :mod:`~fusenn.keras.regularizers`,
:mod:`~fusenn.keras.activations` and :mod:`~fusenn.keras.utils`. It needs no third-party
library. Anything outside the subset (a ``Conv2D``, the functional ``Model``, a custom
``train_step``) raises :class:`fusenn.errors.UnsupportedFeatureError` naming the feature.

>>> from fusenn.keras import Sequential, layers
>>> model = Sequential([layers.Input(shape=(2,)), layers.Dense(16, activation="relu"),
...                     layers.Dense(2, activation="softmax")])
>>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
...               metrics=["accuracy"])
>>> model.output_shape
(None, 2)
"""
from typing import Any

from . import (activations, callbacks, initializers, layers, losses, metrics, models,
               optimizers, regularizers, utils)
from ._common import missing_attribute
from .layers import Input
from .models import Sequential, load_model

__all__ = ["Sequential", "Input", "load_model", "activations", "callbacks", "initializers",
           "layers", "losses", "metrics", "models", "optimizers", "regularizers", "utils"]

_getattr = missing_attribute(__name__, __all__)


def __getattr__(name: str) -> Any:
    if name == "Model":
        from ._common import unsupported

        from ..errors import UnsupportedNameError

        raise unsupported("the functional API (keras.Model)", "use Sequential",
                          UnsupportedNameError)
    return _getattr(name)
