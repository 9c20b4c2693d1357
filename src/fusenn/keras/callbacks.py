"""Keras's callbacks (``keras.callbacks``), run once per epoch by the face's ``fit``.

A callback sees the Keras-face model as ``self.model`` (so ``self.model.stop_training = True``
stops training and ``self.model.optimizer.learning_rate`` is the rate) and the epoch's logs in
Keras's keys. fusenn runs whole epochs in compiled code, so callbacks act between epochs:
one that overrides a per-batch hook (``on_train_batch_end``, ...) is refused with
:class:`fusenn.errors.UnsupportedFeatureError`.

>>> stop = EarlyStopping(monitor="loss", patience=2)
>>> stop.patience, stop.restore_best_weights
(2, False)
"""
from __future__ import annotations

import csv
import os
import warnings

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError
from ._common import missing_attribute, print_line, unsupported

_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin",
                "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end",
                "on_predict_batch_begin", "on_predict_batch_end")


class Callback:
    """Base class of Keras callbacks: ``model``, ``params`` and the epoch and training hooks."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass


for _hook in _BATCH_HOOKS:
    setattr(Callback, _hook, lambda self, batch, logs=None: None)
del _hook


def check_callback(cb):
    """Refuse what the face cannot run: objects that are not Keras-face callbacks, and
    callbacks with per-batch hooks."""
    if not isinstance(cb, Callback):
        raise unsupported(f"the callback {type(cb).__name__} (not a fusenn.keras.callbacks "
                          f"Callback)")
    for hook in _BATCH_HOOKS:
        if getattr(type(cb), hook) is not getattr(Callback, hook):
            raise unsupported(f"the per-batch hook {type(cb).__name__}.{hook}",
                              "fusenn runs whole epochs in compiled code; use on_epoch_end")


class History(Callback):
    """Records every epoch's logs: ``history.history["loss"]``, ``history.epoch``."""

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


def _mode_op(monitor, mode):
    if mode not in ("auto", "min", "max"):
        raise ArgumentError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        higher = ("acc", "auc", "precision", "recall")
        mode = "max" if not monitor.endswith("loss") and any(h in monitor for h in higher) \
            else "min"
    return np.less if mode == "min" else np.greater


