"""The step-size chapter's rules (claims 3.1-3.4) on synthetic frames, and its measurements.

And the chapter's figures on small synthetic frames.
"""

import matplotlib

matplotlib.use("Agg")

import math  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from hessinit.chapters import step_size, step_stability  # noqa: E402
from hessinit.curvature import full_hessian  # noqa: E402
from hessinit.nn import mean_loss, mlp  # noqa: E402
from hessinit.stepsize import sgd_steps  # noqa: E402
from hessinit.study import analysis, claimdata, experiments  # noqa: E402


def _gains(by_sd):
    rows = []
    for sd, values in by_sd.items():
        for seed, v in enumerate(values):
            rows.append({"sd": sd, "seed": seed, "gain": v, "gain_star": v})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("by_sd", "expected"),
    [
        ({0.01: [0.1, 0.11, 0.12], 1.0: [0.2, 0.21, 0.22]}, "holds"),
        ({0.01: [-0.1, -0.11, -0.12], 1.0: [-0.2, -0.21, -0.22]}, "does not hold"),
        ({0.01: [-1.0, 0.0, 1.2], 1.0: [-2.0, 0.5, 1.0]}, "inconclusive"),
        ({0.01: [0.1, 0.11, 0.12], 1.0: [-0.2, -0.21, -0.22]}, "holds only when sd = 0.01"),
    ],
)
def test_step_model_rows_flip(by_sd, expected):
    rows = step_size.step_model_rows(_gains(by_sd), setting="s")
    assert rows["verdict"].tolist() == [expected]
    assert rows["claim"].tolist() == ["3.1"]
    assert (rows["source"] == "this book's formalization").all()
    assert (rows["seeds"] == 3).all()
    assert set(rows["wording"]) == {claimdata.claims_yml()["3.1"]["wording"]}
    assert rows["kind"].tolist() == ["sanity"]


def _star(by_sd):
    return pd.DataFrame([{"sd": sd, "seed": seed, "err_quad_star": v}
                         for sd, values in by_sd.items()
                         for seed, v in enumerate(values)])  # fmt: skip


@pytest.mark.parametrize(
    ("by_sd", "expected"),
    [
        # the quadratic model's own error at gamma*: 4.5% and 3% against a tolerance of 0.5
        ({0.01: [0.04, 0.05, 0.045], 1.0: [0.03, 0.035, 0.025]}, "holds"),
        # 431% and 253%: the model misses the decrease at gamma* by a factor of several
        ({1e-5: [4.2, 4.4, 4.3], 0.01: [2.5, 2.6, 2.5]}, "does not hold"),
        ({1e-5: [4.2, 4.4, 4.3], 1.0: [0.04, 0.05, 0.045]}, "holds only when sd = 1"),
        ({0.01: [0.1, 0.9, 0.4], 1.0: [0.04, 0.05, 0.045]},
         "holds only when sd = 1; inconclusive for sd = 0.01"),
    ],
)  # fmt: skip
def test_star_error_rule_flips_on_the_quadratic_models_own_error(by_sd, expected):
    entry = claimdata.claims_yml()["3.2"]
    frame = step_size.star_error_frame(_star(by_sd))
    assert tuple(frame.columns) == claimdata.FRAME_COLUMNS and frame["judged"].all()
    row = claimdata.frame_rows(entry, frame, setting="s", threshold=0.5).iloc[0]
    assert row["verdict"] == expected and row["claim"] == "3.2"
    worst = max(by_sd, key=lambda sd: np.mean(by_sd[sd]))  # the largest mean error
    values = np.array(by_sd[worst])
    half = 4.302652729911275 * values.std(ddof=1) / math.sqrt(3)  # t_{2, 0.975}
    assert row["value"] == pytest.approx(values.mean())
    assert row["low"] == pytest.approx(values.mean() - half)
    assert row["high"] == pytest.approx(values.mean() + half)
    assert row["kind"] == "empirical" and entry["op"] == "<"
    # the tolerance decides: at 5.0 every sd's error passes
    assert claimdata.frame_rows(entry, frame, setting="s", threshold=5.0)["verdict"][0] == "holds"


