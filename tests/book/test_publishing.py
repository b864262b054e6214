"""What publishing the book relies on agrees with the one place that names it.

The repository URL lives in ``_config.yml`` (``repository: url``); the citation metadata
(``CITATION.cff``, validated against its schema by ``cffconvert --validate`` in ``.ci/run``), the
"Cite this book" section of the introduction and the Pages workflow must agree with it, with the
package's version and with the lock file the workflow installs from.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _config():
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def test_citation_names_the_configured_repository_and_the_package_version():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert cff["cff-version"] == "1.2.0"
    assert cff["repository-code"] == _config()["repository"]["url"].rstrip("/")
    assert str(cff["version"]) == version
    assert cff["title"] and cff["authors"] and cff["message"]
    intro = (ROOT / "book" / "intro.md").read_text()
    bibtex = intro.split("## Cite this book", 1)[1]
    assert f"url     = {{{cff['repository-code']}}}" in bibtex
    assert f"version = {{{version}}}" in bibtex


def test_the_pages_workflow_builds_from_the_lock_file_and_checks_the_site():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    steps = workflow["jobs"]["build"]["steps"]
    commands = "\n".join(step.get("run", "") for step in steps)
    lock = re.search(r"-c (\S+)", commands)[1]
    assert (ROOT / lock).is_file(), lock
    assert "python -m hessinit book" in commands
    assert "tests/book/test_browser.py" in commands
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    assert "actions/upload-artifact" in uses
    # Only a release deploys the site, so the site, its Colab edition and the package agree.
    release = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    uses = [s.get("uses", "").split("@")[0] for s in release["jobs"]["build"]["steps"]]
    assert "actions/upload-pages-artifact" in uses
    deploy = release["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["permissions"]["pages"] == "write"
