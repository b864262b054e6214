"""The CNN chapter's measurements against Hessians materialized by autodiff on tiny shapes."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from scipy import stats as st

from hessinit.curvature import full_hessian
from hessinit.study import claims, cnn

SHAPE = dict(channels=(2, 2), dtype="float64")


def _data(n=5):
    rng = np.random.default_rng(1)
    return rng.random((n, 6, 6, 1)), np.arange(n) % 10


def _materialized(model, layer, x, y):
    """||H||_F and ||G||_F of one kernel from full autodiff Hessian and Jacobians."""
    kernel = model.get_layer(layer).kernel
    x = tf.constant(x)
    onehot = tf.one_hot(y, 10, dtype=tf.float64)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            z = model(x)
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(onehot, z))
        grad = inner.gradient(loss, kernel)
    P = int(np.prod(kernel.shape))
    H = tf.reshape(outer.jacobian(grad, kernel), (P, P)).numpy()
    with tf.GradientTape() as tape:
        z = model(x)
    J = tf.reshape(tape.jacobian(z, kernel), (len(y), 10, P)).numpy()
    p = tf.nn.softmax(z).numpy()
    G = sum(J[i].T @ (np.diag(p[i]) - np.outer(p[i], p[i])) @ J[i] for i in range(len(y)))
    return np.linalg.norm(H), np.linalg.norm(G / len(y)), np.linalg.norm(H - G / len(y))


def test_relu_cnn_has_r_zero_and_exact_h():
    x, y = _data()
    out = cnn.kernel_norms(x, y, ["cnn relu"], ["he"], [0], **SHAPE)
    model = cnn.build("cnn relu", "he", 0, input_shape=(6, 6, 1), **SHAPE)
    for _, row in out.iterrows():
        h, g, r = _materialized(model, row["tensor"], x, y)
        assert r <= 1e-10 * h
        assert row["R"] == 0.0
        np.testing.assert_allclose(row["H"], h, rtol=1e-8)


def test_tanh_cnn_estimates_match_materialized():
    x, y = _data()
    out = cnn.kernel_norms(x, y, ["cnn tanh"], ["glorot"], [0], probes=400, **SHAPE)
    model = cnn.build("cnn tanh", "glorot", 0, input_shape=(6, 6, 1), **SHAPE)
    row = out[out["tensor"] == "conv2"].iloc[0]
    assert row["method"] == "hutchinson"
    h, g, r = _materialized(model, "conv2", x, y)
    assert r > 0.01 * h  # tanh: R is not structurally zero
    np.testing.assert_allclose([row["H"], row["G"], row["R"]], [h, g, r], rtol=0.15)


def test_worst_intervals_is_student_t_over_worst_tensor():
    frame = pd.DataFrame({"network": "n", "init": "he", "seed": [0, 0, 1, 1, 2, 2],
                          "tensor": ["a", "b"] * 3, "method": "columns",
                          "R_over_H": [0.1, 0.3, 0.5, 0.2, 0.4, np.nan],
                          "G_over_H": 1.0})  # fmt: skip
    row = cnn.worst_intervals(frame).iloc[0]
    worst = np.array([0.3, 0.5, 0.4])
    half = st.t.ppf(0.975, 2) * worst.std(ddof=1) / np.sqrt(3)
    np.testing.assert_allclose([row["low"], row["high"]], [0.4 - half, 0.4 + half])
    assert row["exact"] and row["seeds"] == 3


def test_cnn_rows_mark_structural_zero_and_untested_batchnorm():
    summary = pd.DataFrame({"network": ["cnn relu", "resnet"], "init": "he", "R_over_H": 0.0,
                            "low": 0.0, "high": 0.0, "G_over_H": 1.0, "seeds": 3,
                            "exact": True})  # fmt: skip
    rows = claims.cnn_rows(summary, op="<", threshold=0.1, setting="tiny")
    assert rows["verdict"].tolist()[0] == claims.HOLDS
    assert "R = 0 by structure" in rows["setting"][0]
    assert np.isnan(rows["low"][0])
    assert rows["verdict"][1].startswith(claims.NOT_TESTED)


def test_build_rejects_unknown_network():
    with pytest.raises(ValueError, match="unknown network"):
        cnn.build("vgg", "he", 0)


def test_lambda_max_matches_eigvalsh_of_the_full_hessian():
    x, y = _data()
    out = cnn.lambda_max(x, y, ["cnn tanh", "resnet bn"], ["glorot"], **SHAPE)
    assert out["network"].tolist() == ["cnn tanh"]
    model = cnn.build("cnn tanh", "glorot", 0, input_shape=(6, 6, 1), **SHAPE)
    top = np.linalg.eigvalsh(full_hessian(model, x, y))[-1]
    np.testing.assert_allclose(out["lambda_max"][0], top, rtol=1e-6)
