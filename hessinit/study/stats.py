"""Intervals for the book's verdicts: means over seeds, paired differences, ratios and ranks.

Every verdict of the claims ledger rests on an estimate with a 95% interval. The intervals here
are the textbook ones, each stated where it is used:

- a mean over n independent seeds: x̄ ± t_{n-1} s / sqrt(n) (Student t, not the normal quantile,
  because n is small);
- a paired difference a_k - b_k over the same seeds: the t-interval of the differences;
- a ratio of two means estimated from the same samples, m_u / m_v: the delta method,
  Var(u - r v) / (n m_v^2) with r = m_u / m_v, and a t-quantile (one interval at its stated level
  for the ratio itself, unlike the product of two separate intervals);
- a Spearman rank correlation over settings run with several seeds: rho within each seed, and
  the t-interval of those per-seed values over the seeds (and the paired t-interval of the
  per-seed difference of two predictors' abs(rho));
- equivalence ("no difference larger than a stated margin"): two one-sided t tests (TOST).

Every interval reaches its nominal coverage in a simulation at the number of seeds the book
uses (``tests/study/test_stats_coverage.py``).

Imports: numpy and scipy only.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval [low, high] at ``level`` from ``n`` units.

    Attributes:
        value: the point estimate.
        low: lower end of the interval.
        high: upper end of the interval.
        n: number of independent units (seeds, probes) behind it.
        level: the interval's nominal coverage.
    """

    value: float
    low: float
    high: float
    n: int
    level: float = 0.95


@functools.lru_cache(maxsize=256)
def _t(level: float, dof: int) -> float:
    """The two-sided Student-t quantile t_{dof, (1 + level) / 2}."""
    return float(_st.t.ppf(0.5 + level / 2, dof))


def mean_interval(values, level: float = 0.95) -> Estimate:
    """Mean of independent values with its Student-t interval, x̄ ± t_{n-1} s / sqrt(n).

    Args:
        values: one number per independent unit (e.g. per seed); NaNs are dropped.
        level: nominal coverage of the interval.

    Returns:
        An :class:`Estimate`; with a single value the interval is (-inf, inf): one seed cannot
        bound a mean.

    Raises:
        ValueError: no finite value.

    >>> e = mean_interval([1.0, 2.0, 3.0])
    >>> e.value, round(e.low, 3), round(e.high, 3)
    (2.0, -0.484, 4.484)
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError("no finite value to average")
    mean = float(x.mean())
    if x.size == 1:
        return Estimate(mean, -math.inf, math.inf, 1, level)
    half = _t(level, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return Estimate(mean, mean - half, mean + half, int(x.size), level)


def paired_difference(a, b, level: float = 0.95) -> Estimate:
    """Mean of the paired differences a_k - b_k (same seeds) with its t-interval.

    Args:
        a: values of the challenger, one per unit.
        b: values of the rival on the same units, in the same order.
        level: nominal coverage.

    Returns:
        :func:`mean_interval` of ``a - b``.

    Raises:
        ValueError: ``a`` and ``b`` differ in length.

    >>> e = paired_difference([0.91, 0.92, 0.93], [0.90, 0.90, 0.90])
    >>> round(e.value, 3), round(e.low, 4), round(e.high, 4)  # 3 seeds: 0 is not excluded
    (0.02, -0.0048, 0.0448)
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal shapes, got {a.shape} and {b.shape}")
    return mean_interval(a - b, level)


def ratio_of_means(u, v, offset_u: float = 0.0, offset_v: float = 0.0, level: float = 0.95):
    """(c_u + mean u) / (c_v + mean v) from paired samples, with a delta-method t-interval.

    With r the ratio and d_k = u_k - r v_k, the estimator's standard error is
    s_d / (sqrt(n) (c_v + mean v)); the interval is r ± t_{n-1} times that. Paired samples
    (u_k, v_k from the same probe or seed) keep their covariance, so the stated level is the
    ratio's own, not that of two intervals combined.

    Args:
        u: numerator samples, one per unit.
        v: denominator samples, paired with ``u``.
        offset_u: exact part added to the numerator's mean (e.g. a deflated subspace).
        offset_v: exact part added to the denominator's mean.
        level: nominal coverage.

    Returns:
        An :class:`Estimate` of the ratio.

    Raises:
        ValueError: fewer than 2 pairs, or a non-positive denominator.

    >>> e = ratio_of_means([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])  # u = v / 2 exactly
    >>> e.value, e.low, e.high
    (0.5, 0.5, 0.5)
    """
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    if u.shape != v.shape or u.size < 2:
        raise ValueError("need at least 2 paired samples of equal shape")
    den = offset_v + v.mean()
    if not den > 0:
        raise ValueError(f"the denominator's mean must be positive, got {den}")
    r = (offset_u + u.mean()) / den
    se = float(np.std(u - r * v, ddof=1)) / (math.sqrt(u.size) * den)
    half = _t(level, u.size - 1) * se
    return Estimate(float(r), float(r - half), float(r + half), int(u.size), level)


