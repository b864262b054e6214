"""Exact Frobenius norms of layer Hessians from the Kronecker identity, never forming the matrix.

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
The blocks come from :mod:`hessinit.curvature.blocks`; the matrix-free products over all weights
live in :mod:`hessinit.curvature.products`.

Imports: numpy, TensorFlow, :mod:`hessinit.nn`, :mod:`hessinit.curvature.blocks` and
:mod:`hessinit.curvature.layers`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from ..nn.activations import is_elementwise, is_piecewise_linear
from ..nn.models import dense_layers, get_dense
from .blocks import autodiff_blocks, recursive_blocks, static_blocks
from .inputs import check_call
from .layers import cast_weights, kernel_dims, model_inputs


@dataclass(frozen=True)
class HessianNorms:
    """Frobenius norms of a layer Hessian H = G + R and the inner product <G, R>.

    ``H**2 == G**2 + 2 * GR + R**2`` up to round-off, since ||G + R||^2 = ||G||^2 + 2 <G, R> +
    ||R||^2.

    Attributes:
        H: ||H_W||_F, the whole layer Hessian.
        G: ||G_W||_F, the Gauss-Newton term (1/B) sum_i (x_i x_i^T) kron A_i.
        R: ||R_W||_F, the curvature term (1/B) sum_i (x_i x_i^T) kron R_i.
        GR: <G_W, R_W>_F.
        method: how they were computed: ``"kronecker"`` (the dense-stack identity above),
            ``"columns"``, ``"columns-linear"`` or ``"hutchinson"``
            (:mod:`hessinit.curvature.tensors`); not part of equality or the repr.
        intervals: for ``"hutchinson"``, a :class:`~hessinit.curvature.NormEstimate` per
            ``"H"``, ``"G"``, ``"R"``; ``None`` for the exact methods.

    Example:
        >>> n = HessianNorms(H=5.0, G=3.0, R=4.0, GR=0.0)  # G and R orthogonal
        >>> n.H**2 == n.G**2 + 2 * n.GR + n.R**2
        True
    """

    H: float
    G: float
    R: float
    GR: float
    method: str = field(default="kronecker", compare=False, repr=False)
    intervals: dict | None = field(default=None, compare=False, repr=False)


#: The two block routes as this module calls them: module-level names, so that a test can watch
#: which route a layer takes (tests/nn/test_activations.py patches them).
_autodiff_blocks, _recursive_blocks = autodiff_blocks, recursive_blocks

#: Dtypes for the two Gram products of the double sum (see :func:`kron_norms`).
PRECISIONS = ("float64", "float32")


def _check_precision(precision):
    """Return ``precision`` if it is one of :data:`PRECISIONS`, else raise ``ValueError``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def _gram(u, v):
    """The Gram product u v^T in the dtype of u and v, returned in float64."""
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
    xx = sym_pack(X[:, :, None] * X[:, None, :])
    SA = tf.matmul(xx, a, transpose_a=True)
    gg = tf.reduce_sum(SA * SA)
    if not has_r:
        return tf.stack([gg, tf.zeros_like(gg), tf.zeros_like(gg)])
    SR = tf.matmul(xx, r, transpose_a=True)
    return tf.stack([gg, tf.reduce_sum(SR * SR), tf.reduce_sum(SA * SR)])


def sym_pack(M):
    """Upper triangles of symmetric matrices (..., n, n) as vectors, Frobenius product kept.

    Off-diagonal entries are weighted by sqrt(2), so that u . v of packed vectors is <U, V>_F.

    Args:
        M: a tensor of symmetric matrices, shape (..., n, n).

    Returns:
        tf.Tensor: shape (prod(...), n (n + 1) / 2).

    Example:
        >>> import numpy as np, tensorflow as tf
        >>> U = tf.constant([[[1.0, 2.0], [2.0, 3.0]]], tf.float64)
        >>> u = sym_pack(U)
        >>> float(tf.reduce_sum(u * u)), float(tf.reduce_sum(U * U))
        (18.0, 18.0)
    """
    n = M.shape[-1]
    i, j = np.triu_indices(n)
    flat = tf.reshape(M, [-1, n * n])
    weight = np.where(i == j, 1.0, math.sqrt(2.0)).astype(M.dtype.as_numpy_dtype)
    return tf.gather(flat, i * n + j, axis=1) * weight


