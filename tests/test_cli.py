"""The ``fusenn`` command, run as a subprocess: exit codes, output, bad arguments."""
import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import fusenn as fn
from fusenn import bench

from support import SHARED_DATA

FAST = ["--epochs", "2", "--hidden", "16"]


def run(*args, cwd=None, env=None):
    full_env = {**os.environ, **(env or {})}
    full_env.pop("FUSENN_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "fusenn", *map(str, args)], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=300)


def assert_one_line_error(proc, *needles, code=None):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    if code is not None:
        assert proc.returncode == code
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("fusenn: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_info():
    proc = run("info")
    assert proc.returncode == 0, proc.stderr
    assert f"fusenn: {fn.__version__}" in proc.stdout
    assert "available backends" in proc.stdout and "numpy" in proc.stdout
    assert "threads" in proc.stdout


def test_version_and_help():
    proc = run("--version")
    assert proc.returncode == 0 and fn.__version__ in proc.stdout
    proc = run("train", "--help")
    assert proc.returncode == 0 and "--early-stopping" in proc.stdout
    proc = run("bench", "--help")
    assert proc.returncode == 0 and "--what {train,predict,kernels,sklearn,keras}" in proc.stdout
    text = " ".join(proc.stdout.split())  # the help states the benchmark's own settings
    assert f"the {bench.PREDICT_CONFIG} network over {bench.PREDICT_ROWS:,} rows" in text
    assert f"(default {bench.PREDICT_ROWS:,})" in text


def test_no_command():
    assert_one_line_error(run(), "choose a command", code=2)


def test_train_digits_fast_prints_report(tmp_path):
    proc = run("train", *FAST, "--backend", "numpy")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "epoch 2/2" in out and "loss=" in out and "accuracy=" in out
    assert re.search(r"test accuracy: [01]\.\d{4} \(\d+/360\)", out)
    assert "confusion matrix" in out
    assert "precision" in out and "recall" in out and "f1" in out
    assert "path: per-batch:numpy" in out
    assert "s per epoch" in out
    # the confusion matrix has one row per class and its counts add up to the test set
    rows = re.findall(r"^\s*(\d) \|((?:\s+\d+)+)$", out, re.M)
    assert [r[0] for r in rows] == [str(i) for i in range(10)]
    assert sum(int(v) for r in rows for v in r[1].split()) == 360


def test_train_quiet():
    proc = run("train", *FAST, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("test accuracy:")
    assert "epoch" not in proc.stdout


def test_default_train_reaches_97_percent_on_digits():
    proc = run("train")
    assert proc.returncode == 0, proc.stderr
    acc = float(re.search(r"test accuracy: ([0-9.]+)", proc.stdout).group(1))
    assert acc >= 0.97, proc.stdout


@pytest.mark.skipif(not (SHARED_DATA / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="MNIST test files not in ../shared/data (optional: README, "
                    "Optional data)")
def test_mnist_reaches_95_percent():
    """``fusenn train --mnist ../shared/data``: first 8,000 images train, last 2,000 test
    (about 5 s on the NumPy path)."""
    proc = run("train", "--mnist", SHARED_DATA, "--backend", "numpy", "--quiet")
    assert proc.returncode == 0, proc.stderr
    m = re.search(r"test accuracy: ([0-9.]+) \((\d+)/(\d+)\)", proc.stdout)
    assert m and m.group(3) == "2000", proc.stdout
    assert float(m.group(1)) >= 0.95, proc.stdout


def test_train_options(tmp_path):
    proc = run("train", "--hidden", "12,8", "--activation", "tanh", "--optimizer", "sgd",
               "--lr", "0.05", "--momentum", "0.5", "--epochs", "3", "--batch-size", "64",
               "--dtype", "float64", "--seed", "3", "--early-stopping", "1",
               "--backend", "numpy")
    assert proc.returncode == 0, proc.stderr
    assert "64-12-8-10" in proc.stdout and "float64" in proc.stdout
    assert "SGD(lr=0.05" in proc.stdout and "val_loss=" in proc.stdout


@pytest.mark.parametrize("opt", ["rmsprop", "adagrad"])
def test_train_other_optimizers(opt):
    proc = run("train", *FAST, "--optimizer", opt, "--quiet")
    assert proc.returncode == 0, proc.stderr


def test_save_then_predict(tmp_path):
    model = tmp_path / "digits.npz"
    proc = run("train", *FAST, "--save", model, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert model.exists() and f"model saved to {model}" in proc.stdout
    trained_acc = float(re.search(r"test accuracy: ([0-9.]+)", proc.stdout).group(1))

    X, y = fn.datasets.load_digits()
    net = fn.load(model)
    # features and labels as CSV (label last), with a header line
    csv = tmp_path / "digits.csv"
    header = ",".join([f"p{i}" for i in range(64)] + ["label"])
    np.savetxt(csv, np.column_stack([X, y]), delimiter=",", fmt="%.6g", header=header,
               comments="")
    proc = run("predict", model, csv)
    assert proc.returncode == 0, proc.stderr
    preds = np.array([int(v) for v in proc.stdout.split()])
    assert np.array_equal(preds, net.predict(X))
    m = re.search(r"accuracy: ([0-9.]+) \((\d+)/1797\)", proc.stderr)
    assert m and abs(float(m.group(1)) - np.mean(preds == y)) < 1e-4

    # features only, NPZ, to a file
    npz = tmp_path / "features.npz"
    np.savez(npz, X=X[:50])
    out = tmp_path / "preds.txt"
    proc = run("predict", model, npz, "--output", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and "accuracy" not in proc.stderr
    assert np.array_equal(np.loadtxt(out, dtype=np.int64), net.predict(X[:50]))

    # probabilities
    proc = run("predict", model, npz, "--proba")
    assert proc.returncode == 0, proc.stderr
    proba = np.loadtxt(proc.stdout.splitlines(), delimiter=",")
    assert proba.shape == (50, 10) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert trained_acc > 0


def test_train_on_csv_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    csv = tmp_path / "data.csv"
    np.savetxt(csv, np.column_stack([X, y]), delimiter=",")
    proc = run("train", "--data", csv, "--epochs", "5", "--test-size", "0.25")
    assert proc.returncode == 0, proc.stderr
    assert "(50 samples held out" not in proc.stdout
    assert re.search(r"test accuracy: [0-9.]+ \(\d+/50\)", proc.stdout)
    npz = tmp_path / "data.npz"
    np.savez(npz, X=X.astype(np.float32), y=y)
    proc = run("train", "--data", npz, "--epochs", "5", "--test-size", "40", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"test accuracy: [0-9.]+ \(\d+/40\)", proc.stdout)


# --------------------------------------------------------------------------------------------
# Errors: one line, non-zero exit, no traceback
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--epochs", "many"], "--epochs"),
    (["train", "--hidden", "12,x"], "--hidden"),
    (["train", "--optimizer", "lbfgs"], "--optimizer"),
    (["train", "--dtype", "float16"], "--dtype"),
    (["train", "--lr", "-1"], "--lr"),
    (["train", "--test-size", "1.5"], "--test-size"),
    (["train", "--frobnicate"], "unrecognized arguments"),
    (["train", "--mnist", "a", "--data", "b"], "not allowed with"),
    (["predict", "only-one-argument"], "required"),
    (["explode"], "invalid choice"),
    (["bench", "--what", "everything"], "argument --what: invalid choice: 'everything'"),
    (["bench", "--what", "kernels", "--rows", "10"], "--rows applies to --what predict only"),
    (["bench", "--what", "kernels", "--configs", "xor"], "--configs applies to --what train"),
    (["bench", "--what", "predict", "--paths", "fusenn-numpy,sklearn"],
     "unknown path 'sklearn' for --what predict"),
    (["bench", "--paths", ","], "--paths names no path"),
    (["bench", "--what", "predict", "--rows", "0"], "--rows"),
    (["bench", "--what", "sklearn", "--rows", "10"], "--rows applies to --what predict only"),
    (["bench", "--what", "keras", "--rounds", "2"], "--rounds applies to --what train and"),
    (["bench", "--small"], "--small applies to --what sklearn and keras only, not train"),
    (["bench", "--what", "kernels", "--mnist", "."], "--mnist applies to --what sklearn and"),
    (["bench", "--what", "keras", "--configs", "huge"],
     "unknown task 'huge' for --what keras; choose from xor, mnist"),
    (["bench", "--what", "sklearn", "--paths", "fusenn.sklearn,torch"],
     "unknown path 'torch' for --what sklearn; choose from fusenn.sklearn, sklearn"),
])
def test_bad_arguments(args, needle):
    assert_one_line_error(run(*args), needle, code=2)


def test_bad_activation_and_momentum():
    assert_one_line_error(run("train", "--activation", "relux"), "unknown activation 'relux'")
    assert_one_line_error(run("train", "--optimizer", "adam", "--momentum", "0.9"),
                          "--momentum applies to --optimizer sgd only")


def test_missing_files(tmp_path):
    assert_one_line_error(run("train", "--data", tmp_path / "nope.csv"), "nope.csv", code=1)
    assert_one_line_error(run("train", "--mnist", tmp_path / "nodir"), "nodir", code=1)
    assert_one_line_error(run("train", "--mnist", tmp_path), "no MNIST", code=1)
    assert_one_line_error(run("predict", tmp_path / "m.npz", tmp_path / "d.csv"), "m.npz")
    proc = run("train", *FAST, "--save", tmp_path / "no" / "m.npz")
    assert_one_line_error(proc, "directory", "does not exist")
    assert "epoch" not in proc.stdout  # refused before training


@pytest.mark.parametrize("content, needle", [
    ("1,2,0\n3,oops,1\n", "malformed CSV"),
    ("1,2,0\n3,4\n", "malformed CSV"),
    ("1,2,0.5\n3,4,1\n1,1,0\n", "integer class indices"),
    ("1,2,-1\n3,4,1\n1,1,0\n", "class indices"),
    ("1,2,0\n3,nan,1\n", "NaN"),
    ("# only a comment\n\n", "no data rows"),
    ("5\n6\n", "at least 2 columns"),
])
def test_malformed_csv(tmp_path, content, needle):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert_one_line_error(run("train", "--data", path, "--epochs", "1"), needle, code=1)


def test_malformed_npz_and_binary_data(tmp_path):
    np.savez(tmp_path / "noX.npz", features=np.zeros((4, 2)))
    assert_one_line_error(run("train", "--data", tmp_path / "noX.npz"), "needs an array 'X'")
    np.savez(tmp_path / "obj.npz", X=np.array([[object()]], dtype=object), y=np.zeros(1))
    assert_one_line_error(run("train", "--data", tmp_path / "obj.npz"), "unreadable NPZ")
    (tmp_path / "bin.csv").write_bytes(bytes(range(256)) * 4)
    assert_one_line_error(run("train", "--data", tmp_path / "bin.csv"), "bin.csv")


def test_predict_refuses_bad_model_and_mismatched_data(tmp_path):
    (tmp_path / "fake.npz").write_text("not a model")
    csv = tmp_path / "d.csv"
    np.savetxt(csv, np.zeros((3, 5)), delimiter=",")
    assert_one_line_error(run("predict", tmp_path / "fake.npz", csv), "not a fusenn model")
    fn.Sequential([fn.layers.Dense(64, 10)], random_state=0).save(tmp_path / "m.npz")
    assert_one_line_error(run("predict", tmp_path / "m.npz", csv),
                          "5 columns, but the model expects 64 features")


def test_unavailable_backend_is_one_line(tmp_path):
    # an unknown FUSENN_BACKEND is reported as a fusenn error, not a traceback
    proc = run("train", *FAST, env={"FUSENN_BACKEND": "fortran"})
    assert_one_line_error(proc, "fortran")


def test_bench_prints_the_table():
    r = run("bench", "--configs", "xor", "--paths", "fusenn-numpy,plain-numpy", "--repeat", "1",
            "--rounds", "1")
    assert r.returncode == 0, r.stderr
    assert "fusenn-numpy" in r.stdout and "plain-numpy" in r.stdout
    assert "per-batch:numpy" in r.stdout and "samples/s" in r.stdout


def test_bench_rejects_unknown_configuration():
    r = run("bench", "--configs", "huge")
    assert r.returncode == 2 and "unknown configuration 'huge'" in r.stderr
    assert "Traceback" not in r.stderr


def _table(stdout):
    """The lines of a ``fusenn bench`` table after its dashed rule."""
    lines = stdout.splitlines()
    rule = next(i for i, line in enumerate(lines) if set(line) == {"-"})
    return lines[rule - 1], lines[rule + 1:]


def test_bench_predict_prints_the_table():
    r = run("bench", "--what", "predict", "--rows", "300", "--paths", "fusenn-numpy,torch",
            "--repeat", "1", "--rounds", "1")
    assert r.returncode == 0, r.stderr
    assert "300 rows of float32" in r.stdout
    head, rows = _table(r.stdout)
    assert head.split() == ["config", "path", "rows/s", "x", "numpy-ref", "x", "torch", "ran"]
    assert len(rows) == 2
    numpy_row, torch_row = (row.split() for row in rows)
    assert numpy_row[:2] == ["medium", "fusenn-numpy"] and numpy_row[-1] == "predict:numpy"
    assert float(numpy_row[2].replace(",", "")) > 0 and numpy_row[3] == "1.00"
    assert torch_row[:2] == ["medium", "torch"]
    if importlib.util.find_spec("torch") is None:
        assert rows[1].endswith("not installed (torch)") and numpy_row[4] == "-"
    else:
        assert torch_row[4:] == ["1.00", "torch"]
        ratio = float(numpy_row[2].replace(",", "")) / float(torch_row[2].replace(",", ""))
        assert float(numpy_row[4]) == pytest.approx(ratio, abs=0.01)


def test_bench_kernels_prints_the_table():
    r = run("bench", "--what", "kernels", "--paths", "numpy-unfused,numpy", "--repeat", "1")
    assert r.returncode == 0, r.stderr
    head, rows = _table(r.stdout)
    assert head.split() == ["kernel", "path", "time/call", "x", "numpy-ref"]
    pattern = re.compile(r"^(.+?) +(numpy-unfused|numpy) +([0-9.]+ (?:ns|us|ms|s)) +"
                         r"([0-9.]+)$")
    parsed = [pattern.match(row) for row in rows]
    assert all(parsed), rows
    got = [(m.group(1), m.group(2)) for m in parsed]
    expected = [(case.group, path) for case in bench.KERNEL_CASES for path in case.paths
                if path in ("numpy-unfused", "numpy")]
    assert got == expected
    assert {m.group(4) for m in parsed if m.group(2) == "numpy"} == {"1.00"}


def test_bench_sklearn_prints_the_table():
    r = run("bench", "--what", "sklearn", "--small", "--configs", "digits,predict", "--repeat",
            "1", "--mnist", SHARED_DATA)
    assert r.returncode == 0, r.stderr
    assert "fusenn.sklearn.MLPClassifier against sklearn.neural_network.MLPClassifier" in r.stdout
    assert "small sizes (a check, not a measurement)" in r.stdout
    head, rows = _table(r.stdout)
    assert head.split() == ["task", "path", "seconds", "total", "s", "accuracy", "x", "sklearn",
                            "data"]
    parsed = [row.split(None, 6) for row in rows]
    assert [p[:2] for p in parsed] == [["digits", "fusenn.sklearn"], ["digits", "sklearn"],
                                       ["predict", "fusenn.sklearn"], ["predict", "sklearn"]]
    for p in parsed:
        assert float(p[2]) > 0 and 0 <= float(p[4]) <= 1
    assert parsed[1][5] == parsed[3][5] == "1.00"
    # the ratio of the times as printed, which are rounded to the millisecond
    ours, theirs = float(parsed[0][2]), float(parsed[1][2])
    rounding = theirs / ours * (0.0005 / ours + 0.0005 / theirs)
    assert float(parsed[0][5]) == pytest.approx(theirs / ours, abs=0.01 + rounding)
    assert parsed[0][6] == "embedded 8x8 digits, 1,437/360, small"
    assert parsed[2][6] == f"MNIST t10k in {SHARED_DATA}, 8,000/2,000, small"


def test_bench_keras_prints_the_table(tmp_path):
    r = run("bench", "--what", "keras", "--small", "--configs", "xor,mnist", "--paths",
            "fusenn.keras", "--repeat", "1", "--mnist", tmp_path)
    assert_one_line_error(r, "no MNIST t10k images file", code=1)  # refused before running
    assert "xor" not in r.stdout
    r = run("bench", "--what", "keras", "--small", "--configs", "xor", "--paths",
            "fusenn.keras", "--repeat", "1")
    assert r.returncode == 0, r.stderr
    assert "imports changed to fusenn.keras against the same scripts on Keras 3" in r.stdout
    head, rows = _table(r.stdout)
    assert head.split() == ["task", "path", "seconds", "total", "s", "accuracy", "x",
                            "keras-jax", "data"]
    (row,) = rows
    task, path, fit_s, total_s, accuracy, ratio, data = row.split(None, 6)
    assert (task, path, ratio) == ("xor", "fusenn.keras", "-")
    assert 0 < float(fit_s) < float(total_s) and 0 <= float(accuracy) <= 1
    assert data == "the notes' XOR, 4 samples, 20 epochs"


def test_choices_come_from_the_registries():
    # one line per option: no wrapping (argparse also breaks at hyphens)
    text = run("train", "--help", env={"COLUMNS": "1000"}).stdout
    assert "--optimizer {" + ",".join(fn.optim.names()) + "}" in text
    assert "--backend {" + ",".join(["auto", *fn.backends.NAMES]) + "}" in text
    text = run("predict", "--help", env={"COLUMNS": "1000"}).stdout
    assert "--backend {" + ",".join(["auto", *fn.backends.NAMES]) + "}" in text
    text = run("bench", "--help", env={"COLUMNS": "1000"}).stdout
    assert "--what {" + ",".join(bench.WHAT) + "}" in text
    for what in bench.WHAT:
        assert f"{', '.join(bench.paths(what))} for {what}" in text
    for peer in bench.peers("train"):
        assert peer.title in text
