"""Keras's optimisers (``keras.optimizers``) with Keras's names and defaults, on fusenn's
optimisers.

=========  ==============================================================================
class      Keras's arguments (defaults)
=========  ==============================================================================
SGD        learning_rate=0.01, momentum=0.0, nesterov=False
Adam       learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7
AdamW      as Adam, weight_decay=0.004
RMSprop    learning_rate=0.001, rho=0.9, epsilon=1e-7
Adagrad    learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7
=========  ==============================================================================

Each is a :class:`fusenn.optim.Optimizer` (so a fusenn Trainer takes it too), and the names
``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``, ``"adagrad"`` give these defaults.
``weight_decay`` is Keras's decoupled decay (``w -= learning_rate * weight_decay * w`` before
each step, on every weight), and with it, or with a layer's regulariser, training runs on
fusenn's per-batch path. Keras's SGD momentum (``v = m v - lr g; w += v``) is the same update
as fusenn's with a constant rate; Adam and RMSprop add ``epsilon`` as PyTorch does, which
differs from Keras by terms of order ``epsilon``.

>>> opt = Adam(learning_rate=0.01)
>>> opt.learning_rate, opt.beta_1, opt.epsilon
(0.01, 0.9, 1e-07)
>>> get("rmsprop").learning_rate
0.001
"""
from __future__ import annotations

from typing import Any, Optional, Union

from numpy.typing import NDArray

from ..errors import ArgumentError, ArgumentTypeError
from .. import optim as _optim
from ._common import missing_attribute, unsupported


class Optimizer:
    """Mixin of the face's optimisers: Keras's ``learning_rate``, decoupled ``weight_decay``,
    and the step on the per-batch path that adds the layers' regulariser gradients."""

    _keras_args: tuple[str, ...] = ()
    lr: float

    def _keras_setup(self, name: Optional[str], weight_decay: Optional[float],
                     kwargs: dict[str, Any]) -> None:
        for key in ("clipnorm", "clipvalue", "global_clipnorm"):
            if kwargs.pop(key, None) is not None:
                raise unsupported(f"gradient clipping ({key}=...)")
        if kwargs.pop("use_ema", False):
            raise unsupported("use_ema=True")
        for key in ("ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
                    "gradient_accumulation_steps"):
            if kwargs.pop(key, None) is not None:
                raise unsupported(f"the optimizer argument {key}")
        if kwargs:
            raise ArgumentTypeError(f"{type(self).__name__} got unexpected argument(s) "
                                    f"{', '.join(sorted(kwargs))}")
        if weight_decay is not None and not weight_decay >= 0:
            raise ArgumentError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.decay = float(weight_decay or 0.0)
        self.name = name or type(self).__name__.lower()
        # [(regularizer, fusenn layer, attribute)], set by the model
        self.penalties: list[tuple[Any, Any, str]] = []

    @property
    def learning_rate(self) -> float:
        """The learning rate (Keras's name for fusenn's ``lr``); settable, as callbacks do.

        Raises
        ------
        fusenn.errors.ArgumentError
            When set to a value that is not a positive number.
        """
        return self.lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        from .._validation import check_positive

        self.lr = check_positive(value, "learning_rate")

    @property
    def needs_python_step(self) -> bool:
        """Whether a step needs this Python code (decay or penalties): the per-batch path."""
        return bool(self.decay or self.penalties)

    def _step(self, params: NDArray[Any], grads: NDArray[Any]) -> None:
        # the hook of both the public step (after its checks) and the Trainer's per-batch path
        for reg, layer, attr in self.penalties:
            reg.add_gradient(getattr(layer, attr), getattr(layer, "d" + attr))
        if self.decay:
            params *= params.dtype.type(1.0 - self.lr * self.decay)
        super()._step(params, grads)  # type: ignore[misc]

    def keras_config(self) -> dict[str, Any]:
        """The optimiser as Keras serialises it, for saving.

        Returns
        -------
        dict
            ``{"class_name": ..., "config": {...}}``, what :func:`get` takes back.
        """
        return {"class_name": type(self).__name__,
                "config": {"learning_rate": self.lr, "weight_decay": self.decay or None,
                           **{k: getattr(self, k) for k in self._keras_args}}}


