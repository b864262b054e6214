"""Tests of hessinit.curvature against independent references: full nested autodiff, central finite
differences of the gradient, brute-force numpy Kronecker sums and closed forms."""

import doctest
import functools
import math

import numpy as np
import pytest
import tensorflow as tf

from hessinit.curvature import (
    full_gauss_newton,
    full_hessian,
    gnvp,
    hessian_norms_all_layers,
    hutchinson_norm,
    hvp,
    input_gram,
    kron_norms,
    kronecker,
    layer_curvature,
    layer_hessian_norms,
    products,
)
from hessinit.nn import dense_layers, mlp

B, SHAPE, K = 16, (4, 3), 5
LAYERS = ("dense1", "dense2", "dense3")


@functools.cache
def _data():
    rng = np.random.default_rng(0)
    # float32-representable inputs, so that float32 and float64 models see the same images
    x = rng.standard_normal((B, *SHAPE)).astype(np.float32).astype(np.float64)
    y = rng.integers(0, K, B)
    return x, y


def _small(activation, dtype="float64", seed=1):
    """A 12-6-5-5 network, every kernel N(0, 1), small random biases."""
    model = mlp(
        input_shape=SHAPE,
        num_classes=K,
        widths=(6, 5),
        activation=activation,
        kernel_std=[1.0, 1.0, 1.0],
        seed=seed,
        dtype=dtype,
    )
    rng = np.random.default_rng(seed + 100)
    for layer in dense_layers(model):
        layer.bias.assign(rng.normal(0, 0.3, layer.bias.shape).astype(dtype))
    return model


@functools.cache
def _small_cached(activation, dtype="float64"):
    return _small(activation, dtype)


@functools.cache
def _full_all(activation="tanh"):
    """Full Hessian and Gauss-Newton matrix over all trainable weights (143 x 143)."""
    model, (x, y) = _small_cached(activation), _data()
    return full_hessian(model, x, y), full_gauss_newton(model, x, y)


def _assert_norms_match(n, H, G, rtol, gr_relative=True):
    R = H - G
    scale = np.linalg.norm(H) ** 2
    assert n.H == pytest.approx(np.linalg.norm(H), rel=rtol)
    assert n.G == pytest.approx(np.linalg.norm(G), rel=rtol)
    if np.linalg.norm(R) > 1e-8 * np.linalg.norm(H):
        assert n.R == pytest.approx(np.linalg.norm(R), rel=rtol)
    else:  # ReLU-like: the reference R is round-off, ours must be at most as large
        assert n.R <= 1e-8 * n.H
    gr = float(np.sum(G * R))
    # <G, R> can be a small difference of large terms (float32 references): then measure its
    # error on the Cauchy-Schwarz scale ||G|| ||R||
    cs = np.linalg.norm(G) * np.linalg.norm(R)
    if gr_relative and abs(gr) > 1e-6 * cs:
        assert n.GR == pytest.approx(gr, rel=rtol)
    assert abs(n.GR - gr) <= rtol * max(cs, 1e-6 * scale)


# --------------------------------------------------------------------------------------------
# Layer norms against full autodiff
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "tanh", "softplus"])
def test_layer_norms_match_full_autodiff_every_layer(activation):
    model, (x, y) = _small_cached(activation), _data()
    for name in LAYERS:
        n = layer_hessian_norms(model, name, x, y)
        H = full_hessian(model, x, y, layer=name)
        G = full_gauss_newton(model, x, y, layer=name)
        assert H.shape == G.shape == (np.prod(model.get_layer(name).kernel.shape),) * 2
        _assert_norms_match(n, H, G, rtol=1e-5)


@pytest.mark.parametrize("activation", ["sigmoid", "gelu"])
def test_layer_norms_match_full_autodiff_other_smooth_activations(activation):
    model, (x, y) = _small_cached(activation), _data()
    n = layer_hessian_norms(model, "dense1", x, y)
    H = full_hessian(model, x, y, layer="dense1")
    G = full_gauss_newton(model, x, y, layer="dense1")
    _assert_norms_match(n, H, G, rtol=1e-5)
    assert n.R > 1e-3 * n.H


