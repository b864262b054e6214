"""The figures' style and the figures several pages draw; they compute nothing but the layout.

A chapter's own figures are in its module of :mod:`hessinit.chapters`, drawn in the style set
here (:func:`style`, :data:`LAYER_COLORS`, :func:`layer_color`, :func:`fit_column`). Every
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


def layer_color(names, name):
    """The color of layer ``name``: its place in ``names`` taken cyclically in LAYER_COLORS."""
    return LAYER_COLORS[list(names).index(name) % len(LAYER_COLORS)]


def _mean_band(frame, column):
    """Mean, min and max of ``column`` over seeds, per step."""
    g = frame.groupby("step")[column]
    return g.mean(), g.min(), g.max()


def training_curves(frame, quantity="H", title=None):
    """Loss (left axis) and a Hessian norm (right axis, log scale) against the SGD step.

    One panel per sd, one curve per tracked layer. The loss is the mini-batch cross-entropy
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
                color = layer_color(layers, name)
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
            plt.Line2D([], [], color=layer_color(layers, n), lw=1.4) for n in layers
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


def plot_root_profiles(roots: pd.DataFrame):
    """h_l against the layer in the deepest network at each seed's c*, over its geometric mean.

    Args:
        roots: rows of :func:`hessinit.chapters.init_schemes.stable_roots`.

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
