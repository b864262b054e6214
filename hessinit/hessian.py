"""Exact layer Hessians of the loss, split by the chain rule, and Hessian-vector products.

Notation (the book's). A dense layer with kernel W (n_in x n_out, Keras layout) maps the
per-sample input x_i to the pre-activation a_i = W^T x_i + b; the rest of the network maps a_i to
logits z_i and the loss is L = (1/B) sum_i l_i with l_i = logsumexp(z_i) - z_{i,y_i}. Because a_i is
linear in W,

    H_W = (1/B) sum_i (x_i x_i^T) kron M_i,        M_i = d^2 l_i / d a_i^2  (n_out x n_out),

in the row-major order of W (index (p, c) -> p * n_out + c). The chain rule splits M_i = A_i + R_i:

    A_i = J_i^T Lambda_i J_i,  J_i = dz_i/da_i,  Lambda_i = diag(p_i) - p_i p_i^T   (Gauss-Newton)
    R_i = sum_k (dl_i/dz_ik) d^2 z_ik / da_i^2                                  (curvature)

and H_W = G_W + R_W with G_W, R_W built from A_i, R_i as H_W is from M_i. Since
tr((X kron A)(Y kron C)) = tr(XY) tr(AC),

    <H_W, H'_W>_F = (1/B^2) sum_{i,j} (x_i . x_j)^2 <M_i, M'_j>_F,

so ||H||_F, ||G||_F, ||R||_F and <G, R> are exact without ever forming the (n_in n_out)^2 matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from .models import cross_entropy, dense_layers, get_dense

#: Largest Hessian (rows x columns) that :func:`full_hessian` agrees to build: 4e7 entries, 320 MB.
MAX_FULL_ENTRIES = 40_000_000


@dataclass(frozen=True)
class HessianNorms:
    """Frobenius norms of a layer Hessian H = G + R and the inner product <G, R>.

    ``H**2 == G**2 + 2 * GR + R**2`` up to round-off.
    """

    H: float
    G: float
    R: float
    GR: float


# --------------------------------------------------------------------------------------------
# Per-sample curvature of one dense layer
# --------------------------------------------------------------------------------------------


def _dense_stack(model):
    """The model as a list of ``[kernel, bias, activation name, dropout rate after the layer]``."""
    passive = (keras.layers.Flatten, keras.layers.InputLayer)
    stack = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            bias = layer.bias if layer.use_bias else tf.zeros(layer.units, layer.kernel.dtype)
            stack.append([layer.kernel, bias, keras.activations.serialize(layer.activation), 0.0])
        elif isinstance(layer, keras.layers.Dropout) and stack:
            stack[-1][3] = 1.0 - (1.0 - stack[-1][3]) * (1.0 - float(layer.rate))
        elif not isinstance(layer, passive):
            raise TypeError(
                f"layer {layer.name!r} ({type(layer).__name__}) is not supported: the exact layer "
                "Hessian needs a stack of Flatten, Dense and Dropout layers, such as models.mlp"
            )
    return stack


def dropout_masks(model, batch, seed=0):
    """Fixed inverted-dropout masks for the hidden layers of ``model``: one (batch, n_out) float64
    array per hidden dense layer, entries 0 or 1/q drawn i.i.d. with the keep probability q of the
    dropout after that layer (ones where there is none). Pass them as ``masks`` to
    :func:`hessian_norms_all_layers` for the Hessian of the training-mode network."""
    rng = np.random.default_rng(seed)
    masks = []
    for kernel, _, _, rate in _dense_stack(model)[:-1]:
        shape = (batch, int(kernel.shape[1]))
        keep = 1.0 - rate
        masks.append((rng.random(shape) < keep) / keep if rate > 0 else np.ones(shape))
    return masks


def _apply(h, kernel, bias, act):
    return keras.activations.get(act)(tf.matmul(h, kernel) + bias)


#: Activations that act elementwise, f(a)_k = f(a_k): their layers get the fast backward recursion.
_ELEMENTWISE = frozenset(
    ("relu", "tanh", "sigmoid", "softplus", "gelu", "elu", "selu", "silu", "swish", "linear")
)


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
    flat = _zero_curvature(acts[first:])  # ReLU/linear: every R_k is exactly zero
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
        lam_j = p[:, :, None] * J - p[:, :, None] * tf.einsum("bk,bkn->bn", p, J)[:, None, :]
        A = tf.einsum("bkm,bkn->bmn", J, lam_j)
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
    lam_j = p[:, :, None] * jac - p[:, :, None] * tf.einsum("bk,bkn->bn", p, jac)[:, None, :]
    A = tf.einsum("bkm,bkn->bmn", jac, lam_j)
    R = tf.reshape(R, [-1, n_out, n_out])
    return h, A, R


def _cast_weights(weights, dims):
    """Float64 weights with their static shapes restored (``dims``: (n_in, n_out) per layer;
    ``reduce_retracing`` may have relaxed the traced shapes to None)."""
    return [
        (tf.ensure_shape(tf.cast(w, tf.float64), d), tf.ensure_shape(tf.cast(b, tf.float64), d[1:]))
        for (w, b), d in zip(weights, dims, strict=True)
    ]


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
    if all(act in _ELEMENTWISE for act in acts[index:]):
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


#: Dtypes for the two Gram products of the double sum (see :func:`kron_norms`).
PRECISIONS = ("float64", "float32")


def _check_precision(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def _gram(u, v):
    """u v^T in the dtype of u and v, returned in float64."""
    return tf.cast(tf.matmul(u, v, transpose_b=True), tf.float64)


def _pair_sums(K, ac, rc, a, r, has_r):
    """Column sums of K_ij <a_i, a_j>, K_ij <r_i, r_j> and K_ij <a_i, r_j> over rows (ac, rc)."""
    gg = tf.reduce_sum(K * _gram(ac, a), axis=0)
    if not has_r:
        return tf.stack([gg, tf.zeros_like(gg), tf.zeros_like(gg)])
    rr = tf.reduce_sum(K * _gram(rc, r), axis=0)
    # (<a_i, r_j> + <r_i, a_j>) / 2: symmetric in (i, j), like the other two
    ar = _gram(ac, r) + _gram(rc, a)
    return tf.stack([gg, rr, tf.reduce_sum(K * ar, axis=0) / 2])


def _double_sum(X, a, r, chunk, has_r, K_full=None, precision="float64"):
    """sum_ij K_ij <a_i, a_j>, <r_i, r_j> and <a_i, r_j> with K_ij = (x_i . x_j)^2.

    Every term is symmetric in (i, j), so only the upper block triangle is formed: rows
    [start, start + block) against columns [start, B), the columns beyond the diagonal block
    counted twice (block <= chunk). Memory stays at chunk * B entries whatever B. The Gram
    products x_i . x_j and <a_i, a_j> run in ``precision``; squares and sums in float64.
    ``K_full``, if given, is the whole (B, B) matrix K.
    """
    B = tf.shape(a)[0]
    # Blocks of at most ``chunk`` rows, and at least 8 of them when B allows (the upper block
    # triangle then skips 7/16 of the work); columns of X that are zero throughout add nothing.
    block = tf.minimum(chunk, tf.maximum(128, (B + 7) // 8))
    if K_full is None:
        X = tf.cast(tf.boolean_mask(X, tf.reduce_any(X != 0, axis=0), axis=1), precision)
    a, r = tf.cast(a, precision), tf.cast(r, precision)
    sums = tf.zeros(3, tf.float64)
    for start in tf.range(0, B, block):
        stop = tf.minimum(start + block, B)
        if K_full is None:
            K = tf.square(_gram(X[start:stop], X[start:]))
        else:
            K = K_full[start:stop, start:]
        cols = _pair_sums(K, a[start:stop], r[start:stop], a[start:], r[start:], has_r)
        weight = tf.where(tf.range(B - start) < stop - start, 1.0, 2.0)
        sums += tf.linalg.matvec(cols, tf.cast(weight, tf.float64))
    return sums


def _realign_sums(X, a, r, has_r):
    """The sums of :func:`_double_sum` by the realignment S = sum_i vec(x_i x_i^T) vec(M_i)^T."""
    xx = _sym_pack(X[:, :, None] * X[:, None, :])
    SA = tf.matmul(xx, a, transpose_a=True)
    gg = tf.reduce_sum(SA * SA)
    if not has_r:
        return tf.stack([gg, tf.zeros_like(gg), tf.zeros_like(gg)])
    SR = tf.matmul(xx, r, transpose_a=True)
    return tf.stack([gg, tf.reduce_sum(SR * SR), tf.reduce_sum(SA * SR)])


def _sym_pack(M):
    """Upper triangles of symmetric matrices (..., n, n) as vectors with the Frobenius inner
    product: off-diagonal entries weighted by sqrt(2)."""
    n = M.shape[-1]
    i, j = np.triu_indices(n)
    flat = tf.reshape(M, [-1, n * n])
    weight = np.where(i == j, 1.0, math.sqrt(2.0)).astype(M.dtype.as_numpy_dtype)
    return tf.gather(flat, i * n + j, axis=1) * weight


def _use_realignment(B, n_in, p_out):
    """Whether the realignment (cost B p_in p_out) is cheaper than the double sum."""
    return B * (n_in * (n_in + 1) // 2) * p_out < B * B * (n_in + p_out)


def _max_abs(t):
    m = tf.reduce_max(tf.abs(t)) if tf.size(t) > 0 else tf.constant(0.0, t.dtype)
    return tf.where(m > 0, m, tf.ones_like(m))


def _layer_sums(X, A, R, chunk, has_r, realign, K_full=None, sx=None, precision="float64"):
    """[gg, rr, gr, scale] of one layer from its blocks, in graph (see :func:`kron_norms`)."""
    B = tf.cast(tf.shape(X)[0], tf.float64)
    a, r = _sym_pack(A), _sym_pack(R)
    if sx is None:
        sx = _max_abs(X)
    sm = _max_abs(tf.concat([tf.reshape(a, [-1]), tf.reshape(r, [-1])], 0) if has_r else a)
    X, a, r = X / sx, a / sm, r / sm
    if realign:
        sums = _realign_sums(X, a, r, has_r)
    else:
        sums = _double_sum(X, a, r, chunk, has_r, K_full, precision)
    return tf.concat([sums, [sx * sx * sm / B]], 0)


def _zero_curvature(acts):
    """Whether every R_i vanishes: piecewise-linear activations throughout (ReLU, linear)."""
    return all(act in ("relu", "linear") for act in acts)


@tf.function(reduce_retracing=True)
def _norm_sums(weights, x, y, acts, dims, layers, chunk, realign, gram, masks, precision):
    """[gg, rr, gr, scale] for each dense layer index in ``layers``, in one compiled call.

    The blocks of every layer come from one backward recursion (elementwise activations) or,
    otherwise, per-layer nested autodiff; ``realign`` says per layer which exact form to use.
    ``gram``: None, or :func:`input_gram` of ``x``, the (B, B) matrix ((x_i . x_j) / s^2)^2 of the
    first layer's inputs and their scale s, for callers that reuse one batch (the double sum
    then skips x . x). ``precision``: of the double sums' Gram products (:func:`kron_norms`).
    """
    weights = _cast_weights(weights, dims)
    first = min(layers)
    if all(act in _ELEMENTWISE for act in acts[first:]):
        blocks = _recursive_blocks(weights, x, y, acts, first, masks)
        blocks = dict(enumerate(blocks, start=first))
    else:
        blocks = {k: _autodiff_blocks(weights, x, y, acts, k) for k in layers}
    out = []
    for k, re in zip(layers, realign, strict=True):
        X, A, R = _static_blocks(blocks[k], dims, k)
        has_r = not _zero_curvature(acts[k:])
        K, sx = gram if k == 0 and gram is not None else (None, None)
        out.append(_layer_sums(X, A, R, chunk, has_r, re, K, sx, precision))
    return tf.stack(out)


def _model_inputs(model, x, y):
    """The model as float tensors of weights and a tuple of activation names, and x, y."""
    stack = _dense_stack(model)
    weights = [(tf.convert_to_tensor(w), tf.convert_to_tensor(b)) for w, b, _, _ in stack]
    acts = tuple(act for _, _, act, _ in stack)
    if not tf.is_tensor(x):  # float64 models keep float64 inputs
        x = tf.convert_to_tensor(x, weights[0][0].dtype)
    y = tf.cast(tf.reshape(tf.convert_to_tensor(y), [-1]), tf.int32)
    return weights, acts, x, y


def _dims(weights):
    return tuple((int(w.shape[0]), int(w.shape[1])) for w, _ in weights)


def input_gram(x):
    """K_ij = ((x_i . x_j) / s^2)^2 of flattened inputs ``x`` (B, ...) and s = max |x|, float64.

    The double sum's kernel for the first dense layer: it depends only on the batch, so a caller
    that reuses one batch (such as :func:`hessinit.train.run`) computes it once and passes it as
    ``input_gram`` to :func:`hessian_norms_all_layers`.
    """
    X = tf.reshape(tf.cast(x, tf.float64), [x.shape[0], -1])
    sx = _max_abs(X)
    X = X / sx
    return tf.square(tf.matmul(X, X, transpose_b=True)), sx


def _norms_of_layers(model, indices, x, y, chunk=1024, gram=None, masks=None, precision="float64"):
    """HessianNorms of the dense layers ``indices`` (a tuple), in one compiled call."""
    _check_precision(precision)
    weights, acts, x, y = _model_inputs(model, x, y)
    if masks is not None:
        if not all(act in _ELEMENTWISE for act in acts[min(indices) :]):
            raise ValueError("dropout masks need elementwise activations")
        masks = [tf.constant(np.asarray(m, np.float64)) for m in masks]
    gram = gram if 0 in indices else None
    B = int(x.shape[0])
    realign = []
    for k in indices:
        n_in = int(weights[k][0].shape[0])
        n_out = int(weights[k][0].shape[1])
        realign.append(_use_realignment(B, n_in, n_out * (n_out + 1) // 2))
    args = (tuple(indices), tf.constant(int(chunk)), tuple(realign), gram, masks, precision)
    sums = _norm_sums(weights, x, y, acts, _dims(weights), *args).numpy()
    return [_scaled_norms(gg, rr, gr, scale) for gg, rr, gr, scale in sums]


def kron_norms(X, A, R, chunk=1024, precision="float64"):
    """||H||_F, ||G||_F, ||R||_F and <G, R> of H_W = (1/B) sum_i (x_i x_i^T) kron (A_i + R_i).

    X: (B, n_in); A, R: (B, n_out, n_out), symmetric. Uses whichever of two exact forms is cheaper:
    the double sum (1/B^2) sum_{ij} (x_i . x_j)^2 <A_i, A_j> in row chunks of ``chunk`` samples
    (cost B^2 (n_in + n_out^2), memory chunk * B), or the realignment
    ||(1/B) sum_i vec(x_i x_i^T) vec(A_i)^T||_F (cost B n_in^2 n_out^2), which wins for narrow
    layers. Inputs are rescaled first, so tiny Hessians do not underflow. ``precision="float32"``
    runs the double sum's two Gram products, x_i . x_j and <A_i, A_j>, in float32: about twice as
    fast at B = 1,024, at a relative error near 1e-7 (more for <G, R> when it is small against
    ||G|| ||R||). The default keeps float64 throughout.

    >>> X = np.array([[1.0, 0.0], [1.0, 1.0]]); A = np.ones((2, 1, 1)); R = np.zeros((2, 1, 1))
    >>> kron_norms(X, A, R)  # H = ([[1, 0], [0, 0]] + [[1, 1], [1, 1]]) / 2, norm sqrt(1.75)
    HessianNorms(H=1.3228756555322954, G=1.3228756555322954, R=0.0, GR=0.0)
    """
    _check_precision(precision)
    X, A, R = (tf.constant(np.asarray(t, np.float64)) for t in (X, A, R))
    (B, n_in), n_out = X.shape, A.shape[-1]
    realign = _use_realignment(B, n_in, n_out * (n_out + 1) // 2)
    has_r = bool(tf.reduce_any(R != 0))
    sums = _layer_sums(X, A, R, int(chunk), has_r, realign, precision=precision)
    return _scaled_norms(*sums.numpy())


def _scaled_norms(gg, rr, gr, scale):
    """HessianNorms from the sums of the rescaled problem; ``scale`` multiplies the norms (taken
    after the square root, so that norms near float64's limits neither underflow nor overflow)."""
    gg, rr, gr, scale = float(gg), float(rr), float(gr), float(scale)
    hh = max(gg + 2 * gr + rr, 0.0)
    return HessianNorms(
        H=math.sqrt(hh) * scale,
        G=math.sqrt(gg) * scale,
        R=math.sqrt(rr) * scale,
        GR=gr * scale * scale,
    )


def layer_hessian_norms(model, layer, x, y, chunk=1024, precision="float64"):
    """Exact Frobenius norms of the Hessian of the mean cross-entropy with respect to one dense
    layer's kernel, of its Gauss-Newton term G and curvature term R, and <G, R>.

    ``layer``: a name such as ``"dense1"``, an index or the layer; ``x``: images; ``y``: integer
    labels. Computed in float64 by the Kronecker identity (:func:`kron_norms`, whose ``chunk`` and
    ``precision`` these are), never forming the matrix.

    >>> from hessinit.models import mlp
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.random((64, 28, 28), np.float32), rng.integers(0, 10, 64)
    >>> n = layer_hessian_norms(mlp(kernel_std=0.01, seed=0), "dense1", x, y)
    >>> round(n.H, 4) == round(n.G, 4), n.R  # ReLU: the chain rule is exact on a layer's own block
    (True, 0.0)
    """
    index, _ = get_dense(model, layer)
    return _norms_of_layers(model, (index,), x, y, chunk=chunk, precision=precision)[0]


# --------------------------------------------------------------------------------------------
# Materialized references (small models only)
# --------------------------------------------------------------------------------------------


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
    lam = np.einsum("bk,kl->bkl", p, np.eye(K)) - p[:, :, None] * p[:, None, :]
    return np.einsum("bkm,bkl,bln->mn", J, lam, J) / B


# --------------------------------------------------------------------------------------------
# Matrix-free products over all trainable weights
# --------------------------------------------------------------------------------------------


def tf_variables(model):
    """The model's trainable weights as ``tf.Variable`` objects (what forward-mode autodiff needs;
    Keras 3 wraps each in a ``keras.Variable``)."""
    return [getattr(v, "value", v) for v in model.trainable_variables]


@tf.function(reduce_retracing=True)
def _hvp(model, x, y, vectors):
    variables = tf_variables(model)
    with tf.autodiff.ForwardAccumulator(variables, vectors) as acc:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(cross_entropy(y, model(x, training=False)))
        grads = tape.gradient(loss, variables)
    return acc.jvp(grads)


@tf.function(reduce_retracing=True)
def _gnvp(model, x, y, vectors):
    variables = tf_variables(model)
    with tf.GradientTape() as tape:
        with tf.autodiff.ForwardAccumulator(variables, vectors) as acc:
            z = model(x, training=False)
        jv = acc.jvp(z)  # J v, (B, K)
        p = tf.stop_gradient(tf.nn.softmax(z))
        lam_jv = p * jv - p * tf.reduce_sum(p * jv, axis=-1, keepdims=True)
        # d/dw of (1/B) sum_i z_i . stop(Lambda_i J_i v) is J^T Lambda J v / B.
        target = tf.reduce_sum(z * tf.stop_gradient(lam_jv)) / tf.cast(tf.shape(z)[0], z.dtype)
    return tape.gradient(target, variables)


def _as_inputs(model, x, y, vectors):
    dtype = model.trainable_variables[0].dtype
    x = tf.convert_to_tensor(x, dtype)
    y = tf.cast(tf.reshape(tf.convert_to_tensor(y), [-1]), tf.int32)
    vectors = [tf.convert_to_tensor(v, dtype) for v in vectors]
    return x, y, vectors


def hvp(model, x, y, vectors):
    """Hessian-vector product H v of the mean cross-entropy over all trainable weights.

    ``vectors``: one array per ``model.trainable_variables`` entry, same shapes. Forward-over-
    backward autodiff, compiled; returns a list of tensors shaped like the variables.
    """
    return _hvp(model, *_as_inputs(model, x, y, vectors))


def gnvp(model, x, y, vectors):
    """Gauss-Newton-vector product G v = (1/B) sum_i J_i^T Lambda_i J_i v (one JVP, one VJP)."""
    return _gnvp(model, *_as_inputs(model, x, y, vectors))


def curvature_vp(model, x, y, vectors):
    """Curvature-term product R v = H v - G v over all trainable weights."""
    return [
        h - g for h, g in zip(hvp(model, x, y, vectors), gnvp(model, x, y, vectors), strict=True)
    ]


def _flat(tensors):
    return np.concatenate([np.asarray(t, np.float64).ravel() for t in tensors])


def _unflat(vector, variables):
    out, start = [], 0
    for v in variables:
        size = int(np.prod(v.shape))
        out.append(vector[start : start + size].reshape(v.shape))
        start += size
    return out


@dataclass(frozen=True)
class NormEstimate:
    """A Frobenius-norm estimate with a confidence interval [low, high] at ``level``."""

    value: float
    low: float
    high: float
    probes: int
    level: float


def hutchinson_norm(model, x, y, probes=100, product="hessian", deflate=0, level=0.95, seed=0):
    """Estimate ||H||_F (``product="hessian"``), ||G||_F (``"gauss_newton"``) or
    ||R||_F = ||H - G||_F (``"curvature"``) of the whole network, cross-layer blocks included,
    from ``probes`` matrix-vector products, with a confidence interval.

    ||H||_F^2 = E ||H v||^2 for Rademacher v. With ``deflate=k > 0`` (Hutch++ applied to H^2):
    Q = orth(H H S) for k Gaussian columns S, ||H||_F^2 = ||H Q||_F^2 + ||H (I - Q Q^T)||_F^2, the
    first part exact, the second estimated; the k-dimensional sketch costs 2k products on top of
    ``probes``, and removes the few outlying eigenvalues that make plain Hutchinson noisy.
    The interval is a normal interval on the mean of ||H v||^2 (delta method for the square root).
    """
    apply = {"hessian": hvp, "gauss_newton": gnvp, "curvature": curvature_vp}.get(product)
    if apply is None:
        raise ValueError(
            f"product must be 'hessian', 'gauss_newton' or 'curvature', got {product!r}"
        )
    if probes < 2:
        raise ValueError("need at least 2 probes for a confidence interval")
    variables = model.trainable_variables
    n = sum(int(np.prod(v.shape)) for v in variables)
    rng = np.random.default_rng(seed)

    def matvec(v):
        return _flat(apply(model, x, y, _unflat(v, variables)))

    exact, Q = 0.0, None
    if deflate > 0:
        sketch = np.stack([matvec(matvec(s)) for s in rng.standard_normal((deflate, n))], axis=1)
        Q, _ = np.linalg.qr(sketch)
        exact = sum(float(np.sum(matvec(q) ** 2)) for q in Q.T)
    samples = np.empty(probes)
    for k in range(probes):
        v = rng.choice([-1.0, 1.0], size=n)
        if Q is not None:
            v = v - Q @ (Q.T @ v)
        samples[k] = np.sum(matvec(v) ** 2)
    from scipy.stats import norm

    mean, sem = samples.mean(), samples.std(ddof=1) / math.sqrt(probes)
    zq = norm.ppf(0.5 + level / 2)
    total = exact + mean
    low, high = max(total - zq * sem, 0.0), total + zq * sem
    return NormEstimate(math.sqrt(total), math.sqrt(low), math.sqrt(high), probes, level)


def hessian_norms_all_layers(
    model, x, y, layers=None, masks=None, input_gram=None, precision="float64"
):
    """:func:`layer_hessian_norms` for each dense layer named in ``layers`` (default: all), in
    one compiled call sharing one backward recursion, as ``{name: HessianNorms}``.

    ``masks``: fixed dropout masks (:func:`dropout_masks`) for the Hessian of the training-mode
    network, whose layer inputs x_i are then the masked activations; ``None``: inference.
    ``input_gram``: :func:`input_gram` of ``x``, if the caller already has it. ``precision``:
    as in :func:`kron_norms`.
    """
    names = [d.name for d in dense_layers(model)] if layers is None else list(layers)
    indices = tuple(get_dense(model, name)[0] for name in names)
    norms = _norms_of_layers(
        model, indices, x, y, gram=input_gram, masks=masks, precision=precision
    )
    return dict(zip(names, norms, strict=True))
