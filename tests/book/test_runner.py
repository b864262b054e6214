"""The papermill runner and the site build (hessinit.book.runner), on a small copy of the book.

The slow part reads the small book of the session (the ``small_book`` fixture of
tests/conftest.py: every notebook executed once at ``--small`` size into a temporary copy of the
book, and the site built, API reference included; a few minutes on 2 cores). Every outcome of
the runner is checked on tiny books of plain-Python notebooks (tests/book/tiny_books.py), a
second or two per run: those tests start kernels, so they are slow too. The quick part checks
the configuration, the table of contents, the run keys and the refusals, executing nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import tiny_books
import yaml
from conftest import default_sigint

from hessinit.book import cli as book_cli
from hessinit.book import colab
from hessinit.book import execute as book_execute
from hessinit.book import grid as book_grid
from hessinit.book import notebook as book
from hessinit.book import runner as book_runner

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "hessinit"
CHAPTERS = ("chain_rule", "original/mnist-5k", "sd_sweep", "reproducibility", "performance")
#: The claim-testing chapters and their ledger (issue 4).
CLAIM_CHAPTERS = ("dominance", "init_schemes", "step_size")


def test_config_is_jupyter_book_1_without_execution_or_intersphinx():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert "intersphinx_mapping" not in json.dumps(config)
    assert book.versions()["jupyter-book"].startswith("1.")
    extensions = config["sphinx"]["extra_extensions"]
    assert {"sphinx.ext.autodoc", "sphinx.ext.napoleon", "hessinit.book.xref"} <= set(extensions)


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_api_page_documents_every_module():
    """A new module needs its ``automodule`` line on book/api.md."""
    page = (ROOT / "book" / "api.md").read_text()
    documented = set(re.findall(r"^\.\. automodule:: (\S+)$", page, flags=re.M))
    assert documented == set(_modules())
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert {"file": "book/api"} in [c for part in toc["parts"] for c in part["chapters"]]


#: The smallest executed notebook a page is made of.
PAGE = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_toc_keeps_only_pages_that_exist(tmp_path):
    shutil.copy(ROOT / "_toc.yml", tmp_path)
    shutil.copy(ROOT / "_config.yml", tmp_path)
    shutil.copytree(ROOT / "book", tmp_path / "book")
    (tmp_path / "_runs" / "site" / "original").mkdir(parents=True)
    (tmp_path / "_runs" / "site" / "original" / "mnist.ipynb").write_text(PAGE)
    (tmp_path / "_runs" / "site" / "original" / ".x.partial.ipynb").write_text(PAGE)
    # a page cut short is left out, by name: the site build never meets it
    (tmp_path / "_runs" / "site" / "original" / "cifar10.ipynb").write_text(PAGE[:20])
    runner = book_runner.Runner(tmp_path)
    toc = yaml.safe_load(runner.write_toc().read_text())
    files = [c["file"] for p in toc["parts"] for c in p["chapters"]]
    assert files == ["_runs/site/original/mnist", "book/api", "book/bibliography"]
    assert list(runner.left_out) == ["_runs/site/original/cifar10.ipynb"]
    assert runner.left_out["_runs/site/original/cifar10.ipynb"].startswith("not valid JSON")
    assert toc["root"] == "book/intro"
    # a chapter whose sections all failed keeps no empty `sections:` (sphinx-external-toc
    # rejects an empty list, and the whole site would fail to build)
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: A\n    chapters:\n"
        "      - file: _runs/site/a\n        sections:\n          - file: _runs/site/b\n"
    )
    (tmp_path / "_runs" / "site" / "a.ipynb").write_text(PAGE)
    toc = yaml.safe_load(book_runner.Runner(tmp_path).write_toc().read_text())
    assert toc["parts"] == [{"caption": "A", "chapters": [{"file": "_runs/site/a"}]}]


def test_toc_lists_the_cnn_pages_of_each_dataset_before_the_ledger(tmp_path):
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, tmp_path)
    shutil.copytree(ROOT / "book", tmp_path / "book")
    for page in ("cnn/mnist-5k", "cnn/cifar10", "cnn_training/mnist-5k", "claims"):
        (tmp_path / "_runs" / "site" / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "_runs" / "site" / f"{page}.ipynb").write_text(PAGE)
    toc = yaml.safe_load(book_runner.Runner(tmp_path).write_toc().read_text())
    files = [c["file"] for p in toc["parts"] for c in p["chapters"]]
    site = [f.removeprefix("_runs/site/") for f in files if f.startswith("_runs/")]
    assert site == ["cnn/cifar10", "cnn/mnist-5k", "cnn_training/mnist-5k", "claims"]


def test_the_files_a_run_reads_are_part_of_its_key(tmp_path):
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, tmp_path)
    shutil.copytree(ROOT / "book", tmp_path / "book")
    shutil.copytree(ROOT / "benchmarks" / "results", tmp_path / "benchmarks" / "results")
    runner = book_runner.Runner(tmp_path)
    run = next(r for r in runner.runs if r.notebook == "performance")
    assert run.files[:2] == [
        "benchmarks/results/hessian_norms.csv",
        "benchmarks/results/tracking.csv",
    ]
    assert all((ROOT / f).is_file() for f in run.files)  # a worker gets exactly these files
    before = runner.key(run)
    with open(tmp_path / run.files[1], "a") as f:
        f.write("\n")
    assert runner.key(run) != before


# --------------------------------------------------------------------------------------------
# The small book: every notebook executed at a small size, the site built (slow)
# --------------------------------------------------------------------------------------------


# small_book (tests/conftest.py): the book executed at --small and built, once per session.


def _html(root, page):
    return (root / "_build" / "html" / "_runs" / "site" / f"{page}.html").read_text()


@pytest.mark.slow
def test_small_book_runs_and_builds_without_warnings(small_book):
    root, code = small_book
    assert code == 0
    records = [json.loads(p.read_text()) for p in (root / "_runs" / "records").glob("*.json")]
    assert records and all(r["status"] == "ok" for r in records)
    assert (root / "_runs" / "site" / "original" / "mnist-5k.csv").exists()
    assert len(list((root / "_runs" / "sweep" / "mnist-5k").glob("*.csv"))) == 3
    assert not list(root.rglob(".*.partial.ipynb"))


@pytest.mark.slow
def test_every_chapter_page_has_figures_no_errors_and_colab_links_to_files(small_book):
    root, _ = small_book
    assert (root / "_build" / "html" / "book" / "intro.html").exists()
    assert (root / "_build" / "html" / "book" / "bibliography.html").exists()
    for page in CHAPTERS + CLAIM_CHAPTERS + ("claims",):
        html = _html(root, page)
        assert "Traceback" not in html and "stderr" not in html, page
        assert "Parameters of this run" in html, page
        if page not in ("reproducibility", "claims"):
            assert "<img" in html, page
        links = re.findall(r'href="https://colab\.research\.google\.com/github/([^"]+)"', html)
        assert links, page
        for link in links:  # the page's Colab edition at the release, written by the build
            owner_repo, path = link.split(f"/blob/colab/{colab.release_ref(ROOT)}/", 1)
            assert owner_repo == "hessinit/hessinit"
            assert (root / "_build" / "html" / "colab" / path).is_file(), f"{page}: {path}"
    # The numbers in the text come from glue, never a placeholder.
    assert "glue" not in _html(root, "sd_sweep").split("Over ", 1)[1][:300]


@pytest.mark.slow
def test_a_second_run_skips_everything(small_book):
    root, _ = small_book
    runner = book_runner.Runner(root, small=True)
    results = runner.run_all(progress=False)
    assert {r.status for r in results.values()} == {"skipped"}, results
    # The code is part of the key: any change to hessinit/*.py reruns every run.
    runner.code_hash = "changed"
    assert all(runner.key(r) != runner.read_record(r)["key"] for r in runner.runs[:2])


@pytest.mark.slow
def test_claims_ledger_rows_come_from_the_chapters_and_link_their_figures(small_book):
    import pandas as pd

    root, _ = small_book
    html = _html(root, "claims")
    tables = [root / "_runs" / "site" / f"{page}.csv" for page in CLAIM_CHAPTERS]
    rows = pd.concat([pd.read_csv(t, dtype={"claim": str}) for t in tables], ignore_index=True)
    assert len(rows) >= 10 and rows["verdict"].notna().all() and rows["value"].notna().all()
    for row in rows.itertuples():
        assert f'{row.page}.html#{row.figure}"' in html, row.claim
        assert f'id="{row.figure}"' in _html(root, row.page), row.figure
    assert "glue" not in html.split("claims tested", 1)[0][-400:]


@pytest.mark.slow
def test_the_api_page_shows_docstrings_math_and_examples(small_book):
    root, _ = small_book
    html = (root / "_build" / "html" / "book" / "api.html").read_text()
    for name in (
        "hessinit.curvature.kronecker.layer_hessian_norms",
        "hessinit.nn.models.mlp",
        "hessinit.data.load",
        "hessinit.book.grid.read_grid",
    ):
        assert f'id="{name}"' in html, name
    assert html.count("&gt;&gt;&gt;") > 20  # the doctest examples
    assert 'class="sig-name descname"' in html and "Parameters" in html and "Returns" in html


# --------------------------------------------------------------------------------------------
# Every outcome, on tiny synthetic books (plain-Python notebooks, a second per run)
# --------------------------------------------------------------------------------------------

GRID = """\
    runs:
      - {notebook: writer, output: 'site/w-{sd}.ipynb', sd: [1, 2], parameters: {x: [1, 2]}}
      - {notebook: no_table, output: site/no_table.ipynb}
      - {notebook: collector, output: site/total.ipynb, collect: writer}
      - {notebook: reproducibility, output: site/records.ipynb, collect: records}
