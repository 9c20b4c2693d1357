"""The scikit-learn face: a real scikit-learn estimator that gives scikit-learn's numbers.

Most tests run scikit-learn's own ``MLPClassifier``/``MLPRegressor`` beside fusenn's on the same
data and arguments and compare: in float64 the loss curves, weights and predictions agree to
1e-8 relative (the runs differ only in rounding), so any departure from scikit-learn's
definitions (initialisation, shuffling, alpha, momentum, Adam, stopping rules, early
stopping, sample weights, the losses) shows up here.
"""
import inspect
import io
import pickle
import subprocess
import sys
import warnings
from contextlib import redirect_stdout

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn.exceptions
from sklearn import neural_network as sknn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import fusenn as fn
import fusenn.sklearn as fsk
from fusenn import backends
from fusenn.errors import DataError, DivergenceError, FusennError
from fusenn.sklearn import ConvergenceWarning, MLPClassifier, MLPRegressor
from support import split_epoch_on

RTOL = 1e-8


@pytest.fixture(scope="module")
def cls_data():
    X, y = fn.datasets.load_digits()
    return np.asarray(X[:240], dtype=np.float64), y[:240]


@pytest.fixture(scope="module")
def reg_data():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(150, 5))
    Y = np.column_stack([np.sin(2 * X[:, 0]) + X[:, 1] ** 2, X[:, 2] * X[:, 3]])
    return X, Y


