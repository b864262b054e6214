"""The dominance chapter's rules (claims 1.1-1.5) on synthetic frames where each verdict flips, and
its intervals against independent references.

And the chapter's experiments (:mod:`hessinit.chapters.dominance`,
:mod:`hessinit.chapters.dominance_network`) against full matrices.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import equal_to_run, random_images
from scipy import stats as st

from hessinit import train
from hessinit.chapters import dominance, dominance_network
from hessinit.curvature import full_gauss_newton, full_hessian, ratio_estimate
from hessinit.nn import mlp
from hessinit.study import claims
from hessinit.study import stats as study_stats

NAN = float("nan")


def _relu_check(values):
    return pd.DataFrame({"activation": "relu", "seed": list(range(len(values))),
                         "layer": "dense1", "R_over_H": values})  # fmt: skip


def test_relu_rule_holds_at_round_off_and_fails_above():
    relu_rows = dominance_network.dominance_relu_rows
    row = relu_rows(_relu_check([1e-16, 2e-15]), threshold=1e-10, setting="s")
    assert row["verdict"][0] == claims.HOLDS
    assert row["value"][0] == 2e-15 and row["seeds"][0] == 2
    assert math.isnan(row["low"][0]) and math.isnan(row["high"][0])  # exact: no interval
    assert row["source"][0] in claims.SOURCES and "first term dominates" in row["wording"][0]
    bad = relu_rows(_relu_check([1e-3, 0.2]), threshold=1e-10, setting="s")
    assert bad["verdict"][0] == claims.FAILS
    # the tanh control is not part of the ReLU claim
    mixed = pd.concat([_relu_check([1e-16]), _relu_check([0.4]).assign(activation="tanh")])
    assert relu_rows(mixed, threshold=1e-10, setting="")["verdict"][0] == "holds"


def _summary(r, low, high, seeds, init="lecun", sd=NAN):
    return {"activation": "tanh", "init": init, "scaling": "all", "sd": sd, "R_over_H": r,
            "low": low, "high": high, "G_over_H": 1.0, "G_low": 0.9, "G_high": 1.1,
            "seeds": seeds, "saturated": 5 - seeds}  # fmt: skip


@pytest.mark.parametrize(
    ("interval", "expected"),
    [((0.05, 0.02, 0.08), "holds"), ((0.5, 0.4, 0.6), "does not hold"),
     ((0.1, 0.02, 0.3), "inconclusive")],
)  # fmt: skip
def test_init_rule_flips_with_the_interval(interval, expected):
    frame = pd.DataFrame([_summary(*interval, 5), _summary(*interval, 5, init="sd", sd=0.1)])
    rows = dominance.dominance_init_rows(frame, threshold=0.1, setting="s")
    assert rows["claim"].tolist() == ["1.2", "1.3"]
    assert rows["verdict"].tolist() == [expected, expected]
    assert rows["low"][0] == interval[1] and rows["high"][0] == interval[2]
    assert rows["seeds"].tolist() == [5, 5]
    assert "G/H there 1" in rows["measure"][0]


def test_init_rule_does_not_judge_saturated_settings_and_says_so():
    frame = pd.DataFrame([_summary(0.05, 0.02, 0.08, 5),
                          _summary(0.05, 0.02, 0.08, 5, init="sd", sd=0.01),
                          _summary(NAN, NAN, NAN, 0, init="sd", sd=10.0)])  # fmt: skip
    rows = dominance.dominance_init_rows(frame, threshold=0.1, setting="s")
    assert rows["verdict"][1] == "holds"  # judged on the unsaturated setting only
    assert "not judged: tanh all sd=10" in rows["setting"][1]
    only_saturated = pd.DataFrame([_summary(NAN, NAN, NAN, 0, init="sd", sd=10.0),
                                   _summary(0.05, 0.02, 0.08, 5)])  # fmt: skip
    rows = dominance.dominance_init_rows(only_saturated, threshold=0.1, setting="s")
    assert rows["verdict"][1].startswith(claims.NOT_TESTED)


def test_init_intervals_are_student_t_over_the_worst_layer_per_seed():
    rng = np.random.default_rng(0)
    rows = []
    worst = []
    for seed in range(5):
        r = rng.uniform(0, 1, 3)
        worst.append(r.max())
        for k, v in enumerate(r):
            rows.append({"activation": "tanh", "init": "lecun", "scaling": "all", "sd": NAN,
                         "seed": seed, "layer": f"d{k}", "lambda_norm": 0.3, "R_over_H": v,
                         "G_over_H": 1 - v})  # fmt: skip
    # a saturated setting: every seed's softmax is one-hot
    for seed in range(5):
        rows.append({"activation": "tanh", "init": "sd", "scaling": "all", "sd": 10.0,
                     "seed": seed, "layer": "d0", "lambda_norm": 0.0, "R_over_H": NAN,
                     "G_over_H": NAN})  # fmt: skip
    out = dominance.init_intervals(pd.DataFrame(rows))
    mean, sem = np.mean(worst), np.std(worst, ddof=1) / np.sqrt(5)
    half = st.t.ppf(0.975, 4) * sem
    assert out["R_over_H"][0] == pytest.approx(mean)
    assert (out["low"][0], out["high"][0]) == pytest.approx((mean - half, mean + half))
    assert out["G_over_H"][0] == pytest.approx(1 - mean)  # G/H of the same (worst) layer
    assert out["seeds"].tolist() == [5, 0] and out["saturated"].tolist() == [0, 5]
    assert math.isnan(out["R_over_H"][1])


def _end(losses, ratios, activation="tanh"):
    return pd.DataFrame({"activation": activation, "seed": range(len(losses)), "loss": losses,
                         "R_over_H": ratios, "G_over_H": 1.0,
                         "reached": [loss <= 0.1 for loss in losses]})  # fmt: skip


@pytest.mark.parametrize(
    ("ratios", "expected"),
    [([0.01, 0.02, 0.03], "holds"), ([0.4, 0.5, 0.6], "does not hold"),
     ([0.01, 0.2, 0.4], "inconclusive")],
)  # fmt: skip
def test_training_rule_flips_with_the_interval(ratios, expected):
    iv = dominance.training_intervals(_end([0.05, 0.06, 0.07], ratios))
    row = dominance.dominance_training_rows(iv, op="<", threshold=0.1, target=0.1, setting="s")
    assert row["verdict"][0] == expected
    assert row["seeds"][0] == 3 and row["low"][0] <= row["value"][0] <= row["high"][0]


def test_training_rule_is_not_tested_when_the_target_loss_is_not_reached():
    iv = dominance.training_intervals(_end([0.3, 0.25, 0.05], [0.01, 0.01, 0.01]))
    assert iv.loc["tanh", "seeds"] == 1  # one seed cannot bound a mean
    row = dominance.dominance_training_rows(iv, op="<", threshold=0.1, target=0.1, setting="s")
    assert row["verdict"][0] == (
        "not tested: the lowest Hessian-batch loss reached was 0.05 nats (target <= 0.1)"
    )
    # another activation that reached it is judged; the one that did not is named
    both = dominance.training_intervals(
        pd.concat(
            [
                _end([0.3, 0.25, 0.2], [0.01] * 3),
                _end([0.05, 0.06, 0.07], [0.01, 0.02, 0.03], "softplus"),
            ]
        )  # fmt: skip
    )
    row = dominance.dominance_training_rows(both, op="<", threshold=0.1, target=0.1, setting="s")
    # tanh missed the target: not tested (its lowest loss named), not counted as a failure
    assert row["verdict"][0] == (
        "holds only when softplus; not tested for tanh (lowest loss 0.2 nats)"
    )
    assert "target not reached by 2 seeds: tanh (lowest loss 0.2)" in row["setting"][0]
    # a judged failure beside a missed target: the failure is named, the miss is not one
    failing = dominance.training_intervals(
        pd.concat([_end([0.3, 0.25, 0.2], [0.01] * 3), _end([0.05] * 3, [0.4, 0.5, 0.6], "gelu")])
    )
    row = dominance.dominance_training_rows(failing, op="<", threshold=0.1, target=0.1, setting="s")
    assert row["verdict"][0] == "does not hold for gelu; not tested for tanh (lowest loss 0.2 nats)"


def test_training_end_takes_the_last_checkpoint_and_the_worst_layer():
    frame = pd.DataFrame({"activation": "tanh", "seed": 0, "step": [0, 0, 5, 5, 9, 9],
                          "layer": ["d1", "d2"] * 3, "H": [1.0] * 4 + [NAN, NAN],
                          "hessian_loss": [2.3, 2.3, 0.05, 0.05, NAN, NAN],
                          "R_over_H": [0.4, 0.6, 0.1, 0.2, NAN, NAN],
                          "G_over_H": [1.0, 0.9, 1.0, 0.95, NAN, NAN]})  # fmt: skip
    end = dominance.training_end(frame, 0.1)
    assert end[["step", "layer", "R_over_H", "G_over_H", "start", "reached"]].values.tolist() == [
        [5, "d2", 0.2, 0.95, 0.6, True]
    ]


def _ratios(rows):
    return pd.DataFrame([{"activation": a, "sd": s, "R_over_H": r, "low": lo, "high": hi,
                          "G_over_H": 1.0, "G_low": 0.9, "G_high": 1.1, "probes": 20}
                         for a, s, r, lo, hi in rows])  # fmt: skip


def test_whole_rule_flips():
    holds = _ratios([("relu", 0.01, 0.05, 0.03, 0.07), ("tanh", 0.01, 0.02, 0.01, 0.03)])
    fails = _ratios([("relu", 0.01, 0.9, 0.8, 1.0), ("tanh", 0.01, 0.5, 0.4, 0.6)])
    mixed = _ratios([("relu", 0.01, 0.9, 0.8, 1.0), ("tanh", 1.0, 0.05, 0.04, 0.06)])
    unsure = _ratios([("relu", 0.01, 0.1, 0.05, 0.2)])
    rule = dominance_network.dominance_whole_rows
    verdicts = [rule(r, threshold=0.1, setting="s")["verdict"][0]
                for r in (holds, fails, mixed, unsure)]  # fmt: skip
    assert verdicts == ["holds", "does not hold", "holds only when tanh sd=1", "inconclusive"]
    row = dominance_network.dominance_whole_rows(fails, threshold=0.1, setting="s")
    assert (row["value"][0], row["low"][0], row["high"][0], row["seeds"][0]) == (0.9, 0.8, 1.0, 1)


def test_ratio_estimate_is_the_square_root_of_the_paired_delta_method():
    """The core's ratio interval equals study.stats.ratio_of_means on the squared norms."""
    rng = np.random.default_rng(3)
    h = rng.gamma(2.0, 1.0, 12)
    r = 0.3 * h + rng.normal(0, 0.05, 12)
    core = ratio_estimate(r, h, offset_num=0.5, offset_den=2.0)
    ref = study_stats.ratio_of_means(r, h, offset_u=0.5, offset_v=2.0)
    assert core.value == pytest.approx(math.sqrt(ref.value))
    assert core.low == pytest.approx(math.sqrt(max(ref.low, 0)))
    assert core.high == pytest.approx(math.sqrt(ref.high))
    assert core.probes == 12


