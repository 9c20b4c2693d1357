"""Find NumPy's own BLAS, so that the compiled kernels call the library NumPy's matmul calls.

A process that imports SciPy's ``cython_blas`` and NumPy holds two OpenBLAS copies when both
come from wheels (``scipy.libs`` and ``numpy.libs``), each with its own thread pool. Kernels
that call one while NumPy's matmul (the reference backend, the user's code) calls the other
keep two pools spinning on two cores. NumPy's wheels ship OpenBLAS built with 64-bit integers
and its symbols prefixed ``scipy_`` and suffixed ``64_``; :func:`find_numpy_cblas` looks for
that library among the ones loaded (threadpoolctl lists them, with their paths) and returns
the addresses of its ``cblas_sgemm``/``cblas_dgemm``. Anything else (NumPy built against MKL,
Accelerate or a system BLAS) yields None, and the kernels keep SciPy's ``cython_blas``.

Before the addresses are used, :func:`checked` runs one small product through them against a
known answer, so that a library with another calling convention is never trusted.
``FUSENN_BLAS=scipy`` keeps SciPy's ``cython_blas`` regardless (``numpy``, the default, means
NumPy's where it can be used; any other value is an error).
"""
from __future__ import annotations

import ctypes
import os
from types import ModuleType
from typing import List, Optional, Tuple

import numpy as np
from ..errors import ArgumentError

#: Symbol names tried, in order: (sgemm, dgemm), all CBLAS with 64-bit integers.
CANDIDATES = (("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_"),
              ("cblas_sgemm64_", "cblas_dgemm64_"))

#: What :func:`find_numpy_cblas` finds: the gemm addresses (sgemm, dgemm) and a description.
Found = Tuple[Optional[int], Optional[int], str]


def _numpy_blas_paths() -> List[str]:
    """Paths of the loaded OpenBLAS libraries that belong to NumPy's installation."""
    from .._threads import _thread_pools

    np_root = os.path.dirname(os.path.dirname(os.path.realpath(np.__file__)))
    paths: List[str] = []
    for lib in _thread_pools().lib_controllers:
        path = os.path.realpath(lib.filepath or "")
        if lib.internal_api == "openblas" and path.startswith(np_root) and (
                os.path.basename(os.path.dirname(path)).startswith("numpy")):
            paths.append(path)
    return paths


def find_numpy_cblas() -> Optional[Found]:
    """``(sgemm_address, dgemm_address, description)`` of NumPy's ILP64 CBLAS gemm, or None."""
    choice = os.environ.get("FUSENN_BLAS", "").strip().lower()
    if choice not in ("", "auto", "numpy", "scipy"):
        raise ArgumentError(f"FUSENN_BLAS must be 'numpy' or 'scipy', got {choice!r}")
    if choice == "scipy":
        return None
    for path in _numpy_blas_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for s_name, d_name in CANDIDATES:
            try:
                s_fn, d_fn = getattr(lib, s_name), getattr(lib, d_name)
            except AttributeError:
                continue
            addresses = [ctypes.cast(f, ctypes.c_void_p).value for f in (s_fn, d_fn)]
            return addresses[0], addresses[1], f"NumPy's OpenBLAS ({os.path.basename(path)})"
    return None


def checked(ext: ModuleType, found: Optional[Found]) -> str:
    """Route ``ext``'s products to ``found`` if a product through it comes out right; return
    the name of the BLAS ``ext`` uses afterwards."""
    if found is not None:
        ext.use_cblas(found[0], found[1], found[2])
        if not _product_is_right(ext):
            ext.use_cblas(0, 0, "")
    blas: str = ext.BLAS
    return blas


def _product_is_right(ext: ModuleType) -> bool:
    """One dense forward per dtype, large enough to reach the BLAS call, against NumPy."""
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        x = rng.standard_normal((7, 11)).astype(dt)
        W = rng.standard_normal((11, 9)).astype(dt)
        b = np.zeros(9, dtype=dt)
        z = np.empty((7, 9), dtype=dt)
        ext.dense_forward(x, W, b, 0, 0.0, 0.0, z, z)
        if not np.allclose(z, x.astype(np.float64) @ W.astype(np.float64), rtol=1e-4,
                           atol=1e-4):
            return False
    return True
