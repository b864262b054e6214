"""Benchmark: throughput of the book's runner in this process and on a local Dask cluster.

Part 1, a synthetic grid: ``--runs`` tiny notebooks (plain Python, a table of three rows, no
TensorFlow), so the time is the runner's own cost per run: starting a kernel, papermill,
shipping the notebook and its table to and from a worker, writing them. It is built cold, in a
fresh temporary book each time, by the serial runner (``workers = 0``) and by ``--jobs W`` for
each W of ``--workers``; throughput is runs per minute of wall time, the Dask cluster's start
included.

Part 2 (``--book default`` or ``--book small``): the book itself (TensorFlow in every run),
cold, in a temporary copy, with ``--jobs 1`` and ``--jobs 2``: every run and then the HTML site,
as ``python -m hessinit book`` does it (``small``: at ``--small`` size, runs only).

    python benchmarks/scaling.py                          # 100 synthetic runs: serial, 1, 2 workers
    python benchmarks/scaling.py --runs 0 --book default  # the default book only

Each part rewrites its own rows of the CSV and keeps the other part's.

The machine's load average (1 minute) is recorded before and after each measurement, since on
a shared machine it decides the numbers as much as the code does. Writes
benchmarks/results/scaling.csv with columns benchmark, workers, runs, seconds, runs_per_minute,
load_before, load_after, cores, note.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nbformat

from hessinit.book.pool import DaskPool
from hessinit.book.runner import Runner

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = (
    "benchmark", "workers", "runs", "seconds", "runs_per_minute", "load_before", "load_after",
    "cores", "note",
)  # fmt: skip

TINY = nbformat.v4.new_notebook(
    cells=[
        nbformat.v4.new_code_cell("sd = 1.0\ntable = 'out.csv'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            textwrap.dedent(
                """\
                with open(table, "w") as f:
                    f.write("x,y\\n" + "".join(f"{v},{sd * v:g}\\n" for v in (1, 2, 3)))
                """
            )
        ),
    ],
    metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
)


def _load():
    return round(os.getloadavg()[0], 2)


def _synthetic(root, runs):
    (root / "book").mkdir(parents=True)
    nbformat.write(TINY, root / "book" / "tiny.ipynb")
    sds = ", ".join(str(k + 1) for k in range(runs))
    (root / "book" / "grid.yml").write_text(
        f"runs:\n  - {{notebook: tiny, output: 'tiny/r-{{sd}}.ipynb', sd: [{sds}]}}\n"
    )
    (root / "_config.yml").write_text(
        "title: tiny\nrepository: {url: https://github.com/hessinit/hessinit, branch: main}\n"
    )
    return root


def synthetic(runs, workers):
    """Build a fresh synthetic grid of ``runs`` runs; 0 workers: the serial runner."""
    with tempfile.TemporaryDirectory(prefix="hessinit-scaling-") as tmp:
        root = _synthetic(Path(tmp), runs)
        runner = Runner(root)
        pool = DaskPool(jobs=workers) if workers else None
        before = _load()
        start = time.perf_counter()
        results = runner.run_all(progress=False, pool=pool)
        seconds = time.perf_counter() - start
        ok = sum(r.status == "ok" for r in results.values())
    note = "in this process" if not workers else f"local Dask cluster of {workers} processes"
    if ok != runs:
        note += f"; only {ok} of {runs} ok"
    return _row("synthetic", workers, runs, seconds, before, note)


def book(size, workers):
    """Cold build of the book in a temporary copy with ``--jobs``; ``small``: runs only."""
    with tempfile.TemporaryDirectory(prefix="hessinit-scaling-book-") as tmp:
        root = Path(tmp)
        for name in ("_config.yml", "_toc.yml"):
            shutil.copy(ROOT / name, root)
        shutil.copytree(ROOT / "book", root / "book")
        shutil.copytree(ROOT / "benchmarks" / "results", root / "benchmarks" / "results")
        runs = len(Runner(root, small=size == "small").runs)
        flags = ["--small", "--no-build"] if size == "small" else []
        cmd = [sys.executable, "-m", "hessinit", "book", "--root", str(root), *flags,
               "--jobs", str(workers)]  # fmt: skip
        before = _load()
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - start
    summary = next((ln for ln in proc.stdout.splitlines() if ln.startswith("runs:")), "")
    flags = " ".join(flags) + " " if flags else "runs and site, "
    note = f"{flags}--jobs {workers}: {summary or proc.stderr[-200:]}"
    if proc.returncode:
        note += f" (exit {proc.returncode})"
    return _row(f"{size}_book", workers, runs, seconds, before, note)


def _row(benchmark, workers, runs, seconds, before, note):
    row = {
        "benchmark": benchmark,
        "workers": workers,
        "runs": runs,
        "seconds": round(seconds, 1),
        "runs_per_minute": round(60 * runs / seconds, 1),
        "load_before": before,
        "load_after": _load(),
        "cores": os.cpu_count(),
        "note": note,
    }
    print(", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", type=int, default=100, help="synthetic runs (default 100; 0: skip them)"
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[0, 1, 2],
        help="0 = serial runner, W = --jobs W (default 0 1 2)",
    )  # fmt: skip
    parser.add_argument(
        "--book", choices=("default", "small"),
        help="also build this book cold with --jobs 1 and 2 (default: no book)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS / "scaling.csv")
    args = parser.parse_args(argv)
    rows = [synthetic(args.runs, w) for w in args.workers] if args.runs else []
    if args.book:
        rows += [book(args.book, w) for w in (1, 2)]
    measured = {row["benchmark"] for row in rows}
    if args.out.exists():  # keep the rows of the part not measured now
        with open(args.out, newline="") as f:
            kept = [r for r in csv.DictReader(f) if r["benchmark"] not in measured]
        rows = kept + rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
