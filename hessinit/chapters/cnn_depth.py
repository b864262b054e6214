"""The convolutional networks chapter, its depth-stable scale: claim 5.3.

:class:`ConvDepthGrowth` carries the MLP construction of :class:`hessinit.init.DepthGrowth` to
plain ReLU CNNs of growing depth (:func:`hessinit.nn.convnets.plain_cnn`): g(c) is the slope of
the log Hessian level against depth D when every kernel is drawn N(0, c / fan_in), and c* solves
g(c*) = 0 (He's c = 2 is the classical answer). In the order the page reads: the roots per seed
(:func:`stable_roots`), their figure (:func:`plot_cnn_growth`), claim 5.3's row
(:func:`depth_rows`) and the words the page states about them (:func:`he_side`,
:func:`seed_slopes`, :func:`root_words`). The rest of the chapter is :mod:`hessinit.chapters.cnn`
(one module would exceed 800 lines).

Imports: numpy, pandas, matplotlib, :mod:`hessinit.init`, :mod:`hessinit.nn`,
:mod:`hessinit.curvature` and the shared study layer.
"""

from __future__ import annotations

import math

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import init
from ..curvature.graph import functional_graph, own_nodes
from ..curvature.jacobians import sample_jacobians
from ..curvature.tensors import layer_tensor_norms
from ..nn.activations import activation_name
from ..nn.convnets import kernel_fans, kernel_layers, plain_cnn
from ..study.claimdata import root_rows
from ..study.figures import LAYER_COLORS, style

#: Layers through which the logits stay positively homogeneous in every upstream kernel.
_HOMOGENEOUS_PASS = (keras.layers.InputLayer, keras.layers.GlobalAveragePooling2D,
                     keras.layers.AveragePooling2D, keras.layers.MaxPooling2D,
                     keras.layers.Flatten)  # fmt: skip


