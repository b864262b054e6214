"""Tests of hessinit.curvature.tensors: per-tensor H, G, R and <G, R> of convolutional,
pooling, BatchNorm, residual and inception-style networks against materialized autodiff
Hessians (float64, 8x8x1 inputs, B = 6), and the Hutchinson intervals' coverage."""

import functools

import keras
import numpy as np
import pytest
from curvature_cases import weight_slice

from hessinit.curvature import full_gauss_newton, full_hessian, layer_hessian_norms
from hessinit.curvature.tensors import (
    all_tensor_norms,
    logits_linear_in,
    plan_tensor,
    tensor_hessian_norms,
    training_logits,
)
from hessinit.nn import mlp

D = "float64"
B, K = 6, 3


@functools.cache
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((B, 8, 8, 1)), rng.integers(0, K, B)


def _randomize(model, seed):
    """Seeded kernels N(0, 1.5 / fan_in), random biases and BatchNorm scales and shifts, so that
    the test is reproducible and no weight sits at a special value."""
    rng = np.random.default_rng(seed)
    for v in model.trainable_weights:
        if v.name == "kernel":
            v.assign(rng.normal(0, np.sqrt(1.5 / np.prod(v.shape[:-1])), v.shape))
        elif v.name in ("bias", "beta"):
            v.assign(rng.normal(0, 0.3, v.shape))
        elif v.name == "gamma":
            v.assign(rng.uniform(0.5, 1.5, v.shape))
    return model


def conv_pool(activation="relu"):
    """Conv (valid), max-pool, strided conv (same, tanh), avg-pool, flatten, dropout, dense."""
    L = keras.layers
    i = keras.Input((8, 8, 1), dtype=D)
    h = L.Conv2D(3, 3, activation=activation, name="c1", dtype=D)(i)
    h = L.MaxPooling2D(2, dtype=D)(h)
    h = L.Conv2D(4, 2, strides=2, padding="same", activation="tanh", name="c2", dtype=D)(h)
    h = L.AveragePooling2D(1, dtype=D)(h)
    h = L.Flatten(dtype=D)(h)
    h = L.Dropout(0.5, dtype=D)(h)
    return _randomize(keras.Model(i, L.Dense(K, name="d", dtype=D)(h)), 1)


def bn_residual(activation="relu"):
    """Conv -> BatchNorm -> residual block (conv + Add) -> global average pool -> dense."""
    L = keras.layers
    i = keras.Input((8, 8, 1), dtype=D)
    h = L.Conv2D(2, 3, padding="same", use_bias=False, name="c1", dtype=D)(i)
    h = L.BatchNormalization(name="bn", dtype=D)(h)
    h = L.Activation(activation, dtype=D)(h)
    a = L.Conv2D(2, 3, padding="same", activation=activation, name="r1", dtype=D)(h)
    h = L.Add(dtype=D)([h, a])
    h = L.GlobalAveragePooling2D(dtype=D)(h)
    return _randomize(keras.Model(i, L.Dense(K, name="d", dtype=D)(h)), 2)


def inception(activation="relu"):
    """Three branches (1x1 conv, 3x3 conv, 3x3 max-pool) concatenated -> conv -> global max pool."""
    L = keras.layers
    i = keras.Input((8, 8, 1), dtype=D)
    a = L.Conv2D(2, 1, activation=activation, name="b1", dtype=D)(i)
    b = L.Conv2D(2, 3, padding="same", activation=activation, name="b3", dtype=D)(i)
    c = L.MaxPooling2D(3, strides=1, padding="same", dtype=D)(i)
    h = L.Concatenate(dtype=D)([a, b, c])
    h = L.Conv2D(3, 3, strides=2, activation=activation, name="c", dtype=D)(h)
    h = L.GlobalMaxPooling2D(dtype=D)(h)
    return _randomize(keras.Model(i, L.Dense(K, name="d", dtype=D)(h)), 3)


def _reference(model, variable, training):
    """(||H||, ||G||, ||R||, <G, R>) from the materialized H and G of ``variable``."""
    x, y = data()
    H = full_hessian(model, x, y, layer=variable, training=training)
    G = full_gauss_newton(model, x, y, layer=variable, training=training)
    R = H - G
    return np.array([np.linalg.norm(H), np.linalg.norm(G), np.linalg.norm(R), np.sum(G * R)])


