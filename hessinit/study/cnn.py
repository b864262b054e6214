"""The convolutional networks chapter: per-tensor H, G, R of CNNs and ResNets at initialization.

For each network, initialization scheme and seed, every kernel tensor theta gets the Frobenius
norms of its Hessian block H = G + R (:func:`hessinit.curvature.tensors.tensor_hessian_norms`)
and the dominance chapter's ratios ||R||_F / ||H||_F and ||G||_F / ||H||_F. Where the logits are
piecewise linear in theta (ReLU networks without BatchNorm) the tensors code takes R = 0 by
structure (exact); elsewhere exact columns cost 2P Hessian-vector products per tensor, so the
chapter asks for a fixed number of Hutchinson probes instead (``method="hutchinson"``).

One network per architecture is kept for every seed and call; a seed's standard normal kernels
Z_l are the builder's own draws, and every scheme sets kernel l to sigma_l Z_l (so the same
weights as :func:`build`): a sweep over the variance factor c (kernels N(0, c / fan_in))
changes the scale, never the directions, and reuses the traced products. The depth-stable scale
(:class:`ConvDepthGrowth` and :func:`hessinit.study.cnn.stable_roots`) carries the MLP
construction of :class:`hessinit.init.DepthGrowth` to plain ReLU CNNs of growing depth
(:func:`hessinit.nn.convnets.plain_cnn`); claims 5.3 and 5.4 are built here from the verdict
helpers of :mod:`hessinit.study.claims`.

Imports: numpy, pandas, :mod:`hessinit.init`, :mod:`hessinit.nn`, :mod:`hessinit.curvature`
and :mod:`hessinit.study` (claims, stats).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import init
from ..curvature.spectra import network_spectrum
from ..curvature.tensors import layer_tensor_norms
from ..nn.convnets import kernel_fans, kernel_layers, plain_cnn, small_cnn, small_resnet
from . import claims, stats

#: The chapter's networks, each name mapped to its builder and the builder's keyword arguments.
NETWORKS = {
    "cnn relu": (small_cnn, {"activation": "relu"}),
    "cnn tanh": (small_cnn, {"activation": "tanh"}),
    "resnet": (small_resnet, {"batchnorm": False}),
    "resnet bn": (small_resnet, {"batchnorm": True}),
}


def build(network: str, scheme: str | float, seed: int, input_shape=(28, 28, 1), **kwargs):
    """One of :data:`NETWORKS` with every kernel drawn from N(0, sigma_l^2) of ``scheme``.

    Args:
        network: a key of :data:`NETWORKS`.
        scheme: as in :func:`hessinit.init.scheme_std` (conv fan-in k k c_in).
        seed: the kernels' seed.
        input_shape: (height, width, channels) of one image.
        **kwargs: passed to the builder (e.g. ``channels``, ``dtype``).

    Returns:
        The Keras model.

    Raises:
        ValueError: an unknown network.

    Example:
        >>> m = build("cnn relu", "he", 0, input_shape=(6, 6, 1), channels=(2, 2))
        >>> round(float(np.std(m.get_layer("conv2").kernel.numpy()) ** 2 * 18), 1)
        1.8
    """
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}; choose one of {list(NETWORKS)}")
    builder, options = NETWORKS[network]
    options = {**options, **kwargs, "input_shape": input_shape, "seed": seed}
    stds = init.model_kernel_stds(scheme, builder(**options))
    return builder(**options, kernel_std=stds)


#: Networks of :func:`_unit` by (network, input shape, builder options), each with its seeds'
#: N(0, 1) kernels: every call sets all kernels first, so one Keras model (and its traced
#: products) serves every seed, scheme and call. Only kernels depend on the seed (biases start
#: at zero, BatchNorm at gamma = 1, beta = 0).
_UNITS: dict = {}


def _unit(network: str, seed: int, input_shape, **kwargs):
    """(model, Z): :func:`build`'s network with N(0, 1) kernels Z_l of ``seed`` (float64 copies).

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
        **kwargs: passed to :func:`build` (e.g. ``channels``).

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
        **kwargs: passed to :func:`build`.

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