"""
NOTEBOOKS = {
    "writer": tiny_books.WRITER,
    "no_table": tiny_books.NO_TABLE,
    "collector": tiny_books.COLLECTOR,
    "reproducibility": ["records = []", "print(len(records))"],
}


@pytest.fixture
def pinned_code(monkeypatch):
    """Others may edit hessinit/**/*.py while a test runs: pin the code hash the runner reads."""
    pinned = book_grid.package_hash()
    monkeypatch.setattr(book_runner, "package_hash", lambda: pinned)
    return pinned


def _records(root):
    return {
        p.stem.replace("__", "/"): json.loads(p.read_text())
        for p in (root / "_runs" / "records").glob("*.json")
    }


def _statuses(root):
    return {k: r["status"] for k, r in _records(root).items()}


@pytest.mark.slow  # executes a notebook
def test_every_run_is_recorded_ok_only_with_its_table_and_rerun_only_when_changed(
    tmp_path, pinned_code
):
    # A repository that is not on GitHub must not fail a run (it only has no Colab badge).
    root = tiny_books.make_book(tmp_path, NOTEBOOKS, GRID, url="https://gitlab.com/a/b")
    assert book_cli.main(tiny_books.args(root)) == 1  # no_table failed
    records = _records(root)
    assert _statuses(root) == {
        "site/w-1": "ok",
        "site/w-2": "ok",
        "site/no_table": "failed",
        "site/total": "ok",
        "site/records": "ok",
    }
    assert "wrote no table 'no_table.csv'" in records["site/no_table"]["error"]
    assert not (root / "_runs" / "site" / "no_table.ipynb").exists()
    assert (root / "_runs" / "failed" / "site__no_table.ipynb").exists()
    # The collector read both tables (x = 1, 2 each): four rows, sorted.
    assert (root / "_runs" / "site" / "total.csv").read_text() == "x,y\n1,1\n1,1\n2,4\n2,4\n"
    # Files the client writes have the usual permissions, not mkstemp's 0600.
    umask = os.umask(0)
    os.umask(umask)
    for path in (
        root / "_runs" / "site" / "w-1.csv",
        root / "_runs" / "records" / "site__w-1.json",
    ):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path
    assert not list(root.rglob("*.tmp")) and not list(root.rglob(".*.partial.ipynb"))
    # Second build: the current runs are skipped, the failed one is tried again.
    runner = book_runner.Runner(root)
    results = runner.run_all(progress=False)
    assert {k: r.status for k, r in results.items() if r.status != "skipped"} == {
        "site/no_table": "failed"
    }
    # The code is part of the key: any change to hessinit/*.py reruns every run.
    runner.code_hash = "changed"
    assert all(runner.key(r) != runner.read_record(r)["key"] for r in runner.runs[:2])


@pytest.mark.slow  # executes a notebook
def test_stale_runs_with_only_and_a_missing_upstream_table(tmp_path, capsys, pinned_code):
    grid = "\n".join(GRID.splitlines()[:2] + GRID.splitlines()[3:4])  # writers and collector
    root = tiny_books.make_book(tmp_path, NOTEBOOKS, grid)
    book_cli.main(tiny_books.args(root))
    (root / "_runs" / "site" / "w-2.csv").unlink()  # an upstream table disappears
    capsys.readouterr()
    assert book_cli.main(tiny_books.args(root, "--only", "site/total")) == 0
    out = capsys.readouterr().out
    status = _statuses(root)
    # w-2 is not selected and incomplete: stale, and its collector does not read it as current.
    assert status["site/w-2"] == "stale" and status["site/total"] == "stale"
    assert (
        "STALE site/w-2: not selected by --only and its outputs do not verify: "
        "_runs/site/w-2.csv is missing"
    ) in out
    assert "STALE site/total: it collects stale runs: site/w-2" in out
    assert status["site/w-1"] == "ok"  # current: its record is untouched
    # Out of date by a code change: every unselected run is stale, none is silently "skipped".
    runner = book_runner.Runner(root, only=["site/w-1"])
    runner.code_hash = "other code"
    results = runner.run_all(progress=False)
    assert results["site/w-1"].status == "ok"
    assert results["site/w-2"].status == results["site/total"].status == "stale"
    # Without --only everything is redone and current again.
    assert book_cli.main(tiny_books.args(root, "--only", "site/w-*", "site/total")) == 0
    assert (root / "_runs" / "site" / "w-2.csv").exists()
    assert _statuses(root)["site/total"] == "ok"


@pytest.mark.slow  # executes a notebook
def test_outputs_that_do_not_verify_are_redone_and_named(tmp_path, capsys, pinned_code):
    grid = """\
        runs:
          - {notebook: writer, output: site/w.ipynb}
          - {notebook: collector, output: site/total.ipynb, collect: writer}
    """
    notebooks = {"writer": tiny_books.WRITER, "collector": tiny_books.COLLECTOR}
    root = tiny_books.make_book(tmp_path, notebooks, grid)
    assert book_cli.main(tiny_books.args(root)) == 0
    # Each record is the manifest of what its run wrote: hashes, sizes, a table's rows.
    manifest = _records(root)["site/w"]["outputs"]
    assert sorted(manifest) == ["site/w.csv", "site/w.ipynb"]
    assert manifest["site/w.csv"]["rows"] == 3
    table = root / "_runs" / "site" / "w.csv"
    assert manifest["site/w.csv"]["bytes"] == table.stat().st_size
    original = table.read_text()

    # A table cut short: its run is redone, not skipped, and the build names the file.
    table.write_text(original[: original.rindex("3,")])
    capsys.readouterr()
    assert book_cli.main(tiny_books.args(root)) == 0
    out = capsys.readouterr().out
    assert (
        "REDONE site/w: its outputs did not verify: _runs/site/w.csv has 2 rows where its "
        "manifest records 3"
    ) in out
    assert table.read_text() == original and "runs: 1 ok, 1 skipped" in out

    # An executed notebook cut to invalid JSON: the same.
    page = root / "_runs" / "site" / "total.ipynb"
    whole = page.read_bytes()
    page.write_bytes(whole[: len(whole) // 2])
    assert book_cli.main(tiny_books.args(root)) == 0
    out = capsys.readouterr().out
    assert "REDONE site/total: its outputs did not verify: _runs/site/total.ipynb is not " \
        "valid JSON" in out  # fmt: skip
    assert json.loads(page.read_text())["cells"]

    # Not selected by --only, it is stale, says why, and stays out of the site.
    page.write_bytes(whole[:100])
    assert book_cli.main(tiny_books.args(root, "--only", "site/w")) == 0
    out = capsys.readouterr().out
    assert "STALE site/total: not selected by --only and its outputs do not verify: " \
        "_runs/site/total.ipynb is not valid JSON" in out  # fmt: skip
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: A\n    chapters:\n"
        "      - file: _runs/site/w\n      - file: _runs/site/total\n"
    )
    (root / "book" / "intro.md").write_text("# Intro\n")
    runner = book_runner.Runner(root)
    toc = yaml.safe_load(runner.write_toc().read_text())
    assert [c["file"] for p in toc["parts"] for c in p["chapters"]] == ["_runs/site/w"]
    assert list(runner.left_out) == ["_runs/site/total.ipynb"]


@pytest.mark.slow  # executes a notebook
def test_a_run_over_its_time_limit_is_timed_out_and_the_others_go_on(tmp_path, capsys):
    grid = """\
        timeout: 60
        runs:
          - {notebook: hangs, output: site/hangs.ipynb, timeout: 3}
          - {notebook: writer, output: site/w.ipynb}
    """
    root = tiny_books.make_book(
        tmp_path, {"hangs": tiny_books.HANGS, "writer": tiny_books.WRITER}, grid
    )
    start = time.monotonic()
    assert book_cli.main(tiny_books.args(root)) == 1
    assert time.monotonic() - start < 60
    assert _statuses(root) == {"site/hangs": "timed out", "site/w": "ok"}
    assert "TIMED OUT site/hangs: exceeded its limit of 3 s" in capsys.readouterr().err


@pytest.mark.slow  # executes a notebook
def test_unavailable_and_empty_runs_replace_an_old_ok_record(tmp_path):
    grid = """\
        runs:
          - {notebook: unavailable, output: 'site/{dataset}.ipynb'}
          - {notebook: collector, output: site/total.ipynb, collect: unavailable}
    """
    root = tiny_books.make_book(
        tmp_path, {"unavailable": tiny_books.UNAVAILABLE, "collector": tiny_books.COLLECTOR}, grid
    )
    old = {"id": "site/total", "status": "ok", "key": "old", "parameters": {}}
    (root / "_runs" / "records").mkdir(parents=True)
    (root / "_runs" / "records" / "site__total.json").write_text(json.dumps(old))
    assert book_cli.main(tiny_books.args(root)) == 0  # an unavailable dataset is not a failure
    records = _records(root)
    assert records["site/mnist-5k"]["status"] == "unavailable"
    assert "DatasetUnavailableError: no such file: tiny.npz" in records["site/mnist-5k"]["error"]
    assert records["site/total"]["status"] == "empty"


#: Writes its table, except for one dataset, which it cannot load (as data.load offline).
BY_DATASET = [
    "dataset = 'mnist-5k'\ntable = 'out.csv'",
    "class DatasetUnavailableError(Exception):\n    pass\n\n"
    "if dataset == 'cifar10':\n    raise DatasetUnavailableError(f'no file for {dataset}')\n"
    "open(table, 'w').write('x\\n1\\n')",
]
TOC = """\
    format: jb-book
    root: book/intro
    parts:
      - caption: Runs
        chapters:
          - glob: _runs/site/load/*
          - file: _runs/site/w
          - file: _runs/site/no_table
"""


@pytest.mark.slow  # executes a notebook
def test_failing_run_and_unavailable_dataset_are_reported_and_left_out_of_the_site(
    tmp_path, capsys, pinned_code
):
    grid = """\
        runs:
          - {notebook: by_dataset, output: 'site/load/{dataset}.ipynb'}
          - {notebook: writer, output: 'site/more/{dataset}.ipynb'}
          - {notebook: writer, output: site/w.ipynb}
          - {notebook: no_table, output: site/no_table.ipynb}
    """
    notebooks = {"by_dataset": BY_DATASET, "writer": tiny_books.WRITER,
                 "no_table": tiny_books.NO_TABLE}  # fmt: skip
    root = tiny_books.make_book(tmp_path, notebooks, grid)
    (root / "_toc.yml").write_text(textwrap.dedent(TOC))
    (root / "book" / "intro.md").write_text("# Intro\n")
    code = book_cli.main(tiny_books.args(root, "--datasets", "mnist-5k", "cifar10"))
    out = capsys.readouterr()
    assert code == 1
    assert "FAILED site/no_table: the notebook wrote no table 'no_table.csv'" in out.err
    assert "dataset cifar10 unavailable, its pages are left out: DatasetUnavailableError: " \
        "no file for cifar10" in out.out  # fmt: skip
    records = _records(root)
    assert _statuses(root) == {
        "site/load/mnist-5k": "ok",
        "site/load/cifar10": "unavailable",
        "site/more/mnist-5k": "ok",
        "site/more/cifar10": "unavailable",
        "site/w": "ok",
        "site/no_table": "failed",
    }
    # The second run of cifar10 was not executed: its dataset was already known unavailable.
    assert (
        records["site/more/cifar10"]["seconds"] == 0 and not records["site/more/cifar10"]["worker"]
    )
    # The failed run left no page but its partly executed notebook; the unavailable dataset
    # left none; the table of contents lists only the pages that exist.
    assert not (root / "_runs" / "site" / "no_table.ipynb").exists()
    assert (root / "_runs" / "failed" / "site__no_table.ipynb").exists()
    assert not (root / "_runs" / "site" / "load" / "cifar10.ipynb").exists()
    toc = yaml.safe_load(book_runner.Runner(root).write_toc().read_text())
    files = [c["file"] for p in toc["parts"] for c in p["chapters"]]
    assert files == ["_runs/site/load/mnist-5k", "_runs/site/w"]


@pytest.mark.slow  # executes a notebook
def test_ctrl_c_stops_with_a_summary_and_a_rerun_resumes(tmp_path):
    grid = """\
        runs:
          - {notebook: writer, output: site/a.ipynb}
          - {notebook: writer, output: site/b.ipynb, parameters: {sleep: 60}}
          - {notebook: writer, output: site/c.ipynb}
    """
    root = tiny_books.make_book(tmp_path, {"writer": tiny_books.WRITER}, grid)
    cmd = [sys.executable, "-m", "hessinit", "book", "--root", str(root), "--no-build"]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 60
    while not (root / "_runs" / "records" / "site__a.json").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    time.sleep(3)  # b is executing
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted: 1 of 3 runs finished" in err and "redoes 2: site/b, site/c" in err
    assert _statuses(root) == {"site/a": "ok"}
    assert not list((root / "_runs").rglob("*.tmp"))
    rerun = book_runner.Runner(root)
    unchanged = _records(root)["site/a"]["code_hash"] == rerun.code_hash  # others edit the code
    rerun.runs[1].parameters["sleep"] = 0.0
    results = rerun.run_all(progress=False)
    assert results["site/a"].status == ("skipped" if unchanged else "ok")
    assert results["site/b"].status == results["site/c"].status == "ok"


def test_a_kernel_of_another_python_is_refused_with_what_to_do(tmp_path, monkeypatch, capsys):
    from hessinit.__main__ import main

    spec = tmp_path / "jupyter" / "kernels" / "hessinit"
    spec.mkdir(parents=True)
    other = ["/opt/other-env/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": other, "language": "python",
                                                  "display_name": "other"}))  # fmt: skip
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    root = tiny_books.make_book(tmp_path / "book", {"writer": tiny_books.WRITER},
                                "runs: [{notebook: writer, output: site/w.ipynb}]")  # fmt: skip
    assert main(["book", "--root", str(root), "--no-build"]) == 2
    err = capsys.readouterr().err
    assert "runs /opt/other-env/bin/python, not this interpreter" in err
    assert f"{sys.executable} -m ipykernel install --sys-prefix --name hessinit" in err
    assert not (root / "_runs" / "records").exists()


def test_a_worker_with_other_code_is_refused():
    job = book_execute.Job("x", "x", "{}", "x.ipynb", {}, code_hash="0" * 64)
    with pytest.raises(book_execute.CodeMismatchError, match="not the client's"):
        book_execute.execute_job(job)


@pytest.mark.slow  # executes a notebook
def test_the_pipeline_steps_one_at_a_time(tmp_path, pinned_code):
    """plan -> execute -> record (verify) -> plan again, as functions of the step modules, and
    build() as their composition: a fresh run is a Job, its recorded outputs verify, a second
    plan skips it, and a table cut short makes the plan a Job again that names the file."""
    from hessinit.book import manifest, plan, schedule
    from hessinit.book.execute import Job
    from hessinit.book.pool import SerialPool

    grid = """\
        runs:
          - {notebook: writer, output: site/w.ipynb}
          - {notebook: collector, output: site/total.ipynb, collect: writer}
    """
    notebooks = {"writer": tiny_books.WRITER, "collector": tiny_books.COLLECTOR}
    root = tiny_books.make_book(tmp_path, notebooks, grid)
    book_ = book_runner.open_book(root)
    writer, total = book_.runs
    assert plan.dependencies(book_.runs, total) == ["site/w"]
    state = schedule.State()
    job, key, redone = plan.plan(book_, writer, state.results, state.unavailable)
    assert isinstance(job, Job) and redone == "" and key == plan.run_key(book_, writer)
    with SerialPool() as pool:
        pool.submit(job)
        run_id, outcome = pool.next_done()
    result = schedule.record(book_, state, writer, key, outcome)
    assert (run_id, result.status) == ("site/w", "ok")
    record = manifest.read_record(book_.runs_dir, writer)
    assert record["key"] == key and manifest.verify(book_.runs_dir, writer, record) == ""
    assert writer.parameters["table"] == "w.csv"
    table = root / "_runs" / "site" / "w.csv"
    assert record["outputs"]["site/w.csv"] == manifest.fingerprint(table.read_bytes(), ".csv")
    state.results["site/w"] = result
    skipped, _, _ = plan.plan(book_, writer, state.results, state.unavailable)
    assert skipped == plan.Result("site/w", "skipped")
    # The collector is planned with the writer's table as its input.
    job, _, _ = plan.plan(book_, total, state.results, state.unavailable)
    assert job.parameters["tables"] == ["w.csv"] and list(job.files) == ["_runs/site/w.csv"]
    table.write_text("x,y\n1,1\n")  # cut short
    again, _, why = plan.plan(book_, writer, state.results, state.unavailable)
    assert (
        isinstance(again, Job) and why == "_runs/site/w.csv has 1 rows where its manifest records 3"
    )
    # build() is the composition: the writer redone, the collector run, no site asked for.
    done = book_runner.build(book_runner.open_book(root), progress=False, site=False)
    assert {k: (r.status, r.redone[:17]) for k, r in done.state.results.items()} == {
        "site/w": ("ok", "_runs/site/w.csv "),
        "site/total": ("ok", ""),
    }
    assert done.site is None and table.read_text() == "x,y\n1,1\n2,4\n3,9\n"


def test_the_runner_modules_are_small_and_build_reads_as_the_pipeline():
    """Each step is a module under 800 lines; build() calls run_all (plan, execute, verify)
    and then render, nothing else of substance."""
    import ast
    import inspect

    for name in ("runner", "plan", "schedule", "manifest", "render", "execute", "pool"):
        lines = (PACKAGE / "book" / f"{name}.py").read_text().count("\n")
        assert lines < 800, (name, lines)
    tree = ast.parse(textwrap.dedent(inspect.getsource(book_runner.build)))
    called = [
        n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and hasattr(n.func, "id")
    ]
    assert {"run_all", "render"} <= set(called)
