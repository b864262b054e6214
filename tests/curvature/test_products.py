"""Tests of hessinit.curvature.products: H v, G v and R v against columns of the full autodiff
matrices and central finite differences of the gradient; the HVP helper on a closed form."""

import numpy as np
import tensorflow as tf
from curvature_cases import data, flat, full_all, small, small_cached

from hessinit.curvature import curvature_vp, gnvp, hvp, hvp_graph, num_params, products
from hessinit.nn import mlp


def test_hvp_gnvp_and_curvature_vp_match_full_matrix_columns():
    model, (x, y) = small_cached("tanh"), data()
    Hf, Gf = full_all("tanh")
    variables = model.trainable_variables
    sizes = [int(np.prod(v.shape)) for v in variables]
    assert Hf.shape == (sum(sizes),) * 2
    starts = np.cumsum([0] + sizes)
    # first and last entry of every variable: kernels and biases of all three layers
    ks = sorted({int(s) for s in starts[:-1]} | {int(s) - 1 for s in starts[1:]})
    for k in ks:
        e = np.zeros(Hf.shape[0])
        e[k] = 1.0
        vec = products.unflatten(e, variables)
        hv = flat(hvp(model, x, y, vec))
        gv = flat(gnvp(model, x, y, vec))
        rv = flat(curvature_vp(model, x, y, vec))
        np.testing.assert_allclose(hv, Hf[:, k], rtol=0, atol=1e-6 * np.abs(Hf[:, k]).max())
        np.testing.assert_allclose(gv, Gf[:, k], rtol=0, atol=1e-6 * np.abs(Gf[:, k]).max())
        R = Hf[:, k] - Gf[:, k]
        np.testing.assert_allclose(rv, R, rtol=0, atol=1e-6 * np.abs(Hf[:, k]).max())


def test_hvp_random_direction_matches_finite_difference():
    """H v by central differences of the gradient along a random v, all weights at once."""
    model, (x, y) = small("tanh"), data()
    variables = model.trainable_variables
    rng = np.random.default_rng(9)
    v = [rng.standard_normal(var.shape) for var in variables]
    w0 = [var.numpy() for var in variables]

    def grad(t):
        for var, w, d in zip(variables, w0, v, strict=True):
            var.assign(w + t * d)
        with tf.GradientTape() as tape:
            logits = model(x, training=False)
            loss = tf.reduce_mean(
                tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
            )
        return flat(tape.gradient(loss, variables))

    h = 1e-5
    fd = (grad(h) - grad(-h)) / (2 * h)
    for var, w in zip(variables, w0, strict=True):
        var.assign(w)
    hv = flat(hvp(model, x, y, v))
    np.testing.assert_allclose(hv, fd, atol=1e-7 * np.abs(fd).max())


def test_hvp_graph_on_a_closed_form_in_and_out_of_tf_function():
    """f(u, w) = sum(u^2 w) + sin(w_0): H has the blocks [[2 diag(w), 2 diag(u)], [2 diag(u),
    -sin(w_0) e_0 e_0^T]]."""
    u = tf.Variable([1.0, -2.0], dtype=tf.float64)
    w = tf.Variable([0.5, 3.0], dtype=tf.float64)

    def loss():
        return tf.reduce_sum(u * u * w) + tf.sin(w[0])

    vu, vw = np.array([0.3, -1.1]), np.array([2.0, 0.7])
    H = np.block(
        [
            [np.diag(2 * w.numpy()), np.diag(2 * u.numpy())],
            [np.diag(2 * u.numpy()), np.diag([-np.sin(0.5), 0.0])],
        ]
    )
    expected = H @ np.r_[vu, vw]
    vectors = [tf.constant(vu), tf.constant(vw)]
    eager = flat(hvp_graph([u, w], loss, vectors))
    graph = flat(tf.function(lambda: hvp_graph([u, w], loss, vectors))())
    np.testing.assert_allclose(eager, expected, rtol=1e-14)
    np.testing.assert_allclose(graph, expected, rtol=1e-14)


def test_num_params_and_flat_round_trip():
    model = mlp(input_shape=(4, 3), widths=(6, 5), num_classes=5)
    variables = model.trainable_variables
    assert num_params(variables) == model.count_params() == 12 * 6 + 6 + 6 * 5 + 5 + 5 * 5 + 5
    assert num_params([np.zeros((2, 3)), np.zeros(())]) == 7
    assert num_params([]) == 0
    vec = np.arange(num_params(variables), dtype=np.float64)
    parts = products.unflatten(vec, variables)
    assert [p.shape for p in parts] == [tuple(v.shape) for v in variables]
    np.testing.assert_array_equal(products.flatten(parts), vec)
