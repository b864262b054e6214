"""Every committed notebook as a papermill user runs it: typed parameters, lists from ``-p``, the
reproducibility chapter's commands, and where a plain ``papermill`` command's outputs go.

No notebook of the book is executed here (the small book executes each once, and the Colab-like
test runs one by a plain ``papermill`` command without ``--cwd``): the commands are checked
against papermill's own parameter inference, and a tiny notebook of two cells that writes its
table with ``book.write_table`` shows where a plain ``papermill`` command's outputs go (those two
tests are slow: they execute it).

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


@pytest.mark.parametrize("name", notebooks())
def test_every_notebook_takes_its_output_folder(name):
    """``output_dir: str = "."``: the folder the runner (``-p output_dir``) and readers name."""
    inferred = papermill.inspect_notebook(str(ROOT / "book" / f"{name}.ipynb"))
    assert book.notebook.OUTPUT_PARAMETER == "output_dir"
    assert inferred["output_dir"]["inferred_type_name"] == "str", inferred.get("output_dir")
    assert inferred["output_dir"]["default"] == '"."'


def test_help_notebook_command():
    out = subprocess.run(
        [sys.executable, "-m", "papermill", "--help-notebook", str(ROOT / "book/original.ipynb")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "sds: list[float] (default [1e-5, 0.01, 1.0])" in out
    assert "sd of dense1's initial kernel" in out and "Unknown type" not in out


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
        assert cmd[3:5] == ["-p", "output_dir"] and cmd[5] == "out", cmd  # tables next to it
        known = papermill.inspect_notebook(str(ROOT / "book" / f"{name}.ipynb"))
        for i, arg in enumerate(cmd):
            if arg == "-p":
                assert cmd[i + 1] in known, f"{name} has no parameter {cmd[i + 1]}"
                if known[cmd[i + 1]]["inferred_type_name"].startswith("list"):
                    assert book.listed(_resolve_type(cmd[i + 2])), cmd
    assert set(by_name) == set(notebooks())


#: A notebook that writes its table with the book's helper, as every chapter does.
TABLE_WRITER = [
    "table = 't.csv'\noutput_dir = '.'",
    "import pandas as pd\nfrom hessinit import book\n"
    "book.write_table(pd.DataFrame({'a': [1]}), table, output_dir)",
]


def _papermill(tmp_path, *extra):
    """``papermill tiny.ipynb out/tiny.ipynb EXTRA`` run from ``tmp_path/work``, without --cwd."""
    import nbformat
    import tiny_books

    work = tmp_path / "work"
    (work / "out").mkdir(parents=True)  # papermill needs the output folder to exist
    nbformat.write(tiny_books.notebook(TABLE_WRITER), tmp_path / "tiny.ipynb")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "papermill", str(tmp_path / "tiny.ipynb"), "out/tiny.ipynb",
         "--no-progress-bar", *extra],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cannot read the papermill command" not in result.stderr
    return work


@pytest.mark.slow  # executes a notebook
def test_a_plain_papermill_command_writes_tables_into_its_working_directory(tmp_path):
    """Without ``-p output_dir`` (default ``"."``) and without --cwd the table goes to the
    kernel's working directory, the shell's: no other process is read; nothing else is written."""
    work = _papermill(tmp_path)
    assert sorted(p.relative_to(work).as_posix() for p in work.rglob("*")) == [
        "out",
        "out/tiny.ipynb",
        "t.csv",
    ]


@pytest.mark.slow  # executes a notebook
def test_the_output_folder_parameter_says_where_tables_go(tmp_path):
    """``-p output_dir FOLDER`` (what the book's runner passes every notebook): the table goes
    to FOLDER, relative to the kernel's working directory."""
    work = _papermill(tmp_path, "-p", book.notebook.OUTPUT_PARAMETER, "tables")
    assert sorted(p.relative_to(work).as_posix() for p in work.rglob("*")) == [
        "out",
        "out/tiny.ipynb",
        "tables",
        "tables/t.csv",
    ]
