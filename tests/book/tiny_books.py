"""Tiny synthetic books for the runner's tests: notebooks of plain Python that run in a second.

``make_book(root, notebooks, grid)`` writes ``book/<name>.ipynb`` for each notebook (a
``parameters`` cell, then the given cells), ``book/grid.yml``, and a ``_config.yml`` and
``_toc.yml``, so that ``python -m hessinit book --root ROOT --no-build`` runs them.
"""

from __future__ import annotations

import argparse
import textwrap

import nbformat

from hessinit.book import cli as book_cli

#: A notebook that writes its table: one row per value of ``x``, squared; ``sleep`` seconds
#: first (or the environment variable TINY_SLEEP's), to have a run in progress.
WRITER = [
    "x = [1, 2, 3]\nsleep = 0.0\ntable = 'out.csv'",
    textwrap.dedent(
        """\
        import os, time
        time.sleep(float(os.environ.get("TINY_SLEEP", sleep)))
        with open(table, "w") as f:
            f.write("x,y\\n" + "".join(f"{v},{v * v}\\n" for v in x))
        """
    ),
]
#: A collector: concatenates the tables it is given into its own ``total.csv``.
COLLECTOR = [
    "tables = []",
    textwrap.dedent(
        """\
        rows = [line for t in tables for line in open(t).read().splitlines()[1:]]
        with open("total.csv", "w") as f:
            f.write("x,y\\n" + "".join(r + "\\n" for r in sorted(rows)))
        """
    ),
]
#: A notebook that forgets to write its table.
NO_TABLE = ["table = 'out.csv'", "print('no table')"]
#: A notebook whose dataset cannot be loaded.
UNAVAILABLE = [
    "table = 'out.csv'",
    "class DatasetUnavailableError(Exception):\n    pass\n\n"
    "raise DatasetUnavailableError('no such file: tiny.npz')",
]
#: A notebook that never finishes on its own.
HANGS = ["table = 'out.csv'", "import time\ntime.sleep(600)"]


def notebook(cells):
    """A notebook whose first cell is tagged ``parameters``."""
    first, *rest = cells
    return nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(first, metadata={"tags": ["parameters"]})]
        + [nbformat.v4.new_code_cell(c) for c in rest],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}},
    )  # fmt: skip


def make_book(root, notebooks, grid, url="https://github.com/hessinit/hessinit"):
    """Write a tiny book into ``root``; return ``root``."""
    (root / "book").mkdir(parents=True, exist_ok=True)
    for name, cells in notebooks.items():
        nbformat.write(notebook(cells), root / "book" / f"{name}.ipynb")
    (root / "book" / "grid.yml").write_text(textwrap.dedent(grid))
    (root / "_config.yml").write_text(f"title: tiny\nrepository: {{url: {url}, branch: main}}\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    return root


def args(root, *extra):
    """The parsed options of ``python -m hessinit book --root ROOT --no-build EXTRA``."""
    parser = argparse.ArgumentParser()
    book_cli.add_arguments(parser)
    return parser.parse_args(["--root", str(root), "--no-build", *extra])
