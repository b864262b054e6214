"""Training that tracks the exact layer Hessians: the original experiment with its bugs fixed.

Plain SGD on the mean cross-entropy of a mini-batch B of b images,

    L_B(w) = (1/b) sum_{i in B} l(z(x_i; w), y_i),     w <- w - lr * grad L_B(w),

on a fresh seeded mini-batch every step (the original notebook reset the seed inside its loop
and so trained on one batch; ``same_batch=True`` reproduces that), or with the Taylor step
lr = fraction * gamma*, gamma* = g^T g / g^T H g, g = grad L_B(w). Every ``hessian_every``
steps, on a fixed Hessian batch, :func:`run` records the exact Frobenius norms of the layer
Hessians H_l = G_l + R_l of the chosen dense layers and the Taylor quantities of
:mod:`hessinit.stepsize`. :func:`fit` is the same SGD, with held-out loss and accuracy instead.

:func:`run` also trains and tracks a given Keras model (a CNN or ResNet of
:mod:`hessinit.nn.convnets`), its kernels' norms then per tensor
(:func:`hessinit.curvature.layer_tensor_norms`).

Holds :func:`run`, :func:`experiment`, :func:`fit`, :data:`COLUMNS` and
:data:`SPECTRA_COLUMNS`: one run at a time, any Keras model. Many runs of one MLP train as one
compiled program in :mod:`hessinit.train.stacked`, each run equal to :func:`run`'s.

Imports: the core below it, :mod:`hessinit.nn`, :mod:`hessinit.curvature` and
:mod:`hessinit.stepsize` (datasets are duck-typed records, so not even :mod:`hessinit.data`);
never :mod:`hessinit.study` or :mod:`hessinit.book`.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm.auto import tqdm

from ..curvature import (
    hessian_norms_all_layers,
    input_gram,
    is_dense_stack,
    layer_spectrum,
    network_spectrum,
    tf_variables,
)
from ..curvature.tensors import layer_tensor_norms
from ..nn import dense_layers, kernel_layers, mean_loss, mlp, softmax_saturation
from ..nn.models import dense1_sd
from ..stepsize import curvature_along_gradient, gamma_star, taylor_step

#: Columns of the frame :func:`run` returns, in order.
COLUMNS = (
    "dataset", "sd", "seed", "step", "layer", "lr", "loss",
    "hessian_loss", "H", "G", "R", "GR",
    "grad_norm", "gHg", "gamma_star", "predicted", "realised", "predicted_star", "realised_star",
    "p_max", "lambda_norm", "logit_std",
)  # fmt: skip


#: Columns :func:`run` appends with ``spectra=True``.
SPECTRA_COLUMNS = ("lambda_max", "lambda_max_network", "lambda_converged")


def _checkpoint_spectra(model, x, y, names):
    """The lambda_max of each layer's kernel and of the network, and whether all converged.

    Returns ``({name: lambda_max}, network lambda_max, ok)``; a value whose Lanczos did not
    pass its residual check is NaN.
    """
    spectra = {name: layer_spectrum(model, name, x, y, strict=False) for name in names}
    network = network_spectrum(model, x, y, strict=False)
    ok = network.converged and all(s.converged for s in spectra.values())
    lams = {name: s.lambda_max if s.converged else math.nan for name, s in spectra.items()}
    return lams, network.lambda_max if network.converged else math.nan, ok


#: Largest Hessian batch whose first-layer input Gram is kept between checkpoints (B^2 floats).
_MAX_CACHED_GRAM = 2048


@tf.function(reduce_retracing=True)
def _sgd_step(model, x, y, lr):
    """One SGD step in place, w <- w - lr * grad L_batch(w); returns L_batch before the step."""
    with tf.GradientTape() as tape:
        loss = mean_loss(model, x, y)
    grads = tape.gradient(loss, model.trainable_variables)
    for v, g in zip(model.trainable_variables, grads, strict=True):
        v.assign_sub(tf.cast(lr, v.dtype) * g)
    return loss


@tf.function(reduce_retracing=True)
def _taylor_sgd_step(model, x, y, fraction):
    """One step of size fraction * gamma*, gamma* = g^T g / g^T H g on this mini-batch.

    Returns the mini-batch loss before the step and the step size taken (0 where g^T H g <= 0).
    """
    loss, grads, gg, gHg = curvature_along_gradient(model, x, y)
    lr = tf.cast(fraction, tf.float64) * gamma_star(gg, gHg)
    for v, g in zip(tf_variables(model), grads, strict=True):
        v.assign_sub(tf.cast(lr, g.dtype) * g)
    return loss, lr


def run(
    data,
    sd=0.01,
    *,
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
    spectra=False,
    model=None,
    tensor_options=None,
    progress=True,
):
    """Train an MLP on ``data`` with SGD, tracking the exact layer Hessians; return a tidy frame.

    The network is ``hessinit.nn.mlp(data.x.shape[1:], data.num_classes, widths, activation,
    sd=sd, seed=seed)``, or ``model``, any Keras model the per-tensor curvature code supports
    (convolutions, pooling, residual and inception blocks; :mod:`hessinit.curvature.tensors`),
    trained in place. Each step draws a mini-batch B of ``batch_size`` images with replacement
    and takes

        w <- w - lr * grad L_B(w)      (or lr = fraction * gamma*, gamma* = g^T g / g^T H g).

    Steps 0, ``hessian_every``, 2 ``hessian_every``, ... and the last step ``steps`` are
    checkpoints: before that step's update, on a Hessian batch of ``hessian_batch`` images drawn
    once, it records ||H_l||_F, ||G_l||_F, ||R_l||_F and <G_l, R_l> of every tracked layer
    (exact, :func:`hessinit.curvature.hessian_norms_all_layers`; for a ``model`` that is not a
    dense stack, the kernel of each layer by :func:`hessinit.curvature.layer_tensor_norms` with
    ``tensor_options``, exact or a Hutchinson estimate as it decides), the Taylor quantities of the
    whole network at a step of ``lr`` (:func:`hessinit.stepsize.taylor_step`; 0.01 for the
    Taylor learning rate) and the softmax saturation (:func:`hessinit.nn.softmax_saturation`).
    With ``spectra=True`` it also records the largest eigenvalue lambda_max of each tracked
    layer's kernel Hessian (:func:`hessinit.curvature.layer_spectrum`, float64 Kronecker
    products) and of the whole network's Hessian (:func:`hessinit.curvature.network_spectrum`,
    in the model's float32), by Lanczos with its residual check, for comparing ``lr`` with the
    stability bound 2 / lambda_max.
    All draws come from one ``np.random.default_rng(seed)``: the Hessian batch (without
    replacement), then one fixed mini-batch (the one ``same_batch=True`` reuses), then one
    mini-batch per step.

    Args:
        data: a dataset record with ``x``, ``y``, ``name`` and ``num_classes`` (a
            :class:`hessinit.data.Dataset`, e.g. from :func:`hessinit.data.load`).
        sd: the initial sd, as ``sd`` of :func:`hessinit.nn.mlp`: a number is dense1's,
            N(0, sd^2) (the original experiment; the other layers keep Keras' defaults), a
            sequence one entry per dense layer (``None`` entries keep the default). The ``sd``
            column records dense1's (:func:`hessinit.nn.models.dense1_sd`).
        widths: the hidden layers' widths.
        activation: the hidden layers' activation.
        steps: the number of SGD steps (0: only the checkpoint at initialization).
        lr: a positive step size, ``"taylor"`` for gamma* of each mini-batch, or
            ``("taylor", fraction)`` for fraction * gamma*.
        batch_size: the mini-batch size b.
        hessian_every: the number of steps between checkpoints.
        hessian_batch: the size of the Hessian batch (at most the number of images).
        layers: the names of the dense layers to track (default all: ``dense1``, ...).
        seed: the seed of the network's weights and of every draw.
        same_batch: train on one fixed mini-batch (the original notebook's bug).
        spectra: also track lambda_max per layer and for the network (adds
            :data:`SPECTRA_COLUMNS`; about a few dozen Hessian-vector products per layer and
            checkpoint); ``"network"``: only the network's (``lambda_max`` stays NaN). Default
            off: the cost and the frame are as without it.
        model: a built Keras model mapping ``data.x`` (reshaped to its input shape) to
            ``data.num_classes`` logits, trained in place instead of the MLP; ``sd``, ``widths``
            and ``activation`` are then unused (``sd`` is only recorded). ``layers`` then
            defaults to its ``Conv2D`` and ``Dense`` layers (:func:`hessinit.nn.kernel_layers`).
            The steps run in inference mode, so a model with ``BatchNormalization`` is refused.
        tensor_options: options of :func:`hessinit.curvature.tensor_hessian_norms` for a
            ``model`` that is not a dense stack (such as ``{"max_products": 0, "fallback":
            "hutchinson", "probes": 4}``:
            exact where R = 0 by structure, else 4 Hutchinson probes).
        progress: show a tqdm progress bar.

    Returns:
        A ``pandas.DataFrame`` with columns :data:`COLUMNS`, one row per step and tracked layer:
        ``lr`` (the step size taken; NaN at the last step, which takes none), ``loss`` (the
        mini-batch loss before the step) and, at checkpoints only (NaN elsewhere),
        ``hessian_loss`` (the loss on the Hessian batch), ``H``, ``G``, ``R``, ``GR``,
        ``grad_norm``, ``gHg``, ``gamma_star``, ``predicted``, ``realised``,
        ``predicted_star``, ``realised_star``, ``p_max``, ``lambda_norm`` and ``logit_std``. A
        non-finite loss ends the run early with that row recorded; ``frame.attrs["diverged_at"]``
        then gives the step (else None). With ``spectra=True``, at checkpoints:
        ``lambda_max`` (the row's layer), ``lambda_max_network`` (the same on every layer's
        row) and ``lambda_converged`` (whether every Lanczos run of the checkpoint passed its
        residual check; a value that did not is NaN).

    Raises:
        ValueError: ``steps < 0``, ``batch_size``, ``hessian_every`` or ``hessian_batch < 1``,
            ``lr`` neither positive nor Taylor, an argument ``mlp`` rejects, a ``model`` with
            BatchNorm or whose input does not fit ``data.x``, or another ``spectra``.

    Example:
        Two steps of a one-hidden-layer ReLU network on 64 random 4 x 4 images:

        >>> from hessinit.data import Dataset
        >>> rng = np.random.default_rng(0)
        >>> data = Dataset(rng.random((64, 4, 4), np.float32), rng.integers(0, 3, 64),
        ...                "tiny", 3, (4, 4), "random")
        >>> frame = run(data, 0.5, widths=(5,), steps=2, batch_size=8, hessian_every=2,
        ...             hessian_batch=16, progress=False)
        >>> frame[["step", "layer"]].values.tolist()
        [[0, 'dense1'], [0, 'dense2'], [1, 'dense1'], [1, 'dense2'], [2, 'dense1'], [2, 'dense2']]
        >>> checkpoints = frame.dropna(subset=["H"])
        >>> checkpoints.step.unique().tolist(), bool((checkpoints.R == 0).all())  # ReLU: R = 0
        ([0, 2], True)
        >>> bool(np.allclose(checkpoints.H, checkpoints.G))
        True
    """
    if steps < 0 or batch_size < 1 or hessian_every < 1 or hessian_batch < 1:
        raise ValueError("steps >= 0, batch_size >= 1, hessian_every >= 1, hessian_batch >= 1")
    fraction = _taylor_fraction(lr)
    if spectra not in (False, True, "network"):
        raise ValueError(f"spectra must be True, False or 'network', got {spectra!r}")
    x_all, y_all = np.asarray(data.x, np.float32), np.asarray(data.y, np.int32)
    if model is None:
        model = mlp(
            x_all.shape[1:],
            data.num_classes,
            widths=widths,
            activation=activation,
            sd=sd,
            seed=seed,
        )
    else:
        x_all = _fit_input(model, x_all)
    dense = is_dense_stack(model)
    default = dense_layers(model) if dense else kernel_layers(model)
    names = [d.name for d in default] if layers is None else list(layers)
    rng = np.random.default_rng(seed)
    h_idx = rng.choice(len(y_all), size=min(hessian_batch, len(y_all)), replace=False)
    x_h, y_h = tf.constant(x_all[h_idx]), tf.constant(y_all[h_idx])
    # The Hessian batch is fixed, so the first layer's input Gram is too: compute it once.
    first = dense and dense_layers(model)[0].name in names
    gram = input_gram(x_h) if first and len(h_idx) <= _MAX_CACHED_GRAM else None
    ref_lr = 0.01 if fraction is not None else float(lr)  # the Taylor columns' step size
    measure = _Measure(model, x_h, y_h, names, dense, gram, ref_lr, spectra, tensor_options)
    batches = _minibatches(rng, len(y_all), batch_size, same_batch)
    rows, diverged = [], None
    recorded = dense1_sd(sd)
    for step in tqdm(range(steps + 1), desc=f"{data.name} sd={recorded:g}", disable=not progress):
        idx = next(batches)
        x, y = tf.constant(x_all[idx]), tf.constant(y_all[idx])
        checkpoint = step % hessian_every == 0 or step == steps
        layer_rows = measure() if checkpoint else None
        loss, step_lr = _train_step(model, x, y, lr, fraction, last=step == steps)
        base = {"dataset": data.name, "sd": recorded, "seed": seed, "step": step, "lr": step_lr,
                "loss": loss}  # fmt: skip
        rows += _step_rows(base, names, layer_rows)
        if not math.isfinite(loss):
            diverged = step
            break
    frame = pd.DataFrame(rows, columns=list(COLUMNS) + (list(SPECTRA_COLUMNS) if spectra else []))
    frame.attrs["diverged_at"] = diverged
    return frame


def _taylor_fraction(lr):
    """The fraction of gamma* a Taylor ``lr`` asks for (1 for ``"taylor"``), None for a number.

    Raises:
        ValueError: ``lr`` neither a positive number nor Taylor.
    """
    if lr == "taylor":
        return 1.0
    if isinstance(lr, tuple) and lr[0] == "taylor":
        return lr[1]
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number or 'taylor', got {lr!r}")
    return None


def _minibatches(rng, n, batch_size, same_batch):
    """The rows of each step's mini-batch: one fixed draw, then one draw per step from ``rng``.

    With ``same_batch`` every step gets the fixed draw; the draws from ``rng`` are the same
    either way up to the first per-step batch.
    """
    fixed = rng.integers(0, n, size=batch_size)
    while True:
        yield fixed if same_batch else rng.integers(0, n, size=batch_size)


def _train_step(model, x, y, lr, fraction, last):
    """One step on the mini-batch (x, y): ``(loss before it, step size)``; none when ``last``.

    ``fraction`` (from :func:`_taylor_fraction`) not None: the step is fraction * gamma*; else
    ``lr``. At the ``last`` step only the loss is computed and the step size is NaN.
    """
    if last:
        return float(mean_loss(model, x, y)), math.nan
    if fraction is not None:
        loss, step_lr = _taylor_sgd_step(model, x, y, tf.constant(fraction, tf.float32))
        return float(loss), float(step_lr)
    return float(_sgd_step(model, x, y, tf.constant(lr, tf.float32))), float(lr)


class _Measure:
    """What :func:`run` records at a checkpoint, on the fixed Hessian batch (x_h, y_h).

    Calling it returns ``{layer name: {column: value}}`` for the checkpoint columns of
    :data:`COLUMNS` (and :data:`SPECTRA_COLUMNS` with ``spectra``).
    """

    def __init__(self, model, x_h, y_h, names, dense, gram, ref_lr, spectra, tensor_options):
        self.model, self.x_h, self.y_h, self.names = model, x_h, y_h, names
        self.dense, self.gram, self.ref_lr = dense, gram, ref_lr
        self.spectra, self.tensor_options = spectra, tensor_options or {}

    def __call__(self):
        model, x_h, y_h, names = self.model, self.x_h, self.y_h, self.names
        t = taylor_step(model, x_h, y_h, self.ref_lr)
        shared = dict.fromkeys(COLUMNS[7:], math.nan)
        shared.update(
            hessian_loss=t.loss, grad_norm=t.grad_norm, gHg=t.gHg, gamma_star=t.gamma_star,
            predicted=t.predicted, realised=t.realised,
            predicted_star=t.predicted_star, realised_star=t.realised_star,
            **softmax_saturation(model, x_h),
        )  # fmt: skip
        if self.dense:
            norms = hessian_norms_all_layers(model, x_h, y_h, names, input_gram=self.gram)
        else:
            norms = {name: layer_tensor_norms(model, name, x_h, y_h, weight="kernel",
                                              **self.tensor_options)
                     for name in names}  # fmt: skip
        if self.spectra:
            each = names if self.spectra is True else []
            lams, lam_net, lam_ok = _checkpoint_spectra(model, x_h, y_h, each)
        out = {}
        for name in names:
            h = norms[name]
            out[name] = {**shared, "H": h.H, "G": h.G, "R": h.R, "GR": h.GR}
            if self.spectra:
                out[name].update(lambda_max=lams.get(name, math.nan),
                                 lambda_max_network=lam_net, lambda_converged=lam_ok)  # fmt: skip
        return out


def _step_rows(base, names, layer_rows):
    """One row per tracked layer: ``base`` plus the checkpoint's columns (NaN off checkpoints)."""
    empty = dict.fromkeys(COLUMNS[7:], math.nan)
    return [
        {**base, "layer": name, **(empty if layer_rows is None else layer_rows[name])}
        for name in names
    ]


def _fit_input(model, x):
    """``x`` reshaped to ``model``'s input shape; ValueError for BatchNorm or a misfit."""
    if any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers):
        raise ValueError(
            f"model {model.name!r} has BatchNormalization layers, but run trains in inference "
            "mode, where BatchNorm keeps its initial statistics; pass a model without BatchNorm"
        )
    shape = tuple(model.input_shape[1:])
    if int(np.prod(shape)) != int(np.prod(x.shape[1:])):
        raise ValueError(
            f"model {model.name!r} takes inputs of shape {shape}, the data has "
            f"{tuple(x.shape[1:])}: build the model for the data's images"
        )
    return x.reshape((len(x), *shape))


def experiment(data, sds=(1e-5, 1e-2, 1.0), **kwargs):
    """:func:`run` for each sd in ``sds``, concatenated (the original experiment).

    Args:
        data: the dataset record, as for :func:`run`.
        sds: the sds of dense1's kernel, one run each.
        **kwargs: the other arguments of :func:`run`, shared by every run.

    Returns:
        The frames of the runs stacked in the order of ``sds`` (a fresh index); the ``sd``
        column tells them apart. ``attrs`` are not kept.

    Example:
        The checkpoint at initialization for two sds:

        >>> from hessinit.data import Dataset
        >>> rng = np.random.default_rng(0)
        >>> data = Dataset(rng.random((32, 4, 4), np.float32), rng.integers(0, 3, 32),
        ...                "tiny", 3, (4, 4), "random")
        >>> frame = experiment(data, sds=(0.1, 1.0), widths=(5,), steps=0, hessian_batch=16,
        ...                    layers=["dense1"], progress=False)
        >>> frame[["sd", "step", "layer"]].values.tolist()
        [[0.1, 0, 'dense1'], [1.0, 0, 'dense1']]
        >>> bool(frame.H.gt(0).all() and frame.lr.isna().all())  # measured; no step taken
        True
    """
    return pd.concat([run(data, sd, **kwargs) for sd in sds], ignore_index=True)


def fit(model, train, test, steps=1000, lr=0.01, batch_size=32, eval_every=50, seed=0,
        progress=True):  # fmt: skip
    """Train ``model`` with plain SGD and report the held-out loss and accuracy as it goes.

    Each step draws a mini-batch B of ``batch_size`` training images with replacement from
    ``np.random.default_rng(seed)`` and takes w <- w - lr * grad L_B(w), in place. At steps 0,
    ``eval_every``, ... and the last step ``steps`` (before that step's update) it evaluates
    the mean cross-entropy and the accuracy, mean_i [argmax_k z_ik = y_i], on all of ``test``.

    Args:
        model: a built Keras model mapping images to logits (e.g. :func:`hessinit.nn.mlp`);
            modified in place.
        train: the training record, with ``x`` and ``y`` (see :func:`hessinit.data.split`).
        test: the held-out record, with ``x`` and ``y``.
        steps: the number of SGD steps.
        lr: the step size.
        batch_size: the mini-batch size b.
        eval_every: the number of steps between evaluations.
        seed: the seed of the mini-batch draws.
        progress: show a tqdm progress bar.

    Returns:
        A ``pandas.DataFrame``, one row per evaluation: ``step``, ``loss`` (the mean
        mini-batch loss over the steps since the previous evaluation; NaN at step 0),
        ``test_loss`` and ``test_accuracy``. Stops early, with the row recorded, when the
        held-out loss is not finite.

    Example:
        >>> from hessinit.data import Dataset
        >>> from hessinit.nn import mlp
        >>> rng = np.random.default_rng(0)
        >>> data = Dataset(rng.random((32, 4, 4), np.float32), rng.integers(0, 3, 32),
        ...                "tiny", 3, (4, 4), "random")
        >>> model = mlp((4, 4), 3, widths=(5,), sd=[0.5, 0.5], seed=0)
        >>> frame = fit(model, data, data, steps=4, eval_every=2, batch_size=8, progress=False)
        >>> list(frame.columns), frame.step.tolist()
        (['step', 'loss', 'test_loss', 'test_accuracy'], [0, 2, 4])
        >>> accuracy = np.mean(np.argmax(model(data.x), axis=1) == data.y)
        >>> bool(frame.test_accuracy.iloc[-1] == accuracy)
        True
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
