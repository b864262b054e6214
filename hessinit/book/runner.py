"""Running the grid (serially or on Dask) and building the site: a pipeline of four steps.

:class:`Runner` takes the runs of :func:`hessinit.book.grid.read_grid` in dependency order (a
collecting run after the runs it collects) through four named steps:

1. **plan** (:meth:`Runner.plan`): what to do with a run: a :class:`Result` at once
   (``skipped`` when its record holds the same key and its outputs verify; ``stale``,
   ``unavailable``, ``empty``, or ``failed`` to read its inputs), or a
   :class:`hessinit.book.execute.Job`;
2. **execute** (:meth:`Runner.execute`): the jobs go to a pool (:mod:`hessinit.book.pool`: this
   process, or a Dask cluster), and what comes back is written under ``_runs/`` by this process
   alone (:meth:`Runner.record`): the run's files and its executed notebook, each atomically,
   then its record, last: the record is the **manifest** of those outputs (each file's sha256,
   size and, for a CSV, row count);
3. **verify** (:meth:`Runner.verify`): a run's outputs against its manifest. A run is skipped
   only when they verify; one whose file is missing, cut short or changed (a truncated table, a
   notebook that is no longer JSON) is executed again, and the build names the file;
4. **render** (:meth:`Runner.render`): the site, built with ``jupyter-book build . -W -n
   --keep-going`` from a table of contents that lists only the pages that exist and are
   readable notebooks (:func:`write_toc`); an unreadable one is left out by name.

Every outcome is recorded, so an old record never outlives a newer outcome.

Imports: the standard library, PyYAML, :mod:`hessinit.book.grid`, :mod:`hessinit.book.execute`,
:mod:`hessinit.book.pool`, :mod:`hessinit.book.notebook` and :mod:`hessinit.book.page`;
nbformat, tqdm and Dask only when runs are executed. Nothing from the numerical core: the
notebooks import that themselves.
"""

from __future__ import annotations

import csv
import fnmatch
import gc
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from .colab import write_edition
from .execute import Job
from .grid import RUNS, collected_names, file_hash, package_hash, read_grid
from .notebook import atomic_path, versions
from .page import decorate
from .pool import SerialPool

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
            not verify (:meth:`Runner.verify`); empty otherwise.
    """

    id: str
    status: str
    seconds: float = 0.0
    error: str = ""
    redone: str = ""


def _write_atomic(path, data):
    """Write ``data`` (bytes) to ``path`` through a temporary file and a rename.

    See :func:`hessinit.book.notebook.atomic_path`.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def fingerprint(data, suffix=""):
    r"""What a manifest records of one file: its sha256, its size and a CSV's row count.

    Args:
        data: The file's bytes.
        suffix: The file's suffix; ``.csv`` adds ``rows``, the records after the header.

    Returns:
        dict: ``{"sha256": ..., "bytes": ...}``, plus ``"rows"`` for a CSV.

    Example:
        >>> entry = fingerprint(b"x,y\n1,1\n2,4\n", ".csv")
        >>> entry["bytes"], entry["rows"], entry["sha256"][:12]
        (12, 2, '7d3d34b39a20')
    """
    entry = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    if suffix == ".csv":
        text = data.decode("utf-8", errors="replace")
        entry["rows"] = max(sum(1 for _ in csv.reader(io.StringIO(text))) - 1, 0)
    return entry


def _unreadable(data):
    """Why ``data`` is not a notebook's JSON, or ``""``.

    >>> _unreadable(b'{"cells": [], "nbformat": 4}'), _unreadable(b'{"cells": [')[:19]
    ('', 'not valid JSON (Exp')
    """
    try:
        nb = json.loads(data)
    except ValueError as err:
        return f"not valid JSON ({err})"
    if not isinstance(nb, dict) or "cells" not in nb:
        return "not a notebook (no cells)"
    return ""


