"""Convolutional networks of the paper's kind: small CNNs, a simplified GoogleNet, a small ResNet.

All of them map images (H, W, C) to K logits z through named layers, so that the per-tensor
curvature code (:mod:`hessinit.curvature.tensors`) can be pointed at any of them:

- :func:`small_cnn`: ``conv1 -> pool1 -> conv2 -> pool2 -> flatten -> dense`` (logits);
- :func:`simple_googlenet`: a stem convolution, then inception blocks whose 1x1, 3x3 and
  pooling branches are concatenated, global average pooling and the logits layer;
- :func:`small_resnet`: a stem convolution, residual blocks ``h + conv(f(conv(h)))`` with or
  without BatchNorm after each convolution, global average pooling and the logits layer;
- :func:`plain_cnn`: ``depth`` 3x3 convolutions at full resolution, global average pooling and
  the logits layer (no pooling in between, so any depth fits any image size).

Kernels follow :func:`hessinit.nn.mlp`'s conventions: ``sd`` a number (the first layer
only), a sequence (one entry per kernel layer, in :func:`kernel_layers` order, ``None`` for the
Keras default) or ``None`` (Keras defaults, Glorot-uniform with a convolution's fans
fan_in = k * k * c_in and fan_out = k * k * c_out); normal draws come from numpy with the seed
``(seed, k)`` of the k-th kernel layer, so float32 and float64 builds share their weights.
Biases start at zero, BatchNorm at gamma = 1, beta = 0. :func:`hessinit.init.model_kernel_sds`
gives the per-layer sds of a named scheme for any of them.

Imports: numpy, TensorFlow, Keras and :mod:`hessinit.nn` (activations, models).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from .activations import activation_name
from .models import layer_sds


def kernel_layers(model) -> list:
    """The model's ``Conv2D`` and ``Dense`` layers (those with a kernel), in the model's order.

    Args:
        model: a Keras model.

    Returns:
        A list of layers; their kernels are what ``sd`` and the init schemes set.

    Example:
        >>> [layer.name for layer in kernel_layers(small_cnn())]
        ['conv1', 'conv2', 'dense']
    """
    kinds = (keras.layers.Conv2D, keras.layers.Dense)
    return [layer for layer in model.layers if isinstance(layer, kinds)]


def kernel_fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a kernel: (n_in, n_out) for dense, (k k c_in, k k c_out) for conv.

    Args:
        shape: the kernel's shape, (n_in, n_out) or (k_h, k_w, c_in, c_out).

    Returns:
        ``(fan_in, fan_out)`` as ints.

    Example:
        >>> kernel_fans((784, 30)), kernel_fans((3, 3, 16, 32))
        ((784, 30), (144, 288))
    """
    shape = tuple(int(d) for d in shape)
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return receptive * shape[-2], receptive * shape[-1]


class _Kernels:
    """Numpy-drawn kernel initializers: the k-th kernel layer N(0, sd_k^2) or Glorot-uniform."""

    def __init__(self, sd, count, seed):
        self.sds, self.seed, self.k = layer_sds(sd, count, "kernel layer"), seed, 0

    def __call__(self):
        """The initializer of the next kernel layer."""
        self.k += 1
        k, sd, seed = self.k, self.sds[self.k - 1], self.seed

        def init(shape, dtype=None):
            rng = np.random.default_rng([seed, k])
            if sd is None:
                fan_in, fan_out = kernel_fans(shape)
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                values = rng.uniform(-limit, limit, shape)
            else:
                values = rng.normal(0.0, float(sd), shape)
            return tf.constant(values, dtype=dtype)

        return init


def _check(input_shape, num_classes, activation):
    """Validate the common arguments; return the input shape as a tuple of ints."""
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or min(shape) <= 0:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape}")
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    activation_name(activation)  # raises ValueError for an unknown activation
    return shape


