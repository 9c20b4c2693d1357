"""Build fusenn's Cython extension (csrc/ -> fusenn._cykernels, and on x86-64 the same kernels
compiled for AVX2 and FMA as fusenn._cykernels_avx2, which the backend loads where the CPU has
them).

Metadata lives in pyproject.toml; this file only declares the compiled part.

Environment switches, read at build time:

``FUSENN_NO_OPENMP=1``
    build without OpenMP even when the compiler supports it (``prange`` then runs serially).
``FUSENN_CYTHON_DEBUG=1``
    Cython bounds checking and wraparound on, ``-O1 -g``: for running the suite once to prove
    that no kernel indexes a memoryview out of bounds.
``FUSENN_SANITIZE=address``
    compile and link with AddressSanitizer (the pointer-level kernels are checked too). Run
    the tests with ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)
    ASAN_OPTIONS=detect_leaks=0``.

OpenMP is probed by compiling and linking a tiny program with the flags; they are added only
when that works, and the extension reports the outcome as ``fusenn._cykernels.OPENMP``.

Before compiling, the activation code of both compiled backends is generated from the
activation table (``csrc/_generated.pxi`` and ``src/fusenn/backends/_numba_generated.py``,
by ``src/fusenn/backends/_codegen.py``); a file is rewritten only when its text changed.
"""
import os
import platform
import shutil
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


DEBUG = _flag("FUSENN_CYTHON_DEBUG")
SANITIZE = os.environ.get("FUSENN_SANITIZE", "").strip()

_OMP_PROBE = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel for reduction(+:n)
    for (int i = 0; i < 4; i++) n += 1;
    return (n == 4 && omp_get_max_threads() > 0) ? 0 : 1;
}
"""


def _openmp_flags(compiler):
    """``(compile_args, link_args)`` for OpenMP, or None when this compiler cannot do it."""
    if compiler.compiler_type == "msvc":
        candidates = [(["/openmp"], [])]
    elif sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    tmp = tempfile.mkdtemp(prefix="fusenn-omp-")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as fh:
            fh.write(_OMP_PROBE)
        for cflags, lflags in candidates:
            try:
                objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
                compiler.link_executable(objs, "probe", output_dir=tmp, extra_postargs=lflags)
            except Exception:  # CompileError, LinkError, a missing compiler
                continue
            return cflags, lflags
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExt(build_ext):
    """build_ext that adds OpenMP after probing for it, and the optimisation flags."""

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        omp = None
        if _flag("FUSENN_NO_OPENMP"):
            print("fusenn: OpenMP disabled by FUSENN_NO_OPENMP")
        else:
            omp = _openmp_flags(self.compiler)
            print(f"fusenn: OpenMP {'found' if omp else 'not available'}")
        if msvc:
            cflags, lflags = ["/O2"], []
        elif DEBUG:
            cflags, lflags = ["-O1", "-g", "-fno-omit-frame-pointer"], []
        else:
            cflags, lflags = ["-O3"], []
        if not msvc:
            # Neither changes a result: no FP traps are observed and errno is never read, but
            # both let loops with comparisons and sqrt vectorise.
            cflags += ["-fno-trapping-math", "-fno-math-errno"]
        if SANITIZE and not msvc:
            cflags += [f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer"]
            lflags += [f"-fsanitize={SANITIZE}"]
        if omp:
            cflags += omp[0]
            lflags += omp[1]
        for ext in self.extensions:
            extra = []
            if ext.name.endswith("_avx2"):
                # -fno-wrapv undoes Python's -fwrapv for this build: with signed overflow
                # undefined, int index arithmetic can widen to 64 bits. XOR's epoch measured
                # 637 us with -fwrapv, 531 us without (the portable build: 604 us with it,
                # 632 us without, so it keeps Python's flags).
                extra = ["/arch:AVX2"] if msvc else ["-mavx2", "-mfma", "-fno-wrapv"]
            ext.extra_compile_args = list(ext.extra_compile_args or []) + cflags + extra
            ext.extra_link_args = list(ext.extra_link_args or []) + lflags
        super().build_extensions()
        if not any(ext.name.endswith("_avx2") for ext in self.extensions):
            # A debug or sanitizer build has no AVX2 twin: remove one left by an earlier
            # build, which would otherwise be installed and loaded instead of this build.
            stale = self.get_ext_fullpath("fusenn._cykernels_avx2")
            if os.path.exists(stale):
                os.remove(stale)
                print(f"fusenn: removed the stale AVX2 build {stale}")


HERE = os.path.dirname(os.path.abspath(__file__))


def _generate():
    """Regenerate the compiled backends' activation code from the table, where it changed."""
    import importlib.util

    path = os.path.join(HERE, "src", "fusenn", "backends", "_codegen.py")
    spec = importlib.util.spec_from_file_location("_fusenn_codegen", path)
    codegen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(codegen)
    codegen.write(HERE)


def _extensions():
    from Cython.Build import cythonize

    _generate()
    directives = {
        "language_level": 3,
        "boundscheck": DEBUG,
        "wraparound": DEBUG,
        "initializedcheck": DEBUG,
        "cdivision": True,  # float division by zero gives inf/nan, as in NumPy
        "embedsignature": True,
    }
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    if DEBUG or SANITIZE:
        macros.append(("FUSENN_DEBUG_BUILD", "1"))
    if sys.platform != "win32":
        # Each activation's scalar functions are small `cdef inline`s, called from one loop
        # per activation; GCC's size limits stop inlining them into the big generated loop
        # functions (the tanh loop then ran 10x slower, unvectorised): force it.
        macros.append(("CYTHON_INLINE", "inline __attribute__((always_inline))"))
    sources = ["csrc/_generated.pxi", "csrc/_kernels.pxi", "csrc/_boundary.pxi",
               "csrc/_defs.pxi", "csrc/fusenn_math.h"]
    common = dict(define_macros=macros, include_dirs=["csrc"], depends=sources)
    exts = [Extension("fusenn._cykernels", ["csrc/_cykernels.pyx"], **common)]
    if platform.machine().lower() in ("x86_64", "amd64") and not DEBUG and not SANITIZE:
        # The same kernels for CPUs with AVX2 and FMA, loaded instead where the CPU has them.
        exts.append(Extension("fusenn._cykernels_avx2", ["csrc/_cykernels_avx2.pyx"],
                              **dict(common, depends=sources + ["csrc/_cykernels.pyx"])))
    # Separate C output per mode, so that switching modes regenerates the C file.
    mode = "debug" if DEBUG else "release"
    return cythonize(exts, compiler_directives=directives,
                     build_dir=os.path.join("build", f"cython-{mode}"), quiet=True)


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