def check(folder, manifest):
    r"""The first file of ``manifest`` under ``folder`` that does not match it, said in words.

    Args:
        folder: The folder the manifest's paths are relative to (``_runs/``).
        manifest: ``{path: fingerprint}`` (:func:`fingerprint`), as a run's record holds it.

    Returns:
        str: ``""`` when every file is there with its recorded bytes; else what is wrong with
        the first that is not, naming it by its path under ``folder``'s parent (``_runs/...``).

    Example:
        >>> import pathlib, tempfile
        >>> runs = pathlib.Path(tempfile.mkdtemp()) / "_runs"
        >>> runs.mkdir()
        >>> _ = (runs / "t.csv").write_bytes(b"x,y\n1,1\n2,4\n")
        >>> manifest = {"t.csv": fingerprint(b"x,y\n1,1\n2,4\n", ".csv")}
        >>> check(runs, manifest)
        ''
        >>> _ = (runs / "t.csv").write_bytes(b"x,y\n1,1\n")  # cut short
        >>> check(runs, manifest)
        '_runs/t.csv has 1 rows where its manifest records 2'
        >>> (runs / "t.csv").unlink()
        >>> check(runs, manifest)
        '_runs/t.csv is missing'
    """
    folder = Path(folder)
    for rel, want in manifest.items():
        path = folder / rel
        shown = f"{folder.name}/{rel}"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return f"{shown} is missing"
        except OSError as err:
            return f"{shown} cannot be read ({err})"
        got = fingerprint(data, path.suffix)
        if got == want:
            continue
        if path.suffix == ".ipynb" and _unreadable(data):
            return f"{shown} is {_unreadable(data)}"
        if "rows" in want and got["rows"] != want["rows"]:
            return f"{shown} has {got['rows']} rows where its manifest records {want['rows']}"
        return (
            f"{shown} differs from its manifest ({got['bytes']} bytes where it records "
            f"{want['bytes']}; another sha256)"
        )
    return ""


