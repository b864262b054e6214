"""Tests of hessinit.nn.activations: every registry entry's numpy f, f' and f'' against TensorFlow
autodiff of the Keras activation itself; names; and the one-time warning of an activation outside
the registry, whose layers then take per-sample autodiff (checked against full autodiff)."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from hessinit.curvature import (
    full_gauss_newton,
    full_hessian,
    hessian_norms_all_layers,
    kronecker,
    layer_curvature,
    layer_hessian_norms,
)
from hessinit.nn import ACTIVATIONS, REGISTRY, activation_name, activations, mlp

# An even number of points: 0, where piecewise-linear (and ELU's second) derivatives jump, is not
# on the grid.
GRID = np.linspace(-4.0, 4.0, 80)


def _autodiff_derivatives(name, a):
    """f(a), f'(a) and f''(a) of the Keras activation by nested tf.GradientTape, float64."""
    a = tf.constant(a, tf.float64)
    with tf.GradientTape() as outer:
        outer.watch(a)
        with tf.GradientTape() as inner:
            inner.watch(a)
            h = keras.activations.get(name)(a)
        d1 = inner.gradient(h, a)
    d2 = outer.gradient(d1, a, unconnected_gradients="zero")
    return h.numpy(), d1.numpy(), d2.numpy()


@pytest.mark.parametrize("name", list(REGISTRY))
def test_numpy_references_match_keras_autodiff(name):
    entry = REGISTRY[name]
    h, d1, d2 = _autodiff_derivatives(name, GRID)
    assert h.dtype == np.float64
    # Keras' float64 GELU carries a float32-precision constant (measured 1e-8 relative)
    rtol = 1e-7 if name == "gelu" else 1e-12
    for got, ref in [(h, entry.f(GRID)), (d1, entry.df(GRID)), (d2, entry.d2f(GRID))]:
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol)
    assert entry.piecewise_linear == (not np.any(entry.d2f(GRID)))


@pytest.mark.parametrize("name", list(REGISTRY))
def test_registry_keys_are_keras_serialized_names(name):
    assert REGISTRY[name].name == name
    assert activation_name(name) == name
    assert activation_name(keras.activations.get(name)) == name
    assert activations.is_elementwise(name)


def test_activation_name():
    assert activation_name("swish") == "silu"  # Keras' alias
    assert activation_name(keras.activations.tanh) == "tanh"
    assert activation_name(None) == "linear"  # Keras' default
    assert activation_name("softmax") == "softmax"  # known to Keras, not registered
    assert set(REGISTRY) < set(ACTIVATIONS)
    with pytest.raises(ValueError, match="unknown activation 'no_such'.*relu.*tanh"):
        activation_name("no_such")


def test_is_elementwise_warns_once_per_unregistered_name(monkeypatch):
    monkeypatch.setattr(activations, "_NOTICED", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not activations.is_elementwise("softmax")
        assert not activations.is_elementwise("softmax")
        assert not activations.is_elementwise("hard_silu")
        assert all(activations.is_elementwise(name) for name in REGISTRY)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 2
    assert "'softmax' is not in hessinit.nn.activations.REGISTRY" in messages[0]
    assert "hard_silu" in messages[1]
    assert not activations.is_piecewise_linear("softmax")


def test_unregistered_activation_takes_autodiff_path_warns_once_and_is_exact(monkeypatch):
    """hard_sigmoid is elementwise but not registered: its layers take per-sample autodiff, the
    warning comes once for all calls, and the norms are those of full autodiff."""
    monkeypatch.setattr(activations, "_NOTICED", set())
    calls = []
    original = kronecker._autodiff_blocks

    def spy(*args):
        calls.append(args[-1])
        return original(*args)

    monkeypatch.setattr(kronecker, "_autodiff_blocks", spy)
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((10, 5)), rng.integers(0, 3, 10)
    model = mlp((5,), 3, (4,), "hard_sigmoid", [2.0, 2.0], seed=1, dtype="float64")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n = layer_hessian_norms(model, "dense1", x, y)
        _, _, R = layer_curvature(model, "dense1", x, y)  # another compiled function
    ours = [w for w in caught if "hard_sigmoid" in str(w.message)]
    assert len(ours) == 1 and issubclass(ours[0].category, UserWarning)
    assert calls and set(calls) == {0}  # traced through the autodiff path
    H = full_hessian(model, x, y, layer="dense1")
    G = full_gauss_newton(model, x, y, layer="dense1")
    assert n.H == pytest.approx(np.linalg.norm(H), rel=1e-10)
    assert n.G == pytest.approx(np.linalg.norm(G), rel=1e-10)
    # piecewise linear, though the code cannot know it: R is round-off at most
    assert n.R <= 1e-10 * n.H and np.abs(R).max() <= 1e-12


def test_leaky_relu_takes_the_fast_path_exactly(monkeypatch):
    """One registry entry puts leaky_relu on the fast path: no warning, the backward recursion,
    R == 0 exactly on every diagonal block, and the norms of full autodiff."""
    monkeypatch.setattr(activations, "_NOTICED", set())
    routes = []
    for route in ("_recursive_blocks", "_autodiff_blocks"):
        original = getattr(kronecker, route)

        def spy(*args, _original=original, _route=route):
            routes.append(_route)
            return _original(*args)

        monkeypatch.setattr(kronecker, route, spy)
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((12, 5)), rng.integers(0, 3, 12)
    model = mlp((5,), 3, (7, 4), "leaky_relu", [1.0] * 3, seed=3, dtype="float64")
    for layer in model.layers[1:]:
        layer.bias.assign(rng.normal(0, 0.3, layer.bias.shape))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all
        norms = hessian_norms_all_layers(model, x, y)
    assert routes == ["_recursive_blocks"]  # traced through the fast path only
    for name, n in norms.items():
        H = full_hessian(model, x, y, layer=name)
        G = full_gauss_newton(model, x, y, layer=name)
        assert n.R == 0.0 and n.GR == 0.0
        assert np.linalg.norm(H - G) <= 1e-12 * np.linalg.norm(H)  # autodiff agrees: R = 0
        assert n.H == pytest.approx(np.linalg.norm(H), rel=1e-10)
        assert n.G == pytest.approx(np.linalg.norm(G), rel=1e-10)
