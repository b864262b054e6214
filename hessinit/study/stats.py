"""Intervals for the book's verdicts: means over seeds, paired differences, ratios and ranks.

Every verdict of the claims ledger rests on an estimate with a 95% interval. The intervals here
are the textbook ones, each stated where it is used:

- a mean over n independent seeds: x̄ ± t_{n-1} s / sqrt(n) (Student t, not the normal quantile,
  because n is small);
- a paired difference a_k - b_k over the same seeds: the t-interval of the differences;
- a ratio of two means estimated from the same samples, m_u / m_v: the delta method,
  Var(u - r v) / (n m_v^2) with r = m_u / m_v, and a t-quantile (one interval at its stated level
  for the ratio itself, unlike the product of two separate intervals);
- a Spearman rank correlation: a percentile bootstrap over the independent units (seeds).

Imports: numpy and scipy only.
"""

from __future__ import annotations

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


def spearman_interval(x, y, units, level: float = 0.95, n_boot: int = 2000, seed: int = 0):
    """Spearman rank correlation of x and y with a percentile bootstrap over ``units``.

    Rows sharing a unit (e.g. the settings run with one seed) are resampled together, so the
    interval reflects the variation between independent units, not between correlated rows.

    Args:
        x: predictor, one value per row.
        y: outcome, one value per row.
        units: the independent unit of each row (e.g. its seed).
        level: nominal coverage.
        n_boot: bootstrap resamples.
        seed: seed of the resampling.

    Returns:
        An :class:`Estimate` with ``n`` the number of units.

    Raises:
        ValueError: lengths differ or fewer than 3 finite rows.

    >>> e = spearman_interval([1, 2, 3, 1, 2, 3], [1, 2, 3, 2, 3, 4], [0, 0, 0, 1, 1, 1])
    >>> round(e.value, 3), e.n
    (0.862, 2)
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    units = np.asarray(units)
    if not x.shape == y.shape == units.shape:
        raise ValueError("x, y and units need one entry per row")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, units = x[keep], y[keep], units[keep]
    if x.size < 3:
        raise ValueError("need at least 3 finite rows for a rank correlation")
    rho = float(_st.spearmanr(x, y).statistic)
    labels = np.unique(units)
    rows = [np.flatnonzero(units == u) for u in labels]
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = np.concatenate([rows[k] for k in rng.integers(0, len(rows), len(rows))])
        if np.ptp(x[idx]) > 0 and np.ptp(y[idx]) > 0:
            boots.append(_st.spearmanr(x[idx], y[idx]).statistic)
    if len(labels) < 2 or not boots:
        return Estimate(rho, -1.0, 1.0, int(len(labels)), level)
    low, high = np.quantile(boots, [0.5 - level / 2, 0.5 + level / 2])
    return Estimate(rho, float(low), float(high), int(len(labels)), level)
