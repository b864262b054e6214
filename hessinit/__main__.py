"""Command line: ``python -m hessinit experiment ...`` and ``python -m hessinit book ...``.

``experiment`` trains the paper's network for each std and writes a CSV and a figure;
``book`` runs every notebook with papermill and builds the site (:mod:`hessinit.book.cli`).

Imports: the top of the package, it may use every layer, each only when its subcommand runs:
:mod:`hessinit.book` only for ``book``; :mod:`hessinit.data`, :mod:`hessinit.train` and
:mod:`hessinit.study.figures` (and with them TensorFlow) only for ``experiment``. Parsing the
command line imports none of them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def _positive_float(text):
    """An argparse type: a positive finite float.

    >>> _positive_float("1e-5")
    1e-05
    """
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def _experiment(args):
    """The ``experiment`` subcommand: train, write ``OUT/DATASET.csv`` and ``.png``, report."""
    from . import data, train
    from .study import figures as plots

    frame_path = args.out / f"{args.dataset}.csv"
    figure_path = args.out / f"{args.dataset}.png"
    dataset = data.load(args.dataset, n=args.n, seed=args.seed)
    start = time.perf_counter()
    frame = train.experiment(
        dataset,
        sds=args.sd,
        steps=args.steps,
        lr=args.lr,
        batch_size=args.batch_size,
        hessian_every=args.hessian_every,
        hessian_batch=args.hessian_batch,
        activation=args.activation,
        seed=args.seed,
        same_batch=args.same_batch,
    )
    elapsed = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    fig = plots.training_curves(frame, title=f"{dataset.name}: loss and exact Hessian norms")
    # Write to temporary names first, so that a failure leaves no half-written result.
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        frame.to_csv(Path(tmp) / "frame.csv", index=False)
        plots.save(fig, Path(tmp) / "figure.png")
        os.replace(Path(tmp) / "frame.csv", frame_path)
        os.replace(Path(tmp) / "figure.png", figure_path)
    at_init = frame[frame["step"] == 0].set_index(["sd", "layer"])[["H", "G", "R"]]
    print(f"\n{len(args.sd)} runs of {args.steps} steps in {elapsed:.1f} s")
    print("Hessian norms at init (Hessian batch of", args.hessian_batch, "images):")
    print(at_init.to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {frame_path} and {figure_path}")


def _parser(book_options):
    """The command line's parser; the ``book`` options are added only if ``book_options``."""
    parser = argparse.ArgumentParser(
        prog="python -m hessinit", description=(__doc__ or "").split("\n\n", 1)[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    exp = sub.add_parser(
        "experiment",
        help="the original experiment with its bugs fixed: writes a CSV and a PNG",
        description="Train the paper's MLP with SGD for each std and track the exact Hessian "
        "norms of every dense layer; writes OUT/DATASET.csv and OUT/DATASET.png.",
    )
    exp.add_argument("--dataset", default="mnist-5k", help="dataset name (default mnist-5k)")
    exp.add_argument(
        "--sd",
        type=_positive_float,
        nargs="+",
        default=[1e-5, 0.01, 1.0],
        help="std of dense1's initial kernel, one run each (default 1e-5 0.01 1)",
    )
    exp.add_argument("--steps", type=int, default=1000)
    exp.add_argument("--lr", type=_positive_float, default=0.01)
    exp.add_argument("--batch-size", type=int, default=32)
    exp.add_argument("--hessian-every", type=int, default=10)
    exp.add_argument("--hessian-batch", type=int, default=1024)
    exp.add_argument("--activation", default="relu")
    exp.add_argument("--n", type=int, default=None, help="use a random subset of n images")
    exp.add_argument("--seed", type=int, default=0)
    exp.add_argument(
        "--same-batch",
        action="store_true",
        help="train on one batch like the original notebook did (its bug)",
    )
    exp.add_argument("--out", type=Path, default=Path("runs"), help="output folder (default runs)")
    exp.set_defaults(func=_experiment)

    book = sub.add_parser("book", help="run every notebook with papermill and build the book")
    if book_options:
        from .book.cli import add_arguments as add_book_arguments

        add_book_arguments(book)
    return parser


def main(argv=None):
    """Parse the command line and run its subcommand.

    Args:
        argv: The arguments (default ``sys.argv[1:]``).

    Returns:
        int: The exit code: 0 on success, 2 for an invalid value found while running (a
        dataset name, a std), or the ``book`` subcommand's code.

    Raises:
        SystemExit: For ``--help`` and for arguments argparse rejects.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    # The book's options (and with them hessinit.book) are loaded only for `book`.
    args = _parser(book_options=argv[:1] == ["book"]).parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
