"""Computations and figures of the book's claim-testing chapters (dominance, initialization
schemes, step size), so that those notebooks only call functions. Verdicts live in
:mod:`hessinit.claims`.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .plots import LAYER_COLORS, style

# --------------------------------------------------------------------------------------------
# Dominance of the linearization term
# --------------------------------------------------------------------------------------------


def worst_layer(frame: pd.DataFrame, keys, column: str = "R_over_H") -> pd.DataFrame:
    """The largest ``column`` over the layers of each ``keys`` group, with the layer it occurs in
    (columns ``*keys, column, layer``). Rows with a missing ``column`` are ignored."""
    keys = list(keys)
    part = frame.dropna(subset=[column])
    idx = part.groupby(keys, sort=False)[column].idxmax()
    return part.loc[idx, [*keys, column, "layer"]].reset_index(drop=True)


def plot_ratio_grid(frame: pd.DataFrame, column: str = "R_over_H", ylabel: str = "‖R‖_F / ‖H‖_F"):
    """``column`` against sd, one panel per (scaling, activation), one line per layer."""
    with style():
        acts = list(dict.fromkeys(frame["activation"]))
        scalings = list(dict.fromkeys(frame["scaling"]))
        layers = list(dict.fromkeys(frame["layer"]))
        fig, axes = plt.subplots(
            len(scalings), len(acts), figsize=(2.0 * len(acts) + 0.8, 2.3 * len(scalings) + 0.8),
            sharex=True, sharey=True, squeeze=False, layout="constrained",
        )  # fmt: skip
        for i, scaling in enumerate(scalings):
            for j, act in enumerate(acts):
                ax = axes[i][j]
                part = frame[(frame["activation"] == act) & (frame["scaling"] == scaling)]
                for k, layer in enumerate(layers):
                    pts = part[part["layer"] == layer].sort_values("sd")
                    ax.plot(pts["sd"], pts[column], marker="o", ms=3, lw=1.2,
                            color=LAYER_COLORS[k % len(LAYER_COLORS)], label=layer)  # fmt: skip
                ax.axhline(0.1, color="grey", ls=":", lw=1)
                ax.set_xscale("log")
                ax.set_title(f"{act}, {scaling} scaled", fontsize=9)
                if i == len(scalings) - 1:
                    ax.set_xlabel("initial std sd")
                if j == 0:
                    ax.set_ylabel(ylabel)
        axes[0][0].legend(frameon=False, fontsize=8)
    return fig


def plot_ratio_training(frame: pd.DataFrame, column: str = "R_over_H"):
    """Per activation: ``column`` of each layer (left axis) and the Hessian-batch loss (right)
    against the SGD step, at the checkpoints of :func:`hessinit.dominance.along_training`."""
    with style():
        acts = list(dict.fromkeys(frame["activation"]))
        layers = list(dict.fromkeys(frame["layer"]))
        fig, axes = plt.subplots(1, len(acts), figsize=(2.2 * len(acts) + 0.8, 3.2),
                                 sharey=True, squeeze=False, layout="constrained")  # fmt: skip
        for ax, act in zip(axes[0], acts, strict=True):
            part = frame[(frame["activation"] == act) & frame[column].notna()]
            for k, layer in enumerate(layers):
                pts = part[part["layer"] == layer]
                ax.plot(pts["step"], pts[column], lw=1.3,
                        color=LAYER_COLORS[k % len(LAYER_COLORS)], label=layer)  # fmt: skip
            ax.axhline(0.1, color="grey", ls=":", lw=1)
            right = ax.twinx()
            loss = part.drop_duplicates("step")
            right.plot(loss["step"], loss["hessian_loss"], color="black", lw=0.8, ls="--")
            right.grid(False)
            ax.set_title(act, fontsize=9)
            ax.set_xlabel("SGD step")
        axes[0][0].set_ylabel("‖R‖_F / ‖H‖_F per layer")
        right.set_ylabel("loss on the Hessian batch (dashed)")
        axes[0][0].legend(frameon=False, fontsize=8)
    return fig


def ratio_interval(num: pd.Series | dict, den: pd.Series | dict) -> tuple[float, float, float]:
    """``(value, low, high)`` of num/den from two estimates with intervals (``value``, ``low``,
    ``high``): the conservative interval [num.low / den.high, num.high / den.low]."""
    value = num["value"] / den["value"]
    low = num["low"] / den["high"]
    high = num["high"] / den["low"] if den["low"] > 0 else math.inf
    return float(value), float(low), float(high)


def whole_network_ratios(frame: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Whole-network R/H per (activation, sd) from rows of
    :func:`hessinit.dominance.whole_network` with ``activation`` and ``sd``: the value, the
    conservative interval of :func:`ratio_interval`, and ``ok``, the rule R/H < ``threshold``
    judged on that interval (None when it straddles the threshold)."""
    from .claims import compare_interval

    rows = []
    for (activation, sd), g in frame.groupby(["activation", "sd"], sort=False):
        terms = g.set_index("term")
        value, low, high = ratio_interval(terms.loc["R"], terms.loc["H"])
        ok = compare_interval(low, high, "<", threshold)
        rows.append({"activation": activation, "sd": sd, "R_over_H": value, "low": low,
                     "high": high, "ok": ok})  # fmt: skip
    return pd.DataFrame(rows)


