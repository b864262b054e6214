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
study                      the core (the groups above): what chapters share
chapters                   the core and study; a chapter never imports another
book                       the core, study and chapters (the runner, the site)
hessinit, __main__         anything (the top: the lazy public API and the CLI)
========================== ======================================================

So core < study < chapters < book < top: the core imports none of study, chapters or book,
and nothing but the top imports the root ``hessinit`` namespace. Two more rules hold for every
module, imports inside functions included: the imports between modules form no cycle, and no
module imports another module's private (``_``-prefixed) name.
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
    "chapters": CORE | {"study"},
    "book": CORE | {"study", "chapters"},
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
           "hessinit.study.figures", "hessinit.chapters", "hessinit.chapters.cnn",
           "hessinit.book.page", "hessinit.curvature", "hessinit.curvature.layers",
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
        ("from ..study import figures", "hessinit.book.runner", []),
        ("from ..book import page", "hessinit.chapters.cnn", ["hessinit.book.page"]),
        ("from ..chapters import cnn", "hessinit.study.figures", ["hessinit.chapters.cnn"]),
        ("from ..study.claims import verdict", "hessinit.chapters.cnn", []),
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


def test_the_core_imports_neither_study_nor_chapters_nor_book():
    modules = all_modules()
    for name, path in modules.items():
        if group(name) in CORE:
            imports = hessinit_imports(path.read_text(), name, path.name == "__init__.py")
            above = {"study", "chapters", "book", ""}
            assert not {group(m) for m in imports} & above, (name, imports)


def test_no_chapter_imports_another_chapter():
    """What two chapters use belongs to the shared study layer, not to one of them."""
    modules = all_modules()
    crossing = {}
    for name, path in modules.items():
        if group(name) == "chapters" and name != "hessinit.chapters":
            imports = hessinit_imports(path.read_text(), name, False, set(modules))
            if others := sorted(m for m in imports if group(m) == "chapters" and m != name):
                crossing[name] = others
    assert not crossing, f"chapters importing chapters: {crossing}"


# --------------------------------------------------------------------------------------------
# No import cycle, no private name across modules
# --------------------------------------------------------------------------------------------


def import_graph(modules=None):
    """Module -> the hessinit modules it imports (anywhere in it), packages' own inits left out.

    An import of a package's submodule also runs the package's ``__init__``; the inits here
    load their submodules lazily, so an edge to a package stands for the package itself.
    """
    modules = all_modules() if modules is None else modules
    graph = {}
    for name, path in modules.items():
        imports = hessinit_imports(path.read_text(), name, path.name == "__init__.py", set(modules))
        graph[name] = {m for m in imports if m != name and m in modules}
    return graph


def find_cycle(graph):
    """One cycle of ``graph`` (a list of nodes, first repeated last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def private_imports(source, module, is_package=False, modules=None):
    """``(imported module, name)`` for every private name ``source`` takes from another module.

    Private: one leading underscore, not a dunder. Counts ``from X import _name`` anywhere in
    the code (a function-local import too) where X is a hessinit module other than ``module``.
    """
    modules = set(all_modules()) if modules is None else modules
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1])
            base = f"{base}.{node.module}" if node.module else base
        else:
            base = node.module or ""
        if not (base == "hessinit" or base.startswith("hessinit.")) or base == module:
            continue
        for alias in node.names:
            if alias.name.startswith("_") and not alias.name.startswith("__"):
                found.add((base, alias.name))
    return found


#: Private names other modules may import: none.
KNOWN_PRIVATE: dict = {}

#: Import cycles tolerated: none.
KNOWN_CYCLES: list = []


def test_the_cycle_finder_finds_a_function_local_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_private_name_check_sees_function_local_imports():
    source = "def f():\n    from ..curvature.kronecker import _dense, public\n"
    modules = {"hessinit.curvature.kronecker", "hessinit.chapters.cnn"}
    found = private_imports(source, "hessinit.chapters.cnn", modules=modules)
    assert found == {("hessinit.curvature.kronecker", "_dense")}
    assert private_imports("from . import __version__", "hessinit.nn", True, modules) == set()


def test_no_import_cycle():
    graph = import_graph()
    for known in KNOWN_CYCLES:  # drop the known cycle's edges, then look again
        for a in known:
            graph[a] = graph.get(a, set()) - known
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_no_private_name_is_imported_across_modules():
    modules = all_modules()
    bad = {}
    for name, path in modules.items():
        found = private_imports(path.read_text(), name, path.name == "__init__.py", set(modules))
        if found := found - KNOWN_PRIVATE.get(name, set()):
            bad[name] = sorted(found)
    assert not bad, f"private names imported across modules (name them in the API): {bad}"


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
