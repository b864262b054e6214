"""The built site's prose shows values, never a notebook's parameter names.

A sentence like "95% intervals from ``probes`` probes" shows the reader a variable instead of its
value. :func:`prose_offenders` finds such names: inline code (``<code>``, ``<span class="pre">``)
whose text is one of the notebook's parameter names, inside the page's prose, that is outside
the code cells (inputs and outputs) and outside the folded "Parameters of this run" table.

The quick test reads the committed notebooks' Markdown (:func:`markdown_offenders`: inline code
in prose, MyST roles such as ``{glue:text}`` and code blocks left out); the slow one reads the
small book's site (the ``small_book`` fixture of tests/conftest.py, built once and shared with
the runner's and the browser's tests), where runner-made text is also seen.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[2]

#: Elements of a page that are not prose.
NOT_PROSE = ("div.cell", "details", "div.highlight", "pre", "nav", "header", "footer",
             ".cell_output", ".cell_input", "div.sd-dropdown")  # fmt: skip


def parameter_names(notebook: dict) -> set[str]:
    """The names assigned in the notebook's cells tagged ``parameters`` or ``injected-parameters``.

    Args:
        notebook: the notebook's JSON.

    Returns:
        The assigned names (empty when no cell is tagged ``parameters``).
    """
    names: set[str] = set()
    for cell in notebook.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" not in tags and "injected-parameters" not in tags:
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names


def prose_offenders(html: str, names: set[str]) -> list[str]:
    """The parameter names shown as inline code in the page's prose.

    Args:
        html: the rendered page.
        names: the notebook's parameter names.

    Returns:
        The offending names, in order of appearance (with repeats).
    """
    soup = BeautifulSoup(html, "html.parser")
    main = soup.find("article") or soup.find("main") or soup
    for selector in NOT_PROSE:
        for element in main.select(selector):
            element.decompose()
    found = []
    for code in main.find_all("code"):
        text = code.get_text().strip()
        if text in names:
            found.append(text)
    return found


PAGE = """<html><body><article>
<h1>A chapter</h1>
<p>95% intervals from <code class="docutils literal notranslate"><span class="pre">probes</span>
</code> probes and <code class="docutils literal notranslate"><span class="pre">numpy</span>
</code>.</p>
<details class="sd-dropdown"><summary>Parameters of this run</summary>
<table><tr><td><code class="docutils literal notranslate"><span class="pre">seeds</span></code></td>
</tr></table></details>
<div class="cell docutils container"><div class="cell_input"><pre>probes = 30</pre></div>
<div class="cell_output"><code>seeds</code></div></div>
<ul><li>with <code class="docutils literal notranslate"><span class="pre">seeds</span></code>
seeds</li></ul>
</article></body></html>"""


def test_the_checker_flags_names_in_prose_only():
    assert prose_offenders(PAGE, {"probes", "seeds", "steps"}) == ["probes", "seeds"]
    code = '<code class="docutils literal notranslate"><span class="pre">seeds</span></code>'
    fixed = PAGE.replace('<span class="pre">probes</span>', "30").replace(f"<li>with {code}", "5")
    assert prose_offenders(fixed, {"probes", "seeds", "steps"}) == []


def test_parameter_names_come_from_the_parameters_cell():
    nb = {"cells": [
        {"cell_type": "code", "metadata": {"tags": ["remove-cell"]}, "source": "x = 1"},
        {"cell_type": "code", "metadata": {"tags": ["parameters", "remove-cell"]},
         "source": ["seeds = [0, 1]  # c\n", "steps, lr = 10, 0.1\n"]},
    ]}  # fmt: skip
    assert parameter_names(nb) == {"seeds", "steps", "lr"}


def site_offenders(root: Path) -> dict[str, list[str]]:
    """Every executed notebook's page of the book at ``root`` -> its offending names.

    Args:
        root: the book's root, with ``_runs/`` and ``_build/html/``.

    Returns:
        Page (relative to ``_runs``) -> the parameter names its prose shows (pages without any
        are left out).
    """
    out = {}
    for notebook in sorted((root / "_runs").rglob("*.ipynb")):
        rel = notebook.relative_to(root / "_runs")
        if rel.parts[0] in ("failed", "records") or notebook.name.startswith("."):
            continue
        page = root / "_build" / "html" / "_runs" / rel.with_suffix(".html")
        if not page.exists():
            continue
        names = parameter_names(json.loads(notebook.read_text()))
        found = prose_offenders(page.read_text(), names)
        if found:
            out[str(rel.with_suffix(""))] = sorted(set(found))
    return out


@pytest.mark.slow
def test_no_page_of_the_small_book_shows_a_parameter_name_in_its_prose(small_book):
    root, _ = small_book
    assert list((root / "_build" / "html" / "_runs").rglob("*.html"))
    assert site_offenders(root) == {}


#: A fenced code block (a language or none; MyST directives such as ``{note}`` hold prose) or a
#: glue directive (its body is a glue key, replaced by the value).
_BLOCK = re.compile(r"^(`{3,}|:{3,})(\w*|\{glue[:\w]*\})[ \t]*\n.*?^\1[ \t]*$", re.M | re.S)
#: A MyST role: ``{glue:text}`key```, ``{cite}`x```: the text shows the role's result.
_ROLE = re.compile(r"\{[\w:.-]+\}`[^`]*`")
#: Inline code in Markdown (single backticks) or in reStructuredText (double).
_CODE = re.compile(r"``([^`\n]+)``|(?<!`)`([^`\n]+)`(?!`)")


def markdown_offenders(notebook: dict) -> list[str]:
    """The parameter names a notebook's Markdown shows as inline code in its prose.

    What the site check finds without executing anything: inline code in the Markdown cells
    (not those tagged ``remove-cell``), with MyST roles (glued values, citations), fenced code
    blocks and glue directives left out.

    Args:
        notebook: the committed notebook's JSON.

    Returns:
        The offending names, in order of appearance (with repeats).
    """
    names = parameter_names(notebook)
    found = []
    for cell in notebook.get("cells", []):
        if cell["cell_type"] != "markdown" or "remove-cell" in cell.get("metadata", {}).get(
            "tags", []
        ):
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        text = _ROLE.sub("", _BLOCK.sub("", source))
        found += [n for pair in _CODE.findall(text) for n in pair if n.strip() in names]
    return found


def _markdown_notebook(text):
    return {"cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]},
         "source": "probes, seeds = 3, [0]"},
        {"cell_type": "markdown", "metadata": {}, "source": text},
    ]}  # fmt: skip


def test_the_markdown_checker_flags_names_in_prose_only():
    prose = "From `probes` probes, ``seeds`` seeds and `numpy`.\n"
    hidden = (
        "Over {glue:text}`probes` probes ({cite}`seeds`).\n\n"
        "```bash\npapermill -p `probes` 3\n```\n"
        ":::{glue:md} seeds\n:::\n"
    )
    assert markdown_offenders(_markdown_notebook(prose + hidden)) == ["probes", "seeds"]
    assert markdown_offenders(_markdown_notebook(hidden)) == []
    admonition = "```{note}\nWith `seeds` seeds.\n```\n"  # a directive's body is prose
    assert markdown_offenders(_markdown_notebook(admonition)) == ["seeds"]


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "book").glob("*.ipynb")))
def test_no_notebook_shows_a_parameter_name_in_its_prose(name):
    notebook = json.loads((ROOT / "book" / f"{name}.ipynb").read_text())
    assert markdown_offenders(notebook) == []
