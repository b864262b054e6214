"""Step size from the Hessian: the second-order Taylor model along the gradient.

Along the negative gradient g of the loss L at weights w,

    L(w - gamma g) ~ L(w) - gamma g^T g + gamma^2 / 2 g^T H g.

When g^T H g > 0 the model is minimised by gamma* = g^T g / g^T H g, with predicted decrease
(g^T g)^2 / (2 g^T H g). Comparing predicted with realised decreases tests the quadratic model.
H g is one forward-over-backward Hessian-vector product
(:func:`hessinit.curvature.products.hvp_graph`), so H is never formed.
:func:`sgd_steps` trains with a fixed step or with fractions of gamma* in one compiled loop.

Imports: numpy, TensorFlow, :mod:`hessinit.nn` and :mod:`hessinit.curvature`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .curvature import hvp_graph, tf_variables
from .nn import cross_entropy, mean_loss


@dataclass(frozen=True)
class TaylorStep:
    """The second-order Taylor model of L along -g, and how well it predicts at two step sizes.

    ``predicted = lr g^T g - lr^2/2 g^T H g``, ``realised = L(w) - L(w - lr g)``, and the same at
    gamma* (``NaN`` where g^T H g <= 0: the quadratic model has no minimum along -g).

    Attributes:
        loss: L(w).
        grad_norm: ||g||.
        gHg: the curvature g^T H g along the gradient.
        gamma_star: gamma* = g^T g / g^T H g (``NaN`` where g^T H g <= 0).
        predicted: the decrease the quadratic model predicts at step ``lr``.
        realised: L(w) - L(w - lr g).
        predicted_star: (g^T g)^2 / (2 g^T H g), the predicted decrease at gamma*.
        realised_star: L(w) - L(w - gamma* g).
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
    """The mean cross-entropy L of ``model`` on ``(x, y)`` and its gradient g.

    Args:
        model: a Keras model mapping inputs to logits, such as :func:`hessinit.nn.mlp`.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).

    Returns:
        ``(L, g)``: a scalar tensor and a list of tensors shaped like
        ``model.trainable_variables``.

    Example:
        >>> import numpy as np
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(3,), widths=(), sd=1e-9, dtype="float64")
        >>> loss, g = gradient(model, np.zeros((2, 3)), [0, 1])
        >>> round(float(loss), 6), g[1].numpy()[:3]  # bias gradient: mean of p - onehot(y)
        (2.302585, array([-0.4, -0.4,  0.1]))
    """
    with tf.GradientTape() as tape:
        loss = mean_loss(model, x, y)
    return loss, tape.gradient(loss, model.trainable_variables)


def curvature_along_gradient(model, x, y):
    """L, its gradient g, g^T g and the curvature g^T H g along it: one gradient and one H g.

    Meant for use inside a ``tf.function`` (it also runs eagerly). H g comes from
    :func:`hessinit.curvature.products.hvp_graph`; g^T g and g^T H g are accumulated in float64.

    Args:
        model: a Keras model mapping inputs to logits, such as :func:`hessinit.nn.mlp`.
        x: inputs as a tensor in the model's dtype, shape (B, ...).
        y: integer labels as a tensor, shape (B,).

    Returns:
        ``(L, g, gg, gHg)``: the loss (model dtype), the gradient (a list like the variables),
        and g^T g and g^T H g as float64 scalar tensors.

    Example:
        >>> import numpy as np
        >>> from hessinit.curvature import full_hessian
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(2,), widths=(), num_classes=2, dtype="float64")
        >>> x, y = np.array([[1.0, 2.0], [-1.0, 0.5]]), np.array([0, 1])
        >>> _, g, gg, gHg = curvature_along_gradient(model, x, y)
        >>> g = np.concatenate([t.numpy().ravel() for t in g])
        >>> bool(np.isclose(float(gHg), g @ full_hessian(model, x, y) @ g, rtol=1e-12))
        True
    """
    variables = tf_variables(model)
    with tf.GradientTape() as tape:
        loss = mean_loss(model, x, y)
    g = tape.gradient(loss, variables)
    Hg = hvp_graph(variables, lambda: mean_loss(model, x, y), g)
    f64 = [tf.cast(t, tf.float64) for t in g]
    gg = tf.add_n([tf.reduce_sum(t * t) for t in f64])
    gHg = tf.add_n(
        [tf.reduce_sum(t * tf.cast(h, tf.float64)) for t, h in zip(f64, Hg, strict=True)]
    )
    return loss, g, gg, gHg


def gamma_star(gg, gHg):
    """The minimiser gamma* = g^T g / g^T H g of the Taylor model along -g, or 0 without one.

    Args:
        gg: g^T g, a scalar tensor.
        gHg: g^T H g, a scalar tensor of the same dtype.

    Returns:
        gamma* where g^T H g > 0, else 0 (no minimum along -g: no step); a tensor like ``gg``.

    Example:
        >>> float(gamma_star(tf.constant(4.0), tf.constant(2.0)))
        2.0
        >>> float(gamma_star(tf.constant(4.0), tf.constant(-1.0)))  # negative curvature
        0.0
    """
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
        """The loss at w - step g."""
        moved = [v - tf.cast(step, v.dtype) * d for v, d in zip(variables, g, strict=True)]
        logits, _ = model.stateless_call(moved, non_trainable, x, training=False)
        return tf.reduce_mean(cross_entropy(y, logits))

    return loss, gg, gHg, gamma, displaced(lr), displaced(gamma)


