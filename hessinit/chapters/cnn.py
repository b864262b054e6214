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

import hashlib
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import init
from ..curvature.spectra import network_spectrum
from ..curvature.tensors import tensors_hessian_norms
from ..nn.convnets import kernel_fans, kernel_layers
from ..study import claims, stats
from ..study.claimdata import SENSITIVITY, claims_yml, frame_rows
from ..study.claims import claims_table
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
        _UNITS[key] = (builder(**options, seed=seed, sd=[1.0] * count), {}, count)
    model, bases, count = _UNITS[key]
    if seed not in bases:
        fresh = builder(**options, seed=seed, sd=[1.0] * count)
        bases[seed] = [layer.kernel.numpy().astype(np.float64) for layer in kernel_layers(fresh)]
    return model, bases[seed]


#: Norms (and spectra) already computed, by (network, input shape, builder options, seed,
#: kernel sds, data, budget): a scheme whose sds equal an earlier one's (He's are c = 2's) is
#: not computed twice.
_NORMS: dict = {}

#: Products per call (:func:`hessinit.curvature.tensors_hessian_norms`): the chapter's requests
#: come in 72 (conv1's exact columns), 10 (a deflated estimate's sketch) and 20 + 16 rows (its
#: Q and probes), so calls of 12 are padded by 2 rows per estimated tensor only.
ROWS = 12

#: Networks whose rows run vectorized (``tf.vectorized_map``, the primal passes shared by the
#: rows): the BatchNorm ResNet's many small operations, 35 against 57-62 ms a row at B = 128
#: (load 6); the tanh CNN's convolutions run faster in the loop (2.0 against 2.5 s a setting).
VECTORIZED = ("resnet bn",)


