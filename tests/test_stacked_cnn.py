"""Many CNN runs as one program (hessinit.train.stacked_cnn) against independent references.

References: the single-run path the CNN training chapter used before (a Keras model per run,
trained by ``hessinit.stepsize.sgd_steps``, scored by ``hessinit.nn.mean_loss``), the Keras
model's own forward pass, and the same run trained alone.
"""

import numpy as np
import pytest

from hessinit.nn import mean_loss
from hessinit.stepsize import sgd_steps
from hessinit.study import convnets
from hessinit.train.stacked_cnn import MODES, ConvStack, fit_runs

SHAPE = (10, 10, 1)
BUILD = {
    "cnn relu": {"channels": (3, 4)},
    "cnn tanh": {"channels": (3, 4)},
    "resnet": {"channels": 3, "blocks": 1},
}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(5)
    x = rng.random((60, *SHAPE), np.float32)
    y = rng.integers(0, 4, 60).astype(np.int32)
    return x, y


def _model(network, scheme, seed):
    return convnets.build(network, scheme, seed, input_shape=SHAPE, num_classes=4,
                          **BUILD[network])  # fmt: skip


def _keras_run(network, weights, lr, batches, x, y, x_test, y_test):
    """The reference: the run's own Keras model, stepsize.sgd_steps, mean_loss."""
    model = _model(network, "he", 0)
    model.set_weights(weights)
    before = float(mean_loss(model, x_test, y_test))
    losses = sgd_steps(model, x, y, batches, lr)
    return before, losses, float(mean_loss(model, x_test, y_test)), model.get_weights()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("network", list(BUILD))
def test_logits_equal_keras(images, network, mode):
    x, _ = images
    models = [_model(network, s, seed) for s, seed in [("he", 0), (2.0, 1), ("lecun", 2)]]
    stack = ConvStack(models[0], mode)
    packed = stack.pack([m.get_weights() for m in models])
    xs = np.stack([x[:7], x[7:14], x[14:21]])
    z = stack.logits(packed, xs)
    for r, m in enumerate(models):
        np.testing.assert_allclose(z[r], m(xs[r]).numpy(), rtol=1e-5, atol=1e-6)


# cnn tanh in the full suite only: the stack applies each layer's own activation, one code path
# for both CNNs (cnn relu here); tanh's forward pass is checked quick by test_logits_equal_keras.
@pytest.mark.parametrize(
    "network", [n if n != "cnn tanh" else pytest.param(n, marks=pytest.mark.slow) for n in BUILD]
)
def test_each_run_equals_its_keras_run(images, network):
    """Seeds, schemes and step sizes mixed in one program: every run equals its own Keras run
    (weights, mini-batch losses, held-out losses) to float32 rounding, and alone one of them
    (the third, between others) gives the same numbers as inside the stack."""
    x, y = images
    settings = [("he", 0, 0.1), (2.0, 1, 0.3), ("lecun", 2, 0.03), ("he", 0, 0.3)]
    weights = [_model(network, s, seed).get_weights() for s, seed, _ in settings]
    lrs = [lr for *_, lr in settings]
    batches = np.stack([np.random.default_rng(seed).integers(0, 40, (6, 8))
                        for _, seed, _ in settings])  # fmt: skip
    x_train, y_train, x_test, y_test = x[:40], y[:40], x[40:], y[40:]
    together = fit_runs(_model(network, "he", 0), weights, lrs, batches, x_train, y_train,
                        x_test, y_test)  # fmt: skip
    for r in range(len(settings)):
        before, losses, after, _ = _keras_run(network, weights[r], lrs[r], batches[r], x_train,
                                              y_train, x_test, y_test)  # fmt: skip
        np.testing.assert_allclose(together["before"][r], before, rtol=1e-6)
        np.testing.assert_allclose(together["losses"][r], losses, rtol=1e-5)
        np.testing.assert_allclose(together["after"][r], after, rtol=1e-5)
    r = 2
    alone = fit_runs(_model(network, "he", 0), weights[r : r + 1], lrs[r : r + 1],
                     batches[r : r + 1], x_train, y_train, x_test, y_test)  # fmt: skip
    np.testing.assert_allclose(alone["after"][0], together["after"][r], rtol=1e-6)
    np.testing.assert_allclose(alone["losses"][0], together["losses"][r], rtol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_weights_after_training_equal_keras(images, mode):
    x, y = images
    network = "resnet"
    weights = [_model(network, s, seed).get_weights() for s, seed in [("he", 3), (0.5, 4)]]
    batches = np.random.default_rng(9).integers(0, 60, (5, 2, 8))
    stack = ConvStack(_model(network, "he", 0), mode)
    packed, _ = stack.sgd_steps(stack.pack(weights), x, y, batches, [0.2, 0.05])
    for r, (mine, lr) in enumerate(zip(stack.unpack(packed), [0.2, 0.05], strict=True)):
        *_, ref = _keras_run(network, weights[r], lr, batches[:, r], x, y, x, y)
        for a, b in zip(mine, ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_divergence_stays_in_its_run(images):
    """A run with a huge step diverges; it is recorded for that run alone, and the others
    equal their runs without it."""
    x, y = images
    weights = [_model("cnn relu", "he", s).get_weights() for s in (0, 1, 2)]
    batches = np.stack([np.random.default_rng(s).integers(0, 60, (6, 8)) for s in (0, 1, 2)])
    model = _model("cnn relu", "he", 0)
    out = fit_runs(model, weights, [0.1, 1e30, 0.2], batches, x, y, x, y)
    assert out["diverged_at"].tolist()[0] == -1 and out["diverged_at"].tolist()[2] == -1
    assert out["diverged_at"][1] >= 1
    assert np.isnan(out["after"][1]) and np.isfinite(out["after"][[0, 2]]).all()
    rest = fit_runs(model, weights[::2], [0.1, 0.2], batches[::2], x, y, x, y)
    np.testing.assert_allclose(out["after"][[0, 2]], rest["after"], rtol=1e-6)


def test_refuses_what_it_cannot_stack():
    with pytest.raises(ValueError, match="BatchNormalization"):
        ConvStack(convnets.build("resnet bn", "he", 0, input_shape=SHAPE, channels=3, blocks=1))
    stack = ConvStack(_model("cnn relu", "he", 0))
    with pytest.raises(ValueError, match="shapes"):
        stack.pack([[np.zeros(3)]])
