"""Initialization schemes read through the layer Hessians, and a Hessian-based initializer.

Notation as in :mod:`hessinit.curvature`: dense layer l has kernel W_l (n_in x n_out), inputs x_i
(the previous layer's activations, after dropout), pre-activations a_i = W_l^T x_i + b_l, and

    H_l = (1/B) sum_i (x_i x_i^T) kron M_i,     M_i = d^2 l_i / d a_i^2,     ||H_l||_F exact.

**Normalization.** Every table here reports ``H_norm = ||H_l||_F / n_in`` (fan-in). When units
carry O(1) activations and the logits' sensitivities dz/da have O(1) total norm (the aim of every
variance-preserving scheme), ||H_l||_F ~ E||x||^2 ||M||_F grows like n_in, while ||M||_F <=
||Lambda|| ||dz/da||_F^2 does not grow with n_out. Dividing by n_in, i.e. taking the Hessian
with respect to the LeCun-standardized weights V = W sqrt(n_in), makes layers of different widths
comparable. Layer 1 sees pixels (E x^2 ~ 0.1 on MNIST), not unit-scale activations.

**Homogeneity.** For ReLU or linear networks with zero biases, scaling kernel j by s_j scales
the logits by S = prod_j s_j. Layer l's inputs x_i scale by prod_{j<l} s_j and the sensitivities
dz/da_l by prod_{j>l} s_j, so at a fixed softmax (fixed Lambda_i) ||H_l||_F is proportional to
S^2 / s_l^2: a layer's own scale cancels (the book's *sd sweep* and *Initialization schemes*
pages test this). Hence, while the softmax stays far from saturation, the *shape* of the depth
profile does not depend on the variance c / fan_in: with s_j = sqrt(c) all L layers move
together, like c^(L - 1). Balancing layers against each other cannot pick c; :func:`hessian_init`
needs a *target* level to fix the overall scale S.

Holds the named schemes (:func:`kernel_sds`, per layer :func:`scheme_sd`, for any model of
convolutions and dense layers :func:`model_kernel_sds`), exact per-layer norms
(:func:`depth_profile`, :func:`normalized_norms`, :func:`reference_level`), and the Hessian-based
initializer (:func:`hessian_init`).

Imports: the core below it, :mod:`hessinit.nn` and :mod:`hessinit.curvature`; never
:mod:`hessinit.study` or :mod:`hessinit.book`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .curvature import dropout_masks, hessian_norms_all_layers
from .nn import dense_layers, mlp
from .nn.convnets import kernel_fans, kernel_layers

NAMED_SCHEMES = ("lecun", "glorot", "he")


# --------------------------------------------------------------------------------------------
# Named schemes
# --------------------------------------------------------------------------------------------


def kernel_sds(
    scheme: str | float,
    widths: Sequence[int],
    input_shape: Sequence[int] = (28, 28),
    num_classes: int = 10,
) -> list[float]:
    """Per-layer initial sds of a scheme, for ``hessinit.nn.mlp(sd=...)``.

    For the dense layers of ``mlp(input_shape, num_classes, widths)`` (fan-ins n_in = prod
    input_shape, widths...; fan-outs widths..., num_classes), sigma_l^2 is

    - ``"lecun"``: 1 / n_in;  ``"he"``: 2 / n_in;  ``"glorot"``: 2 / (n_in + n_out);
    - a number c: c / n_in (so c = 1 is LeCun and c = 2 is He; for ReLU with inverted dropout of
      keep probability q, the mean-field choice is c = 2 q).

    ``mlp`` draws N(0, sigma_l^2) (a normal with Glorot's variance, not Glorot's uniform law).

    Args:
        scheme: ``"lecun"``, ``"glorot"`` or ``"he"`` (any case), or a positive finite c.
        widths: the hidden layers' widths.
        input_shape: the shape of one input; n_in of dense1 is its product.
        num_classes: the output layer's width.

    Returns:
        sigma_l, one float per dense layer (``len(widths) + 1``).

    Raises:
        ValueError: an unknown scheme name, or c not positive and finite.
        TypeError: ``scheme`` is neither a name nor a number (a bool is not a number here).

    Example:
        >>> [round(s**2 * 784, 6) for s in kernel_sds("he", [30, 30])][0]
        2.0
        >>> [round(s, 4) for s in kernel_sds("glorot", [30, 30])]
        [0.0496, 0.1826, 0.2236]
    """
    fan_ins = [int(np.prod(input_shape))] + [int(w) for w in widths]
    fan_outs = [int(w) for w in widths] + [int(num_classes)]
    return [scheme_sd(scheme, i, o) for i, o in zip(fan_ins, fan_outs, strict=True)]


def scheme_sd(scheme: str | float, fan_in: int, fan_out: int) -> float:
    """The kernel standard deviation sigma of a scheme for one layer's fans.

    sigma^2 = 1 / fan_in (``"lecun"``), 2 / fan_in (``"he"``), 2 / (fan_in + fan_out)
    (``"glorot"``) or c / fan_in for a number c. For a convolution with k x k kernels,
    fan_in = k k c_in and fan_out = k k c_out (:func:`hessinit.nn.convnets.kernel_fans`).

    Args:
        scheme: as in :func:`kernel_sds`.
        fan_in: the layer's fan-in.
        fan_out: the layer's fan-out.

    Returns:
        sigma as a float.

    Raises:
        ValueError: an unknown scheme name, or c not positive and finite.
        TypeError: ``scheme`` is neither a name nor a number.

    Example:
        >>> scheme_sd("he", 3 * 3 * 16, 3 * 3 * 32) ** 2 * 144  # a 3x3 conv, 16 -> 32 channels
        2.0
    """
    if isinstance(scheme, str):
        key = scheme.lower()
        if key == "lecun":
            var = 1.0 / fan_in
        elif key == "he":
            var = 2.0 / fan_in
        elif key == "glorot":
            var = 2.0 / (fan_in + fan_out)
        else:
            raise ValueError(f"unknown scheme {scheme!r}; use one of {NAMED_SCHEMES} or a number c")
    elif isinstance(scheme, (int, float)) and not isinstance(scheme, bool):
        if not 0 < scheme < math.inf:
            raise ValueError(f"the variance factor c must be positive and finite, got {scheme}")
        var = float(scheme) / fan_in
    else:
        raise TypeError(f"scheme must be a name in {NAMED_SCHEMES} or a number c, got {scheme!r}")
    return math.sqrt(var)


def model_kernel_sds(scheme: str | float, model) -> list[float]:
    """Per-kernel-layer sds of a scheme for any model of Conv2D and Dense layers.

    One entry per :func:`hessinit.nn.convnets.kernel_layers` layer, from its kernel's fans
    (a conv's fan-in is k k c_in), for the ``sd`` argument of the model's builder
    (:func:`hessinit.nn.small_cnn`, :func:`hessinit.nn.simple_googlenet`,
    :func:`hessinit.nn.small_resnet`, or :func:`hessinit.nn.mlp`, where it equals
    :func:`kernel_sds`).

    Args:
        scheme: as in :func:`kernel_sds`.
        model: a Keras model; its kernel shapes are read, its weights left alone.

    Returns:
        sigma per kernel layer, in the model's layer order.

    Example:
        >>> from hessinit.nn import small_cnn
        >>> [round(s**2 * f, 6) for s, f in zip(model_kernel_sds("he", small_cnn()),
        ...                                     [9 * 1, 9 * 8, 784])]
        [2.0, 2.0, 2.0]
    """
    return [scheme_sd(scheme, *kernel_fans(layer.kernel.shape)) for layer in kernel_layers(model)]


def scheme_label(scheme: str | float) -> str:
    """A display label for a scheme: a name in lower case, a number c as ``"c=<c>"``.

    Args:
        scheme: a scheme as accepted by :func:`kernel_sds`.

    Returns:
        The label used in the ``init`` columns of the chapters' frames.

    Example:
        >>> scheme_label("He"), scheme_label(2.0), scheme_label(0.5)
        ('he', 'c=2', 'c=0.5')
    """
    return scheme.lower() if isinstance(scheme, str) else f"c={scheme:g}"


# --------------------------------------------------------------------------------------------
# Exact per-layer norms of every dense layer (inference or fixed dropout masks)
# --------------------------------------------------------------------------------------------


def _profile(model, x, y, training, seed):
    """Array (4, L): H, G, R, GR of every dense layer (float64), inference or fixed masks."""
    masks = dropout_masks(model, len(x), seed) if training else None
    norms = hessian_norms_all_layers(model, x, y, masks=masks).values()
    return np.array([[n.H, n.G, n.R, n.GR] for n in norms]).T


def depth_profile(model, x, y, training=False, masks=1, seed=0) -> pd.DataFrame:
    """Exact per-layer Hessian norms of the mean cross-entropy for every dense layer, one row each.

    For dense layer l with inputs x_i and M_i = d^2 l_i / d a_i^2, H_l = (1/B) sum_i
    (x_i x_i^T) kron M_i splits into the Gauss-Newton term G_l (M_i replaced by J_i^T Lambda_i
    J_i) and the curvature term R_l = H_l - G_l. All layers are computed exactly in float64 by
    the Kronecker identity, in one forward and one backward recursion
    (:func:`hessinit.curvature.hessian_norms_all_layers`). Memory O(B n_out^2) per layer; R is
    skipped (exactly 0) when all hidden activations are ReLU or linear.

    Args:
        model: an MLP of dense layers (e.g. :func:`hessinit.nn.mlp`), possibly with dropout.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        training: ``False``: dropout off, the same numbers as
            :func:`hessinit.curvature.layer_hessian_norms`. ``True``: the Hessian of the
            training-mode network with a *fixed* inverted-dropout mask (entries 0 or 1/q per
            sample and unit, :func:`hessinit.curvature.dropout_masks` drawn from ``seed``); the
            layer inputs x_i are then the masked activations and M_i is taken through the
            masked network.
        masks: with ``training=True``, the number m of independent mask draws (seeds ``seed``,
            ``seed + 1``, ...); H, G, R, GR are averaged over them (an average of norms, not
            the norm of the averaged Hessian). Ignored when ``training=False``.
        seed: the seed of the first mask draw.

    Returns:
        A ``pandas.DataFrame`` with columns ``layer`` (1, 2, ...), ``name``, ``fan_in``,
        ``fan_out``, ``H``, ``G``, ``R`` (Frobenius norms of the kernel's Hessian block and of
        its Gauss-Newton and curvature terms), ``GR`` (<G, R>) and ``H_norm = H / fan_in`` (the
        module's normalization); with more than one draw also ``H_std``, the sample standard
        deviation of H over the draws.

    Raises:
        ValueError: ``masks < 1``.

    Example:
        >>> from hessinit.nn import mlp
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.random((16, 4, 4), np.float32), rng.integers(0, 3, 16)
        >>> model = mlp((4, 4), 3, widths=(5,), activation="relu", sd=[0.5, 0.5])
        >>> frame = depth_profile(model, x, y)
        >>> frame[["layer", "name", "fan_in", "fan_out"]].values.tolist()
        [[1, 'dense1', 16, 5], [2, 'dense2', 5, 3]]
        >>> bool((frame.R == 0).all() and np.allclose(frame.H, frame.G))  # ReLU: H = G
        True
        >>> bool(np.allclose(frame.H_norm, frame.H / frame.fan_in))
        True
    """
    if masks < 1:
        raise ValueError(f"masks must be at least 1, got {masks}")
    n_draws = masks if training else 1
    draws = np.array([_profile(model, x, y, training, seed + k) for k in range(n_draws)])
    mean = draws.mean(axis=0)  # (4, L): H, G, R, GR
    dense = dense_layers(model)
    fan_ins = np.array([int(d.kernel.shape[0]) for d in dense])
    frame = pd.DataFrame(
        {
            "layer": np.arange(1, len(dense) + 1),
            "name": [d.name for d in dense],
            "fan_in": fan_ins,
            "fan_out": [int(d.kernel.shape[1]) for d in dense],
            "H": mean[0],
            "G": mean[1],
            "R": mean[2],
            "GR": mean[3],
            "H_norm": mean[0] / fan_ins,
        }
    )
    if n_draws > 1:
        frame["H_std"] = draws[:, 0].std(axis=0, ddof=1)
    return frame


def normalized_norms(model, x, y, training=False, seed=0) -> np.ndarray:
    """The normalized norms h_l = ||H_l||_F / n_in of every dense layer, as a float64 array.

    The ``H_norm`` column of :func:`depth_profile` (one mask draw), without building the frame.

    Args:
        model: an MLP of dense layers.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        training: ``True`` for the training-mode network under one fixed dropout mask.
        seed: the seed of that mask.

    Returns:
        h_l, one entry per dense layer.

    Example:
        >>> from hessinit.nn import mlp
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.random((16, 4, 4), np.float32), rng.integers(0, 3, 16)
        >>> model = mlp((4, 4), 3, widths=(5,), sd=[0.5, 0.5])
        >>> h = normalized_norms(model, x, y)
        >>> h.shape, bool(np.allclose(h, depth_profile(model, x, y).H_norm))
        ((2,), True)
    """
    fan_ins = np.array([int(d.kernel.shape[0]) for d in dense_layers(model)])
    return _profile(model, x, y, training, seed)[0] / fan_ins


def reference_level(x, num_classes: int = 10) -> float:
    """Normalized Hessian norm of softmax regression on ``x`` at zero weights: a data-only level.

    With W = 0 the softmax is uniform, M_i = Lambda_0 = (I - 11^T / K) / K for every sample, so
    H = C kron Lambda_0 with C = (1/B) sum_i x_i x_i^T and the value is
    ||C||_F sqrt(K - 1) / (K n_in), since ||Lambda_0||_F = sqrt(K - 1) / K. A depth-independent
    target for :func:`hessian_init`: "each layer as curved as a linear classifier on the data".

    Args:
        x: inputs, shape (B, ...); each is flattened to n_in values.
        num_classes: K.

    Returns:
        ||C||_F sqrt(K - 1) / (K n_in), computed in float64.

    Example:
        >>> reference_level(np.ones((4, 2)), num_classes=2)  # ||C||_F = 2, sqrt(1) / (2 * 2)
        0.5
    """
    X = np.asarray(x, np.float64).reshape(len(x), -1)
    C = X.T @ X / len(X)
    return float(np.linalg.norm(C) * math.sqrt(num_classes - 1) / (num_classes * X.shape[1]))


# --------------------------------------------------------------------------------------------
# The Hessian-based initializer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HessianInit:
    """Outcome of :func:`hessian_init`.

    Attributes:
        table: one row per dense layer: ``layer``, ``name``, ``scale`` (s_l, W_l <- s_l W_l),
            ``H_norm_before`` and ``H_norm`` (h_l before and after).
        iterations: the solver steps taken.
        evaluations: the exact profiles computed (one per step, plus the start).
        converged: whether ``spread <= tol``.
        spread: the largest relative miss, ``max_l |h_l / target - 1|``.
        seconds: the wall-clock time.

    Example:
        >>> import pandas as pd
        >>> HessianInit(pd.DataFrame(), 2, 3, True, 0.01, 0.5).converged
        True
    """

    table: pd.DataFrame
    iterations: int
    evaluations: int
    converged: bool
    spread: float
    seconds: float


def hessian_init(
    model,
    x,
    y,
    target: float | None = None,
    iters: int = 30,
    tol: float = 0.02,
    max_step: float = 1.0,
    training: bool = False,
    seed: int = 0,
) -> HessianInit:
    """Rescale each dense kernel, W_l <- s_l W_l, until every layer's normalized norm hits a target.

    The normalized norms are h_l = ||H_l||_F / n_in on the batch (x, y). Layers interact (s_j
    changes every h_l), so F(u) = log h(u) - log target = 0 in u = log s is solved jointly by
    Broyden's method in a trust region: the Jacobian starts from the homogeneous-network value
    d log h_l / d u_j = 2 [j != l] (exact for ReLU/linear at a fixed softmax, see the module
    docstring), every step costs one exact evaluation of all layers and is capped at
    ``max_step`` in each u_l; a step that does not reduce ``max_l |F_l|`` is rejected and halves the
    cap. Stops when ``max_l |h_l / target - 1| <= tol``, or after ``iters`` steps with a
    ``RuntimeWarning``, keeping the best scales found. Biases are untouched, so each kernel
    keeps its direction. ReLU/linear nets converge in 1-3 steps; saturating activations (tanh)
    need tens of steps and may stall a few percent off a target their bounded activations
    cannot reach.

    Args:
        model: an MLP of dense layers; its kernels are modified in place.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        target: the common level of h_l; ``None``: the geometric mean of the starting h_l
            (keeps the overall level). :func:`reference_level` gives a depth-independent level.
        iters: the largest number of solver steps.
        tol: the accepted relative miss.
        max_step: the largest change of any log-scale u_l in one step.
        training: balance the training-mode Hessians under one fixed dropout mask.
        seed: the seed of that mask.

    Returns:
        A :class:`HessianInit` with the scales, the norms before and after, and the solver's
        record.

    Raises:
        ValueError: ``target`` is not positive and finite.
        FloatingPointError: the starting model has a zero or non-finite h_l.

    Example:
        >>> from hessinit.nn import mlp
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.random((32, 4, 4), np.float32) - 0.5, rng.integers(0, 3, 32)
        >>> model = mlp((4, 4), 3, (8, 8), "relu", kernel_sds("lecun", (8, 8), (4, 4), 3))
        >>> result = hessian_init(model, x, y, target=0.01)
        >>> result.converged, bool(np.allclose(normalized_norms(model, x, y), 0.01, rtol=0.02))
        (True, True)
    """
    if target is not None and not 0 < target < math.inf:
        raise ValueError(f"target must be a positive normalized norm, got {target}")
    start = time.perf_counter()
    dense = dense_layers(model)
    kernels = [d.kernel for d in dense]
    originals = [k.numpy() for k in kernels]
    n = len(kernels)

    def assign(u):
        for kernel, w, ui in zip(kernels, originals, u, strict=True):
            kernel.assign((w * math.exp(ui)).astype(w.dtype))

    def evaluate(u):
        assign(u)
        h = normalized_norms(model, x, y, training=training, seed=seed)
        if not np.all(np.isfinite(h)) or np.any(h <= 0):
            return None
        return np.log(h)

    u = np.zeros(n)
    logh = evaluate(u)
    if logh is None:
        raise FloatingPointError("the starting model has zero or non-finite Hessian norms")
    before = np.exp(logh)
    evaluations = 1
    log_t = logh.mean() if target is None else math.log(target)
    F = logh - log_t
    jac = 2.0 * (np.ones((n, n)) - np.eye(n))
    radius, it = max_step, 0
    while math.expm1(np.abs(F).max()) > tol and it < iters:
        it += 1
        step = -np.linalg.lstsq(jac, F, rcond=None)[0]
        largest = np.abs(step).max()
        if largest > radius:
            step *= radius / largest
        logh_new = evaluate(u + step)
        evaluations += 1
        if logh_new is None:
            radius /= 2
            continue
        F_new = logh_new - log_t
        jac += np.outer(F_new - F - jac @ step, step) / (step @ step)
        if np.abs(F_new).max() < np.abs(F).max():
            u, logh, F = u + step, logh_new, F_new
            radius = min(2 * radius, max_step)
        else:
            radius /= 2
    assign(u)
    spread = math.expm1(np.abs(F).max())
    converged = spread <= tol
    if not converged:
        warnings.warn(
            f"hessian_init did not reach tol={tol} in {iters} iterations (largest miss "
            f"{spread:.3g}); kept the best scales found",
            RuntimeWarning,
            stacklevel=2,
        )
    table = pd.DataFrame(
        {
            "layer": np.arange(1, n + 1),
            "name": [d.name for d in dense],
            "scale": np.exp(u),
            "H_norm_before": before,
            "H_norm": np.exp(logh),
        }
    )
    return HessianInit(table, it, evaluations, converged, spread, time.perf_counter() - start)


# --------------------------------------------------------------------------------------------
# The depth-stable variance: mean-field value and measured root
# --------------------------------------------------------------------------------------------


def _gauss(n: int = 4000):
    """Nodes and weights of E[g(z)], z ~ N(0, 1): a fine grid on [-12, 12], no node at 0."""
    z = np.linspace(-12, 12, n)
    w = np.exp(-(z**2) / 2)
    return z, w / w.sum()


def mean_field_chi(activation: str, c: float, keep: float = 1.0, iters: int = 20000) -> float:
    """The mean-field backward factor per layer, chi = c E[f'(a)^2] / q at the forward fixed point.

    Pre-activations a = W^T x of a layer with kernels N(0, c / n_in) are, over the draw, normal
    with variance c q_x, where q_x = E[x^2] is the second moment of the layer's inputs
    x = f(a') m / q (inverted dropout with keep probability q, m ~ Bernoulli(q); q = 1: none).
    The forward map q_x <- E[f(sqrt(c q_x) z)^2] / q is iterated from q_x = 1 to its fixed
    point q* (at most ``iters`` times), and chi = c E[f'(sqrt(c q*) z)^2] / q is the factor by
    which one more layer multiplies the squared sensitivities ||dz/da||^2 (Poole et al. 2016;
    Schoenholz et al. 2017, with zero biases). At q*, adding a layer leaves the inputs' scale
    alone and multiplies every layer's Gauss-Newton scale J^T Lambda J by chi, so chi = 1 is
    the mean-field condition for Hessian norms flat in depth. ReLU: chi = c / (2q); linear:
    c / q; tanh (q* = 0 for c <= 1): chi = c at c <= 1.

    Args:
        activation: a name in :data:`hessinit.nn.activations.REGISTRY`.
        c: the variance factor, c > 0.
        keep: the keep probability q of inverted dropout after each hidden layer.
        iters: fixed-point iterations (q_x is clipped to [1e-200, 1e200], so that the factor
            of a homogeneous f is still read off when q_x collapses or explodes).

    Returns:
        chi, a float.

    Example:
        >>> round(mean_field_chi("relu", 2.0), 6), round(mean_field_chi("relu", 1.0, keep=0.5), 6)
        (1.0, 1.0)
        >>> round(mean_field_chi("tanh", 0.5), 6)
        0.5
    """
    from .nn.activations import REGISTRY

    act = REGISTRY[activation]
    z, w = _gauss()
    q = 1.0
    for _ in range(iters):
        q_new = float(np.clip(w @ act.f(math.sqrt(c * q) * z) ** 2 / keep, 1e-200, 1e200))
        if abs(q_new - q) <= 1e-13 * q:
            break
        q = q_new
    return float(c * (w @ act.df(math.sqrt(c * q) * z) ** 2) / keep)


def mean_field_variance(activation: str, keep: float = 1.0) -> float:
    """The mean-field depth-stable variance factor: the c at which :func:`mean_field_chi` is 1.

    Solved by Brent's method in log c on [1e-2, 1e3]. It gives He's c = 2 for ReLU, LeCun's
    c = 1 for linear networks, c = 2q for ReLU with inverted dropout of keep probability q, LeCun's
    c = 1 for tanh (to about 1e-3: q* -> 0 only like 1 / depth at c = 1, so the fixed-point
    iteration is slow there), and numbers without a named scheme for sigmoid (about 103) and
    softplus (about 2.0): f(0) != 0, so q* > 0 and f'(0) alone does not set chi.

    Args:
        activation: a name in :data:`hessinit.nn.activations.REGISTRY`.
        keep: the keep probability q of inverted dropout.

    Returns:
        c with chi(c) = 1.

    Raises:
        ValueError: chi - 1 does not change sign on the bracket.

    Example:
        >>> [round(mean_field_variance(a), 4) for a in ("relu", "linear")]
        [2.0, 1.0]
        >>> round(mean_field_variance("relu", keep=0.8), 4)
        1.6
    """
    from scipy.optimize import brentq

    def gap(u):
        return math.log(mean_field_chi(activation, math.exp(u), keep))

    lo, hi = math.log(1e-2), math.log(1e3)
    if gap(lo) * gap(hi) > 0:
        raise ValueError(f"no mean-field critical variance for {activation} in [1e-2, 1e3]")
    return math.exp(brentq(gap, lo, hi, xtol=1e-5))


@dataclass(frozen=True)
class VarianceRoot:
    """Outcome of :func:`depth_stable_variance`.

    Attributes:
        c: the root c* (NaN when no sign change was found).
        log_growth: the measured log-growth per added layer at ``c`` (NaN without a root).
        bracket: the interval (c_lo, c_hi) searched last, with log-growth of opposite signs
            when ``bracketed``.
        bracketed: whether a sign change was found.
        evaluations: the number of log-growth evaluations (each profiles every depth).
        profile: the normalized norms h_l of every network at ``c`` (columns ``depth``,
            ``layer``, ``H_norm``); empty without a root.

    Example:
        >>> VarianceRoot(2.0, 0.0, (1.0, 4.0), True, 5, pd.DataFrame()).bracketed
        True
    """

    c: float
    log_growth: float
    bracket: tuple
    bracketed: bool
    evaluations: int
    profile: pd.DataFrame


class DepthGrowth:
    """The measured log-growth per added layer of the layers' Hessian level, as a function of c.

    For each depth D (``depths`` hidden layers of ``hidden`` units, D + 1 dense layers) one
    network is built once from ``seed`` with every kernel N(0, 1 / n_in) and zero biases; for a
    variance factor c its kernels are set to sqrt(c) times those draws (the same directions for
    every c), the normalized norms h_l = ||H_l||_F / n_in of every layer are computed exactly on
    (x, y), and the network's level is the geometric mean of its h_l. The log-growth g(c) is
    the least-squares slope of log level against the number of dense layers. With dropout the
    training-mode Hessian under one fixed mask (drawn from ``seed``) is used.

    Args:
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        activation: the hidden activation.
        depths: numbers of hidden layers (at least two distinct).
        hidden: units per hidden layer.
        seed: seed of the kernels and the dropout masks.
        dropout: the inverted-dropout rate 1 - q after each hidden layer.
        num_classes: the output width.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.random((16, 4, 4), np.float32), rng.integers(0, 3, 16)
        >>> g = DepthGrowth(x, y, "relu", depths=(1, 2), hidden=6, num_classes=3)
        >>> bool(g(1.0) < g(2.0) < g(4.0))  # ReLU: g grows with c (about log(c / 2))
        True
    """

    def __init__(self, x, y, activation, depths, hidden, seed=0, dropout=0.0, num_classes=10):
        if len(set(depths)) < 2:
            raise ValueError(f"need at least two distinct depths, got {depths}")
        self.x = np.asarray(x, np.float32)
        self.y = np.asarray(y).reshape(-1)
        self.depths = sorted(set(int(d) for d in depths))
        self.training = dropout > 0
        self.seed = seed
        self.models, self.bases = {}, {}
        for d in self.depths:
            widths = (hidden,) * d
            sds = kernel_sds(1.0, widths, self.x.shape[1:], num_classes)
            model = mlp(self.x.shape[1:], num_classes, widths, activation, sds, seed, dropout)
            self.models[d] = model
            self.bases[d] = [k.kernel.numpy() for k in dense_layers(model)]
        self.evaluations = 0
        self.last_profile = None

    def profile(self, c: float) -> pd.DataFrame:
        """h_l of every layer of every network at variance factor c (``depth, layer, H_norm``).

        Args:
            c: the variance factor.

        Returns:
            One row per (depth, layer).
        """
        rows = []
        for d in self.depths:
            model = self.models[d]
            for layer, base in zip(dense_layers(model), self.bases[d], strict=True):
                layer.kernel.assign((base * math.sqrt(c)).astype(base.dtype))
            h = normalized_norms(model, self.x, self.y, training=self.training, seed=self.seed)
            rows += [{"depth": d, "layer": i + 1, "H_norm": v} for i, v in enumerate(h)]
        self.evaluations += 1
        return pd.DataFrame(rows)

    def __call__(self, c: float) -> float:
        """The log-growth g(c) per added layer (NaN when a level is zero or not finite).

        Args:
            c: the variance factor.

        Returns:
            The slope of log level against depth.
        """
        frame = self.profile(c)
        self.last_profile = frame
        with np.errstate(divide="ignore"):
            level = frame.assign(log_h=np.log(frame["H_norm"])).groupby("depth")["log_h"].mean()
        if not np.all(np.isfinite(level.to_numpy())):
            return math.nan
        return float(np.polyfit(level.index.to_numpy(float), level.to_numpy(), 1)[0])


def depth_stable_variance(
    growth: DepthGrowth, guess: float, xtol: float = 0.01, expand: int = 6
) -> VarianceRoot:
    """Find c* with log-growth g(c*) = 0 by bracketing, then Brent's method in u = log c.

    The bracket starts at (guess / 2, 2 guess) and widens by a factor 2 on the side that does
    not change sign (g increases with c: larger kernels, larger sensitivities), at most
    ``expand`` times; then ``scipy.optimize.brentq`` solves g(exp(u)) = 0 to abs(du) <= ``xtol``
    (a relative resolution of about ``xtol`` in c). No root, no answer: without a sign change
    the result says so (``bracketed=False``, c NaN).

    Args:
        growth: a :class:`DepthGrowth`, the measured g(c).
        guess: where to start (e.g. :func:`mean_field_variance`); it is not assumed to be the
            answer, only the bracket's centre.
        xtol: the tolerance of the root in log c.
        expand: the largest number of widenings of the bracket.

    Returns:
        A :class:`VarianceRoot`.

    Example:
        >>> class Growth:  # any callable with an ``evaluations`` count; here g(c) = log(c / 3)
        ...     evaluations, last_profile = 0, None
        ...     def __call__(self, c):
        ...         self.evaluations += 1
        ...         return math.log(c / 3)
        >>> root = depth_stable_variance(Growth(), guess=1.0, xtol=1e-6)
        >>> root.bracketed, round(root.c, 4), root.bracket
        (True, 3.0, (2.0, 4.0))
    """
    from scipy.optimize import brentq

    lo, hi = math.log(guess / 2), math.log(guess * 2)
    g_lo, g_hi = growth(math.exp(lo)), growth(math.exp(hi))
    for _ in range(expand):
        if not (math.isfinite(g_lo) and math.isfinite(g_hi)) or g_lo * g_hi <= 0:
            break
        if g_lo > 0:  # both positive: the root is below
            hi, g_hi = lo, g_lo
            lo -= math.log(2)
            g_lo = growth(math.exp(lo))
        else:
            lo, g_lo = hi, g_hi
            hi += math.log(2)
            g_hi = growth(math.exp(hi))
    bracket = (math.exp(lo), math.exp(hi))
    ok = math.isfinite(g_lo) and math.isfinite(g_hi) and g_lo * g_hi <= 0
    if not ok:
        return VarianceRoot(math.nan, math.nan, bracket, False, growth.evaluations, pd.DataFrame())
    u = brentq(lambda v: growth(math.exp(v)), lo, hi, xtol=xtol)
    c = math.exp(u)
    g_c = growth(c)
    return VarianceRoot(c, g_c, bracket, True, growth.evaluations, growth.last_profile)
