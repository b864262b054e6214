"""Tests of hessinit.curvature.jacobians: per-sample Jacobians of conv and dense weights equal
autodiff's Jacobians of each sample's logits, the Gauss-Newton norm from them the materialized
G's (float64), and the route refuses a layer whose samples BatchNorm couples afterwards."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hessinit.curvature import full_gauss_newton
from hessinit.curvature.jacobians import gauss_newton_norm, sample_jacobians

D = "float64"


def _model(bn_after=False, bn_before=False):
    L = keras.layers
    i = keras.Input((7, 7, 2), dtype=D)
    h = L.BatchNormalization(dtype=D)(i) if bn_before else i
    h = L.Conv2D(3, 3, strides=2, padding="same", activation="tanh", name="c", dtype=D)(h)
    h = L.BatchNormalization(dtype=D)(h) if bn_after else h
    h = L.Conv2D(2, 2, padding="valid", activation="relu", name="e", dtype=D)(h)
    h = L.GlobalAveragePooling2D(dtype=D)(h)
    model = keras.Model(i, L.Dense(4, name="d", dtype=D)(h))
    rng = np.random.default_rng(2)
    for v in model.trainable_weights:
        v.assign(rng.normal(0, 0.8, v.shape) + (1.0 if v.name == "gamma" else 0.0))
    return model, rng.standard_normal((5, 7, 7, 2)), rng.integers(0, 4, 5)


@pytest.mark.parametrize(("layer", "weight"), [("c", "kernel"), ("c", "bias"), ("e", "kernel"),
                                               ("d", "kernel"), ("d", "bias")])  # fmt: skip
def test_sample_jacobians_equal_autodiff_per_sample(layer, weight):
    model, x, y = _model()
    v = getattr(model.get_layer(layer), weight)
    z, J = sample_jacobians(model, v, x)
    with tf.GradientTape() as tape:
        logits = model(tf.constant(x))
    ref = tape.jacobian(logits, v).numpy().reshape(len(x), 4, -1)  # (B, K, P), row-major
    np.testing.assert_allclose(J.numpy(), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(z.numpy(), logits.numpy(), rtol=1e-12)
    G = full_gauss_newton(model, x, y, layer=v)
    np.testing.assert_allclose(gauss_newton_norm(z, J), np.linalg.norm(G), rtol=1e-10)


def test_batchnorm_after_the_layer_is_refused_before_it_is_not():
    model, x, _ = _model(bn_after=True)
    with pytest.raises(ValueError, match="BatchNorm on batch statistics after 'c'"):
        sample_jacobians(model, model.get_layer("c").kernel, x)
    sample_jacobians(model, model.get_layer("c").kernel, x, training=False)  # moving stats
    sample_jacobians(model, model.get_layer("e").kernel, x)  # after the BatchNorm: fine
    before, x, _ = _model(bn_before=True)
    sample_jacobians(before, before.get_layer("c").kernel, x)


def test_gauss_newton_norm_takes_the_smaller_gram():
    rng = np.random.default_rng(0)
    z, J = rng.standard_normal((3, 4)), rng.standard_normal((3, 4, 20))  # B K = 12 < P = 20
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    G = sum(J[i].T @ (np.diag(p[i]) - np.outer(p[i], p[i])) @ J[i] for i in range(3)) / 3
    np.testing.assert_allclose(gauss_newton_norm(z, J), np.linalg.norm(G), rtol=1e-12)
    np.testing.assert_allclose(gauss_newton_norm(z, J[:, :, :5]), np.linalg.norm(
        sum(J[i, :, :5].T @ (np.diag(p[i]) - np.outer(p[i], p[i])) @ J[i, :, :5]
            for i in range(3)) / 3), rtol=1e-12)  # fmt: skip


def test_several_weights_share_one_pass_and_keep_their_own_jacobians():
    model, x, _ = _model()
    weights = [model.get_layer("e").kernel, model.get_layer("c").kernel,
               model.get_layer("c").bias, model.get_layer("d").kernel]  # fmt: skip
    z, Js = sample_jacobians(model, weights, x)
    assert len(Js) == 4
    for v, J in zip(weights, Js, strict=True):
        z1, J1 = sample_jacobians(model, v, x)
        np.testing.assert_allclose(J.numpy(), J1.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(z.numpy(), z1.numpy(), rtol=1e-12)
