"""Benchmarks of the Numba kernels against the NumPy path (and Cython where built).

Run: ``pytest benchmarks/test_bench_numba_kernels.py --benchmark-group-by=group``. Each group
times one kernel on every path; the ratio of the means is the speed-up. The ``start`` group
runs a fresh interpreter that fits one small epoch, once with an empty Numba cache (cold: the
kernels compile) and once with the cache filled (warm: they load), and records both first-call
times in ``extra_info`` (``--benchmark-json`` keeps them).

Targets (DESIGN.md): fused dense forward >= 1.3x the unfused NumPy sequence at batch 256,
784 -> 1024, relu, float32; softmax cross-entropy >= 3x NumPy.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fusenn
from fusenn import activations as A
from fusenn import backends
from fusenn.backends import _numpy as ref

pytest.importorskip("pytest_benchmark")


def _backend(name):
    if name not in backends.available_backends():
        pytest.skip(f"backend {name} not available")
    return backends.get(name)


# --------------------------------------------------------------------------- fused dense forward
@pytest.fixture(scope="module")
def dense_inputs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 784)).astype(np.float32)
    W = (rng.standard_normal((784, 1024)) / 28).astype(np.float32)
    b = rng.standard_normal(1024).astype(np.float32)
    return x, W, b


def _unfused_numpy(x, W, b):
    """The straightforward NumPy sequence: product, bias, relu (three passes)."""
    y = x @ W
    y += b
    return np.maximum(y, 0, out=y)


@pytest.mark.benchmark(group="dense_forward 256x784->1024 relu f32")
@pytest.mark.parametrize("path", ["numpy-unfused", "numpy", "numba", "cython"])
def test_dense_forward(benchmark, dense_inputs, path):
    x, W, b = dense_inputs
    benchmark.extra_info["path"] = path
    if path == "numpy-unfused":
        benchmark(_unfused_numpy, x, W, b)
        return
    mod = _backend(path)
    z = np.empty((x.shape[0], W.shape[1]), np.float32)
    a = np.empty_like(z)
    with fusenn._threads.thread_limits():
        benchmark(mod.dense_forward, x, W, b, A.RELU, 0.0, 0.0, z, a)
    want = _unfused_numpy(x, W, b)
    np.testing.assert_allclose(a, want, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- softmax cross-entropy
@pytest.mark.parametrize("shape", [(256, 10), (1024, 1000)], ids=["256x10", "1024x1000"])
@pytest.mark.parametrize("path", ["numpy", "numba", "cython"])
def test_softmax_xent(benchmark, path, shape):
    benchmark.group = f"softmax_xent {shape[0]}x{shape[1]} f32"
    benchmark.extra_info["path"] = path
    mod = ref if path == "numpy" else _backend(path)
    rng = np.random.default_rng(1)
    z = (rng.standard_normal(shape) * 3).astype(np.float32)
    labels = rng.integers(0, shape[1], size=shape[0]).astype(np.int64)
    grad = np.empty_like(z)
    loss = benchmark(mod.softmax_xent, z, labels, grad)
    assert loss == pytest.approx(ref.softmax_xent(z, labels, np.empty_like(z)), rel=1e-5)


# --------------------------------------------------------------------------- cold / warm start
_FIRST_FIT = textwrap.dedent("""
    import json, time
    t0 = time.perf_counter()
    import numpy as np
    import fusenn
    from fusenn.backends import _numba as nb
    t_import = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    widths = np.array([64, 32, 10]); P = 64 * 32 + 32 + 32 * 10 + 10
    X = rng.standard_normal((256, 64)).astype(np.float32)
    labels = rng.integers(0, 10, 256)
    flat = (rng.standard_normal(P) * 0.1).astype(np.float32)
    hyper = np.array([0.1, 0, 0, 0, 0.9, 0.999, 1e-8, 0.9, 0])
    t1 = time.perf_counter()
    nb.train_epoch(flat, np.zeros_like(flat), widths, np.array([7, 0]), np.zeros((2, 2)), X,
                   labels, np.empty((0, 10), np.float32), np.arange(256), 32, 0, 0, hyper,
                   np.zeros((2, P), np.float32), np.empty(8))
    t_first = time.perf_counter() - t1
    t2 = time.perf_counter()
    nb.train_epoch(flat, np.zeros_like(flat), widths, np.array([7, 0]), np.zeros((2, 2)), X,
                   labels, np.empty((0, 10), np.float32), np.arange(256), 32, 0, 0, hyper,
                   np.zeros((2, P), np.float32), np.empty(8))
    t_second = time.perf_counter() - t2
    print(json.dumps({"import_s": t_import, "first_epoch_s": t_first,
                      "second_epoch_s": t_second}))
""")


def _fresh_process(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    out = subprocess.run([sys.executable, "-c", _FIRST_FIT], env=env, capture_output=True,
                         text=True, check=True, timeout=900)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.benchmark(group="start: first train_epoch in a fresh process (numba)")
def test_cold_and_warm_start(benchmark, tmp_path):
    pytest.importorskip("numba")
    cache = tmp_path / "numba-cache"
    cold = _fresh_process(cache)  # empty cache: compiles and fills it
    warm = benchmark.pedantic(_fresh_process, args=(cache,), rounds=3, iterations=1)
    benchmark.extra_info.update({"cold_first_epoch_s": cold["first_epoch_s"],
                                 "warm_first_epoch_s": warm["first_epoch_s"],
                                 "steady_epoch_s": warm["second_epoch_s"],
                                 "import_s": warm["import_s"]})
    print(f"\nnumba first train_epoch: cold {cold['first_epoch_s']:.2f} s, "
          f"warm {warm['first_epoch_s']:.3f} s, steady {warm['second_epoch_s'] * 1e3:.2f} ms")
    assert warm["first_epoch_s"] < cold["first_epoch_s"]
