"""Largest eigenvalues of layer and network Hessians by Lanczos on a Hessian-vector product.

The matrix is never formed: ``scipy.sparse.linalg.eigsh`` (implicitly restarted Lanczos, ARPACK)
runs on a ``LinearOperator`` whose product is one of

- the Kronecker product of a dense layer (``method="kronecker"``): with the per-sample blocks
  x_i and M_i = A_i + R_i of :func:`hessinit.curvature.layer_curvature`,

      H_W vec(V) = (1/B) sum_i x_i x_i^T V M_i = (1/B) X^T [(X V)_i M_i]_i,

  for V (n_in x n_out) in the row-major order of the kernel W: two products with X and B small
  n_out x n_out ones, about the cost of a gradient, in float64 (G_W takes A_i, R_W takes R_i);
- the generic forward-over-backward product of :mod:`hessinit.curvature.products`
  (``method="autodiff"``) restricted to one weight tensor (zeros on every other tensor, the
  tensor's own part of H v kept) or over all trainable weights, in the model's dtype.

Every eigenpair (lambda_j, v_j) is checked after Lanczos by one more product: the relative
residual norm(H v_j - lambda_j v_j) / max_j abs(lambda_j) bounds the eigenvalue's error relative to
the largest one (a symmetric matrix has an eigenvalue within norm(r) of lambda_j). A spectrum whose
residuals exceed ``rtol``, or on which ARPACK gave up, is not converged: :class:`Spectrum` says
so, and the calls raise :class:`NotConvergedError` unless ``strict=False``.

Imports: numpy, scipy, threadpoolctl, TensorFlow, Keras, :mod:`hessinit.nn` and the curvature
modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from threadpoolctl import threadpool_limits

from ..nn.models import get_dense
from .blocks import layer_curvature
from .products import _flat, _unflat, curvature_vp, gnvp, hvp

#: The terms of H = G + R a spectrum can be taken of.
TERMS = ("H", "G", "R")

#: The eigenvalues asked for, largest algebraic (``"LA"``) or largest in magnitude (``"LM"``).
WHICH = ("LA", "LM")

#: The product routes, by the dense layer's Kronecker structure or by autodiff.
METHODS = ("auto", "kronecker", "autodiff")


@dataclass(frozen=True)
class Spectrum:
    """Top eigenvalues of a symmetric operator and how well they converged.

    Attributes:
        eigenvalues: the k eigenvalues, largest first (NaN where ARPACK returned none).
        residuals: norm(H v_j - lambda_j v_j) / max_j abs(lambda_j) for each (NaN where missing).
        converged: whether ARPACK converged and every residual is at most ``rtol``.
        rtol: the residual threshold applied.
        matvecs: the number of operator products, the residual checks included.
        method: ``"kronecker"``, ``"autodiff"`` or ``"dense"`` (small operators, see
            :func:`top_eigenvalues`).
        term: ``"H"``, ``"G"`` or ``"R"``.

    Example:
        >>> s = Spectrum(np.array([3.0, 1.0]), np.array([1e-12, 1e-11]), True, 1e-6, 40,
        ...              "dense", "H")
        >>> s.lambda_max
        3.0
    """

    eigenvalues: np.ndarray
    residuals: np.ndarray
    converged: bool
    rtol: float
    matvecs: int
    method: str
    term: str

    @property
    def lambda_max(self) -> float:
        """The first (largest) eigenvalue."""
        return float(self.eigenvalues[0])


class NotConvergedError(RuntimeError):
    """Lanczos did not reach the residual tolerance; ``spectrum`` holds what it found."""

    def __init__(self, spectrum: Spectrum):
        """Keep the partial spectrum and say what to change."""
        self.spectrum = spectrum
        super().__init__(
            f"the top-{len(spectrum.eigenvalues)} eigenvalues did not converge: largest "
            f"relative residual {np.nanmax(spectrum.residuals, initial=np.inf):.3g} > rtol="
            f"{spectrum.rtol:g} after {spectrum.matvecs} products; raise maxiter, ask for fewer "
            "eigenvalues, or pass strict=False to get the flagged result"
        )


def _check_choice(value, choices, what):
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError``."""
    if value not in choices:
        raise ValueError(f"{what} must be one of {choices}, got {value!r}")
    return value


