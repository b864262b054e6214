"""Experiments behind the book's chapters: networks built, curvature computed, tidy frames out.

Each function returns a tidy frame (or, for the figure of a matrix, the matrix).

Every grid of settings goes through :func:`hessinit.study.sweep.sweep`, so the settings are the
leading columns of the frame and the networks are built in the order of the nested loops over
the axes (which fixes the order of the random draws).

Notation as in the book: a dense layer with kernel W maps the input x_i of sample i to
a_i = W^T x_i + b; its Hessian block is H_W = (1/B) sum_i (x_i x_i^T) kron M_i with
M_i = A_i + R_i, split by the chain rule into the Gauss-Newton term G_W (from the A_i) and the
curvature term R_W (from the R_i), H_W = G_W + R_W.

Imports: the core (:mod:`hessinit.nn`, :mod:`hessinit.curvature`, :mod:`hessinit.data`,
:mod:`hessinit.train`, :mod:`hessinit.init`) and :mod:`hessinit.study.sweep`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..curvature import (
    full_gauss_newton,
    full_hessian,
    hessian_norms_all_layers,
    hutchinson_norms,
    kron_matrix,
    layer_curvature,
    layer_hessian_norms,
    num_params,
)
from ..data import load
from ..init import hessian_init, kernel_stds, reference_level
from ..nn import dense_layers, get_dense, mean_loss, mlp, softmax_saturation
from ..train import fit, run
from .sweep import sweep

#: The initial-std settings, only dense1 scaled (the original experiment) or every layer.
SCALINGS = ("dense1", "all")

#: The whole-network terms (the names of :func:`hessinit.curvature.hutchinson_norm`'s products).
TERMS = {"H": "hessian", "G": "gauss_newton", "R": "curvature"}


def _keys_last(frame: pd.DataFrame, keys) -> pd.DataFrame:
    """``frame`` with the columns ``keys`` moved to the end, in that order."""
    keys = list(keys)
    return frame[[c for c in frame.columns if c not in keys] + keys]


def _ratios(frame: pd.DataFrame) -> pd.DataFrame:
    frame["G_over_H"] = frame["G"] / frame["H"]
    frame["R_over_H"] = frame["R"] / frame["H"]
    return frame


def tiny_problem(activation="relu", n=64, widths=(8, 6), pool=4, seed=0):
    """A tiny float64 network and ``n`` mnist-5k images average-pooled by ``pool`` (28 -> 7).

    Every kernel starts Glorot-uniform, biases at zero. The pixels are rounded to float32 and
    stored in float64, so that every code path sees the same inputs.

    Args:
        activation: the hidden activation.
        n: number of images (the first ``n`` of mnist-5k shuffled with ``seed``).
        widths: hidden layer widths.
        pool: side of the average-pooling window.
        seed: seed of the image draw and of the kernels.

    Returns:
        ``(model, x, y)``: the float64 Keras model, the images (n, 28 // pool, 28 // pool) and
        the labels (n,).

    Example:
        >>> model, x, y = tiny_problem("tanh", n=4, widths=(3,))
        >>> x.shape, x.dtype, [d.name for d in dense_layers(model)]
        ((4, 7, 7), dtype('float64'), ['dense1', 'dense2'])
    """
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


def at_init(
    data,
    activations=("relu", "tanh", "sigmoid", "softplus", "gelu"),
    sds=(1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0),
    scalings=SCALINGS,
    widths=(30, 30),
    n=1024,
    seed=0,
):
    """Exact per-layer ||H||_F, ||G||_F, ||R||_F at initialization over a grid of networks.

    For every activation, scaling and std: ``mlp(widths, activation)`` with the kernels of
    :func:`scaled_stds`, and the norms of every dense layer's Hessian block on the first ``n``
    images of ``data`` (:func:`~hessinit.curvature.hessian_norms_all_layers`). Note that
    ||G|| / ||H|| can exceed 1 when G and R partly cancel.

    Args:
        data: a :func:`hessinit.data.load` record.
        activations: hidden activations.
        sds: initial standard deviations.
        scalings: values of :data:`SCALINGS`.
        widths: hidden layer widths.
        n: images of the Hessian batch.
        seed: seed of the kernels.

    Returns:
        One row per (activation, scaling, sd, layer): ``activation, scaling, sd, layer, H, G, R,
        GR`` (<G, R>_F) and the ratios ``G_over_H = ||G||/||H||`` and ``R_over_H = ||R||/||H||``.

    Example:
        >>> from hessinit.data import load
        >>> frame = at_init(load("mnist-5k", n=8), ["relu"], [0.1], ["dense1"], widths=(3,))
        >>> frame[["activation", "scaling", "sd", "layer", "R_over_H"]].values.tolist()
        [['relu', 'dense1', 0.1, 'dense1', 0.0], ['relu', 'dense1', 0.1, 'dense2', 0.0]]
    """
    x, y = data.x[:n], data.y[:n]

    def norms(activation, scaling, sd):
        model = mlp(
            data.x.shape[1:],
            data.num_classes,
            widths=widths,
            activation=activation,
            kernel_std=scaled_stds(sd, scaling, len(widths) + 1),
            seed=seed,
        )
        return [
            {"layer": layer, "H": h.H, "G": h.G, "R": h.R, "GR": h.GR}
            for layer, h in hessian_norms_all_layers(model, x, y).items()
        ]

    frame = sweep(norms, activation=activations, scaling=scalings, sd=[float(s) for s in sds])
    return _ratios(frame)


def along_training(data, activations, sd, scaling="dense1", **kwargs):
    """:func:`hessinit.train.run` for each activation, with the ratio columns added.

    Args:
        data: a :func:`hessinit.data.load` record.
        activations: hidden activations, one run each.
        sd: the initial standard deviation, placed by ``scaling`` (:func:`scaled_stds`).
        scaling: ``"dense1"`` or ``"all"``.
        **kwargs: passed to every ``run`` (``widths``, ``steps``, ``lr``, ``hessian_every``...).

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
    n_dense = len(kwargs.get("widths", (30, 30))) + 1

    def train(activation):
        stds = scaled_stds(sd, scaling, n_dense)
        return run(data, sd, kernel_std=stds, activation=activation, **kwargs)

    frame = sweep(train, activation=activations).assign(scaling=scaling)
    return _ratios(_keys_last(frame, ["activation", "scaling"]))


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

    return _keys_last(sweep(estimate, activation=activations, sd=sds), ["activation", "sd"])


def fit_schemes(train_data, test_data, inits, widths, activation, seeds, steps, lr, batch_size,
                eval_every, hessian_batch=256):  # fmt: skip
    """Train ``mlp(widths, activation)`` from each initializer for each seed.

    Each network is trained by :func:`hessinit.train.fit`. ``"hessian"`` means He's kernels, then
    :func:`hessinit.init.hessian_init` to the data's reference level
    (:func:`hessinit.init.reference_level`) on the first ``hessian_batch`` training images.

    Args:
        train_data: the training record (see :func:`hessinit.data.split`).
        test_data: the held-out record.
        inits: initializer names: ``"lecun"``, ``"glorot"``, ``"he"`` or ``"hessian"``.
        widths: hidden layer widths.
        activation: the hidden activation.
        seeds: seeds of the kernels and of the mini-batches, one training each.
        steps: SGD steps.
        lr: the SGD step size.
        batch_size: mini-batch size.
        eval_every: steps between held-out evaluations.
        hessian_batch: images for the Hessian-based initializer.

    Returns:
        The stacked frames of ``fit`` with ``init`` and ``seed`` columns last;
        ``frame.attrs["hessian_init"]`` holds the initializer's per-seed tables (with ``seed``,
        ``converged`` and ``seconds``), or None when ``"hessian"`` is not in ``inits``.

    Example:
        >>> from hessinit.data import load, split
        >>> train_set, test_set = split(load("mnist-5k", n=24), 8)
        >>> fits = fit_schemes(train_set, test_set, ["he"], (3,), "relu", [0, 1], steps=2, lr=0.1,
        ...                    batch_size=4, eval_every=2)
        >>> fits[["step", "init", "seed"]].values.tolist()
        [[0, 'he', 0], [2, 'he', 0], [0, 'he', 1], [2, 'he', 1]]
    """
    shape = train_data.x.shape[1:]
    x_h, y_h = train_data.x[:hessian_batch], train_data.y[:hessian_batch]
    tables = []

    def train(seed, init):
        scheme = "he" if init == "hessian" else init
        stds = kernel_stds(scheme, widths, shape, train_data.num_classes)
        model = mlp(shape, train_data.num_classes, widths, activation, stds, seed)
        if init == "hessian":
            result = hessian_init(model, x_h, y_h, target=reference_level(x_h))
            tables.append(result.table.assign(seed=seed, converged=result.converged,
                                              seconds=result.seconds))  # fmt: skip
        return fit(model, train_data, test_data, steps=steps, lr=lr, batch_size=batch_size,
                   eval_every=eval_every, seed=seed, progress=False)  # fmt: skip

    out = _keys_last(sweep(train, seed=seeds, init=inits), ["init", "seed"])
    out.attrs["hessian_init"] = pd.concat(tables, ignore_index=True) if tables else None
    return out


def schedule_runs(data, schedules: dict, sds, seeds, **kwargs) -> pd.DataFrame:
    """:func:`hessinit.train.run` for every step-size schedule, sd and seed, stacked.

    Args:
        data: a :func:`hessinit.data.load` record.
        schedules: name -> ``lr`` as ``run`` takes it (a number, or ``("taylor", fraction)`` for
            ``fraction`` times gamma* = g^T g / g^T H g of each mini-batch).
        sds: standard deviations of dense1's kernel.
        seeds: seeds of the kernels and the mini-batches.
        **kwargs: passed to every run.

    Returns:
        The runs' frames (which carry ``sd`` and ``seed``) with a ``schedule`` column last.

    Example:
        >>> from hessinit.data import load
        >>> runs = schedule_runs(load("mnist-5k", n=16), {"fixed": 0.1}, [0.1], [0, 1],
        ...                      widths=(3,), steps=1, batch_size=4, hessian_batch=8,
        ...                      layers=["dense1"], progress=False)
        >>> runs[["schedule", "sd", "seed", "step"]].values.tolist()
        [['fixed', 0.1, 0, 0], ['fixed', 0.1, 0, 1], ['fixed', 0.1, 1, 0], ['fixed', 0.1, 1, 1]]
    """

    def train(schedule, sd, seed):
        return run(data, sd, lr=schedules[schedule], seed=seed, **kwargs)

    return _keys_last(sweep(train, schedule=list(schedules), sd=sds, seed=seeds), ["schedule"])


# --- original ---


def original_runs(data, sds, seeds, **kwargs) -> pd.DataFrame:
    """The original experiment (:func:`hessinit.train.run` per sd) repeated over seeds.

    Args:
        data: the dataset record.
        sds: the stds of dense1's initial kernel.
        seeds: the seeds; each gives new weights, a new Hessian batch and new mini-batches.
        **kwargs: the other arguments of :func:`hessinit.train.run`, shared by every run.

    Returns:
        The stacked frames of the runs, in the order seed, sd (columns as
        :data:`hessinit.train.COLUMNS`).

    Example:
        >>> from hessinit.data import Dataset
        >>> rng = np.random.default_rng(0)
        >>> data = Dataset(rng.random((32, 4, 4), np.float32), rng.integers(0, 3, 32),
        ...                "tiny", 3, (4, 4), "random")
        >>> frame = original_runs(data, [0.1, 1.0], [0, 1], widths=(5,), steps=0,
        ...                       hessian_batch=16, layers=["dense1"], progress=False)
        >>> frame[["seed", "sd"]].values.tolist()
        [[0.0, 0.1], [0.0, 1.0], [1.0, 0.1], [1.0, 1.0]]
    """
    frames = [run(data, sd, seed=seed, **kwargs) for seed in seeds for sd in sds]
    return pd.concat(frames, ignore_index=True)


def layer_gradients(data, sds, seeds, widths=(30, 30), hessian_batch=1024) -> pd.DataFrame:
    """||dL/dW_l||_F of each dense kernel at initialization, on each run's Hessian batch.

    The network and the batch are those :func:`hessinit.train.run` builds for ``(sd, seed)``
    (dense1's kernel N(0, sd^2), the batch drawn first from ``np.random.default_rng(seed)``).
    With ReLU and zero biases the logits are z = sd * z_1 with z_1 not depending on sd, so
    dz/dW_1 does not depend on sd while dz/dW_2 and dz/dW_3 are proportional to sd: at a small
    sd the later layers' gradients are proportionally small.

    Args:
        data: the dataset record.
        sds: the stds of dense1's kernel.
        seeds: the seeds.
        widths: the hidden widths.
        hessian_batch: the batch size (as in :func:`hessinit.train.run`).

    Returns:
        One row per (sd, seed, layer): ``grad`` = ||dL/dW_l||_F, L the mean cross-entropy.

    Example:
        >>> from hessinit.data import Dataset
        >>> rng = np.random.default_rng(0)
        >>> data = Dataset(rng.random((32, 4, 4), np.float32), rng.integers(0, 3, 32),
        ...                "tiny", 3, (4, 4), "random")
        >>> g = layer_gradients(data, [1e-5, 1e-4], [0], widths=(5,), hessian_batch=16)
        >>> g = g.set_index(["layer", "sd"])["grad"]
        >>> round(float(g["dense2", 1e-4] / g["dense2", 1e-5]), 1)  # proportional to sd
        10.0
    """
    import tensorflow as tf

    x_all, y_all = np.asarray(data.x, np.float32), np.asarray(data.y, np.int32)

    def grads(sd, seed):
        model = mlp(x_all.shape[1:], data.num_classes, widths=widths, kernel_std=sd, seed=seed)
        idx = np.random.default_rng(seed).choice(len(y_all), min(hessian_batch, len(y_all)),
                                                 replace=False)  # fmt: skip
        kernels = [d.kernel for d in dense_layers(model)]
        with tf.GradientTape() as tape:
            loss = mean_loss(model, tf.constant(x_all[idx]), tf.constant(y_all[idx]))
        gs = tape.gradient(loss, kernels)
        return pd.DataFrame({"layer": [d.name for d in dense_layers(model)],
                             "grad": [float(tf.norm(g)) for g in gs]})  # fmt: skip

    return sweep(grads, sd=list(sds), seed=list(seeds))


# --- dominance ---


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


def training_seeds(data, activations, seeds, sd=0.01, **kwargs):
    """:func:`along_training` repeated over seeds (new weights, Hessian batch and mini-batches).

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
    parts = [along_training(data, activations, sd, seed=s, **kwargs) for s in seeds]
    return pd.concat(parts, ignore_index=True)


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


# --- init_schemes ---


def stable_roots(images, settings, depths, hidden, batch, seeds, xtol=0.01, num_classes=10):
    """The depth-stable variance factor c* of every setting, found separately for every seed.

    For each setting and seed, a :class:`hessinit.init.DepthGrowth` on ``batch`` images drawn
    without replacement by ``np.random.default_rng(seed)`` (independent batches and kernels per
    seed) is solved for log-growth 0 by :func:`hessinit.init.depth_stable_variance`.

    Args:
        images: a :func:`hessinit.data.load` record.
        settings: ``(label, activation, dropout rate, guess)`` tuples; ``guess`` only centres
            the first bracket.
        depths: numbers of hidden layers, at least two distinct.
        hidden: units per hidden layer.
        batch: images per Hessian.
        seeds: one root per seed.
        xtol: the root's tolerance in log c.
        num_classes: the output width.

    Returns:
        One row per (setting, seed, depth, layer) of the networks at the root: ``label``,
        ``activation``, ``dropout``, ``seed``, ``c_star`` (NaN without a sign change),
        ``log_growth`` (at the root), ``bracketed``, ``c_lo``, ``c_hi`` (the last bracket),
        ``evaluations``, ``depth`` (hidden layers), ``layer``, ``H_norm``; a seed without a
        root has one row with ``depth``, ``layer`` and ``H_norm`` NaN.

    Example:
        >>> from hessinit.data import load
        >>> d = load("mnist-5k", n=16)
        >>> out = stable_roots(d, [("relu", "relu", 0.0, 2.0)], [1, 2], 4, 8, [0])
        >>> bool(out["bracketed"].all()), sorted(set(out["depth"]))
        (True, [1, 2])
    """
    from ..init import DepthGrowth, depth_stable_variance

    def solve(setting, seed):
        label, activation, rate, guess = setting
        idx = np.random.default_rng(seed).choice(len(images.y), batch, replace=False)
        growth = DepthGrowth(images.x[idx], images.y[idx], activation, depths, hidden, seed,
                             rate, num_classes)  # fmt: skip
        root = depth_stable_variance(growth, guess, xtol=xtol)
        head = {"label": label, "activation": activation, "dropout": rate, "c_star": root.c,
                "log_growth": root.log_growth, "bracketed": root.bracketed,
                "c_lo": root.bracket[0], "c_hi": root.bracket[1],
                "evaluations": root.evaluations}  # fmt: skip
        if not root.bracketed:
            return pd.DataFrame([{**head, "depth": np.nan, "layer": np.nan, "H_norm": np.nan}])
        return root.profile.assign(**head)[[*head, "depth", "layer", "H_norm"]]

    frame = sweep(solve, setting=settings, seed=seeds)
    cols = ["label", "activation", "dropout", "seed"]
    return frame[cols + [c for c in frame.columns if c not in cols + ["setting"]]]


def tuned_fits(train_data, val_data, test_data, inits, widths, activation, lrs, select_seeds,
               seeds, steps, batch_size, hessian_batch=256):  # fmt: skip
    """Each initializer trained at its own best step size, chosen on a validation split.

    Selection: for every lr in ``lrs``, :func:`fit_schemes` on ``select_seeds`` evaluated on
    ``val_data``; each initializer's lr is the one with the highest mean validation accuracy
    (ties: the lower mean validation loss). Then :func:`fit_schemes` at that lr on ``seeds``,
    evaluated on ``test_data``. The same seed gives every initializer the same mini-batch order
    and the same normal draws (scaled per scheme; ``"hessian"`` rescales He's).

    Args:
        train_data: the training record.
        val_data: the validation record (selection only).
        test_data: the held-out record (final scores only).
        inits: initializer names (see :func:`fit_schemes`).
        widths: hidden layer widths.
        activation: the hidden activation.
        lrs: the step sizes tried.
        select_seeds: seeds of the selection runs (keep them apart from ``seeds``).
        seeds: seeds of the final runs.
        steps: SGD steps.
        batch_size: mini-batch size.
        hessian_batch: images for the Hessian-based initializer.

    Returns:
        ``(selection, final)``: the last evaluations of the selection runs (``init``, ``seed``,
        ``lr``, ``test_loss``, ``test_accuracy``, the latter two on ``val_data``) and of the
        final runs (same columns, on ``test_data``); ``final.attrs["hessian_init"]`` holds the
        initializer's tables.

    Example:
        >>> from hessinit.data import load, split
        >>> rest, test_set = split(load("mnist-5k", n=40), 8)
        >>> train_set, val_set = split(rest, 8, seed=1)
        >>> sel, fin = tuned_fits(train_set, val_set, test_set, ["he"], (3,), "relu", [0.01, 0.1],
        ...                       [9], [0, 1], steps=2, batch_size=4)
        >>> sorted(set(sel["lr"])), fin[["init", "seed"]].values.tolist()
        ([0.01, 0.1], [['he', 0], ['he', 1]])
    """

    def last(frame):
        out = frame[frame["step"] == frame["step"].max()].reset_index(drop=True)
        out.attrs = {}  # the initializer's tables are collected separately
        return out

    def select(lr):
        return last(fit_schemes(train_data, val_data, inits, widths, activation, select_seeds,
                                steps, lr, batch_size, steps, hessian_batch))  # fmt: skip

    selection = sweep(select, lr=lrs)
    score = selection.groupby(["init", "lr"])[["test_accuracy", "test_loss"]].mean().reset_index()
    score = score.sort_values(["init", "test_accuracy", "test_loss"], ascending=[True, False, True])
    best = score.groupby("init").first()["lr"]
    finals, tables = [], []
    for init in inits:
        out = fit_schemes(train_data, test_data, [init], widths, activation, seeds, steps,
                          float(best[init]), batch_size, steps, hessian_batch)  # fmt: skip
        finals.append(last(out).assign(lr=float(best[init])))
        if out.attrs.get("hessian_init") is not None:
            tables.append(out.attrs["hessian_init"])
    final = pd.concat(finals, ignore_index=True)
    final.attrs["hessian_init"] = pd.concat(tables, ignore_index=True) if tables else None
    return selection, final


# --- step_size ---


def sgd_grid(data, schedules: dict, inits: dict, seeds, *, steps, batch_size=32, eval_every=50,
             eval_batch=512, held_out=None, widths=(30, 30)):  # fmt: skip
    """Every step-size schedule from every initialization and seed: the loss along SGD only.

    For each initialization and seed the network ``mlp(kernel_std=inits[init], seed=seed)`` is
    trained by every schedule from the same weights on the same mini-batches (drawn from
    ``np.random.default_rng(seed)`` after the evaluation batch: paired runs), with
    :func:`hessinit.stepsize.sgd_steps` (w <- w - gamma g, gamma fixed or fraction * gamma*).
    The loss is evaluated at steps 0, ``eval_every``, ... and ``steps``, on ``held_out`` if
    given, else on an evaluation batch of ``eval_batch`` training images drawn without
    replacement (a training loss). No Hessian is computed beyond the Taylor steps' H g.

    Args:
        data: the training record (``x``, ``y``, ``num_classes``).
        schedules: name -> a positive step size or ``("taylor", fraction)``.
        inits: label -> ``kernel_std`` of :func:`hessinit.nn.mlp` (one number: dense1's std,
            the other layers Keras defaults; a list: one std per dense layer).
        seeds: seeds of the weights and of the draws.
        steps: the number of SGD steps.
        batch_size: the mini-batch size b.
        eval_every: steps between evaluations.
        eval_batch: size of the evaluation batch when ``held_out`` is None.
        held_out: a record to evaluate on instead.
        widths: hidden widths.

    Returns:
        One row per (init, seed, schedule, evaluation): ``init, seed, schedule, lr`` (NaN for
        a Taylor schedule), ``step``, ``eval_loss``; a run whose loss stops being finite ends
        with a row at ``steps`` whose ``eval_loss`` is NaN (diverged).

    Example:
        >>> from hessinit.data import load
        >>> frame = sgd_grid(load("mnist-5k", n=64), {"a": 0.1, "t": ("taylor", 0.5)},
        ...                  {0.1: 0.1}, [0], steps=4, batch_size=8, eval_every=2,
        ...                  eval_batch=16, widths=(3,))
        >>> frame[["schedule", "step"]].values.tolist()
        [['a', 0], ['a', 2], ['a', 4], ['t', 0], ['t', 2], ['t', 4]]
    """
    from ..stepsize import sgd_steps

    x_all, y_all = np.asarray(data.x, np.float32), np.asarray(data.y, np.int32)
    n, shape = len(y_all), x_all.shape[1:]
    model = mlp(shape, data.num_classes, widths, kernel_std=1.0, seed=0)

    def point(init, seed):
        rng = np.random.default_rng(seed)
        if held_out is None:
            idx = rng.choice(n, size=min(eval_batch, n), replace=False)
            x_e, y_e = x_all[idx], y_all[idx]
        else:
            x_e = np.asarray(held_out.x, np.float32)
            y_e = np.asarray(held_out.y, np.int32)
        batches = rng.integers(0, n, size=(steps, batch_size))
        start = mlp(shape, data.num_classes, widths, kernel_std=inits[init], seed=seed)
        weights = start.get_weights()
        rows = []
        for name, lr in schedules.items():
            model.set_weights(weights)
            rate = float(lr) if isinstance(lr, (int, float)) else np.nan
            at = 0
            while True:
                loss = float(mean_loss(model, x_e, y_e))
                if not np.isfinite(loss):
                    at, loss = steps, np.nan
                rows.append({"schedule": name, "lr": rate, "step": at, "eval_loss": loss})
                if at >= steps:
                    break
                chunk = batches[at : at + eval_every]
                sgd_steps(model, x_all, y_all, chunk, lr)
                at += len(chunk)
        return rows

    return sweep(point, init=list(inits), seed=list(seeds))


def init_spectra(data, sds, seeds, *, hessian_batch=512, widths=(30, 30)) -> pd.DataFrame:
    """lambda_max of each dense layer's Hessian and of the whole network's at initialization.

    For each sd and seed: the network ``mlp(kernel_std=sd, seed=seed)`` and the batch of
    ``hessian_batch`` images that ``np.random.default_rng(seed)`` draws first without
    replacement, the same weights and batch as :func:`hessinit.train.run` and
    :func:`sgd_grid` start from; the largest eigenvalue of each layer's kernel Hessian
    (:func:`hessinit.curvature.layer_spectrum`) and of the network's
    (:func:`hessinit.curvature.network_spectrum`), by Lanczos with the residual check. One
    network object takes each setting's weights in turn, so the compiled products are traced
    once, not once per setting.

    Args:
        data: the training record (``x``, ``y``, ``num_classes``).
        sds: standard deviations of dense1's kernel (the other layers: Keras defaults).
        seeds: seeds of the weights and of the batch.
        hessian_batch: the number of images.
        widths: hidden widths.

    Returns:
        One row per (sd, seed, layer): ``lambda_max`` (the layer's), ``lambda_max_network``
        and ``lambda_converged`` (both Lanczos runs passed their check; a value that did not
        is NaN), the columns :func:`hessinit.train.run` adds with ``spectra=True``.

    Example:
        >>> from hessinit.data import load
        >>> frame = init_spectra(load("mnist-5k", n=64), [0.1], [0], hessian_batch=16,
        ...                      widths=(3,))
        >>> frame[["sd", "seed", "layer"]].values.tolist()
        [[0.1, 0, 'dense1'], [0.1, 0, 'dense2']]
        >>> bool((frame.lambda_max <= frame.lambda_max_network * (1 + 1e-6)).all())
        True
    """
    from ..curvature import layer_spectrum, network_spectrum

    x_all, y_all = np.asarray(data.x, np.float32), np.asarray(data.y, np.int32)
    n, shape = len(y_all), x_all.shape[1:]
    model = mlp(shape, data.num_classes, widths, kernel_std=1.0, seed=0)
    names = [d.name for d in dense_layers(model)]

    def point(sd, seed):
        rng = np.random.default_rng(seed)
        idx = rng.choice(n, size=min(hessian_batch, n), replace=False)
        x, y = x_all[idx], y_all[idx]
        model.set_weights(mlp(shape, data.num_classes, widths, kernel_std=sd,
                              seed=seed).get_weights())  # fmt: skip
        net = network_spectrum(model, x, y, strict=False)
        rows = []
        for name in names:
            s = layer_spectrum(model, name, x, y, strict=False)
            rows.append({
                "layer": name,
                "lambda_max": s.lambda_max if s.converged else np.nan,
                "lambda_max_network": net.lambda_max if net.converged else np.nan,
                "lambda_converged": s.converged and net.converged,
            })  # fmt: skip
        return rows

    return sweep(point, sd=list(sds), seed=list(seeds))


# --- diagnostic ---


def init_diagnostics(data, inits: dict, seeds, *, hessian_batch=256, widths=(30, 30)):
    """Candidate diagnostics at initialization: layer Hessian norms and two trivial baselines.

    For each initialization and seed, on a batch of ``hessian_batch`` training images drawn
    without replacement from ``np.random.default_rng(seed)``: the exact ||H_l||_F of every dense
    layer (:func:`hessinit.curvature.hessian_norms_all_layers`), their sum and maximum over
    layers, and the baselines the loss L(w_0) and the gradient norm ||grad L(w_0)|| of the
    whole network.

    Args:
        data: the training record.
        inits: label -> ``kernel_std`` of :func:`hessinit.nn.mlp`.
        seeds: seeds of the weights (the same as :func:`sgd_grid`'s) and of the batch.
        hessian_batch: the batch size B.
        widths: hidden widths.

    Returns:
        One row per (init, seed): ``init, seed``, ``H_<layer>`` per dense layer, ``H_sum``,
        ``H_max``, ``loss0``, ``grad_norm0``.

    Example:
        >>> from hessinit.data import load
        >>> frame = init_diagnostics(load("mnist-5k", n=32), {"a": 0.1}, [0], hessian_batch=8,
        ...                          widths=(3,))
        >>> frame.columns.tolist()
        ['init', 'seed', 'H_dense1', 'H_dense2', 'H_sum', 'H_max', 'loss0', 'grad_norm0']
    """
    from ..stepsize import gradient

    x_all, y_all = np.asarray(data.x, np.float32), np.asarray(data.y, np.int32)

    def point(init, seed):
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(y_all), size=min(hessian_batch, len(y_all)), replace=False)
        x, y = x_all[idx], y_all[idx]
        model = mlp(x_all.shape[1:], data.num_classes, widths, kernel_std=inits[init], seed=seed)
        norms = hessian_norms_all_layers(model, x, y)
        h = {f"H_{name}": float(v.H) for name, v in norms.items()}
        loss, g = gradient(model, x, y)
        grad = float(np.sqrt(sum(float(np.sum(np.square(t.numpy(), dtype=np.float64))) for t in g)))
        return {**h, "H_sum": sum(h.values()), "H_max": max(h.values()),
                "loss0": float(loss), "grad_norm0": grad}  # fmt: skip

    return sweep(point, init=list(inits), seed=list(seeds))
