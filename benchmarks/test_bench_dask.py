"""Dask predict scaling: ``fusenn.dask.predict`` on a LocalCluster of one worker, then of two
(each worker one process with one thread, ``FUSENN_NUM_THREADS=1``), over 2,000,000 rows.

The rows (float32, 64 features) are made and kept on the workers first (``persist``), so the
timing is the prediction alone: the 64-128-64-10 relu network is scattered to the workers
once and every block of 100,000 rows is predicted where it lives; only the per-block sums of
the labels come back. Issue 16's target: two workers >= 1.7x the rows per second of one.
When the benchmark is disabled (CI), 20,000 rows only check that it runs::

    pytest benchmarks/test_bench_dask.py --benchmark-only --benchmark-group-by=group
"""
import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster, wait

import fusenn as fn
from fusenn import dask as fdask

ROWS = 2_000_000
#: Rows predicted when the benchmark is disabled (CI only checks that it runs).
CHECK_ROWS = 20_000
CHUNK_ROWS = 100_000
FEATURES = 64


@pytest.mark.parametrize("workers", [1, 2])
def test_dask_predict_scaling(benchmark, workers, versions):
    rows = CHECK_ROWS if benchmark.disabled else ROWS
    chunk = min(CHUNK_ROWS, rows // 4)
    net = fn.Sequential([fn.layers.Dense(FEATURES, 128, "relu"), fn.layers.Dense(128, 64, "relu"),
                         fn.layers.Dense(64, 10, "softmax")], random_state=0)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, env={"FUSENN_NUM_THREADS": "1"}) as cluster, \
            Client(cluster) as client:
        X = da.random.default_rng(0).random((rows, FEATURES), chunks=(chunk, FEATURES),
                                            dtype=np.float32)
        X = client.persist(X)
        wait(X)
        threads = set(client.run(fn.get_num_threads).values())

        def run():
            return int(fdask.predict(net, X).sum().compute())

        total = benchmark.pedantic(run, rounds=1 if benchmark.disabled else 3, iterations=1,
                                   warmup_rounds=0 if benchmark.disabled else 1)
    assert 0 <= total <= 9 * rows
    benchmark.group = "dask-predict"
    benchmark.extra_info.update(versions)
    benchmark.extra_info.update({"rows": rows, "workers": workers, "chunk_rows": chunk,
                                 "worker_threads": sorted(threads)})
    if not benchmark.disabled:
        benchmark.extra_info["rows_per_s"] = rows / benchmark.stats.stats.min
    assert threads == {1}