def _ranks(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a, ties given their average rank (as scipy.stats.rankdata, faster)."""
    order = np.argsort(a, kind="stable")
    ordered = a[order]
    first = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[first[1:], a.size]
    average = (first + ends + 1) / 2.0  # mean of the ranks first+1 .. ends
    ranks = np.empty(a.size)
    ranks[order] = np.repeat(average, ends - first)
    return ranks


def _rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho: the Pearson correlation of the ranks (ties averaged)."""
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float(rx @ ry / math.sqrt((rx @ rx) * (ry @ ry)))


def _per_unit_spearman(x, y, units) -> tuple[np.ndarray, np.ndarray]:
    """Spearman's rho within each unit that has 3 finite rows with varying x and y; its units."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    units = np.asarray(units)
    if not x.shape == y.shape == units.shape:
        raise ValueError("x, y and units need one entry per row")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, units = x[keep], y[keep], units[keep]
    if x.size < 3:
        raise ValueError("need at least 3 finite rows for a rank correlation")
    rhos, kept = [], []
    labels, which = np.unique(units, return_inverse=True)
    for k, u in enumerate(labels):
        rows = which == k
        xs, ys = x[rows], y[rows]
        if xs.size >= 3 and xs.min() < xs.max() and ys.min() < ys.max():
            rhos.append(_rank_correlation(xs, ys))
            kept.append(u)
    return np.asarray(rhos), np.asarray(kept)


def spearman_interval(x, y, units, level: float = 0.95, n_boot: int = 2000, seed: int = 0):
    """Spearman's rho of x and y within each unit, averaged over units, with a Student t interval.

    Each independent unit g (a seed) has its own rank correlation rho_g over its rows (the
    settings run with that seed); the estimate is their mean rhō and the interval
    rhō ± t_{G-1} s_rho / sqrt(G) over the G units, clipped to [-1, 1]. The estimand is the
    expected within-seed rank correlation over the fixed settings. Unlike a bootstrap over a few
    clusters (10 distinct resamples with G = 3), the t interval reaches its level at the G the
    book uses (``tests/study/test_stats_coverage.py``), and an effect shared by all rows of a
    seed does not enter it. :func:`spearman_leave_one_out` shows how much one setting moves it.

    Args:
        x: predictor, one value per row.
        y: outcome, one value per row.
        units: the independent unit of each row (e.g. its seed).
        level: nominal coverage.
        n_boot: unused (kept for callers of the former bootstrap).
        seed: unused (kept for callers of the former bootstrap).

    Returns:
        An :class:`Estimate` with ``n`` the number of units with a rank correlation; with one
        unit the interval is [-1, 1].

    Raises:
        ValueError: lengths differ, fewer than 3 finite rows, or no unit has a rank correlation.

    >>> e = spearman_interval([1, 2, 3, 1, 2, 3], [1, 2, 3, 2, 4, 3], [0, 0, 0, 1, 1, 1])
    >>> e.value, e.n  # rho = 1 in unit 0 and 0.5 in unit 1
    (0.75, 2)
    """
    del n_boot, seed
    rhos, _ = _per_unit_spearman(x, y, units)
    if rhos.size == 0:
        raise ValueError("no unit has 3 rows with varying x and y")
    e = mean_interval(rhos, level)
    return Estimate(e.value, max(e.low, -1.0), min(e.high, 1.0), e.n, level)


def spearman_leave_one_out(x, y, units, settings, level: float = 0.95) -> dict:
    """:func:`spearman_interval` with each setting left out in turn: how much one setting moves it.

    Args:
        x: predictor, one value per row.
        y: outcome, one value per row.
        units: the independent unit of each row (its seed).
        settings: the setting of each row (e.g. its initialization), the same across units.
        level: nominal coverage.

    Returns:
        ``setting -> Estimate`` without that setting's rows, in the order of first appearance;
        the spread of the values is the sensitivity to one setting.

    >>> loo = spearman_leave_one_out([1, 2, 3, 4] * 2, [1, 2, 4, 3] * 2, [0] * 4 + [1] * 4,
    ...                              ["a", "b", "c", "d"] * 2)
    >>> {k: e.value for k, e in loo.items()}
    {'a': 0.5, 'b': 0.5, 'c': 1.0, 'd': 1.0}
    """
    x, y, units, settings = (np.asarray(a) for a in (x, y, units, settings))
    out = {}
    for s in dict.fromkeys(settings.tolist()):
        keep = settings != s
        out[s] = spearman_interval(x[keep], y[keep], units[keep], level)
    return out


def spearman_gap(x_a, x_b, y, units, level: float = 0.95) -> Estimate:
    """abs(rho(a, y)) - abs(rho(b, y)) within units, with a paired Student t interval over units.

    Per unit g, d_g = s_a rho_g(a, y) - s_b rho_g(b, y) with s the sign of each predictor's mean
    rho over units, so that mean d = abs(mean rho_a) - abs(mean rho_b) (the difference of the
    two :func:`spearman_interval` values); the interval is the t interval of the d_g, which pairs
    the two correlations on the same seed. Rows must be finite in all three columns.

    Args:
        x_a: the challenger predictor, one value per row.
        x_b: the rival predictor.
        y: the outcome.
        units: the independent unit of each row.
        level: nominal coverage.

    Returns:
        An :class:`Estimate` of the gap, ``n`` the units with both correlations; with one unit
        the interval is [-2, 2].

    Raises:
        ValueError: no unit has both rank correlations.

    >>> e = spearman_gap([1, 2, 3] * 2, [3, 1, 2] * 2, [1, 2, 3] * 2, [0] * 3 + [1] * 3)
    >>> e.value, e.low, e.high  # |1| - |-0.5| on both seeds
    (0.5, 0.5, 0.5)
    """
    x_a, x_b, y = (np.asarray(a, dtype=float) for a in (x_a, x_b, y))
    units = np.asarray(units)
    keep = np.isfinite(x_a) & np.isfinite(x_b) & np.isfinite(y)
    ra, ua = _per_unit_spearman(x_a[keep], y[keep], units[keep])
    rb, ub = _per_unit_spearman(x_b[keep], y[keep], units[keep])
    both = np.intersect1d(ua, ub)
    if both.size == 0:
        raise ValueError("no unit has both rank correlations")
    ra, rb = ra[np.isin(ua, both)], rb[np.isin(ub, both)]
    d = np.sign(ra.mean() or 1.0) * ra - np.sign(rb.mean() or 1.0) * rb
    e = mean_interval(d, level)
    return Estimate(e.value, max(e.low, -2.0), min(e.high, 2.0), e.n, level)


@dataclass(frozen=True)
class Equivalence:
    """The result of two one-sided tests (TOST) of abs(mean) < margin.

    Attributes:
        value: the mean difference.
        low: lower end of its (1 - 2 alpha) t interval.
        high: upper end.
        margin: the equivalence margin (the claim is abs(true mean) < margin).
        p: the TOST p-value, the larger of the two one-sided p-values.
        equivalent: p < alpha: both one-sided tests reject, i.e. [low, high] lies inside
            (-margin, margin).
        n: number of units.
        alpha: the level of each one-sided test.
    """

    value: float
    low: float
    high: float
    margin: float
    p: float
    equivalent: bool
    n: int
    alpha: float = 0.05


def tost(values, margin: float, alpha: float = 0.05) -> Equivalence:
    """Two one-sided t tests of equivalence, H0: abs(mu) >= margin against H1: abs(mu) < margin.

    With x̄, s and n the mean, standard deviation and count of the values (one per unit, e.g.
    the paired differences a_k - b_k), the tests are t_low = (x̄ + margin) / (s / sqrt(n)) >
    t_{n-1, 1-alpha} and t_high = (x̄ - margin) / (s / sqrt(n)) < -t_{n-1, 1-alpha}; equivalence
    is claimed at level alpha when both reject, which is the same as the (1 - 2 alpha) t interval
    lying inside (-margin, margin). "No detectable difference" is not equivalence: a wide
    interval around 0 does not pass this test.

    Args:
        values: one number per independent unit; NaNs are dropped.
        margin: the equivalence margin, > 0, stated before looking at the data.
        alpha: the level of each one-sided test (0.05: a 90% interval).

    Returns:
        An :class:`Equivalence`.

    Raises:
        ValueError: fewer than 2 finite values or a non-positive margin.

    >>> e = tost([0.1, -0.2, 0.0, 0.15, -0.05], margin=0.5)
    >>> e.equivalent, round(e.p, 4)
    (True, 0.0006)
    >>> tost([0.1, -0.2, 0.0, 0.15, -0.05], margin=0.1).equivalent
    False
    """
    if not margin > 0:
        raise ValueError(f"the margin must be positive, got {margin}")
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        raise ValueError("need at least 2 finite values")
    mean, se, dof = float(x.mean()), float(x.std(ddof=1)) / math.sqrt(x.size), x.size - 1
    if se == 0:
        p = 0.0 if abs(mean) < margin else 1.0
    else:
        p_low = float(_st.t.sf((mean + margin) / se, dof))
        p_high = float(_st.t.cdf((mean - margin) / se, dof))
        p = max(p_low, p_high)
    e = mean_interval(x, 1 - 2 * alpha)
    return Equivalence(mean, e.low, e.high, float(margin), p, bool(p < alpha), int(x.size),
                       alpha)  # fmt: skip
