"""The runner's **execute** step: every run planned in dependency order, executed, recorded.

:func:`run_all` takes the runs of a :class:`hessinit.book.plan.Book` in grid order; each run
whose dependencies have results is planned (:func:`hessinit.book.plan.plan`); a run that is
not executed is settled at once (:func:`settle`), a job goes to a pool
(:mod:`hessinit.book.pool`: this process, or a Dask cluster). What comes back is written under
``_runs/`` by this process alone (:func:`record`): the run's files and its executed notebook,
each atomically, then its record, last, with the manifest of those outputs, then verified
(:func:`hessinit.book.manifest.verify`). Every outcome is recorded, so an old record never
outlives a newer outcome. A Ctrl-C cancels what is executing; a rerun redoes the rest.

Imports: the standard library, :mod:`hessinit.book.plan`, :mod:`hessinit.book.manifest`,
:mod:`hessinit.book.pool` and :func:`hessinit.book.page.decorate`; nbformat and tqdm when runs
are executed.
"""

from __future__ import annotations

import gc
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .manifest import (
    failed_path,
    fingerprint,
    read_record,
    remove_outputs,
    verify,
    write_atomic,
    write_record,
)
from .page import decorate
from .plan import Result, dependencies, plan
from .pool import SerialPool


@dataclass
class State:
    """What a build has learnt so far.

    Attributes:
        results: What became of each run, by id, once planned or executed.
        unavailable: The datasets that could not be loaded, with the error.
        interrupted: Whether :func:`run_all` stopped at a Ctrl-C.
    """

    results: dict = field(default_factory=dict)
    unavailable: dict = field(default_factory=dict)
    interrupted: bool = False


def pending(book, state):
    """The ids of the runs without a result yet: what a rerun will do."""
    return [r.id for r in book.runs if r.id not in state.results]


def _write_record(book, run, key, result, worker="", outputs=None):
    return write_record(
        book.runs_dir, run, key, result, code_hash=book.code_hash, small=book.small,
        worker=worker, outputs=outputs,
    )  # fmt: skip


def record(book, state, run, key, outcome):
    """Write what a job returned under ``_runs/``, then its record; return its Result.

    The files first, then the executed notebook (with its parameters table and Colab badge),
    each atomically, then the record with the manifest of what was written, then
    :func:`hessinit.book.manifest.verify`: a run whose outputs do not read back as written
    failed. A failed run's outputs are removed and its partly executed notebook kept under
    ``_runs/failed/``. An ``unavailable`` outcome marks its dataset in ``state``.
    """
    runs_dir = book.runs_dir
    result = Result(run.id, outcome.status, outcome.seconds, outcome.error)
    manifest = {}
    if outcome.status == "ok":
        import nbformat

        try:
            nb = nbformat.reads(outcome.notebook, as_version=4)
            try:
                nb = decorate(nb, run, book.root)
            except Exception as err:  # noqa: BLE001 - a page without its badge still counts
                print(f"warning: {run.id}: no badge and parameters table ({err})", flush=True)
            written = {**outcome.files, run.output: nbformat.writes(nb).encode()}
            for rel, data in written.items():  # the notebook last
                write_atomic(runs_dir / rel, data)
                manifest[rel] = fingerprint(data, Path(rel).suffix)
            failed_path(runs_dir, run).unlink(missing_ok=True)
        except (OSError, ValueError) as err:
            result = Result(run.id, "failed", outcome.seconds, f"{type(err).__name__}: {err}")
    if result.status != "ok":
        manifest = {}
        remove_outputs(runs_dir, run)
        if outcome.notebook:
            write_atomic(failed_path(runs_dir, run), outcome.notebook.encode())
    if result.status == "unavailable" and run.dataset:
        state.unavailable[run.dataset] = result.error
    rec = _write_record(book, run, key, result, outcome.worker, manifest)
    if result.status == "ok" and (problem := verify(runs_dir, run, rec)):
        result = Result(run.id, "failed", outcome.seconds, f"written but {problem}")
        _write_record(book, run, key, result, outcome.worker)
    return result


def settle(book, run, result):
    """Record a run that was not executed (every status but skipped writes its record)."""
    if result.status in ("unavailable", "empty", "failed"):
        remove_outputs(book.runs_dir, run)
    if result.status != "skipped":
        old = (read_record(book.runs_dir, run) or {}) if result.status == "stale" else {}
        # A stale run keeps its key and the manifest of the outputs it still has.
        _write_record(book, run, old.get("key"), result, outputs=old.get("outputs"))
    return result


