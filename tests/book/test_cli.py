"""The command line: ``python -m hessinit`` (hessinit.__main__) and its ``book`` subcommand."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hessinit.book import cli as book_cli

ROOT = Path(__file__).resolve().parents[2]

#: Modules that parsing ``experiment``'s command line must not import.
HEAVY = ("hessinit.book", "papermill", "tensorflow", "keras", "hessinit.train")


def _loaded_after(code):
    """The heavy modules in sys.modules after running ``code`` in a fresh interpreter."""
    script = (
        "import json, sys\n"
        f"{code}\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} "
        f"or m.startswith({HEAVY!r}))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_hessinit_loads_no_tensorflow():
    assert _loaded_after("import hessinit; hessinit.__version__; dir(hessinit)") == []


def test_experiment_help_loads_neither_the_book_nor_tensorflow():
    code = (
        "from hessinit.__main__ import main\n"
        "try:\n"
        "    main(['experiment', '--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0\n"
    )
    assert _loaded_after(code) == []


def test_book_help_lists_the_book_options():
    out = subprocess.run(
        [sys.executable, "-m", "hessinit", "book", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    for option in ("--small", "--only", "--force", "--no-build", "--list", "--all-datasets"):
        assert option in out
    # plain text: no reStructuredText markup from docstrings
    for markup in ("``", ":mod:", ":func:", ":class:"):
        assert markup not in out, markup
    top = subprocess.run(
        [sys.executable, "-m", "hessinit", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "experiment" in top and "book" in top


def test_experiment_rejects_a_non_positive_sd(capsys):
    from hessinit.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "--sd", "0"])
    assert exit_info.value.code == 2
    assert "argument --sd: '0' is not a positive finite number" in capsys.readouterr().err


def _args(*argv):
    parser = argparse.ArgumentParser()
    book_cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_book_list_prints_every_run_of_the_grid(capsys):
    args = _args("--root", str(ROOT), "--list", "--datasets", "mnist-5k", "svhn")
    assert book_cli.main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    ids = [line.split(" ", 1)[0] for line in lines]
    assert {"site/chain_rule", "site/original/mnist-5k", "site/original/svhn"} <= set(ids)
    assert len(ids) == len(set(ids))
    assert json.loads(lines[0].split(" ", 1)[1])["table"] == "chain_rule.csv"


def test_all_datasets_and_dataset_choices_come_from_the_data_package(capsys):
    from hessinit.data import NAMES

    book_cli.main(_args("--root", str(ROOT), "--list", "--all-datasets"))
    ids = capsys.readouterr().out
    assert all(f"site/original/{name} " in ids for name in NAMES)
    with pytest.raises(SystemExit):
        _args("--datasets", "no-such-dataset")


def _cli(*argv, cwd=ROOT, **kw):
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "hessinit", *argv], capture_output=True, text=True, cwd=cwd, **kw
    )
    return proc, time.monotonic() - start


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sd", "abc"], "argument --sd: 'abc' is not a positive finite number"),
        (["--steps", "-5"], "argument --steps: '-5' is not an integer >= 1"),
        (["--lr", "0"], "argument --lr: '0' is not a positive finite number"),
        (["--dataset", "nope"], "argument --dataset: invalid choice: 'nope'"),
    ],
)
def test_experiment_rejects_bad_values_by_name_before_importing_tensorflow(argv, message):
    proc, seconds = _cli("experiment", *argv)
    assert proc.returncode == 2 and message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert seconds < 5  # TensorFlow's import alone takes 10 s or more here


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--activation", "nosuch"], "argument --activation: invalid choice: 'nosuch'"),
        (["--out", "pyproject.toml"], "--out pyproject.toml is an existing file, not a folder"),
        (["--out", "pyproject.toml/runs"], "--out pyproject.toml/runs: pyproject.toml is a file"),
    ],
)
def test_experiment_refuses_activation_and_output_before_importing_tensorflow(argv, message):
    proc, seconds = _cli("experiment", *argv)
    assert proc.returncode == 2 and message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert seconds < 5  # TensorFlow's import alone takes 10 s or more here


def test_experiment_refuses_an_unwritable_output_folder(tmp_path):
    """A real write is tried (root passes every permission check): a read-only folder for a
    user, /proc (where even root cannot create files) for root."""
    import os

    if os.geteuid() == 0:
        target = Path("/proc/hessinit-runs")
        if not Path("/proc").is_dir():
            pytest.skip("no /proc to stand for an unwritable folder")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "runs"
    proc, seconds = _cli("experiment", "--out", str(target))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"--out {target}: cannot write in {target.parent}" in proc.stderr
    assert seconds < 5 and not target.exists()


def test_experiment_activations_are_the_registry():
    """The command line lists the names (to check them without TensorFlow); they must be the
    registry's, in its order."""
    from hessinit.__main__ import ACTIVATIONS
    from hessinit.nn.activations import REGISTRY

    assert ACTIVATIONS == tuple(REGISTRY)


def test_experiment_help_shows_defaults_and_choices():
    proc, _ = _cli("experiment", "--help")
    for text in ("(default: 1000)", "(default: 0.01)", "{mnist-5k,mnist,", "(default: relu)"):
        assert text in proc.stdout


def test_book_user_errors_are_one_line_without_traceback(tmp_path):
    proc, _ = _cli("book", "--root", str(tmp_path))  # not a checkout
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"no grid file at {tmp_path / 'book' / 'grid.yml'}" in proc.stderr
    assert "--root" in proc.stderr
    proc, _ = _cli("book", "--only", "nomatch*", "--no-build")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--only nomatch* matches no run; the runs are: site/chain_rule," in proc.stderr
    for bad in (["--jobs", "0"], ["--jobs", "2", "--scheduler", "tcp://x:1"]):
        proc, _ = _cli("book", *bad)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, bad


def test_book_list_into_a_closed_pipe_is_quiet():
    proc = subprocess.run(
        f"{sys.executable} -m hessinit book --list --all-datasets | head -1",
        shell=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout.startswith("site/chain_rule ")
    assert proc.stderr == ""