def fit_both(cls, X, y, fit="fit", calls=1, **kw):
    """Fit scikit-learn's estimator and fusenn's with the same arguments."""
    pair = getattr(sknn, cls.__name__)(**kw), cls(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in pair:
            for _ in range(calls):
                getattr(est, fit)(X, y, **({"classes": np.unique(y)}
                                           if fit == "partial_fit" and cls is MLPClassifier
                                           else {}))
    return pair


def assert_same(sk, ours, X, rtol=RTOL):
    """Loss curves, weights and predictions of two fitted estimators agree to ``rtol``."""
    assert ours.n_iter_ == sk.n_iter_ and ours.t_ == sk.t_
    assert ours.out_activation_ == sk.out_activation_ and ours.n_layers_ == sk.n_layers_
    if hasattr(sk, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, sk.loss_curve_, rtol=rtol)
        assert (ours.validation_scores_ is None) == (sk.validation_scores_ is None)
        if sk.validation_scores_ is not None:
            np.testing.assert_allclose(ours.validation_scores_, sk.validation_scores_,
                                       rtol=rtol)
            assert ours.best_validation_score_ == pytest.approx(sk.best_validation_score_,
                                                                rel=rtol)
        else:
            assert ours.best_loss_ == pytest.approx(sk.best_loss_, rel=rtol)
    assert ours.loss_ == pytest.approx(sk.loss_, rel=rtol)
    for a, b in zip(ours.coefs_ + ours.intercepts_, sk.coefs_ + sk.intercepts_):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
    if hasattr(sk, "predict_proba"):
        np.testing.assert_allclose(ours.predict_proba(X), sk.predict_proba(X), rtol=rtol,
                                   atol=1e-12)
    pred = sk.predict(X)
    if pred.dtype.kind == "f":
        np.testing.assert_allclose(ours.predict(X), pred, rtol=rtol, atol=1e-12)
    else:
        np.testing.assert_array_equal(ours.predict(X), pred)


# ----------------------------------------------------------------------------- estimator
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_check_estimator_passes(cls):
    from sklearn.exceptions import SkipTestWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # checks that do not apply (array API without SCIPY_ARRAY_API, decision_function)
        warnings.simplefilter("ignore", SkipTestWarning)
        results = check_estimator(cls(max_iter=100), on_fail=None)
    failed = [(r["check_name"], repr(r["exception"])) for r in results
              if r["status"] == "failed"]
    assert failed == []
    assert sum(r["status"] == "passed" for r in results) > 50


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_every_parameter_of_installed_sklearn_with_its_default(cls):
    ours = inspect.signature(cls.__init__).parameters
    theirs = inspect.signature(getattr(sknn, cls.__name__).__init__).parameters
    assert [(p.name, p.default, p.kind) for p in ours.values()] == \
        [(p.name, p.default, p.kind) for p in theirs.values()]
    assert cls().get_params() == getattr(sknn, cls.__name__)().get_params()


def test_public_names():
    assert set(fsk.__all__) >= {"MLPClassifier", "MLPRegressor"}
    assert fsk.ConvergenceWarning is sklearn.exceptions.ConvergenceWarning


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_unknown_and_invalid_parameters_fail_as_sklearn(cls, cls_data):
    sk_cls = getattr(sknn, cls.__name__)
    with pytest.raises(TypeError, match="unexpected keyword argument 'depth'"):  # plain: sklearn's
        cls(depth=3)
    with pytest.raises(ValueError) as ours:  # plain: sklearn's
        cls().set_params(depth=3)
    with pytest.raises(ValueError) as theirs:  # plain: sklearn's
        sk_cls().set_params(depth=3)
    assert str(ours.value) == str(theirs.value)
    X, y = cls_data
    for bad in (dict(solver="rmsprop"), dict(alpha=-1.0), dict(hidden_layer_sizes=(0,)),
                dict(n_iter_no_change=0), dict(batch_size=0), dict(momentum=1.5)):
        with pytest.raises(ValueError) as ours:  # plain: sklearn's
            cls(**bad).fit(X, y)
        with pytest.raises(ValueError) as theirs:  # plain: sklearn's
            sk_cls(**bad).fit(X, y)
        assert type(ours.value) is type(theirs.value)
        assert str(ours.value) == str(theirs.value)


def test_import_without_sklearn_names_the_extra():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "try:\n    import fusenn.sklearn\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "fusenn[sklearn]" in out and "scikit-learn" in out


def test_docstring_examples_run():
    import doctest

    from fusenn.sklearn import _mlp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = doctest.testmod(_mlp)
    assert result.attempted >= 6 and result.failed == 0


def test_not_fitted_errors(cls_data):
    X, _ = cls_data
    for est in (MLPClassifier(), MLPRegressor()):
        with pytest.raises(NotFittedError, match="not fitted"):
            est.predict(X)


# ----------------------------------------------------------------------------- same numbers
STOCHASTIC = [
    dict(solver="sgd", learning_rate_init=0.05, batch_size=32),
    dict(solver="sgd", learning_rate_init=0.05, batch_size=50, nesterovs_momentum=False,
         alpha=0.05),
    dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.2, power_t=0.3,
         momentum=0.5),
    dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.05, momentum=0.0,
         tol=0.5, n_iter_no_change=1),
    dict(solver="adam", learning_rate_init=0.01, batch_size=32, alpha=0.01),
    dict(solver="adam", learning_rate_init=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6,
         shuffle=False),
]


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("kw", STOCHASTIC)
def test_classifier_same_numbers_as_sklearn(cls_data, kw, early_stopping):
    X, y = cls_data
    sk, ours = fit_both(MLPClassifier, X, y, hidden_layer_sizes=(16, 12), max_iter=20,
                        random_state=3, early_stopping=early_stopping, **kw)
    assert_same(sk, ours, X)


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("kw", [STOCHASTIC[0], STOCHASTIC[1], STOCHASTIC[4]])
@pytest.mark.parametrize("activation", ["tanh", "logistic", "identity"])
def test_regressor_same_numbers_as_sklearn(reg_data, kw, early_stopping, activation):
    X, Y = reg_data
    sk, ours = fit_both(MLPRegressor, X, Y, hidden_layer_sizes=(10,), max_iter=20,
                        random_state=0, early_stopping=early_stopping, activation=activation,
                        **kw)
    assert_same(sk, ours, X)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_lbfgs_same_numbers_as_sklearn(cls, cls_data, reg_data):
    X, y = cls_data if cls is MLPClassifier else reg_data
    sk, ours = fit_both(cls, X, y, solver="lbfgs", hidden_layer_sizes=(8,), max_iter=60,
                        alpha=0.01, random_state=1)
    assert not hasattr(ours, "loss_curve_") and not hasattr(sk, "loss_curve_")
    # L-BFGS amplifies rounding differences along its path; agreement to its tolerance
    assert_same(sk, ours, X, rtol=1e-5)


def test_same_numbers_on_every_backend(cls_data, any_backend):
    X, y = cls_data
    sk, ours = fit_both(MLPClassifier, X, y, hidden_layer_sizes=(16,), max_iter=20,
                        random_state=0, solver="sgd", learning_rate_init=0.05, batch_size=32)
    assert_same(sk, ours, X)


def test_random_state_instance_advances_as_in_sklearn(cls_data):
    X, y = cls_data
    sk, ours = (c(hidden_layer_sizes=(8,), max_iter=5, random_state=np.random.RandomState(4))
                for c in (sknn.MLPClassifier, MLPClassifier))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(2):  # the second fit draws on from where the first stopped
            sk.fit(X, y)
            ours.fit(X, y)
    assert_same(sk, ours, X)


# ----------------------------------------------------------------------------- behaviour
def test_alpha_is_sklearns_l2_penalty_on_weights_only():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    reg = MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", alpha=3.0, max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    # documented loss: half squared error + alpha / (2 n) * sum of squared weights, no biases
    expected = (0.5 * np.mean((reg.predict(X) - y) ** 2)
                + 3.0 / (2 * 40) * sum(np.sum(W ** 2) for W in reg.coefs_))
    assert reg.loss_ == pytest.approx(expected, rel=1e-10)


