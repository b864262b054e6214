"""The CNN training page's measurements and rules against independent references.

Norms against Hessians materialized by autodiff on 6x6 images in float64, training against a
hand-written SGD loop, intervals against scipy, and the rules of claims 5.5 and 5.6 on synthetic
frames where their verdicts must flip."""

import math

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from scipy import stats as st

from hessinit.chapters import cnn_training
from hessinit.curvature import full_hessian
from hessinit.data import Dataset
from hessinit.study import claims, convnets

SHAPE = dict(num_classes=3, channels=(2, 2), dtype="float64")


def _data(n=12, seed=1):
    rng = np.random.default_rng(seed)
    return Dataset(rng.random((n, 6, 6), np.float32), rng.integers(0, 3, n).astype(np.int32),
                   "tiny", 3, (6, 6), "random")  # fmt: skip


def _loss(model, x, y):
    z = model(tf.constant(x), training=False)
    onehot = tf.one_hot(y, int(z.shape[-1]), dtype=z.dtype)
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(onehot, z))


def test_init_measures_match_materialized_hessians_and_direct_gradients():
    """Each scheme's row is that of the network built anew for it (one network object serves
    every scheme): kernel norms from the materialized Hessian, the level from its formula, the
    loss and gradient norm by a direct tape."""
    data = _data()
    out = cnn_training.init_measures(data, ["cnn relu"], [0.5, "he"], [3], hessian_batch=8,
                                     **SHAPE)  # fmt: skip
    assert out["init"].tolist() == ["c=0.5", "he"] and out["exact"].all()
    idx = np.random.default_rng(3).choice(12, size=8, replace=False)
    x, y = data.x[idx][..., None].astype(np.float64), data.y[idx]
    xf = x.reshape(8, -1)
    level = np.linalg.norm(xf.T @ xf / 8) * math.sqrt(2) / (3 * 36)
    for scheme, row in zip((0.5, "he"), out.itertuples(), strict=True):
        model = convnets.build("cnn relu", scheme, 3, input_shape=(6, 6, 1), **SHAPE)
        hs, fans = [], []
        for name in ("conv1", "conv2", "dense"):
            kernel = model.get_layer(name).kernel
            hs.append(np.linalg.norm(full_hessian(model, x, y, layer=kernel)))
            fans.append(int(np.prod(kernel.shape[:-1])))
        np.testing.assert_allclose([row.H_first, row.H_sum, row.H_max],
                                   [hs[0], sum(hs), max(hs)], rtol=1e-8)  # fmt: skip
        dev = sum(abs(math.log10(h / f / level)) for h, f in zip(hs, fans, strict=True))
        np.testing.assert_allclose(row.H_dev, dev, rtol=1e-8)
        with tf.GradientTape() as tape:
            loss = _loss(model, x, y)
        grads = tape.gradient(loss, model.trainable_variables)
        norm = math.sqrt(sum(float(tf.reduce_sum(g * g)) for g in grads))
        np.testing.assert_allclose([row.loss0, row.grad_norm0], [float(loss), norm], rtol=1e-8)


def test_sgd_outcomes_match_a_hand_written_sgd_loop():
    """Every step size starts from the same weights and takes the same mini-batches."""
    data, held = _data(16, seed=2), _data(10, seed=5)
    out = cnn_training.sgd_outcomes(data, held, ["cnn tanh"], ["glorot", 4.0], [1], [0.05, 0.2],
                                    steps=6, batch_size=4, **SHAPE)  # fmt: skip
    batches = np.random.default_rng(1).integers(0, 16, (6, 4))
    x, y = data.x[..., None].astype(np.float64), data.y
    xt, yt = held.x[..., None].astype(np.float64), held.y
    for scheme, label in (("glorot", "glorot"), (4.0, "c=4")):
        for lr in (0.05, 0.2):
            model = convnets.build("cnn tanh", scheme, 1, input_shape=(6, 6, 1), **SHAPE)
            before = float(_loss(model, xt, yt))
            for rows in batches:
                with tf.GradientTape() as tape:
                    loss = _loss(model, x[rows], y[rows])
                grads = tape.gradient(loss, model.trainable_variables)
                for v, g in zip(model.trainable_variables, grads, strict=True):
                    v.assign_sub(lr * g)
            got = out[(out["init"] == label) & (out["lr"] == lr)].sort_values("step")
            np.testing.assert_allclose(got["eval_loss"], [before, float(_loss(model, xt, yt))],
                                       rtol=1e-6)  # fmt: skip


def test_trainability_ranks_a_diverged_run_last():
    nan = float("nan")
    grid = pd.DataFrame({
        "network": "n", "init": ["a"] * 4 + ["b"] * 4, "seed": 0,
        "schedule": ["lr=0.1", "lr=0.1", "lr=1", "lr=1"] * 2, "lr": [0.1, 0.1, 1.0, 1.0] * 2,
        "step": [0, 9] * 4, "eval_loss": [2.3, 0.9, 2.3, 0.4, 2.3, 0.8, 2.3, nan],
    })  # fmt: skip
    measures = pd.DataFrame({"network": "n", "init": ["a", "b"], "seed": 0, "H_sum": [1.0, 2.0]})
    out = cnn_training.trainability(measures, grid, 1.0, [0.1, 1.0])
    assert out["loss_fixed"].tolist() == [0.4, 1.9]  # b diverged: worst finite (0.9) + 1
    assert out["diverged"].tolist() == [False, True]
    assert out["loss_tuned"].tolist() == [0.4, 0.8] and out["tuned_lr"].tolist() == [1.0, 0.1]