def small_cnn(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    channels: Sequence[int] = (8, 16),
    activation: str = "relu",
    sd: float | Sequence[float | None] | None = None,
    seed: int = 0,
    dtype: str = "float32",
) -> keras.Model:
    """A small CNN: ``conv1 -> pool1 -> conv2 -> pool2 -> flatten -> dense`` (logits).

    Each convolution is 3x3 with ``same`` padding and activation f, each pooling a 2x2 max-pool
    (``valid``: odd sizes are floored); the dense layer gives the logits z.

    Args:
        input_shape: (height, width, channels) of one image.
        num_classes: K, the number of logits.
        channels: output channels of conv1 and conv2.
        activation: f, a Keras activation name.
        sd: as in the module docstring (kernel layers conv1, conv2, dense).
        seed: seed of the kernels' draws.
        dtype: the dtype of every layer.

    Returns:
        A built ``keras.Model`` named ``"small_cnn"``.

    Raises:
        ValueError: a bad shape, ``num_classes < 2``, an unknown activation, or a bad
            ``sd``.

    Example:
        >>> model = small_cnn()
        >>> [layer.name for layer in model.layers][1:]
        ['conv1', 'pool1', 'conv2', 'pool2', 'flatten', 'dense']
        >>> tuple(model.get_layer("dense").kernel.shape)  # 7 * 7 * 16 inputs
        (784, 10)
    """
    shape = _check(input_shape, num_classes, activation)
    kernels = _Kernels(sd, 3, seed)
    L = keras.layers
    x = keras.Input(shape, dtype=dtype)
    h = x
    for i, c in enumerate(channels[:2], start=1):
        h = L.Conv2D(
            int(c),
            3,
            padding="same",
            activation=activation,
            kernel_initializer=kernels(),
            name=f"conv{i}",
            dtype=dtype,
        )(h)
        h = L.MaxPooling2D(2, name=f"pool{i}", dtype=dtype)(h)
    h = L.Flatten(name="flatten", dtype=dtype)(h)
    z = L.Dense(int(num_classes), kernel_initializer=kernels(), name="dense", dtype=dtype)(h)
    return keras.Model(x, z, name="small_cnn")


def simple_googlenet(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    stem: int = 8,
    blocks: int = 2,
    branch: int = 4,
    activation: str = "relu",
    sd: float | Sequence[float | None] | None = None,
    seed: int = 0,
    dtype: str = "float32",
) -> keras.Model:
    """A simplified GoogleNet: stem convolution, inception blocks, global pooling, logits.

    ``stem`` (3x3 conv, f) and ``pool`` (2x2 max-pool), then per block b = 1..``blocks``: the
    branches ``inc{b}_1x1`` (1x1 conv), ``inc{b}_3x3_reduce -> inc{b}_3x3`` (1x1 then 3x3
    conv), ``inc{b}_pool -> inc{b}_pool_proj`` (3x3 max-pool, stride 1, then 1x1 conv), each
    with ``branch`` channels and activation f, concatenated along channels (``inc{b}``); then
    ``gap`` (global average pooling) and ``dense`` (logits).

    Args:
        input_shape: (height, width, channels) of one image.
        num_classes: K.
        stem: channels of the stem convolution.
        blocks: the number of inception blocks.
        branch: channels of each branch.
        activation: f.
        sd: as in the module docstring (1 + 4 * blocks + 1 kernel layers).
        seed: seed of the kernels' draws.
        dtype: the dtype of every layer.

    Returns:
        A built ``keras.Model`` named ``"simple_googlenet"``.

    Raises:
        ValueError: as in :func:`small_cnn`.

    Example:
        >>> model = simple_googlenet(blocks=1)
        >>> model.get_layer("inc1").output.shape  # three branches of 4 channels, 14 x 14
        (None, 14, 14, 12)
        >>> len(kernel_layers(model))
        6
    """
    shape = _check(input_shape, num_classes, activation)
    kernels = _Kernels(sd, 2 + 4 * int(blocks), seed)
    L = keras.layers

    def conv(h, c, k, name):
        return L.Conv2D(
            c,
            k,
            padding="same",
            activation=activation,
            kernel_initializer=kernels(),
            name=name,
            dtype=dtype,
        )(h)

    x = keras.Input(shape, dtype=dtype)
    h = conv(x, int(stem), 3, "stem")
    h = L.MaxPooling2D(2, name="pool", dtype=dtype)(h)
    for b in range(1, int(blocks) + 1):
        one = conv(h, branch, 1, f"inc{b}_1x1")
        three = conv(conv(h, branch, 1, f"inc{b}_3x3_reduce"), branch, 3, f"inc{b}_3x3")
        pooled = L.MaxPooling2D(3, strides=1, padding="same", name=f"inc{b}_pool", dtype=dtype)(h)
        proj = conv(pooled, branch, 1, f"inc{b}_pool_proj")
        h = L.Concatenate(name=f"inc{b}", dtype=dtype)([one, three, proj])
    h = L.GlobalAveragePooling2D(name="gap", dtype=dtype)(h)
    z = L.Dense(int(num_classes), kernel_initializer=kernels(), name="dense", dtype=dtype)(h)
    return keras.Model(x, z, name="simple_googlenet")


