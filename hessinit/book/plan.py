"""The runner's **plan** step: what to do with one run of the grid, given what came before.

A :class:`Book` is the build's settings and its grid; :func:`plan` takes one run, whose
dependencies (:func:`dependencies`) already have results, and returns either a
:class:`Result` at once (``skipped`` when its record holds the same key, :func:`run_key`, and
its outputs verify, :func:`hessinit.book.manifest.verify`; ``stale``, ``unavailable``,
``empty``, or ``failed`` to read its inputs) or a :class:`hessinit.book.execute.Job` that
carries everything the run needs. Nothing is written here.

Imports: the standard library, :mod:`hessinit.book.grid`, :mod:`hessinit.book.manifest` and
:class:`hessinit.book.execute.Job`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .execute import Job
from .grid import RUNS, collected_names, file_hash
from .manifest import read_record, record_path, run_outputs, verify

#: Every status a run can end with, as records and the summary spell them.
STATUSES = ("ok", "skipped", "stale", "failed", "timed out", "unavailable", "empty")


class BookNotFoundError(ValueError):
    """The book's root holds no grid file (``book/grid.yml``)."""


@dataclass
class Result:
    """What became of one run.

    Attributes:
        id: The run's id.
        status: One of :data:`STATUSES`: ``ok`` (executed; its notebook and table exist),
            ``skipped`` (current: its record holds the same key and its outputs verify),
            ``stale`` (out of date or never run, but not selected by ``--only``, or collecting
            a stale run: its outputs, if any, are from an older key), ``failed``, ``timed
            out`` (it exceeded its ``timeout``), ``unavailable`` (its dataset could not be
            loaded) or ``empty`` (a collecting run with nothing to collect).
        seconds: Execution time.
        error: Why, for every status but ok and skipped.
        redone: Why a run whose record was current was executed again: the output that did
            not verify (:func:`hessinit.book.manifest.verify`); empty otherwise.
    """

    id: str
    status: str
    seconds: float = 0.0
    error: str = ""
    redone: str = ""


@dataclass
class Book:
    """A build's settings and its grid (:func:`hessinit.book.runner.open_book` makes one).

    Attributes:
        root: The book's root (absolute), holding ``_config.yml``, ``_toc.yml`` and ``book/``.
        grid: The grid file.
        runs: The grid's runs (:class:`hessinit.book.grid.Run`), in order.
        small: Run at the grid's small size.
        force: Rerun even runs whose record says they are current.
        only: ``fnmatch`` patterns of run ids to run; None: every run.
        threads: Threads for TensorFlow in each run (``None``: TensorFlow's default).
        code_hash: :func:`hessinit.book.grid.package_hash`, part of every run's key.
    """

    root: Path
    grid: Path
    runs: list
    small: bool = False
    force: bool = False
    only: list | None = None
    threads: int | None = None
    code_hash: str = ""

    @property
    def runs_dir(self):
        """``root/_runs``, where every output and record goes."""
        return self.root / RUNS


def unmatched_patterns(runs, only):
    """The ``only`` patterns that match no run's id.

    >>> from hessinit.book.grid import Run
    >>> unmatched_patterns([Run("site/a", "a", "site/a.ipynb", {})], ["site/*", "x*"])
    ['x*']
    """
    return [p for p in only or [] if not any(fnmatch.fnmatch(r.id, p) for r in runs)]


def selected(book, run):
    """Whether ``run`` matches one of the ``only`` patterns (every run if there are none)."""
    return not book.only or any(fnmatch.fnmatch(run.id, pat) for pat in book.only)


def dependencies(runs, run):
    """The ids of the runs ``run`` collects (every other run for ``collect: records``).

    >>> from hessinit.book.grid import Run
    >>> a, b = Run("site/a", "a", "site/a.ipynb", {}), Run("site/b", "b", "site/b.ipynb", {})
    >>> total = Run("site/t", "t", "site/t.ipynb", {}, collect="a")
    >>> dependencies([a, b, total], total), dependencies([a, b, total], a)
    (['site/a'], [])
    """
    if not run.collect:
        return []
    if run.collect == "records":
        return [r.id for r in runs if r is not run]
    names = collected_names(run.collect)
    return [r.id for r in runs if r.notebook in names]


