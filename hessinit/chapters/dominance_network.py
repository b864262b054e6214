"""The dominance chapter's exact checks and whole network: claims 1.1 and 1.5.

The first and the last section of the dominance page (its per-layer sections at
initialization and through training are in :mod:`hessinit.chapters.dominance`), in the order
they read: claim 1.1, R_l = 0 for ReLU on the materialized matrices (:func:`relu_exactness`,
:func:`plot_relu_exactness`, :func:`dominance_relu_rows`); the exact whole-network check on a
small network (:func:`whole_network_exact`), the Hutchinson estimates of ||H||, ||G||, ||R||
(:func:`whole_network`, over a grid :func:`whole_network_grid`), the figure
(:func:`plot_whole_network`), the ratios with their intervals (:func:`whole_network_ratios`),
the per-setting frame of claim 1.5 (:func:`whole_frame`), its row
(:func:`dominance_whole_rows`) and its sensitivity to the rule (:func:`whole_sensitivity`).

Imports: numpy, pandas, matplotlib, the core (:mod:`hessinit.nn`, :mod:`hessinit.curvature`)
and the shared study layer (:mod:`hessinit.study.claimdata`, :mod:`hessinit.study.claims`,
:mod:`hessinit.study.experiments`, :mod:`hessinit.study.figures`, :mod:`hessinit.study.sweep`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..curvature import (
    full_gauss_newton,
    full_hessian,
    hutchinson_norms,
    num_params,
    ratio_estimate,
)
from ..nn import dense_layers, mlp
from ..study.claimdata import SENSITIVITY, claims_yml, frame_rows, ledger_row
from ..study.claims import claims_table, compare, verdict
from ..study.experiments import keys_last, tiny_problem
from ..study.figures import LAYER_COLORS, style
from ..study.sweep import sweep


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
        check: rows of :func:`hessinit.chapters.dominance_network.relu_exactness`.
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
    (:func:`relu_exactness`), never the zero-curvature shortcut. The
    value is the largest ratio; an exact computation, so no interval. Rows of other activations
    (the control) are ignored here, and so are blocks with H_l = 0 (every unit dead: R_l = 0
    too, and the ratio is undefined).

    Args:
        check: rows of :func:`hessinit.chapters.dominance_network.relu_exactness`.
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


def whole_network_exact(activation="tanh", n=256, widths=(30, 30), pool=4, probes=30,
                        deflate=10, seed=0):  # fmt: skip
    """A whole-network estimate next to the exact value, on a network small enough to form H.

    On :func:`tiny_problem` (images average-pooled by ``pool``), the full Hessian and
    Gauss-Newton matrices over all weights are materialized by autodiff
    (:func:`~hessinit.curvature.full_hessian`, :func:`~hessinit.curvature.full_gauss_newton`),
    which gives the exact ||H||_F, ||G||_F, ||R||_F and ||R||_F / ||H||_F; the same quantities
    are estimated by :func:`~hessinit.curvature.hutchinson_norms`, the estimator of claim 1.5.

    Args:
        activation: the hidden activation.
        n: images in the batch.
        widths: hidden layer widths.
        pool: side of the average-pooling window (4: 7 x 7 inputs).
        probes: Rademacher probes.
        deflate: dimension of the deflated subspace.
        seed: seed of the images, the kernels and the probes.

    Returns:
        One row per quantity (``H``, ``G``, ``R``, ``R_over_H``, ``G_over_H``): ``quantity,
        estimate, low, high, exact, covered`` and ``params`` (the number of weights).

    Example:
        >>> check = whole_network_exact(n=4, widths=(3,), probes=3, deflate=2)
        >>> check["quantity"].tolist(), bool(check["exact"].gt(0).all())
        (['H', 'G', 'R', 'R_over_H', 'G_over_H'], True)
    """
    model, x, y = tiny_problem(activation, n=n, widths=widths, pool=pool, seed=seed)
    H = full_hessian(model, x, y)
    G = full_gauss_newton(model, x, y)
    h, g, r = np.linalg.norm(H), np.linalg.norm(G), np.linalg.norm(H - G)
    exact = {"H": h, "G": g, "R": r, "R_over_H": r / h, "G_over_H": g / h}
    est = hutchinson_norms(model, x, y, probes=probes, deflate=deflate, seed=seed)
    rows = []
    for q, value in exact.items():
        e = getattr(est, q)
        rows.append({"quantity": q, "estimate": e.value, "low": e.low, "high": e.high,
                     "exact": value, "covered": bool(e.low <= value <= e.high),
                     "params": num_params(model.trainable_variables)})  # fmt: skip
    return pd.DataFrame(rows)


#: The whole-network terms (the names of :func:`hessinit.curvature.hutchinson_norm`'s products).
TERMS = {"H": "hessian", "G": "gauss_newton", "R": "curvature"}


def whole_network(model, x, y, probes=30, deflate=10, level=0.95, seed=0):
    """||H||_F, ||G||_F, ||R||_F of the whole network and ||R||/||H||, ||G||/||H||, with intervals.

    All weights, cross-layer blocks included, estimated with deflated Hutchinson from the same
    probes for every term (:func:`~hessinit.curvature.hutchinson_norms`):
    ||M||_F^2 = ||M Q||_F^2 + E ||M (I - QQ^T) v||^2 for Rademacher v and one
    ``deflate``-dimensional basis Q of the top of H's spectrum; the ratios get the paired
    delta-method interval, the norms a Student-t interval over the probes. ``R_over_G``,
    ||R||_F / ||G||_F, gets the same paired interval (the rule ||G|| > ||R|| reads it below 1).

    Args:
        model: a Keras model.
        x: images.
        y: labels.
        probes: Rademacher probes (shared by every term).
        deflate: dimension of the deflation sketch.
        level: confidence level of the intervals.
        seed: seed of the sketch and the probes.

    Returns:
        One row per term (:data:`TERMS`, then ``R_over_H``, ``G_over_H`` and ``R_over_G``):
        ``term, value, low, high, probes, deflate``.

    Example:
        >>> model, x, y = tiny_problem(n=4, widths=(3,))
        >>> whole_network(model, x, y, probes=3, deflate=1)["term"].tolist()
        ['H', 'G', 'R', 'R_over_H', 'G_over_H', 'R_over_G']
    """
    est = hutchinson_norms(model, x, y, probes=probes, deflate=deflate, level=level, seed=seed)
    rg = ratio_estimate(est.samples["R"], est.samples["G"], est.exact["R"], est.exact["G"], level)
    terms = {t: getattr(est, t) for t in (*TERMS, "R_over_H", "G_over_H")} | {"R_over_G": rg}
    return pd.DataFrame(
        [
            {
                "term": term,
                "value": e.value,
                "low": e.low,
                "high": e.high,
                "probes": e.probes,
                "deflate": deflate,
            }
            for term, e in terms.items()
        ]
    )


def whole_network_grid(data, activations, sds, widths=(30, 30), n=512, probes=30, deflate=10,
                       seed=0):  # fmt: skip
    """:func:`whole_network` for every activation and sd of dense1, on the first ``n`` images.

    Args:
        data: a :func:`hessinit.data.load` record.
        activations: hidden activations.
        sds: standard deviations of dense1's kernel (the other kernels Glorot).
        widths: hidden layer widths.
        n: images of the Hessian batch.
        probes: Rademacher probes per term.
        deflate: dimension of the deflation sketch.
        seed: seed of the kernels and of the probes.

    Returns:
        The rows of :func:`whole_network` for each network, with ``activation`` and ``sd``
        columns last.

    Example:
        >>> from hessinit.data import load
        >>> grid = whole_network_grid(load("mnist-5k", n=4), ["relu"], [0.1, 1.0], widths=(3,),
        ...                           probes=2, deflate=1)
        >>> grid[["term", "activation", "sd"]].values.tolist()[::6]
        [['H', 'relu', 0.1], ['H', 'relu', 1.0]]
    """
    x, y = data.x[:n], data.y[:n]

    def estimate(activation, sd):
        model = mlp(data.x.shape[1:], data.num_classes, widths, activation, sd, seed)
        return whole_network(model, x, y, probes=probes, deflate=deflate, seed=seed)

    return keys_last(sweep(estimate, activation=activations, sd=sds), ["activation", "sd"])


def plot_whole_network(frame: pd.DataFrame):
    """Whole-network ||H||, ||G||, ||R|| with their intervals against sd, one panel per activation.

    Args:
        frame: rows of :func:`hessinit.chapters.dominance_network.whole_network_grid`.

    Returns:
        The figure.
    """
    with style():
        acts = list(dict.fromkeys(frame["activation"]))
        fig, axes = plt.subplots(1, len(acts), figsize=(2.2 * len(acts) + 0.8, 3.0),
                                 squeeze=False, layout="constrained")  # fmt: skip
        for ax, act in zip(axes[0], acts, strict=True):
            for k, term in enumerate(("H", "G", "R")):
                pts = frame[(frame["activation"] == act) & (frame["term"] == term)].sort_values(
                    "sd"
                )
                err = [pts["value"] - pts["low"], pts["high"] - pts["value"]]
                ax.errorbar(pts["sd"] * (1.08 ** (k - 1)), pts["value"], yerr=err, marker="o",
                            ms=3, lw=1.2, capsize=2, color=LAYER_COLORS[k],
                            label=f"‖{term}‖_F")  # fmt: skip
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(act, fontsize=9)
            ax.set_xlabel("sd of dense1")
        axes[0][0].set_ylabel("whole-network norm (95% interval)")
        axes[0][0].legend(frameon=False, fontsize=8)
    return fig


def whole_network_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """Whole-network ||R||_F / ||H||_F and ||G||_F / ||H||_F per (activation, sd), with intervals.

    The intervals are the paired ones of :func:`hessinit.curvature.hutchinson_norms` (the three
    terms from the same probes, delta method), read off the ``R_over_H`` and ``G_over_H`` rows.

    Args:
        frame: rows of :func:`whole_network_grid` (``activation``,
            ``sd``, ``term``, ``value``, ``low``, ``high``, ``probes``).

    Returns:
        One row per (activation, sd), in order of appearance: ``activation, sd, R_over_H, low,
        high, G_over_H, G_low, G_high, probes`` and, with an ``R_over_G`` term, ``R_over_G,
        RG_low, RG_high``.

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
        row = {"activation": activation, "sd": sd, "R_over_H": r["value"], "low": r["low"],
               "high": r["high"], "G_over_H": q["value"], "G_low": q["low"],
               "G_high": q["high"], "probes": int(r["probes"])}  # fmt: skip
        if "R_over_G" in terms.index:
            rg = terms.loc["R_over_G"]
            row.update(R_over_G=rg["value"], RG_low=rg["low"], RG_high=rg["high"])
        rows.append(row)
    return pd.DataFrame(rows)


