"""How an executed notebook is presented as a page of the site.

:func:`decorate` folds the parameters papermill injected into a small table and puts the
Open-in-Colab badge on the page; :func:`colab_url` is the badge's address, built from the one
place that names the repository, ``repository:`` in the book's ``_config.yml``.

Imports: the standard library and PyYAML; nbformat when a notebook is decorated.
"""

from __future__ import annotations

from pathlib import Path

import yaml

BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def _repository(root):
    """The ``(url, branch)`` of ``repository:`` in the book's ``_config.yml``."""
    config = yaml.safe_load((Path(root) / "_config.yml").read_text())
    repo = config.get("repository", {})
    return repo.get("url", "").rstrip("/"), repo.get("branch", "main")


def colab_url(root, notebook):
    """The Open-in-Colab address of the committed ``book/<notebook>.ipynb``.

    Args:
        root: The book's root; its ``_config.yml`` sets ``repository: url`` (a GitHub
            address) and ``branch``.
        notebook: The notebook's name.

    Returns:
        str: The address Colab opens the notebook from.

    Example:
        >>> import pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (root / "_config.yml").write_text(
        ...     "repository: {url: https://github.com/hessinit/hessinit, branch: main}"
        ... )
        >>> colab_url(root, "chain_rule")  # doctest: +NORMALIZE_WHITESPACE
        'https://colab.research.google.com/github/hessinit/hessinit/blob/main/book/chain_rule.ipynb'
    """
    url, branch = _repository(root)
    path = url.split("github.com/", 1)[1]
    return f"https://colab.research.google.com/github/{path}/blob/{branch}/book/{notebook}.ipynb"


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


def decorate(nb, run, root):
    """Fold the injected parameters into a small table and add the Colab badge."""
    import nbformat

    index = next(
        (i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", [])),
        None,
    )
    rows = "\n".join(f"| `{k}` | `{_format_value(v)}` |" for k, v in sorted(run.parameters.items()))
    text = (
        f"[![Open In Colab]({BADGE})]({colab_url(root, run.notebook)})\n\n"
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
