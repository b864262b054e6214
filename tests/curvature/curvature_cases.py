"""Shared small cases for the tests of hessinit.curvature: a 12-6-5-5 network and its full
autodiff references (143 weights, so every matrix here is at most 143 x 143)."""

import functools

import numpy as np
import pytest

from hessinit.curvature import full_gauss_newton, full_hessian
from hessinit.nn import dense_layers, mlp

B, SHAPE, K = 16, (4, 3), 5
LAYERS = ("dense1", "dense2", "dense3")


@functools.cache
def data():
    """B inputs of SHAPE and labels in [0, K), float32-representable (so that float32 and float64
    models see the same images)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, *SHAPE)).astype(np.float32).astype(np.float64)
    y = rng.integers(0, K, B)
    return x, y


def small(activation, dtype="float64", seed=1):
    """A fresh 12-6-5-5 network, every kernel N(0, 1), small random biases."""
    model = mlp(
        input_shape=SHAPE,
        num_classes=K,
        widths=(6, 5),
        activation=activation,
        sd=[1.0, 1.0, 1.0],
        seed=seed,
        dtype=dtype,
    )
    rng = np.random.default_rng(seed + 100)
    for layer in dense_layers(model):
        layer.bias.assign(rng.normal(0, 0.3, layer.bias.shape).astype(dtype))
    return model


@functools.cache
def small_cached(activation, dtype="float64"):
    """:func:`small`, shared between tests that do not change the weights."""
    return small(activation, dtype)


@functools.cache
def full_all(activation="tanh"):
    """Full Hessian and Gauss-Newton matrix of :func:`small_cached` over all weights (143 x 143)."""
    model, (x, y) = small_cached(activation), data()
    return full_hessian(model, x, y), full_gauss_newton(model, x, y)


@functools.cache
def layer_refs(activation, dtype="float64"):
    """{layer name: (H, G)} of :func:`small_cached` by full autodiff, one kernel at a time (much
    cheaper than :func:`full_all`)."""
    model, (x, y) = small_cached(activation, dtype), data()
    if dtype == "float32":
        x = x.astype(np.float32)
    return {
        name: (full_hessian(model, x, y, layer=name), full_gauss_newton(model, x, y, layer=name))
        for name in LAYERS
    }


def kernel_block(model, M, name):
    """The block of an all-weights matrix M (full_hessian order) for dense layer ``name``'s
    kernel."""
    return M[weight_slice(model, model.get_layer(name).kernel)]


def weight_slice(model, variable):
    """Where one trainable ``variable``'s entries sit in a matrix over all of ``model``'s weights
    in ``full_hessian``'s order (the trainable variables one after another, each flattened
    row-major), as an index pair for its diagonal block: ``M[weight_slice(model, v)]`` is what
    ``full_hessian(model, x, y, layer=v)`` gives when M is the full Hessian."""
    start = 0
    for v in model.trainable_variables:
        size = int(np.prod(v.shape))
        if v is variable:
            return slice(start, start + size), slice(start, start + size)
        start += size
    raise KeyError(variable.path)


def assert_norms_match(n, H, G, rtol, gr_relative=True):
    """HessianNorms ``n`` agree with the norms of the reference matrices H and G (R = H - G)."""
    R = H - G
    scale = np.linalg.norm(H) ** 2
    assert n.H == pytest.approx(np.linalg.norm(H), rel=rtol)
    assert n.G == pytest.approx(np.linalg.norm(G), rel=rtol)
    if np.linalg.norm(R) <= 1e-8 * np.linalg.norm(H):
        # ReLU-like: the reference R and <G, R> are round-off, ours must be at most as large
        assert n.R <= 1e-8 * n.H
        assert abs(n.GR) <= 1e-8 * scale
        return
    assert n.R == pytest.approx(np.linalg.norm(R), rel=rtol)
    gr = float(np.sum(G * R))
    # <G, R> can be a small difference of large terms (float32 references): then measure its
    # error on the Cauchy-Schwarz scale ||G|| ||R||
    cs = np.linalg.norm(G) * np.linalg.norm(R)
    if gr_relative and abs(gr) > 1e-6 * cs:
        assert n.GR == pytest.approx(gr, rel=rtol)
    assert abs(n.GR - gr) <= rtol * max(cs, 1e-6 * scale)


def flat(tensors):
    """A list of tensors as one flat float64 vector."""
    return np.concatenate([np.asarray(t, np.float64).ravel() for t in tensors])
