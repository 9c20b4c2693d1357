"""fusenn.onnx: exported graphs run by ONNX Runtime give what the model predicts.

Every activation of the catalogue (with default and other parameters), every layer in its
evaluation form, the output semantics of predict_proba and predict, the scikit-learn and
Keras faces, in float32 (1e-5 relative) and float64 (1e-12 relative); the graph passes the
checker and takes any batch size; what cannot be exported is refused by name; files are
written atomically and only to regular files; and the CLI's ``fusenn export``.
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import fusenn as fn
from fusenn import cli
from fusenn import onnx as fonnx
from fusenn.errors import (ArgumentError, ArgumentTypeError, MissingDependencyError, SaveError,
                           UnsupportedFeatureError)
from fusenn.layers import (Activation, BatchNorm, Dense, DenseNoBias, Dropout, Maxout, PReLU,
                           RReLU, Swish)
from support import bad_input

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

DTYPES = [np.float32, np.float64]
#: Relative tolerance per dtype (DESIGN.md's backend agreement).
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}

#: Every activation with its default parameters, then with others.
ACTIVATIONS = [(name, {}) for name in fn.activations.names()] + [
    ("leaky_relu", {"alpha": 0.2}), ("prelu", {"alpha": 0.3}),
    ("rrelu", {"lower": 0.1, "upper": 0.3}), ("elu", {"alpha": 0.7}),
    ("gelu", {"approximate": "tanh"}), ("swish", {"beta": 1.7}), ("softplus", {"beta": 2.5}),
    ("hard_tanh", {"min_val": -0.6, "max_val": 1.3}), ("soft_shrink", {"lambd": 0.3}),
    ("hard_shrink", {"lambd": 0.3}),
]


def _id(case):
    name, params = case
    return name + "".join(f"-{k}={v}" for k, v in params.items())


def run_ort(proto, X):
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: X})[0]


def assert_close(got, want, scale=None):
    """``|got - want| <= rtol (|want| + scale)`` elementwise, ``rtol`` the dtype's: relative
    to the value, or to ``scale`` where the reference's own formula cancels (z - tanh z near
    0, 1 + erf z for z << 0): the input's magnitude for a lone activation, the largest
    output (default) for a network."""
    assert got.dtype == want.dtype and got.shape == want.shape
    rtol = RTOL[want.dtype]
    if scale is None:
        scale = np.max(np.abs(want))
    bad = ~(np.abs(got - want) <= rtol * (np.abs(want) + scale))
    assert not bad.any(), (f"{bad.sum()} of {bad.size} differ beyond {rtol:g}: got "
                           f"{got[bad][:5]}, want {want[bad][:5]}")


def grid(dtype):
    """Pre-activations covering every kink and both tails: (n, 8)."""
    z = np.concatenate([np.linspace(-8, 8, 161), [0.0, 1e-4, -1e-4, 1e-7, -1e-7, 0.3, -0.3,
                                                  0.5, -0.5, 3.0, -3.0, 1.3, -0.6, 20.0,
                                                  -20.0, 0.02, -0.02]])
    z = np.concatenate([z, np.zeros((-len(z)) % 8)])
    return z.reshape(-1, 8).astype(dtype)


def identity_dense(width, dtype, activation=None):
    """A Dense whose pre-activation is its input exactly (W = I, b = 0)."""
    layer = Dense(width, width, activation, dtype=dtype)
    layer.W[...] = np.eye(width, dtype=dtype)
    layer.b[...] = 0
    return layer


# --------------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------------

def test_every_activation_of_the_catalogue_has_an_onnx_form():
    assert set(fn.activations.names()) <= set(fonnx.supported_activations())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ACTIVATIONS, ids=_id)
def test_activation_on_every_kink_and_tail(case, dtype):
    name, params = case
    act = fn.activations.get(name, **params)
    model = fn.Sequential([identity_dense(8, dtype, act)], dtype=dtype, task="regression")
    X = grid(dtype)
    assert_close(run_ort(fonnx.to_onnx(model), X), model.predict(X), scale=np.abs(X))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ACTIVATIONS, ids=_id)
def test_activation_inside_a_network(case, dtype):
    name, params = case
    act = fn.activations.get(name, **params)
    model = fn.Sequential([Dense(6, 16, act), Activation(act), Dense(16, 3)], dtype=dtype,
                          random_state=1, task="regression")
    X = np.random.default_rng(0).normal(0, 2, (37, 6)).astype(dtype)
    assert_close(run_ort(fonnx.to_onnx(model), X), model.predict(X))


@pytest.mark.parametrize("dtype", DTYPES)
def test_kahan_forms_keep_relative_accuracy_of_tiny_values(dtype):
    # expm1 and log1p, which ONNX lacks: elu near 0-, and the tails where softplus,
    # log-sigmoid and mish are tiny, stay accurate relative to the value itself
    z = np.array([[-1e-6, -1e-3, -0.7, -1.5, -30.0, 1e-6, 20.0, 30.0]], dtype)
    for act in ("elu", "selu", "softplus", "log_sigmoid", "mish"):
        model = fn.Sequential([identity_dense(8, dtype, act)], dtype=dtype, task="regression")
        np.testing.assert_allclose(run_ort(fonnx.to_onnx(model), z), model.predict(z),
                                   rtol=RTOL[np.dtype(dtype)], atol=0, err_msg=act)


# --------------------------------------------------------------------------------------------
# Layers and outputs
# --------------------------------------------------------------------------------------------

def _with_running_stats(bn, rng):
    bn.running_mean[...] = rng.normal(0, 1, bn.n_in)
    bn.running_var[...] = rng.uniform(0.2, 3.0, bn.n_in)
    bn.gamma[...] = rng.normal(1, 0.5, bn.n_in)
    bn.beta[...] = rng.normal(0, 0.5, bn.n_in)
    return bn


def _op_types(proto):
    return [n.op_type for n in proto.graph.node]


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_removed_and_batchnorm_folded_or_written(dtype):
    rng = np.random.default_rng(3)
    model = fn.Sequential([
        BatchNorm(5, eps=1e-3),             # first layer: written as its formula
        Dense(5, 12),                       # linear: the next BatchNorm folds into it
        BatchNorm(12),
        Activation("relu"),
        Dropout(0.5),
        Dense(12, 8, "tanh"),               # has an activation: no folding
        BatchNorm(8),
        Dropout(0.3),
        Dense(8, 4),
    ], dtype=dtype, random_state=0, task="multiclass")
    for layer in model.layers:
        if isinstance(layer, BatchNorm):
            _with_running_stats(layer, rng)
    X = rng.normal(0, 1, (37, 5)).astype(dtype)
    proto = fonnx.to_onnx(model)
    assert "Dropout" not in _op_types(proto)
    assert _op_types(proto).count("Gemm") == 3
    assert _op_types(proto).count("BatchNormalization") == 2  # the two that are not folded
    assert_close(run_ort(proto, X), model.predict_proba(X))


@pytest.mark.parametrize("dtype", DTYPES)
def test_parametric_layers_in_evaluation_form(dtype):
    model = fn.Sequential([
        Dense(7, 10), PReLU(10), DenseNoBias(10, 9), Swish(beta=1.4), RReLU(0.1, 0.4),
        Maxout(9, 5, k=3), Dense(5, 3),
    ], dtype=dtype, random_state=2, task="regression")
    model.layers[1].alpha[...] = np.linspace(-0.5, 0.5, 10)
    X = np.random.default_rng(4).normal(0, 2, (37, 7)).astype(dtype)
    for opset in (fonnx.MIN_OPSET, 18):  # ReduceMax's axes: an attribute, then an input
        assert_close(run_ort(fonnx.to_onnx(model, opset=opset), X), model.predict(X))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("last, task, n_out", [
    (None, "multiclass", 4),        # logits: softmax applied as predict_proba does
    ("softmax", None, 4),           # a softmax output as it is
    ("sigmoid", None, 1),           # one binary column: [1 - p, p]
    (None, "binary", 1),            # binary logits: sigmoid, then two columns
    ("sigmoid", "binary", 3),       # independent sigmoids
])
def test_classifier_outputs_are_predict_proba(last, task, n_out, dtype):
    model = fn.Sequential([Dense(6, 9, "relu"), Dense(9, n_out, last)], dtype=dtype,
                          random_state=5, task=task)
    X = np.random.default_rng(6).normal(0, 1, (37, 6)).astype(dtype)
    proto = fonnx.to_onnx(model)
    assert proto.graph.output[0].name == "probabilities"
    assert_close(run_ort(proto, X), model.predict_proba(X))
    raw = fonnx.to_onnx(model, output="raw", output_name="logits")
    assert raw.graph.output[0].name == "logits"
    assert_close(run_ort(raw, X), model.forward(X))


def test_regressor_output_is_predict_with_names_and_dynamic_batch(tmp_path):
    model = fn.Sequential([Dense(4, 8, "gelu"), Dense(8, 2)], random_state=0, task="regression")
    path = tmp_path / "reg.onnx"
    fonnx.export(model, path, input_name="features", output_name="y")
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert [i.name for i in loaded.graph.input] == ["features"]
    assert [o.name for o in loaded.graph.output] == ["y"]
    dims = loaded.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 4
    assert loaded.opset_import[0].version == fonnx.DEFAULT_OPSET
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for rows in (1, 37):
        X = np.random.default_rng(rows).normal(size=(rows, 4)).astype(np.float32)
        assert_close(sess.run(["y"], {"features": X})[0], model.predict(X))


# --------------------------------------------------------------------------------------------
# The faces
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel"])
def test_sklearn_classifier_exports_predict_proba(kind, dtype):
    from fusenn.sklearn import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5)).astype(dtype)
    if kind == "multiclass":
        y = np.array(["a", "b", "c"])[np.argmax(X[:, :3], axis=1)]
    elif kind == "binary":
        y = (X[:, 0] + X[:, 1] > 0).astype(int)
    else:
        y = np.stack([X[:, 0] > 0, X[:, 1] > 0.5, X[:, 2] < 0], axis=1).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(10, 6), activation="tanh", max_iter=30,
                        random_state=0).fit(X, y)
    assert clf.coefs_[0].dtype == dtype
    proto = fonnx.to_onnx(clf)
    assert proto.graph.output[0].name == "probabilities"
    got = run_ort(proto, X)
    assert got.shape[1] == (2 if kind == "binary" else 3)
    assert_close(got, clf.predict_proba(X))


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("activation", ["relu", "logistic", "identity"])
def test_sklearn_regressor_exports_predict(loss, activation):
    from fusenn.sklearn import MLPRegressor

    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 4))
    y = np.exp(0.3 * X[:, :2])
    reg = MLPRegressor(loss=loss, hidden_layer_sizes=(7,), activation=activation,
                       max_iter=40, random_state=0).fit(X, y)
    proto = fonnx.to_onnx(reg)
    assert proto.graph.output[0].name == "predictions"
    assert (_op_types(proto)[-1] == "Exp") == (loss == "poisson")
    assert_close(run_ort(proto, X), reg.predict(X))


def test_keras_face_exports_its_predict():
    from fusenn.keras import layers as kl
    from fusenn.keras.models import Sequential

    model = Sequential([kl.Input(shape=(4,)), kl.Dense(8, activation="elu"),
                        kl.Dense(6, use_bias=False, activation="relu"), kl.Dropout(0.2),
                        kl.Dense(1, activation="sigmoid")])
    X = np.random.default_rng(2).normal(size=(37, 4)).astype(np.float32)
    want = model.predict(X, verbose=0)
    got = run_ort(fonnx.to_onnx(model), X)
    assert got.shape == (37, 1)  # Keras's predict: the sigmoid itself, one column
    assert_close(got, want)


def test_keras_face_flatten_takes_samples_of_the_input_shape():
    from fusenn.keras import layers as kl
    from fusenn.keras.models import Sequential

    model = Sequential([kl.Input(shape=(3, 4)), kl.Flatten(), kl.Dense(5, activation="relu"),
                        kl.Dense(3, activation="softmax")])
    X = np.random.default_rng(3).normal(size=(37, 3, 4)).astype(np.float32)
    want = model.predict(X, verbose=0)
    proto = fonnx.to_onnx(model)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", 3, 4]
    assert_close(run_ort(proto, X), want)


# --------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------

def test_an_activation_without_onnx_form_is_refused_by_name(monkeypatch):
    monkeypatch.delitem(fonnx.ACTIVATIONS, "sinc")
    model = fn.Sequential([Dense(3, 4, "sinc"), Dense(4, 2)])
    with pytest.raises(UnsupportedFeatureError, match="layer 0.*'sinc'"):
        fonnx.to_onnx(model)


def test_a_layer_without_onnx_form_is_refused_by_name():
    class Doubling(fn.layers.Layer):
        def forward(self, x, training=False):
            return 2 * x

    model = fn.Sequential([Dense(3, 4), Doubling()])
    with pytest.raises(UnsupportedFeatureError, match="layer 1.*Doubling"):
        fonnx.to_onnx(model)


def test_bad_arguments_are_refused(tmp_path):
    from fusenn.keras.layers import Dense as KDense
    from fusenn.keras.models import Sequential as KSequential
    from fusenn.sklearn import MLPClassifier

    model = fn.Sequential([Dense(3, 2)])
    with pytest.raises(UnsupportedFeatureError, match="opset 12"):
        fonnx.to_onnx(model, opset=12)
    with pytest.raises(ArgumentError, match="opset 999"):
        fonnx.to_onnx(model, opset=999)
    with pytest.raises(ArgumentTypeError, match="opset"):
        fonnx.to_onnx(model, opset="17")
    with pytest.raises(ArgumentError, match="output must be one of"):
        fonnx.to_onnx(model, output="labels")
    with pytest.raises(ArgumentError, match="both 'X'"):
        fonnx.to_onnx(model, output_name="X")
    with pytest.raises(ArgumentTypeError, match="cannot export a builtins.dict"):
        fonnx.to_onnx({})
    with pytest.raises(ArgumentError, match="MLPClassifier is not fitted"):
        fonnx.to_onnx(MLPClassifier())
    with pytest.raises(ArgumentError, match="not built"):
        fonnx.to_onnx(KSequential([KDense(2)]))
    with bad_input(ValueError, match="opset 999"):  # FusennErrors that are the built-ins
        fonnx.to_onnx(model, opset=999)
    with bad_input(TypeError, match="opset must be an integer"):
        fonnx.to_onnx(model, opset=17.0)


def test_missing_onnx_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    model = fn.Sequential([Dense(3, 2)])
    with pytest.raises(MissingDependencyError, match=r"pip install 'fusenn\[onnx\]'") as info:
        fonnx.export(model, tmp_path / "m.onnx")
    assert info.value.name == "onnx"  # what the benchmark runner reports as not installed
    assert not (tmp_path / "m.onnx").exists()
    assert cli.main(["export", _saved(model, tmp_path), str(tmp_path / "m.onnx")]) == 1


# --------------------------------------------------------------------------------------------
# Files and the command line
# --------------------------------------------------------------------------------------------

def _saved(model, tmp_path):
    path = str(tmp_path / "model.npz")
    model.save(path)
    return path


def test_export_refuses_fifo_and_directory_and_follows_links(tmp_path):
    model = fn.Sequential([Dense(3, 2, "softmax")])
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    with pytest.raises(SaveError, match="named pipe"):
        fonnx.export(model, fifo)
    with pytest.raises(SaveError, match="directory"):
        fonnx.export(model, tmp_path)
    target = tmp_path / "real.onnx"
    target.write_bytes(b"old")
    link = tmp_path / "link.onnx"
    link.symlink_to(target)
    proto = fonnx.export(model, link)
    assert link.is_symlink() and target.read_bytes() == proto.SerializeToString()
    assert [p.name for p in tmp_path.iterdir() if "fusenn-tmp" in p.name] == []


def test_cli_export_round_trip(tmp_path, capsys):
    X, y = fn.datasets.load_digits()
    model = fn.Sequential([Dense(64, 16, "relu"), BatchNorm(16), Dense(16, 10, "softmax")],
                          random_state=0, task="multiclass")
    fn.Trainer(model, optimizer=fn.optim.Adam(), random_state=0).fit(X[:300], y[:300],
                                                                      epochs=2)
    out = tmp_path / "digits.onnx"
    assert cli.main(["export", _saved(model, tmp_path), str(out), "--opset", "15"]) == 0
    assert "opset 15" in capsys.readouterr().out
    loaded = onnx.load(str(out))
    onnx.checker.check_model(loaded, full_check=True)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    X = X[300:400].astype(np.float32)
    assert_close(sess.run(None, {"X": X})[0], model.predict_proba(X))


def test_cli_export_user_errors(tmp_path, capsys):
    model_path = _saved(fn.Sequential([Dense(3, 2)]), tmp_path)
    assert cli.main(["export", str(tmp_path / "missing.npz"), str(tmp_path / "m.onnx")]) == 1
    assert "fusenn: error:" in capsys.readouterr().err
    assert cli.main(["export", model_path, str(tmp_path / "m.onnx"), "--opset", "11"]) == 1
    assert "opset 11" in capsys.readouterr().err
    assert cli.main(["export", model_path, str(tmp_path)]) == 1
    assert "directory" in capsys.readouterr().err
    assert cli.main(["export", model_path]) == 2


# --------------------------------------------------------------------------------------------
# The benchmark peer
# --------------------------------------------------------------------------------------------

def test_onnxruntime_prediction_peer_checks_and_labels_its_path():
    from fusenn import bench

    assert "onnxruntime" in bench.paths("predict") and "onnxruntime" not in bench.paths("train")
    cfg = bench.CONFIGS[bench.PREDICT_CONFIG]
    X = bench.make_predict_data(cfg, 300)
    predict = bench.predict_runners(cfg, X, include=["onnxruntime"])["onnxruntime"]()
    assert predict() == "onnxruntime"