def _learning_rate(learning_rate: Optional[float], lr: Optional[float],
                   default: float) -> float:
    if lr is not None:  # Keras 2's spelling
        learning_rate = lr
    if learning_rate is None:
        learning_rate = default
    if not isinstance(learning_rate, (int, float)) or isinstance(learning_rate, bool):
        raise unsupported(f"a learning-rate schedule ({type(learning_rate).__name__})",
                          "give a number, and a callback such as ReduceLROnPlateau")
    return float(learning_rate)


class SGD(Optimizer, _optim.SGD):
    """Keras's ``SGD(learning_rate=0.01, momentum=0.0, nesterov=False)``.

    Parameters
    ----------
    learning_rate : float, default=0.01
        The step size (a number; schedules are callbacks here).
    momentum : float >= 0, default=0.0
        Keras's momentum (``v = momentum v - learning_rate g; w += v``).
    nesterov : bool, default=False
        Nesterov's momentum.
    weight_decay : float >= 0 or None, default=None
        Keras's decoupled weight decay (``w -= learning_rate * weight_decay * w`` before each
        step); training then runs on fusenn's per-batch path.
    name : str, optional
        The optimiser's name (its class name in lower case by default).
    lr : float, optional
        Keras 2's spelling of ``learning_rate``; wins when given.
    **kwargs
        Keras's other arguments: gradient clipping, EMA, loss scaling and accumulation
        raise :class:`fusenn.errors.UnsupportedFeatureError`, unknown names
        :class:`fusenn.errors.ArgumentTypeError`.

    Raises
    ------
    UnsupportedFeatureError
        For a learning-rate schedule object or a Keras feature the face does not have.
    fusenn.errors.ArgumentError
        For a learning rate or weight decay out of range.

    Examples
    --------
    >>> SGD(learning_rate=0.1, momentum=0.9).keras_config()["config"]["momentum"]
    0.9
    """

    _keras_args = ("momentum", "nesterov")

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: Optional[float] = None,
                 name: Optional[str] = None, lr: Optional[float] = None,
                 **kwargs: Any) -> None:
        _optim.SGD.__init__(self, _learning_rate(learning_rate, lr, 0.01), momentum=momentum,
                            nesterov=nesterov and momentum > 0)
        self._keras_setup(name, weight_decay, kwargs)
        self.nesterov = bool(nesterov)


class Adam(Optimizer, _optim.Adam):
    """Keras's ``Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)``.

    Parameters
    ----------
    learning_rate : float, default=0.001
        The step size.
    beta_1, beta_2 : float in [0, 1), default=0.9, 0.999
        The decay rates of the first and second moment estimates.
    epsilon : float > 0, default=1e-7
        Added to the root of the second moment (as PyTorch adds it).
    amsgrad : bool, default=False
        Only False.
    weight_decay : float >= 0 or None, default=None
        Keras's decoupled weight decay (``w -= learning_rate * weight_decay * w`` before each
        step); training then runs on fusenn's per-batch path.
    name : str, optional
        The optimiser's name (its class name in lower case by default).
    lr : float, optional
        Keras 2's spelling of ``learning_rate``; wins when given.
    **kwargs
        Keras's other arguments: gradient clipping, EMA, loss scaling and accumulation
        raise :class:`fusenn.errors.UnsupportedFeatureError`, unknown names
        :class:`fusenn.errors.ArgumentTypeError`.

    Raises
    ------
    UnsupportedFeatureError
        For a learning-rate schedule object or a Keras feature the face does not have.
    fusenn.errors.ArgumentError
        For a learning rate or weight decay out of range.
    """

    _keras_args = ("beta_1", "beta_2", "epsilon")
    _default_decay: Optional[float] = None

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False,
                 weight_decay: Optional[float] = None, name: Optional[str] = None,
                 lr: Optional[float] = None, **kwargs: Any) -> None:
        if amsgrad:
            raise unsupported("Adam(amsgrad=True)")
        _optim.Adam.__init__(self, _learning_rate(learning_rate, lr, 0.001), beta1=beta_1,
                             beta2=beta_2, eps=epsilon)
        self._keras_setup(name, weight_decay if weight_decay is not None
                          else self._default_decay, kwargs)

    @property
    def beta_1(self) -> float:
        """Keras's name of ``beta1``, the decay rate of the first moment."""
        return float(self.beta1)

    @property
    def beta_2(self) -> float:
        """Keras's name of ``beta2``, the decay rate of the second moment."""
        return float(self.beta2)

    @property
    def epsilon(self) -> float:
        """Keras's name of ``eps``."""
        return float(self.eps)


