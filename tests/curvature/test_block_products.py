"""Tests of hessinit.curvature.block_products: one compiled program serves every weight tensor
of a shape (or all of a model's), and the per-tensor norms it gives equal the materialized
Hessian's (float64, B = 6), for two tensors of the same shape and for a whole network at the
cost of one trace per shape."""

import functools

import keras
import numpy as np
import tensorflow as tf
from curvature_cases import weight_slice

from hessinit.curvature import full_gauss_newton, full_hessian, tensors
from hessinit.curvature.block_products import block_products, traces, weight_slices
from hessinit.curvature.tensors import all_tensor_norms, tensor_hessian_norms

D = "float64"


def twin_kernels():
    """Conv, BatchNorm, tanh, then two 3x3x2x2 convolutions (the twins), each with tanh,
    global average pooling and dense logits: the twins have one shape and different Hessians."""
    L = keras.layers
    rng = np.random.default_rng(7)
    i = keras.Input((6, 6, 1), dtype=D)
    h = L.Conv2D(2, 3, padding="same", use_bias=False, name="c0", dtype=D)(i)
    h = L.Activation("tanh", dtype=D)(L.BatchNormalization(name="bn", dtype=D)(h))
    h = L.Conv2D(2, 3, padding="same", activation="tanh", name="a", dtype=D)(h)
    h = L.Conv2D(2, 3, padding="same", activation="tanh", name="b", dtype=D)(h)
    h = L.GlobalAveragePooling2D(dtype=D)(h)
    model = keras.Model(i, L.Dense(3, name="d", dtype=D)(h))
    for v in model.trainable_weights:
        v.assign(rng.normal(0, 0.7, v.shape) + (1.0 if v.name == "gamma" else 0.0))
    x = rng.standard_normal((6, 6, 6, 1))
    return model, x, rng.integers(0, 3, 6)


@functools.cache
def _materialized():
    """H and G of :func:`twin_kernels` over all its weights (``full_hessian``'s order), by nested
    autodiff, once for the module on a twin built for them (the tests' own twins trace their
    programs; the twins are equal, :func:`twin_kernels` is seeded)."""
    model, x, y = twin_kernels()
    return full_hessian(model, x, y), full_gauss_newton(model, x, y)


def _reference(model, variable):
    """(||H||, ||G||, ||R||, <G, R>) of one weight of a :func:`twin_kernels` network: its
    diagonal blocks of :func:`_materialized` (``full_hessian(..., layer=variable)``'s entries)."""
    Hf, Gf = _materialized()
    H, G = Hf[weight_slice(model, variable)], Gf[weight_slice(model, variable)]
    return np.array(
        [np.linalg.norm(H), np.linalg.norm(G), np.linalg.norm(H - G), np.sum(G * (H - G))]
    )


def test_two_same_shaped_tensors_share_one_trace_and_keep_their_own_values():
    model, x, y = twin_kernels()
    a, b = model.get_layer("a").kernel, model.get_layer("b").kernel
    assert a.shape == b.shape
    ref_a, ref_b = _reference(model, a), _reference(model, b)
    assert not np.allclose(ref_a, ref_b, rtol=1e-3)  # a mix-up could not pass unseen
    start = traces()
    got_a = tensor_hessian_norms(model, a, x, y, method="columns")
    after_a = traces()
    got_b = tensor_hessian_norms(model, b, x, y, method="columns")
    assert after_a - start <= 1 and traces() == after_a  # b reuses a's program
    assert got_a.method == got_b.method == "columns"
    for got, ref in ((got_a, ref_a), (got_b, ref_b)):
        np.testing.assert_allclose([got.H, got.G, got.R, got.GR], ref, rtol=1e-9, atol=1e-12)


def test_large_exact_tensors_run_their_own_program_with_the_same_values(monkeypatch):
    model, x, y = twin_kernels()
    a, b = model.get_layer("a").kernel, model.get_layer("b").kernel
    monkeypatch.setattr(tensors, "OWN_PROGRAM", 10)  # a and b (36 entries) count as large
    start = traces()
    got = [tensor_hessian_norms(model, v, x, y, method="columns") for v in (a, b)]
    assert traces() - start == 2  # one program each
    for n, v in zip(got, (a, b), strict=True):
        np.testing.assert_allclose(
            [n.H, n.G, n.R, n.GR], _reference(model, v), rtol=1e-9, atol=1e-12
        )


def test_all_tensors_take_one_trace_per_shape_and_match_the_materialized_hessian():
    model, x, y = twin_kernels()
    start = traces()
    norms = all_tensor_norms(model, x, y, method="columns")
    # the small piecewise-linear logits layer (columns-linear) runs the curved program too
    assert norms["d/kernel"].method == "columns-linear"
    shapes = {tuple(v.shape) for v in model.trainable_weights}
    assert len(shapes) == 5 < len(model.trainable_weights) == 9
    assert traces() - start == len(shapes)
    for layer in model.layers:
        for v in layer.trainable_weights:
            n = norms[f"{layer.name}/{v.name}"]
            ref = _reference(model, v)
            np.testing.assert_allclose(
                [n.H, n.G, n.R, n.GR], ref, rtol=0, atol=1e-9 * ref[0], err_msg=v.path
            )


def test_rows_of_two_tensors_in_one_call_are_the_materialized_columns():
    model, x, y = twin_kernels()
    H, G = _materialized()
    where = weight_slices(model)
    assert where[-1].stop == H.shape[0]
    rng = np.random.default_rng(0)
    V = np.zeros((2, H.shape[0]))
    V[0, where[3]] = rng.standard_normal(where[3].stop - where[3].start)  # a's kernel
    V[1, where[5]] = rng.standard_normal(where[5].stop - where[5].start)  # b's kernel
    HV, GV = block_products(model, tf.constant(x), tf.constant(y), tf.constant(V))
    np.testing.assert_allclose(HV.numpy(), V @ H, rtol=0, atol=1e-10 * np.abs(H).max())
    np.testing.assert_allclose(GV.numpy(), V @ G, rtol=0, atol=1e-10 * np.abs(G).max())
    # the group of the twins alone: its rows and columns of H and G
    group = [3, 5]
    entries = np.r_[
        np.arange(where[3].start, where[3].stop), np.arange(where[5].start, where[5].stop)
    ]
    HV, GV = block_products(
        model, tf.constant(x), tf.constant(y), tf.constant(V[:, entries]), weights=group
    )
    sub = np.ix_(entries, entries)
    np.testing.assert_allclose(
        HV.numpy(), V[:, entries] @ H[sub], rtol=0, atol=1e-10 * np.abs(H).max()
    )
    np.testing.assert_allclose(
        GV.numpy(), V[:, entries] @ G[sub], rtol=0, atol=1e-10 * np.abs(G).max()
    )