def test_star_error_frame_leaves_a_one_seed_sd_unjudged():
    frame = step_size.star_error_frame(_star({0.01: [0.1], 1.0: [0.04, 0.05]}))
    assert frame["judged"].tolist() == [False, True]
    assert frame["seeds"].tolist() == [1, 2]


def test_step_model_rows_value_is_the_mean_over_seeds_of_sd_averages():
    gains = _gains({0.01: [0.1, 0.2, 0.3], 1.0: [0.3, 0.4, 0.5]})
    row = step_size.step_model_rows(gains, setting="s").iloc[0]
    per_seed = np.array([0.2, 0.3, 0.4])  # seed k: mean over the two sds
    half = 4.302652729911275 * per_seed.std(ddof=1) / math.sqrt(3)  # t_{2, 0.975}
    assert row["value"] == pytest.approx(0.3)
    assert row["low"] == pytest.approx(0.3 - half) and row["high"] == pytest.approx(0.3 + half)


def _diffs(by_sd, diverged=()):
    rows = []
    for sd, values in by_sd.items():
        for seed, v in enumerate(values):
            rows.append({"init": sd, "challenger": "t", "seed": seed, "diff": v,
                         "challenger_diverged": (sd, seed) in diverged})  # fmt: skip
    return pd.DataFrame(rows)


BEST = pd.DataFrame({"init": [0.01, 1.0], "lr": [0.3, 0.1]})


@pytest.mark.parametrize(
    ("by_sd", "diverged", "expected"),
    [
        ({0.01: [-0.2, -0.21, -0.19], 1.0: [-0.1, -0.12, -0.11]}, (), "holds"),
        ({0.01: [0.2, 0.21, 0.19], 1.0: [0.1, 0.12, 0.11]}, (), "does not hold"),
        ({0.01: [-0.5, 0.1, 0.3], 1.0: [-0.4, 0.5, 0.0]}, (), "inconclusive"),
        # a diverged Taylor run loses its sd, however good the other seeds
        ({0.01: [-0.2, -0.21, math.nan], 1.0: [-0.1, -0.12, -0.11]}, ((0.01, 2),),
         "holds only when sd = 1"),
    ],
)  # fmt: skip
def test_step_training_rows_flip(by_sd, diverged, expected):
    rows = step_size.step_training_rows(_diffs(by_sd, diverged), BEST, taylor=["t"], setting="s")
    assert rows["claim"].tolist() == ["3.3"]
    assert rows["verdict"][0] == expected
    assert "sd = 0.01: 0.3" in rows["setting"][0]


def test_best_fixed_counts_a_diverged_run_as_losing_and_against_best_pairs_seeds():
    final = pd.DataFrame({
        "init": 1.0, "seed": [0, 0, 0, 1, 1, 1], "schedule": ["a", "b", "t"] * 2,
        "lr": [0.1, 1.0, math.nan] * 2, "final_loss": [0.5, 0.1, 0.4, 0.6, math.nan, 0.7],
    })  # fmt: skip
    final["diverged"] = ~np.isfinite(final["final_loss"])
    best = analysis.best_fixed(final, ["a", "b"])
    assert best["best"].tolist() == ["a"]  # b is better on seed 0 but diverged on seed 1
    diffs = step_size.against_best(final, best, ["t"])
    assert diffs["diff"].round(6).tolist() == [-0.1, 0.1]


