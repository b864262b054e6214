"""The sd sweep chapter (hessinit.chapters.sd_sweep): tables read back, summaries, slopes and the
figure.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from hessinit.chapters import performance, sd_sweep  # noqa: E402


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
    summary = sd_sweep.sweep_summary(frame)
    assert len(summary) == 8
    np.testing.assert_allclose(summary["H_end"], 6 * summary["H_init"])
    slopes = sd_sweep.loglog_slopes(summary).set_index("layer")["slope"]
    assert slopes["dense1"] == pytest.approx(0, abs=1e-9)
    assert slopes["dense2"] == pytest.approx(2)


def test_read_tables(tmp_path):
    frame = pd.DataFrame({"a": [1, 2]})
    (tmp_path / "sub").mkdir()
    frame.to_csv(tmp_path / "sub" / "t.csv", index=False)
    pd.testing.assert_frame_equal(sd_sweep.read_tables(["sub/t.csv"], base=tmp_path), frame)
    with pytest.raises(ValueError, match="no run"):
        sd_sweep.read_tables([])


def _lines(fig):
    return [line for ax in fig.axes for line in ax.get_lines()]


def test_sweep_and_benchmark():
    summary = pd.DataFrame({"dataset": "d", "sd": [0.01, 1.0] * 2, "layer": ["dense1"] * 2 +
                            ["dense2"] * 2, "H_init": [1.0, 0.5, 1e-4, 1.0],
                            "p_max": [0.1, 0.9] * 2})  # fmt: skip
    assert len(_lines(sd_sweep.plot_sweep(summary))) == 3  # two layers, one saturation curve
    norms = pd.DataFrame({"method": ["kronecker", "kronecker", "batched_hvp"], "B": [64, 128, 64],
                          "seconds": [0.1, 0.2, 2.0], "status": "ok"})  # fmt: skip
    assert len(_lines(performance.plot_benchmark(norms))) == 2
    plt.close("all")


def test_sd_run_tables_trains_each_sd_and_writes_its_table(tmp_path):
    from tests.conftest import equal_to_run, random_images

    images = random_images(32, (4, 4), 3, seed=0)
    written = {}

    def write(frame, path):
        written[path] = frame
        return tmp_path / path

    settings = dict(steps=2, batch_size=4, hessian_every=1, hessian_batch=8, seed=0)
    paths = sd_sweep.sd_run_tables(images, [0.01, 1.0], write, progress=False, **settings)
    assert paths == [str(tmp_path / "sd_run-0.01.csv"), str(tmp_path / "sd_run-1.csv")]
    assert sorted(written["sd_run-1.csv"]["sd"].unique()) == [1.0]
    assert sorted(written["sd_run-0.01.csv"]["sd"].unique()) == [0.01]
    assert written["sd_run-0.01.csv"]["step"].max() == 2  # steps 0, 1, 2
    from hessinit import train

    # the second table is train.run's, trained alone (every run of the stacked trainer with its
    # Taylor columns against train.run: tests/test_stacked.py)
    ref = train.run(images, 1.0, progress=False, **settings)
    equal_to_run(written["sd_run-1.csv"], ref)
