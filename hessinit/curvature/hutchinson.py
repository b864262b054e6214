"""Stochastic estimates of whole-network curvature norms (Hutchinson, optionally deflated).

For the Hessian H over all P trainable weights (cross-layer blocks included), its Gauss-Newton
term G or its curvature term R = H - G, ||H||_F^2 = E ||H v||^2 for Rademacher probes v
(E[v v^T] = I); each probe costs one product of :mod:`hessinit.curvature.products`. With m probes
the relative standard deviation is sqrt(2 / (m r_eff)), r_eff = (sum l^2)^2 / sum l^4 over the
eigenvalues l: a few outlying eigenvalues make it large, which deflation removes.

Imports: numpy, scipy and :mod:`hessinit.curvature.products`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .products import _flat, _unflat, curvature_vp, gnvp, hvp, num_params


@dataclass(frozen=True)
class NormEstimate:
    """A Frobenius-norm estimate with a confidence interval [low, high] at ``level``.

    Attributes:
        value: the estimate of the norm.
        low: lower end of the confidence interval (at least 0).
        high: upper end of the confidence interval.
        probes: the number of random probes behind the estimate.
        level: the interval's confidence level, such as 0.95.

    Example:
        >>> e = NormEstimate(value=2.0, low=1.5, high=2.4, probes=100, level=0.95)
        >>> e.low <= e.value <= e.high
        True
    """

    value: float
    low: float
    high: float
    probes: int
    level: float


def hutchinson_norm(model, x, y, probes=100, product="hessian", deflate=0, level=0.95, seed=0):
    """Estimate a whole-network curvature norm from matrix-vector products, with an interval.

    ||H||_F^2 = E ||H v||^2 for Rademacher v, over all trainable weights, cross-layer blocks
    included. With ``deflate=k > 0`` (Hutch++ applied to H^2): Q = orth(H H S) for k Gaussian
    columns S, ||H||_F^2 = ||H Q||_F^2 + ||H (I - Q Q^T)||_F^2, the first part exact, the second
    estimated; the k-dimensional sketch costs 2k products on top of ``probes``, and removes the
    few outlying eigenvalues that make plain Hutchinson noisy. The interval is a normal interval
    on the mean of ||H v||^2, mapped through the square root (clipped at 0).

    Args:
        model: a Keras model mapping inputs to logits, such as :func:`hessinit.nn.mlp`.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        probes: the number m of Rademacher probes (at least 2).
        product: ``"hessian"`` for ||H||_F, ``"gauss_newton"`` for ||G||_F or ``"curvature"``
            for ||R||_F = ||H - G||_F.
        deflate: k, the dimension of the exactly-handled sketch; 0 for plain Hutchinson.
        level: the confidence level of the interval.
        seed: seed of the numpy generator that draws the sketch and the probes.

    Returns:
        :class:`NormEstimate`.

    Raises:
        ValueError: unknown ``product`` or fewer than 2 probes.

    Example:
        >>> from hessinit.curvature import full_hessian
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(2,), widths=(), num_classes=2, dtype="float64")  # P = 6
        >>> x, y = np.array([[1.0, 2.0], [-1.0, 0.5]]), [0, 1]
        >>> exact = np.linalg.norm(full_hessian(model, x, y))
        >>> est = hutchinson_norm(model, x, y, probes=20)
        >>> bool(est.low <= exact <= est.high)
        True
        >>> est = hutchinson_norm(model, x, y, probes=2, deflate=6)  # k = P: exact
        >>> bool(np.isclose(est.value, exact, rtol=1e-10))
        True
    """
    apply = {"hessian": hvp, "gauss_newton": gnvp, "curvature": curvature_vp}.get(product)
    if apply is None:
        raise ValueError(
            f"product must be 'hessian', 'gauss_newton' or 'curvature', got {product!r}"
        )
    if probes < 2:
        raise ValueError("need at least 2 probes for a confidence interval")
    variables = model.trainable_variables
    n = num_params(variables)
    rng = np.random.default_rng(seed)

    def matvec(v):
        """The product with a flat vector ``v``, flat in float64."""
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
