"""The public curvature API on models no other test has seen: every route either matches the
materialized Hessian (full nested autodiff of the model's own call) or raises a clear error."""

import functools

import keras
import numpy as np
import pytest

from hessinit.curvature import (
    dense_stack_issue,
    full_gauss_newton,
    full_hessian,
    hessian_norms,
    hutchinson_trace,
    is_dense_stack,
    lanczos_quadrature,
    layer_hessian_norms,
    layer_spectrum,
    spectral_density,
    spectrum,
)

F = "float64"
B, N_IN, K = 6, 3, 3


def _data(seed=0, shape=(N_IN,)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, *shape)), rng.integers(0, K, B)


def _dense(units, name, activation=None):
    init = keras.initializers.RandomNormal
    return keras.layers.Dense(units, activation, dtype=F, name=name,
                              kernel_initializer=init(0, 1, seed=7),
                              bias_initializer=init(0, 0.3, seed=8))  # fmt: skip


class Sub(keras.Model):
    """d2(2 * d1(x) + 0.5) written in call (opaque to any graph walk)."""

    def __init__(self):
        super().__init__(dtype=F)
        self.d1, self.d2 = _dense(4, "d1", "tanh"), _dense(K, "d2")

    def call(self, x):
        return self.d2(2.0 * self.d1(x) + 0.5)


def build(kind):
    """A tiny float64 model of ``kind``; every one has a layer named d1 with a kernel."""
    inputs = keras.Input((N_IN,), dtype=F)
    if kind == "sequential":
        return keras.Sequential([inputs, _dense(4, "d1", "tanh"), _dense(K, "d2")])
    if kind == "ops":
        d1, d2 = _dense(4, "d1", "tanh"), _dense(K, "d2")
        return keras.Model(inputs, d2(keras.ops.add(keras.ops.multiply(2.0, d1(inputs)), 0.5)))
    if kind == "shared":
        d1, d2 = _dense(N_IN, "d1", "tanh"), _dense(K, "d2")
        return keras.Model(inputs, d2(d1(d1(inputs))))
    if kind == "subclassed":
        model = Sub()
        model(np.zeros((1, N_IN)))
        return model
    if kind == "bn":
        h = _dense(4, "d1")(inputs)
        h = keras.layers.BatchNormalization(dtype=F, name="bn")(h)
        h = keras.layers.Activation("tanh", dtype=F)(h)
        return keras.Model(inputs, _dense(K, "d2")(h))
    if kind == "residual":
        h = _dense(N_IN, "d1", "tanh")(inputs)
        h = keras.layers.Add(dtype=F)([h, inputs])
        return keras.Model(inputs, _dense(K, "d2")(h))
    raise ValueError(kind)


KINDS = ("sequential", "ops", "shared", "subclassed", "bn", "residual")
#: Which models the dense-stack (Kronecker) route may take.
STACKS = {"sequential"}


@functools.cache
def case(kind):
    """A shared model of ``kind`` (weights never changed), data and its d1 kernel's H and G."""
    model, (x, y) = build(kind), _data()
    return (model, x, y, *_reference(model, x, y))


def _reference(model, x, y, training=True):
    kernel = [v for v in model.trainable_variables if v.path.endswith("d1/kernel")][0]
    H = full_hessian(model, x, y, layer=kernel, training=training)
    G = full_gauss_newton(model, x, y, layer=kernel, training=training)
    return kernel, H, G


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["auto", "kronecker", "columns", "autodiff"])
def test_norms_match_the_materialized_hessian_or_refuse(kind, method):
    model, x, y, kernel, H, G = case(kind)
    if method == "kronecker" and kind not in STACKS:
        with pytest.raises(ValueError, match="kronecker"):
            hessian_norms(model, kernel, x, y, method=method)
        return
    if method == "columns" and kind in ("ops", "subclassed"):
        with pytest.raises(TypeError, match="d1|multiply|subclassed|functional graph"):
            hessian_norms(model, kernel, x, y, method=method)
        return
    n = hessian_norms(model, kernel, x, y, method=method)
    assert n.H == pytest.approx(np.linalg.norm(H), rel=1e-8)
    assert n.G == pytest.approx(np.linalg.norm(G), rel=1e-8)
    assert n.R == pytest.approx(np.linalg.norm(H - G), rel=1e-6, abs=1e-12)
    if method == "auto":
        assert n.method == ("kronecker" if kind in STACKS else n.method)
        assert (n.method == "autodiff") == (kind in ("ops", "subclassed"))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["auto", "kronecker", "autodiff"])
def test_spectra_match_eigvalsh_or_refuse(kind, method):
    model, x, y, kernel, H, _ = case(kind)
    if method == "kronecker" and kind not in STACKS:
        with pytest.raises(ValueError, match="does not apply"):
            spectrum(model, x, y, kernel, method=method)
        return
    s = spectrum(model, x, y, kernel, k=2, method=method)
    np.testing.assert_allclose(s.eigenvalues, np.linalg.eigvalsh(H)[::-1][:2], rtol=1e-8)
    expected = "kronecker" if kind in STACKS and method != "autodiff" else "autodiff"
    assert s.method == expected and s.training is True