class EarlyStopping(Callback):
    """Stop when ``monitor`` has stopped improving (Keras's defaults: ``val_loss``,
    ``patience=0``, ``restore_best_weights=False``).

    Parameters
    ----------
    monitor : str
    min_delta : float
        Improvements smaller than this do not count.
    patience : int
        Epochs without improvement before stopping.
    verbose : int
    mode : {"auto", "min", "max"}
    baseline : float, optional
        Training stops unless the monitored value beats it within ``patience`` epochs.
    restore_best_weights : bool
        End with the weights of the best epoch.
    start_from_epoch : int
        Epochs to wait before watching.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor, self.patience, self.verbose = monitor, int(patience), int(verbose)
        self.baseline, self.restore_best_weights = baseline, bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)
        self.monitor_op = _mode_op(monitor, mode)
        self.min_delta = abs(float(min_delta)) * (1 if self.monitor_op is np.greater else -1)

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best = np.inf if self.monitor_op is np.less else -np.inf
        self.best_weights = None

    def _improved(self, value, reference):
        return reference is None or bool(self.monitor_op(value - self.min_delta, reference))

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(logs or {})}",
                          stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print_line(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_line(f"Restoring model weights from the end of the best epoch: "
                           f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (``.keras``) or its weights after each epoch, or only when ``monitor``
    improves (``save_best_only``). ``filepath`` may hold ``{epoch}`` (1-based) and log keys,
    ``"model-{epoch:02d}-{val_loss:.2f}.keras"``."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__()
        if save_freq != "epoch":
            raise unsupported(f"ModelCheckpoint(save_freq={save_freq!r})", "save per epoch")
        self.filepath = os.fspath(filepath)
        if not save_weights_only and not self.filepath.endswith(".keras"):
            raise ArgumentError(f"The filepath provided must end in `.keras` (Keras model "
                                f"format). Received: filepath={self.filepath}")
        self.monitor, self.verbose = monitor, int(verbose)
        self.save_best_only, self.save_weights_only = bool(save_best_only), \
            bool(save_weights_only)
        self.monitor_op = _mode_op(monitor, mode)
        self.best = initial_value_threshold

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"Can save best model only with {self.monitor} available.",
                              stacklevel=2)
                return
            if self.best is not None and not self.monitor_op(current, self.best):
                return
            if self.verbose > 0:
                print_line(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best} "
                           f"to {current:.5f}, saving model to {path}")
            self.best = current
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for
    ``patience`` epochs (Keras's defaults: ``val_loss``, 0.1, 10, ``min_delta=1e-4``,
    ``cooldown=0``, ``min_lr=0``); logs ``learning_rate``."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        super().__init__()
        if kwargs:
            raise ArgumentTypeError(f"ReduceLROnPlateau got unexpected argument(s) "
                                    f"{sorted(kwargs)}")
        if factor >= 1.0:
            raise ArgumentError("ReduceLROnPlateau does not support a factor >= 1.0, got "
                                f"{factor}")
        self.monitor, self.factor, self.patience = monitor, float(factor), int(patience)
        self.verbose, self.min_delta, self.cooldown = int(verbose), float(min_delta), \
            int(cooldown)
        self.min_lr = float(min_lr)
        self.monitor_op = _mode_op(monitor, mode)

    def on_train_begin(self, logs=None):
        self.best = np.inf if self.monitor_op is np.less else -np.inf
        self.wait = self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        opt = self.model.optimizer
        logs["learning_rate"] = float(opt.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` "
                          f"which is not available.", stacklevel=2)
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        delta = -self.min_delta if self.monitor_op is np.less else self.min_delta
        if self.monitor_op(current, self.best + delta):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(opt.learning_rate)
                if old > self.min_lr:
                    opt.learning_rate = max(old * self.factor, self.min_lr)
                    if self.verbose > 0:
                        print_line(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing "
                                   f"learning rate to {opt.learning_rate}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite (the weights keep their last
    finite values)."""

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print_line(f"Epoch {epoch + 1}: Invalid loss, terminating training")
            self.model.stop_training = True


class CSVLogger(Callback):
    """Write each epoch's logs to a CSV file: ``epoch`` then the log keys, sorted."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, bool(append)
        self.keys = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and \
            os.path.getsize(self.filename) > 0
        self._header = not exists
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer = None

    def __getstate__(self):
        # the open file does not travel: the copy opens its own at its next on_train_begin
        state = self.__dict__.copy()
        state.pop("_file", None)
        state.pop("_writer", None)
        return state

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self.keys,
                                          delimiter=self.sep)
            if self._header:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in self.keys}})
        self._file.flush()

    def on_train_end(self, logs=None):
        self._file.close()
        self._writer = None


class LambdaCallback(Callback):
    """A callback from functions: ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch,
    logs)``, ``on_train_begin(logs)``, ``on_train_end(logs)``."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, **batch_hooks):
        super().__init__()
        given = [k for k, v in batch_hooks.items() if v is not None]
        if given:
            raise unsupported(f"LambdaCallback({', '.join(given)}=...)",
                              "fusenn runs whole epochs in compiled code; use on_epoch_end")
        for name, fn in (("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                         ("on_train_begin", on_train_begin), ("on_train_end", on_train_end)):
            if fn is not None:
                setattr(self, name, fn)


_NAMES = ("Callback", "History", "EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau",
          "TerminateOnNaN", "CSVLogger", "LambdaCallback")
__all__ = list(_NAMES)
__getattr__ = missing_attribute(__name__, _NAMES)
