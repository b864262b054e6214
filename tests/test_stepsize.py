"""Tests of hessinit.stepsize's building blocks against the full autodiff Hessian (float64, small
shapes) and closed forms; taylor_step itself is tested in tests/test_train.py."""

import numpy as np
import pytest
import tensorflow as tf

from hessinit import stepsize
from hessinit.curvature import full_hessian
from hessinit.nn import dense_layers, mlp


def _model_and_batch():
    model = mlp((4,), 3, (5,), "tanh", [1.0, 1.0], seed=2, dtype="float64")
    rng = np.random.default_rng(2)
    for layer in dense_layers(model):
        layer.bias.assign(rng.normal(0, 0.3, layer.bias.shape))
    x, y = rng.standard_normal((9, 4)), rng.integers(0, 3, 9)
    return model, tf.constant(x), tf.constant(y, tf.int32)


def test_curvature_along_gradient_matches_full_hessian_eager_and_compiled():
    model, x, y = _model_and_batch()
    H = full_hessian(model, x, y)
    for fn in (stepsize.curvature_along_gradient, tf.function(stepsize.curvature_along_gradient)):
        loss, g, gg, gHg = fn(model, x, y)
        gv = np.concatenate([np.asarray(t).ravel() for t in g])
        _, ref = stepsize.gradient(model, x, y)
        np.testing.assert_allclose(gv, np.concatenate([np.ravel(t) for t in ref]), rtol=1e-12)
        assert gg.dtype == gHg.dtype == tf.float64
        assert float(gg) == pytest.approx(gv @ gv, rel=1e-12)
        assert float(gHg) == pytest.approx(gv @ H @ gv, rel=1e-10)


def test_gamma_star_closed_forms():
    gg = tf.constant([4.0, 4.0, 4.0], tf.float64)
    gHg = tf.constant([2.0, 0.0, -3.0], tf.float64)
    np.testing.assert_array_equal(stepsize.gamma_star(gg, gHg), [2.0, 0.0, 0.0])


def test_taylor_step_at_a_stationary_point_reports_nan():
    """Zero weights, zero inputs and balanced labels: p = 1/K and g = mean(p - onehot(y)) = 0
    exactly, so g^T H g = 0 and the quadratic model has no minimum along -g."""
    model = mlp((2,), 3, (), sd=1.0, dtype="float64")
    model.set_weights([np.zeros((2, 3)), np.zeros(3)])
    t = stepsize.taylor_step(model, np.zeros((3, 2)), [0, 1, 2], lr=0.1)
    assert t.loss == pytest.approx(np.log(3), rel=1e-15)
    assert (t.grad_norm, t.gHg, t.predicted, t.realised) == (0.0, 0.0, 0.0, 0.0)
    assert np.isnan(t.gamma_star) and np.isnan(t.predicted_star) and np.isnan(t.realised_star)