def test_layer_norms_float32_model():
    model, (x, y) = _small("tanh", dtype="float32"), _data()
    x32 = x.astype(np.float32)
    for name in ("dense1", "dense2"):
        n = layer_hessian_norms(model, name, x32, y)
        H = full_hessian(model, x32, y, layer=name)
        G = full_gauss_newton(model, x32, y, layer=name)
        _assert_norms_match(n, H, G, rtol=1e-4, gr_relative=False)
        # and the same weights in float64
        m64 = _small("tanh", dtype="float64")
        m64.set_weights([w.astype(np.float64) for w in model.get_weights()])
        n64 = layer_hessian_norms(m64, name, x, y)
        assert n.H == pytest.approx(n64.H, rel=1e-10)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_per_sample_blocks_rebuild_the_full_layer_hessian_entrywise(activation):
    """(1/B) sum_i (x_i x_i^T) kron A_i and ... kron R_i equal full G and H - G entry by entry."""
    model, (x, y) = _small_cached(activation), _data()
    for name in ("dense1", "dense2"):
        X, A, R = layer_curvature(model, name, x, y)
        assert X.dtype == A.dtype == R.dtype == np.float64
        G = sum(np.kron(np.outer(xi, xi), Ai) for xi, Ai in zip(X, A, strict=True)) / B
        Rm = sum(np.kron(np.outer(xi, xi), Ri) for xi, Ri in zip(X, R, strict=True)) / B
        H = full_hessian(model, x, y, layer=name)
        scale = np.abs(H).max()
        np.testing.assert_allclose(G, full_gauss_newton(model, x, y, layer=name), atol=1e-9 * scale)
        np.testing.assert_allclose(G + Rm, H, atol=1e-9 * scale)
        np.testing.assert_allclose(A, np.swapaxes(A, 1, 2), atol=1e-12 * np.abs(A).max())


def test_finite_differences_of_the_gradient():
    """Central differences of the autodiff gradient (float64) give dense1's whole layer Hessian
    (72 x 72): an independent check of full_hessian and of layer_hessian_norms."""
    model, (x, y) = _small("tanh"), _data()
    kernel = model.get_layer("dense1").kernel
    w0 = kernel.numpy()

    @tf.function
    def grad():
        with tf.GradientTape() as tape:
            logits = model(x, training=False)
            loss = tf.reduce_mean(
                tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
            )
        return tape.gradient(loss, kernel)

    P, h = w0.size, 1e-5
    fd = np.empty((P, P))
    for k in range(P):
        e = np.zeros(P)
        e[k] = h
        kernel.assign(w0 + e.reshape(w0.shape))
        gp = grad().numpy().ravel()
        kernel.assign(w0 - e.reshape(w0.shape))
        gm = grad().numpy().ravel()
        fd[:, k] = (gp - gm) / (2 * h)
    kernel.assign(w0)
    H = full_hessian(model, x, y, layer="dense1")
    np.testing.assert_allclose(fd, H, atol=1e-7 * np.abs(H).max())
    n = layer_hessian_norms(model, "dense1", x, y)
    assert n.H == pytest.approx(np.linalg.norm(fd), rel=1e-7)


def test_layer_given_by_name_index_or_object():
    model, (x, y) = _small_cached("tanh"), _data()
    a = layer_hessian_norms(model, "dense2", x, y)
    assert layer_hessian_norms(model, 1, x, y) == a
    assert layer_hessian_norms(model, model.get_layer("dense2"), x, y) == a
    assert hessian_norms_all_layers(model, x, y)["dense2"] == a
    assert list(hessian_norms_all_layers(model, x, y, layers=["dense3"])) == ["dense3"]


# --------------------------------------------------------------------------------------------
# The chain-rule split
# --------------------------------------------------------------------------------------------


