"""Pure pandas analysis of the experiments' frames: summaries, ratios, slopes and intervals.

Nothing here builds a network, draws a figure or states a verdict: the frames come from
:mod:`hessinit.study.experiments` (or the CSV tables the book's runs wrote, read by
:func:`read_tables` and :func:`read_benchmark`), and the rules that turn these numbers into
verdicts are in :mod:`hessinit.study.claims`.

Imports: numpy and pandas only.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

#: The methods of benchmarks/hessian_norms.py that build the whole dense1 Hessian.
MATERIALIZING = ("nested_jacobian", "tf_hessians", "chunked_jacobian", "batched_hvp")


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


def dense1_course(frame, layer="dense1"):
    """How one layer's ||H||_F and the loss move along training, per std.

    Args:
        frame: rows of :func:`hessinit.train.run` (or ``experiment``) with ``sd``, ``step``,
            ``layer``, ``loss`` and ``H`` (NaN between checkpoints).
        layer: the dense layer.

    Returns:
        One row per ``sd``: ``H_init`` and ``H_end`` (||H||_F at the first and last checkpoint),
        ``H_min`` and ``H_max`` (over training), ``loss_init`` (the first mini-batch loss) and
        ``loss_end`` (the mean mini-batch loss over the last 10% of steps, at least one).

    Example:
        >>> frame = pd.DataFrame({"sd": 1.0, "step": [0, 1, 2], "layer": "dense1",
        ...                       "loss": [2.0, 1.5, 1.0], "H": [3.0, None, 5.0]})
        >>> dense1_course(frame).iloc[0].tolist()
        [1.0, 3.0, 5.0, 3.0, 5.0, 2.0, 1.0]
    """
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


def read_benchmark(results):
    """The two tables written by ``benchmarks/hessian_norms.py``.

    Args:
        results: the directory (or URL) holding ``hessian_norms.csv`` and ``tracking.csv``.

    Returns:
        ``(norms, tracking)``, two frames.

    Example:
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


def whole_network_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """Whole-network ||R||_F / ||H||_F and ||G||_F / ||H||_F per (activation, sd), with intervals.

    The intervals are the paired ones of :func:`hessinit.curvature.hutchinson_norms` (the three
    terms from the same probes, delta method), read off the ``R_over_H`` and ``G_over_H`` rows.

    Args:
        frame: rows of :func:`hessinit.study.experiments.whole_network_grid` (``activation``,
            ``sd``, ``term``, ``value``, ``low``, ``high``, ``probes``).

    Returns:
        One row per (activation, sd), in order of appearance: ``activation, sd, R_over_H, low,
        high, G_over_H, G_low, G_high, probes``.

    Example:
        >>> frame = pd.DataFrame({"activation": "relu", "sd": 0.1,
        ...                       "term": ["H", "G", "R", "R_over_H", "G_over_H"],
        ...                       "value": [10.0, 10.0, 1.0, 0.1, 1.0],
        ...                       "low": [8.0, 8.0, 0.5, 0.05, 0.9],
        ...                       "high": [12.0, 12.0, 2.0, 0.2, 1.1], "probes": 30})
        >>> whole_network_ratios(frame).values.tolist()
        [['relu', 0.1, 0.1, 0.05, 0.2, 1.0, 0.9, 1.1, 30]]
    """
    rows = []
    for (activation, sd), g in frame.groupby(["activation", "sd"], sort=False):
        terms = g.set_index("term")
        r, q = terms.loc["R_over_H"], terms.loc["G_over_H"]
        rows.append({"activation": activation, "sd": sd, "R_over_H": r["value"], "low": r["low"],
                     "high": r["high"], "G_over_H": q["value"], "G_low": q["low"],
                     "G_high": q["high"], "probes": int(r["probes"])})  # fmt: skip
    return pd.DataFrame(rows)


def taylor_checkpoints(frame: pd.DataFrame) -> pd.DataFrame:
    """The checkpoints of :func:`hessinit.train.run` frames with the Taylor model's accuracy.

    Along the gradient g, the quadratic model predicts the decrease
    gamma g^T g - gamma^2 g^T H g / 2 of a step gamma. The ratios are realised over predicted
    decrease at the run's reference step (``ratio_lr``) and at gamma* = g^T g / g^T H g
    (``ratio_star``).

    Args:
        frame: stacked runs (one row per run, step and layer) with ``gamma_star``, ``predicted``,
            ``realised``, ``predicted_star`` and ``realised_star``.

    Returns:
        One row per run (``schedule``, ``sd``, ``seed`` where present) and checkpoint, with the
        columns ``ratio_lr`` and ``ratio_star`` added.

    Example:
        >>> frame = pd.DataFrame({"sd": 1.0, "step": [0, 1], "gamma_star": [2.0, None],
        ...                       "predicted": [0.1, None], "realised": [0.09, None],
        ...                       "predicted_star": [1.0, None], "realised_star": [0.5, None]})
        >>> taylor_checkpoints(frame)[["ratio_lr", "ratio_star"]].round(3).values.tolist()
        [[0.9, 0.5]]
    """
    keys = [c for c in ("schedule", "sd", "seed", "step") if c in frame.columns]
    cp = frame.dropna(subset=["gamma_star"]).drop_duplicates(keys).copy()
    cp["ratio_lr"] = cp["realised"] / cp["predicted"]
    cp["ratio_star"] = cp["realised_star"] / cp["predicted_star"]
    return cp.reset_index(drop=True)


