"""The book's notebooks (pairing, Colab set-up) and the helpers they call (book.notebook)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jupytext
import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml

from hessinit.book import notebook, parameters
from hessinit.study import claimdata

ROOT = Path(__file__).resolve().parents[2]
#: The executed notebooks: every book/*.ipynb. Plain pages (intro, api, bibliography) have none.
NOTEBOOKS = sorted(p.stem for p in (ROOT / "book").glob("*.ipynb"))


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_every_notebook_has_a_paired_markdown_in_sync_and_no_outputs():
    assert set(NOTEBOOKS) >= {"chain_rule", "original", "sd_run", "sd_sweep", "reproducibility"}
    for name in NOTEBOOKS:
        ipynb = nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4)
        md = jupytext.read(ROOT / "book" / f"{name}.md")
        assert _cells(ipynb) == _cells(md), f"book/{name}.ipynb and .md differ: run jupytext --sync"
        assert ipynb.metadata["jupytext"]["formats"] == "ipynb,md:myst"
        for cell in ipynb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, name
        tags = [c.metadata.get("tags", []) for c in ipynb.cells]
        assert sum("parameters" in t for t in tags) == 1, f"{name}: one parameters cell"
        assert "remove-cell" in tags[0] and "google.colab" in ipynb.cells[0].source


def test_plain_pages_are_not_notebooks():
    """intro, api and bibliography are MyST pages: no .ipynb pair, no Jupytext header."""
    for name in ("intro", "api", "bibliography"):
        assert name not in NOTEBOOKS
        assert "jupytext" not in (ROOT / "book" / f"{name}.md").read_text()


def test_write_table_replaces_atomically(tmp_path):
    path = tmp_path / "deep" / "table.csv"
    notebook.write_table(pd.DataFrame({"a": [1, 2]}), path)
    notebook.write_table(pd.DataFrame({"a": [3]}), path)
    assert pd.read_csv(path)["a"].tolist() == [3]
    assert [p.name for p in path.parent.iterdir()] == ["table.csv"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()  # not mkstemp's 0600


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_glue_turns_numpy_scalars_into_python_numbers(monkeypatch):
    glued = {}
    import myst_nb

    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: glued.update({name: value}))
    notebook.glue("ratio", np.float32(0.25))
    notebook.glue("rows", np.array(3))
    notebook.glue("text", "ok")
    assert glued == {"ratio": 0.25, "rows": 3, "text": "ok"}
    assert type(glued["ratio"]) is float and type(glued["rows"]) is int


def test_read_records_one_row_per_record(tmp_path):
    for i in range(2):
        rec = {"id": f"site/x{i}", "notebook": "x", "status": "ok", "parameters": {"b": 1, "a": i}}
        (tmp_path / f"x{i}.json").write_text(json.dumps(rec))
    frame = notebook.read_records(["x0.json", "x1.json"], base=tmp_path)
    assert frame["run"].tolist() == ["site/x0", "site/x1"]
    assert frame["parameters"][1] == '{"a": 1, "b": 1}'
    assert frame["seconds"].isna().all()


def test_versions_name_the_installed_packages():
    info = notebook.versions()
    assert {"python", "platform", "numpy", "pandas", "papermill"} <= set(info)
    assert info["jupyter-book"].startswith("1.")


def test_relative_outputs_go_to_the_output_folder_passed(tmp_path, monkeypatch):
    """write_table and show_table's CSV: under the ``output_dir`` they are given (relative to the
    working directory), the working directory by default; absolute paths as they are."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert notebook.output_folder() == work
    assert notebook.output_folder("out") == work / "out"
    assert notebook.write_table(pd.DataFrame({"a": [1]}), "t.csv", "out") == work / "out" / "t.csv"
    shown = notebook.show_table(pd.DataFrame({"a": [2]}), csv="sub/full.csv", output_dir="out")
    assert "[The full table](sub/full.csv)" in shown.markdown
    assert pd.read_csv(work / "out" / "sub" / "full.csv")["a"].tolist() == [2]
    assert sorted(p.name for p in work.iterdir()) == ["out"]
    # not given: the working directory, whatever a notebook's globals or parent process hold
    assert notebook.write_table(pd.DataFrame({"a": [4]}), "here.csv") == work / "here.csv"
    absolute = tmp_path / "abs.csv"
    assert notebook.write_table(pd.DataFrame({"a": [3]}), absolute, "out") == absolute


