"""Stochastic estimates of whole-network curvature norms (Hutchinson, optionally deflated).

For the Hessian H over all P trainable weights (cross-layer blocks included), its Gauss-Newton
term G or its curvature term R = H - G, ||H||_F^2 = E ||H v||^2 for Rademacher probes v
(E[v v^T] = I); each probe costs one product of :mod:`hessinit.curvature.products`. With m probes
the relative standard deviation is sqrt(2 / (m r_eff)), r_eff = (sum l^2)^2 / sum l^4 over the
eigenvalues l: a few outlying eigenvalues make it large, which deflation removes.

With :func:`hutchinson_norms` one probe v gives all three squared norms at once, from H v,
G v and R v = H v - G v, so the ratios ||R||_F / ||H||_F and ||G||_F / ||H||_F have paired
samples and a valid interval of their own.

Imports: numpy, scipy and :mod:`hessinit.curvature.products`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from scipy import stats as _st

from .graph import TRAINING
from .inputs import check_call
from .products import flatten, num_params, term_product, unflatten


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


def hutchinson_norm(
    model, x, y, probes=100, product="hessian", deflate=0, level=0.95, seed=0, *, training=TRAINING
):
    """Estimate a whole-network curvature norm from matrix-vector products, with an interval.

    ||H||_F^2 = E ||H v||^2 for Rademacher v, over all trainable weights, cross-layer blocks
    included. With ``deflate=k > 0`` (Hutch++ applied to H^2): Q = orth(H H S) for k Gaussian
    columns S, ||H||_F^2 = ||H Q||_F^2 + ||H (I - Q Q^T)||_F^2, the first part exact, the second
    estimated; the k-dimensional sketch costs 2k products on top of ``probes``, and removes the
    few outlying eigenvalues that make plain Hutchinson noisy. The interval is a Student-t
    interval (m - 1 degrees of freedom) on the mean of ||H v||^2, mapped through the square root
    (clipped at 0). For H, G and R from the same probes, and their ratios, see
    :func:`hutchinson_norms`.

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
        training: the BatchNorm mode of :func:`hessinit.curvature.graph.forward`.

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
    term = {"hessian": "H", "gauss_newton": "G", "curvature": "R"}.get(product)
    if term is None:
        raise ValueError(
            f"product must be 'hessian', 'gauss_newton' or 'curvature', got {product!r}"
        )
    if probes < 2:
        raise ValueError("need at least 2 probes for a confidence interval")
    x, y = check_call(model, x, y)
    variables = model.trainable_variables
    n = num_params(variables)
    rng = np.random.default_rng(seed)

    def matvec(v):
        """The product with a flat vector ``v``, flat in float64."""
        vs = [tf.constant(u, variables[0].dtype) for u in unflatten(v, variables)]
        return flatten(term_product(model, x, y, vs, term, training))

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
    return norm_estimate(samples, exact, level)


def deflated_norms(products, size, sketch=10, probes=20, level=0.95, seed=0):
    """Hutch++-style ||H||_F, ||G||_F, ||R||_F and <G, R> of one block from its products.

    With k Gaussian sketch columns S, Q = orth([H S, G S]) (P x min(2k, P), orthonormal), and
    for M in {H, G, R = H - G}

        ||M||_F^2 = ||M Q||_F^2 + ||M (I - Q Q^T)||_F^2,

    the first part exact (2k more products), the second E ||M u||^2 over u = (I - Q Q^T) v for m
    Rademacher probes v (E[u u^T] = I - Q Q^T); likewise <G, R> = sum_j (G q_j) . (R q_j) +
    E (G u) . (R u). Q removes the few outlying eigenvalues, so the residual's samples are light
    tailed and the Student-t interval on their mean (m - 1 degrees of freedom, mapped through the
    square root) keeps its nominal coverage at tens of probes; plain Hutchinson's does not when
    a handful of eigenvalues carry the norm. Every product gives H v and G v at once, so the
    three norms share the sketch and the probes: k + min(2k, P) + m products.

    Args:
        products: ``products(V)`` for V of shape (c, P) (float64) returns (H V^T)^T and
            (G V^T)^T, each (c, P): the rows H v and G v.
        size: P.
        sketch: k, the Gaussian sketch columns.
        probes: m, the residual's Rademacher probes (at least 2).
        level: the intervals' confidence level.
        seed: the seed of the sketch and the probes.

    Returns:
        (``{"H": NormEstimate, "G": ..., "R": ...}``, <G, R>'s estimate).

    Raises:
        ValueError: fewer than 2 probes or a sketch below 1.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> A = rng.standard_normal((30, 30)); H = A + A.T; G = A @ A.T / 10
        >>> est, gr = deflated_norms(lambda V: (V @ H, V @ G), 30, sketch=15, probes=5)
        >>> bool(np.isclose(est["H"].value, np.linalg.norm(H)))  # 2k >= P: exact
        True
    """
    return answer_rows(deflation_rows(size, sketch, probes, level, seed), products)


