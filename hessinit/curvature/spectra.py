"""Extreme eigenpairs of tensor and network Hessians by Lanczos on a Hessian-vector product.

:func:`spectrum` returns the k largest (``which="LA"``), largest-magnitude (``"LM"``) or smallest
(``"SA"``) eigenvalues of H, G or R, with their eigenvectors. The matrix is never formed:
``scipy.sparse.linalg.eigsh`` (implicitly restarted Lanczos, ARPACK) runs on a ``LinearOperator``
whose product (:mod:`hessinit.curvature.operators`) is one of

- the Kronecker product of a dense layer (``method="kronecker"``), only for a model proved to be
  a dense stack (:func:`hessinit.curvature.graph.dense_stack_issue`): with the per-sample blocks
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

from dataclasses import dataclass, field, replace

import keras
import numpy as np
import tensorflow as tf
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from threadpoolctl import threadpool_limits

from ..nn.models import get_dense
from .graph import TRAINING
from .operators import ROUTES, check_choice, curvature_operator

#: The eigenvalues one may ask for, largest algebraic (``"LA"``, lambda_max first), largest in
#: magnitude (``"LM"``) or smallest algebraic (``"SA"``, lambda_min first).
WHICH = ("LA", "LM", "SA")

#: The product routes (:data:`hessinit.curvature.operators.ROUTES`).
METHODS = ROUTES


@dataclass(frozen=True)
class Spectrum:
    """Top eigenvalues of a symmetric operator and how well they converged.

    Attributes:
        eigenvalues: the k eigenvalues, largest first (NaN where ARPACK returned none).
        residuals: norm(H v_j - lambda_j v_j) / max_j abs(lambda_j) for each (NaN where missing).
        converged: whether ARPACK converged and every residual is at most ``rtol``.
        rtol: the residual threshold applied.
        matvecs: the number of operator products, the residual checks included.
        method: the route of the products actually used, ``"kronecker"`` or ``"autodiff"``
            (:mod:`hessinit.curvature.operators`), or what the caller of
            :func:`top_eigenvalues` recorded.
        term: ``"H"``, ``"G"`` or ``"R"``.
        eigenvectors: (n, k) float64, column j the unit eigenvector of eigenvalues[j] (in the
            flattened, row-major order of the tensor, or of all weights in
            ``model.trainable_variables`` order); ``None`` where not kept.
        solver: ``"lanczos"`` (ARPACK), ``"dense"`` (small operators: the n columns formed and
            ``numpy.linalg.eigh``) or ``"zero"`` (the operator vanished on a random vector).
        training: the BatchNorm mode of the logits (``None`` if not recorded).

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
    eigenvectors: np.ndarray | None = field(default=None, repr=False, compare=False)
    solver: str = "lanczos"
    training: bool | None = None

    @property
    def lambda_max(self) -> float:
        """The first eigenvalue (the largest for ``which="LA"``, the smallest for ``"SA"``)."""
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
        which: ``"LA"``, the largest algebraic (lambda_max first), ``"LM"``, the largest
            in magnitude (ordered by abs, largest first), or ``"SA"``, the smallest algebraic
            (lambda_min first).
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
        >>> top_eigenvalues(lambda v: D @ v, 100, k=2, which="SA").eigenvalues.round(9).tolist()
        [0.0, 1.0]
    """
    check_choice(which, WHICH, "which")
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

    arpack_ok, solver = True, "lanczos"
    v0 = np.random.default_rng(seed).standard_normal(n)
    Hv0 = product(v0)
    if not np.all(np.isfinite(Hv0)):  # e.g. a diverged network: nothing to iterate on
        values, vectors, arpack_ok = np.zeros(0), np.zeros((n, 0)), False
    elif not np.any(Hv0):  # H v0 = 0 for a random v0: H = 0 (e.g. R of ReLU), almost surely
        values, vectors, solver = np.zeros(k), np.eye(n, k), "zero"
    elif n < _DENSE_BELOW or k >= n:
        dense = np.column_stack([product(e) for e in np.eye(n)])
        values, vectors = np.linalg.eigh((dense + dense.T) / 2)
        solver = "dense"
    else:
        # ARPACK misses an exactly zero eigenvalue at the end it looks for (its start vector is
        # taken in the operator's range), and Hessians have many: "SA" runs "LA" on s I - H
        # with s = ||H v0|| / ||v0||, which moves 0 to s.
        shift = float(np.linalg.norm(Hv0) / np.linalg.norm(v0)) if which == "SA" else 0.0
        sign = -1.0 if which == "SA" else 1.0
        op = LinearOperator(
            (n, n), matvec=lambda v: sign * product(v) + shift * np.ravel(v), dtype=np.float64
        )
        asked = "LA" if which == "SA" else which
        try:
            values, vectors = eigsh(op, k=k, which=asked, tol=tol, maxiter=maxiter, v0=v0)
        except ArpackNoConvergence as err:
            values, vectors, arpack_ok = err.eigenvalues, err.eigenvectors, False
        values = sign * (values - shift)
    key = {"LA": values, "SA": -values, "LM": np.abs(values)}[which]
    order = np.argsort(key, kind="stable")[::-1][:k]
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
    vectors = np.concatenate([vectors, np.full((n, k - found), np.nan)], axis=1)
    return Spectrum(
        eigenvalues, residuals, converged, float(rtol), count[0], method, term, vectors, solver
    )


def _tolerances(dtype, tol, rtol):
    """Default ``tol`` and ``rtol`` for products computed in ``dtype``.

    Float64 products: tol 1e-10, rtol 1e-6. Float32 products carry round-off near 1e-7 of the
    largest eigenvalue, so Lanczos can neither reach nor check more: tol 1e-6, rtol 1e-3.
    """
    single = tf.as_dtype(dtype) != tf.float64
    return (1e-6 if single else 1e-10) if tol is None else tol, (
        (1e-3 if single else 1e-6) if rtol is None else rtol
    )


def spectrum(
    model,
    x,
    y,
    layer=None,
    *,
    k=1,
    weight=None,
    term="H",
    which="LA",
    training=TRAINING,
    method="auto",
    tol=None,
    rtol=None,
    maxiter=None,
    seed=0,
    strict=True,
):
    """The k extreme eigenpairs of H, G or R of one weight tensor or the whole network, checked.

    M is the Hessian H = D^2 L of the mean cross-entropy of the logits of
    :func:`hessinit.curvature.graph.forward` (``training=True``: BatchNorm on the batch's
    statistics; dropout off), its Gauss-Newton term G or its curvature term R = H - G,
    restricted to one tensor (``layer``) or over all trainable weights (``layer=None``, cross-layer
    blocks included). The product comes from
    :func:`hessinit.curvature.operators.curvature_operator` (Kronecker for a dense kernel of a
    model proved to be a dense stack, else autodiff); Lanczos and the residual check from
    :func:`top_eigenvalues`.

    Args:
        model: a Keras model mapping inputs to logits.
        x: inputs, shape (B, ...).
        y: integer labels, shape (B,) (or one-hot).
        layer: ``None`` (whole network), a layer name, a layer or a trainable variable.
        k: the number of eigenpairs.
        weight: with a layer, the weight's name (default the kernel).
        term: ``"H"``, ``"G"`` or ``"R"``.
        which: ``"LA"``, ``"LM"`` or ``"SA"`` (:data:`WHICH`).
        training: the BatchNorm mode.
        method: ``"auto"``, ``"kronecker"`` or ``"autodiff"``.
        tol: ARPACK's tolerance (``None``: 1e-10 in float64, 1e-6 for float32 products).
        rtol: the largest relative residual accepted (``None``: 1e-6 in float64, 1e-3 for
            float32 products, which carry float32 round-off).
        maxiter: ARPACK's restart limit (``None``: its default).
        seed: seed of the Lanczos start vector.
        strict: raise :class:`NotConvergedError` when not converged (else flag it).

    Returns:
        :class:`Spectrum` with eigenvectors; ``method`` is the route actually used, ``solver``
        how the eigenproblem was solved.

    Raises:
        ValueError, TypeError: unknown options, a route whose preconditions fail, ``k``
            outside 1..n, or inputs refused at the door (:mod:`hessinit.curvature.inputs`).
        NotConvergedError: ``strict`` and the residual check failed.

    Example:
        >>> from hessinit.curvature import full_hessian
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(6,), widths=(12,), num_classes=3, activation="tanh",
        ...             sd=1.0, dtype="float64", seed=0)
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.standard_normal((20, 6)), rng.integers(0, 3, 20)
        >>> s = spectrum(model, x, y, "dense1", k=2, which="SA")  # 72 weights: Lanczos
        >>> exact = np.linalg.eigvalsh(full_hessian(model, x, y, layer="dense1"))[:2]
        >>> s.method, s.solver, bool(np.allclose(s.eigenvalues, exact, rtol=1e-8))
        ('kronecker', 'lanczos', True)
        >>> s.eigenvectors.shape
        (72, 2)
    """
    check_choice(which, WHICH, "which")
    op = curvature_operator(
        model, x, y, layer, weight=weight, term=term, training=training, method=method
    )
    tol, rtol = _tolerances(op.dtype, tol, rtol)
    result = top_eigenvalues(op.matvec, op.size, k, which=which, tol=tol, rtol=rtol,
                             maxiter=maxiter, seed=seed, strict=strict, method=op.route,
                             term=term)  # fmt: skip
    return replace(result, training=op.training)


def _legacy_layer(model, layer):
    """The old ``layer`` argument: an integer meant the position among the Dense layers."""
    if isinstance(layer, int) or isinstance(layer, keras.layers.Dense):
        return get_dense(model, layer)[1]
    return layer


def layer_spectrum(model, layer, x, y, k=1, *, training=TRAINING, **options):
    """Deprecated alias: :func:`spectrum` of one tensor, ``layer`` before the data.

    ``layer`` may still be an integer (the position among the model's ``Dense`` layers); the
    options are those of :func:`spectrum`.

    Example:
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(3,), widths=(4,), num_classes=2, dtype="float64")
        >>> s = layer_spectrum(model, 0, np.ones((2, 3)), [0, 1])
        >>> s.method, s.solver
        ('kronecker', 'dense')
    """
    return spectrum(model, x, y, _legacy_layer(model, layer), k=k, training=training, **options)


def network_spectrum(model, x, y, k=1, *, training=TRAINING, **options):
    """Deprecated alias: :func:`spectrum` of all trainable weights (``layer=None``).

    Example:
        >>> from hessinit.curvature import full_hessian
        >>> from hessinit.nn import mlp
        >>> model = mlp(input_shape=(4,), widths=(8,), num_classes=3, activation="tanh",
        ...             sd=1.0, dtype="float64", seed=0)
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
        >>> s = network_spectrum(model, x, y)  # 67 weights
        >>> exact = np.linalg.eigvalsh(full_hessian(model, x, y)).max()
        >>> bool(np.isclose(s.lambda_max, exact, rtol=1e-9)), s.method
        (True, 'autodiff')
    """
    return spectrum(model, x, y, None, k=k, training=training, **options)
