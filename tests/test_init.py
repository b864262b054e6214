"""Tests of hessinit.init against closed forms and materialized Hessians."""

import math

import numpy as np
import pytest
import tensorflow as tf

from hessinit import init
from hessinit.curvature import (
    dropout_masks,
    full_gauss_newton,
    full_hessian,
    layer_hessian_norms,
)
from hessinit.nn import cross_entropy, dense_layers, mlp

SHAPE, K = (4, 4), 3  # 16 inputs, 3 classes: full Hessians stay small


def batch(n=24, seed=0, shape=SHAPE, classes=K):
    rng = np.random.default_rng(seed)
    return rng.random((n, *shape), np.float32), rng.integers(0, classes, n)


def fro(M):
    return float(np.linalg.norm(M))


# ---------------------------------------------------------------------------- schemes


def test_kernel_sds_closed_forms():
    widths = [30, 20]
    fi, fo = [784, 30, 20], [30, 20, 10]
    var = {
        "lecun": [1 / a for a in fi],
        "he": [2 / a for a in fi],
        "glorot": [2 / (a + b) for a, b in zip(fi, fo, strict=True)],
        0.5: [0.5 / a for a in fi],
        4.0: [4 / a for a in fi],
    }
    for scheme, expected in var.items():
        np.testing.assert_allclose(np.square(init.kernel_sds(scheme, widths)), expected)
    assert init.kernel_sds(1.0, widths) == init.kernel_sds("LeCun", widths)
    assert init.kernel_sds(2, widths) == init.kernel_sds("he", widths)
    assert init.scheme_label(2.0) == "c=2" and init.scheme_label("he") == "he"
    with pytest.raises(ValueError):
        init.kernel_sds("xavier", widths)
    with pytest.raises(ValueError):
        init.kernel_sds(-1.0, widths)
    with pytest.raises(TypeError):
        init.kernel_sds(True, widths)


def test_conv_fan_in_is_kernel_area_times_input_channels():
    from hessinit.nn import kernel_layers, simple_googlenet, small_cnn, small_resnet

    model = small_cnn(channels=(4, 6))  # conv1 3x3x1x4, conv2 3x3x4x6, dense 294 x 10
    fans = [(9, 36), (36, 54), (294, 10)]
    for scheme, var in [
        ("lecun", lambda i, o: 1 / i),
        ("he", lambda i, o: 2 / i),
        ("glorot", lambda i, o: 2 / (i + o)),
        (0.5, lambda i, o: 0.5 / i),
    ]:
        got = init.model_kernel_sds(scheme, model)
        np.testing.assert_allclose(np.square(got), [var(i, o) for i, o in fans], rtol=1e-12)
    # on the paper's MLP it is kernel_sds
    assert init.model_kernel_sds("he", mlp(widths=(30, 20))) == init.kernel_sds("he", (30, 20))
    # and each builder draws N(0, sigma^2) per kernel layer with the scheme's sigma
    for build in (small_cnn, simple_googlenet, small_resnet):
        sds = init.model_kernel_sds("he", build())
        model = build(sd=sds, seed=1)
        for layer, sd in zip(kernel_layers(model), sds, strict=True):
            w = layer.kernel.numpy()
            assert abs(np.std(w) / sd - 1) < 5 / math.sqrt(w.size) + 0.05, layer.name
    with pytest.raises(ValueError, match="unknown scheme"):
        init.scheme_sd("xavier", 9, 9)


def test_mlp_kernels_have_the_scheme_variance():
    widths = [256, 128]
    for scheme in ("glorot", "he", 0.5):
        sds = init.kernel_sds(scheme, widths)
        model = mlp(widths=widths, sd=sds, seed=3)
        for layer, sd in zip(dense_layers(model), sds, strict=True):
            w = layer.kernel.numpy()
            n = w.size
            # sample variance of n normals: relative standard error sqrt(2 / n) < 1.5%
            assert abs(w.var() / sd**2 - 1) < 5 * math.sqrt(2 / n)
            assert abs(w.mean()) < 5 * sd / math.sqrt(n)


