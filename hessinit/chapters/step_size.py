"""The step size chapter: does the Hessian drive the optimization's step size?

In the order the page reads: the quadratic model's step gamma* along training
(:func:`schedule_runs`, :func:`model_errors`, :func:`taylor_checkpoints`, :func:`seed_means`,
:func:`plot_gamma`; claim 3.1 :func:`step_model_rows`), schedules against the best fixed step
(:func:`plot_schedules`, :func:`against_best`, claim 3.2 :func:`step_training_rows`; the SGD
grid is :func:`hessinit.study.experiments.sgd_grid`), and the stability bound 2 / lambda_max at
initialization (:func:`init_spectra`, :func:`stability_bounds`, :func:`plot_sharpness`,
:func:`stability_outcomes`, :func:`plot_stability`, claim 3.3 :func:`step_stability_rows`).

Imports: numpy, pandas, matplotlib, the core (:mod:`hessinit.nn`, :mod:`hessinit.curvature`,
:mod:`hessinit.train`) and the shared study layer (:mod:`hessinit.study.claims`,
:mod:`hessinit.study.experiments`, :mod:`hessinit.study.figures`, :mod:`hessinit.study.stats`,
:mod:`hessinit.study.sweep`).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..nn import dense_layers, mlp
from ..study.claimdata import ledger_row
from ..study.claims import NOT_TESTED, claims_table, compare_interval, verdict
from ..study.experiments import keys_last
from ..study.figures import LAYER_COLORS, layer_color, style
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
    """Claims 3.1 and 3.2: the second-order term of the Taylor model earns its keep.

    Along -g the linear model predicts the decrease gamma g^T g of a step gamma and the
    quadratic one gamma g^T g - gamma^2 g^T H g / 2. Per run (sd, seed) the gain is the mean
    over checkpoints of abs(relative error) of the linear model minus that of the quadratic one
    (:func:`hessinit.chapters.step_size.model_errors`): claim 3.1 at the fixed step (``gain``),
    claim 3.2 at gamma* = g^T g / g^T H g (``gain_star``). The rule, per sd: the 95%
    t-interval over seeds of the mean gain lies above 0 (:func:`interval_verdict`); the sds
    combine by :func:`verdict`. The row's value is the mean gain over seeds of each seed's
    average over the sds, with its t-interval.

    Args:
        gains: one row per (sd, seed) with ``gain`` and ``gain_star``
            (:func:`hessinit.chapters.step_size.seed_means` of the checkpoints).
        setting: the training.
        page: the chapter.

    Returns:
        The two claims rows (:func:`claims_table`).

    Example:
        >>> gains = pd.DataFrame({"sd": [0.01] * 3 + [1.0] * 3, "seed": [0, 1, 2] * 2,
        ...                       "gain": [0.1, 0.11, 0.12, -0.1, 0.0, 0.1],
        ...                       "gain_star": [-0.5, -0.6, -0.55] * 2})
        >>> rows = step_model_rows(gains, setting="tiny")
        >>> rows[["claim", "verdict"]].values.tolist()
        [['3.1', 'holds only when sd = 0.01; inconclusive for sd = 1'], ['3.2', 'does not hold']]
    """
    from ..study.stats import mean_interval

    rows = []
    for claim, column, step in (("3.1", "gain", "at the fixed step"),
                                ("3.2", "gain_star", "at gamma*")):  # fmt: skip
        oks, where, per_sd = [], [], []
        for sd, part in gains.groupby("sd"):
            e = mean_interval(part[column])
            oks.append(compare_interval(e.low, e.high, ">", 0))
            where.append(_sd_label(sd))
            per_sd.append(f"{_sd_label(sd)}: {e.value:.3g} [{e.low:.3g}, {e.high:.3g}]")
        pooled = mean_interval(gains.groupby("seed")[column].mean())
        rows.append(ledger_row(
            claim,
            setting=f"{setting}; {step}; gain per sd {'; '.join(per_sd)}",
            detail="mean over sds and checkpoints",
            value=pooled.value,
            low=pooled.low,
            high=pooled.high,
            seeds=gains["seed"].nunique(),
            rule="the quadratic model (with g'Hg) predicts the realised decrease better than "
                 "the linear one: per sd the 95% t-interval over seeds of the mean gain is "
                 "above 0",
            verdict=verdict(oks, where),
            page=page,
        ))  # fmt: skip
    return claims_table(rows)


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


def init_spectra(data, sds, seeds, *, hessian_batch=512, widths=(30, 30)) -> pd.DataFrame:
    """lambda_max of each dense layer's Hessian and of the whole network's at initialization.

    For each sd and seed: the network ``mlp(kernel_std=sd, seed=seed)`` and the batch of
    ``hessian_batch`` images that ``np.random.default_rng(seed)`` draws first without
    replacement, the same weights and batch as :func:`hessinit.train.run` and
    :func:`sgd_grid` start from; the largest eigenvalue of each layer's kernel Hessian
    (:func:`hessinit.curvature.layer_spectrum`) and of the network's
    (:func:`hessinit.curvature.network_spectrum`), by Lanczos with the residual check. One
    network object takes each setting's weights in turn, so the compiled products are traced
    once, not once per setting.

    Args:
        data: the training record (``x``, ``y``, ``num_classes``).
        sds: standard deviations of dense1's kernel (the other layers: Keras defaults).
        seeds: seeds of the weights and of the batch.
        hessian_batch: the number of images.
        widths: hidden widths.

    Returns:
        One row per (sd, seed, layer): ``lambda_max`` (the layer's), ``lambda_max_network``
        and ``lambda_converged`` (both Lanczos runs passed their check; a value that did not
        is NaN), the columns :func:`hessinit.train.run` adds with ``spectra=True``.

    Example:
        >>> from hessinit.data import load
        >>> frame = init_spectra(load("mnist-5k", n=64), [0.1], [0], hessian_batch=16,
        ...                      widths=(3,))
        >>> frame[["sd", "seed", "layer"]].values.tolist()
        [[0.1, 0, 'dense1'], [0.1, 0, 'dense2']]
        >>> bool((frame.lambda_max <= frame.lambda_max_network * (1 + 1e-6)).all())
        True
    """
    from ..curvature import layer_spectrum, network_spectrum

    x_all, y_all = np.asarray(data.x, np.float32), np.asarray(data.y, np.int32)
    n, shape = len(y_all), x_all.shape[1:]
    model = mlp(shape, data.num_classes, widths, kernel_std=1.0, seed=0)
    names = [d.name for d in dense_layers(model)]

    def point(sd, seed):
        rng = np.random.default_rng(seed)
        idx = rng.choice(n, size=min(hessian_batch, n), replace=False)
        x, y = x_all[idx], y_all[idx]
        model.set_weights(mlp(shape, data.num_classes, widths, kernel_std=sd,
                              seed=seed).get_weights())  # fmt: skip
        net = network_spectrum(model, x, y, strict=False)
        rows = []
        for name in names:
            s = layer_spectrum(model, name, x, y, strict=False)
            rows.append({
                "layer": name,
                "lambda_max": s.lambda_max if s.converged else np.nan,
                "lambda_max_network": net.lambda_max if net.converged else np.nan,
                "lambda_converged": s.converged and net.converged,
            })  # fmt: skip
        return rows

    return sweep(point, sd=list(sds), seed=list(seeds))


def stability_bounds(spectra: pd.DataFrame, lr: float) -> pd.DataFrame:
    """Per sd, each layer's and the network's lambda_max, the bound 2 / lambda_max and lr's share.

    Gradient descent with step lr on a quadratic with Hessian H converges iff
    lr < 2 / lambda_max(H); ``lr_over_bound`` = lr lambda_max / 2 is the step as a fraction of
    that bound (above 1: unstable on the quadratic model).

    Args:
        spectra: checkpoint rows of :func:`hessinit.train.run` with ``spectra=True``
            (``sd``, ``seed``, ``layer``, ``lambda_max``, ``lambda_max_network``).
        lr: the step compared with the bound.

    Returns:
        One row per (sd, part), ``part`` a layer name or ``"network"``: the mean, min and max
        over seeds of lambda_max (``lambda_max``, ``lambda_low``, ``lambda_high``), ``bound``
        = 2 / mean lambda_max and ``lr_over_bound``.

    Example:
        >>> spectra = pd.DataFrame({"sd": 1.0, "seed": [0, 0, 1, 1], "layer": ["d1", "d2"] * 2,
        ...                         "lambda_max": [1.0, 4.0, 3.0, 4.0],
        ...                         "lambda_max_network": [5.0, 5.0, 7.0, 7.0]})
        >>> stability_bounds(spectra, lr=0.1)[["part", "lambda_max", "bound"]].values.tolist()
        [['d1', 2.0, 1.0], ['d2', 4.0, 0.5], ['network', 6.0, 0.3333333333333333]]
    """
    layers = spectra[["sd", "seed", "layer", "lambda_max"]].rename(columns={"layer": "part"})
    network = spectra.drop_duplicates(["sd", "seed"])[["sd", "seed", "lambda_max_network"]]
    network = network.rename(columns={"lambda_max_network": "lambda_max"}).assign(part="network")
    both = pd.concat([layers, network], ignore_index=True)
    out = both.groupby(["sd", "part"], sort=False)["lambda_max"].agg(
        lambda_max="mean", lambda_low="min", lambda_high="max"
    )
    out = out.reset_index().sort_values(["sd"], kind="stable").reset_index(drop=True)
    out["bound"] = 2.0 / out["lambda_max"]
    out["lr_over_bound"] = lr / out["bound"]
    return out


def plot_sharpness(track: pd.DataFrame, lr: float):
    """lambda_max of each layer's Hessian and of the network's along training, one panel per sd.

    The horizontal line is the stability bound 2 / lr of the step trained with: a curve below
    it is a direction the step is stable along on the quadratic model.

    Args:
        track: rows of :func:`hessinit.train.run` with ``spectra=True`` (``sd``, ``seed``,
            ``step``, ``layer``, ``lambda_max``, ``lambda_max_network``; NaN rows off the
            checkpoints are skipped); several seeds are drawn as their mean.
        lr: the step trained with.

    Returns:
        The figure.
    """
    cp = track.dropna(subset=["lambda_max"])
    layers = list(dict.fromkeys(cp["layer"]))
    with style():
        sds = sorted(cp["sd"].unique())
        fig, axes = plt.subplots(1, len(sds), figsize=(2.3 * len(sds) + 0.8, 3.2), sharey=True,
                                 squeeze=False, layout="constrained")  # fmt: skip
        for ax, sd in zip(axes[0], sds, strict=True):
            g = cp[cp["sd"] == sd]
            for name in layers:
                mean = g[g["layer"] == name].groupby("step")["lambda_max"].mean()
                ax.plot(mean.index, mean.values, lw=1.3, label=name,
                        color=layer_color(layers, name))  # fmt: skip
            net = g.drop_duplicates(["seed", "step"]).groupby("step")["lambda_max_network"].mean()
            ax.plot(net.index, net.values, lw=1.6, color="black", label="network")
            ax.axhline(2.0 / lr, color="black", lw=0.9, ls="--", label="2 / lr")
            ax.set_yscale("log")
            ax.set_title(f"sd = {sd:g}", fontsize=9)
            ax.set_xlabel("SGD step")
        axes[0][0].set_ylabel("λ_max of the Hessian")
        axes[0][0].legend(frameon=False, fontsize=8)
    return fig


def stability_outcomes(grid: pd.DataFrame, spectra: pd.DataFrame, fixed) -> pd.DataFrame:
    """Each fixed-step run of the grid against the stability bound 2 / lambda_max at its start.

    A run is *unstable* when it diverged or its final loss is not below its initial loss; the
    bound *predicts* it unstable when lr > 2 / lambda_max of the whole network's Hessian at
    initialization, measured on the run's own evaluation batch and initial weights (the same
    draws as :func:`hessinit.study.experiments.sgd_grid`).

    Args:
        grid: rows of :func:`hessinit.study.experiments.sgd_grid` (``init`` holds the sd).
        spectra: the step-0 rows of :func:`hessinit.train.run` with ``spectra=True`` per sd and
            seed (``sd``, ``seed``, ``lambda_max_network``).
        fixed: the names of the fixed-step schedules.

    Returns:
        One row per (sd, seed, schedule): ``sd, seed, schedule, lr, lambda_max, bound,
        lr_over_bound, initial_loss, final_loss, diverged, unstable, predicted, agree``.

    Example:
        >>> grid = pd.DataFrame({"init": 1.0, "seed": 0, "schedule": ["a", "a", "b", "b"],
        ...                      "lr": [0.1, 0.1, 1.0, 1.0], "step": [0, 9, 0, 9],
        ...                      "eval_loss": [2.3, 1.0, 2.3, float("nan")]})
        >>> spectra = pd.DataFrame({"sd": [1.0], "seed": [0], "lambda_max_network": [4.0]})
        >>> out = stability_outcomes(grid, spectra, ["a", "b"])
        >>> out[["lr", "bound", "unstable", "predicted", "agree"]].values.tolist()
        [[0.1, 0.5, False, False, True], [1.0, 0.5, True, True, True]]
    """
    runs = grid[grid["schedule"].isin(list(fixed))].sort_values("step", kind="stable")
    keys = ["init", "seed", "schedule"]
    first = runs.groupby(keys, sort=False).head(1).set_index(keys)["eval_loss"]
    last = runs.groupby(keys, sort=False).tail(1).set_index(keys)
    out = last[["lr"]].assign(initial_loss=first, final_loss=last["eval_loss"]).reset_index()
    out = out.rename(columns={"init": "sd"})
    lams = spectra.drop_duplicates(["sd", "seed"])[["sd", "seed", "lambda_max_network"]]
    out = out.merge(lams.rename(columns={"lambda_max_network": "lambda_max"}), on=["sd", "seed"])
    out["bound"] = 2.0 / out["lambda_max"]
    out["lr_over_bound"] = out["lr"] / out["bound"]
    out["diverged"] = ~np.isfinite(out["final_loss"])
    out["unstable"] = out["diverged"] | ~(out["final_loss"] < out["initial_loss"])
    out["predicted"] = out["lr"] > out["bound"]
    out["agree"] = out["unstable"] == out["predicted"]
    columns = ["sd", "seed", "schedule", "lr", "lambda_max", "bound", "lr_over_bound",
               "initial_loss", "final_loss", "diverged", "unstable", "predicted",
               "agree"]  # fmt: skip
    return out[columns].sort_values(["sd", "seed", "lr"]).reset_index(drop=True)


def plot_stability(outcomes: pd.DataFrame):
    """Final loss of every fixed step against lr / (2 / lambda_max), one panel per sd.

    Each point is one run (step and seed) at x = lr lambda_max / 2, its step as a fraction of
    the stability bound at initialization; the vertical line at 1 is the bound. Runs that
    diverged are drawn as crosses at the top of the panel, runs whose loss did not fall as open
    circles.

    Args:
        outcomes: rows of :func:`hessinit.chapters.step_size.stability_outcomes`.

    Returns:
        The figure.
    """
    with style():
        sds = sorted(outcomes["sd"].unique())
        fig, axes = plt.subplots(1, len(sds), figsize=(2.3 * len(sds) + 0.8, 3.2), sharey=True,
                                 squeeze=False, layout="constrained")  # fmt: skip
        finite = outcomes.loc[~outcomes["diverged"], "final_loss"]
        top = float(finite.max()) * 1.5 if len(finite) else 10.0
        for ax, sd in zip(axes[0], sds, strict=True):
            g = outcomes[outcomes["sd"] == sd]
            for k, (lr, part) in enumerate(g.groupby("lr")):
                color = LAYER_COLORS[k % len(LAYER_COLORS)]
                ok = part[~part["unstable"]]
                flat = part[part["unstable"] & ~part["diverged"]]
                gone = part[part["diverged"]]
                ax.scatter(ok["lr_over_bound"], ok["final_loss"], s=14, color=color,
                           label=f"lr={lr:g}")  # fmt: skip
                ax.scatter(flat["lr_over_bound"], flat["final_loss"], s=18, facecolors="none",
                           edgecolors=color)  # fmt: skip
                ax.scatter(gone["lr_over_bound"], np.full(len(gone), top), marker="x", s=22,
                           color=color)  # fmt: skip
            ax.axvline(1.0, color="black", lw=0.9, ls="--")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"sd = {sd:g}", fontsize=9)
            ax.set_xlabel("lr · λ_max / 2 at init")
        axes[0][0].set_ylabel("final loss (nats; × diverged)")
        axes[0][-1].legend(frameon=False, fontsize=8, loc="lower right")
    return fig


def step_stability_rows(
    outcomes: pd.DataFrame,
    *,
    setting: str,
    first: int = 5,
    page: str = "step_size",
) -> pd.DataFrame:
    """The stability bound 2 / lambda_max at initialization as a rule for fixed steps.

    On a quadratic with Hessian H, gradient descent with step lr converges iff
    lr < 2 / lambda_max(H). Read for the network with lambda_max of the whole network's Hessian
    at initialization (:func:`hessinit.chapters.step_size.stability_outcomes`), in two claims:
    claim 3.n with n = ``first``, a step below the bound trains (final loss below the initial
    one, no divergence); claim 3.(n + 1), a step above it fails. The rule of each, per sd:
    every run of the grid on that side of the bound (every step and seed) does as claimed; an
    sd without such runs is left out, and a claim without any is not tested. The sds combine by
    :func:`verdict`. A row's value is the mean over seeds of each seed's fraction of its runs
    on that side that did as claimed, with its t-interval.

    Args:
        outcomes: rows of :func:`hessinit.chapters.step_size.stability_outcomes`.
        setting: the training.
        first: n, the first claim being 3.n.
        page: the chapter.

    Returns:
        The two claims rows (:func:`claims_table`).

    Example:
        >>> outcomes = pd.DataFrame({"sd": [0.01] * 4 + [1.0] * 4, "seed": [0, 0, 1, 1] * 2,
        ...                          "lr": [0.1, 1.0] * 4,
        ...                          "predicted": [False, True] * 4,
        ...                          "unstable": [False, True] * 2 + [False, False] * 2})
        >>> rows = step_stability_rows(outcomes, setting="tiny")
        >>> rows[["claim", "verdict"]].values.tolist()
        [['3.5', 'holds'], ['3.6', 'holds only when sd = 0.01']]
    """
    from ..study.stats import mean_interval

    rows = []
    sides = ((False, "below", "trains", "trained"), (True, "above", "fails", "failed"))
    for i, (above, side, does, did) in enumerate(sides):
        mine = outcomes[outcomes["predicted"] == above]
        claimed = mine["unstable"] == above  # did as the claim says
        oks, where = [], []
        for sd, part in claimed.groupby(mine["sd"]):
            oks.append(bool(part.all()))
            where.append(_sd_label(sd))
        base = dict(
            seeds=outcomes["seed"].nunique(),
            rule=f"per sd, every fixed step of the grid {side} 2 / lambda_max of the network's "
            f"Hessian at initialization {does} (fails: diverges or ends with a loss not below "
            "the initial one)",
            page=page,
        )
        if mine.empty:
            rows.append(ledger_row(
                f"3.{first + i}", **base,
                setting=f"{setting}; {len(outcomes)} fixed-step runs",
                value=0,
                verdict=f"{NOT_TESTED}: no fixed step of the grid is {side} the bound",
            ))  # fmt: skip
            continue
        pooled = mean_interval(claimed.groupby(mine["seed"]).mean())
        rows.append(ledger_row(
            f"3.{first + i}", **base,
            setting=f"{setting}; {int(claimed.sum())} of the {len(mine)} fixed-step runs with "
                    f"lr {side} 2/lambda_max(init) {did}",
            detail=f"the fraction that {did}",
            value=pooled.value,
            low=pooled.low,
            high=pooled.high,
            verdict=verdict(oks, where),
        ))  # fmt: skip
    return claims_table(rows)


# --------------------------------------------------------------------------------------------
# The words the page's prose reads from the measurements
# --------------------------------------------------------------------------------------------


def bound_place(share: float) -> str:
    """Where a step lies against the stability bound 2 / lambda_max, as the text words it.

    Args:
        share: lr * lambda_max / 2, the step as a fraction of the bound.

    Returns:
        "far inside" (share < 0.1), "inside" (share < 1) or "beyond".

    Example:
        >>> bound_place(0.05), bound_place(0.5), bound_place(1.0), bound_place(3.0)
        ('far inside', 'inside', 'beyond', 'beyond')
    """
    place = "inside" if share < 1 else "beyond"
    return f"{'far ' if share < 0.1 else ''}{place}"


def stability_words(
    bounds: pd.DataFrame, track: pd.DataFrame, outcomes: pd.DataFrame, lr: float
) -> dict:
    """What the stability section says: the bound's range, sharpening, and the grid's outcomes.

    ``share_lr_max``, ``bound_min``, ``bound_max`` from the network rows of ``bounds``;
    ``sharp_growth``: the largest, over sds, of lambda_max at the last checkpoint over the first;
    ``end_share``: the largest lr * lambda_max / 2 over the checkpoints and ``lr_place`` its
    :func:`bound_place`; ``n_fixed_runs``, ``n_too_safe`` (failure predicted, trained) and
    ``n_missed`` (failure not predicted, failed) from ``outcomes``.

    Args:
        bounds: :func:`stability_bounds` (``part``, ``lr_over_bound``, ``bound``).
        track: :func:`schedule_runs` with spectra (``sd``, ``step``, ``lambda_max``,
            ``lambda_max_network``).
        outcomes: :func:`stability_outcomes` (``predicted``, ``unstable``).
        lr: The tracked fixed step.

    Returns:
        Glue name -> value.

    Example:
        >>> bounds = pd.DataFrame({"part": ["network", "dense1"], "lr_over_bound": [0.2, 0.1],
        ...                        "bound": [0.4, 2.0]})
        >>> track = pd.DataFrame({"sd": [1, 1, 1], "step": [0, 0, 5], "lambda_max": [1.0] * 3,
        ...                       "lambda_max_network": [2.0, 2.0, 8.0]})
        >>> outcomes = pd.DataFrame({"predicted": [True, False, True],
        ...                          "unstable": [False, True, True]})
        >>> words = stability_words(bounds, track, outcomes, lr=0.1)
        >>> float(words["sharp_growth"]), float(words["end_share"]), words["lr_place"]
        (4.0, 0.4, 'inside')
        >>> words["n_fixed_runs"], words["n_too_safe"], words["n_missed"]
        (3, 1, 1)
    """
    net = bounds[bounds["part"] == "network"]
    tracked = track.dropna(subset=["lambda_max"]).drop_duplicates(["sd", "step"])
    growth = tracked.groupby("sd")["lambda_max_network"].agg(lambda s: s.iloc[-1] / s.iloc[0])
    share = (tracked["lambda_max_network"] * lr / 2).max()
    return {
        "share_lr_max": net["lr_over_bound"].max(),
        "bound_min": net["bound"].min(),
        "bound_max": net["bound"].max(),
        "sharp_growth": growth.max(),
        "n_fixed_runs": len(outcomes),
        "n_too_safe": int((outcomes["predicted"] & ~outcomes["unstable"]).sum()),
        "n_missed": int((~outcomes["predicted"] & outcomes["unstable"]).sum()),
        "end_share": share,
        "lr_place": bound_place(share),
    }
