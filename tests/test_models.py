"""Tests of hessinit.nn against independent references: numpy forward passes, closed-form
losses, Keras' own cross-entropy and the distributions the initializers promise."""

import math

import keras
import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf

from hessinit.nn import cross_entropy, dense_layers, get_dense, losses, mlp


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
def test_dense1_kernel_is_normal_with_requested_std(sd):
    w = mlp(kernel_std=sd, seed=7).get_layer("dense1").kernel.numpy().ravel()
    n = w.size  # 23,520: the sample std is within ~0.5% of sd
    assert abs(w.std() / sd - 1) < 0.03
    assert abs(w.mean()) < 4 * sd / math.sqrt(n)
    # Normal, not truncated normal or uniform (both would also fail the std check above).
    assert scipy.stats.kstest(w / sd, "norm").pvalue > 1e-3
    assert np.abs(w).max() > 3.5 * sd  # a truncated normal (at 2 sd) never reaches this


def test_dense2_dense3_keep_glorot_uniform_defaults():
    model = mlp(kernel_std=0.01, seed=3)
    for name, fan_in, fan_out in [("dense2", 30, 30), ("dense3", 30, 10)]:
        w = model.get_layer(name).kernel.numpy().ravel()
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert np.abs(w).max() <= bound
        assert np.abs(w).max() > 0.95 * bound
        assert abs(w.std() / (bound / math.sqrt(3)) - 1) < 0.12
        assert scipy.stats.kstest(w, "uniform", args=(-bound, 2 * bound)).pvalue > 1e-3
        np.testing.assert_array_equal(model.get_layer(name).bias.numpy(), 0.0)


def test_per_layer_std_sequence():
    model = mlp(kernel_std=[0.5, None, 2.0], seed=1)
    w1, w2, w3 = _kernels(model)
    assert abs(w1.std() / 0.5 - 1) < 0.03
    bound = math.sqrt(6 / 60)
    assert np.abs(w2).max() <= bound and abs(w2.std() / (bound / math.sqrt(3)) - 1) < 0.12
    assert abs(w3.std() / 2.0 - 1) < 0.15  # 300 weights
    assert np.abs(w3).max() > bound  # not Glorot

    # [sd] * n scales every layer
    for w in _kernels(mlp(kernel_std=[0.1] * 3, seed=2)):
        assert abs(w.std() / 0.1 - 1) < 0.15


def test_any_depth_and_width():
    model = mlp(input_shape=(5,), widths=(8,) * 5, num_classes=3, kernel_std=[0.2] * 6, seed=0)
    dense = dense_layers(model)
    assert [d.name for d in dense] == [f"dense{k}" for k in range(1, 7)]
    assert [d.units for d in dense] == [8] * 5 + [3]
    assert [d.kernel.shape for d in dense] == [(5, 8)] + [(8, 8)] * 4 + [(8, 3)]
    assert model(np.ones((4, 5), np.float32)).shape == (4, 3)
    with pytest.raises(ValueError, match="6"):
        mlp(widths=(8,) * 5, kernel_std=[0.2] * 3)


def test_cifar_shaped_input():
    model = mlp(input_shape=(32, 32, 3), kernel_std=0.01, seed=0)
    assert model.get_layer("dense1").kernel.shape == (32 * 32 * 3, 30)
    x = np.random.default_rng(0).random((3, 32, 32, 3), np.float32)
    assert model(x).shape == (3, 10)


_NUMPY_ACTIVATIONS = {
    "relu": lambda a: np.maximum(a, 0.0),
    "tanh": np.tanh,
    "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
    "softplus": lambda a: np.logaddexp(0.0, a),
    "gelu": lambda a: 0.5 * a * (1 + scipy.special.erf(a / math.sqrt(2))),  # exact GELU
    "linear": lambda a: a,
}


@pytest.mark.parametrize("activation", list(_NUMPY_ACTIVATIONS))
def test_every_activation_matches_numpy_forward_pass(activation):
    model = mlp(
        input_shape=(4, 3),
        widths=(6, 5),
        num_classes=4,
        activation=activation,
        kernel_std=[1.0, 1.0, 1.0],
        seed=5,
        dtype="float64",
    )
    rng = np.random.default_rng(1)
    for layer in dense_layers(model):  # non-zero biases, so that they are exercised too
        layer.bias.assign(rng.normal(0, 0.5, layer.bias.shape))
    x = rng.standard_normal((7, 4, 3))
    f = _NUMPY_ACTIVATIONS[activation]
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
    model = mlp(kernel_std=[0.1, None, None], dtype="float64", seed=0)
    assert all(w.dtype == np.float64 for w in model.get_weights())
    assert model(np.zeros((1, 28, 28))).dtype == tf.float64


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kernel_std": -0.1}, "positive"),
        ({"kernel_std": float("nan")}, "positive"),
        ({"kernel_std": float("inf")}, "finite"),
        ({"kernel_std": 0.0}, "positive"),
        ({"kernel_std": [0.1, -1.0, None]}, "dense2"),
        ({"kernel_std": [0.1, None, float("nan")]}, "dense3"),
        ({"activation": "no_such_activation"}, "unknown activation.*relu.*tanh"),
        ({"kernel_std": [0.1, 0.1]}, "one entry per dense layer.*3"),
        ({"kernel_std": [0.1] * 4}, "one entry per dense layer.*3"),
        ({"widths": (30, 0)}, "widths"),
        ({"widths": (-3,)}, "widths"),
        ({"num_classes": 1}, "num_classes"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_arguments_raise_helpful_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mlp(**kwargs)


def test_seed_reproducibility():
    a, b, c = mlp(seed=11), mlp(seed=11), mlp(seed=12)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    for ka, kc in zip(_kernels(a), _kernels(c), strict=True):
        assert not np.allclose(ka, kc)
    # layers draw independently of each other
    w = _kernels(mlp(kernel_std=[1.0, 1.0, 1.0], widths=(30, 30), seed=0))
    assert not np.allclose(w[1][:10, :10], w[2][:10, :10])


def test_dropout_inactive_at_inference():
    model = mlp(input_shape=(6,), widths=(16, 16), dropout=0.5, kernel_std=[1.0] * 3, seed=0)
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers) == 2
    x = np.random.default_rng(0).random((4, 6), np.float32)
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=False))


