"""Tests of the follow-up analyses chapter against materialized Hessians on tiny networks."""

import numpy as np
import pandas as pd
import pytest

from hessinit import train
from hessinit.chapters import followups
from hessinit.curvature import full_gauss_newton, full_hessian
from hessinit.data import Dataset
from hessinit.nn import mlp


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return Dataset(rng.random((n, 2, 2), np.float32), rng.integers(0, 3, n), "tiny", 3, (2, 2),
                   "random")  # fmt: skip


def _model(data, weights):
    model = mlp(data.x.shape[1:], data.num_classes, (3,), sd=1.0, dtype="float64")
    model.set_weights([np.asarray(t, np.float64) for pair in weights for t in pair])
    return model


def test_checkpoints_train_like_train_run():
    data = _data()
    cps, batches = followups.train_checkpoints(
        data, [(0.7, 3, 0.2)], widths=(3,), steps=6, every=3, batch_size=4, hessian_batch=8
    )
    assert [c["step"] for c in cps] == [0, 3, 6]
    ref = train.run(data, 0.7, widths=(3,), steps=6, lr=0.2, batch_size=4, hessian_every=3,
                    hessian_batch=8, seed=3, progress=False)  # fmt: skip
    ref = ref.dropna(subset=["H"]).groupby("step")["hessian_loss"].first()
    x, y = data.x[batches[0]].astype(np.float64), data.y[batches[0]]
    for c in cps:
        z = _model(data, c["weights"])(x).numpy()
        loss = np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y])
        assert loss == pytest.approx(ref.loc[c["step"]], rel=1e-5)


def test_full_batch_is_gradient_descent_on_the_hessian_batch():
    data = _data()
    cps, batches = followups.train_checkpoints(
        data, [(1.0, 0, 0.5)], widths=(3,), steps=5, every=5, hessian_batch=6, full_batch=True
    )
    x, y = data.x[batches[0]].astype(np.float64), data.y[batches[0]]
    losses = []
    for c in cps:
        z = _model(data, c["weights"])(x).numpy()
        losses.append(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y]))
    assert losses[1] < losses[0]  # small steps of GD on this loss descend


def test_residual_weight_against_its_definition():
    rng = np.random.default_rng(1)
    z, y = rng.normal(size=(5, 4)) * 3, rng.integers(0, 4, 5)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    expected = np.mean([np.linalg.norm(p[i] - np.eye(4)[y[i]]) for i in range(5)])
    assert followups.residual_weight(z, y) == pytest.approx(expected, rel=1e-12)


def test_network_split_against_materialized_hessian():
    data = _data()
    cps, batches = followups.train_checkpoints(
        data, [(1.0, 0, 0.3)], widths=(3,), steps=4, every=4, batch_size=4, hessian_batch=10
    )
    params = 4 * 3 + 3 + 3 * 3 + 3
    split = followups.network_split(data, cps, batches, widths=(3,), probes=2, deflate=params)
    assert len(split) == 2
    x, y = data.x[batches[0]].astype(np.float64), data.y[batches[0]]
    for c, row in zip(cps, split.itertuples(), strict=True):
        model = _model(data, c["weights"])
        H = full_hessian(model, x, y)
        G = full_gauss_newton(model, x, y)
        assert row.H == pytest.approx(np.linalg.norm(H), rel=1e-6)
        assert row.G == pytest.approx(np.linalg.norm(G), rel=1e-6)
        assert row.R == pytest.approx(np.linalg.norm(H - G), rel=1e-6)
        assert row.R > 1e-3  # cross-layer blocks: R != 0 for ReLU over the whole network


def test_sharpness_against_eigvalsh():
    data = _data()
    cps, batches = followups.train_checkpoints(
        data, [(1.0, 0, 1.0), (0.5, 1, 3.0)], widths=(3,), steps=3, every=3, hessian_batch=12,
        full_batch=True,
    )  # fmt: skip
    frame = followups.sharpness(data, cps, batches, widths=(3,))
    for c, row in zip(cps, frame.itertuples(), strict=True):
        x, y = data.x[batches[c["run"]]].astype(np.float64), data.y[batches[c["run"]]]
        top = np.linalg.eigvalsh(full_hessian(_model(data, c["weights"]), x, y)).max()
        assert row.lambda_max == pytest.approx(top, rel=1e-6)
        assert row.threshold == pytest.approx(2.0 / c["lr"])
        assert row.ratio == pytest.approx(top * c["lr"] / 2.0, rel=1e-6)


def test_sharpness_marks_a_diverged_run():
    data = _data()
    cps, batches = followups.train_checkpoints(
        data, [(1.0, 0, 1e30)], widths=(3,), steps=4, every=2, hessian_batch=12, full_batch=True
    )
    frame = followups.sharpness(data, cps, batches, widths=(3,))
    assert frame["diverged"].iloc[-1] and not frame["diverged"].iloc[0]
    assert followups.sharpness_summary(frame)["diverged"].iloc[0] == 1


