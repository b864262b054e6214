"""The loss and its curvature in the logits.

Softmax cross-entropy on logits z (B, K) with integer labels y,

    l_i = logsumexp(z_i) - z_{i, y_i},        L = (1/B) sum_i l_i,

has gradient dl_i/dz_i = p_i - e_{y_i} and Hessian d^2 l_i / dz_i^2 = Lambda_i = diag(p_i) - p_i
p_i^T with p_i = softmax(z_i). Lambda_i is positive semi-definite, which makes every Gauss-Newton
term J^T Lambda J positive semi-definite. :func:`softmax_curvature_times` is the one place that
multiplies by it.

Imports: numpy and TensorFlow only.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def cross_entropy(labels, logits):
    """Per-sample softmax cross-entropy, l_i = logsumexp(z_i) - z_{i, y_i}.

    This is the original notebook's loss, written with ``tf.gather`` instead of ``gather_nd``;
    ``reduce_logsumexp`` shifts by the largest logit, so huge logits do not overflow.

    Args:
        labels: integer classes y_i, shape (B,) or (B, 1).
        logits: z, shape (B, K), in the dtype the loss should be computed in.

    Returns:
        The per-sample losses l_i, shape (B,), in the dtype of ``logits``.

    Example:
        >>> z = tf.constant([[0.0, 0.0], [1e4, 0.0]], tf.float64)
        >>> cross_entropy([0, 1], z).numpy()  # uniform: log 2; confidently wrong: 1e4
        array([6.93147181e-01, 1.00000000e+04])
    """
    logits = tf.convert_to_tensor(logits)
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    true_logit = tf.gather(logits, labels, axis=-1, batch_dims=1)
    return tf.reduce_logsumexp(logits, axis=-1) - true_logit


def mean_loss(model, x, y):
    """Mean cross-entropy L = (1/B) sum_i l_i of ``model`` on images ``x`` with labels ``y``.

    Args:
        model: a Keras model mapping images to logits.
        x: images, shape (B, ...).
        y: integer labels, shape (B,).

    Returns:
        A scalar tensor in the model's dtype. Dropout is off (``training=False``).

    Example:
        >>> from hessinit.nn.models import mlp
        >>> model = mlp(input_shape=(3,), widths=(), sd=1e-9, seed=0, dtype="float64")
        >>> round(float(mean_loss(model, np.ones((4, 3)), [0, 1, 2, 3])), 6)  # ~ log 10
        2.302585
    """
    return tf.reduce_mean(cross_entropy(y, model(x, training=False)))


def softmax_curvature_times(p, v):
    """Lambda_i v_i with Lambda_i = diag(p_i) - p_i p_i^T, without forming Lambda_i.

    Lambda_i = d^2 l_i / dz_i^2 is the loss's Hessian in the logits. The product is
    Lambda_i v_i = p_i * v_i - p_i (p_i . v_i), taken along axis 1 of ``v``, so ``v`` may be a
    batch of vectors (B, K) or of matrices (B, K, n) whose columns are multiplied. This is the one
    place in hessinit that multiplies by Lambda: the Gauss-Newton blocks
    A_i = J_i^T Lambda_i J_i, the product G v and the materialized G all go through it.

    Args:
        p: softmax probabilities, shape (B, K).
        v: shape (B, K) or (B, K, n).

    Returns:
        A tensor shaped like ``v``, in the dtype of ``p``.

    Example:
            >>> p = tf.constant([[0.5, 0.5]], tf.float64)
        >>> softmax_curvature_times(p, tf.eye(2, dtype=tf.float64)[None]).numpy()  # Lambda
        array([[[ 0.25, -0.25],
                [-0.25,  0.25]]])
        >>> softmax_curvature_times(p, tf.ones((1, 2), tf.float64)).numpy()  # Lambda 1 = 0
        array([[0., 0.]])
    """
    p = tf.convert_to_tensor(p)
    v = tf.convert_to_tensor(v, p.dtype)
    if v.shape.rank == 2:
        return p * v - p * tf.reduce_sum(p * v, axis=1, keepdims=True)
    pe = p[:, :, None]
    return pe * v - pe * tf.reduce_sum(pe * v, axis=1, keepdims=True)


def softmax_saturation(model, x):
    """How saturated the softmax p_i = softmax(z_i) of ``model`` is on images ``x``.

    Args:
        model: a Keras model mapping images to logits.
        x: images, shape (B, ...).

    Returns:
        A dict with ``p_max`` = mean_i max_k p_ik (1/K when uniform, 1 when saturated),
        ``lambda_norm`` = mean_i ||Lambda_i||_F (the softmax curvature that every Gauss-Newton
        block A_i = J_i^T Lambda_i J_i carries; it vanishes as p_i becomes one-hot) and
        ``logit_std``, the standard deviation of the (max-shifted) logits. All are computed in
        float64 from the model's logits.

    Example:
        >>> from hessinit.nn.models import mlp
        >>> x = np.ones((2, 28, 28), np.float32)
        >>> sat = softmax_saturation(mlp(sd=1e-6, seed=0), x)
        >>> round(sat["p_max"], 3), round(sat["lambda_norm"], 4)  # uniform: sqrt(K - 1) / K
        (0.1, 0.3)
    """
    z = np.asarray(model(np.asarray(x), training=False), np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    eye = np.broadcast_to(np.eye(p.shape[1]), (len(p), p.shape[1], p.shape[1]))
    lam = softmax_curvature_times(p, eye).numpy()
    return {
        "p_max": float(p.max(axis=1).mean()),
        "lambda_norm": float(np.linalg.norm(lam, axis=(1, 2)).mean()),
        "logit_std": float(z.std()),
    }
