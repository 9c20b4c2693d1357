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
from support import SHARED_DATA, bad_input


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
    with bad_input(ValueError, match="does not run on 'numpy-unfused'"):
        bench.kernel_call(case, bench.UNFUSED)


def test_time_call():
    calls = []
    seconds, first = bench.time_call(lambda x: calls.append(x) or len(calls), (7,), repeat=2,
                                     min_time=1e-4)
    assert first == 1 and seconds > 0
    assert len(calls) >= 3 and set(calls) == {7}  # warm-up, then timed loops
    with bad_input(ValueError, match="repeat must be >= 1"):
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
    assert bench.paths("train")[-5:-2] == ("plain-numpy", "torch", "sklearn")
    assert bench.paths("kernels") == bench.KERNEL_PATHS
    with bad_input(ValueError, match="unknown measurement 'infer'"):
        bench.paths("infer")
    with bad_input(ValueError, match="unknown measurement 'kernels'"):
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


def test_kernel_cases_come_from_the_table_of_kernels():
    assert [c.kernel for c in bench.KERNEL_CASES if c.size == "small" and c.dtype == "float32"
            ][:2] == ["dense_forward", "dense_backward"]
    assert {c.kernel for c in bench.KERNEL_CASES} == set(bench.KERNELS)
    for name, kernel in bench.KERNELS.items():
        cases = [c for c in bench.KERNEL_CASES if c.kernel == name]
        assert len(cases) == len(kernel.shapes) * len(kernel.dtypes) * len(kernel.activations)


def test_a_new_kernel_is_one_record(monkeypatch):
    def build(case, be):
        z = np.linspace(-1, 1, case.shape[0]).astype(case.dtype)
        out = np.empty((1, case.shape[0]), case.dtype)
        return bench.KernelCall(be.softmax, (z[None, :], out))

    kernel = bench.Kernel(build, lambda case: f"tiny softmax {case.size}", {"four": (4,)})
    monkeypatch.setitem(bench.KERNELS, "tiny_softmax", kernel)
    case = bench.KernelCase("tiny_softmax", "four", (4,))
    assert case.group == "tiny softmax four" and bench.UNFUSED not in case.paths
    call = bench.kernel_call(case, "numpy")
    call.func(*call.args)
    assert call.args[1].sum() == pytest.approx(1.0)
    rows = bench.run_kernels([case], include=["numpy"], repeat=1, min_time=1e-5,
                             print_fn=None)
    assert [(r["kernel"], r["path"]) for r in rows] == [("tiny softmax four", "numpy")]


@pytest.fixture
def peer_registry():
    """The registry of peers, restored after the test."""
    saved = dict(bench.PEERS)
    yield bench.PEERS
    bench.PEERS.clear()
    bench.PEERS.update(saved)


def test_a_new_peer_is_one_registration(peer_registry):
    def mine(cfg, X, y):
        calls = []

        def epoch():
            calls.append(len(X))
            return f"mine:{len(calls)}"

        epoch()
        return epoch

    peer = bench.register_peer(bench.Peer("mine", {"train": mine}, "my MLP"))
    assert peer.installed
    assert bench.paths("train")[-1] == "mine" and "mine" not in bench.paths("predict")
    assert [p.name for p in bench.peers("train")][-1] == "mine"
    cfg = bench.CONFIGS["xor"]
    X, y = bench.make_data(cfg)
    assert list(bench.runners(cfg, X, y, include=["mine"])) == ["mine"]
    rate, ran = bench.measure("xor", "mine", repeat=2)
    assert rate > 0 and ran == "mine:3"  # the warm-up, then two timed epochs
    with bad_input(ValueError, match="'mine' is taken"):
        bench.register_peer(bench.Peer("mine", {"train": mine}, "again"))
    with bad_input(ValueError, match="'fusenn-mine' is taken"):
        bench.register_peer(bench.Peer("fusenn-mine", {"train": mine}, "fusenn's own"))
    with bad_input(ValueError, match="unknown measurement 'infer'"):
        bench.register_peer(bench.Peer("other", {"infer": mine}, "other"))


