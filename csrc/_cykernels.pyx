# cython: language_level=3
"""The Cython backend: fusenn's kernel contract compiled, fused and free of the GIL.

Every public function here has the name, arguments and in-place semantics of its twin in
:mod:`fusenn.backends._numpy` (the oracle; the contract is :mod:`fusenn.backends._contract`). The
code is in three tiers, after scikit-learn's Cython losses:

1. scalar ``cdef inline ... noexcept nogil`` functions: one forward, derivative and backward
   per activation and the stable primitives (sigmoid, softplus), all generated from the
   activation table (``_generated.pxi``, see :mod:`fusenn.backends._codegen`), with the row
   loops that pick an activation once per row;
2. pointer-level kernels (``noexcept nogil``, ``_kernels.pxi``) over rows: the dense layer
   (BLAS GEMM, from NumPy's OpenBLAS or ``scipy.linalg.cython_blas``, plus a fused bias and
   activation epilogue,
   parallel over rows with ``prange`` only when the size pays), the softmax family, the fused
   losses, the optimiser updates and the whole training epoch, which chains them with no
   Python per batch;
3. ``def`` functions (``_boundary.pxi``) that dispatch on the dtype once (float32 or float64; both come from one
   fused-type source), check every shape so that no kernel can read or write out of bounds,
   and release the GIL around the work.

Row-major C = A @ B is computed by column-major BLAS as C^T = B^T A^T: the row-major buffers
already *are* the transposes, so only the argument order changes (see ``_mm_nn`` and friends).

``OPENMP`` says whether this module was compiled with OpenMP; without it every ``prange`` runs
serially and the results are the same.
"""
from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport (cos, cosf, erf, erff, expm1, expm1f, fabs, fabsf, isfinite,
                        log, log1p, log1pf, pow, sin, sinf, sqrt, sqrtf, tanh)
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

cimport numpy as cnp

import contextlib

import numpy as np

from fusenn._threads import get_num_threads as _get_num_threads
from fusenn._threads import split_threads as _split_threads
from fusenn._threads import thread_limits as _thread_limits
from fusenn.errors import ArgumentError as _ArgumentError
from fusenn.errors import ArgumentTypeError as _ArgumentTypeError
from fusenn.backends._contract import plan_epoch

cnp.import_array()

cdef extern from "fusenn_math.h":
    int FUSENN_HAVE_OPENMP
    int FUSENN_DEBUG_BUILD
    float fusenn_expf(float x) noexcept nogil
    double fusenn_exp(double x) noexcept nogil
    float fusenn_tanhf(float x) noexcept nogil
    int FUSENN_HAVE_SPIN_BARRIER
    ctypedef struct fusenn_barrier:
        pass
    void fusenn_barrier_init(fusenn_barrier* b) noexcept nogil
    void fusenn_barrier_wait(fusenn_barrier* b, int team) noexcept nogil
    int fusenn_team_size() noexcept nogil

cdef extern from "fusenn_rowmm.h":
    int FUSENN_ROWMM
    void fusenn_rowmm_nn(const float* const* x, Py_ssize_t xoff, Py_ssize_t m, Py_ssize_t K,
                         const float* W, Py_ssize_t ldw, Py_ssize_t n, float* Z,
                         Py_ssize_t ldz) noexcept nogil
    void fusenn_rowmm_tn(const float* const* x, Py_ssize_t xoff, Py_ssize_t m, Py_ssize_t K,
                         const float* D, Py_ssize_t ldd, Py_ssize_t n, float alpha, float beta,
                         float* G, Py_ssize_t ldg) noexcept nogil
    Py_ssize_t fusenn_rowmm_active(const float* const* x, Py_ssize_t xoff, Py_ssize_t m,
                                   Py_ssize_t K, int32_t* ks) noexcept nogil
    void fusenn_rowmm_nn_active(const float* const* x, Py_ssize_t xoff, Py_ssize_t m,
                                Py_ssize_t K, const int32_t* ks, Py_ssize_t nk, const float* W,
                                Py_ssize_t ldw, Py_ssize_t n, float* Z,
                                Py_ssize_t ldz) noexcept nogil
    void fusenn_rowmm_tn_active(const float* const* x, Py_ssize_t xoff, Py_ssize_t m,
                                Py_ssize_t K, const int32_t* ks, Py_ssize_t nk, const float* D,
                                Py_ssize_t ldd, Py_ssize_t n, float alpha, float beta,
                                float* G, Py_ssize_t ldg) noexcept nogil
    void fusenn_rowmm_prefetch(const float* base, Py_ssize_t stride, const int64_t* idx,
                               Py_ssize_t m, Py_ssize_t off, Py_ssize_t K) noexcept nogil
    double fusenn_rowmm_sumsq(const float* w, Py_ssize_t n) noexcept nogil
    int FUSENN_TINY_KT
    bint fusenn_gemm_tiny(int ta, int tb, int M, int N, int K, float alpha, const float* A,
                          Py_ssize_t lda, const float* B, Py_ssize_t ldb, float beta, float* C,
                          Py_ssize_t ldc) noexcept nogil

NAME = "cython"
#: Whether this extension was compiled with OpenMP (``prange`` runs in parallel).
OPENMP = bool(FUSENN_HAVE_OPENMP)
#: Whether train_epoch can split its layers between threads (OpenMP and the spin barrier).
SPLIT_EPOCH = bool(FUSENN_HAVE_SPIN_BARRIER)
#: Whether the split epoch's first layer can multiply float32 batches on the row-pointer
#: kernels of ``fusenn_rowmm.h`` (AVX2 and FMA builds) instead of gathering them for BLAS.
ROWMM = bool(FUSENN_ROWMM)
#: Whether this is a debug or sanitizer build (bounds checking; no AVX2 twin is built).
DEBUG_BUILD = bool(FUSENN_DEBUG_BUILD)

include "_generated.pxi"
include "_kernels.pxi"
include "_boundary.pxi"
include "_defs.pxi"
