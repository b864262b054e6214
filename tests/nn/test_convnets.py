"""Tests of hessinit.nn.convnets: the small CNN, the simplified GoogleNet, the small ResNet and
the plain CNN of any depth (names, shapes for any input, kernel initialization with a
convolution's fans, BatchNorm on or off, homogeneity), checked against hand-computed shapes,
closed forms and the laws the kernels are drawn from."""

import keras
import numpy as np
import pytest

from hessinit.nn import kernel_fans, kernel_layers, simple_googlenet, small_cnn, small_resnet
from hessinit.nn.convnets import plain_cnn

BUILDERS = (small_cnn, simple_googlenet, small_resnet, plain_cnn)


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("shape", [(28, 28, 1), (9, 11, 3)])
def test_any_input_shape_gives_logits(build, shape):
    model = build(input_shape=shape, num_classes=4)
    x = np.random.default_rng(0).random((2, *shape)).astype("float32")
    assert model(x).shape == (2, 4)
    assert model.get_layer("dense").kernel.shape[-1] == 4


def test_small_cnn_layers_and_shapes():
    model = small_cnn(input_shape=(28, 28, 1), channels=(4, 6))
    names = [layer.name for layer in model.layers[1:]]
    assert names == ["conv1", "pool1", "conv2", "pool2", "flatten", "dense"]
    assert tuple(model.get_layer("conv2").kernel.shape) == (3, 3, 4, 6)
    assert tuple(model.get_layer("dense").kernel.shape) == (7 * 7 * 6, 10)  # 28 -> 14 -> 7


def test_googlenet_concatenates_its_branches():
    model = simple_googlenet(input_shape=(16, 16, 1), blocks=2, branch=3, stem=5)
    assert model.get_layer("inc1").output.shape == (None, 8, 8, 9)
    assert model.get_layer("inc2_3x3").kernel.shape == (3, 3, 3, 3)  # after the 1x1 reduce
    assert model.get_layer("inc2_1x1").kernel.shape == (1, 1, 9, 3)  # reads all 3 branches
    assert isinstance(model.get_layer("inc1"), keras.layers.Concatenate)
    assert len(kernel_layers(model)) == 1 + 4 * 2 + 1


@pytest.mark.parametrize("batchnorm", [True, False])
def test_resnet_with_and_without_batchnorm(batchnorm):
    model = small_resnet(channels=4, blocks=2, batchnorm=batchnorm)
    bns = [
        layer.name for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    if batchnorm:
        assert bns == ["stem_bn", "block1_bn1", "block1_bn2", "block2_bn1", "block2_bn2"]
    else:
        assert bns == []
    for layer in kernel_layers(model)[:-1]:
        assert layer.use_bias is not batchnorm  # BatchNorm's beta replaces the conv's bias
    add = model.get_layer("block2_add")
    assert isinstance(add, keras.layers.Add) and add.output.shape == (None, 14, 14, 4)


def test_sd_number_sequence_and_keras_default():
    model = small_cnn(sd=0.5, seed=3)
    w1 = model.get_layer("conv1").kernel.numpy()
    assert abs(np.std(w1) - 0.5) < 0.2  # 72 draws
    # Keras default elsewhere: Glorot-uniform with the conv fans k k c_in, k k c_out
    w2 = model.get_layer("conv2").kernel.numpy()
    fan_in, fan_out = kernel_fans(w2.shape)
    assert (fan_in, fan_out) == (9 * 8, 9 * 16)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(w2).max() <= limit and np.abs(w2).max() > 0.95 * limit
    sds = [0.1, None, 0.01]
    model = small_cnn(sd=sds, seed=3)
    assert abs(np.std(model.get_layer("dense").kernel.numpy()) - 0.01) < 0.001
    with pytest.raises(ValueError, match="one entry per kernel layer"):
        small_cnn(sd=[0.1, 0.1])
    with pytest.raises(ValueError, match="positive finite"):
        small_resnet(sd=-1.0)


def test_same_seed_same_weights_in_float32_and_float64():
    a = simple_googlenet(blocks=1, seed=7, sd=[0.1] * 6)
    b = simple_googlenet(blocks=1, seed=7, sd=[0.1] * 6, dtype="float64")
    for u, v in zip(a.trainable_weights, b.trainable_weights, strict=True):
        np.testing.assert_allclose(u.numpy(), v.numpy(), rtol=1e-6)
    c = simple_googlenet(blocks=1, seed=8, sd=[0.1] * 6)
    assert not np.allclose(a.trainable_weights[0].numpy(), c.trainable_weights[0].numpy())


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="height, width, channels"):
        small_cnn(input_shape=(28, 28))
    with pytest.raises(ValueError, match="num_classes"):
        small_resnet(num_classes=1)
    with pytest.raises(ValueError, match="unknown activation"):
        simple_googlenet(activation="nope")


def test_plain_cnn_keeps_the_resolution_at_every_depth():
    model = plain_cnn(input_shape=(9, 7, 2), depth=5, channels=3)
    convs = [layer for layer in kernel_layers(model)][:-1]
    assert [layer.name for layer in convs] == [f"conv{i}" for i in range(1, 6)]
    assert all(layer.output.shape == (None, 9, 7, 3) for layer in convs)
    assert tuple(convs[0].kernel.shape) == (3, 3, 2, 3)
    assert tuple(model.get_layer("dense").kernel.shape) == (3, 10)
    with pytest.raises(ValueError, match="depth"):
        plain_cnn(depth=0)


def test_plain_relu_cnn_is_homogeneous_of_degree_depth_plus_one():
    # zero biases and ReLU: scaling every kernel by s scales the logits by s^(depth + 1)
    x = np.random.default_rng(0).random((3, 8, 8, 1))
    a = plain_cnn(input_shape=(8, 8, 1), depth=3, channels=4, sd=[0.3] * 4,
                  dtype="float64")  # fmt: skip
    b = plain_cnn(input_shape=(8, 8, 1), depth=3, channels=4, sd=[0.6] * 4,
                  dtype="float64")  # fmt: skip
    np.testing.assert_allclose(b(x).numpy(), 2.0**4 * a(x).numpy(), rtol=1e-10)


def test_plain_cnn_kernels_follow_the_conv_fans():
    sds = [np.sqrt(2.0 / 9), np.sqrt(2.0 / 144), np.sqrt(2.0 / 16)]
    w = [layer.kernel.numpy() for layer in kernel_layers(plain_cnn(depth=2, channels=16,
                                                                   sd=sds))]  # fmt: skip
    # 2,304 and 160 normal draws: the sample variance times the fan-in is 2 to within 4 sd
    for kernel, n in zip(w[1:], [9 * 16, 16], strict=True):
        assert abs(np.var(kernel) * n - 2.0) < 4 * 2.0 * np.sqrt(2.0 / kernel.size)
