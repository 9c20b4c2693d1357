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

from typing import Any, Optional, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import ArgumentError
from ._common import missing_attribute, unsupported


class Regularizer:
    """A penalty ``l1 * sum(|W|) + l2 * sum(W ** 2)`` on one weight array.

    Parameters
    ----------
    l1, l2 : float >= 0, default=0.0
        The coefficients.

    Raises
    ------
    ValueError
        For a negative or non-finite coefficient.
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        for name, v in (("l1", l1), ("l2", l2)):
            if not (isinstance(v, (int, float, np.floating)) and np.isfinite(v) and v >= 0):
                raise ArgumentError(f"regularizer {name} must be a finite number >= 0, got {v!r}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w: ArrayLike) -> float:
        """The penalty of ``w``.

        Parameters
        ----------
        w : array_like
            A weight array.

        Returns
        -------
        float
            ``l1 * sum(|w|) + l2 * sum(w ** 2)``, computed in float64.
        """
        w = np.asarray(w, dtype=np.float64)
        return float(self.l1 * np.abs(w).sum() + self.l2 * np.square(w).sum())

    def add_gradient(self, w: NDArray[Any], dw: NDArray[Any]) -> None:
        """Add the penalty's gradient with respect to ``w`` into ``dw`` (in place).

        Parameters
        ----------
        w : ndarray
            The weights.
        dw : ndarray of the shape of ``w``
            Their loss gradient, to which ``l1 * sign(w) + 2 * l2 * w`` is added.
        """
        if self.l1:
            dw += (self.l1 * np.sign(w)).astype(dw.dtype)
        if self.l2:
            dw += (2.0 * self.l2) * w

    def get_config(self) -> dict[str, float]:
        """Keras's config of the regulariser.

        Returns
        -------
        dict
            ``{"l1": ..., "l2": ...}``, what :func:`get` takes back.
        """
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self) -> str:
        return f"L1L2(l1={self.l1}, l2={self.l2})"


class L1L2(Regularizer):
    """``l1 * sum(|W|) + l2 * sum(W ** 2)`` (Keras's defaults: both 0).

    Parameters
    ----------
    l1, l2 : float >= 0, default=0.0
        The coefficients.
    """


class L1(Regularizer):
    """``l1 * sum(|W|)``; Keras's default ``l1=0.01``.

    Parameters
    ----------
    l1 : float >= 0, default=0.01
        The coefficient.
    """

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)


class L2(Regularizer):
    """``l2 * sum(W ** 2)``; Keras's default ``l2=0.01``.

    Parameters
    ----------
    l2 : float >= 0, default=0.01
        The coefficient.
    """

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)


def l1(l1: float = 0.01) -> L1:
    """Keras's ``regularizers.l1``: ``l1 * sum(|W|)``.

    Parameters
    ----------
    l1 : float >= 0, default=0.01
        The coefficient.

    Returns
    -------
    L1
        The regulariser, for ``Dense(kernel_regularizer=...)``.
    """
    return L1(l1)


def l2(l2: float = 0.01) -> L2:
    """Keras's ``regularizers.l2``: ``l2 * sum(W ** 2)``.

    Parameters
    ----------
    l2 : float >= 0, default=0.01
        The coefficient.

    Returns
    -------
    L2
        The regulariser, for ``Dense(kernel_regularizer=...)``.
    """
    return L2(l2)


def l1_l2(l1: float = 0.0, l2: float = 0.0) -> L1L2:
    """Keras's ``regularizers.l1_l2``: both penalties.

    Parameters
    ----------
    l1, l2 : float >= 0, default=0.0
        The coefficients.

    Returns
    -------
    L1L2
        The regulariser.

    Examples
    --------
    >>> l1_l2(0.1, 0.2)
    L1L2(l1=0.1, l2=0.2)
    """
    return L1L2(l1, l2)


def get(identifier: Union[str, dict[str, float], Regularizer, None]) -> Optional[Regularizer]:
    """A Regularizer from ``"l1"``, ``"l2"``, ``"l1_l2"``, a Regularizer or None.

    Parameters
    ----------
    identifier : str, dict, Regularizer or None
        A name (Keras's default coefficients, 0.01), a config ``{"l1": ..., "l2": ...}``, a
        Regularizer (returned as it is) or None.

    Returns
    -------
    Regularizer or None
        None for None.

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
        key = identifier.lower()
        return L1() if key == "l1" else L2() if key == "l2" else L1L2(0.01, 0.01)
    raise unsupported(f"the regularizer {identifier!r}", "use l1, l2 or l1_l2")


__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get"]

__getattr__ = missing_attribute(__name__, ("L1", "L2", "L1L2", "l1", "l2", "l1_l2"))
