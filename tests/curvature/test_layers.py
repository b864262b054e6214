"""Tests of hessinit.curvature.layers: what the curvature code reads off a Keras model, and the
fixed dropout masks (their distribution against the keep probability they promise)."""

import keras
import numpy as np
import pytest

from hessinit.curvature import dropout_masks, full_hessian, layer_curvature, layer_hessian_norms
from hessinit.curvature.layers import dense_stack
from hessinit.nn import mlp


def test_dense_stack_reads_kernels_biases_activations_and_dropout_rates():
    model = mlp(input_shape=(3,), widths=(4, 2), activation="swish", dropout=0.25, seed=0)
    stack = dense_stack(model)
    assert [(tuple(w.shape), tuple(b.shape), act, rate) for w, b, act, rate in stack] == [
        ((3, 4), (4,), "silu", 0.25),
        ((4, 2), (2,), "silu", 0.25),
        ((2, 10), (10,), "linear", 0.0),
    ]


def test_consecutive_dropouts_multiply_keep_probabilities_and_no_bias_reads_zero():
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, activation="tanh", use_bias=False),
            keras.layers.Dropout(0.5),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(2),
        ]
    )
    stack = dense_stack(model)
    assert stack[0][3] == pytest.approx(1 - 0.5 * 0.8)
    np.testing.assert_array_equal(stack[0][1], np.zeros(4))
    masks = dropout_masks(model, 20_000, seed=1)
    assert len(masks) == 1 and masks[0].shape == (20_000, 4)
    q = 0.5 * 0.8
    np.testing.assert_array_equal(np.unique(masks[0]), [0.0, 1 / q])
    # i.i.d. Bernoulli(q) / q: mean 1, keep fraction q within 5 standard errors
    keep = (masks[0] > 0).mean()
    assert abs(keep - q) < 5 * np.sqrt(q * (1 - q) / masks[0].size)


def test_dropout_masks_are_ones_without_dropout_and_reproducible():
    model = mlp(input_shape=(3,), widths=(4, 2), seed=0)
    masks = dropout_masks(model, 5)
    assert [m.shape for m in masks] == [(5, 4), (5, 2)]
    assert all(np.all(m == 1.0) and m.dtype == np.float64 for m in masks)
    drop = mlp(input_shape=(3,), widths=(4, 2), dropout=0.5, seed=0)
    a, b, c = (dropout_masks(drop, 5, seed=s) for s in (3, 3, 4))
    for ma, mb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ma, mb)
    assert not all(np.array_equal(ma, mc) for ma, mc in zip(a, c, strict=True))


def test_unsupported_layer_is_refused():
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization()]
    )
    x, y = np.ones((2, 3), np.float32), [0, 1]
    for call in (
        lambda: layer_curvature(model, 0, x, y),
        lambda: dropout_masks(model, 2),
    ):
        with pytest.raises(TypeError, match="BatchNormalization.*Flatten, Dense and Dropout"):
            call()
    # the per-tensor code has its own list: outside it, columns refuse naming the layer, and
    # the default route falls back to autodiff columns of the model's own call
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, name="d"), keras.layers.LayerNormalization()]
    )
    with pytest.raises(TypeError, match="LayerNormalization.*is not one of.*Conv2D"):
        layer_hessian_norms(model, "d", x, y, method="columns")
    n = layer_hessian_norms(model, "d", x, y)
    ref = full_hessian(model, x, y, layer=model.get_layer("d").kernel)
    assert n.method == "autodiff" and n.H == pytest.approx(np.linalg.norm(ref), rel=1e-4)


def test_only_retracing_warnings_of_tensorflow_are_dropped():
    import logging

    import hessinit.curvature  # noqa: F401  (installs the filter)

    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    logger = logging.getLogger("tensorflow")
    handler = Keep()
    logger.addHandler(handler)
    try:
        logger.warning("5 out of the last 5 calls to <f> triggered tf.function retracing. ...")
        logger.warning("something else went wrong")
    finally:
        logger.removeHandler(handler)
    assert seen == ["something else went wrong"]