def test_relu_curvature_term_vanishes_on_every_layer():
    model, (x, y) = _small_cached("relu"), _data()
    for name in LAYERS:
        n = layer_hessian_norms(model, name, x, y)
        assert n.H > 0
        assert n.R <= 1e-12 * n.H
        assert abs(n.GR) <= 1e-12 * n.H**2
        assert n.G == pytest.approx(n.H, rel=1e-12)
        # independently: the full autodiff Hessian equals the Gauss-Newton matrix
        H = full_hessian(model, x, y, layer=name)
        G = full_gauss_newton(model, x, y, layer=name)
        assert np.linalg.norm(H - G) <= 1e-12 * np.linalg.norm(H)


def test_tanh_curvature_term_is_substantial_on_dense1():
    model, (x, y) = _small_cached("tanh"), _data()
    n = layer_hessian_norms(model, "dense1", x, y)
    assert n.R / n.H > 0.05
    assert n.H**2 == pytest.approx(n.G**2 + 2 * n.GR + n.R**2, rel=1e-10)
    # the last layer feeds the loss linearly: its R is zero for any activation
    assert layer_hessian_norms(model, "dense3", x, y).R <= 1e-12


# --------------------------------------------------------------------------------------------
# kron_norms: both code paths and chunking against a brute-force Kronecker sum
# --------------------------------------------------------------------------------------------


