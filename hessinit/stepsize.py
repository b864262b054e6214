"""Step size from the Hessian: the second-order Taylor model along the gradient.

Along the negative gradient g of the loss L at weights w,

    L(w - gamma g) ~ L(w) - gamma g^T g + gamma^2 / 2 g^T H g.

When g^T H g > 0 the model is minimised by gamma* = g^T g / g^T H g, with predicted decrease
(g^T g)^2 / (2 g^T H g). Comparing predicted with realised decreases tests the quadratic model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

from .curvature import tf_variables
from .nn import cross_entropy, mean_loss


@dataclass(frozen=True)
class TaylorStep:
    """Gradient norm ||g||, curvature g^T H g, gamma* and decreases of L at step ``lr`` and gamma*.

    ``predicted = lr g^T g - lr^2/2 g^T H g``, ``realised = L(w) - L(w - lr g)``, and the same at
    gamma* (``NaN`` where g^T H g <= 0: the quadratic model has no minimum along -g).
    """

    loss: float
    grad_norm: float
    gHg: float
    gamma_star: float
    predicted: float
    realised: float
    predicted_star: float
    realised_star: float


def gradient(model, x, y):
    """Loss L and its gradient (a list shaped like ``model.trainable_variables``)."""
    with tf.GradientTape() as tape:
        loss = mean_loss(model, x, y)
    return loss, tape.gradient(loss, model.trainable_variables)


def curvature_along_gradient(model, x, y):
    """L, its gradient g (a list like the variables), g^T g and g^T H g (float64), for use inside
    a ``tf.function``: one gradient and one forward-over-backward Hessian-vector product."""
    variables = tf_variables(model)
    with tf.GradientTape() as tape:
        loss = mean_loss(model, x, y)
    g = tape.gradient(loss, variables)
    with tf.autodiff.ForwardAccumulator(variables, g) as acc:
        with tf.GradientTape() as inner:
            inner_loss = mean_loss(model, x, y)
        inner_g = inner.gradient(inner_loss, variables)
    Hg = acc.jvp(inner_g)
    f64 = [tf.cast(t, tf.float64) for t in g]
    gg = tf.add_n([tf.reduce_sum(t * t) for t in f64])
    gHg = tf.add_n(
        [tf.reduce_sum(t * tf.cast(h, tf.float64)) for t, h in zip(f64, Hg, strict=True)]
    )
    return loss, g, gg, gHg


def gamma_star(gg, gHg):
    """gamma* = g^T g / g^T H g where g^T H g > 0, else 0 (no minimum along -g: no step)."""
    return tf.where(gHg > 0, gg / tf.where(gHg > 0, gHg, 1.0), tf.zeros_like(gg))


@tf.function(reduce_retracing=True)
def _taylor_quantities(model, x, y, lr):
    """L, g^T g, g^T H g, gamma* and L(w - lr g), L(w - gamma* g) in one compiled call.

    The displaced losses use ``model.stateless_call``: the weights are never assigned.
    """
    variables = tf_variables(model)
    loss, g, gg, gHg = curvature_along_gradient(model, x, y)
    gamma = gamma_star(gg, gHg)
    non_trainable = [v.value for v in model.non_trainable_variables]

    def displaced(step):
        moved = [v - tf.cast(step, v.dtype) * d for v, d in zip(variables, g, strict=True)]
        logits, _ = model.stateless_call(moved, non_trainable, x, training=False)
        return tf.reduce_mean(cross_entropy(y, logits))

    return loss, gg, gHg, gamma, displaced(lr), displaced(gamma)


def taylor_step(model, x, y, lr):
    """The Taylor quantities of :class:`TaylorStep` on the batch ``(x, y)`` for step size ``lr``."""
    dtype = model.trainable_variables[0].dtype
    x = tf.convert_to_tensor(x, dtype)
    y = tf.cast(tf.reshape(tf.convert_to_tensor(y), [-1]), tf.int32)
    out = _taylor_quantities(model, x, y, tf.constant(float(lr), tf.float64))
    loss, gg, gHg, gamma, loss_lr, loss_star = (float(t) for t in out)
    predicted = lr * gg - 0.5 * lr * lr * gHg
    realised = loss - loss_lr
    if gHg > 0:
        predicted_star = gg * gg / (2 * gHg)
        realised_star = loss - loss_star
    else:
        gamma = predicted_star = realised_star = math.nan
    return TaylorStep(
        loss, math.sqrt(gg), gHg, gamma, predicted, realised, predicted_star, realised_star
    )
