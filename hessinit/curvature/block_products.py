"""Curvature products of any weight tensor of a model through one shared compiled program.

The per-tensor norms of :mod:`hessinit.curvature.tensors` need, for directions v supported on
one weight tensor theta, the products H v and G v restricted to theta (the diagonal block). A
program traced for theta alone (its variable watched by the forward accumulator, a Python
constant of the trace) is traced again for every tensor: on the default
:func:`hessinit.nn.small_resnet` at B = 1,024 a trace costs 20 to 60 s, more than the products
of a small tensor. Here one program serves a *group* of tensors (by default all trainable
weights; the norms use the tensors of one shape): it takes directions V of shape (c, P_g),
rows flat over the group's tensors in its order, and returns

    (H_g V^T)^T and (G_g V^T)^T,   H = D^2_w L,   G = (1/B) sum_i J_i^T Lambda_i J_i,

for H_g, G_g the group's rows and columns of H and G (cross-tensor blocks within the group
included); a row supported on theta, read on theta's entries (:func:`weight_slices`), is
theta's block product. The trace is keyed by the model, the group, the shapes and the flags,
never by the tensor, so the tensors of a group share it, and rows of different tensors can
share one call. The price: the other tensors' tangents are zeros the program cannot skip. Over
all weights that made a row of ``block1_conv1`` about 1.5 times dearer than its own program's
(BatchNorm's scale and shift tangents add elementwise passes over every activation); over the
tensors of its shape the overhead is the other kernels' convolutions.

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


def _group(model, weights):
    """``weights`` as a tuple of indices into ``model.trainable_weights`` (None: all)."""
    n = len(model.trainable_weights)
    group = tuple(range(n)) if weights is None else tuple(int(i) for i in weights)
    if not group or len(set(group)) != len(group) or not all(0 <= i < n for i in group):
        raise ValueError(f"weights must be distinct indices in [0, {n}), got {weights!r}")
    return group


def _tf_variables(model, group):
    """The ``tf.Variable`` behind each of ``model.trainable_weights`` in ``group``."""
    weights = model.trainable_weights
    return [getattr(weights[i], "value", weights[i]) for i in group]


def weight_slices(model, weights=None):
    """Where each weight of a group sits in a flat direction over the group.

    Args:
        model: a Keras model.
        weights: indices into ``model.trainable_weights`` (the group, in its order); ``None``:
            all of them.

    Returns:
        One ``slice`` per weight of the group, in its order; the entries of its j-th weight in
        a flat vector u are ``u[slices[j]]`` (row-major, as ``numpy.ravel``).

    Raises:
        ValueError: an index out of range or repeated.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> weight_slices(model)
        [slice(0, 6, None), slice(6, 8, None)]
        >>> weight_slices(model, [1])
        [slice(0, 2, None)]
    """
    out, start = [], 0
    for i in _group(model, weights):
        size = int(np.prod(model.trainable_weights[i].shape))
        out.append(slice(start, start + size))
        start += size
    return out


def _row_products(model, x, y, training, hessian, group):
    """The map v (flat over ``group``) -> (H v, G v) on ``group`` (H v = v if not ``hessian``)."""
    variables = _tf_variables(model, group)
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


def _all_rows(model, x, y, V, training, vectorized, hessian, group):
    """(H V^T)^T and (G V^T)^T, every row of V in flight (map_fn) or vectorized."""
    one = _row_products(model, x, y, training, hessian, group)
    if vectorized:
        return tf.vectorized_map(one, V)
    rows = int(V.shape[0])
    return tf.map_fn(one, V, fn_output_signature=(V.dtype, V.dtype), parallel_iterations=rows)


#: :func:`_all_rows` traced once per model, shapes and flags; and compiled by XLA.
_traced = tf.function(_all_rows)
_compiled = tf.function(_all_rows, jit_compile=True)


def block_products(
    model, x, y, V, *, weights=None, training=TRAINING, hessian=True, vectorized=False, xla=False
):
    """(H V^T)^T and (G V^T)^T over a group of weights, one compiled program per group.

    H = D^2_w L of L = (1/B) sum_i l_i, the mean cross-entropy of the logits of
    :func:`hessinit.curvature.graph.training_logits` (BatchNorm on the batch's statistics when
    ``training``, dropout off), and G = (1/B) sum_i J_i^T Lambda_i J_i with
    Lambda_i = diag(p_i) - p_i p_i^T, both restricted to the rows and columns of the group's
    weights (all of ``model.trainable_weights`` by default), flat in the group's order. The
    trace is keyed by the model, the group, the shapes of x, y and V, ``training``,
    ``hessian``, ``vectorized`` and ``xla``, never by one weight: the block products of every
    tensor of the group share it.

    Args:
        model: a Keras model of the layers :func:`training_logits` runs.
        x: inputs, shape (B, ...), a tensor in the model's dtype.
        y: integer labels, shape (B,), a tensor.
        V: directions, shape (c, P_g), one per row, flat over the group (P_g its entries), in
            the model's dtype.
        weights: the group, indices into ``model.trainable_weights``; ``None``: all weights.
        training: the BatchNorm mode.
        hessian: ``False`` skips H (G alone: one JVP and one VJP a row; HV is then V itself,
            a placeholder for callers whose logits are piecewise linear in the weight, H = G).
        vectorized: rows in one ``tf.vectorized_map`` instead of a ``tf.map_fn`` loop.
        xla: compile the program with XLA (``jit_compile=True``).

    Returns:
        (HV, GV), each of shape (c, P_g): row r is H_g V[r] and G_g V[r].

    Raises:
        ValueError: ``weights`` out of range or repeated.

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
    group = _group(model, weights)
    return program(model, x, y, V, bool(training), bool(vectorized), bool(hessian), group)


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