def _gaps(rho_low, rho_high, low, high):
    return pd.DataFrame({"network": ["cnn relu"], "outcome": "loss_tuned", "hessian": "H_sum",
                         "baseline": "loss0", "rho_hessian": [(rho_low + rho_high) / 2],
                         "rho_low": [rho_low], "rho_high": [rho_high], "gap": [(low + high) / 2],
                         "low": [low], "high": [high]})  # fmt: skip


@pytest.mark.parametrize(
    ("rho", "gap", "expected"),
    [
        ((0.6, 0.9), (0.1, 0.3), claims.HOLDS),
        ((0.6, 0.9), (-0.3, -0.1), claims.FAILS),  # ranks well, but no better than trivial
        ((0.1, 0.4), (0.1, 0.3), claims.FAILS),  # beats trivial, but ranks weakly
        ((0.3, 0.9), (0.1, 0.3), claims.INCONCLUSIVE),
        ((0.6, 0.9), (-0.1, 0.3), claims.INCONCLUSIVE),
    ],
)
def test_trainability_rows_55_flip(rho, gap, expected):
    rows = cnn_training.trainability_rows(_gaps(*rho, *gap), threshold=0.5, seeds=3, setting="s")
    assert rows["claim"].tolist() == ["5.5"] and rows["verdict"][0] == expected
    assert rows["low"][0] == rho[0] and rows["high"][0] == rho[1]


def test_rank_gaps_pick_the_strongest_lower_end_and_match_scipy():
    rng = np.random.default_rng(0)
    h = np.tile(np.arange(6.0), 4)
    table = pd.DataFrame({"network": "n", "seed": np.repeat(np.arange(4), 6), "h": h,
                          "noise": rng.random(24), "b": rng.random(24),
                          "y": h + rng.normal(0, 0.5, 24)})  # fmt: skip
    corr = cnn_training.rank_table(table, ["noise", "h"], ["b"], ["y"], n_boot=200)
    rho = corr.set_index("predictor")["rho"]

    def per_seed(x):  # rho within each seed, averaged over seeds (the estimand)
        return table.groupby("seed").apply(lambda g: st.spearmanr(g[x], g["y"])[0]).mean()

    np.testing.assert_allclose(rho["h"], per_seed("h"))
    gap = cnn_training.rank_gaps(table, corr, n_boot=200).iloc[0]
    assert gap["hessian"] == "h" and gap["baseline"] == "b"
    expected = abs(per_seed("h")) - abs(per_seed("b"))
    np.testing.assert_allclose(gap["gap"], expected)
    assert gap["low"] <= gap["gap"] <= gap["high"]


def test_dominance_course_is_student_t_over_the_worst_kernel():
    frame = pd.DataFrame({"network": "n", "seed": [0, 0, 1, 1, 2, 2], "step": 5,
                          "layer": ["a", "b"] * 3, "H": 1.0, "G": 0.8,
                          "R": [0.1, 0.3, 0.5, 0.2, 0.4, 0.0], "hessian_loss": 1.0,
                          "exact": False})  # fmt: skip
    row = cnn_training.dominance_course(frame).iloc[0]
    worst = np.array([0.3, 0.5, 0.4])
    half = st.t.ppf(0.975, 2) * worst.std(ddof=1) / np.sqrt(3)
    np.testing.assert_allclose([row["R_over_H"], row["low"], row["high"]],
                               [0.4, 0.4 - half, 0.4 + half])  # fmt: skip
    assert row["seeds"] == 3 and not row["exact"]


@pytest.mark.parametrize(
    ("late", "expected"),
    [
        ((0.02, 0.01, 0.03), claims.HOLDS),
        ((0.5, 0.4, 0.6), "holds only when relu"),  # tanh leaves dominance during training
        ((0.08, 0.02, 0.2), "holds only when relu; inconclusive for tanh"),
    ],
)
def test_tracking_rows_56_flip(late, expected):
    value, low, high = late
    course = pd.DataFrame({"network": ["relu"] * 2 + ["tanh"] * 2, "step": [0, 50] * 2,
                           "R_over_H": [0.0, 0.0, 0.04, value],
                           "low": [np.nan, np.nan, 0.03, low],
                           "high": [np.nan, np.nan, 0.05, high], "G_over_H": 1.0,
                           "seeds": 3, "exact": [True, True, False, False]})  # fmt: skip
    row = cnn_training.tracking_rows(course, threshold=0.1, setting="s").iloc[0]
    assert row["claim"] == "5.6" and row["verdict"] == expected
    assert row["value"] == max(value, 0.04)
    assert "R = 0 by structure (piecewise linear): relu" in row["setting"]


