"""Keras's activation functions (``keras.activations``), on fusenn's activation table.

Each function takes an array and returns the activation's value, as Keras's do; layers accept
the function or its name (``Dense(8, activation="relu")`` or ``activation=relu``).

>>> import numpy as np
>>> relu(np.array([-1.0, 2.0])).tolist()
[0.0, 2.0]
>>> get("swish").name
'silu'
"""
from __future__ import annotations

import numpy as np

from ..errors import ArgumentTypeError
from .. import activations as _acts
from ._common import missing_attribute, unsupported

#: Keras name -> (fusenn name, parameters). Keras's defaults where they differ from fusenn's
#: (gelu is exact by default in Keras 3; its function ``leaky_relu`` has slope 0.2).
KERAS_NAMES = {
    "linear": ("linear", {}),
    "relu": ("relu", {}),
    "sigmoid": ("sigmoid", {}),
    "tanh": ("tanh", {}),
    "softmax": ("softmax", {}),
    "elu": ("elu", {"alpha": 1.0}),
    "selu": ("selu", {}),
    "softplus": ("softplus", {}),
    "softsign": ("softsign", {}),
    "silu": ("silu", {}),
    "swish": ("silu", {}),
    "gelu": ("gelu", {"approximate": "none"}),
    "leaky_relu": ("leaky_relu", {"alpha": 0.2}),
    "hard_sigmoid": ("hard_sigmoid", {}),
    "hard_silu": ("hard_swish", {}),
    "hard_swish": ("hard_swish", {}),
    "mish": ("mish", {}),
    "log_sigmoid": ("log_sigmoid", {}),
    "tanh_shrink": ("tanh_shrink", {}),
    "soft_shrink": ("soft_shrink", {}),
    "hard_shrink": ("hard_shrink", {}),
    "hard_tanh": ("hard_tanh", {}),
}


def get(identifier):
    """The fusenn activation for a Keras activation name, function or None (linear).

    Parameters
    ----------
    identifier : str, callable of this module, fusenn Activation or None

    Returns
    -------
    fusenn.activations.Activation

    Raises
    ------
    UnsupportedFeatureError
        For a Keras activation the face does not have (``"exponential"``, a custom function).
    """
    if identifier is None:
        return _acts.get("linear")
    if isinstance(identifier, _acts.Activation):
        return identifier
    if callable(identifier):
        name = getattr(identifier, "_keras_name", None)
        if name is None:
            raise unsupported(f"the custom activation function {identifier!r}",
                              "use a name from keras.activations")
        identifier = name
    if not isinstance(identifier, str):
        raise ArgumentTypeError(f"activation must be a name or a function, got "
                                f"{type(identifier).__name__}")
    key = identifier.strip().lower()
    if key not in KERAS_NAMES:
        raise unsupported(f"the activation {identifier!r}",
                          f"valid names: {', '.join(sorted(KERAS_NAMES))}")
    name, params = KERAS_NAMES[key]
    return _acts.get(name, **params)


def serialize(activation):
    """The Keras name of a fusenn activation made by :func:`get` (for the summary and saving)."""
    for key, (name, params) in KERAS_NAMES.items():
        if activation.name == name and dict(activation.params) == params:
            return key
    return activation.name


def _make(key):
    def f(x):
        x = np.asarray(x)
        return get(key).forward(x if x.ndim == 2 else np.atleast_2d(x)).reshape(x.shape)

    f.__name__ = f.__qualname__ = key
    f.__doc__ = f"Keras's ``{key}`` activation (fusenn's ``{KERAS_NAMES[key][0]}``)."
    f._keras_name = key
    return f


for _key in KERAS_NAMES:
    globals()[_key] = _make(_key)
del _key

__getattr__ = missing_attribute(__name__, KERAS_NAMES)
