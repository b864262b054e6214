"""The run grid: ``book/grid.yml`` expanded into runs, and the key that says a run is current.

One grid file (``book/grid.yml``) lists every papermill run of the book. Each entry names a
notebook ``book/<notebook>.ipynb`` and an output path under ``_runs/``; an output containing
``{dataset}`` is expanded over the datasets, one containing ``{sd}`` over the entry's ``sd`` list.
Each run gets the entry's ``parameters`` (updated by ``small`` with ``--small``), plus
``dataset``/``sd`` where expanded and ``table``, the CSV it writes next to its executed notebook.
An entry with ``collect: <notebook>`` (or a list of notebooks) gets ``tables``, the CSVs of
those notebooks' successful runs, in grid order; ``collect: records`` gets ``records``, the run
records of every other run. An entry's ``inputs`` lists files (relative to the book's root) the
notebook reads: their contents are part of the run's key. ``timeout`` (seconds; at the top of
the file for every run, or in an entry for its runs) limits a run's wall-clock time; ``seconds``
(an entry's rough cost at full size, a scheduling hint only, not part of any key) lets a parallel
build start its longest runs first.

A run is skipped when a record says it succeeded with the same key: the hash of its notebook, its
parameters, its inputs and the package's code (``hessinit/**/*.py``). A failing run is reported and
its stale outputs removed, the others go on; a run whose dataset cannot be loaded offline marks
that dataset unavailable and its pages are left out. The site is built by Jupyter Book from a
table of contents derived from ``_toc.yml`` that keeps only pages that exist (``glob:`` entries
expand to the executed notebooks present; entries matching nothing are dropped).

Imports: the standard library and PyYAML only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

RUNS = "_runs"


@dataclass
class Run:
    """One papermill run: ``book/<notebook>.ipynb`` executed into ``_runs/<output>``.

    Attributes:
        id: The output path without its suffix, e.g. ``"site/original/mnist-5k"``; unique in a
            grid, and the name ``--only`` patterns match.
        notebook: The notebook's name, ``book/<notebook>.ipynb``.
        output: The executed notebook's path under ``_runs/``.
        parameters: What papermill injects into the notebook's ``parameters`` cell.
        dataset: The dataset the run was expanded over, or None.
        collect: The grid entry's ``collect:`` value (a notebook name, a list of them, or
            ``"records"``), or None.
        inputs: What a collecting run read (table hashes, record keys), filled in by the
            runner; part of the run's key.
        files: The entry's ``inputs:``, files relative to the book's root whose contents are
            part of the run's key.
        timeout: The run's wall-clock limit in seconds (the entry's ``timeout:``, else the
            file's, else :data:`TIMEOUT`); a run that exceeds it is reported as timed out.
        seconds: The entry's ``seconds:``, its rough cost at full size (0 when not given): a
            scheduling hint that orders a parallel build
            (:func:`hessinit.book.schedule.longest_first`), nothing else.
    """

    id: str
    notebook: str
    output: str
    parameters: dict
    dataset: str | None = None
    collect: str | list | None = None
    inputs: list = field(default_factory=list)
    files: list = field(default_factory=list)
    timeout: float = 0.0
    seconds: float = 0.0


#: The wall-clock limit of a run, in seconds, when grid.yml sets none.
TIMEOUT = 3600.0


def _timeout(value, where):
    """A ``timeout:`` value of the grid as seconds: a positive number.

    >>> _timeout(90, "grid.yml"), _timeout("1.5", "grid.yml")
    (90.0, 1.5)
    >>> _timeout(0, "grid.yml, entry sd_run")
    Traceback (most recent call last):
    ValueError: grid.yml, entry sd_run: timeout must be a positive number of seconds, got 0
    """
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not seconds > 0:
        raise ValueError(f"{where}: timeout must be a positive number of seconds, got {value!r}")
    return seconds


def _sd_list(spec):
    """The sds of an ``sd:`` entry: a list, or ``{logspace: [first, last, count]}``.

    A log grid has ``count`` points ``10**e`` for exponents evenly spaced from ``first`` to
    ``last``, each rounded to three significant digits (one point: ``10**first``):

    >>> _sd_list({"logspace": [-2, 0, 5]})
    [0.01, 0.0316, 0.1, 0.316, 1.0]
    >>> _sd_list({"logspace": [-1, -1, 1]})
    [0.1]
    >>> _sd_list([1e-5, "0.01", 1])
    [1e-05, 0.01, 1.0]
    """
    if isinstance(spec, dict) and "logspace" in spec:
        start, stop, num = spec["logspace"]
        if num == 1:
            return [float(f"{10**start:.3g}")]
        return [float(f"{10 ** (start + (stop - start) * k / (num - 1)):.3g}") for k in range(num)]
    return [float(v) for v in spec]


def _sd_name(sd):
    """The sd as it appears in output paths.

    >>> _sd_name(0.0316), _sd_name(1e-05), _sd_name(10.0)
    ('0.0316', '1e-05', '10')
    """
    return f"{sd:.3g}"


def read_grid(path, datasets=None, small=False):
    r"""Expand the grid file at ``path`` into a list of :class:`Run`, in order.

    Args:
        path: The grid file, YAML as described in ``book/grid.yml``.
        datasets: The datasets entries with ``{dataset}`` in their output are expanded over
            (default: the file's ``datasets``, else ``["mnist-5k"]``).
        small: Apply each entry's ``small`` overrides (``python -m hessinit book --small``).

    Returns:
        list[Run]: One run per entry and dataset and sd, in the file's order.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If two runs would write the same output, or a ``timeout`` is not positive.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "grid.yml"
        >>> _ = path.write_text(
        ...     "runs:\n"
        ...     "  - notebook: sd_run\n"
        ...     "    output: sweep/{dataset}/sd-{sd}.ipynb\n"
        ...     "    sd: {logspace: [-2, 0, 3]}\n"
        ...     "    parameters: {steps: 300}\n"
        ...     "    small: {steps: 10}\n"
        ... )
        >>> runs = read_grid(path, datasets=["mnist-5k"], small=True)
        >>> [run.id for run in runs]
        ['sweep/mnist-5k/sd-0.01', 'sweep/mnist-5k/sd-0.1', 'sweep/mnist-5k/sd-1']
        >>> runs[1].parameters
        {'steps': 10, 'dataset': 'mnist-5k', 'sd': 0.1, 'table': 'sd-0.1.csv'}
    """
    grid = yaml.safe_load(Path(path).read_text())
    datasets = list(datasets or grid.get("datasets", ["mnist-5k"]))
    default_timeout = _timeout(grid.get("timeout", TIMEOUT), path)
    runs = []
    for entry in grid["runs"]:
        where = f"{path}, entry {entry.get('notebook')}"
        timeout = _timeout(entry["timeout"], where) if "timeout" in entry else default_timeout
        params = dict(entry.get("parameters", {}))
        if small:
            params.update(entry.get("small", {}))
        sd_spec = params.pop("sd", entry.get("sd"))
        sds = _sd_list(sd_spec) if sd_spec is not None else [None]
        out = entry["output"]
        for dataset in datasets if "{dataset}" in out else [None]:
            for sd in sds if "{sd}" in out else [None]:
                output = out.format(dataset=dataset, sd=_sd_name(sd) if sd is not None else "")
                p = dict(params)
                if dataset is not None:
                    p["dataset"] = dataset
                if sd is not None:
                    p["sd"] = sd
                if "collect" not in entry:
                    p["table"] = Path(output).with_suffix(".csv").name
                runs.append(
                    Run(
                        id=str(Path(output).with_suffix("")),
                        notebook=entry["notebook"],
                        output=output,
                        parameters=p,
                        dataset=dataset,
                        collect=entry.get("collect"),
                        files=list(entry.get("inputs", [])),
                        timeout=timeout,
                        seconds=float(entry.get("seconds", 0.0)),
                    )
                )
    ids = [r.id for r in runs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: two runs write the same output")
    return runs


def collected_names(collect):
    """The notebooks a ``collect:`` entry names: one name or a list of names.

    Args:
        collect: one notebook's name, or a list of names.

    Returns:
        list[str]: the names.

    Example:
        >>> collected_names("sd_run"), collected_names(["dominance", "step_size"])
        (['sd_run'], ['dominance', 'step_size'])
    """
    return [collect] if isinstance(collect, str) else list(collect)


def package_hash():
    """The sha256 of the package's code, every ``hessinit/**/*.py``, as part of every run's key.

    Any change to the package's code (a docstring included) reruns every run.

    Returns:
        str: 64 hexadecimal digits.

    Example:
        >>> len(package_hash()) == 64 and package_hash() == package_hash()
        True
    """
    h = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for p in sorted(package.rglob("*.py")):
        h.update(p.relative_to(package).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def file_hash(path):
    """The sha256 of a file's bytes, in hexadecimal.

    Args:
        path: the file.

    Returns:
        str: 64 hexadecimal digits.

    Example:
        >>> import tempfile
        >>> f = tempfile.NamedTemporaryFile(delete=False); _ = f.write(b""); f.close()
        >>> file_hash(f.name)[:12]
        'e3b0c44298fc'
    """
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
