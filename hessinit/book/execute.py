"""Executing one run in a temporary folder: the one place a notebook of the grid is executed.

A :class:`Job` carries everything a run needs and nothing of the machine it was made on: the
notebook's JSON, the parameters papermill injects, the files the run reads (by their path
relative to the book's root, with their bytes), the executed notebook's path under ``_runs/``,
the run's wall-clock limit and the code hash the client keys runs with. :func:`execute_job`
rebuilds that small tree in a temporary folder, executes the notebook there with papermill on
the ``hessinit`` kernel (:func:`ensure_kernel`) and returns an :class:`Outcome`: the executed
notebook and every file the run wrote under ``_runs/`` (its table), or what went wrong. The
serial runner calls it in its own process, a Dask worker on another machine; either way only
the client writes under ``_runs/`` (:mod:`hessinit.book.runner`).

Imports: the standard library and :func:`hessinit.book.grid.package_hash`; papermill,
nbclient and the Jupyter kernel machinery when a job is executed.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .grid import RUNS, package_hash
from .notebook import OUTPUT_PARAMETER

#: The Jupyter kernel every run executes on, installed into this environment (``sys.prefix``).
KERNEL = "hessinit"

#: The environment variables that set how many threads TensorFlow and the BLAS libraries use
#: in a kernel. Their number can change a result's last digits (a sum split among threads adds
#: in another order), so a run gets the client's, not those of the process executing it: a
#: Dask worker's nanny sets some of them to 1 (``distributed.nanny.pre-spawn-environ``).
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def _thread_variables(environ):
    """``{name: value or None}`` of :data:`THREAD_VARIABLES` in ``environ``."""
    return {name: environ.get(name) for name in THREAD_VARIABLES}


class KernelError(RuntimeError):
    """The ``hessinit`` kernel is missing and cannot be installed, or runs another Python."""


class CodeMismatchError(RuntimeError):
    """A worker's ``hessinit`` code differs from the client's (another version or checkout)."""


@dataclass
class Job:
    """One run, as a worker without the book's files receives it.

    Attributes:
        id: The run's id (:attr:`hessinit.book.grid.Run.id`).
        notebook: The notebook's name; its JSON is :attr:`source`.
        source: The committed notebook ``book/<notebook>.ipynb``, as text.
        output: The executed notebook's path under ``_runs/``.
        parameters: What papermill injects.
        files: ``{path relative to the book's root: bytes}``, every file the run reads (the
            tables it collects, run records, its ``inputs:``).
        timeout: The wall-clock limit in seconds.
        code_hash: :func:`hessinit.book.grid.package_hash` on the client; the worker's must
            equal it (empty: not checked).
        threads: Threads for TensorFlow and the BLAS in the kernel (``None``: as
            :attr:`environment` says).
        environment: The client's :data:`THREAD_VARIABLES` when the job was made (``None``:
            unset); the kernel gets these, whatever the worker's own environment holds.
    """

    id: str
    notebook: str
    source: str
    output: str
    parameters: dict
    files: dict = field(default_factory=dict)
    timeout: float = 3600.0
    code_hash: str = ""
    threads: int | None = None
    environment: dict = field(default_factory=lambda: _thread_variables(os.environ))


@dataclass
class Outcome:
    """What :func:`execute_job` returns.

    Attributes:
        id: The run's id.
        status: ``ok``, ``failed``, ``unavailable`` (its dataset could not be loaded) or
            ``timed out``.
        seconds: Wall-clock time of the execution.
        error: ``"ExceptionName: message"`` unless ok.
        notebook: The executed notebook (JSON text) when ok, else the partly executed one if
            papermill wrote it, else None.
        files: ``{path under _runs/: bytes}``, the files the run wrote (its table) when ok.
        worker: ``host:pid`` of the process that executed it.
    """

    id: str
    status: str
    seconds: float = 0.0
    error: str = ""
    notebook: str | None = None
    files: dict = field(default_factory=dict)
    worker: str = ""


def _same_python(executable):
    """Whether ``executable`` (a kernel's ``argv[0]``) is this interpreter.

    Paths are compared without resolving links (a virtual environment's ``python`` links to
    the base interpreter but is another environment); ``python`` and ``python3`` in the same
    folder count as the same.

    >>> _same_python(sys.executable), _same_python("/nonexistent/bin/python")
    (True, False)
    """
    import shutil

    path = shutil.which(executable) or executable
    here = os.path.abspath(sys.executable)
    if os.path.abspath(path) == here:
        return True
    try:
        return os.path.dirname(os.path.abspath(path)) == os.path.dirname(here) and (
            os.path.samefile(path, here)
        )
    except OSError:
        return False


def _install_kernel(prefix):
    """Install the ``hessinit`` kernel of this interpreter into ``prefix``, all at once.

    What ``python -m ipykernel install --prefix PREFIX --name hessinit`` installs, but staged
    in a folder beside the destination and renamed into place: workers that start together on
    a fresh environment never see a half-written kernel nor remove each other's (ipykernel's
    own install deletes the destination, then copies into it). The first rename wins; the
    others find a complete kernel there and leave it.

    Args:
        prefix: The environment's root (``sys.prefix``); the kernel goes to
            ``PREFIX/share/jupyter/kernels/hessinit``.

    Returns:
        pathlib.Path: The kernel's folder.

    Raises:
        OSError: If the folder cannot be written.

    Example:
        >>> import json, tempfile
        >>> with tempfile.TemporaryDirectory() as prefix:
        ...     folder = _install_kernel(prefix)
        ...     spec = json.loads((folder / "kernel.json").read_text())
        ...     again = _install_kernel(prefix)  # already there: left as it is
        ...     sorted(p.name for p in folder.parent.iterdir())
        ...     spec["argv"][0] == sys.executable, spec["display_name"], again == folder
        ['hessinit']
        (True, 'Python (hessinit)', True)
    """
    import platform
    import shutil

    from ipykernel.kernelspec import write_kernel_spec

    kernels = Path(prefix) / "share" / "jupyter" / "kernels"
    kernels.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{KERNEL}-", dir=kernels))
    try:
        python = ["-Xfrozen_modules=off"] if platform.python_implementation() == "CPython" else []
        spec = write_kernel_spec(
            staging / KERNEL,
            overrides={"display_name": "Python (hessinit)"},
            python_arguments=python,
        )
        try:
            os.rename(spec, kernels / KERNEL)  # atomic; fails if the kernel is there already
        except OSError:
            if not (kernels / KERNEL / "kernel.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return kernels / KERNEL


def ensure_kernel():
    """Install the ``hessinit`` kernel into this environment if needed; check its Python.

    The kernel is installed into ``sys.prefix`` (``python -m ipykernel install --sys-prefix
    --name hessinit``), so it belongs to the interpreter that runs the book, whatever other
    kernels the user has. A ``hessinit`` kernel found elsewhere on Jupyter's path that starts
    another Python is an error, since its runs would silently use other packages.

    Returns:
        str: The kernel's folder.

    Raises:
        KernelError: If the kernel cannot be installed or runs another interpreter.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        try:
            _install_kernel(sys.prefix)
        except OSError as err:
            raise KernelError(
                f"cannot install the Jupyter kernel {KERNEL!r} into {sys.prefix} ({err}); run "
                f"`{sys.executable} -m ipykernel install --user --name {KERNEL}` and retry"
            ) from err
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    if not spec.argv or not _same_python(spec.argv[0]):
        argv0 = spec.argv[0] if spec.argv else "(nothing)"
        raise KernelError(
            f"the Jupyter kernel {KERNEL!r} in {spec.resource_dir} runs {argv0}, not this "
            f"interpreter {sys.executable}: remove that folder (`jupyter kernelspec remove "
            f"{KERNEL}`), or run `{sys.executable} -m ipykernel install --sys-prefix --name "
            f"{KERNEL}` and make sure no other {KERNEL!r} kernel comes first on JUPYTER_PATH"
        )
    return spec.resource_dir


