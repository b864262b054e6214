"""Tests of hessinit.curvature.kronecker (exact layer norms) against independent references: full
nested autodiff, central finite differences of the gradient, brute-force numpy Kronecker sums and
closed forms."""

import math

import numpy as np
import pytest
import tensorflow as tf
from curvature_cases import (
    LAYERS,
    SHAPE,
    B,
    assert_norms_match,
    data,
    layer_refs,
    small,
    small_cached,
)

from hessinit.curvature import (
    dropout_masks,
    full_gauss_newton,
    full_hessian,
    hessian_norms_all_layers,
    input_gram,
    kron_norms,
    kronecker,
    layer_curvature,
    layer_hessian_norms,
)
from hessinit.nn import REGISTRY, cross_entropy, dense_layers, mlp

PIECEWISE_LINEAR = [name for name, entry in REGISTRY.items() if entry.piecewise_linear]
SMOOTH = [name for name, entry in REGISTRY.items() if not entry.piecewise_linear]

# --------------------------------------------------------------------------------------------
# Layer norms against full autodiff
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", list(REGISTRY))
def test_layer_norms_match_full_autodiff_every_layer_every_registered_activation(activation):
    """The fast path (backward recursion) of every registry entry against the full autodiff
    Hessian and Gauss-Newton matrix of every layer's kernel."""
    model, (x, y) = small_cached(activation), data()
    norms = hessian_norms_all_layers(model, x, y)
    for name in LAYERS:
        H, G = layer_refs(activation)[name]
        assert H.shape == (np.prod(model.get_layer(name).kernel.shape),) * 2
        assert_norms_match(norms[name], H, G, rtol=1e-10)
        assert layer_hessian_norms(model, name, x, y) == norms[name]
    if activation in SMOOTH:  # f'' != 0: the curvature term is there on dense1
        assert norms["dense1"].R > 1e-3 * norms["dense1"].H


def test_elu_fast_path_matches_full_autodiff():
    """ELU (smooth for a < 0 only, f'' jumps at 0) takes the fast path and agrees with autodiff."""
    model, (x, y) = small_cached("elu"), data()
    assert "elu" in REGISTRY and not REGISTRY["elu"].piecewise_linear
    for name in LAYERS:
        n = layer_hessian_norms(model, name, x, y)
        H, G = layer_refs("elu")[name]
        assert_norms_match(n, H, G, rtol=1e-10)
    assert layer_hessian_norms(model, "dense1", x, y).R > 0


def test_layer_norms_float32_model():
    model, (x, y) = small("tanh", dtype="float32"), data()
    x32 = x.astype(np.float32)
    for name in ("dense1", "dense2"):
        n = layer_hessian_norms(model, name, x32, y)
        H = full_hessian(model, x32, y, layer=name)
        G = full_gauss_newton(model, x32, y, layer=name)
        assert_norms_match(n, H, G, rtol=1e-4, gr_relative=False)
        # and the same weights in float64
        m64 = small("tanh", dtype="float64")
        m64.set_weights([w.astype(np.float64) for w in model.get_weights()])
        n64 = layer_hessian_norms(m64, name, x, y)
        assert n.H == pytest.approx(n64.H, rel=1e-10)


def test_finite_differences_of_the_gradient():
    """Central differences of the autodiff gradient (float64) give dense1's whole layer Hessian
    (72 x 72): an independent check of full_hessian and of layer_hessian_norms."""
    model, (x, y) = small("tanh"), data()
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
    model, (x, y) = small_cached("tanh"), data()
    a = layer_hessian_norms(model, "dense2", x, y)
    assert layer_hessian_norms(model, 1, x, y) == a
    assert layer_hessian_norms(model, model.get_layer("dense2"), x, y) == a
    assert hessian_norms_all_layers(model, x, y)["dense2"] == a
    assert list(hessian_norms_all_layers(model, x, y, layers=["dense3"])) == ["dense3"]


