"""Pure pandas analysis of the experiments' frames: summaries, ratios and intervals.

Imports: numpy, pandas and :mod:`hessinit.study.claims`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd


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


def worst_layer(frame: pd.DataFrame, keys, column: str = "R_over_H") -> pd.DataFrame:
    """The largest ``column`` over the layers of each ``keys`` group, with the layer it occurs in
    (columns ``*keys, column, layer``). Rows with a missing ``column`` are ignored."""
    keys = list(keys)
    part = frame.dropna(subset=[column])
    idx = part.groupby(keys, sort=False)[column].idxmax()
    return part.loc[idx, [*keys, column, "layer"]].reset_index(drop=True)


def ratio_interval(num: pd.Series | dict, den: pd.Series | dict) -> tuple[float, float, float]:
    """``(value, low, high)`` of num/den from two estimates with intervals (``value``, ``low``,
    ``high``): the conservative interval [num.low / den.high, num.high / den.low]."""
    value = num["value"] / den["value"]
    low = num["low"] / den["high"]
    high = num["high"] / den["low"] if den["low"] > 0 else math.inf
    return float(value), float(low), float(high)


def whole_network_ratios(frame: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Whole-network R/H per (activation, sd) from rows of
    :func:`hessinit.study.experiments.whole_network` with ``activation`` and ``sd``: the value, the
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


def taylor_checkpoints(frame: pd.DataFrame) -> pd.DataFrame:
    """The checkpoints of :func:`hessinit.train.run` frames (one row per run and step) with the
    ratios ``ratio_lr = realised / predicted`` (at the run's reference step) and
    ``ratio_star = realised_star / predicted_star`` (at gamma*)."""
    keys = [c for c in ("schedule", "sd", "seed", "step") if c in frame.columns]
    cp = frame.dropna(subset=["gamma_star"]).drop_duplicates(keys).copy()
    cp["ratio_lr"] = cp["realised"] / cp["predicted"]
    cp["ratio_star"] = cp["realised_star"] / cp["predicted_star"]
    return cp.reset_index(drop=True)