def test_model_errors_against_hand_computed_values():
    cp = pd.DataFrame({"lr": [0.1], "grad_norm": [2.0], "gHg": [8.0], "gamma_star": [0.5],
                       "predicted": [0.36], "realised": [0.35], "predicted_star": [1.0],
                       "realised_star": [0.8]})  # fmt: skip
    out = step_size.model_errors(cp).iloc[0]
    assert out["err_lin"] == pytest.approx(abs(0.4 - 0.35) / 0.35)
    assert out["err_quad"] == pytest.approx(0.01 / 0.35)
    assert out["err_lin_star"] == pytest.approx(abs(2.0 - 0.8) / 0.8)
    assert out["quad_share"] == pytest.approx(0.1 / (2 * 0.5))  # lr / (2 gamma*)


def test_sgd_steps_matches_plain_gradient_descent_and_the_taylor_step():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)), np.array([0, 1, 2, 0, 1, 2])
    batches = np.array([[0, 1, 2], [3, 4, 5], [0, 2, 4]])
    model = mlp(input_shape=(3,), widths=(4,), num_classes=3, activation="tanh",
                sd=0.5, dtype="float64", seed=1)  # fmt: skip
    ref = mlp(input_shape=(3,), widths=(4,), num_classes=3, activation="tanh",
              sd=0.5, dtype="float64", seed=1)  # fmt: skip
    sgd_steps(model, x, y, batches, lr=0.3)
    for b in batches:
        with tf.GradientTape() as tape:
            loss = mean_loss(ref, x[b], y[b])
        for v, g in zip(ref.trainable_variables, tape.gradient(loss, ref.trainable_variables),
                        strict=True):  # fmt: skip
            v.assign_sub(0.3 * g)
    for a, b in zip(model.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # one Taylor step: gamma* = g'g / g'Hg from the materialized Hessian
    w0 = ref.get_weights()
    with tf.GradientTape() as tape:
        loss = mean_loss(ref, x[:3], y[:3])
    g = np.concatenate([t.numpy().ravel() for t in tape.gradient(loss, ref.trainable_variables)])
    gamma = g @ g / (g @ full_hessian(ref, x[:3], y[:3]) @ g)
    sgd_steps(ref, x, y, batches[:1], lr=("taylor", 0.5))
    moved = np.concatenate([a.ravel() - b.ravel() for a, b in zip(w0, ref.get_weights(),
                                                                   strict=True)])  # fmt: skip
    np.testing.assert_allclose(moved, 0.5 * gamma * g, rtol=1e-9)


def test_sgd_grid_equals_each_run_trained_alone():
    """Every run of the grid in one program against the same run trained alone (the loop
    sgd_grid ran before: its own Keras model, stepsize.sgd_steps, mean_loss on the evaluation
    batch): fixed steps, a Taylor schedule and a run that diverges. The reference trains two of
    the four (init, seed) pairs (the first and the last), each in a grid of its own. The
    held-out evaluation: tests/chapters/test_diagnostic.py (train_grid)."""
    from conftest import random_images
    from sgd_reference import sgd_grid_alone

    data = random_images(60, (4, 3), 3, seed=4)
    schedules = {"lr=0.1": 0.1, "huge": 1e30, "half": ("taylor", 0.5), "lr=0.5": 0.5}
    inits = {0.3: 0.3, "layers": [0.5, 0.4, None]}  # dense1's sd; one sd per layer
    kw = dict(steps=24, batch_size=8, eval_every=12, eval_batch=16, widths=(5, 4))
    frame = experiments.sgd_grid(data, schedules, inits, [0, 1], **kw)
    keys = ["init", "seed", "schedule", "lr", "step"]
    assert list(frame.columns) == keys + ["eval_loss"]
    # evaluations at 0, 12 and 24; lr 1e30 overflows (to NaN: rows at 0 and 24) on most
    assert (frame["schedule"] != "huge").sum() == 12 * 3
    pairs = [(0.3, 0), ("layers", 1)]
    ref = sgd_grid_alone(data, schedules, inits, [0, 1], pairs=pairs, **kw)
    mine = pd.concat([frame[(frame["init"] == i) & (frame["seed"] == s)] for i, s in pairs])
    mine = mine.reset_index(drop=True)
    pd.testing.assert_frame_equal(mine[keys], ref[keys], check_dtype=False)
    a, b = mine["eval_loss"].to_numpy(), ref["eval_loss"].to_numpy()
    diverged = (mine["schedule"] == "huge") & (mine["step"] > 0)  # the others go on
    assert np.isnan(a).tolist() == np.isnan(b).tolist() == diverged.tolist()
    assert mine.loc[mine["schedule"] == "huge", "step"].tolist() == [0, 24] * 2
    ok = ~np.isnan(b)
    np.testing.assert_allclose(a[ok], b[ok], rtol=1e-5)
    for bad in (-0.1, ("taylor",), "taylor"):
        with pytest.raises(ValueError, match="schedule 'x'"):
            experiments.sgd_grid(data, {"x": bad}, inits, [0], **kw)


def test_sgd_steps_rejects_bad_arguments():
    model = mlp(input_shape=(2,), widths=(), num_classes=2, dtype="float64")
    with pytest.raises(ValueError):
        sgd_steps(model, np.zeros((2, 2)), [0, 1], [[0, 1]], lr=-1)
    with pytest.raises(ValueError):
        sgd_steps(model, np.zeros((2, 2)), [0, 1], [0, 1], lr=0.1)


def _outcomes(by_sd):
    """Per sd and seed, one run at lr 0.1 (below the bound) and one at 1.0 (above it);
    ``by_sd[sd][seed] = (below trained, above failed)``."""
    rows = []
    for sd, flags in by_sd.items():
        for seed, (trained, failed) in enumerate(flags):
            rows.append({"sd": sd, "seed": seed, "lr": 0.1, "predicted": False,
                         "unstable": not trained})  # fmt: skip
            rows.append({"sd": sd, "seed": seed, "lr": 1.0, "predicted": True,
                         "unstable": failed})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["agree"] = frame["predicted"] == frame["unstable"]
    return frame


OK = (True, True)


@pytest.mark.parametrize(
    ("by_sd", "expected"),
    [
        ({0.01: [OK] * 3, 1.0: [OK] * 3}, ["holds", "holds"]),
        # below the bound every run trains; above it, runs train too (a safe, loose bound)
        ({0.01: [(True, False)] * 3, 1.0: [(True, False), OK, OK]},
         ["holds", "does not hold"]),
        ({0.01: [OK] * 3, 1.0: [(False, True), OK, OK]},
         ["holds only when sd = 0.01", "holds"]),
    ],
)  # fmt: skip
def test_step_stability_rows_flip(by_sd, expected):
    rows = step_stability.step_stability_rows(_outcomes(by_sd), setting="s", first=5)
    assert rows["claim"].tolist() == ["3.5", "3.6"] and rows["verdict"].tolist() == expected
    assert (rows["source"] == "this book's formalization").all() and (rows["seeds"] == 3).all()


def test_step_stability_rows_values_counts_and_not_tested():
    rows = step_stability.step_stability_rows(
        _outcomes({0.01: [OK, (True, False), OK]}), setting="s"
    )
    per_seed = np.array([1.0, 0.0, 1.0])  # above the bound: seed 1's run trained
    half = 4.302652729911275 * per_seed.std(ddof=1) / math.sqrt(3)  # t_{2, 0.975}
    assert rows["value"].tolist() == pytest.approx([1.0, per_seed.mean()])
    assert rows["low"][1] == pytest.approx(per_seed.mean() - half)
    text = "2 of the 3 fixed-step runs with lr above 2/lambda_max(init) failed"
    assert text in rows["setting"][1]
    below_only = _outcomes({0.01: [OK] * 2})
    below_only = below_only[~below_only["predicted"]]
    rows = step_stability.step_stability_rows(below_only, setting="s")
    assert rows["verdict"].tolist() == ["holds", "not tested: no fixed step of the grid is above "
                                                 "the bound"]  # fmt: skip


def test_stability_outcomes_by_hand():
    nan = math.nan
    grid = pd.DataFrame({
        "init": 0.5, "seed": [0] * 6, "schedule": ["a"] * 2 + ["b"] * 2 + ["c"] * 2,
        "lr": [0.1] * 2 + [0.3] * 2 + [3.0] * 2, "step": [0, 10] * 3,
        "eval_loss": [2.0, 1.0, 2.0, 2.5, 2.0, nan],
    })  # fmt: skip
    start = pd.DataFrame({"sd": [0.5, 0.5], "seed": [0, 0], "layer": ["d1", "d2"],
                          "lambda_max": [1.0, 2.0], "lambda_max_network": [4.0, 4.0]})  # fmt: skip
    out = step_stability.stability_outcomes(grid, start, ["a", "b", "c"])
    assert out["bound"].tolist() == [0.5] * 3  # 2 / 4
    assert out["lr_over_bound"].tolist() == pytest.approx([0.2, 0.6, 6.0])
    assert out["initial_loss"].tolist() == [2.0] * 3
    # best final loss of the grid: 1.0 (a). a: trains, predicted stable; b: ends at 2.5, more
    # than 2x the best, below the bound (a miss); c: diverged above it
    assert out["best_loss"].tolist() == [1.0] * 3
    assert out["unstable"].tolist() == [False, True, True]
    assert out["diverged"].tolist() == [False, False, True]
    assert out["predicted"].tolist() == [False, False, True]
    assert out["agree"].tolist() == [True, False, True]
    bounds = step_stability.stability_bounds(start, lr=0.1)
    assert bounds["part"].tolist() == ["d1", "d2", "network"]
    assert bounds["bound"].tolist() == [2.0, 1.0, 0.5]
    assert bounds["lr_over_bound"].tolist() == pytest.approx([0.05, 0.1, 0.2])


def test_stability_outcomes_success_is_within_a_factor_of_the_grids_best():
    # final losses 0.2 (best), 0.39, 0.41, inf: within 2x of 0.2 trains, above fails, inf fails,
    # although every finite one ends below the initial loss 2.3 (the old criterion)
    finals = [0.2, 0.39, 0.41, math.inf]
    grid = pd.DataFrame({"init": 1.0, "seed": 0, "schedule": np.repeat(list("abcd"), 2),
                         "lr": np.repeat([0.01, 0.03, 0.1, 1.0], 2), "step": [0, 50] * 4,
                         "eval_loss": [v for f in finals for v in (2.3, f)]})  # fmt: skip
    start = pd.DataFrame({"sd": [1.0], "seed": [0], "lambda_max_network": [1.0]})
    out = step_stability.stability_outcomes(grid, start, list("abcd"))
    assert out["unstable"].tolist() == [False, False, True, True]
    assert out["diverged"].tolist() == [False, False, False, True]
    assert (out["final_loss"][:3] < out["initial_loss"][:3]).all()
    wide = step_stability.stability_outcomes(grid, start, list("abcd"), factor=3.0)
    assert wide["unstable"].tolist() == [False, False, False, True]  # the factor decides
    # the best is per sd and seed: another seed's worse grid does not move seed 0's
    other = grid.assign(seed=1, eval_loss=grid["eval_loss"] * 5)
    both = step_stability.stability_outcomes(pd.concat([grid, other]), pd.concat(
        [start, start.assign(seed=1)]), list("abcd"))  # fmt: skip
    assert both["unstable"].tolist() == [False, False, True, True] * 2


def test_init_spectra_match_eigvalsh_on_the_same_weights_and_batch():
    """The draws of train.run / sgd_grid (network mlp(sd=sd, seed), then the batch of
    default_rng(seed)), the largest eigenvalues of the materialized Hessians as reference; the
    shared network object carries no state from one setting to the next."""
    from conftest import random_images

    data = random_images(40, (4, 3), 3, seed=2)
    frame = step_stability.init_spectra(data, [0.5, 2.0], [1], hessian_batch=24, widths=(5,))
    assert frame[["sd", "layer"]].values.tolist() == [[0.5, "dense1"], [0.5, "dense2"],
                                                     [2.0, "dense1"], [2.0, "dense2"]]  # fmt: skip
    assert frame["lambda_converged"].all()
    for sd in (0.5, 2.0):
        model = mlp((4, 3), 3, widths=(5,), sd=sd, seed=1)
        idx = np.random.default_rng(1).choice(40, size=24, replace=False)
        x, y = data.x[idx], data.y[idx]
        rows = frame[frame["sd"] == sd].set_index("layer")
        for name in ("dense1", "dense2"):
            ref = np.linalg.eigvalsh(full_hessian(model, x, y, layer=name)).max()
            assert rows.loc[name, "lambda_max"] == pytest.approx(ref, rel=1e-4)
        ref = np.linalg.eigvalsh(full_hessian(model, x, y)).max()
        assert rows["lambda_max_network"].iloc[0] == pytest.approx(ref, rel=1e-4)


LAYERS = ["dense1", "dense2"]


def test_step_size_figures():
    schedule = "lr=0.01"
    cp = pd.DataFrame({"schedule": [schedule] * 4 + ["1 gamma*"] * 4,
                       "sd": [0.1, 0.1, 1.0, 1.0] * 2,
                       "seed": 0, "step": [0, 5] * 4, "gamma_star": [1.0, 2.0] * 4,
                       "predicted_star": 0.1, "realised_star": 0.05,
                       "hessian_loss": [2.0, 1.0] * 4})  # fmt: skip
    fig = step_size.plot_gamma(cp, schedule)
    assert len(fig.axes[0].get_lines()) == 2  # one line per sd
    fig = step_size.plot_schedules(cp)
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 2]  # two schedules per sd
    plt.close("all")


