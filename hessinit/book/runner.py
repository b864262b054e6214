"""Executing the grid with papermill and building the site with Jupyter Book.

Imports: :mod:`hessinit.book.grid` and :mod:`hessinit.book.notebook`.
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

KERNEL = "python3"

BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


@dataclass
class Result:
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


def _repository(root):
    config = yaml.safe_load((Path(root) / "_config.yml").read_text())
    repo = config.get("repository", {})
    return repo.get("url", "").rstrip("/"), repo.get("branch", "main")


def colab_url(root, notebook):
    """The Open-in-Colab address of the committed ``book/<notebook>.ipynb``, from the repository
    set in ``_config.yml``."""
    url, branch = _repository(root)
    path = url.split("github.com/", 1)[1]
    return f"https://colab.research.google.com/github/{path}/blob/{branch}/book/{notebook}.ipynb"


def _format_value(value):
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list) and len(value) > 6:
        return ", ".join(map(str, value[:3])) + f", ... ({len(value)} items)"
    return str(value)


def _decorate(nb, run, root):
    """Fold the injected parameters into a small table and add the Colab badge."""
    import nbformat

    index = next(
        (i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", [])),
        None,
    )
    rows = "\n".join(f"| `{k}` | `{_format_value(v)}` |" for k, v in sorted(run.parameters.items()))
    text = (
        f"[![Open In Colab]({BADGE})]({colab_url(root, run.notebook)})\n\n"
        f":::{{dropdown}} Parameters of this run (`{run.id}`)\n"
        f"| parameter | value |\n|---|---|\n{rows}\n:::\n"
    )
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["tags"] = ["run-parameters"]
    if index is None:
        nb.cells.insert(0, cell)
    else:
        tags = nb.cells[index].metadata.setdefault("tags", [])
        tags.append("remove-cell")
        nb.cells.insert(index + 1, cell)
    return nb


class Runner:
    """Runs the grid of a book rooted at ``root`` into ``root/_runs``."""

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
        return self.runs_dir / "records" / (run.id.replace("/", "__") + ".json")

    def read_record(self, run):
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
        out = self.runs_dir / run.output
        return out, out.with_suffix(".csv")

    def _remove_outputs(self, run):
        for p in self._outputs(run):
            p.unlink(missing_ok=True)

    # -- inputs of collecting runs
    def _collect(self, run):
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
        return not self.only or any(fnmatch.fnmatch(run.id, pat) for pat in self.only)

    # -- one run
    def execute(self, run):
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
            nb = _decorate(nbformat.read(partial, as_version=4), run, self.root)
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
        """``_runs/_toc.yml``: ``_toc.yml`` with its globs expanded to existing pages and every
        entry whose page does not exist dropped."""
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

    def build(self, quiet=True):
        """``jupyter-book build`` with zero warnings allowed; returns (exit code, output)."""
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