def taylor_step(model, x, y, lr):
    """The Taylor model of the loss along -g on one batch, checked at ``lr`` and at gamma*.

    Evaluates L(w - gamma g) ~ L(w) - gamma g^T g + gamma^2 / 2 g^T H g (module docstring) and
    the realised losses at gamma = ``lr`` and gamma = gamma*, in one compiled call that leaves
    the model's weights untouched.

    Args:
        model: a Keras model mapping inputs to logits, such as :func:`hessinit.nn.mlp`.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        lr: the step size gamma to check the model at.

    Returns:
        :class:`TaylorStep` with float fields.

    Example:
        >>> import numpy as np
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(2,), widths=(), num_classes=2, dtype="float64")
        >>> x, y = np.array([[1.0, 2.0], [-1.0, 0.5]]), [0, 1]
        >>> t = taylor_step(model, x, y, lr=1e-3)
        >>> bool(abs(t.realised / t.predicted - 1) < 1e-3)  # small step: quadratic model holds
        True
        >>> bool(np.isclose(t.gamma_star, t.grad_norm**2 / t.gHg))  # gamma* = g^T g / g^T H g
        True
    """
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


@tf.function(reduce_retracing=True)
def _sgd_loop(model, x, y, batches, step, taylor):
    """SGD over the rows of ``batches`` in one compiled loop; the mini-batch losses, float64."""
    variables = tf_variables(model)
    n = tf.shape(batches)[0]
    losses = tf.TensorArray(tf.float64, size=n)
    for k in tf.range(n):
        xb, yb = tf.gather(x, batches[k]), tf.gather(y, batches[k])
        if taylor:
            loss, g, gg, gHg = curvature_along_gradient(model, xb, yb)
            lr = step * gamma_star(gg, gHg)
        else:
            with tf.GradientTape() as tape:
                loss = mean_loss(model, xb, yb)
            g, lr = tape.gradient(loss, variables), step
        for v, d in zip(variables, g, strict=True):
            v.assign_sub(tf.cast(lr, v.dtype) * d)
        losses = losses.write(k, tf.cast(loss, tf.float64))
    return losses.stack()


def sgd_steps(model, x, y, batches, lr):
    """SGD steps w <- w - gamma_k g_k over given mini-batches, in place, in one compiled loop.

    Step k uses the mini-batch ``batches[k]`` (row indices into ``x``, ``y``) and its gradient
    g_k; gamma_k is the fixed ``lr``, or fraction * gamma*_k with gamma*_k = g_k^T g_k /
    g_k^T H_k g_k of that mini-batch for ``lr = ("taylor", fraction)`` (no step where
    g_k^T H_k g_k <= 0). The same updates as :func:`hessinit.train.run` takes, without its
    checkpoints: the whole loop is one ``tf.function`` call, so a step costs one gradient (or
    a gradient and one H g) and no Python round trip.

    Args:
        model: a Keras model mapping inputs to logits, such as :func:`hessinit.nn.mlp`.
        x: all inputs, shape (N, ...).
        y: all integer labels, shape (N,).
        batches: integer array, shape (steps, b): the rows of each step's mini-batch.
        lr: a positive step size, or ``("taylor", fraction)``.

    Returns:
        The mini-batch losses before each step, a float64 numpy array of length ``steps``
        (non-finite once the run diverges).

    Raises:
        ValueError: ``lr`` neither positive nor ``("taylor", fraction)``, or ``batches`` not 2-d.

    Example:
        >>> import numpy as np
        >>> from hessinit.nn import mlp
        >>> x, y = np.eye(4, 3), np.array([0, 1, 2, 0])
        >>> model = mlp(input_shape=(3,), widths=(), num_classes=3, dtype="float64")
        >>> losses = sgd_steps(model, x, y, np.array([[0, 1, 2, 3]] * 5), lr=0.5)
        >>> losses.shape, bool(losses[-1] < losses[0])  # full-batch gradient descent
        ((5,), True)
        >>> bool(float(mean_loss(model, x, y)) < losses[-1])  # the loss after the last step
        True
    """
    taylor = isinstance(lr, tuple) and len(lr) == 2 and lr[0] == "taylor"
    if not taylor and not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number or ('taylor', fraction), got {lr!r}")
    batches = np.asarray(batches)
    if batches.ndim != 2:
        raise ValueError(f"batches must have shape (steps, b), got {batches.shape}")
    dtype = model.trainable_variables[0].dtype
    x = tf.convert_to_tensor(np.asarray(x), dtype)
    y = tf.cast(tf.convert_to_tensor(np.asarray(y)), tf.int32)
    step = tf.constant(float(lr[1] if taylor else lr), tf.float64)
    out = _sgd_loop(model, x, y, tf.constant(batches, tf.int32), step, taylor)
    return out.numpy()
