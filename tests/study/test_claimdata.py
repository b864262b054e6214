"""The claims table (book/claims.yml) against the code, and the engine of hessinit.study.claimdata
against the chapters' rule functions on synthetic frames: the same values and verdicts."""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hessinit.chapters import dominance, dominance_network
from hessinit.study import claimdata, claims

ROOT = Path(__file__).resolve().parents[2]
TABLE = claimdata.read_claims(ROOT / "book" / "claims.yml")


def code_claim_ids():
    """Every claim id a rule function of the package writes (literal or f"3.{...}" forms)."""
    ids = set()
    for path in [*(ROOT / "hessinit" / "chapters").glob("*.py"), ROOT / "hessinit/study/claims.py"]:
        text = path.read_text()
        ids |= set(re.findall(r'"([0-5]\.[1-9])"', text))
    return ids


def test_the_table_lists_every_claim_of_the_code_once():
    assert len(TABLE) >= 20
    assert code_claim_ids() <= set(TABLE) | {"3.3", "3.4", "3.5", "3.6"}
    assert {"3.3", "3.4", "3.5", "3.6"} <= set(TABLE)  # written as f"3.{3 + i}" in the code
    chapters = claimdata.claim_chapters(TABLE)
    assert chapters == ["original", "dominance", "init_schemes", "step_size", "diagnostic", "cnn",
                        "cnn_training"]  # fmt: skip


def test_the_book_and_the_package_read_one_table():
    """book/claims.yml is the package's file (a link), and the package ships it."""
    assert (ROOT / "book" / "claims.yml").resolve() == claimdata.CLAIMS_FILE.resolve()
    assert claimdata.claims_yml() == TABLE
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'\[tool\.setuptools\.package-data\]\n"hessinit\.study" = \["claims\.yml"\]',
                     pyproject)  # fmt: skip


def _calls(tree, name):
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "attr", getattr(
                call.func, "id", None)) == name:  # fmt: skip
            yield call


def test_only_the_engine_builds_rows_and_no_chapter_writes_words():
    """claim_row is called by hessinit.study.claimdata alone; the chapters call ledger_row
    without words, source literals, measures or figures (those come from the table)."""
    callers = set()
    for path in (ROOT / "hessinit").rglob("*.py"):
        tree = ast.parse(path.read_text())
        if any(_calls(tree, "claim_row")):
            callers.add(path.relative_to(ROOT).as_posix())
        for call in _calls(tree, "ledger_row"):
            words = {k.arg for k in call.keywords} & {"wording", "measure", "figure", "kind"}
            assert not words, (path.name, call.lineno, words)
    assert callers == {"hessinit/study/claimdata.py"}
    for name in ("DOMINANCE_WORDING", "INIT_RECOVERS", "DIAGNOSTIC_WORDING", "init_root_rows"):
        assert not hasattr(claims, name), name


def test_ledger_row_takes_the_words_from_the_table():
    for cid, entry in TABLE.items():
        row = claimdata.ledger_row(cid, setting="s", value=1.0, seeds=2, rule="r",
                                   verdict="holds")  # fmt: skip
        assert (row["wording"], row["source"], row["measure"], row["figure"], row["kind"],
                row["page"]) == (entry["wording"], entry["source"], entry["measure"],
                                 entry["figure"], entry["kind"], entry["chapter"])  # fmt: skip
    row = claimdata.ledger_row("5.4", setting="s", value=0.0, seeds=2, rule="r",
                               verdict="holds", structural=True, detail="c = 2")  # fmt: skip
    assert row["kind"] == "fact" and row["measure"] == TABLE["5.4"]["measure"] + " (c = 2)"
    assert (
        claimdata.ledger_row(
            "5.2", setting="s", value=0.0, seeds=2, rule="r", verdict="holds", structural=True
        )["kind"]
        == "empirical"
    )
    with pytest.raises(KeyError):
        claimdata.ledger_row("9.9", setting="s", value=0.0, seeds=2, rule="r", verdict="holds")


def test_the_kinds_of_the_table():
    """Rows true by construction are not counted as findings (the verdicts issue)."""
    assert TABLE["1.1"]["kind"] == "fact" and TABLE["3.1"]["kind"] != "empirical"
    for cid in ("5.1", "5.4", "5.6"):  # their ReLU (structural) rows
        assert TABLE[cid]["structural_kind"] != "empirical"
    assert {e["kind"] for e in TABLE.values()} <= set(claimdata.KINDS)


def test_kind_counts_counts_every_kind_and_rejects_others():
    ledger = pd.DataFrame({"kind": ["empirical", "sanity", "empirical", "fact", "empirical"]})
    counts = claimdata.kind_counts(ledger)
    assert counts == {"fact": 1, "sanity": 1, "empirical": 3}
    assert sum(counts.values()) == len(ledger)
    assert claimdata.kind_counts(ledger.iloc[:0]) == {"fact": 0, "sanity": 0, "empirical": 0}
    with pytest.raises(ValueError, match="unknown kinds"):
        claimdata.kind_counts(pd.DataFrame({"kind": ["finding"]}))


def _ratios(rows):
    return pd.DataFrame(rows, columns=["activation", "sd", "R_over_H", "low", "high"]).assign(
        G_over_H=0.9, probes=[30 + i for i in range(len(rows))]
    )