def test_n_iter_no_change_inf_runs_every_epoch_and_tol_stops(cls_data):
    X, y = cls_data
    clf = MLPClassifier((8,), max_iter=12, n_iter_no_change=np.inf, tol=10.0, random_state=0)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        clf.fit(X, y)
    assert clf.n_iter_ == 12
    clf = MLPClassifier((8,), max_iter=50, n_iter_no_change=2, tol=10.0, random_state=0)
    clf.fit(X, y)  # the first epoch improves on best_loss_ = inf; then none improves by 10,
    assert clf.n_iter_ == 4  # and training stops when more than 2 epochs in a row did not


def test_early_stopping_keeps_best_weights_and_rejects_tiny_validation(cls_data):
    X, y = cls_data
    clf = MLPClassifier((16,), early_stopping=True, n_iter_no_change=3, max_iter=60,
                        learning_rate_init=0.05, random_state=0).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_ < 60
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    with pytest.raises(DataError, match="validation set is too small"):
        MLPRegressor(early_stopping=True, validation_fraction=0.1).fit(X[:10], y[:10] * 1.0)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):  # plain: sklearn's
        MLPRegressor(early_stopping=True).partial_fit(X, y.astype(float))


def test_warm_start_continues_like_sklearn(cls_data):
    X, y = cls_data
    kw = dict(hidden_layer_sizes=(8,), max_iter=4, warm_start=True, random_state=0,
              solver="sgd", learning_rate_init=0.05)
    sk, ours = fit_both(MLPClassifier, X, y, calls=3, **kw)
    assert len(ours.loss_curve_) == 12
    assert_same(sk, ours, X)
    with pytest.raises(DataError, match="warm_start can only be used"):
        ours.fit(X[y < 5], y[y < 5])


def test_partial_fit_like_sklearn_and_its_errors(cls_data, reg_data):
    X, y = cls_data
    sk, ours = fit_both(MLPClassifier, X, y, fit="partial_fit", calls=3,
                        hidden_layer_sizes=(8,), random_state=0, solver="adam",
                        learning_rate_init=0.01)
    assert ours.n_iter_ == 1 and len(ours.loss_curve_) == 3
    assert_same(sk, ours, X)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):  # plain: sklearn's
        MLPClassifier().partial_fit(X, y)
    clf = MLPClassifier((4,)).partial_fit(X[y < 5], y[y < 5], classes=np.arange(5))
    with pytest.raises(DataError, match="`y` has classes not in `self.classes_`"):
        clf.partial_fit(X, y)
    Xr, Yr = reg_data
    sk, ours = fit_both(MLPRegressor, Xr, Yr, fit="partial_fit", calls=2,
                        hidden_layer_sizes=(8,), random_state=0, solver="sgd")
    assert_same(sk, ours, Xr)
    for cls in (MLPClassifier, MLPRegressor):
        est = cls(solver="lbfgs")
        assert not hasattr(est, "partial_fit")
        with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as exc:
            est.partial_fit(X, y)
        assert "lbfgs is not stochastic" in str(exc.value.__cause__)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_sample_weight_like_sklearn(cls_data, reg_data, solver):
    X, y = cls_data
    w = np.random.default_rng(0).uniform(0, 3, size=len(y))
    kw = dict(hidden_layer_sizes=(8,), max_iter=10, random_state=0, solver=solver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for cls, X_, y_ in ((MLPClassifier, X, y), (MLPRegressor, *reg_data)):
            w_ = w[:len(y_)]
            sk = getattr(sknn, cls.__name__)(**kw).fit(X_, y_, sample_weight=w_)
            ours = cls(**kw).fit(X_, y_, sample_weight=w_)
            assert_same(sk, ours, X_, rtol=RTOL if solver != "lbfgs" else 1e-5)
            unweighted = cls(**kw).fit(X_, y_)
            assert not np.allclose(unweighted.coefs_[0], ours.coefs_[0])


def test_multilabel_is_independent_logistic_outputs(cls_data):
    X, y = cls_data
    Y = np.column_stack([y % 2, y > 4, y == 3]).astype(int)
    sk, ours = fit_both(MLPClassifier, X, Y, hidden_layer_sizes=(16,), max_iter=20,
                        random_state=0, learning_rate_init=0.01)
    assert ours.out_activation_ == "logistic" and ours.n_outputs_ == 3
    assert ours.predict(X).shape == (len(y), 3) and ours.predict_proba(X).shape == (len(y), 3)
    assert_same(sk, ours, X)


def test_binary_string_labels(cls_data):
    X, y = cls_data
    labels = np.where(y < 5, "small", "large")
    sk, ours = fit_both(MLPClassifier, X, labels, hidden_layer_sizes=(8,), max_iter=10,
                        random_state=0)
    assert list(ours.classes_) == ["large", "small"] and ours.out_activation_ == "logistic"
    assert_same(sk, ours, X)


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_multi_output_regression_and_poisson(reg_data, loss):
    X, Y = reg_data
    Y = np.abs(Y) if loss == "poisson" else Y
    sk, ours = fit_both(MLPRegressor, X, Y, loss=loss, hidden_layer_sizes=(8,), max_iter=20,
                        random_state=0, learning_rate_init=0.01)
    assert ours.out_activation_ == ("exp" if loss == "poisson" else "identity")
    assert ours.predict(X).shape == Y.shape
    assert_same(sk, ours, X)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_like_sklearn(cls_data, fmt):
    X, y = cls_data
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    for solver in ("sgd", "lbfgs"):
        sk, ours = fit_both(MLPClassifier, Xs, y, hidden_layer_sizes=(8,), max_iter=10,
                            random_state=0, solver=solver)
        assert_same(sk, ours, Xs, rtol=RTOL if solver == "sgd" else 1e-5)
        dense = MLPClassifier((8,), max_iter=10, random_state=0, solver=solver)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            dense.fit(X, y)
        np.testing.assert_allclose(ours.predict_proba(Xs), dense.predict_proba(X), rtol=1e-6)


def test_float32_kept(cls_data):
    X, y = cls_data
    X32 = X.astype(np.float32)
    sk, ours = fit_both(MLPClassifier, X32, y, hidden_layer_sizes=(8,), max_iter=10,
                        random_state=0, solver="sgd", learning_rate_init=0.05)
    assert all(c.dtype == np.float32 for c in ours.coefs_ + ours.intercepts_)
    assert ours.predict_proba(X32).dtype == np.float32
    np.testing.assert_allclose(ours.loss_curve_, sk.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X32), sk.predict_proba(X32), atol=1e-4)


