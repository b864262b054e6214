"""Every committed notebook as a papermill user runs it: typed parameters, lists from ``-p``, and
the reproducibility chapter's commands.

The notebooks themselves are executed once, by plain ``papermill`` commands from a temporary
working directory, in test_colab.py (one run serves both: a Colab-like kernel, the ``-p`` text
form of lists, and the check that nothing is written outside the output folder).

References: papermill's own parameter inference (``inspect_notebook``, what ``--help-notebook``
prints), papermill's own ``-p`` value conversion, and the commands in book/reproducibility.md.
"""

import ast
import re
import shlex
import subprocess
import sys

import papermill
import pytest
from notebook_runs import ROOT, notebooks
from papermill.cli import _resolve_type

from hessinit import book


@pytest.mark.parametrize("name", notebooks())
def test_every_parameter_has_a_type(name):
    """--help-notebook shows a type for every parameter, list[...] for lists (not 'Unknown')."""
    inferred = papermill.inspect_notebook(str(ROOT / "book" / f"{name}.ipynb"))
    assert inferred
    for param, info in inferred.items():
        kind = info["inferred_type_name"]
        assert kind not in (None, "None"), f"{name}: {param} has no type"
        default = ast.literal_eval(info["default"]) if "range" not in info["default"] else []
        assert isinstance(default, list) == kind.startswith("list"), (name, param, kind)
        if param in ("table", "tables", "sds", "seeds", "steps", "dataset"):
            assert info["help"], f"{name}: {param} has no help"


def test_help_notebook_command():
    out = subprocess.run(
        [sys.executable, "-m", "papermill", "--help-notebook", str(ROOT / "book/original.ipynb")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "sds: list[float] (default [1e-5, 0.01, 1.0])" in out
    assert "std of dense1's initial kernel" in out and "Unknown type" not in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.1", [0.1]),  # papermill passes a number: one value
        ("[0.1]", [0.1]),
        ("[1e-5, 0.01, 1]", [1e-5, 0.01, 1]),
        ("[tanh, gelu]", ["tanh", "gelu"]),
        ("['tanh', 'gelu']", ["tanh", "gelu"]),
        ("[lecun, 0.25, 4.0]", ["lecun", 0.25, 4.0]),
        ("relu", ["relu"]),
        ("tanh,gelu", ["tanh", "gelu"]),
    ],
)
def test_list_parameters_from_p(text, expected):
    """What `-p name TEXT` hands the notebook (papermill's conversion), read by book.listed."""
    assert book.listed(_resolve_type(text)) == expected


def test_reproducibility_shows_a_papermill_command_per_notebook():
    """One command per notebook, with --cwd its output folder and only real parameters."""
    text = (ROOT / "book" / "reproducibility.md").read_text()
    commands = [shlex.split(c) for c in re.findall(r"^papermill book/.*$", text, re.M)]
    by_name = {}
    for cmd in commands:
        name = cmd[1].removeprefix("book/").removesuffix(".ipynb")
        by_name[name] = cmd
        folder = cmd[2].rsplit("/", 1)[0]
        assert cmd[2] == f"{folder}/{name}.ipynb" and cmd[3:5] == ["--cwd", folder], cmd
        known = papermill.inspect_notebook(str(ROOT / "book" / f"{name}.ipynb"))
        for i, arg in enumerate(cmd):
            if arg == "-p":
                assert cmd[i + 1] in known, f"{name} has no parameter {cmd[i + 1]}"
                if known[cmd[i + 1]]["inferred_type_name"].startswith("list"):
                    assert book.listed(_resolve_type(cmd[i + 2])), cmd
    assert set(by_name) == set(notebooks())
