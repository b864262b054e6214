"""Inputs checked at the door: every public curvature function refuses what would give another
Hessian, with a message that says what to do; one-hot labels are read as their argmax."""

import keras
import numpy as np
import pytest

from hessinit.curvature import (
    full_hessian,
    hessian_norms,
    hvp,
    spectrum,
    tensor_hessian_norms,
)

F = "float64"


def _model(last="linear"):
    return keras.Sequential([keras.Input((3,), dtype=F), keras.layers.Dense(4, "tanh", dtype=F),
                             keras.layers.Dense(4, last, dtype=F, name="out")])  # fmt: skip


def _data(b=5):
    rng = np.random.default_rng(0)
    return rng.standard_normal((b, 3)), rng.integers(0, 4, b)


CALLS = {
    "norms": lambda m, x, y: hessian_norms(m, "out", x, y),
    "spectrum": lambda m, x, y: spectrum(m, x, y, "out"),
    "network": lambda m, x, y: spectrum(m, x, y),
    "hvp": lambda m, x, y: hvp(m, x, y, [np.zeros(v.shape) for v in m.trainable_variables]),
}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("act", ["softmax", "sigmoid"])
def test_probability_outputs_are_refused(call, act):
    x, y = _data()
    with pytest.raises(ValueError, match=f"applies {act}.*logits"):
        CALLS[call](_model(act), x, y)


def test_a_softmax_activation_layer_is_refused_too():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Softmax()(keras.layers.Dense(2)(inputs)))
    with pytest.raises(ValueError, match="softmax"):
        hessian_norms(model, model.layers[1], *_data())


@pytest.mark.parametrize("call", CALLS)
def test_labels_out_of_range_wrong_count_and_soft(call):
    model, (x, y) = _model(), _data()
    with pytest.raises(ValueError, match=r"in \[0, 4\).*got 9"):
        CALLS[call](model, x, np.r_[y[:-1], 9])
    with pytest.raises(ValueError, match=r"in \[0, 4\).*got -1"):
        CALLS[call](model, x, np.r_[y[:-1], -1])
    with pytest.raises(ValueError, match="5 samples but y has 4 labels"):
        CALLS[call](model, x, y[:4])
    with pytest.raises(ValueError, match="not one-hot"):
        CALLS[call](model, x, np.full((5, 4), 0.25))
    with pytest.raises(ValueError, match="integer classes"):
        CALLS[call](model, x, y + 0.5)


def test_one_hot_labels_are_read_as_their_argmax():
    model, (x, y) = _model(), _data()
    a = hessian_norms(model, "out", x, np.eye(4)[y])
    b = hessian_norms(model, "out", x, y)
    assert a == b and a.H == pytest.approx(np.linalg.norm(
        full_hessian(model, x, y, layer=model.get_layer("out").kernel)), rel=1e-10)  # fmt: skip


@pytest.mark.parametrize("call", CALLS)
def test_wrong_input_shape(call):
    model, (_, y) = _model(), _data()
    with pytest.raises(ValueError, match=r"per-sample shape \(5,\).*takes \(3,\)"):
        CALLS[call](model, np.ones((5, 5)), y)


def test_unbuilt_model():
    model = keras.Sequential([keras.layers.Dense(3), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="not built.*keras.Input"):
        hessian_norms(model, "dense", *_data())


def test_layers_named_wrongly_or_given_by_string_or_integer():
    model, (x, y) = _model(), _data()
    with pytest.raises(ValueError, match="no layer named 'nope'.*'out'"):
        hessian_norms(model, "nope", x, y)
    with pytest.raises(ValueError, match="no layer named 'a'"):
        tensor_hessian_norms(model, "a", x, y)  # a string where a variable was expected
    with pytest.raises(TypeError, match="give the layer's name"):
        hessian_norms(model, 0, x, y)
    with pytest.raises(ValueError, match="no weight 'gamma'"):
        hessian_norms(model, "out", x, y, weight="gamma")
    # and a string naming the layer is its kernel
    n = tensor_hessian_norms(model, "out", x, y)
    assert n.H == pytest.approx(hessian_norms(model, model.get_layer("out").kernel, x, y).H)


def test_embedding_is_refused_clearly():
    inputs = keras.Input((4,), dtype="int32")
    h = keras.layers.Flatten()(keras.layers.Embedding(10, 2, name="emb")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(h))
    x, y = np.arange(8).reshape(2, 4) % 10, [0, 1]
    for call in (lambda: spectrum(model, x, y), lambda: hessian_norms(model, "dense", x, y)):
        with pytest.raises(TypeError, match="'emb' \\(Embedding\\) has sparse gradients"):
            call()


def test_subclassed_probability_outputs_are_refused():
    class Probs(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(3)

        def call(self, x):
            return keras.ops.softmax(self.d(x))

    model = Probs()
    model(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="outputs probabilities"):
        spectrum(model, *_data()[:1], [0, 1, 2, 0, 1])
