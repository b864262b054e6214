"""The claim chapters' grids and interval ratios (hessinit.study)."""

import pandas as pd
import pytest
from conftest import random_images

from hessinit import init, train
from hessinit.study import analysis, experiments


@pytest.fixture(scope="module")
def tiny():
    return random_images(24, (3, 3), 3, seed=11)


def test_whole_network_ratios_take_the_conservative_interval():
    def rows(activation, sd, h, r):
        return [{"activation": activation, "sd": sd, "term": t, "value": v, "low": lo, "high": hi}
                for t, (v, lo, hi) in (("H", h), ("G", h), ("R", r))]  # fmt: skip

    frame = pd.DataFrame(
        rows("relu", 0.1, (10.0, 8.0, 12.0), (1.0, 0.5, 2.0))  # R/H in [0.5/12, 2/8]
        + rows("tanh", 0.1, (4.0, 2.0, 5.0), (2.0, 1.0, 3.0))  # [0.2, 1.5]: straddles 0.5
        + rows("tanh", 1.0, (4.0, 3.0, 5.0), (4.0, 3.0, 5.0))  # [0.6, 5/3]: above 0.5
    )
    out = analysis.whole_network_ratios(frame, threshold=0.5)
    assert list(zip(out["activation"], out["sd"], strict=True)) == [
        ("relu", 0.1), ("tanh", 0.1), ("tanh", 1.0)
    ]  # fmt: skip
    assert out["R_over_H"].tolist() == pytest.approx([0.1, 0.5, 1.0])
    assert out["low"].tolist() == pytest.approx([0.5 / 12, 0.2, 0.6])
    assert out["high"].tolist() == pytest.approx([0.25, 1.5, 5 / 3])
    assert out["ok"].tolist() == [True, None, False]


def test_schedule_runs_stack_the_single_runs(tiny):
    kwargs = dict(widths=(4, 3), steps=3, batch_size=8, hessian_every=1, hessian_batch=12,
                  layers=["dense1"], progress=False)  # fmt: skip
    schedules = {"lr=0.05": 0.05, "1 gamma*": ("taylor", 1.0)}
    runs = experiments.schedule_runs(tiny, schedules, [0.1, 1.0], [0, 1], **kwargs)
    assert set(runs["schedule"]) == set(schedules)
    assert len(runs) == 2 * 2 * 2 * (3 + 1)  # schedules x sds x seeds x (steps + 1), one layer
    one = train.run(tiny, 1.0, lr=("taylor", 1.0), seed=1, **kwargs)
    got = runs.query("schedule == '1 gamma*' and sd == 1.0 and seed == 1")
    pd.testing.assert_frame_equal(
        got.drop(columns="schedule").reset_index(drop=True), one, check_exact=False, rtol=1e-6
    )


def test_scheme_profiles_use_each_activations_batch(tiny):
    settings = [("relu", 0.0, [1.0, "he"]), ("tanh", 0.0, [1.0])]
    batches = {"relu": 16, "tanh": 10}
    out = experiments.scheme_profiles(tiny.x, tiny.y, settings, [1, 2], 4, batches, num_classes=3)
    expected = pd.concat(
        [init.profile_schemes(tiny.x[:batches[a]], tiny.y[:batches[a]], schemes, [a],
                              widths=(4,) * depth, dropout=rate, seed=0, num_classes=3)
         for a, rate, schemes in settings for depth in (1, 2)],
        ignore_index=True,
    )  # fmt: skip
    pd.testing.assert_frame_equal(out, expected)
