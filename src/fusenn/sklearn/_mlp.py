"""``MLPClassifier`` and ``MLPRegressor``: scikit-learn's estimators on fusenn's kernels.

The estimators follow scikit-learn's ``sklearn.neural_network`` step by step - the same
parameters and validation, the same random-number calls in the same order (weights drawn
uniformly in ``+-sqrt(6 / (fan_in + fan_out))``, ``sqrt(2 / ...)`` for logistic, layer by
layer, weights then biases; the validation split; one shuffle of the sample indices per
epoch), the same gradient, the same loss value, the same optimiser formulas and the same
stopping rules - so that in float64 they produce scikit-learn's numbers. What changes is how
a mini-batch is computed: fused compiled kernels writing into buffers allocated once per fit,
and one Numba pass for the update (see :mod:`._engine`).

scikit-learn's own helpers do the rest: parameter validation, ``validate_data`` (which also
sets ``n_features_in_`` and ``feature_names_in_``), ``LabelBinarizer``, ``type_of_target``,
``train_test_split`` for the (stratified) validation set, ``check_random_state``,
``accuracy_score`` / ``r2_score`` and ``ConvergenceWarning``.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray
import scipy.optimize
import scipy.sparse as sp
from sklearn.base import (BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context,
                          is_classifier)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as _SkMLPClassifier
from sklearn.neural_network import MLPRegressor as _SkMLPRegressor
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import (_assert_all_finite, _check_sample_weight, check_is_fitted,
                                      validate_data)

from .._threads import thread_limits
from ..functional import log_softmax
from ..errors import DataError, NonFiniteWeightsError
from . import _engine, _kernels

_STOCHASTIC_SOLVERS = ("sgd", "adam")
#: What the estimators take as ``X``: an array-like or a SciPy CSR/CSC matrix.
MatrixLike = Any
_Estimator = TypeVar("_Estimator", bound="_BaseMLP")


def _shuffled(indices: np.ndarray, random_state: np.random.RandomState) -> np.ndarray:
    """``sklearn.utils.shuffle(indices, random_state=random_state)``: the same single
    ``random_state.shuffle`` of ``arange(n)`` and the same result, without its parameter
    validation and container dispatch, which took 0.15 ms an epoch - a third of an 8x8-digits
    fit (test_shuffled_is_sklearns_shuffle checks the two against each other)."""
    order = np.arange(indices.shape[0])
    random_state.shuffle(order)
    return indices[order]


# ----------------------------------------------------------------------------- optimisers
class _SGD:
    """scikit-learn's SGD with momentum: ``v = momentum v - lr g``; ``p += v``, or with
    Nesterov ``p += momentum v - lr g``. Its learning-rate schedules: ``invscaling``
    ``lr = lr0 / (t + 1) ** power_t`` after each epoch (``t``: samples seen), ``adaptive``
    ``lr /= 5`` when training stalls, stopping once ``lr <= 1e-6``."""

    def __init__(self, size: int, dtype: Any, learning_rate_init: float, lr_schedule: str,
                 momentum: float, nesterov: bool, power_t: float) -> None:
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t
        self.velocity = np.zeros(size, dtype=dtype)
        self.tiny = float(np.finfo(dtype).tiny)

    def step(self, net: _engine.FlatNet, alpha: float, denom: float) -> float:
        return _kernels.sgd_step(net.flat, net.grad, self.velocity, net.n_w, alpha, denom,
                                 self.learning_rate, self.momentum, self.nesterov, self.tiny)

    def iteration_ends(self, time_step: int) -> None:
        if self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg: str, verbose: Any) -> bool:
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class _Adam:
    """scikit-learn's Adam: ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
    ``p -= lr_t m / (sqrt(v) + eps)`` with ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``."""

    def __init__(self, size: int, dtype: Any, learning_rate_init: float, beta_1: float,
                 beta_2: float, epsilon: float) -> None:
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.t = 0
        self.m = np.zeros(size, dtype=dtype)
        self.v = np.zeros(size, dtype=dtype)
        self.tiny = float(np.finfo(dtype).tiny)

    def step(self, net: _engine.FlatNet, alpha: float, denom: float) -> float:
        self.t += 1
        self.learning_rate = (self.learning_rate_init * np.sqrt(1 - self.beta_2 ** self.t)
                              / (1 - self.beta_1 ** self.t))
        return _kernels.adam_step(net.flat, net.grad, self.m, self.v, net.n_w, alpha, denom,
                                  float(self.learning_rate), self.beta_1, self.beta_2,
                                  self.epsilon, self.tiny)

    def iteration_ends(self, time_step: int) -> None:
        pass

    def trigger_stopping(self, msg: str, verbose: Any) -> bool:
        if verbose:
            print(msg + " Stopping.")
        return True


# ----------------------------------------------------------------------------- base class
class _BaseMLP(BaseEstimator):  # type: ignore[misc]  # (scikit-learn is untyped)
    """What the classifier and the regressor share: building, the solvers, stopping."""

    # scikit-learn's own table: the same checks and the same messages for every parameter
    _parameter_constraints: Dict[str, Any] = dict(_SkMLPRegressor._parameter_constraints)

    # -- building ---------------------------------------------------------------------------
    def _initialize(self, y: np.ndarray, layer_units: List[int], dtype: Any) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:  # binary and multilabel: independent logistic outputs
            self.out_activation_ = "logistic"
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            factor = 2.0 if self.activation == "logistic" else 6.0
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = self._random_state.uniform(-bound, bound, fan_out)
            self.coefs_.append(coef.astype(dtype, copy=False))
            self.intercepts_.append(intercept.astype(dtype, copy=False))
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [i.copy() for i in self.intercepts_]
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_: List[float] = []
            self._no_improvement_count = 0
            if self.early_stopping:
                # (as scikit-learn's: a list and a float, or None without early stopping)
                self.validation_scores_: Any = []
                self.best_validation_score_: Any = -np.inf
                self.best_loss_: Any = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _fit(self: _Estimator, X: Any, y: Any, sample_weight: Any = None,
             incremental: bool = False) -> _Estimator:
        hidden = self.hidden_layer_sizes
        if not hasattr(hidden, "__iter__"):
            hidden = [hidden]
        hidden = list(hidden)
        if np.any(np.array(hidden) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % hidden)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        layer_units = [X.shape[1]] + hidden + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, X.dtype)
        net = _engine.FlatNet(self.coefs_, self.intercepts_, X.dtype)
        self.coefs_, self.intercepts_ = net.coefs, net.intercepts
        # one thread for small networks' batches (fusenn._threads.threads_for); L-BFGS works
        # on the whole training set at once
        rows = (_batch_rows(self.batch_size, X.shape[0])
                if self.solver in _STOCHASTIC_SOLVERS else X.shape[0])
        with thread_limits(work=rows * net.flat.size):
            if self.solver in _STOCHASTIC_SOLVERS:
                self._fit_stochastic(X, y, sample_weight, net, incremental)
            else:
                self._fit_lbfgs(X, y, sample_weight, net)
        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise NonFiniteWeightsError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed.")
        return self

    def _targets(self, y: np.ndarray, dtype: Any) -> np.ndarray:
        """Targets as the output kernels take them: class indices for softmax, else floats."""
        if self.out_activation_ == "softmax":
            return np.ascontiguousarray(np.argmax(y, axis=1), dtype=np.int64)
        return np.ascontiguousarray(y, dtype=dtype)

    # -- L-BFGS -----------------------------------------------------------------------------
    def _fit_lbfgs(self, X: Any, y: np.ndarray, sample_weight: Optional[np.ndarray],
                   net: _engine.FlatNet) -> None:
        sparse = sp.issparse(X)
        X = X.tocsr() if sparse else np.ascontiguousarray(X)
        n = X.shape[0]
        passes = _engine.Passes(net, self.activation, n, sparse)
        targets = self._targets(y, X.dtype)
        w = (np.empty(0, X.dtype) if sample_weight is None
             else np.ascontiguousarray(sample_weight, dtype=X.dtype))
        denom = n if sample_weight is None else sample_weight.sum()
        eps, tiny = float(np.finfo(X.dtype).eps), float(np.finfo(X.dtype).tiny)
        out, n_out, alpha = self.out_activation_, self.n_outputs_, self.alpha

        def loss_grad(packed: np.ndarray) -> Tuple[float, np.ndarray]:
            net.flat[...] = packed
            z = passes.forward(X, n)
            total = _engine.output_step(out, z, targets, w, eps, tiny, passes.delta)
            passes.backward(X, n)
            sq = _kernels.scale_grad(net.flat, net.grad, net.n_w, alpha, denom)
            loss = _engine.mean_loss(out, total, denom, n_out) + 0.5 * alpha * sq / denom
            return loss, net.grad.astype(np.float64)

        iprint = 1 if self.verbose is True or self.verbose >= 1 else -1
        opt_res = scipy.optimize.minimize(
            loss_grad, net.flat.astype(np.float64), method="L-BFGS-B", jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol,
                     **_get_additional_lbfgs_options_dict("iprint", iprint)})
        self.n_iter_ = _check_optimize_result("lbfgs", opt_res, self.max_iter)
        self.loss_ = opt_res.fun
        net.flat[...] = opt_res.x

    # -- SGD and Adam -----------------------------------------------------------------------
    def _fit_stochastic(self, X: Any, y: np.ndarray, sample_weight: Optional[np.ndarray],
                        net: _engine.FlatNet, incremental: bool) -> None:
        size, dtype = net.flat.size, net.flat.dtype
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer: Union[_SGD, _Adam]
            if self.solver == "sgd":
                self._optimizer = _SGD(size, dtype, self.learning_rate_init, self.learning_rate,
                                       self.momentum, self.nesterovs_momentum, self.power_t)
            else:
                self._optimizer = _Adam(size, dtype, self.learning_rate_init, self.beta_1,
                                        self.beta_2, self.epsilon)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
            arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
            parts = train_test_split(*arrays, random_state=self._random_state,
                                     test_size=self.validation_fraction, stratify=stratify)
            X_train, X_val, y_train, y_val = parts[:4]
            sw_train, sw_val = (None, None) if sample_weight is None else parts[4:]
            if X_val.shape[0] < 2:
                raise DataError("The validation set is too small. Increase "
                                "'validation_fraction' or the size of your dataset.")
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
        else:
            X_train, y_train, sw_train = X, y, sample_weight
            X_val = y_val = sw_val = None

        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        if self.batch_size != "auto" and self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                          "going to be clipped")
        batch_size = _batch_rows(self.batch_size, n_samples)

        epoch = _Epoch(self, net, X_train, y_train, sw_train, batch_size)
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    sample_idx = _shuffled(sample_idx, self._random_state)
                accumulated_loss = epoch.run(sample_idx if self.shuffle else None)
                self.n_iter_ += 1
                self.loss_ = accumulated_loss / n_samples
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                if early_stopping:  # (the validation score reads the weights)
                    epoch.sync()
                self._update_no_improvement_count(early_stopping, X_val, y_val, sw_val)
                self._optimizer.iteration_ends(self.t_)
                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = ("Validation score did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    else:
                        msg = ("Training loss did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    if self._optimizer.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and "
                                  "the optimization hasn't converged yet." % self.max_iter,
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        finally:
            epoch.sync()
        if early_stopping:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts

    def _update_no_improvement_count(self, early_stopping: bool, X: Any, y: Any,
                                     sample_weight: Optional[np.ndarray]) -> None:
        if early_stopping:
            val_score = self._score(X, y, sample_weight=sample_weight)
            self.validation_scores_.append(val_score)
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            last = self.validation_scores_[-1]
            if last < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last > self.best_validation_score_:
                self.best_validation_score_ = last
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [i.copy() for i in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # -- public -----------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)  # type: ignore[untyped-decorator]
    def fit(self: _Estimator, X: MatrixLike, y: ArrayLike,
            sample_weight: Optional[ArrayLike] = None) -> _Estimator:
        """Fit the model to data matrix ``X`` and target(s) ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data (CSR or CSC when sparse). float32 trains a float32 network,
            anything else float64.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (an indicator matrix for multilabel) or real targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the loss and its gradient.

        Returns
        -------
        self : object
            The fitted estimator.

        Raises
        ------
        ValueError
            For invalid parameters or data, as scikit-learn raises it; a
            :class:`fusenn.errors.NonFiniteWeightsError` when training diverged.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self) -> bool:
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 "%s is not stochastic." % self.solver)
        return True

    def _forward_pass_fast(self, X: MatrixLike, check_input: bool = True,
                           out_activation: Optional[str] = None) -> NDArray[np.floating[Any]]:
        """The network's outputs for ``X``; ``out_activation="identity"``: its logits."""
        check_finite: Optional[Callable[[], None]] = None
        if check_input:
            # scikit-learn's validation, but for dense input its finiteness check (a pass
            # over X) is made only if the forward pass meets a non-finite value
            deferred = not sp.issparse(X)
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                              ensure_all_finite=not deferred)
            if deferred:
                def check_finite() -> None:
                    _assert_all_finite(X, input_name="X", estimator_name=type(self).__name__)
        dtype = self.coefs_[0].dtype
        coefs = [np.ascontiguousarray(c, dtype=dtype) for c in self.coefs_]
        intercepts = [np.ascontiguousarray(b, dtype=dtype) for b in self.intercepts_]
        with thread_limits(work=X.shape[0] * sum(c.size for c in coefs)):
            return _engine.predict_raw(X, coefs, intercepts, self.activation,
                                       out_activation or self.out_activation_, check_finite)

    def _score_with_function(self, X: Any, y: Any, sample_weight: Optional[ArrayLike],
                             score_function: Callable[..., float]) -> float:
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        score: float = score_function(y, y_pred, sample_weight=sample_weight)
        return score

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _batch_rows(batch_size: Any, n_samples: int) -> int:
    """scikit-learn's mini-batch size: ``min(200, n)`` for ``"auto"``, else clipped to
    ``[1, n]``."""
    if batch_size == "auto":
        return min(200, n_samples)
    return int(np.clip(batch_size, 1, n_samples))