def plot_whole_network(frame: pd.DataFrame):
    """Whole-network ||H||, ||G||, ||R|| with their intervals against sd, one panel per activation
    (``frame``: rows of :func:`hessinit.dominance.whole_network` with ``activation`` and ``sd``)."""
    with style():
        acts = list(dict.fromkeys(frame["activation"]))
        fig, axes = plt.subplots(1, len(acts), figsize=(2.2 * len(acts) + 0.8, 3.0),
                                 squeeze=False, layout="constrained")  # fmt: skip
        for ax, act in zip(axes[0], acts, strict=True):
            for k, term in enumerate(("H", "G", "R")):
                pts = frame[(frame["activation"] == act) & (frame["term"] == term)].sort_values(
                    "sd"
                )
                err = [pts["value"] - pts["low"], pts["high"] - pts["value"]]
                ax.errorbar(pts["sd"] * (1.08 ** (k - 1)), pts["value"], yerr=err, marker="o",
                            ms=3, lw=1.2, capsize=2, color=LAYER_COLORS[k],
                            label=f"‖{term}‖_F")  # fmt: skip
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(act, fontsize=9)
            ax.set_xlabel("std of dense1 (sd)")
        axes[0][0].set_ylabel("whole-network norm (95% interval)")
        axes[0][0].legend(frameon=False, fontsize=8)
    return fig


# --------------------------------------------------------------------------------------------
# Initialization schemes
# --------------------------------------------------------------------------------------------


def depth_growth(frame: pd.DataFrame) -> pd.DataFrame:
    """How the normalized layer Hessians grow with depth, per (activation, dropout, scheme).

    ``frame``: stacked :func:`hessinit.init.profile_schemes` outputs for several depths. The
    *level* of a network is the geometric mean of its layers' ``H_norm``; the growth factor per
    added layer is exp(slope) of the least-squares line of log(level) against the number of dense
    layers (``depth``). Columns ``activation, dropout, scheme, factor, log_factor, spread`` (the
    largest ratio of two layers' ``H_norm`` in the deepest network).
    """
    keys = ["activation", "dropout", "scheme"]
    level = (
        frame.assign(log_h=np.log(frame["H_norm"]))
        .groupby([*keys, "depth"], sort=False)["log_h"]
        .mean()
        .reset_index()
    )
    rows = []
    for key, part in level.groupby(keys, sort=False):
        slope = np.polyfit(part["depth"].astype(float), part["log_h"], 1)[0]
        deepest = frame[
            (frame[keys] == pd.Series(key, index=keys)).all(axis=1)
            & (frame["depth"] == frame["depth"].max())
        ]
        spread = float(deepest["H_norm"].max() / deepest["H_norm"].min())
        rows.append({**dict(zip(keys, key, strict=True)), "factor": math.exp(slope),
                     "log_factor": slope, "spread": spread})  # fmt: skip
    return pd.DataFrame(rows)


def most_stable(growth: pd.DataFrame, schemes=None) -> pd.DataFrame:
    """Per (activation, dropout): the scheme whose growth factor is closest to 1 in log scale,
    among ``schemes`` (labels; default all)."""
    part = growth if schemes is None else growth[growth["scheme"].isin(schemes)]
    idx = part.assign(a=part["log_factor"].abs()).groupby(["activation", "dropout"])["a"].idxmin()
    return part.loc[idx].reset_index(drop=True)


