"""The dominance chapter, per layer: does the Gauss-Newton term G dominate H = G + R?

In the order the page reads: claim 1.1, R_l = 0 for ReLU on the materialized matrices
(:func:`relu_exactness`, :func:`plot_relu_exactness`, :func:`dominance_relu_rows`); claims 1.2
and 1.3 at initialization over seeds, schemes and stds (:func:`init_seeds` with
:func:`scaled_stds`, the intervals :func:`init_intervals`, :func:`plot_init_intervals`,
:func:`dominance_init_rows`); claim 1.4 through training (:func:`training_seeds` on
:func:`along_training`, :func:`plot_ratio_against_loss`, :func:`training_end`,
:func:`dominance_training_rows`, :func:`training_intervals`). The page's whole-network section
is in :mod:`hessinit.chapters.dominance_network` (one module would exceed 800 lines).

Imports: numpy, pandas, matplotlib, the core (:mod:`hessinit.nn`, :mod:`hessinit.curvature`,
:mod:`hessinit.init`, :mod:`hessinit.train`) and the shared study layer
(:mod:`hessinit.study.claims`, :mod:`hessinit.study.experiments`, :mod:`hessinit.study.figures`,
:mod:`hessinit.study.stats`, :mod:`hessinit.study.sweep`).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..curvature import full_gauss_newton, full_hessian, hessian_norms_all_layers
from ..init import kernel_stds
from ..nn import dense_layers, mlp, softmax_saturation
from ..study.claimdata import ledger_row
from ..study.claims import (
    NOT_TESTED,
    OP_WORDS,
    NotReached,
    claims_table,
    compare,
    interval_flags,
    verdict,
)
from ..study.experiments import tiny_problem
from ..study.figures import LAYER_COLORS, style
from ..study.sweep import sweep
from ..train import COLUMNS
from ..train.stacked import Run, train_runs


def relu_exactness(activations=("relu", "tanh"), seeds=(0, 1, 2), n=64, widths=(8, 6), pool=4):
    """||H_l - G_l||_F / ||H_l||_F per layer block from the materialized autodiff matrices.

    Claim 1.1 measured without the zero-curvature shortcut: on :func:`tiny_problem` (a new
    network and a new image draw per seed), each dense kernel's block H_l of the full Hessian
    (:func:`~hessinit.curvature.full_hessian`, nested autodiff) and G_l of the full Gauss-Newton
    matrix (:func:`~hessinit.curvature.full_gauss_newton`, J^T Lambda J) are formed and compared;
    a smooth activation is the control that shows the measurement can see a non-zero R_l.

    Args:
        activations: hidden activations, one network per seed each.
        seeds: seeds of the images and the kernels.
        n: images in the batch.
        widths: hidden layer widths.
        pool: side of the average-pooling window of :func:`tiny_problem`.

    Returns:
        One row per (activation, seed, layer): ``H`` (||H_l||_F), ``R`` (||H_l - G_l||_F) and
        ``R_over_H``.

    Example:
        >>> check = relu_exactness(("relu",), seeds=(0,), n=4, widths=(3,))
        >>> check[["activation", "seed", "layer"]].values.tolist()
        [['relu', 0, 'dense1'], ['relu', 0, 'dense2']]
        >>> bool((check["R_over_H"] < 1e-12).all())
        True
    """

    def per_seed(activation, seed):
        model, x, y = tiny_problem(activation, n=n, widths=widths, pool=pool, seed=seed)
        rows = []
        for layer in [d.name for d in dense_layers(model)]:
            H = full_hessian(model, x, y, layer=layer)
            R = H - full_gauss_newton(model, x, y, layer=layer)
            h, r = np.linalg.norm(H), np.linalg.norm(R)
            rows.append({"layer": layer, "H": h, "R": r, "R_over_H": r / h})
        return rows

    return sweep(per_seed, activation=activations, seed=list(seeds))


def plot_relu_exactness(check: pd.DataFrame, threshold: float):
    """||H_l - G_l||_F / ||H_l||_F per layer block and seed, per activation (log scale).

    Args:
        check: rows of :func:`hessinit.chapters.dominance.relu_exactness`.
        threshold: the round-off level, drawn as a dotted line.

    Returns:
        The figure.
    """
    with style():
        acts = list(dict.fromkeys(check["activation"]))
        layers = list(dict.fromkeys(check["layer"]))
        fig, ax = plt.subplots(figsize=(4.6, 3.0), layout="constrained")
        floor = 1e-18  # exact zeros drawn at the bottom of the log axis
        for k, act in enumerate(acts):
            part = check[check["activation"] == act]
            xs = [layers.index(name) + 0.15 * (k - (len(acts) - 1) / 2) for name in part["layer"]]
            ax.scatter(xs, np.maximum(part["R_over_H"], floor), s=14, label=act,
                       color=LAYER_COLORS[k % len(LAYER_COLORS)])  # fmt: skip
        ax.axhline(threshold, color="grey", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_xticks(range(len(layers)), layers)
        ax.set_ylabel("‖H_l − G_l‖_F / ‖H_l‖_F (autodiff)")
        ax.legend(frameon=False, fontsize=8)
    return fig


def dominance_relu_rows(
    check: pd.DataFrame,
    *,
    threshold: float,
    setting: str,
    page: str = "dominance",
) -> pd.DataFrame:
    """Claim 1.1: for ReLU, R = 0 on each layer's block, measured from the autodiff matrices.

    The rule: ||H_l - G_l||_F / ||H_l||_F < ``threshold`` (a round-off level) for every layer
    and seed, with H_l and G_l materialized by autodiff
    (:func:`hessinit.chapters.dominance.relu_exactness`), never the zero-curvature shortcut. The
    value is the largest ratio; an exact computation, so no interval. Rows of other activations
    (the control) are ignored here, and so are blocks with H_l = 0 (every unit dead: R_l = 0
    too, and the ratio is undefined).

    Args:
        check: rows of :func:`hessinit.chapters.dominance.relu_exactness`.
        threshold: the round-off level, e.g. 1e-10.
        setting: the networks and data.
        page: the chapter.

    Returns:
        The claims row (:func:`claims_table`).

    Example:
        >>> check = pd.DataFrame({"activation": ["relu"] * 2 + ["tanh"], "seed": [0, 1, 0],
        ...                       "layer": "dense1", "R_over_H": [1e-17, 3e-16, 0.4]})
        >>> dominance_relu_rows(check, threshold=1e-10, setting="tiny")[
        ...     ["value", "seeds", "verdict"]].values.tolist()
        [[3e-16, 2, 'holds']]
        >>> dominance_relu_rows(check.assign(R_over_H=[1e-17, 1e-3, 0.4]), threshold=1e-10,
        ...                     setting="")["verdict"][0]
        'holds only when seed 0'
    """
    relu = check[check["activation"] == "relu"].dropna(subset=["R_over_H"])  # NaN: H_l = 0
    worst = relu.groupby("seed", sort=False)["R_over_H"].max()
    return claims_table([ledger_row(
            "1.1",
            setting=f"ReLU; {setting}",
            value=worst.max(),
            seeds=len(worst),
            rule=f"||H_l - G_l||_F / ||H_l||_F < {threshold:g} (round-off) on every layer block",
            verdict=verdict(compare(worst.values, "<", threshold),
                            [f"seed {s}" for s in worst.index]),
            page=page,
        )])  # fmt: skip


#: The initial-std settings, only dense1 scaled (the original experiment) or every layer.
SCALINGS = ("dense1", "all")


def _ratios(frame: pd.DataFrame) -> pd.DataFrame:
    frame["G_over_H"] = frame["G"] / frame["H"]
    frame["R_over_H"] = frame["R"] / frame["H"]
    return frame


def scaled_stds(sd, scaling, n_dense):
    """``kernel_std`` for :func:`hessinit.nn.mlp`: ``sd`` on dense1 only, or on every layer.

    Args:
        sd: the initial standard deviation.
        scaling: ``"dense1"`` (the original experiment; the other kernels stay Glorot) or
            ``"all"``.
        n_dense: the number of dense layers.

    Returns:
        ``sd`` for ``"dense1"``, ``[sd] * n_dense`` for ``"all"``.

    Raises:
        ValueError: for any other ``scaling``.

    Example:
        >>> scaled_stds(0.1, "dense1", 3), scaled_stds(0.1, "all", 3)
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
    on every layer (:func:`hessinit.init.kernel_stds`; ``init`` is its name, ``scaling`` "all",
    ``sd`` NaN) and every (scaling, sd) of the grid (:func:`scaled_stds`; ``init`` "sd").
    ``lambda_norm`` is the mean ||Lambda_i||_F of the softmax (0 when it saturates,
    :func:`hessinit.nn.softmax_saturation`).

    Args:
        data: a :func:`hessinit.data.load` record.
        activations: hidden activations.
        schemes: named schemes of :func:`hessinit.init.kernel_stds`.
        sds: initial stds of the grid (may be empty).
        scalings: values of :data:`SCALINGS` for the grid.
        widths: hidden layer widths.
        n: images of each Hessian batch.
        seeds: seeds of the kernels and of the Hessian batches.

    Returns:
        One row per (activation, setting, seed, layer): ``activation, init, scaling, sd, seed,
        layer, H, G, R, GR, lambda_norm, G_over_H, R_over_H``.

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
            stds = scaled_stds(sd, scaling, n_dense)
        else:
            stds = kernel_stds(init, widths, shape, data.num_classes)
        model = mlp(shape, data.num_classes, widths=widths, activation=activation,
                    kernel_std=stds, seed=seed)  # fmt: skip
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
            from ..study import stats  # the study layer's intervals (Student t over seeds)

            worst = good.loc[good.groupby("seed")["R_over_H"].idxmax()]
            r = stats.mean_interval(worst["R_over_H"])
            g = stats.mean_interval(worst["G_over_H"])
            row.update(R_over_H=r.value, low=r.low, high=r.high, G_over_H=g.value, G_low=g.low,
                       G_high=g.high, seeds=r.n)  # fmt: skip
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


