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

import numpy as np

from ._typing import Array, ArrayLike, Seed
from ._validation import check_2d, check_labels, check_positive, check_random_state
from .errors import ConvergenceWarning, ShapeError


class Perceptron:
    """``Perceptron(lr=1.0, max_iter=100, shuffle=False, random_state=None)``; labels 0/1.

    After :meth:`fit`: ``w_`` (weights), ``b_`` (bias), ``n_iter_`` (epochs run),
    ``errors_`` (misclassified samples per epoch), ``converged_``.

    Parameters
    ----------
    lr : float > 0, default 1.0
        The learning rate of the rule ``w += lr (t - y) x``.
    max_iter : int > 0, default 100
        The most epochs (passes over the data) :meth:`fit` runs.
    shuffle : bool, default False
        Visit the samples in a fresh random order every epoch.
    random_state : None, int or numpy.random.Generator
        Random source of the shuffling.

    Raises
    ------
    ValueError, TypeError
        ``lr`` or ``max_iter`` not positive numbers.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    >>> p = fn.Perceptron().fit(X, [0, 0, 0, 1])        # AND: linearly separable
    >>> p.predict(X).tolist(), p.converged_
    ([0, 0, 0, 1], True)
    """

    def __init__(self, lr: float = 1.0, max_iter: int = 100, shuffle: bool = False,
                 random_state: Seed = None) -> None:
        self.lr = check_positive(lr, "lr")
        self.max_iter = check_positive(max_iter, "max_iter", integer=True)
        self.shuffle = bool(shuffle)
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: ArrayLike) -> Perceptron:
        """Run the perceptron rule until an epoch makes no mistake, or ``max_iter`` epochs.

        Parameters
        ----------
        X : array_like of shape (n, n_features)
            The inputs.
        y : array_like of shape (n,)
            Labels 0 or 1.

        Returns
        -------
        Perceptron
            The perceptron itself, fitted.

        Raises
        ------
        ShapeError, ValueError
            ``X`` not 2-D and finite, or labels other than 0 and 1.

        Warns
        -----
        ConvergenceWarning
            An epoch still misclassified samples after ``max_iter`` epochs (XOR).
        """
        X = check_2d(X, "X", np.float64)
        t = check_labels(y, X.shape[0], 2)
        rng = check_random_state(self.random_state)
        self.w_ = np.zeros(X.shape[1])
        self.b_ = 0.0
        self.errors_: list[int] = []
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

    def decision_function(self, X: ArrayLike) -> Array:
        """``w . x + b`` for every row of ``X``.

        Parameters
        ----------
        X : array_like of shape (n, n_features)
            The inputs.

        Returns
        -------
        ndarray of shape (n,)

        Raises
        ------
        RuntimeError
            Not fitted yet.
        ShapeError
            ``X`` has another number of features than at fit time.
        """
        if not hasattr(self, "w_"):
            raise RuntimeError("this Perceptron is not fitted yet; call fit first")
        X = check_2d(X, "X", np.float64)
        if X.shape[1] != self.w_.shape[0]:
            raise ShapeError(f"X has {X.shape[1]} features but the perceptron was fitted on "
                             f"{self.w_.shape[0]}")
        scores: Array = X @ self.w_ + self.b_
        return scores

    def predict(self, X: ArrayLike) -> Array:
        """The step unit's outputs: 1 where ``w . x + b >= 0``, else 0.

        Parameters
        ----------
        X : array_like of shape (n, n_features)
            The inputs.

        Returns
        -------
        ndarray of int64, shape (n,)
        """
        return (self.decision_function(X) >= 0).astype(np.int64)

    def score(self, X: ArrayLike, y: ArrayLike) -> float:
        """The accuracy of :meth:`predict` on ``(X, y)``.

        Parameters
        ----------
        X : array_like of shape (n, n_features)
            The inputs.
        y : array_like of shape (n,)
            The true labels.

        Returns
        -------
        float
            In [0, 1].
        """
        return float(np.mean(self.predict(X) == np.asarray(y)))