class Runner:
    """Runs the grid of a book at ``root`` into ``root/_runs``: plan, execute, verify, render.

    Args:
        root: The book's root, holding ``_config.yml``, ``_toc.yml`` and ``book/``.
        grid: The grid file (default ``root/book/grid.yml``).
        datasets: The datasets of the per-dataset runs (default: the grid's).
        small: Run at the grid's small size (``--small``).
        force: Rerun even runs whose record says they are current.
        only: ``fnmatch`` patterns of run ids; other runs keep their last results and are
            reported as stale when those are out of date.
        threads: Threads for TensorFlow in each run (``None``: TensorFlow's default).

    Raises:
        BookNotFoundError: If there is no grid file.
        ValueError: If an ``only`` pattern matches no run (the message lists the runs).

    Attributes:
        runs (list[hessinit.book.grid.Run]): The grid's runs, in order.
        results (dict[str, Result]): What became of each run, by id, once executed.
        unavailable (dict[str, str]): The datasets that could not be loaded, with the error.
        left_out (dict[str, str]): The pages :meth:`render` left out of the site because they
            are not readable notebooks, with why.
        code_hash (str): :func:`hessinit.book.grid.package_hash` when the runner was made.
        interrupted (bool): Whether :meth:`run_all` stopped at a Ctrl-C.

    Example:
        >>> import pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "book").mkdir()
        >>> _ = (root / "book" / "grid.yml").write_text(
        ...     "runs: [{notebook: chain_rule, output: site/chain_rule.ipynb}]"
        ... )
        >>> runner = Runner(root)
        >>> [run.id for run in runner.runs], runner.record_path(runner.runs[0]).name
        (['site/chain_rule'], 'site__chain_rule.json')
        >>> Runner(root, only=["site/nomatch*"])
        Traceback (most recent call last):
        ValueError: --only site/nomatch* matches no run; the runs are: site/chain_rule
    """

    def __init__(
        self, root=".", grid=None, datasets=None, small=False, force=False, only=None, threads=None
    ):
        self.root = Path(root).resolve()
        self.runs_dir = self.root / RUNS
        self.grid = Path(grid) if grid else self.root / "book" / "grid.yml"
        if not self.grid.is_file():
            raise BookNotFoundError(
                f"no grid file at {self.grid}: run `python -m hessinit book` from the root of a "
                "hessinit checkout (the folder holding _config.yml, _toc.yml and book/), or "
                "pass --root (and --grid)"
            )
        self.small, self.force, self.only, self.threads = small, force, only, threads
        self.runs = read_grid(self.grid, datasets=datasets, small=small)
        unmatched = [p for p in only or [] if not any(fnmatch.fnmatch(r.id, p) for r in self.runs)]
        if unmatched:
            raise ValueError(
                f"--only {' '.join(unmatched)} matches no run; the runs are: "
                + ", ".join(r.id for r in self.runs)
            )
        self.results: dict[str, Result] = {}
        self.unavailable: dict[str, str] = {}
        self.left_out: dict[str, str] = {}
        self.code_hash = package_hash()
        self.interrupted = False
        self._collected = {}

    # -- records: one per run, the manifest of its outputs
    def record_path(self, run):
        """The run's record, ``_runs/records/<id with / as __>.json``."""
        return self.runs_dir / "records" / (run.id.replace("/", "__") + ".json")

    def read_record(self, run):
        """The run's record as a dict, or None if it was never run or cannot be read."""
        try:
            return json.loads(self.record_path(run).read_text())
        except (OSError, ValueError):
            return None

    def _write_record(self, run, key, result, worker="", outputs=None):
        rec = {
            "id": run.id,
            "notebook": run.notebook,
            "output": run.output,
            "parameters": run.parameters,
            "key": key,
            "status": result.status,
            "error": result.error,
            "seconds": round(result.seconds, 1),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            "code_hash": self.code_hash,
            "versions": versions(),
            "small": self.small,
            "worker": worker,
            "outputs": outputs or {},
        }
        _write_atomic(self.record_path(run), json.dumps(rec, indent=1, sort_keys=True).encode())
        return rec

    def _outputs(self, run):
        """The executed notebook and its table (None for a collecting run without one)."""
        out = self.runs_dir / run.output
        table = run.parameters.get("table")
        return out, (out.parent / table if table else None)

    def _remove_outputs(self, run):
        for p in self._outputs(run):
            if p is not None:
                p.unlink(missing_ok=True)

    # -- dependencies, inputs of collecting runs, keys
    def dependencies(self, run):
        """The ids of the runs ``run`` collects (every other run for ``collect: records``)."""
        if not run.collect:
            return []
        if run.collect == "records":
            return [r.id for r in self.runs if r is not run]
        names = collected_names(run.collect)
        return [r.id for r in self.runs if r.notebook in names]

    def _collect(self, run):
        """Set a collecting run's ``tables`` or ``records`` and its inputs.

        Returns:
            Result | None: ``stale`` if a run it collects is stale, ``failed`` if a file it
            collects cannot be read, ``empty`` if there is nothing to collect, else None.
        """
        out_dir = (self.runs_dir / run.output).parent
        stale = [i for i in self.dependencies(run) if self.results[i].status == "stale"]
        if stale and run.collect != "records":
            return Result(
                run.id, "stale", error=f"it collects stale runs: {', '.join(stale)}; rerun them"
            )
        try:
            if run.collect == "records":
                paths = [self.record_path(r) for r in self.runs if r is not run]
                paths = [p for p in paths if p.exists()]
                run.inputs = [
                    json.dumps([json.loads(p.read_text())[k] for k in ("id", "key", "status")])
                    for p in paths
                ]
                run.parameters["records"] = [os.path.relpath(p, out_dir) for p in paths]
            else:
                done = [
                    r
                    for r in self.runs
                    if r.id in self.dependencies(run)
                    and self.results[r.id].status in ("ok", "skipped")
                ]
                paths = [self._outputs(r)[1] for r in done if self._outputs(r)[1] is not None]
                run.inputs = [file_hash(p) for p in paths]
                run.parameters["tables"] = [os.path.relpath(p, out_dir) for p in paths]
        except (OSError, ValueError, KeyError) as err:
            return Result(
                run.id, "failed", error=f"cannot read what it collects: {type(err).__name__}: {err}"
            )
        if not paths:
            return Result(run.id, "empty", error=f"no successful run of {run.collect}")
        self._collected[run.id] = paths
        return None

    def key(self, run):
        """The sha256 that says whether ``run`` is current.

        It covers the committed notebook, the run's parameters, what it collects, the files it
        reads and the package's code; a run is skipped when its record holds the same key (and
        its outputs verify).
        """
        payload = {
            "notebook": file_hash(self.root / "book" / f"{run.notebook}.ipynb"),
            "parameters": run.parameters,
            "inputs": run.inputs,
            "code": self.code_hash,
        }
        if run.files:
            payload["files"] = {
                f: file_hash(self.root / f) if (self.root / f).exists() else None for f in run.files
            }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def selected(self, run):
        """Whether ``run`` matches one of the ``only`` patterns (every run if there are none)."""
        return not self.only or any(fnmatch.fnmatch(run.id, pat) for pat in self.only)

    # -- step 3: verify
    def verify(self, run, record=None):
        """Whether the run's outputs are those its record's manifest lists, said in words.

        Args:
            run: A run.
            record: Its record (default: read from disk).

        Returns:
            str: ``""`` when the executed notebook, the table and every other file the run
            wrote are there with the bytes the manifest records; else what is wrong, naming
            the file (:func:`check`).
        """
        record = self.read_record(run) if record is None else record
        manifest = (record or {}).get("outputs") or {}
        for path in self._outputs(run):
            if path is not None and path.relative_to(self.runs_dir).as_posix() not in manifest:
                return f"{RUNS}/{path.relative_to(self.runs_dir).as_posix()} is not in its manifest"
        return check(self.runs_dir, manifest)

    # -- step 1: plan
    def plan(self, run):
        """Decide what to do with ``run``: a :class:`Result` now, or a Job to execute.

        Returns:
            tuple: ``(Result, None, "")`` for a run that is not executed (unavailable, empty,
            skipped, stale, or failing to read its inputs), else ``(Job, key, redone)``,
            ``redone`` saying which output of a current run did not verify (else ``""``).
        """
        if run.dataset in self.unavailable:
            return Result(run.id, "unavailable", error=self.unavailable[run.dataset]), None, ""
        if run.collect:
            result = self._collect(run)
            if result is not None:
                return result, None, ""
        try:
            key = self.key(run)
            rec = self.read_record(run)
            problem = self.verify(run, rec) if rec else ""
            current = bool(rec) and rec.get("key") == key and rec.get("status") == "ok"
            if not self.force and current and not problem:
                return Result(run.id, "skipped"), None, ""
            if not self.selected(run):
                if not rec:
                    why = "never run"
                elif rec.get("status") not in ("ok", "stale"):
                    why = f"its last run's status is {rec.get('status')!r}"
                elif problem:
                    why = f"its outputs do not verify: {problem}"
                else:
                    why = "out of date"
                return Result(run.id, "stale", error=f"not selected by --only and {why}"), None, ""
            files = {f: (self.root / f).read_bytes() for f in run.files if (self.root / f).exists()}
            for p in self._collected.get(run.id, []):
                files[p.relative_to(self.root).as_posix()] = p.read_bytes()
            source = (self.root / "book" / f"{run.notebook}.ipynb").read_text()
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
            code_hash=self.code_hash,
            threads=self.threads,
        )
        return job, key, (problem if current and not self.force else "")

    # -- step 2: execute, and record what comes back
    def record(self, run, key, outcome):
        """Write what a job returned under ``_runs/``, then its record; return its Result.

        The files first, then the executed notebook (with its parameters table and Colab
        badge), each atomically, then the record with the manifest of what was written, then
        :meth:`verify`: a run whose outputs do not read back as written failed. A failed run's
        outputs are removed and its partly executed notebook kept under ``_runs/failed/``.
        """
        result = Result(run.id, outcome.status, outcome.seconds, outcome.error)
        manifest = {}
        if outcome.status == "ok":
            import nbformat

            try:
                nb = nbformat.reads(outcome.notebook, as_version=4)
                try:
                    nb = decorate(nb, run, self.root)
                except Exception as err:  # noqa: BLE001 - a page without its badge still counts
                    print(f"warning: {run.id}: no badge and parameters table ({err})", flush=True)
                written = {**outcome.files, run.output: nbformat.writes(nb).encode()}
                for rel, data in written.items():  # the notebook last
                    _write_atomic(self.runs_dir / rel, data)
                    manifest[rel] = fingerprint(data, Path(rel).suffix)
                (self.runs_dir / "failed" / (run.id.replace("/", "__") + ".ipynb")).unlink(
                    missing_ok=True
                )
            except (OSError, ValueError) as err:
                result = Result(run.id, "failed", outcome.seconds, f"{type(err).__name__}: {err}")
        if result.status != "ok":
            manifest = {}
            self._remove_outputs(run)
            if outcome.notebook:
                failed = self.runs_dir / "failed" / (run.id.replace("/", "__") + ".ipynb")
                _write_atomic(failed, outcome.notebook.encode())
        if result.status == "unavailable" and run.dataset:
            self.unavailable[run.dataset] = result.error
        rec = self._write_record(run, key, result, outcome.worker, manifest)
        if result.status == "ok" and (problem := self.verify(run, rec)):
            result = Result(run.id, "failed", outcome.seconds, f"written but {problem}")
            self._write_record(run, key, result, outcome.worker)
        return result

    def _settle(self, run, result):
        """Record a run that was not executed (every status but skipped writes its record)."""
        if result.status in ("unavailable", "empty", "failed"):
            self._remove_outputs(run)
        if result.status != "skipped":
            old = (self.read_record(run) or {}) if result.status == "stale" else {}
            # A stale run keeps its key and the manifest of the outputs it still has.
            self._write_record(run, old.get("key"), result, outputs=old.get("outputs"))
        return result

    def pending(self):
        """The ids of the runs without a result yet: what a rerun will do."""
        return [r.id for r in self.runs if r.id not in self.results]

    def run_all(self, progress=True, pool=None):
        """Plan, execute and verify every run of the grid, each after the runs it collects.

        Failures do not stop the others. The kernels' start-up messages (and a local Dask
        cluster's) go to ``_runs/kernels.log``. A Ctrl-C cancels what is executing, sets
        :attr:`interrupted` and returns what finished; a rerun redoes the rest.

        Args:
            progress: Show a progress bar and a line per executed run.
            pool: Where jobs execute (:mod:`hessinit.book.pool`); default this process.

        Returns:
            dict[str, Result]: :attr:`results`.

        Raises:
            hessinit.book.execute.KernelError: If the ``hessinit`` kernel runs another Python.
            hessinit.book.execute.CodeMismatchError: If a worker runs other code.
        """
        from tqdm.std import tqdm  # a terminal's bar, also when called from a notebook

        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        pool = pool or SerialPool()
        with _stderr_to(self.runs_dir / "kernels.log") as terminal, pool:
            if pool.dashboard:
                print(f"Dask dashboard: {pool.dashboard}", file=terminal, flush=True)
            bar = tqdm(total=len(self.runs), desc="book runs", unit="run",
                       disable=not progress, file=terminal)  # fmt: skip
            try:
                self.execute(pool, bar)
            except KeyboardInterrupt:
                pool.cancel()
                self.interrupted = True
            finally:
                bar.close()
        return self.results

    def execute(self, pool, bar):
        """Plan each run whose dependencies have results, submit its job, record what finishes.

        Args:
            pool: An open pool (:mod:`hessinit.book.pool`).
            bar: A tqdm bar: one step per run, a line per run that was not skipped.
        """
        waiting = list(self.runs)
        by_id = {r.id: r for r in self.runs}
        keys, redone = {}, {}

        def done(run, result):
            result.redone = redone.pop(run.id, "")
            self.results[run.id] = result
            bar.update(1)
            if result.status != "skipped":
                bar.write(f"{result.status:>11}  {run.id}  {result.seconds:.0f} s")

        while waiting or pool.pending():
            for run in list(waiting):
                if pool.pending() >= pool.capacity:
                    break
                if not all(i in self.results for i in self.dependencies(run)):
                    continue
                waiting.remove(run)
                bar.set_postfix_str(run.id)
                plan, key, why = self.plan(run)
                if isinstance(plan, Result):
                    done(run, self._settle(run, plan))
                    continue
                keys[run.id] = key
                if why:
                    redone[run.id] = why
                    bar.write(f"{'redo':>11}  {run.id}: {why}")
                pool.submit(plan)
            if pool.pending():
                run_id, outcome = pool.next_done()
                done(by_id[run_id], self.record(by_id[run_id], keys.pop(run_id), outcome))
            elif waiting:  # dependencies that can never finish: a cycle in the grid
                raise ValueError(f"runs waiting on each other: {[r.id for r in waiting]}")

    # -- step 4: render the site
    def write_toc(self):
        """Write ``_runs/_toc.yml``: ``_toc.yml`` with only the pages that exist and read.

        See :func:`write_toc`; the pages left out as unreadable go to :attr:`left_out`.

        Returns:
            pathlib.Path: The table of contents written.
        """
        path, self.left_out = write_toc(self.root, self.runs_dir / "_toc.yml")
        return path

    def render(self):
        """Build the site with ``jupyter-book build -W -n --keep-going``: zero warnings allowed.

        Returns:
            tuple[int, str]: The exit code and the build's output.
        """
        toc = self.write_toc()
        # Sphinx keeps the HTML of pages that left the toc: remove those of runs without a page.
        listed = set(_toc_files(yaml.safe_load(toc.read_text())))
        for html in (self.root / "_build" / "html" / RUNS).rglob("*.html"):
            rel = html.relative_to(self.root / "_build" / "html").with_suffix("")
            if rel.as_posix() not in listed:
                html.unlink()
        exe = shutil.which("jupyter-book") or str(Path(sys.executable).parent / "jupyter-book")
        cmd = [exe, "build", str(self.root), "--toc", str(toc), "-W", "-n", "--keep-going"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            return proc.returncode, output
        # The Colab edition of the same runs, published beside the site (issue: ways in).
        try:
            pages = write_edition(self.root, self.root / "_build" / "html" / "colab")
        except (ValueError, FileNotFoundError, OSError) as err:
            return 1, output + f"\nerror: the Colab edition: {err}\n"
        return 0, output + f"\nwrote the Colab edition of {len(pages)} pages to _build/html/colab\n"


@contextmanager
def _stderr_to(log):
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


def _toc_files(toc):
    """Every ``file`` a table of contents lists (its root, chapters and sections)."""
    out = [toc["root"]] if "root" in toc else []

    def walk(entries):
        for entry in entries:
            if "file" in entry:
                out.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return out


def write_toc(root, path):
    """Write to ``path`` the book's ``_toc.yml`` with only the pages that exist and read.

    ``glob:`` entries are expanded to the executed notebooks present; ``file:`` entries
    without a page (a failed run, an unavailable dataset) are dropped, and so are parts left
    empty. A page that is an executed notebook but not readable as one (cut short, not JSON)
    is dropped too, so that the site build never meets it, and returned with why.

    Args:
        root: The book's root, holding ``_toc.yml``.
        path: Where to write the table of contents.

    Returns:
        tuple[pathlib.Path, dict[str, str]]: ``path``, and ``{page: why}`` for each page
        left out because it cannot be read.
    """
    root = Path(root)
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    left_out = {}

    def readable(notebook):
        why = _unreadable(notebook.read_bytes())
        if why:
            left_out[notebook.relative_to(root).as_posix()] = why
        return not why

    def exists(doc):
        if (root / f"{doc}.ipynb").exists():
            return readable(root / f"{doc}.ipynb")
        return any((root / f"{doc}{s}").exists() for s in (".md", ".rst"))

    def expand(entries):
        out = []
        for entry in entries:
            if "glob" in entry:
                hits = sorted(
                    str(p.relative_to(root).with_suffix(""))
                    for p in root.glob(entry["glob"] + ".ipynb")
                    if not p.name.startswith(".") and readable(p)
                )
                out += [{"file": h} for h in hits]
            elif "file" in entry and exists(entry["file"]):
                e = dict(entry)
                if "sections" in e:
                    e["sections"] = expand(e["sections"])
                    if not e["sections"]:  # an empty list is a malformed toc
                        del e["sections"]
                out.append(e)
        return out

    parts = [dict(part, chapters=expand(part["chapters"])) for part in toc.get("parts", [])]
    toc["parts"] = [part for part in parts if part["chapters"]]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(toc, sort_keys=False))
    return path, left_out
