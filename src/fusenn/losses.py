"""Losses, each computed from the network's raw outputs in one fused kernel.

Every loss is paired with the output activation it absorbs: cross-entropy takes logits and
fuses the softmax (``grad = softmax(z) - onehot(y)``, over n), binary cross-entropy fuses the
sigmoid. When the model's last layer already applies that activation, the Trainer feeds the
loss its input instead, so the model may be written either way (Keras style with a softmax
output, PyTorch style with raw logits) and trains identically.

================  ====================================  =================  ============
name (aliases)    value                                 fused activation   task
================  ====================================  =================  ============
cross_entropy     mean_i logsumexp(z_i) - z_i[y_i]      softmax            multiclass
binary_cross\\_    mean softplus(z) - t z                sigmoid            binary
entropy
mse               mean (y - t)^2 over all elements      -                  regression
half_mse          1/(2n) sum_i sum_k (t - y)^2          -                  regression
================  ====================================  =================  ============
"""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np

from . import backends
from ._typing import Array, ArrayLike, DTypeLike
from ._validation import check_2d, check_finite, check_labels, check_targets
from .backends import _contract
from .errors import ArgumentError, ArgumentTypeError, ShapeError


__all__ = ["Loss", "CrossEntropy", "BinaryCrossEntropy", "MSE", "HalfMSE", "names", "get"]


