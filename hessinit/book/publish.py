"""What the published site ships besides its pages: the results archive and the link check.

:func:`archive` packs the executed notebooks, their CSV tables and the run records under
``_runs/`` into one zip that the site offers for download (:data:`ARCHIVE`, linked from the
introduction). As a Sphinx extension (``_config.yml`` ``extra_extensions``) this module writes it
into the built site at the end of every HTML build, so no build of the site lacks it.
:func:`broken_links` lists the links of a built site that point at nothing inside it (CI checks
the full book with it; external links are left to a check with network access).

Imports: the standard library and :mod:`hessinit.book.notebook`.
"""

from __future__ import annotations

import html.parser
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .notebook import atomic_path

#: The archive's file name at the root of the built site.
ARCHIVE = "hessinit-book-results.zip"
#: What the archive holds, as globs under ``_runs/``.
ARCHIVED = ("**/*.ipynb", "**/*.csv", "records/*.json")


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
