"""The published results archive read back: the collecting chapters' fallback outside the runner.

A notebook opened alone (Colab) has no tables next to it; ``book.chapter_tables`` then reads the
chapters' tables from the published book's archive (``publish.published_tables``). The tests
serve an archive from this machine (a ``file://`` address, a local HTTP server), never the
network. References: the site address GitHub Pages gives the repository named in
``_config.yml`` and the tables put into the archive. The claims ledger read from the small
book's archive is compared with the runner's in tests/book/test_colab.py.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
import urllib.request

import pandas as pd
import pytest
import yaml
from notebook_runs import ROOT

from hessinit.book import publish

CHAPTERS = ["original", "dominance"]


def _runs(root):
    """A book's _runs/ with an ok, a skipped, a failed and an unrelated run; the archive's path."""
    runs = root / "_runs"

    def run(rid, name, output, status, text):
        (runs / output).parent.mkdir(parents=True, exist_ok=True)
        (runs / output).with_suffix(".csv").write_text(text)
        rec = {"id": rid, "notebook": name, "output": output, "status": status,
               "parameters": {"table": os.path.basename(output)[:-6] + ".csv"},
               "finished": "2026-11-28 10:00:00", "versions": {"hessinit": "0.1.0"}}  # fmt: skip
        (runs / "records").mkdir(parents=True, exist_ok=True)
        (runs / "records" / f"{rid.replace('/', '__')}.json").write_text(json.dumps(rec))

    run("site/original/mnist-5k", "original", "site/original/mnist-5k.ipynb", "ok", "claim\n1\n")
    run("site/dominance", "dominance", "site/dominance.ipynb", "skipped", "claim\n2\n")
    run("site/original/cifar10", "original", "site/original/cifar10.ipynb", "failed", "old\n")
    run("site/chain_rule", "chain_rule", "site/chain_rule.ipynb", "ok", "x\n")
    publish.archive(root, root / "site" / publish.ARCHIVE)
    return root / "site" / publish.ARCHIVE


def test_the_archive_address_is_the_pages_site_of_the_configured_repository(monkeypatch):
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    owner, name = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)/?", url).groups()
    monkeypatch.delenv(publish.ARCHIVE_URL_ENV, raising=False)
    expected = f"https://{owner.lower()}.github.io/{name}/hessinit-book-results.zip"
    assert publish.archive_url() == expected
    monkeypatch.setenv(publish.ARCHIVE_URL_ENV, "https://mirror.example/r.zip")
    assert publish.archive_url() == "https://mirror.example/r.zip"


def test_a_collector_alone_reads_the_published_tables_and_says_so(tmp_path, monkeypatch, capsys):
    archive = _runs(tmp_path)
    monkeypatch.setenv(publish.ARCHIVE_URL_ENV, archive.as_uri())
    out = tmp_path / "out"
    out.mkdir()
    tables = publish.chapter_tables([], CHAPTERS, out)
    published = out / "published" / "site"
    assert tables == [
        str(published / "original" / "mnist-5k.csv"),
        str(published / "dominance.csv"),
    ]
    assert [pd.read_csv(t)["claim"].tolist() for t in tables] == [[1], [2]]
    said = capsys.readouterr().out
    assert "published book's" in said and archive.as_uri() in said and "hessinit 0.1.0" in said
    # tables next to the notebook come first, and the sentence says so
    (out / "dominance.csv").write_text("claim\n3\n")
    assert publish.chapter_tables([], CHAPTERS, out) == [str(out / "dominance.csv")]
    assert "published" not in capsys.readouterr().out


def test_the_published_tables_over_http(tmp_path, monkeypatch):
    archive = _runs(tmp_path)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(archive.parent))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv("HESSINIT_OFFLINE", raising=False)
        monkeypatch.setenv("no_proxy", "*")
        url = f"http://127.0.0.1:{server.server_port}/{archive.name}"
        paths, note = publish.published_tables(["dominance"], tmp_path / "got", url)
    finally:
        server.shutdown()
    assert [p.read_text() for p in paths] == ["claim\n2\n"] and url in note


def test_offline_or_unreachable_says_what_to_run_first(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("HESSINIT_OFFLINE", "1")
    monkeypatch.setenv(publish.ARCHIVE_URL_ENV, "https://hessinit.example/r.zip")
    with pytest.raises(FileNotFoundError) as err:
        publish.chapter_tables([], CHAPTERS, tmp_path)
    message = str(err.value)
    assert "HESSINIT_OFFLINE" in message and "https://hessinit.example/r.zip" in message
    assert f"papermill book/original.ipynb {tmp_path / 'original'}.ipynb" in message
    assert "dominance" in message and "-y" in message
    monkeypatch.undo()
    for url, why in [
        ((tmp_path / "missing.zip").as_uri(), "cannot be read"),
        ((tmp_path / "bad.zip").as_uri(), "is not the book's results archive"),
    ]:
        (tmp_path / "bad.zip").write_text("not a zip")
        with pytest.raises(FileNotFoundError, match=why):
            publish.published_tables(CHAPTERS, tmp_path / "got", url)
    assert not (tmp_path / "got").exists()  # nothing half-written


def test_an_archive_without_these_chapters_is_an_error(tmp_path):
    archive = _runs(tmp_path)
    with pytest.raises(FileNotFoundError, match="holds no table of these chapters"):
        publish.published_tables(["step_size"], tmp_path / "got", archive.as_uri())


# claims run alone against the small book's archive as the published one: tests/book/test_colab.py
# (in a Colab-like environment, its ledger compared with the runner's).