def test_dominance_figures_draw():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    check = pd.concat(
        [_relu_check([0.0, 1e-16]), _relu_check([0.4, 0.3]).assign(activation="tanh")]
    )
    fig = dominance_network.plot_relu_exactness(check, threshold=1e-10)
    assert len(fig.axes[0].collections) == 2  # one scatter per activation
    summary = pd.DataFrame([_summary(0.05, 0.02, 0.08, 5),
                            _summary(NAN, NAN, NAN, 0, init="sd", sd=10.0)])  # fmt: skip
    fig = dominance.plot_init_intervals(summary, threshold=0.1)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["lecun", "all 10"]
    frame = pd.DataFrame({"activation": "tanh", "seed": [0] * 4 + [1] * 4,
                          "step": [0, 0, 5, 5] * 2, "layer": ["d1", "d2"] * 4, "H": 1.0,
                          "hessian_loss": [2.3, 2.3, 0.05, 0.05] * 2,
                          "R_over_H": [0.4, 0.6, 0.1, 0.2] * 2})  # fmt: skip
    fig = dominance.plot_ratio_against_loss(frame, threshold=0.1, target=0.1)
    seeds = [line for line in fig.axes[0].get_lines() if line.get_label().startswith("seed")]
    assert [list(line.get_ydata()) for line in seeds] == [[0.6, 0.2], [0.6, 0.2]]
    plt.close("all")