def test_verbose_prints_sklearns_lines(cls_data):
    X, y = cls_data
    outputs = []
    for cls in (sknn.MLPClassifier, MLPClassifier):
        buf = io.StringIO()
        with redirect_stdout(buf):
            cls((8,), verbose=True, max_iter=30, tol=0.5, n_iter_no_change=2,
                early_stopping=True, random_state=0).fit(X, y)
        outputs.append(buf.getvalue())
    assert outputs[1] == outputs[0]
    assert "Iteration 1, loss = " in outputs[1] and "Validation score: " in outputs[1]
    assert "Stopping." in outputs[1]


def test_divergence_behaves_as_sklearn():
    rng = np.random.RandomState(0)
    X = rng.randn(50, 3)
    y = X[:, 0] * 1e3
    kw = dict(solver="sgd", learning_rate_init=10.0, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError) as theirs:  # plain: sklearn's
            sknn.MLPRegressor(**kw).fit(X, y)
        with pytest.raises(ValueError) as ours:  # plain: sklearn's
            MLPRegressor(**kw).fit(X, y)
    assert str(ours.value) == str(theirs.value)
    assert isinstance(ours.value, DivergenceError) and isinstance(ours.value, FusennError)


# ----------------------------------------------------------------------------- ecosystem
def test_pickle_and_joblib_round_trip(cls_data, tmp_path):
    X, y = cls_data
    clf = MLPClassifier((8,), solver="sgd", max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    joblib.dump(clf, tmp_path / "clf.joblib")
    for back in (pickle.loads(pickle.dumps(clf)), joblib.load(tmp_path / "clf.joblib")):
        np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
        assert back.loss_curve_ == clf.loss_curve_
        # training state (optimiser velocities) survives: the next epoch is the same
        back.partial_fit(X, y)
    clf.partial_fit(X, y)
    np.testing.assert_array_equal(back.coefs_[0], clf.coefs_[0])


def test_clone_pipeline_grid_search_cross_val_set_output(cls_data):
    X, y = cls_data
    clf = MLPClassifier(hidden_layer_sizes=(7,), alpha=0.5)
    assert clone(clf).get_params() == clf.get_params()
    kw = dict(max_iter=30, random_state=0, learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = make_pipeline(StandardScaler(), MLPClassifier((8,), **kw)).fit(X, y)
        assert pipe.score(X, y) > 0.9
        grid = GridSearchCV(MLPClassifier(**kw), {"hidden_layer_sizes": [(4,), (16,)]},
                            cv=2).fit(X, y)
        assert grid.best_params_["hidden_layer_sizes"] in [(4,), (16,)]
        scores = cross_val_score(MLPRegressor(hidden_layer_sizes=(8,), **kw), X, y.astype(float), cv=3)
        assert scores.shape == (3,)
        frame = make_pipeline(StandardScaler(), MLPClassifier((8,), **kw))
        frame.set_output(transform="pandas")
        Xdf = pd.DataFrame(X, columns=[f"px{i}" for i in range(X.shape[1])])
        frame.fit(Xdf, y)
    mlp = frame[-1]
    assert list(mlp.feature_names_in_) == list(Xdf.columns) and mlp.n_features_in_ == 64
    np.testing.assert_array_equal(frame.predict(Xdf), pipe.predict(X))


# ----------------------------------------------------------------------------- from test_faces
# (moved here from tests/test_faces.py; assertions kept where they match scikit-learn)
pytestmark_numpy = pytest.mark.usefixtures("numpy_backend")


@pytestmark_numpy
def test_mlp_classifier_on_digits(digits):
    X, y = digits
    Xtr, Xte, ytr, yte = fn.datasets.train_test_split(X, y, test_size=0.2, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(64,), learning_rate_init=3e-3, max_iter=30,
                        batch_size=32, random_state=0)
    with pytest.warns(ConvergenceWarning):
        clf.fit(Xtr, ytr)
    assert clf.score(Xte, yte) >= 0.95
    assert [c.shape for c in clf.coefs_] == [(64, 64), (64, 10)]
    assert [b.shape for b in clf.intercepts_] == [(64,), (10,)]
    assert clf.n_iter_ == len(clf.loss_curve_) == 30
    assert clf.n_layers_ == 3 and clf.n_outputs_ == 10 and clf.out_activation_ == "softmax"
    np.testing.assert_allclose(clf.predict_proba(Xte).sum(1), 1, rtol=1e-6)


@pytestmark_numpy
def test_classifier_string_labels_binary_and_reproducible():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = np.where(X[:, 0] - X[:, 1] > 0, "yes", "no")
    a = MLPClassifier((8,), max_iter=200, learning_rate_init=0.01, random_state=1,
                      tol=1e-2).fit(X, y)
    b = MLPClassifier((8,), max_iter=200, learning_rate_init=0.01, random_state=1,
                      tol=1e-2).fit(X, y)
    assert list(a.classes_) == ["no", "yes"] and a.out_activation_ == "logistic"
    assert a.score(X, y) > 0.9
    assert a.predict_proba(X).shape == (80, 2)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert a.n_iter_ < 200  # stopped by tol / n_iter_no_change


@pytestmark_numpy
def test_classifier_early_stopping_and_sgd_schedules():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    clf = MLPClassifier((10,), solver="sgd", learning_rate="invscaling", learning_rate_init=0.5,
                        early_stopping=True, n_iter_no_change=5, max_iter=300,
                        random_state=0).fit(X, y)
    assert clf.n_iter_ < 300 and len(clf.validation_scores_) == clf.n_iter_
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier((10,), solver="sgd", learning_rate="adaptive", max_iter=5,
                      random_state=0).fit(X, y)


@pytestmark_numpy
def test_regressor():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 2))
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2
    reg = MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", learning_rate_init=0.01, max_iter=300,
                       batch_size=20, random_state=0, tol=1e-6).fit(X, y)
    assert reg.predict(X).shape == (200,)
    assert reg.score(X, y) > 0.95


