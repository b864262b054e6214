"""Every figure of the book: functions that draw frames, and compute nothing but the layout.

The frames come from :mod:`hessinit.study.experiments` and :mod:`hessinit.study.analysis`. Every
figure has an opaque white background, labelled axes with units, and is sized for a page about
7 inches wide. Each function returns the :class:`matplotlib.figure.Figure`.

Imports: numpy, pandas and matplotlib only.
"""

from __future__ import annotations

import contextlib

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

#: One colour per dense layer, the loss in black.
LAYER_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d")

#: Matplotlib settings of every figure (white background, light grid, 10 pt text).
STYLE = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 10,
    "axes.labelsize": 10,
    "axes.titlesize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 8,
    "figure.dpi": 110,
}
#: Width of the book's text column in inches, 688 px at 100 px per inch; a wider figure is
#: shown scaled down, and its text with it.
COLUMN_IN = 6.9
#: Smallest text size of a figure in points; at :data:`COLUMN_IN` wide it shows at 10 px or more.
MIN_FONT_PT = 7.5


def fit_column(fig):
    r"""Make ``fig`` readable in the book's column: at most :data:`COLUMN_IN` wide, no tiny text.

    A figure ``w`` inches wide is shown ``min(1, COLUMN_IN / w)`` times its size, so text of
    ``s`` points shows at ``s / 72 * 100 * min(1, COLUMN_IN / w)`` px or more. Narrowing a wider
    figure to the column (same height, the layout re-flows; log axes drop their minor labels,
    which no longer fit) and raising every text to :data:`MIN_FONT_PT` keeps each label at 10 px
    or more.

    Args:
        fig: A matplotlib figure.

    Returns:
        The figure, changed in place.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots(figsize=(10, 3))
        >>> _ = ax.set_title("t", fontsize=6)
        >>> fit_column(fig).get_size_inches().tolist(), ax.title.get_fontsize()
        ([6.9, 3.0], 7.5)
        >>> plt.close(fig)
    """
    width, height = fig.get_size_inches()
    if width > COLUMN_IN:
        fig.set_size_inches(COLUMN_IN, height)
        # Narrower panels have no room for a log axis's minor labels (2x10^0, 3x10^0, ...).
        for ax in fig.axes:
            for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
                if scale == "log":
                    axis.set_minor_formatter(mpl.ticker.NullFormatter())
    for text in fig.findobj(mpl.text.Text):
        if text.get_text() and text.get_fontsize() < MIN_FONT_PT:
            text.set_fontsize(MIN_FONT_PT)
    return fig


@contextlib.contextmanager
def style():
    """Apply :data:`STYLE` inside the block, fit its new figures to the column, restore the keys.

    Every figure the block creates goes through :func:`fit_column` when the block ends.

    Unlike ``plt.rc_context``, it restores nothing else: ``rc_context`` also puts back an
    unresolved ``backend`` when the block drew the session's first figure, and Jupyter's inline
    backend then stops showing later figures.
    """
    old = {key: mpl.rcParams[key] for key in STYLE}
    before = set(plt.get_fignums())
    mpl.rcParams.update(STYLE)
    try:
        yield
        for number in sorted(set(plt.get_fignums()) - before):
            fit_column(plt.figure(number))
    finally:
        mpl.rcParams.update(old)


def _layer_color(names, name):
    return LAYER_COLORS[list(names).index(name) % len(LAYER_COLORS)]


def _mean_band(frame, column):
    """Mean, min and max of ``column`` over seeds, per step."""
    g = frame.groupby("step")[column]
    return g.mean(), g.min(), g.max()


