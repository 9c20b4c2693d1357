import numpy as np
import pytest

import fusenn as fn
from fusenn import metrics as M
from support import bad_input

T = np.array([0, 1, 2, 2, 1, 0, 1, 2])
P = np.array([0, 2, 2, 2, 1, 0, 0, 1])


def test_confusion_matrix():
    cm = M.confusion_matrix(T, P)
    np.testing.assert_array_equal(cm, [[2, 0, 0], [1, 1, 1], [0, 1, 2]])
    assert cm.sum() == len(T)
    np.testing.assert_array_equal(M.confusion_matrix([1, 1], [1, 1], labels=[0, 1]),
                                  [[0, 0], [0, 2]])


def test_accuracy_and_averages():
    assert M.accuracy(T, P) == pytest.approx(5 / 8)
    prec = np.array([2 / 3, 1 / 2, 2 / 3])
    rec = np.array([1.0, 1 / 3, 2 / 3])
    f1 = 2 * prec * rec / (prec + rec)
    np.testing.assert_allclose(M.precision(T, P, average=None), prec)
    np.testing.assert_allclose(M.recall(T, P, average=None), rec)
    assert M.f1_score(T, P, average="macro") == pytest.approx(f1.mean())
    support = np.array([2, 3, 3])
    assert M.f1_score(T, P, average="weighted") == pytest.approx(np.dot(f1, support) / 8)
    for f in (M.precision, M.recall, M.f1_score):
        assert f(T, P, average="micro") == pytest.approx(5 / 8)


def test_binary():
    t = np.array([1, 0, 1, 1, 0])
    p = np.array([1, 1, 0, 1, 0])
    assert M.precision(t, p) == pytest.approx(2 / 3)
    assert M.recall(t, p) == pytest.approx(2 / 3)
    assert M.f1_score(t, p) == pytest.approx(2 / 3)
    assert M.precision(t, np.zeros(5, int)) == 0.0  # no positive predictions: 0, no warning
    with bad_input(ValueError, match="binary"):
        M.precision(T, P)


def test_errors():
    with pytest.raises(fn.ShapeError, match="different lengths"):
        M.accuracy([0, 1], [0])
    with bad_input(ValueError, match="average must be"):
        M.recall(T, P, average="samples")
    assert "macro" in M.classification_report(T, P)
