"""Experiments that two or more chapters share: the tiny problem, the SGD grid, frame helpers.

:func:`tiny_problem` serves the chain rule and dominance chapters, :func:`sgd_grid` the step
size and diagnostic chapters, :func:`keys_last` the frames of several chapters. A chapter's own
experiments are in its module of :mod:`hessinit.chapters`.

Every grid of settings goes through :func:`hessinit.study.sweep.sweep`, so the settings are the
leading columns of the frame and the networks are built in the order of the nested loops over
the axes (which fixes the order of the random draws).

Notation as in the book: a dense layer with kernel W maps the input x_i of sample i to
a_i = W^T x_i + b; its Hessian block is H_W = (1/B) sum_i (x_i x_i^T) kron M_i with
M_i = A_i + R_i, split by the chain rule into the Gauss-Newton term G_W (from the A_i) and the
curvature term R_W (from the R_i), H_W = G_W + R_W.

Imports: the core (:mod:`hessinit.nn`, :mod:`hessinit.curvature`, :mod:`hessinit.data`,
:mod:`hessinit.train`, :mod:`hessinit.init`) and :mod:`hessinit.study.sweep`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import load
from ..nn import mean_loss, mlp
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


def sgd_grid(data, schedules: dict, inits: dict, seeds, *, steps, batch_size=32, eval_every=50,
             eval_batch=512, held_out=None, widths=(30, 30)):  # fmt: skip
    """Every step-size schedule from every initialization and seed: the loss along SGD only.

    For each initialization and seed the network ``mlp(sd=inits[init], seed=seed)`` is
    trained by every schedule from the same weights on the same mini-batches (drawn from
    ``np.random.default_rng(seed)`` after the evaluation batch: paired runs), with
    :func:`hessinit.stepsize.sgd_steps` (w <- w - gamma g, gamma fixed or fraction * gamma*).
    The loss is evaluated at steps 0, ``eval_every``, ... and ``steps``, on ``held_out`` if
    given, else on an evaluation batch of ``eval_batch`` training images drawn without
    replacement (a training loss). No Hessian is computed beyond the Taylor steps' H g.

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
        One row per (init, seed, schedule, evaluation): ``init, seed, schedule, lr`` (NaN for
        a Taylor schedule), ``step``, ``eval_loss``; a run whose loss stops being finite ends
        with a row at ``steps`` whose ``eval_loss`` is NaN (diverged).

    Example:
        >>> from hessinit.data import load
        >>> frame = sgd_grid(load("mnist-5k", n=64), {"a": 0.1, "t": ("taylor", 0.5)},
        ...                  {0.1: 0.1}, [0], steps=4, batch_size=8, eval_every=2,
        ...                  eval_batch=16, widths=(3,))
        >>> frame[["schedule", "step"]].values.tolist()
        [['a', 0], ['a', 2], ['a', 4], ['t', 0], ['t', 2], ['t', 4]]
    """
    from ..stepsize import sgd_steps

    x_all, y_all = np.asarray(data.x, np.float32), np.asarray(data.y, np.int32)
    n, shape = len(y_all), x_all.shape[1:]
    model = mlp(shape, data.num_classes, widths, sd=1.0, seed=0)

    def point(init, seed):
        rng = np.random.default_rng(seed)
        if held_out is None:
            idx = rng.choice(n, size=min(eval_batch, n), replace=False)
            x_e, y_e = x_all[idx], y_all[idx]
        else:
            x_e = np.asarray(held_out.x, np.float32)
            y_e = np.asarray(held_out.y, np.int32)
        batches = rng.integers(0, n, size=(steps, batch_size))
        start = mlp(shape, data.num_classes, widths, sd=inits[init], seed=seed)
        weights = start.get_weights()
        rows = []
        for name, lr in schedules.items():
            model.set_weights(weights)
            rate = float(lr) if isinstance(lr, (int, float)) else np.nan
            at = 0
            while True:
                loss = float(mean_loss(model, x_e, y_e))
                if not np.isfinite(loss):
                    at, loss = steps, np.nan
                rows.append({"schedule": name, "lr": rate, "step": at, "eval_loss": loss})
                if at >= steps:
                    break
                chunk = batches[at : at + eval_every]
                sgd_steps(model, x_all, y_all, chunk, lr)
                at += len(chunk)
        return rows

    return sweep(point, init=list(inits), seed=list(seeds))