CASES = [
    (conv_pool, "tanh", False),  # conv (valid, strided same), max/avg pool, dropout off
    (bn_residual, "relu", True),  # BatchNorm on batch statistics, residual Add, global avg pool
    (inception, "relu", False),  # concatenated branches, strides, global max pool: "jacobian"
]


@pytest.mark.parametrize(("build", "activation", "training"), CASES)
def test_every_weight_matches_materialized_hessians(build, activation, training):
    model = build(activation)
    x, y = data()
    # H and G over all weights at once (a few times cheaper than one weight at a time); each
    # weight's matrices are their diagonal blocks
    Hf = full_hessian(model, x, y, training=training)
    Gf = full_gauss_newton(model, x, y, training=training)
    for v in model.trainable_weights:
        n = tensor_hessian_norms(model, v, x, y)
        H, G = Hf[weight_slice(model, v)], Gf[weight_slice(model, v)]
        ref = np.array(
            [np.linalg.norm(H), np.linalg.norm(G), np.linalg.norm(H - G), np.sum(G * (H - G))]
        )
        got = np.array([n.H, n.G, n.R, n.GR])
        scale = max(ref[0], ref[1])
        assert scale > 1e-3, v.path
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6 * scale, err_msg=v.path)
        assert n.method in ("columns", "columns-linear", "jacobian", "kronecker")
        assert (n.method == "kronecker") == (v.path.split("/")[-2] == "d")  # the logits layer
        if n.method != "columns":
            assert ref[2] <= 1e-12 * scale, v.path  # R = 0 by structure, seen in the reference
        else:
            assert ref[2] > 1e-6 * scale, v.path  # and curved where the structure says so


def test_where_r_vanishes_by_structure():
    model = bn_residual()
    lin = {
        f"{layer.name}/{v.name}": logits_linear_in(model, v)
        for layer in model.layers
        for v in layer.trainable_weights
    }
    # BatchNorm downstream normalizes by batch statistics that depend on c1: not linear in c1
    assert lin == {
        "c1/kernel": False,
        "bn/gamma": True,
        "bn/beta": True,
        "r1/kernel": True,
        "r1/bias": True,
        "d/kernel": True,
        "d/bias": True,
    }
    model = conv_pool("relu")  # c2 has tanh: c1 and c2 are curved, the dense head is not
    assert [logits_linear_in(model, v) for v in model.trainable_weights] == [
        False,
        False,
        False,
        False,
        True,
        True,
    ]


def test_batchnorm_uses_batch_statistics_and_leaves_the_model_unchanged():
    model = bn_residual()
    x, _ = data()
    before = [v.numpy().copy() for v in model.non_trainable_weights]
    z = training_logits(model, x).numpy()
    with keras.StatelessScope():
        want = model(x, training=True).numpy()
    np.testing.assert_allclose(z, want, rtol=1e-12)
    assert not np.allclose(z, model(x, training=False).numpy())
    for a, v in zip(before, model.non_trainable_weights, strict=True):
        np.testing.assert_array_equal(a, v.numpy())


def test_layer_hessian_norms_dispatches_by_model():
    x, y = data()
    model = conv_pool()
    n = layer_hessian_norms(model, "c2", x, y)
    ref = _reference(model, model.get_layer("c2").kernel, False)
    np.testing.assert_allclose([n.H, n.G, n.R, n.GR], ref, rtol=1e-9)
    assert n.method == "columns"
    bias = layer_hessian_norms(model, "d", x, y, weight="bias")
    assert bias.method == "kronecker" and bias.R == 0.0
    cols = layer_hessian_norms(model, "d", x, y, weight="bias", method="columns")
    assert cols.method == "columns-linear"
    np.testing.assert_allclose([cols.H, cols.G], [bias.H, bias.G], rtol=1e-10)
    dense = layer_hessian_norms(
        mlp(input_shape=(3,), widths=(2,)), "dense1", np.ones((2, 3)), [0, 1]
    )
    assert dense.method == "kronecker"
    norms = all_tensor_norms(model, x, y)
    assert list(norms)[:2] == ["c1/kernel", "c1/bias"] and len(norms) == 6
    with pytest.raises(ValueError, match="no weight 'gamma'"):
        layer_hessian_norms(model, "c1", x, y, weight="gamma")


