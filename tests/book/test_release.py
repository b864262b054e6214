"""The release: pyproject.toml's version is the one source, and everything names ``v<version>``.

The notebooks' install cell, the performance chapter's fallback address, the citation metadata,
the Colab edition's address and the release workflow all derive from ``[project] version``; the
`book` extra installs the book without the test tools.

References: pyproject.toml read with tomllib, CITATION.cff with PyYAML, the committed notebooks
with nbformat, the installed distributions' metadata (importlib.metadata) and packaging's
requirement parser.
"""

import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata

import nbformat
import pytest
import yaml
from notebook_runs import ROOT, notebooks
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from hessinit.book import colab
from hessinit.book import notebook as helpers

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
VERSION = PROJECT["version"]
URL = PROJECT["urls"]["Repository"].rstrip("/")
REPO = URL.removeprefix("https://github.com/")
TEST_TOOLS = {"pytest", "pytest-timeout", "pytest-xdist", "ruff", "playwright"}


def test_every_reference_names_the_release():
    assert colab.release_mismatches(ROOT) == []
    assert colab.release_ref(ROOT) == f"v{VERSION}"


@pytest.mark.parametrize("name", notebooks())
def test_the_install_cell_installs_the_release_and_stops_when_it_fails(name):
    cell = nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4).cells[0].source
    assert f'"git+{URL}@v{VERSION}"' in cell
    assert len(re.findall(r"@v\d", cell)) == 1  # no other release named
    # pip's exit status is checked: a failed install raises, naming the source and the
    # development version to fall back on
    assert "if subprocess.run(pip).returncode:" in cell and "raise RuntimeError(" in cell
    assert f"HESSINIT_SOURCE=git+{URL}@main" in cell and "{source}" in cell


def test_citation_metadata_names_the_version():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert str(cff["version"]) == VERSION
    assert cff["repository-code"].rstrip("/") == URL
    intro = (ROOT / "book" / "intro.md").read_text()
    assert re.findall(r"version\s*=\s*\{([^}]*)\}", intro) == [VERSION]


def test_the_performance_fallback_reads_the_release(monkeypatch):
    """Without a checkout's results, the performance chapter reads the release's copy."""
    monkeypatch.setattr(helpers, "BENCHMARK_FILES", ("no-such-file.csv",))
    url = helpers.benchmark_results("")
    assert url == f"https://raw.githubusercontent.com/{REPO}/v{VERSION}/benchmarks/results"


def test_the_colab_edition_is_published_at_the_release():
    url = colab.edition_url(ROOT, "site/original/mnist-5k.ipynb")
    assert url == (
        f"https://colab.research.google.com/github/{REPO}/blob/colab/v{VERSION}/original/mnist-5k.ipynb"
    )
    assert colab.edition_url(ROOT, "sweep/mnist-5k/sd-1.ipynb") is None  # not a page


def test_the_badges_open_the_release_edition():
    from hessinit.book.grid import Run
    from hessinit.book.page import _badge

    run = Run("site/chain_rule", "chain_rule", "site/chain_rule.ipynb", {})
    assert f'href="{colab.edition_url(ROOT, run.output)}"' in _badge(ROOT, run)


def copy_release_files(dest):
    for name in ("pyproject.toml", "CITATION.cff"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "book", dest / "book", ignore=shutil.ignore_patterns("_static"))


def test_a_version_bump_is_caught_in_every_file_that_still_names_the_old_one(tmp_path):
    copy_release_files(tmp_path)
    text = (tmp_path / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(
        text.replace(f'version = "{VERSION}"', 'version = "9.9.9"')
    )
    left = colab.release_mismatches(tmp_path)
    files = {line.split(":", 1)[0] for line in left}
    expected = {f"book/{n}.{s}" for n in notebooks() for s in ("md", "ipynb")}
    assert files == expected | {"CITATION.cff", "book/intro.md"}, sorted(files)
    assert f"book/chain_rule.md: installs {URL}@v{VERSION}, not {URL}@v9.9.9" in left


def test_the_tag_must_be_the_version():
    assert colab.release_mismatches(ROOT, tag=f"v{VERSION}") == []
    assert colab.release_mismatches(ROOT, tag="v0.0.1") == [
        f"the tag is v0.0.1, not v{VERSION} (the version in pyproject.toml)"
    ]
    result = subprocess.run(
        [sys.executable, "-m", "hessinit.book.colab", "--check-release", "v0.0.1"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1 and "the tag is v0.0.1" in result.stderr


def test_the_release_workflow_checks_the_tag_then_builds_and_publishes():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    on = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert on["push"]["tags"] == ["v*"] and "workflow_dispatch" in on
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    script = "\n".join(s.get("run", "") for s in steps)
    uses = [s.get("uses", "") for s in steps]
    order = [
        'python -m hessinit.book.colab --check-release "$TAG"',  # before anything is built
        "python -m pytest -q tests/book/test_release.py",
        "pip wheel --no-deps",
        "python -m hessinit book",
        "python -m hessinit.book.colab --out _build/colab",
        "gh release create",
        f"git push origin HEAD:{colab.EDITION_BRANCH}",
    ]
    positions = [script.find(command) for command in order]
    assert -1 not in positions, [c for c, p in zip(order, positions, strict=True) if p == -1]
    assert positions == sorted(positions)
    assert any(u.startswith("actions/deploy-pages") for u in uses)


def _closure(requirements):
    """The installed distributions ``requirements`` pull in (Linux), with the extras asked for."""
    seen, todo = set(), [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        if req.marker and not req.marker.evaluate({"extra": "", "platform_system": "Linux"}):
            continue
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        for line in metadata.distribution(req.name).requires or []:
            dep = Requirement(line)
            extras = [""] + sorted(req.extras)
            if not dep.marker or any(dep.marker.evaluate({"extra": e}) for e in extras):
                dep.marker = None
                todo.append(dep)
    return {name for name, _ in seen}


def test_readers_install_the_book_without_the_test_tools():
    extras = PROJECT["optional-dependencies"]
    book = _closure(PROJECT["dependencies"] + extras["book"])
    assert {"papermill", "jupyter-book", "myst-nb", "distributed"} <= book
    assert not TEST_TOOLS & book, TEST_TOOLS & book
    assert TEST_TOOLS <= _closure(extras["test"])  # the reference: the test extra has them


def test_dev_is_the_book_and_the_tests_and_requirements_pin_exactly_that():
    extras = PROJECT["optional-dependencies"]
    assert extras["dev"] == ["hessinit[book,test]"]
    wanted = set()
    for line in PROJECT["dependencies"] + extras["book"] + extras["test"]:
        req = Requirement(line)
        if not req.marker or req.marker.evaluate({"platform_system": "Linux"}):
            wanted.add(canonicalize_name(req.name))
    pinned = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pinned.add(canonicalize_name(Requirement(line).name))
    assert pinned == wanted, pinned ^ wanted
