"""Tests of hessinit.curvature.spectra: top eigenvalues of layer and network Hessians against
numpy.linalg.eigvalsh of the materialized autodiff matrices (the 12-6-5-5 network of
curvature_cases, float64), the residual check, and a non-converged Lanczos reported."""

import numpy as np
import pytest
from curvature_cases import data, full_all, kernel_block, layer_refs, small, small_cached

from hessinit.curvature import (
    NotConvergedError,
    full_hessian,
    layer_spectrum,
    network_spectrum,
    top_eigenvalues,
)


def top(M, k, which="LA"):
    """The k largest eigenvalues of a symmetric matrix by eigvalsh (by magnitude for "LM")."""
    w = np.linalg.eigvalsh(M)
    return w[np.argsort(w if which == "LA" else np.abs(w))[::-1][:k]]


def assert_relative(found, exact, scale=None):
    """Agreement to 1e-6 relative to the largest eigenvalue in magnitude (or to ``scale``)."""
    scale = np.abs(exact).max() if scale is None else scale
    np.testing.assert_allclose(found, exact, rtol=0, atol=1e-6 * scale)


@pytest.mark.parametrize("activation", ["relu", "tanh", "softplus"])
def test_layer_spectra_match_eigvalsh(activation):
    model, (x, y) = small_cached(activation), data()
    refs = layer_refs(activation)
    for name, k in (("dense1", 5), ("dense2", 3)):  # 72 weights: Lanczos; 30: dense route
        H, G = refs[name]
        for term, M in (("H", H), ("G", G), ("R", H - G)):
            s = layer_spectrum(model, name, x, y, k=k, term=term)
            if term == "H":  # the route, and how the eigenproblem was solved
                assert s.method == "kronecker"
                assert s.solver == ("lanczos" if name == "dense1" else "dense")
            assert s.converged and s.residuals.max() <= 1e-6
            # relative to H's scale: R of a ReLU layer is 0, its reference H - G round-off
            assert_relative(s.eigenvalues, top(M, k), np.abs(top(H, 1, "LM")[0]))
    if activation == "relu":  # the layer's own R block vanishes: every eigenvalue of R is 0
        s = layer_spectrum(model, "dense1", x, y, term="R", k=2)
        assert np.all(s.eigenvalues == 0)


def test_autodiff_route_agrees_with_kronecker_and_eigvalsh():
    model, (x, y) = small_cached("tanh"), data()
    H, G = layer_refs("tanh")["dense1"]
    for term, M in (("H", H), ("G", G)):
        auto = layer_spectrum(model, "dense1", x, y, k=4, term=term, method="autodiff")
        kron = layer_spectrum(model, "dense1", x, y, k=4, term=term, method="kronecker")
        assert auto.method == "autodiff" and auto.converged
        assert_relative(auto.eigenvalues, top(M, 4))
        assert_relative(kron.eigenvalues, auto.eigenvalues)


def test_any_weight_tensor_by_autodiff_matches_its_block():
    """A bias is not a dense kernel: the generic product restricted to it, against the
    corresponding diagonal block of the all-weights Hessian."""
    model, (x, y) = small_cached("tanh"), data()
    Hf, _ = full_all("tanh")
    bias = model.get_layer("dense1").bias
    start = sum(int(np.prod(v.shape)) for v in model.trainable_variables[:1])
    block = Hf[start : start + 6, start : start + 6]
    s = layer_spectrum(model, bias, x, y, k=2)
    assert s.converged
    assert_relative(s.eigenvalues, top(block, 2))
    # a kernel too, by name, forced through the generic route (30 weights: dense route)
    k = layer_spectrum(model, "dense2", x, y, k=3, method="autodiff")
    assert_relative(k.eigenvalues, top(kernel_block(model, Hf, "dense2"), 3))


def test_network_spectrum_matches_eigvalsh():
    model, (x, y) = small_cached("tanh"), data()
    Hf, Gf = full_all("tanh")
    s = network_spectrum(model, x, y, k=3)
    assert s.method == "autodiff" and s.converged and len(s.eigenvalues) == 3
    assert_relative(s.eigenvalues, top(Hf, 3))
    assert s.lambda_max == s.eigenvalues[0]
    g = network_spectrum(model, x, y, k=2, term="G")
    assert_relative(g.eigenvalues, top(Gf, 2))
    # H is indefinite here: the largest in magnitude may be negative
    m = network_spectrum(model, x, y, k=3, which="LM")
    assert_relative(m.eigenvalues, top(Hf, 3, "LM"))


