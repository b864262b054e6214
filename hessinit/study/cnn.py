"""The convolutional networks chapter: per-tensor H, G, R of CNNs and ResNets at initialization.

For each network, initialization scheme and seed, every kernel tensor theta gets the Frobenius
norms of its Hessian block H = G + R (:func:`hessinit.curvature.tensors.tensor_hessian_norms`)
and the dominance chapter's ratios ||R||_F / ||H||_F and ||G||_F / ||H||_F. Where the logits are
piecewise linear in theta (ReLU networks without BatchNorm) the tensors code takes R = 0 by
structure (exact); elsewhere exact columns cost 2P Hessian-vector products per tensor, so the
chapter asks for a fixed number of Hutchinson probes instead (``method="hutchinson"``).

Imports: numpy, pandas, :mod:`hessinit.init`, :mod:`hessinit.nn` and :mod:`hessinit.curvature`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import init
from ..curvature.spectra import network_spectrum
from ..curvature.tensors import layer_tensor_norms
from ..nn.convnets import kernel_layers, small_cnn, small_resnet
from . import stats

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

    Args:
        x: images, shape (B, H, W, C).
        y: integer labels, shape (B,).
        networks: keys of :data:`NETWORKS`.
        schemes: scheme names or numbers c (c / fan-in).
        seeds: kernel seeds.
        probes: Hutchinson probes per estimated tensor (at least 2).
        **kwargs: passed to :func:`build` (e.g. ``channels``).

    Returns:
        One row per (network, scheme, seed, tensor): ``network, init, seed, tensor, method, H,
        G, R, R_over_H, G_over_H`` (ratios NaN where H = 0).

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
        for scheme in schemes:
            for seed in seeds:
                model = build(network, scheme, seed, input_shape=x.shape[1:], **kwargs)
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
                        "network": network, "init": init.scheme_label(scheme), "seed": seed,
                        "tensor": layer.name, "method": n.method, "H": n.H, "G": n.G, "R": n.R,
                        "R_over_H": n.R / n.H if ok else np.nan,
                        "G_over_H": n.G / n.H if ok else np.nan,
                    })  # fmt: skip
    return pd.DataFrame(rows)


def worst_intervals(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (network, init): the worst tensor's R/H per seed, averaged over seeds with its interval.

    The worst tensor of a seed is the one with the largest ||R||_F / ||H||_F; its ratios are
    averaged over the seeds with :func:`hessinit.study.stats.mean_interval` (Student t; a
    Hutchinson estimate's probe noise is part of the seed-to-seed spread). ``exact`` says
    whether every tensor behind the row was computed exactly.

    Args:
        frame: rows of :func:`kernel_norms`.

    Returns:
        One row per (network, init), in order of appearance: ``network, init, R_over_H, low,
        high, G_over_H, seeds, exact``.

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
        rows.append({"network": network, "init": scheme, "R_over_H": r.value, "low": r.low,
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
        One row per (network, scheme): ``network, init, lambda_max, converged``.

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
        for scheme in schemes:
            model = build(network, scheme, seed, input_shape=x.shape[1:], **kwargs)
            spectrum = network_spectrum(model, x, y, 1, seed=seed, strict=False)
            rows.append({"network": network, "init": init.scheme_label(scheme),
                         "lambda_max": float(spectrum.eigenvalues[0]),
                         "converged": bool(spectrum.converged)})  # fmt: skip
    return pd.DataFrame(rows)
