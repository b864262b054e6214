"""The book's notebooks in a Colab-like environment by plain papermill, and their install cell.

Colab preinstalls numpy, TensorFlow, pandas, matplotlib (and scipy, scikit-learn, IPython's
kernel, ...), imports ``google.colab`` in its kernel, and has neither hessinit nor myst-nb nor
papermill. The slow test builds such an environment: a virtual environment that sees only that
set of packages (linked from this interpreter's, with their dependencies, so nothing is
downloaded), a fake ``google.colab`` imported when the kernel starts, and ``$HESSINIT_SOURCE``
pointing the notebooks' install cell at a wheel of this checkout.

One notebook runs there, so that the suite executes each notebook of the book once (the small
book) and this one twice: ``claims``, alone, as a Colab reader opens it, top to bottom, install
cell included, by a plain ``papermill`` command without ``--cwd`` from a temporary working
directory, its output notebook in a folder elsewhere. It finds no chapter table next to it and
reads those of the published book, here the small book's results archive
(``$HESSINIT_RESULTS_URL``): its ledger must equal the one the small book's runner made, its
glued values must show as plain output, and nothing may be written outside the output folder
(the kernel, which has no papermill, starts in the working directory and must find the output
folder itself). Every import statement of every notebook then runs in that environment, after
the install cell: no notebook needs a package Colab lacks.

References: pyproject.toml, constraints.txt and _config.yml (the install cell must agree with
them), the small book's ledger (``_runs/site/claims.csv``), and the executed notebook's outputs.
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml
from notebook_runs import ROOT, cli_arguments, notebooks, small_parameters
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: What Colab preinstalls that the notebooks use (its kernel included); their dependencies too.
COLAB = (
    "tensorflow-cpu",
    "numpy",
    "pandas",
    "matplotlib",
    "scipy",
    "scikit-learn",
    "ipykernel",
    "ipython",
    "tqdm",
    "pyyaml",
    "requests",
)
#: Installed by the virtual environment itself.
OWN = {"pip", "setuptools", "wheel"}


def install_cell(name):
    return nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4).cells[0].source


def _pins():
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            req = Requirement(line.split("#")[0].strip())
            out[canonicalize_name(req.name)] = str(req.specifier).removeprefix("==")
    return out


@pytest.mark.parametrize("name", notebooks())
def test_install_cell_pins_the_release_and_the_colab_extra(name):
    """The install cell installs this version from the configured repository, or $HESSINIT_SOURCE,
    without touching Colab's packages, then exactly the `colab` extra at the locked versions."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = config["repository"]["url"].rstrip("/")
    assert project["urls"]["Repository"].rstrip("/") == url
    cell = install_cell(name)
    assert cell == install_cell("chain_rule")  # one install cell for every notebook
    assert 'if "google.colab" in sys.modules:' in cell
    source = f'os.environ.get("HESSINIT_SOURCE", "git+{url}@v{project["version"]}")'
    assert source in cell
    # pip in a subprocess, its exit status checked: `--no-deps` hessinit, then the `colab` extra
    assert "if subprocess.run(pip).returncode:" in cell
    (pip,) = [
        node.value
        for node in ast.walk(ast.parse(cell))
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["pip"]
    ]
    assert ast.unparse(pip.elts[0]) == "sys.executable"
    args = [ast.unparse(e) if isinstance(e, ast.Name) else e.value for e in pip.elts[1:]]
    assert args[:6] == ["-m", "pip", "install", "-q", "--no-deps", "source"]
    pins = _pins()
    extra = project["optional-dependencies"]["colab"]
    wanted = {canonicalize_name(Requirement(r).name) for r in extra}
    given = {}
    for item in args[6:]:
        req = Requirement(item)
        given[canonicalize_name(req.name)] = str(req.specifier).removeprefix("==")
    assert set(given) == wanted
    assert all(pins[n] == v for n, v in given.items()), (given, {n: pins[n] for n in given})


def _closure(names):
    """The installed distributions ``names`` need, their dependencies included (no extras)."""
    seen, todo = {}, list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen or name in OWN:
            continue
        dist = metadata.distribution(name)
        seen[name] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            if not req.marker or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def colab_environment(root):
    """A virtual environment at ``root/venv`` with only the Colab set; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    preinstalled = root / "preinstalled"
    preinstalled.mkdir()
    for dist in _closure(COLAB).values():
        base = Path(dist.locate_file(""))
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            if top in ("..", "__pycache__") or (preinstalled / top).exists():
                continue
            if (base / top).exists():
                (preinstalled / top).symlink_to(base / top)
    (site / "preinstalled.pth").write_text(f"{preinstalled}\n")
    colab = site / "google" / "colab"
    colab.mkdir(parents=True)
    (colab / "__init__.py").write_text('"""A stand-in for Colab\'s google.colab."""\n')
    return python


