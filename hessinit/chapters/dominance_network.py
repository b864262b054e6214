"""The dominance chapter, whole network: ||R|| / ||H|| of the full Hessian, claim 1.5.

The last section of the dominance page (its layer sections are in
:mod:`hessinit.chapters.dominance`), in the order it reads: the exact whole-network check on a
small network (:func:`whole_network_exact`), the Hutchinson estimates of ||H||, ||G||, ||R||
(:func:`whole_network`, over a grid :func:`whole_network_grid`), the figure
(:func:`plot_whole_network`), the ratios with their intervals (:func:`whole_network_ratios`)
and the rule of claim 1.5 (:func:`dominance_whole_rows`).

Imports: numpy, pandas, matplotlib, the core (:mod:`hessinit.nn`, :mod:`hessinit.curvature`)
and the shared study layer (:mod:`hessinit.study.claims`, :mod:`hessinit.study.experiments`,
:mod:`hessinit.study.figures`, :mod:`hessinit.study.stats`, :mod:`hessinit.study.sweep`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..curvature import full_gauss_newton, full_hessian, hutchinson_norms, num_params
from ..nn import mlp
from ..study.claimdata import ledger_row
from ..study.claims import (
    OP_WORDS,
    claims_table,
    interval_flags,
    verdict,
)
from ..study.experiments import keys_last, tiny_problem
from ..study.figures import LAYER_COLORS, style
from ..study.sweep import sweep


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
    delta-method interval, the norms a Student-t interval over the probes.

    Args:
        model: a Keras model.
        x: images.
        y: labels.
        probes: Rademacher probes (shared by every term).
        deflate: dimension of the deflation sketch.
        level: confidence level of the intervals.
        seed: seed of the sketch and the probes.

    Returns:
        One row per term (:data:`TERMS`, then ``R_over_H`` and ``G_over_H``): ``term, value,
        low, high, probes, deflate``.

    Example:
        >>> model, x, y = tiny_problem(n=4, widths=(3,))
        >>> whole_network(model, x, y, probes=3, deflate=1)["term"].tolist()
        ['H', 'G', 'R', 'R_over_H', 'G_over_H']
    """
    est = hutchinson_norms(model, x, y, probes=probes, deflate=deflate, level=level, seed=seed)
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
            for term in (*TERMS, "R_over_H", "G_over_H")
            for e in [getattr(est, term)]
        ]
    )


def whole_network_grid(data, activations, sds, widths=(30, 30), n=512, probes=30, deflate=10,
                       seed=0):  # fmt: skip
    """:func:`whole_network` for every activation and std of dense1, on the first ``n`` images.

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
        >>> grid[["term", "activation", "sd"]].values.tolist()[::5]
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
            ax.set_xlabel("std of dense1 (sd)")
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


def dominance_whole_rows(
    ratios: pd.DataFrame,
    *,
    op: str,
    threshold: float,
    setting: str,
    page: str = "dominance",
) -> pd.DataFrame:
    """Claim 1.5: the linearization term dominates the Hessian of the whole network.

    For each network the rule ``||R||_F / ||H||_F op threshold``, over all weights with the
    cross-layer blocks, is judged on the paired 95% interval of the ratio
    (:func:`hessinit.curvature.hutchinson_norms`: H, G, R from the same probes). The value is
    the largest ratio over the networks, with its interval; ``seeds`` is the number of probes.

    Args:
        ratios: rows of :func:`whole_network_ratios` (``activation``,
            ``sd``, ``R_over_H``, ``low``, ``high``, ``G_over_H``, ``probes``).
        op: the comparison, e.g. ``"<"``.
        threshold: the threshold.
        setting: the estimate's setting (weights, stds, images, probes).
        page: the chapter.

    Returns:
        The claims row (:func:`claims_table`).

    Example:
        >>> ratios = pd.DataFrame({"activation": ["relu", "tanh"], "sd": [0.1, 0.1],
        ...                        "R_over_H": [0.5, 0.08], "low": [0.3, 0.05],
        ...                        "high": [0.7, 0.09], "G_over_H": [0.9, 1.0], "probes": 20})
        >>> row = dominance_whole_rows(ratios, op="<", threshold=0.1, setting="tiny")
        >>> row[["value", "seeds", "verdict"]].values.tolist()
        [[0.5, 20, 'holds only when tanh sd=0.1']]
        >>> straddles = ratios.assign(high=[0.7, 0.2])  # tanh's interval straddles 0.1
        >>> dominance_whole_rows(straddles, op="<", threshold=0.1, setting="")["verdict"][0]
        'does not hold for relu sd=0.1; inconclusive for tanh sd=0.1'
    """
    where = [f"{a} sd={s:g}" for a, s in zip(ratios["activation"], ratios["sd"], strict=True)]
    top = ratios.loc[ratios["R_over_H"].idxmax()]
    return claims_table([ledger_row(
            "1.5",
            setting=setting,
            detail=f"largest over the networks: {top['activation']} sd={top['sd']:g}; G/H "
                   f"there {top['G_over_H']:.3g}",
            value=top["R_over_H"],
            low=top["low"],
            high=top["high"],
            seeds=int(ratios["probes"].min()),
            rule=f"the paired 95% interval (same probes) of the whole network's R/H "
                 f"{OP_WORDS[op]} {threshold:g}, per network",
            verdict=verdict(interval_flags(ratios, op, threshold), where),
            page=page,
        )])  # fmt: skip