def training_curves(frame, quantity="H", title=None):
    """Loss (left axis) and a Hessian norm (right axis, log scale) against the SGD step.

    One panel per std, one curve per tracked layer. The loss is the mini-batch cross-entropy
    (nats), the norms are exact Frobenius norms on the fixed Hessian batch. With several seeds
    (a ``seed`` column) each curve is the mean over seeds with a band from the smallest to the
    largest seed. All panels share both axes, so they compare. A run that diverged
    (``frame.attrs["diverged_at"]``) is marked.

    Args:
        frame: rows of :func:`hessinit.train.run` or :func:`hessinit.train.experiment`.
        quantity: ``"H"``, ``"G"`` or ``"R"``.
        title: the figure's title.

    Returns:
        The figure.
    """
    with style():
        sds = sorted(frame["sd"].unique())
        layers = list(dict.fromkeys(frame["layer"]))
        seeds = frame["seed"].nunique() if "seed" in frame else 1
        fig, axes = plt.subplots(1, len(sds), figsize=(3.4 * len(sds) + 0.6, 3.6), squeeze=False,
                                 layout="constrained", sharey=True)  # fmt: skip
        rights = []
        for ax, sd in zip(axes[0], sds, strict=True):
            part = frame[frame["sd"] == sd]
            loss = part.drop_duplicates(["step", "seed"] if "seed" in part else "step")
            mean, lo, hi = _mean_band(loss, "loss")
            ax.plot(mean.index, mean, color="black", lw=0.8, alpha=0.6, label="loss")
            if seeds > 1:
                ax.fill_between(mean.index, lo, hi, color="black", alpha=0.12, lw=0)
            ax.set_xlabel("SGD step")
            ax.set_title(f"sd = {sd:g}")
            right = ax.twinx()
            if rights:
                right.sharey(rights[0])
            rights.append(right)
            for name in layers:
                pts = part[(part["layer"] == name) & part[quantity].notna()]
                mean, lo, hi = _mean_band(pts, quantity)
                color = _layer_color(layers, name)
                right.plot(mean.index, mean, color=color, lw=1.4, label=f"‖{quantity}‖ {name}")
                if seeds > 1:
                    right.fill_between(mean.index, lo, hi, color=color, alpha=0.2, lw=0)
            right.set_yscale("log")
            right.grid(False)
            if ax is axes[0][0]:
                ax.set_ylabel("mini-batch loss (nats)")
            if ax is axes[0][-1]:
                right.set_ylabel(f"‖{quantity}‖_F of the layer Hessian")
            else:
                right.tick_params(labelright=False)
            if part.attrs.get("diverged_at") is not None:
                ax.annotate("diverged", xy=(0.5, 0.5), xycoords="axes fraction", color="red")
        handles = [axes[0][0].get_lines()[0]] + [
            plt.Line2D([], [], color=_layer_color(layers, n), lw=1.4) for n in layers
        ]
        labels = ["loss (left)"] + [f"‖{quantity}‖_F {n} (right)" for n in layers]
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False)
        if title:
            band = f" (mean and min-max band over {seeds} seeds)" if seeds > 1 else ""
            fig.suptitle(title + band)
    return fig


def save(fig, path):
    """Write ``fig`` as a PNG with an opaque white background and close it.

    Args:
        fig: the figure.
        path: the PNG file.
    """
    with style():
        fig.savefig(path, dpi=130, facecolor="white", transparent=False)
    plt.close(fig)


def plot_chain_rule(check):
    """Bar chart of ||G||_F and ||R||_F per layer, one panel per activation (log scale).

    An exact zero is drawn at 1e-18.

    Args:
        check: rows of :func:`hessinit.study.experiments.chain_rule_check`.

    Returns:
        The figure.
    """
    with style():
        acts = list(dict.fromkeys(check["activation"]))
        fig, axes = plt.subplots(1, len(acts), figsize=(7, 3.0), sharey=True, layout="constrained")
        axes = np.atleast_1d(axes)
        floor = 1e-18
        for ax, act in zip(axes, acts, strict=True):
            part = check[check["activation"] == act]
            pos = np.arange(len(part))
            for k, (col, label) in enumerate((("G", "‖G‖_F"), ("R", "‖R‖_F"))):
                ax.bar(
                    pos + (k - 0.5) * 0.38,
                    np.maximum(part[col], floor),
                    0.38,
                    color=LAYER_COLORS[k],
                    label=label,
                )
            ax.set_xticks(pos, part["layer"])
            ax.set_yscale("log")
            ax.set_title(act)
        axes[0].set_ylabel("norm of the layer's own block")
        axes[-1].legend(frameon=False, fontsize=8)
    return fig


