"""Stochastic estimates of whole-network curvature norms (Hutchinson, optionally deflated).

Imports: :mod:`hessinit.curvature.products`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .products import _flat, _unflat, curvature_vp, gnvp, hvp


@dataclass(frozen=True)
class NormEstimate:
    """A Frobenius-norm estimate with a confidence interval [low, high] at ``level``."""

    value: float
    low: float
    high: float
    probes: int
    level: float


def hutchinson_norm(model, x, y, probes=100, product="hessian", deflate=0, level=0.95, seed=0):
    """Estimate ||H||_F (``product="hessian"``), ||G||_F (``"gauss_newton"``) or
    ||R||_F = ||H - G||_F (``"curvature"``) of the whole network, cross-layer blocks included,
    from ``probes`` matrix-vector products, with a confidence interval.

    ||H||_F^2 = E ||H v||^2 for Rademacher v. With ``deflate=k > 0`` (Hutch++ applied to H^2):
    Q = orth(H H S) for k Gaussian columns S, ||H||_F^2 = ||H Q||_F^2 + ||H (I - Q Q^T)||_F^2, the
    first part exact, the second estimated; the k-dimensional sketch costs 2k products on top of
    ``probes``, and removes the few outlying eigenvalues that make plain Hutchinson noisy.
    The interval is a normal interval on the mean of ||H v||^2 (delta method for the square root).
    """
    apply = {"hessian": hvp, "gauss_newton": gnvp, "curvature": curvature_vp}.get(product)
    if apply is None:
        raise ValueError(
            f"product must be 'hessian', 'gauss_newton' or 'curvature', got {product!r}"
        )
    if probes < 2:
        raise ValueError("need at least 2 probes for a confidence interval")
    variables = model.trainable_variables
    n = sum(int(np.prod(v.shape)) for v in variables)
    rng = np.random.default_rng(seed)

    def matvec(v):
        return _flat(apply(model, x, y, _unflat(v, variables)))

    exact, Q = 0.0, None
    if deflate > 0:
        sketch = np.stack([matvec(matvec(s)) for s in rng.standard_normal((deflate, n))], axis=1)
        Q, _ = np.linalg.qr(sketch)
        exact = sum(float(np.sum(matvec(q) ** 2)) for q in Q.T)
    samples = np.empty(probes)
    for k in range(probes):
        v = rng.choice([-1.0, 1.0], size=n)
        if Q is not None:
            v = v - Q @ (Q.T @ v)
        samples[k] = np.sum(matvec(v) ** 2)
    from scipy.stats import norm

    mean, sem = samples.mean(), samples.std(ddof=1) / math.sqrt(probes)
    zq = norm.ppf(0.5 + level / 2)
    total = exact + mean
    low, high = max(total - zq * sem, 0.0), total + zq * sem
    return NormEstimate(math.sqrt(total), math.sqrt(low), math.sqrt(high), probes, level)