def test_track_resnet_is_exact_with_r_zero_and_networks_checked():
    # spectra="network", as the page tracks (stability reads the network's lambda_max only;
    # the layers' lambda_max of train.run: tests/test_train.py)
    out = cnn_training.track(_data(), ["resnet"], "he", [0], steps=2, hessian_every=2,
                             batch_size=4, hessian_batch=6, spectra="network",
                             build={"num_classes": 3, "channels": 2, "blocks": 1})  # fmt: skip
    cp = out.dropna(subset=["H"])
    assert cp["layer"].unique().tolist() == ["stem", "block1_conv1", "block1_conv2", "dense"]
    assert cp["exact"].all() and (cp["R"] == 0).all() and (cp["H"] > 0).all()
    bounds = cnn_training.stability(out, 0.1)
    assert bounds["step"].tolist() == [0, 2]
    np.testing.assert_allclose(bounds["lr_over_bound"], 0.1 * bounds["lambda_max"] / 2)
    with pytest.raises(ValueError, match="not trained here"):
        cnn_training.track(_data(), ["resnet bn"], "he", [0], steps=1)


def test_tracking_figure_has_a_column_per_network():
    import matplotlib.pyplot as plt

    frame = pd.DataFrame({"network": ["a"] * 4 + ["b"] * 4, "seed": 0, "step": [0, 0, 5, 5] * 2,
                          "layer": ["c1", "d"] * 4, "H": 1.0, "G": 0.9, "R": 0.1})  # fmt: skip
    fig = cnn_training.plot_cnn_tracking(frame)
    assert len(fig.axes) == 4 and [ax.get_title() for ax in fig.axes[:2]] == ["a", "b"]
    plt.close(fig)


def test_init_measures_count_an_underflowed_norm_at_the_smallest_normal_float32():
    """A saturated softmax makes every kernel's H underflow to 0 in float32: the distance from
    the level is then finite and larger than that of a sane scale, not a math error."""
    out = cnn_training.init_measures(_data(), ["cnn relu"], ["he", 1e12], [0], hessian_batch=8,
                                     num_classes=3, channels=(2, 2))  # fmt: skip
    saturated = out.iloc[1]
    assert saturated["H_sum"] == 0 and np.isfinite(saturated["H_dev"])
    assert saturated["H_dev"] > out.iloc[0]["H_dev"]


def test_tuned_outcome_at_the_grid_edge_is_not_tested():
    """A network where one initialization's step, chosen on the selection seeds, is the grid's
    largest: its tuned outcome reads "not tested" (lr grid edge); its fixed outcome is judged."""
    sel = pd.DataFrame({"network": "cnn relu", "init": ["he"] * 3 + ["c=8"] * 3, "seed": 100,
                        "schedule": "", "lr": [0.03, 0.1, 0.3] * 2, "step": 200,
                        "eval_loss": [0.9, 0.5, 0.7, 0.9, 0.7, 0.6]})  # fmt: skip
    choice = cnn_training.select_lrs(sel)
    assert choice["tuned_lr"].tolist() == [0.1, 0.3] and choice["interior"].tolist() == [
        True,
        False,
    ]
    gaps = pd.concat([_gaps(0.6, 0.9, 0.1, 0.3), _gaps(0.6, 0.9, 0.1, 0.3)], ignore_index=True)
    gaps.loc[0, "outcome"] = "loss_fixed"
    row = cnn_training.trainability_rows(gaps, threshold=0.5, seeds=8, setting="s", choice=choice)
    verdict = row["verdict"][0]
    assert verdict.startswith("holds only when cnn relu, loss_fixed")
    assert "not tested for cnn relu, loss_tuned (lr grid edge: the tuned lr of c=8" in verdict
    interior = cnn_training.trainability_rows(gaps, threshold=0.5, seeds=8, setting="s",
                                              choice=choice.assign(interior=True))  # fmt: skip
    assert interior["verdict"][0] == claims.HOLDS


def test_outcomes_use_the_step_chosen_on_other_seeds():
    grid = pd.DataFrame({"network": "n", "init": "a", "seed": 0,
                         "schedule": ["lr=0.01", "lr=0.01", "lr=0.3", "lr=0.3"],
                         "lr": [0.01, 0.01, 0.3, 0.3], "step": [0, 9] * 2,
                         "eval_loss": [2.3, 1.5, 2.3, 0.4]})  # fmt: skip
    measures = pd.DataFrame({"network": ["n"], "init": ["a"], "seed": [0]})
    choice = pd.DataFrame({"network": ["n"], "init": ["a"], "tuned_lr": [0.3]})
    out = cnn_training.trainability(measures, grid, 0.01, [0.03, 0.1, 0.3], choice)
    assert out[["loss_fixed", "loss_tuned", "tuned_lr"]].values.tolist() == [[1.5, 0.4, 0.3]]
    assert cnn_training.evaluation_lrs(choice, 0.01) == {("n", "a"): [0.01, 0.3]}