def deflation_rows(size, sketch=10, probes=20, level=0.95, seed=0):
    """:func:`deflated_norms` as a generator of its product requests (to batch several blocks).

    It yields the directions V (c, P) it needs and is sent back ``(H V^T)^T, (G V^T)^T``: first
    the k sketch columns, then Q's min(2k, P) columns and the m projected probes together (one
    request, so the products of Q and of the probes can share calls). Its return value (the
    ``StopIteration`` value) is :func:`deflated_norms`'s. The draws are the same as
    :func:`deflated_norms`' for the same ``seed``, so driving several of these in lockstep
    (:func:`hessinit.curvature.tensors.tensors_hessian_norms`) gives the same numbers.

    Args:
        size: P.
        sketch: k.
        probes: m (at least 2).
        level: the intervals' confidence level.
        seed: the seed of the sketch and the probes.

    Yields:
        The directions of the next products, (c, P) float64.

    Returns:
        (``{"H", "G", "R"}`` -> :class:`NormEstimate`, <G, R>'s estimate).

    Raises:
        ValueError: fewer than 2 probes or a sketch below 1 (at the first ``next``).

    Example:
        >>> H = np.diag([3.0, 1.0, 0.5]); G = np.diag([1.0, 1.0, 0.0])
        >>> est, gr = answer_rows(deflation_rows(3, sketch=2, probes=2),
        ...                       lambda V: (V @ H, V @ G))
        >>> round(est["H"].value ** 2, 6), round(gr, 6)  # 2k >= P: exact
        (10.25, 2.0)
    """
    if probes < 2:
        raise ValueError("need at least 2 probes for a confidence interval")
    if sketch < 1:
        raise ValueError("the sketch needs at least one column")
    rng = np.random.default_rng(seed)
    hs, gs = yield rng.standard_normal((sketch, size))
    Q, _ = np.linalg.qr(np.concatenate([hs, gs]).T)  # (P, min(2k, P)), orthonormal columns
    V = rng.choice([-1.0, 1.0], size=(probes, size))
    V = V - (V @ Q) @ Q.T
    h, g = yield np.concatenate([Q.T, V])
    n = Q.shape[1]
    hq, gq, hv, gv = h[:n], g[:n], h[n:], g[n:]
    rq, rv = hq - gq, hv - gv
    exact = [np.sum(hq * hq), np.sum(gq * gq), np.sum(rq * rq), np.sum(gq * rq)]
    samples = [np.sum(hv * hv, 1), np.sum(gv * gv, 1), np.sum(rv * rv, 1)]
    est = {t: norm_estimate(samples[i], float(exact[i]), level) for i, t in enumerate("HGR")}
    return est, float(exact[3] + np.mean(np.sum(gv * rv, 1)))


def answer_rows(requests, products):
    """Run a generator of product requests (such as :func:`deflation_rows`) to its result.

    Args:
        requests: a generator that yields directions V (c, P) and is sent ``products(V)``.
        products: V -> (H V^T)^T, (G V^T)^T.

    Returns:
        The generator's return value.

    Example:
        >>> def twice():
        ...     a = yield np.ones((1, 2))
        ...     return float(a.sum())
        >>> answer_rows(twice(), lambda V: 3 * V)
        6.0
    """
    try:
        V = next(requests)
        while True:
            V = requests.send(products(V))
    except StopIteration as stop:
        return stop.value


