"""``fusenn.functional`` against the plain NumPy expression each call replaces, in a hand-written
loop (float32): ``linear(x, W, b, "relu")`` against ``np.maximum(x @ W + b, 0)``,
``softmax`` against the max-subtracted exponentials, and ``softmax_cross_entropy`` against
the log-sum-exp expression with its gradient. Both sides give the same numbers (checked once).
Run::

    pytest benchmarks/test_bench_functional.py --benchmark-only --benchmark-group-by=group
"""
import numpy as np
import pytest

import fusenn as fn

#: (rows, inputs, outputs) of the dense cases: a tiny layer, a mini-batch of the medium
#: network's first layer, and one of the large network's hidden layers.
SHAPES = [(8, 64, 32), (64, 784, 128), (512, 1024, 1024)]


def _numpy_linear(x, W, b):
    return np.maximum(x @ W + b, 0)


def _numpy_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _numpy_xent(z, labels):
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    loss = np.mean(lse - z[np.arange(z.shape[0]), labels])
    grad = np.exp(z - lse[:, None])
    grad[np.arange(z.shape[0]), labels] -= 1
    return loss, grad / z.shape[0]


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    n, d, k = shape
    x = rng.standard_normal((n, d)).astype(np.float32)
    W = (rng.standard_normal((d, k)) / np.sqrt(d)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    return x, W, b


def _run(benchmark, group, func, args):
    benchmark.group = group
    return benchmark.pedantic(func, args=args, rounds=1 if benchmark.disabled else 20,
                              iterations=1 if benchmark.disabled else 10, warmup_rounds=1)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("path", ["fusenn", "numpy"])
def test_linear(benchmark, shape, path):
    x, W, b = _data(shape)
    func = (lambda *a: fn.functional.linear(*a, "relu")) if path == "fusenn" else _numpy_linear
    out = _run(benchmark, f"linear-{'x'.join(map(str, shape))}", func, (x, W, b))
    np.testing.assert_allclose(out, _numpy_linear(x, W, b), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(64, 10), (512, 1000)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("path", ["fusenn", "numpy"])
def test_softmax(benchmark, shape, path):
    z = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    func = fn.functional.softmax if path == "fusenn" else _numpy_softmax
    out = _run(benchmark, f"softmax-{'x'.join(map(str, shape))}", func, (z,))
    np.testing.assert_allclose(out, _numpy_softmax(z), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(64, 10), (512, 1000)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("path", ["fusenn", "numpy"])
def test_softmax_cross_entropy(benchmark, shape, path):
    rng = np.random.default_rng(2)
    z = rng.standard_normal(shape).astype(np.float32)
    labels = rng.integers(0, shape[1], shape[0])
    func = fn.functional.softmax_cross_entropy if path == "fusenn" else _numpy_xent
    loss, grad = _run(benchmark, f"softmax_xent-{'x'.join(map(str, shape))}", func, (z, labels))
    ref_loss, ref_grad = _numpy_xent(z, labels)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-6)