# ---------------------------------------------------------------------------- depth_profile


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_depth_profile_matches_full_hessian(activation):
    x, y = batch()
    model = mlp(SHAPE, K, [6, 5], activation, init.kernel_sds(1.5, [6, 5], SHAPE, K), seed=1)
    frame = init.depth_profile(model, x, y)
    assert list(frame.columns[:4]) == ["layer", "name", "fan_in", "fan_out"]
    assert list(frame.fan_in) == [16, 6, 5] and list(frame.fan_out) == [6, 5, 3]
    for row in frame.itertuples():
        H = full_hessian(model, x, y, layer=row.name)
        G = full_gauss_newton(model, x, y, layer=row.name)
        assert row.H == pytest.approx(fro(H), rel=1e-4)
        assert row.G == pytest.approx(fro(G), rel=1e-4)
        assert row.R == pytest.approx(fro(H - G), rel=1e-3, abs=1e-6)
        assert row.H_norm == pytest.approx(fro(H) / row.fan_in, rel=1e-4)
    if activation == "relu":
        assert (frame.R == 0).all()
    np.testing.assert_allclose(init.normalized_norms(model, x, y), frame.H_norm, rtol=1e-9)


def test_depth_profile_agrees_with_layer_hessian_norms_on_a_deep_net():
    x, y = batch(32, shape=(8, 8), classes=10)
    widths = [32] * 6
    model = mlp((8, 8), 10, widths, "tanh", init.kernel_sds("glorot", widths, (8, 8)), seed=2)
    frame = init.depth_profile(model, x, y)
    for row in frame.itertuples():
        ref = layer_hessian_norms(model, row.name, x, y)
        assert row.H == pytest.approx(ref.H, rel=1e-6)
        assert row.GR == pytest.approx(ref.GR, rel=1e-5, abs=1e-9)


def _masked_reference(model, x, y, masks, layer):
    """Full Hessian of one kernel for the training-mode network with fixed masks, by nested
    autodiff on an explicit forward pass (independent of init's recursions)."""
    dense = dense_layers(model)
    kernels = [tf.constant(d.kernel.numpy(), tf.float64) for d in dense]
    target = tf.Variable(kernels[layer])
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            h = tf.reshape(tf.constant(x, tf.float64), [len(x), -1])
            for k, d in enumerate(dense):
                w = target if k == layer else kernels[k]
                a = h @ w + tf.constant(d.bias.numpy(), tf.float64)
                if k < len(dense) - 1:
                    h = tf.nn.relu(a) * masks[k]
            loss = tf.reduce_mean(cross_entropy(y, a))
        grad = tf.reshape(inner.gradient(loss, target), [-1])
    H = outer.jacobian(grad, target)
    return fro(tf.reshape(H, [grad.shape[0], -1]).numpy())


def test_dropout_fixed_mask_matches_explicit_masked_network():
    x, y = batch(16)
    model = mlp(SHAPE, K, [8, 7], "relu", init.kernel_sds("he", [8, 7], SHAPE, K), 0, 0.5)
    off = init.depth_profile(model, x, y)
    for row in off.itertuples():  # dropout off: the inference Hessian
        assert row.H == pytest.approx(layer_hessian_norms(model, row.name, x, y).H, rel=1e-6)
    on = init.depth_profile(model, x, y, training=True, seed=5)
    masks = dropout_masks(model, len(x), 5)
    assert set(np.unique(masks[0])) == {0.0, 2.0}
    for k, row in enumerate(on.itertuples()):
        assert row.H == pytest.approx(_masked_reference(model, x, y, masks, k), rel=1e-6)
    assert not np.allclose(on.H, off.H)
    avg = init.depth_profile(model, x, y, training=True, masks=3, seed=5)
    assert "H_std" in avg and avg.H[0] != on.H[0]


def test_homogeneous_rescaling_law_in_a_linear_network():
    """Zero biases, linear units: W_1 <- s W_1 and W_k <- W_k / s keep the logits, so
    ||H_1|| -> ||H_1|| / s^2, ||H_k|| -> s^2 ||H_k||, the others unchanged (exactly)."""
    x, y = batch(20)
    widths = [6, 6, 6]
    model = mlp(SHAPE, K, widths, "linear", init.kernel_sds("lecun", widths, SHAPE, K), seed=4)
    before = init.depth_profile(model, x, y).H.to_numpy()
    s, k = 1.7, 2
    dense = dense_layers(model)
    dense[0].kernel.assign(dense[0].kernel * s)
    dense[k].kernel.assign(dense[k].kernel / s)
    after = init.depth_profile(model, x, y).H.to_numpy()
    expected = before.copy()
    expected[0] /= s**2
    expected[k] *= s**2
    np.testing.assert_allclose(after, expected, rtol=1e-6)
    assert after[0] == pytest.approx(fro(full_hessian(model, x, y, layer="dense1")), rel=1e-4)


