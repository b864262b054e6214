"""The grid on Dask (hessinit.book.pool.DaskPool): a real scheduler and two workers on localhost.

The scheduler and workers are separate ``dask`` processes on random ports, sharing no folder
with the client but the package. The grid is a tiny synthetic one (plain-Python notebooks), so
the file takes well under two minutes; a worker is killed while it runs a job, and the tables
must equal those of a serial build.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import tiny_books
from conftest import default_sigint

from hessinit.book import cli as book_cli

ROOT = Path(__file__).resolve().parents[2]

#: A scheduler, two workers and a dozen kernels: about a minute on an idle 2-core machine.
pytestmark = pytest.mark.slow

#: Writes ``y = sd * x`` after ``sleep`` seconds: each run's table differs.
SCALED = [
    "x = [1, 2, 3]\nsd = 1.0\nsleep = 0.0\ntable = 'out.csv'",
    textwrap.dedent(
        """\
        import time
        time.sleep(sleep)
        with open(table, "w") as f:
            f.write("x,y\\n" + "".join(f"{v},{sd * v:g}\\n" for v in x))
        """
    ),
]
GRID = """\
    runs:
      - {notebook: scaled, output: 'site/s-{sd}.ipynb', sd: [1, 2, 3]}
      - {notebook: scaled, output: 'site/slow-{sd}.ipynb', sd: [10], parameters: {sleep: 8}}
      - {notebook: collector, output: site/total.ipynb, collect: scaled}
"""


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """A ``dask scheduler`` and two ``dask worker`` processes; yields the scheduler file."""
    tmp = tmp_path_factory.mktemp("dask")
    address = tmp / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    log = open(tmp / "dask.log", "w")  # noqa: SIM115 - closed below
    procs = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(address)],
            stdout=log, stderr=log, cwd=tmp,
        )
    ]  # fmt: skip
    deadline = time.monotonic() + 60
    while not address.exists():
        assert time.monotonic() < deadline, (tmp / "dask.log").read_text()
        time.sleep(0.2)
    for name in ("w1", "w2"):
        procs.append(
            subprocess.Popen(
                [*dask, "worker", "--scheduler-file", str(address), "--nthreads", "1",
                 "--nworkers", "1", "--no-dashboard", "--name", name],
                stdout=log, stderr=log, cwd=tmp,
            )
        )  # fmt: skip
    from distributed import Client

    with Client(scheduler_file=str(address), timeout="60s") as client:
        client.wait_for_workers(2, timeout=90)
    yield address
    for proc in reversed(procs):
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    log.close()


def _book(root):
    notebooks = {"scaled": SCALED, "collector": tiny_books.COLLECTOR}
    return tiny_books.make_book(root, notebooks, GRID)


def _kill_the_worker_running(address, run_id, timeout=60):
    """SIGKILL the worker process that is running the run ``run_id``; return its pid."""
    from distributed import Client

    with Client(scheduler_file=str(address), timeout="30s") as client:
        deadline = time.monotonic() + timeout
        while True:
            busy = [
                w
                for w, keys in client.processing().items()
                if any(k.startswith(f"hessinit-run-{run_id}-") for k in keys)
            ]
            if busy:
                break
            assert time.monotonic() < deadline, f"{run_id} never started"
            time.sleep(0.2)
        time.sleep(2)  # well into the run
        pid = client.run(os.getpid, workers=busy)[busy[0]]
    os.kill(pid, signal.SIGKILL)
    return pid


def test_a_build_on_two_workers_survives_a_killed_worker_and_equals_a_serial_build(
    tmp_path, scheduler
):
    serial = _book(tmp_path / "serial")
    assert book_cli.main(tiny_books.args(serial)) == 0

    root = _book(tmp_path / "dask")
    cmd = [sys.executable, "-m", "hessinit", "book", "--root", str(root), "--no-build",
           "--scheduler", str(scheduler)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    killed = _kill_the_worker_running(scheduler, "site/slow-10")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert "Dask dashboard: http://127.0.0.1:" in err
    assert "runs: 5 ok" in out
    assert tiny_books.csvs(root) == tiny_books.csvs(serial)
    assert (root / "_runs" / "site" / "total.csv").read_text().count("\n") == 1 + 4 * 3
    records = {
        p.stem: json.loads(p.read_text()) for p in (root / "_runs" / "records").glob("*.json")
    }
    assert {r["status"] for r in records.values()} == {"ok"}
    assert not records["site__slow-10"]["worker"].endswith(f":{killed}")  # rerun elsewhere
    # The collector ran after what it collects.
    assert records["site__total"]["finished"] >= records["site__slow-10"]["finished"]

    # Nothing changed: a second build submits nothing.
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "runs: 5 skipped" in again.stdout, again.stderr


def test_a_worker_with_other_code_stops_the_build_with_a_clear_error(tmp_path, scheduler, capsys):
    from hessinit.book import runner as book_runner
    from hessinit.book.execute import CodeMismatchError
    from hessinit.book.pool import DaskPool

    root = _book(tmp_path)
    runner = book_runner.Runner(root, only=["site/s-1"])
    runner.code_hash = "0" * 64  # as if the client ran another checkout
    with pytest.raises(CodeMismatchError, match="install the same checkout on every worker"):
        runner.run_all(progress=False, pool=DaskPool(scheduler=scheduler))


def test_ctrl_c_cancels_the_runs_on_the_cluster_and_says_what_a_rerun_redoes(tmp_path, scheduler):
    grid = """\
        runs:
          - {notebook: scaled, output: site/a.ipynb}
          - {notebook: scaled, output: site/b.ipynb, parameters: {sleep: 30}}
    """
    root = tiny_books.make_book(tmp_path, {"scaled": SCALED}, grid)
    cmd = [sys.executable, "-m", "hessinit", "book", "--root", str(root), "--no-build",
           "--scheduler", str(scheduler)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=default_sigint)  # fmt: skip
    deadline = time.monotonic() + 60
    while not (root / "_runs" / "records" / "site__a.json").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "interrupted: 1 of 2 runs finished" in err and "redoes 1: site/b" in err
    assert not (root / "_runs" / "records" / "site__b.json").exists()