def whole_frame(ratios: pd.DataFrame, quantity: str = "R_over_H") -> pd.DataFrame:
    """Claim 1.5: the per-setting frame of the rule, one setting per network.

    Each network (activation, dense1's sd) is one draw of weights and images, so ``seeds`` is
    1: the interval is over the probes of that one network (paired, same probes for H, G, R),
    and the probes are not seeds.

    Args:
        ratios: rows of :func:`whole_network_ratios`.
        quantity: ``"R_over_H"`` (the claim's rule) or ``"R_over_G"`` (||G|| > ||R|| reads it
            below 1).

    Returns:
        The frame of :data:`hessinit.study.claimdata.FRAME_COLUMNS`.

    Example:
        >>> ratios = pd.DataFrame({"activation": ["relu"], "sd": [0.1], "R_over_H": [0.5],
        ...                        "low": [0.3], "high": [0.7], "probes": 20})
        >>> whole_frame(ratios).values.tolist()
        [['relu sd=0.1', 0.5, 0.3, 0.7, 1, True]]
    """
    low, high = ("low", "high") if quantity == "R_over_H" else ("RG_low", "RG_high")
    return pd.DataFrame({
        "setting": [f"{a} sd={s:g}" for a, s in zip(ratios["activation"], ratios["sd"],
                                                    strict=True)],
        "value": ratios[quantity].to_numpy(dtype=float),
        "low": ratios[low].to_numpy(dtype=float),
        "high": ratios[high].to_numpy(dtype=float),
        "seeds": 1,
        "judged": True,
    })  # fmt: skip