@pytestmark_numpy
def test_get_set_params_and_errors():
    clf = MLPClassifier(hidden_layer_sizes=(5,), alpha=0.1)
    params = clf.get_params()
    assert params["hidden_layer_sizes"] == (5,) and params["alpha"] == 0.1
    clf.set_params(max_iter=3)
    assert clf.max_iter == 3
    # scikit-learn's messages (these were fusenn's own before the face became an estimator)
    with pytest.raises(ValueError, match="Invalid parameter 'depth'"):  # plain: sklearn's
        clf.set_params(depth=3)
    with pytest.raises(NotFittedError, match="not fitted"):
        clf.predict(np.ones((1, 2)))
    with pytest.raises(ValueError, match="'solver' parameter of MLPClassifier must be"):  # plain: sklearn's
        MLPClassifier(solver="rmsprop").fit(np.ones((4, 2)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="hidden_layer_sizes"):  # plain: sklearn's
        MLPClassifier(hidden_layer_sizes=(0,)).fit(np.ones((4, 2)), [0, 1, 0, 1])


def test_kernels_flush_subnormal_error_terms_and_moments():
    from fusenn.sklearn import _kernels

    tiny = float(np.finfo(np.float32).tiny)
    z = np.array([[0.0, -95.0]], np.float32)  # softmax gives exp(-95) ~ 5e-42: subnormal
    delta = np.empty_like(z)
    _kernels.out_softmax(z, np.array([0]), np.empty(0, np.float32), 1e-7, tiny, delta)
    assert delta[0, 1] == 0.0 and delta[0, 0] == pytest.approx(0.0, abs=1e-30)
    p = np.ones(2, np.float32)
    vel = np.array([1e-38, 0.5], np.float32)  # 0.9 * 1e-38 is subnormal in float32
    _kernels.sgd_step(p, np.zeros(2, np.float32), vel, 0, 0.0, 1.0, 0.1, 0.9, False, tiny)
    assert vel[0] == 0.0 and vel[1] == pytest.approx(0.45)


@pytest.mark.parametrize("multiclass", [True, False])
def test_predict_log_proba_is_a_stable_log_softmax(multiclass):
    """predict_log_proba from the logits: log(predict_proba) where that is finite, and finite
    where the probability underflows (scikit-learn's log of the probability gives -inf)."""
    from fusenn.sklearn import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = rng.integers(0, 3 if multiclass else 2, 60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=50, random_state=0).fit(X, y)
    log_p = clf.predict_log_proba(X)
    np.testing.assert_allclose(log_p, np.log(clf.predict_proba(X)), rtol=1e-6, atol=1e-9)
    clf.coefs_[-1] = clf.coefs_[-1] * 1e4  # logits of size 1e4: probabilities underflow
    with np.errstate(divide="ignore"):
        assert np.isinf(np.log(clf.predict_proba(X))).any()
    assert np.isfinite(clf.predict_log_proba(X)).all()


# ----------------------------------------------------------------------------- compiled epoch
def _fit_paths(monkeypatch, cls, X, y, sample_weight=None, **kw):
    """Fit ``cls`` twice with the same arguments: the whole-epoch compiled path, then the
    per-batch Python path; return both and the compiled path's epoch count."""
    from fusenn.sklearn import _engine

    calls = []

    def counting(run):
        def counted(self, idx, opt):
            calls.append(1)
            return run(self, idx, opt)
        return counted

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with monkeypatch.context() as m:
            for epoch in (_engine.CompiledEpoch, _engine.SplitEpoch):
                m.setattr(epoch, "run", counting(epoch.run))
            compiled = cls(**kw).fit(X, y, sample_weight=sample_weight)
        with monkeypatch.context() as m:
            m.setattr(_engine, "compiled_epoch_usable", lambda X: False)
            python = cls(**kw).fit(X, y, sample_weight=sample_weight)
    return compiled, python, len(calls)


COMPILED_CASES = [
    # (estimator, target kind, arguments)
    ("cls", "multiclass", dict(solver="sgd", learning_rate_init=0.05, batch_size=32,
                               hidden_layer_sizes=(16, 12))),
    ("cls", "multiclass", dict(solver="sgd", nesterovs_momentum=False, alpha=0.05,
                               learning_rate="invscaling", batch_size=50, activation="tanh")),
    ("cls", "binary", dict(solver="adam", learning_rate_init=0.01, alpha=0.01, batch_size=17,
                           activation="logistic")),
    ("cls", "multilabel", dict(solver="adam", shuffle=False, beta_1=0.8, epsilon=1e-6,
                               hidden_layer_sizes=(9, 7, 5))),
    ("reg", "squared_error", dict(solver="sgd", learning_rate_init=0.01, activation="identity",
                                  early_stopping=True)),
    ("reg", "poisson", dict(solver="adam", learning_rate_init=0.01, batch_size=1,
                            hidden_layer_sizes=(4,))),
]


SPLIT_CASES = [
    dict(batch_size=32, hidden_layer_sizes=(16, 12)),
    dict(nesterovs_momentum=False, alpha=0.05, learning_rate="invscaling", batch_size=50,
         activation="tanh"),
    dict(momentum=0.0, alpha=0.0, batch_size=24, shuffle=False),
    dict(learning_rate="adaptive", n_iter_no_change=1, tol=0.5, batch_size=40,
         activation="logistic", early_stopping=True),
]


@pytest.fixture(params=[1, 2], ids=["one-thread", "split-2"])
def epoch_threads(request, monkeypatch):
    """The Cython backend's one-thread epoch, or its split epoch on 2 threads."""
    if request.param > 1:
        yield from split_epoch_on(backends.get("cython"), monkeypatch, request.param)
        return
    fn.set_num_threads(1)
    try:
        yield 1
    finally:
        fn.set_num_threads(None)


@pytest.mark.parametrize("kw", SPLIT_CASES)
def test_split_epoch_gives_the_compiled_epochs_numbers(monkeypatch, cls_data, epoch_threads,
                                                       kw):
    """float32 multiclass SGD trains on the Cython backend's own epoch (split between threads
    where the policy says so), in scikit-learn's terms: its penalty, velocity and schedules,
    to float32 rounding of the face's own compiled epoch (and of scikit-learn)."""
    from fusenn.sklearn import _engine

    X, y = cls_data
    X = X.astype(np.float32)
    kw = dict(kw, solver="sgd", learning_rate_init=0.05, max_iter=8, random_state=3)
    calls = []
    run = _engine.SplitEpoch.run

    def counted(self, idx, opt):
        calls.append(1)
        return run(self, idx, opt)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with monkeypatch.context() as m:
            m.setattr(_engine.SplitEpoch, "run", counted)
            split = MLPClassifier(**kw).fit(X, y)
        with monkeypatch.context() as m:
            m.setattr(_engine.SplitEpoch, "usable", staticmethod(lambda *a: False))
            own = MLPClassifier(**kw).fit(X, y)
        sk = sknn.MLPClassifier(**kw).fit(X, y)
    assert len(calls) == split.n_iter_ == own.n_iter_ == sk.n_iter_ > 0
    assert split.t_ == own.t_
    for other in (own, sk):
        np.testing.assert_allclose(split.loss_curve_, other.loss_curve_, rtol=2e-4)
        for a, b in zip(split.coefs_ + split.intercepts_, other.coefs_ + other.intercepts_):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-3 * np.abs(b).max())
    if kw.get("learning_rate") == "adaptive":
        assert split._optimizer.learning_rate == own._optimizer.learning_rate < 0.05
        assert split.validation_scores_ == pytest.approx(own.validation_scores_, abs=0.02)