#: Below this size the operator is materialized column by column and eigvalsh'd.
_DENSE_BELOW = 64


def top_eigenvalues(
    matvec,
    n,
    k=1,
    *,
    which="LA",
    tol=1e-10,
    rtol=1e-6,
    maxiter=None,
    seed=0,
    strict=True,
    method="dense",
    term="H",
):
    """The k largest eigenvalues of a symmetric n x n operator given by its product, checked.

    Lanczos (``scipy.sparse.linalg.eigsh`` with a ``LinearOperator``, a seeded start vector)
    for n >= 64; below that the n columns H e_j are formed and ``numpy.linalg.eigh`` solves
    them exactly (Lanczos needs k < n and gains nothing there). An operator that maps the
    random start vector to exactly 0 is the zero operator (almost surely): its eigenvalues
    are 0 without Lanczos; one that maps it to non-finite numbers (a diverged network) gives
    NaN eigenvalues, not converged. Each eigenpair is then checked
    by one more product: r_j = norm(H v_j - lambda_j v_j) / max_j abs(lambda_j) (module
    docstring).

    Args:
        matvec: v (float64 (n,)) -> H v, array-like of n entries.
        n: the operator's size.
        k: the number of eigenvalues, 1 <= k <= n (k < n for Lanczos).
        which: ``"LA"``, the largest algebraic (lambda_max first), or ``"LM"``, the largest
            in magnitude (ordered by abs, largest first).
        tol: ARPACK's relative accuracy for the Ritz values (0: machine precision).
        rtol: the largest relative residual accepted as converged.
        maxiter: ARPACK's limit on restarts (``None``: its default, 10 n).
        seed: seed of the start vector.
        strict: raise :class:`NotConvergedError` when not converged (else flag it).
        method: recorded in the result (the caller's route to ``matvec``).
        term: recorded in the result.

    Returns:
        :class:`Spectrum`.

    Raises:
        ValueError: ``k`` outside 1..n, or an unknown ``which``.
        NotConvergedError: ``strict`` and ARPACK gave up or a residual exceeds ``rtol``.

    Example:
        >>> D = np.diag(np.arange(100.0))  # eigenvalues 0, 1, ..., 99
        >>> s = top_eigenvalues(lambda v: D @ v, 100, k=3)
        >>> s.eigenvalues.round(9).tolist(), s.converged, bool(s.residuals.max() < 1e-6)
        ([99.0, 98.0, 97.0], True, True)
    """
    _check_choice(which, WHICH, "which")
    n, k = int(n), int(k)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the operator's size {n}, got {k}")
    # ARPACK's vector operations are BLAS-1/2 calls on n x ncv arrays: one thread does them
    # at full speed, and on a busy machine a multithreaded BLAS spins (measured up to 8x slower).
    with threadpool_limits(limits=1, user_api="blas"):
        spectrum = _lanczos(matvec, n, k, which, tol, rtol, maxiter, seed, method, term)
    if strict and not spectrum.converged:
        raise NotConvergedError(spectrum)
    return spectrum