def small_resnet(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    channels: int = 8,
    blocks: int = 2,
    batchnorm: bool = True,
    activation: str = "relu",
    sd: float | Sequence[float | None] | None = None,
    seed: int = 0,
    dtype: str = "float32",
) -> keras.Model:
    """A small ResNet: stem, residual blocks with or without BatchNorm, global pooling, logits.

    ``stem`` (3x3 conv, stride 2, then ``stem_bn`` if ``batchnorm``, then f), then per block
    b = 1..``blocks``: ``block{b}_conv1`` (3x3, [``block{b}_bn1``], f), ``block{b}_conv2`` (3x3,
    [``block{b}_bn2``]), ``block{b}_add`` (the skip connection h + ...) and f; then ``gap`` and
    ``dense`` (logits). With BatchNorm the convolutions have no bias (BatchNorm's beta takes
    its place).

    Args:
        input_shape: (height, width, channels) of one image.
        num_classes: K.
        channels: channels of every convolution.
        blocks: the number of residual blocks.
        batchnorm: whether a BatchNorm layer follows each convolution.
        activation: f.
        sd: as in the module docstring (1 + 2 * blocks + 1 kernel layers).
        seed: seed of the kernels' draws.
        dtype: the dtype of every layer.

    Returns:
        A built ``keras.Model`` named ``"small_resnet"`` (``"small_resnet_bn"`` with BatchNorm).

    Raises:
        ValueError: as in :func:`small_cnn`.

    Example:
        >>> model = small_resnet(blocks=1)
        >>> [layer.name for layer in kernel_layers(model)]
        ['stem', 'block1_conv1', 'block1_conv2', 'dense']
        >>> model.get_layer("block1_add").output.shape
        (None, 14, 14, 8)
        >>> len(small_resnet(blocks=1, batchnorm=False).layers) < len(model.layers)
        True
    """
    shape = _check(input_shape, num_classes, activation)
    kernels = _Kernels(sd, 2 + 2 * int(blocks), seed)
    L = keras.layers

    def conv(h, name, strides=1):
        h = L.Conv2D(
            int(channels),
            3,
            strides=strides,
            padding="same",
            use_bias=not batchnorm,
            kernel_initializer=kernels(),
            name=name,
            dtype=dtype,
        )(h)
        if batchnorm:
            h = L.BatchNormalization(
                name=name.replace("conv", "bn") + "_bn" * (name == "stem"), dtype=dtype
            )(h)
        return h

    def act(h, name):
        return L.Activation(activation, name=name, dtype=dtype)(h)

    x = keras.Input(shape, dtype=dtype)
    h = act(conv(x, "stem", strides=2), "stem_act")
    for b in range(1, int(blocks) + 1):
        a = act(conv(h, f"block{b}_conv1"), f"block{b}_act1")
        a = conv(a, f"block{b}_conv2")
        h = act(L.Add(name=f"block{b}_add", dtype=dtype)([h, a]), f"block{b}_act2")
    h = L.GlobalAveragePooling2D(name="gap", dtype=dtype)(h)
    z = L.Dense(int(num_classes), kernel_initializer=kernels(), name="dense", dtype=dtype)(h)
    return keras.Model(x, z, name="small_resnet_bn" if batchnorm else "small_resnet")


def plain_cnn(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    depth: int = 4,
    channels: int = 8,
    activation: str = "relu",
    sd: float | Sequence[float | None] | None = None,
    seed: int = 0,
    dtype: str = "float32",
) -> keras.Model:
    """A plain CNN of any depth: ``conv1 -> ... -> conv{depth} -> gap -> dense`` (logits).

    Every convolution is 3x3 with ``same`` padding, stride 1, ``channels`` outputs and
    activation f, so the feature maps keep the image's height and width at every depth; ``gap``
    averages each channel over the positions and ``dense`` gives the logits z. With a piecewise
    linear f and zero biases the logits are positively homogeneous in each kernel.

    Args:
        input_shape: (height, width, channels) of one image.
        num_classes: K, the number of logits.
        depth: the number of convolutions (at least 1).
        channels: output channels of every convolution.
        activation: f, a Keras activation name.
        sd: as in the module docstring (``depth + 1`` kernel layers).
        seed: seed of the kernels' draws.
        dtype: the dtype of every layer.

    Returns:
        A built ``keras.Model`` named ``"plain_cnn"``.

    Raises:
        ValueError: as in :func:`small_cnn`, or ``depth < 1``.

    Example:
        >>> model = plain_cnn(depth=3, channels=4)
        >>> [layer.name for layer in kernel_layers(model)]
        ['conv1', 'conv2', 'conv3', 'dense']
        >>> model.get_layer("conv3").output.shape, tuple(model.get_layer("dense").kernel.shape)
        ((None, 28, 28, 4), (4, 10))
    """
    shape = _check(input_shape, num_classes, activation)
    if int(depth) < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    kernels = _Kernels(sd, int(depth) + 1, seed)
    L = keras.layers
    x = keras.Input(shape, dtype=dtype)
    h = x
    for i in range(1, int(depth) + 1):
        h = L.Conv2D(
            int(channels),
            3,
            padding="same",
            activation=activation,
            kernel_initializer=kernels(),
            name=f"conv{i}",
            dtype=dtype,
        )(h)
    h = L.GlobalAveragePooling2D(name="gap", dtype=dtype)(h)
    z = L.Dense(int(num_classes), kernel_initializer=kernels(), name="dense", dtype=dtype)(h)
    return keras.Model(x, z, name="plain_cnn")
