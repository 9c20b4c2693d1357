"""Sphinx configuration of fusenn's documentation site.

Build it with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (``pip install
".[docs]"`` first). The version comes from :mod:`fusenn._version`, the one the package and
``fusenn --version`` report.
"""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# An installed fusenn (editable or not) is what autodoc documents; the source tree is the
# fallback for a checkout that was not installed (the compiled backends are then absent,
# which the API pages do not need).
try:
    import fusenn  # noqa: F401
except ImportError:  # pragma: no cover - the docs extra installs fusenn itself
    sys.path.insert(0, str(HERE.parent / "src"))

_version_ns: dict = {}
exec((HERE.parent / "src" / "fusenn" / "_version.py").read_text(), _version_ns)

project = "fusenn"
author = "the fusenn developers"
copyright = "the fusenn developers"
release = _version_ns["__version__"]
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
# The README's images are reused from docs/images.
html_static_path: list = []
html_theme = "alabaster"
html_title = f"fusenn {release}"

# autodoc: members in source order, inherited docstrings for overridden hooks.
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": True}
autodoc_inherit_docstrings = True
autodoc_typehints = "none"            # the signatures carry them; numpydoc lists the types
autoclass_content = "class"

# numpydoc: no autosummary tables of class members (autodoc lists them itself).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Validation of the docstrings against numpydoc's rules, off by default so that the site
# builds warning-free while parts of the core still lack docstrings:
# FUSENN_DOCS_VALIDATE=faces checks the faces and the benchmarks (fusenn.sklearn, fusenn.keras,
# fusenn.bench), FUSENN_DOCS_VALIDATE=all every documented name. The checks are those of
# tests/test_docs_faces.py: a summary, every parameter documented (with a type, in order, none
# invented), a Returns section, the sections in order. (A missing docstring, GL08, is left to
# the tests, which accept an override that inherits its base's docstring.)
_VALIDATE = os.environ.get("FUSENN_DOCS_VALIDATE", "")
if _VALIDATE:
    numpydoc_validation_checks = {"SS01", "PR01", "PR02", "PR03", "PR04", "RT01", "GL07"}
    numpydoc_validation_exclude = {r"\.__\w+__$"}
    if _VALIDATE == "faces":
        numpydoc_validation_exclude |= {r"^fusenn\.(?!sklearn|keras|bench)", r"^fusenn$"}

# Links to the libraries the faces mirror.
intersphinx_mapping: dict = {}
if os.environ.get("FUSENN_DOCS_INTERSPHINX"):  # off by default: CI has no network
    intersphinx_mapping = {"python": ("https://docs.python.org/3", None),
                           "numpy": ("https://numpy.org/doc/stable", None),
                           "sklearn": ("https://scikit-learn.org/stable", None)}

myst_heading_anchors = 3
suppress_warnings = ["myst.header"]
nitpicky = False
