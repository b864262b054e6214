"""Running the grid (serially or on Dask) and building the site with Jupyter Book.

:class:`Runner` walks the runs of :func:`hessinit.book.grid.read_grid` in dependency order
(a collecting run after the runs it collects), decides for each whether it is current, hands
the others as :class:`hessinit.book.execute.Job` objects to a pool (:mod:`hessinit.book.pool`:
this process, or a Dask cluster), and alone writes what comes back under ``_runs/``, each file
atomically: the executed notebook, its tables and a record per run under ``_runs/records``.
Every outcome is recorded, so an old record never outlives a newer outcome. The site is built
with ``jupyter-book build . -W -n --keep-going`` from a table of contents that lists only the
pages that exist.

Imports: the standard library, PyYAML, :mod:`hessinit.book.grid`, :mod:`hessinit.book.execute`,
:mod:`hessinit.book.pool`, :mod:`hessinit.book.notebook` and :mod:`hessinit.book.page`;
nbformat, tqdm and Dask only when runs are executed. Nothing from the numerical core: the
notebooks import that themselves.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from .execute import Job
from .grid import RUNS, _file_hash, _names, package_hash, read_grid
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
            ``skipped`` (current: its record holds the same key and its outputs exist),
            ``stale`` (out of date or never run, but not selected by ``--only``, or collecting
            a stale run: its outputs, if any, are from an older key), ``failed``, ``timed
            out`` (it exceeded its ``timeout``), ``unavailable`` (its dataset could not be
            loaded) or ``empty`` (a collecting run with nothing to collect).
        seconds: Execution time.
        error: Why, for every status but ok and skipped.
    """

    id: str
    status: str
    seconds: float = 0.0
    error: str = ""