class Loss:
    """Base of the losses: validation of targets, and the call that runs the fused kernel.

    A subclass names itself (``name``, ``aliases``), says which output activation it absorbs
    (``fused_activation``) and for which task, and implements :meth:`kernel`. Calling a loss,
    ``loss(out, y)``, returns the mean loss and its gradient with respect to ``out``.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> loss, grad = fn.losses.get("mse")(np.array([[1.0], [3.0]]), np.array([0.0, 3.0]))
    >>> loss, grad.ravel()
    (0.5, array([1., 0.]))
    """

    name = "loss"
    aliases: Tuple[str, ...] = ()
    fused_activation: Optional[str] = None
    task: Optional[str] = None
    code: Optional[int] = None  # train_epoch loss code

    def prepare_targets(self, y: ArrayLike, n_samples: int, n_outputs: int,
                        dtype: DTypeLike) -> Array:
        """Validated targets in the form the kernel takes.

        Parameters
        ----------
        y : array_like
            The targets as the user gave them.
        n_samples : int
            The number of rows ``y`` must have.
        n_outputs : int
            The model's output width.
        dtype : float32 or float64
            The outputs' dtype (real targets are converted to it).

        Returns
        -------
        ndarray
            Class labels (int64, shape (n,)) for cross-entropy with labels or one-hot rows;
            otherwise real targets of shape (n, n_outputs) and ``dtype``.

        Raises
        ------
        ShapeError, ArgumentError, LabelError
            Targets that do not fit the outputs.
        """
        return check_targets(y, n_samples, n_outputs, dtype)

    def kernel(self, be: Any, out: Array, y: Array,
               grad: Optional[Array]) -> Any:  # pragma: no cover - abstract
        """Run the fused loss kernel of backend ``be``.

        Parameters
        ----------
        be : backend
            What :func:`fusenn.backends.get` returned.
        out : ndarray of shape (n, k)
            The checked outputs.
        y : ndarray
            The prepared targets.
        grad : ndarray of shape (n, k) or None
            Where the gradient goes (None: the loss alone).

        Returns
        -------
        float
            The mean loss.
        """
        raise NotImplementedError

    def __call__(self, out: ArrayLike, y: ArrayLike,
                 grad: Optional[Array] = None) -> Tuple[float, Array]:
        """The loss and its gradient wrt ``out``.

        Parameters
        ----------
        out : array of shape (n, k)
            The model's outputs (logits for the fused losses), float32 or float64.
        y : array
            Targets as :meth:`prepare_targets` takes them (class labels or rows).
        grad : ndarray of shape (n, k) and ``out``'s dtype, optional
            Written in place when given.

        Returns
        -------
        (float, ndarray)
            The mean loss and its gradient.

        Raises
        ------
        ShapeError, ArgumentError, LabelError
            ``out``, ``y`` or ``grad`` does not fit (labels out of ``0..k-1`` among them).
        """
        out, y = self._checked(out, y)
        if grad is None:
            grad = np.empty_like(out)
        else:
            if not (isinstance(grad, np.ndarray) and grad.shape == out.shape
                    and grad.dtype == out.dtype and grad.flags.c_contiguous
                    and grad.flags.writeable):
                raise ShapeError(f"grad must be a writeable C-contiguous {out.dtype} array of "
                                 f"shape {out.shape}, got "
                                 f"{getattr(grad, 'dtype', type(grad).__name__)} of shape "
                                 f"{np.shape(grad)}")
        return self.kernel(backends.get(), out, y, grad), grad

    def value(self, out: ArrayLike, y: ArrayLike) -> float:
        """The mean loss of outputs ``out`` against targets ``y`` (checked as in
        :meth:`__call__`).

        Parameters
        ----------
        out : array of shape (n, k)
            The model's outputs (logits for the fused losses).
        y : array
            The targets.

        Returns
        -------
        float

        Raises
        ------
        ShapeError, ArgumentError, LabelError
            ``out`` and ``y`` do not fit.

        Examples
        --------
        >>> import numpy as np
        >>> import fusenn as fn
        >>> round(fn.losses.get("cross_entropy").value(np.zeros((1, 4)), [2]), 4)
        1.3863
        """
        out, y = self._checked(out, y)
        value: float = self.kernel(backends.get(), out, y, None)
        return value

    def _checked(self, out: Any, y: Any) -> Tuple[Array, Array]:
        """``out`` and ``y`` in the form the kernel takes, checked against each other."""
        if not (type(out) is np.ndarray and out.ndim == 2 and out.dtype.kind == "f"
                and out.flags.c_contiguous and out.size):
            out = check_2d(out, "out")
            out = np.ascontiguousarray(out)
        check_finite(out, "out")
        n, k = out.shape
        if isinstance(y, np.ndarray) and y.dtype == np.int64 and y.shape == (n,) \
                and self.code == _contract.LOSS_SOFTMAX_XENT and y.flags.c_contiguous:
            check_labels(y, n, k)  # labels as the Trainer prepared them: range only
            return out, y
        return out, self.prepare_targets(y, n, k, out.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CrossEntropy(Loss):
    """Softmax cross-entropy from logits; targets are integer labels or one-hot/soft rows.

    One-hot rows are turned into labels; other rows (soft targets, summing to 1) are used as
    probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> loss, grad = fn.losses.CrossEntropy()(np.array([[0.0, 0.0]]), np.array([1]))
    >>> round(loss, 4), grad
    (0.6931, array([[ 0.5, -0.5]]))
    """

    name = "cross_entropy"
    aliases = ("categorical_crossentropy", "sparse_categorical_crossentropy",
               "softmax_cross_entropy", "crossentropy", "log_loss", "nll")
    fused_activation = "softmax"
    task = "multiclass"
    code = _contract.LOSS_SOFTMAX_XENT

    def prepare_targets(self, y: ArrayLike, n_samples: int, n_outputs: int,
                        dtype: DTypeLike) -> Array:
        arr = np.asarray(y)
        if arr.ndim == 2 and arr.shape[1] > 1:
            if arr.shape[1] != n_outputs:
                raise ShapeError(f"y has {arr.shape[1]} columns but the model has {n_outputs} "
                                 f"outputs")
            t = check_targets(arr, n_samples, n_outputs, dtype)
            if np.all((t == 0) | (t == 1)) and np.all(t.sum(axis=1) == 1):
                return np.ascontiguousarray(np.argmax(t, axis=1).astype(np.int64))
            return t
        if n_outputs < 2:
            raise ShapeError("cross_entropy needs at least 2 outputs (one per class); use "
                             "binary_cross_entropy for a single output")
        return check_labels(arr, n_samples, n_outputs)

    def kernel(self, be: Any, out: Array, y: Array, grad: Optional[Array]) -> Any:
        if y.ndim == 1:
            return be.softmax_xent(out, y, grad)
        return be.softmax_xent_probs(out, y, grad)


class BinaryCrossEntropy(Loss):
    """Sigmoid binary cross-entropy from logits; targets in [0, 1], one column per output.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> round(fn.losses.BinaryCrossEntropy().value(np.array([[0.0]]), [1.0]), 4)
    0.6931
    """

    name = "binary_cross_entropy"
    aliases = ("binary_crossentropy", "bce", "sigmoid_cross_entropy")
    fused_activation = "sigmoid"
    task = "binary"
    code = _contract.LOSS_SIGMOID_BCE

    def prepare_targets(self, y: ArrayLike, n_samples: int, n_outputs: int,
                        dtype: DTypeLike) -> Array:
        t = check_targets(y, n_samples, n_outputs, dtype)
        if np.any((t < 0) | (t > 1)):
            raise ArgumentError("binary_cross_entropy targets must lie in [0, 1]")
        return t

    def kernel(self, be: Any, out: Array, y: Array, grad: Optional[Array]) -> Any:
        return be.sigmoid_bce(out, y, grad)


class MSE(Loss):
    """Mean squared error over all elements (PyTorch's MSELoss, Keras' "mse").

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> fn.losses.MSE().value(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]))
    2.5
    """

    name = "mse"
    aliases: Tuple[str, ...] = ("mean_squared_error", "squared_error", "l2")
    task = "regression"
    code = _contract.LOSS_MSE
    half = False

    def kernel(self, be: Any, out: Array, y: Array, grad: Optional[Array]) -> Any:
        return be.mse(out, y, grad, self.half)


class HalfMSE(MSE):
    """The notes' ``E = 1/(2n) sum_i sum_k (t - y)^2``, n the number of samples."""

    name = "half_mse"
    aliases: Tuple[str, ...] = ("half_squared_error",)
    code = _contract.LOSS_HALF_MSE
    half = True


_REGISTRY = {cls.name: cls for cls in (CrossEntropy, BinaryCrossEntropy, MSE, HalfMSE)}
_ALIASES = {a: cls.name for cls in _REGISTRY.values() for a in cls.aliases}


def names() -> List[str]:
    """The registered loss names, sorted (aliases not included).

    Returns
    -------
    list of str

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.losses.names()
    ['binary_cross_entropy', 'cross_entropy', 'half_mse', 'mse']
    """
    return sorted(_REGISTRY)


def get(loss: Any) -> Loss:
    """A Loss from a name (or alias) or a Loss instance; unknown names list the valid ones.

    Parameters
    ----------
    loss : str or Loss
        A name of :func:`names` or an alias (``"categorical_crossentropy"``, ``"bce"``,
        ``"mean_squared_error"``, ...), in any case; a Loss is returned as it is.

    Returns
    -------
    Loss

    Raises
    ------
    ValueError
        An unknown name.
    TypeError
        ``loss`` is neither a string nor a Loss.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.losses.get("sparse_categorical_crossentropy")
    CrossEntropy()
    """
    if isinstance(loss, Loss):
        return loss
    if not isinstance(loss, str):
        raise ArgumentTypeError(f"loss must be a name or a Loss, got {type(loss).__name__}")
    key = loss.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ArgumentError(f"unknown loss {loss!r}; valid names: {', '.join(names())}")
    return _REGISTRY[key]()