def _lanczos(matvec, n, k, which, tol, rtol, maxiter, seed, method, term):
    """The body of :func:`top_eigenvalues` (arguments checked), never raising on convergence."""
    count = [0]

    def product(v):
        """H v as a flat float64 array, counted."""
        count[0] += 1
        return np.asarray(matvec(np.asarray(v, np.float64).ravel()), np.float64).ravel()

    arpack_ok = True
    v0 = np.random.default_rng(seed).standard_normal(n)
    Hv0 = product(v0)
    if not np.all(np.isfinite(Hv0)):  # e.g. a diverged network: nothing to iterate on
        values, vectors, arpack_ok = np.zeros(0), np.zeros((n, 0)), False
    elif not np.any(Hv0):  # H v0 = 0 for a random v0: H = 0 (e.g. R of ReLU), almost surely
        values, vectors = np.zeros(k), np.eye(n, k)
    elif n < _DENSE_BELOW or k >= n:
        dense = np.column_stack([product(e) for e in np.eye(n)])
        values, vectors = np.linalg.eigh((dense + dense.T) / 2)
        method = "dense"
    else:
        op = LinearOperator((n, n), matvec=product, dtype=np.float64)
        try:
            values, vectors = eigsh(op, k=k, which=which, tol=tol, maxiter=maxiter, v0=v0)
        except ArpackNoConvergence as err:
            values, vectors, arpack_ok = err.eigenvalues, err.eigenvectors, False
    key = values if which == "LA" else np.abs(values)
    order = np.argsort(key)[::-1][:k]
    values, vectors = values[order], vectors[:, order]
    scale = np.max(np.abs(values), initial=0.0)
    residuals = np.array(
        [np.linalg.norm(product(v) - lam * v) for lam, v in zip(values, vectors.T, strict=True)]
    )
    residuals = residuals / scale if scale > 0 else residuals
    found = len(values)
    eigenvalues = np.concatenate([values, np.full(k - found, np.nan)])
    residuals = np.concatenate([residuals, np.full(k - found, np.nan)])
    converged = bool(arpack_ok and found == k and np.all(residuals <= rtol))
    return Spectrum(eigenvalues, residuals, converged, float(rtol), count[0], method, term)


def _tolerances(dtype, tol, rtol):
    """Default ``tol`` and ``rtol`` for products computed in ``dtype``.

    Float64 products: tol 1e-10, rtol 1e-6. Float32 products carry round-off near 1e-7 of the
    largest eigenvalue, so Lanczos can neither reach nor check more: tol 1e-6, rtol 1e-3.
    """
    single = tf.as_dtype(dtype) != tf.float64
    return (1e-6 if single else 1e-10) if tol is None else tol, (
        (1e-3 if single else 1e-6) if rtol is None else rtol
    )


@tf.function(reduce_retracing=True)
def _kron_product(X, M, V):
    """(1/B) X^T [M_i (X V)_i]_i in one compiled call (M_i symmetric), in X's dtype."""
    W = tf.linalg.matvec(M, tf.matmul(X, V))
    return tf.matmul(X, W, transpose_a=True) / tf.cast(tf.shape(X)[0], X.dtype)


def _kronecker_matvec(X, M):
    """The product v -> (1/B) vec(X^T [(X V)_i M_i]_i), V = v as an (n_in, n_out) matrix.

    TensorFlow's matmul, not numpy's: on a shared machine a multithreaded BLAS call of this
    size can run several times slower than TensorFlow's thread pool.
    """
    keep = np.any(X != 0, axis=0)  # zero inputs (e.g. MNIST's border pixels) add nothing
    Xk = tf.constant(np.ascontiguousarray(X[:, keep], np.float64))
    Mt = tf.constant(np.asarray(M, np.float64))
    n_in, n_out = X.shape[1], M.shape[-1]

    def matvec(v):
        """H_W vec(V)."""
        out = np.zeros((n_in, n_out))
        out[keep] = _kron_product(Xk, Mt, tf.constant(v.reshape(n_in, n_out)[keep])).numpy()
        return out.ravel()

    return matvec


def _autodiff_matvec(model, x, y, term, index=None):
    """The ``term`` product over all weights (``index=None``) or over tensor ``index`` alone."""
    product = {"H": hvp, "G": gnvp, "R": curvature_vp}[term]
    variables = list(model.trainable_variables)
    dtype = variables[0].dtype
    x = tf.convert_to_tensor(x, dtype)
    y = tf.cast(tf.reshape(tf.convert_to_tensor(y), [-1]), tf.int32)
    zeros = [tf.zeros(v.shape, dtype) for v in variables]

    def matvec(v):
        """The product, flat float64."""
        if index is None:
            return _flat(product(model, x, y, _unflat(v, variables)))
        vectors = list(zeros)
        vectors[index] = tf.constant(v.reshape(variables[index].shape), dtype)
        return np.asarray(product(model, x, y, vectors)[index], np.float64).ravel()

    return matvec, dtype


