"""Installing without the Cython extension: with ``FUSENN_NO_EXTENSIONS=1``, or where the C
compiler does not work (``CC`` naming one that does not exist), ``pip install`` still succeeds
with a notice, and the installed fusenn trains on Numba and NumPy, says in ``show_config()``
why the Cython backend is absent and how to get it, and refuses ``"cython"`` with that reason.

Each case copies the source tree, builds it into a fresh virtual environment (created with
``--system-site-packages`` and a ``.pth`` file reaching the running interpreter's packages, so
that numpy, numba and scipy are not downloaded; installed with ``--no-deps
--no-build-isolation``), then runs a script in that environment. Two quick tests at the end
check the other explanations ``show_config()`` gives: an extension built but failing to load
(the import error quoted), and no build record at all.
"""
import importlib
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: What is not source: build outputs, environments, caches, records of an earlier build.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", ".venv*", "__pycache__", ".pytest_cache",
    ".benchmarks", ".numba-cache*", ".hypothesis", "*.so", "*.pyd", "*.c", "*.html",
    "_build_info.py", "_cykernels.py")

#: Run in the fresh environment: trains on the embedded digits with each backend, reports
#: what show_config says and what asking for the Cython backend raises.
SCRIPT = textwrap.dedent("""
    import io, json, sys
    import fusenn as fn
    from fusenn.config import config

    out = {"file": fn.__file__, "available": fn.available_backends(),
           "config": fn.show_config(file=io.StringIO()),
           "status": config()["cython extension"]}
    try:
        fn.set_backend("cython")
    except fn.BackendUnavailableError as exc:
        out["error"] = str(exc)
    X, y = fn.datasets.load_digits(dtype="float32")
    out["accuracy"] = {}
    for name in sys.argv[1:]:
        with fn.use_backend(name):
            model = fn.Sequential([fn.layers.Dense(64, 32, "relu"), fn.layers.Dense(32, 10)],
                                  random_state=0)
            fn.Trainer(model, optimizer=fn.optim.Adam(lr=3e-3), random_state=0).fit(
                X, y, epochs=3)
            out["accuracy"][name] = fn.metrics.accuracy(y, model.predict(X))
    print(json.dumps(out))
""")


def _bin(env, name):
    return os.path.join(env, "Scripts" if os.name == "nt" else "bin", name)


