"""Tests of hessinit.nn.losses against independent references: the closed-form cross-entropy in
numpy, Keras' own cross-entropy, the explicit matrix Lambda = diag(p) - p p^T and autodiff of the
loss in the logits."""

import math

import numpy as np
import pytest
import tensorflow as tf

from hessinit.nn import cross_entropy, losses, mlp, softmax_curvature_times

# --------------------------------------------------------------------------------------------
# Loss
# --------------------------------------------------------------------------------------------


def _numpy_cross_entropy(labels, logits):
    logits = np.asarray(logits, np.float64)
    m = logits.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    return lse - logits[np.arange(len(labels)), labels]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_matches_keras_and_closed_form(dtype):
    rng = np.random.default_rng(0)
    logits = (3 * rng.standard_normal((50, 7))).astype(dtype)
    labels = rng.integers(0, 7, 50)
    ours = cross_entropy(labels, logits).numpy()
    assert ours.shape == (50,)
    rtol, atol = (1e-5, 1e-6) if dtype == np.float32 else (1e-12, 1e-14)
    np.testing.assert_allclose(ours, _numpy_cross_entropy(labels, logits), rtol=rtol, atol=atol)
    ref = tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    np.testing.assert_allclose(ours, ref.numpy(), rtol=max(rtol, 1e-6), atol=1e-6)
    # labels as a column (B, 1) work too
    np.testing.assert_allclose(cross_entropy(labels[:, None], logits).numpy(), ours)


@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-9), (np.float32, 2e-3)])
def test_cross_entropy_huge_logits_do_not_overflow(dtype, atol):
    # float32's spacing at 1e4 is ~1e-3, hence its atol
    logits = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 0.0], [0.0, -1e4, 1e4]], dtype)
    labels = np.array([0, 1, 0])
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert not np.all(np.isfinite(naive))  # the naive softmax does overflow here
    expected = np.array([0.0, math.log(2.0), 1e4])  # closed form
    ours = cross_entropy(labels, logits).numpy()
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=atol)
    np.testing.assert_allclose(ours, _numpy_cross_entropy(labels, logits), rtol=1e-6, atol=atol)
    ref = tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-6, atol=atol)


def test_mean_loss_is_mean_of_closed_form():
    model = mlp(input_shape=(3,), widths=(4,), num_classes=5, sd=[1.0, 1.0], seed=0)
    rng = np.random.default_rng(2)
    x, y = rng.random((9, 3), np.float32), rng.integers(0, 5, 9)
    logits = model(x).numpy()
    assert float(losses.mean_loss(model, x, y)) == pytest.approx(
        _numpy_cross_entropy(y, logits).mean(), rel=1e-6
    )


def test_softmax_saturation_closed_forms_and_homogeneity():
    rng = np.random.default_rng(0)
    x = rng.random((50, 28, 28), np.float32)
    small = losses.softmax_saturation(mlp(sd=1e-4, seed=0), x)
    big = losses.softmax_saturation(mlp(sd=10.0, seed=0), x)
    # zero biases and ReLU: the logits scale exactly with dense1's sd (positive homogeneity)
    assert big["logit_std"] / small["logit_std"] == pytest.approx(1e5, rel=1e-3)
    assert small["p_max"] < 0.2 < 0.9 < big["p_max"]
    assert big["lambda_norm"] < 0.1 * small["lambda_norm"]
    # closed form for one sample: ||diag(p) - p p^T||_F from the logits directly
    model = mlp(sd=1.0, seed=1)
    z = model(x[:1]).numpy().astype(np.float64)[0]
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    lam = np.diag(p) - np.outer(p, p)
    sat = losses.softmax_saturation(model, x[:1])
    assert sat["lambda_norm"] == pytest.approx(np.linalg.norm(lam), rel=1e-6)
    assert sat["p_max"] == pytest.approx(p.max(), rel=1e-6)


@pytest.mark.parametrize("shape", [(6, 4), (6, 4, 3)])
def test_softmax_curvature_times_is_the_explicit_matrix_product(shape):
    rng = np.random.default_rng(1)
    z = rng.standard_normal(shape[:2])
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    v = rng.standard_normal(shape)
    lam = np.stack([np.diag(q) - np.outer(q, q) for q in p])
    expected = np.einsum("bkl,bl...->bk...", lam, v)
    got = softmax_curvature_times(p, v).numpy()
    assert got.shape == shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


def test_lambda_is_the_hessian_of_the_loss_in_the_logits():
    """d^2 l_i / dz_i^2 by nested autodiff of cross_entropy equals diag(p_i) - p_i p_i^T."""
    rng = np.random.default_rng(3)
    z = tf.constant(2 * rng.standard_normal((5, 4)))
    y = rng.integers(0, 4, 5)
    with tf.GradientTape() as outer:
        outer.watch(z)
        with tf.GradientTape() as inner:
            inner.watch(z)
            loss = tf.reduce_sum(cross_entropy(y, z))
        g = inner.gradient(loss, z)
    hess = outer.batch_jacobian(g, z).numpy()
    p = tf.nn.softmax(z)
    np.testing.assert_allclose(g, p - np.eye(4)[y], rtol=1e-12, atol=1e-15)
    eye = np.broadcast_to(np.eye(4), (5, 4, 4))
    np.testing.assert_allclose(softmax_curvature_times(p, eye), hess, rtol=1e-12, atol=1e-15)
    # positive semi-definite, with the constant vector in its kernel
    assert np.linalg.eigvalsh(hess).min() > -1e-15
    np.testing.assert_allclose(softmax_curvature_times(p, np.ones((5, 4))), 0.0, atol=1e-15)