class _Epoch:
    """One pass over the training set in mini-batches: gather, forward, loss, backward,
    update, with every buffer allocated once."""

    def __init__(self, est: _BaseMLP, net: _engine.FlatNet, X: Any, y: np.ndarray,
                 sample_weight: Optional[np.ndarray], batch_size: int) -> None:
        self.sparse = sp.issparse(X)
        self.X = X.tocsr() if self.sparse else np.ascontiguousarray(X)
        self.net = net
        self.est = est
        self.batch_size = batch_size
        self.passes = _engine.Passes(net, est.activation, batch_size, self.sparse)
        self.targets = est._targets(y, net.flat.dtype)
        self.w = None if sample_weight is None else np.asarray(sample_weight, net.flat.dtype)
        self.empty_w = np.empty(0, net.flat.dtype)
        self.xbuf = None if self.sparse else np.empty((batch_size, self.X.shape[1]),
                                                      net.flat.dtype)
        self.tbuf = np.empty((batch_size,) + self.targets.shape[1:], self.targets.dtype)
        self.wbuf = None if self.w is None else np.empty(batch_size, net.flat.dtype)
        self.eps = float(np.finfo(net.flat.dtype).eps)
        self.tiny = float(np.finfo(net.flat.dtype).tiny)
        self.compiled: Optional[Union[_engine.CompiledEpoch, _engine.SplitEpoch]] = None
        if _engine.compiled_epoch_usable(self.X):
            assert self.xbuf is not None  # dense input: allocated above
            self.compiled = _engine.CompiledEpoch(est, net, self.X, self.targets, self.w,
                                                  self.passes, self.xbuf, self.tbuf, self.wbuf)
            if _engine.SplitEpoch.usable(est, self.X, self.w):
                self.compiled = _engine.SplitEpoch(est, net, self.X, self.targets, batch_size,
                                                   rest=self.compiled)

    def sync(self) -> None:
        """Bring the weights and the optimiser's state up to date where the compiled epoch
        keeps them in a form of its own between epochs (:meth:`._engine.SplitEpoch.sync`)."""
        if self.compiled is not None:
            self.compiled.sync()

    def run(self, idx: Optional[np.ndarray]) -> float:
        """Train on every mini-batch (rows in the order ``idx``, or as stored when None);
        return scikit-learn's accumulated loss: the sum of batch loss times batch rows.

        Dense input runs the whole epoch in one compiled call (:class:`._engine.CompiledEpoch`);
        sparse input, or the NumPy backend, runs the batches from Python."""
        if self.compiled is not None:
            return self.compiled.run(idx, self.est._optimizer)
        est, net, passes = self.est, self.net, self.passes
        X, targets, w = self.X, self.targets, self.w
        out, n_out, alpha, opt = est.out_activation_, est.n_outputs_, est.alpha, est._optimizer
        n, bs, eps, tiny = X.shape[0], self.batch_size, self.eps, self.tiny
        accumulated = 0.0
        for start in range(0, n, bs):
            stop = min(start + bs, n)
            r = stop - start
            if idx is None:
                xb, tb = X[start:stop], targets[start:stop]
                wb = None if w is None else w[start:stop]
            else:
                rows = idx[start:stop]
                # mode="clip" (the indices are valid): with the default "raise", a take
                # into out= goes through a temporary (14 -> 5 us for 32 MNIST rows)
                if self.sparse:
                    xb = X[rows]
                else:
                    assert self.xbuf is not None  # allocated for dense input
                    xb = X.take(rows, axis=0, out=self.xbuf[:r], mode="clip")
                tb = targets.take(rows, axis=0, out=self.tbuf[:r], mode="clip")
                wb = None
                if w is not None:
                    assert self.wbuf is not None  # allocated with the weights
                    wb = w.take(rows, out=self.wbuf[:r], mode="clip")
            z = passes.forward(xb, r)
            total = _engine.output_step(out, z, tb, self.empty_w if wb is None else wb, eps,
                                        tiny, passes.delta)
            passes.backward(xb, r)
            denom = r if wb is None else float(wb.sum())
            sq = opt.step(net, alpha, denom)
            loss = _engine.mean_loss(out, total, denom, n_out) + 0.5 * alpha * sq / denom
            accumulated += loss * r
        return accumulated


