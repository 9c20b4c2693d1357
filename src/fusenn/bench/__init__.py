"""Benchmarks: fusenn's paths against each other and against PyTorch eager, scikit-learn and
plain NumPy.

Three measurements, defined here once and timed both by ``benchmarks/`` (pytest-benchmark) and
by ``fusenn bench`` (one table each):

- **train** (``fusenn bench``) and **predict** (``--what predict``), in
  :mod:`fusenn.bench.training`: one epoch of SGD on the configurations of DESIGN.md, or the
  forward pass of the medium network over many rows, on every fusenn backend and every peer of
  its registry, each path in a process of its own.
- **kernels** (``--what kernels``), in :mod:`fusenn.bench.kernels`: the kernel contract at
  fixed shapes on every backend, from a table of builders, in one process.

This package gathers their public names, so ``from fusenn import bench`` then
``bench.run(...)`` or ``bench.run_kernels(...)`` reaches either.
"""
from .kernels import (ACTIVATION_SHAPE, DENSE_ACTIVATION, DENSE_SHAPES, KERNEL_ACTIVATIONS,
                      KERNEL_CASES, KERNEL_PATHS, KERNELS, OPTIMIZER_KERNELS, PARAM_SIZES,
                      ROW_KERNELS, ROW_SHAPES, UNFUSED, Kernel, KernelCall, KernelCase,
                      format_kernel_table, format_seconds, kernel_call, run_kernels, time_call,
                      unfused_dense)
from .training import (CONFIGS, DEFAULT_CONFIGS, LR, MEASUREMENTS, PEERS, PREDICT_CONFIG,
                       PREDICT_ROWS, Config, Measurement, Peer, check_configs, format_table,
                       fusenn_mlp, fusenn_path, fusenn_predict_runner, fusenn_runner,
                       make_data, make_predict_data, measure, numpy_mlp_runner, peer_versions,
                       peers, predict_runners, register_peer, run, runners, sklearn_runner,
                       time_epochs, torch_mlp, torch_predict_runner, torch_runner)
from . import training as _training

#: Every measurement ``fusenn bench --what`` takes.
WHAT = (*MEASUREMENTS, "kernels")


def paths(what):
    """Every path label of a measurement, available here or not.

    Parameters
    ----------
    what : str
        ``"train"`` or ``"predict"`` (``fusenn-<backend>`` for each backend, then the peers of
        :data:`PEERS` that take part) or ``"kernels"`` (:data:`KERNEL_PATHS`).

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
    """
    if what == "kernels":
        return KERNEL_PATHS
    return _training.paths(what)
