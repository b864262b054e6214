"""Helpers the book's notebooks call: tables, glued numbers, parameters, records, fallbacks.

A notebook writes its tidy results with :func:`write_table` (the CSV the runner hands to the
collecting chapters), puts computed numbers into its prose with :func:`glue` (and shows them as
plain output in Colab, where the book's text cannot insert them), and the reproducibility
chapter lists the run records (:func:`read_records`) and the installed versions
(:func:`versions`). Outside the runner (Colab, a plain ``papermill`` call) a collecting chapter
finds the tables the chapters wrote next to it, else those of the published book, with
:func:`hessinit.book.publish.chapter_tables`, and the performance chapter the committed
benchmark results with :func:`benchmark_results`.

Every relative path a notebook writes to is taken relative to its output folder, the
notebook's parameter ``output_dir`` (default ``"."``, the working directory), which it passes
to each helper that writes (``write_table(frame, table, output_dir)``); the book's runner
passes ``-p output_dir .`` with the kernel started in the executed notebook's folder, and a
reader's ``papermill book/x.ipynb out/x.ipynb -p output_dir out`` puts the tables next to
``out/x.ipynb`` (:func:`output_folder`). No other process is looked at.

A table is shown for reading with :func:`show_table`: chosen columns with their units, a few
rows at a few significant digits, and the full table as a CSV the page links to.

Imports: the standard library only (myst-nb, IPython and pandas when a helper that needs them
is called); nothing from the rest of the package.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import warnings
from contextlib import contextmanager
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


def terminal_progress_bars():
    """In a Jupyter kernel without ipywidgets, make ``tqdm.auto`` the plain bar, silently.

    ``tqdm.auto`` picks the widget bar in a Jupyter kernel; without ipywidgets it warns
    ``TqdmWarning: IProgress not found`` into the notebook's output and falls back to the
    plain text bar. The book's notebooks need no widgets (their training loops show no bar), so
    this takes the fallback without the warning: it imports ``tqdm.auto`` once with that
    warning ignored, and every later ``from tqdm.auto import tqdm`` (in :mod:`hessinit.train`,
    say) gets the plain bar. :mod:`hessinit.book` calls it when imported, which every notebook
    does first. Elsewhere (no kernel, ipywidgets installed, ``tqdm.auto`` already imported) it
    does nothing.

    Returns:
        bool: Whether it chose the plain bar.

    Example:
        >>> terminal_progress_bars()  # not in a Jupyter kernel
        False
    """
    import importlib.util

    if "ipykernel.zmqshell" not in sys.modules or "tqdm.autonotebook" in sys.modules:
        return False
    if importlib.util.find_spec("ipywidgets") is not None:
        return False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import tqdm.auto  # noqa: F401 - imported for its choice of bar

    return True


@contextmanager
def atomic_path(path):
    """A temporary file next to ``path`` that replaces ``path`` when the block succeeds.

    The one way the book writes a file: a reader never sees it half-written, a failure leaves
    the previous file in place and no temporary file behind, and the file gets the usual
    permissions (``0666`` less the umask; ``tempfile.mkstemp`` would give ``0600``).

    Args:
        path: The file to write; its folder is created if needed.

    Yields:
        pathlib.Path: The temporary file to write to.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "out" / "a.txt"
        >>> with atomic_path(path) as tmp:
        ...     _ = tmp.write_text("done")
        >>> path.read_text(), sorted(p.name for p in path.parent.iterdir())
        ('done', ['a.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


#: The parameter that tells a notebook the folder its relative outputs go to. Every notebook
#: declares ``output_dir: str = "."`` in its parameters cell and passes it to the helpers that
#: write (:func:`write_table`, :func:`show_table`,
#: :func:`hessinit.book.publish.chapter_tables`); the book's runner passes it to every run.
OUTPUT_PARAMETER = "output_dir"


def output_folder(output_dir="."):
    """The folder a notebook's relative outputs go to: ``output_dir``, made absolute.

    ``output_dir`` is the notebook's parameter :data:`OUTPUT_PARAMETER`: ``"."`` (the default)
    is the kernel's working directory, which the book's runner sets to the executed notebook's
    folder (and a plain ``papermill`` command to the shell's, or its ``--cwd``); a reader may
    name another (``papermill ... -p output_dir out``). Nothing else is consulted.

    Args:
        output_dir: A folder, relative to the working directory unless absolute.

    Returns:
        pathlib.Path: The absolute folder.

    Example:
        >>> import os
        >>> output_folder() == Path(os.getcwd()), output_folder("/tmp/out")
        (True, PosixPath('/tmp/out'))
    """
    return Path(output_dir or ".").resolve()


def write_table(frame, path, output_dir="."):
    r"""Write ``frame`` as CSV to ``path`` atomically (a temporary file, then a rename).

    A reader never sees a half-written table, and a failure leaves the previous one in place.

    Args:
        frame: A pandas DataFrame; written without its index.
        path: The CSV file, relative to ``output_dir`` unless absolute; its folder is created
            if needed.
        output_dir: The notebook's output folder, its parameter ``output_dir``
            (:func:`output_folder`; default ``"."``, the working directory).

    Returns:
        pathlib.Path: Where it was written (absolute).

    Example:
        >>> import pathlib, tempfile
        >>> import pandas as pd
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "runs"
        >>> written = write_table(pd.DataFrame({"sd": [0.01, 1.0], "H": [2.5, 40.0]}), "t.csv", out)
        >>> written == out / "t.csv", written.read_text()
        (True, 'sd,H\n0.01,2.5\n1.0,40.0\n')
    """
    path = output_folder(output_dir) / path
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


#: Characters escaped in a Markdown table's cells (MyST also reads ``$`` as math).
_MARKDOWN_SPECIAL = "\\`*_[]<>|$"


def _cell(value, digits, na):
    r"""One value as a table cell: ``digits`` significant digits, ``na`` for a missing one.

    >>> [_cell(v, 3, "n/a") for v in (0.000123456, 12345.6, 7, float("nan"), "a_b")]
    ['0.000123', '1.23e+04', '7', 'n/a', 'a\\_b']
    """
    if value is None or (isinstance(value, float) and value != value):
        return na
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        text = str(value)
    elif isinstance(value, int):
        text = str(value)
    else:
        text = f"{value:.{digits}g}"
    return "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in text)


def _flat(frame):
    """``frame`` as plain columns, ready to show as a table.

    A Series becomes one column, an index other than 0, 1, ... leading columns, and multi-level
    column names are joined by spaces.

    >>> import pandas as pd
    >>> wide = pd.DataFrame({"sd": [1, 1, 2], "layer": ["a", "b", "a"], "H": [1.0, 2.0, 3.0]})
    >>> _flat(wide.pivot_table(index="sd", columns="layer", values=["H"])).columns.tolist()
    ['sd', 'H a', 'H b']
    >>> _flat(wide.groupby("layer")["H"].max()).columns.tolist()
    ['layer', 'H']
    """
    import pandas as pd

    if isinstance(frame, pd.Series):
        frame = frame.to_frame(frame.name if frame.name is not None else "value")
    if not (isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0):
        frame = frame.reset_index()
    if isinstance(frame.columns, pd.MultiIndex):
        frame.columns = [
            " ".join(str(level) for level in name if str(level)) for name in frame.columns
        ]
    return frame


class Table:
    """A table as a notebook shows it: Markdown (the site, Jupyter, Colab), else plain text.

    Args:
        markdown: The Markdown (a pipe table and its notes).
        text: The plain-text form.
    """

    def __init__(self, markdown, text):
        self.markdown, self.text = markdown, text

    def __repr__(self):
        """The plain-text table."""
        return self.text

    def _repr_markdown_(self):
        """The Markdown table, for front ends that render it."""
        return self.markdown


def show_table(
    frame, csv=None, columns=None, digits=3, max_rows=12, na="n/a", na_note=None, output_dir="."
):
    r"""A frame as a readable table: chosen columns, significant digits, a few rows, a CSV link.

    Each float is shown with ``digits`` significant digits (``f"{x:.3g}"``), missing values as
    ``na``, and the first ``max_rows`` rows only; the notes under the table say how many rows
    are shown and what ``na`` means, and link the full table, written to ``csv``
    (:func:`write_table`). In the book the CSV link is a download: the site ships the file.

    Args:
        frame: A pandas DataFrame or Series; an index other than 0, 1, ... is shown as leading
            columns, multi-level column names are joined by spaces.
        csv: Where the full ``frame`` (every row and column) is written and linked from, relative
            to ``output_dir`` unless absolute; None: no CSV.
        columns: The columns shown, in order: a list of names, or a dict ``{name: header}``
            whose headers carry the units (``{"seconds": "time (s)"}``); None: all.
        digits: Significant digits of floats.
        max_rows: The most rows shown.
        na: What a missing value shows as.
        na_note: What a missing value means here, said under the table when one is shown
            (default: "no value recorded"), so that no empty cell goes unexplained.
        output_dir: The notebook's output folder, its parameter ``output_dir``
            (:func:`output_folder`): where ``csv`` is written, and what its link is relative to.

    Returns:
        Table: Shown as Markdown by Jupyter, Colab and the book, as text elsewhere.

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"sd": [0.01, 1.0, 10.0], "H": [2.54321, 40.0, None]})
        >>> print(show_table(frame, columns={"sd": "sd", "H": "‖H‖_F"}, max_rows=2,
        ...                  na_note="diverged").markdown)
        | sd | ‖H‖\_F |
        |---:|---:|
        | 0.01 | 2.54 |
        | 1 | 40 |
        <BLANKLINE>
        The first 2 of 3 rows.
    """
    frame = _flat(frame)
    names = list(frame.columns) if columns is None else list(columns)
    headers = columns if isinstance(columns, dict) else {n: n for n in names}
    shown = frame[names].head(max_rows)
    numeric = [frame[n].dtype.kind in "iuf" for n in names]
    rows = [
        [_cell(v.item() if hasattr(v, "item") else v, digits, na) for v in row]
        for row in shown.itertuples(index=False)
    ]
    lines = [
        "| " + " | ".join(_cell(headers[n], digits, na) for n in names) + " |",
        "|" + "|".join("---:" if k else ":---" for k in numeric) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
    notes = []
    if len(frame) > max_rows:
        notes.append(f"The first {max_rows} of {len(frame)} rows.")
    if shown.isna().to_numpy().any():
        notes.append(f"{na}: {na_note or 'no value recorded'}.")
    if csv is not None:
        path = write_table(frame, csv, output_dir)
        link = os.path.relpath(path, output_folder(output_dir)).replace(os.sep, "/")
        size = f"CSV, {len(frame)} rows, {frame.shape[1]} columns"
        notes.append(f"[The full table]({link}) ({size}).")
    markdown = "\n".join(lines) + ("\n\n" + " ".join(notes) if notes else "")
    text = shown.to_string(index=False) + ("\n" + " ".join(notes) if notes else "")
    return Table(markdown, text)


def in_colab():
    """Whether the code runs in Google Colab (its kernel imports ``google.colab`` at start).

    Returns:
        bool: ``True`` in Colab.

    Example:
        >>> in_colab()
        False
    """
    return "google.colab" in sys.modules


class Glued:
    """A glued value as plain output: ``name = value`` (as Markdown where the front end renders it).

    Args:
        name: The key the book's text refers to.
        value: The value.

    Example:
        >>> Glued("ratio", 0.5)
        ratio = 0.5
    """

    def __init__(self, name, value):
        self.name, self.value = name, value

    def __repr__(self):
        """``name = value``."""
        return f"{self.name} = {self.value!r}"

    def _repr_markdown_(self):
        """``**name** = value``, for front ends that render Markdown (Colab, Jupyter)."""
        return f"**{self.name}** = `{self.value!r}`"


def glue(name, value):
    """Glue a value for the book's text: ``myst_nb.glue(name, value, display=False)``.

    Numpy scalars are made Python numbers first, so that format specs in the text such as
    ``{glue:text}`ratio:.3g``` apply. The book's pages insert the value into their text and show
    nothing else. In Colab, or where myst-nb is not installed, the text cannot insert it, so the
    value is also displayed as plain output: ``name = value`` (:class:`Glued`), or the label
    followed by the value itself when it has a rich display (a table, Markdown).

    Args:
        name: The key the text refers to.
        value: A number, a numpy scalar or anything ``myst_nb.glue`` accepts.

    Example:
        >>> import numpy as np
        >>> glue("ratio", np.float64(0.5))  # in the book: nothing visible
        >>> from unittest import mock
        >>> with mock.patch.dict(sys.modules, {"google.colab": object()}):
        ...     glue("ratio", np.float64(0.5))
        ratio = 0.5
    """
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    try:
        from myst_nb import glue as _glue
    except ImportError:
        _glue = None
    if _glue is not None:
        _glue(name, value, display=False)
    if _glue is None or in_colab():
        _show(name, value)


def glue_all(values: dict, markdown: tuple = ()):
    """Glue every entry of ``values`` under its key (:func:`glue`), in order.

    Args:
        values: names -> values, e.g. the words a chapter's tested function computed.
        markdown: the names whose (string) values are Markdown, shown as such.

    Example:
        >>> from unittest import mock
        >>> with mock.patch.dict(sys.modules, {"google.colab": object()}):
        ...     glue_all({"n": 3, "ratio": 0.5})
        n = 3
        ratio = 0.5
    """
    for name, value in values.items():
        if name in markdown:
            from IPython.display import Markdown

            value = Markdown(value)
        glue(name, value)


def _show(name, value):
    """Display a glued value as plain output (IPython's display, else print)."""
    rich = not isinstance(value, (int, float, str, bool)) and any(
        hasattr(value, f"_repr_{kind}_") for kind in ("markdown", "html", "png", "svg", "latex")
    )
    try:
        from IPython.display import display
    except ImportError:
        display = print
    if rich:
        display(Glued(name, "(below)"))
        display(value)
    else:
        display(Glued(name, value))


#: The benchmark's result files that the performance chapter reads.
BENCHMARK_FILES = ("hessian_norms.csv", "tracking.csv")


def benchmark_results(results=""):
    """The folder of the benchmark's committed results, or the address they are published at.

    In order: ``results`` if it is an existing folder; ``benchmarks/results`` of the checkout
    the package was installed from (an editable install, as the README's); else the copy in the
    repository at the installed version, ``<raw files>/v<version>/benchmarks/results``, whose
    address comes from the package's ``Repository`` URL (pyproject's ``[project.urls]``).

    Args:
        results: A folder given as a parameter (the runner passes one); ``""`` to look it up.

    Returns:
        str: A folder, or an ``https://`` address (pandas reads CSVs from either).

    Raises:
        FileNotFoundError: nothing found and the package records no GitHub repository.

    Example:
        >>> import pathlib, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> benchmark_results(folder) == folder
        True
        >>> pathlib.Path(benchmark_results("no/such/folder"), "tracking.csv").name
        'tracking.csv'
    """
    if results and Path(results).is_dir():
        return str(results)
    checkout = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    if all((checkout / f).is_file() for f in BENCHMARK_FILES):
        return str(checkout)
    path = github_repository()
    if not path:
        raise FileNotFoundError(
            f"The benchmark results are not in {results or checkout}; pass the folder that "
            "holds " + " and ".join(BENCHMARK_FILES) + " (benchmarks/results of a clone)."
        )
    version = metadata.version("hessinit")
    return f"https://raw.githubusercontent.com/{path}/v{version}/benchmarks/results"


def github_repository():
    """``owner/name`` of the package's GitHub repository, from its metadata; ``""`` if none.

    The ``Repository`` URL of pyproject's ``[project.urls]`` (the same as ``repository: url``
    in the book's ``_config.yml``, which the Colab badges use; a test checks they agree), as
    the installed package records it, so that it is known in Colab too.

    Returns:
        str: e.g. ``"hessinit/hessinit"``; ``""`` when the repository is not on GitHub.

    Example:
        >>> github_repository().count("/")
        1
    """
    urls = metadata.metadata("hessinit").get_all("Project-URL") or []
    repo = next((u.split(",", 1)[1].strip() for u in urls if u.startswith("Repository")), "")
    if "github.com/" not in repo:
        return ""
    return repo.rstrip("/").split("github.com/", 1)[1]


def read_records(paths, base="."):
    """The run records at ``paths`` (relative to ``base``) as a frame, one row per run.

    Args:
        paths: Run record files (JSON, as the runner writes them under ``_runs/records``).
        base: The folder ``paths`` are relative to.

    Returns:
        pandas.DataFrame: Columns ``run``, ``notebook``, ``status``, ``seconds``, ``finished``
        and ``parameters`` (as sorted JSON); no rows, but these columns, without records (a
        notebook run outside the runner).

    Example:
        >>> import json, pathlib, tempfile
        >>> base = pathlib.Path(tempfile.mkdtemp())
        >>> record = {"id": "site/chain_rule", "notebook": "chain_rule", "status": "ok",
        ...           "seconds": 3.2, "parameters": {"n": 64, "seed": 0}}
        >>> _ = (base / "site__chain_rule.json").write_text(json.dumps(record))
        >>> frame = read_records(["site__chain_rule.json"], base)
        >>> frame.loc[0, ["notebook", "parameters"]].tolist()
        ['book/chain_rule.ipynb', '{"n": 64, "seed": 0}']
        >>> read_records([]).columns.tolist()[:3]
        ['run', 'notebook', 'status']
    """
    import pandas as pd

    columns = ["run", "notebook", "status", "seconds", "finished", "parameters"]
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
    return pd.DataFrame(rows, columns=columns)


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
