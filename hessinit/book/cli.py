"""The ``book`` subcommand of ``python -m hessinit``: its options and its entry point.

Imports: :mod:`hessinit.book.runner` (when the subcommand runs) and the dataset names
``hessinit.data.NAMES`` (the choices of ``--datasets``), the only import of this layer from the
package below it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def add_arguments(parser):
    """Add the options of ``python -m hessinit book`` to ``parser``, and :func:`main` as its func.

    Args:
        parser: An ``argparse.ArgumentParser`` (or a subcommand's parser).

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser(prog="book")
        >>> add_arguments(parser)
        >>> args = parser.parse_args(["--small", "--only", "site/original/*"])
        >>> args.small, args.only, args.force, args.func is main
        (True, ['site/original/*'], False, True)
    """
    from ..data import NAMES

    parser.add_argument(
        "--root",
        type=Path,
        default=Path("."),
        help="the book's root, holding _config.yml, _toc.yml and book/ (default .)",
    )
    parser.add_argument("--grid", type=Path, default=None, help="grid file (default book/grid.yml)")
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=NAMES,
        default=None,
        help="datasets of the per-dataset runs (default: the grid's, mnist-5k)",
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
        help="run only runs whose id matches (e.g. 'site/original/*'); the others "
        "keep their last results",
    )
    parser.add_argument("--force", action="store_true", help="rerun even unchanged runs")
    parser.add_argument("--no-build", action="store_true", help="run the notebooks, skip the site")
    parser.add_argument("--list", action="store_true", help="print the runs of the grid and exit")
    parser.set_defaults(func=main)


def main(args):
    """Run the grid, build the site and report: the ``book`` subcommand.

    Runs whose dataset cannot be loaded are reported and left out of the site without changing
    the exit code; failed runs and a failed build are reported on stderr.

    Args:
        args: The options parsed by a parser :func:`add_arguments` filled.

    Returns:
        int: 0 if every run and the build succeeded (or ``--list``), else 1.

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
    from .runner import Runner

    datasets = list(NAMES) if args.all_datasets else args.datasets
    runner = Runner(
        args.root, args.grid, datasets=datasets, small=args.small, force=args.force, only=args.only
    )
    if args.list:
        for run in runner.runs:
            print(run.id, json.dumps(run.parameters, sort_keys=True))
        return 0
    start = time.perf_counter()
    results = runner.run_all()
    counts = {}
    for r in results.values():
        counts[r.status] = counts.get(r.status, 0) + 1
    print(
        f"runs: {', '.join(f'{v} {k}' for k, v in sorted(counts.items()))} "
        f"in {time.perf_counter() - start:.0f} s"
    )
    for dataset, error in runner.unavailable.items():
        print(f"dataset {dataset} unavailable, its pages are left out: {error}")
    failed = [r for r in results.values() if r.status == "failed"]
    for r in failed:
        print(f"FAILED {r.id}: {r.error}", file=sys.stderr)
    code = 1 if failed else 0
    if not args.no_build:
        start = time.perf_counter()
        rc, log = runner.build()
        print(
            f"site: {runner.root / '_build' / 'html' / 'index.html'} "
            f"({'ok' if rc == 0 else 'FAILED'}, {time.perf_counter() - start:.0f} s)"
        )
        if rc != 0:
            print(log[-5000:], file=sys.stderr)
            code = 1
    return code
