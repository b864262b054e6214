"""The dominance chapter, per layer: does the Gauss-Newton term G dominate H = G + R?

In the order the page reads: claims 1.2 and 1.3 at initialization over seeds, schemes and
sds (:func:`init_seeds` with :func:`scaled_sds`, the intervals :func:`init_intervals`,
:func:`plot_init_intervals`, the per-setting frame :func:`init_frame`, the rows
:func:`dominance_init_rows` and :func:`init_sensitivity`); claim 1.4 through training
(:func:`training_seeds` on :func:`along_training`, :func:`plot_ratio_against_loss`,
:func:`training_end`, :func:`training_intervals`, :func:`training_trend`,
:func:`dominance_training_rows`, :func:`training_sensitivity`). Claim 1.1 (the materialized
ReLU check) and the page's whole-network section are in
:mod:`hessinit.chapters.dominance_network` (one module would exceed 800 lines).

Imports: numpy, pandas, matplotlib, the core (:mod:`hessinit.nn`, :mod:`hessinit.curvature`,
:mod:`hessinit.init`, :mod:`hessinit.train`) and the shared study layer
(:mod:`hessinit.study.claimdata`, :mod:`hessinit.study.claims`, :mod:`hessinit.study.figures`,
:mod:`hessinit.study.stats`, :mod:`hessinit.study.sweep`).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..curvature import hessian_norms_all_layers
from ..init import kernel_sds
from ..nn import mlp, softmax_saturation
from ..study import stats
from ..study.claimdata import SENSITIVITY, claims_yml, frame_rows, ledger_row
from ..study.claims import (
    NOT_TESTED,
    OP_WORDS,
    NotReached,
    claims_table,
    interval_flags,
    verdict,
)
from ..study.figures import LAYER_COLORS, style
from ..study.sweep import sweep
from ..train import COLUMNS
from ..train.stacked import Run, train_runs

#: The initial-sd settings, only dense1 scaled (the original experiment) or every layer.
SCALINGS = ("dense1", "all")


def _ratios(frame: pd.DataFrame) -> pd.DataFrame:
    frame["G_over_H"] = frame["G"] / frame["H"]
    frame["R_over_H"] = frame["R"] / frame["H"]
    frame["R_over_G"] = frame["R"] / frame["G"]
    return frame


def scaled_sds(sd, scaling, n_dense):
    """``sd`` for :func:`hessinit.nn.mlp`: ``sd`` on dense1 only, or on every layer.

    Args:
        sd: the initial sd.
        scaling: ``"dense1"`` (the original experiment; the other kernels stay Glorot) or
            ``"all"``.
        n_dense: the number of dense layers.

    Returns:
        ``sd`` for ``"dense1"``, ``[sd] * n_dense`` for ``"all"``.

    Raises:
        ValueError: for any other ``scaling``.

    Example:
        >>> scaled_sds(0.1, "dense1", 3), scaled_sds(0.1, "all", 3)
        (0.1, [0.1, 0.1, 0.1])
    """
    if scaling == "dense1":
        return sd
    if scaling == "all":
        return [sd] * n_dense
    raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")


#: The named schemes on every layer for the init grid of :func:`init_seeds`.
SCHEMES = ("lecun", "glorot", "he")


def init_seeds(data, activations, schemes=SCHEMES, sds=(), scalings=SCALINGS, widths=(30, 30),
               n=256, seeds=(0, 1, 2, 3, 4)):  # fmt: skip
    """Exact per-layer ||H||, ||G||, ||R|| at init, standard schemes and an sd grid, per seed.

    Each seed draws new kernels (``mlp(..., seed=seed)``) and a new Hessian batch of ``n``
    images (without replacement, ``np.random.default_rng(seed)``). Settings: every named scheme
    on every layer (:func:`hessinit.init.kernel_sds`; ``init`` is its name, ``scaling`` "all",
    ``sd`` NaN) and every (scaling, sd) of the grid (:func:`scaled_sds`; ``init`` "sd").
    ``lambda_norm`` is the mean ||Lambda_i||_F of the softmax (0 when it saturates,
    :func:`hessinit.nn.softmax_saturation`).

    Args:
        data: a :func:`hessinit.data.load` record.
        activations: hidden activations.
        schemes: named schemes of :func:`hessinit.init.kernel_sds`.
        sds: initial sds of the grid (may be empty).
        scalings: values of :data:`SCALINGS` for the grid.
        widths: hidden layer widths.
        n: images of each Hessian batch.
        seeds: seeds of the kernels and of the Hessian batches.

    Returns:
        One row per (activation, setting, seed, layer): ``activation, init, scaling, sd, seed,
        layer, H, G, R, GR, lambda_norm, G_over_H, R_over_H, R_over_G``.

    Example:
        >>> from hessinit.data import load
        >>> frame = init_seeds(load("mnist-5k", n=16), ["tanh"], ["lecun"], [0.1], ["dense1"],
        ...                    widths=(3,), n=8, seeds=[0])
        >>> frame[["init", "scaling", "sd", "layer"]].values.tolist()
        [['lecun', 'all', nan, 'dense1'], ['lecun', 'all', nan, 'dense2'], \
['sd', 'dense1', 0.1, 'dense1'], ['sd', 'dense1', 0.1, 'dense2']]
    """
    settings = [(s, "all", float("nan")) for s in schemes]
    settings += [("sd", c, float(s)) for c in scalings for s in sds]
    shape, n_dense = data.x.shape[1:], len(widths) + 1

    def norms(activation, setting, seed):
        init, scaling, sd = settings[setting]
        if init == "sd":
            layer_sd = scaled_sds(sd, scaling, n_dense)
        else:
            layer_sd = kernel_sds(init, widths, shape, data.num_classes)
        model = mlp(shape, data.num_classes, widths=widths, activation=activation,
                    sd=layer_sd, seed=seed)  # fmt: skip
        idx = np.random.default_rng(seed).choice(len(data.y), size=min(n, len(data.y)),
                                                 replace=False)  # fmt: skip
        x, y = data.x[idx], data.y[idx]
        lam = softmax_saturation(model, x)["lambda_norm"]
        return [
            {
                "init": init,
                "scaling": scaling,
                "sd": sd,
                "layer": layer,
                "H": h.H,
                "G": h.G,
                "R": h.R,
                "GR": h.GR,
                "lambda_norm": lam,
            }
            for layer, h in hessian_norms_all_layers(model, x, y).items()
        ]

    frame = sweep(norms, activation=activations, setting=range(len(settings)), seed=list(seeds))
    frame = frame.drop(columns="setting")
    cols = ["activation", "init", "scaling", "sd", "seed"]
    frame = frame[cols + [c for c in frame.columns if c not in cols]]
    with np.errstate(divide="ignore", invalid="ignore"):
        return _ratios(frame)


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
        frame: rows of :func:`hessinit.chapters.dominance.init_seeds`.
        saturated: the threshold on ``lambda_norm``.

    Returns:
        One row per (activation, init, scaling, sd), in order of appearance: ``R_over_H, low,
        high, G_over_H, G_low, G_high, seeds`` (the unsaturated seeds), ``saturated`` and, with
        an ``R_over_G`` column in ``frame``, ``R_over_G, RG_low, RG_high`` (the layer with the
        largest ||R||/||G|| per seed: the rule ||G|| > ||R|| reads it below 1).

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
            worst = good.loc[good.groupby("seed")["R_over_H"].idxmax()]
            r = stats.mean_interval(worst["R_over_H"])
            g = stats.mean_interval(worst["G_over_H"])
            row.update(R_over_H=r.value, low=r.low, high=r.high, G_over_H=g.value, G_low=g.low,
                       G_high=g.high, seeds=r.n)  # fmt: skip
            if "R_over_G" in good:
                q = stats.mean_interval(good.groupby("seed")["R_over_G"].max())
                row.update(R_over_G=q.value, RG_low=q.low, RG_high=q.high)
        rows.append(row)
    return pd.DataFrame(rows)


def _setting_label(row) -> str:
    return str(row["init"]) if row["init"] != "sd" else f"{row['scaling']} {row['sd']:g}"


def plot_init_intervals(summary: pd.DataFrame, threshold: float = 0.1):
    """Worst layer's R/H and its G/H with 95% intervals over seeds, per setting and activation.

    Saturated settings (no unsaturated seed) are marked with an ``x`` at the bottom.

    Args:
        summary: rows of :func:`hessinit.chapters.dominance.init_intervals`.
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


