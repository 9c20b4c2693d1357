"""fusenn.plot: every picture rendered with Agg into a file, and what it drew checked against
the numbers it should show (the catalogue, the History, the metrics, the diagnostics)."""
import os
import subprocess
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import fusenn as fn  # noqa: E402
import fusenn.plot as fplot  # noqa: E402
from fusenn.cli import main  # noqa: E402
from fusenn.layers import Dense  # noqa: E402
from support import bad_input  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def render(figure, tmp_path, name="picture.png"):
    """Save with fusenn.plot.save and check a real PNG came out."""
    path = fplot.save(figure, tmp_path / name)
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    assert os.path.getsize(path) > 1000
    return path


def line(ax, gid):
    found = [l for l in ax.get_lines() if l.get_gid() == gid]
    assert len(found) == 1, f"expected one line with gid {gid!r}, got {len(found)}"
    return found[0]


def catalogue_values(act, x):
    if act.rowwise:
        rows = np.column_stack([x, np.zeros_like(x)])
        return act.forward(rows)[:, 0], act.derivative(rows)[:, 0]
    return act.forward(x), act.derivative(x)


# ------------------------------------------------------------------------------ activation
@pytest.mark.parametrize("name", fn.activations.names())
def test_activation_draws_the_catalogues_forward_and_derivative(name, tmp_path):
    ax = fplot.activation(name)
    render(ax, tmp_path)
    act = fn.activations.get(name)
    for gid, which in (("forward", 0), ("derivative", 1)):
        l = line(ax, gid)
        x, y = np.asarray(l.get_xdata(), float), np.asarray(l.get_ydata(), float)
        drawn = np.isfinite(y)
        assert drawn.sum() >= 600
        assert x.min() == -6 and x.max() == 6
        np.testing.assert_allclose(y[drawn], catalogue_values(act, x[drawn])[which],
                                   rtol=1e-12, atol=1e-12)
        # a jump is a gap (NaN), never a near-vertical segment between drawn points
        xs, ys = x[drawn], y[drawn]
        contiguous = np.isfinite(y[:-1]) & np.isfinite(y[1:])
        steep = contiguous & (np.abs(np.diff(y)) > 0.05) & (np.diff(x) < 1e-3)
        assert not steep.any(), f"{name} {gid}: vertical segment at x={x[:-1][steep]}"
        assert len(xs) == len(ys)


def test_relu_kink_drawn_with_open_and_filled_points():
    ax = fplot.activation("relu")
    der = line(ax, "derivative")
    y = np.asarray(der.get_ydata(), float)
    x = np.asarray(der.get_xdata(), float)
    assert np.isnan(y[x == 0]).all() and (x == 0).any()  # the cut sits at the kink
    value = line(ax, "derivative-value")
    assert list(value.get_xdata()) == [0.0] and list(value.get_ydata()) == [0.0]  # relu'(0)=0
    limit = line(ax, "derivative-limit")
    assert limit.get_ydata()[0] == 1.0 and limit.get_xdata()[0] > 0
    assert limit.get_markerfacecolor() == "white"
    # the function itself is continuous: no cut, the corner drawn exactly at 0
    fwd = line(ax, "forward")
    assert np.isfinite(fwd.get_ydata()).all() and 0.0 in list(fwd.get_xdata())


def test_step_jump_is_cut_in_the_function():
    ax = fplot.activation("step", derivative=False)
    assert [l.get_gid() for l in ax.get_lines() if l.get_gid()] == \
        ["forward", "forward-value", "forward-limit"]
    assert list(line(ax, "forward-value").get_ydata()) == [1.0]  # step(0) = 1
    assert list(line(ax, "forward-limit").get_ydata()) == [0.0]  # the limit from the left


def test_activation_with_parameters_and_range():
    ax = fplot.activation("leaky_relu", alpha=0.2, x=(-2, 3))
    l = line(ax, "forward")
    x, y = np.asarray(l.get_xdata()), np.asarray(l.get_ydata())
    assert x.min() == -2 and x.max() == 3
    np.testing.assert_allclose(y, fn.activations.get("leaky_relu", alpha=0.2).forward(x))
    assert ax.get_title() == "leaky_relu(alpha=0.2)"