def dominance_init_rows(
    summary: pd.DataFrame,
    *,
    op: str,
    threshold: float,
    setting: str,
    page: str = "dominance",
) -> pd.DataFrame:
    """Claims 1.2-1.3: the linearization term dominates each layer's block at initialization.

    For each smooth (non-ReLU) setting the rule is judged on the 95% interval over seeds of the
    worst layer's ||R_l||_F / ||H_l||_F (:func:`interval_verdict`'s reading: met when the whole
    interval meets ``op threshold``, inconclusive when it straddles it). Claim 1.2: the standard
    schemes on every layer (``init`` not "sd"); claim 1.3: the sd grid (only dense1 or every
    layer scaled). Saturated settings (no unsaturated seed: H ~ 0, the ratio undefined) are not
    judged; they are named in the row's setting. The value is the largest mean ratio over the
    judged settings, with its interval, and its measure gives ||G||/||H|| there.

    Args:
        summary: rows of :func:`hessinit.chapters.dominance.init_intervals`.
        op: the comparison, e.g. ``"<"``.
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
        >>> rows = dominance_init_rows(summary, op="<", threshold=0.1, setting="tiny")
        >>> rows["verdict"].tolist()
        ['holds only when tanh lecun', 'inconclusive']
        >>> "saturated (not judged): tanh all sd=10" in rows["setting"][1]
        True
    """
    smooth = summary[summary["activation"] != "relu"]
    names = ", ".join(dict.fromkeys(smooth["activation"]))
    rows = []
    parts = (("1.2", smooth[smooth["init"] != "sd"], "standard schemes on every layer"),
             ("1.3", smooth[smooth["init"] == "sd"], "N(0, sd^2) kernels"))  # fmt: skip
    for claim, part, label in parts:
        judged = part[part["seeds"] >= 2]
        sat = part[part["seeds"] < 2]

        def labels(frame):
            return [f"{a} {i}" if i != "sd" else f"{a} {c} sd={s:g}" for a, i, c, s in
                    zip(frame["activation"], frame["init"], frame["scaling"], frame["sd"],
                        strict=True)]  # fmt: skip

        where = f"{names}; {label}; {setting}"
        if claim == "1.3" and len(part):
            scal = " and ".join(f"{c} scaled" for c in dict.fromkeys(part["scaling"]))
            where += f"; sd from {part['sd'].min():g} to {part['sd'].max():g}, {scal}"
        if len(sat):
            where += "; saturated (not judged): " + ", ".join(labels(sat))
        if len(judged):
            top = judged.loc[judged["R_over_H"].idxmax()]
            value, low, high = top["R_over_H"], top["low"], top["high"]
            name = labels(top.to_frame().T)[0]
            measure = f"largest mean over settings: {name}; G/H there {top['G_over_H']:.3g}"
            text = verdict(interval_flags(judged, op, threshold), labels(judged))
            seeds = int(judged["seeds"].min())
        else:
            value, low, high, seeds = 0.0, math.nan, math.nan, 0
            measure = "none: every setting saturated"
            text = f"{NOT_TESTED}: every setting saturated the softmax"
        rows.append(ledger_row(
            claim,
            setting=where,
            detail=measure,
            value=value,
            low=low,
            high=high,
            seeds=seeds,
            rule=f"the 95% interval over seeds of the worst layer's R/H {OP_WORDS[op]} "
                 f"{threshold:g}, per setting",
            verdict=text,
            page=page,
        ))  # fmt: skip
    return claims_table(rows)


