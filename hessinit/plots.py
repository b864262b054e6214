"""Figures: the original experiment's figure done right, and small helpers for the book.

Every figure has an opaque white background, labelled axes with units, and is sized for a page
about 7 inches wide.
"""

from __future__ import annotations

import contextlib

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

#: One colour per dense layer, the loss in black.
LAYER_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d")

STYLE = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 10,
    "figure.dpi": 110,
}


@contextlib.contextmanager
def style():
    """Apply :data:`STYLE` inside the block and restore those keys after it.

    Unlike ``plt.rc_context``, it restores nothing else: ``rc_context`` also puts back an
    unresolved ``backend`` when the block drew the session's first figure, and Jupyter's inline
    backend then stops showing later figures.
    """
    old = {key: mpl.rcParams[key] for key in STYLE}
    mpl.rcParams.update(STYLE)
    try:
        yield
    finally:
        mpl.rcParams.update(old)


def _layer_color(names, name):
    return LAYER_COLORS[list(names).index(name) % len(LAYER_COLORS)]


def training_curves(frame, quantity="H", title=None):
    """Loss (left axis) and a Hessian norm (right axis, log scale) against the SGD step.

    ``frame``: the output of :func:`hessinit.train.run` / ``experiment``; one panel per std
    (column ``sd``), one curve per tracked layer. ``quantity``: ``"H"``, ``"G"`` or ``"R"``.
    The loss is the mini-batch cross-entropy (nats), the norms are exact Frobenius norms on the
    fixed Hessian batch.
    """
    with style():
        sds = sorted(frame["sd"].unique())
        layers = list(dict.fromkeys(frame["layer"]))
        fig, axes = plt.subplots(
            1, len(sds), figsize=(3.4 * len(sds) + 0.6, 3.6), squeeze=False, layout="constrained"
        )
        for ax, sd in zip(axes[0], sds, strict=True):
            part = frame[frame["sd"] == sd]
            loss = part.drop_duplicates("step")
            ax.plot(loss["step"], loss["loss"], color="black", lw=0.8, alpha=0.6, label="loss")
            ax.set_xlabel("SGD step")
            ax.set_title(f"sd = {sd:g}")
            right = ax.twinx()
            for name in layers:
                pts = part[(part["layer"] == name) & part[quantity].notna()]
                right.plot(pts["step"], pts[quantity], color=_layer_color(layers, name),
                           lw=1.4, label=f"‖{quantity}‖ {name}")  # fmt: skip
            right.set_yscale("log")
            right.grid(False)
            if ax is axes[0][0]:
                ax.set_ylabel("mini-batch loss (nats)")
            if ax is axes[0][-1]:
                right.set_ylabel(f"‖{quantity}‖_F of the layer Hessian")
            if part.attrs.get("diverged_at") is not None:
                ax.annotate("diverged", xy=(0.5, 0.5), xycoords="axes fraction", color="red")
        handles = [axes[0][0].get_lines()[0]] + [
            plt.Line2D([], [], color=_layer_color(layers, n), lw=1.4) for n in layers
        ]
        labels = ["loss (left)"] + [f"‖{quantity}‖_F {n} (right)" for n in layers]
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False)
        if title:
            fig.suptitle(title)
    return fig


def save(fig, path):
    """Write ``fig`` as a PNG with an opaque white background and close it."""
    with style():
        fig.savefig(path, dpi=130, facecolor="white", transparent=False)
    plt.close(fig)


def norm_against(frame, x, y, hue, logx=True, logy=True, xlabel=None, ylabel=None, ax=None):
    """Line plot of column ``y`` against ``x``, one line per value of ``hue``; returns the axes."""
    with style():
        if ax is None:
            _, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
        keys = list(dict.fromkeys(frame[hue]))
        for key in keys:
            part = frame[frame[hue] == key].sort_values(x)
            color = _layer_color(keys, key)
            ax.plot(part[x], part[y], marker="o", ms=3.5, lw=1.4, color=color, label=str(key))
        if logx:
            ax.set_xscale("log")
        if logy and np.all(frame[y].dropna() > 0):
            ax.set_yscale("log")
        ax.set_xlabel(xlabel or x)
        ax.set_ylabel(ylabel or y)
        ax.legend(title=hue, frameon=False)
    return ax
