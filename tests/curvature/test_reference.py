"""Tests of hessinit.curvature.reference: the materialized matrices against closed forms (softmax
regression), each other and their size guard. Small shapes only."""

import numpy as np
import pytest
from curvature_cases import data, full_all, kernel_block, small_cached

from hessinit.curvature import full_gauss_newton, full_hessian, kron_matrix
from hessinit.nn import dense_layers, mlp


def test_full_references_are_symmetric_and_gauss_newton_is_psd():
    Hf, Gf = full_all("tanh")
    np.testing.assert_allclose(Hf, Hf.T, atol=1e-12 * np.abs(Hf).max())
    np.testing.assert_allclose(Gf, Gf.T, atol=1e-12 * np.abs(Gf).max())
    assert np.linalg.eigvalsh(Gf).min() > -1e-10 * np.abs(Gf).max()
    assert np.linalg.eigvalsh(Hf).min() < -1e-3 * np.abs(Hf).max()  # H is indefinite here


def test_layer_argument_gives_the_kernel_block_of_the_full_matrix():
    model, (x, y) = small_cached("tanh"), data()
    Hf, Gf = full_all("tanh")
    for name in ("dense1", "dense3"):
        np.testing.assert_allclose(
            full_hessian(model, x, y, layer=name), kernel_block(model, Hf, name), rtol=1e-12
        )
        np.testing.assert_allclose(
            full_gauss_newton(model, x, y, layer=name), kernel_block(model, Gf, name), rtol=1e-12
        )


def test_softmax_regression_closed_form():
    """z_i = W^T x_i + b: H = G = (1/B) sum_i [x_i; 1][x_i; 1]^T kron Lambda_i, row-major in W."""
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((7, 3)), rng.integers(0, 4, 7)
    model = mlp(input_shape=(3,), widths=(), num_classes=4, sd=1.0, dtype="float64")
    (layer,) = dense_layers(model)
    layer.bias.assign(rng.standard_normal(4))
    z = x @ layer.kernel.numpy() + layer.bias.numpy()
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    lam = np.stack([np.diag(q) - np.outer(q, q) for q in p])
    xe = np.c_[x, np.ones(len(x))]  # the bias is a weight with input 1, after the kernel
    ref = sum(np.kron(np.outer(a, a), m) for a, m in zip(xe, lam, strict=True)) / len(x)
    np.testing.assert_allclose(full_hessian(model, x, y), ref, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(full_gauss_newton(model, x, y), ref, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(kron_matrix(x, lam), ref[:12, :12], rtol=1e-12, atol=1e-16)


def test_kron_matrix_is_row_major_in_the_kernel():
    """Entry ((p, c), (q, d)) is (1/B) sum_i x_ip x_iq M_i[c, d]."""
    rng = np.random.default_rng(0)
    X, M = rng.standard_normal((3, 2)), rng.standard_normal((3, 4, 4))
    K = kron_matrix(X, M)
    assert K.shape == (8, 8)
    for p, c, q, d in [(0, 1, 1, 3), (1, 2, 0, 0), (1, 3, 1, 3)]:
        assert K[p * 4 + c, q * 4 + d] == pytest.approx(np.mean(X[:, p] * X[:, q] * M[:, c, d]))


def test_full_matrices_refuse_large_sizes():
    model = mlp(sd=0.01, seed=0)  # 24,790 weights
    x, y = np.zeros((2, 28, 28), np.float32), np.zeros(2, int)
    for fn in (full_hessian, full_gauss_newton):
        with pytest.raises(ValueError, match=r"max_entries.*layer_hessian_norms.*hvp"):
            fn(model, x, y)
        with pytest.raises(ValueError, match="23520 x 23520"):
            fn(model, x, y, layer="dense1")
    small = small_cached("tanh")
    sx, sy = data()
    with pytest.raises(ValueError, match="hutchinson_norm"):
        full_hessian(small, sx, sy, max_entries=143 * 143 - 1)
    assert full_hessian(small, sx, sy, layer="dense3", max_entries=25 * 25).shape == (25, 25)
