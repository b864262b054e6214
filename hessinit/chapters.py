"""The computations behind the book's chapters, so that its notebooks only call functions.

Everything here returns tidy pandas frames or matplotlib figures; the notebooks under ``book/``
glue numbers from these frames into their text.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .plots import LAYER_COLORS, style

# --------------------------------------------------------------------------------------------
# The Hessian chain rule, checked on a tiny float64 network
# --------------------------------------------------------------------------------------------


def tiny_problem(activation="relu", n=64, widths=(8, 6), pool=4, seed=0):
    """A tiny float64 network and ``n`` mnist-5k images average-pooled by ``pool`` (28 -> 7).

    Returns ``(model, x, y)``. Every kernel starts Glorot-uniform, biases at zero. The pixels are
    rounded to float32 and stored in float64, so that every code path sees the same inputs.
    """
    from .data import load
    from .models import mlp

    data = load("mnist-5k", n=n, seed=seed)
    side = data.x.shape[1] // pool
    x = data.x[:, : side * pool, : side * pool].reshape(n, side, pool, side, pool).mean((2, 4))
    x = x.astype(np.float32).astype(np.float64)
    model = mlp(
        (side, side),
        data.num_classes,
        widths=widths,
        activation=activation,
        kernel_std=[None] * (len(widths) + 1),
        seed=seed,
        dtype="float64",
    )
    return model, x, data.y


def kron_matrix(X, M):
    """(1/B) sum_i (x_i x_i^T) kron M_i, row-major in the kernel: (p, c) -> p n_out + c."""
    X, M = np.asarray(X, np.float64), np.asarray(M, np.float64)
    B, n_in = X.shape
    n_out = M.shape[-1]
    return np.einsum("bp,bq,bcd->pcqd", X, X, M).reshape(n_in * n_out, n_in * n_out) / B


def _rel(a, b):
    scale = np.abs(b).max()
    return float(np.abs(a - b).max() / scale) if scale > 0 else float(np.abs(a - b).max())


def chain_rule_check(activations=("relu", "tanh", "softplus"), n=64, widths=(8, 6), seed=0):
    """H = G + R, layer by layer, three ways, on :func:`tiny_problem`.

    For each activation and dense kernel W: the autodiff Hessian block H_full
    (:func:`~hessinit.hessian.full_hessian`) and Gauss-Newton block G_full
    (:func:`~hessinit.hessian.full_gauss_newton`), R_full = H_full - G_full; the Kronecker sums
    built from the per-sample blocks of :func:`~hessinit.hessian.layer_curvature`; and the norms
    of :func:`~hessinit.hessian.layer_hessian_norms`. Columns: ``activation, layer, shape, H, G,
    R`` (Frobenius norms of the autodiff matrices), ``H_kron, G_kron, R_kron`` (norms from
    ``layer_hessian_norms``), ``err_H, err_G, err_R`` (max entry-wise difference between the
    autodiff matrix and the Kronecker sum, relative to the largest entry of the autodiff H) and
    ``err_norm`` (relative difference of the two ||H||_F).
    """
    from .hessian import full_gauss_newton, full_hessian, layer_curvature, layer_hessian_norms
    from .models import dense_layers

    rows = []
    for act in activations:
        model, x, y = tiny_problem(act, n=n, widths=widths, seed=seed)
        for layer in dense_layers(model):
            H = full_hessian(model, x, y, layer=layer.name)
            G = full_gauss_newton(model, x, y, layer=layer.name)
            X, A, R = layer_curvature(model, layer.name, x, y)
            norms = layer_hessian_norms(model, layer.name, x, y)
            scale = np.abs(H).max()
            rows.append(
                {
                    "activation": act,
                    "layer": layer.name,
                    "shape": "x".join(str(s) for s in layer.kernel.shape),
                    "H": np.linalg.norm(H),
                    "G": np.linalg.norm(G),
                    "R": np.linalg.norm(H - G),
                    "H_kron": norms.H,
                    "G_kron": norms.G,
                    "R_kron": norms.R,
                    "err_H": np.abs(H - kron_matrix(X, A + R)).max() / scale,
                    "err_G": np.abs(G - kron_matrix(X, A)).max() / scale,
                    "err_R": np.abs((H - G) - kron_matrix(X, R)).max() / scale,
                    "err_norm": abs(norms.H - np.linalg.norm(H)) / np.linalg.norm(H),
                }
            )
    return pd.DataFrame(rows)


def block_norms(activations=("relu", "tanh"), n=64, widths=(8, 6), seed=0):
    """Frobenius norms of every (kernel_k, kernel_l) block of the whole network's H, G and R.

    Columns ``activation, row, col, H, G, R`` with ``row``/``col`` the dense layer names. For ReLU
    the diagonal R blocks vanish, the off-diagonal ones do not.
    """
    from .hessian import full_gauss_newton, full_hessian
    from .models import dense_layers

    rows = []
    for act in activations:
        model, x, y = tiny_problem(act, n=n, widths=widths, seed=seed)
        H = full_hessian(model, x, y)
        G = full_gauss_newton(model, x, y)
        spans, start = {}, 0
        for v in model.trainable_variables:
            size = int(np.prod(v.shape))
            spans[v.path] = slice(start, start + size)
            start += size
        names = [d.name for d in dense_layers(model)]
        kernels = {d.name: spans[d.kernel.path] for d in dense_layers(model)}
        for r in names:
            for c in names:
                h = H[kernels[r], kernels[c]]
                g = G[kernels[r], kernels[c]]
                rows.append(
                    {
                        "activation": act,
                        "row": r,
                        "col": c,
                        "H": np.linalg.norm(h),
                        "G": np.linalg.norm(g),
                        "R": np.linalg.norm(h - g),
                    }
                )
    return pd.DataFrame(rows)


def plot_chain_rule(check):
    """Bar chart of ||G||_F and ||R||_F per layer, one panel per activation (log scale)."""
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
    """Heat maps of log10 ||R block||_F over (layer, layer) pairs, one per activation."""
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


def plot_kron_pattern(activation="relu", n=64, widths=(8, 6), seed=0, rows=6):
    """|H| of dense1 on :func:`tiny_problem`, first ``rows`` input pixels: the Kronecker blocks."""
    from .hessian import full_hessian

    model, x, y = tiny_problem(activation, n=n, widths=widths, seed=seed)
    H = full_hessian(model, x, y, layer="dense1")
    k = rows * widths[0]
    with style():
        fig, ax = plt.subplots(figsize=(4.6, 4.0), layout="constrained")
        image = ax.imshow(np.log10(np.abs(H[:k, :k]) + 1e-12), cmap="magma")
        for b in range(1, rows):
            ax.axhline(b * widths[0] - 0.5, color="white", lw=0.6)
            ax.axvline(b * widths[0] - 0.5, color="white", lw=0.6)
        ax.grid(False)
        ax.set_xlabel("kernel entry (p, c), row-major")
        ax.set_ylabel("kernel entry (p, c), row-major")
        fig.colorbar(image, ax=ax, label="log10 |H entry|")
    return fig


# --------------------------------------------------------------------------------------------
# The original experiment
# --------------------------------------------------------------------------------------------


def dense1_course(frame, layer="dense1"):
    """Per std: ``layer``'s ||H||_F at the first and last checkpoint, its min and max over
    training, and the mini-batch loss at the start and averaged over the last 10% of steps."""
    rows = []
    for sd, part in frame.groupby("sd"):
        h = part[(part["layer"] == layer) & part["H"].notna()].sort_values("step")
        loss = part.drop_duplicates("step").sort_values("step")["loss"].to_numpy()
        tail = loss[-max(1, len(loss) // 10) :]
        rows.append(
            {
                "sd": sd,
                "H_init": h["H"].iloc[0],
                "H_end": h["H"].iloc[-1],
                "H_min": h["H"].min(),
                "H_max": h["H"].max(),
                "loss_init": loss[0],
                "loss_end": float(np.mean(tail)),
            }
        )
    return pd.DataFrame(rows)


def explode_verdict(course):
    """A sentence on whether dense1's Hessian grows ('explodes') at the largest std, from
    :func:`dense1_course`; the numbers come from the frame."""
    big = course.loc[course["sd"].idxmax()]
    small = course.loc[course["sd"].idxmin()]
    grows = big["H_max"] > 10 * small["H_max"]
    swing = big["H_max"] / big["H_min"] if big["H_min"] > 0 else math.inf
    if grows:
        head = "This run agrees: at the largest std dense1's Hessian norm grows beyond ten times"
    else:
        head = (
            "This run does not agree: at the largest std dense1's Hessian norm stays below "
            "ten times"
        )
    return (
        f"{head} its value at the smallest std (sd = {big['sd']:g}: "
        f"{big['H_min']:.3g} to {big['H_max']:.3g} over training, a max/min ratio of {swing:.3g}; "
        f"sd = {small['sd']:g}: {small['H_min']:.3g} to {small['H_max']:.3g})."
    )


# --------------------------------------------------------------------------------------------
# Hessian norm against the std
# --------------------------------------------------------------------------------------------


def read_tables(paths, base="."):
    """Concatenate the CSV tables at ``paths`` (relative to ``base``)."""
    frames = [pd.read_csv(Path(base) / p) for p in paths]
    if not frames:
        raise ValueError("no tables to read: no run of this chapter succeeded")
    return pd.concat(frames, ignore_index=True)


def sweep_summary(frame):
    """Per dataset, std and layer: ||H||_F, ||G||_F, ||R||_F at init and at the last checkpoint,
    with the saturation columns (``p_max``, ``lambda_norm``, ``logit_std``) when present."""
    h = frame[frame["H"].notna()]
    keys = ["dataset", "sd", "layer"]
    first = h.sort_values("step").groupby(keys).first()
    last = h.sort_values("step").groupby(keys).last()
    out = first[["H", "G", "R"]].add_suffix("_init").join(last[["H", "step"]].add_suffix("_end"))
    for col in ("p_max", "lambda_norm", "logit_std"):
        if col in frame:
            out[col] = frame.groupby(keys)[col].first()
    return out.reset_index()


def loglog_slopes(summary, column="H_init", max_sd=0.01):
    """Least-squares slope of log ||H|| against log sd for sd <= ``max_sd``, per dataset and
    layer: 2 means ||H|| grows like sd^2, 0 means it does not depend on sd."""
    rows = []
    part = summary[(summary["sd"] <= max_sd) & (summary[column] > 0)]
    for (dataset, layer), g in part.groupby(["dataset", "layer"]):
        slope = np.polyfit(np.log(g["sd"]), np.log(g[column]), 1)[0] if len(g) > 1 else math.nan
        rows.append({"dataset": dataset, "layer": layer, "slope": slope})
    return pd.DataFrame(rows)


def plot_sweep(summary, column="H_init", ylabel="‖H‖_F at initialization"):
    """``column`` against sd: one curve per layer (colour) and dataset (line style), with the
    softmax's mean largest probability on a second panel."""
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


