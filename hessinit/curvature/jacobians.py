"""Per-sample Jacobians of the logits in one conv or dense kernel, and the Gauss-Newton norm.

For a weight tensor theta of a ``Conv2D`` or ``Dense`` layer, with logits z_i of sample i,
J_i = dz_i / dtheta (K x P) is J_i = sum over output positions of delta_ik(pos) (x) patch_i(pos),
with delta_ik = dz_ik / da_i (K backward passes through a zero probe added to the layer's
pre-activation a) and patch_i(pos) the input patch the kernel sees there
(:func:`sample_jacobians`). Then G = (1/B) sum_i J_i^T Lambda_i J_i, Lambda_i = diag(p_i) -
p_i p_i^T, and ||G||_F = ||U^T U||_F / B for U the B K x P stack of Lambda_i^(1/2) J_i, or
||U U^T||_F when B K < P (:func:`gauss_newton_norm`). The tensors code
(:mod:`hessinit.curvature.tensors`, method ``"jacobian"``) takes ||H||_F = ||G||_F from it where
the logits are piecewise linear in theta (R = 0).

The K backward passes of the sum over samples give every sample's own delta only when the
samples are not coupled after the layer: :func:`sample_jacobians` refuses a layer followed
(directly or not) by BatchNorm on batch statistics.

Imports: numpy, TensorFlow, Keras, :mod:`hessinit.nn` (losses) and
:mod:`hessinit.curvature.graph`.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from ..nn.losses import softmax_curvature_times
from .graph import TRAINING, call_operation, functional_graph, own_nodes, run_graph


def _owner(model, variable):
    """The layer of ``model``'s graph that owns ``variable`` (None if none)."""
    for layer in functional_graph(model).operations:
        if any(v is variable for v in layer.trainable_weights):
            return layer
    return None


def _issue(model, variable, training):
    """Why :func:`sample_jacobians` may not run on ``variable`` (None if it may)."""
    layer = _owner(model, variable)
    if layer is None:
        return f"{variable.path!r} is not a trainable weight of model {model.name!r}"
    dense = isinstance(layer, keras.layers.Dense)
    conv = isinstance(layer, keras.layers.Conv2D) and layer.groups == 1
    if not (dense or (conv and layer.data_format == "channels_last")):
        return f"layer {layer.name!r} is not a Dense or a channels-last, one-group Conv2D"
    if len(own_nodes(functional_graph(model), layer)) != 1:
        return f"layer {layer.name!r} is not called exactly once"
    if training and _batchnorm_after(model, layer):
        return f"BatchNorm on batch statistics after {layer.name!r} couples the samples"
    return None


def _batchnorm_after(model, layer):
    """Whether a BatchNormalization layer depends on ``layer``'s output (graph walk)."""
    graph = functional_graph(model)
    marked = {id(t) for n in own_nodes(graph, layer) for t in tf.nest.flatten(n.outputs)}
    grown = True
    while grown:  # to a fixed point, whatever the order of the operations
        grown = False
        for op in graph.operations:
            for node in own_nodes(graph, op):
                outs = {id(t) for t in tf.nest.flatten(node.outputs)}
                if outs <= marked or not any(id(t) in marked for t in node.arguments.keras_tensors):
                    continue
                if isinstance(op, keras.layers.BatchNormalization):
                    return True
                marked |= outs
                grown = True
    return False


@tf.function
def _traced(model, x, indices, training):
    """(z, [J]) of the weights ``indices`` (:func:`sample_jacobians`), traced per their shapes.

    The forward pass is :func:`hessinit.curvature.graph.training_logits`' with the owner
    layers' calls written out, so that a watched zero probe sits on each pre-activation; one
    forward pass and K backward passes give every layer's delta.
    """
    variables = [model.trainable_weights[i] for i in indices]
    layers = list(dict.fromkeys(_owner(model, v) for v in variables))
    seen = {}
    with tf.GradientTape() as tape:

        def operation_fn(op):
            def call(*args, **kwargs):
                if any(op is layer for layer in layers):
                    h = args[0]
                    if isinstance(op, keras.layers.Dense):
                        a = tf.matmul(h, op.kernel)
                    else:
                        a = op.convolution_op(h, op.kernel)
                    if op.use_bias:
                        a = a + op.bias
                    probe = tf.zeros_like(a)
                    tape.watch(probe)
                    seen[op.name] = h, probe
                    return op.activation(a + probe)
                return call_operation(op, args, kwargs, training)

            return call

        z = run_graph(model, x, operation_fn)
        total = tf.reduce_sum(z, axis=0)  # (K,): samples are not coupled downstream
    deltas = tape.jacobian(total, [seen[layer.name][1] for layer in layers])  # (K, B, ..., C)
    B, K = tf.shape(z)[0], z.shape[-1]
    out = []
    for variable in variables:
        layer = _owner(model, variable)
        h, delta = seen[layer.name][0], deltas[[lyr.name for lyr in layers].index(layer.name)]
        delta = tf.cast(tf.reshape(delta, [K, B, -1, delta.shape[-1]]), tf.float64)
        if variable is layer.kernel:
            if isinstance(layer, keras.layers.Dense):
                patches = tf.reshape(h, [B, 1, -1])
            else:
                kh, kw = layer.kernel_size
                sh, sw = layer.strides
                dh, dw = layer.dilation_rate
                patches = tf.image.extract_patches(
                    h, [1, kh, kw, 1], [1, sh, sw, 1], [1, dh, dw, 1], layer.padding.upper()
                )
                patches = tf.reshape(patches, [B, tf.shape(delta)[2], -1])
            J = tf.einsum("bpq,kbpc->bkqc", tf.cast(patches, tf.float64), delta)
        else:
            J = tf.einsum("kbpc->bkc", delta)
        out.append(tf.reshape(J, [B, K, -1]))
    return tf.cast(z, tf.float64), out


