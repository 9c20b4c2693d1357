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
binary_cross_     mean softplus(z) - t z                sigmoid            binary
entropy
mse               mean (y - t)^2 over all elements      -                  regression
half_mse          1/(2n) sum_i sum_k (t - y)^2          -                  regression
================  ====================================  =================  ============
"""
from __future__ import annotations

import numpy as np

from . import backends
from ._validation import check_2d, check_finite, check_labels, check_targets
from .backends import _contract
from .errors import ArgumentError, ArgumentTypeError, ShapeError


__all__ = ["Loss", "CrossEntropy", "BinaryCrossEntropy", "MSE", "HalfMSE", "names", "get"]


class Loss:
    name = "loss"
    aliases = ()
    fused_activation = None
    task = None
    code = None  # train_epoch loss code

    def prepare_targets(self, y, n_samples, n_outputs, dtype):
        """Validated targets in the form the kernel takes."""
        return check_targets(y, n_samples, n_outputs, dtype)

    def __call__(self, out, y, grad=None):
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

    def value(self, out, y):
        """The mean loss of outputs ``out`` against targets ``y`` (checked as in
        :meth:`__call__`)."""
        out, y = self._checked(out, y)
        return self.kernel(backends.get(), out, y, None)

    def _checked(self, out, y):
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

    def __repr__(self):
        return f"{type(self).__name__}()"


class CrossEntropy(Loss):
    """Softmax cross-entropy from logits; targets are integer labels or one-hot/soft rows."""

    name = "cross_entropy"
    aliases = ("categorical_crossentropy", "sparse_categorical_crossentropy",
               "softmax_cross_entropy", "crossentropy", "log_loss", "nll")
    fused_activation = "softmax"
    task = "multiclass"
    code = _contract.LOSS_SOFTMAX_XENT

    def prepare_targets(self, y, n_samples, n_outputs, dtype):
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

    def kernel(self, be, out, y, grad):
        if y.ndim == 1:
            return be.softmax_xent(out, y, grad)
        return be.softmax_xent_probs(out, y, grad)


class BinaryCrossEntropy(Loss):
    """Sigmoid binary cross-entropy from logits; targets in [0, 1], one column per output."""

    name = "binary_cross_entropy"
    aliases = ("binary_crossentropy", "bce", "sigmoid_cross_entropy")
    fused_activation = "sigmoid"
    task = "binary"
    code = _contract.LOSS_SIGMOID_BCE

    def prepare_targets(self, y, n_samples, n_outputs, dtype):
        t = check_targets(y, n_samples, n_outputs, dtype)
        if np.any((t < 0) | (t > 1)):
            raise ArgumentError("binary_cross_entropy targets must lie in [0, 1]")
        return t

    def kernel(self, be, out, y, grad):
        return be.sigmoid_bce(out, y, grad)


class MSE(Loss):
    """Mean squared error over all elements (PyTorch's MSELoss, Keras' "mse")."""

    name = "mse"
    aliases = ("mean_squared_error", "squared_error", "l2")
    task = "regression"
    code = _contract.LOSS_MSE
    half = False

    def kernel(self, be, out, y, grad):
        return be.mse(out, y, grad, self.half)


class HalfMSE(MSE):
    """The notes' ``E = 1/(2n) sum_i sum_k (t - y)^2``, n the number of samples."""

    name = "half_mse"
    aliases = ("half_squared_error",)
    code = _contract.LOSS_HALF_MSE
    half = True


_REGISTRY = {cls.name: cls for cls in (CrossEntropy, BinaryCrossEntropy, MSE, HalfMSE)}
_ALIASES = {a: cls.name for cls in _REGISTRY.values() for a in cls.aliases}


def names():
    return sorted(_REGISTRY)


def get(loss):
    """A Loss from a name (or alias) or a Loss instance; unknown names list the valid ones."""
    if isinstance(loss, Loss):
        return loss
    if not isinstance(loss, str):
        raise ArgumentTypeError(f"loss must be a name or a Loss, got {type(loss).__name__}")
    key = loss.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ArgumentError(f"unknown loss {loss!r}; valid names: {', '.join(names())}")
    return _REGISTRY[key]()
