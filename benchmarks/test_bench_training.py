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


@pytest.mark.parametrize("rows", [True, False], ids=["row-products", "gather-blas"])
def test_mnist_split_fit(benchmark, rows, versions):
    """Time to accuracy on the MNIST 8,000/2,000 split (784-100-10 relu, SGD(lr=0.05,
    momentum=0.9), batch 32, 20 epochs; issue 15's target: 0.40 s of fit), with the Cython
    split epoch's first layer on its row-pointer kernels or gathering each batch for
    OpenBLAS (``use_rowmm``). Both rows run in this process, in the order given; compare them
    within one run. Without the MNIST files, the embedded 8x8 digits stand in."""
    from fusenn.bench.faces import find_mnist_dir
    from fusenn.layers import Dense

    if "cython" not in fn.available_backends():
        pytest.skip("the Cython backend is not available")
    from fusenn.backends import _cython

    folder = find_mnist_dir()
    X, y = fn.datasets.load_mnist(folder) if folder else fn.datasets.load_digits()
    X = X.astype(np.float32)
    n_train = 8000 if folder else 1437
    Xtr, ytr, Xte, yte = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    epochs = 20
    if benchmark.disabled:  # CI only checks that it runs
        Xtr, ytr, epochs = Xtr[:256], ytr[:256], 1
    fits = []

    def fit():
        model = fn.Sequential([Dense(Xtr.shape[1], 100, "relu"), Dense(100, 10)],
                              random_state=0)
        trainer = fn.Trainer(model, optimizer=fn.optim.SGD(lr=0.05, momentum=0.9),
                             batch_size=32, random_state=0)
        with fn.backends.use_backend("cython"):
            trainer.fit(Xtr, ytr, epochs=epochs)
        fits.append((model, trainer.last_path))

    previous = _cython.use_rowmm(rows)
    try:
        benchmark.pedantic(fit, rounds=1 if benchmark.disabled else 3, iterations=1,
                           warmup_rounds=0)
    finally:
        _cython.use_rowmm(previous)
    benchmark.group = "mnist-split-fit"
    benchmark.extra_info.update(versions)
    benchmark.extra_info["data"] = "MNIST t10k" if folder else "8x8 digits"
    benchmark.extra_info["rows_kernels"] = bool(rows and _cython.ROWMM)
    model, path = fits[-1]
    assert path == "fast:cython"
    accuracy = fn.metrics.accuracy(yte, model.predict(Xte))
    benchmark.extra_info["test_accuracy"] = float(accuracy)
    assert accuracy > (0.2 if benchmark.disabled else 0.9)  # (chance: 0.1)