def test_split_epoch_diverging_runs_on_as_sklearn(monkeypatch, cls_data, epoch_threads):
    """A float32 SGD run whose loss overflows: the backend stops before the batch, the face's
    own kernel runs the rest of the epoch from there, and fit ends as scikit-learn's does."""
    from fusenn.sklearn import _engine

    X, y = cls_data
    X = X.astype(np.float32) * 1e6
    kw = dict(solver="sgd", learning_rate_init=1e3, max_iter=3, random_state=0, batch_size=20)
    rest = []
    run = _engine.CompiledEpoch.run

    def counted(self, idx, opt):
        rest.append(len(idx))
        return run(self, idx, opt)

    monkeypatch.setattr(_engine.CompiledEpoch, "run", counted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DivergenceError, match="non-finite parameter weights") as ours:
            MLPClassifier(**kw).fit(X, y)
        with pytest.raises(ValueError,  # plain: scikit-learn's own error
                           match="non-finite parameter weights") as sk:
            sknn.MLPClassifier(**kw).fit(X, y)
    assert str(ours.value) == str(sk.value)
    assert 0 < rest[0] < len(X) and rest[0] % 20 == 0  # stopped within the first epoch


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", COMPILED_CASES, ids=[c[1] for c in COMPILED_CASES])
def test_compiled_epoch_gives_the_per_batch_paths_numbers(monkeypatch, cls_data, reg_data,
                                                          case, dtype, weighted):
    """Dense input trains through one compiled call per epoch, with the per-batch path's
    numbers (both are scikit-learn's order of operations) for every output, optimiser,
    schedule, dtype and with sample weights."""
    kind, target, kw = case
    if kind == "cls":
        X, y = cls_data
        cls = MLPClassifier
        y = {"multiclass": y, "binary": y % 2,
             "multilabel": np.column_stack([y % 2, y > 4, y == 3]).astype(int)}[target]
    else:
        X, y = reg_data
        cls = MLPRegressor
        kw = dict(kw, loss=target)
        y = np.abs(y) if target == "poisson" else y
    X = X.astype(dtype)
    w = np.random.default_rng(1).uniform(0.2, 3, len(X)) if weighted else None
    compiled, python, epochs = _fit_paths(monkeypatch, cls, X, y, w, max_iter=8,
                                          random_state=2, **kw)
    assert epochs == compiled.n_iter_ > 0
    rtol = 1e-11 if dtype == np.float64 else 2e-4
    assert compiled.n_iter_ == python.n_iter_ and compiled.t_ == python.t_
    np.testing.assert_allclose(compiled.loss_curve_, python.loss_curve_, rtol=rtol)
    for a, b in zip(compiled.coefs_ + compiled.intercepts_,
                    python.coefs_ + python.intercepts_):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
    if kw["solver"] == "adam":
        assert compiled._optimizer.t == python._optimizer.t
        assert compiled._optimizer.learning_rate == pytest.approx(
            python._optimizer.learning_rate, rel=1e-15)