class AdamW(Adam):
    """Keras's ``AdamW``: Adam with decoupled ``weight_decay=0.004``.

    Parameters
    ----------
    learning_rate : float, default=0.001
        The step size.
    weight_decay : float >= 0, default=0.004
        The decoupled weight decay.
    beta_1, beta_2 : float in [0, 1), default=0.9, 0.999
        The decay rates of the first and second moment estimates.
    epsilon : float > 0, default=1e-7
        Added to the root of the second moment (as PyTorch adds it).
    amsgrad : bool, default=False
        Only False.
    name : str, optional
        As :class:`Adam`.
    lr : float, optional
        As :class:`Adam`.
    **kwargs
        As :class:`Adam`.
    """

    _default_decay = 0.004

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, name: Optional[str] = None,
                 lr: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, name,
                         lr, **kwargs)


class RMSprop(Optimizer, _optim.RMSprop):
    """Keras's ``RMSprop(learning_rate=0.001, rho=0.9, epsilon=1e-7)``.

    Parameters
    ----------
    learning_rate : float, default=0.001
        The step size.
    rho : float in [0, 1), default=0.9
        The decay rate of the mean square of the gradients.
    momentum : float, default=0.0
        Only 0.
    epsilon : float > 0, default=1e-7
        Added to the root mean square.
    centered : bool, default=False
        Only False.
    weight_decay : float >= 0 or None, default=None
        Keras's decoupled weight decay (``w -= learning_rate * weight_decay * w`` before each
        step); training then runs on fusenn's per-batch path.
    name : str, optional
        The optimiser's name (its class name in lower case by default).
    lr : float, optional
        Keras 2's spelling of ``learning_rate``; wins when given.
    **kwargs
        Keras's other arguments: gradient clipping, EMA, loss scaling and accumulation
        raise :class:`fusenn.errors.UnsupportedFeatureError`, unknown names
        :class:`fusenn.errors.ArgumentTypeError`.

    Raises
    ------
    UnsupportedFeatureError
        For a learning-rate schedule object or a Keras feature the face does not have.
    fusenn.errors.ArgumentError
        For a learning rate or weight decay out of range.
    """

    _keras_args = ("rho", "epsilon")

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False,
                 weight_decay: Optional[float] = None, name: Optional[str] = None,
                 lr: Optional[float] = None, **kwargs: Any) -> None:
        if momentum:
            raise unsupported("RMSprop(momentum=...)")
        if centered:
            raise unsupported("RMSprop(centered=True)")
        _optim.RMSprop.__init__(self, _learning_rate(learning_rate, lr, 0.001), rho=rho,
                                eps=epsilon)
        self._keras_setup(name, weight_decay, kwargs)

    @property
    def epsilon(self) -> float:
        """Keras's name of ``eps``."""
        return float(self.eps)