# --------------------------------------------------------------------------------------------
# The chain-rule split
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", PIECEWISE_LINEAR)
def test_piecewise_linear_curvature_term_vanishes_on_every_layer(activation):
    model, (x, y) = small_cached(activation), data()
    for name in LAYERS:
        n = layer_hessian_norms(model, name, x, y)
        assert n.H > 0
        assert n.R == 0.0 and n.GR == 0.0  # the zero-curvature shortcut: exactly zero
        assert n.G == pytest.approx(n.H, rel=1e-12)
        # independently: the full autodiff Hessian equals the Gauss-Newton matrix
        H, G = layer_refs(activation)[name]
        assert np.linalg.norm(H - G) <= 1e-12 * np.linalg.norm(H)


def test_tanh_curvature_term_is_substantial_on_dense1():
    model, (x, y) = small_cached("tanh"), data()
    n = layer_hessian_norms(model, "dense1", x, y)
    assert n.R / n.H > 0.05
    assert n.H**2 == pytest.approx(n.G**2 + 2 * n.GR + n.R**2, rel=1e-10)
    # the last layer feeds the loss linearly: its R is zero for any activation
    assert layer_hessian_norms(model, "dense3", x, y).R <= 1e-12


# --------------------------------------------------------------------------------------------
# Dropout masks: the Hessian of the training-mode network with the masks held fixed
# --------------------------------------------------------------------------------------------


def _masked_references(model, x, y, masks, k):
    """H and G of dense layer k's kernel for h_j = m_j * f(a_j), by nested autodiff (float64)."""
    dense = dense_layers(model)
    weights = [(tf.constant(d.kernel.numpy()), tf.constant(d.bias.numpy())) for d in dense]
    target = tf.Variable(weights[k][0])

    def logits():
        h = tf.reshape(tf.constant(x, tf.float64), [len(x), -1])
        for j, ((w, b), d) in enumerate(zip(weights, dense, strict=True)):
            a = h @ (target if j == k else w) + b
            h = d.activation(a) * masks[j] if j < len(dense) - 1 else a
        return h

    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            loss = tf.reduce_mean(cross_entropy(y, logits()))
        grad = tf.reshape(inner.gradient(loss, target), [-1])
    H = outer.jacobian(grad, target).numpy().reshape(grad.shape[0], -1)
    with tf.GradientTape() as tape:
        z = logits()
    J = tape.jacobian(z, target).numpy().reshape(len(x), z.shape[1], -1)
    p = tf.nn.softmax(z).numpy()
    lam = np.stack([np.diag(q) - np.outer(q, q) for q in p])
    return H, np.einsum("bkm,bkl,bln->mn", J, lam, J) / len(x)


def test_dropout_masks_give_the_masked_network_hessian():
    x, y = data()
    model = mlp(SHAPE, 5, (6, 5), "tanh", [1.0] * 3, seed=2, dropout=0.5, dtype="float64")
    masks = dropout_masks(model, len(x), seed=4)
    norms = hessian_norms_all_layers(model, x, y, masks=masks)
    for k, name in enumerate(LAYERS):
        H, G = _masked_references(model, x, y, masks, k)
        assert_norms_match(norms[name], H, G, rtol=1e-10)
    # inference (no masks) is another Hessian
    assert hessian_norms_all_layers(model, x, y)["dense1"].H != pytest.approx(norms["dense1"].H)


@pytest.mark.filterwarnings("ignore:activation .softmax. is not in")
def test_dropout_masks_need_registered_activations():
    x, y = data()
    model = mlp(SHAPE, 5, (6, 5), "softmax", [1.0] * 3, seed=2, dropout=0.5, dtype="float64")
    with pytest.raises(ValueError, match="elementwise"):
        hessian_norms_all_layers(model, x, y, masks=dropout_masks(model, len(x)))


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
    original = kronecker.sym_pack

    def spy(M):
        seen.append(M.shape[-1] == n_in and M.ndim == 3)
        return original(M)

    monkeypatch.setattr(kronecker, "sym_pack", spy)
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
        layer_hessian_norms(small_cached("relu"), "dense1", *data(), precision="half")


