"""The grid on Dask (hessinit.book.pool.DaskPool): a real scheduler and two workers on localhost.

The scheduler and workers are separate ``dask`` processes on random ports, sharing no folder
with the client but the package. One run of the small book (a point of the sd sweep:
TensorFlow training and exact Hessians) and a tiny collector of its table are built through
them while the worker running the sweep point is killed in the middle of its TensorFlow run;
its table must equal the one the serial build of the small book (the ``small_book`` fixture)
wrote, to the last digit. So the suite executes that notebook once more, not the whole book.
Tiny synthetic books (plain-Python notebooks) cover what the small book cannot: a worker with
other code, thread settings, and Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime

import nbformat
import numpy as np
import pytest
import tiny_books
import yaml
from conftest import default_sigint

from hessinit.book import runner as book_runner

#: A scheduler, two workers, one run of the small book and a few tiny ones, once the session's
#: serial build of the small book exists.
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
"""

#: The small book's run whose worker is killed: one point of the sd sweep (TensorFlow training
#: and exact Hessians), whose table the sweep's collector reads.
KILLED = "sweep/mnist-5k/sd-0.01"


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
    return tiny_books.make_book(root, {"scaled": SCALED}, GRID)


def _kill_the_worker_running(address, run_id, timeout=300):
    """SIGKILL the worker running ``run_id`` once its kernel has loaded TensorFlow.

    The worker process goes first, so that it cannot report its kernel's death as the run's
    failure; then its children (the kernel), as on a machine that went down. The worker's
    nanny starts a new worker process, as it would after a crash.

    Returns:
        tuple[int, float]: The killed worker's pid and the time of the kill (``time.time``).
    """
    import psutil
    from distributed import Client

    def running(client):
        return [
            w
            for w, keys in client.processing().items()
            if any(k.startswith(f"hessinit-run-{run_id}-") for k in keys)
        ]

    def tensorflow_loaded(proc):
        try:
            return any("tensorflow" in m.path for m in proc.memory_maps())
        except psutil.Error:
            return False

    with Client(scheduler_file=str(address), timeout="30s") as client:
        deadline = time.monotonic() + timeout
        while not (busy := running(client)):
            assert time.monotonic() < deadline, f"{run_id} never started"
            time.sleep(0.2)
        worker = psutil.Process(client.run(os.getpid, workers=busy)[busy[0]])
        while not any(tensorflow_loaded(k) for k in worker.children(recursive=True)):
            assert running(client) == busy, f"{run_id} ended before its kernel loaded TensorFlow"
            assert time.monotonic() < deadline, f"{run_id}: no kernel with TensorFlow"
            time.sleep(0.2)
        kernels = worker.children(recursive=True)
        worker.kill()
        killed = time.time()
        for kernel in kernels:
            try:
                kernel.kill()
            except psutil.NoSuchProcess:
                pass
    return worker.pid, killed


def _copy_book(source, root):
    """Copy what a build reads (grid, notebooks, configuration, benchmark tables) to ``root``."""
    root.mkdir()
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(source / name, root / name)
    for folder in ("book", "benchmarks/results"):
        shutil.copytree(source / folder, root / folder)
    return root


#: runs.csv (the reproducibility page's table of the run records) holds each run's wall-clock
#: time and the time it finished: measurements of the build, different in any two builds.
TIMES = {"site/runs.csv": ["seconds", "finished"]}


def _tables(root):
    """``{path under _runs: frame}`` of every CSV of a build, its build times left out."""
    import pandas as pd

    tables = {}
    for path in sorted((root / "_runs").rglob("*.csv")):
        rel = path.relative_to(root / "_runs").as_posix()
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)  # the text, every digit
        tables[rel] = frame.drop(columns=TIMES.get(rel, []))
    return tables


def _finished(record):
    return datetime.strptime(record["finished"], "%Y-%m-%d %H:%M:%S").timestamp()


#: A collector of one table: copies it to ``total.csv``.
COPIER = ["tables = []", "import shutil\n(table,) = tables\nshutil.copy(table, 'total.csv')"]