def _label(frame: pd.DataFrame) -> list[str]:
    return [f"{a} {i}" if i != "sd" else f"{a} {c} sd={s:g}" for a, i, c, s in
            zip(frame["activation"], frame["init"], frame["scaling"], frame["sd"],
                strict=True)]  # fmt: skip


def init_frame(summary: pd.DataFrame, claim: str, quantity: str = "R_over_H") -> pd.DataFrame:
    """Claims 1.2 (the standard schemes) and 1.3 (the sd grid): the per-setting frame.

    One setting per smooth (non-ReLU) activation and initialization of ``claim``: the mean over
    seeds of the worst layer's ``quantity`` with its 95% interval; a setting with fewer than 2
    unsaturated seeds (H ~ 0, the ratio undefined) is not judged.

    Args:
        summary: rows of :func:`init_intervals`.
        claim: ``"1.2"`` (``init`` a named scheme) or ``"1.3"`` (``init`` "sd").
        quantity: ``"R_over_H"`` (the claim's rule) or ``"R_over_G"`` (||G|| > ||R|| reads it
            below 1).

    Returns:
        The frame of :data:`hessinit.study.claimdata.FRAME_COLUMNS`.

    Example:
        >>> summary = pd.DataFrame({"activation": ["tanh", "relu"], "init": "lecun",
        ...     "scaling": "all", "sd": float("nan"), "R_over_H": [0.3, 0.0], "low": 0.2,
        ...     "high": 0.4, "seeds": 5})
        >>> init_frame(summary, "1.2").values.tolist()
        [['tanh lecun', 0.3, 0.2, 0.4, 5, True]]
    """
    smooth = summary[summary["activation"] != "relu"]
    part = smooth[(smooth["init"] == "sd") == (claim == "1.3")]
    low, high = ("low", "high") if quantity == "R_over_H" else ("RG_low", "RG_high")
    return pd.DataFrame({
        "setting": _label(part),
        "value": part[quantity].to_numpy(dtype=float),
        "low": part[low].to_numpy(dtype=float),
        "high": part[high].to_numpy(dtype=float),
        "seeds": part["seeds"].to_numpy(dtype=int),
        "judged": part["seeds"].to_numpy() >= 2,
    })  # fmt: skip


