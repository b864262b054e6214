"""The curvature matrix of one weight tensor or of the whole network, as a checked product.

Spectra (:mod:`~hessinit.curvature.spectra`), traces and densities
(:mod:`~hessinit.curvature.density`) all need v -> M v for M one of

    H = D^2_w L,   G = (1/B) sum_i J_i^T Lambda_i J_i,   R = H - G

restricted to one weight tensor theta (the diagonal block of theta: v is zero outside theta and
only theta's part of M v is kept) or over all trainable weights w. Two routes give it:

- ``"kronecker"``: a dense layer's kernel W in a model *proved* to be a dense stack
  (:func:`hessinit.curvature.graph.dense_stack_issue`): with the per-sample blocks x_i and
  M_i of :func:`hessinit.curvature.layer_curvature`,
  H_W vec(V) = (1/B) X^T [(X V)_i M_i]_i, about one gradient's cost, in float64;
- ``"autodiff"``: forward-over-backward and Gauss-Newton products of
  :mod:`hessinit.curvature.products` on the model's own call, any model, in its dtype.

``method="auto"`` takes the Kronecker route only when its preconditions are proved, else
autodiff; ``method="kronecker"`` raises with the reason when they are not. The logits are those of
:func:`hessinit.curvature.graph.forward` in the mode ``training`` (default: BatchNorm on batch
statistics, dropout off); dense stacks have no BatchNorm, so both routes agree in both modes.

Imports: numpy, TensorFlow, Keras and :mod:`hessinit.curvature` (graph, inputs, blocks,
products).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from .blocks import layer_curvature
from .graph import TRAINING, all_layers, dense_stack_issue
from .inputs import check_call, resolve_weight
from .products import TERMS, flatten, term_product, unflatten

#: The routes to a product, ``"auto"`` choosing the first whose preconditions hold.
ROUTES = ("auto", "kronecker", "autodiff")


@dataclass(frozen=True)
class CurvatureOperator:
    """A symmetric curvature matrix given by its product.

    Attributes:
        matvec: v (float64, (size,)) -> M v as a float64 array.
        size: the side n of M (the entries of the tensor, or all P weights).
        dtype: the dtype the products are computed in.
        route: ``"kronecker"`` or ``"autodiff"``, the route actually used.
        term: ``"H"``, ``"G"`` or ``"R"``.
        training: the BatchNorm mode of the logits.
        weight: the tensor's path (such as ``"dense1/kernel"``), or ``None`` for all weights.
    """

    matvec: Callable
    size: int
    dtype: tf.DType
    route: str
    term: str
    training: bool
    weight: str | None


def check_choice(value, choices, what):
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError``."""
    if value not in choices:
        raise ValueError(f"{what} must be one of {choices}, got {value!r}")
    return value


@tf.function(reduce_retracing=True)
def _kron_product(X, M, V):
    """(1/B) X^T [M_i (X V)_i]_i in one compiled call (M_i symmetric), in X's dtype."""
    W = tf.linalg.matvec(M, tf.matmul(X, V))
    return tf.matmul(X, W, transpose_a=True) / tf.cast(tf.shape(X)[0], X.dtype)


def kronecker_matvec(X, M):
    """The product v -> (1/B) vec(X^T [(X V)_i M_i]_i), V = v as an (n_in, n_out) matrix.

    TensorFlow's matmul, not numpy's: on a shared machine a multithreaded BLAS call of this
    size can run several times slower than TensorFlow's thread pool.

    Args:
        X: the layer's inputs, (B, n_in).
        M: symmetric per-sample blocks, (B, n_out, n_out).

    Returns:
        The product as a function of a flat float64 vector of n_in n_out entries.

    Example:
        >>> matvec = kronecker_matvec(np.array([[1.0, 2.0]]), np.array([[[2.0]]]))
        >>> matvec(np.array([1.0, 0.0]))  # (x x^T kron 2) e_1 = 2 x_1 x
        array([2., 4.])
    """
    X = np.asarray(X, np.float64)
    keep = np.any(X != 0, axis=0)  # zero inputs (e.g. MNIST's border pixels) add nothing
    Xk = tf.constant(np.ascontiguousarray(X[:, keep]))
    Mt = tf.constant(np.asarray(M, np.float64))
    n_in, n_out = X.shape[1], Mt.shape[-1]

    def matvec(v):
        """H_W vec(V)."""
        out = np.zeros((n_in, n_out))
        out[keep] = _kron_product(Xk, Mt, tf.constant(v.reshape(n_in, n_out)[keep])).numpy()
        return out.ravel()

    return matvec


