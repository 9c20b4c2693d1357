"""Build fusenn's Cython extension (csrc/ -> fusenn._cykernels, and on x86-64 the same kernels
compiled for AVX2 and FMA as fusenn._cykernels_avx2, which the backend loads where the CPU has
them).

Metadata lives in pyproject.toml; this file only declares the compiled part.

The extension is optional: without a working C compiler, or with ``FUSENN_NO_EXTENSIONS=1``,
the build prints a one-line notice and installs fusenn without it (it then runs on Numba and
NumPy). With a working compiler, a failure to build the extension is an error. Either way the
outcome is recorded in a generated ``fusenn/_build_info.py``, which ``fusenn.show_config()``
and ``fusenn info`` read to say why the Cython backend is absent and how to get it.

Environment switches, read at build time:

``FUSENN_NO_EXTENSIONS=1``
    build no extension at all (no compiler or Cython is needed).
``FUSENN_NO_OPENMP=1``
    build without OpenMP even when the compiler supports it (``prange`` then runs serially).
``FUSENN_NO_AVX2=1``
    build only the portable kernels, not the AVX2 and FMA twin.
``FUSENN_CYTHON_DEBUG=1``
    Cython bounds checking and wraparound on, ``-O1 -g``: for running the suite once to prove
    that no kernel indexes a memoryview out of bounds.
``FUSENN_SANITIZE=address``
    compile and link with AddressSanitizer (the pointer-level kernels are checked too). Run
    the tests with ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)
    ASAN_OPTIONS=detect_leaks=0``.
``CC``, ``CFLAGS``, ``LDFLAGS``
    the compiler and flags, as for any Python extension.

OpenMP is probed by compiling and linking a tiny program with each candidate set of flags (MSVC
``/openmp``; Apple clang ``-Xpreprocessor -fopenmp -lomp`` with Homebrew's or MacPorts' libomp;
GCC and other compilers ``-fopenmp``); they are added only when that works, and the extension
reports the outcome as ``fusenn._cykernels.OPENMP``. The AVX2 flags (``-mavx2 -mfma``, MSVC
``/arch:AVX2``) are probed the same way. The build prints what it compiles and with what (see
it with ``pip install -v .`` or ``python setup.py build_ext``).

Before compiling, the activation code of both compiled backends is generated from the
activation table (``csrc/_generated.pxi`` and ``src/fusenn/backends/_numba_generated.py``,
by ``src/fusenn/backends/_codegen.py``); a file is rewritten only when its text changed. The
Numba module is generated even when no extension is built.
"""
import os
import platform
import shutil
import subprocess
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def _flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _say(message):
    """One line of build output, to stderr so that it shows in every front end's log."""
    print(f"fusenn: {message}", file=sys.stderr, flush=True)


DEBUG = _flag("FUSENN_CYTHON_DEBUG")
SANITIZE = os.environ.get("FUSENN_SANITIZE", "").strip()

#: How a user gets the extension once the reason for its absence is fixed (shown by
#: fusenn.show_config through _build_info.HOW).
HOW_TO_GET_IT = (
    "install a C compiler (Linux: gcc, e.g. 'apt install build-essential'; macOS: "
    "'xcode-select --install', and 'brew install libomp' for OpenMP; Windows: Microsoft C++ "
    "Build Tools), unset FUSENN_NO_EXTENSIONS, then reinstall from source: 'pip install "
    "--force-reinstall --no-cache-dir --no-binary fusenn fusenn' (or '.' in a source tree)")

_PROBE = "int main(void) { return 0; }\n"

_AVX2_PROBE = r"""
#include <immintrin.h>
int main(void) {
    __m256 a = _mm256_set1_ps(1.0f);
    a = _mm256_fmadd_ps(a, a, a);
    return (int)_mm256_cvtss_f32(a) == 2 ? 0 : 1;
}
"""