def _resolve(model, layer):
    """``(keras layer or None, index of the weight tensor in trainable_variables)``."""
    variables = list(model.trainable_variables)
    if isinstance(layer, (keras.Variable, tf.Variable)):
        target, found = layer, None
    else:
        if isinstance(layer, int) or isinstance(layer, keras.layers.Dense):
            found = get_dense(model, layer)[1]
        elif isinstance(layer, str):
            found = model.get_layer(layer)
        elif isinstance(layer, keras.layers.Layer):
            found = layer
        else:
            raise TypeError(f"layer must be a name, an index, a layer or a variable, got {layer!r}")
        if getattr(found, "kernel", None) is None:
            raise ValueError(
                f"layer {found.name!r} has no kernel; pass one of its weight variables instead"
            )
        target = found.kernel
    for i, v in enumerate(variables):
        if v is target or getattr(v, "value", None) is target:
            return found, i
    raise ValueError(f"{getattr(target, 'path', target)!r} is not a trainable weight of the model")


def layer_spectrum(
    model,
    layer,
    x,
    y,
    k=1,
    *,
    term="H",
    which="LA",
    method="auto",
    tol=None,
    rtol=None,
    maxiter=None,
    seed=0,
    strict=True,
):
    """The top-k eigenvalues of the loss Hessian restricted to one weight tensor, checked.

    For a dense layer's kernel W, H_W = (1/B) sum_i (x_i x_i^T) kron M_i and its product
    H_W vec(V) = (1/B) sum_i x_i x_i^T V M_i costs about one gradient (module docstring), in
    float64 from the blocks of :func:`hessinit.curvature.layer_curvature`. Any other tensor (or
    ``method="autodiff"``) takes the forward-over-backward product over all weights with v zero
    outside the tensor, keeping the tensor's part, in the model's dtype. Lanczos and the residual
    check: :func:`top_eigenvalues`.

    Args:
        model: a Keras model mapping inputs to logits, such as :func:`hessinit.nn.mlp`.
        layer: a layer (name, dense index or object), whose kernel is taken, or a weight
            variable of the model.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        k: the number of eigenvalues.
        term: ``"H"``, the Hessian; ``"G"``, its Gauss-Newton term; ``"R"``, the curvature term.
        which: ``"LA"`` (largest algebraic, lambda_max first) or ``"LM"`` (largest magnitude).
        method: ``"auto"`` (Kronecker for a dense kernel the block code supports, else
            autodiff), ``"kronecker"`` or ``"autodiff"``.
        tol: ARPACK's tolerance (``None``: 1e-10 in float64, 1e-6 for float32 autodiff).
        rtol: the largest relative residual accepted (``None``: 1e-6 in float64, 1e-3 for
            float32 autodiff, whose products carry float32 round-off).
        maxiter: ARPACK's restart limit (``None``: its default).
        seed: seed of the Lanczos start vector.
        strict: raise :class:`NotConvergedError` when not converged (else flag it).

    Returns:
        :class:`Spectrum` of the tensor's Hessian block (its ``method`` says which route ran).

    Raises:
        ValueError: an unknown ``term``, ``which`` or ``method``, a layer without kernel, a
            variable not of this model, ``method="kronecker"`` on a tensor that is not a dense
            kernel of a supported model, or ``k`` outside 1..size.
        NotConvergedError: ``strict`` and the residual check failed.

    Example:
        >>> from hessinit.curvature import full_hessian
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(6,), widths=(12,), num_classes=3, activation="tanh",
        ...             kernel_std=1.0, dtype="float64", seed=0)
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.standard_normal((20, 6)), rng.integers(0, 3, 20)
        >>> s = layer_spectrum(model, "dense1", x, y, k=3)  # 72 weights: Lanczos
        >>> exact = np.linalg.eigvalsh(full_hessian(model, x, y, layer="dense1"))[::-1][:3]
        >>> s.method, s.converged, bool(np.allclose(s.eigenvalues, exact, rtol=1e-9))
        ('kronecker', True, True)
    """
    _check_choice(term, TERMS, "term")
    _check_choice(method, METHODS, "method")
    found, index = _resolve(model, layer)
    size = int(np.prod(model.trainable_variables[index].shape))
    blocks = None
    if method != "autodiff" and isinstance(found, keras.layers.Dense):
        try:
            blocks = layer_curvature(model, found, x, y)
        except (TypeError, ValueError):
            if method == "kronecker":
                raise
        kernel_shape = tuple(found.kernel.shape)
        if blocks is not None and (blocks[0].shape[1], blocks[1].shape[-1]) != kernel_shape:
            blocks = None  # not the blocks of this kernel: take the generic route
    if blocks is None and method == "kronecker":
        raise ValueError(
            "method='kronecker' needs a Dense layer's kernel in a model the block code supports "
            "(hessinit.curvature.layer_curvature); use method='autodiff'"
        )
    if blocks is not None:
        X, A, R = blocks
        M = {"H": A + R, "G": A, "R": R}[term]
        matvec, dtype, route = _kronecker_matvec(X, M), tf.float64, "kronecker"
    else:
        matvec, dtype = _autodiff_matvec(model, x, y, term, index)
        route = "autodiff"
    tol, rtol = _tolerances(dtype, tol, rtol)
    return top_eigenvalues(matvec, size, k, which=which, tol=tol, rtol=rtol, maxiter=maxiter,
                           seed=seed, strict=strict, method=route, term=term)  # fmt: skip