def _autodiff_matvec(model, x, y, term, training, indices=None):
    """The ``term`` product over all weights (``indices=None``) or over the tensors ``indices``."""
    variables = list(model.trainable_variables)
    dtype = variables[0].dtype
    zeros = [tf.zeros(v.shape, dtype) for v in variables]

    def matvec(v):
        """The product, flat float64."""
        if indices is None:
            vectors = [tf.constant(u, dtype) for u in unflatten(v, variables)]
            return flatten(term_product(model, x, y, vectors, term, training))
        vectors = list(zeros)
        parts = unflatten(v, [variables[i] for i in indices])
        for i, part in zip(indices, parts, strict=True):
            vectors[i] = tf.constant(part, dtype)
        out = term_product(model, x, y, vectors, term, training)
        return flatten([out[i] for i in indices])

    return matvec, tf.as_dtype(dtype)


def _dense_owner(model, variable):
    """The ``Dense`` layer whose kernel ``variable`` is, or None."""
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.Dense) and layer.kernel is variable:
            return layer
    return None


def kronecker_issue(model, variable):
    """Why the Kronecker route may not take ``variable`` (``None`` if it may).

    Example:
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
        >>> kronecker_issue(model, model.get_layer("d").bias)  # doctest: +ELLIPSIS
        "'.../d/bias' is not a Dense layer's kernel"
    """
    if _dense_owner(model, variable) is None:
        return f"{variable.path!r} is not a Dense layer's kernel"
    return dense_stack_issue(model)


def curvature_operator(
    model, x, y, layer=None, *, weight=None, term="H", training=TRAINING, method="auto"
):
    """M = H, G or R of one weight tensor (or all weights) as a product, route proved.

    Args:
        model: a Keras model mapping inputs to logits.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,) (or one-hot; checked by
            :func:`hessinit.curvature.inputs.check_call`).
        layer: ``None`` for all trainable weights (cross-layer blocks included); else a layer
            name, layer or variable (:func:`hessinit.curvature.inputs.resolve_weight`).
        weight: with a layer, the weight's name (default its kernel), or ``"all"``: every
            trainable weight of the layer jointly (the layer's diagonal block, its tensors
            flattened in ``layer.trainable_weights`` order; autodiff route).
        term: ``"H"``, ``"G"`` or ``"R"``.
        training: the BatchNorm mode (:func:`hessinit.curvature.graph.forward`).
        method: one of :data:`ROUTES`.

    Returns:
        :class:`CurvatureOperator`, whose ``route`` says which route was taken.

    Raises:
        ValueError: unknown ``term`` or ``method``, ``method="kronecker"`` where its
            preconditions fail (the message says which), or inputs refused at the door.

    Example:
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(3,), widths=(4,), num_classes=2, dtype="float64")
        >>> x, y = np.ones((2, 3)), [0, 1]
        >>> curvature_operator(model, x, y, "dense1").route
        'kronecker'
        >>> curvature_operator(model, x, y, "dense1", weight="bias").route
        'autodiff'
    """
    check_choice(term, TERMS, "term")
    check_choice(method, ROUTES, "method")
    x, y = check_call(model, x, y)
    training = bool(training)
    if layer is None:
        if method == "kronecker":
            raise ValueError("method='kronecker' is for one dense kernel, not the whole network")
        matvec, dtype = _autodiff_matvec(model, x, y, term, training)
        size = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
        return CurvatureOperator(matvec, size, dtype, "autodiff", term, training, None)
    if weight == "all":
        if method == "kronecker":
            raise ValueError("method='kronecker' is for one dense kernel, not weight='all'")
        own = resolve_weight(model, layer).path.rsplit("/", 1)[0]
        indices = [
            i for i, v in enumerate(model.trainable_variables) if v.path.rsplit("/", 1)[0] == own
        ]
        matvec, dtype = _autodiff_matvec(model, x, y, term, training, indices)
        size = sum(int(np.prod(model.trainable_variables[i].shape)) for i in indices)
        return CurvatureOperator(matvec, size, dtype, "autodiff", term, training, own + "/*")
    variable = resolve_weight(model, layer, weight)
    size = int(np.prod(variable.shape))
    issue = kronecker_issue(model, variable) if method != "autodiff" else "autodiff asked"
    if method == "kronecker" and issue is not None:
        raise ValueError(f"method='kronecker' does not apply: {issue}; use method='autodiff'")
    if issue is None:
        X, A, R = layer_curvature(model, _dense_owner(model, variable), x, y)
        M = {"H": A + R, "G": A, "R": R}[term]
        matvec = kronecker_matvec(X, M)
        return CurvatureOperator(
            matvec, size, tf.float64, "kronecker", term, training, variable.path
        )
    index = next(i for i, v in enumerate(model.trainable_variables) if v is variable)
    matvec, dtype = _autodiff_matvec(model, x, y, term, training, [index])
    return CurvatureOperator(matvec, size, dtype, "autodiff", term, training, variable.path)
