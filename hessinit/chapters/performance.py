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


def aim_word(met) -> str:
    """How the text says whether a speedup reached its aim: "meets" or "falls short of".

    Args:
        met: whether the speedup reached the aim.

    Returns:
        The verb phrase.

    Example:
        >>> aim_word(True), aim_word(False)
        ('meets', 'falls short of')
    """
    return "meets" if met else "falls short of"


def target_word(seconds, limit) -> str:
    """Whether a time is "within" a target (strictly below ``limit`` seconds) or "above" it.

    Args:
        seconds: the measured time; NaN counts as above.
        limit: the target in seconds.

    Returns:
        "within" or "above".

    Example:
        >>> target_word(0.4, 1), target_word(1.0, 1), target_word(float("nan"), 30)
        ('within', 'above', 'above')
    """
    return "within" if seconds < limit else "above"


def cnn_summary(cnn: pd.DataFrame, target: float = 30.0) -> dict:
    """What the text says of the convolutional benchmark (``curvature_cnn.csv``).

    The exact methods are those other than ``hutchinson``, ``materialized`` and ``hvp+gnvp``.
    A Hutchinson interval covers a tensor when the exact ||H||_F of the same (model, tensor)
    lies in [H_low, H_high].

    Args:
        cnn: rows of ``benchmarks/curvature_cnn.py`` (``model``, ``tensor``, ``method``,
            ``status``, ``seconds``, ``H``, ``H_low``, ``H_high``, ``rel_diff``, ``load``,
            ``note``).
        target: seconds the plain ResNet's exact norms should take.

    Returns:
        ``cnn_plain_s``, ``cnn_small_s``, ``cnn_bn_s`` (exact seconds per model, NaN if
        absent), ``cnn_bn_skipped``, ``cnn_skipped`` (exact tensors skipped), ``cnn_target``
        (:func:`target_word` of the plain ResNet's seconds), ``cnn_mat_rel`` (largest relative
        difference to the materialized Hessian), ``cnn_load``, ``cnn_hut_n`` (tensors with an
        exact value and an estimate), ``cnn_hut_cover`` (of those, covered) and ``cnn_probes``.

    Example:
        >>> cnn = pd.DataFrame({
        ...     "model": "small_resnet", "tensor": ["a", "b", "a", "b"],
        ...     "method": ["exact", "exact", "hutchinson", "hutchinson"], "status": "ok",
        ...     "seconds": [10.0, 5.0, 1.0, 1.0], "H": [2.0, 3.0, 2.1, 5.0],
        ...     "H_low": [None, None, 1.9, 4.0], "H_high": [None, None, 2.3, 6.0],
        ...     "rel_diff": None, "load": 1.0, "note": ["", "", "8 probes", "8 probes"]})
        >>> s = cnn_summary(cnn)
        >>> float(s["cnn_plain_s"]), s["cnn_target"], s["cnn_hut_n"], s["cnn_hut_cover"]
        (15.0, 'within', 2, 1)
    """
    exact = cnn[~cnn["method"].isin(["hutchinson", "materialized", "hvp+gnvp"])]
    done = exact[exact["status"] == "ok"]
    per_model = done.groupby("model")["seconds"].sum()
    skipped = exact[exact["status"] == "skipped"]
    mat = cnn[(cnn["method"] == "materialized") & (cnn["status"] == "ok")]
    hut = cnn[(cnn["method"] == "hutchinson") & (cnn["status"] == "ok")]
    hut = hut.set_index(["model", "tensor"])
    truth = done.set_index(["model", "tensor"])["H"].reindex(hut.index)
    known = truth.notna()
    covered = (hut["H_low"] <= truth) & (truth <= hut["H_high"])
    return {
        "cnn_plain_s": per_model.get("small_resnet", float("nan")),
        "cnn_small_s": per_model.get("small_cnn", float("nan")),
        "cnn_bn_s": per_model.get("small_resnet_bn", float("nan")),
        "cnn_bn_skipped": int((skipped["model"] == "small_resnet_bn").sum()),
        "cnn_skipped": int(len(skipped)),
        "cnn_target": target_word(per_model.get("small_resnet", 1e9), target),
        "cnn_mat_rel": mat["rel_diff"].max() if len(mat) else float("nan"),
        "cnn_load": cnn["load"].mean(),
        "cnn_hut_n": int(known.sum()),
        "cnn_hut_cover": int(covered[known].sum()),
        "cnn_probes": cnn.loc[cnn["method"] == "hutchinson", "note"].iloc[0],
    }
