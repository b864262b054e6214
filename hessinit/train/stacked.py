"""Many runs of one MLP as one compiled program: R weight sets stacked, one SGD step for all.

Run r of R has its own initial weights (its seed s_r and initial sd_r), its own learning rate
lr_r and its own data order. The weights of dense layer k are stacked on a leading run axis,
W_k in R^{R x n_{k-1} x n_k} and b_k in R^{R x n_k}, and one step updates every run:

    h_0[r] = x_{B_r},   a_k[r] = h_{k-1}[r] W_k[r] + b_k[r],   h_k[r] = f_k(a_k[r]),
    L_r = (1/b) sum_{i in B_r} l(z_i[r], y_i),        W[r] <- W[r] - lr_r grad_{W[r]} L_r,

with batched matrix products. L_r depends on run r's weights only, so the gradient of
sum_r L_r with respect to W[r] is grad L_r: one backward pass gives every run's gradient, and a
run's numbers do not depend on which runs share its program (a run that diverges to NaN or inf
stays in its own slice). A run may instead take the Taylor step lr_r gamma*_r, with
gamma*_r = g_r^T g_r / g_r^T H_r g_r of its mini-batch (:mod:`hessinit.stepsize`): the
gradient of sum_r g_r . stop(g_r) gives every such run's H_r g_r in one more backward pass.
The step is one compiled ``tf.function`` that runs up to :data:`CHUNK` steps per call
(XLA-compiled up to :data:`XLA_MAX_RUNS` runs without Taylor steps, a TensorFlow graph
otherwise); it is traced once per architecture, number of runs (and of Taylor runs), batch size
and dataset size, and reused by every later call in the process.

Every draw of run r comes from ``np.random.default_rng(s_r)`` exactly as in
:func:`hessinit.train.run` (the Hessian batch without replacement, one fixed mini-batch, then
one mini-batch per step), and its initial weights are those of ``hessinit.nn.mlp(...,
sd_r, seed=s_r)``, so a run here equals the same run of :func:`hessinit.train.run` to
float rounding.

At checkpoints the exact per-layer Hessian norms of all runs come from one batched float64
computation (:mod:`hessinit.train.stacked_tracking`).

Holds :class:`Run`, :func:`grid`, :func:`train_runs`, :func:`initial_weights`,
:func:`stack_weights`, :func:`sgd_steps`, :func:`batch_losses`, :data:`COLUMNS` and
:data:`TAYLOR_COLUMNS`.

Imports: numpy, pandas, TensorFlow, Keras, :mod:`hessinit.nn`, :mod:`hessinit.stepsize` (the
Taylor columns and gamma*) and :mod:`hessinit.train.stacked_tracking` (the Hessian norms); never
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

from ..nn import dense_layers, mlp, softmax_saturation
from ..nn.activations import REGISTRY
from ..nn.models import check_sd, dense1_sd, is_number, layer_sds
from ..stepsize import gamma_star, taylor_step
from .stacked_tracking import TRACK_BYTES, grouped_norms, input_grams

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


def stack_weights(per_run):
    """The weights of R runs stacked on a leading run axis, as :func:`sgd_steps` takes them.

    Args:
        per_run: one ``[(W_k, b_k), ...]`` per run (e.g. from :func:`initial_weights`), all of
            the same shapes.

    Returns:
        A list of ``(W_k, b_k)`` tensors, (R, n_{k-1}, n_k) and (R, n_k).

    Example:
        >>> w = stack_weights([initial_weights((3, 2), (0.1,), seed) for seed in range(4)])
        >>> [tuple(t.shape) for t in w[0]]
        [(4, 3, 2), (4, 2)]
    """
    return [
        tuple(tf.constant(np.stack([w[k][j] for w in per_run])) for j in range(2))
        for k in range(len(per_run[0]))
    ]


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


def _pairs(flat):
    """``[(W_1, b_1), ...]`` from the flat list ``[W_1, b_1, W_2, ...]``."""
    return list(zip(flat[::2], flat[1::2], strict=True))


def _per_run(values, t):
    """``values`` (R,) shaped to scale a stacked tensor ``t`` (R, ...) run by run."""
    return tf.reshape(values, [-1] + [1] * (t.shape.rank - 1))


def _gradients(flat, x, y, acts):
    """Per-run losses (R,) and the gradient of each run's loss in its own slice of ``flat``."""
    with tf.GradientTape() as tape:
        tape.watch(flat)
        loss = _stacked_losses(_pairs(flat), x, y, acts)
        total = tf.reduce_sum(loss)
    return loss, tape.gradient(total, flat)