def homogeneous_issue(model) -> str | None:
    """Why the logits may not be positively homogeneous of degree 1 in each kernel (None if so).

    Proves z(s_1 W_1, ..., s_L W_L) = s_1 ... s_L z(W) for s_l > 0: every operation is a
    ``Conv2D`` or ``Dense`` layer with a ReLU or linear activation and zero biases (their
    current values), or a pooling or flattening layer, each called once, each with one input
    (a chain: an addition would mix degrees). Then the logits at every kernel scaled by s are
    s^L times those at s = 1, and each kernel's Jacobian s^(L-1) times its own.

    Args:
        model: a Keras model.

    Returns:
        ``None``, or a sentence naming the layer that breaks it.

    Example:
        >>> homogeneous_issue(plain_cnn((6, 6, 1), 3, 2, 2)) is None
        True
        >>> homogeneous_issue(plain_cnn((6, 6, 1), 3, 2, 2, activation="tanh"))
        "layer 'conv1' has activation tanh (not relu or linear)"
    """
    graph = functional_graph(model)
    for op in graph.operations:
        if len(own_nodes(graph, op)) > 1 and not isinstance(op, keras.layers.InputLayer):
            return f"layer {op.name!r} is called more than once"
        if isinstance(op, keras.layers.Conv2D | keras.layers.Dense):
            name = activation_name(op.activation)
            if name not in ("relu", "linear"):
                return f"layer {op.name!r} has activation {name} (not relu or linear)"
            if op.use_bias and np.any(op.bias.numpy() != 0):
                return f"layer {op.name!r} has a nonzero bias"
        elif not isinstance(op, _HOMOGENEOUS_PASS):
            return f"operation {op.name!r} ({type(op).__name__}) is not a chain layer"
    return None


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

    Where :func:`homogeneous_issue` proves that the logits are positively homogeneous in each
    kernel (ReLU, zero biases, a chain of convolutions, pooling and dense layers), every
    kernel scaled by s = sqrt(c) gives logits z(c) = s^L z(1) and Jacobians
    J_l(c) = s^(L-1) J_l(1) for the L kernels, so

        ||H_l(c)||_F^2 = s^(4 (L - 1)) / B^2 sum_ij tr(Lambda_i M_ij Lambda_j M_ji),

    with M_ij = J_i(1) J_j(1)^T (K x K) from the per-sample Jacobians at c = 1
    (:func:`hessinit.curvature.jacobians.sample_jacobians`, computed once per depth) and
    Lambda_i that of softmax(z_i(c)) (H_l = G_l: R = 0): the same numbers as the Hessians at
    c, for any c, at the cost of one Jacobian per kernel.

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
        scaling: use the networks' homogeneity where :func:`homogeneous_issue` proves it (the
            per-sample Jacobians once, then any c in closed form); ``False``: the Hessians at
            every c (:func:`hessinit.curvature.tensors.layer_tensor_norms`).

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
                 models=None, scaling=True):  # fmt: skip
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
                             sd=[1.0] * (d + 1), seed=seed)  # fmt: skip
            self.models.setdefault(d, unit)
            self.bases[d] = [layer.kernel.numpy().astype(np.float64)
                             / math.sqrt(kernel_fans(layer.kernel.shape)[0])
                             for layer in kernel_layers(unit)]  # fmt: skip
        self.evaluations, self.last_profile, self.history = 0, None, []
        self.grams = {d: self._grams(d) if scaling else None for d in self.depths}

    def _set(self, d, c):
        """Set the kernels of depth ``d``'s network to sqrt(c) times the seed's bases."""
        for layer, base in zip(kernel_layers(self.models[d]), self.bases[d], strict=True):
            layer.kernel.assign((base * math.sqrt(c)).astype(layer.kernel.dtype))

    def _grams(self, d):
        """(z(1), [M_l], fans) of depth ``d`` at c = 1, or None where homogeneity is not proved."""
        model = self.models[d]
        self._set(d, 1.0)
        if homogeneous_issue(model) is not None:
            return None
        kernels = [layer.kernel for layer in kernel_layers(model)]
        z, Js = sample_jacobians(model, kernels, self.x, self.training)
        grams = [np.einsum("bkp,clp->bkcl", J.numpy(), J.numpy()) for J in Js]
        fans = [kernel_fans(layer.kernel.shape)[0] for layer in kernel_layers(model)]
        return z.numpy(), grams, fans

    def _scaled(self, d, c):
        """h_l of depth ``d`` at c from its Jacobians at c = 1 (the class docstring)."""
        z, grams, fans = self.grams[d]
        L, s = len(grams), math.sqrt(c)
        zc = s**L * z
        p = np.exp(zc - zc.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        lam = np.einsum("bk,kl->bkl", p, np.eye(p.shape[1])) - np.einsum("bk,bl->bkl", p, p)
        out = []
        for M, fan in zip(grams, fans, strict=True):
            A = np.einsum("ikl,iljm->ikjm", lam, M)
            g2 = np.einsum("ikjm,jmik->", A, A) * s ** (4 * (L - 1)) / len(z) ** 2
            out.append(math.sqrt(max(g2, 0.0)) / fan)
        return out

    def profile(self, c: float) -> pd.DataFrame:
        """h_l of every kernel of every network at variance factor c (``depth, layer, H_norm``).

        Args:
            c: the variance factor.

        Returns:
            One row per (depth, layer), layers numbered from 1 (the logits layer last).
        """
        rows = []
        for d in self.depths:
            if self.grams[d] is not None:
                h = self._scaled(d, c)
            else:
                self._set(d, c)
                layers = kernel_layers(self.models[d])
                h = [layer_tensor_norms(self.models[d], layer, self.x, self.y, weight="kernel").H
                     / kernel_fans(layer.kernel.shape)[0] for layer in layers]  # fmt: skip
            rows += [{"depth": d, "layer": i + 1, "H_norm": v} for i, v in enumerate(h)]
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
        :func:`hessinit.chapters.init_schemes.stable_roots` (``label, activation, dropout, seed,
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


def plot_cnn_growth(evaluations: pd.DataFrame, summary: pd.DataFrame, classical: float = 2.0):
    """The log-growth g(c) per added convolution at every c the root search evaluated.

    One line per seed; the zero line, the classical value (He's c = 2, dashed) and the 95%
    interval of c* over seeds (shaded).

    Args:
        evaluations: the ``evaluations`` frame of :func:`hessinit.chapters.cnn_depth.stable_roots`.
        summary: one row of :func:`hessinit.study.analysis.root_summary` (``c``, ``low``,
            ``high``).
        classical: the value compared with.

    Returns:
        The figure.
    """
    with style():
        fig, ax = plt.subplots(figsize=(5.5, 3.0), layout="constrained")
        for k, (seed, run) in enumerate(evaluations.groupby("seed")):
            run = run.sort_values("c")
            ax.plot(run["c"], run["log_growth"], "o-", ms=3, lw=1,
                    color=LAYER_COLORS[k % len(LAYER_COLORS)], label=f"seed {seed}")  # fmt: skip
        row = summary.iloc[0]
        if np.isfinite(row["low"]) and np.isfinite(row["high"]):
            ax.axvspan(row["low"], row["high"], color="grey", alpha=0.2, label="c* (95%)")
        ax.axhline(0.0, color="black", lw=0.8)
        ax.axvline(classical, color="black", ls="--", lw=1, label=f"He, c = {classical:g}")
        ax.set_xscale("log")
        ax.set_xlabel("variance factor c (kernel variance c / fan-in)")
        ax.set_ylabel("log-growth g(c) per convolution")
        ax.legend(frameon=False, fontsize=8)
    return fig


def depth_rows(
    summary: pd.DataFrame,
    *,
    xtol: float,
    max_ratio: float,
    setting: str,
    page: str = "cnn",
) -> pd.DataFrame:
    """Claim 5.3: the depth-stable c* of plain ReLU CNNs recovers He's c = 2.

    Claim 2.1's rule (:func:`hessinit.study.claimdata.root_rows`, the MLP rows) applied to
    the CNN roots, so the two chapters judge alike: He's value must lie in the 95% interval of
    c* over seeds widened by the root tolerance, and that interval be no wider than a factor
    ``max_ratio``. The source is this book's formalization: the abstract says the approach
    "recovers previous results" for ReLU, not that it does so for convolutions.

    Args:
        summary: rows of :func:`hessinit.study.analysis.root_summary` of
            :func:`hessinit.chapters.cnn_depth.stable_roots`.
        xtol: the root tolerance in log c.
        max_ratio: the widest interval (high / low) that can decide.
        setting: the networks.
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
    return root_rows("5.3", summary, classic=classic, xtol=xtol, max_ratio=max_ratio,
                     setting=setting, page=page)  # fmt: skip


def he_side(low: float, high: float, classical: float = 2.0) -> str:
    """Where an interval [low, high] of c* lies against He's c = 2.

    Args:
        low: The interval's lower end.
        high: Its upper end.
        classical: The reference variance factor (He's 2).

    Returns:
        "above" if low > classical, "below" if high < classical, else "around".

    Example:
        >>> he_side(2.5, 3.0), he_side(1.0, 1.5), he_side(1.5, 2.5)
        ('above', 'below', 'around')
    """
    return "above" if low > classical else "below" if high < classical else "around"


def seed_slopes(evaluations: pd.DataFrame) -> pd.Series:
    """Per seed, the least-squares slope of log growth against log c over the root search.

    Args:
        evaluations: :func:`stable_roots`' evaluations (``seed``, ``c``, ``log_growth``).

    Returns:
        seed -> slope d log g / d log c (NaN for a seed with fewer than two evaluations).

    Example:
        >>> ev = pd.DataFrame({"seed": [0, 0, 1], "c": [1.0, np.e, 2.0],
        ...                    "log_growth": [0.0, 3.0, 1.0]})
        >>> seed_slopes(ev).round(6).tolist()
        [3.0, nan]
    """
    return (
        evaluations.assign(u=np.log(evaluations["c"]))
        .groupby("seed")
        .apply(
            lambda e: np.polyfit(e["u"], e["log_growth"], 1)[0] if len(e) > 1 else np.nan,
            include_groups=False,
        )
    )


def root_words(summary: pd.DataFrame, evaluations: pd.DataFrame, roots: pd.DataFrame) -> dict:
    """What the depth-stable scale's prose says about c*, its seeds and the growth's slopes.

    ``c_cnn`` states c* with its interval and its side of He's c = 2 (:func:`he_side`) when two
    or more seeds found a root, else how many did; ``g_slope`` the range of :func:`seed_slopes`;
    ``c_seeds`` each seed's first root ("none" where it found none); ``spread_cnn`` the spread.

    Args:
        summary: :func:`hessinit.study.analysis.root_summary` (its first row is used).
        evaluations: :func:`stable_roots`' evaluations.
        roots: :func:`stable_roots`' roots (``seed``, ``c_star``).

    Returns:
        ``{"c_cnn", "g_slope", "c_seeds", "spread_cnn"}`` -> text.

    Example:
        >>> summary = pd.DataFrame({"c": [3.0], "low": [2.5], "high": [3.5], "seeds": [2],
        ...                         "spread": [1.2]})
        >>> ev = pd.DataFrame({"seed": [0, 0, 1, 1], "c": [1.0, np.e] * 2,
        ...                    "log_growth": [0.0, 1.0, 0.0, 2.0]})
        >>> roots = pd.DataFrame({"seed": [0, 1], "c_star": [2.9, np.nan]})
        >>> words = root_words(summary, ev, roots)
        >>> words["c_cnn"][-18:], words["g_slope"], words["c_seeds"]
        ("above He's $c = 2$", '1.00 to 2.00', '2.9, none')
    """
    r = summary.iloc[0]
    if r["seeds"] >= 2:
        c_cnn = (
            f"$c^* = {r['c']:.3g}$ [{r['low']:.3g}, {r['high']:.3g}] (geometric mean over "
            f"{int(r['seeds'])} seeds, 95% interval), {he_side(r['low'], r['high'])} He's $c = 2$"
        )
    else:
        c_cnn = f"no $c^*$ on two or more seeds ({int(r['seeds'])} found one)"
    slope = seed_slopes(evaluations)
    per_seed = roots.groupby("seed")["c_star"].first()
    return {
        "c_cnn": c_cnn,
        "g_slope": f"{slope.min():.2f} to {slope.max():.2f}",
        "c_seeds": ", ".join("none" if np.isnan(v) else f"{v:.3g}" for v in per_seed),
        "spread_cnn": f"{r['spread']:.3g}",
    }
