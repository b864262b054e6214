"""What the published site ships besides its pages: the results archive and the link check.

:func:`archive` packs the executed notebooks, their CSV tables and the run records under
``_runs/`` into one zip that the site offers for download (:data:`ARCHIVE`, linked from the
introduction). As a Sphinx extension (``_config.yml`` ``extra_extensions``) this module writes it
into the built site at the end of every HTML build, so no build of the site lacks it.
:func:`published_tables` reads the chapters' tables back from the published archive
(:func:`archive_url`): the collecting chapters' fallback when a notebook runs alone, as in Colab.
:func:`broken_links` lists the links of a built site that point at nothing inside it (CI checks
the full book with it; external links are left to a check with network access).

Imports: the standard library and :mod:`hessinit.book.notebook`; ``hessinit.data`` (whether
downloads are allowed) when the published tables are fetched.
"""

from __future__ import annotations

import html.parser
import io
import json
import os
import posixpath
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .notebook import atomic_path, github_repository, output_folder

#: The archive's file name at the root of the built site.
ARCHIVE = "hessinit-book-results.zip"
#: What the archive holds, as globs under ``_runs/``.
ARCHIVED = ("**/*.ipynb", "**/*.csv", "records/*.json")
#: The environment variable that gives the archive's address instead (a mirror, a ``file://``).
ARCHIVE_URL_ENV = "HESSINIT_RESULTS_URL"


def archive(root, dest):
    """Zip the executed notebooks, tables and run records of the book at ``root`` into ``dest``.

    Members are named by their path under ``_runs/`` (``site/chain_rule.ipynb``); notebooks
    that failed (``_runs/failed/``) and hidden partial files are left out. The zip is written
    to a temporary file first and renamed, so ``dest`` is never half-written.

    Args:
        root: The book's root, holding ``_runs/``.
        dest: The zip file to write; its folder is created if needed.

    Returns:
        list[str]: The archived members, sorted.

    Example:
        >>> import pathlib, tempfile, zipfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "_runs" / "site").mkdir(parents=True)
        >>> for name in ("site/a.ipynb", "site/a.csv", "site/.a.partial.ipynb", "kernels.log"):
        ...     _ = (root / "_runs" / name).write_text("x")
        >>> archive(root, root / "out" / "results.zip")
        ['site/a.csv', 'site/a.ipynb']
        >>> zipfile.ZipFile(root / "out" / "results.zip").read("site/a.csv")
        b'x'
    """
    runs = Path(root) / "_runs"
    members = sorted(
        {
            p.relative_to(runs).as_posix()
            for pattern in ARCHIVED
            for p in runs.glob(pattern)
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(runs).parts)
            and p.relative_to(runs).parts[0] != "failed"
        }
    )
    with atomic_path(dest) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in members:
                zf.write(runs / name, name)
    return members


def archive_url():
    """The address of the published book's results archive, :data:`ARCHIVE`.

    ``$HESSINIT_RESULTS_URL`` when set (a mirror, or a ``file://`` copy); else the archive at
    the root of the book's GitHub Pages site (where ``.github/workflows/book.yml`` deploys it),
    ``https://<owner>.github.io/<name>/``, for the package's repository
    (:func:`hessinit.book.notebook.github_repository`).

    Returns:
        str | None: The address; None when it is not set and the repository is not on GitHub.

    Example:
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"HESSINIT_RESULTS_URL": "file:///m/r.zip"}):
        ...     archive_url()
        'file:///m/r.zip'
        >>> with mock.patch.dict(os.environ, {"HESSINIT_RESULTS_URL": ""}):
        ...     archive_url().endswith(".github.io/hessinit/hessinit-book-results.zip")
        True
    """
    if os.environ.get(ARCHIVE_URL_ENV):
        return os.environ[ARCHIVE_URL_ENV]
    repo = github_repository()
    if not repo:
        return None
    owner, name = repo.split("/", 1)
    if name.lower() == f"{owner.lower()}.github.io":  # the owner's own site, at the root
        return f"https://{name.lower()}/{ARCHIVE}"
    return f"https://{owner.lower()}.github.io/{name}/{ARCHIVE}"