# --- original ---


def _checkpoints(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["H"].notna()]


def sd_ratio_course(frame: pd.DataFrame, layer: str = "dense1") -> pd.DataFrame:
    """A layer's ||H||_F at the largest sd over that at the smallest, per seed and checkpoint.

    Args:
        frame: rows of :func:`hessinit.train.run` for at least two sds, with ``seed``.
        layer: the dense layer.

    Returns:
        One row per (seed, step) checkpoint both runs reached: ``ratio`` =
        ||H(sd_max)||_F / ||H(sd_min)||_F.

    Example:
        >>> frame = pd.DataFrame({"sd": [1e-5, 1e-5, 1.0, 1.0], "seed": 0, "step": [0, 10] * 2,
        ...                       "layer": "dense1", "H": [4.0, 4.0, 0.5, 1.0]})
        >>> sd_ratio_course(frame)["ratio"].tolist()
        [0.125, 0.25]
    """
    h = _checkpoints(frame[frame["layer"] == layer])
    big, small = h["sd"].max(), h["sd"].min()
    table = h.pivot_table(index=["seed", "step"], columns="sd", values="H")
    out = (table[big] / table[small]).dropna().rename("ratio").reset_index()
    return out


def seed_extremes(course: pd.DataFrame, column: str = "ratio") -> pd.DataFrame:
    """The smallest and largest ``column`` over the checkpoints, per seed.

    Args:
        course: rows with ``seed`` and ``column`` (e.g. :func:`sd_ratio_course`).
        column: the measured column.

    Returns:
        One row per seed: ``low`` and ``high``.

    Example:
        >>> course = pd.DataFrame({"seed": [0, 0, 1], "ratio": [0.1, 0.3, 0.2]})
        >>> seed_extremes(course).values.tolist()
        [[0.0, 0.1, 0.3], [1.0, 0.2, 0.2]]
    """
    g = course.groupby("seed")[column]
    return pd.DataFrame({"low": g.min(), "high": g.max()}).reset_index()


def peak_swing(frame: pd.DataFrame, sd: float) -> pd.DataFrame:
    """How high each layer's ||H||_F goes at one sd, and how far it swings, per seed.

    Args:
        frame: rows of :func:`hessinit.train.run` with ``seed``.
        sd: the sd of the runs.

    Returns:
        One row per (layer, seed): ``peak`` (the largest ||H||_F over the checkpoints),
        ``trough`` (the smallest after the peak) and ``swing`` = peak / trough.

    Example:
        >>> frame = pd.DataFrame({"sd": 1.0, "seed": 0, "layer": "dense2",
        ...                       "step": [0, 10, 20, 30], "H": [30.0, 120.0, 1.0, 50.0]})
        >>> peak_swing(frame, 1.0)[["peak", "trough", "swing"]].values.tolist()
        [[120.0, 1.0, 120.0]]
    """
    h = _checkpoints(frame[np.isclose(frame["sd"], sd)]).sort_values("step")
    rows = []
    for (layer, seed), part in h.groupby(["layer", "seed"], sort=True):
        values = part["H"].to_numpy()
        at = int(np.argmax(values))
        trough = float(values[at:].min())
        rows.append({"layer": layer, "seed": seed, "peak": float(values[at]), "trough": trough,
                     "swing": float(values[at]) / trough if trough > 0 else math.inf})  # fmt: skip
    return pd.DataFrame(rows)