_OMP_PROBE = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel for reduction(+:n)
    for (int i = 0; i < 4; i++) n += 1;
    return (n == 4 && omp_get_max_threads() > 0) ? 0 : 1;
}
"""


def _try_compile(compiler, source, cflags=(), lflags=None):
    """Compile (and, when ``lflags`` is given, link) ``source`` with ``compiler``: None when
    it works, else the error's text. Nothing is left behind."""
    tmp = tempfile.mkdtemp(prefix="fusenn-probe-")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as fh:
            fh.write(source)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=list(cflags))
            if lflags is not None:
                compiler.link_executable(objs, "probe", output_dir=tmp,
                                         extra_postargs=list(lflags))
        except Exception as exc:  # CompileError, LinkError, a missing compiler or SDK
            return f"{type(exc).__name__}: {exc}".strip()
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _libomp_prefixes():
    """Where a separately installed libomp may live on macOS (Apple clang ships none)."""
    found = []
    try:
        out = subprocess.run(["brew", "--prefix", "libomp"], capture_output=True, text=True,
                             timeout=30)
        if out.returncode == 0 and out.stdout.strip():
            found.append(out.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    found += ["/opt/homebrew/opt/libomp", "/usr/local/opt/libomp"]
    seen = []
    for prefix in found:
        if prefix not in seen and os.path.exists(os.path.join(prefix, "include", "omp.h")):
            seen.append(prefix)
    if os.path.exists("/opt/local/include/libomp/omp.h"):  # MacPorts
        seen.append("/opt/local")
    return seen


def _openmp_candidates(compiler):
    """The ``(name, compile_args, link_args)`` sets to try, in order, for this compiler."""
    if compiler.compiler_type == "msvc":
        return [("/openmp", ["/openmp"], [])]
    if sys.platform == "darwin":
        candidates = []
        for prefix in _libomp_prefixes():
            inc = "libomp" if prefix == "/opt/local" else ""
            lib = os.path.join(prefix, "lib", inc)
            candidates.append((f"-Xpreprocessor -fopenmp -lomp ({prefix})",
                               ["-Xpreprocessor", "-fopenmp",
                                "-I" + os.path.join(prefix, "include", inc)],
                               ["-L" + lib, "-lomp", "-Wl,-rpath," + lib]))
        candidates.append(("-Xpreprocessor -fopenmp -lomp",
                           ["-Xpreprocessor", "-fopenmp"], ["-lomp"]))
        candidates.append(("-fopenmp", ["-fopenmp"], ["-fopenmp"]))  # GCC on macOS
        return candidates
    return [("-fopenmp", ["-fopenmp"], ["-fopenmp"])]  # GCC, clang with libomp, MinGW


def _openmp_flags(compiler):
    """``(name, compile_args, link_args)`` for OpenMP, or None when this compiler cannot."""
    for name, cflags, lflags in _openmp_candidates(compiler):
        if _try_compile(compiler, _OMP_PROBE, cflags, lflags) is None:
            return name, cflags, lflags
    return None


def _avx2_flags(compiler):
    """The flags that compile the AVX2 and FMA twin with this compiler."""
    if compiler.compiler_type == "msvc":
        return ["/arch:AVX2"]
    # -fno-wrapv undoes Python's -fwrapv for this build: with signed overflow undefined, int
    # index arithmetic can widen to 64 bits. XOR's epoch measured 637 us with -fwrapv, 531 us
    # without (the portable build: 604 us with it, 632 us without, so it keeps Python's flags).
    return ["-mavx2", "-mfma", "-fno-wrapv"]


def _write_build_info(package_dir, built, reason, openmp=None):
    """Record what this build produced, for fusenn.show_config; return the file's path."""
    os.makedirs(package_dir, exist_ok=True)
    lines = ['"""What the build of this installation produced (generated by setup.py)."""',
             "#: The compiled extension modules built, empty when none was.",
             f"EXTENSIONS = {tuple(built)!r}",
             "#: Why no extension was built (None when they were).",
             f"REASON = {reason!r}",
             "#: How to get the extension once the reason is fixed.",
             f"HOW = {HOW_TO_GET_IT!r}",
             "#: The OpenMP flags used, or None.",
             f"OPENMP = {openmp!r}",
             ""]
    path = os.path.join(package_dir, "_build_info.py")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    return path


# The module installed in place of the extension when none was built (into the wheel only,
# never into the source tree): importing it raises an ImportError that says why, so that the
# Cython backend's "not available" error names the reason.
_ABSENT_MODULE = '''"""Stands for the Cython extension, which this installation is without."""
from ._build_info import HOW, REASON

raise ImportError(f"fusenn was installed without its Cython extension: {REASON}. To get it, "
                  f"{HOW}")
'''


class BuildExt(build_ext):
    """build_ext that builds the extension only where a C compiler works (else records why
    not), cythonizes then, probes OpenMP and AVX2, and says what it compiles."""

    skipped = False
    build_info = None  # the _build_info.py written in the build tree

    def _package_dir(self):
        """The package's folder in the build tree (setuptools builds there, then copies the
        extensions into the source tree for --inplace and editable installs: see run)."""
        return os.path.dirname(self.get_ext_fullpath("fusenn._cykernels"))

    def _stale_outputs(self, names, folder=None):
        for name in names:
            path = self.get_ext_fullpath(name)
            if folder is not None:
                path = os.path.join(folder, os.path.basename(path))
            if os.path.exists(path):
                os.remove(path)
                _say(f"removed the stale build {path}")

    def run(self):
        super().run()
        if self.inplace:  # --inplace or an editable install: the source tree is the package
            source = self.get_finalized_command("build_py").get_package_dir("fusenn")
            if self.skipped:
                self._stale_outputs(["fusenn._cykernels", "fusenn._cykernels_avx2"], source)
            shutil.copyfile(self.build_info,
                            os.path.join(source, "_build_info.py"))

    def _skip(self, reason):
        """Build no extension: one notice, the reason recorded, stale builds removed."""
        _say(f"NOTICE: building without the Cython extension ({reason}); fusenn will run on "
             "Numba and NumPy")
        self._stale_outputs(["fusenn._cykernels", "fusenn._cykernels_avx2"])
        self.skipped = True
        package_dir = self._package_dir()
        self.build_info = _write_build_info(package_dir, (), reason)
        # In the build tree only: run copies no Python module into the source tree.
        with open(os.path.join(package_dir, "_cykernels.py"), "w", encoding="utf-8") as fh:
            fh.write(_ABSENT_MODULE)
        self.extensions = []

    def build_extensions(self):
        if _flag("FUSENN_NO_EXTENSIONS"):
            return self._skip("disabled by FUSENN_NO_EXTENSIONS")
        error = _try_compile(self.compiler, _PROBE)
        if error is not None:
            return self._skip(f"no working C compiler: {error}")
        absent = os.path.join(self._package_dir(), "_cykernels.py")
        if os.path.exists(absent):  # left by an earlier build without the extension
            os.remove(absent)
        msvc = self.compiler.compiler_type == "msvc"
        omp = None
        if _flag("FUSENN_NO_OPENMP"):
            _say("OpenMP disabled by FUSENN_NO_OPENMP")
        else:
            omp = _openmp_flags(self.compiler)
            _say("OpenMP: " + (omp[0] if omp else "not available with this compiler, "
                                                  "the parallel loops run serially"))
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
            cflags += omp[1]
            lflags += omp[2]
        avx2 = _avx2_flags(self.compiler)
        if any(ext.name.endswith("_avx2") for ext in self.extensions):
            error = _try_compile(self.compiler, _AVX2_PROBE, avx2[:2])
            if error is not None:
                _say(f"the AVX2 build is left out: the compiler refuses {' '.join(avx2[:2])} "
                     f"({error})")
                self.extensions = [e for e in self.extensions if not e.name.endswith("_avx2")]
        self.extensions = _cythonize(self.extensions)
        mode = ", debug" if DEBUG else ""
        mode += f", {SANITIZE} sanitizer" if SANITIZE else ""
        for ext in self.extensions:
            extra = avx2 if ext.name.endswith("_avx2") else []
            ext.extra_compile_args = list(ext.extra_compile_args or []) + cflags + extra
            ext.extra_link_args = list(ext.extra_link_args or []) + lflags
            _say(f"compiling {ext.name} ({'AVX2 and FMA' if extra else 'portable'}, "
                 f"{'with' if omp else 'without'} OpenMP{mode}) with the "
                 f"{self.compiler.compiler_type} compiler: {' '.join(cflags + extra)}")
        super().build_extensions()
        if not any(ext.name.endswith("_avx2") for ext in self.extensions):
            # A debug or sanitizer build has no AVX2 twin: remove one left by an earlier
            # build, which would otherwise be installed and loaded instead of this build.
            self._stale_outputs(["fusenn._cykernels_avx2"])
        self.build_info = _write_build_info(self._package_dir(),
                                            [e.name for e in self.extensions], None,
                                            omp[0] if omp else None)


def _generate():
    """Regenerate the compiled backends' activation code from the table, where it changed."""
    import importlib.util

    path = os.path.join(HERE, "src", "fusenn", "backends", "_codegen.py")
    spec = importlib.util.spec_from_file_location("_fusenn_codegen", path)
    codegen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(codegen)
    codegen.write(HERE)


SOURCES = ["csrc/_generated.pxi", "csrc/_kernels.pxi", "csrc/_boundary.pxi", "csrc/_defs.pxi",
           "csrc/fusenn_math.h", "csrc/fusenn_rowmm.h"]


def _extensions():
    """The extensions, from their .pyx sources (cythonized by BuildExt, once it knows that a
    compiler works)."""
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    if DEBUG or SANITIZE:
        macros.append(("FUSENN_DEBUG_BUILD", "1"))
    if sys.platform != "win32":
        # Each activation's scalar functions are small `cdef inline`s, called from one loop
        # per activation; GCC's size limits stop inlining them into the big generated loop
        # functions (the tanh loop then ran 10x slower, unvectorised): force it.
        macros.append(("CYTHON_INLINE", "inline __attribute__((always_inline))"))
    import numpy  # a build requirement: the dense layer's boundary uses its C API

    common = dict(define_macros=macros, include_dirs=["csrc", numpy.get_include()],
                  depends=SOURCES)
    exts = [Extension("fusenn._cykernels", ["csrc/_cykernels.pyx"], **common)]
    if (platform.machine().lower() in ("x86_64", "amd64") and not DEBUG and not SANITIZE
            and not _flag("FUSENN_NO_AVX2")):
        # The same kernels for CPUs with AVX2 and FMA, loaded instead where the CPU has them.
        exts.append(Extension("fusenn._cykernels_avx2", ["csrc/_cykernels_avx2.pyx"],
                              **dict(common, depends=SOURCES + ["csrc/_cykernels.pyx"])))
    return exts


def _cythonize(exts):
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        raise RuntimeError(
            "fusenn: Cython >= 3.1 is needed to build the extension with this compiler "
            "('pip install Cython', or build with pip's default build isolation), or set "
            f"FUSENN_NO_EXTENSIONS=1 to install without it ({exc})") from exc
    for ext in exts:  # setuptools renames .pyx sources to .c where it finds no Cython
        ext.sources = [os.path.splitext(s)[0] + ".pyx" if s.endswith(".c") else s
                       for s in ext.sources]

    directives = {
        "language_level": 3,
        "boundscheck": DEBUG,
        "wraparound": DEBUG,
        "initializedcheck": DEBUG,
        "cdivision": True,  # float division by zero gives inf/nan, as in NumPy
        "embedsignature": True,
    }

    _say(f"cythonizing {', '.join(src for e in exts for src in e.sources)}")
    # Separate C output per mode, so that switching modes regenerates the C file.
    mode = "debug" if DEBUG else "release"
    done = {e.name: e for e in cythonize(exts, compiler_directives=directives,
                                         build_dir=os.path.join("build", f"cython-{mode}"),
                                         quiet=True)}
    for ext in exts:  # keep setuptools' own Extension objects, finalized by build_ext
        ext.sources = done[ext.name].sources
    return exts


_generate()
setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
