"""The Colab edition (hessinit.book.colab): executed notebooks with their MyST made plain Markdown.

References: hand-made executed notebooks whose glue outputs are built as myst-nb stores them
(a display output with ``scrapbook`` metadata and MIME types under a prefix), values formatted
here with Python's ``format``, the entries of ``book/references.bib`` as written there, and, in
the slow tests, the small book's real run of ``book/chain_rule.ipynb`` (executed once, by the
``small_book`` fixture's runner).
"""

import json
import os
import shutil
import subprocess
import sys

import nbformat
import pytest
from notebook_runs import ROOT, notebooks

from hessinit.book import colab

PREFIX = "application/papermill.record/"


def glue_output(name, plain=None, markdown=None):
    """A glue record as ``myst_nb.glue(name, value, display=False)`` writes it."""
    data = {}
    if plain is not None:
        data[PREFIX + "text/plain"] = plain
    if markdown is not None:
        data[PREFIX + "text/markdown"] = markdown
    return nbformat.v4.new_output(
        "display_data", data=data, metadata={"scrapbook": {"name": name, "mime_prefix": PREFIX}}
    )


TITLE = """# A chapter

<a class="colab-badge" href="https://colab.research.google.com/x">Open in Colab</a>

(sec-intro)=
% a MyST comment
Over {glue:text}`n_sds` values of sd the ratio is {glue:text}`ratio:.3g` ({glue:text}`share:.1%`),
the rule {glue:md}`verdict`, and the activation is {glue}`act`
{cite:p}`skorski2021revisiting,martens2010deep`.
As {cite}`sagun2017empirical` observe; see {ref}`the figure <fig-norms>` and {math}`x^2`.
The role syntax is `{glue:text}` in code, and $\\frac{1}{2}$ stays math."""

DIRECTIVES = """:::{note}
A note with {glue:text}`n_sds` sds.
:::

```{math}
:label: eq-a
H = G + R
```

````{admonition} Careful
```python
print("{glue:text}`kept` in code")
```
````

:::{dropdown} Parameters
| a | b |
|---|---|
:::

:::{glue:md} ledger
:format: myst
:::

```{figure} images/a.png
:name: fig-a
:alt: A picture
The caption.
```"""


LEDGER = "| claim | figure |\n|---|---|\n| 1 | {ref}`figure <fig-norms>` |"
CAPTION = {"caption": "Norms for {glue:text}`n_sds` sds.", "name": "fig-norms"}


def executed_notebook():
    """A small executed notebook of the book, as the runner leaves it under _runs/site."""
    remove, site_only = {"tags": ["remove-cell"]}, {"tags": ["run-parameters"]}
    cells = [
        nbformat.v4.new_code_cell("import os  # the install cell", metadata=remove),
        nbformat.v4.new_markdown_cell(TITLE),
        nbformat.v4.new_code_cell("n = 64\ntable = 'x.csv'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            '# Parameters\nn = 16\ntables = ["../a.csv", "../b.csv"]\ntable = "x.csv"\n',
            metadata={"tags": ["injected-parameters", "remove-cell"]},
        ),
        nbformat.v4.new_markdown_cell(":::{dropdown} Parameters\n|a|b|\n:::", metadata=site_only),
        nbformat.v4.new_code_cell(
            "book.glue(...)",
            outputs=[
                glue_output("n_sds", plain="13"),
                glue_output("ratio", plain="0.012345"),
                glue_output("share", plain="0.25"),
                glue_output("verdict", plain="'holds'", markdown="**holds**"),
                glue_output("act", plain="'relu'"),
                glue_output("ledger", markdown=LEDGER),
                nbformat.v4.new_output("stream", name="stderr", text="a TensorFlow warning\n"),
                nbformat.v4.new_output("stream", name="stdout", text="computed\n"),
            ],
        ),
        nbformat.v4.new_code_cell(
            "figures.plot()",
            metadata={"mystnb": {"figure": CAPTION}},
            outputs=[nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})],
        ),
        nbformat.v4.new_markdown_cell(DIRECTIVES),
    ]  # fmt: skip
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "hessinit", "display_name": "Python (hessinit)"}
    return nb