def sweep_rows(
    summary: pd.DataFrame,
    *,
    op: str,
    threshold: float,
    setting: str,
    figure: str = "fig-cnn-sweep",
    page: str = "cnn",
) -> pd.DataFrame:
    """Claim 5.4, one row per network: G dominates every kernel block over the sweep of c.

    The rule of claims 5.1-5.2 (:func:`hessinit.study.claims.cnn_rows`) at every variance
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
        figure: the figure label of the rows.
        page: the chapter.

    Returns:
        The claims rows (:func:`hessinit.study.claims.claims_table`), one per network.

    Example:
        >>> summary = pd.DataFrame({"network": "cnn tanh", "c": [0.5, 2.0, 8.0],
        ...     "R_over_H": [0.02, 0.1, 0.6], "low": [0.01, 0.05, 0.5],
        ...     "high": [0.03, 0.15, 0.7], "G_over_H": 0.9, "seeds": 3, "exact": False})
        >>> sweep_rows(summary, op="<", threshold=0.1, setting="s")["verdict"].tolist()
        ['holds only when c = 0.5; inconclusive for c = 2']
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
        if bool(part["exact"].all()) and bool((part["R_over_H"] == 0).all()):
            where += "; R = 0 by structure (piecewise linear)"
        rows.append(claims.claim_row(
            "5.4", source="this book's formalization", wording=claims.DOMINANCE_WORDING,
            setting=where,
            measure=f"largest mean over the sweep of the worst kernel's R/H (c = {top['c']:g}, "
            f"{'exact' if exact else 'Hutchinson'}; G/H there {top['G_over_H']:.3g})",
            value=top["R_over_H"], low=low, high=high, seeds=int(part["seeds"].min()),
            rule=f"the 95% interval over seeds of the worst kernel's R/H {op} {threshold:g}, at "
            "each c of the sweep (exact values judged as they are)",
            verdict=claims.verdict(flags, labels), figure=figure, page=page))  # fmt: skip
    return claims.claims_table(rows)


# --- the depth-stable scale of plain ReLU CNNs ---


class ConvDepthGrowth(init.DepthGrowth):
    """The log-growth per added convolution of the layers' Hessian level, as a function of c.

    :class:`hessinit.init.DepthGrowth` for plain CNNs (:func:`hessinit.nn.convnets.plain_cnn`):
    for each depth D one network of D 3x3 convolutions (``channels`` each, zero biases), global
    average pooling and the logits layer, with kernels sqrt(c / fan_in) Z_l (Z_l standard
    normal draws of ``seed``, fixed for every c; a conv's fan-in is 9 c_in). For each c, every
    kernel's h_l = ||H_l||_F / fan_in is computed exactly
    (:func:`hessinit.curvature.tensors.layer_tensor_norms`: with ReLU the logits are piecewise
    linear in every kernel, so R = 0 and H = G from per-sample Jacobians; the logits layer by
    its Kronecker form); the network's level is the geometric mean of its h_l and g(c) the
    least-squares slope of log level against D (inherited). Every evaluated (c, g(c)) is kept
    in ``history``.

    Args:
        x: images, shape (B, H, W, C).
        y: integer labels, shape (B,).
        depths: numbers of convolutions (at least two distinct).
        channels: channels of every convolution.
        seed: seed of the kernels.
        activation: f (piecewise linear for the exact Jacobian route; others are estimated).
        num_classes: K.
        models: a dict depth -> plain CNN of the same shape to reuse (its kernels are
            overwritten; missing depths are added), so several seeds share traced functions.

    Raises:
        ValueError: fewer than two distinct depths.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.random((8, 6, 6, 1)), rng.integers(0, 3, 8)
        >>> g = ConvDepthGrowth(x, y, depths=(1, 2), channels=3, num_classes=3)
        >>> bool(g(0.5) < g(2.0) < g(8.0)), len(g.history)  # ReLU: g grows with c
        (True, 3)
    """

    def __init__(self, x, y, depths, channels=8, seed=0, activation="relu", num_classes=10,
                 models=None):  # fmt: skip
        if len(set(depths)) < 2:
            raise ValueError(f"need at least two distinct depths, got {depths}")
        self.x = np.asarray(x, np.float32)
        self.y = np.asarray(y).reshape(-1)
        self.depths = sorted(set(int(d) for d in depths))
        self.training, self.seed = False, seed
        self.models = {} if models is None else models
        self.bases = {}
        for d in self.depths:
            unit = plain_cnn(self.x.shape[1:], num_classes, d, channels, activation,
                             kernel_std=[1.0] * (d + 1), seed=seed)  # fmt: skip
            self.models.setdefault(d, unit)
            self.bases[d] = [layer.kernel.numpy().astype(np.float64)
                             / math.sqrt(kernel_fans(layer.kernel.shape)[0])
                             for layer in kernel_layers(unit)]  # fmt: skip
        self.evaluations, self.last_profile, self.history = 0, None, []

    def profile(self, c: float) -> pd.DataFrame:
        """h_l of every kernel of every network at variance factor c (``depth, layer, H_norm``).

        Args:
            c: the variance factor.

        Returns:
            One row per (depth, layer), layers numbered from 1 (the logits layer last).
        """
        rows = []
        for d in self.depths:
            model = self.models[d]
            layers = kernel_layers(model)
            for layer, base in zip(layers, self.bases[d], strict=True):
                layer.kernel.assign((base * math.sqrt(c)).astype(layer.kernel.dtype))
            for i, layer in enumerate(layers):
                n = layer_tensor_norms(model, layer, self.x, self.y, weight="kernel")
                h = n.H / kernel_fans(layer.kernel.shape)[0]
                rows.append({"depth": d, "layer": i + 1, "H_norm": h})
        self.evaluations += 1
        return pd.DataFrame(rows)

    def __call__(self, c: float) -> float:
        """The log-growth g(c) per added convolution, recorded in ``history``.

        Args:
            c: the variance factor.

        Returns:
            The slope of log level against depth.
        """
        g = super().__call__(c)
        self.history.append((float(c), g))
        return g


def stable_roots(x, y, depths, channels, batch, seeds, xtol=0.02, guess=2.0, label="relu CNN"):
    """The depth-stable variance factor c* of plain ReLU CNNs, found separately for every seed.

    Per seed, ``batch`` images drawn without replacement by ``np.random.default_rng(seed)`` and
    kernels of that seed; :class:`ConvDepthGrowth` is solved for g(c*) = 0 by
    :func:`hessinit.init.depth_stable_variance` (bracket from (guess / 2, 2 guess), Brent's
    method in log c to ``xtol``). The networks are built once and shared by the seeds.

    Args:
        x: images, shape (N, H, W, C).
        y: integer labels, shape (N,).
        depths: numbers of convolutions, at least two distinct.
        channels: channels of every convolution.
        batch: images per Hessian.
        seeds: one root per seed.
        xtol: the root's tolerance in log c.
        guess: the centre of the first bracket (not assumed to be the answer).
        label: the setting's label.

    Returns:
        ``(roots, evaluations)``: ``roots`` has the columns of
        :func:`hessinit.study.experiments.stable_roots` (``label, activation, dropout, seed,
        c_star, log_growth, bracketed, c_lo, c_hi, evaluations, depth, layer, H_norm``, the
        profile at the root; one row with NaN profile for a seed without a root), for
        :func:`hessinit.study.analysis.root_summary`; ``evaluations`` every evaluated
        ``seed, c, log_growth``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.random((20, 6, 6, 1)), rng.integers(0, 10, 20)
        >>> roots, evals = stable_roots(x, y, [1, 2], 3, 8, [0], xtol=0.1)
        >>> bool(roots["bracketed"].all()), sorted(set(roots["depth"]))
        (True, [1, 2])
    """
    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    models, frames, evals = {}, [], []
    for seed in seeds:
        idx = np.random.default_rng(seed).choice(len(y), batch, replace=False)
        growth = ConvDepthGrowth(x[idx], y[idx], depths, channels, seed, models=models)
        root = init.depth_stable_variance(growth, guess, xtol=xtol)
        head = {"label": label, "activation": "relu", "dropout": 0.0, "seed": seed,
                "c_star": root.c, "log_growth": root.log_growth, "bracketed": root.bracketed,
                "c_lo": root.bracket[0], "c_hi": root.bracket[1],
                "evaluations": root.evaluations}  # fmt: skip
        if root.bracketed:
            frames.append(root.profile.assign(**head)[[*head, "depth", "layer", "H_norm"]])
        else:
            frames.append(pd.DataFrame([{**head, "depth": np.nan, "layer": np.nan,
                                         "H_norm": np.nan}]))  # fmt: skip
        evals += [{"seed": seed, "c": c, "log_growth": g} for c, g in growth.history]
    return pd.concat(frames, ignore_index=True), pd.DataFrame(evals)


def depth_rows(
    summary: pd.DataFrame,
    *,
    xtol: float,
    max_ratio: float,
    setting: str,
    figure: str = "fig-cnn-roots",
    page: str = "cnn",
) -> pd.DataFrame:
    """Claim 5.3: the depth-stable c* of plain ReLU CNNs recovers He's c = 2.

    Claim 2.1's rule (:func:`hessinit.study.claims.init_root_rows`, the MLP rows) applied to
    the CNN roots, so the two chapters judge alike: He's value must lie in the 95% interval of
    c* over seeds widened by the root tolerance, and that interval be no wider than a factor
    ``max_ratio``. The source is this book's formalization: the abstract says the approach
    "recovers previous results" for ReLU, not that it does so for convolutions.

    Args:
        summary: rows of :func:`hessinit.study.analysis.root_summary` of
            :func:`hessinit.study.cnn.stable_roots`.
        xtol: the root tolerance in log c.
        max_ratio: the widest interval (high / low) that can decide.
        setting: the networks.
        figure: the figure label of the rows.
        page: the chapter.

    Returns:
        The claims rows, claim ``"5.3"``, one per setting.

    Example:
        >>> summary = pd.DataFrame({"label": ["relu CNN"], "c": [2.3], "low": [2.1],
        ...     "high": [2.5], "seeds": [4], "c_lo": 1.0, "c_hi": 4.0})
        >>> row = depth_rows(summary, xtol=0.02, max_ratio=1.5, setting="s").iloc[0]
        >>> row["claim"], row["verdict"].split(":")[0]
        ('5.3', 'does not hold')
    """
    classic = {label: (2.0, "He's c = 2", "this book's formalization")
               for label in summary["label"]}  # fmt: skip
    rows = claims.init_root_rows(summary, classic=classic, xtol=xtol, max_ratio=max_ratio,
                                 setting=setting, figure=figure, page=page)  # fmt: skip
    return rows.assign(claim="5.3")