def plot_block_norms(blocks):
    """Heat maps of log10 ||R block||_F over (layer, layer) pairs, one per activation.

    Args:
        blocks: rows of :func:`hessinit.study.experiments.block_norms`.

    Returns:
        The figure.
    """
    with style():
        acts = list(dict.fromkeys(blocks["activation"]))
        fig, axes = plt.subplots(1, len(acts), figsize=(7, 3.2), layout="constrained")
        axes = np.atleast_1d(axes)
        for ax, act in zip(axes, acts, strict=True):
            part = blocks[blocks["activation"] == act]
            table = part.pivot(index="row", columns="col", values="R")
            values = np.log10(np.maximum(table.to_numpy(), 1e-20))
            image = ax.imshow(values, cmap="viridis", vmin=-20, vmax=max(values.max(), -19))
            ax.set_xticks(range(len(table.columns)), table.columns)
            ax.set_yticks(range(len(table.index)), table.index)
            ax.grid(False)
            for (i, j), v in np.ndenumerate(values):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", color="white", fontsize=8)
            ax.set_title(f"{act}: log10 ‖R block‖_F")
            fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def plot_kron_pattern(block, tile):
    """log10 abs(H entry) of a corner of a dense layer's Hessian, with its Kronecker tiles outlined.

    Args:
        block: a square corner of H_W in the row-major order of the kernel:
            :func:`hessinit.study.experiments.kron_pattern`.
        tile: the side of a tile, n_out of the layer.

    Returns:
        The figure.
    """
    rows = len(block) // tile
    with style():
        fig, ax = plt.subplots(figsize=(4.6, 4.0), layout="constrained")
        image = ax.imshow(np.log10(np.abs(block) + 1e-12), cmap="magma")
        for b in range(1, rows):
            ax.axhline(b * tile - 0.5, color="white", lw=0.6)
            ax.axvline(b * tile - 0.5, color="white", lw=0.6)
        ax.grid(False)
        ax.set_xlabel("kernel entry (p, c), row-major")
        ax.set_ylabel("kernel entry (p, c), row-major")
        fig.colorbar(image, ax=ax, label="log10 |H entry|")
    return fig


