"""Experiments that two or more chapters share: the tiny problem, the SGD grid, frame helpers.

:func:`tiny_problem` serves the chain rule and dominance chapters, :func:`sgd_grid` the step
size chapter, :func:`keys_last` the frames of several chapters. A chapter's own
experiments are in its module of :mod:`hessinit.chapters`.

Every grid of settings goes through :func:`hessinit.study.sweep.sweep`, so the settings are the
leading columns of the frame and the networks are built in the order of the nested loops over
the axes (which fixes the order of the random draws).

Notation as in the book: a dense layer with kernel W maps the input x_i of sample i to
a_i = W^T x_i + b; its Hessian block is H_W = (1/B) sum_i (x_i x_i^T) kron M_i with
M_i = A_i + R_i, split by the chain rule into the Gauss-Newton term G_W (from the A_i) and the
curvature term R_W (from the R_i), H_W = G_W + R_W.

Imports: numpy, pandas, TensorFlow, the core (:mod:`hessinit.nn`, :mod:`hessinit.data`,
:mod:`hessinit.train.stacked` and :mod:`hessinit.train.heldout` for the SGD grid) and
:mod:`hessinit.study.sweep`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import tensorflow as tf

from ..data import load
from ..nn import mlp
from ..nn.models import layer_sds
from ..train.heldout import held_out_scores
from ..train.stacked import batch_losses, initial_weights, sgd_steps, stack_weights
from .sweep import sweep


def keys_last(frame: pd.DataFrame, keys) -> pd.DataFrame:
    """``frame`` with the columns ``keys`` moved to the end, in that order."""
    keys = list(keys)
    return frame[[c for c in frame.columns if c not in keys] + keys]


def tiny_problem(activation="relu", n=64, widths=(8, 6), pool=4, seed=0):
    """A tiny float64 network and ``n`` mnist-5k images average-pooled by ``pool`` (28 -> 7).

    Every kernel starts Glorot-uniform, biases at zero. The pixels are rounded to float32 and
    stored in float64, so that every code path sees the same inputs.

    Args:
        activation: the hidden activation.
        n: number of images (the first ``n`` of mnist-5k shuffled with ``seed``).
        widths: hidden layer widths.
        pool: side of the average-pooling window.
        seed: seed of the image draw and of the kernels.

    Returns:
        ``(model, x, y)``: the float64 Keras model, the images (n, 28 // pool, 28 // pool) and
        the labels (n,).

    Example:
        >>> from hessinit.nn import dense_layers
        >>> model, x, y = tiny_problem("tanh", n=4, widths=(3,))
        >>> x.shape, x.dtype, [d.name for d in dense_layers(model)]
        ((4, 7, 7), dtype('float64'), ['dense1', 'dense2'])
    """
    data = load("mnist-5k", n=n, seed=seed)
    side = data.x.shape[1] // pool
    x = data.x[:, : side * pool, : side * pool].reshape(n, side, pool, side, pool).mean((2, 4))
    x = x.astype(np.float32).astype(np.float64)
    model = mlp(
        (side, side),
        data.num_classes,
        widths=widths,
        activation=activation,
        sd=[None] * (len(widths) + 1),
        seed=seed,
        dtype="float64",
    )
    return model, x, data.y


def _schedule(name, lr):
    """``(step, taylor)`` of a schedule: a positive step size, or ``("taylor", fraction)``."""
    if isinstance(lr, tuple) and len(lr) == 2 and lr[0] == "taylor":
        return float(lr[1]), True
    if isinstance(lr, (int, float)) and 0 < lr < np.inf:
        return float(lr), False
    raise ValueError(f"schedule {name!r}: lr must be a positive number or ('taylor', fraction), "
                     f"got {lr!r}")  # fmt: skip


def sgd_grid(data, schedules: dict, inits: dict, seeds, *, steps, batch_size=32, eval_every=50,
             eval_batch=512, held_out=None, widths=(30, 30)):  # fmt: skip
    """Every step-size schedule from every initialization and seed, all runs as one program.

    For each initialization and seed the ReLU network ``mlp(sd=inits[init], seed=seed)``
    is trained by every schedule from the same weights on the same mini-batches
    (drawn from ``np.random.default_rng(seed)`` after the evaluation batch: paired runs). Step t
    of run r (init, seed, schedule) on its mini-batch B_t with gradient g_t is

        w <- w - gamma_t g_t,   gamma_t = lr (fixed)   or   fraction * gamma*_t,
        gamma*_t = g_t^T g_t / g_t^T H_t g_t   (no step where g_t^T H_t g_t <= 0),

    H_t the Hessian of the mini-batch loss (one H g product per step, never H itself), in
    float32 with g^T g and g^T H g accumulated in float64. All runs of the grid keep their
    weights stacked and take their steps in one compiled program
    (:func:`hessinit.train.stacked.sgd_steps`): each run's numbers are those of training it
    alone (:func:`hessinit.stepsize.sgd_steps` on its own Keras model) to float rounding. The
    loss is evaluated at steps 0, ``eval_every``, ... and ``steps`` (before that step), on
    ``held_out`` if given (:func:`hessinit.train.heldout.held_out_scores`), else on an
    evaluation batch of ``eval_batch`` training images drawn without replacement (a training
    loss; :func:`hessinit.train.stacked.batch_losses`). No Hessian is computed beyond the Taylor
    steps' H g.

    Args:
        data: the training record (``x``, ``y``, ``num_classes``).
        schedules: name -> a positive step size or ``("taylor", fraction)``.
        inits: label -> ``sd`` of :func:`hessinit.nn.mlp` (one number: dense1's sd,
            the other layers Keras defaults; a list: one sd per dense layer).
        seeds: seeds of the weights and of the draws.
        steps: the number of SGD steps.
        batch_size: the mini-batch size b.
        eval_every: steps between evaluations.
        eval_batch: size of the evaluation batch when ``held_out`` is None.
        held_out: a record to evaluate on instead.
        widths: hidden widths.

    Returns:
        One row per (init, seed, schedule, evaluation), in that order: ``init, seed, schedule,
        lr`` (NaN for a Taylor schedule), ``step``, ``eval_loss``. A run whose evaluated loss
        stops being finite (diverged) ends there with a row at ``steps`` whose ``eval_loss`` is
        NaN; the other runs go on.

    Raises:
        ValueError: a schedule neither a positive number nor ``("taylor", fraction)``, or an sd
            ``mlp`` would reject (TypeError: an sd that is not a number).

    Example:
        >>> from hessinit.data import load
        >>> frame = sgd_grid(load("mnist-5k", n=64), {"a": 0.1, "t": ("taylor", 0.5)},
        ...                  {0.1: 0.1}, [0], steps=4, batch_size=8, eval_every=2,
        ...                  eval_batch=16, widths=(3,))
        >>> frame[["schedule", "step"]].values.tolist()
        [['a', 0], ['a', 2], ['a', 4], ['t', 0], ['t', 2], ['t', 4]]
    """
    parsed = {name: _schedule(name, lr) for name, lr in schedules.items()}
    x_all = np.asarray(data.x, np.float32).reshape(len(data.y), -1)
    y_all = np.asarray(data.y, np.int32)
    n = len(y_all)
    fans = (x_all.shape[1], *(int(w) for w in widths), int(data.num_classes))
    n_dense = len(fans) - 1
    acts = ("relu",) * (n_dense - 1) + ("linear",)

    draws = {}
    for seed in dict.fromkeys(seeds):
        rng = np.random.default_rng(seed)
        first = None if held_out is not None else rng.choice(n, size=min(eval_batch, n),
                                                             replace=False)  # fmt: skip
        draws[seed] = first, rng.integers(0, n, size=(steps, batch_size))
    keys = [(init, seed, name) for init in inits for seed in seeds for name in schedules]
    start = {(init, seed): initial_weights(fans, layer_sds(inits[init], n_dense), seed)
             for init in inits for seed in seeds}  # fmt: skip
    weights = stack_weights([start[init, seed] for init, seed, _ in keys])
    idx = np.stack([draws[seed][1] for _, seed, _ in keys], axis=1)  # (steps, R, b)
    lr = np.array([parsed[name][0] for *_, name in keys])
    taylor = np.array([parsed[name][1] for *_, name in keys])
    x_t, y_t = tf.constant(x_all), tf.constant(y_all)
    if held_out is None:
        rows = np.stack([draws[seed][0] for _, seed, _ in keys])

        def evaluate(weights):
            return batch_losses(weights, x_t, y_t, rows, acts)
    else:
        x_h = np.asarray(held_out.x, np.float32).reshape(len(held_out.y), -1)
        y_h = np.asarray(held_out.y, np.int32)

        def evaluate(weights):
            return held_out_scores(weights, x_h, y_h, acts)[0]

    evals = sorted(set(range(0, steps + 1, eval_every)) | {steps})
    losses = {}
    for c, at in enumerate(evals):
        losses[at] = evaluate(weights)
        stop = evals[c + 1] if c + 1 < len(evals) else steps
        if stop > at:
            weights, _ = sgd_steps(weights, x_t, y_t, idx[at:stop], lr, acts, taylor=taylor)

    def point(init, seed):
        out = []
        for name, (step, is_taylor) in parsed.items():
            r = keys.index((init, seed, name))
            for at in evals:
                loss = float(losses[at][r])
                if not np.isfinite(loss):
                    at, loss = steps, np.nan
                out.append({"schedule": name, "lr": np.nan if is_taylor else step, "step": at,
                            "eval_loss": loss})  # fmt: skip
                if at >= steps:
                    break
        return out

    return sweep(point, init=list(inits), seed=list(seeds))
