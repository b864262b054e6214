"""Tests of hessinit.curvature.hutchinson: the estimates and their intervals against the exact norms
of the full autodiff matrices."""

import numpy as np
import pytest
from curvature_cases import data, full_all, small_cached

from hessinit.curvature import hutchinson_norm


@pytest.mark.parametrize("product", ["hessian", "gauss_newton", "curvature"])
def test_hutchinson_interval_covers_exact_norm(product):
    model, (x, y) = small_cached("tanh"), data()
    Hf, Gf = full_all("tanh")
    exact = np.linalg.norm({"hessian": Hf, "gauss_newton": Gf, "curvature": Hf - Gf}[product])
    est = hutchinson_norm(model, x, y, probes=200, product=product, seed=0)
    assert est.low <= exact <= est.high
    assert est.low < est.value < est.high
    assert (est.probes, est.level) == (200, 0.95)
    assert abs(est.value / exact - 1) < 0.1
    defl = hutchinson_norm(model, x, y, probes=200, product=product, deflate=10, seed=0)
    assert defl.low <= exact <= defl.high
    assert abs(defl.value / exact - 1) < 0.02


def test_full_deflation_is_exact():
    """A sketch of dimension P spans everything: the deflated part is the whole norm."""
    model, (x, y) = small_cached("tanh"), data()
    exact = np.linalg.norm(full_all("tanh")[0])
    est = hutchinson_norm(model, x, y, probes=2, deflate=143, seed=0)
    assert est.value == pytest.approx(exact, rel=1e-8)


def test_hutchinson_interval_shrinks_with_probes_and_deflation():
    model, (x, y) = small_cached("tanh"), data()

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
    model, (x, y) = small_cached("tanh"), data()
    exact = np.linalg.norm(full_all("tanh")[0])
    hits = [hutchinson_norm(model, x, y, probes=50, seed=s) for s in range(20)]
    covered = sum(e.low <= exact <= e.high for e in hits)
    assert covered >= 15
    # and the estimates scatter around the exact value
    assert abs(np.mean([e.value for e in hits]) / exact - 1) < 0.05


def test_hutchinson_bad_arguments():
    model, (x, y) = small_cached("tanh"), data()
    with pytest.raises(ValueError, match="product"):
        hutchinson_norm(model, x, y, product="fisher")
    with pytest.raises(ValueError, match="2 probes"):
        hutchinson_norm(model, x, y, probes=1)
