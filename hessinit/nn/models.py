"""The networks of the paper and their loss.

The original experiment uses a multilayer perceptron

    x -> Flatten -> dense1 (30, f) -> dense2 (30, f) -> dense3 (K, linear) = z

with softmax cross-entropy on the logits z, l(z, y) = logsumexp(z) - z_y, averaged over the batch.
Only dense1's kernel is drawn from N(0, sd^2); dense2 and dense3 keep Keras defaults
(Glorot-uniform kernels, zero biases). :func:`mlp` builds that network and its generalizations
(any depth, width, activation and per-layer sd); :func:`layer_sds` is the one rule that turns an
``sd`` argument (one number or one per layer) into per-layer sds, :func:`dense1_sd` the number a
frame's ``sd`` column records; :func:`dense_layers` and :func:`get_dense` find the dense layers
(kernel W, input x_i, pre-activation a_i = W^T x_i + b) whose Hessian blocks the curvature code
computes.

Imports: numpy, TensorFlow, Keras and :mod:`hessinit.nn.activations`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from .activations import activation_name


def is_number(value) -> bool:
    """Whether ``value`` is a real number (numpy scalars included, booleans not).

    Args:
        value: anything.

    Returns:
        bool: True for ints, floats and numpy real scalars; False for booleans and the rest.

    Example:
        >>> is_number(0.01), is_number(True), is_number("0.01")
        (True, False, False)
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_sd(sd, name: str) -> None:
    """Raise unless ``sd`` is None or a positive finite number.

    Args:
        sd: an initial standard deviation, or None for the Keras default initializer.
        name: what ``sd`` is, for the message.

    Raises:
        TypeError: If ``sd`` is not a number.
        ValueError: If ``sd`` is not positive and finite.

    Example:
        >>> check_sd(0.01, "sd")
        >>> try:
        ...     check_sd(-1.0, "sd")
        ... except ValueError as error:
        ...     print(error)
        sd must be a positive finite standard deviation, got -1.0
    """
    if sd is None:
        return
    if not is_number(sd):
        raise TypeError(f"{name} must be a number or None (Keras default), got {sd!r}")
    if not sd > 0 or sd != sd or sd == float("inf"):
        raise ValueError(f"{name} must be a positive finite standard deviation, got {sd!r}")


def layer_sds(sd, count: int, unit: str = "dense layer") -> tuple:
    """The initial sd of each of ``count`` kernel layers from one sd or one per layer.

    The one rule for an ``sd`` argument (:func:`mlp`, the builders of
    :mod:`hessinit.nn.convnets`, the runs of :mod:`hessinit.train`): a number is the first
    layer's sd (the others keep the Keras default, Glorot-uniform), ``None`` keeps the default
    throughout, a sequence gives one entry per layer (``None`` entries keep the default).

    Args:
        sd: a number, None, or a sequence of ``count`` numbers or None.
        count: the number of kernel layers.
        unit: what a layer is called in the messages (``"dense layer"``, ``"kernel layer"``).

    Returns:
        A tuple of ``count`` sds (positive finite numbers) or None.

    Raises:
        ValueError: a sequence of the wrong length, or an entry that is not positive and finite.
        TypeError: an entry that is neither a number nor None.

    Example:
        >>> layer_sds(0.01, 3), layer_sds((0.1, None), 2), layer_sds(None, 2)
        ((0.01, None, None), (0.1, None), (None, None))
    """
    if sd is None or is_number(sd):
        sds = (sd,) + (None,) * (count - 1)
    else:
        sds = tuple(sd)
        if len(sds) != count:
            raise ValueError(f"sd needs one entry per {unit} ({count}), got {len(sds)}")
    for k, entry in enumerate(sds, start=1):
        check_sd(entry, f"sd of {unit} {k}" if unit != "dense layer" else f"sd of dense{k}")
    return sds


def dense1_sd(sd) -> float:
    """The first layer's initial sd of an ``sd`` argument: the number a frame's ``sd`` records.

    A run's ``sd`` column holds this value: the number itself, the first entry of a per-layer
    sequence (the other entries are the run's other settings, e.g. the scheme's), NaN where the
    first layer keeps the Keras default (``None``).

    Args:
        sd: a number, None, or a per-layer sequence, as :func:`layer_sds` takes.

    Returns:
        float: the first layer's sd, or NaN.

    Example:
        >>> dense1_sd(0.01), dense1_sd((0.5, None, 2.0)), dense1_sd(None)
        (0.01, 0.5, nan)
    """
    first = sd if sd is None or is_number(sd) else next(iter(sd), None)
    return float("nan") if first is None else float(first)