def kernel_environment(job):
    """The environment variables a job's kernel gets on top of its process's: ``None`` unsets.

    The job's :attr:`Job.environment` (the client's thread variables), each set to
    :attr:`Job.threads` if given, and TensorFlow's C++ logging silenced. So a run has the same
    number of threads in this process and on any Dask worker.

    Args:
        job: A :class:`Job`.

    Returns:
        dict[str, str | None]: Each variable's value, or None to remove it.

    Example:
        >>> client = {"OMP_NUM_THREADS": "4"}  # the client's environment: only OMP set
        >>> job = Job("x", "x", "{}", "x.ipynb", {}, environment=_thread_variables(client))
        >>> env = kernel_environment(job)
        >>> env["OMP_NUM_THREADS"], env["OPENBLAS_NUM_THREADS"], env["TF_CPP_MIN_LOG_LEVEL"]
        ('4', None, '3')
        >>> job.threads = 1
        >>> sorted({v for k, v in kernel_environment(job).items() if k in THREAD_VARIABLES})
        ['1']
    """
    env = {name: job.environment.get(name) for name in THREAD_VARIABLES}
    if job.threads:
        env.update(dict.fromkeys(THREAD_VARIABLES, str(job.threads)))
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def _set_environment(env):
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextmanager
def _environment(job):
    """Set the kernel's environment (:func:`kernel_environment`) for one job, then restore it."""
    env = kernel_environment(job)
    saved = {name: os.environ.get(name) for name in env}
    _set_environment(env)
    try:
        yield
    finally:
        _set_environment(saved)


