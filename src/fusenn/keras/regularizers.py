"""Keras's weight regularisers (``keras.regularizers``): a penalty on a layer's weights added
to the loss.

``l2(0.01)`` adds ``0.01 * sum(W ** 2)`` to the loss (and ``0.02 W`` to the gradient of
``W``), ``l1(0.01)`` adds ``0.01 * sum(|W|)`` (gradient ``0.01 sign(W)``), ``l1_l2`` both. The
loss logged by ``fit`` and returned by ``evaluate`` includes the penalties, as in Keras. A model
with a regulariser trains on fusenn's per-batch path (the compiled epoch has no penalty term).

>>> import numpy as np
>>> reg = l2(0.5)
>>> float(reg(np.array([[1.0, 2.0]])))
2.5
"""
from __future__ import annotations

import numpy as np

from ..errors import ArgumentError
from ._common import missing_attribute, unsupported


class Regularizer:
    """A penalty ``l1 * sum(|W|) + l2 * sum(W ** 2)`` on one weight array.

    Parameters
    ----------
    l1, l2 : float >= 0
        The coefficients.

    Raises
    ------
    ValueError
        For a negative or non-finite coefficient.
    """

    def __init__(self, l1=0.0, l2=0.0):
        for name, v in (("l1", l1), ("l2", l2)):
            if not (isinstance(v, (int, float, np.floating)) and np.isfinite(v) and v >= 0):
                raise ArgumentError(f"regularizer {name} must be a finite number >= 0, got {v!r}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w):
        """The penalty of ``w``."""
        w = np.asarray(w, dtype=np.float64)
        return self.l1 * np.abs(w).sum() + self.l2 * np.square(w).sum()

    def add_gradient(self, w, dw):
        """Add the penalty's gradient with respect to ``w`` into ``dw`` (in place)."""
        if self.l1:
            dw += (self.l1 * np.sign(w)).astype(dw.dtype)
        if self.l2:
            dw += (2.0 * self.l2) * w

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self):
        return f"L1L2(l1={self.l1}, l2={self.l2})"


class L1L2(Regularizer):
    """``l1 * sum(|W|) + l2 * sum(W ** 2)`` (Keras's defaults: both 0)."""


class L1(Regularizer):
    """``l1 * sum(|W|)``; Keras's default ``l1=0.01``."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)


class L2(Regularizer):
    """``l2 * sum(W ** 2)``; Keras's default ``l2=0.01``."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)


def l1(l1=0.01):
    """Keras's ``regularizers.l1``: ``l1 * sum(|W|)``."""
    return L1(l1)


def l2(l2=0.01):
    """Keras's ``regularizers.l2``: ``l2 * sum(W ** 2)``."""
    return L2(l2)


def l1_l2(l1=0.0, l2=0.0):
    """Keras's ``regularizers.l1_l2``: both penalties."""
    return L1L2(l1, l2)


def get(identifier):
    """A Regularizer from ``"l1"``, ``"l2"``, ``"l1_l2"``, a Regularizer or None.

    Raises
    ------
    UnsupportedFeatureError
        For anything else (a custom function, ``OrthogonalRegularizer``).
    """
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict) and set(identifier) <= {"l1", "l2"}:
        return L1L2(**identifier)
    if isinstance(identifier, str) and identifier.lower() in ("l1", "l2", "l1_l2"):
        return {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(0.01, 0.01)}[identifier.lower()]()
    raise unsupported(f"the regularizer {identifier!r}", "use l1, l2 or l1_l2")


__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get"]
__getattr__ = missing_attribute(__name__, ("L1", "L2", "L1L2", "l1", "l2", "l1_l2"))
