"""The scripts in examples/: each runs (seconds, on the embedded data), writes its figures into
the folder it is given, and shows what its docstring says it shows."""
import os
import runpy
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import fusenn as fn  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = ["activations", "digits_classifier", "dropout_early_stopping", "perceptron",
         "vanishing_gradients", "xor_networks"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def load(name):
    """The example's namespace, as a module would see it (its main not run)."""
    return runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name=f"example_{name}")


def assert_png(path, folder):
    assert os.path.dirname(path) == os.path.realpath(folder)
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    assert os.path.getsize(path) > 5000


def test_every_example_is_tested_and_documented():
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == NAMES
    for name in NAMES:
        doc = load(name)["__doc__"]
        assert f"python examples/{name}.py OUTDIR" in doc


def test_perceptron_learns_and_and_fails_xor(tmp_path):
    result = load("perceptron")["main"]([str(tmp_path)])
    assert_png(result["figure"], tmp_path)
    assert result["and_converged"] and result["and_accuracy"] == 1.0
    assert not result["xor_converged"] and result["xor_accuracy"] < 1.0


def test_xor_networks_by_hand_and_trained(tmp_path):
    ns = load("xor_networks")
    result = ns["main"]([str(tmp_path)])
    assert_png(result["figure"], tmp_path)
    assert result["hand_set_accuracy"] == 1.0 and result["trained_accuracy"] == 1.0
    # the hand-set network is the notes' table: hidden units OR and AND
    model = ns["hand_set_network"]()
    X, y = fn.datasets.xor()
    hidden = model.layers[0].forward(X)
    np.testing.assert_array_equal(hidden, [[0, 0], [1, 0], [1, 0], [1, 1]])


def test_activations_catalogue(tmp_path):
    main = load("activations")["main"]
    result = main([str(tmp_path)])
    assert_png(result["figure"], tmp_path)
    assert result["names"] == fn.activations.names()
    some = main([str(tmp_path / "some"), "relu", "gelu"])
    assert some["names"] == ["relu", "gelu"]
    assert_png(some["figure"], tmp_path / "some")


def test_vanishing_gradients_numbers_from_diagnostics(tmp_path):
    ns = load("vanishing_gradients")
    result = ns["main"]([str(tmp_path), "--epochs", "2"])
    assert_png(result["figure"], tmp_path)
    X, y = fn.datasets.load_digits()
    sigmoid = fn.diagnostics.gradient_norms(ns["deep_network"]("sigmoid"), X[:256], y[:256])
    relu = fn.diagnostics.gradient_norms(ns["deep_network"]("relu", "he_normal"), X[:256],
                                         y[:256])
    assert len(sigmoid) == len(relu) == 10
    assert result["norms"]["sigmoid, Glorot"] == sigmoid
    assert result["norms"]["ReLU, He"] == relu
    assert sigmoid[0] * 100 <= sigmoid[-1]  # vanishing: first layer >= 100x smaller
    assert 0.1 <= relu[0] / relu[-1] <= 10  # ReLU with He: within 10x


def test_dropout_and_early_stopping(tmp_path):
    result = load("dropout_early_stopping")["main"]([str(tmp_path)])
    assert_png(result["figure"], tmp_path)
    plain, dropout, stop = result["plain"], result["dropout"], result["early_stopping"]
    assert plain["last_val_loss"] > plain["best_val_loss"]  # validation loss rises again
    assert dropout["last_val_loss"] < plain["last_val_loss"]
    assert stop["stopped_epoch"] is not None and stop["restored_epoch"] < stop["stopped_epoch"]
    assert stop["best_val_loss"] == pytest.approx(plain["best_val_loss"])


def test_digits_classifier(tmp_path):
    result = load("digits_classifier")["main"]([str(tmp_path)])
    for path in result["figures"]:
        assert_png(path, tmp_path)
    assert result["accuracy"] > 0.93
    cm = result["confusion_matrix"]
    assert cm.shape == (10, 10) and cm.sum() == 360
    assert cm.sum() - np.trace(cm) == result["misclassified"]


def test_an_example_runs_as_a_script(tmp_path):
    out = tmp_path / "new" / "folder"
    r = subprocess.run([sys.executable, str(EXAMPLES / "perceptron.py"), str(out)],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "MPLBACKEND": "Agg"})
    assert r.returncode == 0, r.stderr
    assert "'and_converged': True" in r.stdout
    assert_png(str(out / "perceptron.png"), out)
    r = subprocess.run([sys.executable, str(EXAMPLES / "perceptron.py")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "outdir" in r.stderr