def _random_blocks(b, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((b, n_in))
    A = rng.standard_normal((b, n_out, n_out))
    A = A @ np.swapaxes(A, 1, 2)  # PSD, as Gauss-Newton blocks are
    R = rng.standard_normal((b, n_out, n_out))
    R = R + np.swapaxes(R, 1, 2)
    return X, A, R


def _brute(X, A, R):
    b = len(X)
    G = sum(np.kron(np.outer(x, x), a) for x, a in zip(X, A, strict=True)) / b
    Rm = sum(np.kron(np.outer(x, x), r) for x, r in zip(X, R, strict=True)) / b
    return np.linalg.norm(G + Rm), np.linalg.norm(G), np.linalg.norm(Rm), float(np.sum(G * Rm))


def _spy_realignment(monkeypatch, n_in):
    """Record whether kron_norms packs per-sample (n_in x n_in) matrices x_i x_i^T, which only
    the realignment path does."""
    seen = []
    original = kronecker._sym_pack

    def spy(M):
        seen.append(M.shape[-1] == n_in and M.ndim == 3)
        return original(M)

    monkeypatch.setattr(kronecker, "_sym_pack", spy)
    return seen


# Both paths accumulate in float64 (a float32 x_i . x_j, tried once, cost ~1e-7 and <G, R>
# precision on mixed-sign inputs: see test_gr_relative_precision_mixed_sign_inputs).
DOUBLE_SUM_RTOL = 1e-9


@pytest.mark.parametrize(
    "b, n_in, n_out, realign",
    [
        (6, 20, 3, False),  # wide input, few samples: double sum
        (40, 2, 3, True),  # narrow layer, many samples: realignment
        (9, 1, 1, True),
    ],
)
def test_kron_norms_both_paths_match_brute_force(monkeypatch, b, n_in, n_out, realign):
    X, A, R = _random_blocks(b, n_in, n_out, seed=n_in)
    ref = _brute(X, A, R)
    seen = _spy_realignment(monkeypatch, n_in)
    n = kron_norms(X, A, R)
    if n_in != n_out:
        assert any(seen) == realign
    rtol = DOUBLE_SUM_RTOL
    np.testing.assert_allclose([n.H, n.G, n.R], ref[:3], rtol=rtol)
    assert abs(n.GR - ref[3]) <= rtol * ref[1] * ref[2]
    # without curvature
    n0 = kron_norms(X, A, np.zeros_like(R))
    assert (n0.R, n0.GR) == (0.0, 0.0)
    assert n0.H == pytest.approx(ref[1], rel=rtol)


@pytest.mark.parametrize("chunk", [1, 2, 5, 7])
def test_kron_norms_chunking(chunk):
    X, A, R = _random_blocks(11, 20, 3, seed=3)  # double-sum path
    whole = kron_norms(X, A, R, chunk=10_000)
    part = kron_norms(X, A, R, chunk=chunk)
    ref = _brute(X, A, R)
    for n in (whole, part):
        np.testing.assert_allclose([n.H, n.G, n.R], ref[:3], rtol=DOUBLE_SUM_RTOL)
        assert abs(n.GR - ref[3]) <= DOUBLE_SUM_RTOL * ref[1] * ref[2]


def test_kron_norms_closed_form_example():
    # H = ([[1, 0], [0, 0]] + [[1, 1], [1, 1]]) / 2 = [[1, .5], [.5, .5]], ||H||_F = sqrt(1.75)
    X = np.array([[1.0, 0.0], [1.0, 1.0]])
    n = kron_norms(X, np.ones((2, 1, 1)), np.zeros((2, 1, 1)))
    assert n.H == pytest.approx(math.sqrt(1.75), rel=1e-14)
    assert n.G == pytest.approx(math.sqrt(1.75), rel=1e-14)


def test_kron_norms_survive_extreme_scales():
    """Norms are homogeneous: ||H(sX, tA, tR)|| = s^2 t ||H(X, A, R)||; entries ~1e-250 square
    below float64's range, so this needs the internal rescaling."""
    X, A, R = _random_blocks(8, 4, 3, seed=5)
    ref = kron_norms(X, A, R)
    for s, t in [(1e-80, 1e-100), (1e60, 1e-150), (1e-5, 1e-12)]:
        n = kron_norms(s * X, t * A, t * R)
        k = s * s * t
        np.testing.assert_allclose(
            [n.H, n.G, n.R, n.GR], [k * ref.H, k * ref.G, k * ref.R, k * k * ref.GR], rtol=1e-10
        )


@pytest.mark.parametrize("s, t", [(1.0, 1.0), (1e-30, 1e-40)])
def test_kron_norms_float32_products_stay_within_1e_5(s, t):
    """precision="float32" takes the double sum's two Gram products in float32: the norms move
    by float32 round-off, well inside 1e-5, also where float32 alone would underflow."""
    X, A, R = _random_blocks(40, 50, 4, seed=7)  # double-sum path
    ref = _brute(X, A, R)
    k = s * s * t
    n = kron_norms(s * X, t * A, t * R, chunk=16, precision="float32")
    got = np.array([n.H, n.G, n.R]) / k
    np.testing.assert_allclose(got, ref[:3], rtol=1e-5)
    assert np.abs(got / np.array(ref[:3]) - 1).max() > 1e-12  # float32 did round
    assert abs(n.GR / k**2 - ref[3]) <= 1e-5 * ref[1] * ref[2]


def test_precision_must_be_float64_or_float32():
    X, A, R = _random_blocks(6, 20, 3, seed=1)
    with pytest.raises(ValueError, match="float64"):
        kron_norms(X, A, R, precision="float16")
    with pytest.raises(ValueError, match="float32"):
        layer_hessian_norms(_small_cached("relu"), "dense1", *_data(), precision="half")


def test_layer_norms_float32_products_match_float64_on_every_layer():
    model, (x, y) = _small_cached("tanh"), _data()  # R != 0: all three sums
    for name in LAYERS:
        a = layer_hessian_norms(model, name, x, y)
        b = layer_hessian_norms(model, name, x, y, precision="float32")
        np.testing.assert_allclose([b.H, b.G, b.R], [a.H, a.G, a.R], rtol=1e-5)


def test_input_gram_is_the_squared_scaled_gram_and_changes_nothing():
    x, y = _data()
    X = np.asarray(x, np.float64).reshape(len(x), -1)
    s = np.abs(X).max()
    K, sx = input_gram(x)
    assert sx == s
    ref = np.array([[(xi @ xj / s**2) ** 2 for xj in X] for xi in X])
    np.testing.assert_allclose(K, ref, rtol=1e-12)
    model = _small_cached("tanh")
    with_gram = hessian_norms_all_layers(model, x, y, input_gram=(K, sx))
    without = hessian_norms_all_layers(model, x, y)
    for name in LAYERS:
        np.testing.assert_allclose(
            [with_gram[name].H, with_gram[name].GR],
            [without[name].H, without[name].GR],
            rtol=1e-12,
        )


def test_layer_norms_chunk_argument():
    model, (x, y) = _small_cached("tanh"), _data()
    for name in LAYERS:
        a = layer_hessian_norms(model, name, x, y, chunk=B)
        b = layer_hessian_norms(model, name, x, y, chunk=3)
        np.testing.assert_allclose([a.H, a.G, a.R], [b.H, b.G, b.R], rtol=DOUBLE_SUM_RTOL)
        assert abs(a.GR - b.GR) <= DOUBLE_SUM_RTOL * a.G * a.R


# --------------------------------------------------------------------------------------------
# Float64 accumulation and large batches
# --------------------------------------------------------------------------------------------


def test_tiny_std_every_layer_float32_model_is_not_flushed():
    rng = np.random.default_rng(3)
    x, y = rng.random((64, 28, 28), np.float32), rng.integers(0, 10, 64)
    m32 = mlp(kernel_std=[1e-5] * 3, seed=3)
    m64 = mlp(kernel_std=[1e-5] * 3, seed=3, dtype="float64")
    # the same network in float64 (the same seed draws other weights per dtype, see test_models)
    m64.set_weights([w.astype(np.float64) for w in m32.get_weights()])
    for name in ("dense2", "dense3"):
        n32 = layer_hessian_norms(m32, name, x, y)
        n64 = layer_hessian_norms(m64, name, x, y)
        assert 0 < n32.H < 1e-10  # tiny, but not zero
        assert n32.H == pytest.approx(n64.H, rel=1e-5)
        assert n32.G == pytest.approx(n64.G, rel=1e-5)
        # independent reference: the full float64 autodiff Hessian of the layer
        ref = np.linalg.norm(full_hessian(m64, x, y, layer=name))
        assert n32.H == pytest.approx(ref, rel=1e-5)
    n1 = layer_hessian_norms(m32, "dense1", x, y)
    assert n1.H > 0 and n1.H == pytest.approx(layer_hessian_norms(m64, "dense1", x, y).H, rel=1e-5)


def test_batch_of_4096_on_default_mlp():
    rng = np.random.default_rng(4)
    x, y = rng.random((4096, 28, 28), np.float32), rng.integers(0, 10, 4096)
    model = mlp(kernel_std=0.01, seed=0)
    X, A, R = layer_curvature(model, "dense1", x, y)
    assert X.shape == (4096, 784) and A.shape == R.shape == (4096, 30, 30)
    big = kron_norms(X, A, R)
    small = kron_norms(X, A, R, chunk=700)
    np.testing.assert_allclose([big.H, big.G], [small.H, small.G], rtol=DOUBLE_SUM_RTOL)
    assert big.H > 0 and big.R == 0.0  # ReLU
    # consistent with the first 64 images' exact reference (the mean over more images of the
    # same distribution moves the norm by tens of percent at most)
    assert 0.3 < big.H / layer_hessian_norms(model, "dense1", x[:64], y[:64]).H < 3


# --------------------------------------------------------------------------------------------
# Full references: size guard
# --------------------------------------------------------------------------------------------


def test_full_matrices_refuse_large_sizes():
    model = mlp(kernel_std=0.01, seed=0)  # 24,790 weights
    x, y = np.zeros((2, 28, 28), np.float32), np.zeros(2, int)
    for fn in (full_hessian, full_gauss_newton):
        with pytest.raises(ValueError, match=r"max_entries.*layer_hessian_norms.*hvp"):
            fn(model, x, y)
        with pytest.raises(ValueError, match="23520 x 23520"):
            fn(model, x, y, layer="dense1")
    small = _small_cached("tanh")
    sx, sy = _data()
    with pytest.raises(ValueError, match="hutchinson_norm"):
        full_hessian(small, sx, sy, max_entries=143 * 143 - 1)
    assert full_hessian(small, sx, sy, layer="dense3", max_entries=25 * 25).shape == (25, 25)


# --------------------------------------------------------------------------------------------
# Matrix-free products
# --------------------------------------------------------------------------------------------


def test_hvp_and_gnvp_match_full_matrix_columns():
    model, (x, y) = _small_cached("tanh"), _data()
    Hf, Gf = _full_all("tanh")
    variables = model.trainable_variables
    sizes = [int(np.prod(v.shape)) for v in variables]
    assert Hf.shape == (sum(sizes),) * 2
    starts = np.cumsum([0] + sizes)
    # first and last entry of every variable: kernels and biases of all three layers
    ks = sorted({int(s) for s in starts[:-1]} | {int(s) - 1 for s in starts[1:]})
    for k in ks:
        e = np.zeros(Hf.shape[0])
        e[k] = 1.0
        vec = products._unflat(e, variables)
        hv = np.concatenate([np.asarray(t).ravel() for t in hvp(model, x, y, vec)])
        gv = np.concatenate([np.asarray(t).ravel() for t in gnvp(model, x, y, vec)])
        np.testing.assert_allclose(hv, Hf[:, k], rtol=0, atol=1e-6 * np.abs(Hf[:, k]).max())
        np.testing.assert_allclose(gv, Gf[:, k], rtol=0, atol=1e-6 * np.abs(Gf[:, k]).max())


def test_full_references_are_symmetric_and_gauss_newton_is_psd():
    Hf, Gf = _full_all("tanh")
    np.testing.assert_allclose(Hf, Hf.T, atol=1e-12 * np.abs(Hf).max())
    np.testing.assert_allclose(Gf, Gf.T, atol=1e-12 * np.abs(Gf).max())
    assert np.linalg.eigvalsh(Gf).min() > -1e-10 * np.abs(Gf).max()
    assert np.linalg.eigvalsh(Hf).min() < -1e-3 * np.abs(Hf).max()  # H is indefinite here


def test_hvp_random_direction_matches_finite_difference():
    """H v by central differences of the gradient along a random v, all weights at once."""
    model, (x, y) = _small("tanh"), _data()
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
        return np.concatenate([g.numpy().ravel() for g in tape.gradient(loss, variables)])

    h = 1e-5
    fd = (grad(h) - grad(-h)) / (2 * h)
    for var, w in zip(variables, w0, strict=True):
        var.assign(w)
    hv = np.concatenate([np.asarray(t).ravel() for t in hvp(model, x, y, v)])
    np.testing.assert_allclose(hv, fd, atol=1e-7 * np.abs(fd).max())


# --------------------------------------------------------------------------------------------
# Hutchinson
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("product", ["hessian", "gauss_newton"])
def test_hutchinson_interval_covers_exact_norm(product):
    model, (x, y) = _small_cached("tanh"), _data()
    Hf, Gf = _full_all("tanh")
    exact = np.linalg.norm(Hf if product == "hessian" else Gf)
    est = hutchinson_norm(model, x, y, probes=200, product=product, seed=0)
    assert est.low <= exact <= est.high
    assert est.low < est.value < est.high
    assert (est.probes, est.level) == (200, 0.95)
    assert abs(est.value / exact - 1) < 0.1
    defl = hutchinson_norm(model, x, y, probes=200, product=product, deflate=10, seed=0)
    assert defl.low <= exact <= defl.high
    assert abs(defl.value / exact - 1) < 0.01


def test_hutchinson_interval_shrinks_with_probes_and_deflation():
    model, (x, y) = _small_cached("tanh"), _data()

    def width(e):
        return e.high - e.low

    few = hutchinson_norm(model, x, y, probes=50, seed=1)
    many = hutchinson_norm(model, x, y, probes=400, seed=1)
    assert width(many) < 0.6 * width(few)  # ~ 1 / sqrt(8)
    deflated = hutchinson_norm(model, x, y, probes=50, deflate=10, seed=1)
    assert width(deflated) < 0.5 * width(few)
    wider = hutchinson_norm(model, x, y, probes=50, seed=1, level=0.99)
    assert wider.low < few.low and wider.high > few.high


def test_hutchinson_coverage_is_roughly_calibrated():
    """Over 20 fixed seeds the 95% interval from 50 probes covers the exact norm most times
    (a normal interval on skewed samples under-covers a little: measured ~85-95%)."""
    model, (x, y) = _small_cached("tanh"), _data()
    exact = np.linalg.norm(_full_all("tanh")[0])
    hits = [hutchinson_norm(model, x, y, probes=50, seed=s) for s in range(20)]
    covered = sum(e.low <= exact <= e.high for e in hits)
    assert covered >= 15
    # and the estimates scatter around the exact value
    assert abs(np.mean([e.value for e in hits]) / exact - 1) < 0.05


def test_hutchinson_bad_arguments():
    model, (x, y) = _small_cached("tanh"), _data()
    with pytest.raises(ValueError, match="product"):
        hutchinson_norm(model, x, y, product="fisher")
    with pytest.raises(ValueError, match="2 probes"):
        hutchinson_norm(model, x, y, probes=1)


# --------------------------------------------------------------------------------------------
# Known bugs and docstring examples
# --------------------------------------------------------------------------------------------


def test_layer_curvature_keeps_float64_inputs():
    model = _small_cached("tanh")
    x = np.random.default_rng(0).standard_normal((B, *SHAPE))  # not float32-representable
    y = _data()[1]
    X, _, _ = layer_curvature(model, "dense1", x, y)
    np.testing.assert_array_equal(X, x.reshape(B, -1))


def test_gr_relative_precision_mixed_sign_inputs():
    # two samples, n_out = 1: G = x1 x1^T / 2, R = x2 x2^T / 2, <G, R> = (x1 . x2)^2 / 4
    x1 = np.ones(50)
    x2 = np.concatenate([np.ones(25), -np.ones(25)])
    x2[0] += 1e-6  # x1 . x2 = 1e-6 exactly in float64; 1 + 1e-6 is not a float32
    X = np.stack([x1, x2])
    A = np.array([1.0, 0.0]).reshape(2, 1, 1)
    R = np.array([0.0, 1.0]).reshape(2, 1, 1)
    n = kron_norms(X, A, R)
    assert n.G == pytest.approx(25.0, rel=1e-12)
    assert n.GR == pytest.approx((x1 @ x2) ** 2 / 4, rel=1e-5)


def _doctest_failures(obj):
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(verbose=False)
    for test in finder.find(obj, globs=vars(kronecker).copy()):
        runner.run(test, out=lambda s: None)
    return runner.summarize(verbose=False)


def test_doctest_layer_hessian_norms():
    result = _doctest_failures(layer_hessian_norms)
    assert result.attempted > 0 and result.failed == 0


def test_doctest_kron_norms():
    result = _doctest_failures(kron_norms)
    assert result.attempted > 0 and result.failed == 0


# Regression: tf.function(reduce_retracing=True) relaxed the weights' shapes after a second model,
# and the per-sample autodiff path then read n_out = None (TypeError in tf.reshape).
def test_layer_norms_non_elementwise_activation_on_several_models():
    rng = np.random.default_rng(0)
    for widths, b in [((6, 5), 8), ((7, 4), 9)]:
        model = mlp(
            input_shape=(3,), widths=widths, activation="softmax", num_classes=4,
            kernel_std=[1.0] * 3, dtype="float64",
        )  # fmt: skip
        x, y = rng.random((b, 3)).astype(np.float32).astype(np.float64), rng.integers(0, 4, b)
        n = layer_hessian_norms(model, "dense1", x, y)
        assert n.H == pytest.approx(np.linalg.norm(full_hessian(model, x, y, "dense1")), rel=1e-6)
