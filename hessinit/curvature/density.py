"""Trace and eigenvalue density of H, G or R by random probes (Hutchinson, stochastic Lanczos).

For a symmetric n x n curvature matrix M (one weight tensor's block or the whole network's,
:func:`hessinit.curvature.operators.curvature_operator`) with eigenpairs (lambda_j, q_j):

- **Trace (Hutchinson).** tr(M) = E[v^T M v] for Rademacher v (E[v v^T] = I). With m probes the
  estimate is the mean of t_k = v_k^T M v_k, its interval the Student-t interval
  mean +- t_{m-1} s / sqrt(m), s the sample standard deviation: one product per probe.
- **Density (stochastic Lanczos quadrature).** The spectral density
  phi(t) = (1/n) sum_j delta(t - lambda_j) satisfies, for any f,
  (1/n) tr f(M) = E[u^T f(M) u] with u = v / ||v|| for Rademacher v (E[u u^T] = I / n).
  m steps of Lanczos from u give a tridiagonal T_m = S diag(theta) S^T, and
  u^T f(M) u ~ sum_l tau_l f(theta_l) with nodes theta_l and weights tau_l = S_{1l}^2 (Gauss
  quadrature: exact for polynomials f of degree < 2m, and exact for every f once the Krylov
  space is invariant, e.g. m = n). Averaged over probes, the nodes and weights are a discrete
  density whose moments estimate tr(M^j) / n and whose mass on [a, b] estimates the fraction of
  eigenvalues there. Lanczos is run with full reorthogonalization (m <= a few hundred).

Imports: numpy, scipy and :mod:`hessinit.curvature` (graph, operators, hutchinson).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .graph import TRAINING
from .operators import curvature_operator


@dataclass(frozen=True)
class TraceEstimate:
    """A trace estimate with a confidence interval [low, high] at ``level``.

    Attributes:
        value: the estimate of tr(M).
        low: the interval's lower end.
        high: the interval's upper end.
        probes: the number of probes.
        level: the confidence level.
        route: the product route (``"kronecker"`` or ``"autodiff"``).
        term: ``"H"``, ``"G"`` or ``"R"``.
    """

    value: float
    low: float
    high: float
    probes: int
    level: float
    route: str = ""
    term: str = "H"


def mean_interval(samples, level=0.95):
    """The mean of ``samples`` with its two-sided Student-t interval at ``level``.

    Args:
        samples: at least 2 numbers.
        level: the confidence level.

    Returns:
        ``(mean, low, high)``.

    Example:
        >>> mean_interval([1.0, 1.0, 1.0])
        (1.0, 1.0, 1.0)
    """
    samples = np.asarray(samples, np.float64)
    if samples.size < 2:
        raise ValueError("need at least 2 probes for a confidence interval")
    mean = float(np.mean(samples))
    half = (
        float(stats.t.ppf(0.5 + level / 2, samples.size - 1))
        * float(np.std(samples, ddof=1))
        / math.sqrt(samples.size)
    )
    return mean, mean - half, mean + half


def trace_estimate(matvec, n, probes=100, level=0.95, seed=0):
    """Hutchinson's estimate of tr(M) from Rademacher probes, with its t-interval.

    Args:
        matvec: v (float64 (n,)) -> M v.
        n: the size of M.
        probes: m >= 2.
        level: the confidence level.
        seed: seed of the probes.

    Returns:
        :class:`TraceEstimate`.

    Example:
        >>> D = np.diag([1.0, 2.0, 3.0])
        >>> e = trace_estimate(lambda v: D @ v, 3, probes=4)  # diagonal: every probe exact
        >>> e.value, e.low, e.high
        (6.0, 6.0, 6.0)
    """
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(int(probes)):
        v = rng.choice([-1.0, 1.0], size=n)
        samples.append(float(v @ np.asarray(matvec(v), np.float64)))
    mean, low, high = mean_interval(samples, level)
    return TraceEstimate(mean, low, high, int(probes), level)


@dataclass(frozen=True)
class SpectralDensity:
    """The eigenvalue density of M by stochastic Lanczos quadrature (module docstring).

    Attributes:
        nodes: (probes, steps) Ritz values theta per probe (padded with 0 after a breakdown).
        weights: (probes, steps) quadrature weights tau, each row summing to 1 (0 on padding).
        size: n, the size of M.
        route: the product route.
        term: ``"H"``, ``"G"`` or ``"R"``.

    Example:
        >>> d = SpectralDensity(np.array([[1.0, 3.0]]), np.array([[0.5, 0.5]]), 2)
        >>> d.moment(1), d.moment(2), d.mass(0.0, 2.0)
        (2.0, 5.0, 0.5)
    """

    nodes: np.ndarray
    weights: np.ndarray
    size: int
    route: str = ""
    term: str = "H"

    def moment(self, j):
        """The estimate of tr(M^j) / n, the j-th moment of the eigenvalue density."""
        return float(np.mean(np.sum(self.weights * self.nodes**j, axis=1)))

    def moment_interval(self, j, level=0.95):
        """The j-th moment with its Student-t interval over probes: ``(mean, low, high)``."""
        return mean_interval(np.sum(self.weights * self.nodes**j, axis=1), level)

    def mass(self, low, high):
        """The estimated fraction of eigenvalues in [low, high]."""
        inside = (self.nodes >= low) & (self.nodes <= high)
        return float(np.mean(np.sum(self.weights * inside, axis=1)))

    def density(self, grid, width):
        """The density smoothed by a Gaussian of standard deviation ``width`` on ``grid``."""
        grid = np.asarray(grid, np.float64)
        z = (grid[:, None, None] - self.nodes[None]) / width
        kernel = np.exp(-0.5 * z**2) / (width * math.sqrt(2 * math.pi))
        return np.mean(np.sum(self.weights[None] * kernel, axis=2), axis=1)


def lanczos_quadrature(matvec, n, steps=30, probes=10, seed=0):
    """Nodes and weights of stochastic Lanczos quadrature for a symmetric operator.

    Args:
        matvec: v (float64 (n,)) -> M v.
        n: the size of M.
        steps: Lanczos steps per probe (at most n).
        probes: the number of Rademacher start vectors.
        seed: seed of the probes.

    Returns:
        :class:`SpectralDensity` (``route`` empty).

    Example:
        >>> D = np.diag([1.0, 2.0, 3.0, 4.0])
        >>> d = lanczos_quadrature(lambda v: D @ v, 4, steps=4, probes=3)
        >>> round(d.moment(2), 12), round(d.mass(2.5, 5.0), 12)  # (1 + 4 + 9 + 16) / 4; 2 of 4
        (7.5, 0.5)
    """
    steps = int(min(steps, n))
    rng = np.random.default_rng(seed)
    nodes = np.zeros((probes, steps))
    weights = np.zeros((probes, steps))
    for p in range(int(probes)):
        v = rng.choice([-1.0, 1.0], size=n)
        theta, tau = _lanczos_nodes(matvec, v / np.linalg.norm(v), steps)
        nodes[p, : len(theta)], weights[p, : len(tau)] = theta, tau
    return SpectralDensity(nodes, weights, int(n))


def _lanczos_nodes(matvec, u, steps):
    """Ritz values and squared first components of m Lanczos steps from unit u (reorthogonal)."""
    n = u.size
    Q = np.zeros((steps, n))
    alpha, beta = [], []
    q, prev, b = u, np.zeros(n), 0.0
    scale = 0.0
    for j in range(steps):
        Q[j] = q
        w = np.asarray(matvec(q), np.float64) - b * prev
        a = float(q @ w)
        w = w - a * q
        w = w - Q[: j + 1].T @ (Q[: j + 1] @ w)  # full reorthogonalization, twice
        w = w - Q[: j + 1].T @ (Q[: j + 1] @ w)
        alpha.append(a)
        scale = max(scale, abs(a))
        b = float(np.linalg.norm(w))
        if j == steps - 1 or b <= 1e-12 * max(scale, 1e-300):
            break
        beta.append(b)
        prev, q = q, w / b
    T = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    theta, S = np.linalg.eigh(T)
    return theta, S[0] ** 2


def hutchinson_trace(
    model,
    x,
    y,
    layer=None,
    *,
    weight=None,
    term="H",
    probes=100,
    level=0.95,
    seed=0,
    training=TRAINING,
    method="auto",
):
    """tr(M) of H, G or R of one weight tensor or the whole network, with an interval.

    Hutchinson's estimator (module docstring) on the product of
    :func:`hessinit.curvature.operators.curvature_operator`: the logits of
    :func:`hessinit.curvature.graph.forward` in the mode ``training``.

    Args:
        model: a Keras model mapping inputs to logits.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        layer: ``None`` (whole network), a layer name, layer or variable.
        weight: with a layer, the weight's name (default the kernel).
        term: ``"H"``, ``"G"`` or ``"R"``.
        probes: m >= 2 Rademacher probes.
        level: the interval's confidence level.
        seed: seed of the probes.
        training: the BatchNorm mode.
        method: the product route, ``"auto"``, ``"kronecker"`` or ``"autodiff"``.

    Returns:
        :class:`TraceEstimate` with ``route`` and ``term`` set.

    Example:
        >>> from hessinit.curvature import full_hessian
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(2,), widths=(), num_classes=2, dtype="float64")  # P = 6
        >>> x, y = np.array([[1.0, 2.0], [-1.0, 0.5]]), [0, 1]
        >>> e = hutchinson_trace(model, x, y, probes=30)
        >>> bool(e.low <= np.trace(full_hessian(model, x, y)) <= e.high), e.route
        (True, 'autodiff')
    """
    op = curvature_operator(
        model, x, y, layer, weight=weight, term=term, training=training, method=method
    )
    est = trace_estimate(op.matvec, op.size, probes, level, seed)
    return TraceEstimate(est.value, est.low, est.high, est.probes, level, op.route, term)


def spectral_density(
    model,
    x,
    y,
    layer=None,
    *,
    weight=None,
    term="H",
    steps=30,
    probes=10,
    seed=0,
    training=TRAINING,
    method="auto",
):
    """The eigenvalue density of H, G or R (one tensor or the whole network) by SLQ.

    PyHessian's density: stochastic Lanczos quadrature (module docstring) with ``probes``
    Rademacher start vectors and ``steps`` Lanczos steps each, on the product of
    :func:`hessinit.curvature.operators.curvature_operator`. The result's moments and interval
    masses estimate tr(M^j) / n and the fraction of eigenvalues in an interval.

    Args:
        model: a Keras model mapping inputs to logits.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        layer: ``None`` (whole network), a layer name, layer or variable.
        weight: with a layer, the weight's name (default the kernel).
        term: ``"H"``, ``"G"`` or ``"R"``.
        steps: Lanczos steps per probe (at most n): products per probe.
        probes: the number of start vectors.
        seed: seed of the probes.
        training: the BatchNorm mode.
        method: the product route.

    Returns:
        :class:`SpectralDensity` with ``route`` and ``term`` set.

    Example:
        >>> from hessinit.curvature import full_hessian
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(2,), widths=(), num_classes=2, dtype="float64")  # P = 6
        >>> x, y = np.array([[1.0, 2.0], [-1.0, 0.5]]), [0, 1]
        >>> d = spectral_density(model, x, y, steps=6, probes=3)
        >>> H = full_hessian(model, x, y)
        >>> d.route, bool(np.isclose(d.mass(-1.0, 1e3), 1.0))  # all the mass, on any probe
        ('autodiff', True)
    """
    op = curvature_operator(
        model, x, y, layer, weight=weight, term=term, training=training, method=method
    )
    d = lanczos_quadrature(op.matvec, op.size, steps, probes, seed)
    return SpectralDensity(d.nodes, d.weights, d.size, op.route, term)
