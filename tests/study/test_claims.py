"""Verdicts computed from thresholds, each chapter's rules on synthetic frames where the verdict
flips, and the claims ledger built from small synthetic tables."""

from __future__ import annotations

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


def test_verdict_over_settings():
    assert claims.verdict(True) == "holds"
    assert claims.verdict([False, False]) == "does not hold"
    assert claims.verdict([True, False, True], ["a", "b", "c"]) == "holds only when a; c"
    assert claims.verdict([True, False]) == "holds only when in 1 of 2 settings"
    assert claims.verdict([None, False]) == "inconclusive"
    # an inconclusive setting is named as such, never counted as a failure
    assert claims.verdict([None, True], ["a", "b"]) == "holds only when b; inconclusive for a"
    with pytest.raises(ValueError):
        claims.verdict([True], ["a", "b"])


def _row(claim, verdict="holds", value=0.5):
    return claims.claim_row(claim, source="paper abstract", wording="paper says",
                            setting="setting", measure="R/H", value=value, seeds=3,
                            rule="R/H < 0.1", verdict=verdict, figure=f"fig-{claim}",
                            page="page")  # fmt: skip


def test_claim_row_rejects_missing_numbers_and_unknown_verdicts():
    with pytest.raises(ValueError, match="not finite"):
        _row("1", value=float("nan"))
    with pytest.raises(ValueError, match="unknown verdict"):
        _row("1", verdict="probably")
    assert _row("1", verdict="holds only when tanh: sd <= 0.001")["value"] == 0.5


def test_ledger_collects_sorts_and_renders(tmp_path):
    _write(claims.claims_table([_row("2.1"), _row("10.1", "does not hold")]), tmp_path / "b.csv")
    _write(claims.claims_table([_row("1.2"), _row("1.10")]), tmp_path / "a.csv")
    table = claims.ledger(["b.csv", "a.csv"], base=tmp_path)
    assert table["claim"].tolist() == ["1.2", "1.10", "2.1", "10.1"]  # numeric order of ids
    text = claims.ledger_markdown(table)
    lines = text.strip().splitlines()
    assert len(lines) == 2 + 4
    assert "{ref}`figure <fig-1.10>`" in lines[3] and "R/H = 0.5" in lines[3]
    assert "**does not hold**" in lines[-1]
    assert claims.verdict_counts(table) == {
        "holds": 3, "holds only when": 0, "does not hold": 1, "inconclusive": 0, "not tested": 0,
    }  # fmt: skip


def test_ledger_rejects_duplicates_missing_columns_and_no_tables(tmp_path):
    _write(claims.claims_table([_row("1")]), tmp_path / "a.csv")
    _write(claims.claims_table([_row("1")]), tmp_path / "b.csv")
    with pytest.raises(ValueError, match="twice"):
        claims.ledger(["a.csv", "b.csv"], base=tmp_path)
    _write(pd.DataFrame({"claim": ["3"]}), tmp_path / "c.csv")
    with pytest.raises(ValueError, match="missing columns"):
        claims.ledger(["c.csv"], base=tmp_path)
    with pytest.raises(ValueError, match="no claims table"):
        claims.ledger([])


def _write(table, path):
    table.to_csv(path, index=False)


# The chapters' rules: each on a synthetic frame where the verdict flips.


# The dominance rules (claims 1.1-1.5) are tested in tests/study/test_dominance_rules.py.


def _best(c_relu, factor_relu):
    return pd.DataFrame({"activation": ["relu", "tanh", "relu"], "dropout": [0.0, 0.0, 0.2],
                         "c": [c_relu, 1.0, 1.6],
                         "log_factor": [factor_relu, -0.05, 0.1]})  # fmt: skip


THEORY = {("relu", 0.0): 2.0, ("tanh", 0.0): 1.0, ("relu", 0.2): 1.6}
