"""The ``book`` subcommand of ``python -m hessinit``: its options and its entry point.

Imports: :mod:`hessinit.book.runner` and its steps (when the subcommand runs) and the dataset names
``hessinit.data.NAMES`` (the choices of ``--datasets``), the only import of this layer from the
package below it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def _positive_int(text):
    """An argparse type: an integer >= 1, with a message naming the value.

    >>> _positive_int("2")
    2
    >>> _positive_int("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be an integer >= 1, got '0'
    """
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def add_arguments(parser):
    """Add the options of ``python -m hessinit book`` to ``parser``, and :func:`main` as its func.

    Args:
        parser: An ``argparse.ArgumentParser`` (or a subcommand's parser).

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser(prog="book")
        >>> add_arguments(parser)
        >>> args = parser.parse_args(["--small", "--only", "site/original/*", "--jobs", "2"])
        >>> args.small, args.only, args.force, args.jobs, args.func is main
        (True, ['site/original/*'], False, 2, True)
    """
    from ..data import NAMES

    parser.add_argument(
        "--root",
        type=Path,
        default=Path("."),
        help="the book's root, holding _config.yml, _toc.yml and book/ (default: .)",
    )
    parser.add_argument(
        "--grid", type=Path, default=None, help="the grid file (default: ROOT/book/grid.yml)"
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=NAMES,
        default=None,
        metavar="DATASET",
        help=f"datasets of the per-dataset runs, among {', '.join(NAMES)} (default: the "
        "grid's, mnist-5k)",
    )
    parser.add_argument(
        "--all-datasets",
        action="store_true",
        help=f"every dataset: {' '.join(NAMES)} (needs internet or a Keras cache)",
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="run every notebook at a small size (few steps, small batches)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="PATTERN",
        help="run only runs whose id matches one of these shell patterns (e.g. "
        "'site/original/*'; see --list); the others keep their last results, and those out of "
        "date are reported as stale (default: every run)",
    )
    parser.add_argument("--force", action="store_true", help="rerun even unchanged runs")
    parser.add_argument("--no-build", action="store_true", help="run the notebooks, skip the site")
    parser.add_argument("--list", action="store_true", help="print the runs of the grid and exit")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="run up to N runs at once on a local Dask cluster of N processes (default: one "
        "run at a time in this process)",
    )
    where.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on the Dask scheduler at ADDRESS (tcp://host:8786, or a scheduler file "
        "*.json); its workers need hessinit installed from the same checkout, no shared disk",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        metavar="T",
        help="TensorFlow threads per run (default: 1 with --jobs or --scheduler, else "
        "TensorFlow's own)",
    )
    parser.set_defaults(func=main)


def _summary(results, seconds):
    """One line counting the runs by status, e.g. ``runs: 3 ok, 1 skipped in 12 s``.

    >>> from hessinit.book.plan import Result
    >>> _summary({"a": Result("a", "ok"), "b": Result("b", "stale")}, 12.3)
    'runs: 1 ok, 1 stale in 12 s'
    """
    from .plan import STATUSES

    counts = {}
    for r in results.values():
        counts[r.status] = counts.get(r.status, 0) + 1
    order = sorted(counts, key=lambda k: STATUSES.index(k) if k in STATUSES else len(STATUSES))
    return f"runs: {', '.join(f'{counts[k]} {k}' for k in order)} in {seconds:.0f} s"


def main(args):
    """Run the grid, build the site and report: the ``book`` subcommand.

    Runs whose dataset cannot be loaded are reported and left out of the site without changing
    the exit code; stale runs (not selected by ``--only``) and runs executed again because
    their outputs did not verify are reported, naming the file; failed and timed-out runs, a
    failed build and pages left out of the site as unreadable notebooks (with the command that
    redoes them) are reported on stderr. A Ctrl-C stops the runs, says which finished and which
    a rerun will redo, and builds no site.

    Args:
        args: The options parsed by a parser :func:`add_arguments` filled.

    Returns:
        int: 0 if every run and the build succeeded (or ``--list``), 130 after a Ctrl-C,
        else 1.

    Raises:
        ValueError: For a root without a grid, an ``--only`` pattern that matches no run, or
            a grid it cannot read (``python -m hessinit`` prints these without a traceback).

    Example:
        >>> import argparse, pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "book").mkdir()
        >>> _ = (root / "book" / "grid.yml").write_text(
        ...     "runs: [{notebook: chain_rule, output: site/chain_rule.ipynb, "
        ...     "parameters: {n: 64}, small: {n: 16}}]"
        ... )
        >>> parser = argparse.ArgumentParser()
        >>> add_arguments(parser)
        >>> main(parser.parse_args(["--root", str(root), "--small", "--list"]))
        site/chain_rule {"n": 16, "table": "chain_rule.csv"}
        0
    """
    from ..data import NAMES
    from .runner import build, open_book

    datasets = list(NAMES) if args.all_datasets else args.datasets
    distributed = bool(args.jobs or args.scheduler)
    threads = args.threads or (1 if distributed else None)
    book = open_book(
        args.root,
        args.grid,
        datasets=datasets,
        small=args.small,
        force=args.force,
        only=args.only,
        threads=threads,
    )
    if args.list:
        for run in book.runs:
            print(run.id, json.dumps(run.parameters, sort_keys=True))
        return 0
    pool = None
    if distributed:
        from .pool import DaskPool

        pool = DaskPool(jobs=args.jobs, scheduler=args.scheduler)
    start = time.perf_counter()
    done = build(book, pool=pool, site=not args.no_build, report=lambda done: _report(done, start))
    if done.state.interrupted:
        return 130
    failed = [r for r in done.state.results.values() if r.status in ("failed", "timed out")]
    code = 1 if failed else 0
    if done.site is not None:
        rc, log = done.site
        print(
            f"site: {book.root / '_build' / 'html' / 'index.html'} "
            f"({'ok' if rc == 0 else 'FAILED'}, {done.site_seconds:.0f} s)"
        )
        for page, why in done.left_out.items():
            run_id = Path(page).relative_to("_runs").with_suffix("").as_posix()
            print(
                f"LEFT OUT {page}: {why}; redo it with `python -m hessinit book --force --only "
                f"{run_id}`",
                file=sys.stderr,
            )
            code = 1
        if rc != 0:
            print(log[-5000:], file=sys.stderr)
            code = 1
    return code


def _report(done, start):
    """Print what became of the runs (:func:`main`'s summary), before the site is built.

    Args:
        done: The :class:`hessinit.book.runner.Build` so far.
        start: ``time.perf_counter()`` when the runs started.
    """
    from .schedule import pending

    results = done.state.results
    print(_summary(results, time.perf_counter() - start))
    for dataset, error in done.state.unavailable.items():
        print(f"dataset {dataset} unavailable, its pages are left out: {error}")
    for r in results.values():
        if r.redone:
            print(f"REDONE {r.id}: its outputs did not verify: {r.redone}")
        if r.status == "stale":
            print(f"STALE {r.id}: {r.error}; its page shows older results")
    for r in results.values():
        if r.status in ("failed", "timed out"):
            print(f"{r.status.upper()} {r.id}: {r.error}", file=sys.stderr)
    if done.state.interrupted:
        redo = pending(done.book, done.state)
        print(
            f"interrupted: {len(results)} of {len(done.book.runs)} runs finished (above); a "
            f"rerun of the same command redoes {len(redo)}: {', '.join(redo)}",
            file=sys.stderr,
        )
