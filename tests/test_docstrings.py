"""Every public name of fusenn's modules reads like a reference (numpydoc convention).

Public means: listed in the module's ``__all__`` (or, without one, not underscore-prefixed
and defined in the module), and for a public class, each of its methods and properties that is
not underscore-prefixed. Each must have a docstring with a one-line summary, and when it takes
parameters, a numpydoc ``Parameters`` section that names every one of them (a class documents
its constructor's parameters; ``*args``/``**kwargs`` are named as such) and no other. A method
that overrides a documented base-class method with the same parameters may keep the base's
docstring, which ``help()`` shows for it (:func:`inspect.getdoc` inherits it).

The faces' modules join :data:`MODULES` once their docstrings are in (see the list's comment).
"""
import importlib
import inspect

import pytest
from numpydoc.docscrape import NumpyDocString

#: The modules checked. The faces (fusenn.sklearn, fusenn.keras.*, fusenn.bench.*) are written
#: up separately; add their module names here once they are.
MODULES = [
    "fusenn", "fusenn.activations", "fusenn.backends", "fusenn.callbacks", "fusenn.cli",
    "fusenn.config", "fusenn.datasets", "fusenn.diagnostics", "fusenn.errors",
    "fusenn.functional", "fusenn.initializers", "fusenn.io", "fusenn.layers", "fusenn.losses",
    "fusenn.metrics", "fusenn.model", "fusenn.optim", "fusenn.perceptron", "fusenn.plot",
    "fusenn.trainer",
]


def _own_public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items() if not n.startswith("_")
                 and getattr(v, "__module__", None) == module.__name__]
    return names


def public_objects(module):
    """(qualified name, object) for every public function, class, method and property."""
    out = []
    for name in _own_public_names(module):
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # constants, submodules (checked as modules of their own)
        qual = f"{module.__name__}.{name}"
        out.append((qual, obj))
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(value, (staticmethod, classmethod)):
                    value = value.__func__
                if isinstance(value, property):
                    value = value.fget
                if inspect.isfunction(value):
                    out.append((f"{qual}.{attr}", getattr(obj, attr) if not isinstance(
                        vars(obj)[attr], property) else value))
    return out


def _parameters(obj):
    """Names of the parameters a caller passes (``self``/``cls`` left out)."""
    target = obj
    if inspect.isclass(obj):
        if not inspect.isfunction(obj.__init__):
            return []  # object's or a built-in exception's constructor: nothing to document
        target = obj.__init__
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values() if p.name not in ("self", "cls")]


def _documented(doc):
    names = []
    for param in NumpyDocString(doc)["Parameters"]:
        for name in param.name.split(","):
            name = name.strip().lstrip("*")
            if name:
                names.append(name)
    return names


def problems(qual, obj):
    doc = obj.__doc__ if inspect.isclass(obj) else inspect.getdoc(obj)
    if not doc or not doc.strip():
        return [f"{qual}: no docstring"]
    doc = inspect.cleandoc(doc)
    if not doc.splitlines()[0].strip():
        return [f"{qual}: no one-line summary"]
    wanted = _parameters(obj)
    try:
        documented = _documented(doc)
    except Exception as exc:  # numpydoc refuses a malformed section
        return [f"{qual}: docstring is not numpydoc ({exc})"]
    out = []
    missing = [n for n in wanted if n not in documented]
    extra = [n for n in documented if n not in wanted]
    if missing:
        out.append(f"{qual}: parameters not documented: {', '.join(missing)}")
    if extra:
        out.append(f"{qual}: documented parameters it does not take: {', '.join(extra)}")
    return out


@pytest.mark.parametrize("name", MODULES)
def test_module_has_a_docstring(name):
    module = importlib.import_module(name)
    assert module.__doc__ and module.__doc__.strip(), f"{name} has no module docstring"


@pytest.mark.parametrize("name", MODULES)
def test_public_names_are_documented(name):
    module = importlib.import_module(name)
    found = public_objects(module)
    assert found, f"{name}: no public names found (is the walk broken?)"
    bad = [p for qual, obj in found for p in problems(qual, obj)]
    assert not bad, f"{len(bad)} docstring problems:\n" + "\n".join(bad)


def test_the_checker_catches_what_it_should():
    def documented(a, b=1):
        """Add.

        Parameters
        ----------
        a, b : int
            The terms.
        """

    def half(a, b=1):
        """Add.

        Parameters
        ----------
        a : int
            One term.
        """

    def bare(a):
        pass

    assert problems("documented", documented) == []
    assert problems("half", half) == ["half: parameters not documented: b"]
    assert problems("bare", bare) == ["bare: no docstring"]