def test_several_activations_share_parameters_they_declare(tmp_path):
    fig = fplot.activation(["relu", "elu", "leaky_relu"], alpha=0.5)
    render(fig, tmp_path)
    assert [a.get_title() for a in fig.axes] == ["relu", "elu(alpha=0.5)",
                                                 "leaky_relu(alpha=0.5)"]
    elu = line(fig.axes[1], "forward")
    x = np.asarray(elu.get_xdata())
    np.testing.assert_allclose(elu.get_ydata(), fn.activations.get("elu", alpha=0.5).forward(x))


def test_activation_all_draws_the_whole_catalogue(tmp_path):
    fig = fplot.activation("all")
    render(fig, tmp_path)
    titles = [a.get_title().split("(")[0].split(":")[0] for a in fig.axes]
    assert titles == fn.activations.names()


def test_activation_into_given_axes():
    fig, axes = plt.subplots(1, 2)
    assert fplot.activation("tanh", ax=axes[0]) is axes[0]
    assert fplot.activation(["tanh", "sigmoid"], ax=axes) is fig
    assert axes[1].get_title() == "sigmoid"
    with bad_input(ValueError, match="3 panels but ax gives 2"):
        fplot.activation(["tanh", "sigmoid", "relu"], ax=axes)
    with bad_input(TypeError, match="matplotlib Axes"):
        fplot.activation("tanh", ax="here")


def test_activation_bad_input():
    with bad_input(ValueError, match="unknown activation 'nope'"):
        fplot.activation("nope")
    with bad_input(ValueError, match="unknown parameter"):
        fplot.activation("relu", alpha=0.1)
    with bad_input(ValueError, match="no chosen activation takes the parameter.*beta"):
        fplot.activation(["relu", "elu"], beta=2.0)
    with bad_input(ValueError, match="low < high"):
        fplot.activation("relu", x=(3, -3))
    with bad_input(ValueError, match="pair"):
        fplot.activation("relu", x=5)
    with bad_input(ValueError, match="at least one"):
        fplot.activation([])


# ------------------------------------------------------------------------------ history
def _run_with_early_stopping():
    X, y = fn.datasets.load_digits()
    rng = np.random.default_rng(0)
    Xv, yv = X[:200], rng.integers(0, 10, 200)  # labels unrelated to the images: val rises
    model = fn.Sequential([Dense(64, 32, "relu"), Dense(32, 10)], random_state=0)
    stopper = fn.callbacks.EarlyStopping(patience=3)
    h = fn.Trainer(model, optimizer=fn.optim.Adam(lr=0.01), random_state=0,
                   callbacks=[stopper]).fit(X[200:800], y[200:800], epochs=30,
                                            validation_data=(Xv, yv))
    return h, stopper


def test_history_lines_equal_the_history_and_mark_the_restored_epoch(tmp_path):
    h, stopper = _run_with_early_stopping()
    assert stopper.stopped_epoch is not None and stopper.best_epoch < h.epoch[-1]
    fig = fplot.history(h)
    render(fig, tmp_path)
    assert [a.get_title() for a in fig.axes] == ["loss", "accuracy"]
    for ax, keys in zip(fig.axes, (["loss", "val_loss"], ["accuracy", "val_accuracy"])):
        for k in keys:
            l = line(ax, k)
            np.testing.assert_array_equal(l.get_ydata(), h.history[k])
            np.testing.assert_array_equal(l.get_xdata(), np.arange(1, len(h.epoch) + 1))
        marks = [l for l in ax.get_lines() if l.get_label().startswith("restored")]
        assert len(marks) == 1
        assert list(marks[0].get_xdata()) == [stopper.best_epoch + 1] * 2