def test_the_issues_cases_no_longer_take_the_rebuilt_stack():
    for kind in ("ops", "shared", "subclassed"):
        model = build(kind)
        assert not is_dense_stack(model)
        assert dense_stack_issue(model)
    assert "multiply" in dense_stack_issue(build("ops"))
    assert "called 2 times" in dense_stack_issue(build("shared"))
    assert "subclassed" in dense_stack_issue(build("subclassed"))
    # the old names on the issue's model: the route actually taken, the right number
    model, x, y, _, H, _ = case("ops")
    s = layer_spectrum(model, "d1", x, y)
    assert s.method == "autodiff"
    assert s.lambda_max == pytest.approx(np.linalg.eigvalsh(H).max(), rel=1e-8)
    assert layer_hessian_norms(model, "d1", x, y).H == pytest.approx(np.linalg.norm(H), rel=1e-8)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_mode_is_one_argument_everywhere(training):
    model, (x, y) = build("bn"), _data()
    bn = model.get_layer("bn")
    bn.moving_mean.assign([0.3, -0.2, 0.1, 0.0])
    bn.moving_variance.assign([2.0, 0.5, 1.0, 3.0])
    kernel, H, G = _reference(model, x, y, training)
    n = hessian_norms(model, kernel, x, y, training=training)
    assert n.H == pytest.approx(np.linalg.norm(H), rel=1e-8)
    assert n.G == pytest.approx(np.linalg.norm(G), rel=1e-8)
    s = spectrum(model, x, y, kernel, k=1, which="LM", training=training)
    assert abs(s.lambda_max) == pytest.approx(np.abs(np.linalg.eigvalsh(H)).max(), rel=1e-8)
    assert abs(s.lambda_max) <= n.H * (1 + 1e-12)
    t = hutchinson_trace(model, x, y, kernel, probes=40, training=training)
    assert t.low <= np.trace(H) <= t.high
    other = full_hessian(model, x, y, layer=kernel, training=not training)
    assert not np.allclose(H, other)  # the two modes are different Hessians


def test_which_smallest_algebraic_and_eigenvectors():
    model, x, y, _, H, _ = case("sequential")
    exact, vecs = np.linalg.eigh(H)
    s = spectrum(model, x, y, "d1", k=3, which="SA")
    np.testing.assert_allclose(s.eigenvalues, exact[:3], rtol=1e-8, atol=1e-12)
    for j in range(3):  # H v = lambda v, unit vectors
        v = s.eigenvectors[:, j]
        np.testing.assert_allclose(H @ v, s.eigenvalues[j] * v, atol=1e-9)
        assert np.linalg.norm(v) == pytest.approx(1.0)


@pytest.mark.parametrize("term", ["H", "G", "R"])
def test_network_spectra_trace_and_density_against_eigvalsh(term):
    model, (x, y) = build("residual"), _data()
    H, G = full_hessian(model, x, y), full_gauss_newton(model, x, y)
    M = {"H": H, "G": G, "R": H - G}[term]
    exact = np.linalg.eigvalsh(M)
    s = spectrum(model, x, y, None, k=2, term=term)
    np.testing.assert_allclose(s.eigenvalues, exact[::-1][:2], rtol=1e-7, atol=1e-10)
    t = hutchinson_trace(model, x, y, term=term, probes=60, seed=1)
    assert t.low <= np.trace(M) <= t.high
    n = M.shape[0]
    d = spectral_density(model, x, y, term=term, steps=n, probes=20, seed=2)
    for j in (1, 2, 3):  # mean over probes, with a t-interval, covers tr(M^j) / n
        _, low, high = d.moment_interval(j, level=0.999)
        assert low <= np.sum(exact**j) / n <= high
    assert d.mass(exact.min() - 1, exact.max() + 1) == pytest.approx(1.0)


def test_lanczos_quadrature_is_exact_per_probe():
    """Full Lanczos: each probe's nodes and weights are u^T f(M) u for every f (u the probe)."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    lam = np.array([-2.0, -0.5, 0, 0, 0.1, 0.2, 0.3, 1.0, 1.5, 4.0, 4.0, 9.0])
    M = Q @ np.diag(lam) @ Q.T
    d = lanczos_quadrature(lambda v: M @ v, 12, steps=12, probes=5, seed=3)
    probes = np.random.default_rng(3)
    for p in range(5):
        v = probes.choice([-1.0, 1.0], size=12)
        c2 = (Q.T @ v) ** 2 / 12  # u = v / ||v||, ||v||^2 = 12
        for j in (1, 2, 4):
            assert np.sum(d.weights[p] * d.nodes[p] ** j) == pytest.approx(c2 @ lam**j, rel=1e-9)
        mass = np.sum(d.weights[p] * ((d.nodes[p] >= -0.1) & (d.nodes[p] <= 1.2)))
        assert mass == pytest.approx(c2[(lam >= -0.1) & (lam <= 1.2)].sum(), abs=1e-9)


def test_a_whole_layers_block():
    """weight='all': the joint block of a layer's kernel and bias, against the full matrix."""
    model, x, y, *_ = case("residual")
    H = full_hessian(model, x, y)
    sizes = [int(np.prod(v.shape)) for v in model.trainable_variables]
    d1 = [i for i, v in enumerate(model.trainable_variables) if "/d1/" in "/" + v.path + "/"]
    starts = np.cumsum([0, *sizes])
    rows = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in d1])
    block = H[np.ix_(rows, rows)]
    s = spectrum(model, x, y, "d1", weight="all", k=2, which="LM")
    exact = np.linalg.eigvalsh(block)
    np.testing.assert_allclose(
        np.sort(np.abs(s.eigenvalues)), np.sort(np.abs(exact))[-2:], rtol=1e-8
    )
    assert s.eigenvectors.shape == (block.shape[0], 2)
