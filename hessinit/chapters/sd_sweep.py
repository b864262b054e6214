"""The sd sweep chapter: the Hessian norm at initialization against the sd, and its slopes.

In the order the page reads: the per-sd run tables read back (:func:`read_tables`), their
summary over seeds (:func:`sweep_summary`), its figure (:func:`plot_sweep`) and the log-log
slopes at small sd (:func:`loglog_slopes`).

Imports: numpy, pandas, matplotlib and :mod:`hessinit.study.figures` (the style).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..study.figures import LAYER_COLORS, style
from ..train import COLUMNS
from ..train.stacked import Run, train_runs


def read_tables(paths, base="."):
    """Concatenate the CSV tables at ``paths``.

    Args:
        paths: file names, relative to ``base``.
        base: the directory they are relative to.

    Returns:
        The tables stacked, with a fresh index.

    Raises:
        ValueError: when ``paths`` is empty (no run of the chapter succeeded).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     pd.DataFrame({"a": [1]}).to_csv(Path(tmp) / "t.csv", index=False)
        ...     read_tables(["t.csv", "t.csv"], base=tmp)
           a
        0  1
        1  1
    """
    frames = [pd.read_csv(Path(base) / p) for p in paths]
    if not frames:
        raise ValueError("no tables to read: no run of this chapter succeeded")
    return pd.concat(frames, ignore_index=True)


def sweep_summary(frame):
    """The norms of every run of the sd sweep at initialization and at the last checkpoint.

    Args:
        frame: stacked rows of :func:`hessinit.train.run` with ``dataset``, ``sd``, ``step``,
            ``layer``, ``H``, ``G``, ``R`` and optionally the saturation columns ``p_max``,
            ``lambda_norm``, ``logit_std``.

    Returns:
        One row per (dataset, sd, layer): ``H_init, G_init, R_init`` (first checkpoint),
        ``H_end, step_end`` (last checkpoint) and the saturation columns present (first value).

    Example:
        >>> frame = pd.DataFrame({"dataset": "d", "sd": 0.1, "step": [0, 5], "layer": "dense1",
        ...                       "H": [2.0, 4.0], "G": [2.0, 4.0], "R": 0.0})
        >>> sweep_summary(frame)[["sd", "H_init", "H_end", "step_end"]].values.tolist()
        [[0.1, 2.0, 4.0, 5.0]]
    """
    h = frame[frame["H"].notna()]
    keys = ["dataset", "sd", "layer"]
    first = h.sort_values("step").groupby(keys).first()
    last = h.sort_values("step").groupby(keys).last()
    out = first[["H", "G", "R"]].add_suffix("_init").join(last[["H", "step"]].add_suffix("_end"))
    for col in ("p_max", "lambda_norm", "logit_std"):
        if col in frame:
            out[col] = frame.groupby(keys)[col].first()
    return out.reset_index()


def plot_sweep(summary, column="H_init", ylabel="‖H‖_F at initialization"):
    """A norm against sd, and the softmax's saturation against sd.

    Left: ``column`` against sd, one curve per layer (colour) and dataset (line style); right,
    where ``p_max`` is present: the mean largest softmax probability.

    Args:
        summary: rows of :func:`hessinit.chapters.sd_sweep.sweep_summary`.
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


def loglog_slopes(summary, column="H_init", max_sd=0.01):
    """The power of sd that ``column`` grows with, per dataset and layer.

    The least-squares slope of log ``column`` against log sd over the settings with
    sd <= ``max_sd`` (and a positive value): 2 means the norm grows like sd^2, 0 that it does
    not depend on sd.

    Args:
        summary: rows of :func:`sweep_summary`.
        column: the norm.
        max_sd: the largest sd fitted.

    Returns:
        One row per (dataset, layer): ``dataset, layer, slope`` (NaN with a single point).

    Example:
        >>> summary = pd.DataFrame({"dataset": "d", "layer": "dense2", "sd": [1e-3, 1e-2, 1.0],
        ...                         "H_init": [1e-6, 1e-4, 0.5]})
        >>> round(float(loglog_slopes(summary)["slope"].iloc[0]), 6)
        2.0
    """
    rows = []
    part = summary[(summary["sd"] <= max_sd) & (summary[column] > 0)]
    for (dataset, layer), g in part.groupby(["dataset", "layer"]):
        slope = np.polyfit(np.log(g["sd"]), np.log(g[column]), 1)[0] if len(g) > 1 else math.nan
        rows.append({"dataset": dataset, "layer": layer, "slope": slope})
    return pd.DataFrame(rows)


def sd_run_tables(images, sds, write_table, **settings) -> list[str]:
    """Train one run per sd and write each table, as the sd runs of the grid do.

    What this chapter does outside the runner (Colab, plain papermill), where no sd run's
    table is given: :func:`hessinit.train.run` of ``images`` at each sd, each written as
    ``sd_run-<sd>.csv``. The runs train as one compiled program
    (:func:`hessinit.train.stacked.train_runs` with its Taylor columns), each equal to
    ``train.run``'s to float rounding.

    Args:
        images: the training data (:func:`hessinit.data.load`).
        sds: the initial sds of dense1's kernel.
        write_table: ``write_table(frame, path)`` -> the path written
            (:func:`hessinit.book.notebook.write_table`).
        **settings: the arguments of :func:`hessinit.train.run` (steps, batch_size, lr,
            hessian_every, hessian_batch, seed, progress), shared by every sd.

    Returns:
        The written paths, as text, in the order of ``sds``.
    """
    settings = dict(settings)
    lr, seed = float(settings.pop("lr", 0.01)), int(settings.pop("seed", 0))
    runs = [Run(seed=seed, sd=float(value), lr=lr) for value in sds]
    frame = train_runs(images, runs, taylor=True, **settings)
    return [
        str(write_table(part[list(COLUMNS)].reset_index(drop=True), f"sd_run-{value:g}.csv"))
        for value, (_, part) in zip(sds, frame.groupby("run", sort=True), strict=True)
    ]