def test_history_from_a_dict_with_explicit_epoch():
    logs = {"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.7, 0.9]}
    ax = fplot.history(logs, best_epoch=1)
    np.testing.assert_array_equal(line(ax, "val_loss").get_ydata(), logs["val_loss"])
    assert [list(l.get_xdata()) for l in ax.get_lines()
            if l.get_label().startswith("restored")] == [[2, 2]]


def test_history_leaves_out_diagnostics_and_checks_keys():
    logs = {"loss": [1.0, 0.5], "grad_norm_0": [0.1, 0.2], "dead_0": [0.0, 0.0]}
    ax = fplot.history(logs)
    assert [l.get_gid() for l in ax.get_lines()] == ["loss"]
    with pytest.raises(KeyError, match="val_loss"):
        fplot.history(logs, keys=["val_loss"])
    with bad_input(TypeError, match="History"):
        fplot.history([1, 2, 3])
    with bad_input(ValueError, match="no logged values"):
        fplot.history({})


# ------------------------------------------------------------------------------ gradients
def test_gradient_norms_draws_the_monitors_records_on_a_log_axis(tmp_path):
    X, y = fn.datasets.load_digits()
    model = fn.Sequential([Dense(64, 16, "sigmoid"), Dense(16, 16, "sigmoid"),
                           Dense(16, 10)], random_state=0)
    monitor = fn.diagnostics.GradientMonitor(X[:100], y[:100])
    h = fn.Trainer(model, callbacks=[monitor], random_state=0).fit(X[:300], y[:300], epochs=4)
    ax = fplot.gradient_norms(monitor)
    render(ax, tmp_path)
    assert ax.get_yscale() == "log"
    norms = np.array(monitor.grad_norms)
    assert norms.shape == (4, 3)
    for l in range(3):
        drawn = line(ax, f"grad_norm_{l}")
        np.testing.assert_array_equal(drawn.get_ydata(), norms[:, l])
        np.testing.assert_array_equal(drawn.get_xdata(), [1, 2, 3, 4])
        assert drawn.get_label() == monitor.layer_names[l]
    # the History of the same run draws the same lines
    ax2 = fplot.gradient_norms(h)
    np.testing.assert_array_equal(line(ax2, "grad_norm_2").get_ydata(), norms[:, 2])


def test_gradient_norms_needs_records():
    X, y = fn.datasets.xor()
    with bad_input(ValueError, match="recorded no epochs"):
        fplot.gradient_norms(fn.diagnostics.GradientMonitor(X, y))
    with bad_input(ValueError, match="GradientMonitor"):
        fplot.gradient_norms({"loss": [1.0]})


def test_saturation_bars_equal_the_diagnostics(tmp_path):
    X, _ = fn.datasets.load_digits()
    model = fn.Sequential([Dense(64, 32, "sigmoid", init=fn.initializers.Normal(0, 2.0)),
                           Dense(32, 32, "tanh"), Dense(32, 16, "relu"), Dense(16, 10)],
                          dtype=np.float64, random_state=0)
    model.layers[2].b[:4] = -50.0  # four dead ReLUs
    ax = fplot.saturation(model, X)
    render(ax, tmp_path)
    sat = fn.diagnostics.saturation(model, X)
    assert list(sat) == [0, 1, 2]
    assert [p.get_height() for p in ax.patches] == [s.fraction for s in sat.values()]
    assert sat[2].fraction == fn.diagnostics.dead_units(model, X)[2] >= 0.25
    assert sat[0].fraction > 0.3  # large weights push the sigmoid into its tails
    assert [t.get_text() for t in ax.get_xticklabels()] == \
        ["layer 0\nsigmoid", "layer 1\ntanh", "layer 2\nrelu"]
    with bad_input(ValueError, match="no layer"):
        fplot.saturation(fn.Sequential([Dense(64, 10)]), X)


# ------------------------------------------------------------------------------ predictions
def test_decision_boundary_regions_are_the_models_predictions(tmp_path):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 0, 0, 1])  # AND
    p = fn.Perceptron().fit(X, y)
    ax = fplot.decision_boundary(p, X, y, resolution=50)
    render(ax, tmp_path)
    image = np.asarray(ax.images[0].get_array())
    x0, x1, y0, y1 = ax.images[0].get_extent()
    gx, gy = np.meshgrid(np.linspace(x0, x1, 50), np.linspace(y0, y1, 50))
    expected = p.predict(np.column_stack([gx.ravel(), gy.ravel()])).reshape(50, 50)
    np.testing.assert_array_equal(image, expected)
    assert 0 < image.mean() < 1  # both regions are on the picture
    np.testing.assert_array_equal(ax.collections[-1].get_offsets(), X)