@pytest.mark.parametrize(
    "rows",
    [
        [("relu", 0.01, 0.02, 0.01, 0.03), ("tanh", 1.0, 0.05, 0.04, 0.06)],
        [("relu", 0.01, 0.9, 0.8, 1.0)],
        [("relu", 0.01, 0.9, 0.8, 1.0), ("tanh", 1.0, 0.05, 0.04, 0.06)],
        [("relu", 0.01, 0.1, 0.05, 0.2), ("tanh", 1.0, 0.05, 0.04, 0.06)],
        [("relu", 0.01, 0.1, 0.05, 0.2)],
    ],
)
def test_the_engine_gives_claim_1_5_the_values_and_verdict_of_its_rule(rows):
    ratios = _ratios(rows)
    before = dominance_network.dominance_whole_rows(ratios, threshold=0.1, setting="s")
    frame = pd.DataFrame({
        "setting": [f"{a} sd={s:g}"
                    for a, s in zip(ratios["activation"], ratios["sd"], strict=True)],
        "value": ratios["R_over_H"], "low": ratios["low"], "high": ratios["high"],
        "seeds": 1, "judged": True,  # one network per setting: probes are not seeds
    })  # fmt: skip
    after = claimdata.frame_rows(TABLE["1.5"], frame, setting="s")
    columns = ["claim", "source", "wording", "value", "low", "high", "seeds", "verdict", "figure",
               "page"]  # fmt: skip
    pd.testing.assert_frame_equal(after[columns], before[columns])


@pytest.mark.parametrize(("top", "seeds"), [(0.05, [3, 3, 1]), (0.3, [3, 3, 3]), (0.3, [1, 1, 1])])
def test_the_engine_gives_claim_1_2_the_values_and_verdict_of_its_rule(top, seeds):
    summary = pd.DataFrame({
        "activation": ["tanh"] * 3, "init": ["lecun", "glorot", "he"], "scaling": "all",
        "sd": np.nan, "R_over_H": [0.02, top, 0.5], "low": [0.01, top - 0.01, 0.4],
        "high": [0.03, top + 0.01, 0.6], "G_over_H": 0.9, "seeds": seeds,
    })  # fmt: skip
    before = dominance.dominance_init_rows(summary, threshold=0.1, setting="s").iloc[0]
    frame = pd.DataFrame({
        "setting": [f"tanh {i}" for i in summary["init"]], "value": summary["R_over_H"],
        "low": summary["low"], "high": summary["high"], "seeds": summary["seeds"],
        "judged": summary["seeds"] >= 2,
    })  # fmt: skip
    after = claimdata.frame_rows(TABLE["1.2"], frame, setting="s").iloc[0]
    if before["verdict"].startswith(claims.NOT_TESTED):
        assert after["verdict"].startswith(claims.NOT_TESTED) and after["seeds"] == 0
        return
    assert after["verdict"] == before["verdict"]
    assert (after["value"], after["low"], after["high"], after["seeds"]) == (
        before["value"], before["low"], before["high"], before["seeds"])  # fmt: skip


def test_exact_values_are_judged_as_they_are_and_bad_input_is_refused():
    frame = pd.DataFrame({"setting": ["a", "b"], "value": [0.0, 0.5], "low": math.nan,
                          "high": math.nan, "seeds": 3, "judged": True})  # fmt: skip
    row = claimdata.frame_rows(TABLE["1.5"], frame, setting="s", threshold=0.1).iloc[0]
    assert row["verdict"] == "holds only when a" and row["value"] == 0.5
    assert claimdata.frame_rows(TABLE["4.1"], frame, setting="s").iloc[0]["value"] == 0.0
    with pytest.raises(ValueError, match="columns"):
        claimdata.frame_rows(TABLE["1.5"], frame.drop(columns="judged"), setting="s")
    with pytest.raises(ValueError, match="not a comparison"):
        claimdata.frame_rows(TABLE["2.1"], frame, setting="s")


def test_reading_the_table_refuses_bad_entries(tmp_path):
    good = {k: "x" for k in claimdata.CLAIM_KEYS} | {
        "id": "1",
        "source": "paper abstract",
        "kind": "fact",
        "op": "<",
        "threshold": 1,
    }
    import yaml

    for bad, match in (({"source": "a blog"}, "source"), ({"kind": "guess"}, "kind"),
                       ({"op": "=="}, "op"), ({"extra": 1}, "keys")):  # fmt: skip
        (tmp_path / "c.yml").write_text(yaml.safe_dump({"claims": [good | bad]}))
        with pytest.raises(ValueError, match=match):
            claimdata.read_claims(tmp_path / "c.yml")
    (tmp_path / "c.yml").write_text(yaml.safe_dump({"claims": [good, good]}))
    with pytest.raises(ValueError, match="twice"):
        claimdata.read_claims(tmp_path / "c.yml")


def test_the_ledger_collects_the_chapters_of_the_table():
    """The claims page reads its chapter list from the table; the grid's list must agree."""
    import yaml

    chapters = claimdata.claim_chapters(TABLE)
    grid = yaml.safe_load((ROOT / "book" / "grid.yml").read_text())["runs"]
    collect = next(r["collect"] for r in grid if r["notebook"] == "claims")
    assert collect == chapters
    page = (ROOT / "book" / "claims.md").read_text()
    assert "chapters = claimdata.claim_chapters(claimdata.claims_yml())" in page