def dominance_init_rows(
    summary: pd.DataFrame,
    *,
    threshold: float,
    setting: str,
    page: str = "dominance",
) -> pd.DataFrame:
    """Claims 1.2-1.3: the linearization term dominates each layer's block at initialization.

    For each smooth (non-ReLU) setting the rule is judged by
    :func:`hessinit.study.claimdata.frame_rows` on :func:`init_frame`: the 95% interval over
    seeds of the worst layer's ||R_l||_F / ||H_l||_F against the claim's comparison with
    ``threshold`` (met when the whole interval meets it, inconclusive when it straddles it).
    Claim 1.2: the standard schemes on every layer; claim 1.3: the sd grid (only dense1 or
    every layer scaled). Saturated settings are not judged; they are named in the row's setting.
    The value is the largest mean ratio over the judged settings, with its interval, and its
    measure gives ||G||/||H|| there.

    Args:
        summary: rows of :func:`hessinit.chapters.dominance.init_intervals`.
        threshold: the threshold, e.g. 0.1.
        setting: the network and data, e.g. ``"784-30-30-10 MLP, 256 images per seed"``.
        page: the chapter.

    Returns:
        The two claims rows (:func:`claims_table`); a claim with no judged setting is
        :data:`NOT_TESTED`.

    Example:
        >>> nan = float("nan")
        >>> summary = pd.DataFrame({
        ...     "activation": ["tanh"] * 4, "init": ["lecun", "he", "sd", "sd"],
        ...     "scaling": ["all", "all", "all", "all"], "sd": [nan, nan, 0.01, 10.0],
        ...     "R_over_H": [0.05, 0.3, 0.5, nan], "low": [0.04, 0.2, 0.05, nan],
        ...     "high": [0.06, 0.4, 0.9, nan], "G_over_H": [1.0, 0.9, 0.5, nan],
        ...     "seeds": [5, 5, 5, 0], "saturated": [0, 0, 0, 5]})
        >>> rows = dominance_init_rows(summary, threshold=0.1, setting="tiny")
        >>> rows["verdict"].tolist()
        ['holds only when tanh lecun', 'inconclusive']
        >>> "not judged: tanh all sd=10" in rows["setting"][1]
        True
    """
    smooth = summary[summary["activation"] != "relu"]
    names = ", ".join(dict.fromkeys(smooth["activation"]))
    rows = []
    for claim, label in (("1.2", "standard schemes on every layer"), ("1.3", "N(0, sd^2) kernels")):
        entry = claims_yml()[claim]
        part = smooth[(smooth["init"] == "sd") == (claim == "1.3")]
        judged = part[part["seeds"] >= 2]
        where = f"{names}; {label}; {setting}"
        if claim == "1.3" and len(part):
            scal = " and ".join(f"{c} scaled" for c in dict.fromkeys(part["scaling"]))
            where += f"; sd from {part['sd'].min():g} to {part['sd'].max():g}, {scal}"
        measure = None
        if len(judged):
            top = judged.loc[judged["R_over_H"].idxmax()]
            name = _label(top.to_frame().T)[0]
            measure = (f"{entry['measure']} (largest mean over settings: {name}; G/H there "
                       f"{top['G_over_H']:.3g})")  # fmt: skip
        rows.append(frame_rows(entry, init_frame(summary, claim), setting=where,
                               measure=measure, threshold=threshold, page=page))  # fmt: skip
    return claims_table(pd.concat(rows).to_dict("records"))


