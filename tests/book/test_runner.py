"""The papermill runner and the site build (hessinit.book.runner), on a small copy of the book.

The slow part executes every notebook at ``--small`` size into a temporary copy of the book and
builds it once, API reference included (a few minutes on 2 cores); later tests reuse that copy.
The test that breaks a run comes last, since it changes the copy.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import yaml

from hessinit.book import cli as book_cli
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


def test_toc_keeps_only_pages_that_exist(tmp_path):
    shutil.copy(ROOT / "_toc.yml", tmp_path)
    shutil.copy(ROOT / "_config.yml", tmp_path)
    shutil.copytree(ROOT / "book", tmp_path / "book")
    (tmp_path / "_runs" / "site" / "original").mkdir(parents=True)
    (tmp_path / "_runs" / "site" / "original" / "mnist.ipynb").write_text("{}")
    (tmp_path / "_runs" / "site" / "original" / ".x.partial.ipynb").write_text("{}")
    toc = yaml.safe_load(book_runner.Runner(tmp_path).write_toc().read_text())
    files = [c["file"] for p in toc["parts"] for c in p["chapters"]]
    assert files == ["_runs/site/original/mnist", "book/api", "book/bibliography"]
    assert toc["root"] == "book/intro"


def test_the_files_a_run_reads_are_part_of_its_key(tmp_path):
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, tmp_path)
    shutil.copytree(ROOT / "book", tmp_path / "book")
    shutil.copytree(ROOT / "benchmarks" / "results", tmp_path / "benchmarks" / "results")
    runner = book_runner.Runner(tmp_path)
    run = next(r for r in runner.runs if r.notebook == "performance")
    assert run.files == ["benchmarks/results/hessian_norms.csv", "benchmarks/results/tracking.csv"]
    before = runner.key(run)
    with open(tmp_path / run.files[1], "a") as f:
        f.write("\n")
    assert runner.key(run) != before


# --------------------------------------------------------------------------------------------
# Execute everything at a small size, build, inspect the site (slow)
# --------------------------------------------------------------------------------------------


# small_book (tests/book/conftest.py): the book executed at --small and built, once per session.


def _args(root, *extra):
    import argparse

    parser = argparse.ArgumentParser()
    book_cli.add_arguments(parser)
    return parser.parse_args(["--root", str(root), "--small", *extra])


def _html(root, page):
    return (root / "_build" / "html" / "_runs" / "site" / f"{page}.html").read_text()


def test_small_book_runs_and_builds_without_warnings(small_book):
    root, code = small_book
    assert code == 0
    records = [json.loads(p.read_text()) for p in (root / "_runs" / "records").glob("*.json")]
    assert records and all(r["status"] == "ok" for r in records)
    assert (root / "_runs" / "site" / "original" / "mnist-5k.csv").exists()
    assert len(list((root / "_runs" / "sweep" / "mnist-5k").glob("*.csv"))) == 3
    assert not list(root.rglob(".*.partial.ipynb"))


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
        for link in links:
            owner_repo_blob, path = link.split("/blob/main/", 1)
            assert owner_repo_blob == "hessinit/hessinit"
            assert (ROOT / path).is_file(), f"{page}: Colab link to missing {path}"
    # The numbers in the text come from glue, never a placeholder.
    assert "glue" not in _html(root, "sd_sweep").split("Over ", 1)[1][:300]


def test_a_second_run_skips_everything(small_book):
    root, _ = small_book
    runner = book_runner.Runner(root, small=True)
    results = runner.run_all(progress=False)
    assert {r.status for r in results.values()} == {"skipped"}, results
    # The code is part of the key: any change to hessinit/*.py reruns every run.
    runner.code_hash = "changed"
    assert all(runner.key(r) != runner.read_record(r)["key"] for r in runner.runs[:2])


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


def test_failing_run_and_unavailable_dataset_are_reported(small_book, monkeypatch, capsys):
    root, _ = small_book
    monkeypatch.setenv("KERAS_HOME", str(root / "empty-keras-home"))
    grid = yaml.safe_load((root / "book" / "grid.yml").read_text())
    grid["runs"][0]["small"]["n"] = -1  # chain_rule: data.load raises ValueError
    (root / "book" / "grid-broken.yml").write_text(yaml.safe_dump(grid))
    code = book_cli.main(
        _args(root, "--grid", str(root / "book" / "grid-broken.yml"), "--datasets", "mnist-5k",
              "cifar10")
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 1
    assert "FAILED site/chain_rule" in out.err and "ValueError" in out.err
    assert "dataset cifar10 unavailable" in out.out
    records = {p.stem: json.loads(p.read_text()) for p in (root / "_runs" / "records").glob("*")}
    assert records["site__original__cifar10"]["status"] == "unavailable"
    assert records["site__chain_rule"]["status"] == "failed"
    # The failed run left no page, the unavailable dataset has none, the others are intact.
    assert not (root / "_runs" / "site" / "chain_rule.ipynb").exists()
    assert (root / "_runs" / "failed" / "site__chain_rule.ipynb").exists()
    assert not (root / "_runs" / "site" / "original" / "cifar10.ipynb").exists()
    assert (root / "_runs" / "site" / "original" / "mnist-5k.ipynb").exists()
    toc = (root / "_runs" / "_toc.yml").read_text()
    assert "cifar10" not in toc and "chain_rule" not in toc and "mnist-5k" in toc
    assert (root / "_build" / "html" / "_runs" / "site" / "sd_sweep.html").exists()
    assert not (root / "_build" / "html" / "_runs" / "site" / "chain_rule.html").exists()
