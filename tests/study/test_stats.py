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


def test_spearman_interval_is_the_t_interval_of_per_seed_rhos():
    rng = np.random.default_rng(0)
    x = np.tile(np.arange(6.0), 8)
    units = np.repeat(np.arange(8), 6)
    y = x + rng.normal(0, 1.0, x.size)
    e = stats.spearman_interval(x, y, units)
    per_seed = [st.spearmanr(x[units == g], y[units == g]).statistic for g in range(8)]
    low, high = st.t.interval(0.95, 7, loc=np.mean(per_seed), scale=st.sem(per_seed))
    assert e.value == pytest.approx(np.mean(per_seed))
    assert (e.low, min(e.high, 1.0)) == pytest.approx((low, min(high, 1.0)))
    assert e.n == 8
    noise = stats.spearman_interval(x, rng.normal(size=x.size), units)
    assert noise.low < 0 < noise.high  # no association: the interval contains 0


def test_spearman_interval_ignores_a_shared_seed_effect_and_handles_ties_and_nan():
    x = np.tile([1.0, 2.0, 2.0, 3.0], 3)
    units = np.repeat([7, 8, 9], 4)
    y = x + np.repeat([0.0, 100.0, -50.0], 4) + np.tile([0.0, 0.1, -0.1, 0.0], 3)
    e = stats.spearman_interval(x, y, units)
    ref = st.spearmanr(x[:4], y[:4]).statistic  # the same within every seed
    assert e.value == pytest.approx(ref) and e.low == pytest.approx(ref) and e.n == 3
    # a seed with a constant outcome or too few finite rows has no rank correlation
    y2 = y.copy()
    y2[4:8] = 1.0
    y2[9:] = np.nan
    one = stats.spearman_interval(x, y2, units)
    assert one.n == 1 and (one.low, one.high) == (-1.0, 1.0)
    with pytest.raises(ValueError, match="one entry per row"):
        stats.spearman_interval([1, 2, 3], [1, 2], [0, 0, 0])
    with pytest.raises(ValueError, match="no unit"):
        stats.spearman_interval([1, 2, 3, 4], [1, 2, 3, 4], [0, 0, 1, 1])


def test_spearman_leave_one_out_drops_each_setting_in_turn():
    rng = np.random.default_rng(1)
    settings = np.tile(list("abcdef"), 4)
    units = np.repeat(np.arange(4), 6)
    x = rng.normal(size=24)
    y = x + rng.normal(0, 0.5, 24)
    loo = stats.spearman_leave_one_out(x, y, units, settings)
    assert list(loo) == list("abcdef")
    for s, e in loo.items():
        keep = settings != s
        assert e == stats.spearman_interval(x[keep], y[keep], units[keep])


def test_spearman_gap_pairs_the_seeds_and_orients_by_the_mean_sign():
    rng = np.random.default_rng(2)
    units = np.repeat(np.arange(5), 8)
    y = rng.normal(size=40)
    a = -y + rng.normal(0, 0.3, 40)  # a strong negative association
    b = y + rng.normal(0, 2.0, 40)  # a weak positive one
    e = stats.spearman_gap(a, b, y, units)
    ra = [st.spearmanr(a[units == g], y[units == g]).statistic for g in range(5)]
    rb = [st.spearmanr(b[units == g], y[units == g]).statistic for g in range(5)]
    d = -np.asarray(ra) - np.asarray(rb)
    low, high = st.t.interval(0.95, 4, loc=d.mean(), scale=st.sem(d))
    assert e.value == pytest.approx(abs(np.mean(ra)) - abs(np.mean(rb)))
    assert (e.low, e.high) == pytest.approx((low, high)) and e.n == 5


def test_tost_matches_the_two_one_sided_t_tests():
    x = np.array([0.3, -0.1, 0.2, 0.05, 0.15, -0.05])
    margin = 0.4
    p_low = st.ttest_1samp(x, -margin, alternative="greater").pvalue
    p_high = st.ttest_1samp(x, margin, alternative="less").pvalue
    e = stats.tost(x, margin)
    assert e.p == pytest.approx(max(p_low, p_high))
    assert e.equivalent == (max(p_low, p_high) < 0.05)
    ci = st.t.interval(0.90, x.size - 1, loc=x.mean(), scale=st.sem(x))
    assert (e.low, e.high) == pytest.approx(ci)
    assert e.equivalent == (-margin < e.low and e.high < margin)
    # a wide interval around 0 is not equivalence
    assert not stats.tost([1.0, -1.0, 0.5, -0.5], margin).equivalent
    assert stats.tost([0.1, 0.1, 0.1], margin).equivalent  # no spread, inside the margin
    with pytest.raises(ValueError, match="margin"):
        stats.tost(x, 0.0)
    with pytest.raises(ValueError, match="at least 2"):
        stats.tost([1.0, np.nan], 1.0)
