"""Matrix-free curvature products over all trainable weights: H v, G v and R v = H v - G v.

With w all trainable weights, z_i = z_i(w) the logits of sample i and L = (1/B) sum_i l_i:

    H v = D^2_w L v                                   (forward-over-backward: a JVP of the gradient)
    G v = (1/B) sum_i J_i^T Lambda_i J_i v            (one JVP and one VJP; J_i = dz_i/dw)
    R v = H v - G v                                   (the curvature term's product)

with Lambda_i = diag(p_i) - p_i p_i^T the softmax curvature
(:func:`hessinit.nn.losses.softmax_curvature_times`). G is positive semi-definite, H and R are
indefinite in general. Vectors are lists of arrays shaped like ``model.trainable_variables``.
:func:`hvp_graph` is the one forward-over-backward Hessian-vector product in hessinit (the step
size code uses it too), :func:`num_params` the one parameter count.

Imports: numpy, TensorFlow and :mod:`hessinit.nn`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..nn.losses import cross_entropy, softmax_curvature_times
from .graph import TRAINING, forward
from .inputs import check_call


def tf_variables(model):
    """The model's trainable weights as ``tf.Variable`` objects.

    Forward-mode autodiff (``tf.autodiff.ForwardAccumulator``) needs the TensorFlow variables
    themselves; Keras 3 wraps each in a ``keras.Variable``.

    Args:
        model: a Keras model.

    Returns:
        A list of ``tf.Variable`` in ``model.trainable_variables`` order.

    Example:
        >>> from hessinit.nn import mlp
        >>> [type(v).__name__ for v in tf_variables(mlp(input_shape=(3,), widths=()))]
        ['ResourceVariable', 'ResourceVariable']
    """
    return [getattr(v, "value", v) for v in model.trainable_variables]


def num_params(variables):
    """The number of scalar parameters P = sum of the variables' sizes.

    Args:
        variables: a list of variables, tensors or arrays (anything with a ``shape``), such as
            ``model.trainable_variables``.

    Returns:
        P as a Python int; the side of the Hessian over ``variables``.

    Example:
        >>> from hessinit.nn import mlp
        >>> num_params(mlp(sd=0.01, seed=0).trainable_variables)  # 784 * 30 + 30 + ...
        24790
    """
    return sum(_size(v) for v in variables)


def _size(variable):
    """The number of entries of one variable (anything with a ``shape``)."""
    return int(np.prod(variable.shape))


def hvp_graph(variables, loss_fn, vectors):
    """H v of a scalar loss by forward-over-backward autodiff: a JVP of the gradient.

    H v = d/dt grad L(w + t v) at t = 0: a ``tf.GradientTape`` takes the gradient inside a
    ``tf.autodiff.ForwardAccumulator`` that pushes v through it, at about the cost of two
    gradients. Runs eagerly or inside a ``tf.function``; :func:`hvp` and
    :func:`hessinit.stepsize.curvature_along_gradient` both go through it.

    Args:
        variables: the ``tf.Variable`` objects w (:func:`tf_variables` for a Keras model).
        loss_fn: a function of no arguments that computes the scalar loss L from ``variables``.
        vectors: v, one tensor per variable, same shapes and dtypes.

    Returns:
        H v as a list of tensors shaped like ``variables``.

    Example:
        >>> w = tf.Variable([1.0, 2.0], dtype=tf.float64)
        >>> S = tf.constant([[2.0, 1.0], [1.0, 3.0]], tf.float64)
        >>> quadratic = lambda: 0.5 * tf.tensordot(w, tf.linalg.matvec(S, w), 1)  # H = S
        >>> hvp_graph([w], quadratic, [tf.constant([1.0, 0.0], tf.float64)])[0].numpy()
        array([2., 1.])
    """
    with tf.autodiff.ForwardAccumulator(variables, vectors) as acc:
        with tf.GradientTape() as tape:
            loss = loss_fn()
        grads = tape.gradient(loss, variables)
    return acc.jvp(grads)


@tf.function(reduce_retracing=True)
def _hvp(model, x, y, vectors, training):
    """Compiled H v of the mean cross-entropy of :func:`~hessinit.curvature.graph.forward`."""
    return hvp_graph(
        tf_variables(model),
        lambda: tf.reduce_mean(cross_entropy(y, forward(model, x, training))),
        vectors,
    )


@tf.function(reduce_retracing=True)
def _gnvp(model, x, y, vectors, training):
    """Compiled G v = (1/B) sum_i J_i^T Lambda_i J_i v of the model."""
    variables = tf_variables(model)
    with tf.GradientTape() as tape:
        with tf.autodiff.ForwardAccumulator(variables, vectors) as acc:
            z = forward(model, x, training)
        jv = acc.jvp(z)  # J v, (B, K)
        p = tf.stop_gradient(tf.nn.softmax(z))
        lam_jv = softmax_curvature_times(p, jv)
        # d/dw of (1/B) sum_i z_i . stop(Lambda_i J_i v) is J^T Lambda J v / B.
        target = tf.reduce_sum(z * tf.stop_gradient(lam_jv)) / tf.cast(tf.shape(z)[0], z.dtype)
    return tape.gradient(target, variables)


#: The terms of H = G + R a product, spectrum, trace or density can be taken of.
TERMS = ("H", "G", "R")


def term_product(model, x, y, vectors, term="H", training=TRAINING):
    """The ``term`` product (H v, G v or R v = H v - G v) over all trainable weights, unchecked.

    The compiled core of :func:`hvp`, :func:`gnvp` and :func:`curvature_vp` for callers that
    already checked their inputs once (:func:`hessinit.curvature.inputs.check_call`) and then
    take many products, such as Lanczos.

    Args:
        model: a Keras model mapping inputs to logits.
        x: inputs as a tensor in the model's dtype.
        y: int32 labels (B,).
        vectors: v, one tensor per variable, in the model's dtype.
        term: ``"H"``, ``"G"`` or ``"R"``.
        training: the BatchNorm mode of :func:`hessinit.curvature.graph.forward`.

    Returns:
        The product as a list of tensors shaped like the variables.
    """
    if term not in TERMS:
        raise ValueError(f"term must be one of {TERMS}, got {term!r}")
    training = bool(training)
    if term == "G":
        return _gnvp(model, x, y, vectors, training)
    hv = _hvp(model, x, y, vectors, training)
    if term == "H":
        return hv
    gv = _gnvp(model, x, y, vectors, training)
    return [h - g for h, g in zip(hv, gv, strict=True)]


def _checked(model, x, y, vectors):
    """x, y checked at the door and the vectors as tensors in the model's dtype."""
    x, y = check_call(model, x, y)
    variables = model.trainable_variables
    if len(vectors) != len(variables):
        raise ValueError(
            f"need one vector per trainable variable ({len(variables)}), got {len(vectors)}"
        )
    dtype = variables[0].dtype
    vectors = [tf.convert_to_tensor(v, dtype) for v in vectors]
    for v, w in zip(vectors, variables, strict=True):
        if tuple(v.shape) != tuple(w.shape):
            raise ValueError(f"vector of shape {tuple(v.shape)} for {w.path} of shape {w.shape}")
    return x, y, vectors


