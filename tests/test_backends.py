import os
import subprocess
import sys

import numpy as np
import pytest

import fusenn as fn
from fusenn import backends
from support import bad_input


def test_numpy_always_available():
    assert "numpy" in fn.available_backends()
    assert fn.available_backends()[-1] == "numpy"


def test_required_backends_are_available():
    """CI sets FUSENN_REQUIRE_BACKENDS=cython,numba: a backend that silently failed to build
    fails here."""
    required = [s.strip() for s in os.environ.get("FUSENN_REQUIRE_BACKENDS", "").split(",")
                if s.strip()]
    missing = {n: backends.unavailable_reasons().get(n) for n in required
               if n not in fn.available_backends()}
    assert not missing, f"required backends unavailable: {missing}"


def test_use_backend_restores_and_is_thread_local():
    before = fn.get_backend()
    with fn.use_backend("numpy"):
        assert fn.get_backend() == "numpy"
        import threading

        seen = []
        t = threading.Thread(target=lambda: seen.append(fn.get_backend()))
        t.start()
        t.join()
        assert seen == [before]
    assert fn.get_backend() == before


def test_use_backend_restores_after_exception():
    before = fn.get_backend()
    with pytest.raises(RuntimeError):
        with fn.use_backend("numpy"):
            raise RuntimeError("boom")
    assert fn.get_backend() == before


def test_set_backend_roundtrip():
    before = fn.get_backend()
    try:
        fn.set_backend("numpy")
        assert fn.get_backend() == "numpy"
        assert backends.get().NAME == "numpy"
    finally:
        fn.set_backend(before)


def test_unknown_backend_names_valid_ones():
    with pytest.raises(fn.BackendUnavailableError, match="unknown backend 'fortran'.*numpy"):
        fn.set_backend("fortran")


def test_unavailable_backend_says_why(monkeypatch):
    monkeypatch.setitem(backends._MODULES, "cython", "fusenn._no_such_module")
    monkeypatch.setattr(backends, "_loaded", {k: v for k, v in backends._loaded.items()
                                              if k != "cython"})
    monkeypatch.setattr(backends, "_errors", {})
    assert "cython" not in fn.available_backends()
    with pytest.raises(fn.BackendUnavailableError, match="cython.*not available.*No module"):
        fn.set_backend("cython")
    assert "cython" in backends.unavailable_reasons()


def _run(code, **env):
    full = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full, timeout=120)


def test_environment_variable_selects_backend():
    r = _run("import fusenn; print(fusenn.get_backend())", FUSENN_BACKEND="numpy")
    assert r.stdout.strip() == "numpy", r.stderr


def test_bad_environment_variable_is_reported():
    r = _run("import fusenn; fusenn.get_backend()", FUSENN_BACKEND="fortran")
    assert r.returncode != 0 and "FUSENN_BACKEND='fortran'" in r.stderr


def test_num_threads_setting_and_env():
    before = fn._threads._num_threads
    try:
        fn.set_num_threads(1)
        assert fn.get_num_threads() == 1
        with bad_input(ValueError, match=">= 1"):
            fn.set_num_threads(0)
    finally:
        fn.set_num_threads(before)
    r = _run("import fusenn; print(fusenn.get_num_threads())", FUSENN_NUM_THREADS="1")
    assert r.stdout.strip() == "1"


def test_thread_limits_restore_blas():
    from threadpoolctl import threadpool_info

    def blas():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before = blas()
    with fn._threads.thread_limits(1):
        assert all(n == 1 for n in blas())
    assert blas() == before
    with pytest.raises(RuntimeError), fn._threads.thread_limits(1):
        raise RuntimeError("restored on the way out of an error too")
    assert blas() == before
    with fn._threads.thread_limits(before[0]):  # already there: nothing to change
        assert blas() == before


def test_show_config_lists_backends(capsys):
    text = fn.show_config()
    assert "available backends" in text and "numpy" in text
    assert capsys.readouterr().out.strip() == text.strip()


def test_import_is_fast_and_lazy():
    code = ("import time, sys; t = time.perf_counter(); import fusenn; "
            "print(time.perf_counter() - t); print('numba' in sys.modules, "
            "'scipy.special' in sys.modules)")
    r = _run(code)
    elapsed, lazy = r.stdout.split("\n")[:2]
    assert lazy == "False False", r.stderr
    assert float(elapsed) < 1.0  # the 0.3 s target is measured by the benchmarks