@pytest.fixture(scope="module")
def tiny():
    return random_images(24, (3, 3), 3, seed=7)


def test_scaled_sds():
    assert dominance.scaled_sds(0.1, "dense1", 3) == 0.1
    assert dominance.scaled_sds(0.1, "all", 3) == [0.1, 0.1, 0.1]
    with pytest.raises(ValueError, match="dense1"):
        dominance.scaled_sds(0.1, "some", 3)


def test_along_training_adds_activation_and_ratios(tiny):
    frame = dominance.along_training(
        tiny, ("tanh", "softplus"), 0.5, scaling="all", widths=(5, 4), steps=4,
        hessian_every=2, batch_size=8, progress=False,
    )  # fmt: skip
    assert list(frame.columns[-5:]) == ["activation", "scaling", "G_over_H", "R_over_H",
                                        "R_over_G"]  # fmt: skip
    checked = frame.dropna(subset=["H"])
    np.testing.assert_allclose(checked["R_over_G"], checked["R"] / checked["G"])
    assert set(frame["activation"]) == {"tanh", "softplus"}
    checkpoints = frame.dropna(subset=["H"])
    hidden = checkpoints["layer"] != "dense3"
    assert (checkpoints.loc[hidden, "R_over_H"] > 0).all()
    assert (checkpoints.loc[~hidden, "R_over_H"] == 0).all()  # the logits layer is linear
    for activation in ("tanh",):  # each run is train.run's, trained alone (softplus alike)
        ref = train.run(tiny, [0.5] * 3, activation=activation, widths=(5, 4),
                        steps=4, hessian_every=2, batch_size=8, progress=False)  # fmt: skip
        mine = frame[frame["activation"] == activation].reset_index(drop=True)
        equal_to_run(mine, ref)


