"""The Cython backend: the kernel contract compiled from ``csrc/_cykernels.pyx``.

This thin module loads the extension and re-exports its kernels under
the contract's names (see :mod:`fusenn.backends._contract` for the contract itself). It exists
for one reason the extension cannot handle itself: libgomp reads ``OMP_WAIT_POLICY`` once,
when it is loaded, and the extension loads it. With the default policy, idle OpenMP threads
spin after each parallel region and starve the BLAS threads of the next GEMM on a 2-core
machine (measured: a sgemm + ``prange`` epilogue took 11.1 ms spinning, 3.7 ms passive). So,
unless the user chose a policy, the variable is set to ``passive`` only while the extension is
imported and removed again, so that libraries loaded later (their own libgomp copies) see the
environment as the user left it.

The kernels are compiled twice on x86-64: :mod:`fusenn._cykernels` for any CPU and
:mod:`fusenn._cykernels_avx2`, the same source with AVX2 and FMA, which is loaded where the CPU
has both (``VARIANT`` says which runs; ``FUSENN_CPU=baseline`` forces the first).

The products go to NumPy's own BLAS where :mod:`fusenn.backends._blas` finds it, and to
SciPy's ``cython_blas`` otherwise; ``BLAS`` says which.

``OPENMP`` tells whether the extension was compiled with OpenMP; ``OMP_WAIT_POLICY`` records
the policy that was in force when it loaded (None when libgomp was already loaded by someone
else, in which case the setting had no effect).
"""
from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Dict, Optional, Tuple

from . import _blas
from ._contract import (H_BETA1, H_BETA2, H_EPS, H_LR, H_MOMENTUM,  # noqa: F401
                        H_NESTEROV, H_RHO, H_STEP, H_WEIGHT_DECAY, LOSS_HALF_MSE, LOSS_MSE,
                        LOSS_SIGMOID_BCE, LOSS_SOFTMAX_XENT, N_HYPER, OPT_ADAGRAD, OPT_ADAM,
                        OPT_RMSPROP, OPT_SGD)
from ._numpy import layer_views  # noqa: F401
from ..errors import ArgumentError


def _gomp_loaded() -> bool:
    try:
        with open("/proc/self/maps") as fh:
            return "libgomp" in fh.read()
    except OSError:  # not Linux: cannot tell
        return False


def cpu_has_avx2_fma() -> bool:
    """Whether this CPU (and OS) runs AVX2 and FMA code, as NumPy's own dispatch detected."""
    # numpy._core in NumPy 2, numpy.core in NumPy 1.x (imported by name: NumPy's stubs do not
    # describe this private module)
    for name in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            feats: Dict[str, bool] = importlib.import_module(name).__cpu_features__
        except (ImportError, AttributeError):  # as ``from name import __cpu_features__``
            continue
        return bool(feats.get("AVX2") and feats.get("FMA3"))
    return False


def _variant_module() -> ModuleType:
    """``fusenn._cykernels_avx2`` where the CPU has AVX2 and FMA and it was built (and
    ``FUSENN_CPU`` is not ``baseline``), else ``fusenn._cykernels``."""
    choice = os.environ.get("FUSENN_CPU", "").strip().lower()
    if choice not in ("", "auto", "baseline"):
        raise ArgumentError(f"FUSENN_CPU must be 'auto' or 'baseline', got {choice!r}")
    if choice != "baseline" and cpu_has_avx2_fma():
        try:
            return importlib.import_module("fusenn._cykernels_avx2")
        except ImportError:
            pass
    return importlib.import_module("fusenn._cykernels")


def _load_extension() -> Tuple[ModuleType, Optional[str]]:
    for name in ("fusenn._cykernels_avx2", "fusenn._cykernels"):
        if name in sys.modules:
            return sys.modules[name], None
    user_policy = os.environ.get("OMP_WAIT_POLICY")
    already = _gomp_loaded()
    if user_policy is None:
        os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        ext = _variant_module()
    finally:
        if user_policy is None:
            del os.environ["OMP_WAIT_POLICY"]
    return ext, (None if already else (user_policy or "passive"))


_ext, OMP_WAIT_POLICY = _load_extension()
#: Which compilation of the kernels runs: "avx2" (AVX2 and FMA) or "baseline" (x86-64 / any).
VARIANT = "avx2" if _ext.__name__.endswith("_avx2") else "baseline"
#: The BLAS the kernels' products go to: NumPy's own OpenBLAS when it can be found and checks
#: out (one library and thread pool for NumPy and fusenn), else SciPy's cython_blas.
BLAS = _blas.checked(_ext, _blas.find_numpy_cblas())

NAME = "cython"
#: The Trainer runs whole epochs in one call of :func:`train_epoch` here.
WHOLE_EPOCHS = True
#: Whether the extension was built with OpenMP (``FUSENN_NO_OPENMP=1`` or no compiler support
#: turn it off; its parallel loops then run serially with the same results).
OPENMP = bool(_ext.OPENMP)
#: Whether :func:`train_epoch` can split each layer between threads for mid-sized mini-batches
#: (OpenMP and GCC's or clang's atomics; see ``_epoch_split`` in ``csrc/_kernels.pxi`` and
#: :func:`fusenn._threads.split_threads`).
SPLIT_EPOCH = bool(_ext.SPLIT_EPOCH)
#: Whether the split epoch's first layer can multiply float32 batches (24 to 48 rows) on the
#: row-pointer kernels of ``csrc/fusenn_rowmm.h`` (the AVX2 build) instead of gathering them
#: for BLAS; ``use_rowmm(False)`` turns them off (for benchmarks and tests comparing the two).
ROWMM = bool(_ext.ROWMM)

act_forward = _ext.act_forward
act_derivative = _ext.act_derivative
dense_forward = _ext.dense_forward
dense_backward = _ext.dense_backward
softmax = _ext.softmax
log_softmax = _ext.log_softmax
logsumexp = _ext.logsumexp
softmax_xent = _ext.softmax_xent
softmax_xent_probs = _ext.softmax_xent_probs
sigmoid_bce = _ext.sigmoid_bce
mse = _ext.mse
sgd_update = _ext.sgd_update
adam_update = _ext.adam_update
rmsprop_update = _ext.rmsprop_update
adagrad_update = _ext.adagrad_update
train_epoch = _ext.train_epoch
set_parallel_threshold = _ext.set_parallel_threshold
use_rowmm = _ext.use_rowmm
