"""hessinit.curvature's modules import each other without cycles (function-local imports
included) and never take a private ``_name`` from a sibling module."""

import ast
from pathlib import Path

import hessinit.curvature

ROOT = Path(hessinit.curvature.__file__).parent


def _imports():
    """{module: [(imported sibling module, [names])]} over every import statement."""
    out = {}
    for path in sorted(ROOT.glob("*.py")):
        name = path.stem
        found = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:  # from .mod import a, b
                    found.append((node.module.split(".")[0], [a.name for a in node.names]))
                else:  # from . import mod
                    found.extend((a.name, []) for a in node.names)
        out[name] = found
    return out


def test_no_private_name_is_imported_across_modules():
    private = [
        f"{mod} imports {n} from .{src}"
        for mod, found in _imports().items()
        for src, names in found
        for n in names
        if n.startswith("_")
    ]
    assert not private, private


def test_no_import_cycle():
    graph = {
        mod: {src for src, _ in found if src != "__init__"}
        for mod, found in _imports().items()
        if mod != "__init__"
    }
    state = {}

    def visit(mod, path):
        if state.get(mod) == "done":
            return
        assert state.get(mod) != "open", " -> ".join([*path, mod])
        state[mod] = "open"
        for dep in graph.get(mod, ()):
            visit(dep, [*path, mod])
        state[mod] = "done"

    for mod in graph:
        visit(mod, [])
    # the cycle the issue named is gone
    assert "tensors" not in graph["kronecker"]