def test_a_peer_not_installed_is_reported_without_a_process(peer_registry, monkeypatch):
    def never(*args):
        raise AssertionError("a missing peer must not be started")

    bench.register_peer(bench.Peer("ghost", {"train": never}, "a ghost",
                                   module="fusenn_no_such_module_here"))
    assert not bench.PEERS["ghost"].installed
    monkeypatch.setattr(bench.training, "_measure_in_child", never)
    rows = bench.run(["xor"], repeat=1, include=["ghost"], rounds=2, print_fn=None)
    assert rows == [{"config": "xor", "path": "ghost", "samples_per_s": None,
                     "ran": "not installed (fusenn_no_such_module_here)", "vs_numpy_ref": None,
                     "vs_torch": None, "vs_jax_scan": None}]
    versions = bench.peer_versions()  # no distribution: nothing to record
    assert "ghost" not in versions and list(versions)[3:] == ["onnxruntime", "torch",
                                                              "sklearn", "jax", "numba",
                                                              "scipy"]


def test_jax_peers_are_optional_training_peers(monkeypatch):
    for name, title in [("jax-step", "jitted step"), ("jax-scan", "lax.scan")]:
        peer = bench.PEERS[name]
        assert peer.module == "jax" and peer.distribution == "jax" and title in peer.title
        assert name in bench.paths("train") and name not in bench.paths("predict")
    assert bench.paths("train")[-2:] == ("jax-step", "jax-scan")
    # where jax is absent, both are said to be, and no process is started for them
    found = bench.training._module_found
    monkeypatch.setattr(bench.training, "_module_found", lambda module: module != "jax"
                        and found(module))

    def never(*args):
        raise AssertionError("a missing peer must not be started")

    monkeypatch.setattr(bench.training, "_measure_in_child", never)
    rows = bench.run(["nielsen"], repeat=1, include=["jax-step", "jax-scan"], rounds=1,
                     print_fn=None)
    assert [(r["path"], r["ran"], r["samples_per_s"]) for r in rows] == [
        ("jax-step", "not installed (jax)", None), ("jax-scan", "not installed (jax)", None)]


def test_training_table_has_a_ratio_column_per_reference(monkeypatch):
    rates = {"fusenn-numpy": 100.0, "torch": 50.0, "jax-scan": 400.0, "plain-numpy": 200.0}
    monkeypatch.setattr(bench.training, "_measure_path",
                        lambda config, label, *args: (rates[label], f"ran:{label}"))
    printed = []
    rows = bench.run(["xor"], repeat=1, include=list(rates), rounds=1, print_fn=printed.append)
    by_path = {r["path"]: r for r in rows}
    assert by_path["plain-numpy"]["vs_numpy_ref"] == pytest.approx(2.0)
    assert by_path["plain-numpy"]["vs_torch"] == pytest.approx(4.0)
    assert by_path["plain-numpy"]["vs_jax_scan"] == pytest.approx(0.5)
    assert by_path["jax-scan"]["vs_jax_scan"] == pytest.approx(1.0)
    head, rule, *lines = printed[0].splitlines()
    assert head.split() == ["config", "path", "samples/s", "x", "numpy-ref", "x", "torch", "x",
                            "jax-scan", "ran"]
    assert set(rule) == {"-"}
    assert [line.split()[1] for line in lines] == ["fusenn-numpy", "plain-numpy", "torch",
                                                   "jax-scan"]
    assert lines[1].split() == ["xor", "plain-numpy", "200", "2.00", "4.00", "0.50",
                                "ran:plain-numpy"]
    # prediction has no JAX peer, and no JAX column
    table = bench.format_table([{**rows[0], "samples_per_s": 1.0}], unit="rows/s",
                               references=bench.MEASUREMENTS["predict"].references)
    assert "jax" not in table.splitlines()[0]


