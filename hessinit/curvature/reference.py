"""Materialized references for tests and small models, as dense float64 numpy matrices.

- :func:`full_hessian`: H = D^2_w L by nested autodiff, over all trainable weights or one kernel;
- :func:`full_gauss_newton`: G = (1/B) sum_i J_i^T Lambda_i J_i from the logits' Jacobian;
- :func:`kron_matrix`: (1/B) sum_i (x_i x_i^T) kron M_i from per-sample blocks.

These are the independent references the exact norms of :mod:`hessinit.curvature.kronecker` are
tested against. They cost O(P^2) memory: the paper's dense1 (P = 23,520) at B = 1,024 needs about
19 GB, so the two autodiff references refuse above :data:`MAX_FULL_ENTRIES` entries.

Imports: numpy, TensorFlow, Keras, :mod:`hessinit.nn` and :mod:`hessinit.curvature.products`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..nn.losses import cross_entropy, softmax_curvature_times
from ..nn.models import get_dense
from .graph import TRAINING, forward
from .products import num_params

#: Largest Hessian (rows x columns) that :func:`full_hessian` agrees to build: 4e7 entries, 320 MB.
MAX_FULL_ENTRIES = 40_000_000


def _variables(model, layer):
    """All trainable variables (``layer=None``), one variable, or a dense layer's kernel."""
    if layer is None:
        return list(model.trainable_variables)
    if isinstance(layer, keras.Variable | tf.Variable):
        return [layer]
    return [get_dense(model, layer)[1].kernel]


def _logits(model, x, training):
    """The model's logits as every curvature function sees them (:func:`.graph.forward`)."""
    if not tf.is_tensor(x):
        x = tf.convert_to_tensor(x, model.trainable_variables[0].dtype)
    return forward(model, x, training)


def _check_size(n, max_entries, what):
    """Raise ``ValueError`` if an n x n ``what`` would exceed ``max_entries`` entries."""
    if n * n > max_entries:
        raise ValueError(
            f"the {what} would have {n} x {n} = {n * n:,} entries, more than max_entries="
            f"{max_entries:,}; use layer_hessian_norms, hvp or hutchinson_norm instead, or pass a "
            "larger max_entries if you have the memory"
        )


def full_hessian(model, x, y, layer=None, max_entries=MAX_FULL_ENTRIES, training=TRAINING):
    """The Hessian H = D^2_w L of the mean cross-entropy as a dense matrix, by nested autodiff.

    L = (1/B) sum_i l_i of the logits of :func:`hessinit.curvature.graph.forward`; a
    ``tf.GradientTape`` Jacobian of the gradient. A reference for tests and small models.

    Args:
        model: a Keras model mapping inputs to logits, such as :func:`hessinit.nn.mlp`.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        layer: ``None`` for all trainable weights, in ``model.trainable_variables`` order, each
            flattened row-major; otherwise a dense layer (name, index or layer) whose kernel W
            alone is taken, entry (p, c) at p * n_out + c; or one trainable variable of the
            model (any layer), flattened row-major.
        max_entries: the largest P^2 to build.
        training: BatchNorm on the batch's statistics (``True``, the default of every
            curvature function) or on its moving ones; dropout off either way, the model left
            unchanged (:func:`hessinit.curvature.graph.forward`).

    Returns:
        The (P, P) Hessian as a float64 numpy array, computed in the model's dtype.

    Raises:
        ValueError: P^2 exceeds ``max_entries``.

    Example:
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(2,), widths=(), num_classes=2, dtype="float64")
        >>> x, y = np.array([[1.0, 2.0], [-1.0, 0.5]]), [0, 1]
        >>> H = full_hessian(model, x, y)
        >>> H.shape, bool(np.allclose(H, H.T))  # kernel (4) and bias (2) weights
        ((6, 6), True)
        >>> full_hessian(model, x, y, layer="dense1").shape
        (4, 4)
    """
    variables = _variables(model, layer)
    n = num_params(variables)
    _check_size(n, max_entries, "Hessian")
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            loss = tf.reduce_mean(cross_entropy(y, _logits(model, x, training)))
        grad = tf.concat([tf.reshape(g, [-1]) for g in inner.gradient(loss, variables)], 0)
    # one Jacobian call for all variables: one vectorized loop, not one per variable (the same
    # entries; several times faster for a whole network)
    blocks = outer.jacobian(grad, variables, unconnected_gradients="zero")
    del outer
    return tf.concat([tf.reshape(b, [n, -1]) for b in blocks], axis=1).numpy().astype(np.float64)