def init_sensitivity(summary: pd.DataFrame) -> pd.DataFrame:
    """Claims 1.2 and 1.3 under the rules R/H < 0.1, R/H < 0.3 and ||G|| > ||R|| (R/G < 1).

    :func:`hessinit.study.claimdata.frame_rows` of :func:`init_frame` at each rule of
    :data:`SENSITIVITY`; the ledger's rows keep the claim's own threshold.

    Args:
        summary: rows of :func:`init_intervals` (with ``R_over_G, RG_low, RG_high``).

    Returns:
        One row per claim: ``claim, setting`` and one verdict column per rule.

    Example:
        >>> summary = pd.DataFrame({"activation": "tanh", "init": ["lecun", "sd"],
        ...     "scaling": "all", "sd": [float("nan"), 1.0], "R_over_H": [0.2, 0.5],
        ...     "low": [0.15, 0.4], "high": [0.25, 0.6], "R_over_G": [0.3, 2.0],
        ...     "RG_low": [0.2, 1.5], "RG_high": [0.4, 2.5], "seeds": 5})
        >>> init_sensitivity(summary).iloc[:, 2:].values.tolist()
        [['does not hold', 'holds', 'holds'], ['does not hold', 'does not hold', 'does not hold']]
    """
    rows = []
    for claim, where in (("1.2", "standard schemes"), ("1.3", "N(0, sd^2) kernels")):
        entry = claims_yml()[claim]
        row = {"claim": claim, "setting": where}
        for rule, quantity, threshold in SENSITIVITY:
            frame = init_frame(summary, claim, quantity)
            row[rule] = frame_rows(entry, frame, setting="", threshold=threshold)["verdict"][0]
        rows.append(row)
    return pd.DataFrame(rows)


def _trained(data, activations, seeds, sd, scaling, lr=0.01, **kwargs):
    """``train.run`` frames of every (seed, activation), seed-major, with the ratio columns.

    The seeds of one activation train as one compiled program
    (:func:`hessinit.train.stacked.train_runs`, with ``train.run``'s Taylor columns).
    """
    widths = kwargs.get("widths", (30, 30))
    layer_sd = scaled_sds(sd, scaling, len(widths) + 1)  # one number: dense1's sd only
    runs = [Run(seed=int(s), sd=layer_sd, lr=float(lr)) for s in seeds]
    by_activation = {
        activation: train_runs(data, runs, activation=activation, taylor=True, **kwargs)
        for activation in activations
    }
    parts = [
        frame.loc[frame["run"] == r, list(COLUMNS)].assign(activation=activation, scaling=scaling)
        for r in range(len(runs))
        for activation, frame in by_activation.items()
    ]
    return _ratios(pd.concat(parts, ignore_index=True))