def scheme_profiles(x, y, settings, depths, hidden, batches, seed=0, num_classes=10):
    """:func:`hessinit.init.profile_schemes` for every ``(activation, dropout rate, schemes)`` in
    ``settings`` and every number of hidden layers in ``depths`` (``hidden`` units each), on the
    first ``batches[activation]`` images of ``x``, ``y``; the frames stacked."""
    from .init import profile_schemes

    frames = []
    for activation, rate, schemes in settings:
        b = batches[activation]
        for depth in depths:
            frames.append(profile_schemes(x[:b], y[:b], schemes, [activation],
                                          widths=(hidden,) * depth, dropout=rate, seed=seed,
                                          num_classes=num_classes))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def plot_profiles(frame: pd.DataFrame, depth: int | None = None):
    """Normalized Hessian norm ||H_l||_F / n_in against the layer, one panel per (activation,
    dropout), one line per scheme, in the networks with ``depth`` dense layers (default deepest)."""
    depth = int(frame["depth"].max()) if depth is None else depth
    part = frame[frame["depth"] == depth]
    groups = list(dict.fromkeys(zip(part["activation"], part["dropout"], strict=True)))
    schemes = list(dict.fromkeys(part["scheme"]))  # one colour per scheme across all panels
    colors = {s: LAYER_COLORS[k % len(LAYER_COLORS)] for k, s in enumerate(schemes)}
    with style():
        fig, axes = plt.subplots(1, len(groups), figsize=(2.4 * len(groups) + 1.0, 3.3),
                                 squeeze=False, layout="constrained")  # fmt: skip
        for ax, (act, drop) in zip(axes[0], groups, strict=True):
            g = part[(part["activation"] == act) & (part["dropout"] == drop)]
            for scheme in dict.fromkeys(g["scheme"]):
                pts = g[g["scheme"] == scheme]
                ax.plot(pts["layer"], pts["H_norm"], marker="o", ms=3, lw=1.2,
                        color=colors[scheme], label=scheme)  # fmt: skip
            ax.set_yscale("log")
            ax.set_xlabel("dense layer")
            ax.set_title(f"{act}" + (f", dropout {drop:g}" if drop else ""), fontsize=9)
        axes[0][0].set_ylabel("‖H_l‖_F / fan-in")
        handles = [plt.Line2D([], [], color=colors[s], marker="o", ms=3, lw=1.2) for s in schemes]
        fig.legend(handles, schemes, loc="outside right center", frameon=False, fontsize=8)
    return fig


def plot_growth(growth: pd.DataFrame):
    """Growth factor of the Hessian level per added layer against the scheme, per activation."""
    with style():
        fig, ax = plt.subplots(figsize=(6.4, 3.4), layout="constrained")
        groups = list(dict.fromkeys(zip(growth["activation"], growth["dropout"], strict=True)))
        schemes = list(dict.fromkeys(growth["scheme"]))
        width = 0.8 / len(groups)
        for k, (act, drop) in enumerate(groups):
            g = growth[(growth["activation"] == act) & (growth["dropout"] == drop)]
            xs = [schemes.index(s) + (k - (len(groups) - 1) / 2) * width for s in g["scheme"]]
            ax.bar(xs, g["factor"], width=width, color=LAYER_COLORS[k % len(LAYER_COLORS)],
                   label=act + (f", dropout {drop:g}" if drop else ""))  # fmt: skip
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(schemes)), schemes)
        ax.set_ylabel("growth of the Hessian level per layer")
        ax.legend(frameon=False, fontsize=8)
    return fig