@pytest.fixture(scope="module")
def references():
    return colab.read_references(ROOT / "book" / "references.bib")


def markdown_of(nb):
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_values_citations_and_directives_become_plain_markdown(references):
    labels = {"fig-norms": ("figure", "https://site/_runs/site/a.html#fig-norms")}
    nb = executed_notebook()
    out = colab.colab_notebook(nb, references, name="a", labels=labels, note="*Colab edition.*")
    text = markdown_of(out)
    assert colab.raw_myst(text) == [], colab.raw_myst(text)
    # glued values, formatted as the format specs say (references: Python's format)
    assert f"Over 13 values of sd the ratio is {format(0.012345, '.3g')} ({0.25:.1%})," in text
    assert "the rule **holds**, and the activation is relu" in text
    # citations: author-year from book/references.bib (three authors: "et al."; one: the name)
    assert "relu\n(Skorski et al., 2021; Martens, 2010)." in text
    assert "As (Sagun et al., 2017) observe" in text
    assert "[the figure](https://site/_runs/site/a.html#fig-norms) and $x^2$." in text
    # the references the notebook cites, in the order cited, LaTeX accents decoded
    refs = out.cells[-1].source
    assert refs.startswith("## References")
    assert refs.index("Revisiting Weight Initialization") < refs.index("Hessian-free")
    assert "Güney" in refs and "{" not in refs
    # directives
    assert "> **Note**\n>\n> A note with 13 sds." in text
    assert "$$\nH = G + R\n$$" in text
    assert '> **Careful**\n>\n> ```python\n> print("{glue:text}`kept` in code")\n> ```' in text
    assert "**Parameters**\n\n| a | b |" in text
    assert "| 1 | [figure](https://site/_runs/site/a.html#fig-norms) |" in text
    assert "![A picture](images/a.png)\n\n*The caption.*" in text
    # code in backticks is left alone; math keeps its braces; targets and comments are gone
    assert "`{glue:text}` in code" in text and "$\\frac{1}{2}$" in text
    assert "(sec-intro)=" not in text and "MyST comment" not in text
    # the badge is replaced by the note, under the title
    assert text.startswith("# A chapter\n\n*Colab edition.*\n\n") and "colab-badge" not in text


def test_cells_site_only_dropped_outputs_cleaned_parameters_portable(references):
    nb = executed_notebook()
    out = colab.colab_notebook(nb, references, name="a")
    assert nb.cells[3].source.count("tables") == 1  # the input is not changed
    assert not any("run-parameters" in c.metadata.get("tags", []) for c in out.cells)
    injected = next(c for c in out.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert injected.source == '# Parameters\nn = 16\ntable = "x.csv"'
    glue_cell = next(c for c in out.cells if c.source == "book.glue(...)")
    assert [o.get("text") for o in glue_cell.outputs] == ["computed\n"]  # no records, no stderr
    figure = next(i for i, c in enumerate(out.cells) if c.source == "figures.plot()")
    assert out.cells[figure].outputs[0]["data"]["image/png"] == "iVBORw0KGgo="
    assert out.cells[figure + 1].source == "*Figure: Norms for 13 sds.*"
    assert out.metadata["kernelspec"]["name"] == "python3"
    nbformat.validate(out)


def test_a_value_the_run_did_not_glue_is_refused(references):
    nb = executed_notebook()
    nb.cells[1].source += " And {glue:text}`missing:.2f`."
    with pytest.raises(ValueError, match=r"a: the text refers to 'missing'"):
        colab.colab_notebook(nb, references, name="a")
    nb = executed_notebook()
    nb.cells[1].source += " {cite:p}`nosuchkey2020`"
    with pytest.raises(ValueError, match="nosuchkey2020"):
        colab.colab_notebook(nb, references, name="a")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("a {glue:text}`x:.2f` b", ["{glue:text}`x:.2f`"]),
        ("{glue:md}`v` and {glue}`w`", ["{glue:md}`v`", "{glue}`w`"]),
        ("see {cite:p}`a,b` and {ref}`t <l>`", ["{cite:p}`a,b`", "{ref}`t <l>`"]),
        ("{sub-ref}``x`y``", ["{sub-ref}``x`y``"]),
        (":::{note}\nbody\n:::", [":::{note}"]),
        ("````{admonition} T\nx\n````", ["````{admonition} T"]),
        ("(fig-a)=\n# Title", ["(fig-a)="]),
        ("plain **Markdown**, [a link](u), $\\frac{a}{b}$, {braces} `code`", []),
        ("`{glue:text}` in code and ``{cite}`x` `` too", []),
        ("```python\n{glue:text}`x`\n(l)=\n:::{note}\n```", []),
        ("~~~\n{cite}`x`\n~~~", []),
    ],
)
def test_raw_myst_finds_roles_directives_and_targets_outside_code(text, found):
    assert colab.raw_myst(text) == found