def test_reference_level_is_softmax_regression_at_zero_weights():
    x, y = batch(30)
    model = mlp(SHAPE, K, [], "linear", 0.1, seed=0)
    dense_layers(model)[0].kernel.assign(tf.zeros((16, K)))
    frame = init.depth_profile(model, x, y)
    assert frame.H_norm[0] == pytest.approx(init.reference_level(x, K), rel=1e-9)


# ---------------------------------------------------------------------------- hessian_init


@pytest.mark.parametrize(
    ("activation", "target"), [("relu", None), ("relu", "reference"), ("tanh", None)]
)
def test_hessian_init_balances_and_only_rescales(activation, target):
    x, y = batch(64, shape=(8, 8), classes=10)
    x = x - 0.5  # centred inputs: tanh stays away from saturation, where h_l flattens out
    widths = [32] * 6
    model = mlp((8, 8), 10, widths, activation, init.kernel_sds("lecun", widths, (8, 8)), 7)
    before = [d.kernel.numpy() for d in dense_layers(model)]
    level = init.reference_level(x) if target == "reference" else None
    result = init.hessian_init(model, x, y, target=level, tol=0.01)
    assert result.converged and result.spread <= 0.01
    h = init.depth_profile(model, x, y).H_norm.to_numpy()
    assert h.max() / h.min() - 1 <= 0.021
    np.testing.assert_allclose(h, result.table.H_norm, rtol=1e-9)
    if level is None:
        level = math.exp(np.log(result.table.H_norm_before).mean())
    np.testing.assert_allclose(h, level, rtol=0.011)
    for d, w, scale in zip(dense_layers(model), before, result.table.scale, strict=True):
        ratio = d.kernel.numpy() / w
        np.testing.assert_allclose(ratio, scale, rtol=1e-5)


def test_hessian_init_warns_when_target_is_out_of_reach():
    x, y = batch(32, shape=(8, 8), classes=10)
    widths = [16] * 3
    model = mlp((8, 8), 10, widths, "tanh", init.kernel_sds("lecun", widths, (8, 8)), 0)
    # tanh bounds the last layer's inputs, so its Hessian norm cannot reach 1e3.
    with pytest.warns(RuntimeWarning, match="did not reach"):
        result = init.hessian_init(model, x, y, target=1e3, iters=4)
    assert not result.converged and result.iterations == 4


# --- init_schemes: the depth-stable variance ---


def test_mean_field_variance_named_values():
    from hessinit.init import mean_field_variance

    assert mean_field_variance("relu") == pytest.approx(2.0, rel=1e-4)
    assert mean_field_variance("linear") == pytest.approx(1.0, rel=1e-4)
    assert mean_field_variance("relu", keep=0.5) == pytest.approx(1.0, rel=1e-4)


@pytest.mark.slow  # seconds of slow fixed-point iterations near c = 1; tanh's chi: its doctest
def test_mean_field_variance_of_tanh_is_lecuns():
    from hessinit.init import mean_field_variance

    assert mean_field_variance("tanh") == pytest.approx(1.0, abs=3e-3)


def test_depth_stable_variance_finds_a_known_root():
    from hessinit.init import depth_stable_variance

    class Fake:  # g(c) = log(c / 3): root 3, monotone
        evaluations = 0
        last_profile = None

        def __call__(self, c):
            self.evaluations += 1
            return math.log(c / 3.0)

    root = depth_stable_variance(Fake(), guess=0.5, xtol=1e-4)  # the bracket must widen
    assert root.bracketed and root.c == pytest.approx(3.0, rel=1e-3)


def test_depth_stable_variance_reports_no_root():
    from hessinit.init import depth_stable_variance

    class Flat:
        evaluations = 0
        last_profile = None

        def __call__(self, c):
            self.evaluations += 1
            return 1.0

    root = depth_stable_variance(Flat(), guess=1.0, expand=2)
    assert not root.bracketed and math.isnan(root.c)