def test_compiled_epoch_partial_fit_and_warm_start_continue(monkeypatch, cls_data):
    """partial_fit calls and warm starts carry the optimiser's state (Adam's step count, the
    velocity) from one compiled call to the next as the per-batch path does."""
    X, y = cls_data
    kw = dict(hidden_layer_sizes=(10,), random_state=0, batch_size=40)
    runs = []
    for usable in (True, False):
        with monkeypatch.context() as m:
            if not usable:
                m.setattr(fsk._engine, "compiled_epoch_usable", lambda X: False)
            a = MLPClassifier(solver="adam", **kw)
            for _ in range(3):
                a.partial_fit(X, y, classes=np.unique(y))
            b = MLPClassifier(solver="sgd", warm_start=True, max_iter=3, **kw)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                b.fit(X, y).fit(X, y)
            runs.append((a, b))
    (a1, b1), (a2, b2) = runs
    assert a1._optimizer.t == a2._optimizer.t == 3 * 6
    for one, two in ((a1, a2), (b1, b2)):
        np.testing.assert_allclose(one.loss_curve_, two.loss_curve_, rtol=1e-11)
        np.testing.assert_allclose(one.coefs_[0], two.coefs_[0], rtol=1e-11, atol=1e-13)


def test_compiled_epoch_is_taken_for_dense_input_only(cls_data):
    """The decision is made once, in one place: dense input with a compiled backend takes
    the whole-epoch kernel; sparse input and the NumPy reference backend keep the per-batch
    path."""
    from fusenn.sklearn import _engine

    X, _ = cls_data
    assert _engine.compiled_epoch_usable(X)
    assert not _engine.compiled_epoch_usable(sp.csr_matrix(X))
    with fn.use_backend("numpy"):
        assert not _engine.compiled_epoch_usable(X)


