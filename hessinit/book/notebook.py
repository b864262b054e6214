"""Helpers the book's notebooks call: write a run's table, glue a number, read run records.

A notebook writes its tidy results with :func:`write_table` (the CSV the runner hands to the
collecting chapters), puts computed numbers into its prose with :func:`glue`, and the
reproducibility chapter lists the run records (:func:`read_records`) and the installed versions
(:func:`versions`).

Imports: the standard library only (myst-nb and pandas when a helper that needs them is called);
nothing from the rest of the package.
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
    r"""Write ``frame`` as CSV to ``path`` atomically (a temporary file, then a rename).

    A reader never sees a half-written table, and a failure leaves the previous one in place.

    Args:
        frame: A pandas DataFrame; written without its index.
        path: The CSV file; its folder is created if needed.

    Returns:
        pathlib.Path: ``path``.

    Example:
        >>> import pathlib, tempfile
        >>> import pandas as pd
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "runs" / "table.csv"
        >>> write_table(pd.DataFrame({"sd": [0.01, 1.0], "H": [2.5, 40.0]}), path).read_text()
        'sd,H\n0.01,2.5\n1.0,40.0\n'
    """
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
    """Glue a value for the book's text: ``myst_nb.glue(name, value, display=False)``.

    Numpy scalars are made Python numbers first, so that format specs in the text such as
    ``{glue:text}`ratio:.3g``` apply. Outside a notebook kernel this does nothing visible.

    Args:
        name: The key the text refers to.
        value: A number, a numpy scalar or anything ``myst_nb.glue`` accepts.

    Example:
        >>> import numpy as np
        >>> glue("ratio", np.float64(0.5))
    """
    from myst_nb import glue as _glue

    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    _glue(name, value, display=False)


def read_records(paths, base="."):
    """The run records at ``paths`` (relative to ``base``) as a frame, one row per run.

    Args:
        paths: Run record files (JSON, as the runner writes them under ``_runs/records``).
        base: The folder ``paths`` are relative to.

    Returns:
        pandas.DataFrame: Columns ``run``, ``notebook``, ``status``, ``seconds``, ``finished``
        and ``parameters`` (as sorted JSON).

    Example:
        >>> import json, pathlib, tempfile
        >>> base = pathlib.Path(tempfile.mkdtemp())
        >>> record = {"id": "site/chain_rule", "notebook": "chain_rule", "status": "ok",
        ...           "seconds": 3.2, "parameters": {"n": 64, "seed": 0}}
        >>> _ = (base / "site__chain_rule.json").write_text(json.dumps(record))
        >>> frame = read_records(["site__chain_rule.json"], base)
        >>> frame.loc[0, ["notebook", "parameters"]].tolist()
        ['book/chain_rule.ipynb', '{"n": 64, "seed": 0}']
    """
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
    """Python, the platform and the installed versions of :data:`PACKAGES`.

    Returns:
        dict: ``{"python": ..., "platform": ..., package: version, ...}``; packages that are
        not installed are left out.

    Example:
        >>> import platform
        >>> info = versions()
        >>> info["python"] == platform.python_version() and "hessinit" in info
        True
    """
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out