def _fresh_env(path):
    """A virtual environment without pip that sees the running interpreter's packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    path], check=True, capture_output=True, timeout=120)
    python = _bin(path, "python.exe" if os.name == "nt" else "python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path("
                              "'purelib'))"], check=True, capture_output=True, text=True,
                             timeout=60).stdout.strip()
    # --system-site-packages reaches the base interpreter's packages, not those of a virtual
    # environment the tests may run in: name those in a .pth (plain paths, whose own .pth
    # files, such as an editable install of fusenn, are not read).
    ours = site.getsitepackages() + [sysconfig.get_path("purelib")]
    with open(os.path.join(purelib, "_fusenn_test_parent.pth"), "w") as fh:
        fh.write("\n".join(dict.fromkeys(p for p in ours if os.path.isdir(p))) + "\n")
    return python, purelib


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FUSENN_", "PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.update(extra)
    return env


#: How each case disables the compiler, and the backends it trains with (Numba's first fit
#: compiles for seconds: once is enough to show it runs).
CASES = {
    "FUSENN_NO_EXTENSIONS": ({"FUSENN_NO_EXTENSIONS": "1"}, ("numpy", "numba")),
    "CC": ({"CC": os.path.join("{tmp}", "no-such-compiler", "cc")}, ("numpy",)),
}
_installs = {}


def _install(case, tmp_path_factory):
    """Build and install the source without the extension, once per case; return (case, the
    source copy, the environment's python, pip's output, the script's JSON)."""
    if case in _installs:
        return _installs[case]
    build_vars, trained = CASES[case]
    tmp = tmp_path_factory.mktemp(f"noext-{case.lower()}")
    src = str(tmp / "src")
    shutil.copytree(ROOT, src, ignore=_NOT_SOURCE)
    python, purelib = _fresh_env(str(tmp / "env"))
    build_env = _clean_env(**{k: v.format(tmp=tmp) for k, v in build_vars.items()})
    pip = subprocess.run([python, "-m", "pip", "install", "-v", "--no-deps",
                          "--no-build-isolation", "--no-index", "--no-cache-dir", src],
                         env=build_env, cwd=str(tmp), capture_output=True, text=True,
                         timeout=300)
    assert pip.returncode == 0, (pip.stdout + pip.stderr)[-4000:]
    run_env = _clean_env(NUMBA_CACHE_DIR=str(tmp / "numba-cache"))
    proc = subprocess.run([python, "-c", SCRIPT, *trained], env=run_env, cwd=str(tmp),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert os.path.realpath(result["file"]).startswith(os.path.realpath(purelib))
    assert sorted(result["accuracy"]) == sorted(trained)
    _installs[case] = case, src, python, pip.stdout + pip.stderr, result
    return _installs[case]


@pytest.fixture(scope="module", params=sorted(CASES))
def noext_install(request, tmp_path_factory):
    """Each way of building without the extension, installed."""
    return _install(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def disabled_install(tmp_path_factory):
    """The build with FUSENN_NO_EXTENSIONS=1, installed."""
    return _install("FUSENN_NO_EXTENSIONS", tmp_path_factory)


def _reason(case):
    return ("disabled by FUSENN_NO_EXTENSIONS" if case == "FUSENN_NO_EXTENSIONS"
            else "no working C compiler")


def test_the_build_says_in_one_line_why_it_leaves_the_extension_out(noext_install):
    case, _, _, output, _ = noext_install
    notices = [line for line in output.splitlines()
               if "building without the Cython extension" in line]
    assert len(notices) == 1, output[-4000:]
    assert _reason(case) in notices[0] and "Numba and NumPy" in notices[0]
    if case == "CC":
        assert "no-such-compiler" in notices[0]  # the compiler's own error is quoted
    assert "compiling fusenn._cykernels" not in output


def test_it_trains_with_numpy_and_numba(noext_install):
    case, _, _, _, result = noext_install
    assert result["available"] == ["numba", "numpy"]
    assert set(result["accuracy"]) == set(CASES[case][1])
    assert all(acc > 0.9 for acc in result["accuracy"].values()), result["accuracy"]


def test_show_config_says_why_cython_is_absent_and_how_to_get_it(noext_install):
    case, _, _, _, result = noext_install
    status = result["status"]
    assert status.startswith(f"not built: {_reason(case)}")
    assert "To get it, install a C compiler" in status and "--no-binary fusenn" in status
    assert f"cython extension: {status}" in result["config"]


def test_asking_for_cython_names_the_reason(noext_install):
    case, _, _, _, result = noext_install
    error = result.get("error")
    assert error is not None, "set_backend('cython') did not raise"
    assert "backend 'cython' is not available" in error
    assert "installed without its Cython extension" in error and _reason(case) in error


def test_required_cython_fails_loudly(disabled_install):
    """CI's FUSENN_REQUIRE_BACKENDS=cython fails the suite where the extension is absent."""
    _, src, python, _, _ = disabled_install
    test = os.path.join(src, "tests", "test_backends.py")
    proc = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         f"{test}::test_required_backends_are_available"],
        env=_clean_env(FUSENN_REQUIRE_BACKENDS="cython"), cwd=src, capture_output=True,
        text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "required backends unavailable" in proc.stdout
    assert "disabled by FUSENN_NO_EXTENSIONS" in proc.stdout


def _without_cython(monkeypatch):
    """The Cython backend made unloadable for one test, as in test_backends."""
    from fusenn import backends

    monkeypatch.setitem(backends._MODULES, "cython", "fusenn._no_such_module")
    monkeypatch.setattr(backends, "_loaded", {k: v for k, v in backends._loaded.items()
                                              if k != "cython"})
    monkeypatch.setattr(backends, "_errors", {})
    monkeypatch.setattr(backends, "_auto_instance", None)


def test_status_of_a_built_extension_that_fails_to_load_quotes_the_import_error(monkeypatch):
    from types import SimpleNamespace

    config = importlib.import_module("fusenn.config")  # fusenn.config is also its function

    _without_cython(monkeypatch)
    monkeypatch.setattr(config, "_build_record", lambda: SimpleNamespace(
        EXTENSIONS=("fusenn._cykernels",), REASON=None, HOW="unused"))
    status = config.cython_status()
    assert status.startswith("built (fusenn._cykernels) but fails to load: "
                             "ModuleNotFoundError: No module named 'fusenn._no_such_module'")
    assert "--force-reinstall" in status


def test_status_without_a_build_record_says_how_to_build(monkeypatch):
    config = importlib.import_module("fusenn.config")  # fusenn.config is also its function

    _without_cython(monkeypatch)
    monkeypatch.setattr(config, "_build_record", lambda: None)
    status = config.cython_status()
    assert status.startswith("no build record and the extension does not load "
                             "(ModuleNotFoundError: No module named 'fusenn._no_such_module')")
    assert "pip install ." in status
