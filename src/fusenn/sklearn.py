"""scikit-learn drop-ins: ``MLPClassifier`` and ``MLPRegressor`` on fusenn's engine.

They take scikit-learn's parameter names and defaults and expose its fitted attributes
(``coefs_``, ``intercepts_``, ``loss_curve_``, ``n_iter_``, ``classes_``, ...), so that code
written for ``sklearn.neural_network`` runs unchanged - faster. scikit-learn itself is not
needed; when it is installed, ``clone``, ``GridSearchCV`` and pipelines work with them.

Differences worth knowing: ``alpha`` becomes weight decay ``alpha / batch_size`` on every
parameter (scikit-learn exempts the biases); ``learning_rate="adaptive"`` divides the rate by
5 after ``n_iter_no_change`` epochs without improvement of the training loss, as scikit-learn
does, but per epoch only. Float32 input trains a float32 network, anything else float64.
"""
from __future__ import annotations

import inspect
import warnings

import numpy as np

from . import backends
from . import callbacks as _cb
from . import optim as _optim
from ._validation import check_2d
from .errors import ShapeError
from .layers import Dense
from .model import Sequential
from .trainer import Trainer


class ConvergenceWarning(UserWarning):
    """max_iter was reached before the optimisation converged."""


class _BaseMLP:
    _loss = None
    _out_activation = None

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, backend=None):
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
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend

    # -- scikit-learn's estimator protocol ----------------------------------------------------
    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(_BaseMLP.__init__)
        return sorted(p for p in sig.parameters if p != "self")

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}; "
                                 f"valid parameters: {', '.join(valid)}")
            setattr(self, key, value)
        return self

    def __repr__(self):
        defaults = _BaseMLP().get_params()
        changed = {k: v for k, v in self.get_params().items() if defaults.get(k) != v}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    # -- building ---------------------------------------------------------------------------
    def _hidden(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if np.isscalar(sizes) else list(sizes)
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
                raise ValueError(f"hidden_layer_sizes must be positive integers, got "
                                 f"{self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    def _optimizer(self, batch_size):
        wd = self.alpha / batch_size
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}")
        solver = self.solver
        if solver == "sgd":
            return _optim.SGD(self.learning_rate_init, momentum=self.momentum,
                              nesterov=self.nesterovs_momentum and self.momentum > 0,
                              weight_decay=wd)
        if solver == "adam":
            return _optim.Adam(self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon,
                               weight_decay=wd)
        if solver in ("rmsprop", "adagrad"):
            return _optim.get(solver, lr=self.learning_rate_init, weight_decay=wd)
        raise ValueError(f"unknown solver {solver!r}; valid: sgd, adam, rmsprop, adagrad "
                         f"(lbfgs is not supported)")

    def _schedule(self):
        if self.learning_rate == "constant" or self.solver != "sgd":
            return []
        if self.learning_rate == "invscaling":
            return [_optim.InverseScalingLR(self.power_t)]
        if self.learning_rate == "adaptive":
            return [_optim.ReduceLROnPlateau("loss", factor=0.2,
                                             patience=self.n_iter_no_change,
                                             min_delta=self.tol)]
        raise ValueError(f"learning_rate must be constant, invscaling or adaptive, got "
                         f"{self.learning_rate!r}")

    def _fit(self, X, targets, n_out):
        X = check_2d(X, "X")
        dtype = np.float32 if X.dtype == np.float32 else np.float64
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            batch_size = self.batch_size
            if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                    or batch_size < 1:
                raise ValueError(f"batch_size must be a positive integer or 'auto', got "
                                 f"{batch_size!r}")
            batch_size = min(int(batch_size), n)
        rng = np.random.default_rng(self.random_state)
        sizes = [X.shape[1]] + self._hidden() + [n_out]
        layers = [Dense(a, b, self.activation if i < len(sizes) - 2 else self._out_activation,
                        dtype=dtype)
                  for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
        self.model_ = Sequential(layers, dtype=dtype, random_state=rng)
        callbacks = self._schedule()
        stop = None
        validation_split = None
        if self.early_stopping:
            validation_split = self.validation_fraction
            monitor = "val_accuracy" if self._loss == "cross_entropy" else "val_loss"
            stop = _cb.EarlyStopping(monitor, patience=self.n_iter_no_change,
                                     min_delta=self.tol, restore_best_weights=True)
        else:
            stop = _cb.EarlyStopping("loss", patience=self.n_iter_no_change, min_delta=self.tol,
                                     restore_best_weights=False)
        callbacks.append(stop)
        self.trainer_ = Trainer(self.model_, loss=self._loss,
                                optimizer=self._optimizer(batch_size), batch_size=batch_size,
                                shuffle=self.shuffle, random_state=rng, callbacks=callbacks,
                                metrics=["accuracy"] if self.early_stopping and
                                self._loss == "cross_entropy" else [],
                                verbose=2 if self.verbose else 0)
        context = backends.use_backend(self.backend) if self.backend else _nullcontext()
        with context:
            history = self.trainer_.fit(X, targets, epochs=self.max_iter,
                                        validation_split=validation_split)
        self.loss_curve_ = list(history.history["loss"])
        self.n_iter_ = len(self.loss_curve_)
        self.best_loss_ = float(min(self.loss_curve_))
        self.loss_ = self.loss_curve_[-1]
        if self.early_stopping:
            key = stop.monitor
            self.validation_scores_ = list(history.history[key])
            self.best_validation_score_ = stop.best
        self.t_ = n * self.n_iter_
        self.n_features_in_ = X.shape[1]
        self.n_layers_ = len(sizes)
        self.n_outputs_ = n_out
        self.out_activation_ = {"cross_entropy": "softmax", "binary_cross_entropy": "logistic",
                                "half_mse": "identity"}[self._loss]
        self.path_ = self.trainer_.last_path
        if stop.stopped_epoch is None and self.n_iter_ == self.max_iter:
            warnings.warn(f"stochastic optimiser: maximum iterations ({self.max_iter}) reached "
                          f"and the optimisation has not converged yet", ConvergenceWarning,
                          stacklevel=3)
        return self

    @property
    def coefs_(self):
        return [l.W for l in self.model_.layers]

    @property
    def intercepts_(self):
        return [l.b for l in self.model_.layers]

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit first")

    def _outputs(self, X):
        self._check_fitted()
        X = check_2d(X, "X")
        if X.shape[1] != self.n_features_in_:
            raise ShapeError(f"X has {X.shape[1]} features, but {type(self).__name__} was "
                             f"fitted with {self.n_features_in_}")
        context = backends.use_backend(self.backend) if self.backend else _nullcontext()
        with context:
            return self.model_.forward(X)


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


class MLPClassifier(_BaseMLP):
    """Multi-layer perceptron classifier (scikit-learn's parameters and attributes).

    Labels may be any sortable values; ``classes_`` holds them. Two classes train one
    logistic output with binary cross-entropy, more train a softmax output with cross-entropy.
    """

    def fit(self, X, y):
        y = np.asarray(y)
        if y.ndim != 1:
            raise ShapeError(f"y must be 1-D, got shape {y.shape}")
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity")
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"MLPClassifier needs at least 2 classes, got "
                             f"{len(self.classes_)}")
        if len(self.classes_) == 2:
            self._loss, self._out_activation = "binary_cross_entropy", "sigmoid"
            return self._fit(X, encoded.astype(np.float64), 1)
        self._loss, self._out_activation = "cross_entropy", "softmax"
        return self._fit(X, encoded, len(self.classes_))

    def predict_proba(self, X):
        out = self._outputs(X)
        if out.shape[1] == 1:
            return np.hstack([1 - out, out])
        return out

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    def predict(self, X):
        p = self.predict_proba(X)
        return self.classes_[np.argmax(p, axis=1)]

    def score(self, X, y):
        return float(np.mean(self.predict(X) == np.asarray(y)))


class MLPRegressor(_BaseMLP):
    """Multi-layer perceptron regressor: identity output, squared error ``1/(2n) sum (y-t)^2``."""

    _loss = "half_mse"
    _out_activation = None

    def fit(self, X, y):
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        if y2.ndim != 2:
            raise ShapeError(f"y must be 1-D or 2-D, got shape {y.shape}")
        return self._fit(X, y2, y2.shape[1])

    def predict(self, X):
        out = self._outputs(X)
        return out[:, 0] if self._y_1d else out

    def score(self, X, y):
        """Coefficient of determination R^2."""
        y = np.asarray(y, dtype=np.float64)
        pred = self.predict(X).astype(np.float64)
        ss_res = np.sum((y - pred) ** 2)
        ss_tot = np.sum((y - y.mean(axis=0)) ** 2)
        return float(1 - ss_res / ss_tot) if ss_tot > 0 else 0.0
