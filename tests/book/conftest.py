"""The small book, executed and built once per test session and shared by the tests of the site.

``small_book`` copies the book (configuration, ``book/``, the benchmark results it shows) into a
temporary folder and runs ``python -m hessinit book --small`` there: every notebook at a small
size, then the site with ``-W -n`` (a few minutes on 2 cores). The runner's tests
(test_runner.py), the browser test (test_browser.py) and the prose check (test_site_prose.py)
read the same copy; the runner's test that breaks a run comes last in the session, since it
changes the copy.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from hessinit.book import cli as book_cli
from hessinit.book import grid as book_grid
from hessinit.book import runner as book_runner

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def small_book(tmp_path_factory):
    """``(root, exit code)`` of the small book built in a temporary copy."""
    root = tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, root)
    shutil.copytree(ROOT / "book", root / "book")
    shutil.copytree(ROOT / "benchmarks" / "results", root / "benchmarks" / "results")
    parser = argparse.ArgumentParser()
    book_cli.add_arguments(parser)
    # Others may edit hessinit/**/*.py while the tests run: pin the code hash the runner reads.
    with pytest.MonkeyPatch.context() as mp:
        pinned = book_grid.package_hash()
        mp.setattr(book_runner, "package_hash", lambda: pinned)
        code = book_cli.main(parser.parse_args(["--root", str(root), "--small"]))
        yield root, code