def _write_atomic(path, data):
    """Write ``data`` (bytes) to ``path`` through a temporary file and a rename.

    See :func:`hessinit.book.notebook.atomic_path`.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


class Runner:
    """Runs the grid of a book rooted at ``root`` into ``root/_runs``.

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
        runs (list[Run]): The grid's runs, in order.
        results (dict[str, Result]): What became of each run, by id, once executed.
        unavailable (dict[str, str]): The datasets that could not be loaded, with the error.
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
        self.code_hash = package_hash()
        self.interrupted = False
        self._collected = {}

    # -- paths and records
    def record_path(self, run):
        """The run's record, ``_runs/records/<id with / as __>.json``."""
        return self.runs_dir / "records" / (run.id.replace("/", "__") + ".json")

    def read_record(self, run):
        """The run's record as a dict, or None if it was never run or cannot be read."""
        try:
            return json.loads(self.record_path(run).read_text())
        except (OSError, ValueError):
            return None

    def _write_record(self, run, key, result, worker=""):
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
        }
        _write_atomic(self.record_path(run), json.dumps(rec, indent=1, sort_keys=True).encode())

    def _outputs(self, run):
        """The executed notebook and its table (None for a collecting run without one)."""
        out = self.runs_dir / run.output
        table = run.parameters.get("table")
        return out, (out.parent / table if table else None)

    def _complete(self, run):
        """Whether the run's notebook and table exist."""
        return all(p is None or p.exists() for p in self._outputs(run))

    def _remove_outputs(self, run):
        for p in self._outputs(run):
            if p is not None:
                p.unlink(missing_ok=True)

    # -- dependencies and inputs of collecting runs
    def dependencies(self, run):
        """The ids of the runs ``run`` collects (every other run for ``collect: records``)."""
        if not run.collect:
            return []
        if run.collect == "records":
            return [r.id for r in self.runs if r is not run]
        names = _names(run.collect)
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
                run.inputs = [_file_hash(p) for p in paths]
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
        reads and the package's code; a run is skipped when its record holds the same key.
        """
        payload = {
            "notebook": _file_hash(self.root / "book" / f"{run.notebook}.ipynb"),
            "parameters": run.parameters,
            "inputs": run.inputs,
            "code": self.code_hash,
        }
        if run.files:
            payload["files"] = {
                f: _file_hash(self.root / f) if (self.root / f).exists() else None
                for f in run.files
            }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def selected(self, run):
        """Whether ``run`` matches one of the ``only`` patterns (every run if there are none)."""
        return not self.only or any(fnmatch.fnmatch(run.id, pat) for pat in self.only)

    # -- one run: decide, then record what came back
    def prepare(self, run):
        """Decide what to do with ``run``: a :class:`Result` now, or a Job to execute.

        Returns:
            tuple: ``(Result, None)`` for a run that is not executed (unavailable, empty,
            skipped, stale, or failing to read its inputs), else ``(Job, key)``.
        """
        if run.dataset in self.unavailable:
            return Result(run.id, "unavailable", error=self.unavailable[run.dataset]), None
        if run.collect:
            result = self._collect(run)
            if result is not None:
                return result, None
        try:
            key = self.key(run)
            rec = self.read_record(run)
            current = rec and rec.get("key") == key and rec.get("status") == "ok"
            if not self.force and current and self._complete(run):
                return Result(run.id, "skipped"), None
            if not self.selected(run):
                why = "out of date" if rec and self._complete(run) else "its outputs are missing"
                why = "never run" if not rec else why
                return Result(run.id, "stale", error=f"not selected by --only and {why}"), None
            files = {f: (self.root / f).read_bytes() for f in run.files if (self.root / f).exists()}
            for p in self._collected.get(run.id, []):
                files[p.relative_to(self.root).as_posix()] = p.read_bytes()
            source = (self.root / "book" / f"{run.notebook}.ipynb").read_text()
        except (OSError, ValueError) as err:
            return Result(run.id, "failed", error=f"{type(err).__name__}: {err}"), None
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
        return job, key

    def finish(self, run, key, outcome):
        """Write what a job returned under ``_runs/`` and its record; return its Result.

        The files first, then the executed notebook (with its parameters table and Colab
        badge), then the record; a failed run's outputs are removed and its partly executed
        notebook kept under ``_runs/failed/``.
        """
        result = Result(run.id, outcome.status, outcome.seconds, outcome.error)
        if outcome.status == "ok":
            import nbformat

            try:
                nb = nbformat.reads(outcome.notebook, as_version=4)
                try:
                    nb = decorate(nb, run, self.root)
                except Exception as err:  # noqa: BLE001 - a page without its badge still counts
                    print(f"warning: {run.id}: no badge and parameters table ({err})", flush=True)
                for rel, data in outcome.files.items():
                    _write_atomic(self.runs_dir / rel, data)
                _write_atomic(self.runs_dir / run.output, nbformat.writes(nb).encode())
                (self.runs_dir / "failed" / (run.id.replace("/", "__") + ".ipynb")).unlink(
                    missing_ok=True
                )
            except (OSError, ValueError) as err:
                result = Result(run.id, "failed", outcome.seconds, f"{type(err).__name__}: {err}")
        if result.status != "ok":
            self._remove_outputs(run)
            if outcome.notebook:
                failed = self.runs_dir / "failed" / (run.id.replace("/", "__") + ".ipynb")
                _write_atomic(failed, outcome.notebook.encode())
        if result.status == "unavailable" and run.dataset:
            self.unavailable[run.dataset] = result.error
        self._write_record(run, key, result, outcome.worker)
        return result

    def _settle(self, run, result):
        """Record a run that was not executed (every status but skipped writes its record)."""
        if result.status in ("unavailable", "empty", "failed"):
            self._remove_outputs(run)
        if result.status != "skipped":
            key = (self.read_record(run) or {}).get("key") if result.status == "stale" else None
            self._write_record(run, key, result)
        return result

    def execute(self, run):
        """Execute ``run`` in this process unless it is current, and record the outcome.

        Returns:
            Result: Never raises for a failing notebook: the failure is the result.
        """
        plan, key = self.prepare(run)
        if isinstance(plan, Result):
            return self._settle(run, plan)
        with SerialPool() as pool:
            pool.submit(plan)
            return self.finish(run, key, pool.next_done()[1])

    def pending(self):
        """The ids of the runs without a result yet: what a rerun will do."""
        return [r.id for r in self.runs if r.id not in self.results]

    def run_all(self, progress=True, pool=None):
        """Execute every run of the grid, each after the runs it collects.

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
        from tqdm.auto import tqdm

        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        pool = pool or SerialPool()
        # The kernels inherit file descriptor 2: send their start-up chatter (TensorFlow, ZMQ)
        # to _runs/kernels.log and keep the terminal for the progress bar.
        sys.stderr.flush()
        saved = os.dup(2)
        terminal = os.fdopen(os.dup(saved), "w")
        bar = None
        with open(self.runs_dir / "kernels.log", "a") as log:
            os.dup2(log.fileno(), 2)
            try:
                with pool:
                    if pool.dashboard:
                        print(f"Dask dashboard: {pool.dashboard}", file=terminal, flush=True)
                    bar = tqdm(
                        total=len(self.runs),
                        desc="book runs",
                        unit="run",
                        disable=not progress,
                        file=terminal,
                    )
                    try:
                        self._loop(pool, bar)
                    except KeyboardInterrupt:
                        pool.cancel()
                        self.interrupted = True
            finally:
                if bar is not None:
                    bar.close()
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                terminal.close()
        return self.results

    def _loop(self, pool, bar):
        """Prepare runs whose dependencies have results, submit jobs, record what finishes."""
        waiting = list(self.runs)
        by_id = {r.id: r for r in self.runs}
        keys = {}

        def done(run, result):
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
                plan, key = self.prepare(run)
                if isinstance(plan, Result):
                    done(run, self._settle(run, plan))
                else:
                    keys[run.id] = key
                    pool.submit(plan)
            if pool.pending():
                run_id, outcome = pool.next_done()
                done(by_id[run_id], self.finish(by_id[run_id], keys.pop(run_id), outcome))
            elif waiting:  # dependencies that can never finish: a cycle in the grid
                raise ValueError(f"runs waiting on each other: {[r.id for r in waiting]}")

    # -- the site
    def write_toc(self):
        """Write ``_runs/_toc.yml``: ``_toc.yml`` with only the pages that exist.

        ``glob:`` entries are expanded to the executed notebooks present; ``file:`` entries
        without a page (a failed run, an unavailable dataset) are dropped, and so are parts
        left empty.

        Returns:
            pathlib.Path: The table of contents written.
        """
        toc = yaml.safe_load((self.root / "_toc.yml").read_text())

        def exists(doc):
            return any((self.root / f"{doc}{s}").exists() for s in (".ipynb", ".md", ".rst"))

        def expand(entries):
            out = []
            for entry in entries:
                if "glob" in entry:
                    hits = sorted(
                        str(p.relative_to(self.root).with_suffix(""))
                        for p in self.root.glob(entry["glob"] + ".ipynb")
                        if not p.name.startswith(".")
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

        toc["parts"] = [
            dict(part, chapters=expand(part["chapters"]))
            for part in toc.get("parts", [])
            if expand(part["chapters"])
        ]
        path = self.runs_dir / "_toc.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(toc, sort_keys=False))
        return path

    def build(self):
        """Build the site with ``jupyter-book build -W -n --keep-going``: zero warnings allowed.

        Returns:
            tuple[int, str]: The exit code and the build's output.
        """
        toc = self.write_toc()
        # Sphinx keeps the HTML of pages that left the toc: remove those of runs without a page.
        for html in (self.root / "_build" / "html" / RUNS).rglob("*.html"):
            rel = html.relative_to(self.root / "_build" / "html").with_suffix(".ipynb")
            if not (self.root / rel).exists():
                html.unlink()
        exe = shutil.which("jupyter-book") or str(Path(sys.executable).parent / "jupyter-book")
        cmd = [exe, "build", str(self.root), "--toc", str(toc), "-W", "-n", "--keep-going"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        return proc.returncode, proc.stdout + proc.stderr