def full_gauss_newton(model, x, y, layer=None, max_entries=MAX_FULL_ENTRIES, training=TRAINING):
    """The Gauss-Newton matrix G = (1/B) sum_i J_i^T Lambda_i J_i as a dense matrix.

    J_i = dz_i/dw is the Jacobian of sample i's logits (``tf.GradientTape.jacobian``) and
    Lambda_i = diag(p_i) - p_i p_i^T; the product is taken in float64 numpy.

    Args:
        model: a Keras model mapping inputs to logits, such as :func:`hessinit.nn.mlp`.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,) (G does not depend on them; kept for a uniform call).
        layer: as in :func:`full_hessian`.
        max_entries: as in :func:`full_hessian`.
        training: as in :func:`full_hessian`.

    Returns:
        The (P, P) Gauss-Newton matrix as a float64 numpy array, ordered as in
        :func:`full_hessian`.

    Raises:
        ValueError: P^2 exceeds ``max_entries``.

    Example:
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(2,), widths=(), num_classes=2, dtype="float64")
        >>> x, y = np.array([[1.0, 2.0], [-1.0, 0.5]]), [0, 1]
        >>> G = full_gauss_newton(model, x, y)
        >>> bool(np.allclose(G, full_hessian(model, x, y)))  # z linear in w: H = G
        True
        >>> bool(np.linalg.eigvalsh(G).min() > -1e-15)  # G is PSD
        True
    """
    variables = _variables(model, layer)
    n = num_params(variables)
    _check_size(n, max_entries, "Gauss-Newton matrix")
    with tf.GradientTape() as tape:
        z = _logits(model, x, training)
    jac = tape.jacobian(z, variables, unconnected_gradients="zero")
    B, K = z.shape
    J = tf.concat([tf.reshape(j, [B, K, -1]) for j in jac], axis=2).numpy().astype(np.float64)
    p = tf.nn.softmax(z).numpy().astype(np.float64)
    lam = softmax_curvature_times(p, np.broadcast_to(np.eye(K), (B, K, K))).numpy()
    return np.einsum("bkm,bkl,bln->mn", J, lam, J) / B


def kron_matrix(X, M):
    """The layer Hessian (1/B) sum_i (x_i x_i^T) kron M_i as a dense matrix.

    Row-major in the kernel W: entry (p, c) of W is index p * n_out + c. With M_i = A_i + R_i
    from :func:`hessinit.curvature.layer_curvature` this is H_W; with A_i alone, G_W.

    Args:
        X: the layer's inputs x_i, shape (B, n_in).
        M: per-sample blocks M_i, shape (B, n_out, n_out).

    Returns:
        The (n_in n_out, n_in n_out) matrix as a float64 numpy array.

    Example:
        >>> kron_matrix([[1.0, 2.0]], [[[1.0, 0.0], [0.0, 3.0]]])  # x x^T kron M, B = 1
        array([[ 1.,  0.,  2.,  0.],
               [ 0.,  3.,  0.,  6.],
               [ 2.,  0.,  4.,  0.],
               [ 0.,  6.,  0., 12.]])
    """
    X, M = np.asarray(X, np.float64), np.asarray(M, np.float64)
    B, n_in = X.shape
    n_out = M.shape[-1]
    return np.einsum("bp,bq,bcd->pcqd", X, X, M).reshape(n_in * n_out, n_in * n_out) / B
