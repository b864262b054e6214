"""The diagnostic chapter's rules (claims 4.1, 4.2) on synthetic frames, and its statistics."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hessinit.chapters import diagnostic
from hessinit.study import analysis, claims


def _corr(h_low, h_high, h_rho, b_rho=0.2):
    return pd.DataFrame({"predictor": ["H_sum", "loss0"], "outcome": "y",
                         "kind": ["hessian", "baseline"], "rho": [h_rho, b_rho],
                         "low": [h_low, b_rho - 0.1], "high": [h_high, b_rho + 0.1],
                         "n": 5})  # fmt: skip


def _gaps(low, high):
    return pd.DataFrame({"outcome": ["y"], "hessian": "H_sum", "baseline": "loss0",
                         "gap": [(low + high) / 2], "low": [low], "high": [high]})  # fmt: skip


@pytest.mark.parametrize(
    ("interval", "rho", "expected"),
    [
        ((-0.95, -0.7), -0.8, "holds"),  # a negative ranking counts: |rho| in [0.7, 0.95]
        ((0.6, 0.9), 0.8, "holds"),
        ((-0.2, 0.3), 0.05, "does not hold"),  # narrow around 0: |rho| <= 0.3 < 0.5
        ((-0.3, 0.8), 0.4, "inconclusive"),
    ],
)
def test_diagnostic_rows_41_flip(interval, rho, expected):
    rows = diagnostic.diagnostic_rows(_corr(*interval, rho), _gaps(0.1, 0.3), threshold=0.5,
                                  setting="s")  # fmt: skip
    assert rows["claim"].tolist() == ["4.1", "4.2"]
    assert rows["verdict"][0] == expected
    assert rows["value"][0] == pytest.approx(abs(rho))
    assert (rows["seeds"] == 5).all()


@pytest.mark.parametrize(
    ("gap", "expected"),
    [((0.1, 0.3), "holds"), ((-0.4, -0.1), "does not hold"), ((-0.2, 0.3), "inconclusive")],
)
def test_diagnostic_rows_42_flip(gap, expected):
    rows = diagnostic.diagnostic_rows(_corr(0.6, 0.9, 0.8), _gaps(*gap), threshold=0.5, setting="s")
    assert rows["verdict"][1] == expected


def test_abs_interval():
    assert claims.abs_interval(-0.9, -0.6) == (0.6, 0.9)
    assert claims.abs_interval(-0.7, 0.2) == (0.0, 0.7)


def test_rank_correlations_and_gap_against_scipy():
    rng = np.random.default_rng(0)
    n = 30
    table = pd.DataFrame({"seed": np.repeat(np.arange(5), 6), "a": rng.normal(size=n)})
    table["y"] = table["a"] + 0.3 * rng.normal(size=n)
    table["b"] = rng.normal(size=n)
    corr = analysis.rank_correlations(table, ["a", "b"], ["y"], n_boot=200)

    def per_seed(x):  # rho within each seed, averaged over seeds (the estimand)
        return table.groupby("seed").apply(lambda g: stats.spearmanr(g[x], g["y"])[0]).mean()

    ref_a, ref_b = per_seed("a"), per_seed("b")
    assert corr["rho"].tolist() == pytest.approx([ref_a, ref_b])
    assert (corr["low"] <= corr["rho"]).all() and (corr["rho"] <= corr["high"]).all()
    gap, low, high = analysis.rank_gap(table, "a", "b", "y", n_boot=200)
    assert gap == pytest.approx(abs(ref_a) - abs(ref_b))
    assert low <= gap <= high and low > 0  # a predicts y, b does not


def test_deviation_and_outcomes():
    diag = pd.DataFrame({"H_dense1": [100.0], "H_dense2": [0.01]})
    # |log10(100 / 10 / 1)| + |log10(0.01 / 1 / 1)| = 1 + 2
    assert diagnostic.deviation(diag, {"dense1": 10, "dense2": 1}, 1.0).tolist() == [3.0]
    final = pd.DataFrame({"init": ["a"] * 4 + ["b"] * 4, "seed": [0, 0, 1, 1] * 2,
                          "schedule": ["x", "y"] * 4, "lr": [0.01, 0.1] * 4,
                          "final_loss": [1.0, 0.5, 1.2, 0.4, 0.3, np.nan, 0.2, 0.1]})  # fmt: skip
    out = analysis.outcomes(final, "x", ["x", "y"]).set_index(["init", "seed"])
    assert out.loc[("a", 1), "loss_tuned"] == 0.4  # y is a's tuned step
    assert out.loc[("b", 0), "loss_tuned"] == 0.3  # y diverged once for b: x is tuned


def test_train_grid_equals_sgd_grid_run_by_run():
    """The stacked grid, scored held out, against each run trained alone (the loop sgd_grid ran
    before: its own Keras model, stepsize.sgd_steps, mean_loss on the held-out set)."""
    from sgd_reference import sgd_grid_alone as sgd_grid

    from hessinit.data import load, split

    train, test = split(load("mnist-5k", n=80), 20)
    inits = {"dense1 sd=0.1": 0.1, "he": [0.05, 0.3, 0.3]}
    lrs = [0.01, 0.3, 1e30]  # lr 1e30 overflows: recorded for those runs only
    mine = diagnostic.train_grid(train, test, inits, lrs, [0, 1], steps=7, batch_size=8,
                                 widths=(5, 4))  # fmt: skip
    ref = sgd_grid(train, {f"lr={v:g}": v for v in lrs}, inits, [0, 1], steps=7, batch_size=8,
                   eval_every=7, held_out=test, widths=(5, 4))  # fmt: skip
    keys = ["init", "seed", "schedule", "step"]
    both = ref.merge(mine, on=keys, suffixes=("_ref", ""), validate="one_to_one")
    assert len(both) == len(ref) == len(mine)
    a, b = both["eval_loss"].to_numpy(), both["eval_loss_ref"].to_numpy()
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.isnan(b).any() and not np.isnan(b[both["lr"] < 1]).any()
    np.testing.assert_allclose(a[~np.isnan(b)], b[~np.isnan(b)], rtol=1e-4)


def test_tuned_rows_flip_to_not_tested_at_a_grid_edge():
    corr = pd.concat([_corr(0.6, 0.9, 0.8), _corr(-0.2, 0.3, 0.05).assign(outcome="z")])
    gaps = pd.concat([_gaps(0.1, 0.3), _gaps(-0.4, -0.1).assign(outcome="z")], ignore_index=True)
    rows = diagnostic.diagnostic_rows(corr, gaps, threshold=0.5, setting="s", outcome="y")
    assert rows["verdict"].tolist() == ["holds", "holds"]  # outcome z is not judged here
    rows = diagnostic.diagnostic_rows(corr, gaps, threshold=0.5, setting="s", outcome="z")
    assert rows["verdict"].tolist() == ["does not hold", "does not hold"]
    edge = "lr grid edge (0.1 to 1) for he (1, the largest)"
    rows = diagnostic.diagnostic_rows(corr, gaps, threshold=0.5, setting="s", outcome="y",
                                      edge=edge)  # fmt: skip
    assert set(rows["verdict"]) == {f"not tested: {edge}"}


def test_selected_outcomes_tune_on_the_selection_seeds_only():
    # selection says lr 0.1 for "a" (interior of 0.01, 0.1, 1); the evaluation runs would pick 1
    sel = pd.DataFrame({"init": "a", "seed": [7] * 3 + [8] * 3, "lr": [0.01, 0.1, 1.0] * 2,
                        "final_loss": [0.9, 0.2, 0.5, 0.8, 0.3, np.nan]})  # fmt: skip
    fin = pd.DataFrame({"init": "a", "seed": [0] * 3 + [1] * 3, "lr": [0.01, 0.1, 1.0] * 2,
                        "final_loss": [1.0, 0.4, 0.1, 1.1, 0.5, 0.2]})  # fmt: skip
    out, tuned = diagnostic.selected_outcomes(sel, fin, 0.01)
    assert out["tuned_lr"].tolist() == [0.1, 0.1] and out["loss_tuned"].tolist() == [0.4, 0.5]
    assert out["loss_fixed"].tolist() == [1.0, 1.1] and bool(tuned["interior"][0])
    assert diagnostic.edge_words(tuned) == ""
    # the selection's best at the top of the grid: an edge, named
    out, tuned = diagnostic.selected_outcomes(sel.assign(final_loss=[0.9, 0.5, 0.2] * 2), fin, 0.01)
    assert diagnostic.edge_words(tuned) == "lr grid edge (0.01 to 1) for a (1, the largest)"
    with pytest.raises(ValueError, match="also evaluation seeds"):
        diagnostic.selected_outcomes(sel.assign(seed=0), fin, 0.01)