def test_whole_network_intervals_cover_exact_norms(tiny):
    model = mlp((3, 3), 3, widths=(5, 4), activation="tanh", sd=[1.0] * 3, seed=1,
                dtype="float64")  # fmt: skip
    x = tiny.x.astype(np.float64)
    frame = dominance_network.whole_network(model, x, tiny.y, probes=60, deflate=8, seed=3)
    assert list(frame.columns) == ["term", "value", "low", "high", "probes", "deflate"]
    H = full_hessian(model, x, tiny.y)
    G = full_gauss_newton(model, x, tiny.y)
    exact = {"H": np.linalg.norm(H), "G": np.linalg.norm(G), "R": np.linalg.norm(H - G)}
    exact["R_over_H"], exact["G_over_H"] = exact["R"] / exact["H"], exact["G"] / exact["H"]
    exact["R_over_G"] = exact["R"] / exact["G"]
    assert frame["term"].tolist() == list(exact)
    for row in frame.itertuples():
        assert row.low <= exact[row.term] <= row.high, (row, exact[row.term])
        assert row.high - row.low < 0.3 * exact[row.term]


def test_whole_network_ratios_read_the_paired_intervals():
    """The ratio rows of whole_network (paired over probes), not a combination of two intervals."""

    def rows(activation, sd, r, g):
        terms = (("H", (4.0, 3.0, 5.0)), ("G", (3.0, 2.0, 4.0)), ("R", (2.0, 1.0, 3.0)),
                 ("R_over_H", r), ("G_over_H", g))  # fmt: skip
        return [{"activation": activation, "sd": sd, "term": t, "value": v, "low": lo,
                 "high": hi, "probes": 20} for t, (v, lo, hi) in terms]  # fmt: skip

    frame = pd.DataFrame(
        rows("relu", 0.1, (0.5, 0.45, 0.55), (0.8, 0.7, 0.9))
        + rows("tanh", 1.0, (0.2, 0.1, 0.3), (1.1, 1.0, 1.2))
    )
    out = dominance_network.whole_network_ratios(frame)
    assert list(out.columns) == ["activation", "sd", "R_over_H", "low", "high", "G_over_H",
                                 "G_low", "G_high", "probes"]  # fmt: skip
    assert out.values.tolist() == [
        ["relu", 0.1, 0.5, 0.45, 0.55, 0.8, 0.7, 0.9, 20],
        ["tanh", 1.0, 0.2, 0.1, 0.3, 1.1, 1.0, 1.2, 20],
    ]


