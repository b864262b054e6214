"""The CNN chapter's measurements against Hessians materialized by autodiff on tiny shapes."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from scipy import stats as st

from hessinit.chapters import cnn, cnn_depth
from hessinit.curvature import full_hessian
from hessinit.nn.convnets import kernel_fans, kernel_layers, plain_cnn
from hessinit.study import claims, convnets

SHAPE = dict(channels=(2, 2), dtype="float64")
WIDE = dict(channels=(2, 8), dtype="float64")  # conv2 past 3 sketch + probes: estimated


def _data(n=5):
    rng = np.random.default_rng(1)
    return rng.random((n, 6, 6, 1)), np.arange(n) % 10


def _materialized(model, layer, x, y):
    """||H||_F and ||G||_F of one kernel from full autodiff Hessian and Jacobians."""
    kernel = model.get_layer(layer).kernel
    x = tf.constant(x)
    onehot = tf.one_hot(y, 10, dtype=tf.float64)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            z = model(x)
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(onehot, z))
        grad = inner.gradient(loss, kernel)
    P = int(np.prod(kernel.shape))
    H = tf.reshape(outer.jacobian(grad, kernel), (P, P)).numpy()
    with tf.GradientTape() as tape:
        z = model(x)
    J = tf.reshape(tape.jacobian(z, kernel), (len(y), 10, P)).numpy()
    p = tf.nn.softmax(z).numpy()
    G = sum(J[i].T @ (np.diag(p[i]) - np.outer(p[i], p[i])) @ J[i] for i in range(len(y)))
    return np.linalg.norm(H), np.linalg.norm(G / len(y)), np.linalg.norm(H - G / len(y))


def test_relu_cnn_has_r_zero_and_exact_h():
    x, y = _data()
    out = cnn.kernel_norms(x, y, ["cnn relu"], ["he"], [0], **SHAPE)
    model = convnets.build("cnn relu", "he", 0, input_shape=(6, 6, 1), **SHAPE)
    for _, row in out.iterrows():
        h, g, r = _materialized(model, row["tensor"], x, y)
        assert r <= 1e-10 * h
        assert row["R"] == 0.0
        np.testing.assert_allclose(row["H"], h, rtol=1e-8)


def test_tanh_cnn_estimates_match_materialized():
    x, y = _data()
    out = cnn.kernel_norms(
        x,
        y,
        ["cnn tanh"],
        ["glorot"],
        [0],
        probes=400,
        estimate="hutchinson",
        max_products=0,
        **SHAPE,
    )
    model = convnets.build("cnn tanh", "glorot", 0, input_shape=(6, 6, 1), **SHAPE)
    row = out[out["tensor"] == "conv2"].iloc[0]
    assert row["method"] == "hutchinson"
    h, g, r = _materialized(model, "conv2", x, y)
    assert r > 0.01 * h  # tanh: R is not structurally zero
    np.testing.assert_allclose([row["H"], row["G"], row["R"]], [h, g, r], rtol=0.15)


def test_worst_intervals_is_student_t_over_worst_tensor():
    frame = pd.DataFrame({"network": "n", "init": "he", "seed": [0, 0, 1, 1, 2, 2],
                          "tensor": ["a", "b"] * 3, "method": "columns",
                          "R_over_H": [0.1, 0.3, 0.5, 0.2, 0.4, np.nan],
                          "G_over_H": 1.0})  # fmt: skip
    row = cnn.worst_intervals(frame).iloc[0]
    worst = np.array([0.3, 0.5, 0.4])
    half = st.t.ppf(0.975, 2) * worst.std(ddof=1) / np.sqrt(3)
    np.testing.assert_allclose([row["low"], row["high"]], [0.4 - half, 0.4 + half])
    assert row["exact"] and row["seeds"] == 3


def test_cnn_rows_mark_structural_zero_and_untested_batchnorm():
    summary = pd.DataFrame({"network": ["cnn relu", "resnet"], "init": "he", "R_over_H": 0.0,
                            "low": 0.0, "high": 0.0, "G_over_H": 1.0, "seeds": 3,
                            "exact": True})  # fmt: skip
    rows = cnn.cnn_rows(summary, threshold=0.1, setting="tiny")
    assert rows["verdict"].tolist()[0] == claims.HOLDS
    assert "R = 0 by structure" in rows["setting"][0]
    assert np.isnan(rows["low"][0])
    assert rows["verdict"][1].startswith(claims.NOT_TESTED)


def test_build_rejects_unknown_network():
    with pytest.raises(ValueError, match="unknown network"):
        convnets.build("vgg", "he", 0)


def test_lambda_max_matches_eigvalsh_of_the_full_hessian():
    x, y = _data()
    out = cnn.lambda_max(x, y, ["cnn tanh", "resnet bn"], ["glorot"], **SHAPE)
    assert out["network"].tolist() == ["cnn tanh"]
    model = convnets.build("cnn tanh", "glorot", 0, input_shape=(6, 6, 1), **SHAPE)
    top = np.linalg.eigvalsh(full_hessian(model, x, y))[-1]
    np.testing.assert_allclose(out["lambda_max"][0], top, rtol=1e-6)


def test_sweep_reuses_one_network_and_matches_each_built_scheme():
    # one network per seed serves every scheme: the norms are those of the network built anew
    x, y = _data()
    out = cnn.kernel_norms(x, y, ["cnn relu"], [0.5, "he", 8.0], [1, 0], **SHAPE)
    seed1 = out[(out["seed"] == 1) & (out["c"] == 0.5)]
    model = convnets.build("cnn relu", 0.5, 1, input_shape=(6, 6, 1), **SHAPE)  # seed 1's kernels
    for _, row in seed1.iterrows():
        h, _, _ = _materialized(model, row["tensor"], x, y)
        np.testing.assert_allclose(row["H"], h, rtol=1e-8)
    out = out[out["seed"] == 0]
    assert out["init"].unique().tolist() == ["c=0.5", "he", "c=8"]
    assert out["c"].iloc[0] == 0.5 and np.isnan(out[out["init"] == "he"]["c"]).all()
    for scheme in (0.5, 8.0):
        model = convnets.build("cnn relu", scheme, 0, input_shape=(6, 6, 1), **SHAPE)
        rows = out[out["c"] == scheme]
        for _, row in rows.iterrows():
            h, _, _ = _materialized(model, row["tensor"], x, y)
            np.testing.assert_allclose(row["H"], h, rtol=1e-8)
    fans = out.groupby("tensor", sort=False)["fan_in"].first().tolist()
    assert fans == [9 * 1, 9 * 2, 1 * 1 * 2]  # the dense layer sees 6x6 -> 3x3 -> 1x1, 2 channels


def _reference_levels(x, y, c, depths, channels, seed):
    """Per depth: h_l = ||H_l||_F / fan_in of every kernel from materialized float64 Hessians."""
    out = {}
    for d in depths:
        probe = plain_cnn((6, 6, 1), 10, d, channels)
        fans = [kernel_fans(layer.kernel.shape)[0] for layer in kernel_layers(probe)]
        model = plain_cnn((6, 6, 1), 10, d, channels, seed=seed, dtype="float64",
                          sd=[np.sqrt(c / f) for f in fans])  # fmt: skip
        out[d] = [_materialized(model, layer.name, x, y)[0] / f
                  for layer, f in zip(kernel_layers(model), fans, strict=True)]  # fmt: skip
    return out


def test_conv_depth_growth_matches_materialized_hessians():
    x, y = _data(6)
    growth = cnn_depth.ConvDepthGrowth(x, y, depths=(1, 2), channels=2, seed=3)
    c = 1.7
    got = growth.profile(c)
    ref = _reference_levels(x, y, c, (1, 2), 2, seed=3)
    for d, h in ref.items():
        np.testing.assert_allclose(got[got["depth"] == d]["H_norm"], h, rtol=1e-4)
    slope = np.mean(np.log(ref[2])) - np.mean(np.log(ref[1]))  # two depths: the slope
    np.testing.assert_allclose(growth(c), slope, rtol=1e-4, atol=1e-6)
    assert growth.history == [(c, growth.history[0][1])] and growth.evaluations == 2


def test_stable_root_is_where_the_materialized_growth_vanishes():
    rng = np.random.default_rng(4)
    x, y = rng.random((30, 6, 6, 1)), rng.integers(0, 10, 30)
    roots, evals = cnn_depth.stable_roots(x, y, [1, 2], 2, 8, [5], xtol=0.01)
    c_star = roots["c_star"].iloc[0]
    assert roots["bracketed"].all() and len(evals) == roots["evaluations"].iloc[0]
    idx = np.random.default_rng(5).choice(30, 8, replace=False)  # the seed's batch
    slopes = []
    for c in (c_star * 0.9, c_star, c_star / 0.9):
        ref = _reference_levels(x[idx], y[idx], c, (1, 2), 2, seed=5)
        slopes.append(np.mean(np.log(ref[2])) - np.mean(np.log(ref[1])))
    assert slopes[0] < 0 < slopes[2]  # a sign change around c*
    assert abs(slopes[1]) < 0.05 * (slopes[2] - slopes[0])  # and c* sits near the zero


def test_sweep_rows_name_the_c_where_g_dominates():
    summary = pd.DataFrame(
        {
            "network": ["cnn relu"] * 2 + ["cnn tanh"] * 3 + ["resnet bn"],
            "c": [0.5, 8.0, 0.5, 2.0, 8.0, 2.0],
            "R_over_H": [0.0, 0.0, 0.02, 0.2, 0.6, 0.9],
            "low": [0.0, 0.0, 0.01, 0.15, 0.5, 0.8],
            "high": [0.0, 0.0, 0.03, 0.25, 0.7, 1.0],
            "G_over_H": 0.5,
            "seeds": 3,
            "exact": [True, True, False, False, False, False],
        }
    )
    rows = cnn.sweep_rows(summary, threshold=0.1, setting="tiny")
    assert rows["claim"].unique().tolist() == ["5.4"]
    assert rows["verdict"].tolist() == [claims.HOLDS, "holds only when c = 0.5", claims.FAILS]
    assert "R = 0 by structure" in rows["setting"][0] and np.isnan(rows["low"][0])
    assert rows["value"][1] == 0.6 and rows["high"][1] == 0.7  # the worst c, with its interval


def test_depth_rows_use_the_mlp_rule_against_he():
    def summary(c, low, high):
        return pd.DataFrame({"label": ["relu CNN"], "c": [c], "low": [low], "high": [high],
                             "seeds": [4], "c_lo": 1.0, "c_hi": 4.0})  # fmt: skip

    verdicts = [cnn_depth.depth_rows(summary(*s), xtol=0.02, max_ratio=1.5, setting="s").iloc[0]
                for s in [(2.1, 1.9, 2.3), (3.0, 2.8, 3.2), (2.0, 1.0, 4.0)]]  # fmt: skip
    assert [v["claim"] for v in verdicts] == ["5.3"] * 3
    assert verdicts[0]["verdict"] == claims.HOLDS
    assert verdicts[1]["verdict"] == f"{claims.FAILS}: c* = 3 [2.8, 3.2] lies above 2"
    assert verdicts[2]["verdict"] == claims.INCONCLUSIVE


# --- the words the page's prose reads (synthetic inputs where the words must flip) ---


@pytest.mark.parametrize(
    ("low", "high", "side"),
    [(2.01, 3.0, "above"), (1.0, 1.99, "below"), (1.9, 2.1, "around"), (2.0, 2.5, "around")],
)
def test_he_side_flips_at_two(low, high, side):
    assert cnn_depth.he_side(low, high) == side


def test_seed_slopes_match_two_point_slopes():
    c = np.array([0.5, 2.0, 8.0])
    ev = pd.DataFrame(
        {
            "seed": [0] * 3 + [1] * 3,
            "c": np.r_[c, c],
            "log_growth": np.r_[np.log(c), -2 * np.log(c)],
        }
    )
    np.testing.assert_allclose(cnn_depth.seed_slopes(ev).to_numpy(), [1.0, -2.0])


def test_root_words_without_two_roots_says_how_many():
    summary = pd.DataFrame({"c": [np.nan], "low": [np.nan], "high": [np.nan], "seeds": [1],
                            "spread": [np.nan]})  # fmt: skip
    ev = pd.DataFrame({"seed": [0, 0], "c": [1.0, 4.0], "log_growth": [0.0, 1.0]})
    roots = pd.DataFrame({"seed": [0, 1], "c_star": [np.nan, 3.0]})
    words = cnn_depth.root_words(summary, ev, roots)
    assert words["c_cnn"] == "no $c^*$ on two or more seeds (1 found one)"
    assert words["c_seeds"] == "none, 3"


def test_sweep_words_take_the_largest_tensor_move():
    sweep = pd.DataFrame({"network": ["n"] * 4, "tensor": ["a", "a", "b", "b"],
                          "c": [1, 2, 1, 2], "H": [2.0, 3.0, 1.0, 5.0]})  # fmt: skip
    spectra = pd.DataFrame({"network": ["n", "n"], "lambda_max": [2.0, 1.0]})
    summary = pd.DataFrame({"network": ["n"], "R_over_H": [0.5]})
    rows = pd.DataFrame({"setting": ["n, x"], "verdict": ["does not hold"]})
    words = cnn.sweep_words(sweep, spectra, summary, rows)
    assert words == {"v54": "n: does not hold", "moves": "n 5", "lam_moves": "n a factor 2",
                     "worst_range": "n 0.5 to 0.5"}  # fmt: skip


def test_conv1_exact_columns_and_deflated_estimates_of_larger_kernels():
    """max_products keeps conv1 exact (2P = 36 products); conv2 (P = 144) is estimated."""
    x, y = _data()
    out = cnn.kernel_norms(x, y, ["cnn tanh"], ["glorot"], [0], probes=100, sketch=2,
                           max_products=40, **WIDE)  # fmt: skip
    model = convnets.build("cnn tanh", "glorot", 0, input_shape=(6, 6, 1), **WIDE)
    rows = out.set_index("tensor")
    assert rows.loc["conv1", "method"] == "columns" and rows.loc["conv2", "method"] == "hutchpp"
    h, g, r = _materialized(model, "conv1", x, y)
    np.testing.assert_allclose(rows.loc["conv1", ["H", "G", "R"]].astype(float), [h, g, r],
                               rtol=1e-8)  # fmt: skip
    np.testing.assert_allclose(rows.loc["conv1", "R_over_G"], r / g, rtol=1e-8)
    h, g, r = _materialized(model, "conv2", x, y)
    np.testing.assert_allclose(rows.loc["conv2", ["H", "G", "R"]].astype(float), [h, g, r],
                               rtol=0.15)  # fmt: skip
    assert not cnn.worst_intervals(out.assign(c=np.nan))["exact"][0]


def _cnn_summary(rh, rg, network="cnn tanh", exact=False, c=np.nan):
    (v, lo, hi), (q, qlo, qhi) = rh, rg
    return {"network": network, "init": "he", "c": c, "R_over_H": v, "low": lo, "high": hi,
            "G_over_H": 0.9, "R_over_G": q, "RG_low": qlo, "RG_high": qhi, "seeds": 5,
            "exact": exact}  # fmt: skip


def test_cnn_rows_from_frames_match_the_interval_rule_and_sensitivity_flips():
    summary = pd.DataFrame([
        _cnn_summary((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), "cnn relu", exact=True),
        _cnn_summary((0.2, 0.15, 0.25), (0.3, 0.2, 0.4)),
        _cnn_summary((1.0, 0.9, 1.1), (3.0, 2.0, 4.0), "resnet bn"),
    ])  # fmt: skip
    rows = cnn.cnn_rows(summary, threshold=0.1, setting="s")
    by_hand = claims.verdict([True, False], ["cnn relu he", "cnn tanh he"])
    assert rows["verdict"].tolist() == [by_hand, "does not hold"]
    assert rows["value"].tolist() == [0.2, 1.0] and rows["kind"].tolist() == ["empirical"] * 2
    sens = cnn.sensitivity(summary)
    assert sens.iloc[0, 2:].tolist() == ["holds only when cnn relu he", "holds", "holds"]
    assert sens.iloc[1, 2:].tolist() == ["does not hold"] * 3
    relu_only = cnn.cnn_rows(summary.iloc[[0]], threshold=0.1, setting="s")
    assert relu_only["kind"][0] == "fact" and relu_only["verdict"][1].startswith("not tested")


def test_sweep_sensitivity_names_the_c_per_rule():
    sweep = pd.DataFrame([_cnn_summary((0.05, 0.02, 0.08), (0.5, 0.3, 0.7), c=0.5),
                          _cnn_summary((0.2, 0.1, 0.25), (1.5, 1.2, 1.8), c=8.0)])  # fmt: skip
    row = cnn.sensitivity(pd.DataFrame([_cnn_summary((0.0, 0.0, 0.0), (0.0, 0.0, 0.0),
                                                     exact=True)]), sweep).iloc[-1]  # fmt: skip
    assert row["claim"] == "5.4" and row["setting"] == "cnn tanh"
    assert row["R/H < 0.1"] == "holds only when c = 0.5"
    assert row["R/H < 0.3"] == "holds"
    assert row["||G|| > ||R||"] == "holds only when c = 0.5"


# --- what the chapter computes once instead of twice (checked against the slow routes) ---


@pytest.mark.parametrize("seed", [3, 8])
def test_scaled_profiles_equal_the_hessians_at_every_c(seed):
    """The homogeneous shortcut (Jacobians at c = 1) against each c's own exact Hessians."""
    x, y = _data(7)
    fast = cnn_depth.ConvDepthGrowth(x, y, (1, 3), channels=2, seed=seed)
    slow = cnn_depth.ConvDepthGrowth(x, y, (1, 3), channels=2, seed=seed, scaling=False)
    assert all(g is not None for g in fast.grams.values())
    assert all(g is None for g in slow.grams.values())
    for c in (0.3, 1.0, 2.5, 9.0):
        np.testing.assert_allclose(fast.profile(c)["H_norm"], slow.profile(c)["H_norm"],
                                   rtol=2e-5)  # fmt: skip