def test_decision_boundary_of_a_network_with_one_output_and_bad_input():
    X, y = fn.datasets.xor()
    model = fn.Sequential([Dense(2, 2, "step"), Dense(2, 1, "step")], dtype=np.float64,
                          task="binary")
    model.set_weights([np.array([[1.0, 1.0], [1.0, 1.0]]), np.array([-0.5, -1.5]),
                       np.array([[1.0], [-2.0]]), np.array([-0.5])])
    ax = fplot.decision_boundary(model, X, y, resolution=40)
    image = np.asarray(ax.images[0].get_array())
    assert set(np.unique(image)) == {0, 1}
    np.testing.assert_array_equal(model.predict(X), y)
    with pytest.raises(fn.ShapeError, match=r"\(n_samples, 2\)"):
        fplot.decision_boundary(model, np.zeros((4, 3)), y)
    with pytest.raises(fn.ShapeError, match="one label per row"):
        fplot.decision_boundary(model, X, y[:3])


def test_confusion_matrix_annotations_equal_the_metric(tmp_path):
    rng = np.random.default_rng(1)
    t = rng.integers(0, 4, 80)
    p = np.where(rng.random(80) < 0.7, t, rng.integers(0, 4, 80))
    ax = fplot.confusion_matrix(t, p)
    render(ax, tmp_path)
    cm = fn.metrics.confusion_matrix(t, p)
    assert [int(s.get_text()) for s in ax.texts] == cm.ravel().tolist()
    np.testing.assert_array_equal(ax.images[0].get_array(), cm)
    assert [s.get_text() for s in ax.get_xticklabels()] == ["0", "1", "2", "3"]

    ax = fplot.confusion_matrix(t, p, normalize="true")
    rows = cm / cm.sum(axis=1, keepdims=True)
    assert [s.get_text() for s in ax.texts] == [f"{v:.2f}" for v in rows.ravel()]


def test_confusion_matrix_labels_and_bad_normalize():
    ax = fplot.confusion_matrix([1, 2, 2], [2, 2, 2], labels=[2, 1, 3])
    assert [s.get_text() for s in ax.texts] == \
        [str(v) for v in fn.metrics.confusion_matrix([1, 2, 2], [2, 2, 2], [2, 1, 3]).ravel()]
    with bad_input(ValueError, match="normalize must be"):
        fplot.confusion_matrix([0, 1], [0, 1], normalize="rows")


def test_weights_as_images_tiles_each_units_weights(tmp_path):
    model = fn.Sequential([Dense(64, 10, "relu"), Dense(10, 10)], random_state=0)
    ax = fplot.weights_as_images(model.layers[0], (8, 8))
    render(ax, tmp_path)
    mosaic = np.asarray(ax.images[0].get_array().filled(np.nan))
    assert mosaic.shape == (3 * 9 - 1, 4 * 9 - 1)  # 10 units: 3 rows of 4 tiles
    W = model.layers[0].W
    for j in range(10):
        r, c = divmod(j, 4)
        tile = mosaic[r * 9:r * 9 + 8, c * 9:c * 9 + 8]
        np.testing.assert_allclose(tile, W[:, j].reshape(8, 8) / np.abs(W[:, j]).max(),
                                   rtol=1e-6)
    assert np.isnan(mosaic[8]).all()  # the gap between tile rows
    shared = fplot.weights_as_images(model, (8, 8), per_unit=False, ncols=5)
    tiles = np.asarray(shared.images[0].get_array().filled(np.nan))
    np.testing.assert_allclose(tiles[:8, :8], W[:, 0].reshape(8, 8) / np.abs(W).max(),
                               rtol=1e-6)
    with pytest.raises(fn.ShapeError, match="63 pixels but the layer has 64 inputs"):
        fplot.weights_as_images(model.layers[0], (7, 9))
    with bad_input(TypeError, match="Dense layer"):
        fplot.weights_as_images("W", (8, 8))


def test_report_has_history_and_confusion_matrix(tmp_path):
    fig = fplot.report({"loss": [0.9, 0.5], "val_loss": [1.0, 0.8]}, [0, 1, 1], [0, 1, 0])
    render(fig, tmp_path)
    loss_ax, cm_ax = fig.axes[0], fig.axes[1]
    np.testing.assert_array_equal(line(loss_ax, "val_loss").get_ydata(), [1.0, 0.8])
    assert [s.get_text() for s in cm_ax.texts] == ["1", "0", "1", "1"]


