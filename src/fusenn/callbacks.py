"""Callbacks: code that runs at the start and end of training and of every epoch.

A callback receives the :class:`fusenn.Trainer` in ``set_trainer`` and the epoch's logs
(``{"loss": ..., "accuracy": ..., "val_loss": ...}``) in ``on_epoch_end``. It stops training by
setting ``trainer.stop_training = True``.
"""
from __future__ import annotations

import sys

import numpy as np
from .errors import ArgumentError


__all__ = ["Callback", "History", "MonitorCallback", "EarlyStopping", "ProgressBar"]


class Callback:
    trainer = None

    def set_trainer(self, trainer):
        self.trainer = trainer

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass


class History(Callback):
    """Records every epoch's logs: ``history.history["loss"]`` is the list of epoch losses."""

    def __init__(self):
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key):
        return self.history[key]

    def __repr__(self):
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

    def __init__(self, monitor, patience, min_delta=0.0, mode="auto"):
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

    def on_train_begin(self, logs=None):
        self.best = np.inf if self.mode == "min" else -np.inf
        self.wait = 0

    def _value(self, logs):
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(f"{type(self).__name__} monitors {self.monitor!r}, which is not "
                           f"among the logged values {sorted(logs)}{self._missing_hint}")
        return logs[self.monitor]

    def _improved(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(MonitorCallback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``monitor``: ``"loss"``, ``"val_loss"``, ``"accuracy"`` or ``"val_accuracy"`` (or any log
    key, with ``mode`` "min"/"max"). With ``restore_best_weights`` the model ends with the
    weights of its best epoch.
    """

    _missing_hint = " (give validation data to log val_*)"

    def __init__(self, monitor="val_loss", patience=10, min_delta=0.0,
                 restore_best_weights=True, mode="auto"):
        super().__init__(monitor, patience, min_delta, mode)
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.best_epoch = None
        self.stopped_epoch = None
        self._best_weights = None

    def on_epoch_end(self, epoch, logs=None):
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

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self._best_weights is not None:
            self.trainer.model.flat_params[...] = self._best_weights
            self.trainer.model.set_buffers(self._best_buffers)


class ProgressBar(Callback):
    """Shows progress per epoch: a tqdm bar when tqdm is installed, plain lines otherwise,
    nothing when ``verbose=0``."""

    def __init__(self, verbose=1, file=None):
        self.verbose = int(verbose)
        self.file = file

    _STREAMS = ("stdout", "stderr")

    def __getstate__(self):
        # the bar is remade at the next fit; sys.stdout or sys.stderr travel by name and
        # become the standard stream of the process that unpickles
        state = self.__dict__.copy()
        if "_bar" in state:
            state["_bar"] = None
        for name in self._STREAMS:
            if state["file"] is not None and state["file"] is getattr(sys, name):
                state["file"] = name
        return state

    def __setstate__(self, state):
        if state.get("file") in self._STREAMS:
            state = dict(state, file=getattr(sys, state["file"]))
        self.__dict__.update(state)

    def on_train_begin(self, logs=None):
        self._bar = None
        if self.verbose <= 0:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None and self.verbose == 1:
            self._bar = tqdm(total=self.trainer.epochs, unit="epoch", file=self.file,
                             leave=True, dynamic_ncols=True)

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose <= 0:
            return
        text = " ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items())
        if self._bar is not None:
            self._bar.set_postfix_str(text)
            self._bar.update(1)
        else:
            out = self.file or sys.stdout
            print(f"epoch {epoch + 1}/{self.trainer.epochs}  {text}", file=out, flush=True)

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
