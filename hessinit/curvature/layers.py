"""The layer protocol: what the exact curvature code reads off a Keras model.

A supported model is a stack of ``Flatten``, ``Dense`` and ``Dropout`` layers. For each dense
layer the code needs its kernel W (n_in x n_out), its bias b, its activation f (any Keras
activation; entries of :data:`hessinit.nn.activations.REGISTRY` take the fast path) and the
inverted-dropout rate after it; per sample it
then forms the input x_i, the pre-activation a_i = W^T x_i + b and the backward Jacobians.

Imports: numpy, TensorFlow, Keras, :mod:`hessinit.nn` and :mod:`hessinit.curvature.graph`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..nn.activations import activation_name
from .graph import dense_stack_issue


def dense_stack(model):
    """The model as a list of ``[kernel, bias, activation name, dropout rate after the layer]``.

    Only for a model that :func:`hessinit.curvature.graph.dense_stack_issue` proves to be one
    chain of ``Flatten``, ``Dense`` and ``Dropout`` layers: anything else (a ``keras.ops`` call
    between layers, a layer called twice, a subclassed ``call``) raises ``TypeError`` naming it.
    """
    issue = dense_stack_issue(model)
    if issue is not None:
        raise TypeError(
            f"the dense-stack (Kronecker) route does not apply: {issue}; it needs one chain of "
            "Flatten, Dense and Dropout layers, such as models.mlp"
        )
    stack = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            bias = layer.bias if layer.use_bias else tf.zeros(layer.units, layer.kernel.dtype)
            stack.append([layer.kernel, bias, activation_name(layer.activation), 0.0])
        elif isinstance(layer, keras.layers.Dropout) and stack:
            stack[-1][3] = 1.0 - (1.0 - stack[-1][3]) * (1.0 - float(layer.rate))
    return stack


def dropout_masks(model, batch, seed=0):
    """Fixed inverted-dropout masks m_k for the hidden layers of ``model``.

    With the masks held fixed, the training-mode network computes h_k = m_k * f(a_k) and its loss
    is a smooth function of the weights again, so its layer Hessians are well defined; pass the
    masks as ``masks`` to :func:`hessinit.curvature.hessian_norms_all_layers`. Entries are 0 or
    1/q, drawn i.i.d. with the keep probability q of the dropout after that layer (several
    dropouts in a row multiply their q); layers without dropout get ones.

    Args:
        model: a stack of ``Flatten``, ``Dense`` and ``Dropout`` layers, such as
            :func:`hessinit.nn.mlp` with ``dropout > 0``.
        batch: B, the number of samples the masks are for.
        seed: seed of the numpy generator that draws the masks.

    Returns:
        A list with one float64 array (B, n_out) per hidden dense layer.

    Raises:
        TypeError: the model has a layer other than ``Flatten``, ``Dense`` or ``Dropout``.

    Example:
        >>> from hessinit.nn import mlp
        >>> masks = dropout_masks(mlp(input_shape=(3,), widths=(4, 2), dropout=0.5), batch=2)
        >>> [m.shape for m in masks], np.unique(np.concatenate(masks, axis=1))
        ([(2, 4), (2, 2)], array([0., 2.]))
    """
    rng = np.random.default_rng(seed)
    masks = []
    for kernel, _, _, rate in dense_stack(model)[:-1]:
        shape = (batch, int(kernel.shape[1]))
        keep = 1.0 - rate
        masks.append((rng.random(shape) < keep) / keep if rate > 0 else np.ones(shape))
    return masks


def model_inputs(model, x, y):
    """The model as float tensors of weights and a tuple of activation names, and x, y."""
    stack = dense_stack(model)
    weights = [(tf.convert_to_tensor(w), tf.convert_to_tensor(b)) for w, b, _, _ in stack]
    acts = tuple(act for _, _, act, _ in stack)
    if not tf.is_tensor(x):  # float64 models keep float64 inputs
        x = tf.convert_to_tensor(x, weights[0][0].dtype)
    y = tf.cast(tf.reshape(tf.convert_to_tensor(y), [-1]), tf.int32)
    return weights, acts, x, y


def kernel_dims(weights):
    """The static (n_in, n_out) of each layer's kernel, as a hashable tuple."""
    return tuple((int(w.shape[0]), int(w.shape[1])) for w, _ in weights)


def cast_weights(weights, dims):
    """Float64 weights with their static shapes restored.

    ``dims`` holds (n_in, n_out) per layer (:func:`kernel_dims`): ``reduce_retracing`` may have
    relaxed the traced shapes to None.
    """
    return [
        (tf.ensure_shape(tf.cast(w, tf.float64), d), tf.ensure_shape(tf.cast(b, tf.float64), d[1:]))
        for (w, b), d in zip(weights, dims, strict=True)
    ]
