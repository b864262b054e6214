"""Run records and the manifests in them: the runner's **verify** step.

Each run of the grid has one record, ``_runs/records/<id with / as __>.json``
(:func:`record_path`), written last, after the run's files: its key, status, error, versions,
and ``outputs``, the **manifest** of what it wrote under ``_runs/`` (each file's sha256, size
and, for a CSV, row count: :func:`fingerprint`). :func:`verify` compares a run's outputs with
its manifest; a run is skipped only when they match, and the file that does not is named.

Imports: the standard library, ``hessinit.book.grid.RUNS`` and
:func:`hessinit.book.notebook.atomic_path`, :func:`hessinit.book.notebook.versions`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from pathlib import Path

from .grid import RUNS
from .notebook import atomic_path, versions


def write_atomic(path, data):
    """Write ``data`` (bytes) to ``path`` through a temporary file and a rename.

    See :func:`hessinit.book.notebook.atomic_path`.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "a" / "b.txt"
        >>> write_atomic(path, b"done")
        >>> path.read_bytes()
        b'done'
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


def unreadable(data):
    """Why ``data`` is not a notebook's JSON, or ``""``.

    >>> unreadable(b'{"cells": [], "nbformat": 4}'), unreadable(b'{"cells": [')[:19]
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
        if path.suffix == ".ipynb" and unreadable(data):
            return f"{shown} is {unreadable(data)}"
        if "rows" in want and got["rows"] != want["rows"]:
            return f"{shown} has {got['rows']} rows where its manifest records {want['rows']}"
        return (
            f"{shown} differs from its manifest ({got['bytes']} bytes where it records "
            f"{want['bytes']}; another sha256)"
        )
    return ""


def record_path(runs_dir, run):
    """The run's record, ``<runs_dir>/records/<id with / as __>.json``.

    >>> from hessinit.book.grid import Run
    >>> record_path(Path("_runs"), Run("site/chain_rule", "chain_rule", "x.ipynb", {})).as_posix()
    '_runs/records/site__chain_rule.json'
    """
    return Path(runs_dir) / "records" / (run.id.replace("/", "__") + ".json")


def failed_path(runs_dir, run):
    """Where a failed run's partly executed notebook is kept: ``<runs_dir>/failed/<id>.ipynb``."""
    return Path(runs_dir) / "failed" / (run.id.replace("/", "__") + ".ipynb")


def read_record(runs_dir, run):
    """The run's record as a dict, or None if it was never run or cannot be read."""
    try:
        return json.loads(record_path(runs_dir, run).read_text())
    except (OSError, ValueError):
        return None


def write_record(runs_dir, run, key, result, *, code_hash, small, worker="", outputs=None):
    """Write the run's record atomically and return it.

    Args:
        runs_dir: ``_runs/``.
        run: The run (:class:`hessinit.book.grid.Run`).
        key: Its key (None for a run never keyed).
        result: What became of it (its ``status``, ``error`` and ``seconds`` are recorded).
        code_hash: The package's code hash the build keys runs with.
        small: Whether the build runs at the grid's small size.
        worker: ``host:pid`` of the process that executed it.
        outputs: The manifest of its outputs (:func:`fingerprint` by path under ``_runs/``).

    Returns:
        dict: The record.
    """
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
        "code_hash": code_hash,
        "versions": versions(),
        "small": small,
        "worker": worker,
        "outputs": outputs or {},
    }
    write_atomic(record_path(runs_dir, run), json.dumps(rec, indent=1, sort_keys=True).encode())
    return rec


def run_outputs(runs_dir, run):
    """The executed notebook and its table (None for a collecting run without one)."""
    out = Path(runs_dir) / run.output
    table = run.parameters.get("table")
    return out, (out.parent / table if table else None)


def remove_outputs(runs_dir, run):
    """Delete the run's executed notebook and table, where they exist."""
    for p in run_outputs(runs_dir, run):
        if p is not None:
            p.unlink(missing_ok=True)


def verify(runs_dir, run, record=None):
    """Whether the run's outputs are those its record's manifest lists, said in words.

    Args:
        runs_dir: ``_runs/``.
        run: A run.
        record: Its record (default: read from disk).

    Returns:
        str: ``""`` when the executed notebook, the table and every other file the run wrote
        are there with the bytes the manifest records; else what is wrong, naming the file
        (:func:`check`).
    """
    runs_dir = Path(runs_dir)
    record = read_record(runs_dir, run) if record is None else record
    manifest = (record or {}).get("outputs") or {}
    for path in run_outputs(runs_dir, run):
        if path is not None and path.relative_to(runs_dir).as_posix() not in manifest:
            return f"{RUNS}/{path.relative_to(runs_dir).as_posix()} is not in its manifest"
    return check(runs_dir, manifest)
