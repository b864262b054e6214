"""One name for the initial standard deviation of the weights: ``sd``, and ``sds`` for several.

``sd`` is one initial std (a number, or one entry per layer where a function takes both), ``sds``
a collection of them; a function about them says so in its name (``layer_sds``, ``kernel_sds``,
``check_sd``). Read statically with ``ast``, no module of ``hessinit/`` (nor of ``tests/`` and
``benchmarks/``) and no code cell of the book's notebooks names a parameter, a dataclass field,
an attribute, a variable or a keyword argument by one of the old names (:data:`OLD`), and no
function or class has ``std`` as a word of its name. ``np.std``, ``frame.std()`` and the like
(reads of another object's attribute) are standard deviations of data, not an initial sd, and
stay.
"""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The Python files checked: the package, its tests and its benchmarks.
MODULES = sorted(p for d in ("hessinit", "tests", "benchmarks") for p in (ROOT / d).rglob("*.py"))

#: The names the initial std went by before ``sd`` and ``sds``.
OLD = {"kernel_std", "kernel_stds", "std", "stds", "train_sd", "init_std"}


def old_names(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, what)`` for every binding of an old name in ``tree``.

    Bindings: function and lambda parameters, names and attributes assigned (dataclass fields
    and ``self.x = ...`` included), keyword arguments of calls, and function or class names
    with ``std`` or ``stds`` among their ``_``-separated words.

    Example:
        >>> old_names(ast.parse("def f(kernel_std): self.stds = mlp(std=1)"))
        [(1, 'attribute stds'), (1, 'keyword std'), (1, 'parameter kernel_std')]
    """
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if {"std", "stds"} & set(node.name.lower().split("_")):
                found.append((node.lineno, f"def {node.name}"))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            params = [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
            found += [(p.lineno, f"parameter {p.arg}") for p in params if p and p.arg in OLD]
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id in OLD:
            found.append((node.lineno, f"name {node.id}"))
        elif (
            isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and node.attr in OLD
        ):
            found.append((node.lineno, f"attribute {node.attr}"))
        elif isinstance(node, ast.keyword) and node.arg in OLD:
            found.append((node.lineno, f"keyword {node.arg}"))
    return sorted(found)


def test_the_check_finds_every_kind_of_binding():
    source = (
        "from dataclasses import dataclass\n"
        "@dataclass\n"
        "class Run:\n"
        "    kernel_std: tuple = ()\n"
        "def layer_stds(n, *, train_sd=1): pass\n"
        "def check_std(init_std): pass\n"
        "stds = [s for s in range(3)]\n"
        "model = mlp(kernel_std=0.1)\n"
        "f = lambda std: std\n"
        "class Kernels:\n"
        "    def __init__(self):\n"
        "        self.kernel_stds = None\n"
        "ok = np.std(x) + x.std(ddof=1) + frame.logit_std.std()\n"
    )
    found = old_names(ast.parse(source))
    assert [line for line, _ in found] == [4, 5, 5, 6, 6, 7, 8, 9, 12]
    assert {what.split()[-1] for _, what in found} == {
        "kernel_std", "layer_stds", "train_sd", "check_std", "init_std", "stds", "std",
        "kernel_stds",
    }  # fmt: skip
    assert old_names(ast.parse("sd, sds = 0.1, [0.1]\ndef layer_sds(sd): return np.std(sd)")) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_code_calls_the_initial_sd_sd(path):
    found = old_names(ast.parse(path.read_text(), filename=str(path)))
    assert not found, f"{path.relative_to(ROOT)}: {found}; call it sd (one) or sds (several)"


NOTEBOOKS = sorted(p for p in (ROOT / "book").glob("*.md") if p.with_suffix(".ipynb").exists())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_notebooks_call_the_initial_sd_sd(path):
    cells = [c for c in jupytext.read(path).cells if c.cell_type == "code"]
    assert cells, f"{path.name} has no code cell"
    found = []
    for cell in cells:
        found += [what for _, what in old_names(ast.parse(cell.source))]
    assert not found, f"{path.name}: {found}; call it sd (one) or sds (several)"
