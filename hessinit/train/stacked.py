"""Many runs of one MLP as one compiled program: R weight sets stacked, one SGD step for all.

Run r of R has its own initial weights (its seed s_r and initial sd_r), its own learning rate
lr_r and its own data order. The weights of dense layer k are stacked on a leading run axis,
W_k in R^{R x n_{k-1} x n_k} and b_k in R^{R x n_k}, and one step updates every run:

    h_0[r] = x_{B_r},   a_k[r] = h_{k-1}[r] W_k[r] + b_k[r],   h_k[r] = f_k(a_k[r]),
    L_r = (1/b) sum_{i in B_r} l(z_i[r], y_i),        W[r] <- W[r] - lr_r grad_{W[r]} L_r,

with batched matrix products. L_r depends on run r's weights only, so the gradient of
sum_r L_r with respect to W[r] is grad L_r: one backward pass gives every run's gradient, and a
run's numbers do not depend on which runs share its program (a run that diverges to NaN or inf
stays in its own slice). The step is one compiled ``tf.function`` that runs up to :data:`CHUNK`
steps per call (XLA-compiled up to :data:`XLA_MAX_RUNS` runs, a TensorFlow graph above); it is
traced once per architecture, number of runs, batch size and dataset size, and reused by every
later call in the process.

Every draw of run r comes from ``np.random.default_rng(s_r)`` exactly as in
:func:`hessinit.train.run` (the Hessian batch without replacement, one fixed mini-batch, then
one mini-batch per step), and its initial weights are those of ``hessinit.nn.mlp(...,
sd_r, seed=s_r)``, so a run here equals the same run of :func:`hessinit.train.run` to
float rounding.

At checkpoints the exact Frobenius norms of every layer Hessian H_k = G_k + R_k of all runs come
from one batched float64 computation, the Kronecker route of
:mod:`hessinit.curvature.kronecker` with a run axis in front:

    H_k[r] = (1/B) sum_i (x_i x_i^T) kron M_i[r],   M_i = A_i + R_i = d^2 l_i / d a_i^2,
    ||H_k[r]||_F^2 = (1/B^2) sum_{i,j} (x_i . x_j)^2 <M_i[r], M_j[r]>_F

(or its realignment for narrow layers), the blocks A_i = J_i^T Lambda_i J_i and R_i from the
backward recursion of :mod:`hessinit.curvature.blocks` written for stacked weights.

Holds :class:`Run`, :func:`grid`, :func:`train_runs`, :func:`initial_weights`,
:func:`stacked_norms`, :func:`sgd_steps`, :data:`COLUMNS` and
:data:`TAYLOR_COLUMNS`.

Imports: numpy, pandas, TensorFlow, Keras, :mod:`hessinit.nn`, :mod:`hessinit.stepsize` (the
Taylor columns) and :mod:`hessinit.curvature.kronecker` (its packing and cost rule); never
:mod:`hessinit.study` or :mod:`hessinit.book`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm.auto import tqdm

from ..curvature.kronecker import sym_pack, use_realignment
from ..nn import dense_layers, mlp, softmax_saturation
from ..nn.activations import REGISTRY, is_piecewise_linear
from ..nn.models import check_sd, dense1_sd, is_number, layer_sds
from ..stepsize import taylor_step

#: Columns of the frame :func:`train_runs` returns, in order.
COLUMNS = (
    "dataset", "run", "sd", "seed", "step", "layer", "lr", "loss",
    "hessian_loss", "hessian_accuracy", "grad_norm", "H", "G", "R", "GR", "diverged",
)  # fmt: skip

#: Columns :func:`train_runs` appends with ``taylor=True``: ``hessinit.train.run``'s Taylor and
#: softmax-saturation columns.
TAYLOR_COLUMNS = (
    "gHg", "gamma_star", "predicted", "realised", "predicted_star", "realised_star",
    "p_max", "lambda_norm", "logit_std",
)  # fmt: skip

#: Largest number of SGD steps one compiled call runs (its loop stops earlier when asked).
CHUNK = 32

#: Bytes of float64 (B, B) matrices one tracking call may hold per run group.
_TRACK_BYTES = 1 << 30


@dataclass(frozen=True)
class Run:
    """The settings of one run: its seed, initial sd and learning rate.

    Attributes:
        seed: the seed of the run's initial weights and of every draw of its data.
        sd: the initial sd, as ``sd`` of :func:`hessinit.nn.mlp` and :func:`hessinit.train.run`:
            a number is dense1's, N(0, sd^2) (the other layers keep Keras' Glorot-uniform
            default, the original experiment); a sequence gives one entry per dense layer
            (``None`` entries keep Glorot; kept as a tuple); ``None`` keeps Glorot throughout.
            The frame's ``sd`` column records dense1's (:func:`hessinit.nn.models.dense1_sd`).
        lr: the run's SGD step size, a positive number.

    Example:
        >>> Run(seed=3, sd=0.01).layer_sds(3)
        (0.01, None, None)
        >>> Run(seed=3, sd=[0.1, 0.2, None]).layer_sds(3)
        (0.1, 0.2, None)
    """

    seed: int = 0
    sd: float | tuple | None = 0.01
    lr: float = 0.01

    def __post_init__(self):
        """Keep a per-layer ``sd`` as a tuple (the settings stay hashable)."""
        if not (self.sd is None or is_number(self.sd)):
            object.__setattr__(self, "sd", tuple(self.sd))

    def layer_sds(self, n_dense):
        """The initial sd of each of ``n_dense`` dense layers (``None``: Glorot-uniform)."""
        return layer_sds(self.sd, n_dense)


def grid(sds=(1e-5, 1e-2, 1.0), seeds=(0,), lrs=(0.01,)):
    """Every combination of ``sds``, ``seeds`` and ``lrs`` as :class:`Run` settings.

    Args:
        sds: sds of dense1's initial kernel.
        seeds: seeds.
        lrs: learning rates.

    Returns:
        A list of :class:`Run`, sd-major, then seed, then learning rate.

    Example:
        >>> [(r.sd, r.seed) for r in grid(sds=(0.1, 1.0), seeds=(0, 1))]
        [(0.1, 0), (0.1, 1), (1.0, 0), (1.0, 1)]
    """
    return [Run(seed=int(s), sd=float(sd), lr=float(lr)) for sd in sds for s in seeds for lr in lrs]


def initial_weights(fans, sds, seed):
    """The initial kernels and biases of ``hessinit.nn.mlp`` as float32 numpy arrays.

    Kernel k (k = 1, 2, ...) is drawn by ``np.random.default_rng([seed, k])``: N(0, sd_k^2), or
    Glorot-uniform U(-l, l) with l = sqrt(6 / (n_{k-1} + n_k)) where sd_k is ``None``; biases
    are zero. These are ``mlp``'s draws, so the weights equal those of
    ``mlp(input_shape, fans[-1], fans[1:-1], sd=sds, seed=seed)`` exactly.

    Args:
        fans: the layer sizes (n_0, n_1, ..., n_L): flattened input, hidden widths, classes.
        sds: one sd or ``None`` per dense layer.
        seed: the seed.

    Returns:
        A list of ``(W_k, b_k)``, W_k of shape (n_{k-1}, n_k), float32.

    Raises:
        ValueError, TypeError: an sd that is not a positive finite number or None.

    Example:
        >>> from hessinit.nn import mlp
        >>> (w1, b1), _ = initial_weights((3, 4, 2), (0.5, None), seed=7)
        >>> bool(np.array_equal(w1, mlp((3,), 2, (4,), sd=0.5, seed=7).layers[1].kernel))
        True
    """
    weights = []
    for k, sd in enumerate(sds, start=1):
        check_sd(sd, f"sd of dense{k}")
        rng = np.random.default_rng([seed, k])
        fan_in, fan_out = fans[k - 1], fans[k]
        if sd is None:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            values = rng.uniform(-limit, limit, (fan_in, fan_out))
        else:
            values = rng.normal(0.0, float(sd), (fan_in, fan_out))
        weights.append((values.astype(np.float32), np.zeros(fan_out, np.float32)))
    return weights


def _activate(act, a):
    """Keras' activation ``act`` applied to ``a``, as a Dense layer applies it."""
    return keras.activations.get(act)(a)