def dominance_whole_rows(
    ratios: pd.DataFrame,
    *,
    threshold: float,
    setting: str,
    page: str = "dominance",
) -> pd.DataFrame:
    """Claim 1.5: the linearization term dominates the Hessian of the whole network.

    For each network the rule ``||R||_F / ||H||_F < threshold``, over all weights with the
    cross-layer blocks, is judged by :func:`hessinit.study.claimdata.frame_rows` on
    :func:`whole_frame`: the paired 95% interval of the ratio
    (:func:`hessinit.curvature.hutchinson_norms`: H, G, R from the same probes). The value is
    the largest ratio over the networks, with its interval; ``seeds`` is 1 (one draw per
    network; the probes are named in ``setting``, not counted as seeds).

    Args:
        ratios: rows of :func:`whole_network_ratios` (``activation``,
            ``sd``, ``R_over_H``, ``low``, ``high``, ``G_over_H``).
        threshold: the threshold.
        setting: the estimate's setting (weights, sds, images, probes).
        page: the chapter.

    Returns:
        The claims row (:func:`hessinit.study.claims.claims_table`).

    Example:
        >>> ratios = pd.DataFrame({"activation": ["relu", "tanh"], "sd": [0.1, 0.1],
        ...                        "R_over_H": [0.5, 0.08], "low": [0.3, 0.05],
        ...                        "high": [0.7, 0.09], "G_over_H": [0.9, 1.0], "probes": 20})
        >>> row = dominance_whole_rows(ratios, threshold=0.1, setting="tiny")
        >>> row[["value", "seeds", "verdict"]].values.tolist()
        [[0.5, 1, 'holds only when tanh sd=0.1']]
        >>> straddles = ratios.assign(high=[0.7, 0.2])  # tanh's interval straddles 0.1
        >>> dominance_whole_rows(straddles, threshold=0.1, setting="")["verdict"][0]
        'does not hold for relu sd=0.1; inconclusive for tanh sd=0.1'
    """
    entry = claims_yml()["1.5"]
    top = ratios.loc[ratios["R_over_H"].idxmax()]
    measure = (f"{entry['measure']} (largest over the networks: {top['activation']} "
               f"sd={top['sd']:g}; G/H there {top['G_over_H']:.3g})")  # fmt: skip
    return frame_rows(entry, whole_frame(ratios), setting=setting, measure=measure,
                      threshold=threshold, page=page)  # fmt: skip


