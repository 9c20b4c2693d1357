"""Cython kernels against the NumPy path (pytest-benchmark).

Two kernels with targets in DESIGN.md:

* fused dense forward ``relu(x @ W + b)``, batch 256, 784 -> 1024, float32: the Cython kernel
  (sgemm + one fused bias/ReLU pass into preallocated outputs) against the unfused NumPy
  sequence ``np.maximum(x @ W + b, 0)`` (target >= 1.3x) and against the NumPy backend's
  kernel (same preallocated outputs);
* softmax cross-entropy (loss and gradient) of 256 x 10 float32 logits: Cython against the
  NumPy backend's kernel (target >= 3x).

Run them with ``pytest benchmarks/test_bench_cython_kernels.py --benchmark-group-by=group``.
Each entry records the path that ran (backend, OpenMP, threads) in ``extra_info``.

Two OpenBLAS pools (numpy's and scipy's, behind ``cython_blas``) in one process compete for
the cores (DESIGN.md, "Measured pitfalls"), so the in-process numbers mix both effects. Running
this file as a script measures each variant in its own process and prints the ratios::

    python benchmarks/test_bench_cython_kernels.py
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

BATCH, N_IN, N_OUT = 256, 784, 1024
XENT_ROWS, XENT_CLASSES = 256, 10
RELU = 7


def _dense_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, N_IN)).astype(np.float32)
    W = (rng.standard_normal((N_IN, N_OUT)) * 0.05).astype(np.float32)
    b = (rng.standard_normal(N_OUT) * 0.1).astype(np.float32)
    return x, W, b


def _xent_data():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((XENT_ROWS, XENT_CLASSES)).astype(np.float32)
    labels = rng.integers(0, XENT_CLASSES, XENT_ROWS).astype(np.int64)
    return logits, labels


def _backend(name):
    from fusenn import backends

    if name not in backends.available_backends():
        pytest.skip(f"backend {name!r} not available: "
                    f"{backends.unavailable_reasons().get(name)}")
    return backends.get(name)


def _info(benchmark, name):
    import fusenn

    benchmark.extra_info["path"] = name
    benchmark.extra_info["threads"] = fusenn.get_num_threads()
    if name == "cython":
        benchmark.extra_info["openmp"] = _backend("cython").OPENMP


# --------------------------------------------------------------------------- callables
def _dense_callable(variant):
    """A no-argument function running the dense forward of ``variant``, and its output."""
    x, W, b = _dense_data()
    if variant == "numpy-unfused":
        return (lambda: np.maximum(x @ W + b, 0)), None
    mod = _backend("cython" if variant == "cython" else "numpy")
    z = np.empty((BATCH, N_OUT), dtype=np.float32)
    a = np.empty_like(z)
    return (lambda: mod.dense_forward(x, W, b, RELU, 0.0, 0.0, z, a)), a


def _xent_callable(variant):
    logits, labels = _xent_data()
    mod = _backend(variant)
    grad = np.empty_like(logits)
    return lambda: mod.softmax_xent(logits, labels, grad)


# --------------------------------------------------------------------------- benchmarks
@pytest.mark.benchmark(group="dense_forward 256x784->1024 relu f32")
@pytest.mark.parametrize("variant", ["numpy-unfused", "numpy", "cython"])
def test_dense_forward(benchmark, variant):
    fn, a = _dense_callable(variant)
    _info(benchmark, variant)
    benchmark(fn)
    x, W, b = _dense_data()
    got = fn() if a is None else a
    np.testing.assert_allclose(got, np.maximum(x @ W + b, 0), rtol=1e-4, atol=1e-4)


@pytest.mark.benchmark(group="softmax_xent 256x10 f32")
@pytest.mark.parametrize("variant", ["numpy", "cython"])
def test_softmax_xent(benchmark, variant):
    fn = _xent_callable(variant)
    _info(benchmark, variant)
    loss = benchmark(fn)
    assert np.isfinite(loss)


# --------------------------------------------------------------------------- script mode
def _best_time(fn, number, repeat=7):
    for _ in range(max(3, number // 10)):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def _measure(kernel, variant):
    fn = _dense_callable(variant)[0] if kernel == "dense" else _xent_callable(variant)
    return _best_time(fn, 50 if kernel == "dense" else 2000)


def main():
    """Each variant in its own process; print seconds per call and the ratios."""
    if len(sys.argv) == 3:  # child: one measurement
        print(json.dumps(_measure(sys.argv[1], sys.argv[2])))
        return
    results = {}
    for kernel, variants in (("dense", ["numpy-unfused", "numpy", "cython"]),
                             ("xent", ["numpy", "cython"])):
        for variant in variants:
            out = subprocess.run([sys.executable, __file__, kernel, variant], check=True,
                                 capture_output=True, text=True, env=dict(os.environ))
            results[kernel, variant] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{kernel:6s} {variant:14s} {results[kernel, variant] * 1e6:10.1f} us")
    d = results
    print(f"dense forward: cython vs unfused numpy {d['dense', 'numpy-unfused'] / d['dense', 'cython']:.2f}x"
          f" (target >= 1.3x), vs numpy backend {d['dense', 'numpy'] / d['dense', 'cython']:.2f}x")
    print(f"softmax xent: cython vs numpy backend {d['xent', 'numpy'] / d['xent', 'cython']:.2f}x"
          " (target >= 3x)")


if __name__ == "__main__":
    main()
