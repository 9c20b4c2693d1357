"""Every example in fusenn's docstrings runs and prints what it shows.

The package is walked with :mod:`pkgutil`, faces and bench included, and each module's
docstrings are run by :mod:`doctest` with ``NORMALIZE_WHITESPACE | ELLIPSIS`` (the flags the
examples are written for). A module that has no example is still imported, so a module that
fails to import fails here too.
"""
import doctest
import importlib
import pkgutil

import matplotlib
import pytest

import fusenn

matplotlib.use("Agg")

FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
#: ``python -m fusenn`` runs the command line when imported: it has no docstrings to run.
NOT_IMPORTED = {"fusenn.__main__"}


def _modules():
    names = ["fusenn"]
    for info in pkgutil.walk_packages(fusenn.__path__, "fusenn."):
        if info.name not in NOT_IMPORTED:
            names.append(info.name)
    return sorted(names)


MODULES = _modules()


def test_the_walk_finds_the_core_and_the_faces():
    for name in ("fusenn.model", "fusenn.trainer", "fusenn.sklearn", "fusenn.keras.models",
                 "fusenn.bench"):
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    failures = []
    for test in finder.find(module, name):
        result = runner.run(test, out=failures.append)
        assert result.failed == 0, "".join(failures)