def hvp(model, x, y, vectors, *, training=TRAINING):
    """Hessian-vector product H v of the mean cross-entropy over all trainable weights.

    H = D^2_w L with L = (1/B) sum_i l_i of the logits of
    :func:`hessinit.curvature.graph.forward` (``training=True``: BatchNorm on the batch's
    statistics; dropout off), cross-layer blocks included; computed by :func:`hvp_graph` in a
    compiled function, in the model's dtype.

    Args:
        model: a Keras model mapping inputs to logits, such as :func:`hessinit.nn.mlp`.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,) (or one-hot, see :mod:`hessinit.curvature.inputs`).
        vectors: v, one array per ``model.trainable_variables`` entry, same shapes.
        training: the BatchNorm mode (keyword only).

    Returns:
        H v as a list of tensors shaped like the variables.

    Raises:
        ValueError, TypeError: inputs refused at the door (:mod:`hessinit.curvature.inputs`).

    Example:
        >>> from hessinit.curvature import full_hessian
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(2,), widths=(), num_classes=2, sd=1.0,
        ...             dtype="float64")
        >>> x, y = np.array([[1.0, 2.0], [-1.0, 0.5]]), [0, 1]
        >>> v = [np.ones((2, 2)), np.zeros(2)]
        >>> Hv = np.concatenate([t.numpy().ravel() for t in hvp(model, x, y, v)])
        >>> np.allclose(Hv, full_hessian(model, x, y) @ np.r_[np.ones(4), np.zeros(2)])
        True
    """
    return term_product(model, *_checked(model, x, y, vectors), "H", training)


