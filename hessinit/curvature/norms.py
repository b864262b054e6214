"""One entry point for the Hessian norms of any weight tensor: the route proved, then taken.

For one weight tensor theta of a model (a layer's kernel, bias, BatchNorm scale, ...),

    H = D^2_theta L = G + R,   ||H||_F, ||G||_F, ||R||_F and <G, R>_F,

of the mean cross-entropy of the logits of :func:`hessinit.curvature.graph.forward` (``training``
True by default: BatchNorm on batch statistics, dropout off). :func:`hessian_norms` picks the
route from what it can prove about the model:

1. ``"kronecker"``: a dense kernel of a model proved to be a dense stack
   (:func:`hessinit.curvature.kronecker.layer_hessian_norms`, exact, no matrix formed);
2. the per-tensor routes of :mod:`hessinit.curvature.tensors` (``"kronecker"`` for the logits
   layer, ``"jacobian"``, ``"columns"``, ``"columns-linear"``, ``"hutchinson"``, and
   ``"hutchpp"`` when asked for) for graphs of
   :data:`hessinit.curvature.tensors.SUPPORTED_LAYERS`;
3. ``"autodiff"``: any other model (``keras.ops`` between layers, subclassed, nested models):
   exact columns H e_p and G e_p by autodiff products on the model's own call (2P products),
   refused with the reason when 2P exceeds ``max_products``.

The returned :class:`~hessinit.curvature.HessianNorms` says in ``method`` which route ran.

Imports: numpy, TensorFlow and :mod:`hessinit.curvature` (graph, inputs, kronecker, tensors,
operators, products).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from ..nn.models import get_dense
from .graph import TRAINING
from .inputs import check_call, resolve_weight
from .kronecker import HessianNorms
from .kronecker import layer_hessian_norms as dense_stack_norms
from .operators import kronecker_issue
from .products import term_product
from .tensors import tensor_hessian_norms

#: The routes :func:`hessian_norms` accepts.
NORM_METHODS = ("auto", "kronecker", "columns", "hutchinson", "hutchpp", "autodiff")


def _autodiff_columns(model, x, y, variable, training):
    """HessianNorms of one tensor from its columns H e_p, G e_p by autodiff products."""
    variables = list(model.trainable_variables)
    index = next(i for i, v in enumerate(variables) if v is variable)
    dtype, shape = variables[index].dtype, variables[index].shape
    zeros = [tf.zeros(v.shape, dtype) for v in variables]
    sums = np.zeros(4)
    size = int(np.prod(shape))
    for p in range(size):
        vectors = list(zeros)
        vectors[index] = tf.reshape(tf.one_hot(p, size, dtype=dtype), shape)
        hv = np.asarray(term_product(model, x, y, vectors, "H", training)[index], np.float64)
        gv = np.asarray(term_product(model, x, y, vectors, "G", training)[index], np.float64)
        rv = hv - gv
        sums += [np.sum(hv * hv), np.sum(gv * gv), np.sum(rv * rv), np.sum(gv * rv)]
    hh, gg, rr, gr = sums
    return HessianNorms(math.sqrt(hh), math.sqrt(gg), math.sqrt(rr), float(gr), "autodiff")


def hessian_norms(
    model,
    layer,
    x,
    y,
    *,
    weight=None,
    training=TRAINING,
    method="auto",
    chunk=1024,
    precision="float64",
    max_products=4096,
    **options,
):
    """||H||_F, ||G||_F, ||R||_F and <G, R> of one weight tensor, by a proved route.

    Args:
        model: a Keras model mapping inputs to logits (built; no softmax on the output).
        layer: a layer name (such as ``"dense1"`` or ``"conv1"``), a layer of the model, or one
            of its trainable variables. Integers are refused: give the name.
        x: inputs, shape (B, ...).
        y: integer labels in [0, K), shape (B,), or one-hot (B, K).
        weight: with a layer, the weight's name (``"kernel"``, ``"bias"``, ``"gamma"``, ...);
            ``None``: its kernel (or first weight).
        training: the BatchNorm mode (module docstring); models without BatchNorm give the same
            numbers either way.
        method: one of :data:`NORM_METHODS` (``"auto"``: the first route whose preconditions
            hold, module docstring).
        chunk: the Kronecker route's block size (:func:`hessinit.curvature.kron_norms`).
        precision: the Kronecker route's Gram precision.
        max_products: the most products an exact column route may take
            (:func:`hessinit.curvature.tensors.plan_tensor`; also bounds ``"autodiff"``).
        **options: the Hutchinson options of
            :func:`hessinit.curvature.tensors.tensor_hessian_norms` (``rel_width``, ``probes``,
            ``max_probes``, ``level``, ``seed``, and ``sketch`` for ``method="hutchpp"``, the
            deflated estimate with intervals) and its ``memory``.

    Returns:
        :class:`~hessinit.curvature.HessianNorms`, ``method`` the route taken.

    Raises:
        ValueError, TypeError: inputs refused at the door (:mod:`hessinit.curvature.inputs`), a
            route whose preconditions fail (the message names the layer or operation), or an
            unaffordable autodiff fallback.

    Example:
        >>> import keras
        >>> inputs = keras.Input((3,), dtype="float64")
        >>> d1 = keras.layers.Dense(4, "tanh", dtype="float64", name="d1")
        >>> d2 = keras.layers.Dense(2, dtype="float64", name="d2")
        >>> model = keras.Model(inputs, d2(2.0 * d1(inputs) + 0.5))  # keras.ops between layers
        >>> x, y = np.random.default_rng(0).random((5, 3)), [0, 1, 0, 1, 1]
        >>> n = hessian_norms(model, "d1", x, y)
        >>> n.method  # neither the dense-stack nor the per-layer routes can prove this graph
        'autodiff'
    """
    if method not in NORM_METHODS:
        raise ValueError(f"method must be one of {NORM_METHODS}, got {method!r}")
    x, y = check_call(model, x, y)
    variable = resolve_weight(model, layer, weight)
    if method in ("auto", "kronecker"):
        issue = kronecker_issue(model, variable)
        if issue is None:
            owner = next(lyr for lyr in model.layers if getattr(lyr, "kernel", None) is variable)
            return dense_stack_norms(model, owner, x, y, chunk=chunk, precision=precision)
        if method == "kronecker":
            raise ValueError(f"method='kronecker' does not apply: {issue}")
    if method != "autodiff":
        try:
            return tensor_hessian_norms(
                model,
                variable,
                x,
                y,
                method="auto" if method == "auto" else method,
                training=training,
                max_products=max_products,
                **options,
            )
        except TypeError as err:
            if method != "auto":
                raise
            reason = str(err)
    else:
        reason = "method='autodiff' asked"
    size = int(np.prod(variable.shape))
    if 2 * size > max_products:
        raise TypeError(
            f"{reason}; the autodiff fallback needs 2P = {2 * size} products, more than "
            f"max_products={max_products}: raise max_products, or rebuild the model from "
            "supported layers (hessinit.curvature.tensors.SUPPORTED_LAYERS)"
        )
    return _autodiff_columns(model, x, y, variable, bool(training))


def layer_hessian_norms(model, layer, x, y, chunk=1024, precision="float64", **options):
    """Deprecated alias of :func:`hessian_norms` (``layer`` may be a Dense index).

    The old call: an integer ``layer`` is the position among the ``Dense`` layers; ``weight``
    and the other options are passed on by keyword.

    Example:
        >>> from hessinit.nn import mlp
        >>> x, y = np.random.default_rng(0).random((8, 3)), [0, 1] * 4
        >>> model = mlp(input_shape=(3,), widths=(4,), num_classes=2, activation="tanh")
        >>> layer_hessian_norms(model, 0, x, y).method
        'kronecker'
    """
    if isinstance(layer, int) and not isinstance(layer, bool):
        layer = get_dense(model, layer)[1]
    return hessian_norms(model, layer, x, y, chunk=chunk, precision=precision, **options)
