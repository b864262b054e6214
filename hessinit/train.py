"""Training that tracks the exact layer Hessians: the original experiment with its bugs fixed.

Plain SGD, w <- w - lr * grad L_batch(w), on a fresh seeded mini-batch every step (the original
notebook reset the seed inside its loop and so trained on one batch; ``same_batch=True`` reproduces
that). Every ``hessian_every`` steps, on a fixed Hessian batch, it records the exact H/G/R norms of
the chosen dense layers and the Taylor quantities of :mod:`hessinit.stepsize`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm.auto import tqdm

from .curvature import hessian_norms_all_layers, input_gram, tf_variables
from .nn import dense_layers, mean_loss, mlp, softmax_saturation
from .stepsize import curvature_along_gradient, gamma_star, taylor_step

#: Columns of the frame :func:`run` returns, in order.
COLUMNS = (
    "dataset", "sd", "seed", "step", "layer", "lr", "loss",
    "hessian_loss", "H", "G", "R", "GR",
    "grad_norm", "gHg", "gamma_star", "predicted", "realised", "predicted_star", "realised_star",
    "p_max", "lambda_norm", "logit_std",
)  # fmt: skip


#: Largest Hessian batch whose first-layer input Gram is kept between checkpoints (B^2 floats).
_MAX_CACHED_GRAM = 2048


@tf.function(reduce_retracing=True)
def _sgd_step(model, x, y, lr):
    with tf.GradientTape() as tape:
        loss = mean_loss(model, x, y)
    grads = tape.gradient(loss, model.trainable_variables)
    for v, g in zip(model.trainable_variables, grads, strict=True):
        v.assign_sub(tf.cast(lr, v.dtype) * g)
    return loss


@tf.function(reduce_retracing=True)
def _taylor_sgd_step(model, x, y, fraction):
    """One step of size fraction * gamma*, gamma* = g^T g / g^T H g on this mini-batch."""
    loss, grads, gg, gHg = curvature_along_gradient(model, x, y)
    lr = tf.cast(fraction, tf.float64) * gamma_star(gg, gHg)
    for v, g in zip(tf_variables(model), grads, strict=True):
        v.assign_sub(tf.cast(lr, g.dtype) * g)
    return loss, lr


def run(
    data,
    sd=0.01,
    *,
    kernel_std=None,
    widths=(30, 30),
    activation="relu",
    steps=1000,
    lr=0.01,
    batch_size=32,
    hessian_every=10,
    hessian_batch=1024,
    layers=None,
    seed=0,
    same_batch=False,
    progress=True,
):
    """Train ``models.mlp`` on ``data`` with SGD and track the Hessian; return a tidy frame.

    ``data``: a :func:`hessinit.data.load` record (``x``, ``y``, ``name``, ``num_classes``).
    ``sd``: std of dense1's kernel (the original experiment); ``kernel_std`` overrides it with a
    per-layer sequence. ``lr``: a step size, or ``"taylor"`` for gamma* of each mini-batch (times
    ``lr_fraction`` given as ``("taylor", fraction)``). ``layers``: dense layer names to track
    (default all). Steps 0, ``hessian_every``, ... and the last step ``steps`` are checkpoints,
    measured on ``hessian_batch`` images drawn once.

    Returns one row per step and layer, with columns :data:`COLUMNS`: the mini-batch loss before
    the step, and at checkpoints the Hessian-batch loss, H/G/R/GR of the layer, the Taylor
    quantities of the whole network and the softmax saturation (:func:`models.softmax_saturation`)
    on the Hessian batch (NaN elsewhere). A non-finite loss ends the run early with that
    row recorded; ``frame.attrs["diverged_at"]`` then gives the step.
    """
    if steps < 0 or batch_size < 1 or hessian_every < 1 or hessian_batch < 1:
        raise ValueError("steps >= 0, batch_size >= 1, hessian_every >= 1, hessian_batch >= 1")
    taylor = lr == "taylor" or (isinstance(lr, tuple) and lr[0] == "taylor")
    fraction = (lr[1] if isinstance(lr, tuple) else 1.0) if taylor else None
    if not taylor and not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number or 'taylor', got {lr!r}")
    x_all, y_all = np.asarray(data.x, np.float32), np.asarray(data.y, np.int32)
    n = len(y_all)
    model = mlp(
        x_all.shape[1:],
        data.num_classes,
        widths=widths,
        activation=activation,
        kernel_std=sd if kernel_std is None else kernel_std,
        seed=seed,
    )
    names = [d.name for d in dense_layers(model)] if layers is None else list(layers)
    rng = np.random.default_rng(seed)
    h_idx = rng.choice(n, size=min(hessian_batch, n), replace=False)
    x_h, y_h = tf.constant(x_all[h_idx]), tf.constant(y_all[h_idx])
    # The Hessian batch is fixed, so the first layer's input Gram is too: compute it once.
    first = dense_layers(model)[0].name in names
    gram = input_gram(x_h) if first and len(h_idx) <= _MAX_CACHED_GRAM else None
    fixed = rng.integers(0, n, size=batch_size)
    rows, diverged = [], None
    ref_lr = 0.01 if taylor else float(lr)
    for step in tqdm(range(steps + 1), desc=f"{data.name} sd={sd:g}", disable=not progress):
        idx = fixed if same_batch else rng.integers(0, n, size=batch_size)
        x, y = tf.constant(x_all[idx]), tf.constant(y_all[idx])
        checkpoint = step % hessian_every == 0 or step == steps
        extra = dict.fromkeys(COLUMNS[7:], math.nan)
        if checkpoint:
            t = taylor_step(model, x_h, y_h, ref_lr)
            extra.update(
                hessian_loss=t.loss, grad_norm=t.grad_norm, gHg=t.gHg, gamma_star=t.gamma_star,
                predicted=t.predicted, realised=t.realised,
                predicted_star=t.predicted_star, realised_star=t.realised_star,
                **softmax_saturation(model, x_h),
            )  # fmt: skip
            norms = hessian_norms_all_layers(model, x_h, y_h, names, input_gram=gram)
        if step < steps:
            if taylor:
                loss, step_lr = _taylor_sgd_step(model, x, y, tf.constant(fraction, tf.float32))
                step_lr = float(step_lr)
            else:
                loss, step_lr = _sgd_step(model, x, y, tf.constant(lr, tf.float32)), float(lr)
        else:
            loss, step_lr = mean_loss(model, x, y), math.nan
        loss = float(loss)
        for name in names:
            row = {"dataset": data.name, "sd": sd, "seed": seed, "step": step, "layer": name,
                   "lr": step_lr, "loss": loss, **extra}  # fmt: skip
            if checkpoint:
                h = norms[name]
                row.update(H=h.H, G=h.G, R=h.R, GR=h.GR)
            rows.append(row)
        if not math.isfinite(loss):
            diverged = step
            break
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame.attrs["diverged_at"] = diverged
    return frame


def experiment(data, sds=(1e-5, 1e-2, 1.0), **kwargs):
    """:func:`run` for each std in ``sds``, concatenated (the original experiment)."""
    return pd.concat([run(data, sd, **kwargs) for sd in sds], ignore_index=True)


def fit(model, train, test, steps=1000, lr=0.01, batch_size=32, eval_every=50, seed=0,
        progress=True):  # fmt: skip
    """Plain SGD on ``train`` (fresh seeded mini-batches) for an already built ``model``, with the
    loss and accuracy on the held-out ``test`` images every ``eval_every`` steps.

    ``train``, ``test``: records with ``x`` and ``y`` (see :func:`hessinit.data.split`). Returns one
    row per evaluation: ``step``, ``loss`` (the mean mini-batch loss since the last evaluation),
    ``test_loss`` and ``test_accuracy``. Stops early, with the row recorded, on a non-finite loss.
    """
    x_all, y_all = np.asarray(train.x, np.float32), np.asarray(train.y, np.int32)
    x_test, y_test = tf.constant(np.asarray(test.x, np.float32)), np.asarray(test.y, np.int32)
    rng = np.random.default_rng(seed)
    rows, recent = [], []
    for step in tqdm(range(steps + 1), desc="fit", disable=not progress):
        if step % eval_every == 0 or step == steps:
            logits = model(x_test, training=False)
            rows.append({
                "step": step,
                "loss": float(np.mean(recent)) if recent else math.nan,
                "test_loss": float(mean_loss(model, x_test, y_test)),
                "test_accuracy": float(np.mean(np.argmax(logits, axis=1) == y_test)),
            })  # fmt: skip
            recent = []
            if not math.isfinite(rows[-1]["test_loss"]):
                break
        if step < steps:
            idx = rng.integers(0, len(y_all), size=batch_size)
            loss = _sgd_step(model, tf.constant(x_all[idx]), tf.constant(y_all[idx]),
                             tf.constant(lr, tf.float32))  # fmt: skip
            recent.append(float(loss))
    return pd.DataFrame(rows)
