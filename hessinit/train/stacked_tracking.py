"""Exact per-layer Hessian norms of R stacked MLP runs, in one batched float64 computation.

The tracking half of :mod:`hessinit.train.stacked`: at checkpoints the exact Frobenius norms of
every layer Hessian H_k = G_k + R_k of all runs come from one batched float64 computation, the
Kronecker route of :mod:`hessinit.curvature.kronecker` with a run axis in front:

    H_k[r] = (1/B) sum_i (x_i x_i^T) kron M_i[r],   M_i = A_i + R_i = d^2 l_i / d a_i^2,
    ||H_k[r]||_F^2 = (1/B^2) sum_{i,j} (x_i . x_j)^2 <M_i[r], M_j[r]>_F

(or its realignment for narrow layers), the blocks A_i = J_i^T Lambda_i J_i and R_i from the
backward recursion of :mod:`hessinit.curvature.blocks` written for stacked weights.

Holds :func:`stacked_norms`, :func:`grouped_norms`, :func:`input_grams` and
:data:`TRACK_BYTES`.

Imports: numpy, TensorFlow, Keras, :mod:`hessinit.nn.activations` and
:mod:`hessinit.curvature.kronecker` (its packing and cost rule); never :mod:`hessinit.study` or
:mod:`hessinit.book`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..curvature.blocks import elementwise_derivatives
from ..curvature.kronecker import sym_pack, use_realignment
from ..nn.activations import REGISTRY, is_piecewise_linear

#: Bytes of float64 (B, B) matrices one tracking call may hold per run group.
TRACK_BYTES = 1 << 30


def _pack(M):
    """``hessinit.curvature.kronecker.sym_pack`` of (R, B, n, n) blocks: (R, B, p)."""
    shape = tf.shape(M)
    return tf.reshape(sym_pack(M), [shape[0], shape[1], -1])


def _run_max_abs(t):
    """Per run (axis 0) the largest |t|, or 1 where it is 0: a safe divisor for rescaling."""
    m = tf.reduce_max(tf.abs(tf.reshape(t, [tf.shape(t)[0], -1])), axis=1)
    return tf.where(m > 0, m, tf.ones_like(m))


def _stacked_layer_sums(X, A, R, has_r, realign, K=None, sx=None):
    """Per run [gg, rr, gr, scale] of one layer (R, 4): kron_norms' sums with a run axis.

    ``K``, ``sx``: the cached first-layer kernel ((x_i . x_j) / sx^2)^2, (R, B, B), and sx (R,).
    """
    B = tf.cast(tf.shape(X)[1], tf.float64)
    a, r = _pack(A), _pack(R)
    if sx is None:
        sx = _run_max_abs(X)
    sm = _run_max_abs(tf.concat([a, r], axis=2) if has_r else a)
    X = X / sx[:, None, None]
    a, r = a / sm[:, None, None], r / sm[:, None, None]
    if realign:
        xx = _pack(X[..., :, None] * X[..., None, :])
        SA = tf.matmul(xx, a, transpose_a=True)
        gg = tf.reduce_sum(SA * SA, axis=[1, 2])
        if has_r:
            SR = tf.matmul(xx, r, transpose_a=True)
            rr, gr = tf.reduce_sum(SR * SR, axis=[1, 2]), tf.reduce_sum(SA * SR, axis=[1, 2])
    else:
        if K is None:
            K = tf.square(tf.matmul(X, X, transpose_b=True))
        gg = tf.reduce_sum(K * tf.matmul(a, a, transpose_b=True), axis=[1, 2])
        if has_r:
            rr = tf.reduce_sum(K * tf.matmul(r, r, transpose_b=True), axis=[1, 2])
            # K is symmetric, so sum K_ij <a_i, r_j> = sum K_ij (<a_i, r_j> + <r_i, a_j>) / 2
            gr = tf.reduce_sum(K * tf.matmul(a, r, transpose_b=True), axis=[1, 2])
    if not has_r:
        rr = gr = tf.zeros_like(gg)
    return tf.stack([gg, rr, gr, sx * sx * sm / B], axis=1)


@tf.function
def _track(weights, x, y, acts, layers, realign, gram):
    """Per-run loss, accuracy, gradient norm and [gg, rr, gr, scale] of ``layers``, float64.

    The blocks A_k, R_k of every layer come from the backward recursion of
    ``hessinit.curvature.blocks._recursive_blocks`` with a run axis in front; the gradient
    of layer k's kernel is (1/B) X_k^T g_k with g_k = dl/da_k per sample.
    """
    weights = [(tf.cast(w, tf.float64), tf.cast(b, tf.float64)) for w, b in weights]
    h = tf.cast(x, tf.float64)
    n = len(weights)
    inputs, d1s, d2s = [], [], []
    for (w, b), act in zip(weights, acts, strict=True):
        inputs.append(h)
        h, d1, d2 = elementwise_derivatives(act, tf.matmul(h, w) + b[:, None, :])
        d1s.append(d1)
        d2s.append(d2)
    z = h
    p = tf.nn.softmax(z)
    s = p - tf.one_hot(y, tf.shape(z)[-1], dtype=tf.float64)
    loss = tf.reduce_mean(
        tf.reduce_logsumexp(z, axis=-1) - tf.gather(z, y, axis=-1, batch_dims=2), axis=1
    )
    hits = tf.cast(tf.equal(tf.argmax(z, axis=-1, output_type=tf.int32), y), tf.float64)
    accuracy = tf.reduce_mean(hits, axis=1)
    B = tf.cast(tf.shape(x)[1], tf.float64)
    flat = all(map(is_piecewise_linear, acts))
    J = tf.linalg.diag(d1s[-1])  # (R, B, K, K): dz/da of the top layer
    Rb = tf.linalg.diag(s * d2s[-1])
    g = s * d1s[-1]  # dl/da of the top layer, per sample
    pe = p[..., None]
    grad_sq = tf.zeros_like(loss)
    sums = {}
    for k in range(n - 1, -1, -1):
        if k < n - 1:
            w = weights[k + 1][0]
            gh = tf.matmul(g, w, transpose_b=True)  # dl/dh_k
            g = gh * d1s[k]
            J = tf.einsum("rbkm,rnm->rbkn", J, w) * d1s[k][:, :, None, :]
            if not flat:
                WRW = tf.einsum("rim,rbmn,rjn->rbij", w, Rb, w)
                Rb = d1s[k][..., :, None] * WRW * d1s[k][..., None, :]
                Rb += tf.linalg.diag(gh * d2s[k])
        gw = tf.matmul(inputs[k], g, transpose_a=True) / B
        grad_sq += tf.reduce_sum(gw * gw, axis=[1, 2]) + tf.reduce_sum(
            tf.square(tf.reduce_mean(g, axis=1)), axis=1
        )
        if k in layers:
            LJ = pe * J - pe * tf.reduce_sum(pe * J, axis=-2, keepdims=True)  # Lambda J
            A = tf.einsum("rbkm,rbkn->rbmn", J, LJ)
            has_r = not all(map(is_piecewise_linear, acts[k:]))
            K, sx = gram if k == 0 and gram is not None else (None, None)
            R = Rb if has_r else tf.zeros_like(A)
            sums[k] = _stacked_layer_sums(inputs[k], A, R, has_r, realign[k], K, sx)
    return loss, accuracy, tf.sqrt(grad_sq), tf.stack([sums[k] for k in layers], axis=1)


def input_grams(x):
    """The first layer's cached kernel of :func:`stacked_norms` for U input batches.

    Args:
        x: U batches of B flattened inputs, (U, B, n_0).

    Returns:
        ``(K, s)``: K_u = ((x_i . x_j) / s_u^2)^2, (U, B, B), and s_u, the largest absolute
        entry of batch u, (U,); float64.

    Example:
        >>> K, s = input_grams(np.ones((1, 2, 3)))
        >>> K.numpy().tolist(), s.numpy().tolist()
        ([[[9.0, 9.0], [9.0, 9.0]]], [1.0])
    """
    X = tf.cast(x, tf.float64)
    sx = _run_max_abs(X)
    X = X / sx[:, None, None]
    return tf.square(tf.matmul(X, X, transpose_b=True)), sx


def _norms_from_sums(sums):
    """H, G, R, GR arrays (..., 4 each) from [gg, rr, gr, scale] (kron_norms' rescaling)."""
    gg, rr, gr, scale = (sums[..., i] for i in range(4))
    with np.errstate(invalid="ignore"):
        hh = np.maximum(gg + 2 * gr + rr, 0.0)
        hh = np.where(np.isnan(gg + 2 * gr + rr), np.nan, hh)
        return np.sqrt(hh) * scale, np.sqrt(gg) * scale, np.sqrt(rr) * scale, gr * scale * scale


def stacked_norms(weights, x, y, acts, layers=None, gram=None):
    """Exact per-layer Hessian norms, loss, accuracy and gradient norm of R stacked runs.

    For each run r and dense layer k, ||H_k[r]||_F, ||G_k[r]||_F, ||R_k[r]||_F and
    <G_k[r], R_k[r]>_F of the mean cross-entropy on run r's batch (module docstring), in float64
    whatever the weights' dtype, with the per-run rescaling of
    :func:`hessinit.curvature.kron_norms` (tiny sds do not underflow).

    Args:
        weights: a list of ``(W_k, b_k)`` stacked on the run axis, (R, n_{k-1}, n_k), (R, n_k).
        x: the runs' inputs (R, B, n_0).
        y: the runs' labels (R, B).
        acts: the activation name of each dense layer; every one elementwise (in
            :data:`hessinit.nn.activations.REGISTRY`).
        layers: dense layer indices to measure (default all).
        gram: ``(K, s)`` from the first layer's inputs (R, B, B) and (R,), if cached.

    Returns:
        A dict of numpy arrays: ``loss``, ``accuracy``, ``grad_norm`` (R,) and ``H``, ``G``,
        ``R``, ``GR`` (R, number of layers).

    Raises:
        ValueError: an activation outside the registry.

    Example:
        A two-layer tanh network, two runs; the logits layer feeds the loss linearly, so its
        R vanishes:

        >>> rng = np.random.default_rng(0)
        >>> w = [(rng.normal(size=(2, 3, 4)), np.zeros((2, 4))),
        ...      (rng.normal(size=(2, 4, 2)), np.zeros((2, 2)))]
        >>> out = stacked_norms(w, rng.random((2, 8, 3)), np.zeros((2, 8), int), ("tanh", "linear"))
        >>> out["H"].shape, out["R"][:, 1].tolist()
        ((2, 2), [0.0, 0.0])
    """
    acts = tuple(acts)
    for act in acts:
        if act not in REGISTRY:
            raise ValueError(f"activation {act!r} is not in hessinit.nn.activations.REGISTRY")
    layers = tuple(range(len(weights))) if layers is None else tuple(layers)
    weights = [(tf.convert_to_tensor(w), tf.convert_to_tensor(b)) for w, b in weights]
    x, y = tf.convert_to_tensor(x), tf.cast(tf.convert_to_tensor(y), tf.int32)
    B = int(x.shape[1])
    realign = tuple(
        use_realignment(B, int(w.shape[1]), int(w.shape[2]) * (int(w.shape[2]) + 1) // 2)
        for w, _ in weights
    )
    loss, accuracy, grad_norm, sums = _track(weights, x, y, acts, layers, realign, gram)
    H, G, R, GR = _norms_from_sums(sums.numpy())
    return {
        "loss": loss.numpy(), "accuracy": accuracy.numpy(), "grad_norm": grad_norm.numpy(),
        "H": H, "G": G, "R": R, "GR": GR,
    }  # fmt: skip


def grouped_norms(weights, x, y, which, acts, layers, grams=None):
    """:func:`stacked_norms` of R runs in groups that keep the (B, B) matrices in memory.

    Run r is measured on batch ``which[r]`` of ``x``, ``y``; the runs go in groups of at most
    :data:`TRACK_BYTES` of float64 (B, B) matrices (three per run).

    Args:
        weights: a list of ``(W_k, b_k)`` stacked on the run axis, (R, n_{k-1}, n_k), (R, n_k).
        x: U input batches (U, B, n_0).
        y: their labels (U, B).
        which: the batch of each run, an integer array (R,).
        acts: the activation name of each dense layer.
        layers: dense layer indices to measure.
        grams: :func:`input_grams` of ``x``, if cached.

    Returns:
        :func:`stacked_norms`' dict for all R runs.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> w = [(rng.normal(size=(3, 2, 2)), np.zeros((3, 2)))]
        >>> out = grouped_norms(w, rng.random((2, 4, 2)), np.zeros((2, 4), int), [0, 1, 0],
        ...                     ("linear",), (0,))
        >>> out["H"].shape
        (3, 1)
    """
    which = np.asarray(which)
    R, B = len(which), int(np.shape(x)[1])
    group = max(1, min(R, TRACK_BYTES // (3 * 8 * B * B)))
    parts = []
    for lo in range(0, R, group):
        sel = which[lo : lo + group]
        gram = None if grams is None else (tf.gather(grams[0], sel), tf.gather(grams[1], sel))
        part_w = [(w[lo : lo + group], b[lo : lo + group]) for w, b in weights]
        parts.append(stacked_norms(part_w, np.asarray(x)[sel], np.asarray(y)[sel], acts, layers,
                                   gram))  # fmt: skip
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
