"""How an executed notebook is presented as a page of the site.

:func:`decorate` folds the parameters papermill injected into a small table and puts the
Open-in-Colab badge on the page; :func:`colab_url` is the badge's address, built from the one
place that names the repository, ``repository:`` in the book's ``_config.yml``.

It is also a small Sphinx extension (:func:`setup`) that lists each script of a page once.

Imports: the standard library, PyYAML and :mod:`hessinit.study.claims` (the figure-label rule);
nbformat when a notebook is decorated.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..study.claims import figure_label
from .colab import edition_url


def _repository(root):
    """The ``(url, branch)`` of ``repository:`` in the book's ``_config.yml``."""
    config = yaml.safe_load((Path(root) / "_config.yml").read_text())
    repo = config.get("repository", {})
    return repo.get("url", "").rstrip("/"), repo.get("branch", "main")


def colab_url(root, notebook):
    """The Open-in-Colab address of the committed ``book/<notebook>.ipynb``, or None.

    Colab opens notebooks from GitHub only: for a repository elsewhere (or none configured)
    there is no such address, and the page goes without a badge.

    Args:
        root: The book's root; its ``_config.yml`` sets ``repository: url`` (a GitHub
            address) and ``branch``.
        notebook: The notebook's name.

    Returns:
        str | None: The address Colab opens the notebook from; None when ``repository: url``
        is not a ``https://github.com/<owner>/<name>`` address.

    Example:
        >>> import pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (root / "_config.yml").write_text(
        ...     "repository: {url: https://github.com/hessinit/hessinit, branch: main}"
        ... )
        >>> colab_url(root, "chain_rule")  # doctest: +NORMALIZE_WHITESPACE
        'https://colab.research.google.com/github/hessinit/hessinit/blob/main/book/chain_rule.ipynb'
        >>> _ = (root / "_config.yml").write_text("repository: {url: https://gitlab.com/a/b}")
        >>> colab_url(root, "chain_rule") is None
        True
    """
    url, branch = _repository(root)
    match = re.fullmatch(r"https://github\.com/([^/\s]+/[^/\s]+?)(?:\.git)?", url)
    if not match:
        return None
    return (
        f"https://colab.research.google.com/github/{match[1]}/blob/{branch}/book/{notebook}.ipynb"
    )


def _badge(root, run):
    """The Markdown of the page's Open-in-Colab badge (empty without a GitHub repository).

    It opens the page's Colab edition at the release the notebooks install
    (:func:`hessinit.book.colab.edition_url`), which keeps the run's parameters (a per-dataset
    page's dataset included).
    """
    url = edition_url(root, run.output)
    if url is None:
        return ""
    return f'<a class="colab-badge" href="{url}">Open in Colab</a>\n'


def _under_title(source, badge, dataset):
    r"""``source`` with ``badge`` under its first ``# `` heading, which names ``dataset`` if set.

    >>> print(_under_title("# The run\nText.", "BADGE", "mnist"))
    # The run: mnist
    <BLANKLINE>
    BADGE
    Text.
    """
    lines = source.splitlines()
    i = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
    if i is None:
        return None
    if dataset is not None:
        lines[i] = f"{lines[i]}: {dataset}"
    return "\n".join(lines[: i + 1] + ["", badge.rstrip("\n")] + lines[i + 1 :])


def _format_value(value):
    """A parameter's value as the folded parameters table shows it.

    >>> _format_value(1e-05), _format_value([1, 2, 3, 4, 5, 6, 7])
    ('1e-05', '1, 2, 3, ... (7 items)')
    """
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list) and len(value) > 6:
        return ", ".join(map(str, value[:3])) + f", ... ({len(value)} items)"
    return str(value)


