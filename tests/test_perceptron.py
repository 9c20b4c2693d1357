import numpy as np
import pytest

import fusenn as fn
from fusenn.errors import ConvergenceWarning
from support import bad_input

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)


@pytest.mark.parametrize("target", [[0, 0, 0, 1], [0, 1, 1, 1]], ids=["AND", "OR"])
def test_converges_on_linearly_separable(target):
    p = fn.Perceptron(lr=1.0, max_iter=100).fit(X, target)
    assert p.converged_
    np.testing.assert_array_equal(p.predict(X), target)
    assert p.errors_[-1] == 0


def test_learning_rule_by_hand():
    # first sample (0, 0) with target 1: y = step(0) = 1, correct; second (1, 1), target 0:
    # y = 1, wrong -> w += lr (0 - 1) x, b += lr (0 - 1)
    p = fn.Perceptron(lr=0.5, max_iter=1)
    with pytest.warns(ConvergenceWarning):
        p.fit(np.array([[0.0, 0.0], [1.0, 1.0]]), [1, 0])
    np.testing.assert_allclose(p.w_, [-0.5, -0.5])
    assert p.b_ == -0.5


def test_xor_stops_and_says_so():
    with pytest.warns(ConvergenceWarning, match="did not converge in 25 epochs"):
        p = fn.Perceptron(max_iter=25).fit(X, [0, 1, 1, 0])
    assert not p.converged_ and p.n_iter_ == 25
    assert p.score(X, [0, 1, 1, 0]) < 1.0


def test_bad_input():
    with bad_input(ValueError, match="out of range"):
        fn.Perceptron().fit(X, [0, 1, 2, 0])
    with pytest.raises(RuntimeError, match="not fitted"):
        fn.Perceptron().predict(X)


def test_one_convergence_warning_for_the_library():
    # defined once, in fusenn.errors, as a UserWarning; the perceptron warns with that class
    assert issubclass(fn.errors.ConvergenceWarning, UserWarning)
    assert not issubclass(fn.errors.ConvergenceWarning, fn.errors.FusennError)
    with pytest.warns(fn.errors.ConvergenceWarning) as record:
        fn.Perceptron(max_iter=3).fit(X, [0, 1, 1, 0])
    assert [w.category for w in record] == [fn.errors.ConvergenceWarning]