def mlp(
    input_shape: Sequence[int] = (28, 28),
    num_classes: int = 10,
    widths: Sequence[int] = (30, 30),
    activation: str = "relu",
    sd: float | Sequence[float | None] | None = 0.01,
    seed: int = 0,
    dropout: float = 0.0,
    dtype: str = "float32",
) -> keras.Sequential:
    """The paper's multilayer perceptron: ``Flatten -> dense1 ... denseL (f) -> dense{L+1}``.

    Computes z = W_{L+1}^T f(... f(W_1^T x + b_1) ...) + b_{L+1}: L hidden dense layers with
    activation f and a linear output layer giving the logits z. Kernels W_k start from
    N(0, sd_k^2) or Keras' default, Glorot-uniform U(-l, l) with l = sqrt(6 / (fan_in + fan_out));
    they are drawn by numpy from ``(seed, k)``, so the same seed gives the same network in float32
    and float64. Biases start at zero. Layers are named ``dense1``, ``dense2``, ...

    Args:
        input_shape: shape of one input (flattened by the first layer).
        num_classes: K, the number of logits (at least 2).
        widths: widths of the hidden layers; ``()`` gives softmax regression.
        activation: f, a Keras activation name or function. Entries of
            :data:`hessinit.nn.activations.REGISTRY` take the fast exact-curvature path; any other
            Keras activation works through per-sample autodiff.
        sd: the kernels' initial N(0, sd^2) distribution. A number: dense1 only, the
            other layers keep Keras defaults (the original experiment). A sequence: one entry
            per dense layer (``len(widths) + 1``), ``None`` for a Keras default, so
            ``[sd] * (len(widths) + 1)`` scales every layer. ``None``: Keras defaults throughout.
        seed: seed of the kernels' draws and of the dropout layers.
        dropout: rate of the inverted dropout inserted after each hidden activation (inactive
            unless the model is called with ``training=True``); 0 inserts none.
        dtype: the dtype of every layer's weights and computations.

    Returns:
        A built ``keras.Sequential`` named ``"mlp"``.

    Raises:
        ValueError: a width is not positive, ``num_classes < 2``, ``dropout`` is outside [0, 1),
            Keras does not know ``activation``, ``sd`` has the wrong length or an entry that is
            not a positive finite number.
        TypeError: an entry of ``sd`` is neither a number nor None.

    Example:
        >>> model = mlp(sd=0.01, seed=0)
        >>> [layer.name for layer in model.layers]
        ['flatten', 'dense1', 'dense2', 'dense3']
        >>> model.count_params()  # 784 * 30 + 30 + 30 * 30 + 30 + 30 * 10 + 10
        24790
        >>> round(float(np.std(model.get_layer("dense1").kernel.numpy())), 4)
        0.01
    """
    widths = tuple(int(w) for w in widths)
    if any(w <= 0 for w in widths):
        raise ValueError(f"widths must be positive integers, got {widths}")
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout is a rate in [0, 1), got {dropout}")
    activation_name(activation)  # raises ValueError for an unknown activation
    n_dense = len(widths) + 1
    sds = layer_sds(sd, n_dense)

    fans = [int(np.prod(input_shape)), *widths, int(num_classes)]

    def kernel_init(k, layer_sd):
        # Drawn by numpy from (seed, k), so a float32 and a float64 model share their weights.
        rng = np.random.default_rng([seed, k])
        fan_in, fan_out = fans[k - 1], fans[k]
        if layer_sd is None:  # Keras' default, Glorot-uniform
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            values = rng.uniform(-limit, limit, (fan_in, fan_out))
        else:
            values = rng.normal(0.0, float(layer_sd), (fan_in, fan_out))
        return lambda shape, dtype=None: tf.constant(values, dtype=dtype)

    layers = [
        keras.Input(shape=tuple(input_shape), dtype=dtype),
        keras.layers.Flatten(dtype=dtype, name="flatten"),
    ]
    for k, width in enumerate(widths, start=1):
        layers.append(
            keras.layers.Dense(
                width,
                activation=activation,
                kernel_initializer=kernel_init(k, sds[k - 1]),
                name=f"dense{k}",
                dtype=dtype,
            )
        )
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout, seed=seed * 1000 + 500 + k, dtype=dtype))
    layers.append(
        keras.layers.Dense(
            int(num_classes),
            activation="linear",
            kernel_initializer=kernel_init(n_dense, sds[-1]),
            name=f"dense{n_dense}",
            dtype=dtype,
        )
    )
    return keras.Sequential(layers, name="mlp")


def dense_layers(model) -> list:
    """The model's ``Dense`` layers in order (dense1, dense2, ...).

    Args:
        model: a Keras model with a ``layers`` attribute, such as :func:`mlp`.

    Returns:
        A list of ``keras.layers.Dense``, logits layer last.

    Example:
        >>> [layer.name for layer in dense_layers(mlp(widths=(4,)))]
        ['dense1', 'dense2']
    """
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def get_dense(model, layer):
    """Resolve a dense layer given by name, index or object to ``(index, layer)``.

    Args:
        model: a Keras model, such as :func:`mlp`.
        layer: a name such as ``"dense1"``, an index into :func:`dense_layers` (negative counts
            from the logits layer) or the layer itself.

    Returns:
        ``(index, layer)``: the position in :func:`dense_layers` and the ``Dense`` layer.

    Raises:
        IndexError: an index beyond the model's dense layers.
        ValueError: no dense layer of that name, or a layer that is not one of this model's.

    Example:
        >>> model = mlp(widths=(4, 4))
        >>> get_dense(model, "dense2")[0], get_dense(model, -1)[1].name
        (1, 'dense3')
    """
    dense = dense_layers(model)
    if isinstance(layer, numbers.Integral) and not isinstance(layer, bool):
        layer = int(layer)
        if not -len(dense) <= layer < len(dense):
            raise IndexError(f"the model has {len(dense)} dense layers, no index {layer}")
        layer = dense[layer]
    elif isinstance(layer, str):
        names = [d.name for d in dense]
        if layer not in names:
            raise ValueError(f"no dense layer named {layer!r}; the model has {names}")
        layer = dense[names.index(layer)]
    for i, d in enumerate(dense):
        if d is layer:
            return i, d
    raise ValueError(f"{layer!r} is not a Dense layer of this model")
