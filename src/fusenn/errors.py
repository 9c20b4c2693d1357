"""The exceptions fusenn raises.

Every error a user can trigger with bad input is one of these, and its message names the
problem (which argument, which shape, which value). They subclass the built-in exception a
Python user would try first, so ``except ValueError`` keeps working, and :class:`FusennError`
catches them all: a bad value is an :class:`ArgumentError` (a ``ValueError``), a bad type an
:class:`ArgumentTypeError` (a ``TypeError``), a bad shape a :class:`ShapeError`, labels out of
range a :class:`LabelError`. The one warning,
:class:`ConvergenceWarning`, is defined here too, once for every model that can stop early.
"""


class FusennError(Exception):
    """Base class of every fusenn error."""


class ArgumentError(FusennError, ValueError):
    """An argument has a value outside its domain (a negative size, an unknown name, NaN in
    the data, a label out of range); the message names the argument and the value."""


class ArgumentTypeError(FusennError, TypeError):
    """An argument has the wrong type (a string where a number belongs, an integer array
    where a float array belongs); the message names the argument and what it got."""


class LabelError(ArgumentError):
    """Class labels that are not integers in ``0..n_classes - 1``."""


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


class SaveError(FusennError, OSError):
    """A save was refused because its destination is not a regular file or a new path.

    :func:`fusenn.io.save` writes only to a regular file (replacing it atomically) or to a
    path that does not exist yet; a symbolic link is followed to the file it points to. A
    directory, a named pipe (FIFO), a socket or a device node at the path is left alone and
    this error names what is there. It subclasses :class:`OSError`, the error a failed write
    raises, so ``except OSError`` catches it.
    """


class DataError(FusennError, ValueError):
    """Data that cannot be used as given: a class not seen when fitting, a validation set
    too small to score."""


class NonFiniteWeightsError(DivergenceError, ValueError):
    """Training produced NaN or infinite weights (scikit-learn raises a ValueError here, so
    this is one too)."""


class ChunkError(FusennError, ValueError):
    """A Dask array whose blocks cannot be used as given: chunk sizes that are unknown (nan,
    after boolean indexing), or a ``y`` whose row chunks do not line up with ``X``'s. The
    message names the array and says how to fix it (``compute_chunk_sizes()``, ``rechunk``)."""
