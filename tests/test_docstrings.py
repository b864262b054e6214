"""The API page (book/api.md) renders every public docstring: none may show a traceback.

An example of an error is written ``try: ... except E as error: print(error)``, so the page shows
the message a reader gets, not log-like traceback lines. Reference: the source, parsed by ``ast``.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hessinit"


def public_docstrings(tree):
    """``(name, docstring)`` of the module and of its public functions, classes and methods."""
    yield "<module>", ast.get_docstring(tree) or ""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if not node.name.startswith("_"):
                yield node.name, ast.get_docstring(node) or ""


def test_no_public_docstring_shows_a_traceback():
    shown = [
        f"{path.relative_to(PACKAGE.parent)}:{name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for name, doc in public_docstrings(ast.parse(path.read_text()))
        if "Traceback (most recent call last)" in doc
    ]
    assert shown == []


def test_the_rule_sees_a_traceback():
    tree = ast.parse('def f():\n    """>>> f()\n    Traceback (most recent call last):\n    """\n')
    assert [n for n, d in public_docstrings(tree) if "Traceback" in d] == ["f"]
