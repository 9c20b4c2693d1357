"""fusenn.callbacks.MonitorCallback: the watching of a logged value that EarlyStopping is built
on (EarlyStopping's training behaviour is tested in test_trainer.py)."""
import numpy as np
import pytest

import fusenn as fn
from fusenn.callbacks import EarlyStopping, MonitorCallback
from support import bad_input


class Plateaus(MonitorCallback):
    """Counts the epochs without improvement, as a plateau schedule would."""

    def on_epoch_end(self, epoch, logs=None):
        value = self._value(logs)
        if self._improved(value):
            self.best, self.wait = value, 0
        else:
            self.wait += 1


def _feed(callback, key, values):
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {key: value})
    return callback


@pytest.mark.parametrize("monitor, mode, best", [("loss", "min", np.inf),
                                                 ("val_loss", "min", np.inf),
                                                 ("accuracy", "max", -np.inf),
                                                 ("val_accuracy", "max", -np.inf),
                                                 ("val_top5_acc", "max", -np.inf),
                                                 ("mse", "min", np.inf)])
def test_auto_mode_and_reset(monitor, mode, best):
    cb = Plateaus(monitor, patience=1)
    assert cb.mode == mode
    cb.on_train_begin()
    assert cb.best == best and cb.wait == 0


def test_improvement_needs_more_than_min_delta():
    cb = _feed(Plateaus("loss", patience=0, min_delta=0.1), "loss", [1.0, 0.95, 0.85, 0.9])
    assert cb.best == 0.85 and cb.wait == 1
    cb = _feed(Plateaus("accuracy", patience=0), "accuracy", [0.5, 0.7, 0.7, 0.6])
    assert cb.best == 0.7 and cb.wait == 2
    cb = _feed(Plateaus("accuracy", patience=0, mode="min"), "accuracy", [0.5, 0.7])
    assert cb.best == 0.5 and cb.wait == 1


def test_missing_key_names_the_callback():
    cb = Plateaus("val_loss", patience=0)
    cb.on_train_begin()
    with pytest.raises(KeyError, match=r"Plateaus monitors 'val_loss', which is not among the "
                                       r"logged values \['loss'\]"):
        cb.on_epoch_end(0, {"loss": 1.0})
    stop = EarlyStopping(monitor="val_loss")
    stop.on_train_begin()
    with pytest.raises(KeyError, match=r"EarlyStopping monitors 'val_loss'.*\(give validation"):
        stop.on_epoch_end(0, {"loss": 1.0})


@pytest.mark.parametrize("kwargs, match", [({"patience": -1}, "patience"),
                                           ({"patience": 1.5}, "patience"),
                                           ({"min_delta": -0.1}, "min_delta"),
                                           ({"mode": "lowest"}, "mode")])
def test_bad_settings(kwargs, match):
    settings = {"patience": 1, **kwargs}
    with bad_input(ValueError, match=match):
        Plateaus("loss", **settings)
    with bad_input(ValueError, match=match):
        EarlyStopping(monitor="loss", **settings)


def test_early_stopping_is_a_monitor():
    assert issubclass(fn.callbacks.EarlyStopping, fn.callbacks.MonitorCallback)
