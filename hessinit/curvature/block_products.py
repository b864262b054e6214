"""Curvature products of any weight tensor of a model through one shared compiled program.

The per-tensor norms of :mod:`hessinit.curvature.tensors` need, for directions v supported on
one weight tensor theta, the products H v and G v restricted to theta (the diagonal block). A
program traced for theta alone (its variable watched by the forward accumulator, a Python
constant of the trace) is traced again for every tensor: on the default
:func:`hessinit.nn.small_resnet` at B = 1,024 a trace costs 20 to 60 s, more than the products
of a small tensor. Here one program per model (and batch shape, row count and BatchNorm mode)
takes directions over *all* P trainable weights, a matrix V of shape (c, P) whose rows are flat
in ``model.trainable_weights`` order, and returns

    (H V^T)^T and (G V^T)^T,   H = D^2_w L,   G = (1/B) sum_i J_i^T Lambda_i J_i,

over all weights (cross-tensor blocks included); a row supported on theta, read on theta's
entries (:func:`weight_slices`), is theta's block product. Every tensor of the model, whatever
its shape, reuses the one trace, and rows of different tensors can share one call. The price:
tangents of the other tensors are zeros the program cannot skip, so a row costs a full-network
forward-over-backward product even for a tensor near the logits.

H v by forward-over-backward (a forward accumulator over the inner gradient), G v = J^T
(Lambda J v) / B by the same accumulator's J v and one more backward pass; the rows run in a
``tf.map_fn`` loop with all of them in flight, or with ``vectorized=True`` in one
``tf.vectorized_map`` (the primal forward and backward passes are shared by the rows).

Imports: numpy, TensorFlow, :mod:`hessinit.nn` (losses) and :mod:`hessinit.curvature.graph`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..nn.losses import cross_entropy, softmax_curvature_times
from .graph import TRAINING, training_logits


def _tf_variables(model):
    """The ``tf.Variable`` behind each of ``model.trainable_weights``."""
    return [getattr(w, "value", w) for w in model.trainable_weights]


def weight_slices(model):
    """Where each trainable weight sits in a flat direction over all of them.

    Args:
        model: a Keras model.

    Returns:
        One ``slice`` per ``model.trainable_weights`` entry, in that order; the entries of
        weight j of a flat vector u are ``u[slices[j]]`` (row-major, as ``numpy.ravel``).

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> weight_slices(model)
        [slice(0, 6, None), slice(6, 8, None)]
    """
    out, start = [], 0
    for w in model.trainable_weights:
        size = int(np.prod(w.shape))
        out.append(slice(start, start + size))
        start += size
    return out


def _row_products(model, x, y, training, hessian):
    """The function v (flat, all weights) -> (H v, G v), flat; H v is zeros if not ``hessian``."""
    variables = _tf_variables(model)
    shapes = [v.shape for v in variables]
    sizes = [int(np.prod(s)) for s in shapes]

    def one(v):
        tangents = [tf.reshape(t, s) for t, s in zip(tf.split(v, sizes), shapes, strict=True)]
        with tf.GradientTape() as tape:
            with tf.autodiff.ForwardAccumulator(variables, tangents) as acc:
                if hessian:
                    with tf.GradientTape() as inner:
                        z = training_logits(model, x, training)
                        loss = tf.reduce_mean(cross_entropy(y, z))
                    grads = inner.gradient(loss, variables)
                else:
                    z = training_logits(model, x, training)
            jv = acc.jvp(z)
            zero = tf.UnconnectedGradients.ZERO
            hv = acc.jvp(grads, unconnected_gradients=zero) if hessian else tangents
            p = tf.stop_gradient(tf.nn.softmax(z))
            lam_jv = tf.stop_gradient(softmax_curvature_times(p, jv))
            target = tf.reduce_sum(z * lam_jv) / tf.cast(tf.shape(z)[0], z.dtype)
        gv = tape.gradient(target, variables, unconnected_gradients=zero)
        flat = [tf.reshape(t, [-1]) for t in hv], [tf.reshape(t, [-1]) for t in gv]
        return tf.concat(flat[0], 0), tf.concat(flat[1], 0)

    return one


@tf.function
def _traced(model, x, y, V, training, vectorized, hessian):
    """(H V^T)^T and (G V^T)^T; traced once per model, shapes and flags."""
    one = _row_products(model, x, y, training, hessian)
    if vectorized:
        return tf.vectorized_map(one, V)
    rows = int(V.shape[0])
    return tf.map_fn(one, V, fn_output_signature=(V.dtype, V.dtype), parallel_iterations=rows)


@tf.function(jit_compile=True)
def _compiled(model, x, y, V, training, vectorized, hessian):
    """:func:`_traced` compiled by XLA."""
    one = _row_products(model, x, y, training, hessian)
    if vectorized:
        return tf.vectorized_map(one, V)
    rows = int(V.shape[0])
    return tf.map_fn(one, V, fn_output_signature=(V.dtype, V.dtype), parallel_iterations=rows)


def block_products(model, x, y, V, *, training=TRAINING, hessian=True, vectorized=False, xla=False):
    """(H V^T)^T and (G V^T)^T over all trainable weights, one compiled program per model.

    H = D^2_w L of L = (1/B) sum_i l_i, the mean cross-entropy of the logits of
    :func:`hessinit.curvature.graph.training_logits` (BatchNorm on the batch's statistics when
    ``training``, dropout off), and G = (1/B) sum_i J_i^T Lambda_i J_i with
    Lambda_i = diag(p_i) - p_i p_i^T, both over all weights w in ``model.trainable_weights``
    order. The trace is keyed by the model, the shapes of x, y and V, ``training``,
    ``hessian``, ``vectorized`` and ``xla``, never by a weight: every tensor's block products
    share it.

    Args:
        model: a Keras model of the layers :func:`training_logits` runs.
        x: inputs, shape (B, ...), a tensor in the model's dtype.
        y: integer labels, shape (B,), a tensor.
        V: directions, shape (c, P), one per row, in the model's dtype.
        training: the BatchNorm mode.
        hessian: ``False`` skips H (G alone: one JVP and one VJP a row; HV is then V itself,
            a placeholder for callers whose logits are piecewise linear in the weight, H = G).
        vectorized: rows in one ``tf.vectorized_map`` instead of a ``tf.map_fn`` loop.
        xla: compile the program with XLA (``jit_compile=True``).

    Returns:
        (HV, GV), each of shape (c, P): row r is H V[r] and G V[r].

    Example:
        >>> import keras
        >>> from hessinit.curvature import full_hessian
        >>> model = keras.Sequential([keras.Input((2,), dtype="float64"),
        ...                           keras.layers.Dense(2, "tanh", dtype="float64"),
        ...                           keras.layers.Dense(2, dtype="float64")])
        >>> x, y = np.array([[1.0, 2.0], [-1.0, 0.5]]), np.array([0, 1])
        >>> V = np.eye(12)[:3]
        >>> HV, GV = block_products(model, tf.constant(x), tf.constant(y), tf.constant(V))
        >>> bool(np.allclose(HV.numpy(), (full_hessian(model, x, y) @ V.T).T))
        True
    """
    program = _compiled if xla else _traced
    return program(model, x, y, V, bool(training), bool(vectorized), bool(hessian))


def traces() -> int:
    """How many programs :func:`block_products` has traced in this process (all models).

    Returns:
        The number of traces of the plain and the XLA-compiled program together.

    Example:
        >>> isinstance(traces(), int)
        True
    """
    return int(_traced.experimental_get_tracing_count()) + int(
        _compiled.experimental_get_tracing_count()
    )
