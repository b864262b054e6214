"""The package's layers: no module imports a module above its layer; every module says what it is.

Read statically with ``ast``: every ``import`` and ``from ... import`` of every module under
``hessinit/``, absolute or relative, at the top or inside a function, is resolved to the
hessinit module it names. The rules, by group (``hessinit.<group>...``), bottom to top:

========================== ======================================================
group                      may import (besides its own group)
========================== ======================================================
nn, data                   nothing from hessinit
curvature                  nn
train, stepsize, init      nn, curvature, data, and each other
study                      the core (the groups above)
book                       data (the CLI's dataset names), nothing else
hessinit, __main__         anything (the top: the lazy public API and the CLI)
========================== ======================================================

So the core (nn, curvature, data, train, stepsize, init) imports neither study nor book, and
nothing but the top imports the root ``hessinit`` namespace.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hessinit"

CORE = {"nn", "curvature", "data", "train", "stepsize", "init"}
TOP = {"", "__main__"}  # hessinit/__init__.py and hessinit/__main__.py
#: Group -> the other groups its modules may import.
ALLOWED = {
    "nn": set(),
    "data": set(),
    "curvature": {"nn"},
    "train": {"nn", "curvature", "data", "stepsize", "init"},
    "stepsize": {"nn", "curvature", "data", "train", "init"},
    "init": {"nn", "curvature", "data", "train", "stepsize"},
    "study": CORE,
    "book": {"data"},
}


def module_name(path):
    """``hessinit/nn/models.py`` -> ``hessinit.nn.models``; an ``__init__`` -> its package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules():
    """Every module of the package: name -> path."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def group(module):
    """``hessinit.curvature.kronecker`` -> ``curvature``; ``hessinit`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def hessinit_imports(source, module, is_package=False, modules=None):
    """The hessinit modules that ``source`` (the code of ``module``) imports, anywhere in it.

    ``from X import name`` counts as importing ``X.name`` when that is a module, else ``X``.
    """
    modules = set(all_modules()) if modules is None else modules
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in found if m == "hessinit" or m.startswith("hessinit.")}


def violations(module, imports):
    """The imports of ``module`` that break the layer rules, sorted."""
    own = group(module)
    if own in TOP:
        return []
    allowed = ALLOWED[own] | {own}
    return sorted(m for m in imports if group(m) not in allowed)


# --------------------------------------------------------------------------------------------
# The checker itself
# --------------------------------------------------------------------------------------------

MODULES = {"hessinit", "hessinit.nn", "hessinit.nn.models", "hessinit.study",
           "hessinit.study.figures", "hessinit.curvature", "hessinit.curvature.layers",
           "hessinit.book", "hessinit.book.runner", "hessinit.data"}  # fmt: skip


def test_the_checker_flags_a_function_local_import_of_a_higher_layer():
    source = "import numpy as np\n\n\ndef f():\n    from ..study import figures\n    return 1\n"
    imports = hessinit_imports(source, "hessinit.nn.models", modules=MODULES)
    assert imports == {"hessinit.study.figures"}
    assert violations("hessinit.nn.models", imports) == ["hessinit.study.figures"]


@pytest.mark.parametrize(
    ("source", "module", "bad"),
    [
        ("from .. import book", "hessinit.curvature.layers", ["hessinit.book"]),
        ("import hessinit.book.runner as r", "hessinit.train", ["hessinit.book.runner"]),
        ("from hessinit import mlp", "hessinit.data", ["hessinit"]),
        ("from ..curvature import layers", "hessinit.nn.models", ["hessinit.curvature.layers"]),
        ("from ..study import figures", "hessinit.book.runner", ["hessinit.study.figures"]),
        ("from ..nn import models", "hessinit.curvature.layers", []),
        ("from ..data import NAMES", "hessinit.book.runner", []),
        ("from . import figures", "hessinit.study", []),
        ("from .book.cli import main", "hessinit.__main__", []),
    ],
)
def test_the_checker_resolves_relative_and_absolute_imports(source, module, bad):
    is_package = module in ("hessinit", "hessinit.study")
    imports = hessinit_imports(source, module, is_package=is_package, modules=MODULES)
    assert violations(module, imports) == bad


# --------------------------------------------------------------------------------------------
# The package
# --------------------------------------------------------------------------------------------


def test_every_module_belongs_to_a_known_layer():
    unknown = {group(m) for m in all_modules()} - set(ALLOWED) - TOP
    assert not unknown, f"add the new group(s) {unknown} to the layer rules here"


def test_no_module_imports_a_module_above_its_layer():
    modules = all_modules()
    broken = {}
    for name, path in modules.items():
        imports = hessinit_imports(path.read_text(), name, path.name == "__init__.py", set(modules))
        if bad := violations(name, imports):
            broken[name] = bad
    assert not broken, f"imports across layers: {broken}"


def test_the_core_imports_neither_study_nor_book():
    modules = all_modules()
    for name, path in modules.items():
        if group(name) in CORE:
            imports = hessinit_imports(path.read_text(), name, path.name == "__init__.py")
            assert not {group(m) for m in imports} & {"study", "book", ""}, (name, imports)


def test_every_module_opens_with_a_docstring_saying_what_it_holds_and_imports():
    missing = []
    for name, path in all_modules().items():
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if len(doc.split()) < 5 or "Imports" not in doc:
            missing.append(name)
    assert not missing, f"module docstrings without what the module holds and imports: {missing}"


def test_every_subpackage_is_installed():
    """pyproject.toml ships every package under hessinit/, not just the top one."""
    from setuptools import find_packages

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = PACKAGE.parent
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    shipped = set(find_packages(str(root), include=config["packages"]["find"]["include"]))
    on_disk = {module_name(p) for p in PACKAGE.rglob("__init__.py")}
    assert on_disk <= shipped and len(on_disk) > 5