def _one_run_of_the_small_book(source, root):
    """A copy of the book at ``source`` whose grid is :data:`KILLED` and a tiny collector of it.

    The sd_run entry keeps the small book's parameters, with only the sd of :data:`KILLED` at
    the small size, so the run is the small book's run of that id.
    """
    _copy_book(source, root)
    grid = yaml.safe_load((root / "book" / "grid.yml").read_text())
    (entry,) = [e for e in grid["runs"] if e["notebook"] == "sd_run"]
    entry["small"]["sd"] = [float(KILLED.rsplit("sd-", 1)[1])]
    total = {"notebook": "collector", "output": "site/total.ipynb", "collect": "sd_run"}
    grid["runs"] = [entry, total]
    (root / "book" / "grid.yml").write_text(yaml.safe_dump(grid))
    nbformat.write(tiny_books.notebook(COPIER), root / "book" / "collector.ipynb")
    return root


def test_a_run_of_the_small_book_on_two_workers_survives_a_killed_worker_and_equals_the_serial(
    tmp_path, scheduler, small_book
):
    serial, code = small_book
    assert code == 0
    root = _one_run_of_the_small_book(serial, tmp_path / "book")
    # TensorFlow splits a sum among its threads, so their number changes the last digits (the
    # chain_rule table with one thread per run differs from the serial one in 9 cells by up to
    # 4e-15, relatively). The serial kernel runs TensorFlow's default, a thread per schedulable
    # core: the same number here, for both (the worker's kernel gets exactly these settings).
    threads = len(os.sched_getaffinity(0))
    cmd = [sys.executable, "-m", "hessinit", "book", "--root", str(root), "--small",
           "--no-build", "--scheduler", str(scheduler), "--threads", str(threads)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        killed, kill_time = _kill_the_worker_running(scheduler, KILLED)
        out, err = proc.communicate(timeout=1200)
    finally:
        proc.kill()
    runner = book_runner.Runner(root, small=True)
    assert [r.id for r in runner.runs] == [KILLED, "site/total"]
    assert proc.returncode == 0, out + err
    assert "Dask dashboard: http://127.0.0.1:" in err
    assert "runs: 2 ok" in out
    records = {r.id: runner.read_record(r) for r in runner.runs}
    assert {r["status"] for r in records.values()} == {"ok"}

    # The killed run was executed again, on another worker process, after the kill.
    assert not records[KILLED]["worker"].endswith(f":{killed}")
    assert _finished(records[KILLED]) >= kill_time - 1

    # The run's parameters and every table it wrote are the serial build's, to the last digit.
    serial_runner = book_runner.Runner(serial, small=True)
    (reference_run,) = [r for r in serial_runner.runs if r.id == KILLED]
    assert records[KILLED]["parameters"] == reference_run.parameters
    dask, reference = _tables(root), _tables(serial)
    ours = sorted(rel for rel in dask if rel.startswith("sweep/"))
    assert ours and all(rel in reference for rel in ours), (ours, sorted(reference))
    differ = [rel for rel in ours if not dask[rel].equals(reference[rel])]
    assert not differ, {rel: _first_difference(dask[rel], reference[rel]) for rel in differ}

    # The collecting run started after the run it collects had finished: its start (finished
    # minus its time) is not before, up to the records' rounding to whole seconds; and it read
    # the table that run wrote.
    start = _finished(records["site/total"]) - records["site/total"]["seconds"]
    assert start + 1.1 >= _finished(records[KILLED])
    assert dask["site/total.csv"].equals(dask[f"{KILLED}.csv"])

    # Nothing changed: a second build submits nothing.
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "runs: 2 skipped" in again.stdout, again.stdout


def _first_difference(a, b):
    """The first cell where two frames of strings differ, for an assertion message."""
    if a.shape != b.shape or list(a.columns) != list(b.columns):
        return f"shapes {a.shape} and {b.shape}, columns {list(a.columns)} and {list(b.columns)}"
    rows, cols = (a != b).to_numpy().nonzero()
    i, j = rows[0], cols[0]
    where = (
        f"{len(rows)} cells, first row {i}, column {a.columns[j]}: {a.iat[i, j]} != {b.iat[i, j]}"
    )
    try:
        x, y = a.to_numpy()[rows, cols].astype(float), b.to_numpy()[rows, cols].astype(float)
    except ValueError:
        return where
    with np.errstate(divide="ignore", invalid="ignore"):
        return f"{where}; largest relative difference {np.nanmax(np.abs(x - y) / np.abs(y)):.2g}"


def test_a_worker_with_other_code_stops_the_build_with_a_clear_error(tmp_path, scheduler, capsys):
    from hessinit.book.execute import CodeMismatchError
    from hessinit.book.pool import DaskPool

    root = _book(tmp_path)
    runner = book_runner.Runner(root, only=["site/s-1"])
    runner.code_hash = "0" * 64  # as if the client ran another checkout
    with pytest.raises(CodeMismatchError, match="install the same checkout on every worker"):
        runner.run_all(progress=False, pool=DaskPool(scheduler=scheduler))


#: Writes the value of each environment variable in ``names`` ("unset" if it is not set).
ENVIRONMENT = [
    "names = []\ntable = 'out.csv'",
    "import os\n"
    "rows = ''.join(f'{n},{os.environ.get(n, \"unset\")}\\n' for n in names)\n"
    "with open(table, 'w') as f:\n"
    "    f.write('name,value\\n' + rows)",
]


def test_a_run_on_a_worker_gets_the_clients_thread_settings_not_the_workers(scheduler):
    # A nanny starts its worker with OMP_NUM_THREADS, MKL_NUM_THREADS and OPENBLAS_NUM_THREADS
    # set to 1; a kernel that inherited them would add in another order than the serial one.
    import nbformat

    from hessinit.book.execute import THREAD_VARIABLES, Job
    from hessinit.book.pool import DaskPool, SerialPool

    client = dict.fromkeys(THREAD_VARIABLES) | {"OMP_NUM_THREADS": "3"}
    job = Job("site/env", "env", nbformat.writes(tiny_books.notebook(ENVIRONMENT)),
              "site/env.ipynb", {"names": list(THREAD_VARIABLES), "table": "env.csv"},
              timeout=120, environment=client)  # fmt: skip
    outcomes = {}
    for name, pool in (("serial", SerialPool()), ("dask", DaskPool(scheduler=scheduler))):
        with pool:
            pool.submit(job)
            outcomes[name] = pool.next_done()[1]
    assert outcomes["dask"].status == "ok", outcomes["dask"].error
    assert outcomes["dask"].worker != outcomes["serial"].worker
    expected = "".join(f"{n},{client[n] or 'unset'}\n" for n in THREAD_VARIABLES)
    assert outcomes["dask"].files == outcomes["serial"].files
    assert outcomes["dask"].files["site/env.csv"].decode() == "name,value\n" + expected


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


def _install_after(barrier, prefix, errors):
    from hessinit.book.execute import _install_kernel

    barrier.wait()
    try:
        _install_kernel(prefix)
    except Exception as err:  # noqa: BLE001 - reported to the test
        errors.put(f"{type(err).__name__}: {err}")


def test_workers_starting_together_on_a_fresh_environment_install_one_kernel(tmp_path):
    # ipykernel's own install, four at once like this, failed in 2 of 10 tries here (it deletes the
    # destination, then copies into it): a worker's first run would stop the whole build.
    import json
    import multiprocessing

    import ipykernel.kernelspec  # noqa: F401 - imported once, before the forks

    from hessinit.book.execute import _install_kernel  # noqa: F401

    ctx = multiprocessing.get_context("fork")
    for attempt in range(10):
        prefix = tmp_path / str(attempt)
        barrier, errors = ctx.Barrier(4), ctx.Queue()
        procs = [
            ctx.Process(target=_install_after, args=(barrier, prefix, errors)) for _ in range(4)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=60)
        assert [proc.exitcode for proc in procs] == [0] * 4
        assert errors.empty(), errors.get()
        kernels = prefix / "share" / "jupyter" / "kernels"
        assert [p.name for p in kernels.iterdir()] == ["hessinit"]  # no staging folder left
        spec = json.loads((kernels / "hessinit" / "kernel.json").read_text())
        assert spec["argv"][0] == sys.executable and "{connection_file}" in spec["argv"]
