"""Dropout and early stopping on the 8x8 digits: validation curves.

A wide network trained on only 300 images fits them perfectly (training loss towards 0), while
its validation loss stops falling after about 20 epochs and creeps up: beyond that it learns
the training images' particulars, not digits (overfitting). Two of the
notes' remedies, side by side:

* dropout (each hidden unit zeroed with probability 1/2 while training) keeps the training
  loss from reaching 0 and the validation loss lower at the end;
* early stopping watches the validation loss, stops once it has not improved for ``patience``
  epochs, and restores the weights of the best epoch (marked in the figure).

    python examples/dropout_early_stopping.py OUTDIR   # OUTDIR/dropout_early_stopping.png
"""
import argparse
import os

import matplotlib

matplotlib.use("Agg")  # write files, never open a window
import matplotlib.pyplot as plt  # noqa: E402

import fusenn as fn  # noqa: E402
import fusenn.plot  # noqa: E402,F401
from fusenn.layers import Dense, Dropout  # noqa: E402

EPOCHS, HIDDEN = 40, 256


def network(dropout):
    layers = [Dense(64, HIDDEN, "relu")] + ([Dropout(0.5)] if dropout else []) + \
        [Dense(HIDDEN, 10)]
    return fn.Sequential(layers, random_state=0)


def train(model, data, callbacks=()):
    Xtr, ytr, Xv, yv = data
    return fn.Trainer(model, optimizer=fn.optim.Adam(lr=3e-3), random_state=0,
                      callbacks=list(callbacks)).fit(Xtr, ytr, epochs=EPOCHS,
                                                     validation_data=(Xv, yv))


def main(argv=None):
    """Train the three runs, draw their curves into ``OUTDIR``; return their numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="folder for the figure (created if missing)")
    outdir = parser.parse_args(argv).outdir
    os.makedirs(outdir, exist_ok=True)

    X, y = fn.datasets.load_digits()
    Xtr, Xv, ytr, yv = fn.datasets.train_test_split(X, y, test_size=0.5, random_state=0,
                                                    stratify=True)
    data = (Xtr[:300], ytr[:300], Xv[:500], yv[:500])  # few images: easy to overfit

    plain = train(network(False), data)
    dropped = train(network(True), data)
    stopper = fn.callbacks.EarlyStopping(monitor="val_loss", patience=5)
    stopped = train(network(False), data, [stopper])

    fig, axes = plt.subplots(2, 3, figsize=(14, 7), layout="constrained")
    runs = (("no regularisation", plain), ("dropout 0.5", dropped),
            ("early stopping (patience 5)", stopped))
    for column, (name, history) in enumerate(runs):
        fn.plot.history(history, ax=axes[:, column])
        axes[0, column].set_title(f"{name}: loss", fontsize=10)
        axes[1, column].set_title(f"{name}: accuracy", fontsize=10)
    for row in range(2):  # one scale per row, to compare the runs
        low = min(a.get_ylim()[0] for a in axes[row])
        high = max(a.get_ylim()[1] for a in axes[row])
        for a in axes[row]:
            a.set_ylim(low, high)
    path = fn.plot.save(fig, os.path.join(outdir, "dropout_early_stopping.png"), dpi=80)
    plt.close(fig)
    best = min(range(len(plain["val_loss"])), key=plain["val_loss"].__getitem__)
    return {"figure": path,
            "plain": {"best_epoch": best, "best_val_loss": plain["val_loss"][best],
                      "last_val_loss": plain["val_loss"][-1]},
            "dropout": {"last_val_loss": dropped["val_loss"][-1]},
            "early_stopping": {"stopped_epoch": stopper.stopped_epoch,
                               "restored_epoch": stopper.best_epoch,
                               "best_val_loss": stopper.best}}


if __name__ == "__main__":
    print(main())
