"""The claims engine and ledger (hessinit.study.claims): comparisons, verdicts, claim rows, the
ledger and its rendering.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from hessinit.study import claims


def test_compare_and_interval_rules():
    assert claims.compare([0.05, 0.1, float("nan")], "<", 0.1).tolist() == [True, False, False]
    assert claims.compare(0.1, "<=", 0.1)
    assert claims.compare_interval(0.01, 0.05, "<", 0.1) is True
    assert claims.compare_interval(0.2, 0.3, "<", 0.1) is False
    assert claims.compare_interval(0.05, 0.2, "<", 0.1) is None
    with pytest.raises(ValueError):
        claims.compare(1, "==", 1)
    with pytest.raises(ValueError):
        claims.compare_interval(2, 1, "<", 0)


KW = dict(source="paper abstract", wording="w", measure="m", seeds=5, rule="r", figure="fig-a",
          page="p")  # fmt: skip


@pytest.mark.parametrize(
    ("ok", "expected"),
    [
        ([True, True], "holds"),
        ([False, False], "does not hold"),
        ([True, False], "holds only when A"),
        ([None, None], "inconclusive"),
        ([False, None], "does not hold for A; inconclusive for B"),
        ([True, None], "holds only when A; inconclusive for B"),
        ([True, None, False], "does not hold for C; holds for A; inconclusive for B"),
        ([None, True, True], "holds only when B, C; inconclusive for A"),
    ],
)
def test_verdict_keeps_inconclusive_settings_apart_from_failures(ok, expected):
    assert claims.verdict(ok, where=list("ABC")[: len(ok)]) == expected


def test_verdict_without_labels_counts_and_rejects_bad_input():
    assert claims.verdict(True) == "holds"  # one setting, as a bare flag
    assert claims.verdict([True, None, False]) == (
        "does not hold in 1 of 3 settings; holds in 1 of 3 settings; "
        "inconclusive in 1 of 3 settings"
    )
    with pytest.raises(ValueError):
        claims.verdict([])
    with pytest.raises(ValueError):
        claims.verdict([True, False], where=["a"])


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(11, 20, "holds"), (1, 9, "does not hold"), (5, 15, "inconclusive"), (-math.inf, math.inf,
                                                                           "inconclusive")],
)  # fmt: skip
def test_interval_verdict_flips_with_the_interval(low, high, expected):
    assert claims.interval_verdict(low, high, ">", 10) == expected


def test_claim_row_checks_source_verdict_and_interval():
    row = claims.claim_row("0.1", setting="s", value=1.0, low=0.5, high=2.0, verdict="holds", **KW)
    assert set(row) == set(claims.COLUMNS)
    for verdict in ("not tested: only 20 steps", "inconclusive for a", "holds only when a"):
        claims.claim_row("0.1", setting="s", value=1.0, verdict=verdict, **KW)
    with pytest.raises(ValueError, match="source"):
        claims.claim_row("0.1", setting="s", value=1.0, verdict="holds", **{**KW, "source": "x"})
    with pytest.raises(ValueError, match="verdict"):
        claims.claim_row("0.1", setting="s", value=1.0, verdict="probably", **KW)
    with pytest.raises(ValueError, match="interval"):
        claims.claim_row("0.1", setting="s", value=3.0, low=0.5, high=2.0, verdict="holds", **KW)
    with pytest.raises(ValueError, match="finite"):
        claims.claim_row("0.1", setting="s", value=math.nan, verdict="holds", **KW)


def _write(tmp_path, name, rows):
    claims.claims_table(rows).to_csv(tmp_path / name, index=False)
    return name


def test_ledger_sorts_allows_one_row_per_setting_and_rejects_duplicates(tmp_path):
    a = _write(tmp_path, "a.csv", [
        claims.claim_row("1.10", setting="s", value=1, verdict="holds", **KW),
        claims.claim_row("0.1", setting="dense1", value=1, verdict="holds", **KW),
        claims.claim_row("0.1", setting="dense2", value=1, verdict="holds", **KW),
    ])  # fmt: skip
    b = _write(tmp_path, "b.csv", [claims.claim_row("1.2", setting="s", value=1, verdict="holds",
                                                    **KW)])  # fmt: skip
    table = claims.ledger([a, b], base=tmp_path)
    assert table[["claim", "setting"]].values.tolist() == [
        ["0.1", "dense1"], ["0.1", "dense2"], ["1.2", "s"], ["1.10", "s"]
    ]  # fmt: skip
    assert table.columns.tolist() == list(claims.COLUMNS)
    c = _write(tmp_path, "c.csv", [claims.claim_row("1.2", setting="s", value=2, verdict="holds",
                                                    **KW)])  # fmt: skip
    with pytest.raises(ValueError, match="twice"):
        claims.ledger([b, c], base=tmp_path)
    pd.DataFrame({"claim": ["1"], "value": [1]}).to_csv(tmp_path / "old.csv", index=False)
    with pytest.raises(ValueError, match="missing columns"):
        claims.ledger(["old.csv"], base=tmp_path)
    with pytest.raises(ValueError):
        claims.ledger([])


def test_ledger_markdown_shows_provenance_interval_seeds_and_figure():
    rows = claims.claims_table([
        claims.claim_row("0.1", setting="dense1", value=0.29, low=0.16, high=0.43,
                         verdict="does not hold", **{**KW, "source": "authors' notebook",
                                                     "wording": "explodes | oscillades"}),
        claims.claim_row("1.1", setting="relu", value=0.0, verdict="holds", **KW),
    ])  # fmt: skip
    text = claims.ledger_markdown(rows)
    lines = text.splitlines()
    assert "wording it rests on" in lines[0] and "seeds" in lines[0] and "source" in lines[0]
    assert len(lines) == 4
    assert "authors' notebook" in lines[2] and '"explodes \\| oscillades"' in lines[2]
    assert "m = 0.29 [0.16, 0.43]" in lines[2] and "| 5 |" in lines[2]
    assert "**does not hold**" in lines[2] and "{ref}`figure <fig-a>`" in lines[2]
    assert "m = 0 (exact)" in lines[3]


def test_ledger_csv_columns_and_verdict_counts():
    assert claims.LEDGER_CSV_COLUMNS == ("claim", "kind", "source", "setting", "measure", "value",
                                         "low", "high", "seeds", "verdict")  # fmt: skip
    assert set(claims.LEDGER_CSV_COLUMNS) <= set(claims.COLUMNS)
    counts = claims.verdict_counts(pd.DataFrame({"verdict": [
        "holds", "holds only when a; inconclusive for b", "does not hold", "inconclusive",
        "not tested: 20 steps only", "does not hold"]}))  # fmt: skip
    assert counts == {"holds": 1, "holds only when": 1, "does not hold": 2, "inconclusive": 1,
                      "not tested": 1, "does not hold for": 0,
                      "not testable with this estimator": 0}  # fmt: skip
