"""Tests of hessinit.curvature.tensor_requests and tensors_hessian_norms: several tensors' norms
computed in lockstep, their rows sharing calls, are each tensor's own norms (the same draws, so
the same numbers), and exact ones equal the materialized Hessian's (float64)."""

import numpy as np
import pytest
from test_block_products import twin_kernels

from hessinit.curvature import full_gauss_newton, full_hessian, tensors
from hessinit.curvature.hutchinson import deflated_norms
from hessinit.curvature.tensor_requests import (
    column_requests,
    deflated_requests,
    in_lockstep,
    probe_requests,
)
from hessinit.curvature.tensors import tensor_hessian_norms, tensors_hessian_norms


def _reference(model, variable, x, y):
    H = full_hessian(model, x, y, layer=variable)
    G = full_gauss_newton(model, x, y, layer=variable)
    return [np.linalg.norm(H), np.linalg.norm(G), np.linalg.norm(H - G), np.sum(G * (H - G))]


def _counted(monkeypatch):
    """Count the calls of the shared program (and their rows) made through tensors."""
    calls = []
    inner = tensors.block_products

    def counting(model, x, y, V, **kwargs):
        calls.append(int(V.shape[0]))
        return inner(model, x, y, V, **kwargs)

    monkeypatch.setattr(tensors, "block_products", counting)
    return calls


def _values(n):
    return [n.H, n.G, n.R, n.GR]


def test_lockstep_norms_are_each_tensors_own_and_share_calls(monkeypatch):
    model, x, y = twin_kernels()
    names = ["a", "b"]  # one shape: one program, rows of both in one call
    opts = dict(method="hutchpp", sketch=2, probes=4, seed=3)
    calls = _counted(monkeypatch)
    alone = [tensor_hessian_norms(model, n, x, y, **opts) for n in names]
    separate = list(calls)
    calls.clear()
    together = tensors_hessian_norms(model, names, x, y, rows=4, **opts)
    for got, ref in zip(together, alone, strict=True):
        assert got.method == ref.method == "hutchpp"
        np.testing.assert_allclose(_values(got), _values(ref), rtol=1e-10, atol=1e-14)
        for t in "HGR":
            assert got.intervals[t] == pytest.approx(ref.intervals[t], rel=1e-10)
    # rows a tensor: 2 sketch, then 4 of Q and 4 probes; together 2 x 2 -> 1 call, 2 x 8 -> 4
    assert sum(calls) == 20 and len(calls) == 5
    assert len(separate) < 2 * 2 * 3 and sum(separate) > sum(calls)


def test_lockstep_exact_columns_and_vectorized_rows_equal_the_materialized_hessian():
    model, x, y = twin_kernels()
    names = ["c0", "a", "b", "d"]
    got = tensors_hessian_norms(model, names, x, y, rows=8, method="columns")
    vec = tensors_hessian_norms(model, names, x, y, rows=8, method="columns", vectorized=True)
    for name, n, v in zip(names, got, vec, strict=True):
        ref = _reference(model, model.get_layer(name).kernel, x, y)
        np.testing.assert_allclose(_values(n), ref, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(_values(v), ref, rtol=1e-9, atol=1e-12)
    assert [n.method for n in got] == ["columns", "columns", "columns", "columns-linear"]


def test_unknown_options_are_refused():
    model, x, y = twin_kernels()
    with pytest.raises(TypeError, match="unknown options"):
        tensors_hessian_norms(model, ["a"], x, y, probe=4)
    with pytest.raises(ValueError, match="at least 2 probes"):
        tensors_hessian_norms(model, ["a"], x, y, method="hutchinson", probes=1)


def test_requests_answered_together_per_key_and_round():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((12, 12))
    H, G = A + A.T, A @ A.T / 12
    seen = []

    def answer(key, asks):
        seen.append((key, [i for i, _ in asks]))
        return [(V @ H[: V.shape[1], : V.shape[1]], V @ G[: V.shape[1], : V.shape[1]])
                for _, V in asks]  # fmt: skip

    gens = [deflated_requests(12, 2, 3, 0.95, 5), column_requests(12, 4),
            probe_requests(12, 5, 0.05, 5, 400, 0.95, 1),
            deflated_requests(12, 2, 3, 0.95, 5)]  # fmt: skip
    out = in_lockstep(gens, ["p", "q", "p", "p"], answer)
    # round 1: p (0, 2, 3) and q (1); round 2: p (0, 3) and q's second block; round 3: q
    assert seen[:2] == [("p", [0, 2, 3]), ("q", [1])]
    assert seen[2] == ("p", [0, 3]) and [k for k, _ in seen].count("q") == 1  # 12 columns: one
    est, gr = deflated_norms(lambda V: (V @ H, V @ G), 12, sketch=2, probes=3, seed=5)
    assert out[0].H == pytest.approx(est["H"].value, rel=1e-12) and out[3].H == out[0].H
    assert out[0].GR == pytest.approx(gr, rel=1e-12)
    np.testing.assert_allclose(out[1].H, np.linalg.norm(H), rtol=1e-12)
    np.testing.assert_allclose(out[1].R, np.linalg.norm(H - G), rtol=1e-12)
    assert out[2].intervals["H"].probes == 5


def test_own_programs_give_the_same_numbers(monkeypatch):
    model, x, y = twin_kernels()
    opts = dict(method="hutchpp", sketch=2, probes=4, seed=3)
    shared = tensors_hessian_norms(model, ["a", "b"], x, y, rows=4, **opts)
    groups = []
    inner = tensors.block_products

    def counting(model, x, y, V, **kwargs):
        groups.append(kwargs["weights"])
        return inner(model, x, y, V, **kwargs)

    monkeypatch.setattr(tensors, "block_products", counting)
    own = tensors_hessian_norms(model, ["a", "b"], x, y, rows=4, shared=False, **opts)
    for got, ref in zip(own, shared, strict=True):
        np.testing.assert_allclose(_values(got), _values(ref), rtol=1e-10, atol=1e-14)
    assert {len(g) for g in groups} == {1} and len(set(groups)) == 2  # one tensor a program
    assert len(groups) == 2 * (1 + 2)  # per tensor: its 2 sketch rows, then its 8 rows