def _stacked_losses(weights, x, y, acts):
    """Per-run mean cross-entropy (R,) of stacked ``weights`` on inputs x (R, b, n_0)."""
    h = x
    for (w, b), act in zip(weights, acts, strict=True):
        h = _activate(act, tf.matmul(h, w) + b[:, None, :])
    true_logit = tf.gather(h, y, axis=-1, batch_dims=2)
    return tf.reduce_mean(tf.reduce_logsumexp(h, axis=-1) - true_logit, axis=1)


def _chunk(weights, x_all, y_all, idx, count, lr, acts):
    """``count`` SGD steps of all runs; idx (CHUNK, R, b) rows of x_all; losses (CHUNK, R)."""
    chunk, runs = idx.shape[0], idx.shape[1]
    flat = [t for pair in weights for t in pair]
    scales = [lr[:, None, None] if t.shape.rank == 3 else lr[:, None] for t in flat]

    def body(s, flat, losses):
        x = tf.gather(x_all, idx[s])
        y = tf.gather(y_all, idx[s])
        with tf.GradientTape() as tape:
            tape.watch(flat)
            pairs = list(zip(flat[::2], flat[1::2], strict=True))
            loss = _stacked_losses(pairs, x, y, acts)
            total = tf.reduce_sum(loss)
        grads = tape.gradient(total, flat)
        flat = [v - c * g for v, c, g in zip(flat, scales, grads, strict=True)]
        losses = tf.tensor_scatter_nd_update(losses, [[s]], loss[None])
        return s + 1, flat, losses

    losses = tf.fill([chunk, runs], tf.constant(math.nan, tf.float32))
    _, flat, losses = tf.while_loop(
        lambda s, *_: s < count, body, (tf.constant(0), flat, losses), maximum_iterations=chunk
    )
    return list(zip(flat[::2], flat[1::2], strict=True)), losses


