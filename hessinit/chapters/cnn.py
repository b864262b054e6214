"""The convolutional networks chapter: per-tensor H, G, R of CNNs and ResNets at initialization.

For each network, initialization scheme and seed, every kernel tensor theta gets the Frobenius
norms of its Hessian block H = G + R (:func:`hessinit.curvature.tensors.tensor_hessian_norms`)
and the dominance chapter's ratios ||R||_F / ||H||_F and ||G||_F / ||H||_F. Where the logits are
piecewise linear in theta (ReLU networks without BatchNorm) the tensors code takes R = 0 by
structure (exact); elsewhere exact columns cost 2P Hessian-vector products per tensor, so the
chapter asks for a fixed number of Hutchinson probes instead (``method="hutchinson"``).

One network per architecture is kept for every seed and call; a seed's standard normal kernels
Z_l are the builder's own draws, and every scheme sets kernel l to sigma_l Z_l (so the same
weights as :func:`hessinit.study.convnets.build`): a sweep over the variance factor c (kernels
N(0, c / fan_in)) changes the scale, never the directions, and reuses the traced products. The
depth-stable scale and claim 5.3 are in :mod:`hessinit.chapters.cnn_depth` (one module would
exceed 800 lines); claim 5.4 is built here from the verdict helpers of
:mod:`hessinit.study.claims`.

In the order the page reads: the per-kernel norms (:func:`kernel_norms`, :func:`plot_cnn`), the
worst kernel's intervals (:func:`worst_intervals`) and claims 5.1 and 5.2 (:func:`cnn_rows`);
lambda_max over a sweep of c (:func:`lambda_max`, :func:`plot_cnn_sweep`, :func:`sweep_rows`).
The networks are shared with the CNN training chapter (:mod:`hessinit.study.convnets`).

Imports: numpy, pandas, matplotlib, :mod:`hessinit.init`, :mod:`hessinit.nn`,
:mod:`hessinit.curvature` and the shared study layer (:mod:`hessinit.study.claims`,
:mod:`hessinit.study.convnets`, :mod:`hessinit.study.figures`, :mod:`hessinit.study.stats`).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import init
from ..curvature.spectra import network_spectrum
from ..curvature.tensors import layer_tensor_norms
from ..nn.convnets import kernel_fans, kernel_layers
from ..study import claims, stats
from ..study.claimdata import ledger_row
from ..study.claims import (
    NOT_TESTED,
    OP_WORDS,
    claims_table,
    compare,
    compare_interval,
    verdict,
)
from ..study.convnets import NETWORKS
from ..study.figures import LAYER_COLORS, style

#: Networks of :func:`_unit` by (network, input shape, builder options), each with its seeds'
#: N(0, 1) kernels: every call sets all kernels first, so one Keras model (and its traced
#: products) serves every seed, scheme and call. Only kernels depend on the seed (biases start
#: at zero, BatchNorm at gamma = 1, beta = 0).
_UNITS: dict = {}


def _unit(network: str, seed: int, input_shape, **kwargs):
    """(model, Z): the network of ``convnets.build`` with N(0, 1) kernels Z_l of ``seed`` (float64).

    The model is shared by every seed; its kernels are Z_l only until the caller sets a scheme.
    """
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}; choose one of {list(NETWORKS)}")
    builder, options = NETWORKS[network]
    options = {**options, **kwargs, "input_shape": input_shape}
    key = (network, tuple(int(d) for d in input_shape), repr(sorted(kwargs.items())))
    if key not in _UNITS:
        count = len(kernel_layers(builder(**options)))
        _UNITS[key] = (builder(**options, seed=seed, kernel_std=[1.0] * count), {}, count)
    model, bases, count = _UNITS[key]
    if seed not in bases:
        fresh = builder(**options, seed=seed, kernel_std=[1.0] * count)
        bases[seed] = [layer.kernel.numpy().astype(np.float64) for layer in kernel_layers(fresh)]
    return model, bases[seed]


def _set_scheme(model, bases, scheme) -> None:
    """Set kernel l of ``model`` to sigma_l Z_l, sigma_l of ``scheme`` from the kernel's fans."""
    stds = init.model_kernel_stds(scheme, model)
    for layer, base, sd in zip(kernel_layers(model), bases, stds, strict=True):
        layer.kernel.assign((base * sd).astype(layer.kernel.dtype))


