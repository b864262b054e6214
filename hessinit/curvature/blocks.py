"""Per-sample curvature blocks of a dense layer: the pieces A_i and R_i of M_i = d^2 l_i / d a_i^2.

For a dense layer with input x_i and pre-activation a_i = W^T x_i + b, the loss l_i depends on W
only through a_i, so the layer Hessian is H_W = (1/B) sum_i (x_i x_i^T) kron M_i. The chain rule
splits M_i = A_i + R_i:

    A_i = J_i^T Lambda_i J_i,   J_i = dz_i/da_i,   Lambda_i = diag(p_i) - p_i p_i^T   (Gauss-Newton)
    R_i = sum_k (dl_i/dz_ik) d^2 z_ik / da_i^2                                    (curvature)

This module computes (x_i, A_i, R_i) in float64 by one of two exact routes: a backward recursion
through the dense stack for activations in :data:`hessinit.nn.activations.REGISTRY` (all
elementwise; R is exactly zero when every activation from the layer up is piecewise linear), or
per-sample nested autodiff for any other activation.

Imports: TensorFlow, Keras, :mod:`hessinit.nn` and :mod:`hessinit.curvature.layers`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ..nn.activations import is_elementwise, is_piecewise_linear
from ..nn.losses import softmax_curvature_times
from ..nn.models import get_dense
from .layers import cast_weights, kernel_dims, model_inputs


def _apply(h, kernel, bias, act):
    """One dense layer, f(h W + b), with ``act`` a Keras activation name."""
    return keras.activations.get(act)(tf.matmul(h, kernel) + bias)


def elementwise_derivatives(act, a):
    """f(a), f'(a) and f''(a) of an elementwise activation, by autodiff of f itself.

    Args:
        act: A Keras activation name.
        a: The pre-activations, a float tensor.

    Returns:
        tuple: ``(f(a), f'(a), f''(a))``, each shaped like ``a``.

    Example:
        >>> h, d1, d2 = elementwise_derivatives("tanh", tf.constant([0.0, 1.0], tf.float64))
        >>> [round(float(v), 4) for v in (*h, *d1, *d2)]
        [0.0, 0.7616, 1.0, 0.42, -0.0, -0.6397]
    """
    with tf.GradientTape() as t2:
        t2.watch(a)
        with tf.GradientTape() as t1:
            t1.watch(a)
            h = keras.activations.get(act)(a)
        d1 = t1.gradient(h, a, unconnected_gradients="zero")
    d2 = t2.gradient(d1, a, unconnected_gradients="zero")
    return h, d1, d2


def recursive_blocks(weights, x, y, acts, first, masks=None):
    """(X_k, A_k, R_k) for every dense layer k >= ``first`` by one backward recursion (float64).

    With h_k = f_k(a_k) the layer's output, D_k = diag(f_k'(a_k)) and s = p - onehot(y):

        J_k = J_{k+1} W_{k+1}^T D_k                                 (J = dz/da, J_L = D_L)
        R_k = D_k W_{k+1} R_{k+1} W_{k+1}^T D_k + diag(g_k f_k''(a_k)),  g_k = s^T dz/dh_k

    (R_L = diag(s f_L''(a_L)); s^T dz/dh_k = (s^T dz/da_{k+1}) W_{k+1}^T), which is the chain
    rule written out for a stack of dense layers with elementwise activations: the same
    A_k = J_k^T Lambda J_k and R_k as per-sample nested autodiff, at the cost of a few small
    matrix products instead of n_out backward passes. ``masks``: fixed dropout masks m_k on the
    hidden layers' outputs, h_k = m_k * f_k(a_k), so that f' and f'' carry the mask too.
    """
    h = tf.reshape(tf.cast(x, tf.float64), [tf.shape(x)[0], -1])
    inputs, d1s, d2s = [], [], []
    for k, ((w, b), act) in enumerate(zip(weights, acts, strict=True)):
        a = tf.matmul(h, w) + b
        m = masks[k] if masks is not None and k < len(weights) - 1 else 1.0
        if k >= first:
            inputs.append(h)
            h, d1, d2 = elementwise_derivatives(act, a)
            h, d1, d2 = m * h, m * d1, m * d2
            d1s.append(d1)
            d2s.append(d2)
        else:
            h = m * keras.activations.get(act)(a)
    p = tf.nn.softmax(h)
    s = p - tf.one_hot(y, tf.shape(h)[-1], dtype=tf.float64)
    flat = all(map(is_piecewise_linear, acts[first:]))  # ReLU/linear: every R_k is exactly zero
    J = tf.linalg.diag(d1s[-1])  # (B, K, K)
    R = tf.linalg.diag(s * d2s[-1])
    g = s * d1s[-1]  # s^T dz/da of the top layer
    blocks = []
    for k in range(len(weights) - 1, first - 1, -1):
        j = k - first
        if k < len(weights) - 1:
            w = weights[k + 1][0]
            gh = tf.matmul(g, w, transpose_b=True)  # s^T dz/dh_k
            d1 = d1s[j]
            g = gh * d1  # s^T dz/da_k
            J = tf.einsum("bkm,nm->bkn", J, w) * d1[:, None, :]
            if not flat:
                WR = tf.einsum("im,bmn->bin", w, R)
                WRW = tf.einsum("bin,jn->bij", WR, w)
                R = d1[:, :, None] * WRW * d1[:, None, :] + tf.linalg.diag(gh * d2s[j])
        A = tf.einsum("bkm,bkn->bmn", J, softmax_curvature_times(p, J))
        blocks.append((inputs[j], A, tf.zeros_like(A) if flat else R))
    return blocks[::-1]


def autodiff_blocks(weights, x, y, acts, index):
    """(X, A, R) of dense layer ``index`` by per-sample nested autodiff (any activation)."""
    h = tf.reshape(tf.cast(x, tf.float64), [tf.shape(x)[0], -1])
    for (w, b), act in zip(weights[:index], acts[:index], strict=True):
        h = _apply(h, w, b, act)
    a = tf.matmul(h, weights[index][0]) + weights[index][1]
    n_out = a.shape[-1]
    with tf.GradientTape(persistent=True) as outer:
        outer.watch(a)
        with tf.GradientTape() as inner:
            inner.watch(a)
            z = keras.activations.get(acts[index])(a)
            for (w, b), act in zip(weights[index + 1 :], acts[index + 1 :], strict=True):
                z = _apply(z, w, b, act)
            p = tf.nn.softmax(z)
            # dl/dz = p - onehot(y), held fixed: the gradient of s . z is sum_k s_k dz_k/da.
            s = tf.stop_gradient(p - tf.one_hot(y, tf.shape(z)[-1], dtype=tf.float64))
            weighted = tf.reduce_sum(s * z)
        curv_grad = inner.gradient(weighted, a, unconnected_gradients="zero")
    jac = outer.batch_jacobian(z, a)  # (B, K, n_out)
    R = outer.batch_jacobian(curv_grad, a, unconnected_gradients="zero")
    p = tf.stop_gradient(p)
    A = tf.einsum("bkm,bkn->bmn", jac, softmax_curvature_times(p, jac))
    R = tf.reshape(R, [-1, n_out, n_out])
    return h, A, R


def static_blocks(blocks, dims, index):
    """(X, A, R) of layer ``index`` reshaped to their static shapes (B, n_in), (B, n_out, n_out)."""
    X, A, R = blocks
    n_in, n_out = dims[index]
    return (
        tf.reshape(X, [-1, n_in]),
        tf.reshape(A, [-1, n_out, n_out]),
        tf.reshape(R, [-1, n_out, n_out]),
    )


@tf.function(reduce_retracing=True)
def _curvature(weights, x, y, acts, index, dims):
    """Inputs X, Gauss-Newton blocks A and curvature blocks R of dense layer ``index``, float64.

    Elementwise activations from layer ``index`` up take the backward recursion
    (:func:`recursive_blocks`), anything else per-sample nested autodiff.
    """
    weights = cast_weights(weights, dims)
    if all(map(is_elementwise, acts[index:])):
        blocks = recursive_blocks(weights, x, y, acts, index)[0]
    else:
        blocks = autodiff_blocks(weights, x, y, acts, index)
    return static_blocks(blocks, dims, index)


def layer_curvature(model, layer, x, y):
    """Per-sample pieces x_i, A_i and R_i of a dense layer's Hessian, in float64.

    The layer Hessian is H_W = (1/B) sum_i (x_i x_i^T) kron (A_i + R_i) with the Gauss-Newton
    blocks A_i = J_i^T Lambda_i J_i and the curvature blocks R_i (module docstring);
    :func:`hessinit.curvature.kron_norms` turns them into norms and
    :func:`hessinit.curvature.kron_matrix` into the matrix. Computed in float64 whatever the
    model's dtype; dropout is off (inference mode).

    Args:
        model: a stack of ``Flatten``, ``Dense`` and ``Dropout`` layers, such as
            :func:`hessinit.nn.mlp`.
        layer: the dense layer, as a name such as ``"dense1"``, an index or the layer itself.
        x: inputs, shape (B, ...); numpy inputs are cast to the model's dtype.
        y: integer labels, shape (B,).

    Returns:
        ``(X, A, R)`` as float64 numpy arrays: the layer's inputs X (B, n_in) and the blocks
        A and R (B, n_out, n_out), both symmetric, so that M_i = A_i + R_i = d^2 l_i / d a_i^2.

    Raises:
        TypeError: the model has a layer other than ``Flatten``, ``Dense`` or ``Dropout``.

    Example:
        >>> import numpy as np
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(3,), widths=(4,), num_classes=2, activation="tanh")
        >>> X, A, R = layer_curvature(model, "dense1", np.ones((5, 3)), [0, 1, 0, 1, 0])
        >>> X.shape, A.shape, bool(np.abs(R).max() > 0)  # tanh: R != 0
        ((5, 3), (5, 4, 4), True)
        >>> bool(np.linalg.eigvalsh(A).min() > -1e-15)  # A_i is PSD, as Lambda_i is
        True
    """
    index, _ = get_dense(model, layer)
    weights, acts, x, y = model_inputs(model, x, y)
    X, A, R = _curvature(weights, x, y, acts, index, kernel_dims(weights))
    return X.numpy(), A.numpy(), R.numpy()