#: The chunk of steps compiled by XLA, and as a plain TensorFlow graph (see :data:`XLA_MAX_RUNS`).
_sgd_chunk = tf.function(_chunk, jit_compile=True)
_sgd_chunk_graph = tf.function(_chunk, jit_compile=False)

#: Up to this many runs the step is compiled by XLA; above it, it runs as a TensorFlow graph,
#: whose batched matmul kernel spreads the runs over the cores: measured on 2 cores (load 3.5,
#: ms per run-step, XLA / graph) 0.10 / 0.08-0.13 at R = 18, 0.10-0.16 / 0.070 at R = 60 and
#: 0.23-0.32 / 0.071 at R = 180.
XLA_MAX_RUNS = 32


@tf.function(jit_compile=True)
def _loss_only(weights, x_all, y_all, idx, acts):
    """Per-run mini-batch losses (R,) on rows idx (R, b), no step."""
    return _stacked_losses(weights, tf.gather(x_all, idx), tf.gather(y_all, idx), acts)


def sgd_steps(weights, x, y, idx, lr, acts, jit=None):
    """SGD steps of R stacked runs, :data:`CHUNK` steps per compiled call.

    Step t of run r takes the mini-batch ``x[idx[t, r]]``, ``y[idx[t, r]]`` and
    W[r] <- W[r] - lr_r grad L_r (module docstring), in float32.

    Args:
        weights: a list of ``(W_k, b_k)`` tensors stacked on the run axis,
            (R, n_{k-1}, n_k) and (R, n_k), float32.
        x: the flattened images, a float32 tensor (N, n_0).
        y: the labels, an int32 tensor (N,).
        idx: the rows of every step's mini-batch, an integer array (T, R, b).
        lr: the step size of each run, an array (R,).
        acts: the activation name of each dense layer (the last one ``"linear"``).
        jit: compile the step with XLA (True) or run it as a TensorFlow graph (False); None:
            XLA up to :data:`XLA_MAX_RUNS` runs, the graph above (the faster of the two there).

    Returns:
        ``(weights, losses)``: the weights after the T steps, and the mini-batch loss of each
        step before its update, a float32 numpy array (T, R).

    Example:
        Two steps of two runs of softmax regression from zero weights (loss log 3) on a batch
        of three copies of image 0; the run with twice the step size descends faster:

        >>> w = [(tf.zeros((2, 4, 3)), tf.zeros((2, 3)))]
        >>> x, y = tf.ones((5, 4)), tf.constant([0, 1, 2, 0, 1])
        >>> w, losses = sgd_steps(w, x, y, np.zeros((2, 2, 3), int), [0.1, 0.2], ("linear",))
        >>> np.round(losses.astype(float), 4).tolist()
        [[1.0986, 1.0986], [0.7944, 0.5514]]
    """
    idx = np.asarray(idx, np.int32)
    steps, runs, batch = idx.shape
    lr = tf.constant(np.asarray(lr, np.float32))
    acts = tuple(acts)
    step = _sgd_chunk if (runs <= XLA_MAX_RUNS if jit is None else jit) else _sgd_chunk_graph
    out = []
    for start in range(0, steps, CHUNK):
        part = idx[start : start + CHUNK]
        count = len(part)
        if count < CHUNK:
            part = np.concatenate([part, np.zeros((CHUNK - count, runs, batch), np.int32)])
        weights, losses = step(weights, x, y, tf.constant(part), tf.constant(count), lr, acts)
        out.append(losses.numpy()[:count])
    return weights, np.concatenate(out) if out else np.zeros((0, runs), np.float32)


