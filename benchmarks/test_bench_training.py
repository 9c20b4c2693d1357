"""One epoch of the four DESIGN.md configurations, every fusenn path and every installed peer.

Rows of a group compare like with like (one configuration). Run with
``pytest benchmarks/test_bench_training.py --benchmark-only --benchmark-group-by=group``;
``fusenn bench`` prints the same comparison as one table with ratios, and runs every path in
a process of its own: here all paths share one process, and once the Cython backend has
started libgomp with passive waiting, PyTorch (which shares that libgomp) runs slower than it
would alone, so the PyTorch rows of this suite understate it.

The JAX peers (``jax-step``, ``jax-scan``) are checked here, not in tests/: where JAX is
installed, :func:`test_jax_peers_train_fusenns_network` runs both on a few batches in order
and finds fusenn's weights after the epoch; without JAX they are skipped, like PyTorch.
"""
import numpy as np
import pytest

import fusenn as fn
from fusenn import bench

PATHS = ["fusenn-numpy", "fusenn-cython", "fusenn-numba", "plain-numpy", "torch", "sklearn",
         "jax-step", "jax-scan"]


@pytest.mark.parametrize("config", list(bench.CONFIGS))
@pytest.mark.parametrize("path", PATHS)
def test_train_one_epoch(benchmark, config, path, versions):
    cfg = bench.CONFIGS[config]
    if path.startswith("fusenn-") and path[7:] not in fn.available_backends():
        pytest.skip(f"{path} not available")
    X, y = bench.make_data(cfg)
    make = bench.runners(cfg, X, y, include=[path])[path]
    try:
        if benchmark.disabled:
            # CI only checks that the benchmark runs: a small slice of the data is enough
            X, y = X[:4 * cfg.batch_size], y[:4 * cfg.batch_size]
            make = bench.runners(cfg, X, y, include=[path])[path]
        epoch = make()
    except ImportError as exc:
        pytest.skip(f"{exc.name} not installed")
    benchmark.group = f"train-{config}"
    benchmark.extra_info.update(versions)
    benchmark.extra_info["samples"] = int(X.shape[0])
    benchmark.extra_info["dtype"] = "float32"
    ran = benchmark.pedantic(epoch, rounds=1 if benchmark.disabled else 3, iterations=1,
                             warmup_rounds=0)
    benchmark.extra_info["ran"] = ran
    if path.startswith("fusenn-"):
        assert ran.endswith(path[7:])


@pytest.mark.parametrize("config", ["xor", "nielsen", "medium"])
@pytest.mark.parametrize("path", ["jax-step", "jax-scan"])
def test_jax_peers_train_fusenns_network(benchmark, config, path):
    """One epoch of a JAX peer, samples in order, ends on the weights of fusenn's SGD epoch
    from the same start (a last, smaller batch included); then the epoch is timed."""
    pytest.importorskip("jax")
    cfg = bench.CONFIGS[config]
    X, y = bench.make_data(cfg)
    X, y = X[:5 * cfg.batch_size + 3], y[:5 * cfg.batch_size + 3]
    model = bench.fusenn_mlp(cfg)
    fn.Trainer(model, optimizer=fn.optim.SGD(lr=bench.LR), batch_size=cfg.batch_size,
               shuffle=False, metrics=[]).fit(X, y, epochs=1)
    runner = {"jax-step": bench.jax_step_runner, "jax-scan": bench.jax_scan_runner}[path]
    epoch = runner(cfg, X, y, shuffle=False)  # its warm-up is the epoch compared
    assert len(epoch.weights()) == len(model.get_weights())
    for ours, theirs in zip(model.get_weights(), epoch.weights()):
        np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-6)
    benchmark.group = f"jax-check-{config}"
    assert benchmark.pedantic(epoch, rounds=1, iterations=1) == path
