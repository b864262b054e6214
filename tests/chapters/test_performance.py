"""The performance chapter (hessinit.chapters.performance): the benchmark summary and the committed
results.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from hessinit.chapters import performance


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
    summary = performance.benchmark_summary(_norms()).set_index("B")
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
    norms, tracking = performance.read_benchmark(root / "benchmarks/results")
    summary = performance.benchmark_summary(norms)
    assert len(summary) >= 2 and (summary["max_rel_diff"] < 1e-6).all()
    assert {"tracking_kronecker", "tracking_materializing"} <= set(tracking["method"])


def test_aim_and_target_words_flip_at_the_limit():
    assert performance.aim_word(True) == "meets"
    assert performance.aim_word(False) == "falls short of"
    assert performance.target_word(29.9, 30) == "within"
    assert performance.target_word(30.0, 30) == "above"


def test_cnn_summary_counts_covering_intervals_and_skips():
    cnn = pd.DataFrame({
        "model": ["small_resnet", "small_resnet", "small_resnet_bn", "small_resnet",
                  "small_resnet"],
        "tensor": ["a", "b", "c", "a", "b"],
        "method": ["exact", "exact", "exact", "hutchinson", "hutchinson"],
        "status": ["ok", "ok", "skipped", "ok", "ok"],
        "seconds": [20.0, 15.0, None, 1.0, 1.0], "H": [2.0, 3.0, None, 2.0, 3.0],
        "H_low": [None, None, None, 1.0, 2.5], "H_high": [None, None, None, 3.0, 3.5],
        "rel_diff": None, "load": [1.0, 3.0, 1.0, 1.0, 1.0], "note": "4 probes",
    })  # fmt: skip
    s = performance.cnn_summary(cnn)
    assert s["cnn_plain_s"] == 35.0 and s["cnn_target"] == "above"
    assert (s["cnn_hut_n"], s["cnn_hut_cover"]) == (2, 2)
    assert (s["cnn_skipped"], s["cnn_bn_skipped"]) == (1, 1)
    assert math.isnan(s["cnn_small_s"]) and math.isnan(s["cnn_mat_rel"])
    assert performance.cnn_summary(cnn.assign(H_high=1.5))["cnn_hut_cover"] == 0