def plot_sweep(summary, column="H_init", ylabel="‖H‖_F at initialization"):
    """A norm against sd, and the softmax's saturation against sd.

    Left: ``column`` against sd, one curve per layer (colour) and dataset (line style); right,
    where ``p_max`` is present: the mean largest softmax probability.

    Args:
        summary: rows of :func:`hessinit.study.analysis.sweep_summary`.
        column: the norm drawn.
        ylabel: its axis label.

    Returns:
        The figure.
    """
    styles = ("-", "--", ":", "-.")
    with style():
        fig, (ax, sat) = plt.subplots(
            1, 2, figsize=(7.4, 3.4), layout="constrained", width_ratios=(1.6, 1)
        )
        layers = list(dict.fromkeys(summary["layer"]))
        datasets = list(dict.fromkeys(summary["dataset"]))
        for d, dataset in enumerate(datasets):
            for k, layer in enumerate(layers):
                part = summary[(summary["dataset"] == dataset) & (summary["layer"] == layer)]
                part = part.sort_values("sd")
                ax.plot(
                    part["sd"],
                    part[column],
                    styles[d % len(styles)],
                    marker="o",
                    ms=3,
                    color=LAYER_COLORS[k % len(LAYER_COLORS)],
                    label=f"{layer} ({dataset})",
                )
            if "p_max" in summary:
                part = summary[(summary["dataset"] == dataset)].drop_duplicates("sd")
                part = part.sort_values("sd")
                sat.plot(
                    part["sd"],
                    part["p_max"],
                    styles[d % len(styles)],
                    marker="o",
                    ms=3,
                    color="black",
                    label=dataset,
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sd of dense1's initial kernel")
        ax.set_ylabel(ylabel)
        ax.legend(frameon=False, fontsize=7)
        sat.set_xscale("log")
        sat.set_xlabel("sd of dense1's initial kernel")
        sat.set_ylabel("mean largest softmax probability")
        sat.set_ylim(0, 1.05)
        sat.legend(frameon=False, fontsize=7)
    return fig


def plot_benchmark(norms):
    """Wall seconds against B on log axes, one line per method that ran (status ``ok``).

    Args:
        norms: the ``hessian_norms.csv`` table (:func:`hessinit.study.analysis.read_benchmark`).

    Returns:
        The figure.
    """
    ok = norms[(norms["status"] == "ok") & (norms["B"] > 0)]
    methods = list(dict.fromkeys(ok["method"]))
    with style():
        fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
        for k, method in enumerate(methods):
            part = ok[ok["method"] == method].sort_values("B")
            ax.plot(part["B"], part["seconds"], marker="o", ms=4, lw=1.4,
                    color=LAYER_COLORS[k % len(LAYER_COLORS)], label=method)  # fmt: skip
        ax.set_xscale("log", base=2)
        batches = sorted(ok["B"].unique())
        ax.set_xticks(batches, [f"{b:,}" for b in batches])
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_xlabel("batch size B (images)")
        ax.set_ylabel("wall time (s)")
        ax.set_title("‖H‖_F of dense1 (23,520 × 23,520)")
        ax.legend(frameon=False, fontsize=8)
    return fig


def plot_whole_network(frame: pd.DataFrame):
    """Whole-network ||H||, ||G||, ||R|| with their intervals against sd, one panel per activation.

    Args:
        frame: rows of :func:`hessinit.study.experiments.whole_network_grid`.

    Returns:
        The figure.
    """
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


def plot_gamma(cp: pd.DataFrame, schedule: str):
    """gamma* along training, and the decrease at gamma* realised against predicted.

    Left: gamma* = g^T g / g^T H g against the step, one line per sd; right: realised against
    predicted decrease at gamma* (log-log; the diagonal is a perfect quadratic model; pairs with
    a non-positive decrease are not drawn).

    Args:
        cp: rows of :func:`hessinit.study.analysis.taylor_checkpoints`.
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


def plot_schedules(cp: pd.DataFrame):
    """Hessian-batch loss against the step, one panel per sd, one line per schedule.

    Args:
        cp: rows of :func:`hessinit.study.analysis.taylor_checkpoints` (mean over seeds drawn).

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


# --- original ---


# --- dominance ---


def plot_relu_exactness(check: pd.DataFrame, threshold: float):
    """||H_l - G_l||_F / ||H_l||_F per layer block and seed, per activation (log scale).

    Args:
        check: rows of :func:`hessinit.study.experiments.relu_exactness`.
        threshold: the round-off level, drawn as a dotted line.

    Returns:
        The figure.
    """
    with style():
        acts = list(dict.fromkeys(check["activation"]))
        layers = list(dict.fromkeys(check["layer"]))
        fig, ax = plt.subplots(figsize=(4.6, 3.0), layout="constrained")
        floor = 1e-18  # exact zeros drawn at the bottom of the log axis
        for k, act in enumerate(acts):
            part = check[check["activation"] == act]
            xs = [layers.index(name) + 0.15 * (k - (len(acts) - 1) / 2) for name in part["layer"]]
            ax.scatter(xs, np.maximum(part["R_over_H"], floor), s=14, label=act,
                       color=LAYER_COLORS[k % len(LAYER_COLORS)])  # fmt: skip
        ax.axhline(threshold, color="grey", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_xticks(range(len(layers)), layers)
        ax.set_ylabel("‖H_l − G_l‖_F / ‖H_l‖_F (autodiff)")
        ax.legend(frameon=False, fontsize=8)
    return fig


def _setting_label(row) -> str:
    return str(row["init"]) if row["init"] != "sd" else f"{row['scaling']} {row['sd']:g}"


def plot_init_intervals(summary: pd.DataFrame, threshold: float = 0.1):
    """Worst layer's R/H and its G/H with 95% intervals over seeds, per setting and activation.

    Saturated settings (no unsaturated seed) are marked with an ``x`` at the bottom.

    Args:
        summary: rows of :func:`hessinit.study.analysis.init_intervals`.
        threshold: drawn as a dotted line.

    Returns:
        The figure.
    """
    with style():
        acts = list(dict.fromkeys(summary["activation"]))
        fig, axes = plt.subplots(len(acts), 1, figsize=(7.0, 1.9 * len(acts) + 0.9),
                                 sharex=True, squeeze=False, layout="constrained")  # fmt: skip
        for ax, act in zip(axes[:, 0], acts, strict=True):
            part = summary[summary["activation"] == act].reset_index(drop=True)
            xs = np.arange(len(part))
            for k, (col, lo, hi, name) in enumerate(
                (("R_over_H", "low", "high", "‖R‖/‖H‖"), ("G_over_H", "G_low", "G_high", "‖G‖/‖H‖"))
            ):
                err = [part[col] - part[lo], part[hi] - part[col]]
                ax.errorbar(xs + 0.12 * (k - 0.5), part[col], yerr=err, fmt="o", ms=3,
                            capsize=2, lw=1, color=LAYER_COLORS[k], label=name)  # fmt: skip
            sat = part["seeds"] == 0
            ax.scatter(xs[sat], np.zeros(sat.sum()), marker="x", color="black",
                       label="saturated" if sat.any() else None)  # fmt: skip
            ax.axhline(threshold, color="grey", ls=":", lw=1)
            ax.set_title(act, fontsize=9)
            ax.set_ylabel("worst layer")
            ax.set_xticks(xs, [_setting_label(r) for _, r in part.iterrows()], rotation=45,
                          ha="right", fontsize=7)  # fmt: skip
        axes[0, 0].legend(frameon=False, fontsize=8, ncol=3)
    return fig


def plot_ratio_against_loss(frame: pd.DataFrame, threshold: float = 0.1, target=None):
    """The worst layer's ||R||/||H|| against the Hessian-batch loss along training.

    One panel per activation, one line per seed (checkpoints only), the loss on a log axis
    decreasing to the right.

    Args:
        frame: rows of :func:`hessinit.study.experiments.training_seeds`.
        threshold: drawn as a dotted horizontal line.
        target: the target loss, drawn as a dashed vertical line (None: not drawn).

    Returns:
        The figure.
    """
    with style():
        cps = frame.dropna(subset=["H"])
        acts = list(dict.fromkeys(cps["activation"]))
        fig, axes = plt.subplots(1, len(acts), figsize=(2.4 * len(acts) + 0.8, 3.0),
                                 sharey=True, squeeze=False, layout="constrained")  # fmt: skip
        for ax, act in zip(axes[0], acts, strict=True):
            part = cps[cps["activation"] == act]
            for k, (seed, run) in enumerate(part.groupby("seed")):
                worst = run.groupby("step").agg(loss=("hessian_loss", "first"),
                                                ratio=("R_over_H", "max"))  # fmt: skip
                color = LAYER_COLORS[k % len(LAYER_COLORS)]
                ax.plot(worst["loss"], worst["ratio"], marker="o", ms=3, lw=1.1, color=color,
                        label=f"seed {seed}")  # fmt: skip
            ax.axhline(threshold, color="grey", ls=":", lw=1)
            if target is not None:
                ax.axvline(target, color="black", ls="--", lw=0.8)
            ax.set_xscale("log")
            ax.invert_xaxis()
            ax.set_title(act, fontsize=9)
            ax.set_xlabel("Hessian-batch loss (nats)")
        axes[0][0].set_ylabel("worst layer ‖R‖_F / ‖H‖_F")
        axes[0][0].legend(frameon=False, fontsize=8)
    return fig


# --- init_schemes ---


def plot_roots(summary: pd.DataFrame, classic: dict):
    """The depth-stable c* per setting (95% interval over seeds) against the classical value.

    Args:
        summary: rows of :func:`hessinit.study.analysis.root_summary`.
        classic: ``label`` -> ``(c, ...)``: the classical value of each setting.

    Returns:
        The figure.
    """
    with style():
        fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(summary) + 1.2), layout="constrained")
        ys = np.arange(len(summary))[::-1]
        ok = summary["seeds"] >= 2
        s = summary[ok]
        ax.errorbar(s["c"], ys[ok.to_numpy()], xerr=[s["c"] - s["low"], s["high"] - s["c"]],
                    fmt="o", ms=4, capsize=3, color=LAYER_COLORS[0],
                    label="c* (95% interval)")  # fmt: skip
        ax.plot([classic[k][0] for k in summary["label"]], ys, "x", ms=7, color="black",
                label="classical value")  # fmt: skip
        ax.set_yticks(ys, summary["label"])
        ax.set_xscale("log")
        ax.set_xlabel("variance factor c (kernel variance c / fan-in)")
        ax.legend(frameon=False, fontsize=8, loc="lower right")
    return fig


