"""The chain rule chapter: the split H = G + R checked on small networks, block norms, Kronecker.

In the order the page reads: the per-layer chain-rule check against the materialized autodiff
Hessian (:func:`chain_rule_check`, figure :func:`plot_chain_rule`), the norms of every block of
the full Hessian (:func:`block_norms`, :func:`plot_block_norms`) and the Kronecker pattern of one
block (:func:`kron_pattern`, :func:`plot_kron_pattern`), all on
:func:`hessinit.study.experiments.tiny_problem`.

Imports: numpy, matplotlib, the core (:mod:`hessinit.nn`, :mod:`hessinit.curvature`) and the
shared study layer (:mod:`hessinit.study.experiments`, :mod:`hessinit.study.figures`,
:mod:`hessinit.study.sweep`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..curvature import (
    full_gauss_newton,
    full_hessian,
    kron_matrix,
    layer_curvature,
    layer_hessian_norms,
    num_params,
)
from ..nn import dense_layers, get_dense
from ..study.experiments import tiny_problem
from ..study.figures import LAYER_COLORS, style
from ..study.sweep import sweep


def chain_rule_check(activations=("relu", "tanh", "softplus"), n=64, widths=(8, 6), seed=0):
    """H = G + R layer by layer, three ways, on :func:`tiny_problem`.

    For each activation and dense kernel W: the autodiff Hessian block H
    (:func:`~hessinit.curvature.full_hessian`), the Gauss-Newton block G
    (:func:`~hessinit.curvature.full_gauss_newton`) and R = H - G; the Kronecker sums
    (1/B) sum_i (x_i x_i^T) kron M_i built from the per-sample blocks A_i, R_i of
    :func:`~hessinit.curvature.layer_curvature`; and the norms of
    :func:`~hessinit.curvature.layer_hessian_norms`, which never form a matrix.

    Args:
        activations: hidden activations, one network each.
        n: images in the batch.
        widths: hidden layer widths.
        seed: seed of the images and the kernels.

    Returns:
        One row per (activation, layer): ``activation, layer, shape`` (the kernel's, e.g.
        ``"49x8"``), ``H, G, R`` (Frobenius norms of the autodiff matrices), ``H_kron, G_kron,
        R_kron`` (norms from ``layer_hessian_norms``), ``err_H, err_G, err_R`` (largest
        entry-wise difference between an autodiff matrix and its Kronecker sum, relative to the
        largest entry of H) and ``err_norm`` (relative difference of the two ||H||_F).

    Example:
        >>> check = chain_rule_check(activations=("relu",), n=4, widths=(3,))
        >>> check[["activation", "layer", "shape"]].values.tolist()
        [['relu', 'dense1', '49x3'], ['relu', 'dense2', '3x10']]
        >>> bool((check[["err_H", "err_G", "err_R", "err_norm"]] < 1e-10).all().all())
        True
    """

    def per_activation(activation):
        model, x, y = tiny_problem(activation, n=n, widths=widths, seed=seed)

        def per_layer(layer):
            kernel = get_dense(model, layer)[1].kernel
            H = full_hessian(model, x, y, layer=layer)
            G = full_gauss_newton(model, x, y, layer=layer)
            X, A, R = layer_curvature(model, layer, x, y)
            norms = layer_hessian_norms(model, layer, x, y)
            scale = np.abs(H).max()
            return {
                "shape": "x".join(str(s) for s in kernel.shape),
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

        return sweep(per_layer, layer=[d.name for d in dense_layers(model)])

    return sweep(per_activation, activation=activations)


def plot_chain_rule(check):
    """Bar chart of ||G||_F and ||R||_F per layer, one panel per activation (log scale).

    An exact zero is drawn at 1e-18.

    Args:
        check: rows of :func:`hessinit.chapters.chain_rule.chain_rule_check`.

    Returns:
        The figure.
    """
    with style():
        acts = list(dict.fromkeys(check["activation"]))
        fig, axes = plt.subplots(1, len(acts), figsize=(7, 3.0), sharey=True, layout="constrained")
        axes = np.atleast_1d(axes)
        floor = 1e-18
        for ax, act in zip(axes, acts, strict=True):
            part = check[check["activation"] == act]
            pos = np.arange(len(part))
            for k, (col, label) in enumerate((("G", "‖G‖_F"), ("R", "‖R‖_F"))):
                ax.bar(
                    pos + (k - 0.5) * 0.38,
                    np.maximum(part[col], floor),
                    0.38,
                    color=LAYER_COLORS[k],
                    label=label,
                )
            ax.set_xticks(pos, part["layer"])
            ax.set_yscale("log")
            ax.set_title(act)
        axes[0].set_ylabel("norm of the layer's own block")
        axes[-1].legend(frameon=False, fontsize=8)
    return fig


def _kernel_slices(model) -> dict:
    """Dense layer name -> the slice of its kernel in the flat vector of all trainable weights."""
    spans, start = {}, 0
    for v in model.trainable_variables:
        size = num_params([v])
        spans[v.path] = slice(start, start + size)
        start += size
    return {d.name: spans[d.kernel.path] for d in dense_layers(model)}


def block_norms(activations=("relu", "tanh"), n=64, widths=(8, 6), seed=0):
    """Frobenius norms of every (kernel_k, kernel_l) block of the whole network's H, G and R.

    On :func:`tiny_problem`, the Hessian H of the loss with respect to all weights and its
    Gauss-Newton term G are materialized, R = H - G, and each is cut into kernel-by-kernel blocks.
    For ReLU the diagonal R blocks vanish, the off-diagonal ones do not.

    Args:
        activations: hidden activations, one network each.
        n: images in the batch.
        widths: hidden layer widths.
        seed: seed of the images and the kernels.

    Returns:
        One row per (activation, row, col): ``activation, row, col`` (dense layer names) and
        ``H, G, R`` (the blocks' Frobenius norms).

    Example:
        >>> blocks = block_norms(activations=("relu",), n=4, widths=(3,))
        >>> blocks[["row", "col"]].values.tolist()
        [['dense1', 'dense1'], ['dense1', 'dense2'], ['dense2', 'dense1'], ['dense2', 'dense2']]
        >>> relative = blocks["R"] / blocks["H"]  # ReLU: zero on the diagonal blocks only
        >>> bool(relative[0] < 1e-12 and relative[1] > 1e-3)
        True
    """

    def per_activation(activation):
        model, x, y = tiny_problem(activation, n=n, widths=widths, seed=seed)
        H = full_hessian(model, x, y)
        G = full_gauss_newton(model, x, y)
        kernels = _kernel_slices(model)

        def block(row, col):
            h = H[kernels[row], kernels[col]]
            g = G[kernels[row], kernels[col]]
            return {"H": np.linalg.norm(h), "G": np.linalg.norm(g), "R": np.linalg.norm(h - g)}

        return sweep(block, row=list(kernels), col=list(kernels))

    return sweep(per_activation, activation=activations)


def plot_block_norms(blocks):
    """Heat maps of log10 ||R block||_F over (layer, layer) pairs, one per activation.

    Args:
        blocks: rows of :func:`hessinit.chapters.chain_rule.block_norms`.

    Returns:
        The figure.
    """
    with style():
        acts = list(dict.fromkeys(blocks["activation"]))
        fig, axes = plt.subplots(1, len(acts), figsize=(7, 3.2), layout="constrained")
        axes = np.atleast_1d(axes)
        for ax, act in zip(axes, acts, strict=True):
            part = blocks[blocks["activation"] == act]
            table = part.pivot(index="row", columns="col", values="R")
            values = np.log10(np.maximum(table.to_numpy(), 1e-20))
            image = ax.imshow(values, cmap="viridis", vmin=-20, vmax=max(values.max(), -19))
            ax.set_xticks(range(len(table.columns)), table.columns)
            ax.set_yticks(range(len(table.index)), table.index)
            ax.grid(False)
            for (i, j), v in np.ndenumerate(values):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", color="white", fontsize=8)
            ax.set_title(f"{act}: log10 ‖R block‖_F")
            fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def kron_pattern(activation="relu", n=64, widths=(8, 6), seed=0, rows=6):
    """The top-left corner of dense1's Hessian on :func:`tiny_problem`: its Kronecker tiles.

    In the row-major order of the kernel, entry (p, c) of W, the tile of input pixels (p, q) is
    (1/B) sum_i x_ip x_iq M_i, an n_out x n_out weighted sum of the same per-sample blocks.

    Args:
        activation: the hidden activation.
        n: images in the batch.
        widths: hidden layer widths; ``widths[0]`` is n_out of dense1, the side of a tile.
        seed: seed of the images and the kernels.
        rows: number of input pixels p whose tiles are returned.

    Returns:
        The ``(rows * widths[0], rows * widths[0])`` float64 block of H_W (signed).

    Example:
        >>> kron_pattern(n=4, widths=(3,), rows=2).shape
        (6, 6)
    """
    model, x, y = tiny_problem(activation, n=n, widths=widths, seed=seed)
    H = full_hessian(model, x, y, layer="dense1")
    k = rows * widths[0]
    return H[:k, :k]


def plot_kron_pattern(block, tile):
    """log10 abs(H entry) of a corner of a dense layer's Hessian, with its Kronecker tiles outlined.

    Args:
        block: a square corner of H_W in the row-major order of the kernel:
            :func:`hessinit.chapters.chain_rule.kron_pattern`.
        tile: the side of a tile, n_out of the layer.

    Returns:
        The figure.
    """
    rows = len(block) // tile
    with style():
        fig, ax = plt.subplots(figsize=(4.6, 4.0), layout="constrained")
        image = ax.imshow(np.log10(np.abs(block) + 1e-12), cmap="magma")
        for b in range(1, rows):
            ax.axhline(b * tile - 0.5, color="white", lw=0.6)
            ax.axvline(b * tile - 0.5, color="white", lw=0.6)
        ax.grid(False)
        ax.set_xlabel("kernel entry (p, c), row-major")
        ax.set_ylabel("kernel entry (p, c), row-major")
        fig.colorbar(image, ax=ax, label="log10 |H entry|")
    return fig
