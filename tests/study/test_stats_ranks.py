"""The rank and grid helpers of hessinit.study.analysis built on hessinit.study.stats: rank_gap,
rank_correlations and tuned_lr_interior, against direct computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from hessinit.study import analysis, claims


def _table(seed=0, seeds=4, inits=6):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(seeds):
        shift = rng.normal(0, 5)
        for i in range(inits):
            y = i + shift + rng.normal(0, 1.5)
            rows.append({"seed": s, "init": i, "a": i + rng.normal(0, 0.5),
                         "b": rng.normal(), "y": y})  # fmt: skip
    return pd.DataFrame(rows)


def test_rank_gap_is_the_paired_t_interval_of_per_seed_gaps():
    table = _table(seeds=8)
    gap, low, high = analysis.rank_gap(table, "a", "b", "y")
    ra = table.groupby("seed").apply(lambda g: st.spearmanr(g["a"], g["y"]).statistic)
    rb = table.groupby("seed").apply(lambda g: st.spearmanr(g["b"], g["y"]).statistic)
    d = np.sign(ra.mean()) * ra - np.sign(rb.mean()) * rb
    ref = st.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=st.sem(d))
    assert gap == pytest.approx(abs(ra.mean()) - abs(rb.mean()))
    assert -2 < ref[0] and ref[1] < 2  # not clipped: the t interval itself
    assert (low, high) == pytest.approx(ref)


def test_rank_gap_drops_diverged_rows():
    table = _table(seeds=3)
    table.loc[2, "y"] = np.nan
    kept = table.dropna()
    assert analysis.rank_gap(table, "a", "b", "y") == analysis.rank_gap(kept, "a", "b", "y")


def test_rank_correlations_rows_are_the_per_seed_intervals():
    table = _table()
    corr = analysis.rank_correlations(table, ["a", "b"], ["y"])
    per_seed = table.groupby("seed").apply(lambda g: st.spearmanr(g["a"], g["y"]).statistic)
    row = corr[corr["predictor"] == "a"].iloc[0]
    assert row["rho"] == pytest.approx(per_seed.mean()) and row["n"] == 4 and row["rows"] == 24


def test_tuned_lr_interior_per_setting():
    table = pd.DataFrame({
        "init": ["he"] * 6 + ["lecun"] * 6 + ["glorot"] * 6,
        "lr": [0.01, 0.03, 0.1] * 6,
        "seed": ([0] * 3 + [1] * 3) * 3,
        # he: best at 0.03 (interior); lecun: best at 0.1 (top); glorot: 0.1 diverges on one
        # seed (counts as the worst), so 0.01 wins (bottom)
        "loss": [0.6, 0.3, 0.5, 0.6, 0.4, 0.45, 0.9, 0.5, 0.3, 0.8, 0.5, 0.4,
                 0.4, 0.5, 0.1, 0.5, 0.6, np.nan],
    })  # fmt: skip
    out = analysis.tuned_lr_interior(table, setting="init", score="loss")
    assert out["init"].tolist() == ["he", "lecun", "glorot"]
    assert out["tuned_lr"].tolist() == [0.03, 0.1, 0.01]
    assert out["interior"].tolist() == [True, False, False]
    assert out["edge"].tolist() == ["", "largest", "smallest"]
    assert out["reached"][0] == ""
    assert out["reached"][2] == "lr grid edge: the tuned lr 0.01 is the smallest of 0.01, 0.03, 0.1"
    # the reached text reads inside a verdict
    flags = [
        True if ok else claims.NotReached(t)
        for ok, t in zip(out["interior"], out["reached"], strict=True)
    ]
    text = claims.verdict(flags, where=out["init"].tolist())
    assert text.startswith("holds only when he; not tested for lecun (lr grid edge: the tuned")


def test_tuned_lr_interior_accuracy_two_keys_and_short_grids():
    table = pd.DataFrame({"net": ["cnn"] * 4, "init": ["he", "he", "x", "x"],
                          "lr": [0.1, 0.3, 0.1, 0.3], "acc": [0.9, 0.8, 0.7, 0.95]})  # fmt: skip
    out = analysis.tuned_lr_interior(table, setting=["net", "init"], score="acc",
                                     lower_is_better=False)  # fmt: skip
    assert out[["net", "init", "tuned_lr"]].values.tolist() == [["cnn", "he", 0.1],
                                                                 ["cnn", "x", 0.3]]  # fmt: skip
    assert not out["interior"].any()  # two lrs: never interior
    assert out["n_lrs"].tolist() == [2, 2]
