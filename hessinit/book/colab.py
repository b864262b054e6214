"""The Colab edition of the book: its executed notebooks with their MyST made plain Markdown.

The site renders MyST: glued numbers (``{glue:text}`ratio:.3g```), citations (``{cite:p}`key```),
directives (``:::{note}``). Colab renders plain Markdown and shows those as raw text. The Colab
edition is built from the executed notebooks of a book run (``_runs/site``), as the site is:
every glue role or directive is replaced by the value that run glued (formatted as myst-nb
formats it), every citation by an author-year reference with a reference list at the end of the
notebook (from ``book/references.bib``), every directive by plain Markdown, figure captions
become text under their figure, and site-only cells (tagged ``run-parameters`` or ``site-only``)
and glue records are dropped. :func:`raw_myst` finds what is left of MyST in a text, and
:func:`write_edition` refuses to write an edition in which anything is.

The edition of release ``v<version>`` (the version in ``pyproject.toml``, :func:`release_ref`)
is published on the branch :data:`EDITION_BRANCH` under ``v<version>/`` (the release workflow,
``.github/workflows/release.yml``), where Colab opens it: :func:`edition_url`.

Run ``python -m hessinit.book.colab`` (``--help``) after a book build to write it.

Imports: the standard library; nbformat, and pybtex (a dependency of sphinxcontrib-bibtex) for
the references, when an edition is built.
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
import tomllib
from pathlib import Path

#: The branch the release workflow publishes each release's Colab edition on, under ``v<version>/``.
EDITION_BRANCH = "colab"
#: Cells with one of these tags exist for the site only (the folded parameters table).
SITE_ONLY_TAGS = ("run-parameters", "site-only")
#: Parameters the book's runner sets to paths under ``_runs/``, which do not exist in Colab; the
#: notebook's own default (look the tables up) applies there instead.
RUNNER_PARAMETERS = ("tables", "records", "results")
#: The prefix myst-nb gives the MIME types of a value glued without display.
GLUE_PREFIX = "application/papermill.record/"

_ROLE = re.compile(r"\{([A-Za-z][\w:+.-]*)\}(`+)")
_FENCE = re.compile(
    r"^(?P<indent> {0,3})(?P<fence>`{3,}|:{3,})\{(?P<name>[^}\s]+)\}\s*(?P<arg>.*)$"
)
_CODE_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_TARGET = re.compile(r"^\s*\([\w.:-]+\)=\s*$")
_ADMONITIONS = (
    "note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error",
    "seealso", "admonition", "margin", "sidebar", "topic",
)  # fmt: skip
_SITE_ONLY_DIRECTIVES = ("toctree", "tableofcontents", "bibliography", "eval-rst", "raw", "only")
_CODE_ROLES = ("code", "literal", "kbd", "samp", "file", "command", "program", "envvar", "option")


# -- the release
def release_version(root="."):
    r"""The package version: ``[project] version`` of ``root/pyproject.toml``, the one source.

    A book root without ``pyproject.toml`` (not a checkout) gets the installed package's
    version, which was read from the same field when it was built.

    Args:
        root: The checkout.

    Returns:
        str: The version.

    Example:
        >>> import pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (root / "pyproject.toml").write_text('[project]\nversion = "1.2.3"\n')
        >>> release_version(root), release_ref(root)
        ('1.2.3', 'v1.2.3')
    """
    path = Path(root) / "pyproject.toml"
    if not path.exists():
        from importlib import metadata

        return metadata.version("hessinit")
    return tomllib.loads(path.read_text())["project"]["version"]


def release_ref(root="."):
    """The git tag of the release: ``v<version>``; the install cell, badges and citation name it."""
    return f"v{release_version(root)}"


def release_mismatches(root=".", tag=None):
    r"""Where the checkout names a release other than :func:`release_ref`; empty when all agree.

    Checked: the default install source of every notebook's Colab cell
    (``git+<repository>@v<version>`` in ``book/*.md`` and ``book/*.ipynb``), ``version`` and
    ``repository-code`` of ``CITATION.cff``, the ``version`` of the BibTeX record in
    ``book/intro.md``, and ``tag`` (the tag being released) if given. The repository is
    ``[project.urls] Repository`` of ``pyproject.toml``.

    Args:
        root: The checkout.
        tag: A git tag to check too (the release workflow's), or None.

    Returns:
        list[str]: One sentence per disagreement, naming the file and both values.

    Example:
        >>> import pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (root / "pyproject.toml").write_text('[project]\nversion = "0.3.0"\n'
        ...     '[project.urls]\nRepository = "https://github.com/o/n"\n')
        >>> _ = (root / "CITATION.cff").write_text(
        ...     "version: 0.2.0\nrepository-code: https://github.com/o/n\n")
        >>> release_mismatches(root, tag="v0.3.0")
        ['CITATION.cff: version 0.2.0, not 0.3.0']
        >>> release_mismatches(root, tag="0.3")[-1]
        'the tag is 0.3, not v0.3.0 (the version in pyproject.toml)'
    """
    root = Path(root)
    version, ref = release_version(root), release_ref(root)
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    url = project.get("urls", {}).get("Repository", "").rstrip("/")
    out = []
    cell = re.compile(r'HESSINIT_SOURCE\\?", \\?"git\+([^"@\\]+)@([^"\\]+)\\?"')
    for path in sorted((root / "book").glob("*.md")) + sorted((root / "book").glob("*.ipynb")):
        text = path.read_text()
        if "google.colab" not in text:
            continue
        found = cell.findall(text)
        name = path.relative_to(root).as_posix()
        if len(found) != 1:
            out.append(f"{name}: {len(found)} install sources in the Colab cell, not 1")
        for source, named in found:
            if (source.rstrip("/"), named) != (url, ref):
                out.append(f"{name}: installs {source}@{named}, not {url}@{ref}")
    cff = root / "CITATION.cff"
    if cff.exists():
        import yaml

        fields = {k: str(v) for k, v in (yaml.safe_load(cff.read_text()) or {}).items()}
        if fields.get("version") != version:
            out.append(f"CITATION.cff: version {fields.get('version')}, not {version}")
        if fields.get("repository-code", "").rstrip("/") != url:
            out.append(f"CITATION.cff: repository-code {fields.get('repository-code')}, not {url}")
    intro = root / "book" / "intro.md"
    if intro.exists():
        for named in re.findall(r"^\s*version\s*=\s*\{([^}]*)\}", intro.read_text(), re.M):
            if named != version:
                out.append(f"book/intro.md: the BibTeX record's version {named}, not {version}")
    if tag is not None and tag != ref:
        out.append(f"the tag is {tag}, not {ref} (the version in pyproject.toml)")
    return out


def github_repository(root="."):
    r"""``owner/name`` of the book's GitHub repository; ``""`` when it is not on GitHub.

    From ``repository: url`` of ``root/_config.yml`` (the book's one place that names it), else
    ``[project.urls] Repository`` of ``root/pyproject.toml`` (a test checks that they agree).

    Example:
        >>> import pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (root / "pyproject.toml").write_text(
        ...     '[project.urls]\nRepository = "https://github.com/o/n/"\n')
        >>> github_repository(root)
        'o/n'
        >>> _ = (root / "_config.yml").write_text("repository: {url: https://gitlab.com/a/b}")
        >>> github_repository(root)
        ''
    """
    root = Path(root)
    if (root / "_config.yml").exists():
        import yaml

        config = yaml.safe_load((root / "_config.yml").read_text()) or {}
        url = (config.get("repository") or {}).get("url", "")
    else:
        project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
        url = project.get("urls", {}).get("Repository", "")
    match = re.fullmatch(r"https://github\.com/([^/\s]+/[^/\s]+?)(?:\.git)?/?", url)
    return match[1] if match else ""


def site_address(repository):
    """The GitHub Pages address of ``owner/name``, with a final slash.

    >>> site_address("hessinit/hessinit"), site_address("Me/me.github.io")
    ('https://hessinit.github.io/hessinit/', 'https://me.github.io/')
    """
    owner, name = repository.split("/", 1)
    if name.lower() == f"{owner.lower()}.github.io":
        return f"https://{name.lower()}/"
    return f"https://{owner.lower()}.github.io/{name}/"


def page_name(output):
    """The page of a run's output under ``_runs/``, e.g. ``original/mnist`` (None: not a page).

    A page is an output under ``site/``; the other runs (the sd sweep's) have none.

    >>> page_name("site/original/mnist-5k.ipynb"), page_name("sweep/mnist-5k/sd-1.ipynb")
    ('original/mnist-5k', None)
    """
    parts = Path(output).with_suffix("").parts
    if len(parts) < 2 or parts[0] != "site":
        return None
    return "/".join(parts[1:])


def edition_url(root, output):
    r"""The address Colab opens the release's Colab edition of a page from (the page's badge).

    Args:
        root: The checkout (its ``pyproject.toml`` gives the version and the repository).
        output: The run's output under ``_runs/`` (``site/chain_rule.ipynb``).

    Returns:
        str | None: ``https://colab.research.google.com/github/<owner>/<name>/blob/colab/
        v<version>/<page>.ipynb``; None for a run without a page or a repository not on GitHub.

    Example:
        >>> import pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (root / "pyproject.toml").write_text('[project]\nversion = "0.3.0"\n'
        ...     '[project.urls]\nRepository = "https://github.com/o/n"\n')
        >>> edition_url(root, "site/original/mnist-5k.ipynb")  # doctest: +NORMALIZE_WHITESPACE
        'https://colab.research.google.com/github/o/n/blob/colab/v0.3.0/original/mnist-5k.ipynb'
    """
    page, repository = page_name(output), github_repository(root)
    if page is None or not repository:
        return None
    return (
        f"https://colab.research.google.com/github/{repository}/blob/{EDITION_BRANCH}/"
        f"{release_ref(root)}/{page}.ipynb"
    )


# -- finding MyST
def _spans(text):
    """Yield ``(kind, start, end, name, content)``: each role and inline code span of ``text``.

    A role is ``{name}`content``` (any number of backticks, closed by as many); an inline code
    span is backticks not preceded by a role name; the content of neither is searched further.
    """
    i = 0
    while i < len(text):
        match = _ROLE.match(text, i) if text[i] == "{" else None
        if match:
            ticks = match[2]
            close = re.compile(rf"(?<!`){ticks}(?!`)").search(text, match.end())
            if close:
                yield "role", i, close.end(), match[1], text[match.end() : close.start()]
                i = close.end()
                continue
        if text[i] == "`":
            run = re.match(r"`+", text[i:])[0]
            close = re.compile(rf"(?<!`){run}(?!`)").search(text, i + len(run))
            end = close.end() if close else i + len(run)
            yield "code", i, end, None, None
            i = end
            continue
        i += 1


def _blocks(text):
    """Split Markdown into ``("text" | "code", lines)`` blocks: code fences apart from the rest.

    Directive fences (three backticks or colons and ``{note}``) are text here; plain code fences
    are code.
    """
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        fence = _CODE_FENCE.match(lines[i])
        if fence and not _FENCE.match(lines[i]):
            mark = fence[1]
            j = i + 1
            while j < len(lines) and not re.match(
                rf"^ {{0,3}}{mark[0]}{{{len(mark)},}}\s*$", lines[j]
            ):
                j += 1
            out.append(("code", lines[i : j + 1]))
            i = j + 1
            continue
        if out and out[-1][0] == "text":
            out[-1][1].append(lines[i])
        else:
            out.append(("text", [lines[i]]))
        i += 1
    return out


def raw_myst(text):
    r"""What is left of MyST syntax in Markdown ``text``, outside code: roles, directives, targets.

    Args:
        text: Markdown.

    Returns:
        list[str]: Each role (``{glue:text}`` and its content), directive fence (a ``{note}``
        after backticks or ``:::``) and target line (``(label)=``) found, in order; empty for plain
        Markdown. Code blocks and inline code spans are not searched.

    Example:
        >>> raw_myst("Over {glue:text}`n` sds {cite:p}`a2020`; `{glue}` is code.")
        ['{glue:text}`n`', '{cite:p}`a2020`']
        >>> raw_myst(":::{note}\nHi\n:::\n(fig-a)=\n```python\n{x}`y`\n```")
        [':::{note}', '(fig-a)=']
        >>> raw_myst("$\\frac{1}{2}$ and **bold** {not a role}")
        []
    """
    found = []
    for kind, lines in _blocks(text):
        if kind == "code":
            continue
        for line in lines:
            if _FENCE.match(line):
                found.append(line.strip())
            elif _TARGET.match(line):
                found.append(line.strip())
        block = "\n".join(lines)
        found += [block[s:e] for k, s, e, _, _ in _spans(block) if k == "role"]
    return found


# -- glued values
def glued_values(nb):
    """The values an executed notebook glued: ``{name: mime bundle}`` (prefix removed).

    myst-nb's ``glue(name, value, display=False)`` stores a display output whose metadata
    ``scrapbook`` holds the name and the MIME prefix of its data.

    Example:
        >>> import nbformat
        >>> out = nbformat.v4.new_output("display_data",
        ...     data={GLUE_PREFIX + "text/plain": "0.5"},
        ...     metadata={"scrapbook": {"name": "ratio", "mime_prefix": GLUE_PREFIX}})
        >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[out])])
        >>> glued_values(nb)
        {'ratio': {'text/plain': '0.5'}}
    """
    values = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            meta = output.get("metadata", {}).get("scrapbook")
            if meta:
                prefix = meta.get("mime_prefix", "")
                data = output.get("data", {})
                values[meta["name"]] = {k.removeprefix(prefix): v for k, v in data.items()}
    return values


def format_text(plain, spec=""):
    """A glued ``text/plain`` as ``{glue:text}`` shows it: the literal, formatted by ``spec``.

    The same rules as myst-nb: the text is read as a Python literal (quotes removed) and
    formatted with ``spec``, whose type character decides int, float or str.

    >>> format_text("0.012345", ".3g"), format_text("'relu'"), format_text("3", "d")
    ('0.0123', 'relu', '3')
    >>> format_text("0.25", ".1%"), format_text("12", "")
    ('25.0%', '12')
    """
    try:
        value = ast.literal_eval(plain)
    except (SyntaxError, ValueError):
        value = plain
    if not spec:
        return str(value)
    kind = spec[-1]
    if kind == "s":
        value = str(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    return format(value, spec)


# -- references
def read_references(bib):
    """The entries of a BibTeX file: ``{key: (authors, year, full reference)}``, all plain text.

    ``authors`` is as an author-year citation names them: one or two last names, else the first
    one and "et al.".

    Args:
        bib: The ``.bib`` file (the book's ``book/references.bib``).

    Returns:
        dict: key -> ``(authors, year, reference)``.
    """
    from pybtex.backends.plaintext import Backend
    from pybtex.database import parse_file
    from pybtex.richtext import Text

    backend = Backend()  # once: render_as("text") looks the backend up among entry points

    def plain(latex):
        return Text.from_latex(latex).render(backend) if latex else ""

    out = {}
    for key, entry in parse_file(str(bib)).entries.items():
        people = entry.persons.get("author", [])
        last = [plain(" ".join(p.prelast_names + p.last_names)) for p in people]
        if len(last) > 2:
            short = f"{last[0]} et al."
        else:
            short = " and ".join(last) or plain(entry.fields.get("organization", key))
        names = [p.first_names + p.middle_names + p.prelast_names + p.last_names for p in people]
        full_names = [" ".join(plain(n) for n in parts) for parts in names]
        f = {k.lower(): plain(v) for k, v in entry.fields.items()}
        year = f.get("year", "n.d.")
        venue = f.get("booktitle") or f.get("journal") or f.get("publisher") or ""
        parts = [", ".join(full_names) + f" ({year}).", f.get("title", "") + "."]
        if venue:
            parts.append(f"*{venue}*" + (f" {f['volume']}" if f.get("volume") else "") + ".")
        if f.get("pages"):
            parts.append(f"Pages {f['pages'].replace('--', '-')}.")
        if f.get("eprint"):
            parts.append(f"[arXiv:{f['eprint']}](https://arxiv.org/abs/{f['eprint']}).")
        if f.get("doi"):
            parts.append(f"[doi:{f['doi']}](https://doi.org/{f['doi']}).")
        elif f.get("url"):
            parts.append(f"<{f['url']}>.")
        out[key] = (short, year, " ".join(p for p in parts if p.strip(". ")))
    return out


# -- MyST to Markdown
class _Context:
    """What converting one notebook needs: its glued values, the references, figure labels."""

    def __init__(self, name, glued, references, labels):
        self.name, self.glued, self.references, self.labels = name, glued, references, labels
        self.cited = []

    def value(self, key):
        """The glued bundle of ``key``; ValueError naming the notebook if it was not glued."""
        if "::" in key:
            raise ValueError(f"{self.name}: glue from another page ({key!r}) is not supported")
        if key not in self.glued:
            raise ValueError(f"{self.name}: the text refers to {key!r}, which the run did not glue")
        return self.glued[key]

    def markdown(self, key):
        """A glued value as Markdown: its ``text/markdown``, else its text."""
        bundle = self.value(key)
        if "text/markdown" in bundle:
            return self.convert(_join(bundle["text/markdown"]).strip())
        if "image/png" in bundle:
            return f"![{key}](data:image/png;base64,{_join(bundle['image/png']).strip()})"
        if "text/plain" in bundle:
            return format_text(_join(bundle["text/plain"]))
        raise ValueError(f"{self.name}: {key!r} was glued without text, Markdown or an image")

    def cite(self, role, keys):
        """An author-year citation of ``keys`` (comma separated) in plain text."""
        items = []
        for key in (k.strip() for k in keys.split(",") if k.strip()):
            if key not in self.references:
                raise ValueError(f"{self.name}: citation {key!r} is not in the references")
            if key not in self.cited:
                self.cited.append(key)
            authors, year, _ = self.references[key]
            items.append((authors, year))
        if role in ("cite:t", "cite:ts"):
            return ", ".join(f"{a} ({y})" for a, y in items)
        return "(" + "; ".join(f"{a}, {y}" for a, y in items) + ")"

    def role(self, name, content):
        """The plain Markdown of one role."""
        if name == "glue:text":
            key, _, spec = content.rpartition(":") if ":" in content else (content, "", "")
            bundle = self.value(key)
            if "text/plain" not in bundle:
                raise ValueError(f"{self.name}: {key!r} was glued without text/plain")
            return format_text(_join(bundle["text/plain"]), spec)
        if name in ("glue", "glue:", "glue:any", "glue:md"):
            return self.markdown(content.strip())
        if name == "cite" or name.startswith("cite:"):
            return self.cite(name, content)
        if name in ("ref", "numref", "doc", "eq", "term", "any", "download", "external"):
            match = re.fullmatch(r"\s*(.*?)\s*<([^<>]+)>\s*", content, re.S)
            text, target = (match[1], match[2]) if match else ("", content.strip())
            text = text or self.labels.get(target, (target, None))[0]
            url = self.labels.get(target, (None, None))[1]
            if name == "eq":
                return f"({text})"
            return f"[{text}]({url})" if url else text
        if name == "math":
            return f"${content}$"
        if name in _CODE_ROLES:
            return f"`{content}`"
        if name == "abbr":
            return content.split(" (", 1)[0]
        if name in ("sub", "sup"):
            return f"<{name}>{content}</{name}>"
        return content

    def roles(self, text):
        """``text`` with every role replaced (code spans kept as they are)."""
        out, last = [], 0
        for kind, start, end, name, content in _spans(text):
            if kind == "role":
                out += [text[last:start], self.role(name, content)]
                last = end
        return "".join(out) + text[last:]

    def directive(self, name, arg, body):
        """The plain Markdown of one directive (its options already in ``body``'s head)."""
        options, lines = {}, body.split("\n")
        while lines and re.match(r"^\s*:[\w-]+:", lines[0]):
            key, _, value = lines.pop(0).strip()[1:].partition(":")
            options[key] = value.strip()
        text = self.convert("\n".join(lines).strip("\n"))
        if name in _SITE_ONLY_DIRECTIVES:
            return ""
        if name in ("glue", "glue:", "glue:any", "glue:md"):
            return self.markdown(arg.strip())
        if name == "glue:math":
            plain = _join(self.value(arg.strip()).get("text/latex", "")).strip().strip("$")
            return f"$$\n{plain}\n$$"
        if name == "glue:figure":
            image = self.markdown(arg.strip())
            return f"{image}\n\n*{text}*" if text else image
        if name == "math":
            return f"$$\n{text}\n$$"
        if name in ("code-block", "code", "sourcecode", "code-cell"):
            return f"```{arg.strip()}\n{text}\n```"
        if name in ("figure", "image"):
            alt = options.get("alt") or " ".join(text.split()) or "figure"
            image = f"![{alt}]({arg.strip()})"
            return f"{image}\n\n*{text}*" if name == "figure" and text else image
        title = self.roles(arg.strip())
        if name in _ADMONITIONS:
            title = title if name in ("admonition", "sidebar", "topic", "margin") else name.title()
            head = f"**{title}**" if title else ""
            quoted = "\n".join(f"> {line}".rstrip() for line in text.split("\n"))
            return f"> {head}\n>\n{quoted}" if head else quoted
        # dropdown, card, tab-item and the like: a bold title over the body
        return f"**{title}**\n\n{text}" if title else text

    def convert(self, text):
        """``text`` (MyST) as plain Markdown."""
        out, lines, i = [], text.split("\n"), 0
        while i < len(lines):
            line = lines[i]
            opening = _FENCE.match(line)
            fence = _CODE_FENCE.match(line)
            if opening:
                mark = opening["fence"]
                closing = re.compile(rf"^ {{0,3}}{re.escape(mark[0])}{{{len(mark)},}}\s*$")
                j = i + 1
                while j < len(lines) and not closing.match(lines[j]):
                    j += 1
                body = "\n".join(lines[i + 1 : j])
                out.append(self.directive(opening["name"], opening["arg"], body))
                i = j + 1
            elif fence:  # a code block, as it is
                closing = re.compile(rf"^ {{0,3}}{re.escape(fence[1][0])}{{{len(fence[1])},}}\s*$")
                j = i + 1
                while j < len(lines) and not closing.match(lines[j]):
                    j += 1
                out += lines[i : j + 1]
                i = j + 1
            elif _TARGET.match(line) or re.match(r"^\s*%", line):  # targets and comments
                i += 1
            else:
                paragraph = []
                while i < len(lines) and not (
                    _FENCE.match(lines[i]) or _CODE_FENCE.match(lines[i]) or _TARGET.match(lines[i])
                ):
                    paragraph.append(lines[i])
                    i += 1
                out.append(self.roles("\n".join(paragraph)))
        return "\n".join(out)


def _join(value):
    """A notebook's text field, which may be a list of lines, as one string."""
    return "".join(value) if isinstance(value, list) else str(value)


def _parameters_without_runner_paths(source):
    r"""The injected parameters cell without :data:`RUNNER_PARAMETERS` (paths under ``_runs/``).

    >>> print(_parameters_without_runner_paths('# Parameters\nn = 16\ntables = ["a.csv"]\n'))
    # Parameters
    n = 16
    """
    tree = ast.parse(source)
    drop = set()
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id in RUNNER_PARAMETERS for t in targets):
                drop.update(range(node.lineno, node.end_lineno + 1))
    lines = source.splitlines()
    return "\n".join(line for n, line in enumerate(lines, 1) if n not in drop).rstrip("\n")


def colab_notebook(nb, references, name="notebook", labels=None, note=""):
    """The Colab edition of one executed notebook of the book.

    Every Markdown cell's MyST becomes plain Markdown (roles by the values ``nb`` glued and by
    author-year citations, directives by Markdown); the page's badge line is replaced by
    ``note``; site-only cells (:data:`SITE_ONLY_TAGS`), glue records and standard-error output
    are dropped; each figure's caption (``mystnb: figure: caption``) becomes a Markdown cell
    under it; the injected parameters lose the runner's paths (:data:`RUNNER_PARAMETERS`); the
    notebook ends with the references it cites and runs on Colab's ``python3`` kernel.

    Args:
        nb: The executed notebook (nbformat), not changed.
        references: :func:`read_references` of the book's bibliography.
        name: What error messages call the notebook.
        labels: ``{label: (text, url)}`` for ``{ref}`` targets on other pages; optional.
        note: Markdown put under the title in place of the badge.

    Returns:
        nbformat.NotebookNode: The Colab notebook.

    Raises:
        ValueError: the text refers to a value the run did not glue or to a reference the
            bibliography lacks (the message names the notebook and the key).
    """
    import nbformat

    context = _Context(name, glued_values(nb), references, labels or {})
    cells, titled = [], False
    for cell in copy.deepcopy(nb.cells):
        tags = cell.metadata.get("tags", [])
        if any(t in SITE_ONLY_TAGS for t in tags):
            continue
        if cell.cell_type == "markdown":
            source = "\n".join(
                line for line in _join(cell.source).split("\n") if 'class="colab-badge"' not in line
            )
            if not titled and re.search(r"^# ", source, re.M):
                titled = True
                if note:
                    title = re.compile(r"^(# .*)$", re.M)
                    source = title.sub(lambda m: f"{m[0]}\n\n{note}", source, count=1)
            cell.source = re.sub(r"\n{3,}", "\n\n", context.convert(source))
            cells.append(cell)
            continue
        if cell.cell_type != "code":
            cells.append(cell)
            continue
        if "injected-parameters" in tags:
            cell.source = _parameters_without_runner_paths(_join(cell.source))
        cell.outputs = [
            o
            for o in cell.get("outputs", [])
            if "scrapbook" not in o.get("metadata", {})
            and not (o.get("output_type") == "stream" and o.get("name") == "stderr")
        ]
        cells.append(cell)
        caption = cell.metadata.get("mystnb", {}).get("figure", {}).get("caption")
        if caption:
            text = context.convert(" ".join(str(caption).split()))
            figure = nbformat.v4.new_markdown_cell(f"*Figure: {text}*")
            figure.id = f"{cell.get('id', 'figure')}-caption"[-64:]  # the same in every build
            cells.append(figure)
    if context.cited:
        listing = "\n".join(f"- {references[k][2]}" for k in context.cited)
        listed = nbformat.v4.new_markdown_cell(f"## References\n\n{listing}")
        listed.id = "references"
        cells.append(listed)
    out = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(nb.metadata))
    out.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    out.metadata.pop("papermill", None)
    return out


def _figure_labels(site, pages, address):
    """``{label: (caption, url)}`` of every named figure of the executed notebooks ``pages``."""
    import nbformat

    labels = {}
    for page in pages:
        nb = nbformat.read(site / f"{page}.ipynb", as_version=4)
        for cell in nb.cells:
            figure = cell.metadata.get("mystnb", {}).get("figure", {})
            if cell.cell_type == "code" and figure.get("name"):
                url = f"{address}_runs/site/{page}.html#{figure['name']}" if address else None
                labels[figure["name"]] = ("figure", url)
    return labels


def write_edition(root, dest, site=None):
    """Write the Colab edition of every executed page of a book run.

    Args:
        root: The checkout: ``pyproject.toml`` (version, repository), ``book/references.bib``.
        dest: The folder to write; ``<page>.ipynb`` for each page (``original/mnist-5k.ipynb``).
        site: The executed pages; default ``root/_runs/site``. Hidden files are skipped.

    Returns:
        list[str]: The pages written, sorted.

    Raises:
        ValueError: MyST is left in a page's Markdown (the message names the page and what is
            left), or a page refers to a value or reference that does not exist. Nothing is
            written then.
        FileNotFoundError: ``site`` holds no executed page.
    """
    import nbformat

    from .notebook import atomic_path

    root, dest = Path(root), Path(dest)
    site = Path(site) if site else root / "_runs" / "site"
    pages = sorted(
        p.relative_to(site).with_suffix("").as_posix()
        for p in site.rglob("*.ipynb")
        if not any(part.startswith(".") for part in p.relative_to(site).parts)
    )
    if not pages:
        raise FileNotFoundError(f"no executed page under {site}: build the book first")
    references = read_references(root / "book" / "references.bib")
    repository = github_repository(root)
    address = site_address(repository) if repository else ""
    labels = _figure_labels(site, pages, address)
    editions, left = {}, []
    for page in pages:
        nb = nbformat.read(site / f"{page}.ipynb", as_version=4)
        note = f"*Colab edition of release {release_ref(root)}"
        if address:
            note += f" ([the page on the site]({address}_runs/site/{page}.html))"
        note += (
            ": the numbers in the text are those of the book's run. Running the notebook "
            "recomputes them, shown under the code.*"
        )
        edition = colab_notebook(nb, references, name=page, labels=labels, note=note)
        for cell in edition.cells:
            if cell.cell_type == "markdown" and raw_myst(cell.source):
                left.append(f"{page}: {', '.join(raw_myst(cell.source))}")
        editions[page] = edition
    if left:
        raise ValueError("MyST left in the Colab edition: " + "; ".join(left))
    for page, edition in editions.items():
        with atomic_path(dest / f"{page}.ipynb") as tmp:
            nbformat.write(edition, str(tmp))
    return pages


def main(argv=None):
    """``python -m hessinit.book.colab``: write the Colab edition of a book run."""
    parser = argparse.ArgumentParser(
        prog="python -m hessinit.book.colab",
        description="Write the Colab edition of the executed pages of a book run: plain "
        "Markdown, the glued values in the text.",
    )
    parser.add_argument("--root", default=".", help="the checkout (default: .)")
    parser.add_argument("--site", help="the executed pages (default: ROOT/_runs/site)")
    parser.add_argument(
        "--out", default="_build/colab", help="where to write (default: %(default)s)"
    )
    parser.add_argument(
        "--check-release",
        nargs="?",
        const="",
        metavar="TAG",
        help="write nothing; check that the install cells, CITATION.cff and the book's citation "
        "name the release v<version of pyproject.toml> (and that TAG is it, if given)",
    )
    args = parser.parse_args(argv)
    if args.check_release is not None:
        left = release_mismatches(args.root, args.check_release or None)
        for line in left:
            print(f"error: {line}", file=sys.stderr)
        if not left:
            print(f"every reference names the release {release_ref(args.root)}")
        return 1 if left else 0
    try:
        pages = write_edition(args.root, Path(args.root) / args.out, args.site)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote the Colab edition of {len(pages)} pages to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
