"""The follow-up analyses chapter: whole-network G/R in training, sharpness, Hessian batch size.

In the order the page reads: the checkpointed training of many runs at once
(:func:`train_checkpoints`), (a) the whole-network split H = G + R with the weight of R along
the original experiment (:func:`network_split`, figure :func:`plot_network_split`), (b) the
largest Hessian eigenvalue along training against the stability threshold 2/lr
(:func:`sharpness`, :func:`sharpness_summary`, figure :func:`plot_sharpness`), and (c) the
per-layer norms at initialization against the Hessian batch size with the seed-to-seed spread
(:func:`batch_size_norms`, :func:`batch_size_summary`, figure :func:`plot_batch_size`); the
numbers each part's text cites (:func:`split_findings`, :func:`sharpness_findings`,
:func:`batch_findings`).

Imports: numpy, pandas, matplotlib, TensorFlow, the core (:mod:`hessinit.nn`,
:mod:`hessinit.curvature`, :mod:`hessinit.train.stacked`) and :mod:`hessinit.study.figures`.
"""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf

from ..curvature import hessian_norms_all_layers, hutchinson_norms, input_gram, spectrum
from ..nn import mlp
from ..study.figures import LAYER_COLORS, style
from ..train import stacked


def _fans(data, widths):
    """The layer sizes (n_0, widths..., classes) of the MLP on ``data``."""
    return (int(np.prod(data.x.shape[1:])), *map(int, widths), int(data.num_classes))


def train_checkpoints(data, runs, *, widths=(30, 30), steps=1000, batch_size=32, every=50,
                      hessian_batch=1024, full_batch=False):  # fmt: skip
    """Train ReLU MLPs by SGD (or GD) as one stacked program; keep their weights at checkpoints.

    Run r = (sd, seed, lr) is the original experiment's network (dense1 kernel N(0, sd^2), the
    other kernels Glorot-uniform, zero biases, the draws of :func:`hessinit.nn.mlp`), trained by
    w <- w - lr grad L_B(w) (:func:`hessinit.train.stacked.sgd_steps`). Its Hessian batch is
    ``np.random.default_rng(seed).choice(N, hessian_batch, replace=False)`` and its mini-batches
    the next draws of the same generator, as in :func:`hessinit.train.run`; with ``full_batch``
    every step takes the whole Hessian batch instead (gradient descent on the loss whose
    Hessian is measured, the setting of the edge-of-stability literature).

    Args:
        data: a dataset record (``x``, ``y``, ``num_classes``).
        runs: ``(sd, seed, lr)`` triples.
        widths: hidden widths.
        steps: steps of every run.
        batch_size: SGD mini-batch size (ignored with ``full_batch``).
        every: steps between checkpoints (step 0 and ``steps`` are always checkpoints).
        hessian_batch: images in each run's fixed Hessian batch.
        full_batch: gradient descent on the Hessian batch.

    Returns:
        ``(checkpoints, batches)``: a list of dicts ``run, sd, seed, lr, step, weights`` (the
        weights a list of numpy ``(W_k, b_k)``), and per run the Hessian batch's indices.

    Example:
        >>> from hessinit.data import Dataset
        >>> rng = np.random.default_rng(0)
        >>> d = Dataset(rng.random((40, 2, 2), np.float32), rng.integers(0, 3, 40), "t", 3,
        ...             (2, 2), "random")
        >>> cps, idx = train_checkpoints(d, [(1.0, 0, 0.1)], widths=(3,), steps=4, every=2,
        ...                              hessian_batch=8, batch_size=4)
        >>> [c["step"] for c in cps], idx[0].shape
        ([0, 2, 4], (8,))
    """
    n = len(data.y)
    fans = _fans(data, widths)
    acts = ("relu",) * len(widths) + ("linear",)
    batches, draws, initial = [], [], []
    for sd, seed, _ in runs:
        rng = np.random.default_rng(seed)
        h_idx = rng.choice(n, size=min(hessian_batch, n), replace=False)
        rng.integers(0, n, size=batch_size)  # train.run's fixed batch, kept for equal draws
        steps_idx = np.stack([rng.integers(0, n, size=batch_size) for _ in range(steps)])
        batches.append(h_idx)
        draws.append(np.broadcast_to(h_idx, (steps, len(h_idx))) if full_batch else steps_idx)
        initial.append(stacked.initial_weights(fans, (sd,) + (None,) * len(widths), seed))
    idx = np.stack(draws, axis=1) if steps else np.zeros((0, len(runs), 1), int)
    weights = stacked.stack_weights(initial)
    x = tf.constant(data.x.reshape(n, -1).astype(np.float32))
    y = tf.constant(np.asarray(data.y, np.int32))
    lrs = [lr for *_, lr in runs]
    marks = sorted({*range(0, steps, every), steps})
    checkpoints, done = [], 0
    for mark in marks:
        if mark > done:
            weights, _ = stacked.sgd_steps(weights, x, y, idx[done:mark], lrs, acts)
            done = mark
        values = [(w.numpy(), b.numpy()) for w, b in weights]
        for r, (sd, seed, lr) in enumerate(runs):
            checkpoints.append({
                "run": r, "sd": sd, "seed": seed, "lr": lr, "step": mark,
                "weights": [(w[r], b[r]) for w, b in values],
            })  # fmt: skip
    return checkpoints, batches