def test_stability_and_sharpness_figures():
    outcomes = pd.DataFrame({"sd": [0.01] * 3 + [1.0] * 3, "seed": 0,
                             "lr": [0.1, 0.3, 1.0] * 2, "lr_over_bound": [0.1, 0.3, 1.0] * 2,
                             "final_loss": [0.5, 3.0, np.nan] * 2,
                             "unstable": [False, True, True] * 2,
                             "diverged": [False, False, True] * 2})  # fmt: skip
    fig = step_stability.plot_stability(outcomes)
    assert len(fig.axes) == 2 and [len(ax.get_lines()) for ax in fig.axes] == [1, 1]  # bound
    track = pd.DataFrame({"sd": 1.0, "seed": 0, "step": [0, 0, 1, 1, 2, 2],
                          "layer": LAYERS * 3,
                          "lambda_max": [1.0, 2.0, np.nan, np.nan, 1.5, 2.5],
                          "lambda_max_network": [3.0, 3.0, np.nan, np.nan, 4.0, 4.0]})  # fmt: skip
    fig = step_stability.plot_sharpness(track, lr=0.01)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4  # two layers, the network and the bound 2 / lr
    assert lines[2].get_ydata().tolist() == [3.0, 4.0]  # the network, NaN rows skipped
    assert lines[3].get_ydata()[0] == 200.0
    plt.close("all")