def _alt_from_captions(nb):
    """Give each captioned figure's image its caption as alt text (MyST-NB cell metadata).

    A cell's ``mystnb: figure: caption`` becomes ``mystnb: image: alt`` unless that is set;
    MyST-NB would otherwise use the image's file name.

    >>> import nbformat
    >>> cell = nbformat.v4.new_code_cell("plot()")
    >>> cell.metadata["mystnb"] = {"figure": {"caption": "Norms against the sd."}}
    >>> nb = nbformat.v4.new_notebook(cells=[cell])
    >>> _alt_from_captions(nb).cells[0].metadata["mystnb"]["image"]
    {'alt': 'Norms against the sd.'}
    """
    for cell in nb.cells:
        options = cell.metadata.get("mystnb", {})
        caption = options.get("figure", {}).get("caption")
        if cell.cell_type == "code" and caption:
            options.setdefault("image", {}).setdefault("alt", " ".join(str(caption).split()))
    return nb


def _label_figures(nb, dataset):
    """Suffix each figure's label with ``dataset``: ``<figure>-<dataset>``.

    Every dataset's page of a per-dataset chapter has the same figures; Sphinx needs labels
    unique in the book (a second ``fig-cnn`` is a warning, which fails the ``-W`` build). The
    label is :func:`hessinit.study.claims.figure_label`'s, the rule the claims ledger links by.

    >>> import nbformat
    >>> cell = nbformat.v4.new_code_cell("plot()")
    >>> cell.metadata["mystnb"] = {"figure": {"caption": "Norms.", "name": "fig-cnn"}}
    >>> nb = nbformat.v4.new_notebook(cells=[cell])
    >>> _label_figures(nb, "svhn").cells[0].metadata["mystnb"]["figure"]["name"]
    'fig-cnn-svhn'
    """
    for cell in nb.cells:
        figure = cell.metadata.get("mystnb", {}).get("figure", {})
        if cell.cell_type == "code" and figure.get("name"):
            figure["name"] = figure_label(figure["name"], f"page/{dataset}")
    return nb


def decorate(nb, run, root):
    """Present an executed notebook as a page of the site.

    The Open-in-Colab badge goes right under the page's title (a per-dataset page's title gets
    ``: <dataset>``, so that its sidebar entry and ``<title>`` differ from the other datasets'),
    the parameters papermill injected are folded into a small table in place of their cell,
    each figure's caption becomes its image's alt text, and a per-dataset page's figures are
    labelled ``<figure>-<dataset>``, so that the datasets' pages do not share labels.

    Args:
        nb: The executed notebook (nbformat), changed in place.
        run: Its run (:class:`hessinit.book.grid.Run`).
        root: The book's root, whose ``_config.yml`` names the repository.

    Returns:
        The notebook.
    """
    import nbformat

    _alt_from_captions(nb)
    if run.dataset is not None:
        _label_figures(nb, run.dataset)
    badge = _badge(root, run)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            titled = _under_title(cell.source, badge, run.dataset)
            if titled is not None:
                cell.source = titled
                break
    index = next(
        (i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", [])),
        None,
    )
    rows = "\n".join(f"| `{k}` | `{_format_value(v)}` |" for k, v in sorted(run.parameters.items()))
    text = (
        f":::{{dropdown}} Parameters of this run (`{run.id}`)\n"
        f"| parameter | value |\n|---|---|\n{rows}\n:::\n"
    )
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["tags"] = ["run-parameters"]
    if index is None:
        nb.cells.insert(0, cell)
    else:
        tags = nb.cells[index].metadata.setdefault("tags", [])
        tags.append("remove-cell")
        nb.cells.insert(index + 1, cell)
    return nb


def _unique_scripts(app, pagename, templatename, context, doctree):
    """Drop repeated ``<script>`` entries from a page (Sphinx ``html-page-context`` handler).

    sphinx-thebe, which Jupyter Book always loads, registers its inline configuration script
    (``const THEBE_JS_URL = ...``) once per read phase; a page that lists it twice stops with
    "Identifier 'THEBE_JS_URL' has already been declared". The first of equal entries stays.
    """
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # An inline script's filename is None or "", depending on how it was added.
        key = (script.filename or "", repr(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    """Sphinx extension (``_config.yml`` ``extra_extensions``): each page's scripts once.

    Returns:
        dict: The extension's metadata (safe for parallel reading and writing).
    """
    # Late, after the handlers that add a page's scripts.
    app.connect("html-page-context", _unique_scripts, priority=990)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