def loss_gains(frame: pd.DataFrame, early: float = 0.1) -> pd.DataFrame:
    """What training gained, per sd and seed, on the fixed Hessian batch.

    Args:
        frame: rows of :func:`hessinit.train.run` with ``seed`` and ``hessian_loss``.
        early: the share of the steps that counts as the start of training.

    Returns:
        One row per (sd, seed): ``loss_init`` and ``loss_end`` (the Hessian-batch loss at the
        first and last checkpoint), ``gain`` = loss_init - loss_end, ``early_step`` (the first
        checkpoint at or after ``early`` times the last step) and ``early_gain`` (loss_init
        minus the loss there).

    Example:
        >>> frame = pd.DataFrame({"sd": 1.0, "seed": 0, "step": [0, 10, 20, 100],
        ...                       "layer": "dense1", "H": 1.0,
        ...                       "hessian_loss": [2.5, 2.25, 2.0, 1.5]})
        >>> loss_gains(frame).iloc[0][["gain", "early_step", "early_gain"]].tolist()
        [1.0, 10.0, 0.25]
    """
    h = _checkpoints(frame).drop_duplicates(["sd", "seed", "step"]).sort_values("step")
    rows = []
    for (sd, seed), part in h.groupby(["sd", "seed"], sort=True):
        loss, steps = part["hessian_loss"].to_numpy(), part["step"].to_numpy()
        at = int(np.argmax(steps >= early * steps[-1]))
        rows.append({"sd": sd, "seed": seed, "loss_init": float(loss[0]),
                     "loss_end": float(loss[-1]), "gain": float(loss[0] - loss[-1]),
                     "early_step": float(steps[at]),
                     "early_gain": float(loss[0] - loss[at])})  # fmt: skip
    return pd.DataFrame(rows)


# --- dominance ---


#: Below this mean ||Lambda_i||_F the softmax is saturated (one-hot to float32 precision), the
#: Hessian is ~0 and a ratio of its terms is noise, so such a setting is flagged, not judged.
SATURATED_LAMBDA = 1e-6