# --- claims as data: the per-setting frames, the sensitivity lines, the trend of claim 1.4 ---


def _sens_summary(rh, rg, seeds=5, init="lecun", sd=NAN):
    (r, lo, hi), (q, qlo, qhi) = rh, rg
    return {"activation": "tanh", "init": init, "scaling": "all", "sd": sd, "R_over_H": r,
            "low": lo, "high": hi, "G_over_H": 1.0, "R_over_G": q, "RG_low": qlo,
            "RG_high": qhi, "seeds": seeds}  # fmt: skip


def test_init_rows_from_the_frame_match_the_interval_rule():
    """frame_rows gives the verdict and the worst value that the interval rule gives by hand."""
    summary = pd.DataFrame([
        _sens_summary((0.05, 0.03, 0.07), (0.05, 0.03, 0.07)),
        _sens_summary((0.3, 0.2, 0.4), (0.4, 0.3, 0.5), init="he"),
        _sens_summary((0.5, 0.05, 0.9), (0.9, 0.5, 1.3), init="sd", sd=1.0),
        _sens_summary((NAN, NAN, NAN), (NAN, NAN, NAN), seeds=0, init="sd", sd=10.0),
    ])  # fmt: skip
    rows = dominance.dominance_init_rows(summary, threshold=0.1, setting="s")
    by_hand = [claims.verdict([True, False], ["tanh lecun", "tanh he"]),
               claims.verdict([None], ["tanh all sd=1"])]  # fmt: skip
    assert rows["verdict"].tolist() == by_hand == ["holds only when tanh lecun", "inconclusive"]
    assert rows["value"].tolist() == [0.3, 0.5] and rows["seeds"].tolist() == [5, 5]
    assert rows["kind"].tolist() == ["empirical", "empirical"]
    frame = dominance.init_frame(summary, "1.3")
    assert frame["judged"].tolist() == [True, False]


def test_init_sensitivity_flips_with_the_rule():
    # R/H in [0.15, 0.25]: fails at 0.1, holds at 0.3; R/G in [0.2, 0.4]: G > R holds
    holds_loose = pd.DataFrame([_sens_summary((0.2, 0.15, 0.25), (0.3, 0.2, 0.4))])
    out = dominance.init_sensitivity(holds_loose)
    assert out.columns.tolist() == ["claim", "setting", "R/H < 0.1", "R/H < 0.3", "||G|| > ||R||"]
    assert out.iloc[0, 2:].tolist() == ["does not hold", "holds", "holds"]
    assert out.iloc[1, 2].startswith("not tested")  # no sd grid: 1.3 not tested
    # R/G in [1.1, 1.4]: R is larger than G in the worst layer
    r_larger = pd.DataFrame([_sens_summary((0.6, 0.5, 0.7), (1.2, 1.1, 1.4))])
    assert dominance.init_sensitivity(r_larger).iloc[0, 2:].tolist() == ["does not hold"] * 3


