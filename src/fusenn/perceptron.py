"""Rosenblatt's perceptron: one step unit and the perceptron learning rule.

The unit outputs ``y = step(w . x + b)`` (1 if ``w . x + b >= 0`` else 0). For every sample the
rule moves the weights by ``lr (t - y) x`` and the bias - a weight on a constant input 1 - by
``lr (t - y)``; correct answers change nothing. On linearly separable data (AND, OR) it
converges; on XOR no line separates the classes, so it stops after ``max_iter`` epochs, warns,
and leaves ``converged_ = False``.

Deliberately per sample and in plain NumPy: this is the algorithm as the notes teach it.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._validation import check_2d, check_labels, check_positive, check_random_state
from .errors import ConvergenceWarning, ShapeError


class Perceptron:
    """``Perceptron(lr=1.0, max_iter=100, shuffle=False, random_state=None)``; labels 0/1.

    After :meth:`fit`: ``w_`` (weights), ``b_`` (bias), ``n_iter_`` (epochs run),
    ``errors_`` (misclassified samples per epoch), ``converged_``.
    """

    def __init__(self, lr: Any = 1.0, max_iter: Any = 100, shuffle: Any = False,
                 random_state: Any = None) -> None:
        self.lr = check_positive(lr, "lr")
        self.max_iter = check_positive(max_iter, "max_iter", integer=True)
        self.shuffle = bool(shuffle)
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> Any:
        X = check_2d(X, "X", np.float64)
        t = check_labels(y, X.shape[0], 2)
        rng = check_random_state(self.random_state)
        self.w_ = np.zeros(X.shape[1])
        self.b_ = 0.0
        self.errors_ = []
        self.converged_ = False
        order = np.arange(X.shape[0])
        for epoch in range(self.max_iter):
            if self.shuffle:
                rng.shuffle(order)
            errors = 0
            for i in order:
                y_i = 1 if X[i] @ self.w_ + self.b_ >= 0 else 0
                if y_i != t[i]:
                    self.w_ += self.lr * (t[i] - y_i) * X[i]
                    self.b_ += self.lr * (t[i] - y_i)
                    errors += 1
            self.errors_.append(errors)
            if errors == 0:
                self.converged_ = True
                break
        self.n_iter_ = epoch + 1
        if not self.converged_:
            warnings.warn(f"the perceptron did not converge in {self.max_iter} epochs "
                          f"({self.errors_[-1]} samples still misclassified): the data may not "
                          f"be linearly separable", ConvergenceWarning, stacklevel=2)
        return self

    def decision_function(self, X: Any) -> Any:
        if not hasattr(self, "w_"):
            raise RuntimeError("this Perceptron is not fitted yet; call fit first")
        X = check_2d(X, "X", np.float64)
        if X.shape[1] != self.w_.shape[0]:
            raise ShapeError(f"X has {X.shape[1]} features but the perceptron was fitted on "
                             f"{self.w_.shape[0]}")
        return X @ self.w_ + self.b_

    def predict(self, X: Any) -> Any:
        return (self.decision_function(X) >= 0).astype(np.int64)

    def score(self, X: Any, y: Any) -> Any:
        return float(np.mean(self.predict(X) == np.asarray(y)))
