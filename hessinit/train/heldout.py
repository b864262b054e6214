"""Many runs of one MLP as one compiled program, scored on a held-out set as they train.

The held-out twin of :func:`hessinit.train.fit` for R runs at once. Run r has its own initial
weights (drawn from its seed and initial sd, or given), its own step size lr_r and its own
mini-batch order; the weights of every run sit stacked on a leading run axis and one compiled
step (:func:`hessinit.train.stacked.sgd_steps`) updates them all:

    W[r] <- W[r] - lr_r grad L_{B_r,t}(W[r]),   B_{r,t} = rng_r.integers(0, n, size=b),

rng_r = ``np.random.default_rng(seed_r)``, one draw per step exactly as ``fit`` draws. At steps 0,
``eval_every``, ... and ``steps`` (before that step's update) one compiled forward pass over the
shared held-out set (x_j, y_j), j = 1..m, gives every run's

    test_loss_r = (1/m) sum_j [logsumexp z_j[r] - z_{j,y_j}[r]],
    test_accuracy_r = (1/m) sum_j [argmax_k z_{jk}[r] = y_j],

and ``loss`` is the mean mini-batch loss over the steps since the previous evaluation, as in
``fit``. A run's numbers do not depend on which runs share its program (each run's loss depends
on its own slice only), so a run here equals ``fit`` of the same run to float32 rounding. A run
whose held-out loss is not finite stops there, as ``fit`` stops: its row at that evaluation is
kept, its later rows are dropped, ``diverged`` is True on its rows; the other runs go on.

Holds :class:`HeldoutRun`, :func:`fit_draws`, :func:`held_out_scores`, :func:`fit_runs` and
:data:`COLUMNS`.

Imports: numpy, pandas, TensorFlow and :mod:`hessinit.train.stacked` (its stacked weights and
compiled step); never :mod:`hessinit.study` or :mod:`hessinit.book`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ..nn.activations import REGISTRY
from ..nn.models import is_number, layer_sds
from .stacked import initial_weights, sgd_steps, stack_weights

#: Columns of the frame :func:`fit_runs` returns, in order.
COLUMNS = ("run", "seed", "lr", "step", "loss", "test_loss", "test_accuracy", "diverged")


@dataclass(frozen=True)
class HeldoutRun:
    """The settings of one run of :func:`fit_runs`.

    Attributes:
        seed: the seed of the run's mini-batch draws (:func:`fit_draws`) and, where
            ``weights`` is None, of its initial kernels (those of ``hessinit.nn.mlp(..., sd,
            seed=seed)``).
        lr: the run's SGD step size, a positive number.
        sd: the initial sd, as ``sd`` of :func:`hessinit.nn.mlp`: one per dense layer
            (``None`` entries: Glorot-uniform; kept as a tuple), or one number for dense1 (the
            other layers Glorot-uniform), or ``None`` (Glorot-uniform throughout).
        weights: the initial ``(W_k, b_k)`` of every dense layer, given instead of drawn (e.g.
            a Keras model's after :func:`hessinit.init.hessian_init`); ``sd`` is then
            ignored.

    Example:
        >>> HeldoutRun(seed=2, lr=0.1, sd=0.5).layer_sds(3)
        (0.5, None, None)
    """

    seed: int = 0
    lr: float = 0.01
    sd: float | tuple | None = None
    weights: tuple | None = None

    def __post_init__(self):
        """Keep a per-layer ``sd`` as a tuple (the settings stay hashable)."""
        if not (self.sd is None or is_number(self.sd)):
            object.__setattr__(self, "sd", tuple(self.sd))

    def layer_sds(self, n_dense):
        """The initial sd of each of ``n_dense`` dense layers (``None``: Glorot-uniform)."""
        return layer_sds(self.sd, n_dense)

    def initial(self, fans):
        """The run's initial ``[(W_k, b_k)]`` as float32 arrays for layer sizes ``fans``."""
        if self.weights is None:
            return initial_weights(fans, self.layer_sds(len(fans) - 1), self.seed)
        out = [(np.asarray(w, np.float32), np.asarray(b, np.float32)) for w, b in self.weights]
        shapes = [w.shape for w, _ in out]
        if shapes != [(fans[k], fans[k + 1]) for k in range(len(fans) - 1)]:
            raise ValueError(f"weights of shapes {shapes} do not fit layer sizes {fans}")
        return out


def fit_draws(seed, n, batch_size, steps):
    """The mini-batch rows of every step of :func:`hessinit.train.fit` with ``seed``.

    ``rng = np.random.default_rng(seed)``, then ``rng.integers(0, n, size=batch_size)`` once per
    step: rows drawn uniformly with replacement.

    Args:
        seed: the run's seed.
        n: the number of training images.
        batch_size: the mini-batch size b.
        steps: the number of steps T.

    Returns:
        An integer array (T, b).

    Example:
        >>> rng = np.random.default_rng(4)
        >>> first = rng.integers(0, 10, size=3)
        >>> bool(np.array_equal(fit_draws(4, 10, 3, 2)[0], first))
        True
    """
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n, size=batch_size) for _ in range(steps)]
    return np.stack(draws) if draws else np.zeros((0, batch_size), np.int64)