def along_training(data, activations, sd, scaling="dense1", seed=0, **kwargs):
    """:func:`hessinit.train.run` for each activation, with the ratio columns added.

    Each run trains through :func:`hessinit.train.stacked.train_runs` (its numbers equal
    ``train.run``'s to float rounding).

    Args:
        data: a :func:`hessinit.data.load` record.
        activations: hidden activations, one run each.
        sd: the initial sd, placed by ``scaling`` (:func:`scaled_sds`).
        scaling: ``"dense1"`` or ``"all"``.
        seed: the seed of the weights and of every draw.
        **kwargs: the other arguments of ``run`` (``widths``, ``steps``, ``lr``,
            ``hessian_every``...).

    Returns:
        The runs' frames stacked, with columns ``activation`` and ``scaling`` after ``run``'s
        and then ``G_over_H``, ``R_over_H`` and ``R_over_G`` (NaN between checkpoints).

    Example:
        >>> from hessinit.data import load
        >>> frame = along_training(load("mnist-5k", n=16), ["tanh"], 0.1, widths=(3,), steps=1,
        ...                        batch_size=4, hessian_batch=8, progress=False)
        >>> frame[["activation", "scaling", "step", "layer"]].values.tolist()[:2]
        [['tanh', 'dense1', 0, 'dense1'], ['tanh', 'dense1', 0, 'dense2']]
        >>> frame.columns[-5:].tolist()
        ['activation', 'scaling', 'G_over_H', 'R_over_H', 'R_over_G']
    """
    return _trained(data, activations, [seed], sd, scaling, **kwargs)


def training_seeds(data, activations, seeds, sd=0.01, **kwargs):
    """:func:`along_training` repeated over seeds (new weights, Hessian batch and mini-batches).

    The seeds of one activation train as one compiled program
    (:func:`hessinit.train.stacked.train_runs`).

    Args:
        data: a :func:`hessinit.data.load` record.
        activations: hidden activations.
        seeds: the seeds.
        sd: dense1's initial sd (the other kernels Glorot, the original setting).
        **kwargs: passed to :func:`hessinit.train.run` (``steps``, ``lr``, ``hessian_every``...).

    Returns:
        The frames of :func:`along_training`, stacked; ``seed`` is :func:`hessinit.train.run`'s
        column.

    Example:
        >>> from hessinit.data import load
        >>> frame = training_seeds(load("mnist-5k", n=16), ["tanh"], [0, 1], widths=(3,),
        ...                        steps=1, batch_size=4, hessian_batch=8, progress=False)
        >>> sorted(frame["seed"].unique().tolist())
        [0, 1]
    """
    return _trained(data, activations, seeds, sd, "dense1", **kwargs)


def plot_ratio_against_loss(frame: pd.DataFrame, threshold: float = 0.1, target=None):
    """The worst layer's ||R||/||H|| against the Hessian-batch loss along training.

    One panel per activation, one line per seed (checkpoints only), the loss on a log axis
    decreasing to the right.

    Args:
        frame: rows of :func:`hessinit.chapters.dominance.training_seeds`.
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


def training_end(frame: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per (activation, seed): the loss and the worst layer's ratios at the last checkpoint.

    Args:
        frame: rows of :func:`hessinit.chapters.dominance.training_seeds` (``activation``,
            ``seed``, ``step``, ``layer``, ``H``, ``hessian_loss``, ``R_over_H``, ``G_over_H``).
        target: the loss on the Hessian batch the run must reach.

    Returns:
        One row per (activation, seed): ``step, loss, R_over_H, G_over_H, layer`` (of the worst
        layer at the last checkpoint), ``start`` (the worst layer's ``R_over_H`` at step 0),
        ``peak`` (its largest value at a later checkpoint) and ``reached`` (``loss <=
        target``); with an ``R_over_G`` column, ``R_over_G``, the largest ||R||/||G|| over the
        layers at the last checkpoint.

    Example:
        >>> frame = pd.DataFrame({"activation": "tanh", "seed": 0, "step": [0, 0, 9, 9],
        ...                       "layer": ["d1", "d2"] * 2, "H": 1.0,
        ...                       "hessian_loss": [2.3, 2.3, 0.05, 0.05],
        ...                       "R_over_H": [0.4, 0.6, 0.2, 0.1], "G_over_H": 1.0})
        >>> training_end(frame, 0.1)[["loss", "R_over_H", "start", "peak", "reached"]
        ...                         ].values.tolist()
        [[0.05, 0.2, 0.6, 0.2, True]]
    """
    rows = []
    cps = frame.dropna(subset=["H"])
    for (activation, seed), part in cps.groupby(["activation", "seed"], sort=False):
        last = part[part["step"] == part["step"].max()]
        worst = last.loc[last["R_over_H"].idxmax()]
        first = part[part["step"] == part["step"].min()]["R_over_H"].max()
        peak = part[part["step"] > part["step"].min()].groupby("step")["R_over_H"].max()
        loss = float(last["hessian_loss"].iloc[0])
        row = {"activation": activation, "seed": seed, "step": int(worst["step"]),
               "loss": loss, "R_over_H": worst["R_over_H"], "G_over_H": worst["G_over_H"],
               "layer": worst["layer"], "start": first,
               "peak": float(peak.max()) if len(peak) else np.nan,
               "reached": bool(loss <= target)}  # fmt: skip
        if "R_over_G" in last:
            row["R_over_G"] = float(last["R_over_G"].max())
        rows.append(row)
    return pd.DataFrame(rows)


