"""hessinit.study.analysis on small synthetic frames (pure pandas)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hessinit.study import analysis


def test_analysis_needs_neither_tensorflow_nor_matplotlib():
    code = (
        "import sys; import hessinit.study.analysis, hessinit.study.claims; "
        "assert 'tensorflow' not in sys.modules and 'matplotlib' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _frame():
    rows = []
    for sd, h in ((1e-5, [3.0, 4.0, 3.5]), (1.0, [0.5, 0.2, 1.0])):
        for step, value in enumerate(h):
            for layer in ("dense1", "dense2"):
                rows.append({"dataset": "d", "sd": sd, "step": step, "layer": layer,
                             "loss": 2.3 - 0.1 * step, "H": value, "G": value,
                             "R": 0.0})  # fmt: skip
    return pd.DataFrame(rows)


def test_dense1_course_uses_the_numbers():
    course = analysis.dense1_course(_frame())
    big = course.set_index("sd").loc[1.0]
    assert (big["H_init"], big["H_end"], big["H_min"], big["H_max"]) == (0.5, 1.0, 0.2, 1.0)
    assert big["loss_init"] == pytest.approx(2.3)
    assert big["loss_end"] == pytest.approx(2.1)  # the last 10% of 3 steps: one step


def test_sweep_summary_and_slopes():
    sds = np.logspace(-5, -2, 4)
    frame = pd.DataFrame(
        [
            {"dataset": "d", "sd": sd, "step": step, "layer": layer, "H": c * sd**p * (1 + step),
             "G": 1.0, "R": 0.0, "p_max": 0.1}
            for sd in sds
            for step in (0, 5)
            for layer, c, p in (("dense1", 3.0, 0), ("dense2", 1.0, 2))
        ]
    )  # fmt: skip
    summary = analysis.sweep_summary(frame)
    assert len(summary) == 8
    np.testing.assert_allclose(summary["H_end"], 6 * summary["H_init"])
    slopes = analysis.loglog_slopes(summary).set_index("layer")["slope"]
    assert slopes["dense1"] == pytest.approx(0, abs=1e-9)
    assert slopes["dense2"] == pytest.approx(2)


def test_read_tables(tmp_path):
    frame = pd.DataFrame({"a": [1, 2]})
    (tmp_path / "sub").mkdir()
    frame.to_csv(tmp_path / "sub" / "t.csv", index=False)
    pd.testing.assert_frame_equal(analysis.read_tables(["sub/t.csv"], base=tmp_path), frame)
    with pytest.raises(ValueError, match="no run"):
        analysis.read_tables([])


def _norms():
    rows = [
        ("baseline", 0, None, "ok", 1000.0, None),
        ("kronecker", 64, 0.001, "ok", 990.0, 0.0),
        ("chunked_jacobian", 64, 2.0, "ok", 1200.0, 5e-9),
        ("batched_hvp", 64, 3.0, "ok", 1100.0, -7e-9),
        ("tf_hessians", 64, 5.0, "ok", 9000.0, 4e-9),
        ("hutchinson", 64, 0.5, "ok", 1000.0, 0.03),
        ("kronecker", 1024, 0.02, "ok", 1000.0, 0.0),
        ("kronecker_float32", 1024, 0.01, "ok", 1000.0, -3e-8),
        ("tf_hessians", 1024, None, "skipped", None, None),
        ("batched_hvp", 1024, 8.0, "ok", 1800.0, 2e-9),
    ]
    return pd.DataFrame(rows, columns=["method", "B", "seconds", "status", "peak_mb", "rel_diff"])


def test_benchmark_summary_takes_the_fastest_materializing_method_that_ran():
    summary = analysis.benchmark_summary(_norms()).set_index("B")
    assert summary.loc[64, "fastest"] == "chunked_jacobian"  # hutchinson is not materializing
    assert summary.loc[64, "speedup"] == pytest.approx(2000)
    assert summary.loc[64, "max_rel_diff"] == pytest.approx(7e-9)
    assert summary.loc[64, "kronecker_peak_over_baseline_mb"] == pytest.approx(-10)
    assert summary.loc[64, "fastest_peak_over_baseline_mb"] == pytest.approx(200)
    assert summary.loc[1024, "fastest"] == "batched_hvp"  # the skipped one is ignored
    assert summary.loc[1024, "speedup"] == pytest.approx(400)
    assert summary.loc[1024, "speedup_float32"] == pytest.approx(800)
    assert summary.loc[1024, "float32_rel_diff"] == pytest.approx(3e-8)
    assert math.isnan(summary.loc[64, "speedup_float32"])  # not measured at B = 64


def test_benchmark_results_are_committed_and_exact():
    root = Path(__file__).parents[2]
    norms, tracking = analysis.read_benchmark(root / "benchmarks/results")
    summary = analysis.benchmark_summary(norms)
    assert len(summary) >= 2 and (summary["max_rel_diff"] < 1e-6).all()
    assert {"tracking_kronecker", "tracking_materializing"} <= set(tracking["method"])


def test_worst_layer_and_ratio_change():
    frame = pd.DataFrame({
        "activation": ["tanh"] * 6 + ["relu"] * 6,
        "step": [0, 0, 5, 5, 9, 9] * 2,
        "layer": ["d1", "d2"] * 6,
        "H": [1.0, 1.0, None, None, 1.0, 1.0] * 2,
        "hessian_loss": [2.3, 2.3, None, None, 0.7, 0.7, 2.3, 2.3, None, None, 0.4, 0.4],
        "R_over_H": [0.3, 0.5, None, None, 0.2, 0.1, 0.0, 0.0, None, None, 0.0, 0.0],
    })  # fmt: skip
    worst = analysis.worst_layer(frame[frame["step"] == 0], ["activation"])
    assert worst.values.tolist() == [["tanh", 0.5, "d2"], ["relu", 0.0, "d1"]]
    change = analysis.ratio_change(frame)
    assert list(change.index) == ["tanh", "relu"]
    assert change.loc["tanh"].tolist() == [0.5, 0.2, 0.7]
    assert change.loc["relu", "loss_end"] == 0.4


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
    out = analysis.whole_network_ratios(frame)
    assert list(out.columns) == ["activation", "sd", "R_over_H", "low", "high", "G_over_H",
                                 "G_low", "G_high", "probes"]  # fmt: skip
    assert out.values.tolist() == [
        ["relu", 0.1, 0.5, 0.45, 0.55, 0.8, 0.7, 0.9, 20],
        ["tanh", 1.0, 0.2, 0.1, 0.3, 1.1, 1.0, 1.2, 20],
    ]


def test_depth_growth_and_the_most_stable_variance():
    rows = []
    for scheme, g in (("c=1", 0.5), ("c=2", 1.05), ("he", 1.0), ("c=4", 2.0)):
        for depth in (2, 3, 4):
            rows += [{"activation": "relu", "dropout": 0.0, "scheme": scheme, "depth": depth,
                      "layer": k + 1, "H_norm": g**depth} for k in range(depth)]  # fmt: skip
    growth = analysis.depth_growth(pd.DataFrame(rows))
    assert growth.set_index("scheme")["factor"].to_dict() == pytest.approx(
        {"c=1": 0.5, "c=2": 1.05, "he": 1.0, "c=4": 2.0}
    )
    assert (growth["spread"] == 1.0).all()  # every layer of a network at the same level
    assert analysis.most_stable(growth)["scheme"].item() == "he"
    best = analysis.stable_variance(growth)  # among the numeric schemes only
    assert best[["scheme", "c"]].values.tolist() == [["c=2", 2.0]]


def test_paired_wins_and_final_scores():
    frame = pd.DataFrame({
        "step": [0] * 4 + [9] * 4,
        "seed": [0, 0, 1, 1] * 2,
        "init": ["he", "hessian"] * 4,
        "test_loss": [2.3] * 4 + [0.5, 0.4, 0.6, 0.3],
        "test_accuracy": [0.1] * 4 + [0.8, 0.9, 0.7, 0.75],
    })  # fmt: skip
    wins = analysis.paired_wins(frame)
    assert wins["rival"].tolist() == ["he"]
    assert wins["mean_diff"].item() == pytest.approx(0.075)
    assert wins["min_diff"].item() == pytest.approx(0.05)
    assert wins["wins_every_seed"].item() is True
    scores = analysis.final_scores(frame)
    assert scores.loc["hessian", ("test_accuracy", "mean")] == pytest.approx(0.825)
    assert scores.loc["he", ("test_loss", "std")] == pytest.approx(np.std([0.5, 0.6], ddof=1))


def test_taylor_checkpoints_accuracy_and_final_losses():
    frame = pd.DataFrame({
        "schedule": ["a"] * 4 + ["b"] * 4,
        "sd": [0.1] * 8,
        "seed": 0,
        "step": [0, 0, 5, 5] * 2,
        "layer": ["d1", "d2"] * 4,
        "gamma_star": 1.0,
        "predicted": [1.0, 1.0, 2.0, 2.0] * 2,
        "realised": [1.1, 1.1, 1.0, 1.0] * 2,
        "predicted_star": 1.0,
        "realised_star": [1.0, 1.0, None, None] * 2,
        "hessian_loss": [2.0, 2.0, 0.5, 0.5, 2.0, 2.0, 0.25, 0.25],
    })  # fmt: skip
    cp = analysis.taylor_checkpoints(frame)
    assert len(cp) == 4  # one row per run and checkpoint
    assert cp["ratio_lr"].tolist() == pytest.approx([1.1, 0.5] * 2)
    acc = analysis.taylor_accuracy(cp, rel_tol=0.25, schedule="a")
    assert acc.values.tolist() == [[0.1, 0.5, 0.5]]  # the missing ratio counts as a miss
    assert analysis.taylor_accuracy(cp, rel_tol=0.6)["acc_lr"].item() == 1.0
    final = analysis.final_losses(cp)
    assert final.index.names == ["sd", "seed"]
    assert final.values.tolist() == [[0.5, 0.25]]