class Adagrad(Optimizer, _optim.Adagrad):
    """Keras's ``Adagrad(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7)``.

    Parameters
    ----------
    learning_rate : float, default=0.001
        The step size.
    initial_accumulator_value : float >= 0, default=0.1
        Where the accumulator of squared gradients starts.
    epsilon : float > 0, default=1e-7
        Added to the root of the accumulator.
    weight_decay : float >= 0 or None, default=None
        Keras's decoupled weight decay (``w -= learning_rate * weight_decay * w`` before each
        step); training then runs on fusenn's per-batch path.
    name : str, optional
        The optimiser's name (its class name in lower case by default).
    lr : float, optional
        Keras 2's spelling of ``learning_rate``; wins when given.
    **kwargs
        Keras's other arguments: gradient clipping, EMA, loss scaling and accumulation
        raise :class:`fusenn.errors.UnsupportedFeatureError`, unknown names
        :class:`fusenn.errors.ArgumentTypeError`.

    Raises
    ------
    UnsupportedFeatureError
        For a learning-rate schedule object or a Keras feature the face does not have.
    fusenn.errors.ArgumentError
        For a learning rate or weight decay out of range.
    """

    _keras_args = ("initial_accumulator_value", "epsilon")

    def __init__(self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, weight_decay: Optional[float] = None,
                 name: Optional[str] = None, lr: Optional[float] = None,
                 **kwargs: Any) -> None:
        _optim.Adagrad.__init__(self, _learning_rate(learning_rate, lr, 0.001), eps=epsilon)
        if not initial_accumulator_value >= 0:
            raise ArgumentError(f"initial_accumulator_value must be >= 0, got "
                                f"{initial_accumulator_value!r}")
        self.initial_accumulator_value = float(initial_accumulator_value)
        self._keras_setup(name, weight_decay, kwargs)

    @property
    def epsilon(self) -> float:
        """Keras's name of ``eps``."""
        return float(self.eps)

    def setup(self, n_params: int, dtype: Any) -> None:
        """Allocate the state for ``n_params`` parameters, the accumulator at its start value.

        Parameters
        ----------
        n_params : int
            The number of parameters of the model.
        dtype : numpy dtype
            The model's dtype.
        """
        before = self.state
        super().setup(n_params, dtype)
        if self.state is not before and self.state is not None:
            self.state[0].fill(self.initial_accumulator_value)


__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get"]

_CLASSES = {cls.__name__: cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad)}


def get(identifier: Union[str, dict[str, Any], _optim.Optimizer]) -> _optim.Optimizer:
    """An optimiser from a Keras name (with Keras's defaults), a config dict or an optimiser.

    Parameters
    ----------
    identifier : str, dict or fusenn.optim.Optimizer
        ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``, ``"adagrad"`` (case-insensitive), a
        config ``{"class_name": ..., "config": {...}}``, or an optimiser (a face optimiser or
        any :class:`fusenn.optim.Optimizer`, returned as it is).

    Returns
    -------
    fusenn.optim.Optimizer
        The optimiser.

    Raises
    ------
    UnsupportedFeatureError
        For an optimiser outside the face (``"nadam"``, ``"ftrl"``, ``"lion"``, ...).
    """
    if isinstance(identifier, _optim.Optimizer):
        return identifier
    if isinstance(identifier, dict):
        cfg = {k: v for k, v in identifier.get("config", {}).items() if v is not None}
        return _CLASSES[identifier["class_name"]](**cfg)
    if isinstance(identifier, str):
        for name, cls in _CLASSES.items():
            if identifier.strip().lower() == name.lower():
                return cls()
    raise unsupported(f"the optimizer {identifier!r}",
                      f"valid names: {', '.join(n.lower() for n in _CLASSES)}")


__all__ = ["Optimizer", *_CLASSES, "get"]
__getattr__ = missing_attribute(__name__, tuple(_CLASSES))
