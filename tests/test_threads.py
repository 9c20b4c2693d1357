"""The thread policy: one thread for small work, every core above the measured crossover, and
the user's number whenever one is set."""
import numpy as np
import pytest
from threadpoolctl import threadpool_info

import fusenn as fn
from fusenn import _threads
from fusenn.layers import Dense


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(_threads, "cpu_count", lambda: 2)
    monkeypatch.delenv("FUSENN_NUM_THREADS", raising=False)
    fn.set_num_threads(None)
    yield
    fn.set_num_threads(None)


def test_threads_follow_the_table(two_cores):
    below = _threads.ONE_THREAD_BELOW
    assert _threads.threads_for(below - 1) == 1
    assert _threads.threads_for(below) == 2
    assert _threads.threads_for(10 * below) == 2


def test_a_number_the_user_set_wins(two_cores, monkeypatch):
    fn.set_num_threads(2)
    assert _threads.threads_for(1) == 2
    fn.set_num_threads(None)
    monkeypatch.setenv("FUSENN_NUM_THREADS", "2")
    assert _threads.threads_for(1) == 2
    monkeypatch.setenv("FUSENN_NUM_THREADS", "1")
    assert _threads.threads_for(10 * _threads.ONE_THREAD_BELOW) == 1


def _blas_threads_during_fit(widths, batch_size):
    seen = []

    class Look(fn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append({p["num_threads"] for p in threadpool_info()
                         if p["user_api"] == "blas"})

    layers = [Dense(a, b, "relu") for a, b in zip(widths[:-1], widths[1:])]
    model = fn.Sequential(layers, dtype=np.float32, random_state=0)
    X = np.random.default_rng(0).standard_normal((64, widths[0])).astype(np.float32)
    y = np.arange(64) % widths[-1]
    fn.Trainer(model, batch_size=batch_size, callbacks=[Look()]).fit(X, y, epochs=1)
    return seen[0]


def test_fit_runs_a_small_network_on_one_thread(two_cores):
    work = 16 * (8 * 16 + 16 * 4)
    assert work < _threads.ONE_THREAD_BELOW
    assert _blas_threads_during_fit((8, 16, 4), 16) == {1}


def test_fit_runs_a_large_network_on_every_core(two_cores, monkeypatch):
    monkeypatch.setattr(_threads, "ONE_THREAD_BELOW", 100)
    assert _blas_threads_during_fit((8, 16, 4), 16) == {2}
