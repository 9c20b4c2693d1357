"""Optimisers and learning-rate schedules.

An optimiser updates the model's flat parameter vector in place from its flat gradient, in one
kernel call of the selected backend; its state (velocity, moments) is allocated once, in
:meth:`Optimizer.setup`. The update rules (PyTorch's):

* SGD: ``g' = g + wd p``; momentum ``v = mu v + g'``; step ``v`` (or ``g' + mu v`` with
  Nesterov); ``p -= lr step``.
* Adam: ``m = b1 m + (1-b1) g'``, ``v = b2 v + (1-b2) g'^2``,
  ``p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)``.
* RMSprop: ``s = rho s + (1-rho) g'^2``, ``p -= lr g' / (sqrt(s) + eps)``.
* Adagrad: ``s += g'^2``, ``p -= lr g' / (sqrt(s) + eps)``.

Schedules are callbacks that change ``optimizer.lr`` between epochs: :class:`StepLR`,
:class:`ExponentialLR`, :class:`InverseScalingLR`, :class:`ReduceLROnPlateau` (and the
constant rate, which is no schedule at all).
"""
from __future__ import annotations

import numpy as np

from . import backends
from ._validation import check_in_range, check_positive
from .backends import _contract
from .callbacks import Callback
from .errors import ArgumentError, ArgumentTypeError, ShapeError


__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad", "names", "get", "from_state",
           "LRSchedule", "StepLR", "ExponentialLR", "InverseScalingLR", "ReduceLROnPlateau"]


