"""The documentation site in docs/ builds with Sphinx, warnings as errors, and covers the API.

The build runs in a subprocess (``sphinx-build -W --keep-going -b html``), as CI runs it, into
a temporary folder; it takes about 30-40 s on the development machine.
"""
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fusenn

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _public_modules():
    """Every importable module of fusenn whose dotted name has no private part."""
    return sorted(m.name for m in pkgutil.walk_packages(fusenn.__path__, "fusenn.")
                  if not any(part.startswith("_") for part in m.name.split(".")))


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs-html")
    doctrees = tmp_path_factory.mktemp("docs-doctrees")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(doctrees), str(DOCS), str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    return proc, out


def test_site_builds_without_warnings(built_site):
    proc, out = built_site
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout}\n{proc.stderr}"
    assert "WARNING" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr
    for page in ("index", "getting_started", "benchmarks", "guarantees", "architecture",
                 "guide/models", "guide/training", "guide/backends", "guide/saving",
                 "guide/sklearn", "guide/keras", "guide/diagnostics", "api/index"):
        assert (out / f"{page}.html").is_file(), page


def test_every_public_module_has_an_api_page():
    pages = {p.stem for p in (DOCS / "api").glob("*.rst")}
    index = (DOCS / "api" / "index.rst").read_text()
    listed = set(re.findall(r"^   (fusenn[\w.]*)$", index, flags=re.M))
    missing = [m for m in _public_modules() if m not in pages or m not in listed]
    assert not missing, f"public modules without a page in docs/api (and its index): {missing}"


def test_api_pages_carry_the_docstrings(built_site):
    _, out = built_site
    keras_models = (out / "api" / "fusenn.keras.models.html").read_text()
    # autodoc documented the Keras face's methods, with numpydoc's sections
    for anchor in ("fusenn.keras.models.Sequential.fit", "fusenn.keras.models.Sequential.compile",
                   "fusenn.keras.models.load_model"):
        assert f'id="{anchor}"' in keras_models, anchor
    assert "Parameters" in keras_models and "Returns" in keras_models
    sk = (out / "api" / "fusenn.sklearn.html").read_text()
    assert 'id="fusenn.sklearn.MLPClassifier.fit"' in sk
    assert 'id="fusenn.sklearn.MLPRegressor.predict"' in sk


def test_site_version_is_the_package_version(built_site):
    _, out = built_site
    index = (out / "index.html").read_text()
    assert f"fusenn {fusenn.__version__}" in index