def _trained(data, activations, seeds, sd, scaling, lr=0.01, **kwargs):
    """``train.run`` frames of every (seed, activation), seed-major, with the ratio columns.

    The seeds of one activation train as one compiled program
    (:func:`hessinit.train.stacked.train_runs`, with ``train.run``'s Taylor columns).
    """
    widths = kwargs.get("widths", (30, 30))
    stds = scaled_stds(sd, scaling, len(widths) + 1)  # one number: dense1's std only
    stds = None if np.ndim(stds) == 0 else tuple(stds)
    runs = [Run(seed=int(s), sd=sd, lr=float(lr), kernel_std=stds) for s in seeds]
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
        sd: the initial standard deviation, placed by ``scaling`` (:func:`scaled_stds`).
        scaling: ``"dense1"`` or ``"all"``.
        seed: the seed of the weights and of every draw.
        **kwargs: the other arguments of ``run`` (``widths``, ``steps``, ``lr``,
            ``hessian_every``...).

    Returns:
        The runs' frames stacked, with columns ``activation`` and ``scaling`` after ``run``'s
        and then ``G_over_H`` and ``R_over_H`` (NaN between checkpoints).

    Example:
        >>> from hessinit.data import load
        >>> frame = along_training(load("mnist-5k", n=16), ["tanh"], 0.1, widths=(3,), steps=1,
        ...                        batch_size=4, hessian_batch=8, progress=False)
        >>> frame[["activation", "scaling", "step", "layer"]].values.tolist()[:2]
        [['tanh', 'dense1', 0, 'dense1'], ['tanh', 'dense1', 0, 'dense2']]
        >>> frame.columns[-4:].tolist()
        ['activation', 'scaling', 'G_over_H', 'R_over_H']
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
        sd: dense1's initial std (the other kernels Glorot, the original setting).
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
        lowest final loss of any run.

    Example:
        >>> end = pd.DataFrame({"activation": "tanh", "seed": [0, 1, 2], "loss": 0.05,
        ...                     "R_over_H": [0.1, 0.2, 0.3], "G_over_H": 1.0,
        ...                     "reached": [True, True, False]})
        >>> row = training_intervals(end).loc["tanh"]
        >>> round(float(row["R_over_H"]), 3), int(row["seeds"]), int(row["runs"])
        (0.15, 2, 3)
    """
    from ..study import stats  # the study layer's intervals (Student t over seeds)

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
