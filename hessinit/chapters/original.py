"""The original experiment's chapter: the paper's training runs per sd, and claims 0.1 and 0.2.

In the order the page reads: the runs over seeds and sds (:func:`original_runs`), the per-seed
course of ||R|| / ||H|| and its extremes (:func:`sd_ratio_course`, :func:`seed_extremes`), the
swing of the Hessian norm around its peak (:func:`peak_swing`) and the rule of claim 0.1 on the
authors' words (:func:`original_explode_rows`); the early loss gains
(:func:`loss_gains`) and per-layer gradients (:func:`layer_gradients`) behind claim 0.2
(:func:`original_slow_rows`; the words of both come from the claims table); the dense1
course of the repeated-batch run (:func:`dense1_course`).

Imports: numpy, pandas, the core (:mod:`hessinit.nn`, :mod:`hessinit.train`) and the shared
study layer (:mod:`hessinit.study.claims`, :mod:`hessinit.study.stats`,
:mod:`hessinit.study.sweep`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..nn import dense_layers, mean_loss, mlp
from ..study.claimdata import claims_yml, frame_rows, ledger_row
from ..study.claims import (
    FAILS,
    HOLDS,
    NOT_TESTED,
    claims_table,
    compare_interval,
    interval_verdict,
    verdict,
)
from ..study.stats import mean_interval, ratio_of_means
from ..study.sweep import sweep
from ..train import COLUMNS
from ..train.stacked import Run, train_runs


def original_runs(data, sds, seeds, lr=0.01, **kwargs) -> pd.DataFrame:
    """The original experiment (:func:`hessinit.train.run` per sd) repeated over seeds.

    All runs train as one compiled program (:func:`hessinit.train.stacked.train_runs`, with
    its Taylor columns), each equal to ``hessinit.train.run(data, sd, seed=seed, ...)`` to
    float rounding.

    Args:
        data: the dataset record.
        sds: the sds of dense1's initial kernel.
        seeds: the seeds; each gives new weights, a new Hessian batch and new mini-batches.
        lr: the SGD step size, shared by every run.
        **kwargs: the other arguments of :func:`hessinit.train.stacked.train_runs` (those of
            :func:`hessinit.train.run` for an MLP), shared by every run.

    Returns:
        The rows of the runs, in the order seed, sd (columns as
        :data:`hessinit.train.COLUMNS`).

    Example:
        >>> from hessinit.data import Dataset
        >>> rng = np.random.default_rng(0)
        >>> data = Dataset(rng.random((32, 4, 4), np.float32), rng.integers(0, 3, 32),
        ...                "tiny", 3, (4, 4), "random")
        >>> frame = original_runs(data, [0.1, 1.0], [0, 1], widths=(5,), steps=0,
        ...                       hessian_batch=16, layers=["dense1"], progress=False)
        >>> frame[["seed", "sd"]].values.tolist()
        [[0.0, 0.1], [0.0, 1.0], [1.0, 0.1], [1.0, 1.0]]
    """
    runs = [Run(seed=int(seed), sd=float(sd), lr=float(lr)) for seed in seeds for sd in sds]
    frame = train_runs(data, runs, taylor=True, **kwargs)
    return frame[list(COLUMNS)]


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
    """How big each layer's ||H||_F is at the start, how far it grows, how far it swings.

    The static size at initialization (``init``, the step-0 value) is kept apart from what
    training does to it: ``growth`` = max over the checkpoints after step 0 of ||H_t||_F / ||H_0||_F
    (above 1: the norm grew after step 0; at most 1: its peak is its size at initialization),
    and the oscillation ``swing`` = peak / (smallest value after the peak).

    Args:
        frame: rows of :func:`hessinit.train.run` with ``seed``.
        sd: the sd of the runs.

    Returns:
        One row per (layer, seed): ``init``, ``peak`` (the largest ||H||_F over the
        checkpoints, step 0 included), ``trough`` (the smallest after the peak), ``swing`` =
        peak / trough and ``growth`` (NaN with no checkpoint after step 0).

    Example:
        >>> frame = pd.DataFrame({"sd": 1.0, "seed": 0, "layer": "dense2",
        ...                       "step": [0, 10, 20, 30], "H": [30.0, 120.0, 1.0, 50.0]})
        >>> peak_swing(frame, 1.0)[["init", "peak", "trough", "swing", "growth"]].values.tolist()
        [[30.0, 120.0, 1.0, 120.0, 4.0]]
    """
    h = _checkpoints(frame[np.isclose(frame["sd"], sd)]).sort_values("step")
    rows = []
    for (layer, seed), part in h.groupby(["layer", "seed"], sort=True):
        values = part["H"].to_numpy()
        at = int(np.argmax(values))
        trough = float(values[at:].min())
        later = values[1:] if part["step"].iloc[0] == 0 else values[:0]
        growth = float(later.max() / values[0]) if len(later) else math.nan
        rows.append({"layer": layer, "seed": seed, "init": float(values[0]),
                     "peak": float(values[at]), "trough": trough,
                     "swing": float(values[at]) / trough if trough > 0 else math.inf,
                     "growth": growth})  # fmt: skip
    return pd.DataFrame(rows)


def explode_frame(extremes: pd.DataFrame, *, big: float, small: float) -> pd.DataFrame:
    """Claim 0.1 on dense1, the layer the notebook measures: the per-setting frame.

    One setting, dense1 at sd ``big`` against sd ``small``: the mean over seeds of each seed's
    largest ratio ||H_dense1||_F(big) / ||H_dense1||_F(small) over the checkpoints, with its
    95% t-interval (:func:`hessinit.study.stats.mean_interval`); judged when at least two
    seeds give an interval. :func:`hessinit.study.claimdata.frame_rows` compares the interval
    with the claim's factor (above it: an explosion).

    Args:
        extremes: per seed, ``high``: the largest ratio over the checkpoints
            (:func:`seed_extremes` of :func:`sd_ratio_course`).
        big: the large sd.
        small: the small sd.

    Returns:
        The frame (columns :data:`hessinit.study.claimdata.FRAME_COLUMNS`), one row.

    Example:
        >>> extremes = pd.DataFrame({"seed": [0, 1, 2], "high": [0.2, 0.25, 0.3]})
        >>> f = explode_frame(extremes, big=1.0, small=1e-5)
        >>> f[["setting", "value", "seeds", "judged"]].values.tolist()
        [['dense1, sd 1 against sd 1e-05', 0.25, 3, True]]
    """
    e = mean_interval(extremes["high"])
    return pd.DataFrame({"setting": [f"dense1, sd {big:g} against sd {small:g}"],
                         "value": [e.value], "low": [e.low], "high": [e.high],
                         "seeds": [e.n], "judged": [e.n >= 2]})  # fmt: skip


def layer_explode_rows(
    peaks: pd.DataFrame,
    *,
    big: float,
    factor: float,
    peak: float,
    swing: float,
    setting: str,
    page: str = "original",
) -> pd.DataFrame:
    """Claim 0.1 on the layers after dense1: growth after step 0 and oscillation, per layer.

    The notebook's words have two dynamic parts, judged apart with 95% t-intervals over seeds
    (:func:`hessinit.study.stats.mean_interval`) and combined by
    :func:`hessinit.study.claims.verdict`: *explodes*, credited only for growth after step 0
    (log10 of ``growth`` of :func:`peak_swing` above log10 ``factor``) to values "like 100"
    (the peak above ``peak``); *oscillates ... to very small ones* (log10 of ``swing`` above
    log10 ``swing``). A norm that is large from step 0 and does not grow is a static size at
    initialization, not an explosion. The row's value is the geometric mean of the growth over
    seeds with its interval; the step-0 size, the peak and the swing are in its measure.

    Args:
        peaks: per (layer, seed) at sd ``big``, ``init``, ``peak``, ``growth`` and ``swing``
            (:func:`peak_swing`); dense1's rows are ignored.
        big: the large sd.
        factor: the growth after step 0 that counts as an explosion.
        peak: the peak that counts as "very big values like 100".
        swing: the peak / trough that counts as an oscillation to "very small ones".
        setting: the training (data, steps, lr).
        page: the chapter.

    Returns:
        One row per layer after dense1 (:func:`claims_table`).

    Example:
        >>> peaks = pd.DataFrame({"layer": ["dense2"] * 3, "seed": [0, 1, 2],
        ...     "init": [150.0, 160.0, 140.0], "peak": [150.0, 160.0, 140.0],
        ...     "growth": [0.9, 0.95, 0.8], "swing": [1.5, 1.6, 1.4]})
        >>> rows = layer_explode_rows(peaks, big=1.0, factor=10, peak=30, swing=10, setting="t")
        >>> rows[["setting", "verdict"]].values.tolist()
        [['dense2 at sd 1; t', 'does not hold']]
    """
    rows = []
    for layer, part in peaks[peaks["layer"] != "dense1"].groupby("layer", sort=True):
        p = mean_interval(part["peak"])
        g = mean_interval(np.log10(part["growth"].to_numpy(dtype=float)))
        w = mean_interval(np.log10(part["swing"].to_numpy(dtype=float)))
        grows = _all_of([compare_interval(g.low, g.high, ">", math.log10(factor)),
                         compare_interval(p.low, p.high, ">", peak)])  # fmt: skip
        falls = compare_interval(w.low, w.high, ">", math.log10(swing))
        rows.append(ledger_row(
            "0.1",
            setting=f"{layer} at sd {big:g}; {setting}",
            detail=f"{layer}; mean size at step 0 {part['init'].mean():.3g}, mean peak "
            f"{p.value:.3g}, peak / later trough {10 ** w.value:.2g} (geometric mean)",
            value=10**g.value, low=10**g.low, high=10**g.high, seeds=g.n,
            rule=f"explodes: 95% intervals of log10 growth after step 0 above "
            f"{math.log10(factor):g} and of the peak above {peak:g}; oscillates: that of "
            f"log10(peak / trough after it) above {math.log10(swing):g}",
            verdict=verdict([grows, falls], EXPLODE_PARTS),
            page=page,
        ))  # fmt: skip
    return claims_table(rows)


#: The two parts of claim 0.1 the layers after dense1 are judged on, as verdicts name them.
EXPLODE_PARTS = ("'explodes' (grows after step 0)", "'oscillades ... to very small ones'")


def _all_of(flags) -> bool | None:
    """Conjunction of comparisons that may be inconclusive (None)."""
    if any(f is False for f in flags):
        return False
    return True if all(f is True for f in flags) else None


def original_explode_rows(
    extremes: pd.DataFrame,
    peaks: pd.DataFrame,
    *,
    big: float,
    small: float,
    factor: float,
    peak: float,
    swing: float,
    setting: str,
    page: str = "original",
) -> pd.DataFrame:
    """Claim 0.1: for a big sd the Hessian "explodes and oscillades ... like 100".

    Two readings. On dense1, the layer whose Hessian the notebook computes, the row of
    :func:`hessinit.study.claimdata.frame_rows` on :func:`explode_frame`: the 95% interval of
    the per-seed largest ratio of dense1's norm at sd ``big`` over sd ``small`` above
    ``factor``. On each other layer, :func:`layer_explode_rows`: growth after step 0 and
    oscillation.

    Args:
        extremes: per seed, ``high`` (:func:`seed_extremes` of :func:`sd_ratio_course`).
        peaks: :func:`peak_swing` at sd ``big``.
        big: the large sd.
        small: the small sd.
        factor: the ratio (dense1) or growth after step 0 (other layers) of an explosion.
        peak: the peak that counts as "very big values like 100".
        swing: the peak / trough that counts as an oscillation to "very small ones".
        setting: the training (data, steps, lr).
        page: the chapter.

    Returns:
        One row for dense1, then one per other layer (:func:`claims_table`).

    Example:
        >>> extremes = pd.DataFrame({"seed": [0, 1, 2], "high": [0.2, 0.25, 0.3]})
        >>> peaks = pd.DataFrame({"layer": ["dense2"] * 3, "seed": [0, 1, 2],
        ...     "init": [10.0, 12.0, 11.0], "peak": [150.0, 160.0, 140.0],
        ...     "growth": [15.0, 13.0, 12.7], "swing": [50.0, 60.0, 40.0]})
        >>> rows = original_explode_rows(extremes, peaks, big=1.0, small=1e-5, factor=10,
        ...                              peak=30, swing=10, setting="tiny")
        >>> rows[["setting", "verdict"]].values.tolist()
        [['dense1, sd 1 against sd 1e-05; tiny', 'does not hold'], ['dense2 at sd 1; tiny', 'holds']]
    """  # noqa: E501
    frame = explode_frame(extremes, big=big, small=small)
    dense1 = frame_rows(claims_yml()["0.1"], frame, setting=f"{frame['setting'][0]}; {setting}",
                        threshold=factor, page=page)  # fmt: skip
    layers = layer_explode_rows(peaks, big=big, factor=factor, peak=peak, swing=swing,
                                setting=setting, page=page)  # fmt: skip
    return claims_table([*dense1.to_dict("records"), *layers.to_dict("records")])


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


def layer_gradients(data, sds, seeds, widths=(30, 30), hessian_batch=1024) -> pd.DataFrame:
    """||dL/dW_l||_F of each dense kernel at initialization, on each run's Hessian batch.

    The network and the batch are those :func:`hessinit.train.run` builds for ``(sd, seed)``
    (dense1's kernel N(0, sd^2), the batch drawn first from ``np.random.default_rng(seed)``).
    With ReLU and zero biases the logits are z = sd * z_1 with z_1 not depending on sd, so
    dz/dW_1 does not depend on sd while dz/dW_2 and dz/dW_3 are proportional to sd: at a small
    sd the later layers' gradients are proportionally small.

    Args:
        data: the dataset record.
        sds: the sds of dense1's kernel.
        seeds: the seeds.
        widths: the hidden widths.
        hessian_batch: the batch size (as in :func:`hessinit.train.run`).

    Returns:
        One row per (sd, seed, layer): ``grad`` = ||dL/dW_l||_F, L the mean cross-entropy.

    Example:
        >>> from hessinit.data import Dataset
        >>> rng = np.random.default_rng(0)
        >>> data = Dataset(rng.random((32, 4, 4), np.float32), rng.integers(0, 3, 32),
        ...                "tiny", 3, (4, 4), "random")
        >>> g = layer_gradients(data, [1e-5, 1e-4], [0], widths=(5,), hessian_batch=16)
        >>> g = g.set_index(["layer", "sd"])["grad"]
        >>> round(float(g["dense2", 1e-4] / g["dense2", 1e-5]), 1)  # proportional to sd
        10.0
    """
    import tensorflow as tf

    x_all, y_all = np.asarray(data.x, np.float32), np.asarray(data.y, np.int32)

    def grads(sd, seed):
        model = mlp(x_all.shape[1:], data.num_classes, widths=widths, sd=sd, seed=seed)
        idx = np.random.default_rng(seed).choice(len(y_all), min(hessian_batch, len(y_all)),
                                                 replace=False)  # fmt: skip
        kernels = [d.kernel for d in dense_layers(model)]
        with tf.GradientTape() as tape:
            loss = mean_loss(model, tf.constant(x_all[idx]), tf.constant(y_all[idx]))
        gs = tape.gradient(loss, kernels)
        return pd.DataFrame({"layer": [d.name for d in dense_layers(model)],
                             "grad": [float(tf.norm(g)) for g in gs]})  # fmt: skip

    return sweep(grads, sd=list(sds), seed=list(seeds))


#: The authors' notebook on a small initial sd, verbatim.
def original_slow_rows(
    gains: pd.DataFrame,
    *,
    small: float,
    fraction: float,
    min_gain: float,
    setting: str,
    page: str = "original",
) -> pd.DataFrame:
    """Claim 0.2: for a small sd "we get very small gains".

    The baseline is the strongest other sd measured: the one with the lowest mean final loss
    (not the largest gain, which a bad start inflates). The value is the ratio of mean gains,
    small sd over that baseline, over the same seeds (paired: same Hessian batch and
    mini-batches), with its delta-method 95% interval
    (:func:`hessinit.study.stats.ratio_of_means`); the rule: the interval lies below
    ``fraction``. When no sd gained ``min_gain`` nats on average, the claim is not tested.

    Args:
        gains: per (sd, seed), ``gain`` and ``loss_end``
            (:func:`hessinit.chapters.original.loss_gains`).
        small: the small sd.
        fraction: the largest share of the baseline's gain that counts as "very small".
        min_gain: the mean gain (nats) the baseline must reach for the claim to be testable.
        setting: the training.
        page: the chapter.

    Returns:
        The claims row (:func:`claims_table`).

    Example:
        >>> gains = pd.DataFrame({"sd": [1e-5] * 3 + [1.0] * 3, "seed": [0, 1, 2] * 2,
        ...                       "gain": [0.1, 0.12, 0.08, 1.0, 1.1, 0.9], "loss_end": 1.0})
        >>> row = original_slow_rows(gains, small=1e-5, fraction=0.5, min_gain=0.1, setting="t")
        >>> row[["value", "verdict"]].round(3).values.tolist()
        [[0.1, 'holds']]
        >>> original_slow_rows(gains.assign(gain=0.01), small=1e-5, fraction=0.5, min_gain=0.1,
        ...                    setting="t")["verdict"][0]  # doctest: +ELLIPSIS
        'not tested: the baseline gained less than 0.1 nats on average (0.01 at sd 1)'
    """
    table = gains.pivot_table(index="seed", columns="sd", values="gain").dropna()
    others = table.drop(columns=[small])
    final = gains[gains["sd"] != small].groupby("sd")["loss_end"].mean()
    best = final.idxmin()
    base = dict(claim="0.2",
                setting=f"sd {small:g} against the sd with the lowest final loss ({best:g}); "
                f"{setting}",
                seeds=len(table), page=page)  # fmt: skip
    if not others[best].mean() >= min_gain:
        return claims_table([ledger_row(
            **base, detail=f"not reached: mean loss gain at sd {best:g}, nats",
            value=others[best].mean(),
            rule=f"testable once some sd gains {min_gain:g} nats",
            verdict=f"{NOT_TESTED}: the baseline gained less than {min_gain:g} nats on average "
            f"({others[best].mean():.3g} at sd {best:g})",
        )])  # fmt: skip
    r = ratio_of_means(table[small], table[best])
    return claims_table([ledger_row(
        **base,
        value=r.value, low=r.low, high=r.high,
        rule=f"the 95% interval below {fraction:g} (a 'very small' gain)",
        verdict=interval_verdict(r.low, r.high, "<", fraction),
    )])  # fmt: skip


def dense1_course(frame, layer="dense1"):
    """How one layer's ||H||_F and the loss move along training, per sd.

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


def seed_spread(frame: pd.DataFrame, sd: float, layer: str = "dense1") -> float:
    """How far the seeds disagree: the largest max / min over seeds of ||H||_F at one step.

    Args:
        frame: rows of :func:`hessinit.chapters.original.original_runs` (``sd``, ``seed``,
            ``step``, ``layer``, ``H``; NaN between checkpoints).
        sd: the initial sd whose runs are compared.
        layer: the dense layer.

    Returns:
        max over checkpoints of (largest ||H||_F over seeds) / (smallest ||H||_F over seeds).

    Example:
        >>> frame = pd.DataFrame({"sd": 1.0, "seed": [0, 1, 0, 1], "step": [0, 0, 10, 10],
        ...                       "layer": "dense1", "H": [1.0, 2.0, 3.0, 12.0]})
        >>> seed_spread(frame, 1.0)
        4.0
    """
    h = frame[(frame["layer"] == layer) & (frame["sd"] == sd) & frame["H"].notna()]
    spread = h.groupby("step")["H"].agg(["min", "max"])
    return float((spread["max"] / spread["min"]).max())


def peaks_sentence(peaks: pd.DataFrame) -> str:
    """The prose on each layer but dense1: its mean peak, the seeds' range and its fall.

    Args:
        peaks: per (layer, seed), ``peak``, ``swing`` and ``trough``
            (:func:`hessinit.chapters.original.peak_swing`); dense1's rows are left out.

    Returns:
        One clause per layer, joined by "; ".

    Example:
        >>> peaks = pd.DataFrame({"layer": ["dense1", "dense2", "dense2"], "seed": [0, 0, 1],
        ...                       "peak": [1.0, 100.0, 200.0], "swing": [1.0, 2.0, 3.0],
        ...                       "trough": [1.0, 50.0, 66.0]})
        >>> peaks_sentence(peaks)
        'dense2 peaks at 150 on average (seeds from 100 to 200), and after its peak falls by a factor of only 2 to 3, to no less than 50'
    """  # noqa: E501
    others = peaks[peaks["layer"] != "dense1"].groupby("layer")
    return "; ".join(
        f"{layer} peaks at {part['peak'].mean():.3g} on average (seeds from "
        f"{part['peak'].min():.3g} to {part['peak'].max():.3g}), and after its peak falls by a "
        f"factor of only {part['swing'].min():.2g} to {part['swing'].max():.2g}, to no less than "
        f"{part['trough'].min():.3g}"
        for layer, part in others
    )


def layer_means(peaks: pd.DataFrame, column: str, geometric: bool = False) -> str:
    """The mean of one column of :func:`peak_swing` per layer after dense1, as prose.

    Args:
        peaks: per (layer, seed), ``column`` (:func:`peak_swing`); dense1's rows are left out.
        column: e.g. ``"init"`` (the size at step 0) or ``"growth"``.
        geometric: the geometric mean (exp of the mean log) instead of the arithmetic one.

    Returns:
        "<value> (<layer>)" per layer, joined by " and ".

    Example:
        >>> peaks = pd.DataFrame({"layer": ["dense1", "dense2", "dense2", "dense3"],
        ...                       "growth": [9.0, 0.5, 2.0, 4.0]})
        >>> layer_means(peaks, "growth", geometric=True)
        '1 (dense2) and 4 (dense3)'
    """
    others = peaks[peaks["layer"] != "dense1"].groupby("layer", sort=True)[column]
    means = others.agg(lambda v: float(np.exp(np.log(v).mean()))) if geometric else others.mean()
    return " and ".join(f"{v:.3g} ({layer})" for layer, v in means.items())


def layer_verdicts(explode_rows: pd.DataFrame) -> str:
    """The verdicts of claim 0.1 on the layers after dense1, as Markdown.

    Args:
        explode_rows: :func:`hessinit.chapters.original.original_explode_rows` (dense1 first).

    Returns:
        "<layer>: **<verdict>**" per layer, joined by "; ".

    Example:
        >>> rows = pd.DataFrame({"setting": ["dense1, sd 1 against sd 1e-05; t",
        ...                                  "dense2 at sd 1; t", "dense3 at sd 1; t"],
        ...                      "verdict": ["does not hold", "holds", "inconclusive"]})
        >>> layer_verdicts(rows)
        'dense2: **holds**; dense3: **inconclusive**'
    """
    rows = explode_rows.iloc[1:]
    return "; ".join(
        f"{setting.split(' at ')[0]}: **{verdict}**"
        for setting, verdict in zip(rows["setting"], rows["verdict"], strict=True)
    )


#: The one-word answer to a claim's question, by its verdict.
ANSWERS = {FAILS: "No.", HOLDS: "Yes."}


def answer(verdict: str) -> str:
    """The answer the text gives to a claim's question: "No.", "Yes." or "Not decided here.".

    Args:
        verdict: a claims row's verdict (:mod:`hessinit.study.claims`).

    Returns:
        The answer, in bold Markdown.

    Example:
        >>> answer("does not hold"), answer("holds"), answer("inconclusive")
        ('**No.**', '**Yes.**', '**Not decided here.**')
    """
    return f"**{ANSWERS.get(verdict, 'Not decided here.')}**"


def slow_rule_text(row: pd.Series, fraction: float) -> str:
    """The sentence on claim 0.2's rule: the ratio with its interval where there is one.

    Args:
        row: the row of :func:`hessinit.chapters.original.original_slow_rows` (``value``,
            ``low``, ``high``, ``verdict``).
        fraction: the share of the baseline's gain that counts as "very small".

    Returns:
        Markdown: the ratio, its 95% interval and the verdict; only the verdict when the
        interval is missing (one seed, or the claim not tested).

    Example:
        >>> row = pd.Series({"value": 0.1, "low": 0.05, "high": 0.15, "verdict": "holds"})
        >>> slow_rule_text(row, 0.5)
        'The ratio of the gains is 0.1 [0.05, 0.15], so the rule (its 95% interval below 0.5) gives **holds**.'
        >>> slow_rule_text(pd.Series({"value": 0.1, "low": np.nan, "high": np.nan,
        ...                           "verdict": "not tested"}), 0.5)
        'The rule gives **not tested**.'
    """  # noqa: E501
    if not np.isfinite(row["low"]):
        return f"The rule gives **{row['verdict']}**."
    return (
        f"The ratio of the gains is {row['value']:.3g} [{row['low']:.3g}, {row['high']:.3g}], "
        f"so the rule (its 95% interval below {fraction:g}) gives **{row['verdict']}**."
    )


def gradients_at(grads: pd.DataFrame, sds) -> pd.DataFrame:
    """Mean gradient norm of each layer at the smallest, middle and largest sd.

    Args:
        grads: per (sd, seed, layer), ``grad`` (:func:`layer_gradients`).
        sds: the sds; the middle one is ``sorted(sds)[len(sds) // 2]``.

    Returns:
        One row per layer, columns ``small``, ``mid``, ``big`` (means over seeds).

    Example:
        >>> grads = pd.DataFrame({"sd": [0.1, 0.1, 1.0, 10.0], "seed": [0, 1, 0, 0],
        ...                       "layer": "dense1", "grad": [1.0, 3.0, 4.0, 5.0]})
        >>> gradients_at(grads, [0.1, 1.0, 10.0]).loc["dense1"].tolist()
        [2.0, 4.0, 5.0]
    """
    mean = grads.groupby(["layer", "sd"])["grad"].mean().unstack("sd")
    mid = sorted(sds)[len(sds) // 2]
    return pd.DataFrame(
        {"small": mean[min(sds)], "mid": mean[mid], "big": mean[max(sds)]}
    ).rename_axis("layer")
