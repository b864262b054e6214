"""Executing the grid with papermill and building the site with Jupyter Book.

:class:`Runner` executes the runs of :func:`hessinit.book.grid.read_grid` one after the other,
skips those whose record holds the same key, writes a record per run under ``_runs/records``,
and builds the site with ``jupyter-book build . -W -n --keep-going`` from a table of contents
that lists only the pages that exist.

Imports: the standard library, PyYAML, :mod:`hessinit.book.grid` and
:mod:`hessinit.book.notebook`; papermill, nbformat, tqdm and the Jupyter kernel machinery only
when runs are executed. Nothing from the numerical core: the notebooks import that themselves.
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

from .grid import RUNS, _file_hash, _names, package_hash, read_grid
from .notebook import versions
from .page import decorate

KERNEL = "python3"


@dataclass
class Result:
    """What became of one run.

    Attributes:
        id: The run's id.
        status: ``ok`` (executed), ``skipped`` (current, or not selected by ``--only``),
            ``not run`` (not selected and never run), ``failed``, ``unavailable`` (its dataset
            could not be loaded) or ``empty`` (a collecting run with nothing to collect).
        seconds: Execution time.
        error: ``"ExceptionName: message"`` for failed and unavailable runs.
    """

    id: str
    status: str  # ok, skipped, failed, unavailable, empty
    seconds: float = 0.0
    error: str = ""


def ensure_kernel():
    """Install the ``python3`` Jupyter kernelspec for this interpreter if none is found."""
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL not in KernelSpecManager().find_kernel_specs():
        from ipykernel.kernelspec import install

        install(user=True)


class Runner:
    """Runs the grid of a book rooted at ``root`` into ``root/_runs``.

    Args:
        root: The book's root, holding ``_config.yml``, ``_toc.yml`` and ``book/``.
        grid: The grid file (default ``root/book/grid.yml``).
        datasets: The datasets of the per-dataset runs (default: the grid's).
        small: Run at the grid's small size (``--small``).
        force: Rerun even runs whose record says they are current.
        only: ``fnmatch`` patterns of run ids; other runs keep their last results.

    Attributes:
        runs (list[Run]): The grid's runs, in order.
        results (dict[str, Result]): What became of each run, by id, once executed.
        unavailable (dict[str, str]): The datasets that could not be loaded, with the error.
        code_hash (str): :func:`hessinit.book.grid.package_hash` when the runner was made.

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
    """

    def __init__(self, root=".", grid=None, datasets=None, small=False, force=False, only=None):
        self.root = Path(root).resolve()
        self.runs_dir = self.root / RUNS
        self.grid = Path(grid) if grid else self.root / "book" / "grid.yml"
        self.small, self.force, self.only = small, force, only
        self.runs = read_grid(self.grid, datasets=datasets, small=small)
        self.results: dict[str, Result] = {}
        self.unavailable: dict[str, str] = {}
        self.code_hash = package_hash()

    # -- paths and records
    def record_path(self, run):
        """The run's record, ``_runs/records/<id with / as __>.json``."""
        return self.runs_dir / "records" / (run.id.replace("/", "__") + ".json")

    def read_record(self, run):
        """The run's record as a dict, or None if it was never run."""
        path = self.record_path(run)
        return json.loads(path.read_text()) if path.exists() else None

    def _write_record(self, run, key, result):
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
        }
        path = self.record_path(run)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, indent=1, sort_keys=True))
        os.replace(tmp, path)

    def _outputs(self, run):
        """The executed notebook and its table."""
        out = self.runs_dir / run.output
        return out, out.with_suffix(".csv")

    def _remove_outputs(self, run):
        for p in self._outputs(run):
            p.unlink(missing_ok=True)

    # -- inputs of collecting runs
    def _collect(self, run):
        """Set a collecting run's ``tables`` or ``records``; False if there is nothing."""
        out_dir = (self.runs_dir / run.output).parent
        if run.collect == "records":
            paths = [self.record_path(r) for r in self.runs if r is not run]
            paths = [p for p in paths if p.exists()]
            run.parameters["records"] = [os.path.relpath(p, out_dir) for p in paths]
            run.inputs = [
                json.dumps([json.loads(p.read_text())[k] for k in ("id", "key", "status")])
                for p in paths
            ]
        else:
            tables = [
                self._outputs(r)[1]
                for r in self.runs
                if r.notebook in _names(run.collect)
                and self.results.get(r.id, Result(r.id, "")).status in ("ok", "skipped")
            ]
            run.parameters["tables"] = [os.path.relpath(p, out_dir) for p in tables]
            run.inputs = [_file_hash(p) for p in tables]
            if not tables:
                return False
        return True

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

    # -- one run
    def execute(self, run):
        """Execute ``run`` unless it is current, and record the outcome.

        Returns:
            Result: Never raises for a failing notebook: the failure is the result.
        """
        if run.dataset in self.unavailable:
            self._remove_outputs(run)
            return Result(run.id, "unavailable", error=self.unavailable[run.dataset])
        if run.collect and not self._collect(run):
            self._remove_outputs(run)
            return Result(run.id, "empty", error=f"no successful run of {run.collect}")
        key = self.key(run)
        rec = self.read_record(run)
        out, _ = self._outputs(run)
        if not self.force and rec and rec["key"] == key and rec["status"] == "ok" and out.exists():
            return Result(run.id, "skipped")
        if not self.selected(run):
            return Result(run.id, "skipped" if out.exists() else "not run")
        result = self._papermill(run, out)
        if result.status == "unavailable":
            self.unavailable[run.dataset] = result.error
        self._write_record(run, key, result)
        return result

    def _papermill(self, run, out):
        """Execute the run's notebook into ``out``, atomically; failures become results."""
        import nbformat
        import papermill

        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.stem}.partial.ipynb")
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(self.root / "book" / f"{run.notebook}.ipynb"),
                str(partial),
                parameters=run.parameters,
                kernel_name=KERNEL,
                cwd=str(out.parent),
                progress_bar=False,
            )
            nb = decorate(nbformat.read(partial, as_version=4), run, self.root)
            tmp = out.with_name(f".{out.stem}.tmp")
            nbformat.write(nb, tmp)
            os.replace(tmp, out)
            partial.unlink()
            return Result(run.id, "ok", time.perf_counter() - start)
        except Exception as err:  # noqa: BLE001 - any failure of one run is reported, not raised
            seconds = time.perf_counter() - start
            self._remove_outputs(run)
            if partial.exists():
                failed = self.runs_dir / "failed" / (run.id.replace("/", "__") + ".ipynb")
                failed.parent.mkdir(parents=True, exist_ok=True)
                os.replace(partial, failed)
            ename = getattr(err, "ename", type(err).__name__)
            evalue = getattr(err, "evalue", str(err))
            message = f"{ename}: {evalue}".strip()
            status = "unavailable" if ename == "DatasetUnavailableError" else "failed"
            return Result(run.id, status, seconds, message)

    def run_all(self, progress=True):
        """Execute every run of the grid in order (failures do not stop the others).

        The kernels' start-up messages go to ``_runs/kernels.log``.

        Args:
            progress: Show a progress bar and a line per executed run.

        Returns:
            dict[str, Result]: :attr:`results`.
        """
        from tqdm.auto import tqdm

        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        ensure_kernel()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        # The kernels inherit file descriptor 2: send their start-up chatter (TensorFlow, ZMQ)
        # to _runs/kernels.log and keep the terminal for the progress bar.
        sys.stderr.flush()
        saved = os.dup(2)
        terminal = os.fdopen(os.dup(saved), "w")
        with open(self.runs_dir / "kernels.log", "a") as log:
            os.dup2(log.fileno(), 2)
            try:
                bar = tqdm(
                    self.runs, desc="book runs", unit="run", disable=not progress, file=terminal
                )
                for run in bar:
                    bar.set_postfix_str(run.id)
                    self.results[run.id] = result = self.execute(run)
                    if result.status != "skipped":
                        bar.write(f"{result.status:>11}  {run.id}  {result.seconds:.0f} s")
                bar.close()
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                terminal.close()
        return self.results

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