def gnvp(model, x, y, vectors, *, training=TRAINING):
    """Gauss-Newton-vector product G v = (1/B) sum_i J_i^T Lambda_i J_i v (one JVP, one VJP).

    J_i = dz_i/dw is the Jacobian of sample i's logits in all trainable weights w and
    Lambda_i = diag(p_i) - p_i p_i^T; G is positive semi-definite. Logits as in :func:`hvp`,
    compiled, in the model's dtype.

    Args:
        model: a Keras model mapping inputs to logits, such as :func:`hessinit.nn.mlp`.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,) (G does not depend on them; checked all the same).
        vectors: v, one array per ``model.trainable_variables`` entry, same shapes.
        training: the BatchNorm mode (keyword only).

    Returns:
        G v as a list of tensors shaped like the variables.

    Example:
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(2,), widths=(3,), num_classes=2, dtype="float64")
        >>> x, y = np.array([[1.0, 2.0], [-1.0, 0.5]]), [0, 1]
        >>> v = [np.ones(w.shape) for w in model.trainable_variables]
        >>> vGv = sum(np.sum(a * b) for a, b in zip(v, gnvp(model, x, y, v)))
        >>> bool(vGv >= 0)  # G is PSD
        True
    """
    return term_product(model, *_checked(model, x, y, vectors), "G", training)


def curvature_vp(model, x, y, vectors, *, training=TRAINING):
    """Curvature-term product R v = H v - G v over all trainable weights.

    R = sum_i (1/B) sum_k (dl_i/dz_ik) D^2_w z_ik, the part of H the Gauss-Newton term misses.

    Args:
        model: a Keras model mapping inputs to logits, such as :func:`hessinit.nn.mlp`.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        vectors: v, one array per ``model.trainable_variables`` entry, same shapes.
        training: the BatchNorm mode (keyword only).

    Returns:
        R v as a list of tensors shaped like the variables.

    Example:
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(2,), widths=(), num_classes=2, dtype="float64")
        >>> x, y = np.array([[1.0, 2.0], [-1.0, 0.5]]), [0, 1]
        >>> v = [np.ones((2, 2)), np.ones(2)]
        >>> Rv = curvature_vp(model, x, y, v)  # z is linear in w: R = 0
        >>> max(float(np.abs(t).max()) for t in Rv) < 1e-15
        True
    """
    return term_product(model, *_checked(model, x, y, vectors), "R", training)


def flatten(tensors):
    """Concatenate tensors into one flat float64 numpy vector."""
    return np.concatenate([np.asarray(t, np.float64).ravel() for t in tensors])


def unflatten(vector, variables):
    """Split a flat vector into arrays shaped like ``variables`` (inverse of :func:`flatten`)."""
    out, start = [], 0
    for v in variables:
        size = _size(v)
        out.append(vector[start : start + size].reshape(v.shape))
        start += size
    return out