def test_init_intervals_take_the_worst_layer_by_r_over_g_per_seed():
    frame = pd.DataFrame({"activation": "tanh", "init": "lecun", "scaling": "all", "sd": NAN,
                          "seed": [0, 0, 1, 1, 2, 2], "layer": ["d1", "d2"] * 3,
                          "lambda_norm": 0.3, "R_over_H": [0.1, 0.3, 0.2, 0.1, 0.4, 0.0],
                          "G_over_H": 1.0, "R_over_G": [0.5, 0.2, 0.1, 0.9, 0.3, 0.6]})  # fmt: skip
    row = dominance.init_intervals(frame).iloc[0]
    ref = study_stats.mean_interval([0.5, 0.9, 0.6])
    assert math.isclose(row["R_over_G"], 2.0 / 3.0)
    assert (row["RG_low"], row["RG_high"]) == (ref.low, ref.high)
    t = st.t.interval(0.95, 2, loc=np.mean([0.5, 0.9, 0.6]), scale=st.sem([0.5, 0.9, 0.6]))
    np.testing.assert_allclose([row["RG_low"], row["RG_high"]], t)


def test_training_trend_is_a_t_interval_of_the_change_per_seed():
    end = pd.DataFrame({"activation": ["tanh"] * 3 + ["softplus"] * 3 + ["gelu"] * 3,
                        "start": [0.2, 0.25, 0.3, 0.5, 0.45, 0.55, 0.3, 0.3, 0.3],
                        "peak": [0.6, 0.7, 0.8, 0.2, 0.2, 0.2, 0.4, 0.4, 0.4],
                        "R_over_H": [0.5, 0.6, 0.55, 0.1, 0.05, 0.12, 0.2, 0.4, 0.33]})  # fmt: skip
    trend = dominance.training_trend(end)
    assert trend["direction"].tolist() == ["rises", "falls", "no detectable change"]
    d = np.array([0.3, 0.35, 0.25])
    t = st.t.interval(0.95, 2, loc=d.mean(), scale=st.sem(d))
    np.testing.assert_allclose(trend.loc["tanh", ["low", "high"]].astype(float), t)
    words = dominance.trend_words(trend)
    assert words.startswith("tanh's rises from 0.25 to 0.55 (change 0.3, 95% interval")
    assert "peak 0.7 on the way)" in words
    assert "softplus's falls" in words
    assert "gelu's goes from 0.3 to 0.31, no detectable change" in words


def test_training_sensitivity_keeps_a_missed_target_not_tested():
    iv = pd.DataFrame({"R_over_H": [0.2, NAN], "low": [0.15, NAN], "high": [0.25, NAN],
                       "G_over_H": [1.0, NAN], "R_over_G": [0.5, NAN], "RG_low": [0.4, NAN],
                       "RG_high": [0.6, NAN], "seeds": [3, 0], "runs": [3, 3],
                       "loss_min": [0.01, 0.2]},
                      index=pd.Index(["tanh", "softplus"], name="activation"))  # fmt: skip
    out = dominance.training_sensitivity(iv, 0.1).iloc[0, 2:].tolist()
    missed = "not tested for softplus (lowest loss 0.2 nats)"
    assert out == [f"does not hold for tanh; {missed}", f"holds only when tanh; {missed}",
                   f"holds only when tanh; {missed}"]  # fmt: skip


def test_whole_frame_counts_one_seed_per_network_and_sensitivity_flips():
    ratios = _ratios([("tanh", 1.0, 0.2, 0.15, 0.25)]).assign(R_over_G=0.9, RG_low=0.8,
                                                                RG_high=1.05)  # fmt: skip
    frame = dominance_network.whole_frame(ratios)
    assert frame["seeds"].tolist() == [1]  # probes are not seeds
    out = dominance_network.whole_sensitivity(ratios).iloc[0, 2:].tolist()
    assert out == ["does not hold", "holds", "inconclusive"]