def _read_archive(url):
    """The bytes at ``url``; FileNotFoundError (its message ends a sentence) if unavailable."""
    from hessinit.data import downloads_allowed

    if url is None:
        raise FileNotFoundError(
            f"the book is not published on GitHub, so it has no results archive to read (set "
            f"${ARCHIVE_URL_ENV} to a copy of {ARCHIVE})."
        )
    if urlsplit(url).scheme != "file" and not downloads_allowed():
        raise FileNotFoundError(
            f"downloads are switched off (HESSINIT_OFFLINE is set), so the published tables "
            f"at {url} were not read."
        )
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except (OSError, ValueError) as err:
        raise FileNotFoundError(f"the published tables at {url} cannot be read ({err}).") from err


def published_tables(chapters, dest, url=None):
    """The chapters' tables of the published book, read from its results archive into ``dest``.

    The archive's run records say which run of which notebook succeeded (status ``ok`` or
    ``skipped``) and the name of its table, next to its executed notebook; those tables of the
    notebooks in ``chapters`` are saved under ``dest`` at their paths in the archive.

    Args:
        chapters: The notebooks whose tables are wanted, e.g. ``["original", "dominance"]``.
        dest: The folder the tables are saved in.
        url: The archive's address; None: :func:`archive_url`.

    Returns:
        tuple[list[pathlib.Path], str]: The saved tables, in the order of ``chapters``, and a
        sentence saying where they came from (the archive, the runs' dates and versions).

    Raises:
        FileNotFoundError: the archive cannot be read (not published, offline, unreachable,
            not a zip) or holds none of these tables; the message says why.

    Example:
        >>> import json, pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "_runs" / "records").mkdir(parents=True)
        >>> _ = (root / "_runs" / "a.csv").write_text("x,y")
        >>> record = {"notebook": "a", "output": "a.ipynb", "status": "ok",
        ...           "parameters": {"table": "a.csv"}, "finished": "2026-01-02 03:04:05",
        ...           "versions": {"hessinit": "0.1.0"}}
        >>> _ = (root / "_runs" / "records" / "a.json").write_text(json.dumps(record))
        >>> _ = archive(root, root / "site.zip")
        >>> paths, note = published_tables(["a"], root / "out", (root / "site.zip").as_uri())
        >>> [p.relative_to(root).as_posix() for p in paths], paths[0].read_text()
        (['out/a.csv'], 'x,y')
        >>> print(note)  # doctest: +ELLIPSIS
        These numbers are the published book's, not computed here: the tables of 1 run (a) ...
    """
    url = archive_url() if url is None else url
    data = _read_archive(url)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        records = [
            json.loads(zf.read(n))
            for n in sorted(zf.namelist())
            if n.startswith("records/") and n.endswith(".json")
        ]
        order = list(chapters)
        done = [
            r
            for r in records
            if r.get("notebook") in order
            and r.get("status") in ("ok", "skipped")
            and r.get("parameters", {}).get("table")
        ]
        members = sorted(
            (
                (posixpath.join(posixpath.dirname(r["output"]), r["parameters"]["table"]), r)
                for r in done
            ),
            key=lambda m: (order.index(m[1]["notebook"]), m[0]),
        )
        members = [(m, r) for m, r in members if m in zf.namelist()]
        paths = []
        for member, _ in members:
            with atomic_path(Path(dest, *member.split("/"))) as tmp:
                tmp.write_bytes(zf.read(member))
            paths.append(Path(dest, *member.split("/")))
    except (zipfile.BadZipFile, ValueError, KeyError) as err:
        raise FileNotFoundError(f"{url} is not the book's results archive ({err}).") from err
    if not paths:
        raise FileNotFoundError(f"the published archive {url} holds no table of these chapters.")
    runs = sorted({r["notebook"] for _, r in members}, key=order.index)
    dates = sorted({r["finished"][:10] for _, r in members if r.get("finished")})
    versions = sorted({r.get("versions", {}).get("hessinit", "?") for _, r in members})
    when = f", run on {' to '.join(dict.fromkeys([dates[0], dates[-1]]))}" if dates else ""
    note = (
        f"These numbers are the published book's, not computed here: the tables of "
        f"{len(paths)} run{'s' if len(paths) > 1 else ''} ({', '.join(runs)}) read from {url} "
        f"(hessinit {', '.join(versions)}{when}), saved in {dest}. To compute them here, run "
        f"those chapters first with their outputs next to this notebook."
    )
    return paths, note


class _Links(html.parser.HTMLParser):
    """The ``href`` and ``src`` values and the ``id`` s of one HTML page."""

    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("href", "src") and value:
                self.links.append(value)
            elif key in ("id", "name") and value:
                self.ids.add(value)


