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
