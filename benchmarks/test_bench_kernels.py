"""The kernel contract on every backend: fusenn's NumPy reference, Cython and Numba.

Each group is one kernel at one shape and dtype, so its rows compare like with like; the dense
forward group also has the straightforward unfused NumPy sequence ``np.maximum(x @ W + b, 0)``
that DESIGN.md's target refers to. The cases (shapes, dtypes, data and calls) are
``fusenn.bench.KERNEL_CASES`` and ``fusenn.bench.kernel_call``, which ``fusenn bench --what
kernels`` times as well. Run::

    pytest benchmarks/test_bench_kernels.py --benchmark-only --benchmark-group-by=group

Targets (DESIGN.md): fused dense forward >= 1.3x the unfused NumPy sequence at batch 256,
784 -> 1024, relu, float32; softmax cross-entropy >= 3x NumPy.
"""
import pytest

import fusenn as fn
from fusenn import bench
from fusenn._threads import thread_limits


def _case_id(case, path):
    """The test ids this file has always had, so that saved runs still compare by name."""
    if case.kernel in ("dense_forward", "dense_backward"):
        return f"{path}-{case.size}-{'f32' if case.dtype == 'float32' else 'f64'}"
    if case.kernel == "activation":
        return f"{path}-{case.activation}"
    return f"{path}-{case.size}-{case.kernel}"


def _params(*kernels):
    return [pytest.param(case, path, id=_case_id(case, path))
            for case in bench.KERNEL_CASES if case.kernel in kernels for path in case.paths]


def _bench(benchmark, case, path):
    if path != bench.UNFUSED and path not in fn.available_backends():
        pytest.skip(f"backend {path} not available")
    call = bench.kernel_call(case, path)
    benchmark.group = case.group
    benchmark.extra_info.update({"backend": path, "dtype": case.dtype,
                                 "threads": fn.get_num_threads()})
    with thread_limits():
        result = benchmark(call.func, *call.args)
    if call.check is not None:
        call.check(result)


@pytest.mark.parametrize("case, path", _params("dense_forward"))
def test_dense_forward(benchmark, case, path):
    _bench(benchmark, case, path)


@pytest.mark.parametrize("case, path", _params("dense_backward"))
def test_dense_backward(benchmark, case, path):
    _bench(benchmark, case, path)


@pytest.mark.parametrize("case, path", _params("activation"))
def test_activation(benchmark, case, path):
    _bench(benchmark, case, path)


@pytest.mark.parametrize("case, path", _params(*bench.ROW_KERNELS))
def test_rows(benchmark, case, path):
    _bench(benchmark, case, path)


@pytest.mark.parametrize("case, path", _params(*bench.OPTIMIZER_KERNELS))
def test_optimizer_update(benchmark, case, path):
    _bench(benchmark, case, path)
