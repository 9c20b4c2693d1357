"""The public API is typed: ``mypy --strict`` is clean on src/fusenn, py.typed ships.

The configuration is ``[tool.mypy]`` in pyproject.toml: strict everywhere, with a short,
explicit list of per-module exceptions. This test runs mypy as CI does (``python -m mypy
src/fusenn`` from the repository root, mypy's cache in ``.mypy_cache``: a warm run takes a few
seconds) and checks that the list of exceptions stays the one written down here.
"""
import os
import subprocess
import sys

try:
    import tomllib
except ImportError:  # Python < 3.11: the test extra installs tomli
    import tomli as tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "src", "fusenn")

#: Modules mypy does not check (ignore_errors), and why. Shorten it; never lengthen it
#: without saying why in pyproject.toml.
EXCEPTED = {
    # generated from the activation table by backends/_codegen.py
    "fusenn.backends._numba_generated",
    # Numba njit kernels (typed by Numba from the arguments)
    "fusenn.backends._numba",
}


def _mypy_config():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["tool"]["mypy"]


def test_mypy_strict_is_clean():
    proc = subprocess.run([sys.executable, "-m", "mypy", "src/fusenn"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert "Success: no issues found" in proc.stdout


def test_mypy_is_strict_with_only_the_listed_exceptions():
    cfg = _mypy_config()
    assert cfg["strict"] is True
    ignored = set()
    for override in cfg.get("overrides", []):
        modules = override["module"]
        modules = [modules] if isinstance(modules, str) else modules
        if override.get("ignore_errors"):
            ignored.update(modules)
        # nothing may relax strictness quietly: only these keys are allowed in an override
        assert set(override) <= {"module", "ignore_errors", "ignore_missing_imports"}, override
        if override.get("ignore_missing_imports"):
            assert not any(m.startswith("fusenn") for m in modules), override
    assert ignored == EXCEPTED


def test_py_typed_ships():
    assert os.path.isfile(os.path.join(PACKAGE, "py.typed"))
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        package_data = tomllib.load(f)["tool"]["setuptools"]["package-data"]["fusenn"]
    assert "py.typed" in package_data