def dominance_training_rows(
    intervals: pd.DataFrame,
    *,
    op: str,
    threshold: float,
    target: float,
    setting: str,
    page: str = "dominance",
) -> pd.DataFrame:
    """Claim 1.4: the linearization term dominates each layer's block once the loss is low.

    Judged only on runs whose Hessian-batch loss reached ``target``; per smooth activation, the
    95% interval over those seeds of the final worst layer's R/H against ``op threshold``. An
    activation with fewer than 2 seeds at the target is not judged: its outcome is
    :class:`~hessinit.study.claims.NotReached` (its lowest loss), so the verdict names it as not
    tested, neither a failure nor among the activations where the rule holds; it is also named
    in the setting. No activation with 2 seeds at the target: :data:`NOT_TESTED`, naming the
    lowest loss reached.
    The value is the largest mean over the judged activations.

    Args:
        intervals: rows of :func:`hessinit.chapters.dominance.training_intervals`.
        op: the comparison, e.g. ``"<"``.
        threshold: the threshold.
        target: the loss (nats, on the Hessian batch) a run must reach.
        setting: the training, e.g. ``"784-30-30-10, SGD lr 0.1, 3000 steps"``.
        page: the chapter.

    Returns:
        The claims row (:func:`claims_table`).

    Example:
        >>> nan = float("nan")
        >>> iv = pd.DataFrame({"R_over_H": [0.05, 0.3], "low": [0.03, 0.2], "high": [0.07, 0.4],
        ...                    "G_over_H": [1.0, 0.9], "seeds": [3, 3], "runs": [3, 3],
        ...                    "loss_min": [0.05, 0.06]},
        ...                   index=pd.Index(["tanh", "gelu"], name="activation"))
        >>> dominance_training_rows(iv, op="<", threshold=0.1, target=0.1, setting="")[
        ...     ["value", "verdict"]].values.tolist()
        [[0.3, 'holds only when tanh']]
        >>> missed = iv.assign(seeds=[3, 1], loss_min=[0.05, 0.4])
        >>> dominance_training_rows(missed, op="<", threshold=0.1, target=0.1,
        ...                         setting="")["verdict"][0]
        'holds only when tanh; not tested for gelu (lowest loss 0.4 nats)'
        >>> unreached = iv.assign(R_over_H=nan, low=nan, high=nan, seeds=0, loss_min=0.4)
        >>> dominance_training_rows(unreached, op="<", threshold=0.1, target=0.1,
        ...                         setting="")["verdict"][0]
        'not tested: the lowest Hessian-batch loss reached was 0.4 nats (target <= 0.1)'
    """
    smooth = intervals[intervals.index != "relu"]
    judged = smooth[smooth["seeds"] >= 2]
    missed = smooth[smooth["seeds"] < 2]
    where = f"{setting}; target loss <= {target:g} nats on the Hessian batch"
    if len(missed):
        where += "; target not reached by 2 seeds: " + ", ".join(
            f"{a} (lowest loss {v:.3g})" for a, v in missed["loss_min"].items()
        )
    if len(judged):
        top = judged.loc[judged["R_over_H"].idxmax()]
        value, low, high = top["R_over_H"], top["low"], top["high"]
        seeds = int(judged["seeds"].min())
        measure = f"largest mean over activations: {top.name}; G/H there {top['G_over_H']:.3g}"
        # an activation that did not reach the target is not tested, not failed
        flags = interval_flags(judged, op, threshold) + [
            NotReached(f"lowest loss {v:.3g} nats") for v in missed["loss_min"]
        ]
        text = verdict(flags, [*judged.index, *missed.index])
    else:
        value, low, high, seeds = smooth["loss_min"].min(), math.nan, math.nan, 0
        measure = "not reached: the value is the lowest Hessian-batch loss, nats"
        text = (
            f"{NOT_TESTED}: the lowest Hessian-batch loss reached was {value:.3g} nats "
            f"(target <= {target:g})"
        )
    return claims_table([ledger_row(
            "1.4",
            setting=where,
            detail=measure,
            value=value,
            low=low,
            high=high,
            seeds=seeds,
            rule=f"after training to a loss <= {target:g}: the 95% interval over seeds of the "
                 f"worst layer's R/H {OP_WORDS[op]} {threshold:g}, per activation",
            verdict=text,
            page=page,
        )])  # fmt: skip


