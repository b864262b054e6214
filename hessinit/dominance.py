"""When does the Gauss-Newton term dominate? Ratios ||G||/||H|| and ||R||/||H|| per layer and for
the whole network.

Per layer, H = G + R is exact (:func:`hessinit.hessian.layer_hessian_norms`). For the whole
network, cross-layer blocks included, the norms are estimated from Hessian-, Gauss-Newton- and
curvature-vector products (:func:`hessinit.hessian.hutchinson_norm`) with confidence intervals.
"""

from __future__ import annotations

import pandas as pd

from .hessian import hessian_norms_all_layers, hutchinson_norm
from .models import mlp
from .train import run

#: The initial-std settings: only dense1 scaled (the original experiment) or every layer.
SCALINGS = ("dense1", "all")


def scaled_stds(sd, scaling, n_dense):
    """``kernel_std`` for :func:`hessinit.models.mlp`: ``sd`` on dense1 only, or on all layers."""
    if scaling == "dense1":
        return sd
    if scaling == "all":
        return [sd] * n_dense
    raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")


def _ratios(frame):
    frame["G_over_H"] = frame["G"] / frame["H"]
    frame["R_over_H"] = frame["R"] / frame["H"]
    return frame


def at_init(
    data,
    activations=("relu", "tanh", "sigmoid", "softplus", "gelu"),
    sds=(1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0),
    scalings=SCALINGS,
    widths=(30, 30),
    n=1024,
    seed=0,
):
    """Exact per-layer H, G, R norms at initialization over a grid of activations, stds and
    scalings, on the first ``n`` images of ``data``.

    Returns one row per (activation, scaling, sd, layer) with ``H, G, R, GR`` and the ratios
    ``G_over_H`` and ``R_over_H``. Note that ||G|| / ||H|| can exceed 1 when G and R cancel.
    """
    x, y = data.x[:n], data.y[:n]
    rows = []
    for activation in activations:
        for scaling in scalings:
            for sd in sds:
                model = mlp(
                    data.x.shape[1:],
                    data.num_classes,
                    widths=widths,
                    activation=activation,
                    kernel_std=scaled_stds(float(sd), scaling, len(widths) + 1),
                    seed=seed,
                )
                for layer, h in hessian_norms_all_layers(model, x, y).items():
                    rows.append(
                        {"activation": activation, "scaling": scaling, "sd": float(sd),
                         "layer": layer, "H": h.H, "G": h.G, "R": h.R, "GR": h.GR}
                    )  # fmt: skip
    return _ratios(pd.DataFrame(rows))


def along_training(data, activations, sd, scaling="dense1", **kwargs):
    """:func:`hessinit.train.run` for each activation, with ratio columns and an ``activation``
    column added; ``kwargs`` go to ``run`` (steps, lr, hessian_every, ...)."""
    frames = []
    for activation in activations:
        frame = run(
            data,
            sd,
            kernel_std=scaled_stds(sd, scaling, len(kwargs.get("widths", (30, 30))) + 1),
            activation=activation,
            **kwargs,
        )
        frames.append(frame.assign(activation=activation, scaling=scaling))
    return _ratios(pd.concat(frames, ignore_index=True))


def whole_network(model, x, y, probes=30, deflate=10, level=0.95, seed=0):
    """||H||_F, ||G||_F and ||R||_F of the whole network's Hessian (all weights, cross-layer
    blocks included), estimated with deflated Hutchinson; one row per term with the estimate and
    its ``level`` confidence interval (``low``, ``high``)."""
    rows = []
    for term, product in (("H", "hessian"), ("G", "gauss_newton"), ("R", "curvature")):
        est = hutchinson_norm(
            model, x, y, probes=probes, product=product, deflate=deflate, level=level, seed=seed
        )
        rows.append({"term": term, "value": est.value, "low": est.low, "high": est.high,
                     "probes": est.probes, "deflate": deflate})  # fmt: skip
    return pd.DataFrame(rows)


def whole_network_grid(data, activations, sds, widths=(30, 30), n=512, probes=30, deflate=10,
                       seed=0):  # fmt: skip
    """:func:`whole_network` for the network ``mlp(widths, activation, kernel_std=sd)`` (dense1
    scaled) of every activation and std, on the first ``n`` images; one frame with ``activation``
    and ``sd`` columns added."""
    x, y = data.x[:n], data.y[:n]
    frames = []
    for activation in activations:
        for sd in sds:
            model = mlp(data.x.shape[1:], data.num_classes, widths, activation, sd, seed)
            est = whole_network(model, x, y, probes=probes, deflate=deflate, seed=seed)
            frames.append(est.assign(activation=activation, sd=sd))
    return pd.concat(frames, ignore_index=True)