# --------------------------------------------------------------------------------------------
# Performance: the results of benchmarks/hessian_norms.py
# --------------------------------------------------------------------------------------------

#: The methods of benchmarks/hessian_norms.py that build the whole dense1 Hessian.
MATERIALIZING = ("nested_jacobian", "tf_hessians", "chunked_jacobian", "batched_hvp")


def read_benchmark(results):
    """``(norms, tracking)``: ``hessian_norms.csv`` and ``tracking.csv`` of the directory (or
    URL) ``results`` written by ``benchmarks/hessian_norms.py``."""
    base = str(results).rstrip("/")
    return pd.read_csv(f"{base}/hessian_norms.csv"), pd.read_csv(f"{base}/tracking.csv")


def benchmark_summary(norms, materializing=MATERIALIZING):
    """Per batch size B: the Kronecker time, the fastest materializing method that ran and its
    time, the speedup (its time over the Kronecker time), the largest relative difference of a
    materializing value to the Kronecker value, and the peak memory of both processes over the
    baseline process (``baseline`` row; MB); and, where the ``kronecker_float32`` method ran, its
    time, speedup and relative difference. Methods not ``ok`` at a B are left out."""
    ok = norms[norms["status"] == "ok"]
    base = ok.loc[ok["method"] == "baseline", "peak_mb"]
    base_mb = float(base.iloc[0]) if len(base) else math.nan
    rows = []
    for B, part in ok[ok["B"] > 0].groupby("B"):
        kron = part[part["method"] == "kronecker"]
        mat = part[part["method"].isin(materializing)]
        if kron.empty:
            continue
        k = kron.iloc[0]
        k32 = part[part["method"] == "kronecker_float32"]
        k32_s = k32["seconds"].iloc[0] if len(k32) else math.nan
        row = {"B": int(B), "kronecker_s": k["seconds"], "kronecker_float32_s": k32_s,
               "kronecker_peak_over_baseline_mb": k["peak_mb"] - base_mb}  # fmt: skip
        if mat.empty:
            row.update(fastest=None, fastest_s=math.nan, speedup=math.nan, max_rel_diff=math.nan,
                       fastest_peak_over_baseline_mb=math.nan)  # fmt: skip
        else:
            f = mat.loc[mat["seconds"].idxmin()]
            row.update(
                fastest=f["method"],
                fastest_s=f["seconds"],
                speedup=f["seconds"] / k["seconds"],
                max_rel_diff=mat["rel_diff"].abs().max(),
                fastest_peak_over_baseline_mb=f["peak_mb"] - base_mb,
            )
        row.update(
            speedup_float32=row["fastest_s"] / k32_s,
            float32_rel_diff=abs(k32["rel_diff"].iloc[0]) if len(k32) else math.nan,
        )
        rows.append(row)
    return pd.DataFrame(rows)


def plot_benchmark(norms):
    """Wall seconds against B on log axes, one line per method that ran (status ``ok``)."""
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