class Optimizer:
    name = "optimizer"
    code = None
    n_state = 0

    def __init__(self, lr, weight_decay=0.0):
        self.lr = check_positive(lr, "learning rate lr")
        self.weight_decay = (0.0 if isinstance(weight_decay, (int, float)) and weight_decay == 0
                             else check_positive(weight_decay, "weight_decay"))
        self.state = None
        self.t = 0  # steps taken

    def setup(self, n_params, dtype):
        """Allocate the state for ``n_params`` parameters, once (kept if it already fits)."""
        if self.state is None or self.state.shape[1] != n_params or self.state.dtype != dtype:
            self.state = np.zeros((2, n_params), dtype=dtype)  # train_epoch's layout
            self.t = 0

    def reset(self):
        self.state = None
        self.t = 0

    def hyper(self):
        """The settings as the ``hyper`` vector of ``train_epoch``."""
        h = np.zeros(_contract.N_HYPER)
        h[_contract.H_LR] = self.lr
        h[_contract.H_WEIGHT_DECAY] = self.weight_decay
        h[_contract.H_STEP] = self.t
        return h

    def step(self, params, grads):
        """One in-place update of ``params`` from ``grads``.

        Parameters
        ----------
        params, grads : 1-D C-contiguous arrays
            The flat parameter and gradient vectors (``model.flat_params``,
            ``model.flat_grads``), of the length and dtype given to :meth:`setup`.

        Raises
        ------
        ShapeError
            The vectors do not fit the state :meth:`setup` allocated (or it was not called).
        """
        state = self.state
        if state is None:
            raise ArgumentError(f"{self.name}: call setup(n_params, dtype) before step")
        for arr, name in ((params, "params"), (grads, "grads")):
            if not (type(arr) is np.ndarray and arr.shape == state.shape[1:]
                    and arr.dtype == state.dtype and arr.flags.c_contiguous):
                raise ShapeError(f"{name} must be a C-contiguous {state.dtype} vector of "
                                 f"length {state.shape[1]}, got "
                                 f"{getattr(arr, 'dtype', type(arr).__name__)} of shape "
                                 f"{np.shape(arr)}")
        if not params.flags.writeable:
            raise ArgumentError("params is read-only: the update is written in place")
        self._step(params, grads)

    def _step(self, params, grads):
        """:meth:`step` for vectors known to fit (the Trainer's own, every mini-batch)."""
        # the step count moves with the weights: an error in the update leaves both as they were
        self._update(backends.get(), params, grads, self.t + 1)
        self.t += 1

    def state_dict(self):
        return {"name": self.name, "config": self.get_config(), "t": self.t,
                "state": None if self.state is None else self.state.copy()}

    def load_state_dict(self, d):
        """Restore ``t`` and the state vectors from :meth:`state_dict`'s dictionary.

        Raises
        ------
        ArgumentError
            ``t`` is not a non-negative integer, or the state is not a finite float array
            of two rows.
        """
        t = d["t"]
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t <= 2 ** 62:
            raise ArgumentError(f"{self.name}: the step count t must be an integer >= 0, got "
                                f"{t!r}")
        state = d["state"]
        if state is not None:
            state = np.array(state)
            if (state.ndim != 2 or state.shape[0] != 2 or state.dtype.kind != "f"
                    or not np.all(np.isfinite(state))):
                raise ArgumentError(f"{self.name}: the state must be a finite float array of "
                                    f"shape (2, n_params), got {state.dtype} {state.shape}")
        self.t = int(t)
        self.state = state

    def get_config(self):
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and weight decay."""

    name = "sgd"
    code = _contract.OPT_SGD
    n_state = 1

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = check_in_range(momentum, "momentum", 0.0, 1.0)
        if nesterov and self.momentum == 0:
            raise ArgumentError("Nesterov momentum needs momentum > 0")
        self.nesterov = bool(nesterov)

    def hyper(self):
        h = super().hyper()
        h[_contract.H_MOMENTUM] = self.momentum
        h[_contract.H_NESTEROV] = float(self.nesterov)
        return h

    def _update(self, be, p, g, t):
        be.sgd_update(p, g, self.state[0] if self.momentum else None, self.lr, self.momentum,
                      self.nesterov, self.weight_decay)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    name = "adam"
    code = _contract.OPT_ADAM
    n_state = 2

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.beta1 = check_in_range(beta1, "beta1", 0.0, 1.0)
        self.beta2 = check_in_range(beta2, "beta2", 0.0, 1.0)
        self.eps = check_positive(eps, "eps")

    def hyper(self):
        h = super().hyper()
        h[_contract.H_BETA1], h[_contract.H_BETA2], h[_contract.H_EPS] = (
            self.beta1, self.beta2, self.eps)
        return h

    def _update(self, be, p, g, t):
        be.adam_update(p, g, self.state[0], self.state[1], self.lr, self.beta1, self.beta2,
                       self.eps, self.weight_decay, t)

    def get_config(self):
        return {**super().get_config(), "beta1": self.beta1, "beta2": self.beta2,
                "eps": self.eps}


class RMSprop(Optimizer):
    name = "rmsprop"
    code = _contract.OPT_RMSPROP
    n_state = 1

    def __init__(self, lr=0.01, rho=0.99, eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.rho = check_in_range(rho, "rho", 0.0, 1.0)
        self.eps = check_positive(eps, "eps")

    def hyper(self):
        h = super().hyper()
        h[_contract.H_RHO], h[_contract.H_EPS] = self.rho, self.eps
        return h

    def _update(self, be, p, g, t):
        be.rmsprop_update(p, g, self.state[0], self.lr, self.rho, self.eps, self.weight_decay)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "eps": self.eps}


class Adagrad(Optimizer):
    name = "adagrad"
    code = _contract.OPT_ADAGRAD
    n_state = 1

    def __init__(self, lr=0.01, eps=1e-10, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.eps = check_positive(eps, "eps")

    def hyper(self):
        h = super().hyper()
        h[_contract.H_EPS] = self.eps
        return h

    def _update(self, be, p, g, t):
        be.adagrad_update(p, g, self.state[0], self.lr, self.eps, self.weight_decay)

    def get_config(self):
        return {**super().get_config(), "eps": self.eps}


_REGISTRY = {cls.name: cls for cls in (SGD, Adam, RMSprop, Adagrad)}


def names():
    return sorted(_REGISTRY)


def get(optimizer, **params):
    """An optimiser from a name (with parameters) or an Optimizer instance."""
    if isinstance(optimizer, Optimizer):
        if params:
            raise ArgumentError("optimiser parameters need an optimiser name")
        return optimizer
    if not isinstance(optimizer, str):
        raise ArgumentTypeError(f"optimizer must be a name or an Optimizer, got "
                        f"{type(optimizer).__name__}")
    key = optimizer.strip().lower()
    if key not in _REGISTRY:
        raise ArgumentError(f"unknown optimizer {optimizer!r}; valid names: {', '.join(names())}")
    return _REGISTRY[key](**params)


def from_state(d):
    opt = get(d["name"], **d["config"])
    opt.load_state_dict(d)
    return opt


# --------------------------------------------------------------------------- schedules
class LRSchedule(Callback):
    """Base of the schedules: sets ``optimizer.lr = rate(epoch)`` at the start of each epoch."""

    def on_train_begin(self, logs=None):
        self.base_lr = self.trainer.optimizer.lr

    def on_epoch_begin(self, epoch, logs=None):
        self.trainer.optimizer.lr = self.rate(epoch)

    def rate(self, epoch):  # pragma: no cover - abstract
        raise NotImplementedError


class StepLR(LRSchedule):
    """``lr = lr0 * gamma ** (epoch // step_size)``."""

    def __init__(self, step_size, gamma=0.1):
        self.step_size = check_positive(step_size, "step_size", integer=True)
        self.gamma = check_positive(gamma, "gamma")

    def rate(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRSchedule):
    """``lr = lr0 * gamma ** epoch``."""

    def __init__(self, gamma):
        self.gamma = check_positive(gamma, "gamma")

    def rate(self, epoch):
        return self.base_lr * self.gamma ** epoch


class InverseScalingLR(LRSchedule):
    """``lr = lr0 / (epoch + 1) ** power_t`` (scikit-learn's "invscaling", per epoch)."""

    def __init__(self, power_t=0.5):
        self.power_t = check_positive(power_t, "power_t")

    def rate(self, epoch):
        return self.base_lr / (epoch + 1) ** self.power_t


class ReduceLROnPlateau(Callback):
    """Multiply the rate by ``factor`` when ``monitor`` has not improved for ``patience``
    epochs, never below ``min_lr``."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4,
                 min_lr=0.0):
        self.monitor = monitor
        self.factor = check_in_range(factor, "factor", 0.0, 1.0, lo_open=True)
        if not isinstance(patience, int) or patience < 0:
            raise ArgumentError(f"patience must be a non-negative integer, got {patience!r}")
        self.patience, self.min_delta, self.min_lr = patience, float(min_delta), float(min_lr)
        self.mode = "max" if "acc" in monitor else "min"

    def on_train_begin(self, logs=None):
        self.best = np.inf if self.mode == "min" else -np.inf
        self.wait = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(f"ReduceLROnPlateau monitors {self.monitor!r}, which is not among "
                           f"the logged values {sorted(logs)}")
        v = logs[self.monitor]
        better = v < self.best - self.min_delta if self.mode == "min" else \
            v > self.best + self.min_delta
        if better:
            self.best, self.wait = v, 0
        else:
            self.wait += 1
            if self.wait > self.patience - 1:
                opt = self.trainer.optimizer
                opt.lr = max(opt.lr * self.factor, self.min_lr)
                self.wait = 0
