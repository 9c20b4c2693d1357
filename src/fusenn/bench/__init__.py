"""Benchmarks: fusenn's paths against each other and against PyTorch eager, JAX, scikit-learn
and plain NumPy, and fusenn's scikit-learn and Keras faces against those libraries.

Three measurements, defined here once and timed both by ``benchmarks/`` (pytest-benchmark) and
by ``fusenn bench`` (one table each):

- **train** (``fusenn bench``) and **predict** (``--what predict``), in
  :mod:`fusenn.bench.training`: one epoch of SGD on the configurations of DESIGN.md, or the
  forward pass of the medium network over many rows, on every fusenn backend and every peer of
  its registry, each path in a process of its own.
- **kernels** (``--what kernels``), in :mod:`fusenn.bench.kernels`: the kernel contract at
  fixed shapes on every backend, from a table of builders, in one process.
- **sklearn** and **keras** (``--what sklearn``, ``--what keras``), in
  :mod:`fusenn.bench.faces`: the scikit-learn and Keras faces against the libraries they
  replace, the same user code on both, each row in a process of its own.

This package gathers their public names, so ``from fusenn import bench`` then
``bench.run(...)`` or ``bench.run_kernels(...)`` reaches either.
"""
from . import faces, kernels, training
from .faces import *  # noqa: F401,F403 - the package's public names are its modules'
from .kernels import *  # noqa: F401,F403
from .training import *  # noqa: F401,F403
from .faces import FACES
from .kernels import KERNEL_PATHS
from .training import MEASUREMENTS

__all__ = [*faces.__all__, *kernels.__all__, *training.__all__, "WHAT", "paths"]

#: Every measurement ``fusenn bench --what`` takes.
WHAT = (*MEASUREMENTS, "kernels", *FACES)


def paths(what: str) -> tuple[str, ...]:
    """Every path label of a measurement, available here or not.

    Parameters
    ----------
    what : str
        ``"train"`` or ``"predict"`` (``fusenn-<backend>`` for each backend, then the peers of
        :data:`PEERS` that take part), ``"kernels"`` (:data:`KERNEL_PATHS`), or a face of
        :data:`FACES` (``"sklearn"``, ``"keras"``: the face, then the library it replaces).

    Returns
    -------
    tuple of str

    Raises
    ------
    ValueError
        For an unknown measurement.

    Examples
    --------
    >>> paths("predict")[-1]
    'torch'
    >>> paths("kernels")[:2]
    ('numpy-unfused', 'numpy')
    >>> paths("keras")
    ('fusenn.keras', 'keras-jax')
    """
    if what == "kernels":
        return KERNEL_PATHS
    if what in FACES:
        return FACES[what].paths
    return training.paths(what)