def init_intervals(frame: pd.DataFrame, saturated: float = SATURATED_LAMBDA) -> pd.DataFrame:
    """Worst layer's ||R||/||H|| (and its ||G||/||H||) per setting: mean over seeds, 95% interval.

    Per seed the worst layer is the one with the largest ``R_over_H``; its ratios are averaged
    over the seeds with :func:`hessinit.study.stats.mean_interval` (Student t). A seed is
    *saturated* when the softmax's mean ||Lambda_i||_F is below ``saturated`` or a ratio is not
    finite (H ~ 0); a setting keeps its saturated seeds' count in ``saturated`` and is averaged
    over the others only (all NaN when every seed saturates).

    Args:
        frame: rows of :func:`hessinit.study.experiments.init_seeds`.
        saturated: the threshold on ``lambda_norm``.

    Returns:
        One row per (activation, init, scaling, sd), in order of appearance: ``R_over_H, low,
        high, G_over_H, G_low, G_high, seeds`` (the unsaturated seeds) and ``saturated``.

    Example:
        >>> frame = pd.DataFrame({"activation": "tanh", "init": "lecun", "scaling": "all",
        ...                       "sd": float("nan"), "seed": [0, 0, 1, 1, 2, 2],
        ...                       "layer": ["d1", "d2"] * 3, "lambda_norm": 0.3,
        ...                       "R_over_H": [0.1, 0.3, 0.2, 0.1, 0.4, 0.0],
        ...                       "G_over_H": [1.0, 0.9, 0.9, 1.0, 0.8, 1.0]})
        >>> row = init_intervals(frame).iloc[0]
        >>> round(float(row["R_over_H"]), 3), round(float(row["G_over_H"]), 3), int(row["seeds"])
        (0.3, 0.867, 3)
    """
    keys = ["activation", "init", "scaling", "sd"]
    rows = []
    for key, part in frame.groupby(keys, sort=False, dropna=False):
        sat = (part["lambda_norm"] < saturated) | ~np.isfinite(part["R_over_H"])
        bad_seeds = set(part.loc[sat, "seed"])
        good = part[~part["seed"].isin(bad_seeds)]
        row = dict(zip(keys, key, strict=True))
        row.update(R_over_H=np.nan, low=np.nan, high=np.nan, G_over_H=np.nan, G_low=np.nan,
                   G_high=np.nan, seeds=0, saturated=len(bad_seeds))  # fmt: skip
        if len(good):
            from . import stats  # the study layer's intervals (Student t over seeds)

            worst = good.loc[good.groupby("seed")["R_over_H"].idxmax()]
            r = stats.mean_interval(worst["R_over_H"])
            g = stats.mean_interval(worst["G_over_H"])
            row.update(R_over_H=r.value, low=r.low, high=r.high, G_over_H=g.value, G_low=g.low,
                       G_high=g.high, seeds=r.n)  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def training_end(frame: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per (activation, seed): the loss and the worst layer's ratios at the last checkpoint.

    Args:
        frame: rows of :func:`hessinit.study.experiments.training_seeds` (``activation``,
            ``seed``, ``step``, ``layer``, ``H``, ``hessian_loss``, ``R_over_H``, ``G_over_H``).
        target: the loss on the Hessian batch the run must reach.

    Returns:
        One row per (activation, seed): ``step, loss, R_over_H, G_over_H, layer`` (of the worst
        layer at the last checkpoint), ``start`` (the worst layer's ``R_over_H`` at step 0) and
        ``reached`` (``loss <= target``).

    Example:
        >>> frame = pd.DataFrame({"activation": "tanh", "seed": 0, "step": [0, 0, 9, 9],
        ...                       "layer": ["d1", "d2"] * 2, "H": 1.0,
        ...                       "hessian_loss": [2.3, 2.3, 0.05, 0.05],
        ...                       "R_over_H": [0.4, 0.6, 0.2, 0.1], "G_over_H": 1.0})
        >>> training_end(frame, 0.1)[["loss", "R_over_H", "start", "reached"]].values.tolist()
        [[0.05, 0.2, 0.6, True]]
    """
    rows = []
    cps = frame.dropna(subset=["H"])
    for (activation, seed), part in cps.groupby(["activation", "seed"], sort=False):
        last = part[part["step"] == part["step"].max()]
        worst = last.loc[last["R_over_H"].idxmax()]
        first = part[part["step"] == part["step"].min()]["R_over_H"].max()
        loss = float(last["hessian_loss"].iloc[0])
        rows.append({"activation": activation, "seed": seed, "step": int(worst["step"]),
                     "loss": loss, "R_over_H": worst["R_over_H"],
                     "G_over_H": worst["G_over_H"], "layer": worst["layer"], "start": first,
                     "reached": bool(loss <= target)})  # fmt: skip
    return pd.DataFrame(rows)


def training_intervals(end: pd.DataFrame) -> pd.DataFrame:
    """Per activation, the final worst-layer ratios over the seeds that reached the target loss.

    Args:
        end: rows of :func:`training_end`.

    Returns:
        Indexed by ``activation`` (order of appearance): ``R_over_H, low, high`` and ``G_over_H,
        G_low, G_high`` (means over the seeds with ``reached``, Student-t 95% intervals;
        NaN when no seed reached it), ``seeds`` (that count), ``runs`` and ``loss_min``, the
        lowest final loss of any run.

    Example:
        >>> end = pd.DataFrame({"activation": "tanh", "seed": [0, 1, 2], "loss": 0.05,
        ...                     "R_over_H": [0.1, 0.2, 0.3], "G_over_H": 1.0,
        ...                     "reached": [True, True, False]})
        >>> row = training_intervals(end).loc["tanh"]
        >>> round(float(row["R_over_H"]), 3), int(row["seeds"]), int(row["runs"])
        (0.15, 2, 3)
    """
    from . import stats  # the study layer's intervals (Student t over seeds)

    rows = []
    for activation, part in end.groupby("activation", sort=False):
        ok = part[part["reached"]]
        row = {"activation": activation, "R_over_H": np.nan, "low": np.nan, "high": np.nan,
               "G_over_H": np.nan, "G_low": np.nan, "G_high": np.nan, "seeds": len(ok),
               "runs": len(part), "loss_min": float(part["loss"].min())}  # fmt: skip
        if len(ok):
            r, g = stats.mean_interval(ok["R_over_H"]), stats.mean_interval(ok["G_over_H"])
            row.update(R_over_H=r.value, low=r.low, high=r.high, G_over_H=g.value, G_low=g.low,
                       G_high=g.high)  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows).set_index("activation")


# --- init_schemes ---


def root_summary(roots: pd.DataFrame) -> pd.DataFrame:
    """Per setting: the depth-stable c* over seeds with a 95% interval, and the layers' spread.

    The interval is Student t on log c* over the seeds that found a root
    (:func:`hessinit.study.stats.mean_interval`), mapped back by exp: ``c`` is the geometric
    mean of c*. The within-network spread of a seed is max_l h_l / min_l h_l in its deepest
    network at its c*.

    Args:
        roots: rows of :func:`hessinit.study.experiments.stable_roots`.

    Returns:
        One row per ``label`` (in order): ``activation``, ``dropout``, ``c``, ``low``, ``high``,
        ``seeds`` (with a root), ``tried`` (seeds run), ``c_lo`` and ``c_hi`` (the widest
        bracket searched), ``spread`` (geometric mean over seeds) and ``spread_max``.

    Example:
        >>> roots = pd.DataFrame({"label": "relu", "activation": "relu", "dropout": 0.0,
        ...     "seed": [0, 0, 1, 1], "c_star": [2.0, 2.0, 2.0, 2.0], "bracketed": True,
        ...     "c_lo": 1.0, "c_hi": 4.0, "depth": 3, "layer": [1, 2, 1, 2],
        ...     "H_norm": [1.0, 2.0, 1.0, 4.0]})
        >>> root_summary(roots)[["c", "low", "high", "spread_max"]].values.tolist()
        [[2.0, 2.0, 2.0, 4.0]]
    """
    from . import stats  # the study layer's intervals (Student t over seeds)

    rows = []
    for label, part in roots.groupby("label", sort=False):
        per_seed = part.groupby("seed").first()
        ok = per_seed[per_seed["bracketed"].astype(bool)]
        row = {"label": label, "activation": part["activation"].iloc[0],
               "dropout": float(part["dropout"].iloc[0]), "c": math.nan, "low": math.nan,
               "high": math.nan, "seeds": len(ok), "tried": len(per_seed),
               "c_lo": per_seed["c_lo"].min(), "c_hi": per_seed["c_hi"].max(),
               "spread": math.nan, "spread_max": math.nan}  # fmt: skip
        if len(ok):
            est = stats.mean_interval(np.log(ok["c_star"].to_numpy(float)))
            row.update(c=math.exp(est.value), low=math.exp(est.low), high=math.exp(est.high))
            good = part[part["seed"].isin(ok.index)]
            deep = good[good["depth"] == good["depth"].max()]
            spread = deep.groupby("seed")["H_norm"].agg(lambda h: h.max() / h.min())
            row.update(spread=float(np.exp(np.log(spread).mean())), spread_max=spread.max())
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences(final: pd.DataFrame, challenger: str = "hessian",
                       columns=("test_accuracy", "test_loss")) -> pd.DataFrame:  # fmt: skip
    """The challenger's final score minus each rival's, paired by seed, with 95% t-intervals.

    For rival r and score s, d_k = s_k(challenger) - s_k(r) over the seeds k both ran, and the
    interval is :func:`hessinit.study.stats.paired_difference` (Student t on the d_k).

    Args:
        final: one row per (``init``, ``seed``) with the score ``columns`` (e.g. the ``final``
            frame of :func:`hessinit.study.experiments.tuned_fits`).
        challenger: the ``init`` compared with every other.
        columns: the scores.

    Returns:
        One row per (rival, score): ``rival``, ``score``, ``value``, ``low``, ``high``,
        ``seeds``.

    Example:
        >>> final = pd.DataFrame({"init": ["he", "hessian"] * 3, "seed": [0, 0, 1, 1, 2, 2],
        ...                       "test_accuracy": [0.90, 0.91, 0.90, 0.92, 0.90, 0.93]})
        >>> paired_differences(final, columns=["test_accuracy"]).round(4).values.tolist()
        [['he', 'test_accuracy', 0.02, -0.0048, 0.0448, 3]]
    """
    from . import stats  # the study layer's intervals (Student t over seeds)

    rows = []
    for score in columns:
        wide = final.pivot_table(index="seed", columns="init", values=score)
        for rival in [c for c in wide.columns if c != challenger]:
            both = wide[[challenger, rival]].dropna()
            est = stats.paired_difference(both[challenger], both[rival])
            rows.append({"rival": rival, "score": score, "value": est.value, "low": est.low,
                         "high": est.high, "seeds": est.n})  # fmt: skip
    return pd.DataFrame(rows)


# --- step_size ---


def model_errors(cp: pd.DataFrame) -> pd.DataFrame:
    """Per checkpoint, the relative errors of the first- and second-order models of a step.

    Along -g, the linear model predicts the decrease gamma g^T g of a step gamma and the
    quadratic one gamma g^T g - gamma^2 g^T H g / 2; against the realised decrease r, the
    absolute relative error is abs(prediction - r) / abs(r). At the run's step ``lr`` (``err_lin``,
    ``err_quad``) and at gamma* = g^T g / g^T H g (``err_lin_star``, ``err_quad_star``; there
    the linear model predicts gamma* g^T g, twice the quadratic one). ``gain`` and
    ``gain_star`` are linear minus quadratic error (positive: the second-order term helps);
    ``quad_share`` = lr g^T H g / (2 g^T g) = lr / (2 gamma*) is the size of the second-order
    term relative to the first-order one at ``lr``.

    Args:
        cp: checkpoint rows of :func:`hessinit.train.run` (via
            :func:`taylor_checkpoints`), with ``lr``, ``grad_norm``, ``gHg``, ``gamma_star``,
            ``predicted``, ``realised``, ``predicted_star`` and ``realised_star``.

    Returns:
        ``cp`` with the columns above added.

    Example:
        >>> cp = pd.DataFrame({"lr": [0.1], "grad_norm": 1.0, "gHg": 2.0, "gamma_star": 0.5,
        ...                    "predicted": 0.09, "realised": 0.09, "predicted_star": 0.25,
        ...                    "realised_star": 0.2})
        >>> out = model_errors(cp)
        >>> out[["err_lin", "err_quad", "err_lin_star", "err_quad_star", "quad_share"]].round(3)
        ... # doctest: +NORMALIZE_WHITESPACE
           err_lin  err_quad  err_lin_star  err_quad_star  quad_share
        0    0.111       0.0           1.5           0.25         0.1
    """
    out = cp.copy()
    gg = out["grad_norm"] ** 2
    real, real_star = out["realised"].abs(), out["realised_star"].abs()
    out["err_lin"] = (out["lr"] * gg - out["realised"]).abs() / real
    out["err_quad"] = (out["predicted"] - out["realised"]).abs() / real
    out["err_lin_star"] = (out["gamma_star"] * gg - out["realised_star"]).abs() / real_star
    out["err_quad_star"] = (out["predicted_star"] - out["realised_star"]).abs() / real_star
    out["gain"] = out["err_lin"] - out["err_quad"]
    out["gain_star"] = out["err_lin_star"] - out["err_quad_star"]
    out["quad_share"] = out["lr"] * out["gHg"] / (2 * gg)
    return out


def seed_means(frame: pd.DataFrame, columns, keys=("sd", "seed")) -> pd.DataFrame:
    """The mean of ``columns`` over the rows of each (sd, seed): one value per independent run.

    Args:
        frame: rows with ``keys`` and ``columns``.
        columns: the columns to average (NaN rows skipped).
        keys: the grouping columns.

    Returns:
        One row per key, the keys as columns.

    Example:
        >>> frame = pd.DataFrame({"sd": 1.0, "seed": [0, 0, 1], "gain": [1.0, 3.0, 5.0]})
        >>> seed_means(frame, ["gain"]).values.tolist()
        [[1.0, 0.0, 2.0], [1.0, 1.0, 5.0]]
    """
    return frame.groupby(list(keys))[list(columns)].mean().reset_index()


def final_eval(frame: pd.DataFrame) -> pd.DataFrame:
    """The last evaluation of every run of :func:`hessinit.study.experiments.sgd_grid`.

    Args:
        frame: rows with ``init, seed, schedule, lr, step, eval_loss``.

    Returns:
        One row per (init, seed, schedule): ``final_loss`` (NaN: diverged) and ``diverged``.

    Example:
        >>> frame = pd.DataFrame({"init": 1.0, "seed": 0, "schedule": "a", "lr": 0.1,
        ...                       "step": [0, 5], "eval_loss": [2.3, float("nan")]})
        >>> final_eval(frame)[["final_loss", "diverged"]].values.tolist()
        [[nan, True]]
    """
    last = frame.sort_values("step").groupby(["init", "seed", "schedule"], sort=False).tail(1)
    last = last.rename(columns={"eval_loss": "final_loss"}).drop(columns="step")
    last["diverged"] = ~np.isfinite(last["final_loss"])
    return last.sort_index().reset_index(drop=True)


def best_fixed(final: pd.DataFrame, fixed) -> pd.DataFrame:
    """Per initialization, the fixed schedule with the lowest mean final loss over seeds.

    A diverged run's loss counts as +inf, so a schedule that diverged on any seed is chosen
    only when every schedule did.

    Args:
        final: rows of :func:`final_eval`.
        fixed: the names of the fixed-step schedules to choose from.

    Returns:
        One row per ``init``: ``best`` (the schedule), ``lr``, ``mean_loss``.

    Example:
        >>> final = pd.DataFrame({"init": 1.0, "seed": [0, 0, 1, 1], "schedule": ["a", "b"] * 2,
        ...                       "lr": [0.1, 1.0] * 2,
        ...                       "final_loss": [0.5, 0.3, 0.6, float("nan")]})
        >>> best_fixed(final, ["a", "b"]).values.tolist()
        [[1.0, 'a', 0.1, 0.55]]
    """
    part = final[final["schedule"].isin(list(fixed))].copy()
    part["score"] = part["final_loss"].fillna(np.inf)
    means = part.groupby(["init", "schedule"], sort=False).agg(
        mean_loss=("score", "mean"), lr=("lr", "first")
    )
    best = means.loc[means.groupby(level="init", sort=False)["mean_loss"].idxmin()]
    best = best.reset_index().rename(columns={"schedule": "best"})
    return best[["init", "best", "lr", "mean_loss"]]


def against_best(final: pd.DataFrame, best: pd.DataFrame, challengers) -> pd.DataFrame:
    """Per seed, a challenger's final loss minus that of the initialization's best fixed step.

    Args:
        final: rows of :func:`final_eval`.
        best: rows of :func:`best_fixed`.
        challengers: the schedules compared with the best fixed one.

    Returns:
        One row per (init, challenger, seed): ``challenger``, ``best``, ``diff`` (NaN where
        either run diverged), ``challenger_diverged``, ``best_diverged``.

    Example:
        >>> final = pd.DataFrame({"init": 1.0, "seed": [0, 0], "schedule": ["a", "t"],
        ...                       "final_loss": [0.5, 0.4], "diverged": False})
        >>> best = pd.DataFrame({"init": [1.0], "best": ["a"]})
        >>> against_best(final, best, ["t"])[["challenger", "diff"]].round(3).values.tolist()
        [['t', -0.1]]
    """
    wide = final.pivot_table(index=["init", "seed"], columns="schedule", values="final_loss",
                             dropna=False)  # fmt: skip
    rows = []
    for (init, seed), losses in wide.iterrows():
        ref = best.set_index("init").loc[init, "best"]
        for name in challengers:
            rows.append({"init": init, "challenger": name, "seed": seed, "best": ref,
                         "diff": losses[name] - losses[ref],
                         "challenger_diverged": not np.isfinite(losses[name]),
                         "best_diverged": not np.isfinite(losses[ref])})  # fmt: skip
    return pd.DataFrame(rows)


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


def stability_outcomes(grid: pd.DataFrame, spectra: pd.DataFrame, fixed) -> pd.DataFrame:
    """Each fixed-step run of the grid against the stability bound 2 / lambda_max at its start.

    A run is *unstable* when it diverged or its final loss is not below its initial loss; the
    bound *predicts* it unstable when lr > 2 / lambda_max of the whole network's Hessian at
    initialization, measured on the run's own evaluation batch and initial weights (the same
    draws as :func:`hessinit.study.experiments.sgd_grid`).

    Args:
        grid: rows of :func:`hessinit.study.experiments.sgd_grid` (``init`` holds the sd).
        spectra: the step-0 rows of :func:`hessinit.train.run` with ``spectra=True`` per sd and
            seed (``sd``, ``seed``, ``lambda_max_network``).
        fixed: the names of the fixed-step schedules.

    Returns:
        One row per (sd, seed, schedule): ``sd, seed, schedule, lr, lambda_max, bound,
        lr_over_bound, initial_loss, final_loss, diverged, unstable, predicted, agree``.

    Example:
        >>> grid = pd.DataFrame({"init": 1.0, "seed": 0, "schedule": ["a", "a", "b", "b"],
        ...                      "lr": [0.1, 0.1, 1.0, 1.0], "step": [0, 9, 0, 9],
        ...                      "eval_loss": [2.3, 1.0, 2.3, float("nan")]})
        >>> spectra = pd.DataFrame({"sd": [1.0], "seed": [0], "lambda_max_network": [4.0]})
        >>> out = stability_outcomes(grid, spectra, ["a", "b"])
        >>> out[["lr", "bound", "unstable", "predicted", "agree"]].values.tolist()
        [[0.1, 0.5, False, False, True], [1.0, 0.5, True, True, True]]
    """
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
    out["diverged"] = ~np.isfinite(out["final_loss"])
    out["unstable"] = out["diverged"] | ~(out["final_loss"] < out["initial_loss"])
    out["predicted"] = out["lr"] > out["bound"]
    out["agree"] = out["unstable"] == out["predicted"]
    columns = ["sd", "seed", "schedule", "lr", "lambda_max", "bound", "lr_over_bound",
               "initial_loss", "final_loss", "diverged", "unstable", "predicted",
               "agree"]  # fmt: skip
    return out[columns].sort_values(["sd", "seed", "lr"]).reset_index(drop=True)


# --- diagnostic ---


def deviation(diag: pd.DataFrame, fan_ins: dict, level: float) -> pd.Series:
    """Distance of the layers' normalized Hessian norms from a level, in decades, summed.

    ``sum_l abs(log10(||H_l||_F / n_in,l / level))``, zero when every layer sits at the level (the
    paper's principle, "controlling the norm of the layers' Hessians", read as keeping each
    near one data-given level such as :func:`hessinit.init.reference_level`).

    Args:
        diag: rows with ``H_<layer>`` columns.
        fan_ins: layer name -> n_in.
        level: the level.

    Returns:
        One value per row.

    Example:
        >>> diag = pd.DataFrame({"H_dense1": [10.0], "H_dense2": [0.1]})
        >>> deviation(diag, {"dense1": 10, "dense2": 1}, 1.0).tolist()
        [1.0]
    """
    total = 0.0
    for name, n_in in fan_ins.items():
        total = total + np.abs(np.log10(diag[f"H_{name}"] / n_in / level))
    return total


def outcomes(final: pd.DataFrame, fixed_lr: str, tuned) -> pd.DataFrame:
    """Per (init, seed), the final loss at one fixed step and at the initialization's tuned step.

    The tuned step is, per initialization, the schedule of ``tuned`` with the lowest mean final
    loss over seeds (:func:`best_fixed`; a diverged run counts +inf).

    Args:
        final: rows of :func:`final_eval`.
        fixed_lr: the schedule of the untuned outcome.
        tuned: the schedules the tuned step is chosen from.

    Returns:
        One row per (init, seed): ``loss_fixed``, ``loss_tuned``, ``tuned_lr``.

    Example:
        >>> final = pd.DataFrame({"init": "a", "seed": [0, 0, 1, 1], "schedule": ["x", "y"] * 2,
        ...                       "lr": [0.01, 0.1] * 2, "final_loss": [1.0, 0.5, 1.2, 0.4]})
        >>> outcomes(final, "x", ["x", "y"]).values.tolist()
        [['a', 0, 1.0, 0.5, 0.1], ['a', 1, 1.2, 0.4, 0.1]]
    """
    best = best_fixed(final, tuned).set_index("init")
    wide = final.pivot_table(index=["init", "seed"], columns="schedule", values="final_loss",
                             dropna=False, sort=False)  # fmt: skip
    rows = []
    for (init, seed), losses in wide.iterrows():
        rows.append({"init": init, "seed": seed, "loss_fixed": losses[fixed_lr],
                     "loss_tuned": losses[best.loc[init, "best"]],
                     "tuned_lr": best.loc[init, "lr"]})  # fmt: skip
    return pd.DataFrame(rows)


def _ranks(values) -> np.ndarray:
    return pd.Series(values).rank().to_numpy()


def _spearman(x, y) -> float:
    rx, ry = _ranks(x), _ranks(y)
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def rank_correlations(table: pd.DataFrame, predictors, outcomes, unit: str = "seed",
                      n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Spearman's rho of every predictor with every outcome, with a bootstrap over ``unit``.

    rho is the Pearson correlation of the ranks (ties averaged); its 95% interval is the
    percentile interval of rho over ``n_boot`` resamples of the units (all rows of a seed
    together, :func:`hessinit.study.stats.spearman_interval`'s clustered bootstrap). Rows with a
    non-finite predictor or outcome (a diverged run) are dropped.

    Args:
        table: one row per (setting, unit).
        predictors: the predictor columns.
        outcomes: the outcome columns.
        unit: the column of the independent unit.
        n_boot: bootstrap resamples.
        seed: seed of the resampling.

    Returns:
        One row per (predictor, outcome): ``rho, low, high, n`` (units), ``rows``.

    Example:
        >>> table = pd.DataFrame({"x": [1, 2, 3] * 2, "y": [1, 2, 3, 2, 3, 4],
        ...                       "seed": [0] * 3 + [1] * 3})
        >>> rank_correlations(table, ["x"], ["y"])[["rho", "n"]].round(3).values.tolist()
        [[0.862, 2.0]]
    """
    from .stats import spearman_interval

    rows = []
    for outcome in outcomes:
        for predictor in predictors:
            e = spearman_interval(table[predictor], table[outcome], table[unit], n_boot=n_boot,
                                  seed=seed)  # fmt: skip
            keep = np.isfinite(table[predictor]) & np.isfinite(table[outcome])
            rows.append({"predictor": predictor, "outcome": outcome, "rho": e.value,
                         "low": e.low, "high": e.high, "n": e.n,
                         "rows": int(keep.sum())})  # fmt: skip
    return pd.DataFrame(rows)