def _fixed_step(flat, x, y, lr, acts):
    """One step W[r] <- W[r] - lr_r grad L_r of every run in ``flat``; the losses (R,)."""
    loss, grads = _gradients(flat, x, y, acts)
    lr = tf.cast(lr, tf.float32)
    return [v - _per_run(lr, v) * g for v, g in zip(flat, grads, strict=True)], loss


def _taylor_step(flat, x, y, fraction, acts):
    """One step W[r] <- W[r] - fraction_r gamma*_r g_r of every run in ``flat``; losses (R,).

    gamma*_r = g_r^T g_r / g_r^T H_r g_r (0 where g_r^T H_r g_r <= 0), accumulated in float64
    as :func:`hessinit.stepsize.curvature_along_gradient` does. H g is the gradient of
    sum_r g_r . stop(g_r) (reverse over reverse, one more backward pass): slice r of the
    gradient depends on run r's weights only, so the product never mixes runs.
    """
    with tf.GradientTape() as outer:
        outer.watch(flat)
        loss, g = _gradients(flat, x, y, acts)
        dot = tf.add_n([tf.reduce_sum(t * tf.stop_gradient(t)) for t in g])
    Hg = outer.gradient(dot, flat)

    def per_run_dot(a, b):
        return tf.add_n([
            tf.reduce_sum(tf.cast(s, tf.float64) * tf.cast(t, tf.float64),
                          axis=list(range(1, s.shape.rank)))
            for s, t in zip(a, b, strict=True)
        ])  # fmt: skip

    step = tf.cast(fraction * gamma_star(per_run_dot(g, g), per_run_dot(g, Hg)), tf.float32)
    return [v - _per_run(step, v) * d for v, d in zip(flat, g, strict=True)], loss


def _chunk(weights, x_all, y_all, idx, count, lr, acts, split):
    """``count`` SGD steps of all runs; idx (CHUNK, R, b) rows of x_all; losses (CHUNK, R).

    Runs ``[:split]`` take the fixed step lr_r, runs ``[split:]`` the Taylor step
    lr_r * gamma*_r (lr (R,) float64).
    """
    chunk, runs = idx.shape[0], idx.shape[1]
    flat = [t for pair in weights for t in pair]

    def body(s, flat, losses):
        x = tf.gather(x_all, idx[s])
        y = tf.gather(y_all, idx[s])
        if split == runs:
            flat, loss = _fixed_step(flat, x, y, lr, acts)
        elif split == 0:
            flat, loss = _taylor_step(flat, x, y, lr, acts)
        else:
            head, loss_h = _fixed_step([t[:split] for t in flat], x[:split], y[:split],
                                       lr[:split], acts)  # fmt: skip
            tail, loss_t = _taylor_step([t[split:] for t in flat], x[split:], y[split:],
                                        lr[split:], acts)  # fmt: skip
            flat = [tf.concat([h, t], axis=0) for h, t in zip(head, tail, strict=True)]
            loss = tf.concat([loss_h, loss_t], axis=0)
        losses = tf.tensor_scatter_nd_update(losses, [[s]], loss[None])
        return s + 1, flat, losses

    losses = tf.fill([chunk, runs], tf.constant(math.nan, tf.float32))
    _, flat, losses = tf.while_loop(
        lambda s, *_: s < count, body, (tf.constant(0), flat, losses), maximum_iterations=chunk
    )
    return _pairs(flat), losses


#: The chunk of steps compiled by XLA, and as a plain TensorFlow graph (see :data:`XLA_MAX_RUNS`).
_sgd_chunk = tf.function(_chunk, jit_compile=True)
_sgd_chunk_graph = tf.function(_chunk, jit_compile=False)