def test_layer_norms_float32_products_match_float64_on_every_layer():
    model, (x, y) = small_cached("tanh"), data()  # R != 0: all three sums
    for name in LAYERS:
        a = layer_hessian_norms(model, name, x, y)
        b = layer_hessian_norms(model, name, x, y, precision="float32")
        np.testing.assert_allclose([b.H, b.G, b.R], [a.H, a.G, a.R], rtol=1e-5)


def test_input_gram_is_the_squared_scaled_gram_and_changes_nothing():
    x, y = data()
    X = np.asarray(x, np.float64).reshape(len(x), -1)
    s = np.abs(X).max()
    K, sx = input_gram(x)
    assert sx == s
    ref = np.array([[(xi @ xj / s**2) ** 2 for xj in X] for xi in X])
    np.testing.assert_allclose(K, ref, rtol=1e-12)
    model = small_cached("tanh")
    with_gram = hessian_norms_all_layers(model, x, y, input_gram=(K, sx))
    without = hessian_norms_all_layers(model, x, y)
    for name in LAYERS:
        np.testing.assert_allclose(
            [with_gram[name].H, with_gram[name].GR],
            [without[name].H, without[name].GR],
            rtol=1e-12,
        )


def test_layer_norms_chunk_argument():
    model, (x, y) = small_cached("tanh"), data()
    for name in LAYERS:
        a = layer_hessian_norms(model, name, x, y, chunk=B)
        b = layer_hessian_norms(model, name, x, y, chunk=3)
        np.testing.assert_allclose([a.H, a.G, a.R], [b.H, b.G, b.R], rtol=DOUBLE_SUM_RTOL)
        assert abs(a.GR - b.GR) <= DOUBLE_SUM_RTOL * a.G * a.R


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


# --------------------------------------------------------------------------------------------
# Float64 accumulation and large batches
# --------------------------------------------------------------------------------------------


def test_tiny_sd_every_layer_float32_model_is_not_flushed():
    rng = np.random.default_rng(3)
    x, y = rng.random((64, 28, 28), np.float32), rng.integers(0, 10, 64)
    m32 = mlp(sd=[1e-5] * 3, seed=3)
    m64 = mlp(sd=[1e-5] * 3, seed=3, dtype="float64")
    # exactly the same network in float64 (mlp draws in float64 and casts, see tests/nn)
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
    model = mlp(sd=0.01, seed=0)
    X, A, R = layer_curvature(model, "dense1", x, y)
    assert X.shape == (4096, 784) and A.shape == R.shape == (4096, 30, 30)
    big = kron_norms(X, A, R)
    small_chunks = kron_norms(X, A, R, chunk=700)
    np.testing.assert_allclose([big.H, big.G], [small_chunks.H, small_chunks.G], rtol=1e-9)
    assert big.H > 0 and big.R == 0.0  # ReLU
    # consistent with the first 64 images' exact reference (the mean over more images of the
    # same distribution moves the norm by tens of percent at most)
    assert 0.3 < big.H / layer_hessian_norms(model, "dense1", x[:64], y[:64]).H < 3


# --------------------------------------------------------------------------------------------
# Activations outside the registry: per-sample autodiff
# --------------------------------------------------------------------------------------------


# Regression: tf.function(reduce_retracing=True) relaxed the weights' shapes after a second model,
# and the per-sample autodiff path then read n_out = None (TypeError in tf.reshape).
@pytest.mark.filterwarnings("ignore:activation .softmax. is not in")
def test_layer_norms_non_elementwise_activation_on_several_models():
    rng = np.random.default_rng(0)
    for widths, b in [((6, 5), 8), ((7, 4), 9)]:
        model = mlp(
            input_shape=(3,), widths=widths, activation="softmax", num_classes=4,
            sd=[1.0] * 3, dtype="float64",
        )  # fmt: skip
        x, y = rng.random((b, 3)).astype(np.float32).astype(np.float64), rng.integers(0, 4, b)
        n = layer_hessian_norms(model, "dense1", x, y)
        H = full_hessian(model, x, y, "dense1")
        G = full_gauss_newton(model, x, y, "dense1")
        assert_norms_match(n, H, G, rtol=1e-10)