def longest_first(runs, runs_dir):
    """``runs`` with the costliest first: a parallel build starts them early and ends sooner.

    A run's cost is the wall-clock time its last record gives, else its grid entry's
    ``seconds:`` hint, else 0; ties keep the grid's order. Dependencies still decide when a
    run may start (:func:`execute`); this only orders the runs that are ready together.

    Args:
        runs: The grid's runs (:class:`hessinit.book.grid.Run`), in grid order.
        runs_dir: ``_runs/``, where earlier records are.

    Returns:
        list: The same runs, sorted by decreasing cost (stable).

    Example:
        >>> from hessinit.book.grid import Run
        >>> runs = [Run("a", "a", "a.ipynb", {}, seconds=10), Run("b", "b", "b.ipynb", {}),
        ...         Run("c", "c", "c.ipynb", {}, seconds=300)]
        >>> [r.id for r in longest_first(runs, Path("no-runs-here"))]
        ['c', 'a', 'b']
    """

    def cost(run):
        record = read_record(runs_dir, run) or {}
        return float(record.get("seconds") or run.seconds)

    return sorted(runs, key=cost, reverse=True)


def execute(book, state, pool, bar):
    """Plan each run whose dependencies have results, submit its job, record what finishes.

    Args:
        book: The :class:`hessinit.book.plan.Book`.
        state: The :class:`State` its results go to.
        pool: An open pool (:mod:`hessinit.book.pool`).
        bar: A tqdm bar: one step per run, a line per run that was not skipped.

    Raises:
        ValueError: If runs wait on each other (a cycle in the grid).
    """
    # With several runs at a time, the longest start first; one at a time keeps grid order.
    waiting = longest_first(book.runs, book.runs_dir) if pool.capacity > 1 else list(book.runs)
    by_id = {r.id: r for r in book.runs}
    keys, redone = {}, {}

    def done(run, result):
        result.redone = redone.pop(run.id, "")
        state.results[run.id] = result
        bar.update(1)
        if result.status != "skipped":
            bar.write(f"{result.status:>11}  {run.id}  {result.seconds:.0f} s")

    while waiting or pool.pending():
        for run in list(waiting):
            if pool.pending() >= pool.capacity:
                break
            if not all(i in state.results for i in dependencies(book.runs, run)):
                continue
            waiting.remove(run)
            bar.set_postfix_str(run.id)
            planned, key, why = plan(book, run, state.results, state.unavailable)
            if isinstance(planned, Result):
                done(run, settle(book, run, planned))
                continue
            keys[run.id] = key
            if why:
                redone[run.id] = why
                bar.write(f"{'redo':>11}  {run.id}: {why}")
            pool.submit(planned)
        if pool.pending():
            run_id, outcome = pool.next_done()
            done(by_id[run_id], record(book, state, by_id[run_id], keys.pop(run_id), outcome))
        elif waiting:  # dependencies that can never finish: a cycle in the grid
            raise ValueError(f"runs waiting on each other: {[r.id for r in waiting]}")


def run_all(book, state=None, pool=None, progress=True):
    """Plan, execute and verify every run of the grid, each after the runs it collects.

    Failures do not stop the others. The kernels' start-up messages (and a local Dask
    cluster's) go to ``_runs/kernels.log``. A Ctrl-C cancels what is executing, sets
    ``state.interrupted`` and returns what finished; a rerun redoes the rest.

    Args:
        book: The :class:`hessinit.book.plan.Book`.
        state: The :class:`State` to fill (default: a new one).
        pool: Where jobs execute (:mod:`hessinit.book.pool`); default this process.
        progress: Show a progress bar and a line per executed run.

    Returns:
        State: ``state``.

    Raises:
        hessinit.book.execute.KernelError: If the ``hessinit`` kernel runs another Python.
        hessinit.book.execute.CodeMismatchError: If a worker runs other code.
    """
    from tqdm.std import tqdm  # a terminal's bar, also when called from a notebook

    state = State() if state is None else state
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    book.runs_dir.mkdir(parents=True, exist_ok=True)
    pool = pool or SerialPool()
    with stderr_to(book.runs_dir / "kernels.log") as terminal, pool:
        if pool.dashboard:
            print(f"Dask dashboard: {pool.dashboard}", file=terminal, flush=True)
        bar = tqdm(total=len(book.runs), desc="book runs", unit="run",
                   disable=not progress, file=terminal)  # fmt: skip
        try:
            execute(book, state, pool, bar)
        except KeyboardInterrupt:
            pool.cancel()
            state.interrupted = True
        finally:
            bar.close()
    return state


@contextmanager
def stderr_to(log):
    """Send file descriptor 2 to the file ``log`` (appended) and yield the terminal's stderr.

    The kernels inherit file descriptor 2: their start-up chatter (TensorFlow, ZMQ) goes to the
    log, and the terminal is kept for the progress bar. Restored on leaving.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    terminal = os.fdopen(os.dup(saved), "w")
    try:
        with open(log, "a") as out:
            os.dup2(out.fileno(), 2)
            try:
                yield terminal
            finally:
                # An interrupted kernel client can leave an asyncio task whose error nobody
                # read (DeadKernelError); its traceback is printed when the task is collected:
                # collect it now, into the log, not onto the terminal after the summary.
                gc.collect()
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)
        terminal.close()