#: Up to this many runs the step is compiled by XLA; above it, it runs as a TensorFlow graph,
#: whose batched matmul kernel spreads the runs over the cores: measured on 2 cores (load 3.5,
#: ms per run-step, XLA / graph) 0.10 / 0.08-0.13 at R = 18, 0.10-0.16 / 0.070 at R = 60 and
#: 0.23-0.32 / 0.071 at R = 180. A program with Taylor runs always runs as a graph: XLA took
#: 14-26 s to compile one of 32 runs (8 Taylor) against 4-10 s for the graph (2 cores, load 7).
XLA_MAX_RUNS = 32


@tf.function(jit_compile=True)
def _loss_only(weights, x_all, y_all, idx, acts):
    """Per-run mini-batch losses (R,) on rows idx (R, b), no step."""
    return _stacked_losses(weights, tf.gather(x_all, idx), tf.gather(y_all, idx), acts)


#: Bytes of gathered images one call of :func:`batch_losses` may hold (runs go in groups).
_EVAL_BYTES = 1 << 26


def batch_losses(weights, x, y, idx, acts):
    """Each run's mean cross-entropy on its own rows, without a step: one compiled forward pass.

    L_r = (1/m) sum_{i in idx[r]} (logsumexp z_i[r] - z_{i, y_i}[r]), z[r] the logits of run r's
    weights, in float32 (the loss :func:`sgd_steps` descends). Runs go in groups of equal size
    so that the gathered images stay under 64 MiB.

    Args:
        weights: a list of ``(W_k, b_k)`` tensors stacked on the run axis,
            (R, n_{k-1}, n_k) and (R, n_k), float32.
        x: the flattened images, a float32 tensor (N, n_0).
        y: the labels, an int32 tensor (N,).
        idx: the rows of each run's batch, an integer array (R, m).
        acts: the activation name of each dense layer (the last one ``"linear"``).

    Returns:
        A float32 numpy array (R,), non-finite where a run's loss is.

    Example:
        Zero weights give uniform logits: loss log 3 for every run and every batch.

        >>> w = [(tf.zeros((2, 4, 3)), tf.zeros((2, 3)))]
        >>> x, y = tf.ones((5, 4)), tf.constant([0, 1, 2, 0, 1])
        >>> losses = batch_losses(w, x, y, [[0, 1], [2, 3]], ("linear",))
        >>> np.round(losses.astype(float), 4).tolist()
        [1.0986, 1.0986]
    """
    idx = np.asarray(idx, np.int32)
    runs, m = idx.shape
    group = max(1, min(runs, _EVAL_BYTES // max(1, 4 * m * int(x.shape[1]))))
    acts = tuple(acts)
    out = []
    for lo in range(0, runs, group):
        part = [(w[lo : lo + group], b[lo : lo + group]) for w, b in weights]
        out.append(_loss_only(part, x, y, tf.constant(idx[lo : lo + group]), acts).numpy())
    return np.concatenate(out)


def sgd_steps(weights, x, y, idx, lr, acts, jit=None, taylor=None):
    """SGD steps of R stacked runs, :data:`CHUNK` steps per compiled call.

    Step t of run r takes the mini-batch ``x[idx[t, r]]``, ``y[idx[t, r]]`` and its gradient
    g_r = grad L_r, and W[r] <- W[r] - gamma_r g_r (module docstring), in float32: gamma_r = lr_r
    for a fixed step, or where ``taylor[r]``, gamma_r = lr_r gamma*_r with
    gamma*_r = g_r^T g_r / g_r^T H_r g_r of that mini-batch (no step where g_r^T H_r g_r <= 0),
    as :func:`hessinit.stepsize.sgd_steps` takes with ``lr=("taylor", lr_r)``. H_r g_r is one
    forward-over-backward product per step, computed only for the Taylor runs; fixed and
    Taylor runs step in the same compiled program.

    Args:
        weights: a list of ``(W_k, b_k)`` tensors stacked on the run axis,
            (R, n_{k-1}, n_k) and (R, n_k), float32.
        x: the flattened images, a float32 tensor (N, n_0).
        y: the labels, an int32 tensor (N,).
        idx: the rows of every step's mini-batch, an integer array (T, R, b).
        lr: the step size of each run, or its fraction of gamma* where ``taylor``, an array (R,).
        acts: the activation name of each dense layer (the last one ``"linear"``).
        jit: compile the step with XLA (True) or run it as a TensorFlow graph (False); None:
            XLA up to :data:`XLA_MAX_RUNS` runs without a Taylor run, the graph otherwise (the
            faster of the two there; XLA compiles a Taylor step for 10-20 s on 2 cores).
        taylor: a boolean array (R,): the runs whose step is ``lr * gamma*`` (default none).

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

        The same runs with steps of gamma* and of half of it, the minimiser of the quadratic
        model along -g (the loss is convex here: g^T H g > 0):

        >>> w = [(tf.zeros((2, 4, 3)), tf.zeros((2, 3)))]
        >>> w, losses = sgd_steps(w, x, y, np.zeros((2, 2, 3), int), [1.0, 0.5], ("linear",),
        ...                       taylor=[True, True])
        >>> bool(losses[1, 0] < losses[1, 1] < losses[0, 0])
        True
    """
    idx = np.asarray(idx, np.int32)
    steps, runs, batch = idx.shape
    lr = np.asarray(lr, np.float64)
    taylor = np.zeros(runs, bool) if taylor is None else np.asarray(taylor, bool)
    if lr.shape != (runs,) or taylor.shape != (runs,):
        raise ValueError(f"lr and taylor need one entry per run ({runs})")
    # the fixed runs first, the Taylor runs last: each part is one slice of the program
    order = np.argsort(taylor, kind="stable")
    moved = not np.array_equal(order, np.arange(runs))
    if moved:
        weights = [(tf.gather(w, order), tf.gather(b, order)) for w, b in weights]
        idx, lr = idx[:, order], lr[order]
    split = int(runs - taylor.sum())
    lr_t = tf.constant(lr)
    acts = tuple(acts)
    if jit is None:
        jit = runs <= XLA_MAX_RUNS and not taylor.any()
    step = _sgd_chunk if jit else _sgd_chunk_graph
    out = []
    for start in range(0, steps, CHUNK):
        part = idx[start : start + CHUNK]
        count = len(part)
        if count < CHUNK:
            part = np.concatenate([part, np.zeros((CHUNK - count, runs, batch), np.int32)])
        weights, losses = step(weights, x, y, tf.constant(part), tf.constant(count), lr_t, acts,
                               split)  # fmt: skip
        out.append(losses.numpy()[:count])
    losses = np.concatenate(out) if out else np.zeros((0, runs), np.float32)
    if moved:
        back = np.argsort(order)
        weights = [(tf.gather(w, back), tf.gather(b, back)) for w, b in weights]
        losses = losses[:, back]
    return weights, losses


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
    step together (:func:`sgd_steps`) and are measured together
    (:func:`hessinit.train.stacked_tracking.stacked_norms`).
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
    weights = stack_weights(per_run)
    seeds = list(dict.fromkeys(run.seed for run in runs))
    draws = {s: _draws(s, n, hessian_batch, batch_size, steps, same_batch) for s in seeds}
    which = np.array([seeds.index(run.seed) for run in runs])
    h_idx = np.stack([draws[s][0] for s in seeds])  # (U, B)
    idx = np.stack([draws[run.seed][1] for run in runs], axis=1)  # (steps + 1, R, b)
    x_t, y_t = tf.constant(x_all), tf.constant(y_all)
    B = h_idx.shape[1]
    x_h = x_all[h_idx]  # (U, B, n_0)
    y_h = y_all[h_idx]
    grams = input_grams(x_h) if 0 in indices and len(seeds) * B * B * 8 <= TRACK_BYTES else None
    lr = np.array([run.lr for run in runs], np.float32)

    checkpoints = sorted(set(range(0, steps + 1, hessian_every)) | {steps})
    measured = {}
    losses = np.full((steps + 1, R), np.nan, np.float32)
    for c, start in enumerate(tqdm(checkpoints, desc=f"{data.name}: {R} runs",
                                   disable=not progress)):  # fmt: skip
        measured[start] = grouped_norms(weights, x_h, y_h, which, acts, indices, grams)
        if taylor:
            measured[start].update(
                _taylor_columns(fans, widths, activation, weights, x_h[which], y_h[which], lr)
            )
        stop = checkpoints[c + 1] if c + 1 < len(checkpoints) else steps
        if stop > start:
            weights, part = sgd_steps(weights, x_t, y_t, idx[start:stop], lr, acts)
            losses[start:stop] = part
    losses[steps] = batch_losses(weights, x_t, y_t, idx[steps], acts)
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
