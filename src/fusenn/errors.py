"""The exceptions fusenn raises.

Every error a user can trigger with bad input is one of these, and its message names the
problem (which argument, which shape, which value). They subclass the built-in exception a
Python user would try first, so ``except ValueError`` keeps working. The one warning,
:class:`ConvergenceWarning`, is defined here too, once for every model that can stop early.
"""


class FusennError(Exception):
    """Base class of every fusenn error."""


class ShapeError(FusennError, ValueError):
    """An array has the wrong number of dimensions or a size that does not fit."""


class BackendUnavailableError(FusennError, RuntimeError):
    """A backend was asked for by name but is not built or failed to import."""


class DivergenceError(FusennError, FloatingPointError):
    """The training loss became NaN or infinite."""


class FormatError(FusennError, ValueError):
    """A file is not in the format it should be (truncated, wrong magic, wrong arrays)."""


class MissingDependencyError(FusennError, ImportError):
    """An optional library that a feature needs is not installed; the message names the extra
    that installs it (``pip install 'fusenn[plot]'``)."""


class UnsupportedFeatureError(FusennError, NotImplementedError):
    """A feature of another library's API that fusenn's face of it does not offer (a Keras
    ``Conv2D``, the functional API); the message names the feature."""


class UnsupportedNameError(UnsupportedFeatureError, AttributeError):
    """A name looked up in a face's module that the face does not have
    (``fusenn.keras.layers.Conv2D``): an :class:`UnsupportedFeatureError` that is also the
    AttributeError that ``hasattr`` and ``getattr(..., default)`` expect."""


class ConvergenceWarning(UserWarning):
    """Training stopped at its iteration limit before it converged (a warning, not an error:
    the model is usable, but more epochs or another setting may do better)."""