# --------------------------------------------------------------------------- the faces
def test_find_mnist_dir(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no MNIST t10k images file"):  # as datasets
        bench.find_mnist_dir(tmp_path)
    monkeypatch.setattr(bench.faces, "MNIST_CANDIDATES", (tmp_path / "none", tmp_path))
    monkeypatch.delenv("MNIST_DIR", raising=False)
    assert bench.find_mnist_dir() is None
    monkeypatch.setenv("MNIST_DIR", str(SHARED_DATA))
    assert bench.find_mnist_dir() == SHARED_DATA.resolve()
    monkeypatch.setenv("MNIST_DIR", str(tmp_path))
    monkeypatch.setattr(bench.faces, "MNIST_CANDIDATES", (tmp_path, SHARED_DATA))
    assert bench.find_mnist_dir() == SHARED_DATA.resolve()  # the next candidate
    assert bench.find_mnist_dir(SHARED_DATA) == SHARED_DATA


def test_sklearn_tasks_use_mnist_or_say_they_use_the_digits(tmp_path, monkeypatch):
    task = bench.SKLEARN_TASKS["mnist"]
    assert task.params == bench.SKLEARN_TASKS["predict"].params
    assert task.params["hidden_layer_sizes"] == (100,) and task.params["batch_size"] == 32
    assert bench.SKLEARN_TASKS["predict"].predict_rows == 100_000
    Xtr, ytr, Xte, yte, data = bench.load_sklearn_task(task, mnist_dir=SHARED_DATA)
    assert Xtr.shape == (8000, 784) and Xte.shape == (2000, 784) and Xtr.dtype == np.float32
    assert data == f"MNIST t10k in {SHARED_DATA}, 8,000/2,000"
    monkeypatch.setattr(bench.faces, "MNIST_CANDIDATES", (tmp_path,))
    monkeypatch.delenv("MNIST_DIR", raising=False)
    Xtr, ytr, Xte, yte, data = bench.load_sklearn_task(task, np.float64, small=True)
    assert Xtr.shape == (256, 64) and Xte.shape == (64, 64) and Xtr.dtype == np.float64
    assert data == "embedded 8x8 digits, 1,437/360 (no MNIST found), small"


@pytest.mark.parametrize("path", bench.SKLEARN_PATHS)
def test_sklearn_face_row_fits_the_same_model(path):
    row = bench.sklearn_face_row("digits", path, small=True)
    assert row["seconds"] > 0 and row["data"] == "embedded 8x8 digits, 1,437/360, small"
    # both estimators fit the same model from the same arguments (to float32 rounding)
    from sklearn.neural_network import MLPClassifier

    Xtr, ytr, Xte, yte, _ = bench.load_sklearn_task(bench.SKLEARN_TASKS["digits"], small=True)
    params = dict(bench.SKLEARN_TASKS["digits"].params, max_iter=2)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = MLPClassifier(**params).fit(Xtr, ytr).score(Xte, yte)
    assert row["accuracy"] == pytest.approx(expected, abs=2 / 64)
    with bad_input(ValueError, match="unknown task 'huge' for --what sklearn"):
        bench.sklearn_face_row("huge", path)
    with bad_input(ValueError, match="unknown path 'torch'"):
        bench.sklearn_estimator("torch")


def test_keras_script_text_swaps_the_imports_only():
    original = (bench.KERAS_SCRIPT_DIR / "xor_notes.py.txt").read_text()
    ours = bench.keras_script_text("xor", "fusenn.keras")
    assert "tensorflow" not in ours and "from fusenn.keras.models import Sequential" in ours
    assert ours.splitlines()[-3:] == original.splitlines()[-3:]
    theirs = bench.keras_script_text("xor", "keras-jax", epochs=7)
    assert "from keras.layers import Dense" in theirs and "epochs=7," in theirs
    assert "epochs=10000" not in theirs
    mnist = bench.keras_script_text("mnist", "fusenn.keras")
    assert "from fusenn.keras.layers import Dense, Input" in mnist and "epochs=5," in mnist
    with bad_input(ValueError, match="unknown task 'cnn' for --what keras"):
        bench.keras_script_text("cnn", "fusenn.keras")
    with bad_input(ValueError, match="unknown path 'tensorflow'"):
        bench.keras_script_text("xor", "tensorflow")


def test_keras_face_row_times_the_fit_of_the_script():
    row = bench.keras_face_row("xor", "fusenn.keras", small=True)
    assert 0 < row["seconds"] < row["total_s"]
    assert row["accuracy"] in (0.0, 0.25, 0.5, 0.75, 1.0)  # of the four XOR samples
    assert row["data"] == "the notes' XOR, 4 samples, 20 epochs"


def test_keras_face_row_needs_mnist(tmp_path, monkeypatch):
    monkeypatch.setattr(bench.faces, "MNIST_CANDIDATES", (tmp_path,))
    monkeypatch.delenv("MNIST_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="no MNIST t10k files found for the MNIST"):
        bench.keras_face_row("mnist", "fusenn.keras", small=True)
    rows = bench.run_face("keras", ["mnist"], include=["fusenn.keras"], repeat=1, small=True,
                          print_fn=None)
    assert rows[0]["seconds"] is None and rows[0]["ran"].startswith("no MNIST t10k files")


def test_run_face_keeps_the_best_run_and_the_ratio_to_the_library(monkeypatch):
    times = {"fusenn.sklearn": [0.5, 0.2, 0.4], "sklearn": [2.0, 3.0, 1.0]}
    calls = []

    def row(what, task, path, small, mnist_dir):
        calls.append((task, path))
        seconds = times[path][sum(1 for c in calls if c == (task, path)) - 1]
        return {"seconds": seconds, "accuracy": 0.9, "data": "some digits"}, None

    monkeypatch.setattr(bench.faces, "_row_in_child", row)
    printed = []
    rows = bench.run_face("sklearn", ["digits"], repeat=3, print_fn=printed.append)
    assert calls == [("digits", "fusenn.sklearn"), ("digits", "sklearn")] * 3  # in turns
    assert [(r["path"], r["seconds"], r["ran"]) for r in rows] == [
        ("fusenn.sklearn", 0.2, "fusenn.sklearn"), ("sklearn", 1.0, "sklearn")]
    assert rows[0]["vs_reference"] == pytest.approx(5.0)
    assert rows[1]["vs_reference"] == pytest.approx(1.0)
    head, rule, *lines = printed[0].splitlines()
    assert head.split() == ["task", "path", "seconds", "total", "s", "accuracy", "x", "sklearn",
                            "data"]
    assert lines[0].split() == ["digits", "fusenn.sklearn", "0.200", "-", "0.9000", "5.00",
                                "some", "digits"]
    with bad_input(ValueError, match="unknown path 'keras-jax' for --what sklearn"):
        bench.run_face("sklearn", include=["keras-jax"])
    with bad_input(ValueError, match="unknown face 'torch'"):
        bench.run_face("torch")
    with bad_input(ValueError, match="repeat must be >= 1"):
        bench.run_face("keras", repeat=0)


def test_a_face_library_not_installed_is_reported_without_a_process(monkeypatch):
    def never(*args):
        raise AssertionError("a missing library must not be started")

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(bench.faces.importlib.util, "find_spec",
                        lambda name, *a: None if name == "keras" else find_spec(name, *a))
    monkeypatch.setattr(bench.faces, "_row_in_child", never)
    rows = bench.run_face("keras", ["xor"], include=["keras-jax"], repeat=2, print_fn=None)
    assert [(r["path"], r["seconds"], r["ran"]) for r in rows] == [
        ("keras-jax", None, "not installed (keras)")]
    assert bench.face_versions("sklearn")["scikit-learn"] is not None


def test_the_faces_examples_run():
    import doctest

    result = doctest.testmod(bench.faces, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10 and result.failed == 0