def _model(data, weights, widths, cache):
    """The float64 Keras MLP holding ``weights`` (one model per shape in ``cache``, reused)."""
    if "model" not in cache:
        cache["model"] = mlp(data.x.shape[1:], data.num_classes, widths, sd=1.0,
                             dtype="float64")  # fmt: skip
    model = cache["model"]
    model.set_weights([np.asarray(t, np.float64) for pair in weights for t in pair])
    return model


def residual_weight(logits, y):
    """The weight of the curvature term: the mean over the batch of ||p_i - e_{y_i}||_2.

    R = sum_i (1/B) sum_a (dl_i/dz_ia) Hess_w(z_ia) and dl_i/dz_i = p_i - e_{y_i} for softmax
    cross-entropy, so R is a sum of the logits' second derivatives weighted by these residuals.

    Args:
        logits: (B, C).
        y: integer labels (B,).

    Returns:
        The mean residual norm, in [0, sqrt(2)].

    Example:
        >>> round(residual_weight(np.zeros((1, 2)), [0]), 4)  # p = (1/2, 1/2)
        0.7071
    """
    z = np.asarray(logits, np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(p)), np.asarray(y)] -= 1.0
    return float(np.linalg.norm(p, axis=1).mean())


def network_split(data, checkpoints, batches, *, widths=(30, 30), probes=20, deflate=10, seed=0):
    """Whole-network ||H||_F, ||G||_F, ||R||_F and ||R||/||H|| at every checkpoint, with R's weight.

    Over all weights (cross-layer blocks included) on the run's Hessian batch, by the deflated
    Hutchinson estimator :func:`hessinit.curvature.hutchinson_norms` (95% intervals), next to
    :func:`residual_weight`. A checkpoint whose weights are not finite (a diverged run) is skipped.

    Args:
        data: the dataset the runs trained on.
        checkpoints: from :func:`train_checkpoints`.
        batches: the runs' Hessian batches, from :func:`train_checkpoints`.
        widths: hidden widths.
        probes: Rademacher probes.
        deflate: the exactly handled subspace's dimension.
        seed: the probes' seed.

    Returns:
        One row per checkpoint: ``sd, seed, lr, step, loss, weight`` and ``H, G, R, R_over_H``
        with ``_low``/``_high`` interval ends.
    """
    rows, cache = [], {}
    for c in checkpoints:
        if not all(np.isfinite(t).all() for pair in c["weights"] for t in pair):
            continue
        model = _model(data, c["weights"], widths, cache)
        idx = batches[c["run"]]
        x, y = data.x[idx].astype(np.float64), np.asarray(data.y)[idx]
        logits = model(x).numpy()
        est = hutchinson_norms(model, x, y, probes=probes, deflate=deflate, seed=seed)
        row = {key: c[key] for key in ("sd", "seed", "lr", "step")}
        row["loss"] = float(np.mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)))
        row["weight"] = residual_weight(logits, y)
        for name in ("H", "G", "R", "R_over_H"):
            e = getattr(est, name)
            row |= {name: e.value, f"{name}_low": e.low, f"{name}_high": e.high}
        rows.append(row)
    return pd.DataFrame(rows)


