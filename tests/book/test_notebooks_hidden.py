"""Reasoning in sight: what the book's notebooks hide from the page.

Measured on the committed notebooks (``book/*.ipynb``), parameters cells left out:

- a hidden cell is a code cell tagged ``remove-cell``, ``remove-input``, ``hide-input``,
  ``hide-cell``, ``remove-output`` or ``hide-output``;
- its lines are its non-blank source lines;
- a loop is a ``for``/``while`` statement, or a comprehension/generator expression, except one
  that only formats the items of a list for the text (``", ".join(f"{v:g}" for v in lrs)``: one
  ``for`` over a name, no condition, the element ``str(v)`` or an f-string of ``v`` alone).

Across the notebooks the hidden cells hold at most 400 lines, no loop and no ``book.listed``
(parameters are typed by one ``book.typed_parameters`` call per notebook).

References: the notebooks' own JSON (nbformat) and Python's ``ast``.
"""

import ast

import nbformat
import pytest
from notebook_runs import ROOT, notebooks

HIDING = {"remove-cell", "remove-input", "hide-input", "hide-cell", "remove-output", "hide-output"}
MAX_HIDDEN_LINES = 400


def hidden_cells(name):
    """The sources of a notebook's hidden code cells, its parameters cell left out."""
    nb = nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4)
    out = []
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type == "code" and tags & HIDING and "parameters" not in tags:
            out.append(cell.source)
    return out


def _formats_items(node):
    """True for ``(str(v) for v in xs)`` or ``(f"{v:g}" for v in xs)``: text, not reasoning."""
    if len(node.generators) != 1 or node.generators[0].ifs:
        return False
    target = node.generators[0].target
    if not isinstance(target, ast.Name) or not isinstance(node.generators[0].iter, ast.Name):
        return False
    elt = node.elt
    if isinstance(elt, ast.Call):
        return (
            ast.unparse(elt.func) == "str"
            and len(elt.args) == 1
            and ast.unparse(elt.args[0]) == target.id
        )
    if isinstance(elt, ast.JoinedStr):
        values = [v for v in elt.values if isinstance(v, ast.FormattedValue)]
        return len(values) == 1 and ast.unparse(values[0].value) == target.id
    return False


def loops(source):
    """The loops of a cell's source (IPython's ``%``/``!`` lines left out), as source text."""
    lines = source.splitlines()
    code = "\n".join(s for s in lines if not s.lstrip().startswith(("%", "!")))
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            found.append(ast.unparse(node).splitlines()[0])
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            if not _formats_items(node):
                found.append(ast.unparse(node))
    return found


def hidden_lines(source):
    return sum(1 for line in source.splitlines() if line.strip())


def test_loops_and_formatting_are_told_apart():
    assert loops('", ".join(f"{v:g}" for v in lrs)\n" x ".join(str(w) for w in widths)') == []
    assert loops("for s in seeds:\n    run(s)") == ["for s in seeds:"]
    assert loops("while x:\n    x -= 1") == ["while x:"]
    assert loops("best = max(v for v in values if v > 0)") == ["(v for v in values if v > 0)"]
    assert loops("[fit(s) for s in seeds]") == ["[fit(s) for s in seeds]"]
    assert loops("%pip install x\nimport os") == []
    assert hidden_lines("a = 1\n\n  \nb = 2\n") == 2


@pytest.mark.parametrize("name", notebooks())
def test_hidden_cells_hold_no_loop_and_no_listed(name):
    for source in hidden_cells(name):
        assert loops(source) == [], f"{name}: a loop in a hidden cell:\n{source}"
        assert "book.listed" not in source, f"{name}: book.listed in a hidden cell"


def test_hidden_cells_hold_at_most_400_lines_in_all():
    per_notebook = {n: sum(map(hidden_lines, hidden_cells(n))) for n in notebooks()}
    assert sum(per_notebook.values()) <= MAX_HIDDEN_LINES, per_notebook
