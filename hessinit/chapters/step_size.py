"""The step size chapter: does the Hessian drive the optimization's step size?

In the order the page reads: the quadratic model's step gamma* along training
(:func:`schedule_runs`, :func:`model_errors`, :func:`taylor_checkpoints`, :func:`seed_means`,
:func:`plot_gamma`; claim 3.1 :func:`step_model_rows`, claim 3.2's frame
:func:`star_error_frame`), schedules against the best fixed step (:func:`plot_schedules`,
:func:`against_best`, claims 3.3 and 3.4 :func:`step_training_rows`; the SGD grid is
:func:`hessinit.study.experiments.sgd_grid`). The stability bound 2 / lambda_max and claims 3.5
and 3.6 are in :mod:`hessinit.chapters.step_stability` (one module would exceed 800 lines).

Imports: numpy, pandas, matplotlib, the core (:mod:`hessinit.nn`, :mod:`hessinit.train`) and the
shared study layer (:mod:`hessinit.study.claimdata`, :mod:`hessinit.study.claims`,
:mod:`hessinit.study.experiments`, :mod:`hessinit.study.figures`, :mod:`hessinit.study.stats`,
:mod:`hessinit.study.sweep`).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..study.claimdata import FRAME_COLUMNS, ledger_row
from ..study.claims import claims_table, compare_interval, verdict
from ..study.experiments import keys_last
from ..study.figures import LAYER_COLORS, style
from ..study.sweep import sweep
from ..train import COLUMNS, run
from ..train.stacked import Run, train_runs


def schedule_runs(data, schedules: dict, sds, seeds, **kwargs) -> pd.DataFrame:
    """:func:`hessinit.train.run` for every step-size schedule, sd and seed, stacked.

    The runs with a fixed step size train as one compiled program
    (:func:`hessinit.train.stacked.train_runs` with ``train.run``'s Taylor columns; equal to
    ``run``'s to float rounding). Taylor schedules (their step size is set per mini-batch) and
    ``spectra`` (Lanczos per run) are outside what the stacked trainer does: those runs go
    through :func:`hessinit.train.run` one at a time.

    Args:
        data: a :func:`hessinit.data.load` record.
        schedules: name -> ``lr`` as ``run`` takes it (a number, or ``("taylor", fraction)`` for
            ``fraction`` times gamma* = g^T g / g^T H g of each mini-batch).
        sds: standard deviations of dense1's kernel.
        seeds: seeds of the kernels and the mini-batches.
        **kwargs: passed to every run.

    Returns:
        The runs' frames (which carry ``sd`` and ``seed``) with a ``schedule`` column last, in
        the order schedule, sd, seed.

    Example:
        >>> from hessinit.data import load
        >>> runs = schedule_runs(load("mnist-5k", n=16), {"fixed": 0.1}, [0.1], [0, 1],
        ...                      widths=(3,), steps=1, batch_size=4, hessian_batch=8,
        ...                      layers=["dense1"], progress=False)
        >>> runs[["schedule", "sd", "seed", "step"]].values.tolist()
        [['fixed', 0.1, 0, 0], ['fixed', 0.1, 0, 1], ['fixed', 0.1, 1, 0], ['fixed', 0.1, 1, 1]]
    """
    fixed = [
        name
        for name, lr in schedules.items()
        if not (lr == "taylor" or isinstance(lr, tuple)) and set(kwargs) <= _STACKED_ARGS
    ]
    runs = [Run(seed=int(seed), sd=float(sd), lr=float(schedules[name]))
            for name in fixed for sd in sds for seed in seeds]  # fmt: skip
    stacked = train_runs(data, runs, taylor=True, **kwargs) if runs else None
    keys = [(name, sd, seed) for name in fixed for sd in sds for seed in seeds]

    def train(schedule, sd, seed):
        if schedule in fixed:
            frame = stacked[stacked["run"] == keys.index((schedule, sd, seed))]
            return frame[list(COLUMNS)].reset_index(drop=True)
        return run(data, sd, lr=schedules[schedule], seed=seed, **kwargs)

    return keys_last(sweep(train, schedule=list(schedules), sd=sds, seed=seeds), ["schedule"])


#: The arguments of :func:`hessinit.train.run` the stacked trainer takes as well.
_STACKED_ARGS = {
    "widths", "activation", "steps", "batch_size", "hessian_every", "hessian_batch", "layers",
    "same_batch", "progress",
}  # fmt: skip


def model_errors(cp: pd.DataFrame) -> pd.DataFrame:
    """Per checkpoint, the relative errors of the first- and second-order models of a step.

    Along -g, the linear model predicts the decrease gamma g^T g of a step gamma and the
    quadratic one gamma g^T g - gamma^2 g^T H g / 2; against the realised decrease r, the
    absolute relative error is abs(prediction - r) / abs(r). At the run's step ``lr`` (``err_lin``,
    ``err_quad``) and at gamma* = g^T g / g^T H g (``err_lin_star``, ``err_quad_star``; there
    the linear model predicts gamma* g^T g, twice the quadratic one). ``gain`` and
    ``gain_star`` are linear minus quadratic error (positive: the second-order term helps);
    ``quad_share`` = lr g^T H g / (2 g^T g) = lr / (2 gamma*) is the size of the second-order
    term relative to the first-order one at ``lr``.

    Args:
        cp: checkpoint rows of :func:`hessinit.train.run` (via
            :func:`taylor_checkpoints`), with ``lr``, ``grad_norm``, ``gHg``, ``gamma_star``,
            ``predicted``, ``realised``, ``predicted_star`` and ``realised_star``.

    Returns:
        ``cp`` with the columns above added.

    Example:
        >>> cp = pd.DataFrame({"lr": [0.1], "grad_norm": 1.0, "gHg": 2.0, "gamma_star": 0.5,
        ...                    "predicted": 0.09, "realised": 0.09, "predicted_star": 0.25,
        ...                    "realised_star": 0.2})
        >>> out = model_errors(cp)
        >>> out[["err_lin", "err_quad", "err_lin_star", "err_quad_star", "quad_share"]].round(3)
        ... # doctest: +NORMALIZE_WHITESPACE
           err_lin  err_quad  err_lin_star  err_quad_star  quad_share
        0    0.111       0.0           1.5           0.25         0.1
    """
    out = cp.copy()
    gg = out["grad_norm"] ** 2
    real, real_star = out["realised"].abs(), out["realised_star"].abs()
    out["err_lin"] = (out["lr"] * gg - out["realised"]).abs() / real
    out["err_quad"] = (out["predicted"] - out["realised"]).abs() / real
    out["err_lin_star"] = (out["gamma_star"] * gg - out["realised_star"]).abs() / real_star
    out["err_quad_star"] = (out["predicted_star"] - out["realised_star"]).abs() / real_star
    out["gain"] = out["err_lin"] - out["err_quad"]
    out["gain_star"] = out["err_lin_star"] - out["err_quad_star"]
    out["quad_share"] = out["lr"] * out["gHg"] / (2 * gg)
    return out


def taylor_checkpoints(frame: pd.DataFrame) -> pd.DataFrame:
    """The checkpoints of :func:`hessinit.train.run` frames with the Taylor model's accuracy.

    Along the gradient g, the quadratic model predicts the decrease
    gamma g^T g - gamma^2 g^T H g / 2 of a step gamma. The ratios are realised over predicted
    decrease at the run's reference step (``ratio_lr``) and at gamma* = g^T g / g^T H g
    (``ratio_star``).

    Args:
        frame: stacked runs (one row per run, step and layer) with ``gamma_star``, ``predicted``,
            ``realised``, ``predicted_star`` and ``realised_star``.

    Returns:
        One row per run (``schedule``, ``sd``, ``seed`` where present) and checkpoint, with the
        columns ``ratio_lr`` and ``ratio_star`` added.

    Example:
        >>> frame = pd.DataFrame({"sd": 1.0, "step": [0, 1], "gamma_star": [2.0, None],
        ...                       "predicted": [0.1, None], "realised": [0.09, None],
        ...                       "predicted_star": [1.0, None], "realised_star": [0.5, None]})
        >>> taylor_checkpoints(frame)[["ratio_lr", "ratio_star"]].round(3).values.tolist()
        [[0.9, 0.5]]
    """
    keys = [c for c in ("schedule", "sd", "seed", "step") if c in frame.columns]
    cp = frame.dropna(subset=["gamma_star"]).drop_duplicates(keys).copy()
    cp["ratio_lr"] = cp["realised"] / cp["predicted"]
    cp["ratio_star"] = cp["realised_star"] / cp["predicted_star"]
    return cp.reset_index(drop=True)


def seed_means(frame: pd.DataFrame, columns, keys=("sd", "seed")) -> pd.DataFrame:
    """The mean of ``columns`` over the rows of each (sd, seed): one value per independent run.

    Args:
        frame: rows with ``keys`` and ``columns``.
        columns: the columns to average (NaN rows skipped).
        keys: the grouping columns.

    Returns:
        One row per key, the keys as columns.

    Example:
        >>> frame = pd.DataFrame({"sd": 1.0, "seed": [0, 0, 1], "gain": [1.0, 3.0, 5.0]})
        >>> seed_means(frame, ["gain"]).values.tolist()
        [[1.0, 0.0, 2.0], [1.0, 1.0, 5.0]]
    """
    return frame.groupby(list(keys))[list(columns)].mean().reset_index()


def plot_gamma(cp: pd.DataFrame, schedule: str):
    """gamma* along training, and the decrease at gamma* realised against predicted.

    Left: gamma* = g^T g / g^T H g against the step, one line per sd; right: realised against
    predicted decrease at gamma* (log-log; the diagonal is a perfect quadratic model; pairs with
    a non-positive decrease are not drawn).

    Args:
        cp: rows of :func:`hessinit.chapters.step_size.taylor_checkpoints`.
        schedule: the schedule drawn.

    Returns:
        The figure.
    """
    part = cp[cp["schedule"] == schedule]
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(7.4, 3.3), layout="constrained")
        for k, sd in enumerate(sorted(part["sd"].unique())):
            g = part[part["sd"] == sd]
            color = LAYER_COLORS[k % len(LAYER_COLORS)]
            for seed, s in g.groupby("seed"):
                axes[0].plot(s["step"], s["gamma_star"], color=color, lw=1.2,
                             label=f"sd={sd:g}" if seed == g["seed"].min() else None)  # fmt: skip
            pos = g[(g["predicted_star"] > 0) & (g["realised_star"] > 0)]
            axes[1].scatter(pos["predicted_star"], pos["realised_star"], s=10, color=color)
        lo = part[["predicted_star"]].min().min()
        hi = part[["predicted_star"]].max().max()
        if lo > 0:
            axes[1].plot([lo, hi], [lo, hi], color="black", lw=0.8)
        axes[0].set_yscale("log")
        axes[0].set_xlabel("SGD step")
        axes[0].set_ylabel("γ* = gᵀg / gᵀHg")
        axes[0].legend(frameon=False, fontsize=8)
        axes[1].set_xscale("log")
        axes[1].set_yscale("log")
        axes[1].set_xlabel("predicted decrease at γ* (nats)")
        axes[1].set_ylabel("realised decrease at γ* (nats)")
    return fig


def _sd_label(sd) -> str:
    return f"sd = {sd:g}"


def step_model_rows(
    gains: pd.DataFrame,
    *,
    setting: str,
    page: str = "step_size",
) -> pd.DataFrame:
    """Claim 3.1: at the fixed step the second-order term of the Taylor model helps.

    Along -g the linear model predicts the decrease gamma g^T g of a step gamma and the
    quadratic one gamma g^T g - gamma^2 g^T H g / 2. Per run (sd, seed) the gain is the mean
    over checkpoints of abs(relative error) of the linear model minus that of the quadratic one
    at the fixed step (``gain`` of :func:`model_errors`). The rule, per sd: the 95% t-interval
    over seeds of the mean gain lies above 0; the sds combine by :func:`verdict`. The row's
    value is the mean gain over seeds of each seed's average over the sds, with its t-interval.
    At a small step the quadratic term is a few percent of the linear one (Taylor's theorem):
    a check of the code, of kind sanity.

    Args:
        gains: one row per (sd, seed) with ``gain`` (:func:`seed_means` of the checkpoints).
        setting: the training.
        page: the chapter.

    Returns:
        The claims row (:func:`claims_table`).

    Example:
        >>> gains = pd.DataFrame({"sd": [0.01] * 3 + [1.0] * 3, "seed": [0, 1, 2] * 2,
        ...                       "gain": [0.1, 0.11, 0.12, -0.1, 0.0, 0.1]})
        >>> step_model_rows(gains, setting="tiny")[["claim", "verdict"]].values.tolist()
        [['3.1', 'holds only when sd = 0.01; inconclusive for sd = 1']]
    """
    from ..study.stats import mean_interval

    oks, where, per_sd = [], [], []
    for sd, part in gains.groupby("sd"):
        e = mean_interval(part["gain"])
        oks.append(compare_interval(e.low, e.high, ">", 0))
        where.append(_sd_label(sd))
        per_sd.append(f"{_sd_label(sd)}: {e.value:.3g} [{e.low:.3g}, {e.high:.3g}]")
    pooled = mean_interval(gains.groupby("seed")["gain"].mean())
    return claims_table([ledger_row(
        "3.1",
        setting=f"{setting}; at the fixed step; gain per sd {'; '.join(per_sd)}",
        detail="mean over sds and checkpoints",
        value=pooled.value, low=pooled.low, high=pooled.high, seeds=gains["seed"].nunique(),
        rule="the quadratic model (with g'Hg) predicts the realised decrease better than "
             "the linear one: per sd the 95% t-interval over seeds of the mean gain is above 0",
        verdict=verdict(oks, where),
        page=page,
    )])  # fmt: skip


def star_error_frame(gains: pd.DataFrame) -> pd.DataFrame:
    """Claim 3.2's per-setting frame: the quadratic model's own error at gamma*, per sd.

    At gamma* = g^T g / g^T H g the quadratic model predicts the decrease
    (g^T g)^2 / (2 g^T H g); its absolute relative error against the realised decrease is
    ``err_quad_star`` of :func:`model_errors`. Per sd: the mean over seeds of each run's mean
    error over the checkpoints, with its 95% t-interval
    (:func:`hessinit.study.stats.mean_interval`); judged with at least two seeds.
    :func:`hessinit.study.claimdata.frame_rows` compares each interval with the tolerance.

    Args:
        gains: one row per (sd, seed) with ``err_quad_star`` (:func:`seed_means`).

    Returns:
        The frame (columns :data:`hessinit.study.claimdata.FRAME_COLUMNS`), one row per sd.

    Example:
        >>> gains = pd.DataFrame({"sd": [0.01, 0.01, 1.0, 1.0], "seed": [0, 1, 0, 1],
        ...                       "err_quad_star": [4.0, 5.0, 0.04, 0.05]})
        >>> star_error_frame(gains)[["setting", "value", "seeds"]].values.tolist()
        [['sd = 0.01', 4.5, 2], ['sd = 1', 0.045, 2]]
    """
    from ..study.stats import mean_interval

    rows = []
    for sd, part in gains.groupby("sd"):
        e = mean_interval(part["err_quad_star"])
        rows.append({"setting": _sd_label(sd), "value": e.value, "low": e.low, "high": e.high,
                     "seeds": e.n, "judged": e.n >= 2})  # fmt: skip
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))


def plot_schedules(cp: pd.DataFrame):
    """Hessian-batch loss against the step, one panel per sd, one line per schedule.

    Args:
        cp: rows of :func:`hessinit.chapters.step_size.taylor_checkpoints` (mean over seeds drawn).

    Returns:
        The figure.
    """
    with style():
        sds = sorted(cp["sd"].unique())
        fig, axes = plt.subplots(1, len(sds), figsize=(2.3 * len(sds) + 0.8, 3.2), sharey=True,
                                 squeeze=False, layout="constrained")  # fmt: skip
        for ax, sd in zip(axes[0], sds, strict=True):
            for k, schedule in enumerate(dict.fromkeys(cp["schedule"])):
                g = cp[(cp["sd"] == sd) & (cp["schedule"] == schedule)]
                mean = g.groupby("step")["hessian_loss"].mean()
                ax.plot(mean.index, mean.values, lw=1.3, label=schedule,
                        color=LAYER_COLORS[k % len(LAYER_COLORS)])  # fmt: skip
            ax.set_title(f"sd = {sd:g}", fontsize=9)
            ax.set_xlabel("SGD step")
            ax.set_yscale("log")
        axes[0][0].set_ylabel("loss on the Hessian batch (nats)")
        axes[0][0].legend(frameon=False, fontsize=8)
    return fig


def against_best(final: pd.DataFrame, best: pd.DataFrame, challengers) -> pd.DataFrame:
    """Per seed, a challenger's final loss minus that of the initialization's best fixed step.

    Args:
        final: rows of :func:`final_eval`.
        best: rows of :func:`best_fixed`.
        challengers: the schedules compared with the best fixed one.

    Returns:
        One row per (init, challenger, seed): ``challenger``, ``best``, ``diff`` (NaN where
        either run diverged), ``challenger_diverged``, ``best_diverged``.

    Example:
        >>> final = pd.DataFrame({"init": 1.0, "seed": [0, 0], "schedule": ["a", "t"],
        ...                       "final_loss": [0.5, 0.4], "diverged": False})
        >>> best = pd.DataFrame({"init": [1.0], "best": ["a"]})
        >>> against_best(final, best, ["t"])[["challenger", "diff"]].round(3).values.tolist()
        [['t', -0.1]]
    """
    wide = final.pivot_table(index=["init", "seed"], columns="schedule", values="final_loss",
                             dropna=False)  # fmt: skip
    rows = []
    for (init, seed), losses in wide.iterrows():
        ref = best.set_index("init").loc[init, "best"]
        for name in challengers:
            rows.append({"init": init, "challenger": name, "seed": seed, "best": ref,
                         "diff": losses[name] - losses[ref],
                         "challenger_diverged": not np.isfinite(losses[name]),
                         "best_diverged": not np.isfinite(losses[ref])})  # fmt: skip
    return pd.DataFrame(rows)


def step_training_rows(
    diffs: pd.DataFrame,
    best: pd.DataFrame,
    *,
    taylor: Sequence[str],
    setting: str,
    page: str = "step_size",
) -> pd.DataFrame:
    """Claims 3.3, 3.4, ...: a Taylor step ends lower than the best tuned fixed step.

    For each Taylor schedule (in order, claims 3.3, 3.4, ...) and each sd: the paired
    differences over seeds of final loss, Taylor minus the sd's best fixed step
    (:func:`hessinit.study.analysis.best_fixed`, chosen on the same seeds: optimistic for the
    baseline). The rule per sd: the 95% t-interval of the mean difference lies below 0
    (:func:`interval_verdict`); a Taylor run that diverged on any seed loses the sd outright.
    The sds combine by :func:`verdict`. The row's value is the mean over seeds of each seed's
    difference averaged over the sds (finite runs), with its t-interval.

    Args:
        diffs: rows of :func:`hessinit.chapters.step_size.against_best` with an ``init`` column
            holding the sd.
        best: rows of :func:`hessinit.study.analysis.best_fixed` (``init``, ``lr``).
        taylor: the Taylor schedules, in claim order.
        setting: the training.
        page: the chapter.

    Returns:
        One claims row per Taylor schedule (:func:`claims_table`).

    Example:
        >>> diffs = pd.DataFrame({"init": [0.01] * 3 + [1.0] * 3, "challenger": "t",
        ...                       "seed": [0, 1, 2] * 2,
        ...                       "diff": [-0.2, -0.21, -0.19, 0.1, 0.3, 0.2],
        ...                       "challenger_diverged": False})
        >>> best = pd.DataFrame({"init": [0.01, 1.0], "lr": [0.3, 0.1]})
        >>> rows = step_training_rows(diffs, best, taylor=["t"], setting="tiny")
        >>> rows[["claim", "verdict"]].values.tolist()
        [['3.3', 'holds only when sd = 0.01; inconclusive for sd = 1']]
    """
    from ..study.stats import mean_interval

    lrs = ", ".join(f"{_sd_label(i)}: {lr:g}" for i, lr in zip(best["init"], best["lr"],
                                                              strict=True))  # fmt: skip
    rows = []
    for i, name in enumerate(taylor):
        mine = diffs[diffs["challenger"] == name]
        oks, where, per_sd = [], [], []
        for sd, part in mine.groupby("init"):
            if part["challenger_diverged"].any():
                oks.append(False)
                per_sd.append(f"{_sd_label(sd)}: diverged")
            else:
                e = mean_interval(part["diff"])
                oks.append(compare_interval(e.low, e.high, "<", 0))
                per_sd.append(f"{_sd_label(sd)}: {e.value:.3g} [{e.low:.3g}, {e.high:.3g}]")
            where.append(_sd_label(sd))
        finite = mine[np.isfinite(mine["diff"])]
        pooled = mean_interval(finite.groupby("seed")["diff"].mean())
        diverged = int(mine["challenger_diverged"].sum())
        rows.append(ledger_row(
            f"3.{3 + i}",
            setting=f"{setting}; {name} against the best fixed lr per sd ({lrs}); "
                    f"{diverged} diverged {name} runs; difference per sd {'; '.join(per_sd)}",
            detail="mean over sds",
            value=pooled.value,
            low=pooled.low,
            high=pooled.high,
            seeds=mine["seed"].nunique(),
            rule="per sd, the 95% t-interval of the paired final-loss difference over seeds "
                 "is below 0 (a diverged Taylor run loses)",
            verdict=verdict(oks, where),
            page=page,
        ))  # fmt: skip
    return claims_table(rows)
