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

from typing import Any, Callable, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import ArgumentTypeError
from .. import activations as _acts
from ._common import missing_attribute, unsupported

#: Keras name -> (fusenn name, parameters). Keras's defaults where they differ from fusenn's
#: (gelu is exact by default in Keras 3; its function ``leaky_relu`` has slope 0.2).
KERAS_NAMES: dict[str, tuple[str, dict[str, Any]]] = {
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


#: What :func:`get` accepts: a Keras name, a function of this module, an activation or None.
ActivationLike = Union[str, Callable[..., Any], "_acts.Activation", None]


def get(identifier: ActivationLike) -> _acts.Activation:
    """The fusenn activation for a Keras activation name, function or None (linear).

    Parameters
    ----------
    identifier : str, callable of this module, fusenn Activation or None
        A Keras name (``"relu"``, ``"swish"``, ...; case-insensitive), one of this module's
        functions, a fusenn activation (returned as it is) or None for ``"linear"``.

    Returns
    -------
    fusenn.activations.Activation
        The activation, with Keras's default parameters where they differ from fusenn's.

    Raises
    ------
    UnsupportedFeatureError
        For a Keras activation the face does not have (``"exponential"``, a custom function).
    fusenn.errors.ArgumentTypeError
        For anything that is neither a name nor a function.

    Examples
    --------
    >>> get("leaky_relu").params["alpha"]
    0.2
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


def serialize(activation: _acts.Activation) -> str:
    """The Keras name of a fusenn activation made by :func:`get` (for the summary and saving).

    Parameters
    ----------
    activation : fusenn.activations.Activation
        An activation, usually made by :func:`get`.

    Returns
    -------
    str
        Its Keras name, or fusenn's name for an activation Keras has no name for.

    Examples
    --------
    >>> serialize(get("swish"))
    'silu'
    """
    for key, (name, params) in KERAS_NAMES.items():
        if activation.name == name and dict(activation.params) == params:
            return key
    return activation.name


def _make(key: str) -> Callable[[ArrayLike], NDArray[Any]]:
    def f(x: ArrayLike) -> NDArray[Any]:
        x = np.asarray(x)
        out: NDArray[Any] = get(key).forward(x if x.ndim == 2 else np.atleast_2d(x))
        return out.reshape(x.shape)

    f.__name__ = f.__qualname__ = key
    f.__doc__ = f"""Keras's ``{key}`` activation (fusenn's ``{KERAS_NAMES[key][0]}``).

    Parameters
    ----------
    x : array_like
        Pre-activations, any shape (softmax: along the last axis).

    Returns
    -------
    ndarray
        The activation's value, elementwise, of the shape of ``x``.
    """
    f._keras_name = key  # type: ignore[attr-defined]
    return f


for _key in KERAS_NAMES:
    globals()[_key] = _make(_key)
del _key

__all__ = ["get", "serialize", *KERAS_NAMES]

__getattr__ = missing_attribute(__name__, KERAS_NAMES)