def _t(level, dof):
    """The two-sided Student-t quantile t_{dof, (1 + level) / 2}."""
    return float(_st.t.ppf(0.5 + level / 2, dof))


def norm_estimate(samples, exact, level):
    """sqrt(exact + mean of samples), with the t-interval of the mean mapped through sqrt."""
    m = len(samples)
    mean, sem = float(np.mean(samples)), float(np.std(samples, ddof=1)) / math.sqrt(m)
    half = _t(level, m - 1) * sem
    total = exact + mean
    low, high = max(total - half, 0.0), total + half
    return NormEstimate(math.sqrt(max(total, 0.0)), math.sqrt(low), math.sqrt(high), m, level)


def ratio_estimate(num, den, offset_num=0.0, offset_den=0.0, level=0.95):
    """sqrt((c_u + mean u) / (c_v + mean v)) from paired probe samples, with a t-interval.

    The ratio of squared norms r^2 = (c_u + mean u) / (c_v + mean v) has the delta-method
    standard error s_d / (sqrt(m) (c_v + mean v)), d_k = u_k - r^2 v_k (paired samples keep their
    covariance); the interval r^2 +- t_{m-1} se is mapped through the square root (clipped at 0).
    The same delta method as :func:`hessinit.study.stats.ratio_of_means`, kept here because the
    core may not import the study layer.

    Args:
        num: samples u_k = ||M_1 P v_k||^2 of the numerator, one per probe.
        den: samples v_k = ||M_2 P v_k||^2 of the denominator from the same probes.
        offset_num: the exact (deflated) part c_u of the numerator's squared norm.
        offset_den: the exact part c_v of the denominator's squared norm.
        level: the interval's confidence level.

    Returns:
        :class:`NormEstimate` of the norm ratio ||M_1||_F / ||M_2||_F.

    Raises:
        ValueError: fewer than 2 paired samples, or a non-positive denominator.

    Example:
        >>> e = ratio_estimate([1.0, 2.0, 3.0], [4.0, 8.0, 12.0])  # u = v / 4: ratio 1/2 exactly
        >>> e.value, e.low, e.high
        (0.5, 0.5, 0.5)
    """
    u, v = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if u.shape != v.shape or u.size < 2:
        raise ValueError("need at least 2 paired samples of equal shape")
    d = offset_den + v.mean()
    if not d > 0:
        raise ValueError(f"the denominator's mean must be positive, got {d}")
    r2 = (offset_num + u.mean()) / d
    half = _t(level, u.size - 1) * float(np.std(u - r2 * v, ddof=1)) / (math.sqrt(u.size) * d)
    low, high = max(r2 - half, 0.0), r2 + half
    return NormEstimate(math.sqrt(max(r2, 0.0)), math.sqrt(low), math.sqrt(high), u.size, level)


@dataclass(frozen=True)
class CurvatureEstimates:
    """Whole-network ||H||_F, ||G||_F, ||R||_F and their ratios, all from the same probes.

    Attributes:
        H: estimate of ||H||_F.
        G: estimate of ||G||_F.
        R: estimate of ||R||_F = ||H - G||_F.
        R_over_H: estimate of ||R||_F / ||H||_F (paired delta-method interval).
        G_over_H: estimate of ||G||_F / ||H||_F (paired delta-method interval).
        samples: per term, the squared norms ||M P v_k||^2 of the deflated probes, shape (m,).
        exact: per term, the exactly computed part ||M Q||_F^2 (0 without deflation).
    """

    H: NormEstimate
    G: NormEstimate
    R: NormEstimate
    R_over_H: NormEstimate
    G_over_H: NormEstimate
    samples: dict
    exact: dict