def plot_root_profiles(roots: pd.DataFrame):
    """h_l against the layer in the deepest network at each seed's c*, over its geometric mean.

    Args:
        roots: rows of :func:`hessinit.study.experiments.stable_roots`.

    Returns:
        The figure: one panel per setting, one line per seed.
    """
    part = roots[roots["depth"] == roots["depth"].max()].copy()
    part["rel"] = part["H_norm"] / part.groupby(["label", "seed"])["H_norm"].transform(
        lambda h: np.exp(np.log(h).mean())
    )
    labels = list(dict.fromkeys(part["label"]))
    with style():
        fig, axes = plt.subplots(1, len(labels), figsize=(1.5 * len(labels) + 1.0, 3.0),
                                 squeeze=False, sharey=True, layout="constrained")  # fmt: skip
        for ax, label in zip(axes[0], labels, strict=True):
            for k, (_, g) in enumerate(part[part["label"] == label].groupby("seed")):
                ax.plot(g["layer"], g["rel"], marker="o", ms=2.5, lw=1,
                        color=LAYER_COLORS[k % len(LAYER_COLORS)])  # fmt: skip
            ax.set_yscale("log")
            ax.set_title(label, fontsize=8)
            ax.set_xlabel("dense layer")
        axes[0][0].set_ylabel("h_l / geometric mean over layers")
    return fig


