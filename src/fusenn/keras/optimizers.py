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

from ..errors import ArgumentError, ArgumentTypeError
from .. import optim as _optim
from ._common import missing_attribute, unsupported


class Optimizer:
    """Mixin of the face's optimisers: Keras's ``learning_rate``, decoupled ``weight_decay``,
    and the step on the per-batch path that adds the layers' regulariser gradients."""

    _keras_args = ()

    def _keras_setup(self, name, weight_decay, kwargs):
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
        self.penalties = []  # [(regularizer, fusenn layer, attribute)], set by the model

    @property
    def learning_rate(self):
        return self.lr

    @learning_rate.setter
    def learning_rate(self, value):
        from .._validation import check_positive

        self.lr = check_positive(value, "learning_rate")

    @property
    def needs_python_step(self):
        """Whether a step needs this Python code (decay or penalties): the per-batch path."""
        return bool(self.decay or self.penalties)

    def _step(self, params, grads):
        # the hook of both the public step (after its checks) and the Trainer's per-batch path
        for reg, layer, attr in self.penalties:
            reg.add_gradient(getattr(layer, attr), getattr(layer, "d" + attr))
        if self.decay:
            params *= params.dtype.type(1.0 - self.lr * self.decay)
        super()._step(params, grads)

    def keras_config(self):
        return {"class_name": type(self).__name__,
                "config": {"learning_rate": self.lr, "weight_decay": self.decay or None,
                           **{k: getattr(self, k) for k in self._keras_args}}}


def _learning_rate(learning_rate, lr, default):
    if lr is not None:  # Keras 2's spelling
        learning_rate = lr
    if learning_rate is None:
        learning_rate = default
    if not isinstance(learning_rate, (int, float)) or isinstance(learning_rate, bool):
        raise unsupported(f"a learning-rate schedule ({type(learning_rate).__name__})",
                          "give a number, and a callback such as ReduceLROnPlateau")
    return float(learning_rate)


class SGD(Optimizer, _optim.SGD):
    """Keras's ``SGD(learning_rate=0.01, momentum=0.0, nesterov=False)``."""

    _keras_args = ("momentum", "nesterov")

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 name=None, lr=None, **kwargs):
        _optim.SGD.__init__(self, _learning_rate(learning_rate, lr, 0.01), momentum=momentum,
                            nesterov=nesterov and momentum > 0)
        self._keras_setup(name, weight_decay, kwargs)
        self.nesterov = bool(nesterov)


class Adam(Optimizer, _optim.Adam):
    """Keras's ``Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)``."""

    _keras_args = ("beta_1", "beta_2", "epsilon")
    _default_decay = None

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, weight_decay=None, name=None, lr=None, **kwargs):
        if amsgrad:
            raise unsupported("Adam(amsgrad=True)")
        _optim.Adam.__init__(self, _learning_rate(learning_rate, lr, 0.001), beta1=beta_1,
                             beta2=beta_2, eps=epsilon)
        self._keras_setup(name, weight_decay if weight_decay is not None
                          else self._default_decay, kwargs)

    beta_1 = property(lambda self: self.beta1)
    beta_2 = property(lambda self: self.beta2)
    epsilon = property(lambda self: self.eps)


class AdamW(Adam):
    """Keras's ``AdamW``: Adam with decoupled ``weight_decay=0.004``."""

    _default_decay = 0.004

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, name=None, lr=None, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, name,
                         lr, **kwargs)


class RMSprop(Optimizer, _optim.RMSprop):
    """Keras's ``RMSprop(learning_rate=0.001, rho=0.9, epsilon=1e-7)``."""

    _keras_args = ("rho", "epsilon")

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, weight_decay=None, name=None, lr=None, **kwargs):
        if momentum:
            raise unsupported("RMSprop(momentum=...)")
        if centered:
            raise unsupported("RMSprop(centered=True)")
        _optim.RMSprop.__init__(self, _learning_rate(learning_rate, lr, 0.001), rho=rho,
                                eps=epsilon)
        self._keras_setup(name, weight_decay, kwargs)

    epsilon = property(lambda self: self.eps)


class Adagrad(Optimizer, _optim.Adagrad):
    """Keras's ``Adagrad(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7)``:
    the accumulator of squared gradients starts at ``initial_accumulator_value``."""

    _keras_args = ("initial_accumulator_value", "epsilon")

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=None, name=None, lr=None, **kwargs):
        _optim.Adagrad.__init__(self, _learning_rate(learning_rate, lr, 0.001), eps=epsilon)
        if not initial_accumulator_value >= 0:
            raise ArgumentError(f"initial_accumulator_value must be >= 0, got "
                                f"{initial_accumulator_value!r}")
        self.initial_accumulator_value = float(initial_accumulator_value)
        self._keras_setup(name, weight_decay, kwargs)

    epsilon = property(lambda self: self.eps)

    def setup(self, n_params, dtype):
        before = self.state
        super().setup(n_params, dtype)
        if self.state is not before:
            self.state[0].fill(self.initial_accumulator_value)


_CLASSES = {cls.__name__: cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad)}


def get(identifier):
    """An optimiser from a Keras name (with Keras's defaults), a config dict, a face
    optimiser or a :class:`fusenn.optim.Optimizer`.

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