def _forward(weights, x, acts):
    """Logits (R, m, K) of stacked ``weights`` on inputs ``x`` (m, n_0) shared by every run."""
    w, b = weights[0]
    h = tf.einsum("md,rdk->rmk", x, w) + b[:, None, :]
    for k, act in enumerate(acts):
        if k:
            w, b = weights[k]
            h = tf.matmul(h, w) + b[:, None, :]
        h = keras.activations.get(act)(h)
    return h


@tf.function(jit_compile=True)
def _scores(weights, x, y, acts):
    """Per-run mean cross-entropy and accuracy (R,) on the shared held-out set."""
    z = _forward(weights, x, acts)
    eye = tf.one_hot(y, tf.shape(z)[-1], dtype=z.dtype)  # (m, K): picks z_{j, y_j}
    true_logit = tf.reduce_sum(z * eye[None], axis=-1)
    loss = tf.reduce_mean(tf.reduce_logsumexp(z, axis=-1) - true_logit, axis=1)
    hit = tf.cast(tf.equal(tf.argmax(z, axis=-1, output_type=tf.int32), y[None]), tf.float32)
    return loss, tf.reduce_mean(hit, axis=1)


def held_out_scores(weights, x, y, acts):
    """Every run's held-out mean cross-entropy and accuracy, one compiled forward pass.

    For run r with logits z_j[r] on image j: L_r = (1/m) sum_j (logsumexp z_j[r] - z_{j,y_j}[r])
    and acc_r = (1/m) sum_j [argmax_k z_{jk}[r] = y_j], in float32.

    Args:
        weights: a list of ``(W_k, b_k)`` stacked on the run axis, (R, n_{k-1}, n_k), (R, n_k).
        x: the held-out images, flattened, (m, n_0).
        y: their labels (m,).
        acts: the activation name of each dense layer (the last ``"linear"``).

    Returns:
        ``(loss, accuracy)``, float64 numpy arrays (R,).

    Example:
        Zero weights give uniform logits: loss log 3 for every run.

        >>> w = [(np.zeros((2, 4, 3), np.float32), np.zeros((2, 3), np.float32))]
        >>> loss, acc = held_out_scores(w, np.ones((5, 4)), [0, 1, 2, 0, 1], ("linear",))
        >>> np.round(loss, 4).tolist()
        [1.0986, 1.0986]
    """
    weights = [(tf.convert_to_tensor(w, tf.float32), tf.convert_to_tensor(b, tf.float32))
               for w, b in weights]  # fmt: skip
    x = tf.constant(np.asarray(x, np.float32).reshape(len(y), -1))
    y = tf.constant(np.asarray(y, np.int32))
    loss, acc = _scores(weights, x, y, tuple(acts))
    return loss.numpy().astype(np.float64), acc.numpy().astype(np.float64)