def _derivatives(act, a):
    """f(a), f'(a) and f''(a) of an elementwise activation, by autodiff of f itself."""
    with tf.GradientTape() as t2:
        t2.watch(a)
        with tf.GradientTape() as t1:
            t1.watch(a)
            h = _activate(act, a)
        d1 = t1.gradient(h, a, unconnected_gradients="zero")
    d2 = t2.gradient(d1, a, unconnected_gradients="zero")
    return h, d1, d2


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
        h, d1, d2 = _derivatives(act, tf.matmul(h, w) + b[:, None, :])
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


def _input_grams(x):
    """((x_i . x_j) / s^2)^2 (U, B, B) and s (U,) of U batches x (U, B, n), in float64."""
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


def _draws(seed, n, hessian_batch, batch_size, steps, same_batch):
    """Run ``seed``'s Hessian batch and mini-batches, drawn as :func:`hessinit.train.run` does."""
    rng = np.random.default_rng(seed)
    h_idx = rng.choice(n, size=min(hessian_batch, n), replace=False)
    fixed = rng.integers(0, n, size=batch_size)
    if same_batch:
        return h_idx, np.broadcast_to(fixed, (steps + 1, batch_size))
    return h_idx, np.stack([rng.integers(0, n, size=batch_size) for _ in range(steps + 1)])


