"""The claims vocabulary and ledger (hessinit.study.claims) and the original chapter's rules."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hessinit.study import analysis, claims

KW = dict(source="paper abstract", wording="w", measure="m", seeds=5, rule="r", figure="fig-a",
          page="p")  # fmt: skip


# --------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ok", "expected"),
    [
        ([True, True], "holds"),
        ([False, False], "does not hold"),
        ([True, False], "holds only when A"),
        ([None, None], "inconclusive"),
        ([False, None], "inconclusive"),
        ([True, None], "holds only when A; inconclusive for B"),
        ([True, None, False], "holds only when A; inconclusive for B"),
        ([None, True, True], "holds only when B; C; inconclusive for A"),
    ],
)
def test_verdict_keeps_inconclusive_settings_apart_from_failures(ok, expected):
    assert claims.verdict(ok, where=list("ABC")[: len(ok)]) == expected


def test_verdict_without_labels_counts_and_rejects_bad_input():
    assert claims.verdict([True, None, False]) == (
        "holds only when in 1 of 3 settings; inconclusive in 1 of 3 settings"
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


# --------------------------------------------------------------------------------------------
# The ledger
# --------------------------------------------------------------------------------------------


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
    assert claims.LEDGER_CSV_COLUMNS == ("claim", "source", "setting", "measure", "value", "low",
                                         "high", "seeds", "verdict")  # fmt: skip
    assert set(claims.LEDGER_CSV_COLUMNS) <= set(claims.COLUMNS)
    counts = claims.verdict_counts(pd.DataFrame({"verdict": [
        "holds", "holds only when a; inconclusive for b", "does not hold", "inconclusive",
        "not tested: 20 steps only", "does not hold"]}))  # fmt: skip
    assert counts == {"holds": 1, "holds only when": 1, "does not hold": 2, "inconclusive": 1,
                      "not tested": 1}  # fmt: skip


# --------------------------------------------------------------------------------------------
# The original chapter: analysis and rules
# --------------------------------------------------------------------------------------------


def _runs(h_big, h_small, seeds=(0, 1, 2)):
    """A tidy frame of two sds and three seeds at three checkpoints, dense1 only."""
    rows = []
    for seed in seeds:
        for sd, values in ((1.0, h_big), (1e-5, h_small)):
            for step, h in zip((0, 10, 20), values, strict=True):
                rows.append(
                    {
                        "sd": sd,
                        "seed": seed,
                        "step": step,
                        "layer": "dense1",
                        "H": h * (1 + 0.01 * seed),
                        "hessian_loss": 2.3 - 0.01 * step,
                    }
                )
    return pd.DataFrame(rows)


def test_sd_ratio_course_and_extremes_match_a_direct_computation():
    frame = _runs([0.5, 1.0, 0.8], [4.0, 4.0, 4.0])
    ratio = analysis.sd_ratio_course(frame)
    assert len(ratio) == 9
    np.testing.assert_allclose(ratio["ratio"][:3], [0.125, 0.25, 0.2])  # seed 0
    ext = analysis.seed_extremes(ratio)
    np.testing.assert_allclose(ext["high"], [0.25, 0.25, 0.25])
    np.testing.assert_allclose(ext["low"], [0.125] * 3)


def test_peak_swing_and_loss_gains():
    frame = pd.DataFrame(
        {
            "sd": 1.0,
            "seed": 0,
            "layer": "dense2",
            "step": [0, 10, 20, 30],
            "H": [30.0, 100.0, 5.0, 40.0],
            "hessian_loss": [2.3, 2.0, 1.3, 1.1],
        }
    )
    p = analysis.peak_swing(frame, 1.0).iloc[0]
    assert (p["peak"], p["trough"], p["swing"]) == (100.0, 5.0, 20.0)
    g = analysis.loss_gains(frame).iloc[0]
    assert g["gain"] == pytest.approx(1.2) and g["early_step"] == 10
    assert g["early_gain"] == pytest.approx(0.3)
    g = analysis.loss_gains(frame, early=0.5).iloc[0]
    assert g["early_step"] == 20 and g["early_gain"] == pytest.approx(1.0)


def _peaks(peak, swing, layer="dense2"):
    return pd.DataFrame({"layer": layer, "seed": range(len(peak)), "peak": peak, "swing": swing})


@pytest.mark.parametrize(
    ("high", "expected"),
    [([20.0, 21.0, 22.0], "holds"), ([0.2, 0.25, 0.3], "does not hold"),
     ([1.0, 30.0, 5.0], "inconclusive")],
)  # fmt: skip
def test_original_explode_rule_on_dense1_flips(high, expected):
    extremes = pd.DataFrame({"seed": [0, 1, 2], "high": high})
    rows = claims.original_explode_rows(
        extremes,
        _peaks([1.0] * 3, [1.0] * 3, "dense1"),
        big=1.0,
        small=1e-5,
        factor=10,
        peak=30,
        swing=10,
        setting="t",
    )
    assert len(rows) == 1  # dense1's own peaks are not a second row
    row = rows.iloc[0]
    assert row["verdict"] == expected and row["source"] == "authors' notebook"
    assert row["wording"] == claims.NOTEBOOK_EXPLODES and "oscillades" in row["wording"]
    assert row["value"] == pytest.approx(np.mean(high)) and row["seeds"] == 3
    assert row["low"] <= row["value"] <= row["high"]


@pytest.mark.parametrize(
    ("peak", "swing", "expected"),
    [
        ([100.0, 110.0, 90.0], [50.0, 60.0, 40.0], "holds"),
        ([100.0, 110.0, 90.0], [1.5, 2.0, 1.8], "holds only when read as 'very big values"),
        ([3.0, 4.0, 5.0], [50.0, 60.0, 40.0], "does not hold"),
        ([5.0, 200.0, 90.0], [50.0, 60.0, 40.0], "inconclusive"),
    ],
)
def test_original_explode_rule_on_the_other_layers_flips(peak, swing, expected):
    extremes = pd.DataFrame({"seed": [0, 1, 2], "high": [0.2, 0.25, 0.3]})
    rows = claims.original_explode_rows(extremes, _peaks(peak, swing), big=1.0, small=1e-5,
                                        factor=10, peak=30, swing=10, setting="t")  # fmt: skip
    assert rows["verdict"][1].startswith(expected)
    assert rows["setting"][1].startswith("dense2 at sd 1")


def _gains(small, base, bad=None):
    rows = [{"sd": 1e-5, "seed": s, "gain": g, "loss_end": 1.0} for s, g in enumerate(small)]
    rows += [{"sd": 0.01, "seed": s, "gain": g, "loss_end": 0.5} for s, g in enumerate(base)]
    if bad is not None:  # a large gain from a bad start, with a worse final loss
        rows += [{"sd": 1.0, "seed": s, "gain": g, "loss_end": 0.9} for s, g in enumerate(bad)]
    return pd.DataFrame(rows)


def test_original_slow_rule_flips_and_uses_the_best_final_loss_as_baseline():
    kw = dict(small=1e-5, fraction=0.5, min_gain=0.1, setting="t")
    holds = claims.original_slow_rows(_gains([0.1, 0.12, 0.08], [1.0, 1.1, 0.9]), **kw).iloc[0]
    assert holds["verdict"] == "holds"
    assert holds["value"] == pytest.approx(0.3 / 3.0)  # ratio of the mean gains
    fails = claims.original_slow_rows(_gains([1.8, 1.9, 1.85], [1.9, 1.95, 1.9], [9, 10, 9]),
                                      **kw).iloc[0]  # fmt: skip
    assert fails["verdict"] == "does not hold" and "(0.01)" in fails["setting"]
    assert fails["value"] == pytest.approx(5.55 / 5.75)
    unsure = claims.original_slow_rows(_gains([0.1, 1.5, 0.2], [1.0, 1.1, 0.9]), **kw).iloc[0]
    assert unsure["verdict"] == "inconclusive"
    untested = claims.original_slow_rows(_gains([0.01] * 3, [0.02] * 3), **kw).iloc[0]
    assert untested["verdict"].startswith("not tested") and math.isnan(untested["low"])


def test_training_curves_share_both_axes_and_draw_bands():
    import matplotlib.pyplot as plt

    from hessinit.study import figures

    frame = _runs([0.5, 1.0, 0.8], [4.0, 4.0, 4.0]).assign(loss=2.0)
    fig = figures.training_curves(frame, "H", title="t")
    left = [ax for ax in fig.axes if ax.get_xlabel() == "SGD step"]
    rights = [ax for ax in fig.axes if ax not in left]
    assert len(fig.axes) == 4 and len(rights) == 2
    assert rights[0].get_shared_y_axes().joined(rights[0], rights[1])
    assert left[0].get_shared_y_axes().joined(left[0], left[1])
    assert rights[0].collections  # the min-max band over seeds
    assert "3 seeds" in fig._suptitle.get_text()
    plt.close(fig)
