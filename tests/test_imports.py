"""Imports point one way: no module of fusenn imports, even inside a function, a module that
imports it back; and each module imports on its own in a fresh interpreter."""
import ast
import os
import subprocess
import sys

import pytest

import fusenn

PKG = os.path.dirname(fusenn.__file__)


def _modules():
    """``{dotted name: path}`` of every module of the package."""
    out = {}
    for folder, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                rel = os.path.relpath(path, os.path.dirname(PKG))[:-3].replace(os.sep, ".")
                out[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return out


MODULES = _modules()


def _imports(name, path):
    """The fusenn modules ``name`` imports anywhere in its source (functions included)."""
    package = name if path.endswith("__init__.py") else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] +
                                ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in MODULES else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_static_import_graph_has_no_cycle():
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    assert _cycles(graph) == []


def test_the_core_imports_no_face():
    faces = {m for m in MODULES if m.split(".")[1:2] in (["sklearn"], ["keras"], ["plot"],
                                                         ["cli"], ["bench"])}
    core = {"fusenn.trainer", "fusenn.model", "fusenn.layers", "fusenn.activations",
            "fusenn.functional", "fusenn.io", "fusenn.backends"}
    for name in core:
        assert not _imports(name, MODULES[name]) & faces, name


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m != "fusenn.__main__"))
def test_each_module_imports_alone(name):
    proc = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]



def test_config_stays_the_function_after_its_module_is_imported():
    # fusenn.config is documented as the function; importing the module of the same name
    # (as the lazy fusenn.show_config did) used to rebind fusenn.config to the module
    code = ("import io, fusenn; fusenn.show_config(file=io.StringIO()); "
            "import sys, fusenn.config; m = sys.modules['fusenn.config']; "
            "assert callable(fusenn.config), fusenn.config; "
            "assert 'available backends' in fusenn.config(); "
            "assert fusenn.show_config is m.show_config")
    subprocess.run([sys.executable, "-c", code], check=True)