# ----------------------------------------------------------------------------- prediction
def test_predict_defers_the_finiteness_pass_but_keeps_sklearns_errors(monkeypatch, cls_data):
    """predict_proba makes no finiteness pass over finite input (the forward pass shows it
    finite), yet NaN or infinity in X raise scikit-learn's own error, and a finite input
    whose products overflow is predicted as scikit-learn predicts it."""
    import sklearn.utils.validation as skv

    from fusenn.sklearn import _mlp

    X, y = cls_data
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    sk, ours = fit_both(MLPClassifier, X, y, **kw)
    passes = []
    real = skv._assert_all_finite

    def counted(*args, **kwargs):
        passes.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(skv, "_assert_all_finite", counted)
    monkeypatch.setattr(_mlp, "_assert_all_finite", counted)
    ours.predict_proba(X)
    ours.predict(X)
    assert passes == []
    for bad in (np.nan, np.inf, -np.inf):
        Xb = X.copy()
        Xb[7, 3] = bad
        with pytest.raises(ValueError) as ours_err:  # plain: sklearn's
            ours.predict_proba(Xb)
        with pytest.raises(ValueError) as sk_err:  # plain: sklearn's
            sk.predict_proba(Xb)
        assert str(ours_err.value) == str(sk_err.value)
    passes.clear()
    Xbig = X * 1e305  # finite, but the products overflow: checked, accepted, predicted
    with np.errstate(all="ignore"):
        proba = ours.predict_proba(Xbig)
        sk.predict_proba(Xbig)
    assert passes == [1] and proba.shape == (len(X), len(ours.classes_))
    # sparse input keeps scikit-learn's check before the pass
    Xs = sp.csr_matrix(X)
    Xs.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):  # plain: sklearn's
        ours.predict_proba(Xs)


@pytest.mark.parametrize("n", [1, 2, 17, 240])
def test_shuffled_is_sklearns_shuffle(n):
    """The face's per-epoch shuffle gives scikit-learn's ``shuffle`` result and leaves the
    random state where scikit-learn's leaves it."""
    from sklearn.utils import shuffle

    from fusenn.sklearn._mlp import _shuffled

    idx = np.arange(n)[::-1].copy()
    ours_rs, sk_rs = np.random.RandomState(5), np.random.RandomState(5)
    for _ in range(3):
        np.testing.assert_array_equal(_shuffled(idx, ours_rs), shuffle(idx, random_state=sk_rs))
    assert ours_rs.randint(1 << 30) == sk_rs.randint(1 << 30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("blas", ["numpy", "numba"])
def test_compiled_epoch_products(dtype, blas):
    """The whole-epoch kernel's products, through NumPy's BLAS (found on this machine) and
    through Numba's ``np.dot``, for each transpose case, against NumPy, odd shapes included."""
    from fusenn.sklearn import _kernels

    address = _kernels.gemm_address(dtype) if blas == "numpy" else 0
    assert (address != 0) == (blas == "numpy")
    rng = np.random.default_rng(3)
    for m, k, n in ((1, 1, 1), (3, 7, 5), (33, 65, 9)):
        a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
        d, e = rng.standard_normal((m, n)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12)
        for x, ta, y, tb, want in ((a, False, b, False, a @ b), (a, True, d, False, a.T @ d),
                                   (d, False, e, True, d @ e.T)):
            out = np.full(want.shape, np.nan, dtype)
            _kernels.matmul(x, ta, y, tb, out, address)
            np.testing.assert_allclose(out, want, **tol)
