"""fusenn.bench: the kernel cases and calls, the timers and the prediction runners (tiny
sizes; the tables of ``fusenn bench`` are tested in test_cli.py)."""
import importlib.util
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fusenn as fn
from fusenn import bench


def test_kernel_cases_are_one_group_each_and_cover_the_targets():
    groups = [case.group for case in bench.KERNEL_CASES]
    assert len(groups) == len(set(groups))
    # DESIGN.md's kernel targets are among them
    assert "dense_forward relu large (256, 784, 1024) float32" in groups
    assert "softmax_xent medium (256, 10) float32" in groups
    kinds = {case.kernel for case in bench.KERNEL_CASES}
    assert kinds == {"dense_forward", "dense_backward", "activation", *bench.ROW_KERNELS,
                     *bench.OPTIMIZER_KERNELS}
    for case in bench.KERNEL_CASES:
        assert (bench.UNFUSED in case.paths) == (case.kernel == "dense_forward")


@pytest.mark.parametrize("case", bench.KERNEL_CASES, ids=lambda c: c.group)
def test_every_kernel_call_runs_and_agrees_with_numpy(case):
    for path in case.paths:
        if path != bench.UNFUSED and path not in fn.available_backends():
            continue
        call = bench.kernel_call(case, path)
        result = call.func(*call.args)
        if call.check is not None:
            call.check(result)


def test_kernel_checks_catch_wrong_outputs():
    case = next(c for c in bench.KERNEL_CASES if c.kernel == "dense_forward")
    call = bench.kernel_call(case, "numpy")
    call.func(*call.args)
    call.args[-1][0, 0] += 1.0  # the activation output
    with pytest.raises(AssertionError):
        call.check(None)
    case = next(c for c in bench.KERNEL_CASES if c.kernel == "softmax_xent")
    call = bench.kernel_call(case, "numpy")
    with pytest.raises(AssertionError):
        call.check(call.func(*call.args) * 1.01)


def test_kernel_call_refuses_a_path_the_case_does_not_run_on():
    case = next(c for c in bench.KERNEL_CASES if c.kernel == "softmax")
    with pytest.raises(ValueError, match="does not run on 'numpy-unfused'"):
        bench.kernel_call(case, bench.UNFUSED)


def test_time_call():
    calls = []
    seconds, first = bench.time_call(lambda x: calls.append(x) or len(calls), (7,), repeat=2,
                                     min_time=1e-4)
    assert first == 1 and seconds > 0
    assert len(calls) >= 3 and set(calls) == {7}  # warm-up, then timed loops
    with pytest.raises(ValueError, match="repeat must be >= 1"):
        bench.time_call(len, ((),), repeat=0)


def test_run_kernels_rows_and_ratios():
    cases = [c for c in bench.KERNEL_CASES if c.size == "small" and c.dtype == "float32"]
    rows = bench.run_kernels(cases, include=[bench.UNFUSED, "numpy"], repeat=1, min_time=1e-4,
                             print_fn=None)
    expected = [(c.group, p) for c in cases for p in c.paths if p in (bench.UNFUSED, "numpy")]
    assert [(r["kernel"], r["path"]) for r in rows] == expected
    for r in rows:
        assert r["seconds"] > 0
        if r["path"] == "numpy":
            assert r["vs_numpy_ref"] == pytest.approx(1.0)
    table = bench.format_kernel_table(rows)
    assert table.splitlines()[0].split() == ["kernel", "path", "time/call", "x", "numpy-ref"]
    assert len(table.splitlines()) == len(rows) + 2


@pytest.mark.parametrize("seconds, text", [(4e-8, "40 ns"), (1.5e-5, "15 us"),
                                           (9.9996e-4, "1 ms"), (2.346e-3, "2.35 ms"),
                                           (12.0, "12 s")])
def test_format_seconds(seconds, text):
    assert bench.format_seconds(seconds) == text


def test_paths_and_unknown_measurement():
    assert bench.paths("predict")[-1] == "torch"
    assert "fusenn-numpy" in bench.paths("predict") and "sklearn" not in bench.paths("predict")
    assert bench.paths("train")[-3:] == ("plain-numpy", "torch", "sklearn")
    assert bench.paths("kernels") == bench.KERNEL_PATHS
    with pytest.raises(ValueError, match="unknown measurement 'infer'"):
        bench.paths("infer")
    with pytest.raises(ValueError, match="unknown measurement 'kernels'"):
        bench.measure("xor", "fusenn-numpy", what="kernels")


def test_predict_runner_labels_the_path_and_data_is_float32():
    cfg = bench.CONFIGS[bench.PREDICT_CONFIG]
    X = bench.make_predict_data(cfg, 16)
    assert X.shape == (16, 784) and X.dtype == np.float32
    assert np.array_equal(X, bench.make_predict_data(cfg, 64)[:16])
    predict = bench.predict_runners(cfg, X, include=["fusenn-numpy"])["fusenn-numpy"]()
    assert predict() == "predict:numpy"


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_torch_network_is_the_fusenn_network():
    # In a process of its own: PyTorch's OpenMP runtime stays out of this one.
    code = textwrap.dedent("""
        import numpy as np, torch
        from fusenn import bench
        cfg = bench.CONFIGS["medium"]
        X = bench.make_predict_data(cfg, 200)
        model = bench.fusenn_mlp(cfg)
        with torch.no_grad():
            logits = bench.torch_mlp(cfg, model.get_weights())(torch.from_numpy(X)).numpy()
        np.testing.assert_allclose(logits, model.forward(X), rtol=1e-4, atol=1e-5)
        assert np.array_equal(logits.argmax(1), model.predict(X))
        print("same")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "same", proc.stderr
