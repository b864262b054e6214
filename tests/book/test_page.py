"""Per-dataset pages on one site: their figures get unique labels and the ledger links them.

Reference: Sphinx itself. A tiny Jupyter Book with one chapter decorated for two datasets
(:func:`hessinit.book.page.decorate`) and a ledger page whose links come from
:func:`hessinit.study.claims.ledger_markdown` must build with ``-W -n``: a duplicate label or an
unresolved link is a warning, and fails it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from hessinit.book import page
from hessinit.book.grid import Run
from hessinit.study import claims

#: The build command of this environment, as the runner finds it.
JUPYTER_BOOK = shutil.which("jupyter-book") or str(Path(sys.executable).parent / "jupyter-book")

#: A 1x1 PNG: MyST-NB renders the figure from it.
PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5Erk"
    "Jggg=="
)


def _chapter(dataset):
    cell = nbformat.v4.new_code_cell("plot()")
    cell.metadata["mystnb"] = {"figure": {"caption": "Norms.", "name": "fig-norms"}}
    out = nbformat.v4.new_output("display_data", data={"image/png": PIXEL, "text/plain": "x"})
    cell.outputs = [out]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Norms"), cell])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "P", "language": "python"}
    run = Run(id=f"site/norms/{dataset}", notebook="norms", output=f"site/norms/{dataset}.ipynb",
              parameters={"dataset": dataset}, dataset=dataset)  # fmt: skip
    return nb, run


@pytest.mark.slow
def test_two_datasets_pages_build_without_duplicate_labels_and_the_ledger_links_each(tmp_path):
    (tmp_path / "_config.yml").write_text(
        "title: t\nexecute: {execute_notebooks: 'off'}\n"
        "repository: {url: https://github.com/hessinit/hessinit, branch: main}\n"
    )
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - glob: norms/*\n  - file: ledger\n"
    )
    (tmp_path / "intro.md").write_text("# Intro\n")
    (tmp_path / "norms").mkdir()
    rows = []
    for dataset in ("mnist-5k", "svhn"):
        nb, run = _chapter(dataset)
        nbformat.write(page.decorate(nb, run, tmp_path), tmp_path / "norms" / f"{dataset}.ipynb")
        rows.append(claims.claim_row("9.1", source="paper abstract", wording="w", setting=dataset,
                                     measure="m", value=1.0, seeds=1, rule="r", verdict="holds",
                                     figure="fig-norms", page=f"norms/{dataset}"))  # fmt: skip
    ledger = claims.ledger_markdown(claims.claims_table(rows))
    (tmp_path / "ledger.md").write_text("# Ledger\n\n" + ledger)
    build = subprocess.run(
        [JUPYTER_BOOK, "build", str(tmp_path), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    html = (tmp_path / "_build" / "html" / "ledger.html").read_text()
    for dataset in ("mnist-5k", "svhn"):
        label = f"fig-norms-{dataset}"
        assert f'id="{label}"' in (tmp_path / "_build/html/norms" / f"{dataset}.html").read_text()
        assert f'norms/{dataset}.html#{label}"' in html