def test_same_seed_same_weights_across_dtypes():
    a = mlp(kernel_std=[1e-5] * 3, seed=3)
    b = mlp(kernel_std=[1e-5] * 3, seed=3, dtype="float64")
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)


def test_numpy_float32_std_accepted():
    w = mlp(kernel_std=np.float32(0.5), seed=0).get_layer("dense1").kernel.numpy()
    assert abs(w.std() / 0.5 - 1) < 0.03


def test_flatten_name_is_stable():
    keras.layers.Flatten()  # any earlier Flatten bumps Keras' global name counter
    assert mlp().layers[0].name == "flatten"


# --------------------------------------------------------------------------------------------
# Loss
# --------------------------------------------------------------------------------------------


def _numpy_cross_entropy(labels, logits):
    logits = np.asarray(logits, np.float64)
    m = logits.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    return lse - logits[np.arange(len(labels)), labels]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_matches_keras_and_closed_form(dtype):
    rng = np.random.default_rng(0)
    logits = (3 * rng.standard_normal((50, 7))).astype(dtype)
    labels = rng.integers(0, 7, 50)
    ours = cross_entropy(labels, logits).numpy()
    assert ours.shape == (50,)
    rtol, atol = (1e-5, 1e-6) if dtype == np.float32 else (1e-12, 1e-14)
    np.testing.assert_allclose(ours, _numpy_cross_entropy(labels, logits), rtol=rtol, atol=atol)
    ref = tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    np.testing.assert_allclose(ours, ref.numpy(), rtol=max(rtol, 1e-6), atol=1e-6)
    # labels as a column (B, 1) work too
    np.testing.assert_allclose(cross_entropy(labels[:, None], logits).numpy(), ours)


@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-9), (np.float32, 2e-3)])
def test_cross_entropy_huge_logits_do_not_overflow(dtype, atol):
    # float32's spacing at 1e4 is ~1e-3, hence its atol
    logits = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 0.0], [0.0, -1e4, 1e4]], dtype)
    labels = np.array([0, 1, 0])
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert not np.all(np.isfinite(naive))  # the naive softmax does overflow here
    expected = np.array([0.0, math.log(2.0), 1e4])  # closed form
    ours = cross_entropy(labels, logits).numpy()
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=atol)
    np.testing.assert_allclose(ours, _numpy_cross_entropy(labels, logits), rtol=1e-6, atol=atol)
    ref = tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-6, atol=atol)


def test_mean_loss_is_mean_of_closed_form():
    model = mlp(input_shape=(3,), widths=(4,), num_classes=5, kernel_std=[1.0, 1.0], seed=0)
    rng = np.random.default_rng(2)
    x, y = rng.random((9, 3), np.float32), rng.integers(0, 5, 9)
    logits = model(x).numpy()
    assert float(losses.mean_loss(model, x, y)) == pytest.approx(
        _numpy_cross_entropy(y, logits).mean(), rel=1e-6
    )


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


def test_softmax_saturation_closed_forms_and_homogeneity():
    rng = np.random.default_rng(0)
    x = rng.random((50, 28, 28), np.float32)
    small = losses.softmax_saturation(mlp(kernel_std=1e-4, seed=0), x)
    big = losses.softmax_saturation(mlp(kernel_std=10.0, seed=0), x)
    # zero biases and ReLU: the logits scale exactly with dense1's std (positive homogeneity)
    assert big["logit_std"] / small["logit_std"] == pytest.approx(1e5, rel=1e-3)
    assert small["p_max"] < 0.2 < 0.9 < big["p_max"]
    assert big["lambda_norm"] < 0.1 * small["lambda_norm"]
    # closed form for one sample: ||diag(p) - p p^T||_F from the logits directly
    model = mlp(kernel_std=1.0, seed=1)
    z = model(x[:1]).numpy().astype(np.float64)[0]
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    lam = np.diag(p) - np.outer(p, p)
    sat = losses.softmax_saturation(model, x[:1])
    assert sat["lambda_norm"] == pytest.approx(np.linalg.norm(lam), rel=1e-6)
    assert sat["p_max"] == pytest.approx(p.max(), rel=1e-6)
