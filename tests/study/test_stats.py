"""hessinit.study.stats against closed forms and simulated coverage."""

import math

import numpy as np
import pytest
from scipy import stats as st

from hessinit.study import stats


def test_mean_interval_matches_scipy_t_interval():
    x = np.array([0.3, 0.1, 0.4, 0.15, 0.9])
    low, high = st.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=st.sem(x))
    e = stats.mean_interval(x)
    assert (e.low, e.high) == pytest.approx((low, high), rel=1e-12)
    assert e.n == 5


def test_mean_interval_one_value_is_unbounded_and_empty_raises():
    e = stats.mean_interval([2.0, np.nan])
    assert e.value == 2.0 and e.low == -math.inf and e.high == math.inf
    with pytest.raises(ValueError, match="no finite"):
        stats.mean_interval([np.nan])


def test_paired_difference_uses_the_differences():
    a, b = [1.0, 2.0, 3.0, 5.0], [0.5, 1.8, 2.9, 4.0]
    assert stats.paired_difference(a, b) == stats.mean_interval(np.subtract(a, b))
    with pytest.raises(ValueError, match="equal shapes"):
        stats.paired_difference([1.0], [1.0, 2.0])


def _coverage(draw, truth, trials=400):
    hits = 0
    for k in range(trials):
        e = draw(np.random.default_rng(k))
        hits += e.low <= truth <= e.high
    return hits / trials


def test_mean_interval_reaches_its_level_with_few_seeds():
    cover = _coverage(lambda rng: stats.mean_interval(rng.normal(1.0, 2.0, 4)), 1.0)
    assert 0.92 <= cover <= 0.98  # a normal quantile would give about 0.86 with n = 4


def test_ratio_of_means_covers_the_true_ratio():
    # u = 0.3 v + noise: E u / E v = 0.3 exactly.
    def draw(rng):
        v = rng.exponential(2.0, 50)
        return stats.ratio_of_means(0.3 * v + rng.normal(0, 0.1, 50), v)

    assert 0.91 <= _coverage(draw, 0.3) <= 0.98


def test_ratio_of_means_offsets_and_errors():
    e = stats.ratio_of_means([1.0, 1.0], [1.0, 1.0], offset_u=1.0, offset_v=3.0)
    assert e.value == 0.5
    with pytest.raises(ValueError, match="positive"):
        stats.ratio_of_means([1.0, 2.0], [-1.0, -2.0])
    with pytest.raises(ValueError, match="at least 2"):
        stats.ratio_of_means([1.0], [1.0])


def test_spearman_interval_value_and_clustered_bootstrap():
    rng = np.random.default_rng(0)
    x = np.tile(np.arange(6.0), 8)
    units = np.repeat(np.arange(8), 6)
    y = x + rng.normal(0, 1.0, x.size)
    e = stats.spearman_interval(x, y, units)
    assert e.value == pytest.approx(st.spearmanr(x, y).statistic)
    assert e.low < e.value < e.high and e.n == 8
    noise = stats.spearman_interval(x, rng.normal(size=x.size), units)
    assert noise.low < 0 < noise.high  # no association: the interval contains 0