# ------------------------------------------------------------------------------ saving
def test_save_checks_the_target(tmp_path):
    ax = fplot.activation("relu")
    with bad_input(ValueError, match="cannot write .*webm.*png"):
        fplot.save(ax, tmp_path / "a.webm")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fplot.save(ax, tmp_path / "missing" / "a.png")
    os.mkdir(tmp_path / "dir.png")
    with pytest.raises(IsADirectoryError):
        fplot.save(ax, tmp_path / "dir.png")
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(FileExistsError, match="not a regular file"):
        fplot.save(ax, fifo)  # refused before anything opens it: no hang
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_save_through_a_symlink_writes_its_target(tmp_path):
    target = tmp_path / "real.png"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.png"
    os.symlink(target, link)
    fplot.save(fplot.activation("tanh"), link)
    assert os.path.islink(link)
    assert target.read_bytes()[:8] == PNG_MAGIC
    assert os.stat(target).st_mode & 0o777 == 0o640


# ------------------------------------------------------------------------------ command line
def test_cli_plot_activations(tmp_path, capsys):
    out = tmp_path / "acts.png"
    assert main(["plot", "activations", "relu", "sigmoid", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert "plot saved to" in capsys.readouterr().out
    assert main(["plot", "activations", "-o", str(tmp_path / "all.svg")]) == 0
    svg = (tmp_path / "all.svg").read_text()
    assert svg.count("<g id=\"axes_") == len(fn.activations.names())


def test_cli_plot_errors(tmp_path, capsys):
    assert main(["plot", "activations", "nope", "-o", str(tmp_path / "a.png")]) == 1
    assert "unknown activation 'nope'" in capsys.readouterr().err
    assert main(["plot", "activations", "relu", "-o", str(tmp_path / "a.webm")]) == 1
    assert "cannot write" in capsys.readouterr().err
    assert main(["plot", "activations", "relu"]) == 2
    assert "required: --output/-o" in capsys.readouterr().err
    assert main(["plot"]) == 2
    assert "choose what to plot" in capsys.readouterr().err
    assert not os.listdir(tmp_path)


def test_cli_train_plot(tmp_path, capsys):
    out = tmp_path / "run.png"
    assert main(["train", "-q", "--epochs", "3", "--hidden", "16", "--early-stopping", "5",
                 "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert f"plot saved to {out}" in capsys.readouterr().out
    # a bad file name fails before any training
    assert main(["train", "-q", "--epochs", "3", "--plot", str(tmp_path / "no" / "x.png")]) == 1
    captured = capsys.readouterr()
    assert "does not exist" in captured.err and "test accuracy" not in captured.out


# ------------------------------------------------------------------------------ no matplotlib
BLOCK_MATPLOTLIB = """
import sys
sys.modules["matplotlib"] = None  # what Python does for a package that is not installed
"""


def test_everything_but_plot_works_without_matplotlib(tmp_path):
    script = BLOCK_MATPLOTLIB + textwrap.dedent(f"""
        import numpy as np
        import fusenn as fn
        from fusenn import *  # noqa: F401,F403
        X, y = fn.datasets.xor()
        model = fn.Sequential([fn.layers.Dense(2, 4, "sigmoid"), fn.layers.Dense(4, 2)],
                              random_state=0)
        monitor = fn.diagnostics.GradientMonitor(X, y)
        fn.Trainer(model, callbacks=[monitor]).fit(X, y, epochs=2)
        assert len(monitor.grad_norms) == 2 and fn.diagnostics.saturation(model, X)
        try:
            import fusenn.plot
        except ImportError as exc:
            assert isinstance(exc, fn.errors.MissingDependencyError), type(exc)
            print("PLOT:", exc)
        else:
            raise SystemExit("fusenn.plot imported without matplotlib")
        try:
            fn.plot
        except ImportError as exc:
            print("ATTR:", exc)
        from fusenn.cli import main
        print("CLI:", main(["plot", "activations", "-o", {str(tmp_path / "a.png")!r}]))
        print("TRAIN:", main(["train", "-q", "--epochs", "1",
                              "--plot", {str(tmp_path / "b.png")!r}]))
        assert "matplotlib" not in [m for m in sys.modules if sys.modules[m] is not None]
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "PLOT: fusenn.plot needs matplotlib" in r.stdout
    assert "pip install 'fusenn[plot]'" in r.stdout
    assert "ATTR: fusenn.plot needs matplotlib" in r.stdout
    assert "CLI: 1" in r.stdout and "TRAIN: 1" in r.stdout
    assert r.stderr.count("fusenn: error: fusenn.plot needs matplotlib") == 2
    assert "internal error" not in r.stderr
    assert not os.listdir(tmp_path)