# ----------------------------------------------------------------------------- classifier
_PARAMS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        Number of neurons of each hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        Weight optimisation: L-BFGS (SciPy's L-BFGS-B over the flat parameter vector, full
        batch), mini-batch SGD, or Adam.
    alpha : float, default=0.0001
        Strength of the L2 penalty ``alpha / (2 n) * sum of squared weights`` (biases exempt;
        ``n``: the rows, or the weight sum, of the batch).
    batch_size : int or 'auto', default='auto'
        Mini-batch rows for sgd and adam; ``'auto'``: ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Schedule of sgd's step size.
    learning_rate_init : float, default=0.001
        Initial step size (sgd, adam).
    power_t : float, default=0.5
        Exponent of ``invscaling``: ``lr = learning_rate_init / (t + 1) ** power_t``.
    max_iter : int, default=200
        Epochs (sgd, adam) or iterations (lbfgs) at most.
    shuffle : bool, default=True
        Shuffle the samples every epoch (sgd, adam).
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the validation split and the shuffling, as in scikit-learn.
    tol : float, default=1e-4
        Improvement of the loss (or validation score) that counts as progress.
    verbose : bool, default=False
        Print scikit-learn's progress lines.
    warm_start : bool, default=False
        Start ``fit`` from the previous solution.
    momentum : float, default=0.9
        Momentum of sgd.
    nesterovs_momentum : bool, default=True
        Nesterov's momentum for sgd.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop when its score stalls and keep the
        best weights.
    validation_fraction : float, default=0.1
        Held-out share for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates.
    epsilon : float, default=1e-8
        Adam's denominator offset.
    n_iter_no_change : int or np.inf, default=10
        Epochs without ``tol`` improvement before stopping (or dividing the rate).
    max_fun : int, default=15000
        Loss evaluations at most (lbfgs).
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):  # type: ignore[misc]
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier``, faster.

    Binary targets train one logistic output, multiclass a softmax output, a label indicator
    matrix (multilabel) independent logistic outputs; the loss is the log-loss plus the L2
    penalty. Parameters, defaults, fitted attributes and numbers are scikit-learn's.
    {params}
    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels.
    loss_, best_loss_, loss_curve_ : float, float or None, list
        Last, best and per-epoch training loss (sgd, adam; ``loss_`` also for lbfgs).
    validation_scores_, best_validation_score_ : list or None, float or None
        Accuracy on the validation set per epoch, and the best (early stopping).
    t_ : int
        Training samples seen.
    coefs_, intercepts_ : list of ndarray
        Weights ``(fan_in, fan_out)`` and biases of each layer.
    n_features_in_ : int
        Features seen in fit.
    feature_names_in_ : ndarray of str
        Their names, when ``X`` had string column names.
    n_iter_, n_layers_, n_outputs_ : int
        Iterations run, layers, outputs.
    out_activation_ : str
        ``'softmax'`` or ``'logistic'``.

    Examples
    --------
    >>> from fusenn.sklearn import MLPClassifier
    >>> X = [[0., 0.], [1., 1.], [1., 0.], [0., 1.]]
    >>> clf = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(5,), random_state=1)
    >>> clf.fit(X, [0, 1, 1, 0]).predict([[1., 1.]]).shape
    (1,)
    """

    _parameter_constraints: Dict[str, Any] = dict(_SkMLPClassifier._parameter_constraints)

    def __init__(self, hidden_layer_sizes: Any = (100,),
                 activation: str = "relu", *, solver: str = "adam", alpha: float = 0.0001,
                 batch_size: Union[int, str] = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: Any = None, tol: float = 1e-4,
                 verbose: Union[bool, int] = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 n_iter_no_change: int = 10, max_fun: int = 15000) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool
                        ) -> Tuple[Any, np.ndarray]:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise DataError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise DataError(f"`y` has classes not in `self.classes_`. `self.classes_` "
                                f"has {self.classes_}. 'y' has {classes}.")
        return X, self._label_binarizer.transform(y).astype(bool)

    def _score(self, X: Any, y: Any, sample_weight: Optional[ArrayLike] = None) -> float:
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    def predict(self, X: MatrixLike) -> NDArray[Any]:
        """Predict class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes (an indicator matrix for multilabel).
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X: Any, check_input: bool = True) -> NDArray[Any]:
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        labels: NDArray[Any] = self._label_binarizer.inverse_transform(y_pred)
        return labels

    @available_if(lambda est: est._check_solver())  # type: ignore[untyped-decorator]
    @_fit_context(prefer_skip_nested_validation=True)  # type: ignore[untyped-decorator]
    def partial_fit(self, X: MatrixLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None,
                    classes: Optional[ArrayLike] = None) -> MLPClassifier:
        """One epoch over ``X``, ``y`` (only for the sgd and adam solvers).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            The target labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            Every class that ``y`` may hold; required on the first call.

        Returns
        -------
        self : object
            The trained estimator.

        Raises
        ------
        ValueError
            ``classes`` missing on the first call or different later, or ``y`` holding a
            class not in ``classes_``.
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_log_proba(self, X: MatrixLike) -> NDArray[np.floating[Any]]:
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``, computed from the logits by a stable log-softmax
            (log-sigmoid for logistic outputs), so that a probability too small for the
            float type is a finite log rather than ``-inf``.
        """
        check_is_fitted(self)
        z = self._forward_pass_fast(X, out_activation="identity")
        if self.out_activation_ == "softmax":
            return log_softmax(z)
        log_p, log_q = -np.logaddexp(0, -z), -np.logaddexp(0, z)  # log p, log (1 - p)
        return np.hstack([log_q, log_p]) if self.n_outputs_ == 1 else log_p

    def predict_proba(self, X: MatrixLike) -> NDArray[np.floating[Any]]:
        """Probability of each class, columns in the order of ``classes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            Probabilities (``[1 - p, p]`` for a binary problem).
        """
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            binary: NDArray[np.floating[Any]] = np.vstack([1 - y_pred, y_pred]).T
            return binary
        return y_pred

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):  # type: ignore[misc]
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor``, faster.

    An identity output with the half squared error, or an exponential output with the half
    Poisson deviance (``loss="poisson"``, targets >= 0); one or several outputs.

    Parameters
    ----------
    loss : {{'squared_error', 'poisson'}}, default='squared_error'
        The loss minimised (plus the L2 penalty).
    {params}
    Attributes
    ----------
    loss_, best_loss_, loss_curve_ : float, float or None, list
        Last, best and per-epoch training loss.
    validation_scores_, best_validation_score_ : list or None, float or None
        R^2 on the validation set per epoch, and the best (early stopping).
    t_, n_iter_, n_layers_, n_outputs_, n_features_in_ : int
        Samples seen, iterations, layers, outputs, features.
    feature_names_in_ : ndarray of str
        Feature names, when ``X`` had string column names.
    coefs_, intercepts_ : list of ndarray
        Weights ``(fan_in, fan_out)`` and biases of each layer.
    out_activation_ : str
        ``'identity'`` or ``'exp'``.

    Examples
    --------
    >>> import numpy as np
    >>> from fusenn.sklearn import MLPRegressor
    >>> X = np.linspace(0, 1, 20).reshape(-1, 1)
    >>> reg = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0)
    >>> reg.fit(X, 2 * X.ravel()).predict(X).shape
    (20,)
    """

    def __init__(self, loss: str = "squared_error", hidden_layer_sizes: Any = (100,),
                 activation: str = "relu", *, solver: str = "adam", alpha: float = 0.0001,
                 batch_size: Union[int, str] = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: Any = None, tol: float = 1e-4,
                 verbose: Union[bool, int] = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 n_iter_no_change: int = 10, max_fun: int = 15000) -> None:
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun

    def predict(self, X: MatrixLike) -> NDArray[Any]:
        """Predict the target(s).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X: Any, check_input: bool = True) -> NDArray[Any]:
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X: Any, y: Any, sample_weight: Optional[ArrayLike] = None) -> float:
        return self._score_with_function(X, y, sample_weight, r2_score)

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool
                        ) -> Tuple[Any, np.ndarray]:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    @available_if(lambda est: est._check_solver())  # type: ignore[untyped-decorator]
    @_fit_context(prefer_skip_nested_validation=True)  # type: ignore[untyped-decorator]
    def partial_fit(self, X: MatrixLike, y: ArrayLike,
                    sample_weight: Optional[ArrayLike] = None) -> MLPRegressor:
        """One epoch over ``X``, ``y`` (only for the sgd and adam solvers).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            The trained estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)


if MLPClassifier.__doc__ and MLPRegressor.__doc__:  # None under python -OO
    MLPClassifier.__doc__ = MLPClassifier.__doc__.format(params=_PARAMS_DOC)
    MLPRegressor.__doc__ = MLPRegressor.__doc__.format(
        params=_PARAMS_DOC.split("\n", 3)[3].lstrip())
