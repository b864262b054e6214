"""Tests of hessinit.nn.models against independent references: numpy forward passes and the
distributions the initializers promise."""

import math

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from hessinit.nn import REGISTRY, dense_layers, get_dense, mlp
from hessinit.nn.models import dense1_sd, layer_sds


def _kernels(model):
    return [layer.kernel.numpy() for layer in dense_layers(model)]


def _biases(model):
    return [layer.bias.numpy() for layer in dense_layers(model)]


# --------------------------------------------------------------------------------------------
# The original network
# --------------------------------------------------------------------------------------------


def test_default_mlp_is_the_original_network():
    model = mlp()
    assert isinstance(model.layers[0], keras.layers.Flatten)
    dense = model.layers[1:]
    assert all(isinstance(layer, keras.layers.Dense) for layer in dense)
    assert [layer.name for layer in dense] == ["dense1", "dense2", "dense3"]
    assert [layer.units for layer in dense] == [30, 30, 10]
    assert [keras.activations.serialize(layer.activation) for layer in dense] == [
        "relu",
        "relu",
        "linear",
    ]
    assert [k.shape for k in _kernels(model)] == [(784, 30), (30, 30), (30, 10)]
    assert tuple(model.input_shape) == (None, 28, 28)
    assert model.count_params() == 784 * 30 + 30 + 30 * 30 + 30 + 30 * 10 + 10
    assert model.dtype_policy.name == "float32" or model.layers[1].kernel.dtype == "float32"
    for b in _biases(model):
        np.testing.assert_array_equal(b, 0.0)
    out = model(np.zeros((2, 28, 28), np.float32))
    assert out.shape == (2, 10)


@pytest.mark.parametrize("sd", [0.01, 1.0])
def test_dense1_kernel_is_normal_with_requested_sd(sd):
    w = mlp(sd=sd, seed=7).get_layer("dense1").kernel.numpy().ravel()
    n = w.size  # 23,520: the sample std is within ~0.5% of sd
    assert abs(w.std() / sd - 1) < 0.03
    assert abs(w.mean()) < 4 * sd / math.sqrt(n)
    # Normal, not truncated normal or uniform (both would also fail the std check above).
    assert scipy.stats.kstest(w / sd, "norm").pvalue > 1e-3
    assert np.abs(w).max() > 3.5 * sd  # a truncated normal (at 2 sd) never reaches this


def test_dense2_dense3_keep_glorot_uniform_defaults():
    model = mlp(sd=0.01, seed=3)
    for name, fan_in, fan_out in [("dense2", 30, 30), ("dense3", 30, 10)]:
        w = model.get_layer(name).kernel.numpy().ravel()
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert np.abs(w).max() <= bound
        assert np.abs(w).max() > 0.95 * bound
        assert abs(w.std() / (bound / math.sqrt(3)) - 1) < 0.12
        assert scipy.stats.kstest(w, "uniform", args=(-bound, 2 * bound)).pvalue > 1e-3
        np.testing.assert_array_equal(model.get_layer(name).bias.numpy(), 0.0)


def test_per_layer_sd_sequence():
    model = mlp(sd=[0.5, None, 2.0], seed=1)
    w1, w2, w3 = _kernels(model)
    assert abs(w1.std() / 0.5 - 1) < 0.03
    bound = math.sqrt(6 / 60)
    assert np.abs(w2).max() <= bound and abs(w2.std() / (bound / math.sqrt(3)) - 1) < 0.12
    assert abs(w3.std() / 2.0 - 1) < 0.15  # 300 weights
    assert np.abs(w3).max() > bound  # not Glorot

    # [sd] * n scales every layer
    for w in _kernels(mlp(sd=[0.1] * 3, seed=2)):
        assert abs(w.std() / 0.1 - 1) < 0.15


def test_any_depth_and_width():
    model = mlp(input_shape=(5,), widths=(8,) * 5, num_classes=3, sd=[0.2] * 6, seed=0)
    dense = dense_layers(model)
    assert [d.name for d in dense] == [f"dense{k}" for k in range(1, 7)]
    assert [d.units for d in dense] == [8] * 5 + [3]
    assert [d.kernel.shape for d in dense] == [(5, 8)] + [(8, 8)] * 4 + [(8, 3)]
    assert model(np.ones((4, 5), np.float32)).shape == (4, 3)
    with pytest.raises(ValueError, match="6"):
        mlp(widths=(8,) * 5, sd=[0.2] * 3)


def test_cifar_shaped_input():
    model = mlp(input_shape=(32, 32, 3), sd=0.01, seed=0)
    assert model.get_layer("dense1").kernel.shape == (32 * 32 * 3, 30)
    x = np.random.default_rng(0).random((3, 32, 32, 3), np.float32)
    assert model(x).shape == (3, 10)


@pytest.mark.parametrize("activation", list(REGISTRY))
def test_every_registered_activation_matches_numpy_forward_pass(activation):
    model = mlp(
        input_shape=(4, 3),
        widths=(6, 5),
        num_classes=4,
        activation=activation,
        sd=[1.0, 1.0, 1.0],
        seed=5,
        dtype="float64",
    )
    rng = np.random.default_rng(1)
    for layer in dense_layers(model):  # non-zero biases, so that they are exercised too
        layer.bias.assign(rng.normal(0, 0.5, layer.bias.shape))
    x = rng.standard_normal((7, 4, 3))
    f = REGISTRY[activation].f
    h = x.reshape(7, -1)
    weights = model.get_weights()
    for k in range(0, len(weights), 2):
        h = h @ weights[k] + weights[k + 1]
        if k + 2 < len(weights):  # hidden layers only; the logits are linear
            h = f(h)
    # Keras' float64 GELU carries a float32-precision constant (about 1e-7 relative)
    rtol = 1e-6 if activation == "gelu" else 1e-10
    np.testing.assert_allclose(model(x).numpy(), h, rtol=rtol, atol=1e-12)
    assert keras.activations.serialize(model.get_layer("dense3").activation) == "linear"