def broken_links(site):
    """The links of the built site at ``site`` whose target is not in it.

    Every ``href`` and ``src`` of every page (the HTML files outside ``_static/``, which holds
    the themes' template fragments) that is neither external (a scheme such as
    ``https:`` or ``mailto:``) nor page-local JavaScript must name a file of the site, and its
    ``#fragment``, if any, an ``id`` of that page.

    Args:
        site: The built site (``_build/html``).

    Returns:
        list[str]: ``"page: link"`` for each broken link, sorted (empty when all resolve).

    Example:
        >>> import pathlib, tempfile
        >>> site = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (site / "a.html").write_text(
        ...     '<h1 id="top">A</h1><a href="#top">t</a><a href="b.html#x">b</a>'
        ...     '<img src="missing.png"><a href="https://example.org">e</a>'
        ... )
        >>> _ = (site / "b.html").write_text('<p id="x">B</p><a href="a.html?v=1">a</a>')
        >>> broken_links(site)
        ['a.html: missing.png']
    """
    site = Path(site)
    pages = {}
    for page in site.rglob("*.html"):
        if page.relative_to(site).parts[0] == "_static":
            continue  # the themes' template fragments, not pages
        parser = _Links()
        parser.feed(page.read_text(errors="replace"))
        pages[page.resolve()] = parser
    broken = []
    for page, parser in pages.items():
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("javascript:", "data:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            exists = target.is_file()
            fragment = unquote(parts.fragment)
            if exists and fragment and target in pages and fragment not in pages[target].ids:
                exists = False
            if not exists:
                broken.append(f"{page.relative_to(site.resolve())}: {link}")
    return sorted(broken)


def _write_archive(app, exception):
    """Sphinx ``build-finished`` handler: the archive into the built HTML site."""
    if exception is None and app.builder.format == "html":
        archive(app.srcdir, Path(app.outdir) / ARCHIVE)


def setup(app):
    """Sphinx extension: every HTML build of the book ships :data:`ARCHIVE`.

    Returns:
        dict: The extension's metadata (safe for parallel reading and writing).
    """
    app.connect("build-finished", _write_archive)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def chapter_tables(tables, chapters, output_dir="."):
    """The tables a collecting chapter reads: those given, else next to it, else the published.

    The runner passes ``tables``. Outside it, a chapter run with its default parameters writes
    ``<chapter>.csv`` into its output folder (its parameter ``output_dir``), so the collecting
    chapter looks for each of ``chapters`` in its own ``output_dir``. Where none is there (a
    notebook opened alone in Colab), it reads the tables of the published book from its results
    archive (:func:`published_tables`), saved under ``output_dir/published``. Outside the runner
    it prints a sentence saying where the tables came from.

    Args:
        tables: The tables given (may be empty); used as given.
        chapters: The chapters' names, e.g. ``["original", "dominance"]``.
        output_dir: Where to look: the notebook's parameter ``output_dir``, relative to the
            working directory unless absolute (:func:`hessinit.book.notebook.output_folder`).

    Returns:
        list[str]: ``tables`` if not empty, else the paths of the ``<chapter>.csv`` that exist,
        else those of the published tables.

    Raises:
        FileNotFoundError: none is given, none is next to the notebook and the published
            tables cannot be read (offline, unreachable); the message says what to run first.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "original.csv").write_text("claim,verdict")
        >>> found = chapter_tables([], ["original", "dominance"], folder)  # doctest: +ELLIPSIS
        The tables of original, read from .../original.csv.
        >>> [pathlib.Path(p).name for p in found]
        ['original.csv']
        >>> chapter_tables(["a.csv"], ["original"], folder)
        ['a.csv']
    """
    if tables:
        return list(tables)
    folder = output_folder(output_dir)
    found = [folder / f"{c}.csv" for c in chapters if (folder / f"{c}.csv").exists()]
    if found:
        names = ", ".join(p.stem for p in found)
        print(f"The tables of {names}, read from {', '.join(map(str, found))}.")
        return [str(p) for p in found]
    try:
        paths, note = published_tables(chapters, folder / "published")
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"No tables to collect: none was given (the book's runner passes them), none of "
            f"{', '.join(f'{c}.csv' for c in chapters)} is in {folder}, and {err} Run those "
            f"chapters first with their outputs in {folder} (e.g. papermill "
            f"book/{chapters[0]}.ipynb {folder / chapters[0]}.ipynb, and so on for "
            f"{', '.join(chapters[1:]) or 'no other'}), or pass their tables: "
            '-y "tables: [path/a.csv, path/b.csv]".'
        ) from None
    print(note)
    return [str(p) for p in paths]
