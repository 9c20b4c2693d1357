"""Callbacks: code that runs at the start and end of training and of every epoch.

A callback receives the :class:`fusenn.Trainer` in ``set_trainer`` and the epoch's logs
(``{"loss": ..., "accuracy": ..., "val_loss": ...}``) in ``on_epoch_end``. It stops training by
setting ``trainer.stop_training = True``.

A callback that only reads the logs (it neither looks at the weights between epochs nor stops
training), such as :class:`History`, says so with ``replayable = True``. When every callback of
a fit is replayable and there is no validation data, the Trainer may run many epochs in one
compiled call and then hands their logs to :meth:`Callback.on_epochs_end`, which replays each
epoch's ``on_epoch_begin``/``on_epoch_end`` in order with the same logs (a callback may do it
at once, as :class:`History` does).
"""
from __future__ import annotations

import sys
from typing import IO, Any, Dict, List, Optional

import numpy as np

from ._typing import Logs
from .errors import ArgumentError


__all__ = ["Callback", "History", "MonitorCallback", "EarlyStopping", "ProgressBar"]


class Callback:
    """Base of the callbacks: every hook does nothing until a subclass overrides it.

    The :class:`fusenn.Trainer` calls :meth:`set_trainer` once, then :meth:`on_train_begin`,
    for each epoch :meth:`on_epoch_begin` and :meth:`on_epoch_end`, and :meth:`on_train_end`
    (also when a callback stops training early).

    Examples
    --------
    >>> import fusenn as fn
    >>> class Printer(fn.callbacks.Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         print(epoch, sorted(logs))
    >>> X, y = fn.datasets.xor()
    >>> model = fn.Sequential([fn.layers.Dense(2, 2)], random_state=0)
    >>> _ = fn.Trainer(model, callbacks=[Printer()], random_state=0).fit(X, y, epochs=2)
    0 ['accuracy', 'loss']
    1 ['accuracy', 'loss']
    """

    #: The Trainer this callback serves (set by :meth:`set_trainer`, None before).
    trainer: Any = None
    #: Whether the callback only reads the logs, so that its epoch calls may be replayed after
    #: several epochs ran in one compiled call (see the module's docstring).
    replayable: bool = False

    def set_trainer(self, trainer: Any) -> None:
        """Attach the Trainer whose training this callback follows.

        Parameters
        ----------
        trainer : fusenn.Trainer
            The trainer; a callback reads ``trainer.model``, ``trainer.optimizer`` and
            ``trainer.epochs``, and sets ``trainer.stop_training = True`` to stop.
        """
        self.trainer = trainer

    def on_train_begin(self, logs: Logs = None) -> None:
        """Called once before the first epoch.

        Parameters
        ----------
        logs : dict or None
            Empty or None.
        """

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        """Called before each epoch.

        Parameters
        ----------
        epoch : int
            The epoch about to run, from 0.
        logs : dict or None
            Empty or None.
        """

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        """Called after each epoch with its logged values.

        Parameters
        ----------
        epoch : int
            The epoch that ended, from 0.
        logs : dict
            ``{"loss": ..., "accuracy": ..., "val_loss": ..., ...}``: the epoch's training
            loss and metrics, and the validation ones when there is validation data.
        """

    def on_train_end(self, logs: Logs = None) -> None:
        """Called once after the last epoch (also after an early stop).

        Parameters
        ----------
        logs : dict or None
            Empty or None.
        """

    def on_epochs_end(self, first: int, logs: Dict[str, List[Any]]) -> None:
        """Called, for a replayable callback only, after several epochs ran in one call.

        The default replays :meth:`on_epoch_begin` and :meth:`on_epoch_end` for each epoch in
        turn, with that epoch's logs.

        Parameters
        ----------
        first : int
            The first of the epochs, from 0.
        logs : dict
            Each logged name mapped to a list of values, one per epoch.
        """
        names = list(logs)
        for e, values in enumerate(zip(*logs.values())):
            self.on_epoch_begin(first + e)
            self.on_epoch_end(first + e, dict(zip(names, values)))