class _OutputParameter(logging.Filter):
    """Drops papermill's warning that :data:`OUTPUT_PARAMETER` is not in a parameters cell.

    The runner passes it to every notebook; one whose parameters cell does not declare it yet
    gets it all the same (papermill injects it), and writes into its working directory, which
    is the same folder.
    """

    def filter(self, record):
        """Whether to keep ``record``: any but that one warning."""
        return record.getMessage() != f"Passed unknown parameter: {OUTPUT_PARAMETER}"


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def execute_job(job):
    r"""Execute ``job`` in a temporary folder and return its outcome; nothing else is written.

    The folder holds ``book/<notebook>.ipynb``, the job's files at their paths, and
    ``_runs/<output>``, the executed notebook, whose folder is the kernel's working directory
    (so relative paths in the parameters mean what they mean in the book); besides the job's
    parameters the notebook gets ``output_dir = "."``, its output folder
    (:data:`~hessinit.book.notebook.OUTPUT_PARAMETER`, relative to that working directory),
    which it passes to the helpers that write its tables. Each cell may run for what is left
    of the job's time limit.

    Args:
        job: A :class:`Job`.

    Returns:
        Outcome: ``ok`` with the executed notebook and the files written under ``_runs/``
        (the run's ``table`` among them, else it failed), or ``failed`` / ``unavailable`` /
        ``timed out`` with the error. A failing notebook never raises.

    Raises:
        CodeMismatchError: If this process's ``hessinit`` code is not the job's.
        KernelError: If the ``hessinit`` kernel is not this interpreter's
            (:func:`ensure_kernel`).

    Example:
        >>> import nbformat
        >>> nb = nbformat.v4.new_notebook(cells=[
        ...     nbformat.v4.new_code_cell("table = 'x.csv'", metadata={"tags": ["parameters"]}),
        ...     nbformat.v4.new_code_cell("open(table, 'w').write(open('../in.txt').read())"),
        ... ])
        >>> job = Job("site/x", "x", nbformat.writes(nb), "site/x.ipynb", {"table": "x.csv"},
        ...           files={"_runs/in.txt": b"a,b\n1,2\n"}, timeout=60)
        >>> outcome = execute_job(job)
        >>> outcome.status, outcome.files
        ('ok', {'site/x.csv': b'a,b\n1,2\n'})
    """
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if job.code_hash and package_hash() != job.code_hash:
        raise CodeMismatchError(
            f"the hessinit code on {worker} ({Path(__file__).resolve().parents[1]}) is not the "
            "client's: install the same checkout on every worker (the run keys hash the code)"
        )
    ensure_kernel()
    import papermill
    from nbclient.exceptions import CellTimeoutError

    start = time.monotonic()
    deadline = start + job.timeout
    with tempfile.TemporaryDirectory(prefix="hessinit-run-") as tmp, _environment(job):
        root = Path(tmp)
        for rel, data in job.files.items():
            _write(root / rel, data)
        source = root / "book" / f"{job.notebook}.ipynb"
        _write(source, job.source.encode())
        runs = root / RUNS
        out = runs / job.output
        out.parent.mkdir(parents=True, exist_ok=True)
        inputs = {root / rel for rel in job.files}
        status, error = "ok", ""
        quiet = _OutputParameter()
        logging.getLogger("papermill").addFilter(quiet)
        try:
            papermill.execute_notebook(
                str(source),
                str(out),
                # The output folder: the kernel's working directory (``cwd`` below).
                parameters={**job.parameters, OUTPUT_PARAMETER: "."},
                kernel_name=KERNEL,
                language="python",
                cwd=str(out.parent),
                progress_bar=False,
                start_timeout=min(60.0, job.timeout),
                # nbclient asks for each cell's limit: what is left of the run's.
                timeout_func=lambda cell: max(1.0, deadline - time.monotonic()),
            )
        except (CellTimeoutError, TimeoutError) as err:
            status = "timed out"
            error = f"exceeded its limit of {job.timeout:g} s (timeout in grid.yml): {err}"
        except RuntimeError as err:
            # A kernel that does not start within its limit is a RuntimeError of nbclient.
            timed_out = "didn't respond" in str(err) and time.monotonic() >= deadline - 1
            status = "timed out" if timed_out else "failed"
            error = f"{type(err).__name__}: {err}"
            if timed_out:
                error = f"exceeded its limit of {job.timeout:g} s (timeout in grid.yml): {error}"
        except Exception as err:  # noqa: BLE001 - any failure of the run is its outcome
            ename = getattr(err, "ename", type(err).__name__)
            evalue = getattr(err, "evalue", str(err))
            status = "unavailable" if ename == "DatasetUnavailableError" else "failed"
            error = f"{ename}: {evalue}".strip()
        finally:
            logging.getLogger("papermill").removeFilter(quiet)
        notebook = out.read_text() if out.exists() else None
        files = {}
        if status == "ok":
            for path in sorted(runs.rglob("*")):
                if path.is_file() and path != out and path not in inputs:
                    files[path.relative_to(runs).as_posix()] = path.read_bytes()
            table = job.parameters.get("table")
            wanted = (Path(job.output).parent / table).as_posix() if table else None
            if wanted and wanted not in files:
                status, error = "failed", f"the notebook wrote no table {table!r}"
            elif notebook is None:
                status, error = "failed", "papermill wrote no executed notebook"
    return Outcome(
        job.id, status, time.monotonic() - start, error, notebook, files if status == "ok" else {},
        worker,
    )  # fmt: skip
