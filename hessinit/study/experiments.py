"""Experiments behind the book's chapters: each builds networks, computes curvature and returns a
tidy frame.

Imports: the core (:mod:`hessinit.nn`, :mod:`hessinit.curvature`, :mod:`hessinit.data`,
:mod:`hessinit.train`, :mod:`hessinit.init`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..curvature import (
    hessian_norms_all_layers,
    hutchinson_norm,
    kron_matrix,
)
from ..nn import mlp
from ..train import run


def tiny_problem(activation="relu", n=64, widths=(8, 6), pool=4, seed=0):
    """A tiny float64 network and ``n`` mnist-5k images average-pooled by ``pool`` (28 -> 7).

    Returns ``(model, x, y)``. Every kernel starts Glorot-uniform, biases at zero. The pixels are
    rounded to float32 and stored in float64, so that every code path sees the same inputs.
    """
    from ..data import load
    from ..nn import mlp

    data = load("mnist-5k", n=n, seed=seed)
    side = data.x.shape[1] // pool
    x = data.x[:, : side * pool, : side * pool].reshape(n, side, pool, side, pool).mean((2, 4))
    x = x.astype(np.float32).astype(np.float64)
    model = mlp(
        (side, side),
        data.num_classes,
        widths=widths,
        activation=activation,
        kernel_std=[None] * (len(widths) + 1),
        seed=seed,
        dtype="float64",
    )
    return model, x, data.y


def chain_rule_check(activations=("relu", "tanh", "softplus"), n=64, widths=(8, 6), seed=0):
    """H = G + R, layer by layer, three ways, on :func:`tiny_problem`.

    For each activation and dense kernel W: the autodiff Hessian block H_full
    (:func:`~hessinit.curvature.full_hessian`) and Gauss-Newton block G_full
    (:func:`~hessinit.curvature.full_gauss_newton`), R_full = H_full - G_full; the Kronecker sums
    built from the per-sample blocks of :func:`~hessinit.curvature.layer_curvature`; and the norms
    of :func:`~hessinit.curvature.layer_hessian_norms`. Columns: ``activation, layer, shape, H, G,
    R`` (Frobenius norms of the autodiff matrices), ``H_kron, G_kron, R_kron`` (norms from
    ``layer_hessian_norms``), ``err_H, err_G, err_R`` (max entry-wise difference between the
    autodiff matrix and the Kronecker sum, relative to the largest entry of the autodiff H) and
    ``err_norm`` (relative difference of the two ||H||_F).
    """
    from ..curvature import full_gauss_newton, full_hessian, layer_curvature, layer_hessian_norms
    from ..nn import dense_layers

    rows = []
    for act in activations:
        model, x, y = tiny_problem(act, n=n, widths=widths, seed=seed)
        for layer in dense_layers(model):
            H = full_hessian(model, x, y, layer=layer.name)
            G = full_gauss_newton(model, x, y, layer=layer.name)
            X, A, R = layer_curvature(model, layer.name, x, y)
            norms = layer_hessian_norms(model, layer.name, x, y)
            scale = np.abs(H).max()
            rows.append(
                {
                    "activation": act,
                    "layer": layer.name,
                    "shape": "x".join(str(s) for s in layer.kernel.shape),
                    "H": np.linalg.norm(H),
                    "G": np.linalg.norm(G),
                    "R": np.linalg.norm(H - G),
                    "H_kron": norms.H,
                    "G_kron": norms.G,
                    "R_kron": norms.R,
                    "err_H": np.abs(H - kron_matrix(X, A + R)).max() / scale,
                    "err_G": np.abs(G - kron_matrix(X, A)).max() / scale,
                    "err_R": np.abs((H - G) - kron_matrix(X, R)).max() / scale,
                    "err_norm": abs(norms.H - np.linalg.norm(H)) / np.linalg.norm(H),
                }
            )
    return pd.DataFrame(rows)


def block_norms(activations=("relu", "tanh"), n=64, widths=(8, 6), seed=0):
    """Frobenius norms of every (kernel_k, kernel_l) block of the whole network's H, G and R.

    Columns ``activation, row, col, H, G, R`` with ``row``/``col`` the dense layer names. For ReLU
    the diagonal R blocks vanish, the off-diagonal ones do not.
    """
    from ..curvature import full_gauss_newton, full_hessian
    from ..nn import dense_layers

    rows = []
    for act in activations:
        model, x, y = tiny_problem(act, n=n, widths=widths, seed=seed)
        H = full_hessian(model, x, y)
        G = full_gauss_newton(model, x, y)
        spans, start = {}, 0
        for v in model.trainable_variables:
            size = int(np.prod(v.shape))
            spans[v.path] = slice(start, start + size)
            start += size
        names = [d.name for d in dense_layers(model)]
        kernels = {d.name: spans[d.kernel.path] for d in dense_layers(model)}
        for r in names:
            for c in names:
                h = H[kernels[r], kernels[c]]
                g = G[kernels[r], kernels[c]]
                rows.append(
                    {
                        "activation": act,
                        "row": r,
                        "col": c,
                        "H": np.linalg.norm(h),
                        "G": np.linalg.norm(g),
                        "R": np.linalg.norm(h - g),
                    }
                )
    return pd.DataFrame(rows)


#: The initial-std settings: only dense1 scaled (the original experiment) or every layer.
SCALINGS = ("dense1", "all")


def scaled_stds(sd, scaling, n_dense):
    """``kernel_std`` for :func:`hessinit.nn.models.mlp`: ``sd`` on dense1 only, or on all
    layers."""
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


def scheme_profiles(x, y, settings, depths, hidden, batches, seed=0, num_classes=10):
    """:func:`hessinit.init.profile_schemes` for every ``(activation, dropout rate, schemes)`` in
    ``settings`` and every number of hidden layers in ``depths`` (``hidden`` units each), on the
    first ``batches[activation]`` images of ``x``, ``y``; the frames stacked."""
    from ..init import profile_schemes

    frames = []
    for activation, rate, schemes in settings:
        b = batches[activation]
        for depth in depths:
            frames.append(profile_schemes(x[:b], y[:b], schemes, [activation],
                                          widths=(hidden,) * depth, dropout=rate, seed=seed,
                                          num_classes=num_classes))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def fit_schemes(train_data, test_data, inits, widths, activation, seeds, steps, lr, batch_size,
                eval_every, hessian_batch=256):  # fmt: skip
    """Train ``mlp(widths, activation)`` from each initializer in ``inits`` for each seed with
    :func:`hessinit.train.fit`; ``"hessian"`` means He, then :func:`hessinit.init.hessian_init`
    to the data's reference level on ``hessian_batch`` training images. Returns the stacked fit
    frames with ``init`` and ``seed`` columns; ``frame.attrs["hessian_init"]`` holds the
    initializer's per-seed tables."""
    from ..init import hessian_init, kernel_stds, reference_level
    from ..nn import mlp
    from ..train import fit

    shape = train_data.x.shape[1:]
    x_h, y_h = train_data.x[:hessian_batch], train_data.y[:hessian_batch]
    frames, tables = [], []
    for seed in seeds:
        for name in inits:
            scheme = "he" if name == "hessian" else name
            stds = kernel_stds(scheme, widths, shape, train_data.num_classes)
            model = mlp(shape, train_data.num_classes, widths, activation, stds, seed)
            if name == "hessian":
                result = hessian_init(model, x_h, y_h, target=reference_level(x_h))
                tables.append(result.table.assign(seed=seed, converged=result.converged,
                                                  seconds=result.seconds))  # fmt: skip
            frame = fit(model, train_data, test_data, steps=steps, lr=lr, batch_size=batch_size,
                        eval_every=eval_every, seed=seed, progress=False)  # fmt: skip
            frames.append(frame.assign(init=name, seed=seed))
    out = pd.concat(frames, ignore_index=True)
    out.attrs["hessian_init"] = pd.concat(tables, ignore_index=True) if tables else None
    return out


def schedule_runs(data, schedules: dict, sds, seeds, **kwargs) -> pd.DataFrame:
    """:func:`hessinit.train.run` for every step-size schedule (``{name: lr}``, ``lr`` as
    :func:`~hessinit.train.run` takes it), sd and seed, stacked with a ``schedule`` column;
    ``kwargs`` go to every run."""
    from ..train import run

    frames = [run(data, sd, lr=lr, seed=seed, **kwargs).assign(schedule=name)
              for name, lr in schedules.items() for sd in sds for seed in seeds]  # fmt: skip
    return pd.concat(frames, ignore_index=True)
