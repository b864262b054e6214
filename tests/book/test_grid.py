"""The run grid (hessinit.book.grid): book/grid.yml expanded into runs, and the code hash."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hessinit.book import grid as book_grid

ROOT = Path(__file__).resolve().parents[2]


def _grid(tmp_path, text):
    path = tmp_path / "grid.yml"
    path.write_text(text)
    return path


def test_grid_expands_over_datasets_and_a_log_grid_of_sds():
    runs = book_grid.read_grid(ROOT / "book" / "grid.yml")
    sweep = [r for r in runs if r.notebook == "sd_run"]
    sds = sorted(r.parameters["sd"] for r in sweep)
    assert len(sds) >= 9 and sds[0] == pytest.approx(1e-5) and sds[-1] == pytest.approx(10)
    assert {r.parameters["dataset"] for r in runs if r.dataset} == {"mnist-5k"}
    two = book_grid.read_grid(ROOT / "book" / "grid.yml", datasets=["mnist-5k", "svhn"], small=True)
    assert {r.id for r in two} >= {"site/original/svhn", "site/original/mnist-5k"}
    small = [r for r in two if r.notebook == "original"][0].parameters
    assert small["steps"] < runs[1].parameters["steps"]
    assert small["table"] == "mnist-5k.csv"


def test_collecting_entries_get_no_table_and_keep_their_inputs(tmp_path):
    path = _grid(
        tmp_path,
        "datasets: [a, b]\n"
        "runs:\n"
        "  - {notebook: one, output: 'x/{dataset}.ipynb', inputs: [data/f.csv]}\n"
        "  - {notebook: all, output: site/all.ipynb, collect: [one, two]}\n",
    )
    runs = book_grid.read_grid(path)
    assert [r.id for r in runs] == ["x/a", "x/b", "site/all"]
    assert runs[0].parameters == {"dataset": "a", "table": "a.csv"} and runs[0].dataset == "a"
    assert runs[0].files == ["data/f.csv"]
    assert runs[2].parameters == {} and runs[2].collect == ["one", "two"]
    assert book_grid.collected_names(runs[2].collect) == ["one", "two"]


def test_two_runs_writing_one_output_are_an_error(tmp_path):
    path = _grid(tmp_path, "runs: [{notebook: a, output: x.ipynb}, {notebook: b, output: x.ipynb}]")
    with pytest.raises(ValueError, match="same output"):
        book_grid.read_grid(path)


def test_small_overrides_may_replace_the_sd_list(tmp_path):
    path = _grid(
        tmp_path,
        "runs:\n"
        "  - notebook: sd_run\n"
        "    output: 'sweep/sd-{sd}.ipynb'\n"
        "    sd: {logspace: [-5, 1, 13]}\n"
        "    small: {sd: [1.0e-5, 10.0]}\n",
    )
    assert len(book_grid.read_grid(path)) == 13
    small = book_grid.read_grid(path, small=True)
    assert [r.id for r in small] == ["sweep/sd-1e-05", "sweep/sd-10"]
    assert [r.parameters["sd"] for r in small] == [1e-5, 10.0]


def test_package_hash_covers_every_module_of_the_package():
    package = Path(book_grid.__file__).resolve().parents[1]
    assert len(list(package.rglob("*.py"))) > 20  # subpackages included, not just hessinit/*.py
    assert len(book_grid.package_hash()) == 64


def test_a_one_point_log_grid_and_time_limits(tmp_path):
    path = _grid(
        tmp_path,
        "timeout: 120\n"
        "runs:\n"
        "  - {notebook: a, output: 'a-{sd}.ipynb', sd: {logspace: [-2, -2, 1]}, timeout: 5}\n"
        "  - {notebook: b, output: b.ipynb}\n",
    )
    a, b = book_grid.read_grid(path)
    assert a.id == "a-0.01" and a.parameters["sd"] == 0.01
    assert (a.timeout, b.timeout) == (5.0, 120.0)
    assert book_grid.read_grid(_grid(tmp_path, "runs: [{notebook: b, output: b.ipynb}]"))[
        0
    ].timeout == pytest.approx(book_grid.TIMEOUT)
    with pytest.raises(ValueError, match="entry b: timeout must be a positive number.*'soon'"):
        book_grid.read_grid(
            _grid(tmp_path, "runs: [{notebook: b, output: b.ipynb, timeout: soon}]")
        )


def test_the_performance_run_declares_every_benchmark_table_it_shows():
    # A run sees only the files its entry lists under `inputs:` (hessinit.book.execute); a
    # benchmark table added to benchmarks/results/ but not listed fails the performance page.
    entry = next(
        e
        for e in yaml.safe_load((ROOT / "book" / "grid.yml").read_text())["runs"]
        if e["notebook"] == "performance"
    )
    tables = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "benchmarks" / "results").glob("*.csv")
    }
    assert tables <= set(entry["inputs"])


def test_a_parallel_build_starts_the_costliest_ready_runs_first(tmp_path):
    """grid.yml's `seconds:` hints order the runs; a run's last record replaces its hint."""
    import json

    from hessinit.book.manifest import record_path
    from hessinit.book.schedule import longest_first

    runs = book_grid.read_grid(ROOT / "book" / "grid.yml")
    hinted = sorted({(r.notebook, r.seconds) for r in runs if r.seconds}, key=lambda t: -t[1])
    assert hinted[0][0] == "cnn"  # the costliest chapter at full size (README: cold build)
    order = [r.notebook for r in longest_first(runs, tmp_path)]
    assert order[0] == "cnn"
    assert order.index("cnn_training") < order.index("original") < order.index("chain_rule")
    # runs without a hint keep the grid's order, after the hinted ones
    plain = [r.id for r in runs if not r.seconds]
    assert [r.id for r in longest_first(runs, tmp_path) if not r.seconds] == plain
    # a record of an earlier build wins over the hint
    chain = next(r for r in runs if r.notebook == "chain_rule")
    path = record_path(tmp_path, chain)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"id": chain.id, "seconds": 10_000.0}))
    assert longest_first(runs, tmp_path)[0] is chain
