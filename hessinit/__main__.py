"""Command line: ``python -m hessinit experiment ...`` and ``python -m hessinit book ...``.

``experiment`` trains the paper's network for each sd and seed (all runs as one compiled program,
:mod:`hessinit.train.stacked`) and writes a CSV and a figure;
``book`` runs every notebook with papermill and builds the site (:mod:`hessinit.book.cli`).

Imports: the top of the package, it may use every layer, each only when its subcommand runs:
:mod:`hessinit.book` only for ``book``; :mod:`hessinit.data`, :mod:`hessinit.train.stacked` and
:mod:`hessinit.study.figures` (and with them TensorFlow) only for ``experiment``. Parsing the
command line, and checking every value of ``experiment`` (its output folder included), imports
none of them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def _positive_float(text):
    """An argparse type: a positive finite number; the error names the value.

    >>> _positive_float("1e-5")
    1e-05
    >>> _positive_float("abc")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: 'abc' is not a positive finite number
    """
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive finite number")
    return value


def _count(minimum):
    """An argparse type: an integer >= ``minimum``; the error names the value.

    >>> _count(1)("5")
    5
    >>> _count(1)("-5")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: '-5' is not an integer >= 1
    """

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= {minimum}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


#: The activations ``experiment`` trains with: the names of
#: :data:`hessinit.nn.activations.REGISTRY` (written out so that the command line can check a
#: name before TensorFlow loads; ``tests/book/test_cli.py`` checks that they agree).
ACTIVATIONS = (
    "linear", "relu", "leaky_relu", "tanh", "sigmoid", "softplus", "gelu", "elu", "selu", "silu",
)  # fmt: skip


def _check_out(path):
    """Refuse an output folder that is a file or cannot be written, before any work.

    The nearest existing folder on the way to ``path`` must take a new file (a real write,
    which also catches read-only file systems and permissions root would bypass in a check).

    >>> _check_out(Path(__file__))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: --out ...__main__.py is an existing file, not a folder: name a folder for the ...
    """
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"--out {path} is an existing file, not a folder: name a folder for the CSV and figure"
        )
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"--out {path}: {parent} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=parent):
            pass
    except OSError as err:
        raise ValueError(
            f"--out {path}: cannot write in {parent} ({err.strerror}); name a writable folder"
        ) from None


def _experiment(args):
    """The ``experiment`` subcommand: train, write ``OUT/DATASET.csv`` and ``.png``, report.

    Every value is checked before TensorFlow loads. The runs (every ``--sd`` with every
    ``--seed``) train as one compiled program (:func:`hessinit.train.stacked.train_runs`).
    """
    _check_out(args.out)
    from . import data  # numpy only: --n and the files are checked before TensorFlow loads

    dataset = data.load(args.dataset, n=args.n, seed=args.seed[0])
    from .study import figures as plots
    from .train import stacked

    frame_path = args.out / f"{args.dataset}.csv"
    figure_path = args.out / f"{args.dataset}.png"
    runs = stacked.grid(sds=args.sd, seeds=args.seed, lrs=[args.lr])
    start = time.perf_counter()
    frame = stacked.train_runs(
        dataset,
        runs,
        steps=args.steps,
        batch_size=args.batch_size,
        hessian_every=args.hessian_every,
        hessian_batch=args.hessian_batch,
        activation=args.activation,
        same_batch=args.same_batch,
    )
    elapsed = time.perf_counter() - start
    diverged = frame.attrs.get("diverged") or {}
    frame.attrs["diverged_at"] = min(diverged.values()) if diverged else None
    args.out.mkdir(parents=True, exist_ok=True)
    fig = plots.training_curves(frame, title=f"{dataset.name}: loss and exact Hessian norms")
    # Write to temporary names first, so that a failure leaves no half-written result.
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        frame.to_csv(Path(tmp) / "frame.csv", index=False)
        plots.save(fig, Path(tmp) / "figure.png")
        os.replace(Path(tmp) / "frame.csv", frame_path)
        os.replace(Path(tmp) / "figure.png", figure_path)
    at_init = frame[frame["step"] == 0].groupby(["sd", "layer"])[["H", "G", "R"]].mean()
    print(f"\n{len(runs)} runs of {args.steps} steps in {elapsed:.1f} s, as one program")
    mean = f", mean over {len(args.seed)} seeds" if len(args.seed) > 1 else ""
    print(f"Hessian norms at init (Hessian batch of {args.hessian_batch} images{mean}):")
    print(at_init.to_string(float_format=lambda v: f"{v:.4g}"))
    for r, step in diverged.items():
        print(f"run sd={runs[r].sd:g} seed={runs[r].seed} diverged at step {step}")
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
        description="Train the paper's MLP with SGD for each sd and seed, all runs as one "
        "compiled program, and track the exact Hessian norms of every dense layer; writes "
        "OUT/DATASET.csv (one row per run, step and layer) and OUT/DATASET.png (mean and "
        "min-max band over the seeds).",
    )
    from .data import NAMES  # the dataset names: no TensorFlow

    exp.add_argument(
        "--dataset", default="mnist-5k", choices=NAMES, help="the dataset (default: %(default)s)"
    )
    exp.add_argument(
        "--sd",
        type=_positive_float,
        nargs="+",
        default=[1e-5, 0.01, 1.0],
        metavar="SD",
        help="sd of dense1's initial kernel, one run each (default: 1e-5 0.01 1)",
    )
    exp.add_argument(
        "--steps", type=_count(1), default=1000, help="SGD steps per run (default: %(default)s)"
    )
    exp.add_argument(
        "--lr", type=_positive_float, default=0.01, help="learning rate (default: %(default)s)"
    )
    exp.add_argument(
        "--batch-size", type=_count(1), default=32, help="training batch (default: %(default)s)"
    )
    exp.add_argument(
        "--hessian-every",
        type=_count(1),
        default=10,
        help="compute the exact Hessian norms every this many steps (default: %(default)s)",
    )
    exp.add_argument(
        "--hessian-batch",
        type=_count(1),
        default=1024,
        help="images the Hessian is computed on (default: %(default)s)",
    )
    exp.add_argument(
        "--activation",
        default="relu",
        choices=ACTIVATIONS,
        metavar="ACTIVATION",
        help=f"hidden activation, one of {', '.join(ACTIVATIONS)} (default: %(default)s)",
    )
    exp.add_argument(
        "--n",
        type=_count(1),
        default=None,
        help="use a random subset of n images (default: the whole dataset)",
    )
    exp.add_argument(
        "--seed",
        type=_count(0),
        nargs="+",
        default=[0],
        metavar="SEED",
        help="seeds of the weights and data order, one run per sd and seed; the first also "
        "draws the --n subset (default: 0)",
    )
    exp.add_argument(
        "--same-batch",
        action="store_true",
        help="train on one batch like the original notebook did (its bug)",
    )
    exp.add_argument(
        "--out", type=Path, default=Path("runs"), help="output folder (default: %(default)s)"
    )
    exp.set_defaults(func=_experiment)

    book = sub.add_parser(
        "book",
        help="run every notebook with papermill and build the book",
        description="Execute the runs of book/grid.yml with papermill into _runs/ (skipping "
        "those whose notebook, parameters, inputs and code are unchanged), in this process or "
        "on Dask, then build the site into _build/html. Exit code 0 when every run and the "
        "build succeeded, 1 when one failed or timed out, 2 for bad arguments, 130 after Ctrl-C.",
    )
    if book_options:
        from .book.cli import add_arguments as add_book_arguments

        add_book_arguments(book)
    return parser


def main(argv=None):
    """Parse the command line and run its subcommand.

    Args:
        argv: The arguments (default ``sys.argv[1:]``).

    Returns:
        int: The exit code: 0 on success, 2 for an invalid value found while running (an
        activation, a book without a grid) or a failed check, 130 after a Ctrl-C, 141 when
        the output's reader went away (``| head``), or the ``book`` subcommand's code.

    Raises:
        SystemExit: For ``--help`` and for arguments argparse rejects.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        # The book's options (and with them hessinit.book) are loaded only for `book`.
        args = _parser(book_options=argv[:1] == ["book"]).parse_args(argv)
        return args.func(args) or 0
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`... | head`): no traceback, and no second
        # error when Python flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