def sharpness(data, checkpoints, batches, *, widths=(30, 30)):
    """lambda_max of the whole network's Hessian on the run's Hessian batch, at every checkpoint.

    By Lanczos (:func:`hessinit.curvature.spectrum`, ``which="LA"``), next to the step's
    stability threshold 2/lr: gradient descent on a quadratic with curvature lambda diverges
    along that direction when lr * lambda > 2. A non-finite checkpoint is recorded as diverged.

    Args:
        data: the dataset the runs trained on.
        checkpoints: from :func:`train_checkpoints`.
        batches: the runs' Hessian batches.
        widths: hidden widths.

    Returns:
        One row per checkpoint: ``sd, seed, lr, step, loss, lambda_max, threshold`` (2/lr),
        ``ratio`` (lambda_max / threshold), ``converged``, ``diverged``.
    """
    rows, cache = [], {}
    for c in checkpoints:
        row = {key: c[key] for key in ("sd", "seed", "lr", "step")} | {"threshold": 2.0 / c["lr"]}
        if not all(np.isfinite(t).all() for pair in c["weights"] for t in pair):
            rows.append(row | {"loss": np.nan, "lambda_max": np.nan, "converged": False,
                               "diverged": True})  # fmt: skip
            continue
        model = _model(data, c["weights"], widths, cache)
        idx = batches[c["run"]]
        x, y = data.x[idx].astype(np.float64), np.asarray(data.y)[idx]
        logits = model(x).numpy()
        loss = float(np.mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)))
        s = spectrum(model, x, y, k=1, which="LA", strict=False)
        top = float(s.eigenvalues[0])
        rows.append(row | {"loss": loss, "lambda_max": top, "converged": bool(s.converged),
                           "diverged": not np.isfinite(loss)})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["ratio"] = frame["lambda_max"] / frame["threshold"]
    return frame


