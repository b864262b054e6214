"""Per-sample curvature blocks of a dense layer: the pieces A_i and R_i of M_i = d^2 l_i / d a_i^2.

Imports: :mod:`hessinit.nn` and :mod:`hessinit.curvature.layers`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ..nn.activations import is_elementwise, is_piecewise_linear
from ..nn.losses import softmax_curvature_times
from ..nn.models import get_dense
from .layers import _cast_weights, _dims, _model_inputs


def _apply(h, kernel, bias, act):
    return keras.activations.get(act)(tf.matmul(h, kernel) + bias)


def _elementwise_derivatives(act, a):
    """f(a), f'(a) and f''(a) of an elementwise activation, by autodiff of f itself."""
    with tf.GradientTape() as t2:
        t2.watch(a)
        with tf.GradientTape() as t1:
            t1.watch(a)
            h = keras.activations.get(act)(a)
        d1 = t1.gradient(h, a, unconnected_gradients="zero")
    d2 = t2.gradient(d1, a, unconnected_gradients="zero")
    return h, d1, d2


def _recursive_blocks(weights, x, y, acts, first, masks=None):
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
            h, d1, d2 = _elementwise_derivatives(act, a)
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


def _autodiff_blocks(weights, x, y, acts, index):
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


def _static_blocks(blocks, dims, index):
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
    (:func:`_recursive_blocks`), anything else per-sample nested autodiff.
    """
    weights = _cast_weights(weights, dims)
    if all(map(is_elementwise, acts[index:])):
        blocks = _recursive_blocks(weights, x, y, acts, index)[0]
    else:
        blocks = _autodiff_blocks(weights, x, y, acts, index)
    return _static_blocks(blocks, dims, index)


def layer_curvature(model, layer, x, y):
    """Per-sample pieces of a dense layer's Hessian, in float64 numpy arrays.

    Returns ``(X, A, R)``: the layer's inputs X (B, n_in), the Gauss-Newton blocks
    A_i = J_i^T Lambda_i J_i and the curvature blocks R_i (both (B, n_out, n_out)), so that the
    per-sample Hessian with respect to a_i is M_i = A_i + R_i. Dropout is off (inference mode).
    """
    index, _ = get_dense(model, layer)
    weights, acts, x, y = _model_inputs(model, x, y)
    X, A, R = _curvature(weights, x, y, acts, index, _dims(weights))
    return X.numpy(), A.numpy(), R.numpy()