def collect(book, run, results):
    """Set a collecting run's ``tables`` or ``records`` and its ``inputs``.

    Args:
        book: The :class:`Book`.
        run: A run with ``collect``; its ``parameters`` and ``inputs`` are set.
        results: ``{run id: Result}`` of the runs so far (its dependencies among them).

    Returns:
        tuple: ``(Result, [])`` when it is not to run (``stale`` if a run it collects is
        stale, ``failed`` if a file it collects cannot be read, ``empty`` if there is nothing
        to collect), else ``(None, paths)``, the files it collects.
    """
    runs_dir = book.runs_dir
    out_dir = (runs_dir / run.output).parent
    stale = [i for i in dependencies(book.runs, run) if results[i].status == "stale"]
    if stale and run.collect != "records":
        why = f"it collects stale runs: {', '.join(stale)}; rerun them"
        return Result(run.id, "stale", error=why), []
    try:
        if run.collect == "records":
            paths = [record_path(runs_dir, r) for r in book.runs if r is not run]
            paths = [p for p in paths if p.exists()]
            run.inputs = [
                json.dumps([json.loads(p.read_text())[k] for k in ("id", "key", "status")])
                for p in paths
            ]
            run.parameters["records"] = [os.path.relpath(p, out_dir) for p in paths]
        else:
            wanted = dependencies(book.runs, run)
            done = [
                r for r in book.runs if r.id in wanted and results[r.id].status in ("ok", "skipped")
            ]
            tables = [run_outputs(runs_dir, r)[1] for r in done]
            paths = [p for p in tables if p is not None]
            run.inputs = [file_hash(p) for p in paths]
            run.parameters["tables"] = [os.path.relpath(p, out_dir) for p in paths]
    except (OSError, ValueError, KeyError) as err:
        why = f"cannot read what it collects: {type(err).__name__}: {err}"
        return Result(run.id, "failed", error=why), []
    if not paths:
        return Result(run.id, "empty", error=f"no successful run of {run.collect}"), []
    return None, paths


def run_key(book, run):
    """The sha256 that says whether ``run`` is current.

    It covers the committed notebook, the run's parameters, what it collects, the files it
    reads and the package's code; a run is skipped when its record holds the same key (and its
    outputs verify).
    """
    root = book.root
    payload = {
        "notebook": file_hash(root / "book" / f"{run.notebook}.ipynb"),
        "parameters": run.parameters,
        "inputs": run.inputs,
        "code": book.code_hash,
    }
    if run.files:
        payload["files"] = {
            f: file_hash(root / f) if (root / f).exists() else None for f in run.files
        }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _stale_reason(record, problem):
    """Why a run that ``--only`` does not select is out of date, in words."""
    if not record:
        return "never run"
    if record.get("status") not in ("ok", "stale"):
        return f"its last run's status is {record.get('status')!r}"
    if problem:
        return f"its outputs do not verify: {problem}"
    return "out of date"


def plan(book, run, results, unavailable):
    """Decide what to do with ``run``: a :class:`Result` now, or a Job to execute.

    Args:
        book: The :class:`Book`.
        run: A run whose dependencies have results.
        results: ``{run id: Result}`` so far.
        unavailable: ``{dataset: error}``, the datasets that could not be loaded so far.

    Returns:
        tuple: ``(Result, None, "")`` for a run that is not executed (unavailable, empty,
        skipped, stale, or failing to read its inputs), else ``(Job, key, redone)``,
        ``redone`` saying which output of a current run did not verify (else ``""``).
    """
    if run.dataset in unavailable:
        return Result(run.id, "unavailable", error=unavailable[run.dataset]), None, ""
    collected = []
    if run.collect:
        result, collected = collect(book, run, results)
        if result is not None:
            return result, None, ""
    root = book.root
    try:
        key = run_key(book, run)
        rec = read_record(book.runs_dir, run)
        problem = verify(book.runs_dir, run, rec) if rec else ""
        current = bool(rec) and rec.get("key") == key and rec.get("status") == "ok"
        if not book.force and current and not problem:
            return Result(run.id, "skipped"), None, ""
        if not selected(book, run):
            why = f"not selected by --only and {_stale_reason(rec, problem)}"
            return Result(run.id, "stale", error=why), None, ""
        files = {f: (root / f).read_bytes() for f in run.files if (root / f).exists()}
        for p in collected:
            files[p.relative_to(root).as_posix()] = p.read_bytes()
        source = (root / "book" / f"{run.notebook}.ipynb").read_text()
    except (OSError, ValueError) as err:
        return Result(run.id, "failed", error=f"{type(err).__name__}: {err}"), None, ""
    job = Job(
        id=run.id,
        notebook=run.notebook,
        source=source,
        output=run.output,
        parameters=run.parameters,
        files=files,
        timeout=run.timeout,
        code_hash=book.code_hash,
        threads=book.threads,
    )
    return job, key, (problem if current and not book.force else "")
