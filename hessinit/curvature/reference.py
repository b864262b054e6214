"""Materialized references for tests and small models: the full Hessian, the full Gauss-Newton
matrix and the Kronecker sum as dense numpy matrices.

Imports: :mod:`hessinit.nn`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..nn.losses import cross_entropy, softmax_curvature_times
from ..nn.models import get_dense

#: Largest Hessian (rows x columns) that :func:`full_hessian` agrees to build: 4e7 entries, 320 MB.
MAX_FULL_ENTRIES = 40_000_000


def _variables(model, layer):
    if layer is None:
        return list(model.trainable_variables)
    return [get_dense(model, layer)[1].kernel]


def _check_size(n, max_entries, what):
    if n * n > max_entries:
        raise ValueError(
            f"the {what} would have {n} x {n} = {n * n:,} entries, more than max_entries="
            f"{max_entries:,}; use layer_hessian_norms, hvp or hutchinson_norm instead, or pass a "
            "larger max_entries if you have the memory"
        )


def full_hessian(model, x, y, layer=None, max_entries=MAX_FULL_ENTRIES):
    """The Hessian of the mean cross-entropy as a dense (P, P) numpy matrix, by nested autodiff.

    ``layer=None``: all trainable weights, in ``model.trainable_variables`` order, each flattened
    row-major; otherwise only that dense layer's kernel. Computed in the model's dtype. Refuses
    (``ValueError``) when P^2 exceeds ``max_entries``. A reference for tests and small models.
    """
    variables = _variables(model, layer)
    n = sum(int(np.prod(v.shape)) for v in variables)
    _check_size(n, max_entries, "Hessian")
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            loss = tf.reduce_mean(cross_entropy(y, model(x, training=False)))
        grad = tf.concat([tf.reshape(g, [-1]) for g in inner.gradient(loss, variables)], 0)
    blocks = [
        tf.reshape(outer.jacobian(grad, v, unconnected_gradients="zero"), [n, -1])
        for v in variables
    ]
    del outer
    return tf.concat(blocks, axis=1).numpy().astype(np.float64)


def full_gauss_newton(model, x, y, layer=None, max_entries=MAX_FULL_ENTRIES):
    """The Gauss-Newton matrix G = (1/B) sum_i J_i^T Lambda_i J_i (J_i = dz_i/dw) as a dense
    (P, P) numpy matrix, with the same ordering and size limit as :func:`full_hessian`."""
    variables = _variables(model, layer)
    n = sum(int(np.prod(v.shape)) for v in variables)
    _check_size(n, max_entries, "Gauss-Newton matrix")
    with tf.GradientTape() as tape:
        z = model(x, training=False)
    jac = tape.jacobian(z, variables, unconnected_gradients="zero")
    B, K = z.shape
    J = tf.concat([tf.reshape(j, [B, K, -1]) for j in jac], axis=2).numpy().astype(np.float64)
    p = tf.nn.softmax(z).numpy().astype(np.float64)
    lam = softmax_curvature_times(p, np.broadcast_to(np.eye(K), (B, K, K))).numpy()
    return np.einsum("bkm,bkl,bln->mn", J, lam, J) / B


def kron_matrix(X, M):
    """(1/B) sum_i (x_i x_i^T) kron M_i, row-major in the kernel: (p, c) -> p n_out + c."""
    X, M = np.asarray(X, np.float64), np.asarray(M, np.float64)
    B, n_in = X.shape
    n_out = M.shape[-1]
    return np.einsum("bp,bq,bcd->pcqd", X, X, M).reshape(n_in * n_out, n_in * n_out) / B