def _c(scheme) -> float:
    """The variance factor c of a numeric scheme, NaN for a named one."""
    return math.nan if isinstance(scheme, str) else float(scheme)


def kernel_norms(
    x,
    y,
    networks,
    schemes,
    seeds,
    probes: int = 4,
    **kwargs,
) -> pd.DataFrame:
    """||H||_F, ||G||_F, ||R||_F of every kernel tensor, per network, scheme and seed.

    The method per tensor: ``"auto"`` (exact) where the logits are piecewise linear in the
    tensor (then R = 0 by structure, not by measurement), else ``"hutchinson"`` with ``probes``
    Rademacher probes (an unbiased estimate of each squared norm; its seed is the network's).
    One network per (network, seed) serves every scheme (module docstring).

    Args:
        x: images, shape (B, H, W, C).
        y: integer labels, shape (B,).
        networks: keys of :data:`NETWORKS`.
        schemes: scheme names or numbers c (c / fan-in).
        seeds: kernel seeds.
        probes: Hutchinson probes per estimated tensor (at least 2).
        **kwargs: passed to :func:`~hessinit.study.convnets.build` (e.g. ``channels``).

    Returns:
        One row per (network, scheme, seed, tensor): ``network, init, c, seed, tensor, method,
        fan_in, H, G, R, R_over_H, G_over_H`` (``c`` NaN for a named scheme, ratios NaN where
        H = 0).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.random((4, 6, 6, 1)).astype("float32"), [0, 1, 2, 3]
        >>> out = kernel_norms(x, y, ["cnn relu"], ["he"], [0], channels=(2, 2))
        >>> out[["tensor", "method", "R"]].values.tolist()
        [['conv1', 'jacobian', 0.0], ['conv2', 'jacobian', 0.0], ['dense', 'kronecker', 0.0]]
    """
    x = np.asarray(x)
    rows = []
    for network in networks:
        for seed in seeds:
            model, bases = _unit(network, seed, x.shape[1:], **kwargs)
            for scheme in schemes:
                _set_scheme(model, bases, scheme)
                for layer in kernel_layers(model):
                    n = layer_tensor_norms(
                        model,
                        layer,
                        x,
                        y,
                        weight="kernel",
                        max_products=0,
                        fallback="hutchinson",
                        probes=probes,
                        seed=seed,
                    )
                    ok = n.H > 0
                    rows.append({
                        "network": network, "init": init.scheme_label(scheme), "c": _c(scheme),
                        "seed": seed, "tensor": layer.name, "method": n.method,
                        "fan_in": kernel_fans(layer.kernel.shape)[0], "H": n.H, "G": n.G, "R": n.R,
                        "R_over_H": n.R / n.H if ok else np.nan,
                        "G_over_H": n.G / n.H if ok else np.nan,
                    })  # fmt: skip
    frame = pd.DataFrame(rows)
    order = {init.scheme_label(s): k for k, s in enumerate(schemes)}
    keys = frame["network"].map({n: k for k, n in enumerate(networks)}) * len(order)
    frame = frame.assign(_k=keys + frame["init"].map(order))
    return frame.sort_values("_k", kind="stable").drop(columns="_k").reset_index(drop=True)


def plot_cnn(frame: pd.DataFrame, threshold: float = 0.1):
    """Per kernel tensor, ||G||/||H|| and ||R||/||H|| at initialization, mean over seeds.

    One panel per network; per scheme a colour, G/H filled and R/H hollow markers.

    Args:
        frame: rows of :func:`hessinit.chapters.cnn.kernel_norms`.
        threshold: the rule's R/H threshold, drawn as a dotted line.

    Returns:
        The figure.
    """
    with style():
        nets = list(dict.fromkeys(frame["network"]))
        fig, axes = plt.subplots(1, len(nets), figsize=(2.2 * len(nets) + 0.8, 3.0),
                                 sharey=True, squeeze=False, layout="constrained")  # fmt: skip
        for ax, net in zip(axes[0], nets, strict=True):
            part = frame[frame["network"] == net]
            tensors = list(dict.fromkeys(part["tensor"]))
            xs = np.arange(len(tensors))
            for k, (scheme, run) in enumerate(part.groupby("init", sort=False)):
                mean = run.groupby("tensor")[["G_over_H", "R_over_H"]].mean().loc[tensors]
                color = LAYER_COLORS[k % len(LAYER_COLORS)]
                ax.plot(xs, mean["G_over_H"], "o-", ms=4, lw=1, color=color,
                        label=f"{scheme} ‖G‖/‖H‖")  # fmt: skip
                ax.plot(xs, mean["R_over_H"], "o--", ms=4, lw=1, mfc="none", color=color,
                        label=f"{scheme} ‖R‖/‖H‖")  # fmt: skip
            ax.axhline(threshold, color="grey", ls=":", lw=1)
            ax.set_title(net, fontsize=9)
            ax.set_xticks(xs, tensors, rotation=45, ha="right", fontsize=7)
        axes[0, 0].set_ylabel("share of ‖H‖ (mean over seeds)")
        axes[0, 0].legend(frameon=False, fontsize=7)
    return fig