def sample_jacobians(model, variable, x, training=TRAINING):
    """The logits and the per-sample Jacobians J_i = dz_i / dtheta of conv or dense weights.

    Several weights at once share one forward pass and the K backward passes.

    Args:
        model: a Keras model of :data:`hessinit.curvature.tensors.SUPPORTED_LAYERS`.
        variable: the kernel or bias of a ``Dense`` or ``Conv2D`` layer of ``model``, or a list
            of them.
        x: inputs, shape (B, ...), in the model's dtype.
        training: the BatchNorm mode (``True`` refuses a layer with BatchNorm after it).

    Returns:
        ``(z, J)``: the logits (B, K) and J (B, K, P), float64 tensors, J_i's columns in the
        row-major order of the weight; for a list of weights, ``(z, [J, ...])``.

    Raises:
        ValueError: a weight's layer is not a one-group channels-last ``Conv2D`` or a
            ``Dense`` called once, or BatchNorm couples the samples after it.

    Example:
        >>> model = keras.Sequential([keras.Input((2,), dtype="float64"),
        ...                           keras.layers.Dense(3, dtype="float64")])
        >>> z, J = sample_jacobians(model, model.layers[0].kernel, np.array([[1.0, 2.0]]))
        >>> J.shape, J.numpy()[0, 1].tolist()  # dz_1 / dW: x at column (a, 1), a = 0, 1
        (TensorShape([1, 3, 6]), [0.0, 1.0, 0.0, 0.0, 2.0, 0.0])
        >>> [J.shape[-1] for J in sample_jacobians(model, model.trainable_weights, [[1, 2]])[1]]
        [6, 3]
    """
    several = isinstance(variable, list | tuple)
    variables = list(variable) if several else [variable]
    for v in variables:
        issue = _issue(model, v, training)
        if issue is not None:
            raise ValueError(f"per-sample Jacobians do not apply: {issue}")
    weights = model.trainable_weights
    indices = tuple(next(i for i, w in enumerate(weights) if w is v) for v in variables)
    x = tf.convert_to_tensor(x, model.inputs[0].dtype)
    z, out = _traced(model, x, indices, bool(training))
    return (z, out) if several else (z, out[0])


def gauss_newton_norm(z, J):
    """||G||_F of G = (1/B) sum_i J_i^T Lambda_i J_i, Lambda_i of softmax(z_i), from the J_i.

    ||G||_F = ||U^T U||_F / B for U the B K x P stack of Lambda_i^(1/2) J_i, or ||U U^T||_F
    when B K < P (the smaller Gram matrix), in float64.

    Args:
        z: logits, shape (B, K).
        J: per-sample Jacobians, shape (B, K, P).

    Returns:
        ||G||_F as a float.

    Example:
        >>> z, J = np.zeros((1, 2)), np.eye(2)[None]  # Lambda = [[1, -1], [-1, 1]] / 4
        >>> round(gauss_newton_norm(z, J), 9)
        0.5
    """
    z, J = tf.cast(z, tf.float64), tf.cast(J, tf.float64)
    B, K = int(J.shape[0]), int(J.shape[1])
    p = tf.nn.softmax(z)
    lam = softmax_curvature_times(p, tf.broadcast_to(tf.eye(K, dtype=tf.float64), [B, K, K]))
    e, Q = tf.linalg.eigh(lam)
    root = tf.einsum("bkm,bm,blm->bkl", Q, tf.sqrt(tf.maximum(e, 0.0)), Q)
    U = tf.reshape(tf.einsum("bkl,blq->bkq", root, J), [B * K, -1]) / math.sqrt(B)
    small = U.shape[0] < U.shape[1]
    gram = tf.matmul(U, U, transpose_b=True) if small else tf.matmul(U, U, transpose_a=True)
    return float(np.sqrt(np.sum(np.square(gram.numpy()))))
