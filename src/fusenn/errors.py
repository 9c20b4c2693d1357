"""The exceptions fusenn raises.

Every error a user can trigger with bad input is one of these, and its message names the
problem (which argument, which shape, which value). They subclass the built-in exception a
Python user would try first, so ``except ValueError`` keeps working.
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


class DataError(FusennError, ValueError):
    """Data that cannot be used as given: a class not seen when fitting, a validation set
    too small to score."""


class NonFiniteWeightsError(DivergenceError, ValueError):
    """Training produced NaN or infinite weights (scikit-learn raises a ValueError here, so
    this is one too)."""
