"""The performance chapter: the benchmark's timings and peak memory, read back and drawn.

In the order the page reads: the benchmark CSVs read back (:func:`read_benchmark`), the speedups
of the exact Kronecker computation over the materializing methods (:data:`MATERIALIZING`,
:func:`benchmark_summary`) and the figure (:func:`plot_benchmark`).

Imports: pandas, matplotlib and :mod:`hessinit.study.figures` (the style).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd

from ..study.figures import LAYER_COLORS, style


def read_benchmark(results):
    """The two tables written by ``benchmarks/hessian_norms.py``.

    Args:
        results: the directory (or URL) holding ``hessian_norms.csv`` and ``tracking.csv``.

    Returns:
        ``(norms, tracking)``, two frames.

    Example:
        >>> from pathlib import Path
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     for name in ("hessian_norms.csv", "tracking.csv"):
        ...         pd.DataFrame({"method": ["kronecker"]}).to_csv(Path(tmp) / name, index=False)
        ...     norms, tracking = read_benchmark(tmp)
        >>> len(norms), len(tracking)
        (1, 1)
    """
    base = str(results).rstrip("/")
    return pd.read_csv(f"{base}/hessian_norms.csv"), pd.read_csv(f"{base}/tracking.csv")


#: The methods of benchmarks/hessian_norms.py that build the whole dense1 Hessian.
MATERIALIZING = ("nested_jacobian", "tf_hessians", "chunked_jacobian", "batched_hvp")


def benchmark_summary(norms, materializing=MATERIALIZING):
    """Per batch size B: the Kronecker norm against the fastest method that builds the matrix.

    Methods not ``ok`` at a B are left out. Memory is the peak resident set size of a method's
    process over the ``baseline`` process (MB).

    Args:
        norms: the ``hessian_norms.csv`` table (``method, B, seconds, status, peak_mb,
            rel_diff``).
        materializing: the methods that build the whole matrix.

    Returns:
        One row per B: ``B, kronecker_s, kronecker_float32_s, kronecker_peak_over_baseline_mb,
        fastest`` (the fastest materializing method), ``fastest_s``, ``speedup`` (its time over
        the Kronecker time), ``max_rel_diff`` (largest abs(relative difference) of a materializing
        value to the Kronecker value), ``fastest_peak_over_baseline_mb``, ``speedup_float32``
        and ``float32_rel_diff`` (NaN where ``kronecker_float32`` did not run).

    Example:
        >>> norms = pd.DataFrame({
        ...     "method": ["baseline", "kronecker", "batched_hvp"], "B": [0, 64, 64],
        ...     "seconds": [None, 0.01, 2.0], "status": "ok", "peak_mb": [900.0, 910.0, 1500.0],
        ...     "rel_diff": [None, 0.0, 1e-8]})
        >>> benchmark_summary(norms)[["B", "fastest", "speedup"]].values.tolist()
        [[64, 'batched_hvp', 200.0]]
    """
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
    """Wall seconds against B on log axes, one line per method that ran (status ``ok``).

    Args:
        norms: the ``hessian_norms.csv`` table (:func:`read_benchmark`).

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
