"""The chapter computations of hessinit.study (the book's notebooks only call these)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hessinit.book import notebook as book
from hessinit.curvature import reference
from hessinit.study import analysis, claims, experiments, figures


def test_kron_matrix_is_the_kronecker_sum():
    rng = np.random.default_rng(0)
    X, M = rng.standard_normal((3, 2)), rng.standard_normal((3, 4, 4))
    expected = sum(np.kron(np.outer(x, x), m) for x, m in zip(X, M, strict=True)) / 3
    np.testing.assert_allclose(reference.kron_matrix(X, M), expected, rtol=1e-14)


def test_chain_rule_holds_to_round_off_and_relu_has_no_own_block_curvature():
    check = experiments.chain_rule_check(activations=("relu", "tanh"), n=8, widths=(4, 3))
    assert list(check["layer"]) == ["dense1", "dense2", "dense3"] * 2
    assert (check[["err_H", "err_G", "err_R", "err_norm"]] < 1e-10).all().all()
    relu = check[check["activation"] == "relu"]
    assert (relu["R"] <= 1e-12 * relu["H"]).all()
    tanh = check[check["activation"] == "tanh"]
    assert (tanh["R"] > 1e-3 * tanh["H"]).iloc[:2].all()  # hidden layers: f'' != 0


def test_relu_curvature_lives_off_the_diagonal_blocks():
    blocks = experiments.block_norms(activations=("relu",), n=8, widths=(4, 3))
    diag = blocks[blocks["row"] == blocks["col"]]
    off = blocks[blocks["row"] != blocks["col"]]
    assert (diag["R"] <= 1e-12 * diag["H"]).all()
    assert (off["R"] > 1e-3 * off["H"]).all()


def _frame():
    rows = []
    for sd, h in ((1e-5, [3.0, 4.0, 3.5]), (1.0, [0.5, 0.2, 1.0])):
        for step, value in enumerate(h):
            for layer in ("dense1", "dense2"):
                rows.append(
                    {
                        "dataset": "d",
                        "sd": sd,
                        "step": step,
                        "layer": layer,
                        "loss": 2.3 - 0.1 * step,
                        "H": value,
                        "G": value,
                        "R": 0.0,
                    }
                )
    return pd.DataFrame(rows)


def test_dense1_course_and_the_verdict_use_the_numbers():
    course = analysis.dense1_course(_frame())
    big = course.set_index("sd").loc[1.0]
    assert (big["H_init"], big["H_end"], big["H_min"], big["H_max"]) == (0.5, 1.0, 0.2, 1.0)
    assert big["loss_init"] == pytest.approx(2.3)
    verdict = claims.explode_verdict(course)
    assert verdict.startswith("This run does not agree") and "0.2 to 1" in verdict


def test_sweep_summary_and_slopes():
    sds = np.logspace(-5, -2, 4)
    frame = pd.DataFrame(
        [
            {
                "dataset": "d",
                "sd": sd,
                "step": step,
                "layer": layer,
                "H": c * sd**p * (1 + step),
                "G": 1.0,
                "R": 0.0,
                "p_max": 0.1,
            }
            for sd in sds
            for step in (0, 5)
            for layer, c, p in (("dense1", 3.0, 0), ("dense2", 1.0, 2))
        ]
    )
    summary = analysis.sweep_summary(frame)
    assert len(summary) == 8
    np.testing.assert_allclose(summary["H_end"], 6 * summary["H_init"])
    slopes = analysis.loglog_slopes(summary).set_index("layer")["slope"]
    assert slopes["dense1"] == pytest.approx(0, abs=1e-9)
    assert slopes["dense2"] == pytest.approx(2)
    figures.plot_sweep(summary)


def test_write_table_is_atomic_and_read_back(tmp_path):
    frame = pd.DataFrame({"a": [1, 2]})
    path = book.write_table(frame, tmp_path / "sub" / "t.csv")
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]
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
    figures.plot_benchmark(_norms())


def test_benchmark_results_are_committed_and_exact():
    from pathlib import Path

    norms, tracking = analysis.read_benchmark(Path(__file__).parents[1] / "benchmarks/results")
    summary = analysis.benchmark_summary(norms)
    assert len(summary) >= 2 and (summary["max_rel_diff"] < 1e-6).all()
    assert {"tracking_kronecker", "tracking_materializing"} <= set(tracking["method"])
