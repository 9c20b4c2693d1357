"""scikit-learn drop-ins: ``MLPClassifier`` and ``MLPRegressor`` on fusenn's kernels.

Change the import and nothing else::

    # from sklearn.neural_network import MLPClassifier
    from fusenn.sklearn import MLPClassifier

They are scikit-learn estimators (``BaseEstimator`` with the classifier or regressor mixin):
the installed scikit-learn's parameters with their defaults, validation and meaning, its
fitted attributes, ``fit``/``partial_fit``/``predict``/``predict_proba``/``score``, solvers
``sgd``, ``adam`` and ``lbfgs``, ``warm_start``, ``early_stopping``, ``sample_weight``,
multilabel and multi-output targets, sparse input, float32 kept as float32. From the same
``random_state`` they draw the same initial weights and the same batches as scikit-learn, so a
float64 fit gives scikit-learn's ``loss_curve_``, ``coefs_`` and predictions to rounding; the
mini-batches run on fusenn's compiled kernels, which is where the speed comes from.

This module needs scikit-learn: ``pip install "fusenn[sklearn]"``. The rest of fusenn does not.
Pick the backend of the dense kernels with :func:`fusenn.use_backend` around ``fit`` (the
default, ``"auto"``, takes the compiled one).
"""
try:
    import sklearn  # noqa: F401
except ImportError as exc:  # pragma: no cover - the test extra installs scikit-learn
    raise ImportError(
        "fusenn.sklearn needs scikit-learn, which is not installed: "
        'pip install "fusenn[sklearn]"') from exc

from sklearn.exceptions import ConvergenceWarning

from ._mlp import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "ConvergenceWarning"]
