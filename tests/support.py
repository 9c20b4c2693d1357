"""Helpers shared by the tests: where the shared data lives, central finite differences
(the check of every analytic gradient in the suite), and a few epochs of a backend's
train_epoch."""
from pathlib import Path

import numpy as np

#: ../shared/data beside the repository (MNIST test set, UCI 8x8 digits)
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def numeric_grad(f, x, eps=1e-6):
    """Central finite differences of scalar f wrt array x (modified in place, restored)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def run_epochs(mod, prob, batch_size, loss_code, opt_code, hyper, epochs=2):
    """``epochs`` calls of ``mod.train_epoch`` on the problem dict ``prob`` (flat, state,
    widths, codes, params, X, labels, targets, perm), on copies of its parameters and state;
    returns (flat, state, losses of every batch, batches completed per epoch)."""
    from fusenn.backends._numpy import H_STEP

    flat, state = prob["flat"].copy(), prob["state"].copy()
    grad = np.zeros_like(flat)
    hyper = hyper.copy()
    n_batches = -(-prob["X"].shape[0] // batch_size)
    losses, done = [], []
    for _ in range(epochs):
        out = np.full(n_batches, np.nan)
        k = mod.train_epoch(flat, grad, prob["widths"], prob["codes"], prob["params"],
                            prob["X"], prob["labels"], prob["targets"], prob["perm"],
                            batch_size, loss_code, opt_code, hyper, state, out)
        done.append(int(k))
        losses.append(out)
        hyper[H_STEP] += k
    return flat, state, np.concatenate(losses), done


def bad_input(builtin, match=None):
    """``pytest.raises(builtin, match=match)`` that also checks the error is a FusennError
    (the project's error policy: bad input raises a fusenn.errors class that subclasses the
    built-in a user would catch)."""
    import contextlib

    import pytest

    from fusenn.errors import FusennError

    @contextlib.contextmanager
    def check():
        with pytest.raises(builtin, match=match) as info:
            yield info
        assert isinstance(info.value, FusennError), (
            f"{type(info.value).__name__}: {info.value} is not a FusennError")

    return check()


def split_epoch_on(cy, monkeypatch, threads):
    """A fixture body: make the Cython backend ``cy``'s train_epoch take its split epoch on
    ``threads`` threads for any problem size (skipped where it is not built); yields
    ``threads``."""
    import pytest

    import fusenn
    from fusenn import _threads

    if not cy.SPLIT_EPOCH:
        pytest.skip("built without OpenMP or the spin barrier: no split epoch")
    monkeypatch.setattr(_threads, "SPLIT_FROM", 0)
    monkeypatch.setattr(_threads, "busy_elsewhere", lambda cores=None: 0)
    fusenn.set_num_threads(threads)
    try:
        yield threads
    finally:
        fusenn.set_num_threads(None)