# --- the words the page's prose reads (synthetic inputs where the words must flip) ---


def test_bound_place_flips_at_a_tenth_and_at_the_bound():
    from hessinit.chapters.step_stability import bound_place

    assert [bound_place(s) for s in (0.099, 0.1, 0.999, 1.0)] == [
        "far inside",
        "inside",
        "inside",
        "beyond",
    ]


def test_stability_words_use_network_rows_and_first_to_last_checkpoint():
    import pandas as pd

    from hessinit.chapters.step_stability import stability_words

    bounds = pd.DataFrame(
        {"part": ["network", "network", "dense1"], "lr_over_bound": [0.5, 2.5, 9.0],
         "bound": [0.004, 0.02, 100.0]}
    )  # fmt: skip
    track = pd.DataFrame(
        {"sd": [0.1, 0.1, 0.1, 1.0, 1.0], "step": [0, 10, 20, 0, 20],
         "lambda_max": [1.0, None, 1.0, 1.0, 1.0],
         "lambda_max_network": [10.0, 999.0, 30.0, 40.0, 20.0]}
    )  # fmt: skip
    outcomes = pd.DataFrame({"predicted": [True, True, False], "unstable": [True, False, False]})
    words = stability_words(bounds, track, outcomes, lr=0.1)
    assert words["share_lr_max"] == 2.5 and words["bound_min"] == 0.004
    assert words["sharp_growth"] == 3.0  # sd 0.1: 30 / 10 (the NaN checkpoint dropped)
    assert abs(words["end_share"] - 2.0) < 1e-12 and words["lr_place"] == "beyond"
    assert (words["n_fixed_runs"], words["n_too_safe"], words["n_missed"]) == (3, 1, 0)


