"""Tests of hessinit.curvature.blocks: the per-sample blocks x_i, A_i, R_i rebuild the full autodiff
layer Hessian entry by entry, by both routes (backward recursion and per-sample autodiff)."""

import numpy as np
import pytest
from curvature_cases import LAYERS, SHAPE, B, data, layer_refs, small_cached

from hessinit.curvature import layer_curvature
from hessinit.curvature.blocks import autodiff_blocks, recursive_blocks
from hessinit.curvature.layers import cast_weights, kernel_dims, model_inputs
from hessinit.nn import REGISTRY


def _kron_sum(X, M):
    """(1/B) sum_i (x_i x_i^T) kron M_i by numpy's kron, sample by sample."""
    return sum(np.kron(np.outer(xi, xi), Mi) for xi, Mi in zip(X, M, strict=True)) / len(X)


def _assert_blocks_rebuild(X, A, R, H, G):
    """Kronecker sums of the blocks equal the reference G and H entry by entry."""
    X, A, R = (np.asarray(t) for t in (X, A, R))
    assert X.dtype == A.dtype == R.dtype == np.float64
    scale = np.abs(H).max()
    np.testing.assert_allclose(_kron_sum(X, A), G, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(_kron_sum(X, A + R), H, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(A, np.swapaxes(A, 1, 2), atol=1e-12 * np.abs(A).max())
    np.testing.assert_allclose(R, np.swapaxes(R, 1, 2), atol=1e-12 * max(np.abs(R).max(), 1))


def _float64_inputs(activation):
    """What the compiled functions receive: float64 weights, activation names, x and y."""
    weights, acts, x, y = model_inputs(small_cached(activation), *data())
    return cast_weights(weights, kernel_dims(weights)), acts, x, y


#: The quick suite rebuilds the blocks of one piecewise-linear entry (the zero-curvature
#: shortcut) and one curved entry; the full suite every entry. The recursion takes f, f' and f''
#: of any entry by autodiff of the Keras activation, one code path for all curved entries, and
#: each entry's f, f', f'' are checked quick against numpy references
#: (tests/nn/test_activations.py::test_numpy_references_match_keras_autodiff; leaky_relu's
#: fast path against full autodiff: test_leaky_relu_takes_the_fast_path_exactly).
QUICK_ENTRIES = ("relu", "tanh")


@pytest.mark.parametrize(
    "activation",
    [a if a in QUICK_ENTRIES else pytest.param(a, marks=pytest.mark.slow) for a in REGISTRY],
)
def test_recursion_rebuilds_full_layer_hessians_for_every_registry_entry(activation):
    """The fast path itself (called directly, whatever the dispatch) against full autodiff."""
    weights, acts, x, y = _float64_inputs(activation)
    blocks = recursive_blocks(weights, x, y, acts, 0)
    for name, (X, A, R) in zip(LAYERS, blocks, strict=True):
        _assert_blocks_rebuild(X, A, R, *layer_refs(activation)[name])
        if REGISTRY[activation].piecewise_linear:  # the zero-curvature shortcut: exact zeros
            assert not np.any(np.asarray(R))
    # a later first layer gives the same blocks for the layers above it
    upper = recursive_blocks(weights, x, y, acts, 1)
    for lower, higher in zip(blocks[1:], upper, strict=True):
        for a, b in zip(lower, higher, strict=True):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("activation", ["tanh", "softmax"])
def test_autodiff_route_rebuilds_full_layer_hessians(activation):
    """Per-sample nested autodiff, the route of activations outside the registry (softmax) and a
    second, independent route for registered ones (tanh)."""
    weights, acts, x, y = _float64_inputs(activation)
    for k, name in enumerate(LAYERS):
        _assert_blocks_rebuild(
            *autodiff_blocks(weights, x, y, acts, k), *layer_refs(activation)[name]
        )


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_layer_curvature_rebuilds_the_full_layer_hessian_entrywise(activation):
    """(1/B) sum_i (x_i x_i^T) kron A_i and ... kron R_i equal full G and H - G entry by entry."""
    model, (x, y) = small_cached(activation), data()
    for name in ("dense1", "dense2"):
        _assert_blocks_rebuild(*layer_curvature(model, name, x, y), *layer_refs(activation)[name])


def test_layer_curvature_keeps_float64_inputs():
    model = small_cached("tanh")
    x = np.random.default_rng(0).standard_normal((B, *SHAPE))  # not float32-representable
    y = data()[1]
    X, _, _ = layer_curvature(model, "dense1", x, y)
    np.testing.assert_array_equal(X, x.reshape(B, -1))