def training_intervals(end: pd.DataFrame) -> pd.DataFrame:
    """Per activation, the final worst-layer ratios over the seeds that reached the target loss.

    Args:
        end: rows of :func:`training_end`.

    Returns:
        Indexed by ``activation`` (order of appearance): ``R_over_H, low, high`` and ``G_over_H,
        G_low, G_high`` (means over the seeds with ``reached``, Student-t 95% intervals;
        NaN when no seed reached it), ``seeds`` (that count), ``runs`` and ``loss_min``, the
        lowest final loss of any run; with ``R_over_G`` in ``end``, ``R_over_G, RG_low,
        RG_high`` over the same seeds.

    Example:
        >>> end = pd.DataFrame({"activation": "tanh", "seed": [0, 1, 2], "loss": 0.05,
        ...                     "R_over_H": [0.1, 0.2, 0.3], "G_over_H": 1.0,
        ...                     "reached": [True, True, False]})
        >>> row = training_intervals(end).loc["tanh"]
        >>> round(float(row["R_over_H"]), 3), int(row["seeds"]), int(row["runs"])
        (0.15, 2, 3)
    """
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
        if "R_over_G" in part:
            q = stats.mean_interval(ok["R_over_G"]) if len(ok) else None
            row.update(R_over_G=q.value if q else np.nan, RG_low=q.low if q else np.nan,
                       RG_high=q.high if q else np.nan)  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows).set_index("activation")


def training_trend(end: pd.DataFrame) -> pd.DataFrame:
    """Per activation: how the worst layer's R/H moves from initialization to the last step.

    Per seed the change d = (worst R/H at the last checkpoint) - (worst R/H at step 0), over
    every run (whether it reached the target loss or not); its mean over the seeds gets a
    Student-t 95% interval (:func:`hessinit.study.stats.mean_interval`). ``direction`` is
    "rises" when the whole interval is above 0, "falls" when it is below, "no detectable
    change" when it contains 0 (or fewer than 2 seeds).

    Args:
        end: rows of :func:`training_end` (``activation``, ``start``, ``R_over_H``).

    Returns:
        Indexed by ``activation`` (order of appearance): ``start, peak, end`` (means over the
        seeds; ``peak`` NaN without a ``peak`` column), ``change, low, high, seeds, direction``.

    Example:
        >>> end = pd.DataFrame({"activation": ["tanh"] * 3 + ["softplus"] * 3,
        ...                     "start": [0.2, 0.25, 0.3, 0.5, 0.45, 0.55],
        ...                     "R_over_H": [0.5, 0.6, 0.55, 0.1, 0.05, 0.12]})
        >>> training_trend(end)["direction"].tolist()
        ['rises', 'falls']
        >>> training_trend(end.assign(R_over_H=[0.1, 0.3, 0.5] * 2))["direction"].tolist()
        ['no detectable change', 'no detectable change']
    """
    rows = []
    for activation, part in end.groupby("activation", sort=False):
        d = stats.mean_interval(part["R_over_H"] - part["start"])
        up, down = d.n >= 2 and d.low > 0, d.n >= 2 and d.high < 0
        peak = part["peak"].mean() if "peak" in part else np.nan
        rows.append({"activation": activation, "start": part["start"].mean(), "peak": peak,
                     "end": part["R_over_H"].mean(), "change": d.value, "low": d.low,
                     "high": d.high, "seeds": d.n,
                     "direction": "rises" if up else "falls" if down
                     else "no detectable change"})  # fmt: skip
    return pd.DataFrame(rows).set_index("activation")


