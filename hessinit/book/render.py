"""The runner's **render** step: the site and its Colab edition, from the pages that exist.

:func:`render` writes ``_runs/_toc.yml`` (:func:`write_toc`: ``_toc.yml`` with only the pages
that exist and are readable notebooks; an unreadable one is left out by name), builds the site
with ``jupyter-book build . -W -n --keep-going`` (zero warnings allowed) and writes the Colab
edition beside it (:func:`hessinit.book.colab.write_edition`).

Imports: the standard library, PyYAML, ``hessinit.book.grid.RUNS``,
:func:`hessinit.book.manifest.unreadable` and :func:`hessinit.book.colab.write_edition`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .colab import write_edition
from .grid import RUNS
from .manifest import unreadable


def toc_files(toc):
    """Every ``file`` a table of contents lists (its root, chapters and sections).

    >>> toc_files({"root": "intro", "parts": [{"chapters": [{"file": "a",
    ...            "sections": [{"file": "b"}]}]}]})
    ['intro', 'a', 'b']
    """
    out = [toc["root"]] if "root" in toc else []

    def walk(entries):
        for entry in entries:
            if "file" in entry:
                out.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return out


def write_toc(root, path):
    """Write to ``path`` the book's ``_toc.yml`` with only the pages that exist and read.

    ``glob:`` entries are expanded to the executed notebooks present; ``file:`` entries
    without a page (a failed run, an unavailable dataset) are dropped, and so are parts left
    empty. A page that is an executed notebook but not readable as one (cut short, not JSON)
    is dropped too, so that the site build never meets it, and returned with why.

    Args:
        root: The book's root, holding ``_toc.yml``.
        path: Where to write the table of contents.

    Returns:
        tuple[pathlib.Path, dict[str, str]]: ``path``, and ``{page: why}`` for each page
        left out because it cannot be read.
    """
    root = Path(root)
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    left_out = {}

    def readable(notebook):
        why = unreadable(notebook.read_bytes())
        if why:
            left_out[notebook.relative_to(root).as_posix()] = why
        return not why

    def exists(doc):
        if (root / f"{doc}.ipynb").exists():
            return readable(root / f"{doc}.ipynb")
        return any((root / f"{doc}{s}").exists() for s in (".md", ".rst"))

    def expand(entries):
        out = []
        for entry in entries:
            if "glob" in entry:
                hits = sorted(
                    str(p.relative_to(root).with_suffix(""))
                    for p in root.glob(entry["glob"] + ".ipynb")
                    if not p.name.startswith(".") and readable(p)
                )
                out += [{"file": h} for h in hits]
            elif "file" in entry and exists(entry["file"]):
                e = dict(entry)
                if "sections" in e:
                    e["sections"] = expand(e["sections"])
                    if not e["sections"]:  # an empty list is a malformed toc
                        del e["sections"]
                out.append(e)
        return out

    parts = [dict(part, chapters=expand(part["chapters"])) for part in toc.get("parts", [])]
    toc["parts"] = [part for part in parts if part["chapters"]]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(toc, sort_keys=False))
    return path, left_out


def remove_unlisted_pages(root, toc):
    """Delete the built HTML of run pages the table of contents ``toc`` no longer lists.

    Sphinx keeps the HTML of pages that left the toc; a run without a page must not keep one.
    """
    root = Path(root)
    listed = set(toc_files(yaml.safe_load(Path(toc).read_text())))
    html_root = root / "_build" / "html"
    for html in (html_root / RUNS).rglob("*.html"):
        if html.relative_to(html_root).with_suffix("").as_posix() not in listed:
            html.unlink()


def render(root):
    """Build the site with ``jupyter-book build -W -n --keep-going``: zero warnings allowed.

    Args:
        root: The book's root.

    Returns:
        tuple[int, str, dict[str, str]]: The exit code, the build's output, and the pages left
        out of the site because they are not readable notebooks, with why (:func:`write_toc`).
    """
    root = Path(root)
    toc, left_out = write_toc(root, root / RUNS / "_toc.yml")
    remove_unlisted_pages(root, toc)
    exe = shutil.which("jupyter-book") or str(Path(sys.executable).parent / "jupyter-book")
    cmd = [exe, "build", str(root), "--toc", str(toc), "-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        return proc.returncode, output, left_out
    # The Colab edition of the same runs, published beside the site (issue: ways in).
    try:
        pages = write_edition(root, root / "_build" / "html" / "colab")
    except (ValueError, FileNotFoundError, OSError) as err:
        return 1, output + f"\nerror: the Colab edition: {err}\n", left_out
    note = f"\nwrote the Colab edition of {len(pages)} pages to _build/html/colab\n"
    return 0, output + note, left_out
