"""Step size from the Hessian: the second-order Taylor model along the gradient.

Along the negative gradient g of the loss L at weights w,

    L(w - gamma g) ~ L(w) - gamma g^T g + gamma^2 / 2 g^T H g.

When g^T H g > 0 the model is minimised by gamma* = g^T g / g^T H g, with predicted decrease
(g^T g)^2 / (2 g^T H g). Comparing predicted with realised decreases tests the quadratic model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .hessian import hvp
from .models import mean_loss


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


def loss_after_step(model, x, y, direction, gamma):
    """L(w - gamma * direction), leaving the model's weights unchanged."""
    variables = model.trainable_variables
    saved = [v.numpy() for v in variables]
    try:
        for v, d in zip(variables, direction, strict=True):
            v.assign_sub(gamma * tf.cast(d, v.dtype))
        return float(mean_loss(model, x, y))
    finally:
        for v, s in zip(variables, saved, strict=True):
            v.assign(s)


def taylor_step(model, x, y, lr):
    """The Taylor quantities of :class:`TaylorStep` on the batch ``(x, y)`` for step size ``lr``."""
    loss, g = gradient(model, x, y)
    Hg = hvp(model, x, y, g)
    gg = float(sum(np.sum(np.square(t.numpy(), dtype=np.float64)) for t in g))
    gHg = float(
        sum(np.sum(a.numpy() * b.numpy(), dtype=np.float64) for a, b in zip(g, Hg, strict=True))
    )
    loss = float(loss)
    predicted = lr * gg - 0.5 * lr * lr * gHg
    realised = loss - loss_after_step(model, x, y, g, lr)
    if gHg > 0:
        gamma = gg / gHg
        predicted_star = gg * gg / (2 * gHg)
        realised_star = loss - loss_after_step(model, x, y, g, gamma)
    else:
        gamma = predicted_star = realised_star = math.nan
    return TaylorStep(
        loss, math.sqrt(gg), gHg, gamma, predicted, realised, predicted_star, realised_star
    )