def worst_intervals(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (network, init): the worst tensor's R/H per seed, averaged over seeds with its interval.

    The worst tensor of a seed is the one with the largest ||R||_F / ||H||_F; its ratios are
    averaged over the seeds with :func:`hessinit.study.stats.mean_interval` (Student t; a
    Hutchinson estimate's probe noise is part of the seed-to-seed spread). ``exact`` says
    whether every tensor behind the row was computed exactly.

    Args:
        frame: rows of :func:`kernel_norms`.

    Returns:
        One row per (network, init), in order of appearance: ``network, init, c, R_over_H,
        low, high, G_over_H, seeds, exact`` (``c`` NaN for a named scheme or without a ``c``
        column).

    Example:
        >>> frame = pd.DataFrame({"network": "n", "init": "he", "seed": [0, 0, 1, 1],
        ...                       "tensor": ["a", "b"] * 2, "method": "hutchinson",
        ...                       "R_over_H": [0.1, 0.3, 0.5, 0.2], "G_over_H": 1.0})
        >>> row = worst_intervals(frame).iloc[0]
        >>> float(row["R_over_H"]), int(row["seeds"]), bool(row["exact"])
        (0.4, 2, False)
    """
    rows = []
    for (network, scheme), part in frame.groupby(["network", "init"], sort=False):
        good = part.dropna(subset=["R_over_H"])
        worst = good.loc[good.groupby("seed")["R_over_H"].idxmax()]
        r = stats.mean_interval(worst["R_over_H"])
        g = stats.mean_interval(worst["G_over_H"])
        rows.append({"network": network, "init": scheme,
                     "c": float(part["c"].iloc[0]) if "c" in part else math.nan,
                     "R_over_H": r.value, "low": r.low,
                     "high": r.high, "G_over_H": g.value, "seeds": r.n,
                     "exact": bool((part["method"] != "hutchinson").all())})  # fmt: skip
    return pd.DataFrame(rows)


def cnn_rows(
    summary: pd.DataFrame,
    *,
    op: str,
    threshold: float,
    setting: str,
    page: str = "cnn",
) -> pd.DataFrame:
    """Claims 5.1-5.2: the linearization term dominates each kernel's block in CNNs at init.

    The dominance chapter's rule (claims 1.2-1.3) carried to convolutional networks: per
    network and scheme, the 95% interval over seeds of the worst kernel tensor's
    ||R||_F / ||H||_F meets ``op threshold`` (:func:`compare_interval`; inconclusive when it
    straddles). A row whose tensors were all computed exactly (``exact``) is judged on its value:
    for piecewise-linear networks R = 0 by structure, a fact of the architecture, not evidence.
    Claim 5.1: networks without BatchNorm; claim 5.2: with BatchNorm (``network`` containing
    "bn"). The value is the largest mean ratio over the settings, with its interval.

    Args:
        summary: rows of :func:`hessinit.chapters.cnn.worst_intervals`.
        op: the comparison, e.g. ``"<"``.
        threshold: the threshold, e.g. 0.1.
        setting: the data and batch, e.g. ``"mnist-5k, 128 images"``.
        page: the chapter.

    Returns:
        The two claims rows (:func:`claims_table`); a claim with no setting is
        :data:`NOT_TESTED`.

    Example:
        >>> summary = pd.DataFrame({
        ...     "network": ["cnn relu", "cnn tanh", "resnet bn"], "init": "he",
        ...     "R_over_H": [0.0, 0.3, 1.0], "low": [0.0, 0.05, 0.9], "high": [0.0, 0.6, 1.1],
        ...     "G_over_H": [1.0, 0.9, 0.1], "seeds": 3, "exact": [True, False, False]})
        >>> cnn_rows(summary, op="<", threshold=0.1, setting="tiny")["verdict"].tolist()
        ['holds only when cnn relu he; inconclusive for cnn tanh he', 'does not hold']
    """
    bn = summary["network"].str.contains("bn")
    parts = (("5.1", summary[~bn], "without BatchNorm"), ("5.2", summary[bn], "with BatchNorm"))
    rows = []
    for claim, part, label in parts:
        labels = [f"{n} {i}" for n, i in zip(part["network"], part["init"], strict=True)]
        if len(part):
            flags = [compare(v, op, threshold) if exact else compare_interval(lo, hi, op, threshold)
                     for v, lo, hi, exact in zip(part["R_over_H"], part["low"], part["high"],
                                                 part["exact"], strict=True)]  # fmt: skip
            top = part.loc[part["R_over_H"].idxmax()]
            exact = bool(top["exact"])
            value, low, high = top["R_over_H"], top["low"], top["high"]
            if exact:
                low = high = math.nan
            name = f"{top['network']} {top['init']}"
            measure = (
                f"largest mean over settings: {name}, {'exact' if exact else 'Hutchinson'}; "
                f"G/H there {top['G_over_H']:.3g}"
            )
            text, seeds = verdict(flags, labels), int(part["seeds"].min())
            structural = [lab for lab, e, v in zip(labels, part["exact"], part["R_over_H"],
                                                   strict=True) if e and v == 0]  # fmt: skip
            where = f"{label}; {setting}"
            if structural:
                where += "; R = 0 by structure (piecewise linear): " + ", ".join(structural)
        else:
            value, low, high, seeds, structural = 0.0, math.nan, math.nan, 0, []
            measure, where = "none", f"{label}; {setting}"
            text = f"{NOT_TESTED}: no network {label}"
        rows.append(ledger_row(
            claim,
            setting=where,
            detail=measure,
            value=value,
            low=low,
            high=high,
            seeds=seeds,
            rule=f"the 95% interval over seeds of the worst kernel's R/H {OP_WORDS[op]} "
                 f"{threshold:g}, per network and scheme (exact values judged as they are)",
            verdict=text,
            structural=bool(len(part)) and len(structural) == len(part),
            page=page,
        ))  # fmt: skip
    return claims_table(rows)


def lambda_max(x, y, networks, schemes, seed: int = 0, **kwargs) -> pd.DataFrame:
    """lambda_max of the whole network's loss Hessian at initialization, per network and scheme.

    By Lanczos on Hessian-vector products (:func:`hessinit.curvature.network_spectrum`, all
    trainable weights with their cross-layer blocks, inference mode). Networks with BatchNorm
    are left out: in inference mode at initialization BatchNorm is the identity, which is not
    the training-mode network the per-tensor norms measure.

    Args:
        x: images, shape (B, H, W, C).
        y: integer labels, shape (B,).
        networks: keys of :data:`NETWORKS` (those with BatchNorm are skipped).
        schemes: scheme names or numbers c.
        seed: the kernels' seed (and the Lanczos start vector's).
        **kwargs: passed to :func:`~hessinit.study.convnets.build`.

    Returns:
        One row per (network, scheme): ``network, init, c, lambda_max, converged`` (``c`` NaN
        for a named scheme).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.random((4, 6, 6, 1)), [0, 1, 2, 3]
        >>> out = lambda_max(x, y, ["cnn relu", "resnet bn"], ["he"], channels=(2, 2))
        >>> out["network"].tolist(), bool(out["lambda_max"][0] > 0)
        (['cnn relu'], True)
    """
    x = np.asarray(x)
    rows = []
    for network in networks:
        if NETWORKS[network][1].get("batchnorm"):
            continue
        model, bases = _unit(network, seed, x.shape[1:], **kwargs)
        for scheme in schemes:
            _set_scheme(model, bases, scheme)
            spectrum = network_spectrum(model, x, y, 1, seed=seed, strict=False)
            rows.append({"network": network, "init": init.scheme_label(scheme), "c": _c(scheme),
                         "lambda_max": float(spectrum.eigenvalues[0]),
                         "converged": bool(spectrum.converged)})  # fmt: skip
    return pd.DataFrame(rows)


def plot_cnn_sweep(frame: pd.DataFrame, spectra: pd.DataFrame | None = None,
                   threshold: float = 0.1):  # fmt: skip
    """Per kernel tensor, ||H||_F and ||R||_F / ||H||_F against the variance factor c.

    One column per network: on top ||H||_F of every kernel tensor (mean over seeds, log-log)
    and, dashed black, the whole network's lambda_max where it was computed; below R/H per
    tensor with the rule's threshold (dotted).

    Args:
        frame: rows of :func:`hessinit.chapters.cnn.kernel_norms` over numeric schemes (``c``).
        spectra: rows of :func:`hessinit.chapters.cnn.lambda_max` over the same c, or ``None``.
        threshold: the rule's R/H threshold.

    Returns:
        The figure.
    """
    with style():
        nets = list(dict.fromkeys(frame["network"]))
        fig, axes = plt.subplots(2, len(nets), figsize=(1.75 * len(nets) + 0.9, 4.6),
                                 sharex=True, squeeze=False, layout="constrained")  # fmt: skip
        for k, net in enumerate(nets):
            top, bottom = axes[0, k], axes[1, k]
            part = frame[frame["network"] == net]
            mean = part.groupby(["tensor", "c"], sort=False)[["H", "R_over_H"]].mean()
            for j, tensor in enumerate(dict.fromkeys(part["tensor"])):
                run = mean.loc[tensor].sort_index()
                color = LAYER_COLORS[j % len(LAYER_COLORS)]
                top.plot(run.index, run["H"], "o-", ms=3, lw=1, color=color, label=tensor)
                bottom.plot(run.index, run["R_over_H"], "o-", ms=3, lw=1, color=color)
            if spectra is not None and (spectra["network"] == net).any():
                lam = spectra[spectra["network"] == net].sort_values("c")
                top.plot(lam["c"], lam["lambda_max"], "k--", lw=1, label="λ_max")
            top.set_xscale("log")
            top.set_yscale("log")
            top.set_title(net)
            top.legend(frameon=False, fontsize=7)
            bottom.axhline(threshold, color="grey", ls=":", lw=1)
            bottom.set_ylim(-0.03, 1.03)
            bottom.set_xlabel("c (variance c / fan-in)")
        axes[0, 0].set_ylabel("‖H‖_F per kernel")
        axes[1, 0].set_ylabel("‖R‖_F / ‖H‖_F")
    return fig


def sweep_rows(
    summary: pd.DataFrame,
    *,
    op: str,
    threshold: float,
    setting: str,
    page: str = "cnn",
) -> pd.DataFrame:
    """Claim 5.4, one row per network: G dominates every kernel block over the sweep of c.

    The rule of claims 5.1-5.2 (:func:`hessinit.chapters.cnn.cnn_rows`) at every variance
    factor c of the sweep: the 95% interval over seeds of the worst kernel tensor's
    ||R||_F / ||H||_F meets ``op threshold`` (:func:`hessinit.study.claims.compare_interval`;
    an exact row is judged on its value). The verdict names the c where it holds
    (:func:`hessinit.study.claims.verdict`); the value is the largest mean ratio over the sweep,
    with its interval.

    Args:
        summary: rows of :func:`worst_intervals` of a sweep (numeric schemes; a ``c`` column).
        op: the comparison, e.g. ``"<"``.
        threshold: the threshold, e.g. 0.1.
        setting: the data and batch.
        page: the chapter.

    Returns:
        The claims rows (:func:`hessinit.study.claims.claims_table`), one per network.

    Example:
        >>> summary = pd.DataFrame({"network": "cnn tanh", "c": [0.5, 2.0, 8.0],
        ...     "R_over_H": [0.02, 0.1, 0.6], "low": [0.01, 0.05, 0.5],
        ...     "high": [0.03, 0.15, 0.7], "G_over_H": 0.9, "seeds": 3, "exact": False})
        >>> sweep_rows(summary, op="<", threshold=0.1, setting="s")["verdict"].tolist()
        ['does not hold for c = 8; holds for c = 0.5; inconclusive for c = 2']
    """
    rows = []
    for network, part in summary.groupby("network", sort=False):
        labels = [f"c = {c:g}" for c in part["c"]]
        flags = [claims.compare(v, op, threshold) if exact
                 else claims.compare_interval(lo, hi, op, threshold)
                 for v, lo, hi, exact in zip(part["R_over_H"], part["low"], part["high"],
                                             part["exact"], strict=True)]  # fmt: skip
        top = part.loc[part["R_over_H"].idxmax()]
        exact = bool(top["exact"])
        low, high = (math.nan, math.nan) if exact else (top["low"], top["high"])
        where = f"{network}, kernels N(0, c / fan-in), c from {part['c'].min():g} to "
        where += f"{part['c'].max():g}; {setting}"
        structural = bool(part["exact"].all()) and bool((part["R_over_H"] == 0).all())
        if structural:
            where += "; R = 0 by structure (piecewise linear)"
        rows.append(ledger_row(
            "5.4",
            setting=where,
            detail=f"largest mean over the sweep: c = {top['c']:g}, "
            f"{'exact' if exact else 'Hutchinson'}; G/H there {top['G_over_H']:.3g}",
            structural=structural,
            value=top["R_over_H"], low=low, high=high, seeds=int(part["seeds"].min()),
            rule=f"the 95% interval over seeds of the worst kernel's R/H {op} {threshold:g}, at "
            "each c of the sweep (exact values judged as they are)",
            verdict=claims.verdict(flags, labels), page=page))  # fmt: skip
    return claims.claims_table(rows)


# --------------------------------------------------------------------------------------------
# The words the page's prose reads from the measurements
# --------------------------------------------------------------------------------------------


def sweep_words(
    sweep: pd.DataFrame, spectra: pd.DataFrame, summary: pd.DataFrame, sweep_claims: pd.DataFrame
) -> dict[str, str]:
    """What the c sweep's prose says: how far each network's norms move, and claim 5.4's verdict.

    Per network: ``moves`` is the largest, over kernel tensors, of max_c / min_c of the mean
    ||H||_F over seeds; ``lam_moves`` is max_c / min_c of lambda_max; ``worst_range`` the range
    of the worst ||R|| / ||H|| over c; ``v54`` each network's verdict (the network is the
    setting's text before its first comma).

    Args:
        sweep: :func:`kernel_norms` over the sweep (``network``, ``tensor``, ``c``, ``H``).
        spectra: :func:`lambda_max` (``network``, ``lambda_max``).
        summary: :func:`worst_intervals` of ``sweep`` (``network``, ``R_over_H``).
        sweep_claims: :func:`sweep_rows` (``setting``, ``verdict``).

    Returns:
        ``{"v54", "moves", "lam_moves", "worst_range"}`` -> Markdown text.

    Example:
        >>> sweep = pd.DataFrame({"network": ["a"] * 4, "tensor": ["k1", "k1", "k2", "k2"],
        ...                       "c": [1, 4, 1, 4], "H": [1.0, 8.0, 1.0, 2.0]})
        >>> spectra = pd.DataFrame({"network": ["a", "a"], "lambda_max": [3.0, 12.0]})
        >>> summary = pd.DataFrame({"network": ["a", "a"], "R_over_H": [0.01, 0.2]})
        >>> rows = pd.DataFrame({"setting": ["a, mnist"], "verdict": ["holds"]})
        >>> sweep_words(sweep, spectra, summary, rows)  # doctest: +NORMALIZE_WHITESPACE
        {'v54': 'a: holds', 'moves': 'a 8', 'lam_moves': 'a a factor 4',
         'worst_range': 'a 0.01 to 0.2'}
    """
    nets = sweep_claims["setting"].str.split(",").str[0]
    moves = sweep.groupby(["network", "tensor", "c"], sort=False)["H"].mean()
    moves = moves.groupby(["network", "tensor"], sort=False).agg(lambda v: v.max() / v.min())
    moves = moves.groupby("network", sort=False).max()
    lam = spectra.groupby("network", sort=False)["lambda_max"].agg(lambda v: v.max() / v.min())
    ranges = summary.groupby("network", sort=False)["R_over_H"].agg(["min", "max"])
    return {
        "v54": "; ".join(f"{n}: {v}" for n, v in zip(nets, sweep_claims["verdict"], strict=True)),
        "moves": ", ".join(f"{n} {v:.3g}" for n, v in moves.items()),
        "lam_moves": ", ".join(f"{n} a factor {v:.3g}" for n, v in lam.items()),
        "worst_range": ", ".join(
            f"{n} {r['min']:.2g} to {r['max']:.2g}" for n, r in ranges.iterrows()
        ),
    }
