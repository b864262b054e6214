"""The networks of the paper and their loss.

The original experiment uses a multilayer perceptron

    x -> Flatten -> dense1 (30, f) -> dense2 (30, f) -> dense3 (K, linear) = z

with softmax cross-entropy on the logits z, l(z, y) = logsumexp(z) - z_y, averaged over the batch.
Only dense1's kernel is drawn from N(0, sd^2); dense2 and dense3 keep Keras defaults
(Glorot-uniform kernels, zero biases). :func:`mlp` builds that network and its generalizations
(any depth, width, activation and per-layer std).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from .activations import activation_name


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_std(sd, name):
    if sd is None:
        return
    if not _is_number(sd):
        raise TypeError(f"{name} must be a number or None (Keras default), got {sd!r}")
    if not sd > 0 or sd != sd or sd == float("inf"):
        raise ValueError(f"{name} must be a positive finite standard deviation, got {sd!r}")


def mlp(
    input_shape: Sequence[int] = (28, 28),
    num_classes: int = 10,
    widths: Sequence[int] = (30, 30),
    activation: str = "relu",
    kernel_std: float | Sequence[float | None] | None = 0.01,
    seed: int = 0,
    dropout: float = 0.0,
    dtype: str = "float32",
) -> keras.Sequential:
    """A dense network ``Flatten -> dense1 ... denseL (hidden, activation) -> dense{L+1} (logits)``.

    ``kernel_std`` sets the kernels' initial N(0, sd^2) distribution:

    - a number: dense1 only, the other layers keep Keras defaults (the original experiment);
    - a sequence with one entry per dense layer (``len(widths) + 1``), ``None`` for a Keras default;
      ``[sd] * (len(widths) + 1)`` scales every layer.

    Keras' default is Glorot-uniform, U(-l, l) with l = sqrt(6 / (fan_in + fan_out)). Kernels are
    drawn by numpy from ``(seed, layer number)``, so the same seed gives the same network in
    float32 and float64 (``dtype``). Biases start at zero. ``dropout`` inserts inverted dropout
    with that rate after each hidden activation (inactive unless the model is called with
    ``training=True``). Layers are named ``dense1``, ``dense2``, ...

    >>> model = mlp(kernel_std=0.01, seed=0)
    >>> [layer.name for layer in model.layers]
    ['flatten', 'dense1', 'dense2', 'dense3']
    >>> model.count_params()
    24790
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
    if kernel_std is None or _is_number(kernel_std):
        stds = [kernel_std] + [None] * (n_dense - 1)
    else:
        stds = list(kernel_std)
        if len(stds) != n_dense:
            raise ValueError(
                f"kernel_std needs one entry per dense layer ({n_dense} for widths {widths}), "
                f"got {len(stds)}"
            )
    for k, sd in enumerate(stds, start=1):
        _check_std(sd, f"kernel_std of dense{k}")

    fans = [int(np.prod(input_shape)), *widths, int(num_classes)]

    def kernel_init(k, sd):
        # Drawn by numpy from (seed, k), so a float32 and a float64 model share their weights.
        rng = np.random.default_rng([seed, k])
        fan_in, fan_out = fans[k - 1], fans[k]
        if sd is None:  # Keras' default, Glorot-uniform
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            values = rng.uniform(-limit, limit, (fan_in, fan_out))
        else:
            values = rng.normal(0.0, float(sd), (fan_in, fan_out))
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
                kernel_initializer=kernel_init(k, stds[k - 1]),
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
            kernel_initializer=kernel_init(n_dense, stds[-1]),
            name=f"dense{n_dense}",
            dtype=dtype,
        )
    )
    return keras.Sequential(layers, name="mlp")


def dense_layers(model) -> list:
    """The model's ``Dense`` layers in order (dense1, dense2, ...)."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def get_dense(model, layer):
    """Resolve ``layer`` (a name such as ``"dense1"``, an index into :func:`dense_layers` or the
    layer itself) to ``(index, layer)``."""
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
