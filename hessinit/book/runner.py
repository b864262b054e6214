"""Running the grid (serially or on Dask) and building the site: a pipeline of four steps.

:func:`build` reads as the pipeline. It opens the book (:func:`open_book`: the settings and the
grid of :func:`hessinit.book.grid.read_grid`) and takes its runs in dependency order (a
collecting run after the runs it collects) through four named steps, each a module of its own:

1. **plan** (:func:`hessinit.book.plan.plan`): what to do with a run: a result at once
   (``skipped`` when its record holds the same key and its outputs verify; ``stale``,
   ``unavailable``, ``empty``, or ``failed`` to read its inputs), or a
   :class:`hessinit.book.execute.Job`;
2. **execute** (:func:`hessinit.book.schedule.run_all`): the jobs go to a pool
   (:mod:`hessinit.book.pool`: this process, or a Dask cluster), and what comes back is written
   under ``_runs/`` by this process alone (:func:`hessinit.book.schedule.record`): the run's
   files and its executed notebook, each atomically, then its record, last: the record is the
   **manifest** of those outputs (each file's sha256, size and, for a CSV, row count);
3. **verify** (:func:`hessinit.book.manifest.verify`): a run's outputs against its manifest. A
   run is skipped only when they verify; one whose file is missing, cut short or changed (a
   truncated table, a notebook that is no longer JSON) is executed again, and the build names
   the file;
4. **render** (:func:`hessinit.book.render.render`): the site, built with ``jupyter-book build
   . -W -n --keep-going`` from a table of contents that lists only the pages that exist and are
   readable notebooks; an unreadable one is left out by name.

Every outcome is recorded, so an old record never outlives a newer outcome. :class:`Runner`
holds one build's book and state for callers that take the steps one at a time (the tests, the
scaling benchmark); each of its methods is one step's function.

Imports: the standard library, :mod:`hessinit.book.grid` and the step modules
(:mod:`~hessinit.book.plan`, :mod:`~hessinit.book.schedule`, :mod:`~hessinit.book.manifest`,
:mod:`~hessinit.book.render`); nbformat, tqdm and Dask only when runs are executed. Nothing
from the numerical core: the notebooks import that themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .grid import RUNS, package_hash, read_grid
from .manifest import check, fingerprint, read_record, record_path, verify
from .plan import (
    STATUSES,
    Book,
    BookNotFoundError,
    Result,
    dependencies,
    run_key,
    selected,
    unmatched_patterns,
)
from .render import render, write_toc
from .schedule import State, pending, run_all

__all__ = [
    "STATUSES",
    "Book",
    "BookNotFoundError",
    "Build",
    "Result",
    "Runner",
    "build",
    "check",
    "fingerprint",
    "open_book",
]


def open_book(
    root=".", grid=None, datasets=None, small=False, force=False, only=None, threads=None
):
    """The book at ``root`` with its grid read: the pipeline's input.

    Args:
        root: The book's root, holding ``_config.yml``, ``_toc.yml`` and ``book/``.
        grid: The grid file (default ``root/book/grid.yml``).
        datasets: The datasets of the per-dataset runs (default: the grid's).
        small: Run at the grid's small size (``--small``).
        force: Rerun even runs whose record says they are current.
        only: ``fnmatch`` patterns of run ids; other runs keep their last results and are
            reported as stale when those are out of date.
        threads: Threads for TensorFlow in each run (``None``: TensorFlow's default).

    Returns:
        hessinit.book.plan.Book: With the grid's runs and the package's code hash.

    Raises:
        hessinit.book.plan.BookNotFoundError: If there is no grid file.
        ValueError: If an ``only`` pattern matches no run (the message lists the runs).

    Example:
        >>> import pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "book").mkdir()
        >>> _ = (root / "book" / "grid.yml").write_text(
        ...     "runs: [{notebook: chain_rule, output: site/chain_rule.ipynb}]"
        ... )
        >>> [run.id for run in open_book(root).runs]
        ['site/chain_rule']
        >>> try:
        ...     open_book(root, only=["site/nomatch*"])
        ... except ValueError as error:
        ...     print(error)
        --only site/nomatch* matches no run; the runs are: site/chain_rule
    """
    root = Path(root).resolve()
    grid = Path(grid) if grid else root / "book" / "grid.yml"
    if not grid.is_file():
        raise BookNotFoundError(
            f"no grid file at {grid}: run `python -m hessinit book` from the root of a "
            "hessinit checkout (the folder holding _config.yml, _toc.yml and book/), or "
            "pass --root (and --grid)"
        )
    runs = read_grid(grid, datasets=datasets, small=small)
    unmatched = unmatched_patterns(runs, only)
    if unmatched:
        raise ValueError(
            f"--only {' '.join(unmatched)} matches no run; the runs are: "
            + ", ".join(r.id for r in runs)
        )
    return Book(root, grid, runs, small, force, only, threads, code_hash=package_hash())


@dataclass
class Build:
    """What :func:`build` did.

    Attributes:
        book: The book built (:class:`hessinit.book.plan.Book`).
        state: The runs' results, the unavailable datasets and whether a Ctrl-C stopped it
            (:class:`hessinit.book.schedule.State`).
        site: ``(exit code, output)`` of the site build; None when it was not built.
        site_seconds: The site build's wall-clock time.
        left_out: The pages left out of the site as unreadable notebooks, with why.
    """

    book: Book
    state: State
    site: tuple | None = None
    site_seconds: float = 0.0
    left_out: dict = field(default_factory=dict)


def build(book, pool=None, progress=True, site=True, report=None):
    """The pipeline: plan, execute and verify every run in dependency order, then render.

    Args:
        book: The book (:func:`open_book`).
        pool: Where jobs execute (:mod:`hessinit.book.pool`); default this process.
        progress: Show a progress bar and a line per executed run.
        site: Build the site after the runs (unless a Ctrl-C stopped them).
        report: Called with the :class:`Build` once the runs are done, before the site is
            built (the command line prints its summary there).

    Returns:
        Build: The results, and the site build's exit code and output.
    """
    done = Build(book, run_all(book, pool=pool, progress=progress))  # plan, execute, verify
    if report is not None:
        report(done)
    if site and not done.state.interrupted:
        start = time.perf_counter()
        rc, output, done.left_out = render(book.root)
        done.site, done.site_seconds = (rc, output), time.perf_counter() - start
    return done


class Runner:
    """One build of the book at ``root``, taken a step at a time: plan, execute, verify, render.

    A thin holder of a :class:`hessinit.book.plan.Book` (:func:`open_book`, same arguments)
    and a :class:`hessinit.book.schedule.State`; each method is one step's function.

    Attributes:
        book (hessinit.book.plan.Book): The settings and the grid.
        state (hessinit.book.schedule.State): The results so far.
        left_out (dict[str, str]): The pages :meth:`render` left out of the site because they
            are not readable notebooks, with why.

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

    def __init__(
        self, root=".", grid=None, datasets=None, small=False, force=False, only=None, threads=None
    ):
        self.book = open_book(root, grid, datasets, small, force, only, threads)
        self.state = State()
        self.left_out: dict[str, str] = {}

    root = property(lambda self: self.book.root, doc="The book's root.")
    runs = property(lambda self: self.book.runs, doc="The grid's runs, in order.")
    runs_dir = property(lambda self: self.book.runs_dir, doc="``root/_runs``.")
    results = property(lambda self: self.state.results, doc="What became of each run.")
    unavailable = property(lambda self: self.state.unavailable, doc="Unloadable datasets.")
    interrupted = property(lambda self: self.state.interrupted, doc="Stopped by a Ctrl-C.")

    @property
    def code_hash(self):
        """str: The code hash the runs are keyed with; set it to act as another checkout."""
        return self.book.code_hash

    @code_hash.setter
    def code_hash(self, value):
        self.book.code_hash = value

    def record_path(self, run):
        """:func:`hessinit.book.manifest.record_path` of ``run``."""
        return record_path(self.runs_dir, run)

    def read_record(self, run):
        """:func:`hessinit.book.manifest.read_record` of ``run``."""
        return read_record(self.runs_dir, run)

    def dependencies(self, run):
        """:func:`hessinit.book.plan.dependencies` of ``run``."""
        return dependencies(self.runs, run)

    def key(self, run):
        """:func:`hessinit.book.plan.run_key` of ``run``."""
        return run_key(self.book, run)

    def selected(self, run):
        """:func:`hessinit.book.plan.selected`: whether ``--only`` selects ``run``."""
        return selected(self.book, run)

    def verify(self, run, record=None):
        """:func:`hessinit.book.manifest.verify` of ``run``."""
        return verify(self.runs_dir, run, record)

    def pending(self):
        """The ids of the runs without a result yet: what a rerun will do."""
        return pending(self.book, self.state)

    def run_all(self, progress=True, pool=None):
        """Plan, execute and verify every run (:func:`hessinit.book.schedule.run_all`).

        Returns:
            dict[str, hessinit.book.plan.Result]: :attr:`results`.
        """
        run_all(self.book, self.state, pool=pool, progress=progress)
        return self.results

    def write_toc(self):
        """Write ``_runs/_toc.yml`` (:func:`hessinit.book.render.write_toc`); set left_out.

        Returns:
            pathlib.Path: The table of contents written.
        """
        path, self.left_out = write_toc(self.root, self.root / RUNS / "_toc.yml")
        return path

    def render(self):
        """Build the site (:func:`hessinit.book.render.render`); set :attr:`left_out`.

        Returns:
            tuple[int, str]: The exit code and the build's output.
        """
        rc, output, self.left_out = render(self.root)
        return rc, output