def sharpness_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (sd, lr): lambda_max over 2/lr at the start, next checkpoint, peak and end; final loss.

    Means over seeds. ``peak_over`` above 1 says the curvature rose past the stability
    threshold at some checkpoint; ``final_over`` near or below 1 with a finite loss says training
    then settled at (or under) it, the edge-of-stability pattern.

    Args:
        frame: :func:`sharpness`.

    Returns:
        Rows ``sd, lr, threshold, start_over, next_over, peak_over, final_over, final_loss,
        diverged`` (the number of seeds that diverged).

    Example:
        >>> f = pd.DataFrame({"sd": 1.0, "seed": 0, "lr": 1.0, "step": [0, 5, 10], "threshold": 2.0,
        ...                   "lambda_max": [1.0, 4.0, 2.0], "loss": [2.3, 1.0, 0.5],
        ...                   "diverged": False})
        >>> f["ratio"] = f.lambda_max / f.threshold
        >>> cols = ["start_over", "next_over", "peak_over", "final_over"]
        >>> sharpness_summary(f)[cols].values.tolist()
        [[0.5, 2.0, 2.0, 1.0]]
    """
    out = []
    for (sd, lr, seed), g in frame.sort_values("step").groupby(["sd", "lr", "seed"]):
        out.append({
            "sd": sd, "lr": lr, "seed": seed, "threshold": g["threshold"].iloc[0],
            "start_over": g["ratio"].iloc[0], "next_over": g["ratio"].iloc[min(1, len(g) - 1)],
            "peak_over": g["ratio"].max(),
            "final_over": g["ratio"].iloc[-1], "final_loss": g["loss"].iloc[-1],
            "diverged": bool(g["diverged"].any()),
        })  # fmt: skip
    per_seed = pd.DataFrame(out)
    return per_seed.groupby(["sd", "lr"], as_index=False).agg(
        threshold=("threshold", "first"), start_over=("start_over", "mean"),
        next_over=("next_over", "mean"),
        peak_over=("peak_over", "mean"), final_over=("final_over", "mean"),
        final_loss=("final_loss", "mean"), diverged=("diverged", "sum"),
    )  # fmt: skip


def batch_size_norms(data, sds, seeds, sizes, *, draws=5, widths=(30, 30)):
    """Exact per-layer ||H_l||_F at initialization on Hessian batches of several sizes.

    For each seed's initial weights (the original network: dense1 N(0, sd^2), the others
    Glorot) and each size B, ``draws`` batches of B images without replacement
    (``np.random.default_rng([B, d])``, shared by all sds and seeds; one draw, all images, when
    B is at least the dataset's size), the exact norms by the Kronecker route
    (:func:`hessinit.curvature.hessian_norms_all_layers`, float64, the input Gram matrix computed
    once per batch).

    Args:
        data: the dataset.
        sds: sds of dense1's kernel.
        seeds: weight seeds.
        sizes: Hessian batch sizes.
        draws: batches per size.
        widths: hidden widths.

    Returns:
        Rows ``sd, seed, batch, draw, layer, H`` (``batch`` capped at the dataset's size).

    Example:
        >>> from hessinit.data import Dataset
        >>> rng = np.random.default_rng(0)
        >>> d = Dataset(rng.random((12, 2, 2), np.float32), rng.integers(0, 3, 12), "t", 3,
        ...             (2, 2), "random")
        >>> f = batch_size_norms(d, [1.0], [0], [4, 12], draws=2, widths=(3,))
        >>> f.groupby("batch").size().to_dict()  # 2 draws x 2 layers, then 1 x 2
        {4: 4, 12: 2}
    """
    n = len(data.y)
    models = {
        (sd, seed): mlp(data.x.shape[1:], data.num_classes, widths,
                        sd=(sd,) + (None,) * len(widths), seed=seed)
        for sd in sds for seed in seeds
    }  # fmt: skip
    y_all = np.asarray(data.y)
    rows = []
    for size in sizes:
        b = min(int(size), n)
        for d in range(1 if b == n else draws):
            idx = np.sort(np.random.default_rng([b, d]).choice(n, b, replace=False))
            x, y = data.x[idx], y_all[idx]
            gram = input_gram(x)
            for (sd, seed), model in models.items():
                norms = hessian_norms_all_layers(model, x, y, input_gram=gram)
                rows += [{"sd": sd, "seed": seed, "batch": b, "draw": d, "layer": name,
                          "H": float(v.H)} for name, v in norms.items()]  # fmt: skip
    return pd.DataFrame(rows)


def batch_size_summary(frame: pd.DataFrame, seed: int | None = None) -> pd.DataFrame:
    """Per (sd, layer, batch): the batch-to-batch spread and the error against the full batch.

    The reference ("full") is each seed's value on the largest batch in ``frame`` (its first
    draw; the whole dataset when the sizes reach it). For one weight seed (default the
    smallest): the mean over draws, their relative std
    (``batch_spread``), the relative error of a single draw against the full-batch value
    (``error``: root mean square over draws of H_B / H_full - 1), and beside it the
    seed-to-seed relative std of the full-batch value (``seed_spread``), the spread a reader
    should compare the batch error with. ``digits`` is the number of significant digits the
    error leaves, floor(-log10 error).

    Args:
        frame: :func:`batch_size_norms`.
        seed: the weight seed whose batches are summarized.

    Returns:
        Rows ``sd, layer, batch, mean, full, batch_spread, error, seed_spread, digits``.

    Example:
        >>> f = pd.DataFrame({"sd": 1.0, "seed": [0, 0, 0, 1], "batch": [2, 2, 4, 4],
        ...                   "draw": [0, 1, 0, 0], "layer": "dense1", "H": [1.0, 3.0, 2.0, 4.0]})
        >>> batch_size_summary(f)[["batch", "mean", "full", "error"]].values.tolist()
        [[2.0, 2.0, 2.0, 0.5], [4.0, 2.0, 2.0, 0.0]]
    """
    seed = int(frame["seed"].min()) if seed is None else seed
    full_size = frame["batch"].max()
    full = frame[frame["batch"] == full_size]
    per_seed = full.groupby(["sd", "layer", "seed"])["H"].first()
    spread = per_seed.groupby(["sd", "layer"]).agg(
        lambda v: v.std(ddof=1) / v.mean() if len(v) > 1 else np.nan
    )
    ref = per_seed.xs(seed, level="seed")
    rows = []
    for (sd, layer, b), g in frame[frame["seed"] == seed].groupby(["sd", "layer", "batch"]):
        h_full = ref.loc[(sd, layer)]
        rel = g["H"].to_numpy() / h_full - 1.0
        error = float(np.sqrt(np.mean(rel**2)))
        rows.append({
            "sd": sd, "layer": layer, "batch": b, "mean": g["H"].mean(), "full": h_full,
            "batch_spread": g["H"].std(ddof=1) / g["H"].mean() if len(g) > 1 else 0.0,
            "error": error, "seed_spread": spread.loc[(sd, layer)],
            "digits": int(np.floor(-np.log10(error))) if error > 0 else np.inf,
        })  # fmt: skip
    return pd.DataFrame(rows)


def split_findings(split: pd.DataFrame) -> dict[str, float]:
    """The numbers the text of (a) cites: the whole-network split at its first and last checkpoint.

    Means over seeds per sd at the first and at the last checkpoint of :func:`network_split`,
    then the extremes over the sds: ||R||_F / ||H||_F at the start (``a_rh_start_min/max``) and
    the end (``a_rh_end_min/max``), the residual weight at the start (``a_w_start``, its minimum)
    and the end (``a_w_end_min/max``), the smallest growth of ||G||_F (``a_g_growth``, end over
    start) and the range of end over start of ||R||_F (``a_r_fall_min/max``) and of the weight
    (``a_w_fall_min/max``).

    Args:
        split: :func:`network_split`.

    Returns:
        A dict of those names to floats.

    Example:
        >>> f = pd.DataFrame({"sd": [1.0, 1.0, 0.1, 0.1], "seed": 0, "step": [0, 9, 0, 9],
        ...                   "G": [1.0, 4.0, 1.0, 2.0], "R": [2.0, 1.0, 4.0, 1.0],
        ...                   "R_over_H": [0.5, 0.1, 0.8, 0.2], "weight": [0.9, 0.3, 0.95, 0.5]})
        >>> found = split_findings(f)
        >>> found["a_rh_start_min"], found["a_rh_end_max"], found["a_g_growth"]
        (0.5, 0.2, 2.0)
        >>> found["a_r_fall_min"], found["a_r_fall_max"]
        (0.25, 0.5)
    """
    steps = split["step"]
    start = split[steps == steps.min()].groupby("sd").mean(numeric_only=True)
    end = split[steps == steps.max()].groupby("sd").mean(numeric_only=True)
    r_fall, w_fall = end["R"] / start["R"], end["weight"] / start["weight"]
    values = {
        "a_rh_start_min": start["R_over_H"].min(), "a_rh_start_max": start["R_over_H"].max(),
        "a_rh_end_min": end["R_over_H"].min(), "a_rh_end_max": end["R_over_H"].max(),
        "a_w_start": start["weight"].min(),
        "a_w_end_min": end["weight"].min(), "a_w_end_max": end["weight"].max(),
        "a_g_growth": (end["G"] / start["G"]).min(),
        "a_r_fall_min": r_fall.min(), "a_r_fall_max": r_fall.max(),
        "a_w_fall_min": w_fall.min(), "a_w_fall_max": w_fall.max(),
    }  # fmt: skip
    return {name: float(v) for name, v in values.items()}


def sharpness_findings(sharp: pd.DataFrame, summary: pd.DataFrame) -> dict[str, float]:
    """The numbers the text of (b) cites, at the smallest and the largest sd and step size.

    With s the smallest and S the largest sd of ``sharp``: lambda_max at step 0 (mean over the
    runs, ``b_small_start``, ``b_big_start``); at sd S the range over step sizes of
    lambda_max * lr / 2 at the start, the next checkpoint and the end (``b_big_start_min/max``,
    ``b_big_next_min/max``, ``b_big_final_min/max``), and at the largest step its final ratio
    and loss (``b_big_top_final``, ``b_big_top_loss``); at sd s and the smallest step the peak
    ratio (``b_small_low_peak``) and the growth of lambda_max (``b_small_low_growth``, the
    largest seed-mean over the first), at sd s and the largest step the start and final ratio
    and the final loss (``b_small_top_start``, ``b_small_top_final``, ``b_small_top_loss``);
    the number of diverged runs (``b_diverged``, an int).

    Args:
        sharp: :func:`sharpness`.
        summary: :func:`sharpness_summary` of ``sharp``.

    Returns:
        A dict of those names to numbers.

    Example:
        >>> f = pd.DataFrame({"sd": 1.0, "seed": 0, "lr": 1.0, "step": [0, 5, 10],
        ...                   "threshold": 2.0, "lambda_max": [1.0, 4.0, 2.0],
        ...                   "loss": [2.3, 1.0, 0.5], "diverged": False})
        >>> f["ratio"] = f.lambda_max / f.threshold
        >>> found = sharpness_findings(f, sharpness_summary(f))
        >>> found["b_big_start"], found["b_small_low_growth"], found["b_big_next_max"]
        (1.0, 4.0, 2.0)
        >>> found["b_diverged"]
        0
    """
    small_sd, big_sd = sharp["sd"].min(), sharp["sd"].max()
    low_lr, top_lr = sharp["lr"].min(), sharp["lr"].max()
    at = summary.set_index(["sd", "lr"])
    big = summary[summary["sd"] == big_sd]
    start = sharp[sharp["step"] == 0].groupby("sd")["lambda_max"].mean()
    low = sharp[(sharp["sd"] == small_sd) & (sharp["lr"] == low_lr)]
    growth = low.groupby("step")["lambda_max"].mean()
    values = {
        "b_small_start": start[small_sd], "b_big_start": start[big_sd],
        "b_big_start_min": big["start_over"].min(), "b_big_start_max": big["start_over"].max(),
        "b_big_next_min": big["next_over"].min(), "b_big_next_max": big["next_over"].max(),
        "b_big_final_min": big["final_over"].min(), "b_big_final_max": big["final_over"].max(),
        "b_big_top_final": at.loc[(big_sd, top_lr), "final_over"],
        "b_big_top_loss": at.loc[(big_sd, top_lr), "final_loss"],
        "b_small_low_peak": at.loc[(small_sd, low_lr), "peak_over"],
        "b_small_low_growth": growth.max() / growth.iloc[0],
        "b_small_top_start": at.loc[(small_sd, top_lr), "start_over"],
        "b_small_top_final": at.loc[(small_sd, top_lr), "final_over"],
        "b_small_top_loss": at.loc[(small_sd, top_lr), "final_loss"],
    }  # fmt: skip
    return {name: float(v) for name, v in values.items()} | {
        "b_diverged": int(summary["diverged"].sum())
    }


def batch_findings(digits: pd.DataFrame, sizes) -> dict[str, float]:
    """The numbers the text of (c) cites, from :func:`batch_size_summary`.

    ``c_mid`` is the size in ``sizes`` nearest 1,024; at it the worst error over layers and
    sds (``c_err_mid``) and over the sds below 1 (``c_err_mid_small``, NaN when there is none),
    the worst error at the smallest size (``c_err_small``), the largest mean-over-full ratio there
    (``c_bias_small``), the range of the seed-to-seed spread (``c_seed_min/max``) and the
    largest batch (``c_full``) and smallest size (``c_small``), ints.

    Args:
        digits: :func:`batch_size_summary`.
        sizes: the Hessian batch sizes asked for (before capping at the data's size).

    Returns:
        A dict of those names to numbers.

    Example:
        >>> f = pd.DataFrame({"sd": 1.0, "seed": [0, 0, 0, 1], "batch": [2, 2, 4, 4],
        ...                   "draw": [0, 1, 0, 0], "layer": "dense1", "H": [2.0, 4.0, 2.0, 4.0]})
        >>> found = batch_findings(batch_size_summary(f), [2, 4])  # draws 1 and 2 times the full
        >>> found["c_mid"], found["c_small"], round(found["c_err_small"], 3), found["c_bias_small"]
        (4, 2, 0.707, 1.5)
    """
    mid = min(sizes, key=lambda b: abs(b - 1024))
    smallest = min(sizes)
    at_mid, at_small = digits[digits["batch"] == mid], digits[digits["batch"] == smallest]
    values = {
        "c_err_mid": at_mid["error"].max(),
        "c_err_mid_small": at_mid[at_mid["sd"] < 1]["error"].max(),
        "c_err_small": at_small["error"].max(),
        "c_seed_min": digits["seed_spread"].min(), "c_seed_max": digits["seed_spread"].max(),
        "c_bias_small": (at_small["mean"] / at_small["full"]).max(),
    }  # fmt: skip
    return {name: float(v) for name, v in values.items()} | {
        "c_full": int(digits["batch"].max()),
        "c_mid": int(mid),
        "c_small": int(smallest),
    }


def plot_network_split(frame: pd.DataFrame):
    """(a): whole-network ||H||, ||G||, ||R|| (log axis) and the weight of R against the step.

    One panel per sd; lines are means over seeds, bars the 95% Hutchinson interval of the first
    seed; the weight mean ||p - e_y|| on the right axis (black, dashed).

    Args:
        frame: :func:`network_split`.

    Returns:
        The figure.
    """
    with style():
        sds = sorted(frame["sd"].unique())
        fig, axes = plt.subplots(
            1, len(sds), figsize=(4 * len(sds), 3.2), sharey=True, squeeze=False
        )
        for ax, sd in zip(axes[0], sds, strict=True):
            g = frame[frame["sd"] == sd]
            mean = g.groupby("step").mean(numeric_only=True)
            for name, color in zip(("H", "G", "R"), LAYER_COLORS, strict=False):
                ax.plot(mean.index, mean[name], color=color, label=f"$\\|{name}\\|_F$")
                ax.fill_between(mean.index, mean[f"{name}_low"], mean[f"{name}_high"], color=color,
                                alpha=0.2, lw=0)  # fmt: skip
            ax.set_yscale("log")
            ax.set_title(f"sd = {sd:g}")
            ax.set_xlabel("SGD step")
            twin = ax.twinx()
            twin.plot(mean.index, mean["weight"], "k--", label="mean $\\|p - e_y\\|$")
            twin.set_ylim(0, 1.45)
            twin.tick_params(labelright=ax is axes[0, -1])
            if ax is axes[0, -1]:
                twin.set_ylabel("weight of R, mean $\\|p - e_y\\|$")
                twin.legend(loc="lower right")
        axes[0, 0].set_ylabel("whole-network norm")
        axes[0, 0].legend(loc="lower left")
    return fig


def plot_sharpness(frame: pd.DataFrame):
    """(b): lambda_max of the whole network against the step, per lr, with 2/lr dashed.

    One panel per sd, one color per lr (mean over seeds, log axis).

    Args:
        frame: :func:`sharpness`.

    Returns:
        The figure.
    """
    with style():
        sds = sorted(frame["sd"].unique())
        lrs = sorted(frame["lr"].unique())
        fig, axes = plt.subplots(
            1, len(sds), figsize=(4 * len(sds), 3.2), sharey=True, squeeze=False
        )
        for ax, sd in zip(axes[0], sds, strict=True):
            for lr, color in zip(lrs, itertools.cycle(LAYER_COLORS)):
                g = frame[(frame["sd"] == sd) & (frame["lr"] == lr)]
                mean = g.groupby("step")["lambda_max"].mean()
                ax.plot(mean.index, mean.values, color=color, label=f"lr {lr:g}")
                ax.axhline(2.0 / lr, color=color, ls="--", lw=1)
            ax.set_yscale("log")
            ax.set_title(f"sd = {sd:g}")
            ax.set_xlabel("gradient-descent step")
        axes[0, 0].set_ylabel("$\\lambda_{max}$ (dashed: 2 / lr)")
        axes[0, 0].legend()
    return fig


def plot_batch_size(summary: pd.DataFrame):
    """(c): ||H_l||_F on a batch of B images over its full-batch value, against B.

    One panel per layer, one color per sd (sds whose curves coincide hide each other): the mean
    over draws with bars of their std; the grey band is the seed-to-seed relative std of the
    full-batch value (the largest over the sds).

    Args:
        summary: :func:`batch_size_summary`.

    Returns:
        The figure.
    """
    with style():
        layers = sorted(summary["layer"].unique())
        sds = sorted(summary["sd"].unique())
        fig, axes = plt.subplots(
            1, len(layers), figsize=(4 * len(layers), 3.2), sharey=True, squeeze=False
        )
        for ax, layer in zip(axes[0], layers, strict=True):
            g = summary[summary["layer"] == layer]
            band = float(np.nanmax(g["seed_spread"])) if g["seed_spread"].notna().any() else 0.0
            ax.axhspan(1 - band, 1 + band, color="0.85", label="seed-to-seed spread")
            for sd, color in zip(sds, itertools.cycle(LAYER_COLORS)):
                s = g[g["sd"] == sd].sort_values("batch")
                level = s["mean"] / s["full"]
                ax.errorbar(s["batch"], level, yerr=s["batch_spread"] * level, color=color,
                            marker="o", capsize=3, label=f"sd {sd:g}")  # fmt: skip
            ax.set_xscale("log")
            ax.set_title(layer)
            ax.set_xlabel("Hessian batch size B")
        axes[0, 0].set_ylabel("$\\|H_l\\|_F$ / full-batch value")
        axes[0, 0].legend()
    return fig