def site_tree(tmp_path, pages):
    root = tmp_path / "root"
    (root / "book").mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(ROOT / "book" / "references.bib", root / "book" / "references.bib")
    for page, nb in pages.items():
        path = root / "_runs" / "site" / f"{page}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
    return root


def test_write_edition_writes_every_page_and_links_figures_across_pages(tmp_path):
    other = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# Claims\n\nSee {ref}`the norms <fig-norms>`.")]
    )
    root = site_tree(tmp_path, {"a": executed_notebook(), "claims/mnist-5k": other})
    (root / "_runs" / "site" / ".a.partial.ipynb").write_text("{")  # hidden: skipped
    pages = colab.write_edition(root, tmp_path / "colab")
    assert pages == ["a", "claims/mnist-5k"]
    version = colab.release_version(root)
    repo = colab.github_repository(root)
    site = colab.site_address(repo)
    claims = nbformat.read(tmp_path / "colab" / "claims" / "mnist-5k.ipynb", as_version=4)
    text = markdown_of(claims)
    assert f"[the norms]({site}_runs/site/a.html#fig-norms)" in text
    assert f"*Colab edition of release v{version} ([the page on the site]({site}" in text
    for page in pages:
        nb = nbformat.read(tmp_path / "colab" / f"{page}.ipynb", as_version=4)
        assert colab.raw_myst(markdown_of(nb)) == []
    # the same run gives the same files (the published branch changes only where the book did)
    colab.write_edition(root, tmp_path / "again")
    for page in pages:
        path = f"{page}.ipynb"
        assert (tmp_path / "colab" / path).read_bytes() == (tmp_path / "again" / path).read_bytes()


def test_write_edition_refuses_an_edition_with_myst_left(tmp_path, monkeypatch):
    root = site_tree(tmp_path, {"a": executed_notebook()})
    monkeypatch.setattr(
        colab._Context, "role", lambda self, name, content: f"{{{name}}}`{content}`"
    )
    with pytest.raises(
        ValueError, match=r"MyST left in the Colab edition: a: \{glue:text\}`n_sds`"
    ):
        colab.write_edition(root, tmp_path / "colab")
    assert not (tmp_path / "colab").exists()
    with pytest.raises(FileNotFoundError, match="build the book first"):
        colab.write_edition(root, tmp_path / "colab", site=tmp_path / "empty")


@pytest.mark.slow
def test_the_edition_of_a_real_run_of_chain_rule_is_plain(tmp_path, small_book):
    """chain_rule as the small book's runner executed and decorated it (no second execution)."""
    book_root, code = small_book
    assert code == 0
    site = tmp_path / "_runs" / "site"
    site.mkdir(parents=True)
    shutil.copy(book_root / "_runs" / "site" / "chain_rule.ipynb", site / "chain_rule.ipynb")
    nb = nbformat.read(site / "chain_rule.ipynb", as_version=4)
    source = (ROOT / "book" / "chain_rule.md").read_text()
    assert "{glue:text}" in source
    assert colab.write_edition(ROOT, tmp_path / "colab", site=site) == ["chain_rule"]
    out = nbformat.read(tmp_path / "colab" / "chain_rule.ipynb", as_version=4)
    text = markdown_of(out)
    assert colab.raw_myst(text) == []
    glued = colab.glued_values(nb)
    assert glued  # the run glued values, and the text shows them
    for key in glued:
        if f"{{glue:text}}`{key}`" in source:
            assert colab.format_text(glued[key]["text/plain"]) in text, key
    # test_every_notebook_of_the_edition_runs_in_a_colab_like_environment runs it