class History(Callback):
    """Records every epoch's logs: ``history.history["loss"]`` is the list of epoch losses.

    ``history["loss"]`` is a shorthand for ``history.history["loss"]``; ``history.epoch``
    lists the epochs recorded. :meth:`fusenn.Trainer.fit` returns one.

    Examples
    --------
    >>> import fusenn as fn
    >>> X, y = fn.datasets.xor()
    >>> model = fn.Sequential([fn.layers.Dense(2, 8, activation="tanh"), fn.layers.Dense(8, 2)],
    ...                       random_state=0)
    >>> history = fn.Trainer(model, random_state=0).fit(X, y, epochs=3)
    >>> history.epoch, len(history["loss"]), sorted(history.history)
    ([0, 1, 2], 3, ['accuracy', 'loss'])
    """

    replayable = True

    def __init__(self) -> None:
        self.history: Dict[str, List[Any]] = {}
        self.epoch: List[int] = []

    def on_train_begin(self, logs: Logs = None) -> None:
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def on_epochs_end(self, first: int, logs: Dict[str, List[Any]]) -> None:
        self.epoch.extend(range(first, first + len(next(iter(logs.values())))))
        for k, v in logs.items():
            self.history.setdefault(k, []).extend(v)

    def __getitem__(self, key: str) -> List[Any]:
        return self.history[key]

    def __repr__(self) -> str:
        last = {k: round(v[-1], 6) for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"


class MonitorCallback(Callback):
    """A callback that watches one logged value for improvement: what :class:`EarlyStopping`
    and any callback acting on a plateau (of the loss, of the accuracy) have in common.

    :meth:`on_train_begin` resets ``best`` (the best value so far) and ``wait`` (epochs since
    it improved); a subclass's ``on_epoch_end`` reads the value with :meth:`_value` and asks
    :meth:`_improved`.

    Parameters
    ----------
    monitor : str
        The log key watched, such as ``"val_loss"`` or ``"accuracy"``.
    patience : int >= 0
        How many epochs without improvement the subclass tolerates.
    min_delta : float >= 0
        A value improves on the best only when better by more than this.
    mode : {"auto", "min", "max"}
        ``"min"``: lower is better; ``"max"``: higher is; ``"auto"``: max for an accuracy (a
        key containing ``"acc"``), min otherwise.

    Raises
    ------
    ValueError
        For a negative or non-integer ``patience``, a negative ``min_delta`` or an unknown
        ``mode``.

    Examples
    --------
    >>> class CountPlateaus(MonitorCallback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         value = self._value(logs)
    ...         if self._improved(value):
    ...             self.best, self.wait = value, 0
    ...         else:
    ...             self.wait += 1
    >>> counter = CountPlateaus("loss", patience=0)
    >>> counter.on_train_begin()
    >>> for loss in (1.0, 0.5, 0.5, 0.7):
    ...     counter.on_epoch_end(0, {"loss": loss})
    >>> counter.best, counter.wait
    (0.5, 2)
    """

    #: Appended to the error for a monitored key that is not logged.
    _missing_hint = ""

    def __init__(self, monitor: str, patience: int, min_delta: float = 0.0,
                 mode: str = "auto") -> None:
        if not isinstance(patience, int) or patience < 0:
            raise ArgumentError(f"patience must be a non-negative integer, got {patience!r}")
        if not min_delta >= 0:
            raise ArgumentError(f"min_delta must be >= 0, got {min_delta!r}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ArgumentError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor, self.patience, self.min_delta, self.mode = (monitor, patience,
                                                                  float(min_delta), mode)

    def on_train_begin(self, logs: Logs = None) -> None:
        self.best: Any = np.inf if self.mode == "min" else -np.inf
        self.wait = 0

    def _value(self, logs: Logs) -> Any:
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(f"{type(self).__name__} monitors {self.monitor!r}, which is not "
                           f"among the logged values {sorted(logs)}{self._missing_hint}")
        return logs[self.monitor]

    def _improved(self, value: Any) -> bool:
        if self.mode == "min":
            return bool(value < self.best - self.min_delta)
        return bool(value > self.best + self.min_delta)


class EarlyStopping(MonitorCallback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``monitor``: ``"loss"``, ``"val_loss"``, ``"accuracy"`` or ``"val_accuracy"`` (or any log
    key, with ``mode`` "min"/"max"). With ``restore_best_weights`` the model ends with the
    weights of its best epoch.

    Parameters
    ----------
    monitor : str, default "val_loss"
        The logged value watched.
    patience : int >= 0, default 10
        Epochs without improvement before training stops.
    min_delta : float >= 0, default 0
        An improvement must be larger than this to count.
    restore_best_weights : bool, default True
        At the end of training, put back the weights (and buffers) of the best epoch.
    mode : {"auto", "min", "max"}, default "auto"
        Whether lower or higher is better; "auto" is max for a key containing "acc".

    Raises
    ------
    ValueError
        ``patience`` or ``min_delta`` negative, or an unknown ``mode``.
    KeyError
        At the end of an epoch, when ``monitor`` is not logged (a ``val_*`` key without
        validation data).

    Examples
    --------
    >>> import fusenn as fn
    >>> X, y = fn.datasets.xor()
    >>> model = fn.Sequential([fn.layers.Dense(2, 2)], random_state=0)
    >>> stop = fn.callbacks.EarlyStopping(monitor="loss", patience=2, min_delta=10.0)
    >>> history = fn.Trainer(model, callbacks=[stop], random_state=0).fit(X, y, epochs=50)
    >>> len(history.epoch), stop.stopped_epoch
    (3, 2)
    """

    _missing_hint = " (give validation data to log val_*)"

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 restore_best_weights: bool = True, mode: str = "auto") -> None:
        super().__init__(monitor, patience, min_delta, mode)
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, logs: Logs = None) -> None:
        super().on_train_begin(logs)
        self.best_epoch: Optional[int] = None
        self.stopped_epoch: Optional[int] = None
        self._best_weights: Any = None

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        value = self._value(logs)
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self._best_weights = self.trainer.model.flat_params.copy()
                self._best_buffers = self.trainer.model.get_buffers()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                self.trainer.stop_training = True

    def on_train_end(self, logs: Logs = None) -> None:
        if self.restore_best_weights and self._best_weights is not None:
            self.trainer.model.flat_params[...] = self._best_weights
            self.trainer.model.set_buffers(self._best_buffers)


class ProgressBar(Callback):
    """Shows progress per epoch: a tqdm bar when tqdm is installed, plain lines otherwise,
    nothing when ``verbose=0``.

    Parameters
    ----------
    verbose : int, default 1
        0: silent; 1: a tqdm bar (plain lines without tqdm); 2 or more: one line per epoch.
    file : file-like or None, default None
        Where to write (the bar's default, or ``sys.stdout`` for lines).

    Examples
    --------
    >>> import sys
    >>> import fusenn as fn
    >>> X, y = fn.datasets.xor()
    >>> model = fn.Sequential([fn.layers.Dense(2, 2)], random_state=0)
    >>> bar = fn.callbacks.ProgressBar(verbose=2, file=sys.stdout)
    >>> _ = fn.Trainer(model, callbacks=[bar], random_state=0).fit(X, y, epochs=1)
    epoch 1/1  loss=... accuracy=...
    """

    def __init__(self, verbose: int = 1, file: Optional[IO[str]] = None) -> None:
        self.verbose = int(verbose)
        self.file = file

    _STREAMS = ("stdout", "stderr")

    def __getstate__(self) -> Dict[str, Any]:
        # the bar is remade at the next fit; sys.stdout or sys.stderr travel by name and
        # become the standard stream of the process that unpickles
        state = self.__dict__.copy()
        if "_bar" in state:
            state["_bar"] = None
        for name in self._STREAMS:
            if state["file"] is not None and state["file"] is getattr(sys, name):
                state["file"] = name
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        if state.get("file") in self._STREAMS:
            state = dict(state, file=getattr(sys, state["file"]))
        self.__dict__.update(state)

    def on_train_begin(self, logs: Logs = None) -> None:
        self._bar: Any = None
        if self.verbose <= 0:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None and self.verbose == 1:
            self._bar = tqdm(total=self.trainer.epochs, unit="epoch", file=self.file,
                             leave=True, dynamic_ncols=True)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        if self.verbose <= 0:
            return
        text = " ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items())
        if self._bar is not None:
            self._bar.set_postfix_str(text)
            self._bar.update(1)
        else:
            out = self.file or sys.stdout
            print(f"epoch {epoch + 1}/{self.trainer.epochs}  {text}", file=out, flush=True)

    def on_train_end(self, logs: Logs = None) -> None:
        if self._bar is not None:
            self._bar.close()