def fit_schemes(train_data, test_data, inits, widths, activation, seeds, steps, lr, batch_size,
                eval_every, hessian_batch=256):  # fmt: skip
    """Train ``mlp(widths, activation)`` from each initializer in ``inits`` for each seed with
    :func:`hessinit.train.fit`; ``"hessian"`` means He, then :func:`hessinit.init.hessian_init`
    to the data's reference level on ``hessian_batch`` training images. Returns the stacked fit
    frames with ``init`` and ``seed`` columns; ``frame.attrs["hessian_init"]`` holds the
    initializer's per-seed tables."""
    from .init import hessian_init, kernel_stds, reference_level
    from .models import mlp
    from .train import fit

    shape = train_data.x.shape[1:]
    x_h, y_h = train_data.x[:hessian_batch], train_data.y[:hessian_batch]
    frames, tables = [], []
    for seed in seeds:
        for name in inits:
            scheme = "he" if name == "hessian" else name
            stds = kernel_stds(scheme, widths, shape, train_data.num_classes)
            model = mlp(shape, train_data.num_classes, widths, activation, stds, seed)
            if name == "hessian":
                result = hessian_init(model, x_h, y_h, target=reference_level(x_h))
                tables.append(result.table.assign(seed=seed, converged=result.converged,
                                                  seconds=result.seconds))  # fmt: skip
            frame = fit(model, train_data, test_data, steps=steps, lr=lr, batch_size=batch_size,
                        eval_every=eval_every, seed=seed, progress=False)  # fmt: skip
            frames.append(frame.assign(init=name, seed=seed))
    out = pd.concat(frames, ignore_index=True)
    out.attrs["hessian_init"] = pd.concat(tables, ignore_index=True) if tables else None
    return out


def plot_fits(frame: pd.DataFrame):
    """Held-out loss and accuracy against the step: mean over seeds, band min to max."""
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(7.4, 3.2), layout="constrained")
        for k, name in enumerate(dict.fromkeys(frame["init"])):
            g = frame[frame["init"] == name].groupby("step")
            for ax, col in zip(axes, ("test_loss", "test_accuracy"), strict=True):
                stats = g[col].agg(["mean", "min", "max"])
                color = LAYER_COLORS[k % len(LAYER_COLORS)]
                ax.plot(stats.index, stats["mean"], color=color, lw=1.4, label=name)
                ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.2)
        axes[0].set_ylabel("held-out loss (nats)")
        axes[1].set_ylabel("held-out accuracy")
        for ax in axes:
            ax.set_xlabel("SGD step")
        axes[1].legend(frameon=False, fontsize=8)
    return fig


def paired_wins(frame: pd.DataFrame, challenger: str = "hessian", column: str = "test_accuracy"):
    """Per rival initializer: ``column`` at the last evaluation of the challenger minus the
    rival's, seed by seed. Columns ``rival, mean_diff, min_diff, seeds, wins_every_seed``."""
    last = frame[frame["step"] == frame["step"].max()].pivot_table(
        index="seed", columns="init", values=column
    )
    rows = []
    for rival in [c for c in last.columns if c != challenger]:
        diff = last[challenger] - last[rival]
        rows.append({"rival": rival, "mean_diff": diff.mean(), "min_diff": diff.min(),
                     "seeds": len(diff), "wins_every_seed": bool((diff > 0).all())})  # fmt: skip
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Step size
# --------------------------------------------------------------------------------------------


def schedule_runs(data, schedules: dict, sds, seeds, **kwargs) -> pd.DataFrame:
    """:func:`hessinit.train.run` for every step-size schedule (``{name: lr}``, ``lr`` as
    :func:`~hessinit.train.run` takes it), sd and seed, stacked with a ``schedule`` column;
    ``kwargs`` go to every run."""
    from .train import run

    frames = [run(data, sd, lr=lr, seed=seed, **kwargs).assign(schedule=name)
              for name, lr in schedules.items() for sd in sds for seed in seeds]  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def taylor_checkpoints(frame: pd.DataFrame) -> pd.DataFrame:
    """The checkpoints of :func:`hessinit.train.run` frames (one row per run and step) with the
    ratios ``ratio_lr = realised / predicted`` (at the run's reference step) and
    ``ratio_star = realised_star / predicted_star`` (at gamma*)."""
    keys = [c for c in ("schedule", "sd", "seed", "step") if c in frame.columns]
    cp = frame.dropna(subset=["gamma_star"]).drop_duplicates(keys).copy()
    cp["ratio_lr"] = cp["realised"] / cp["predicted"]
    cp["ratio_star"] = cp["realised_star"] / cp["predicted_star"]
    return cp.reset_index(drop=True)


def plot_gamma(cp: pd.DataFrame, schedule: str):
    """Left: gamma* against the step, one line per sd; right: realised against predicted decrease
    at gamma* (log-log, the diagonal is a perfect quadratic model)."""
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


def plot_schedules(cp: pd.DataFrame):
    """Hessian-batch loss against the step, one panel per sd, one line per schedule (mean over
    seeds)."""
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
