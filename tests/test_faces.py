"""The scikit-learn face (the Keras face is tested in test_keras.py)."""
import numpy as np
import pytest

import fusenn as fn
from fusenn.sklearn import ConvergenceWarning, MLPClassifier, MLPRegressor

pytestmark = pytest.mark.usefixtures("numpy_backend")


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


def test_classifier_early_stopping_and_sgd_schedules():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    clf = MLPClassifier((10,), solver="sgd", learning_rate="invscaling", learning_rate_init=0.5,
                        early_stopping=True, n_iter_no_change=5, max_iter=300,
                        random_state=0).fit(X, y)
    assert clf.n_iter_ < 300 and len(clf.validation_scores_) == clf.n_iter_
    with pytest.warns(ConvergenceWarning, match="maximum iterations"):
        MLPClassifier((10,), solver="sgd", learning_rate="adaptive", max_iter=5,
                      random_state=0).fit(X, y)


def test_regressor():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 2))
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2
    reg = MLPRegressor((32,), activation="tanh", learning_rate_init=0.01, max_iter=300,
                       batch_size=20, random_state=0, tol=1e-6).fit(X, y)
    assert reg.predict(X).shape == (200,)
    assert reg.score(X, y) > 0.95


def test_get_set_params_and_errors():
    clf = MLPClassifier(hidden_layer_sizes=(5,), alpha=0.1)
    params = clf.get_params()
    assert params["hidden_layer_sizes"] == (5,) and params["alpha"] == 0.1
    clf.set_params(max_iter=3)
    assert clf.max_iter == 3
    with pytest.raises(ValueError, match="invalid parameter 'depth'"):
        clf.set_params(depth=3)
    with pytest.raises(RuntimeError, match="not fitted"):
        clf.predict(np.ones((1, 2)))
    with pytest.raises(ValueError, match="unknown solver 'lbfgs'"):
        MLPClassifier(solver="lbfgs").fit(np.ones((4, 2)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        MLPClassifier(hidden_layer_sizes=(0,)).fit(np.ones((4, 2)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        MLPClassifier().fit(np.ones((4, 2)), [1, 1, 1, 1])


def test_sklearn_clone_when_installed():
    base = pytest.importorskip("sklearn.base")
    clf = MLPClassifier(hidden_layer_sizes=(7,), alpha=0.5)
    assert base.clone(clf).get_params() == clf.get_params()