def test_homogeneity_is_proved_or_refused():
    shape = (6, 6, 1)
    assert cnn_depth.homogeneous_issue(plain_cnn(shape, 10, 2, 2)) is None
    assert "tanh" in cnn_depth.homogeneous_issue(plain_cnn(shape, 10, 2, 2, activation="tanh"))
    biased = plain_cnn(shape, 10, 2, 2)
    biased.get_layer("conv2").bias.assign(np.full(2, 0.1, np.float32))
    assert cnn_depth.homogeneous_issue(biased) == "layer 'conv2' has a nonzero bias"
    resnet = convnets.build("resnet", "he", 0, input_shape=shape, channels=2)
    assert "is not a chain layer" in cnn_depth.homogeneous_issue(resnet)  # Activation, Add
    bn = convnets.build("resnet bn", "he", 0, input_shape=shape, channels=2)
    assert "is not a chain layer" in cnn_depth.homogeneous_issue(bn)
    # a refused network takes the Hessians at every c, and still matches the references
    x, y = _data(6)
    growth = cnn_depth.ConvDepthGrowth(x, y, (1, 2), channels=2, seed=3, activation="tanh")
    assert all(g is None for g in growth.grams.values())


def test_a_scheme_with_the_same_sds_is_computed_once(monkeypatch):
    calls = []
    inner = cnn.tensors_hessian_norms

    def counting(*args, **kwargs):
        calls.append(1)
        return inner(*args, **kwargs)

    monkeypatch.setattr(cnn, "tensors_hessian_norms", counting)
    x, y = _data(6)  # data of its own: nothing cached yet
    out = cnn.kernel_norms(x, y, ["cnn relu"], ["he", 2.0, 0.5], [0], **SHAPE)
    assert len(calls) == 2  # He's sds are c = 2's
    he, c2 = out[out["init"] == "he"], out[out["init"] == "c=2"]
    np.testing.assert_array_equal(he[["H", "G", "R"]].to_numpy(), c2[["H", "G", "R"]].to_numpy())
    cnn.kernel_norms(x, y[::-1].copy(), ["cnn relu"], ["he"], [0], **SHAPE)
    assert len(calls) == 3  # other labels: computed anew
