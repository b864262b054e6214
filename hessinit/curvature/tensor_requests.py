"""The per-tensor norms as generators of product requests, and the loop that answers them.

:func:`hessinit.curvature.tensors.tensors_hessian_norms` computes one or several weight
tensors' ||H||_F, ||G||_F, ||R||_F by the exact columns (:func:`column_requests`), Rademacher
probes (:func:`probe_requests`) or deflated Hutchinson (:func:`deflated_requests`). Each is a
generator: it yields the directions V (c, P_t) whose products it needs next and is sent back
``(H V^T)^T, (G V^T)^T`` on its tensor, and returns a
:class:`~hessinit.curvature.HessianNorms`. :func:`in_lockstep` runs several of them round by
round, so that the requests of tensors that share a compiled program can share its calls;
the draws of each depend on its own seed only, so the numbers do not depend on the company.

Imports: numpy and :mod:`hessinit.curvature` (hutchinson, kronecker).
"""

from __future__ import annotations

import math

import numpy as np

from .hutchinson import deflation_rows, norm_estimate
from .kronecker import HessianNorms


def column_requests(size, chunk, method="columns"):
    """The exact columns H e_p, G e_p of a tensor of ``size`` entries, a block at a time.

    ||H||_F^2 = sum_p ||H e_p||^2, likewise G and R e_p = H e_p - G e_p, and
    <G, R> = sum_p (G e_p) . (R e_p): exact, ``size`` products.

    Args:
        size: P.
        chunk: products per call; the blocks are ``chunk * max(1, 64 // chunk)`` columns.
        method: the method named in the result (``"columns"`` or ``"columns-linear"``).

    Yields:
        The next block of unit directions e_p.

    Returns:
        :class:`~hessinit.curvature.HessianNorms`.

    Example:
        >>> H, G = np.diag([2.0, 1.0]), np.diag([1.0, 1.0])
        >>> n = in_lockstep([column_requests(2, 1)], [0], lambda k, a: [(V @ H, V @ G)
        ...                                                              for _, V in a])[0]
        >>> round(n.H ** 2, 9), round(n.R, 9), n.method
        (5.0, 1.0, 'columns')
    """
    sums = np.zeros(4)  # ||H||^2, ||G||^2, ||R||^2, <G, R>
    step = chunk * max(1, 64 // chunk)
    for start in range(0, size, step):
        hv, gv = yield np.eye(size)[start : min(start + step, size)]
        rv = hv - gv
        sums += [np.sum(hv * hv), np.sum(gv * gv), np.sum(rv * rv), np.sum(gv * rv)]
    hh, gg, rr, gr = sums
    return HessianNorms(math.sqrt(hh), math.sqrt(gg), math.sqrt(rr), float(gr), method)


def probe_requests(size, chunk, rel_width, probes, max_probes, level, seed):
    """Rademacher estimates of ||H||_F, ||G||_F, ||R||_F with intervals (``"hutchinson"``).

    ||M||_F^2 = E ||M v||^2 for M in {H, G, R} from the same probes (R v = H v - G v), each
    with the Student-t interval of :func:`hessinit.curvature.hutchinson.norm_estimate`;
    ``chunk`` probes at a time, until ``probes`` (a fixed number) or, with ``probes`` None,
    until H's and G's 95% intervals have a half-width of at most ``rel_width`` of the estimate
    (at least 10 probes, at most ``max_probes``).

    Args:
        size: P.
        chunk: probes per request.
        rel_width: the adaptive rule's relative half-width.
        probes: a fixed number of probes, or None (adaptive).
        max_probes: the adaptive rule's budget.
        level: the intervals' confidence level.
        seed: the probes' seed.

    Yields:
        The next probes, (c, P).

    Returns:
        :class:`~hessinit.curvature.HessianNorms` with ``intervals``.

    Example:
        >>> H = np.eye(4)
        >>> n = in_lockstep([probe_requests(4, 3, 0.05, 6, 400, 0.95, 0)], [0],
        ...                 lambda k, a: [(V @ H, V @ H) for _, V in a])[0]
        >>> round(n.H, 9), n.R, n.intervals["H"].probes  # ||v||^2 = P for every probe
        (2.0, 0.0, 6)
    """
    rng = np.random.default_rng(seed)
    target = probes if probes is not None else max_probes
    samples = np.empty((0, 4))
    while len(samples) < target:
        m = min(chunk, target - len(samples))
        hv, gv = yield rng.choice([-1.0, 1.0], size=(chunk, size))[:m]
        rv = hv - gv
        new = np.stack(
            [np.sum(hv * hv, 1), np.sum(gv * gv, 1), np.sum(rv * rv, 1), np.sum(gv * rv, 1)], 1
        )
        samples = np.concatenate([samples, new])
        if probes is None and len(samples) >= 10 and _narrow(samples, rel_width, level):
            break
    est = {t: norm_estimate(samples[:, i], 0.0, level) for i, t in enumerate("HGR")}
    gr = float(np.mean(samples[:, 3]))
    return HessianNorms(est["H"].value, est["G"].value, est["R"].value, gr, "hutchinson", est)


def _narrow(samples, rel_width, level):
    """Whether the intervals of ||H|| and ||G|| are within ``rel_width`` of their estimates."""
    for i in (0, 1):
        e = norm_estimate(samples[:, i], 0.0, level)
        if e.value > 0 and (e.high - e.low) / 2 > rel_width * e.value:
            return False
    return True


def deflated_requests(size, sketch, probes, level, seed):
    """Deflated Hutchinson (``"hutchpp"``): :func:`hessinit.curvature.hutchinson.deflation_rows`.

    Two rounds of requests: the k sketch columns, then Q's min(2k, P) columns and the m
    projected probes together.

    Args:
        size: P.
        sketch: k.
        probes: m (at least 2).
        level: the intervals' confidence level.
        seed: the sketch's and the probes' seed.

    Yields:
        The next directions.

    Returns:
        :class:`~hessinit.curvature.HessianNorms` with ``intervals``.

    Example:
        >>> H, G = np.diag([3.0, 1.0, 0.5]), np.eye(3)
        >>> n = in_lockstep([deflated_requests(3, 2, 2, 0.95, 0)], [0],
        ...                 lambda k, a: [(V @ H, V @ G) for _, V in a])[0]
        >>> round(n.H ** 2, 9), n.method  # 2k >= P: exact
        (10.25, 'hutchpp')
    """
    est, gr = yield from deflation_rows(size, sketch, probes, level, seed)
    return HessianNorms(est["H"].value, est["G"].value, est["R"].value, gr, "hutchpp", est)


def in_lockstep(generators, keys, answer):
    """Run request generators round by round; the requests of one key are answered together.

    Each round collects every unfinished generator's request, groups them by ``keys`` and calls
    ``answer(key, [(i, V_i), ...])`` once per key, which returns the answers in that order.

    Args:
        generators: request generators (:func:`column_requests` and the others).
        keys: one hashable key per generator (e.g. the compiled program its rows run through).
        answer: (key, list of (index, V)) -> list of (HV, GV), one per request.

    Returns:
        The generators' return values, in order.

    Example:
        >>> calls = []
        >>> def answer(key, asks):
        ...     calls.append(len(asks))
        ...     return [(2 * V, V) for _, V in asks]
        >>> out = in_lockstep([column_requests(2, 1), column_requests(3, 1)], ["a", "a"], answer)
        >>> [round(n.H ** 2, 9) for n in out], calls  # one call per round for both
        ([8.0, 12.0], [2])
    """
    results, pending = [None] * len(generators), {}

    def advance(i, value):
        try:
            pending[i] = generators[i].send(value)
        except StopIteration as stop:
            results[i] = stop.value

    for i in range(len(generators)):
        advance(i, None)
    while pending:
        asked, rounds = dict(pending), {}
        pending.clear()
        for i in asked:
            rounds.setdefault(keys[i], []).append(i)
        for key, members in rounds.items():
            answers = answer(key, [(i, asked[i]) for i in members])
            for i, value in zip(members, answers, strict=True):
                advance(i, value)
    return results
