"""The step size chapter, its stability section: the bound 2 / lambda_max, claims 3.5 and 3.6.

On a quadratic with Hessian H, gradient descent with a fixed step lr converges iff
lr < 2 / lambda_max(H). In the order the page reads: lambda_max of each layer's Hessian and of
the network's at initialization (:func:`init_spectra`, :func:`stability_bounds`), along training
(:func:`plot_sharpness`), every fixed step of the grid against the bound
(:func:`stability_outcomes`, :func:`plot_stability`), the rows of claims 3.5 and 3.6
(:func:`step_stability_rows`) and the words the page states (:func:`bound_place`,
:func:`stability_words`). The rest of the chapter is :mod:`hessinit.chapters.step_size` (one
module would exceed 800 lines).

Imports: numpy, pandas, matplotlib, the core (:mod:`hessinit.nn`, :mod:`hessinit.curvature`)
and the shared study layer (:mod:`hessinit.study.claimdata`, :mod:`hessinit.study.claims`,
:mod:`hessinit.study.figures`, :mod:`hessinit.study.stats`, :mod:`hessinit.study.sweep`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..nn import dense_layers, mlp
from ..study.claimdata import ledger_row
from ..study.claims import NOT_TESTED, claims_table, verdict
from ..study.figures import LAYER_COLORS, layer_color, style
from ..study.sweep import sweep


def _sd_label(sd) -> str:
    return f"sd = {sd:g}"


def init_spectra(data, sds, seeds, *, hessian_batch=512, widths=(30, 30)) -> pd.DataFrame:
    """lambda_max of each dense layer's Hessian and of the whole network's at initialization.

    For each sd and seed: the network ``mlp(sd=sd, seed=seed)`` and the batch of
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
    model = mlp(shape, data.num_classes, widths, sd=1.0, seed=0)
    names = [d.name for d in dense_layers(model)]

    def point(sd, seed):
        rng = np.random.default_rng(seed)
        idx = rng.choice(n, size=min(hessian_batch, n), replace=False)
        x, y = x_all[idx], y_all[idx]
        model.set_weights(mlp(shape, data.num_classes, widths, sd=sd,
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


def stability_outcomes(grid: pd.DataFrame, spectra: pd.DataFrame, fixed,
                       factor: float = 2.0) -> pd.DataFrame:  # fmt: skip
    """Each fixed-step run of the grid against the stability bound 2 / lambda_max at its start.

    A run *fails* (``unstable``) when it diverged (a non-finite loss) or its final loss is more
    than ``factor`` times the best final loss of the grid's fixed steps from the same sd and
    seed (the same weights and mini-batches: paired runs); "final loss below the initial one"
    would count a step that ends 10x above the best as training. The bound *predicts* failure
    when lr > 2 / lambda_max of the whole network's Hessian at initialization, measured on the
    run's own evaluation batch and initial weights (the same draws as
    :func:`hessinit.study.experiments.sgd_grid`).

    Args:
        grid: rows of :func:`hessinit.study.experiments.sgd_grid` (``init`` holds the sd).
        spectra: the step-0 rows of :func:`hessinit.train.run` with ``spectra=True`` per sd and
            seed (``sd``, ``seed``, ``lambda_max_network``).
        fixed: the names of the fixed-step schedules.
        factor: a final loss above ``factor`` times the best of the grid fails.

    Returns:
        One row per (sd, seed, schedule): ``sd, seed, schedule, lr, lambda_max, bound,
        lr_over_bound, initial_loss, final_loss, best_loss, diverged, unstable, predicted,
        agree``.

    Example:
        >>> grid = pd.DataFrame({"init": 1.0, "seed": 0, "schedule": list("aabbcc"),
        ...                      "lr": [0.1, 0.1, 0.3, 0.3, 1.0, 1.0], "step": [0, 9] * 3,
        ...                      "eval_loss": [2.3, 0.2, 2.3, 1.0, 2.3, float("nan")]})
        >>> spectra = pd.DataFrame({"sd": [1.0], "seed": [0], "lambda_max_network": [4.0]})
        >>> out = stability_outcomes(grid, spectra, ["a", "b", "c"])
        >>> out[["lr", "bound", "unstable", "predicted", "agree"]].values.tolist()
        [[0.1, 0.5, False, False, True], [0.3, 0.5, True, False, False], [1.0, 0.5, True, True, True]]
    """  # noqa: E501
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
    out["best_loss"] = out.groupby(["sd", "seed"])["final_loss"].transform("min")
    out["diverged"] = ~np.isfinite(out["final_loss"])
    out["unstable"] = out["diverged"] | ~(out["final_loss"] <= factor * out["best_loss"])
    out["predicted"] = out["lr"] > out["bound"]
    out["agree"] = out["unstable"] == out["predicted"]
    columns = ["sd", "seed", "schedule", "lr", "lambda_max", "bound", "lr_over_bound",
               "initial_loss", "final_loss", "best_loss", "diverged", "unstable", "predicted",
               "agree"]  # fmt: skip
    return out[columns].sort_values(["sd", "seed", "lr"]).reset_index(drop=True)


def plot_stability(outcomes: pd.DataFrame):
    """Final loss of every fixed step against lr / (2 / lambda_max), one panel per sd.

    Each point is one run (step and seed) at x = lr lambda_max / 2, its step as a fraction of
    the stability bound at initialization; the vertical line at 1 is the bound. Runs that
    diverged are drawn as crosses at the top of the panel, the other failed runs (final loss
    far above the grid's best, :func:`stability_outcomes`) as open circles.

    Args:
        outcomes: rows of :func:`hessinit.chapters.step_stability.stability_outcomes`.

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
    factor: float = 2.0,
    page: str = "step_size",
) -> pd.DataFrame:
    """The stability bound 2 / lambda_max at initialization as a rule for fixed steps.

    On a quadratic with Hessian H, gradient descent with step lr converges iff
    lr < 2 / lambda_max(H). Read for the network with lambda_max of the whole network's Hessian
    at initialization (:func:`hessinit.chapters.step_stability.stability_outcomes`), in two claims:
    claim 3.n with n = ``first``, a step below the bound trains (final loss finite and within
    ``factor`` times the best of the grid from the same sd and seed: ``unstable`` of
    :func:`stability_outcomes` false); claim 3.(n + 1), a step above it fails (diverges, or ends
    above that). The rule of each, per sd:
    every run of the grid on that side of the bound (every step and seed) does as claimed; an
    sd without such runs is left out, and a claim without any is not tested. The sds combine by
    :func:`verdict`. A row's value is the mean over seeds of each seed's fraction of its runs
    on that side that did as claimed, with its t-interval.

    Args:
        outcomes: rows of :func:`hessinit.chapters.step_stability.stability_outcomes`.
        setting: the training.
        first: n, the first claim being 3.n.
        factor: the factor of :func:`stability_outcomes` the outcomes were judged with.
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
            f"Hessian at initialization {does} (fails: diverges, or ends with a loss more than "
            f"{factor:g}x the best final loss of the grid's fixed steps, same sd and seed)",
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
        track: :func:`hessinit.chapters.step_size.schedule_runs` with spectra (``sd``,
            ``step``, ``lambda_max``, ``lambda_max_network``).
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
