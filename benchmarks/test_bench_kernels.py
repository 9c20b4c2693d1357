"""The kernel contract on every backend: fusenn's NumPy reference, Cython and Numba.

Each group is one kernel at one shape and dtype, so its rows compare like with like; the dense
forward group also has the straightforward unfused NumPy sequence ``np.maximum(x @ W + b, 0)``
that DESIGN.md's target refers to. Run::

    pytest benchmarks/test_bench_kernels.py --benchmark-only --benchmark-group-by=group

Targets (DESIGN.md): fused dense forward >= 1.3x the unfused NumPy sequence at batch 256,
784 -> 1024, relu, float32; softmax cross-entropy >= 3x NumPy.
"""
import numpy as np
import pytest

import fusenn as fn
from fusenn import activations as A
from fusenn import backends
from fusenn._threads import thread_limits

BACKENDS = ["numpy", "cython", "numba"]
DTYPES = [np.float32, np.float64]
# (batch, n_in, n_out): small (XOR-like), medium (a hidden layer of the medium MLP), large
DENSE_SHAPES = {"small": (4, 2, 8), "medium": (64, 784, 128), "large": (256, 784, 1024)}
ROW_SHAPES = {"small": (10, 10), "medium": (256, 10), "large": (1024, 1000)}
PARAM_SIZES = {"small": 42, "medium": 109_386, "large": 1_863_690}


def _kernels(benchmark, name, dtype, group):
    if name not in fn.available_backends():
        pytest.skip(f"backend {name} not available")
    benchmark.group = group
    benchmark.extra_info.update({"backend": name, "dtype": np.dtype(dtype).name,
                                 "threads": fn.get_num_threads()})
    return backends.get(name)


def _dense_data(shape, dtype):
    m, k, n = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, k)).astype(dtype)
    W = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(dtype)
    b = (rng.standard_normal(n) * 0.1).astype(dtype)
    return x, W, b


def _unfused(x, W, b):
    return np.maximum(x @ W + b, 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("size", list(DENSE_SHAPES))
@pytest.mark.parametrize("path", ["numpy-unfused"] + BACKENDS)
def test_dense_forward(benchmark, path, size, dtype):
    shape = DENSE_SHAPES[size]
    group = f"dense_forward relu {size} {shape} {np.dtype(dtype).name}"
    x, W, b = _dense_data(shape, dtype)
    if path == "numpy-unfused":
        benchmark.group = group
        benchmark.extra_info.update({"backend": path, "dtype": np.dtype(dtype).name})
        benchmark(_unfused, x, W, b)
        return
    be = _kernels(benchmark, path, dtype, group)
    z = np.empty((shape[0], shape[2]), dtype=dtype)
    a = np.empty_like(z)
    with thread_limits():
        benchmark(be.dense_forward, x, W, b, A.RELU, 0.0, 0.0, z, a)
    np.testing.assert_allclose(a, _unfused(x, W, b), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("size", list(DENSE_SHAPES))
@pytest.mark.parametrize("path", BACKENDS)
def test_dense_backward(benchmark, path, size, dtype):
    shape = DENSE_SHAPES[size]
    be = _kernels(benchmark, path, dtype, f"dense_backward relu {size} {shape} "
                                          f"{np.dtype(dtype).name}")
    x, W, b = _dense_data(shape, dtype)
    z = x @ W + b
    a = np.maximum(z, 0)
    dy = np.ones_like(z)
    dz, dW, db, dx = np.empty_like(z), np.empty_like(W), np.empty_like(b), np.empty_like(x)
    with thread_limits():
        benchmark(be.dense_backward, x, W, z, a, dy, A.RELU, 0.0, 0.0, dz, dW, db, dx)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "gelu"])
@pytest.mark.parametrize("path", BACKENDS)
def test_activation(benchmark, path, activation):
    act = A.get(activation)
    be = _kernels(benchmark, path, np.float32, f"activation {activation} 256x1024 float32")
    z = np.random.default_rng(0).standard_normal((256, 1024)).astype(np.float32)
    out = np.empty_like(z)
    benchmark(be.act_forward, z, act.code, act.p0, act.p1, out)


@pytest.mark.parametrize("kernel", ["softmax", "logsumexp", "softmax_xent"])
@pytest.mark.parametrize("size", list(ROW_SHAPES))
@pytest.mark.parametrize("path", BACKENDS)
def test_rows(benchmark, path, size, kernel):
    shape = ROW_SHAPES[size]
    be = _kernels(benchmark, path, np.float32, f"{kernel} {size} {shape} float32")
    rng = np.random.default_rng(1)
    z = (rng.standard_normal(shape) * 3).astype(np.float32)
    if kernel == "softmax":
        benchmark(be.softmax, z, np.empty_like(z))
    elif kernel == "logsumexp":
        benchmark(be.logsumexp, z, np.empty(shape[0], np.float32))
    else:
        labels = rng.integers(0, shape[1], size=shape[0]).astype(np.int64)
        loss = benchmark(be.softmax_xent, z, labels, np.empty_like(z))
        ref = backends.get("numpy").softmax_xent(z, labels, np.empty_like(z))
        assert loss == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd_momentum", "adam"])
@pytest.mark.parametrize("size", list(PARAM_SIZES))
@pytest.mark.parametrize("path", BACKENDS)
def test_optimizer_update(benchmark, path, size, optimizer):
    P = PARAM_SIZES[size]
    be = _kernels(benchmark, path, np.float32, f"{optimizer} {size} P={P} float32")
    rng = np.random.default_rng(2)
    p = rng.standard_normal(P).astype(np.float32)
    g = (rng.standard_normal(P) * 1e-3).astype(np.float32)
    s0, s1 = np.zeros_like(p), np.zeros_like(p)
    if optimizer == "adam":
        benchmark(be.adam_update, p, g, s0, s1, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1)
    else:
        benchmark(be.sgd_update, p, g, s0, 0.01, 0.9, False, 0.0)
