"""How close fusenn's dense kernels and whole epochs come to the machine's matrix-product peak.

``python -m fusenn.bench.roofline`` measures, in this process and on fusenn's thread count:

* the **sgemm peak**: the best rate of ``np.dot`` of two square float32 matrices (the BLAS
  behind NumPy, which the compiled backends call as well);
* the **fusion's overhead**: the compiled ``dense_forward`` (product, bias and activation in
  one call) against the bare product ``np.dot(x, W, out=z)`` of the same shape, for each
  layer of the training configurations at their batch size;
* the **epoch's rate**: a whole training epoch of a configuration in floating-point operations
  per second, counting only the operations an epoch needs (forward products, the weight
  gradients, and the input gradients of every layer but the first), as a share of the peak.
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np

from .._threads import get_num_threads, thread_limits
from .training import CONFIGS, make_data


def best_seconds(func: Callable[[], Any], repeat: int = 5, min_time: float = 0.05) -> float:
    """The best time of one call of ``func`` over ``repeat`` rounds of at least ``min_time``."""
    func()
    best = np.inf
    for _ in range(repeat):
        calls, start = 0, time.perf_counter()
        while True:
            func()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = min(best, elapsed / calls)
    return best


def sgemm_peak(size: int = 2048, repeat: int = 5) -> float:
    """GFLOP/s of the best float32 square product of ``size``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    with thread_limits():
        seconds = best_seconds(lambda: np.dot(a, b, out=out), repeat)
    return 2.0 * size ** 3 / seconds / 1e9


def dense_overhead(rows: int, n_in: int, n_out: int, backend: str = "cython",
                   activation: str = "relu", repeat: int = 5) -> Tuple[float, float]:
    """``(fused seconds, bare product seconds)`` of one dense forward of this shape."""
    from .. import activations, backends

    be = backends.get(backend)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, n_in), dtype=np.float32)
    W = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
    b = np.zeros(n_out, dtype=np.float32)
    z, a = np.empty((rows, n_out), np.float32), np.empty((rows, n_out), np.float32)
    act = activations.get(activation)
    with thread_limits():
        fused = best_seconds(lambda: be.dense_forward(x, W, b, act.code, act.p0, act.p1, z, a),
                             repeat)
        bare = best_seconds(lambda: np.dot(x, W, out=z), repeat)
    return fused, bare


def epoch_flops(widths: Sequence[int], n: int) -> float:
    """Floating-point operations one epoch over ``n`` samples needs: 2 per multiply-add of the
    forward products, the weight gradients, and the input gradients after the first layer."""
    products = [a * b for a, b in zip(widths[:-1], widths[1:])]
    return 2.0 * n * (2 * sum(products) + sum(products[1:]))


def epoch_rate(name: str = "large", backend: str = "cython", repeat: int = 3
               ) -> Tuple[float, float]:
    """``(GFLOP/s, seconds)`` of one training epoch of configuration ``name``."""
    from .training import fusenn_runner

    cfg = CONFIGS[name]
    X, y = make_data(cfg)
    epoch = fusenn_runner(cfg, backend, X, y)
    with thread_limits():
        seconds = best_seconds(epoch, repeat, min_time=0.0)
    return epoch_flops(cfg.sizes, X.shape[0]) / seconds / 1e9, seconds


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="cython")
    parser.add_argument("--config", default="large")
    args = parser.parse_args(argv)
    peak = sgemm_peak()
    print(f"threads: {get_num_threads()}  sgemm peak: {peak:.1f} GFLOP/s")
    print(f"{'shape':>18} {'fused':>10} {'bare':>10} {'overhead':>9}")
    for cfg in CONFIGS.values():
        for n_in, n_out in zip(cfg.sizes[:-1], cfg.sizes[1:]):
            fused, bare = dense_overhead(cfg.batch_size, n_in, n_out, args.backend)
            shape = f"{cfg.batch_size}x{n_in}x{n_out}"
            print(f"{shape:>18} {fused * 1e6:>8.1f}us {bare * 1e6:>8.1f}us "
                  f"{fused / bare - 1:>+8.1%}")
    rate, seconds = epoch_rate(args.config, args.backend)
    print(f"{args.config} epoch: {seconds:.3f} s, {rate:.1f} GFLOP/s = {rate / peak:.0%} of "
          f"the sgemm peak")


if __name__ == "__main__":  # pragma: no cover
    main()
