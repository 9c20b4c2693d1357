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
from typing import IO, Any, Callable, Optional, Union

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError
from ._common import missing_attribute, print_line, unsupported

_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin",
                "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end",
                "on_predict_batch_begin", "on_predict_batch_end")


class Callback:
    """Base class of Keras callbacks: ``model``, ``params`` and the epoch and training hooks.

    Subclass it and override the hooks; ``fit`` calls ``on_train_begin``, then
    ``on_epoch_begin`` and ``on_epoch_end`` around every epoch, then ``on_train_end``.

    Attributes
    ----------
    model : fusenn.keras.models.Sequential or None
        The model being trained (set by ``fit``).
    params : dict
        ``fit``'s settings: ``epochs``, ``steps``, ``verbose``.

    Examples
    --------
    >>> class Print(Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         print(epoch, sorted(logs))
    >>> check_callback(Print())
    """

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        """Called by ``fit`` with the model being trained.

        Parameters
        ----------
        model : fusenn.keras.models.Sequential
            The model, reachable as ``self.model``.
        """
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        """Called by ``fit`` with its settings.

        Parameters
        ----------
        params : dict
            ``epochs``, ``steps`` and ``verbose``, reachable as ``self.params``.
        """
        self.params = params

    def on_train_begin(self, logs: Optional[dict[str, Any]] = None) -> None:
        """Called once when ``fit`` starts.

        Parameters
        ----------
        logs : dict or None, default=None
            The logs, in Keras's keys (``loss``, ``val_loss``, metrics, ...).
        """
        pass

    def on_train_end(self, logs: Optional[dict[str, Any]] = None) -> None:
        """Called once when ``fit`` ends (also after early stopping).

        Parameters
        ----------
        logs : dict or None, default=None
            The logs, in Keras's keys (``loss``, ``val_loss``, metrics, ...).
        """
        pass

    def on_epoch_begin(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
        """Called before each epoch.

        Parameters
        ----------
        epoch : int
            The epoch, 0-based.
        logs : dict or None, default=None
            The logs, in Keras's keys (``loss``, ``val_loss``, metrics, ...).
        """
        pass

    def on_epoch_end(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
        """Called after each epoch, with its training and validation logs.

        Parameters
        ----------
        epoch : int
            The epoch, 0-based.
        logs : dict or None, default=None
            The logs, in Keras's keys (``loss``, ``val_loss``, metrics, ...).
        """
        pass


def _batch_hook(name: str) -> Callable[..., None]:
    def hook(self: Callback, batch: int, logs: Optional[dict[str, Any]] = None) -> None:
        return None

    hook.__name__ = name
    hook.__qualname__ = f"Callback.{name}"
    hook.__doc__ = f"""Keras's per-batch hook; never called here.

        A callback that overrides it is refused by :func:`check_callback`: fusenn runs whole
        epochs in compiled code.

        Parameters
        ----------
        batch : int
            The batch index.
        logs : dict or None, default=None
            The batch's logs.
        """
    return hook


for _hook in _BATCH_HOOKS:
    setattr(Callback, _hook, _batch_hook(_hook))
del _hook


def check_callback(cb: Any) -> None:
    """Refuse what the face cannot run: objects that are not Keras-face callbacks, and
    callbacks with per-batch hooks.

    Parameters
    ----------
    cb : object
        The callback given to ``fit``.

    Raises
    ------
    UnsupportedFeatureError
        For an object that is not a :class:`Callback`, or one that overrides a per-batch
        hook (``on_train_batch_end``, ...).
    """
    if not isinstance(cb, Callback):
        raise unsupported(f"the callback {type(cb).__name__} (not a fusenn.keras.callbacks "
                          f"Callback)")
    for hook in _BATCH_HOOKS:
        if getattr(type(cb), hook) is not getattr(Callback, hook):
            raise unsupported(f"the per-batch hook {type(cb).__name__}.{hook}",
                              "fusenn runs whole epochs in compiled code; use on_epoch_end")


class History(Callback):
    """Records every epoch's logs: ``history.history["loss"]``, ``history.epoch``.

    ``fit`` returns it.

    Attributes
    ----------
    epoch : list of int
        The epochs run, 0-based.
    history : dict of str to list
        Each log key and its value per epoch.
    """

    def on_train_begin(self, logs: Optional[dict[str, Any]] = None) -> None:
        self.epoch: list[int] = []
        self.history: dict[str, list[Any]] = {}

    def on_epoch_end(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


def _mode_op(monitor: str, mode: str) -> Any:
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
    monitor : str, default="val_loss"
        The log key watched.
    min_delta : float, default=0
        Improvements smaller than this do not count.
    patience : int, default=0
        Epochs without improvement before stopping.
    verbose : int, default=0
        1 prints a line when stopping and when restoring.
    mode : {"auto", "min", "max"}, default="auto"
        Whether smaller or larger is better; ``"auto"`` guesses from the name (``max`` for
        accuracies, AUC, precision and recall).
    baseline : float, optional
        Training stops unless the monitored value beats it within ``patience`` epochs.
    restore_best_weights : bool, default=False
        End with the weights of the best epoch.
    start_from_epoch : int, default=0
        Epochs to wait before watching.

    Raises
    ------
    fusenn.errors.ArgumentError
        For an unknown ``mode``.

    Examples
    --------
    >>> EarlyStopping(monitor="val_accuracy").monitor_op.__name__
    'greater'
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: Optional[float] = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__()
        self.monitor, self.patience, self.verbose = monitor, int(patience), int(verbose)
        self.baseline, self.restore_best_weights = baseline, bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)
        self.monitor_op = _mode_op(monitor, mode)
        self.min_delta = abs(float(min_delta)) * (1 if self.monitor_op is np.greater else -1)

    def on_train_begin(self, logs: Optional[dict[str, Any]] = None) -> None:
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best = np.inf if self.monitor_op is np.less else -np.inf
        self.best_weights: Optional[list[Any]] = None

    def _improved(self, value: float, reference: Optional[float]) -> bool:
        return reference is None or bool(self.monitor_op(value - self.min_delta, reference))

    def on_epoch_end(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
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

    def on_train_end(self, logs: Optional[dict[str, Any]] = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print_line(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_line(f"Restoring model weights from the end of the best epoch: "
                           f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (``.keras``) or its weights after each epoch, or only when ``monitor``
    improves.

    Parameters
    ----------
    filepath : str or path-like
        Where to save; may hold ``{epoch}`` (1-based) and log keys,
        ``"model-{epoch:02d}-{val_loss:.2f}.keras"``. A whole model needs ``.keras``.
    monitor : str, default="val_loss"
        The log key watched with ``save_best_only``.
    verbose : int, default=0
        1 prints a line when a better model is saved.
    save_best_only : bool, default=False
        Save only when ``monitor`` improves on the best so far.
    save_weights_only : bool, default=False
        Save only the weights (``model.save_weights``).
    mode : {"auto", "min", "max"}, default="auto"
        Whether smaller or larger is better.
    save_freq : {"epoch"}, default="epoch"
        Only once per epoch.
    initial_value_threshold : float, optional
        The value ``monitor`` must beat for the first save.

    Raises
    ------
    UnsupportedFeatureError
        For another ``save_freq``.
    fusenn.errors.ArgumentError
        For a whole-model ``filepath`` that does not end in ``.keras``, or an unknown mode.
    """

    def __init__(self, filepath: Union[str, "os.PathLike[str]"], monitor: str = "val_loss",
                 verbose: int = 0, save_best_only: bool = False,
                 save_weights_only: bool = False, mode: str = "auto",
                 save_freq: str = "epoch",
                 initial_value_threshold: Optional[float] = None) -> None:
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

    def on_epoch_end(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
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
    ``patience`` epochs; logs ``learning_rate``.

    Parameters
    ----------
    monitor : str, default="val_loss"
        The log key watched.
    factor : float < 1, default=0.1
        The factor of each reduction.
    patience : int, default=10
        Epochs without improvement before a reduction.
    verbose : int, default=0
        1 prints a line at each reduction.
    mode : {"auto", "min", "max"}, default="auto"
        Whether smaller or larger is better.
    min_delta : float, default=1e-4
        Improvements smaller than this do not count.
    cooldown : int, default=0
        Epochs to wait after a reduction before watching again.
    min_lr : float, default=0.0
        The rate is never reduced below it.
    **kwargs
        Refused (:class:`fusenn.errors.ArgumentTypeError`).

    Raises
    ------
    fusenn.errors.ArgumentError
        For ``factor >= 1`` or an unknown mode.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0, **kwargs: Any) -> None:
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

    def on_train_begin(self, logs: Optional[dict[str, Any]] = None) -> None:
        self.best = np.inf if self.monitor_op is np.less else -np.inf
        self.wait = self.cooldown_counter = 0

    def on_epoch_end(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
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

    def on_epoch_end(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print_line(f"Epoch {epoch + 1}: Invalid loss, terminating training")
            self.model.stop_training = True


class CSVLogger(Callback):
    """Write each epoch's logs to a CSV file: ``epoch`` then the log keys, sorted.

    Parameters
    ----------
    filename : str or path-like
        The CSV file.
    separator : str, default=","
        The field separator.
    append : bool, default=False
        Append to an existing file (without a second header) instead of overwriting it.
    """

    def __init__(self, filename: Union[str, "os.PathLike[str]"], separator: str = ",",
                 append: bool = False) -> None:
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, bool(append)
        self.keys: Optional[list[str]] = None
        self._file: Optional[IO[str]] = None
        self._writer: Optional[csv.DictWriter[str]] = None

    def on_train_begin(self, logs: Optional[dict[str, Any]] = None) -> None:
        exists = self.append and os.path.exists(self.filename) and \
            os.path.getsize(self.filename) > 0
        self._header = not exists
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer = None

    def __getstate__(self) -> dict[str, Any]:
        # the open file does not travel: the copy opens its own at its next on_train_begin
        state = self.__dict__.copy()
        state.pop("_file", None)
        state.pop("_writer", None)
        return state

    def on_epoch_end(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
        logs = logs or {}
        assert self._file is not None, "on_train_begin opens the file"
        if self.keys is None:
            self.keys = sorted(logs)
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self.keys,
                                          delimiter=self.sep)
            if self._header:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in self.keys}})
        self._file.flush()

    def on_train_end(self, logs: Optional[dict[str, Any]] = None) -> None:
        if self._file is not None:
            self._file.close()
        self._writer = None


class LambdaCallback(Callback):
    """A callback from functions.

    Parameters
    ----------
    on_epoch_begin, on_epoch_end : callable ``(epoch, logs)``, optional
        Called before and after each epoch.
    on_train_begin, on_train_end : callable ``(logs)``, optional
        Called when ``fit`` starts and ends.
    **batch_hooks
        Keras's per-batch functions: refused when given.

    Raises
    ------
    UnsupportedFeatureError
        For a per-batch function (``on_train_batch_end=...``).

    Examples
    --------
    >>> seen = []
    >>> cb = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    >>> cb.on_epoch_end(0, {}); seen
    [0]
    """

    def __init__(self, on_epoch_begin: Optional[Callable[..., Any]] = None,
                 on_epoch_end: Optional[Callable[..., Any]] = None,
                 on_train_begin: Optional[Callable[..., Any]] = None,
                 on_train_end: Optional[Callable[..., Any]] = None,
                 **batch_hooks: Any) -> None:
        super().__init__()
        given = [k for k, v in batch_hooks.items() if v is not None]
        if given:
            raise unsupported(f"LambdaCallback({', '.join(given)}=...)",
                              "fusenn runs whole epochs in compiled code; use on_epoch_end")
        for name, fn in (("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                         ("on_train_begin", on_train_begin), ("on_train_end", on_train_end)):
            if fn is not None:
                setattr(self, name, fn)


__all__ = ["Callback", "History", "EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau",
           "TerminateOnNaN", "CSVLogger", "LambdaCallback", "check_callback"]

_NAMES = ("Callback", "History", "EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau",
          "TerminateOnNaN", "CSVLogger", "LambdaCallback")
__all__ = list(_NAMES)
__getattr__ = missing_attribute(__name__, _NAMES)