def test_no_helper_reads_another_process():
    """The output folder is a parameter: nothing in book.notebook reads /proc or a command line."""
    source = (ROOT / "hessinit" / "book" / "notebook.py").read_text()
    assert "/proc" not in source and '"/proc"' not in source
    assert "JPY_PARENT_PID" not in source and "cmdline" not in source


def test_claims_looks_outside_the_runner_for_what_the_runner_collects():
    """claims' own list of chapters (its fallback outside the runner) is the grid's collect list,
    and the reproducibility chapter names each of their tables."""
    grid = yaml.safe_load((ROOT / "book" / "grid.yml").read_text())
    (collect,) = [e["collect"] for e in grid["runs"] if e["notebook"] == "claims"]
    source = (ROOT / "book" / "claims.md").read_text()
    assert "chapters = claimdata.claim_chapters(claimdata.claims_yml())" in source
    assert claimdata.claim_chapters(claimdata.claims_yml()) == collect
    text = (ROOT / "book" / "reproducibility.md").read_text()
    assert all(f"`{name}.csv`" in text for name in collect)


@pytest.mark.slow  # executes a notebook
def test_under_the_runner_outputs_stay_next_to_the_run(tmp_path):
    """The runner's kernel writes its table and a show_table CSV into its output folder: the
    runner passes ``output_dir``, which the notebook hands to the helpers."""
    from hessinit.book.execute import Job, execute_job

    code = (
        "import pandas as pd\nfrom hessinit import book\n"
        "frame = pd.DataFrame({'a': [1]})\nbook.write_table(frame, table, output_dir)\n"
        "print(book.show_table(frame, csv='full/x.csv', output_dir=output_dir))\n"
    )
    parameters = "table = 'x.csv'\noutput_dir = '.'"
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell(code),
        ]
    )
    job = Job("site/x", "x", nbformat.writes(nb), "site/x.ipynb", {"table": "t.csv"}, timeout=120)
    outcome = execute_job(job)
    assert outcome.status == "ok", outcome.error
    assert sorted(outcome.files) == ["site/full/x.csv", "site/t.csv"]
    assert "[The full table](full/x.csv)" in outcome.notebook
    # The runner told the kernel its output folder: the notebook needs no other process.
    injected = [c for c in nbformat.reads(outcome.notebook, as_version=4).cells
                if "injected-parameters" in c.metadata.get("tags", [])]  # fmt: skip
    assert 'output_dir = "."' in injected[0].source


def _stream_text(notebook_json):
    nb = nbformat.reads(notebook_json, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.slow  # executes a notebook
def test_an_executed_notebook_shows_no_progress_bar_warning():
    """tqdm.auto in the runner's kernel: plain bars after ``from hessinit import book``, no
    "IProgress not found" warning; without that import (and without ipywidgets) the warning is
    there, so the check can fail."""
    import importlib.util

    from hessinit.book.execute import Job, execute_job

    bar = "from tqdm.auto import tqdm\nprint(sum(tqdm(range(3))), tqdm.__mro__[1].__module__)"
    outcomes = {}
    for name, first in (("book", "from hessinit import book"), ("plain", "import sys")):
        nb = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell("table = 'x.csv'", metadata={"tags": ["parameters"]}),
                   nbformat.v4.new_code_cell(first), nbformat.v4.new_code_cell(bar),
                   nbformat.v4.new_code_cell("open(table, 'w').write('a\\n1\\n')")]
        )  # fmt: skip
        job = Job(f"site/{name}", name, nbformat.writes(nb), f"site/{name}.ipynb",
                  {"table": f"{name}.csv"}, timeout=120)  # fmt: skip
        outcome = execute_job(job)
        assert outcome.status == "ok", outcome.error
        outcomes[name] = _stream_text(outcome.notebook)
    assert "IProgress" not in outcomes["book"] and "TqdmWarning" not in outcomes["book"]
    assert "3 tqdm.std" in outcomes["book"]  # the plain bar
    if importlib.util.find_spec("ipywidgets") is None:
        assert "IProgress not found" in outcomes["plain"]