def rank_gap(table: pd.DataFrame, a: str, b: str, outcome: str, unit: str = "seed",
             n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:  # fmt: skip
    """abs(rho(a, outcome)) - abs(rho(b, outcome)) with a paired clustered bootstrap interval.

    Both correlations are computed on the same resample of units in every bootstrap draw, so the
    interval is that of the difference itself (the two estimates share their noise).

    Args:
        table: one row per (setting, unit).
        a: the challenger predictor's column.
        b: the rival predictor's column.
        outcome: the outcome column.
        unit: the column of the independent unit.
        n_boot: bootstrap resamples.
        seed: seed of the resampling.

    Returns:
        ``(gap, low, high)``, the 95% percentile interval.

    Example:
        >>> table = pd.DataFrame({"a": [1, 2, 3] * 2, "b": [3, 1, 2] * 2, "y": [1, 2, 3] * 2,
        ...                       "seed": [0] * 3 + [1] * 3})
        >>> [round(v, 6) for v in rank_gap(table, "a", "b", "y")]  # |1| - |-0.5| in every resample
        [0.5, 0.5, 0.5]
    """
    part = table[np.isfinite(table[a]) & np.isfinite(table[b]) & np.isfinite(table[outcome])]
    gap = abs(_spearman(part[a], part[outcome])) - abs(_spearman(part[b], part[outcome]))
    groups = [g.index.to_numpy() for _, g in part.groupby(unit)]
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = np.concatenate([groups[k] for k in rng.integers(0, len(groups), len(groups))])
        sample = part.loc[idx]
        d = abs(_spearman(sample[a], sample[outcome])) - abs(_spearman(sample[b], sample[outcome]))
        if math.isfinite(d):
            boots.append(d)
    if len(groups) < 2 or not boots:
        return float(gap), -2.0, 2.0
    low, high = np.quantile(boots, [0.025, 0.975])
    return float(gap), float(min(low, gap)), float(max(high, gap))