def fit_runs(
    train,
    test,
    runs: Sequence[HeldoutRun],
    *,
    widths=(30, 30),
    activation="relu",
    steps=1000,
    batch_size=32,
    eval_every=50,
):
    """Train R runs of one MLP as one compiled program, scoring all on ``test`` as they go.

    Run r is ``hessinit.train.fit(mlp(train.x.shape[1:], train.num_classes, widths,
    activation, run.sd, run.seed), train, test, steps, run.lr, batch_size, eval_every,
    seed=run.seed)`` (or that model holding ``run.weights``): the same draws
    (:func:`fit_draws`), the same float32 SGD, the same evaluations (module docstring).

    Args:
        train: the training record, with ``x``, ``y`` and ``num_classes``.
        test: the held-out record, with ``x`` and ``y``.
        runs: the :class:`HeldoutRun` settings.
        widths: the hidden layers' widths.
        activation: the hidden layers' activation, a name of
            :data:`hessinit.nn.activations.REGISTRY`.
        steps: the number of SGD steps.
        batch_size: the mini-batch size b.
        eval_every: the number of steps between evaluations.

    Returns:
        A ``pandas.DataFrame`` with columns :data:`COLUMNS`, one row per (run, evaluation),
        run-major: ``run`` (the index in ``runs``), ``seed``, ``lr``, ``step``, ``loss`` (the
        mean mini-batch loss since the previous evaluation; NaN at step 0), ``test_loss``,
        ``test_accuracy`` and ``diverged`` (the run's held-out loss stopped being finite; its
        rows end at that evaluation). ``frame.attrs["diverged"]`` maps each such run to its step.

    Raises:
        ValueError: ``runs`` empty, ``steps < 0``, ``batch_size`` or ``eval_every < 1``, an lr
            that is not a positive number, an activation outside the registry, or given
            weights that do not fit the network.

    Example:
        Two step sizes of one seed on 32 random 4 x 4 images:

        >>> from hessinit.data import Dataset
        >>> rng = np.random.default_rng(0)
        >>> data = Dataset(rng.random((32, 4, 4), np.float32), rng.integers(0, 3, 32),
        ...                "tiny", 3, (4, 4), "random")
        >>> runs = [HeldoutRun(seed=0, lr=lr, sd=[0.5, 0.5]) for lr in (0.1, 0.2)]
        >>> frame = fit_runs(data, data, runs, widths=(5,), steps=4, batch_size=8, eval_every=2)
        >>> frame[["run", "step"]].values.tolist()
        [[0, 0], [0, 2], [0, 4], [1, 0], [1, 2], [1, 4]]
    """
    runs = list(runs)
    if not runs:
        raise ValueError("runs is empty: pass at least one HeldoutRun")
    if steps < 0 or batch_size < 1 or eval_every < 1:
        raise ValueError("steps >= 0, batch_size >= 1 and eval_every >= 1")
    for run in runs:
        if not (is_number(run.lr) and 0 < run.lr < math.inf):
            raise ValueError(f"lr must be a positive number, got {run.lr!r}")
    if activation not in REGISTRY:
        raise ValueError(f"activation {activation!r} is not in hessinit.nn.activations.REGISTRY")
    x_all = np.asarray(train.x, np.float32).reshape(len(train.y), -1)
    y_all = np.asarray(train.y, np.int32)
    x_test = np.asarray(test.x, np.float32).reshape(len(test.y), -1)
    y_test = np.asarray(test.y, np.int32)
    n, R = len(y_all), len(runs)
    fans = (x_all.shape[1], *(int(w) for w in widths), int(train.num_classes))
    acts = (activation,) * (len(fans) - 2) + ("linear",)

    per_run = [run.initial(fans) for run in runs]
    weights = stack_weights(per_run)
    draws = {s: fit_draws(s, n, batch_size, steps) for s in dict.fromkeys(r.seed for r in runs)}
    idx = np.stack([draws[run.seed] for run in runs], axis=1)  # (steps, R, b)
    lr = np.array([run.lr for run in runs], np.float32)
    x_t, y_t = tf.constant(x_all), tf.constant(y_all)

    evals = sorted(set(range(0, steps + 1, eval_every)) | {steps})
    losses = np.full((steps, R), np.nan, np.float32)
    scores = {}
    for c, start in enumerate(evals):
        scores[start] = held_out_scores(weights, x_test, y_test, acts)
        stop = evals[c + 1] if c + 1 < len(evals) else steps
        if stop > start:
            weights, part = sgd_steps(weights, x_t, y_t, idx[start:stop], lr, acts)
            losses[start:stop] = part
    return _frame(runs, evals, losses, scores)


def _frame(runs, evals, losses, scores):
    """The tidy frame of :func:`fit_runs` from the step losses and the evaluations."""
    rows, diverged = [], {}
    for r, run in enumerate(runs):
        prev = 0
        for step in evals:
            test_loss, test_acc = scores[step][0][r], scores[step][1][r]
            recent = losses[prev:step, r].astype(np.float64)
            rows.append({
                "run": r, "seed": run.seed, "lr": float(run.lr), "step": step,
                "loss": float(np.mean(recent)) if len(recent) else math.nan,
                "test_loss": float(test_loss), "test_accuracy": float(test_acc),
            })  # fmt: skip
            prev = step
            if not math.isfinite(test_loss):
                diverged[r] = step
                break
    frame = pd.DataFrame(rows)
    frame["diverged"] = frame["run"].isin(list(diverged))
    frame = frame[list(COLUMNS)]
    frame.attrs["diverged"] = diverged
    return frame