def test_batch_size_norms_full_batch_against_materialized_block():
    data = _data(n=10)
    frame = followups.batch_size_norms(data, [0.8], [2], [10], widths=(3,))
    model = mlp(data.x.shape[1:], 3, (3,), sd=(0.8, None), seed=2, dtype="float64")
    H = full_hessian(model, data.x.astype(np.float64), data.y)
    k1 = 4 * 3  # dense1's kernel comes first, then its bias, dense2's kernel, its bias
    k2 = slice(k1 + 3, k1 + 3 + 9)
    got = frame.set_index("layer")["H"]
    assert got["dense1"] == pytest.approx(np.linalg.norm(H[:k1, :k1]), rel=1e-6)
    assert got["dense2"] == pytest.approx(np.linalg.norm(H[k2, k2]), rel=1e-6)


def test_batch_size_error_converges_monotonically_to_the_full_batch():
    data = _data(n=24)
    frame = followups.batch_size_norms(data, [1.0], [0, 1], [3, 6, 12, 24], draws=30, widths=(3,))
    summary = followups.batch_size_summary(frame)
    for _, g in summary.groupby("layer"):
        err = g.sort_values("batch")["error"].to_numpy()
        assert np.all(np.diff(err) < 0) and err[-1] == 0.0
        assert g["seed_spread"].notna().all()


def test_batch_size_summary_reads_the_chosen_seed():
    f = pd.DataFrame({"sd": 1.0, "seed": [0, 1, 0, 1], "batch": [2, 2, 4, 4], "draw": 0,
                      "layer": "dense1", "H": [3.0, 5.0, 2.0, 4.0]})  # fmt: skip
    s = followups.batch_size_summary(f, seed=1).set_index("batch")
    assert s.loc[2, "error"] == pytest.approx(0.25)
    assert s.loc[4, "seed_spread"] == pytest.approx(np.std([2.0, 4.0], ddof=1) / 3.0)


def test_sharpness_findings_pick_the_extreme_sds_and_steps():
    # Two sds x two step sizes, three checkpoints each; ratio = lambda_max * lr / 2 by hand.
    rows = []
    lams = {(0.01, 0.1): [1.0, 2.0, 3.0], (0.01, 1.0): [4.0, 1.0, 0.5],
            (1.0, 0.1): [30.0, 10.0, 20.0], (1.0, 1.0): [8.0, 1.0, 2.2]}  # fmt: skip
    for (sd, lr), values in lams.items():
        for step, lam in zip([0, 5, 10], values, strict=True):
            loss = 2.3 - step / 10 * lr
            rows.append({"sd": sd, "seed": 0, "lr": lr, "step": step, "threshold": 2.0 / lr,
                         "lambda_max": lam, "loss": loss, "diverged": False})  # fmt: skip
    f = pd.DataFrame(rows)
    f["ratio"] = f.lambda_max / f.threshold
    found = followups.sharpness_findings(f, followups.sharpness_summary(f))
    assert found["b_small_start"] == pytest.approx((1.0 + 4.0) / 2)
    assert found["b_big_start"] == pytest.approx((30.0 + 8.0) / 2)
    assert (found["b_big_start_min"], found["b_big_start_max"]) == pytest.approx((1.5, 4.0))
    assert (found["b_big_next_min"], found["b_big_next_max"]) == pytest.approx((0.5, 0.5))
    assert (found["b_big_final_min"], found["b_big_final_max"]) == pytest.approx((1.0, 1.1))
    assert found["b_big_top_loss"] == pytest.approx(1.3)
    assert found["b_small_low_growth"] == pytest.approx(3.0)
    assert found["b_small_low_peak"] == pytest.approx(0.15)
    assert found["b_small_top_start"] == pytest.approx(2.0)
    assert found["b_small_top_final"] == pytest.approx(0.25)
    assert found["b_diverged"] == 0


def test_batch_findings_without_small_sds_leave_their_error_undefined():
    digits = pd.DataFrame({"sd": 1.0, "layer": "dense1", "batch": [64, 1000, 5000],
                           "mean": [3.0, 2.1, 2.0], "full": 2.0, "error": [0.6, 0.05, 0.0],
                           "seed_spread": [0.2, 0.2, 0.2]})  # fmt: skip
    found = followups.batch_findings(digits, [64, 1000, 5000])
    assert (found["c_mid"], found["c_small"], found["c_full"]) == (1000, 64, 5000)
    assert found["c_err_mid"] == pytest.approx(0.05)
    assert np.isnan(found["c_err_mid_small"])
    assert found["c_bias_small"] == pytest.approx(1.5)