def plot_paired(diffs: pd.DataFrame, margin: float):
    """Paired differences, Hessian-based minus each rival, with 95% intervals, per score.

    Args:
        diffs: rows of :func:`hessinit.study.analysis.paired_differences`.
        margin: the accuracy equivalence margin, drawn as a band.

    Returns:
        The figure: one panel per score.
    """
    scores = list(dict.fromkeys(diffs["score"]))
    with style():
        fig, axes = plt.subplots(1, len(scores), figsize=(3.2 * len(scores) + 0.6, 2.8),
                                 squeeze=False, layout="constrained")  # fmt: skip
        for ax, score in zip(axes[0], scores, strict=True):
            d = diffs[diffs["score"] == score]
            ys = np.arange(len(d))[::-1]
            ax.errorbar(d["value"], ys, xerr=[d["value"] - d["low"], d["high"] - d["value"]],
                        fmt="o", ms=4, capsize=3, color=LAYER_COLORS[2])  # fmt: skip
            ax.axvline(0, color="black", lw=0.8)
            if score == "test_accuracy":
                ax.axvspan(-margin, margin, color="grey", alpha=0.2, lw=0)
            ax.set_yticks(ys, [f"vs {r}" for r in d["rival"]])
            ax.set_xlabel(f"Hessian-based minus rival: {score.replace('_', ' ')}")
    return fig


# --- step_size ---