def train_runs(
    data,
    runs: Sequence[Run],
    *,
    widths=(30, 30),
    activation="relu",
    steps=1000,
    batch_size=32,
    hessian_every=10,
    hessian_batch=1024,
    layers=None,
    same_batch=False,
    taylor=False,
    progress=True,
):
    """Train R runs of one MLP as one compiled program, tracking their exact layer Hessians.

    Run r is ``hessinit.train.run(data, run.sd, lr=run.lr, seed=run.seed, ...)`` with the
    other arguments shared: the same network
    ``hessinit.nn.mlp(data.x.shape[1:], data.num_classes, widths, activation, ...)``, the same
    draws from ``np.random.default_rng(run.seed)``, SGD w <- w - lr_r grad L_B(w) in float32,
    and at steps 0, ``hessian_every``, ... and ``steps``, before that step's update, the exact
    ||H_l||_F, ||G_l||_F, ||R_l||_F and <G_l, R_l> of each tracked layer on the run's fixed
    Hessian batch, in float64. Its numbers equal ``train.run``'s to float rounding; all runs
    step together (:func:`sgd_steps`) and are measured together (:func:`stacked_norms`).
    With ``taylor=True`` each checkpoint also records ``train.run``'s Taylor quantities at a
    step of the run's lr (:func:`hessinit.stepsize.taylor_step`) and its softmax saturation
    (:func:`hessinit.nn.softmax_saturation`), computed run by run on a Keras ``mlp`` holding
    the run's current weights (float32, as ``train.run``); ``hessian_loss`` and ``grad_norm``
    are then ``taylor_step``'s, as in ``train.run``.

    Args:
        data: a dataset record with ``x``, ``y``, ``name`` and ``num_classes``.
        runs: the :class:`Run` settings, e.g. from :func:`grid`.
        widths: the hidden layers' widths.
        activation: the hidden layers' activation, a name of
            :data:`hessinit.nn.activations.REGISTRY`.
        steps: the number of SGD steps (0: only the checkpoint at initialization).
        batch_size: the mini-batch size b.
        hessian_every: the number of steps between checkpoints.
        hessian_batch: the size of each run's Hessian batch (at most the number of images).
        layers: the names of the dense layers to track (default all: ``dense1``, ...).
        same_batch: train on one fixed mini-batch (the original notebook's bug).
        taylor: also record :data:`TAYLOR_COLUMNS` at checkpoints (one Keras evaluation per
            run and checkpoint; default off).
        progress: show a tqdm progress bar over the checkpoints.

    Returns:
        A ``pandas.DataFrame`` with columns :data:`COLUMNS`, run-major, then step, then layer:
        ``run`` (the index in ``runs``), ``sd`` (dense1's,
        :func:`hessinit.nn.models.dense1_sd`), ``seed``, ``lr`` (the step size taken, NaN at the
        last step), ``loss`` (the mini-batch loss before the step) and, at checkpoints only (NaN
        elsewhere), ``hessian_loss``, ``hessian_accuracy`` and ``grad_norm`` (the whole
        network's gradient norm) on the Hessian batch, and ``H``, ``G``, ``R``, ``GR``. A run
        whose mini-batch loss is not finite ends at that step, as in ``train.run``: its later
        rows are dropped, ``diverged`` is True on all its rows, and ``frame.attrs["diverged"]``
        maps its index to the step; the other runs go on.

    Raises:
        ValueError: ``runs`` empty, ``steps < 0``, ``batch_size``, ``hessian_every`` or
            ``hessian_batch < 1``, an lr that is not a positive number, an activation outside
            the registry, an unknown layer, or an sd ``mlp`` would reject.

    Example:
        Two seeds of a one-hidden-layer ReLU network on 64 random 4 x 4 images:

        >>> from hessinit.data import Dataset
        >>> rng = np.random.default_rng(0)
        >>> data = Dataset(rng.random((64, 4, 4), np.float32), rng.integers(0, 3, 64),
        ...                "tiny", 3, (4, 4), "random")
        >>> frame = train_runs(data, grid(sds=(0.5,), seeds=(0, 1)), widths=(5,), steps=2,
        ...                    batch_size=8, hessian_every=2, hessian_batch=16, progress=False)
        >>> frame[["seed", "step", "layer"]].values.tolist()[:4]
        [[0, 0, 'dense1'], [0, 0, 'dense2'], [0, 1, 'dense1'], [0, 1, 'dense2']]
        >>> checkpoints = frame.dropna(subset=["H"])
        >>> sorted(checkpoints.step.unique().tolist()), bool((checkpoints.R == 0).all())
        ([0, 2], True)
    """
    runs = list(runs)
    if not runs:
        raise ValueError("runs is empty: pass at least one Run")
    if steps < 0 or batch_size < 1 or hessian_every < 1 or hessian_batch < 1:
        raise ValueError("steps >= 0, batch_size >= 1, hessian_every >= 1, hessian_batch >= 1")
    for run in runs:
        if not (is_number(run.lr) and 0 < run.lr < math.inf):
            raise ValueError(f"lr must be a positive number, got {run.lr!r}")
    if activation not in REGISTRY:
        raise ValueError(
            f"activation {activation!r} is not in hessinit.nn.activations.REGISTRY "
            f"({', '.join(REGISTRY)}); train.run takes any Keras activation"
        )
    widths = tuple(int(w) for w in widths)
    x_all = np.asarray(data.x, np.float32).reshape(len(data.y), -1)
    y_all = np.asarray(data.y, np.int32)
    n = len(y_all)
    fans = (x_all.shape[1], *widths, int(data.num_classes))
    n_dense = len(fans) - 1
    names = [f"dense{k}" for k in range(1, n_dense + 1)]
    tracked = names if layers is None else list(layers)
    for name in tracked:
        if name not in names:
            raise ValueError(f"no dense layer named {name!r}; the network has {names}")
    indices = tuple(names.index(name) for name in tracked)
    acts = (activation,) * (n_dense - 1) + ("linear",)
    R = len(runs)

    per_run = [initial_weights(fans, run.layer_sds(n_dense), run.seed) for run in runs]
    weights = [
        tuple(tf.constant(np.stack([w[k][j] for w in per_run])) for j in range(2))
        for k in range(n_dense)
    ]
    seeds = list(dict.fromkeys(run.seed for run in runs))
    draws = {s: _draws(s, n, hessian_batch, batch_size, steps, same_batch) for s in seeds}
    which = np.array([seeds.index(run.seed) for run in runs])
    h_idx = np.stack([draws[s][0] for s in seeds])  # (U, B)
    idx = np.stack([draws[run.seed][1] for run in runs], axis=1)  # (steps + 1, R, b)
    x_t, y_t = tf.constant(x_all), tf.constant(y_all)
    B = h_idx.shape[1]
    x_h = x_all[h_idx]  # (U, B, n_0)
    y_h = y_all[h_idx]
    group = max(1, min(R, _TRACK_BYTES // (3 * 8 * B * B)))
    grams = _input_grams(x_h) if 0 in indices and len(seeds) * B * B * 8 <= _TRACK_BYTES else None
    lr = np.array([run.lr for run in runs], np.float32)

    checkpoints = sorted(set(range(0, steps + 1, hessian_every)) | {steps})
    measured = {}
    losses = np.full((steps + 1, R), np.nan, np.float32)
    for c, start in enumerate(tqdm(checkpoints, desc=f"{data.name}: {R} runs",
                                   disable=not progress)):  # fmt: skip
        parts = []
        for lo in range(0, R, group):
            sel = which[lo : lo + group]
            gram = None if grams is None else (tf.gather(grams[0], sel), tf.gather(grams[1], sel))
            part_w = [(w[lo : lo + group], b[lo : lo + group]) for w, b in weights]
            parts.append(stacked_norms(part_w, x_h[sel], y_h[sel], acts, indices, gram))
        measured[start] = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        if taylor:
            measured[start].update(
                _taylor_columns(fans, widths, activation, weights, x_h[which], y_h[which], lr)
            )
        stop = checkpoints[c + 1] if c + 1 < len(checkpoints) else steps
        if stop > start:
            weights, part = sgd_steps(weights, x_t, y_t, idx[start:stop], lr, acts)
            losses[start:stop] = part
    final = _loss_only(weights, x_t, y_t, tf.constant(idx[steps].astype(np.int32)), acts)
    losses[steps] = final.numpy()
    return _frame(data.name, runs, tracked, losses, measured, taylor)


def _taylor_columns(fans, widths, activation, weights, x_h, y_h, lr):
    """Per run (R,) the Taylor and saturation columns and ``train.run``'s loss and grad norm.

    Run r's weights are loaded into one Keras ``mlp`` over flattened inputs (its Flatten is
    then the identity), which :func:`hessinit.stepsize.taylor_step` and
    :func:`hessinit.nn.softmax_saturation` evaluate on run r's Hessian batch at step lr[r].
    """
    model = _keras_twin(fans, widths, activation)
    layers = dense_layers(model)
    out = {c: [] for c in (*TAYLOR_COLUMNS, "loss", "grad_norm")}
    for r in range(len(lr)):
        for layer, (w, b) in zip(layers, weights, strict=True):
            layer.kernel.assign(w[r])
            layer.bias.assign(b[r])
        x, y = tf.constant(x_h[r]), tf.constant(y_h[r])
        t = taylor_step(model, x, y, float(lr[r]))
        values = {
            "gHg": t.gHg, "gamma_star": t.gamma_star, "predicted": t.predicted,
            "realised": t.realised, "predicted_star": t.predicted_star,
            "realised_star": t.realised_star, "loss": t.loss, "grad_norm": t.grad_norm,
            **softmax_saturation(model, x),
        }  # fmt: skip
        for c in out:
            out[c].append(values[c])
    return {c: np.asarray(v, np.float64) for c, v in out.items()}


_TWINS = {}


def _keras_twin(fans, widths, activation):
    """One cached Keras ``mlp`` of the architecture, over flattened inputs (weights overwritten)."""
    key = (tuple(fans), tuple(widths), activation)
    if key not in _TWINS:
        _TWINS[key] = mlp((fans[0],), fans[-1], widths=widths, activation=activation, seed=0)
    return _TWINS[key]


def _frame(dataset, runs, names, losses, measured, taylor=False):
    """The tidy frame of :func:`train_runs` from the per-step losses and checkpoint records."""
    steps1, R = losses.shape
    L = len(names)
    step = np.repeat(np.arange(steps1), L)
    checkpoint_cols = ("hessian_loss", "hessian_accuracy", "grad_norm", "H", "G", "R", "GR")
    checkpoint_cols += TAYLOR_COLUMNS if taylor else ()
    cols = {c: np.full((steps1, R, L), np.nan) for c in checkpoint_cols}
    for s, m in measured.items():
        for c in ("H", "G", "R", "GR"):
            cols[c][s] = m[c]
        cols["hessian_loss"][s] = m["loss"][:, None]
        cols["hessian_accuracy"][s] = m["accuracy"][:, None]
        cols["grad_norm"][s] = m["grad_norm"][:, None]
        for c in TAYLOR_COLUMNS if taylor else ():
            cols[c][s] = m[c][:, None]
    frames, diverged = [], {}
    for r, run in enumerate(runs):
        bad = np.flatnonzero(~np.isfinite(losses[:, r]))
        end = int(bad[0]) + 1 if len(bad) else steps1
        if len(bad):
            diverged[r] = int(bad[0])
        step_lr = np.full(steps1, float(run.lr))
        step_lr[-1] = np.nan
        part = {
            "dataset": dataset, "run": r, "sd": dense1_sd(run.sd), "seed": run.seed,
            "step": step, "layer": np.tile(names, steps1),
            "lr": np.repeat(step_lr, L), "loss": np.repeat(losses[:, r].astype(np.float64), L),
            **{c: v[:, r].reshape(-1) for c, v in cols.items()},
            "diverged": bool(len(bad)),
        }  # fmt: skip
        columns = list(COLUMNS) + (list(TAYLOR_COLUMNS) if taylor else [])
        frames.append(pd.DataFrame(part, columns=columns).iloc[: end * L])
    frame = pd.concat(frames, ignore_index=True)
    frame.attrs["diverged"] = diverged
    return frame