@pytest.mark.parametrize("name", notebooks())
def test_every_notebook_of_the_book_converts_to_plain_markdown(name, references, monkeypatch):
    """The book's own MyST (its roles, directives, captions), each glued name given a value."""
    monkeypatch.setattr(
        colab._Context, "value", lambda self, key: {"text/plain": "0.5", "text/markdown": "**v**"}
    )
    nb = nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4)
    out = colab.colab_notebook(nb, references, name=name)
    text = markdown_of(out)
    assert colab.raw_myst(text) == []
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert source.count("{glue:text}`") == 0 or "0.5" in text
    assert ("{cite" in source) == ("## References" in text)


@pytest.mark.slow
def test_every_notebook_of_the_edition_runs_in_a_colab_like_environment(tmp_path, small_book):
    """The small book's Colab edition, every notebook top to bottom, in one Colab-like venv.

    test_colab.py's environment (Colab's preinstalled packages only, no myst-nb; hessinit
    installed by each notebook's install cell from a wheel of this checkout), each notebook
    at the small book's sizes (papermill replaces the edition's injected parameters, so they
    are passed again), its tables written to its own folder; the collecting chapters read the
    small book's published archive, performance the committed benchmark results.
    """
    import time

    from notebook_runs import cli_arguments, small_parameters
    from test_colab import checkout_wheel, colab_environment

    from hessinit.book import publish

    book_root, code = small_book
    assert code == 0
    edition = book_root / "_build" / "html" / "colab"
    pages = sorted(p.relative_to(edition).with_suffix("").as_posix()
                   for p in edition.rglob("*.ipynb"))  # fmt: skip
    site = book_root / "_runs" / "site"
    assert pages == sorted(p.relative_to(site).with_suffix("").as_posix()
                           for p in site.rglob("*.ipynb"))  # fmt: skip
    assert {p.split("/")[0] for p in pages} == set(notebooks()) - {"sd_run"}  # sd_run: no page
    start = time.perf_counter()
    python, wheel = colab_environment(tmp_path), checkout_wheel(tmp_path)
    kernel = tmp_path / "jupyter" / "kernels" / "colab"
    kernel.mkdir(parents=True)
    spec = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--IPKernelApp.exec_lines=['import google.colab']"],
        "display_name": "Colab-like", "language": "python",
        "env": {"HESSINIT_SOURCE": str(wheel), "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    }  # fmt: skip
    (kernel / "kernel.json").write_text(json.dumps(spec))
    archive = book_root / "_build" / "html" / publish.ARCHIVE
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({"JUPYTER_PATH": str(tmp_path / "jupyter"), "TF_CPP_MIN_LOG_LEVEL": "3",
                "HESSINIT_OFFLINE": "1", publish.ARCHIVE_URL_ENV: archive.as_uri()})  # fmt: skip
    small = small_parameters()
    small["performance"] = {"results": str(ROOT / "benchmarks" / "results")}
    seconds = {"setup": time.perf_counter() - start}
    failed = {}
    for page in pages:
        name = page.split("/")[0]
        out = tmp_path / "ran" / page
        out.mkdir(parents=True)
        params = {k: v for k, v in small.get(name, {}).items() if k not in colab.RUNNER_PARAMETERS}
        if name == "performance":
            params = small["performance"]
        t = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "papermill", str(edition / f"{page}.ipynb"),
             str(out / "page.ipynb"), "-k", "colab", "--no-progress-bar",
             "-p", "output_dir", str(out), *cli_arguments(params)],
            env=env, capture_output=True, text=True, timeout=900, cwd=out,
        )  # fmt: skip
        seconds[page] = time.perf_counter() - t
        if result.returncode:
            failed[page] = result.stderr[-2000:]
    print("Colab-like edition, seconds:", {k: round(v) for k, v in seconds.items()})
    assert not failed, failed