def network_spectrum(
    model,
    x,
    y,
    k=1,
    *,
    term="H",
    which="LA",
    tol=None,
    rtol=None,
    maxiter=None,
    seed=0,
    strict=True,
):
    """The top-k eigenvalues of the whole network's loss Hessian (all trainable weights).

    H = D^2_w L with cross-layer blocks, by Lanczos on :func:`hessinit.curvature.hvp` (or
    :func:`hessinit.curvature.gnvp` for G, :func:`hessinit.curvature.curvature_vp` for R), in
    the model's dtype, with the residual check of :func:`top_eigenvalues`.

    Args:
        model: a Keras model mapping inputs to logits, such as :func:`hessinit.nn.mlp`.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,).
        k: the number of eigenvalues.
        term: ``"H"``, ``"G"`` or ``"R"``.
        which: ``"LA"`` or ``"LM"``.
        tol: as in :func:`layer_spectrum`.
        rtol: as in :func:`layer_spectrum`.
        maxiter: ARPACK's restart limit.
        seed: seed of the Lanczos start vector.
        strict: raise :class:`NotConvergedError` when not converged (else flag it).

    Returns:
        :class:`Spectrum` with ``method="autodiff"`` (``"dense"`` below 64 weights).

    Raises:
        ValueError: an unknown ``term`` or ``which``, or ``k`` outside 1..P.
        NotConvergedError: ``strict`` and the residual check failed.

    Example:
        >>> from hessinit.curvature import full_hessian
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(4,), widths=(8,), num_classes=3, activation="tanh",
        ...             kernel_std=1.0, dtype="float64", seed=0)
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
        >>> s = network_spectrum(model, x, y)  # 67 weights
        >>> exact = np.linalg.eigvalsh(full_hessian(model, x, y)).max()
        >>> bool(np.isclose(s.lambda_max, exact, rtol=1e-9)), s.method
        (True, 'autodiff')
    """
    _check_choice(term, TERMS, "term")
    matvec, dtype = _autodiff_matvec(model, x, y, term)
    tol, rtol = _tolerances(dtype, tol, rtol)
    size = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    return top_eigenvalues(matvec, size, k, which=which, tol=tol, rtol=rtol, maxiter=maxiter,
                           seed=seed, strict=strict, method="autodiff", term=term)  # fmt: skip