def test_float32_network_spectrum_converges_to_float32_accuracy():
    model32, model64, (x, y) = small_cached("tanh", "float32"), small_cached("tanh"), data()
    s = network_spectrum(model32, x.astype(np.float32), y, k=2)
    assert s.converged and s.rtol == 1e-3
    exact = top(full_all("tanh")[0], 2)
    np.testing.assert_allclose(s.eigenvalues, exact, rtol=1e-4)
    assert network_spectrum(model64, x, y).rtol == 1e-6


def test_not_converged_is_reported_not_returned():
    model, (x, y) = small_cached("tanh"), data()
    # ARPACK stopped after one restart: it gives up on 10 of the 72 eigenvalues
    with pytest.raises(NotConvergedError, match="did not converge") as err:
        layer_spectrum(model, "dense1", x, y, k=10, maxiter=1, tol=1e-14)
    assert not err.value.spectrum.converged
    flagged = layer_spectrum(model, "dense1", x, y, k=10, maxiter=1, tol=1e-14, strict=False)
    assert not flagged.converged and len(flagged.eigenvalues) == 10
    # converged Ritz values but residuals above an impossible threshold: flagged as well
    with pytest.raises(NotConvergedError, match="rtol=1e-30"):
        network_spectrum(model, x, y, rtol=1e-30)


def test_top_eigenvalues_on_a_known_operator():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((80, 80)))
    lam = np.linspace(-5.0, 3.0, 80)
    S = Q @ np.diag(lam) @ Q.T
    la = top_eigenvalues(lambda v: S @ v, 80, k=2)
    lm = top_eigenvalues(lambda v: S @ v, 80, k=2, which="LM")
    np.testing.assert_allclose(la.eigenvalues, lam[::-1][:2], atol=1e-9)
    np.testing.assert_allclose(lm.eigenvalues, lam[:2], atol=1e-9)  # -5 and -4.899...
    assert la.matvecs > 2
    small = top_eigenvalues(lambda v: S[:10, :10] @ v, 10, k=10)  # below Lanczos' range
    assert small.solver == "dense" and small.converged


def test_bad_arguments_say_what_to_do():
    model, (x, y) = small_cached("relu"), data()
    with pytest.raises(ValueError, match="term"):
        layer_spectrum(model, "dense1", x, y, term="X")
    with pytest.raises(ValueError, match="method"):
        layer_spectrum(model, "dense1", x, y, method="magic")
    with pytest.raises(ValueError, match="k must be"):
        layer_spectrum(model, "dense1", x, y, k=0)
    with pytest.raises(ValueError, match="no trainable weights"):
        layer_spectrum(model, model.layers[0], x, y)  # Flatten
    with pytest.raises(ValueError, match="not a trainable weight"):
        layer_spectrum(model, small_cached("tanh").get_layer("dense1").kernel, x, y)
    with pytest.raises(ValueError, match="which"):
        network_spectrum(model, x, y, which="XA")
    with pytest.raises(ValueError, match="method='autodiff'"):
        layer_spectrum(model, model.get_layer("dense1").bias, x, y, method="kronecker")


def test_non_finite_products_are_not_converged():
    """A diverged network (NaN weights): NaN eigenvalues, flagged, or the error."""
    model, (x, y) = small("tanh"), data()
    kernel = model.get_layer("dense2").kernel
    kernel.assign(np.full(kernel.shape, np.nan))
    s = network_spectrum(model, x, y, k=2, strict=False)
    assert not s.converged and np.isnan(s.eigenvalues).all()
    with pytest.raises(NotConvergedError):
        layer_spectrum(model, "dense1", x, y)


def test_conv_network_tensors_match_eigvalsh():
    """Any Keras model: a conv kernel and the logits kernel of a small CNN (generic route),
    against eigvalsh of the Hessian materialized for that variable."""
    from hessinit.nn.convnets import small_cnn

    model = small_cnn((6, 6, 1), 3, channels=(2, 3), activation="tanh", sd=0.7,
                      dtype="float64")  # fmt: skip
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 6, 6, 1)), rng.integers(0, 3, 8)
    for name, k in (("conv2", 3), ("dense", 2)):  # 54 and 36 weights: dense route
        kernel = model.get_layer(name).kernel
        s = layer_spectrum(model, name, x, y, k=k)
        assert s.converged
        assert_relative(s.eigenvalues, top(full_hessian(model, x, y, layer=kernel), k))