def plot_stability(outcomes: pd.DataFrame):
    """Final loss of every fixed step against lr / (2 / lambda_max), one panel per sd.

    Each point is one run (step and seed) at x = lr lambda_max / 2, its step as a fraction of
    the stability bound at initialization; the vertical line at 1 is the bound. Runs that
    diverged are drawn as crosses at the top of the panel, runs whose loss did not fall as open
    circles.

    Args:
        outcomes: rows of :func:`hessinit.study.analysis.stability_outcomes`.

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
                        color=_layer_color(layers, name))  # fmt: skip
            net = g.drop_duplicates(["seed", "step"]).groupby("step")["lambda_max_network"].mean()
            ax.plot(net.index, net.values, lw=1.6, color="black", label="network")
            ax.axhline(2.0 / lr, color="black", lw=0.9, ls="--", label="2 / lr")
            ax.set_yscale("log")
            ax.set_title(f"sd = {sd:g}", fontsize=9)
            ax.set_xlabel("SGD step")
        axes[0][0].set_ylabel("λ_max of the Hessian")
        axes[0][0].legend(frameon=False, fontsize=8)
    return fig


# --- diagnostic ---


def plot_diagnostic(table: pd.DataFrame, predictors, outcome: str, ylabel: str):
    """Final loss against candidate diagnostics at initialization, one panel per predictor.

    Args:
        table: one row per (init, seed) with ``init``, ``family``, the predictors and
            ``outcome``.
        predictors: predictor column -> axis label; a positive predictor is drawn on a log axis.
        outcome: the outcome column.
        ylabel: its axis label.

    Returns:
        The figure.
    """
    with style():
        fig, axes = plt.subplots(1, len(predictors), figsize=(2.4 * len(predictors) + 0.6, 3.0),
                                 sharey=True, squeeze=False, layout="constrained")  # fmt: skip
        for ax, (col, label) in zip(axes[0], predictors.items(), strict=True):
            for k, family in enumerate(dict.fromkeys(table["family"])):
                g = table[table["family"] == family]
                ax.scatter(g[col], g[outcome], s=10, alpha=0.7, label=family,
                           color=LAYER_COLORS[k % len(LAYER_COLORS)])  # fmt: skip
            if (table[col] > 0).all():
                ax.set_xscale("log")
            ax.set_xlabel(label)
        axes[0][0].set_ylabel(ylabel)
        axes[0][0].legend(frameon=False, fontsize=7)
    return fig


def plot_cnn(frame: pd.DataFrame, threshold: float = 0.1):
    """Per kernel tensor, ||G||/||H|| and ||R||/||H|| at initialization, mean over seeds.

    One panel per network; per scheme a colour, G/H filled and R/H hollow markers.

    Args:
        frame: rows of :func:`hessinit.study.cnn.kernel_norms`.
        threshold: the rule's R/H threshold, drawn as a dotted line.

    Returns:
        The figure.
    """
    with style():
        nets = list(dict.fromkeys(frame["network"]))
        fig, axes = plt.subplots(1, len(nets), figsize=(2.2 * len(nets) + 0.8, 3.0),
                                 sharey=True, squeeze=False, layout="constrained")  # fmt: skip
        for ax, net in zip(axes[0], nets, strict=True):
            part = frame[frame["network"] == net]
            tensors = list(dict.fromkeys(part["tensor"]))
            xs = np.arange(len(tensors))
            for k, (scheme, run) in enumerate(part.groupby("init", sort=False)):
                mean = run.groupby("tensor")[["G_over_H", "R_over_H"]].mean().loc[tensors]
                color = LAYER_COLORS[k % len(LAYER_COLORS)]
                ax.plot(xs, mean["G_over_H"], "o-", ms=4, lw=1, color=color,
                        label=f"{scheme} ‖G‖/‖H‖")  # fmt: skip
                ax.plot(xs, mean["R_over_H"], "o--", ms=4, lw=1, mfc="none", color=color,
                        label=f"{scheme} ‖R‖/‖H‖")  # fmt: skip
            ax.axhline(threshold, color="grey", ls=":", lw=1)
            ax.set_title(net, fontsize=9)
            ax.set_xticks(xs, tensors, rotation=45, ha="right", fontsize=7)
        axes[0, 0].set_ylabel("share of ‖H‖ (mean over seeds)")
        axes[0, 0].legend(frameon=False, fontsize=7)
    return fig


def plot_cnn_sweep(frame: pd.DataFrame, spectra: pd.DataFrame | None = None,
                   threshold: float = 0.1):  # fmt: skip
    """Per kernel tensor, ||H||_F and ||R||_F / ||H||_F against the variance factor c.

    One column per network: on top ||H||_F of every kernel tensor (mean over seeds, log-log)
    and, dashed black, the whole network's lambda_max where it was computed; below R/H per
    tensor with the rule's threshold (dotted).

    Args:
        frame: rows of :func:`hessinit.study.cnn.kernel_norms` over numeric schemes (``c``).
        spectra: rows of :func:`hessinit.study.cnn.lambda_max` over the same c, or ``None``.
        threshold: the rule's R/H threshold.

    Returns:
        The figure.
    """
    with style():
        nets = list(dict.fromkeys(frame["network"]))
        fig, axes = plt.subplots(2, len(nets), figsize=(1.75 * len(nets) + 0.9, 4.6),
                                 sharex=True, squeeze=False, layout="constrained")  # fmt: skip
        for k, net in enumerate(nets):
            top, bottom = axes[0, k], axes[1, k]
            part = frame[frame["network"] == net]
            mean = part.groupby(["tensor", "c"], sort=False)[["H", "R_over_H"]].mean()
            for j, tensor in enumerate(dict.fromkeys(part["tensor"])):
                run = mean.loc[tensor].sort_index()
                color = LAYER_COLORS[j % len(LAYER_COLORS)]
                top.plot(run.index, run["H"], "o-", ms=3, lw=1, color=color, label=tensor)
                bottom.plot(run.index, run["R_over_H"], "o-", ms=3, lw=1, color=color)
            if spectra is not None and (spectra["network"] == net).any():
                lam = spectra[spectra["network"] == net].sort_values("c")
                top.plot(lam["c"], lam["lambda_max"], "k--", lw=1, label="λ_max")
            top.set_xscale("log")
            top.set_yscale("log")
            top.set_title(net)
            top.legend(frameon=False, fontsize=7)
            bottom.axhline(threshold, color="grey", ls=":", lw=1)
            bottom.set_ylim(-0.03, 1.03)
            bottom.set_xlabel("c (variance c / fan-in)")
        axes[0, 0].set_ylabel("‖H‖_F per kernel")
        axes[1, 0].set_ylabel("‖R‖_F / ‖H‖_F")
    return fig


def plot_cnn_growth(evaluations: pd.DataFrame, summary: pd.DataFrame, classical: float = 2.0):
    """The log-growth g(c) per added convolution at every c the root search evaluated.

    One line per seed; the zero line, the classical value (He's c = 2, dashed) and the 95%
    interval of c* over seeds (shaded).

    Args:
        evaluations: the ``evaluations`` frame of :func:`hessinit.study.cnn.stable_roots`.
        summary: one row of :func:`hessinit.study.analysis.root_summary` (``c``, ``low``,
            ``high``).
        classical: the value compared with.

    Returns:
        The figure.
    """
    with style():
        fig, ax = plt.subplots(figsize=(5.5, 3.0), layout="constrained")
        for k, (seed, run) in enumerate(evaluations.groupby("seed")):
            run = run.sort_values("c")
            ax.plot(run["c"], run["log_growth"], "o-", ms=3, lw=1,
                    color=LAYER_COLORS[k % len(LAYER_COLORS)], label=f"seed {seed}")  # fmt: skip
        row = summary.iloc[0]
        if np.isfinite(row["low"]) and np.isfinite(row["high"]):
            ax.axvspan(row["low"], row["high"], color="grey", alpha=0.2, label="c* (95%)")
        ax.axhline(0.0, color="black", lw=0.8)
        ax.axvline(classical, color="black", ls="--", lw=1, label=f"He, c = {classical:g}")
        ax.set_xscale("log")
        ax.set_xlabel("variance factor c (kernel variance c / fan-in)")
        ax.set_ylabel("log-growth g(c) per convolution")
        ax.legend(frameon=False, fontsize=8)
    return fig


def plot_cnn_tracking(frame: pd.DataFrame, threshold: float = 0.1):
    """Per kernel tensor, ||H||_F and ||G||_F (top) and ||R||/||H|| (bottom) through training.

    One column per network; one colour per kernel tensor, the mean over seeds at each
    checkpoint; the dotted line in the bottom row is the threshold of the dominance rule.

    Args:
        frame: rows of :func:`hessinit.study.cnn_training.track` (NaN rows off the
            checkpoints are skipped).
        threshold: the R/H threshold.

    Returns:
        The figure.
    """
    cp = frame.dropna(subset=["H"]).assign(R_over_H=lambda f: f["R"] / f["H"])
    with style():
        nets = list(dict.fromkeys(cp["network"]))
        fig, axes = plt.subplots(2, len(nets), figsize=(2.3 * len(nets) + 0.8, 5.0),
                                 sharex=True, squeeze=False, layout="constrained")  # fmt: skip
        for k, net in enumerate(nets):
            part = cp[cp["network"] == net]
            tensors = list(dict.fromkeys(part["layer"]))
            top, bottom = axes[0, k], axes[1, k]
            for name in tensors:
                mean = part[part["layer"] == name].groupby("step")[["H", "G", "R_over_H"]].mean()
                color = _layer_color(tensors, name)
                top.plot(mean.index, mean["H"], lw=1.4, color=color, label=f"{name} ‖H‖")
                top.plot(mean.index, mean["G"], lw=1.0, ls="--", color=color)
                bottom.plot(mean.index, mean["R_over_H"], "o-", ms=3, lw=1.2, color=color,
                            label=name)  # fmt: skip
            bottom.axhline(threshold, color="grey", ls=":", lw=1)
            top.set_yscale("log")
            top.set_title(net, fontsize=9)
            bottom.set_xlabel("SGD step")
            bottom.legend(frameon=False, fontsize=7)
        axes[0, 0].set_ylabel("‖H‖_F (solid), ‖G‖_F (dashed)")
        axes[1, 0].set_ylabel("‖R‖_F / ‖H‖_F")
    return fig