def trend_words(trend: pd.DataFrame) -> str:
    """The sentence of :func:`training_trend`: each activation's direction, start and end.

    Args:
        trend: rows of :func:`training_trend`.

    Returns:
        One clause per activation, "; "-joined: "<a>'s rises|falls from <start> to <end>" or
        "<a>'s goes from <start> to <end>, no detectable change", with the change, its 95%
        interval and, where known, the peak.

    Example:
        >>> trend = pd.DataFrame({"start": [0.2, 0.3], "end": [0.55, 0.35],
        ...     "change": [0.35, 0.05], "low": [0.2, -0.1], "high": [0.5, 0.2],
        ...     "direction": ["rises", "no detectable change"]},
        ...     index=pd.Index(["tanh", "gelu"], name="activation"))
        >>> trend_words(trend)  # doctest: +NORMALIZE_WHITESPACE
        "tanh's rises from 0.2 to 0.55 (change 0.35, 95% interval [0.2, 0.5]); gelu's goes
        from 0.3 to 0.35, no detectable change (change 0.05, 95% interval [-0.1, 0.2])"
    """
    parts = []
    for a, r in trend.iterrows():
        moved = r["direction"] in ("rises", "falls")
        verb = r["direction"] if moved else "goes"
        tail = "" if moved else f", {r['direction']}"
        peak = f"; peak {r['peak']:.2g} on the way" if np.isfinite(r.get("peak", np.nan)) else ""
        ends = f"from {r['start']:.2g} to {r['end']:.2g}{tail}"
        change = f"change {r['change']:.2g}, 95% interval [{r['low']:.2g}, {r['high']:.2g}]"
        parts.append(f"{a}'s {verb} {ends} ({change}{peak})")
    return "; ".join(parts)


def training_sensitivity(intervals: pd.DataFrame, target: float) -> pd.DataFrame:
    """Claim 1.4 under the rules R/H < 0.1, R/H < 0.3 and ||G|| > ||R|| (R/G < 1).

    :func:`dominance_training_rows` at each rule of :data:`SENSITIVITY` (an activation that
    missed the target loss stays "not tested"); the ledger's row keeps the claim's threshold.

    Args:
        intervals: rows of :func:`training_intervals` with ``R_over_G, RG_low, RG_high``.
        target: the target loss of :func:`dominance_training_rows`.

    Returns:
        One row: ``claim, setting`` and one verdict column per rule.

    Example:
        >>> iv = pd.DataFrame({"R_over_H": [0.2], "low": [0.15], "high": [0.25],
        ...     "G_over_H": [1.0], "R_over_G": [0.2], "RG_low": [0.1], "RG_high": [0.3],
        ...     "seeds": [3], "runs": [3], "loss_min": [0.01]},
        ...     index=pd.Index(["tanh"], name="activation"))
        >>> training_sensitivity(iv, 0.1).iloc[0, 2:].tolist()
        ['does not hold', 'holds', 'holds']
    """
    row = {"claim": "1.4", "setting": "after training"}
    for rule, quantity, threshold in SENSITIVITY:
        iv = intervals
        if quantity == "R_over_G":
            iv = intervals.assign(R_over_H=intervals["R_over_G"], low=intervals["RG_low"],
                                  high=intervals["RG_high"])  # fmt: skip
        rows = dominance_training_rows(iv, op="<", threshold=threshold, target=target, setting="")
        row[rule] = rows["verdict"][0]
    return pd.DataFrame([row])