def test_dtype_float64():
    model = mlp(sd=[0.1, None, None], dtype="float64", seed=0)
    assert all(w.dtype == np.float64 for w in model.get_weights())
    assert model(np.zeros((1, 28, 28))).dtype == tf.float64


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sd": -0.1}, "positive"),
        ({"sd": float("nan")}, "positive"),
        ({"sd": float("inf")}, "finite"),
        ({"sd": 0.0}, "positive"),
        ({"sd": [0.1, -1.0, None]}, "dense2"),
        ({"sd": [0.1, None, float("nan")]}, "dense3"),
        ({"activation": "no_such_activation"}, "unknown activation.*relu.*tanh"),
        ({"sd": [0.1, 0.1]}, "one entry per dense layer.*3"),
        ({"sd": [0.1] * 4}, "one entry per dense layer.*3"),
        ({"widths": (30, 0)}, "widths"),
        ({"widths": (-3,)}, "widths"),
        ({"num_classes": 1}, "num_classes"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_arguments_raise_helpful_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mlp(**kwargs)


def test_layer_sds_is_mlps_rule():
    """One number: dense1's sd, Glorot elsewhere; a sequence: one per layer; None: Glorot."""
    assert layer_sds(0.5, 3) == (0.5, None, None)
    assert layer_sds([0.1, None, 2.0], 3) == (0.1, None, 2.0)
    assert layer_sds(None, 2) == (None, None)
    assert layer_sds(np.float32(0.25), 1) == (np.float32(0.25),)
    with pytest.raises(ValueError, match=r"one entry per kernel layer \(3\), got 2"):
        layer_sds([0.1, 0.1], 3, "kernel layer")
    with pytest.raises(ValueError, match="sd of kernel layer 2 must be a positive"):
        layer_sds([0.1, -1.0], 2, "kernel layer")
    with pytest.raises(TypeError, match="sd of dense1"):
        layer_sds(["0.1", None], 2)
    # the layers mlp draws from N(0, sd^2) are those layer_sds gives a number
    model = mlp(input_shape=(40,), widths=(60,), num_classes=50, sd=[None, 3.0], seed=0)
    w1, w2 = _kernels(model)
    assert np.abs(w1).max() <= math.sqrt(6 / 100) and abs(w2.std() / 3.0 - 1) < 0.05


def test_dense1_sd_is_the_first_layers_sd():
    assert dense1_sd(0.01) == 0.01 and dense1_sd(np.float64(2.0)) == 2.0
    assert dense1_sd((0.5, None, 2.0)) == 0.5 and dense1_sd([3.0]) == 3.0
    assert math.isnan(dense1_sd(None)) and math.isnan(dense1_sd((None, 1.0)))
    assert math.isnan(dense1_sd(math.nan))


def test_seed_reproducibility():
    a, b, c = mlp(seed=11), mlp(seed=11), mlp(seed=12)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    for ka, kc in zip(_kernels(a), _kernels(c), strict=True):
        assert not np.allclose(ka, kc)
    # layers draw independently of each other
    w = _kernels(mlp(sd=[1.0, 1.0, 1.0], widths=(30, 30), seed=0))
    assert not np.allclose(w[1][:10, :10], w[2][:10, :10])


def test_dropout_inactive_at_inference():
    model = mlp(input_shape=(6,), widths=(16, 16), dropout=0.5, sd=[1.0] * 3, seed=0)
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers) == 2
    x = np.random.default_rng(0).random((4, 6), np.float32)
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=False))


def test_same_seed_same_weights_across_dtypes():
    a = mlp(sd=[1e-5] * 3, seed=3)
    b = mlp(sd=[1e-5] * 3, seed=3, dtype="float64")
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)


def test_numpy_float32_sd_accepted():
    w = mlp(sd=np.float32(0.5), seed=0).get_layer("dense1").kernel.numpy()
    assert abs(w.std() / 0.5 - 1) < 0.03


def test_flatten_name_is_stable():
    keras.layers.Flatten()  # any earlier Flatten bumps Keras' global name counter
    assert mlp().layers[0].name == "flatten"


# --------------------------------------------------------------------------------------------
# get_dense
# --------------------------------------------------------------------------------------------


def test_get_dense_by_name_index_and_layer():
    model = mlp(widths=(4, 4), seed=0)
    dense = [model.get_layer(f"dense{k}") for k in (1, 2, 3)]
    assert dense_layers(model) == dense
    for i, layer in enumerate(dense):
        assert get_dense(model, layer.name) == (i, layer)
        assert get_dense(model, i) == (i, layer)
        assert get_dense(model, i - 3) == (i, layer)  # negative indices
        assert get_dense(model, layer) == (i, layer)


def test_get_dense_errors():
    model = mlp(widths=(4, 4), seed=0)
    with pytest.raises(ValueError, match=r"dense7.*\['dense1', 'dense2', 'dense3'\]"):
        get_dense(model, "dense7")
    with pytest.raises(ValueError, match="dense layer named"):
        get_dense(model, "flatten")
    with pytest.raises(IndexError, match="3 dense layers"):
        get_dense(model, 3)
    other = mlp(widths=(4, 4), seed=0)
    with pytest.raises(ValueError, match="not a Dense layer of this model"):
        get_dense(model, other.get_layer("dense1"))


def test_get_dense_numpy_integer_index():
    model = mlp(widths=(4, 4), seed=0)
    assert get_dense(model, np.int64(1))[0] == 1
