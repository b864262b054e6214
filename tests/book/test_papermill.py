"""Every committed notebook as a papermill user runs it: typed parameters, lists from ``-p``, and
the reproducibility chapter's commands.

The notebooks themselves are executed once, by plain ``papermill`` commands without ``--cwd``
from a temporary working directory, in test_colab.py (one run serves both: a Colab-like kernel,
the ``-p`` text form of lists, and the check that nothing is written outside the output folder).
Here one cheap notebook runs on the host's kernel exactly as the reproducibility chapter shows.

References: papermill's own parameter inference (``inspect_notebook``, what ``--help-notebook``
prints), papermill's own ``-p`` value conversion, and the commands in book/reproducibility.md.
"""

import ast
import os
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


def _commands():
    """The papermill commands of book/reproducibility.md, as argument lists."""
    text = (ROOT / "book" / "reproducibility.md").read_text()
    return [shlex.split(c) for c in re.findall(r"^papermill book/.*$", text, re.M)]


def test_reproducibility_shows_a_papermill_command_per_notebook():
    """One command per notebook, its output in out/, no --cwd, and only real parameters."""
    by_name = {}
    for cmd in _commands():
        name = cmd[1].removeprefix("book/").removesuffix(".ipynb")
        by_name[name] = cmd
        assert cmd[2] == f"out/{name}.ipynb" and "--cwd" not in cmd, cmd
        known = papermill.inspect_notebook(str(ROOT / "book" / f"{name}.ipynb"))
        for i, arg in enumerate(cmd):
            if arg == "-p":
                assert cmd[i + 1] in known, f"{name} has no parameter {cmd[i + 1]}"
                if known[cmd[i + 1]]["inferred_type_name"].startswith("list"):
                    assert book.listed(_resolve_type(cmd[i + 2])), cmd
    assert set(by_name) == set(notebooks())


def test_the_chapters_command_writes_only_next_to_its_output_notebook(tmp_path):
    """reproducibility's own command, as shown, from a folder that looks like the repository:
    its table lands in out/ next to the executed notebook, and nothing else is written."""
    (cmd,) = [c for c in _commands() if c[1] == "book/reproducibility.ipynb"]
    (tmp_path / "book").symlink_to(ROOT / "book")
    (tmp_path / "out").mkdir()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", *cmd, "--no-progress-bar"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book", "out"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "reproducibility.ipynb",
        "runs.csv",
    ]
    assert "cannot read the papermill command" not in result.stderr