def _set_scheme(model, bases, scheme) -> None:
    """Set kernel l of ``model`` to sigma_l Z_l, sigma_l of ``scheme`` from the kernel's fans."""
    sds = init.model_kernel_sds(scheme, model)
    for layer, base, sd in zip(kernel_layers(model), bases, sds, strict=True):
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
    probes: int = 16,
    *,
    estimate: str = "hutchpp",
    max_products: int = 256,
    sketch: int = 10,
    **kwargs,
) -> pd.DataFrame:
    """||H||_F, ||G||_F, ||R||_F of every kernel tensor, per network, scheme and seed.

    The method per tensor (:func:`hessinit.curvature.tensors.plan_tensor`): exact where the
    logits are piecewise linear in the tensor (then R = 0 by structure, not by measurement) or
    where the exact columns take at most ``max_products`` Hessian-vector products (2P for a
    tensor of P weights: conv1, P = 72, by default), else the estimate ``estimate``:
    ``"hutchpp"``, deflated Hutchinson, ||M||_F^2 = ||M Q||_F^2 + E ||M (I - QQ^T) v||^2 with a
    ``sketch``-column basis Q of H's top and ``probes`` Rademacher probes v, or
    ``"hutchinson"`` with ``probes`` probes and no deflation (the seed of either is the
    network's). One network per (network, seed) serves every scheme (module docstring); the
    tensors of a network are computed together
    (:func:`hessinit.curvature.tensors.tensors_hessian_norms`, calls of :data:`ROWS`
    products, vectorized for the networks of :data:`VECTORIZED`), each tensor through its own
    program, whose products stop the backward pass at its layer (on the BatchNorm ResNet, 5.5
    against 8.7 s a setting, one thread, with the program shared by the four 3x3x8x8 kernels);
    a scheme whose kernel sds equal an earlier call's on the same data and budget reuses its
    norms.

    Args:
        x: images, shape (B, H, W, C).
        y: integer labels, shape (B,).
        networks: keys of :data:`NETWORKS`.
        schemes: scheme names or numbers c (c / fan-in).
        seeds: kernel seeds.
        probes: Rademacher probes per estimated tensor (at least 2).
        estimate: ``"hutchpp"`` or ``"hutchinson"``, the estimate past ``max_products``.
        max_products: the most products of an exact tensor.
        sketch: ``"hutchpp"``'s deflated directions.
        **kwargs: passed to :func:`~hessinit.study.convnets.build` (e.g. ``channels``).

    Returns:
        One row per (network, scheme, seed, tensor): ``network, init, c, seed, tensor, method,
        fan_in, H, G, R, R_over_H, G_over_H, R_over_G`` (``c`` NaN for a named scheme, ratios
        NaN where their denominator is 0).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.random((4, 6, 6, 1)).astype("float32"), [0, 1, 2, 3]
        >>> out = kernel_norms(x, y, ["cnn relu"], ["he"], [0], channels=(2, 2))
        >>> out[["tensor", "method", "R"]].values.tolist()
        [['conv1', 'jacobian', 0.0], ['conv2', 'jacobian', 0.0], ['dense', 'kronecker', 0.0]]
    """
    x = np.asarray(x)
    data = hashlib.sha256(x.tobytes() + np.asarray(y).tobytes()).hexdigest()
    budget = (estimate, max_products, probes, sketch)
    rows = []
    for network in networks:
        for seed in seeds:
            model, bases = _unit(network, seed, x.shape[1:], **kwargs)
            layers = kernel_layers(model)
            for scheme in schemes:
                sds = tuple(init.model_kernel_sds(scheme, model))
                key = (network, x.shape, repr(sorted(kwargs.items())), seed, sds, data, budget)
                if key not in _NORMS:  # a scheme seen before with the same sds (he is c = 2)
                    _set_scheme(model, bases, scheme)
                    _NORMS[key] = tensors_hessian_norms(
                        model, [layer.kernel for layer in layers], x, y, rows=ROWS,
                        vectorized=network in VECTORIZED, shared=False,
                        max_products=max_products, fallback=estimate, probes=probes,
                        sketch=sketch, seed=seed,
                    )  # fmt: skip
                for layer, n in zip(layers, _NORMS[key], strict=True):
                    ok = n.H > 0
                    rows.append({
                        "network": network, "init": init.scheme_label(scheme), "c": _c(scheme),
                        "seed": seed, "tensor": layer.name, "method": n.method,
                        "fan_in": kernel_fans(layer.kernel.shape)[0], "H": n.H, "G": n.G, "R": n.R,
                        "R_over_H": n.R / n.H if ok else np.nan,
                        "G_over_H": n.G / n.H if ok else np.nan,
                        "R_over_G": n.R / n.G if n.G > 0 else np.nan,
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


#: The methods of :func:`hessinit.curvature.tensors.tensor_hessian_norms` that estimate.
ESTIMATED = ("hutchinson", "hutchpp")


def worst_intervals(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (network, init): the worst tensor's R/H per seed, averaged over seeds with its interval.

    The worst tensor of a seed is the one with the largest ||R||_F / ||H||_F; its ratios are
    averaged over the seeds with :func:`hessinit.study.stats.mean_interval` (Student t; an
    estimate's probe noise is part of the seed-to-seed spread). ``R_over_G`` is the same for
    the tensor with the largest ||R||_F / ||G||_F (the rule ||G|| > ||R|| reads it below 1;
    absent without an ``R_over_G`` column). ``exact`` says whether every tensor behind the row
    was computed exactly (no method of :data:`ESTIMATED`).

    Args:
        frame: rows of :func:`kernel_norms`.

    Returns:
        One row per (network, init), in order of appearance: ``network, init, c, R_over_H,
        low, high, G_over_H, seeds, exact`` and, with ``R_over_G`` in ``frame``, ``R_over_G,
        RG_low, RG_high`` (``c`` NaN for a named scheme or without a ``c`` column).

    Example:
        >>> frame = pd.DataFrame({"network": "n", "init": "he", "seed": [0, 0, 1, 1],
        ...                       "tensor": ["a", "b"] * 2, "method": "hutchpp",
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
        row = {"network": network, "init": scheme,
               "c": float(part["c"].iloc[0]) if "c" in part else math.nan,
               "R_over_H": r.value, "low": r.low, "high": r.high, "G_over_H": g.value,
               "seeds": r.n, "exact": bool((~part["method"].isin(ESTIMATED)).all())}  # fmt: skip
        if "R_over_G" in part:
            rg = good.dropna(subset=["R_over_G"])
            q = stats.mean_interval(rg.groupby("seed")["R_over_G"].max())
            row.update(R_over_G=q.value, RG_low=q.low, RG_high=q.high)
        rows.append(row)
    return pd.DataFrame(rows)


def _frame(part: pd.DataFrame, labels, quantity: str) -> pd.DataFrame:
    """The per-setting frame of claimdata.FRAME_COLUMNS from rows of :func:`worst_intervals`."""
    low, high = ("low", "high") if quantity == "R_over_H" else ("RG_low", "RG_high")
    exact = part["exact"].astype(bool).to_numpy()
    return pd.DataFrame({
        "setting": list(labels),
        "value": part[quantity].to_numpy(dtype=float),
        "low": np.where(exact, np.nan, part[low].to_numpy(dtype=float)),
        "high": np.where(exact, np.nan, part[high].to_numpy(dtype=float)),
        "seeds": part["seeds"].to_numpy(dtype=int),
        "judged": True,
    })  # fmt: skip


def kernels_frame(summary: pd.DataFrame, batchnorm: bool, quantity: str = "R_over_H"):
    """Claims 5.1 (``batchnorm`` False) and 5.2 (True): the per-setting frame of the rule.

    One setting per (network, scheme) of the kind (a network is with BatchNorm when its name
    contains "bn"): the mean over seeds of the worst kernel's ``quantity`` with its 95%
    interval, NaN for a row whose tensors were all exact (judged on its value:
    :func:`hessinit.study.claimdata.frame_rows`).

    Args:
        summary: rows of :func:`worst_intervals`.
        batchnorm: the networks with BatchNorm (claim 5.2) or without (5.1).
        quantity: ``"R_over_H"`` (the claim's rule) or ``"R_over_G"`` (||G|| > ||R|| reads
            it below 1).

    Returns:
        The frame of :data:`hessinit.study.claimdata.FRAME_COLUMNS`.

    Example:
        >>> summary = pd.DataFrame({"network": ["cnn relu", "resnet bn"], "init": "he",
        ...     "R_over_H": [0.0, 1.0], "low": [0.0, 0.9], "high": [0.0, 1.1], "seeds": 5,
        ...     "exact": [True, False]})
        >>> kernels_frame(summary, False)[["setting", "value", "low"]].values.tolist()
        [['cnn relu he', 0.0, nan]]
    """
    part = summary[summary["network"].str.contains("bn") == batchnorm]
    return _frame(part, (f"{n} {i}" for n, i in zip(part["network"], part["init"],
                                                    strict=True)), quantity)  # fmt: skip


def cnn_rows(
    summary: pd.DataFrame,
    *,
    threshold: float,
    setting: str,
    page: str = "cnn",
) -> pd.DataFrame:
    """Claims 5.1-5.2: the linearization term dominates each kernel's block in CNNs at init.

    The dominance chapter's rule (claims 1.2-1.3) carried to convolutional networks, judged by
    :func:`hessinit.study.claimdata.frame_rows` on :func:`kernels_frame`: per network and
    scheme, the 95% interval over seeds of the worst kernel tensor's ||R||_F / ||H||_F against
    the claim's comparison with ``threshold`` (inconclusive when it straddles; an exact row on
    its value). For piecewise-linear networks R = 0 by structure, a fact of the architecture:
    those settings are named in the row's setting, and a row whose every setting is one takes
    the entry's ``structural_kind``. Claim 5.1: networks without BatchNorm; 5.2: with.

    Args:
        summary: rows of :func:`hessinit.chapters.cnn.worst_intervals`.
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
        >>> cnn_rows(summary, threshold=0.1, setting="tiny")["verdict"].tolist()
        ['holds only when cnn relu he; inconclusive for cnn tanh he', 'does not hold']
    """
    rows = []
    for claim, bn, label in (("5.1", False, "without BatchNorm"), ("5.2", True, "with BatchNorm")):
        entry = claims_yml()[claim]
        part = summary[summary["network"].str.contains("bn") == bn]
        frame = kernels_frame(summary, bn)
        where, measure = f"{label}; {setting}", None
        structural = frame["setting"][frame["low"].isna() & (frame["value"] == 0)].tolist()
        if len(part):
            top = part.loc[part["R_over_H"].idxmax()]
            method = "exact" if top["exact"] else "estimated"
            measure = (f"{entry['measure']} (largest mean over settings: {top['network']} "
                       f"{top['init']}, {method}; G/H there {top['G_over_H']:.3g})")  # fmt: skip
        if structural:
            where += "; R = 0 by structure (piecewise linear): " + ", ".join(structural)
        if len(part) and len(structural) == len(part):
            entry = {**entry, "kind": entry.get("structural_kind", entry["kind"])}
        rows.append(frame_rows(entry, frame, setting=where, measure=measure,
                               threshold=threshold, page=page))  # fmt: skip
    return claims_table(pd.concat(rows).to_dict("records"))


def sensitivity(summary: pd.DataFrame, sweep_summary: pd.DataFrame | None = None):
    """Claims 5.1, 5.2 and 5.4 under the rules of :data:`SENSITIVITY`: how the verdict moves.

    Each claim's frame (:func:`kernels_frame`, :func:`sweep_frame` per network) judged by
    :func:`hessinit.study.claimdata.frame_rows` at R/H < 0.1, R/H < 0.3 and R/G < 1 (||G|| >
    ||R||); the ledger's rows keep the claim's own threshold.

    Args:
        summary: rows of :func:`worst_intervals` of the schemes (claims 5.1-5.2).
        sweep_summary: rows of :func:`worst_intervals` of the sweep of c (claim 5.4), or None.

    Returns:
        One row per claim and setting: ``claim, setting`` and one verdict column per rule.

    Example:
        >>> summary = pd.DataFrame({"network": ["cnn tanh"], "init": "he", "R_over_H": 0.2,
        ...     "low": 0.15, "high": 0.25, "R_over_G": 0.25, "RG_low": 0.2, "RG_high": 0.3,
        ...     "seeds": 5, "exact": False})
        >>> sensitivity(summary).iloc[0, 2:].tolist()
        ['does not hold', 'holds', 'holds']
    """
    cases = [("5.1", "without BatchNorm", lambda q: kernels_frame(summary, False, q)),
             ("5.2", "with BatchNorm", lambda q: kernels_frame(summary, True, q))]  # fmt: skip
    if sweep_summary is not None:
        cases += [("5.4", net, lambda q, net=net: sweep_frame(sweep_summary, net, q))
                  for net in dict.fromkeys(sweep_summary["network"])]  # fmt: skip
    rows = []
    for claim, where, frame_of in cases:
        entry = claims_yml()[claim]
        row = {"claim": claim, "setting": where}
        for rule, quantity, threshold in SENSITIVITY:
            row[rule] = frame_rows(entry, frame_of(quantity), setting=where,
                                   threshold=threshold)["verdict"].iloc[0]  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def lambda_max(x, y, networks, schemes, seed: int = 0, **kwargs) -> pd.DataFrame:
    """lambda_max of the whole network's loss Hessian at initialization, per network and scheme.

    By Lanczos on Hessian-vector products (:func:`hessinit.curvature.network_spectrum`, all
    trainable weights with their cross-layer blocks, inference mode). Networks with BatchNorm
    are left out: in inference mode at initialization BatchNorm is the identity, which is not
    the training-mode network the per-tensor norms measure. A scheme whose kernel sds equal an
    earlier call's on the same data reuses its spectrum.

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
    data = hashlib.sha256(x.tobytes() + np.asarray(y).tobytes()).hexdigest()
    rows = []
    for network in networks:
        if NETWORKS[network][1].get("batchnorm"):
            continue
        model, bases = _unit(network, seed, x.shape[1:], **kwargs)
        for scheme in schemes:
            sds = tuple(init.model_kernel_sds(scheme, model))
            key = ("lambda_max", network, x.shape, repr(sorted(kwargs.items())), seed, sds, data)
            if key not in _NORMS:  # as in kernel_norms: He's sds are c = 2's
                _set_scheme(model, bases, scheme)
                _NORMS[key] = network_spectrum(model, x, y, 1, seed=seed, strict=False)
            spectrum = _NORMS[key]
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


def sweep_frame(summary: pd.DataFrame, network: str, quantity: str = "R_over_H"):
    """Claim 5.4 for one network: the per-setting frame of the rule, one setting per c.

    Args:
        summary: rows of :func:`worst_intervals` of a sweep (numeric schemes; a ``c`` column).
        network: the network.
        quantity: ``"R_over_H"`` or ``"R_over_G"``, as in :func:`kernels_frame`.

    Returns:
        The frame of :data:`hessinit.study.claimdata.FRAME_COLUMNS` (settings ``"c = <c>"``).

    Example:
        >>> summary = pd.DataFrame({"network": "cnn tanh", "c": [0.5, 2.0], "R_over_H": 0.1,
        ...     "low": 0.05, "high": 0.15, "seeds": 5, "exact": False})
        >>> sweep_frame(summary, "cnn tanh")["setting"].tolist()
        ['c = 0.5', 'c = 2']
    """
    part = summary[summary["network"] == network]
    return _frame(part, (f"c = {c:g}" for c in part["c"]), quantity)


def sweep_rows(
    summary: pd.DataFrame,
    *,
    threshold: float,
    setting: str,
    page: str = "cnn",
) -> pd.DataFrame:
    """Claim 5.4, one row per network: G dominates every kernel block over the sweep of c.

    The rule of claims 5.1-5.2 (:func:`hessinit.chapters.cnn.cnn_rows`) at every variance
    factor c of the sweep, judged by :func:`hessinit.study.claimdata.frame_rows` on
    :func:`sweep_frame`: the 95% interval over seeds of the worst kernel tensor's
    ||R||_F / ||H||_F against ``threshold`` (an exact row on its value). The verdict names the
    c where it holds; the value is the largest mean ratio over the sweep, with its interval.

    Args:
        summary: rows of :func:`worst_intervals` of a sweep (numeric schemes; a ``c`` column).
        threshold: the threshold, e.g. 0.1.
        setting: the data and batch.
        page: the chapter.

    Returns:
        The claims rows (:func:`hessinit.study.claims.claims_table`), one per network.

    Example:
        >>> summary = pd.DataFrame({"network": "cnn tanh", "c": [0.5, 2.0, 8.0],
        ...     "R_over_H": [0.02, 0.1, 0.6], "low": [0.01, 0.05, 0.5],
        ...     "high": [0.03, 0.15, 0.7], "G_over_H": 0.9, "seeds": 3, "exact": False})
        >>> sweep_rows(summary, threshold=0.1, setting="s")["verdict"].tolist()
        ['does not hold for c = 8; holds for c = 0.5; inconclusive for c = 2']
    """
    rows = []
    for network, part in summary.groupby("network", sort=False):
        entry = claims_yml()["5.4"]
        top = part.loc[part["R_over_H"].idxmax()]
        where = f"{network}, kernels N(0, c / fan-in), c from {part['c'].min():g} to "
        where += f"{part['c'].max():g}; {setting}"
        if bool(part["exact"].all()) and bool((part["R_over_H"] == 0).all()):
            where += "; R = 0 by structure (piecewise linear)"
            entry = {**entry, "kind": entry.get("structural_kind", entry["kind"])}
        measure = (f"{entry['measure']} (largest mean over the sweep: c = {top['c']:g}, "
                   f"{'exact' if top['exact'] else 'estimated'}; G/H there "
                   f"{top['G_over_H']:.3g})")  # fmt: skip
        rows.append(frame_rows(entry, sweep_frame(summary, network), setting=where,
                               measure=measure, threshold=threshold, page=page))  # fmt: skip
    return claims.claims_table(pd.concat(rows).to_dict("records"))


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