def checkout_wheel(root):
    """A wheel of this checkout's package, built from a copy (nothing is written into the tree)."""
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "hessinit", src / "hessinit", ignore=skip)
    dist = root / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(dist)],
        check=True,
    )
    (wheel,) = (root / "dist").glob("hessinit-*.whl")
    return wheel


def _probe(python, code):
    """The exit code of ``python -c code``, run outside the checkout (so no local import)."""
    return subprocess.run(
        [python, "-c", code], cwd=Path(python).parents[2], capture_output=True, text=True,
        env=_reader_environment(),
    ).returncode  # fmt: skip


def _outputs(nb, kind):
    return [
        o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
        if kind in o.get("data", {})
    ]  # fmt: skip


def import_statements():
    """Every import statement at the top of a code cell of a notebook of the book, once each.

    IPython's ``%`` and ``!`` lines are left out; imports nested in a block (an ``if``, a
    ``try``) too, since they may be optional.
    """
    statements = []
    for name in notebooks():
        nb = nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            lines = [line for line in cell.source.splitlines() if line.lstrip()[:1] not in "%!"]
            for node in ast.parse("\n".join(lines)).body:
                if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                    text = ast.unparse(node)
                    if text not in statements:
                        statements.append(text)
    return statements


def test_the_import_statements_are_found():
    found = import_statements()
    assert "from hessinit import book" in found
    assert any(s.startswith("from hessinit.study import") for s in found)
    assert not [s for s in found if "myst_nb" in s or "papermill" in s]


@pytest.mark.slow
def test_claims_alone_runs_in_a_colab_like_environment_and_every_import_of_the_book_works(
    tmp_path, small_book
):
    from hessinit.book import publish

    book_root, code = small_book
    assert code == 0
    archive = book_root / "_build" / "html" / publish.ARCHIVE
    start = time.perf_counter()
    python = colab_environment(tmp_path)
    wheel = checkout_wheel(tmp_path)
    # Colab-like: the preinstalled set imports, the book's own packages do not (yet).
    found = "import importlib.util as u; assert all(map(u.find_spec, {!r}))"  # cheap: no import
    assert _probe(python, found.format(["tensorflow", "numpy", "pandas", "matplotlib"])) == 0
    assert _probe(python, found.format(["sklearn", "scipy", "ipykernel", "keras"])) == 0
    for module in ("hessinit", "myst_nb", "papermill", "mlxtend", "jupytext"):
        assert _probe(python, f"import {module}") != 0, f"{module} is visible: not Colab-like"
    kernels = tmp_path / "jupyter" / "kernels" / "colab"
    kernels.mkdir(parents=True)
    spec = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--IPKernelApp.exec_lines=['import google.colab']"],
        "display_name": "Colab-like",
        "language": "python",
        "env": {"HESSINIT_SOURCE": str(wheel), "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    }  # fmt: skip
    (kernels / "kernel.json").write_text(json.dumps(spec))
    setup = time.perf_counter() - start
    work = tmp_path / "work"  # the reader's working directory
    out = tmp_path / "out"  # where the executed notebook goes
    work.mkdir()
    out.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    env = {**_reader_environment(), "JUPYTER_PATH": str(tmp_path / "jupyter"),
           "TF_CPP_MIN_LOG_LEVEL": "3", publish.ARCHIVE_URL_ENV: archive.as_uri()}  # fmt: skip
    print(f"Colab-like environment built in {setup:.0f} s")
    t = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable, "-m", "papermill", str(ROOT / "book" / "claims.ipynb"),
            str(out / "claims.ipynb"), "-k", "colab", "--no-progress-bar",
            "-p", "output_dir", str(out),  # its tables next to it, as reproducibility says
            *cli_arguments(small_parameters().get("claims", {})),
        ],
        cwd=work, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, f"claims failed in Colab:\n{result.stderr[-3000:]}"
    print(f"Colab-like environment: claims in {time.perf_counter() - t:.0f} s")
    assert _probe(python, "import hessinit, mlxtend") == 0  # installed by the install cell
    assert _probe(python, "import myst_nb") != 0  # and myst-nb was not needed
    # plain papermill wrote nothing outside the output folder
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert list(work.iterdir()) == []
    # the ledger of the published tables is the runner's, and the page says where they came from
    ours = pd.read_csv(out / "claims.csv")
    pd.testing.assert_frame_equal(ours, pd.read_csv(book_root / "_runs" / "site" / "claims.csv"))
    text = (out / "claims.ipynb").read_text()
    assert "published book" in text and archive.as_uri() in text
    nb = nbformat.read(out / "claims.ipynb", as_version=4)
    shown = [o["data"]["text/markdown"] for o in _outputs(nb, "text/markdown")]
    assert [s for s in shown if re.match(r"\*\*\w+\*\* = ", s)], "glued values not shown"
    # every import of every notebook works in Colab once the install cell has run
    statements = import_statements()
    probe = subprocess.run(
        [python, "-c", "\n".join(statements)], cwd=work, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert list(work.iterdir()) == []


def _reader_environment():
    """This process's environment without ``PYTHONPATH``: a Colab reader has no checkout on it."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