def hutchinson_norms(model, x, y, probes=30, deflate=0, level=0.95, seed=0, *, training=TRAINING):
    """||H||_F, ||G||_F, ||R||_F of the whole network and ||R||/||H||, ||G||/||H||, same probes.

    One orthonormal basis Q (k columns, Q = orth(H H S) for Gaussian S, as in
    :func:`hutchinson_norm`) is used for all three matrices M in {H, G, R}: for any orthogonal
    projector, ||M||_F^2 = ||M Q||_F^2 + ||M P||_F^2 with P = I - Q Q^T, the first part exact
    (k products with H and G), the second E ||M P v||^2 over Rademacher v (E[P v v^T P] = P).
    Each probe v gives H P v and G P v, hence R P v = H P v - G P v: the three samples are paired,
    so a ratio gets the paired delta-method interval of :func:`ratio_estimate` rather than a
    combination of two separate intervals. Each norm's interval is a Student-t interval
    (m - 1 degrees of freedom) on its mean, through the square root.

    Args:
        model: a Keras model mapping inputs to logits, such as :func:`hessinit.nn.mlp`.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        probes: the number m of Rademacher probes (at least 2).
        deflate: k, the dimension of the exactly-handled subspace; 0 for plain Hutchinson.
        level: the confidence level of every interval.
        seed: seed of the numpy generator that draws the sketch and the probes.
        training: the BatchNorm mode of :func:`hessinit.curvature.graph.forward`.

    Returns:
        :class:`CurvatureEstimates`.

    Raises:
        ValueError: fewer than 2 probes.

    Example:
        >>> from hessinit.curvature import full_gauss_newton, full_hessian
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(2,), widths=(2,), num_classes=2, activation="tanh",
        ...             sd=1.0, dtype="float64")  # P = 12
        >>> x, y = np.array([[1.0, 2.0], [-1.0, 0.5]]), [0, 1]
        >>> H = full_hessian(model, x, y)
        >>> R = H - full_gauss_newton(model, x, y)
        >>> est = hutchinson_norms(model, x, y, probes=2, deflate=12)  # k = P: exact
        >>> bool(np.isclose(est.R_over_H.value, np.linalg.norm(R) / np.linalg.norm(H)))
        True
    """
    if probes < 2:
        raise ValueError("need at least 2 probes for a confidence interval")
    x, y = check_call(model, x, y)
    variables = model.trainable_variables
    n = num_params(variables)
    rng = np.random.default_rng(seed)

    def as_vectors(v):
        """A flat vector as tensors shaped like the variables."""
        return [tf.constant(u, variables[0].dtype) for u in unflatten(v, variables)]

    def products(v):
        """(H v, G v) for a flat vector ``v``, flat in float64."""
        vs = as_vectors(v)
        hv = term_product(model, x, y, vs, "H", training)
        return flatten(hv), flatten(term_product(model, x, y, vs, "G", training))

    def h_only(v):
        """H v for a flat vector ``v``, flat in float64."""
        return flatten(term_product(model, x, y, as_vectors(v), "H", training))

    def squares(v):
        """(||H v||^2, ||G v||^2, ||R v||^2)."""
        hv, gv = products(v)
        return float(hv @ hv), float(gv @ gv), float((hv - gv) @ (hv - gv))

    exact, Q = np.zeros(3), None
    if deflate > 0:
        sketch = np.stack([h_only(h_only(s)) for s in rng.standard_normal((deflate, n))], axis=1)
        Q, _ = np.linalg.qr(sketch)
        exact = np.sum([squares(q) for q in Q.T], axis=0)
    samples = np.empty((probes, 3))
    for k in range(probes):
        v = rng.choice([-1.0, 1.0], size=n)
        if Q is not None:
            v = v - Q @ (Q.T @ v)
        samples[k] = squares(v)
    names = ("H", "G", "R")
    est = {t: norm_estimate(samples[:, i], exact[i], level) for i, t in enumerate(names)}
    return CurvatureEstimates(
        **est,
        R_over_H=ratio_estimate(samples[:, 2], samples[:, 0], exact[2], exact[0], level),
        G_over_H=ratio_estimate(samples[:, 1], samples[:, 0], exact[1], exact[0], level),
        samples={t: samples[:, i].copy() for i, t in enumerate(names)},
        exact={t: float(exact[i]) for i, t in enumerate(names)},
    )