def use_realignment(B: int, n_in: int, p_out: int) -> bool:
    """Whether the realignment is cheaper than the double sum.

    The realignment costs B p_in p_out with p_in = n_in (n_in + 1) / 2 packed input entries and
    ``p_out`` packed block entries, the double sum B^2 (n_in + p_out).

    Args:
        B: the batch size.
        n_in: the layer's input width.
        p_out: the number of packed entries of a per-sample output block.

    Returns:
        bool: True where the realignment costs less.

    Example:
        >>> use_realignment(1024, 30, 465), use_realignment(1024, 784, 465)
        (True, False)
    """
    return B * (n_in * (n_in + 1) // 2) * p_out < B * B * (n_in + p_out)


def _max_abs(t):
    """The largest |t|, or 1 where that is 0 (or ``t`` is empty): a safe divisor for rescaling."""
    m = tf.reduce_max(tf.abs(t)) if tf.size(t) > 0 else tf.constant(0.0, t.dtype)
    return tf.where(m > 0, m, tf.ones_like(m))


def _layer_sums(X, A, R, chunk, has_r, realign, K_full=None, sx=None, precision="float64"):
    """[gg, rr, gr, scale] of one layer from its blocks, in graph (see :func:`kron_norms`)."""
    B = tf.cast(tf.shape(X)[0], tf.float64)
    a, r = sym_pack(A), sym_pack(R)
    if sx is None:
        sx = _max_abs(X)
    sm = _max_abs(tf.concat([tf.reshape(a, [-1]), tf.reshape(r, [-1])], 0) if has_r else a)
    X, a, r = X / sx, a / sm, r / sm
    if realign:
        sums = _realign_sums(X, a, r, has_r)
    else:
        sums = _double_sum(X, a, r, chunk, has_r, K_full, precision)
    return tf.concat([sums, [sx * sx * sm / B]], 0)


@tf.function(reduce_retracing=True)
def _norm_sums(weights, x, y, acts, dims, layers, chunk, realign, gram, masks, precision):
    """[gg, rr, gr, scale] for each dense layer index in ``layers``, in one compiled call.

    The blocks of every layer come from one backward recursion (elementwise activations) or,
    otherwise, per-layer nested autodiff; ``realign`` says per layer which exact form to use.
    ``gram``: None, or :func:`input_gram` of ``x``, the (B, B) matrix ((x_i . x_j) / s^2)^2 of the
    first layer's inputs and their scale s, for callers that reuse one batch (the double sum
    then skips x . x). ``precision``: of the double sums' Gram products (:func:`kron_norms`).
    """
    weights = cast_weights(weights, dims)
    first = min(layers)
    if all(map(is_elementwise, acts[first:])):
        blocks = _recursive_blocks(weights, x, y, acts, first, masks)
        blocks = dict(enumerate(blocks, start=first))
    else:
        blocks = {k: _autodiff_blocks(weights, x, y, acts, k) for k in layers}
    out = []
    for k, re in zip(layers, realign, strict=True):
        X, A, R = static_blocks(blocks[k], dims, k)
        has_r = not all(map(is_piecewise_linear, acts[k:]))
        K, sx = gram if k == 0 and gram is not None else (None, None)
        out.append(_layer_sums(X, A, R, chunk, has_r, re, K, sx, precision))
    return tf.stack(out)


def input_gram(x):
    """The double sum's kernel K_ij = ((x_i . x_j) / s^2)^2 of a batch, with its scale s.

    The first dense layer's inputs are the flattened images, so its kernel (x_i . x_j)^2 depends
    only on the batch: a caller that reuses one batch (such as :func:`hessinit.train.run`)
    computes it once and passes it as ``input_gram`` to :func:`hessian_norms_all_layers`. The
    inputs are first divided by their largest absolute entry s, so that the squares neither
    underflow nor overflow.

    Args:
        x: inputs, shape (B, ...), flattened to (B, n_in).

    Returns:
        ``(K, s)``: the (B, B) float64 tensor K and the float64 scalar s (1 for an all-zero x).

    Example:
        >>> K, s = input_gram(np.array([[1.0, 0.0], [1.0, 2.0]]))
        >>> K.numpy(), float(s)  # ((x_i . x_j) / 4)^2 with x . x = [[1, 1], [1, 5]]
        (array([[0.0625, 0.0625],
               [0.0625, 1.5625]]), 2.0)
    """
    X = tf.reshape(tf.cast(x, tf.float64), [x.shape[0], -1])
    sx = _max_abs(X)
    X = X / sx
    return tf.square(tf.matmul(X, X, transpose_b=True)), sx


def _norms_of_layers(model, indices, x, y, chunk=1024, gram=None, masks=None, precision="float64"):
    """HessianNorms of the dense layers ``indices`` (a tuple), in one compiled call.

    ``gram`` is :func:`input_gram` of ``x`` or None, ``masks`` fixed dropout masks or None; the
    other arguments are those of :func:`hessian_norms_all_layers`.
    """
    _check_precision(precision)
    weights, acts, x, y = model_inputs(model, x, y)
    if masks is not None:
        if not all(map(is_elementwise, acts[min(indices) :])):
            raise ValueError("dropout masks need elementwise activations")
        masks = [tf.constant(np.asarray(m, np.float64)) for m in masks]
    gram = gram if 0 in indices else None
    B = int(x.shape[0])
    realign = []
    for k in indices:
        n_in = int(weights[k][0].shape[0])
        n_out = int(weights[k][0].shape[1])
        realign.append(use_realignment(B, n_in, n_out * (n_out + 1) // 2))
    args = (tuple(indices), tf.constant(int(chunk)), tuple(realign), gram, masks, precision)
    sums = _norm_sums(weights, x, y, acts, kernel_dims(weights), *args).numpy()
    return [_scaled_norms(gg, rr, gr, scale) for gg, rr, gr, scale in sums]


def kron_norms(X, A, R, chunk=1024, precision="float64"):
    """Exact norms of H_W = (1/B) sum_i (x_i x_i^T) kron (A_i + R_i) without forming it.

    Returns ||H||_F, ||G||_F, ||R||_F and <G, R> for G = (1/B) sum_i (x_i x_i^T) kron A_i and R
    likewise. Uses whichever of two exact forms is cheaper: the double sum
    (1/B^2) sum_{ij} (x_i . x_j)^2 <A_i, A_j>_F in row chunks of ``chunk`` samples (cost
    B^2 (n_in + n_out^2), memory chunk * B), or the realignment
    ||(1/B) sum_i vec(x_i x_i^T) vec(A_i)^T||_F (cost B n_in^2 n_out^2), which wins for narrow
    layers. Inputs are rescaled first, so tiny Hessians do not underflow.

    Args:
        X: the layer's inputs x_i, shape (B, n_in).
        A: Gauss-Newton blocks A_i, shape (B, n_out, n_out), symmetric.
        R: curvature blocks R_i, shape (B, n_out, n_out), symmetric; all zeros skips their sums.
        chunk: largest number of rows of the double sum formed at once.
        precision: ``"float64"`` (default) keeps float64 throughout; ``"float32"`` runs the
            double sum's two Gram products, x_i . x_j and <A_i, A_j>, in float32: about twice
            as fast at B = 1,024, at a relative error near 1e-7 (more for <G, R> when it is small
            against ||G|| ||R||). Squares and sums stay in float64.

    Returns:
        :class:`HessianNorms` of H_W.

    Raises:
        ValueError: ``precision`` is not one of :data:`PRECISIONS`.

    Example:
        >>> X = np.array([[1.0, 0.0], [1.0, 1.0]])
        >>> A, R = np.ones((2, 1, 1)), np.zeros((2, 1, 1))
        >>> kron_norms(X, A, R)  # H = ([[1, 0], [0, 0]] + [[1, 1], [1, 1]]) / 2: sqrt(1.75)
        HessianNorms(H=1.3228756555322954, G=1.3228756555322954, R=0.0, GR=0.0)
        >>> kron_norms(X, A, -A)  # M_i = A_i + R_i = 0: H vanishes, G and R cancel
        HessianNorms(H=0.0, G=1.3228756555322954, R=1.3228756555322954, GR=-1.75)
    """
    _check_precision(precision)
    X, A, R = (tf.constant(np.asarray(t, np.float64)) for t in (X, A, R))
    (B, n_in), n_out = X.shape, A.shape[-1]
    realign = use_realignment(B, n_in, n_out * (n_out + 1) // 2)
    has_r = bool(tf.reduce_any(R != 0))
    sums = _layer_sums(X, A, R, int(chunk), has_r, realign, precision=precision)
    return _scaled_norms(*sums.numpy())


def _scaled_norms(gg, rr, gr, scale):
    """HessianNorms from the sums [gg, rr, gr] of the rescaled problem.

    ``scale`` multiplies the norms after the square root, so that norms near float64's limits
    neither underflow nor overflow.
    """
    gg, rr, gr, scale = float(gg), float(rr), float(gr), float(scale)
    hh = max(gg + 2 * gr + rr, 0.0)
    return HessianNorms(
        H=math.sqrt(hh) * scale,
        G=math.sqrt(gg) * scale,
        R=math.sqrt(rr) * scale,
        GR=gr * scale * scale,
    )


def layer_hessian_norms(model, layer, x, y, chunk=1024, precision="float64", **options):
    """Exact Frobenius norms of one dense layer's Hessian H_W = G_W + R_W, and <G_W, R_W>.

    The Kronecker route for a model proved to be a dense stack
    (:func:`hessinit.curvature.graph.dense_stack_issue`): H_W is the Hessian of the mean
    cross-entropy L with respect to the layer's kernel W,
    H_W = (1/B) sum_i (x_i x_i^T) kron (A_i + R_i), split by the chain rule into the
    Gauss-Newton term G_W (blocks A_i = J_i^T Lambda_i J_i) and the curvature term R_W. Computed
    in float64 by the Kronecker identity (:func:`kron_norms`), never forming the
    (n_in n_out)^2 matrix, from per-sample blocks of :mod:`hessinit.curvature.blocks`
    (``method == "kronecker"``). For any other model or weight use
    :func:`hessinit.curvature.hessian_norms` (``hessinit.curvature.layer_hessian_norms`` is
    that function's deprecated alias, which dispatches).

    Args:
        model: a stack of ``Flatten``, ``Dense`` and ``Dropout`` layers, such as
            :func:`hessinit.nn.mlp` (dropout off).
        layer: the dense layer, as a name such as ``"dense1"``, a dense index or the layer.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        chunk: as in :func:`kron_norms`.
        precision: as in :func:`kron_norms`.
        **options: refused (``TypeError``); kept so that old calls fail with a message.

    Returns:
        :class:`HessianNorms` of the layer's kernel Hessian.

    Raises:
        ValueError: unknown ``layer`` name or ``precision``, or inputs refused at the door
            (:mod:`hessinit.curvature.inputs`).
        IndexError: ``layer`` index beyond the model's dense layers.
        TypeError: the model is not provably a dense stack (the message names why).

    Example:
        >>> from hessinit.nn import mlp
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.random((64, 28, 28), np.float32), rng.integers(0, 10, 64)
        >>> n = layer_hessian_norms(mlp(sd=0.01, seed=0), "dense1", x, y)
        >>> round(n.H, 4) == round(n.G, 4), n.R  # ReLU: R = 0 exactly on a layer's own block
        (True, 0.0)
    """
    if options:
        raise TypeError(
            f"unexpected options {sorted(options)}: the dense-stack route takes chunk and "
            "precision; use hessinit.curvature.hessian_norms for any model and weight"
        )
    x, y = check_call(model, x, y)
    index, _ = get_dense(model, layer)
    return _norms_of_layers(model, (index,), x, y, chunk=chunk, precision=precision)[0]


def hessian_norms_all_layers(
    model, x, y, layers=None, masks=None, input_gram=None, precision="float64"
):
    """:func:`layer_hessian_norms` of several dense layers in one compiled call.

    The layers share one backward recursion (registry activations) for their blocks A_i, R_i,
    so all layers cost little more than the lowest one.

    Args:
        model: as in :func:`layer_hessian_norms`.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        layers: names (or indices) of the dense layers; ``None``: all of them.
        masks: fixed dropout masks (:func:`hessinit.curvature.dropout_masks`) for the Hessian
            of the training-mode network, whose layer inputs x_i are then the masked
            activations; ``None``: inference.
        input_gram: :func:`input_gram` of ``x``, if the caller already has it.
        precision: as in :func:`kron_norms`.

    Returns:
        ``{name: HessianNorms}`` in the order of ``layers``.

    Raises:
        ValueError: unknown layer or ``precision``, or ``masks`` with an activation outside
            the registry.

    Example:
        >>> from hessinit.nn import mlp
        >>> x, y = np.random.default_rng(0).random((8, 3)), [0, 1] * 4
        >>> model = mlp(input_shape=(3,), widths=(4,), num_classes=2, activation="tanh")
        >>> norms = hessian_norms_all_layers(model, x, y)
        >>> list(norms), norms["dense2"].R  # the logits layer feeds the loss linearly: R = 0
        (['dense1', 'dense2'], 0.0)
    """
    x, y = check_call(model, x, y)
    names = [d.name for d in dense_layers(model)] if layers is None else list(layers)
    indices = tuple(get_dense(model, name)[0] for name in names)
    norms = _norms_of_layers(
        model, indices, x, y, gram=input_gram, masks=masks, precision=precision
    )
    return dict(zip(names, norms, strict=True))
