"""Helpers the book's notebooks call: write a run's table, glue a number into the text, read
run records.

Imports: the standard library (myst-nb and pandas lazily).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path

#: Packages whose versions every run record keeps.
PACKAGES = (
    "hessinit",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "numpy",
    "pandas",
    "matplotlib",
    "papermill",
    "jupyter-book",
    "myst-nb",
    "jupytext",
    "ipykernel",
)


def write_table(frame, path):
    """Write ``frame`` as CSV to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def glue(name, value):
    """``myst_nb.glue(name, value, display=False)`` with numpy scalars made Python numbers, so
    that the book's ``{glue:text}`name:.3g``` formats apply."""
    from myst_nb import glue as _glue

    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    _glue(name, value, display=False)


def read_records(paths, base="."):
    """The run records at ``paths`` (relative to ``base``) as a frame, one row per run."""
    import pandas as pd

    rows = []
    for p in paths:
        rec = json.loads((Path(base) / p).read_text())
        rows.append(
            {
                "run": rec["id"],
                "notebook": f"book/{rec['notebook']}.ipynb",
                "status": rec["status"],
                "seconds": rec.get("seconds"),
                "finished": rec.get("finished"),
                "parameters": json.dumps(rec["parameters"], sort_keys=True),
            }
        )
    return pd.DataFrame(rows)


def versions():
    """Python, platform and the installed versions of :data:`PACKAGES` as a dict."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out
