"""Prediction throughput: the forward pass alone of the medium network (784-128-64-10, relu)
over 100,000 rows of float32, on every fusenn backend, in PyTorch and in ONNX Runtime.

fusenn runs ``model.predict`` (class labels, all rows in one call); PyTorch runs the same
layers with the same weights under ``torch.no_grad()`` and takes the ``argmax``, and ONNX
Runtime runs the network exported by ``fusenn.onnx`` (its logits, checked equal to fusenn's
before timing) and takes the ``argmax``, all on the same number of threads (DESIGN.md's
target: fusenn >= 1.2x ONNX Runtime). The runners are ``fusenn.bench.predict_runners``, which ``fusenn bench
--what predict`` times as well, each path in a process of its own. Run::

    pytest benchmarks/test_bench_predict.py --benchmark-only --benchmark-group-by=group
"""
import pytest

import fusenn as fn
from fusenn import bench

PATHS = ["fusenn-numpy", "fusenn-cython", "fusenn-numba", "torch", "onnxruntime"]
#: Rows predicted when the benchmark is disabled (CI only checks that it runs).
CHECK_ROWS = 512


@pytest.mark.parametrize("path", PATHS)
def test_predict(benchmark, path, versions):
    cfg = bench.CONFIGS[bench.PREDICT_CONFIG]
    if path.startswith("fusenn-") and path[7:] not in fn.available_backends():
        pytest.skip(f"{path} not available")
    rows = CHECK_ROWS if benchmark.disabled else bench.PREDICT_ROWS
    X = bench.make_predict_data(cfg, rows)
    try:
        predict = bench.predict_runners(cfg, X, include=[path])[path]()
    except ImportError as exc:
        pytest.skip(f"{exc.name} not installed")
    benchmark.group = f"predict-{cfg.name}"
    benchmark.extra_info.update(versions)  # library versions and the thread count
    benchmark.extra_info.update({"rows": rows, "dtype": str(X.dtype)})
    ran = benchmark.pedantic(predict, rounds=1 if benchmark.disabled else 5, iterations=1,
                             warmup_rounds=0)
    benchmark.extra_info["ran"] = ran
    if path.startswith("fusenn-"):
        assert ran == f"predict:{path[7:]}"