def test_plan_follows_cost_and_memory():
    model = conv_pool()
    kernel = model.get_layer("c1").kernel  # 27 entries, curved: 54 products
    assert plan_tensor(model, kernel, B).method == "columns"
    with pytest.raises(ValueError, match="method='hutchpp'"):  # auto stays exact or refuses
        plan_tensor(model, kernel, B, max_products=53)
    for fallback in ("hutchinson", "hutchpp"):  # an estimate only when asked for
        plan = plan_tensor(model, kernel, B, 53, fallback=fallback, sketch=2, probes=5)
        assert plan.method == fallback
    # hutchpp with 3 k + m >= P: the exact columns are no dearer, and run
    assert plan_tensor(model, kernel, B, 53, fallback="hutchpp").method == "columns"
    with pytest.raises(ValueError, match="fallback must be"):
        plan_tensor(model, kernel, B, fallback="columns")
    small = plan_tensor(
        model, kernel, B, memory=3 * plan_tensor(model, kernel, B).bytes_per_product
    )
    assert small.chunk == 3
    with pytest.raises(ValueError, match="method must be one of"):
        plan_tensor(model, kernel, B, method="exact")


def test_hutchinson_interval_covers_the_exact_value_at_its_nominal_rate():
    model = conv_pool("tanh")
    x, y = data()
    v = model.get_layer("c2").kernel
    exact = tensor_hessian_norms(model, v, x, y)
    seeds = 40
    hits = {"H": 0, "G": 0, "R": 0}
    for seed in range(seeds):
        est = tensor_hessian_norms(model, v, x, y, method="hutchinson", probes=20, seed=seed)
        assert est.method == "hutchinson"
        for t in hits:
            e = est.intervals[t]
            hits[t] += e.low <= getattr(exact, t) <= e.high
    # nominal 95%: P(at most 32 of 40 | p = 0.95) < 0.01
    assert min(hits.values()) >= 33, hits


def test_hutchinson_stops_at_the_stated_relative_width():
    model = inception("tanh")
    x, y = data()
    v = model.get_layer("c").kernel
    est = tensor_hessian_norms(model, v, x, y, method="hutchinson", rel_width=0.1, seed=0)
    for t in "HG":
        e = est.intervals[t]
        assert (e.high - e.low) / 2 <= 0.1 * e.value
    assert 10 <= est.intervals["H"].probes < 400
    exact = tensor_hessian_norms(model, v, x, y)
    assert abs(est.H - exact.H) <= 0.25 * exact.H


@pytest.mark.parametrize(
    ("seeds", "least"), [pytest.param(40, 33, marks=pytest.mark.slow), (20, 16)]
)
def test_hutchpp_covers_the_materialized_norms_of_a_batchnorm_network(seeds, least):
    """The 95% intervals of 40 seeds cover the exact norms at least 33 times (the quick variant:
    the first 20 seeds, at least 16): either count fails with probability < 0.01 at the nominal
    rate (0.0007 and 0.003)."""
    model = bn_residual("tanh")
    x, y = data()
    v = model.get_layer("r1").kernel  # 36 entries, after BatchNorm: curved, 72 products exact
    ref = _reference(model, v, True)
    hits = {"H": 0, "G": 0, "R": 0}
    for seed in range(seeds):
        est = tensor_hessian_norms(model, v, x, y, method="hutchpp", sketch=4, probes=10, seed=seed)
        assert est.method == "hutchpp"
        for i, t in enumerate("HGR"):
            e = est.intervals[t]
            hits[t] += e.low <= ref[i] <= e.high
    assert min(hits.values()) >= least, hits
    # when the estimate would cost as much as the columns, the exact columns run, and say so
    small = model.get_layer("c1").kernel  # 18 entries <= 3 * 10 + 20
    exact = tensor_hessian_norms(model, small, x, y, method="hutchpp")
    assert exact.method == "columns" and exact.intervals is None
    np.testing.assert_allclose(
        [exact.H, exact.G, exact.R, exact.GR], _reference(model, small, True), rtol=1e-8
    )