def test_schedule_runs_take_fixed_steps_stacked_and_taylor_schedules_alone(monkeypatch):
    """Quick: the fixed steps are the stacked trainer's runs with train.run's Taylor columns
    (each equal to train.run: tests/test_stacked.py); a Taylor schedule goes to train.run
    itself (a stand-in records the calls here); the frame comes in the order schedule, sd,
    seed, with train.run's columns. Against train.run itself: the slow test below."""
    from conftest import random_images

    from hessinit import train
    from hessinit.train import stacked

    images = random_images(24, (4, 3), 3, seed=2)
    kw = dict(widths=(4,), steps=2, batch_size=8, hessian_every=1, hessian_batch=8,
              progress=False)  # fmt: skip
    calls = []

    def stand_in(data, sd, lr, seed, **kwargs):
        assert data is images and kwargs == kw
        calls.append((sd, lr, seed))
        return pd.DataFrame({c: [float(len(calls))] * 2 for c in train.COLUMNS}).assign(
            sd=sd, seed=seed, step=[0, 1]
        )

    monkeypatch.setattr(step_size, "run", stand_in)
    schedules = {"t": ("taylor", 0.5), "a": 0.05}
    frame = step_size.schedule_runs(images, schedules, [0.3, 1.0], [7], **kw)
    assert list(frame.columns) == [*train.COLUMNS, "schedule"]
    assert calls == [(0.3, ("taylor", 0.5), 7), (1.0, ("taylor", 0.5), 7)]
    taylor = frame[frame["schedule"] == "t"]
    assert taylor["sd"].tolist() == [0.3, 0.3, 1.0, 1.0] and (taylor["loss"] == [1, 1, 2, 2]).all()
    runs = [stacked.Run(seed=7, sd=sd, lr=0.05) for sd in (0.3, 1.0)]
    ref = stacked.train_runs(images, runs, taylor=True, **kw)[list(train.COLUMNS)]
    mine = frame[frame["schedule"] == "a"].drop(columns="schedule").reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, ref, check_dtype=False)


@pytest.mark.slow
def test_schedule_runs_equal_train_run():
    """Every schedule, sd and seed against train.run of the same run (34 s on 2 cores)."""
    from conftest import equal_to_run, random_images

    from hessinit import train

    images = random_images(40, (4, 3), 3, seed=2)
    kw = dict(widths=(5,), steps=3, batch_size=8, hessian_every=1, hessian_batch=16,
              progress=False)  # fmt: skip
    schedules = {"a": 0.05, "b": 0.2, "t": ("taylor", 0.5)}
    frame = step_size.schedule_runs(images, schedules, [0.3, 1.0], [0, 1], **kw)
    assert frame.columns[-1] == "schedule"
    refs = [train.run(images, sd, lr=lr, seed=seed, **kw).assign(schedule=name)
            for name, lr in schedules.items() for sd in (0.3, 1.0) for seed in (0, 1)]  # fmt: skip
    equal_to_run(frame, pd.concat(refs, ignore_index=True))
