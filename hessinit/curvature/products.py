"""Matrix-free curvature products over all trainable weights: H v, G v and R v = H v - G v.

H v is forward-over-backward autodiff (a JVP of the gradient);
G v = (1/B) sum_i J_i^T Lambda_i J_i v is one JVP and one VJP, with J_i = dz_i/dw and Lambda_i
the softmax curvature.

Imports: :mod:`hessinit.nn`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..nn.losses import cross_entropy, softmax_curvature_times


def tf_variables(model):
    """The model's trainable weights as ``tf.Variable`` objects (what forward-mode autodiff needs;
    Keras 3 wraps each in a ``keras.Variable``)."""
    return [getattr(v, "value", v) for v in model.trainable_variables]


@tf.function(reduce_retracing=True)
def _hvp(model, x, y, vectors):
    variables = tf_variables(model)
    with tf.autodiff.ForwardAccumulator(variables, vectors) as acc:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(cross_entropy(y, model(x, training=False)))
        grads = tape.gradient(loss, variables)
    return acc.jvp(grads)


@tf.function(reduce_retracing=True)
def _gnvp(model, x, y, vectors):
    variables = tf_variables(model)
    with tf.GradientTape() as tape:
        with tf.autodiff.ForwardAccumulator(variables, vectors) as acc:
            z = model(x, training=False)
        jv = acc.jvp(z)  # J v, (B, K)
        p = tf.stop_gradient(tf.nn.softmax(z))
        lam_jv = softmax_curvature_times(p, jv)
        # d/dw of (1/B) sum_i z_i . stop(Lambda_i J_i v) is J^T Lambda J v / B.
        target = tf.reduce_sum(z * tf.stop_gradient(lam_jv)) / tf.cast(tf.shape(z)[0], z.dtype)
    return tape.gradient(target, variables)


def _as_inputs(model, x, y, vectors):
    dtype = model.trainable_variables[0].dtype
    x = tf.convert_to_tensor(x, dtype)
    y = tf.cast(tf.reshape(tf.convert_to_tensor(y), [-1]), tf.int32)
    vectors = [tf.convert_to_tensor(v, dtype) for v in vectors]
    return x, y, vectors


def hvp(model, x, y, vectors):
    """Hessian-vector product H v of the mean cross-entropy over all trainable weights.

    ``vectors``: one array per ``model.trainable_variables`` entry, same shapes. Forward-over-
    backward autodiff, compiled; returns a list of tensors shaped like the variables.
    """
    return _hvp(model, *_as_inputs(model, x, y, vectors))


def gnvp(model, x, y, vectors):
    """Gauss-Newton-vector product G v = (1/B) sum_i J_i^T Lambda_i J_i v (one JVP, one VJP)."""
    return _gnvp(model, *_as_inputs(model, x, y, vectors))


def curvature_vp(model, x, y, vectors):
    """Curvature-term product R v = H v - G v over all trainable weights."""
    return [
        h - g for h, g in zip(hvp(model, x, y, vectors), gnvp(model, x, y, vectors), strict=True)
    ]


def _flat(tensors):
    return np.concatenate([np.asarray(t, np.float64).ravel() for t in tensors])


def _unflat(vector, variables):
    out, start = [], 0
    for v in variables:
        size = int(np.prod(v.shape))
        out.append(vector[start : start + size].reshape(v.shape))
        start += size
    return out
