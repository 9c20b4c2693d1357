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

from typing import Any, Dict, List, Optional

import numpy as np

from . import backends
from ._validation import check_in_range, check_positive
from .backends import _contract
from .callbacks import Callback
from ._typing import Array, DTypeLike, Logs
from .errors import ArgumentError, ArgumentTypeError, ShapeError


__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad", "names", "get", "from_state",
           "LRSchedule", "StepLR", "ExponentialLR", "InverseScalingLR", "ReduceLROnPlateau"]


class Optimizer:
    """Base of the optimisers: the learning rate, weight decay, step count and state vectors.

    A subclass adds its update rule (``_update``, one kernel call of the selected backend)
    and its settings (:meth:`get_config`). The state (velocity, moments) is one array of
    shape (2, n_params), allocated by :meth:`setup` in the parameters' dtype.

    Parameters
    ----------
    lr : float > 0
        The learning rate (step size).
    weight_decay : float >= 0, default 0
        L2 penalty added to the gradient: ``g' = g + weight_decay * p``.

    Raises
    ------
    ValueError
        ``lr`` is not positive or ``weight_decay`` is negative.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> opt = fn.optim.SGD(lr=0.5)
    >>> p, g = np.ones(3), np.array([1.0, 0.0, -2.0])
    >>> opt.setup(3, p.dtype)
    >>> opt.step(p, g)
    >>> p
    array([0.5, 1. , 2. ])
    """

    name = "optimizer"
    code: Optional[int] = None
    #: Rows of :attr:`state` that the update reads and writes (None: every row, for an
    #: optimiser that does not say); see :meth:`state_rows`.
    n_state: Optional[int] = None

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        self.lr = check_positive(lr, "learning rate lr")
        self.weight_decay = (0.0 if isinstance(weight_decay, (int, float)) and weight_decay == 0
                             else check_positive(weight_decay, "weight_decay"))
        self.state: Optional[Array] = None
        self.t = 0  # steps taken

    def setup(self, n_params: int, dtype: DTypeLike) -> None:
        """Allocate the state for ``n_params`` parameters, once (kept if it already fits).

        Parameters
        ----------
        n_params : int
            Length of the flat parameter vector.
        dtype : numpy dtype
            Its dtype (float32 or float64); the state takes the same.
        """
        if self.state is None or self.state.shape[1] != n_params or self.state.dtype != dtype:
            self.state = np.zeros((2, n_params), dtype=dtype)  # train_epoch's layout
            self.t = 0

    def state_rows(self) -> int:
        """How many rows of :attr:`state` (from the first) the update uses: the ones a restore
        after a diverged epoch must keep (the Trainer copies only these before each epoch).

        Returns
        -------
        int
            :attr:`n_state`, or every row where the optimiser does not set it; 0 before
            :meth:`setup`.
        """
        if self.state is None:
            return 0
        rows = int(self.state.shape[0])
        return rows if self.n_state is None else min(self.n_state, rows)

    def reset(self) -> None:
        """Forget the state and the step count (the next :meth:`setup` allocates afresh)."""
        self.state = None
        self.t = 0

    def hyper(self) -> Array:
        """The settings as the ``hyper`` vector of ``train_epoch``."""
        h = np.zeros(_contract.N_HYPER)
        h[_contract.H_LR] = self.lr
        h[_contract.H_WEIGHT_DECAY] = self.weight_decay
        h[_contract.H_STEP] = self.t
        return h

    def step(self, params: Array, grads: Array) -> None:
        """One in-place update of ``params`` from ``grads``.

        Parameters
        ----------
        params, grads : 1-D C-contiguous arrays
            The flat parameter and gradient vectors (``model.flat_params``,
            ``model.flat_grads``), of the length and dtype given to :meth:`setup`.

        Raises
        ------
        ShapeError
            The vectors do not fit the state :meth:`setup` allocated.
        ValueError
            :meth:`setup` was not called, or ``params`` is read-only.
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

    def _step(self, params: Array, grads: Array) -> None:
        """:meth:`step` for vectors known to fit (the Trainer's own, every mini-batch)."""
        # the step count moves with the weights: an error in the update leaves both as they were
        self._update(backends.get(), params, grads, self.t + 1)
        self.t += 1

    def _update(self, be: Any, p: Array, g: Array, t: int) -> None:  # pragma: no cover
        raise NotImplementedError

    def state_dict(self) -> Dict[str, Any]:
        """The optimiser as a dictionary: name, settings, step count and a copy of the state.

        Returns
        -------
        dict
            ``{"name", "config", "t", "state"}``, which :func:`from_state` and
            :meth:`load_state_dict` read back.
        """
        return {"name": self.name, "config": self.get_config(), "t": self.t,
                "state": None if self.state is None else self.state.copy()}

    def load_state_dict(self, d: Dict[str, Any]) -> None:
        """Restore ``t`` and the state vectors from :meth:`state_dict`'s dictionary.

        Parameters
        ----------
        d : dict
            What :meth:`state_dict` returned.

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

    def get_config(self) -> Dict[str, Any]:
        """The constructor's settings, by name: ``type(opt)(**opt.get_config())`` is a copy.

        Returns
        -------
        dict
            The settings (``lr``, ``weight_decay`` and the subclass's own).
        """
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and weight decay.

    ``g' = g + weight_decay p``; ``v = momentum v + g'``; ``p -= lr v`` (or
    ``p -= lr (g' + momentum v)`` with Nesterov).

    Parameters
    ----------
    lr : float > 0, default 0.01
        The learning rate.
    momentum : float in [0, 1), default 0
        Fraction of the previous step kept in the velocity.
    nesterov : bool, default False
        Nesterov's momentum (needs ``momentum > 0``).
    weight_decay : float >= 0, default 0
        L2 penalty added to the gradient.

    Raises
    ------
    ValueError
        A setting out of its range, or ``nesterov`` without momentum.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.optim.SGD(lr=0.1, momentum=0.9)
    SGD(lr=0.1, weight_decay=0.0, momentum=0.9, nesterov=False)
    """

    name = "sgd"
    code = _contract.OPT_SGD
    n_state = 1

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.momentum = check_in_range(momentum, "momentum", 0.0, 1.0)
        if nesterov and self.momentum == 0:
            raise ArgumentError("Nesterov momentum needs momentum > 0")
        self.nesterov = bool(nesterov)

    def hyper(self) -> Array:
        h = super().hyper()
        h[_contract.H_MOMENTUM] = self.momentum
        h[_contract.H_NESTEROV] = float(self.nesterov)
        return h

    def state_rows(self) -> int:
        return min(super().state_rows(), 1 if self.momentum else 0)  # the velocity, if any

    def _update(self, be: Any, p: Array, g: Array, t: int) -> None:
        assert self.state is not None
        be.sgd_update(p, g, self.state[0] if self.momentum else None, self.lr, self.momentum,
                      self.nesterov, self.weight_decay)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam: gradient steps scaled by running estimates of the gradient's first two moments.

    ``m = beta1 m + (1-beta1) g'``, ``v = beta2 v + (1-beta2) g'^2``,
    ``p -= lr (m / (1-beta1^t)) / (sqrt(v / (1-beta2^t)) + eps)`` with ``g' = g + wd p``.

    Parameters
    ----------
    lr : float > 0, default 0.001
        The learning rate.
    beta1, beta2 : float in [0, 1), default 0.9 and 0.999
        Decay rates of the first and second moment estimates.
    eps : float > 0, default 1e-8
        Added to the denominator.
    weight_decay : float >= 0, default 0
        L2 penalty added to the gradient.

    Raises
    ------
    ValueError
        A setting out of its range.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.optim.Adam(lr=0.01).get_config()["beta2"]
    0.999
    """

    name = "adam"
    code = _contract.OPT_ADAM
    n_state = 2

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.beta1 = check_in_range(beta1, "beta1", 0.0, 1.0)
        self.beta2 = check_in_range(beta2, "beta2", 0.0, 1.0)
        self.eps = check_positive(eps, "eps")

    def hyper(self) -> Array:
        h = super().hyper()
        h[_contract.H_BETA1], h[_contract.H_BETA2], h[_contract.H_EPS] = (
            self.beta1, self.beta2, self.eps)
        return h

    def _update(self, be: Any, p: Array, g: Array, t: int) -> None:
        assert self.state is not None
        be.adam_update(p, g, self.state[0], self.state[1], self.lr, self.beta1, self.beta2,
                       self.eps, self.weight_decay, t)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "beta1": self.beta1, "beta2": self.beta2,
                "eps": self.eps}


class RMSprop(Optimizer):
    """RMSprop: gradient steps divided by a running root mean square of the gradient.

    ``s = rho s + (1-rho) g'^2``, ``p -= lr g' / (sqrt(s) + eps)`` with ``g' = g + wd p``.

    Parameters
    ----------
    lr : float > 0, default 0.01
        The learning rate.
    rho : float in [0, 1), default 0.99
        Decay rate of the running mean square.
    eps : float > 0, default 1e-8
        Added to the denominator.
    weight_decay : float >= 0, default 0
        L2 penalty added to the gradient.

    Raises
    ------
    ValueError
        A setting out of its range.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.optim.RMSprop(rho=0.9).rho
    0.9
    """

    name = "rmsprop"
    code = _contract.OPT_RMSPROP
    n_state = 1

    def __init__(self, lr: float = 0.01, rho: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.rho = check_in_range(rho, "rho", 0.0, 1.0)
        self.eps = check_positive(eps, "eps")

    def hyper(self) -> Array:
        h = super().hyper()
        h[_contract.H_RHO], h[_contract.H_EPS] = self.rho, self.eps
        return h

    def _update(self, be: Any, p: Array, g: Array, t: int) -> None:
        assert self.state is not None
        be.rmsprop_update(p, g, self.state[0], self.lr, self.rho, self.eps, self.weight_decay)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "eps": self.eps}


class Adagrad(Optimizer):
    """Adagrad: gradient steps divided by the root of the summed squared gradients.

    ``s += g'^2``, ``p -= lr g' / (sqrt(s) + eps)`` with ``g' = g + wd p``.

    Parameters
    ----------
    lr : float > 0, default 0.01
        The learning rate.
    eps : float > 0, default 1e-10
        Added to the denominator.
    weight_decay : float >= 0, default 0
        L2 penalty added to the gradient.

    Raises
    ------
    ValueError
        A setting out of its range.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.optim.get("adagrad", lr=0.1)
    Adagrad(lr=0.1, weight_decay=0.0, eps=1e-10)
    """

    name = "adagrad"
    code = _contract.OPT_ADAGRAD
    n_state = 1

    def __init__(self, lr: float = 0.01, eps: float = 1e-10,
                 weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.eps = check_positive(eps, "eps")

    def hyper(self) -> Array:
        h = super().hyper()
        h[_contract.H_EPS] = self.eps
        return h

    def _update(self, be: Any, p: Array, g: Array, t: int) -> None:
        assert self.state is not None
        be.adagrad_update(p, g, self.state[0], self.lr, self.eps, self.weight_decay)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "eps": self.eps}


_REGISTRY = {cls.name: cls for cls in (SGD, Adam, RMSprop, Adagrad)}


def names() -> List[str]:
    """The registered optimiser names, sorted.

    Returns
    -------
    list of str
        Names that :func:`get` accepts.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.optim.names()
    ['adagrad', 'adam', 'rmsprop', 'sgd']
    """
    return sorted(_REGISTRY)


def get(optimizer: str | Optimizer, **params: Any) -> Optimizer:
    """An optimiser from a name (with parameters) or an Optimizer instance.

    Parameters
    ----------
    optimizer : str or Optimizer
        A name of :func:`names` (any case), or an optimiser, returned as it is.
    **params
        The named optimiser's settings (only with a name).

    Returns
    -------
    Optimizer

    Raises
    ------
    ValueError
        An unknown name (the message lists the valid ones), or settings with an instance.
    TypeError
        ``optimizer`` is neither a string nor an Optimizer.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.optim.get("sgd", lr=0.5, momentum=0.9).momentum
    0.9
    """
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


def from_state(d: Dict[str, Any]) -> Optimizer:
    """An optimiser rebuilt from :meth:`Optimizer.state_dict`'s dictionary, state included.

    Parameters
    ----------
    d : dict
        What :meth:`Optimizer.state_dict` returned.

    Returns
    -------
    Optimizer
        A new optimiser with the same settings, step count and state.

    Raises
    ------
    ValueError
        An unknown name, a bad setting, or a step count or state that cannot be restored.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.optim.from_state(fn.optim.Adam(lr=0.01).state_dict())
    Adam(lr=0.01, weight_decay=0.0, beta1=0.9, beta2=0.999, eps=1e-08)
    """
    opt = get(d["name"], **d["config"])
    opt.load_state_dict(d)
    return opt


# --------------------------------------------------------------------------- schedules
class LRSchedule(Callback):
    """Base of the schedules: sets ``optimizer.lr = rate(epoch)`` at the start of each epoch.

    A subclass defines :meth:`rate` from ``base_lr``, the optimiser's rate when training
    began.
    """

    base_lr: float

    def on_train_begin(self, logs: Logs = None) -> None:
        """Remember the optimiser's rate as ``base_lr``.

        Parameters
        ----------
        logs : dict or None
            Unused.
        """
        self.base_lr = self.trainer.optimizer.lr

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        """Set the optimiser's rate to ``rate(epoch)``.

        Parameters
        ----------
        epoch : int
            The epoch about to run, from 0.
        logs : dict or None
            Unused.
        """
        self.trainer.optimizer.lr = self.rate(epoch)

    def rate(self, epoch: int) -> float:  # pragma: no cover - abstract
        """The learning rate of epoch ``epoch`` (from 0).

        Parameters
        ----------
        epoch : int
            The epoch, from 0.

        Returns
        -------
        float
        """
        raise NotImplementedError


class StepLR(LRSchedule):
    """``lr = lr0 * gamma ** (epoch // step_size)``.

    Parameters
    ----------
    step_size : int > 0
        Epochs between two decays.
    gamma : float > 0, default 0.1
        The factor applied at each decay.

    Raises
    ------
    ValueError
        A setting that is not positive.

    Examples
    --------
    >>> import fusenn as fn
    >>> sched = fn.optim.StepLR(step_size=2, gamma=0.5)
    >>> sched.base_lr = 1.0
    >>> [sched.rate(e) for e in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = check_positive(step_size, "step_size", integer=True)
        self.gamma = check_positive(gamma, "gamma")

    def rate(self, epoch: int) -> float:
        return float(self.base_lr * self.gamma ** (epoch // self.step_size))


class ExponentialLR(LRSchedule):
    """``lr = lr0 * gamma ** epoch``.

    Parameters
    ----------
    gamma : float > 0
        The factor applied every epoch.

    Raises
    ------
    ValueError
        ``gamma`` is not positive.
    """

    def __init__(self, gamma: float) -> None:
        self.gamma = check_positive(gamma, "gamma")

    def rate(self, epoch: int) -> float:
        return float(self.base_lr * self.gamma ** epoch)


class InverseScalingLR(LRSchedule):
    """``lr = lr0 / (epoch + 1) ** power_t`` (scikit-learn's "invscaling", per epoch).

    Parameters
    ----------
    power_t : float > 0, default 0.5
        The exponent.

    Raises
    ------
    ValueError
        ``power_t`` is not positive.
    """

    def __init__(self, power_t: float = 0.5) -> None:
        self.power_t = check_positive(power_t, "power_t")

    def rate(self, epoch: int) -> float:
        return float(self.base_lr / (epoch + 1) ** self.power_t)


class ReduceLROnPlateau(Callback):
    """Multiply the rate by ``factor`` when ``monitor`` has not improved for ``patience``
    epochs, never below ``min_lr``.

    Parameters
    ----------
    monitor : str, default "val_loss"
        The logged value watched; one containing ``"acc"`` should rise, others fall.
    factor : float in (0, 1), default 0.1
        The factor applied to the rate on a plateau.
    patience : int >= 0, default 10
        Epochs without improvement before the rate drops.
    min_delta : float, default 1e-4
        An improvement smaller than this does not count.
    min_lr : float, default 0
        The rate never drops below this.

    Raises
    ------
    ValueError
        ``factor`` out of range or ``patience`` negative.
    KeyError
        At the end of an epoch, when ``monitor`` is not among the logged values.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 min_delta: float = 1e-4, min_lr: float = 0.0) -> None:
        self.monitor = monitor
        self.factor = check_in_range(factor, "factor", 0.0, 1.0, lo_open=True)
        if not isinstance(patience, int) or patience < 0:
            raise ArgumentError(f"patience must be a non-negative integer, got {patience!r}")
        self.patience, self.min_delta, self.min_lr = patience, float(min_delta), float(min_lr)
        self.mode = "max" if "acc" in monitor else "min"

    def on_train_begin(self, logs: Logs = None) -> None:
        """Reset the best value and the wait.

        Parameters
        ----------
        logs : dict or None
            Unused.
        """
        self.best = np.inf if self.mode == "min" else -np.inf
        self.wait = 0

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        """Lower the rate when the monitored value has not improved for ``patience`` epochs.

        Parameters
        ----------
        epoch : int
            The epoch that ended, from 0.
        logs : dict
            The epoch's logged values, which must hold ``monitor``.

        Raises
        ------
        KeyError
            ``monitor`` is not among the logged values.
        """
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
