"""The thread policy: one thread for small work, every free core above the measured crossover,
and the user's number whenever one is set."""
import subprocess
import sys
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import fusenn as fn
from fusenn import _threads
from fusenn.layers import Dense


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(_threads, "cpu_count", lambda: 2)
    monkeypatch.setattr(_threads, "busy_elsewhere", lambda cores=None: 0)
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


def test_the_split_epoch_follows_its_table(two_cores, monkeypatch):
    """The Cython backend's split epoch: every free core from SPLIT_FROM to SPLIT_BELOW
    multiply-adds per batch, one thread (no split) outside, and the user's number inside."""
    lo, hi = _threads.SPLIT_FROM, _threads.SPLIT_BELOW
    assert _threads.split_threads(lo - 1) == 1
    assert _threads.split_threads(lo) == 2
    assert _threads.split_threads(_threads.ONE_THREAD_BELOW) == 2
    assert _threads.split_threads(hi - 1) == 2
    assert _threads.split_threads(hi) == 1
    monkeypatch.setattr(_threads, "busy_elsewhere", lambda cores=None: 1)
    assert _threads.split_threads(lo) == 1
    fn.set_num_threads(3)
    assert _threads.split_threads(lo) == 3
    assert _threads.split_threads(hi) == 1


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


def test_cores_other_processes_keep_busy_are_left_to_them(two_cores, monkeypatch):
    big = 10 * _threads.ONE_THREAD_BELOW
    monkeypatch.setattr(_threads, "busy_elsewhere", lambda cores=None: 1)
    assert _threads.threads_for(big) == 1
    monkeypatch.setattr(_threads, "busy_elsewhere", lambda cores=None: 2)
    assert _threads.threads_for(big) == 1  # never fewer than one
    fn.set_num_threads(2)  # the user's number still wins
    assert _threads.threads_for(big) == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_busy_process_is_seen():
    idle = _threads.busy_elsewhere(2)
    assert 0 <= idle <= 2
    spin = subprocess.Popen([sys.executable, "-c", "print('ready', flush=True)\nwhile True: pass"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert spin.stdout.readline().strip() == "ready"
        seen = []
        for _ in range(50):  # the spinning child is runnable nearly all the time
            seen.append(_threads.busy_elsewhere(2))
            if seen[-1] >= 1:
                break
            time.sleep(0.01)
        assert max(seen) >= 1, seen
    finally:
        spin.kill()
        spin.wait()