def whole_sensitivity(ratios: pd.DataFrame) -> pd.DataFrame:
    """Claim 1.5 under the rules R/H < 0.1, R/H < 0.3 and ||G|| > ||R|| (R/G < 1).

    :func:`hessinit.study.claimdata.frame_rows` of :func:`whole_frame` at each rule of
    :data:`SENSITIVITY`; the ledger's row keeps the claim's own threshold.

    Args:
        ratios: rows of :func:`whole_network_ratios` with ``R_over_G, RG_low, RG_high``.

    Returns:
        One row: ``claim, setting`` and one verdict column per rule.

    Example:
        >>> ratios = pd.DataFrame({"activation": ["tanh"], "sd": [1.0], "R_over_H": [0.2],
        ...     "low": [0.15], "high": [0.25], "R_over_G": [1.5], "RG_low": [1.2],
        ...     "RG_high": [1.8], "probes": 20})
        >>> whole_sensitivity(ratios).iloc[0, 2:].tolist()
        ['does not hold', 'holds', 'does not hold']
    """
    entry = claims_yml()["1.5"]
    row = {"claim": "1.5", "setting": "whole network"}
    for rule, quantity, threshold in SENSITIVITY:
        frame = whole_frame(ratios, quantity)
        row[rule] = frame_rows(entry, frame, setting="", threshold=threshold)["verdict"].iloc[0]
    return pd.DataFrame([row])