def _parameters_cell(name):
    nb = nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    return cell.source


def test_every_notebook_declares_typed_parameters_whose_defaults_fit():
    """Each parameters cell annotates every parameter; typed_parameters keeps the defaults."""
    for name in NOTEBOOKS:
        namespace = {}
        exec(_parameters_cell(name), namespace)  # plain annotated assignments
        defaults = {k: v for k, v in namespace.items() if not k.startswith("__")}
        assert set(namespace["__annotations__"]) == set(defaults), name
        assert parameters.typed_parameters(namespace) == defaults, name


def _injected(name, *pairs):
    """A notebook's namespace after its parameters cell and papermill's ``-p NAME TEXT``."""
    from papermill.cli import _resolve_type

    namespace = {}
    exec(_parameters_cell(name), namespace)
    for key, text in pairs:
        namespace[key] = _resolve_type(text)  # what papermill's -p makes of the text
    return namespace


def test_typed_parameters_convert_what_papermill_passes():
    namespace = _injected("original", ("steps", "300"), ("sds", "0.01, 1"), ("seeds", "[3]"),
                          ("lr", "1e-3"), ("dataset", "fashion_mnist"))  # fmt: skip
    parameters.typed_parameters(namespace)
    assert namespace["steps"] == 300 and type(namespace["steps"]) is int
    assert namespace["sds"] == [0.01, 1.0] and all(type(v) is float for v in namespace["sds"])
    assert namespace["seeds"] == [3] and namespace["lr"] == 0.001
    assert namespace["dataset"] == "fashion_mnist"


def test_typed_parameters_refuse_a_wrong_type_naming_the_parameter():
    import pytest

    namespace = _injected("original", ("steps", "abc"))
    with pytest.raises(parameters.ParameterError, match=r"steps: expected int, got 'abc'"):
        parameters.typed_parameters(namespace)
    namespace = _injected("original", ("sds", "0.01, abc"), ("seeds", "0.5"))
    with pytest.raises(parameters.ParameterError) as err:
        parameters.typed_parameters(namespace)
    message = str(err.value)
    assert "sds: expected list[float], got '0.01, abc' (item 2, 'abc' is not a number)" in message
    assert "seeds: expected list[int], got 0.5 (item 1, 0.5 is not an integer)" in message
    with pytest.raises(parameters.ParameterError, match="dataset: expected str, got 5"):
        parameters.typed_parameters(_injected("original", ("dataset", "5")))


def test_at_least_refuses_too_few_values_naming_the_parameter():
    import pytest

    need = {"seeds": (2, "intervals"), "steps": (1, "a step")}
    namespace = {"seeds": "0", "steps": 0}
    types = {"seeds": list[int], "steps": int}
    with pytest.raises(parameters.ParameterError) as err:
        parameters.typed_parameters(namespace, types, at_least=need)
    assert "seeds: needs at least 2 values (intervals), got [0]" in str(err.value)
    assert "steps: needs at least 1 (a step), got 0" in str(err.value)
    namespace = {"seeds": "0, 1", "steps": 1}
    assert parameters.typed_parameters(namespace, types, at_least=need)["seeds"] == [0, 1]


def test_original_with_one_seed_is_refused_before_any_training():
    """``-y "seeds: [0]"``: the cells up to the typed parameters run (install, parameters,
    imports), the call refuses naming ``seeds``, and no cell before it trains."""
    import pytest

    nb = nbformat.read(ROOT / "book" / "original.ipynb", as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    (typed,) = [i for i, s in enumerate(code) if "typed_parameters(" in s]
    assert not any("original_runs" in s or "experiment(" in s for s in code[:typed])
    assert any("original_runs" in s for s in code[typed + 1 :])
    (params,) = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    namespace = {}
    for source in code[:typed]:
        exec(source, namespace)
        if source == nb.cells[params].source:
            namespace["seeds"] = [0]  # papermill's injected cell for -y "seeds: [0]"
    with pytest.raises(parameters.ParameterError, match=r"seeds: needs at least 2 values"):
        exec(code[typed], namespace)
