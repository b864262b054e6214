"""Many held-out runs as one program (hessinit.train.heldout) against independent references.

Reference: ``train.fit``, today's single-run trainer (its own Keras model built by ``mlp``, its
own compiled step, its own held-out evaluation), run by run.
"""

import numpy as np
import pytest
from conftest import random_images

from hessinit.init import hessian_init
from hessinit.nn import mlp
from hessinit.train import fit
from hessinit.train.heldout import HeldoutRun, fit_draws, fit_runs, held_out_scores

SHAPE, CLASSES, WIDTHS = (4, 3), 4, (6, 5)
KW = dict(widths=WIDTHS, steps=12, batch_size=8, eval_every=5)


@pytest.fixture(scope="module")
def data():
    return random_images(64, SHAPE, CLASSES, seed=3), random_images(40, SHAPE, CLASSES, seed=5)


def _reference(train, test, run, activation="relu"):
    model = mlp(SHAPE, CLASSES, WIDTHS, activation, run.sd, run.seed)
    if run.weights is not None:
        model.set_weights([t for pair in run.weights for t in pair])
    return fit(model, train, test, steps=KW["steps"], lr=run.lr, batch_size=KW["batch_size"],
               eval_every=KW["eval_every"], seed=run.seed, progress=False)  # fmt: skip


def _same_as_fit(mine, ref, rtol=1e-4):
    mine = mine.reset_index(drop=True)
    assert mine["step"].tolist() == ref["step"].tolist()
    for column in ("loss", "test_loss"):
        a, b = mine[column].to_numpy(float), ref[column].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), column
        ok = ~np.isnan(b)
        np.testing.assert_allclose(a[ok], b[ok], rtol=rtol, err_msg=column)
    np.testing.assert_allclose(mine["test_accuracy"], ref["test_accuracy"], atol=1.5 / 40)


RUNS = [
    HeldoutRun(seed=0, lr=0.1, sd=[0.5, 0.3, 0.4]),
    HeldoutRun(seed=1, lr=0.3, sd=0.2),  # dense2, dense3 Glorot-uniform
    HeldoutRun(seed=2, lr=0.05, sd=[None, 1.0, None]),
    HeldoutRun(seed=0, lr=0.5, sd=[0.5, 0.3, 0.4]),  # same seed, other lr
]


def test_each_run_in_a_stack_equals_fit(data):
    train, test = data
    frame = fit_runs(train, test, RUNS, **KW)
    assert not frame["diverged"].any()
    for r, run in enumerate(RUNS):
        _same_as_fit(frame[frame["run"] == r], _reference(train, test, run))


def test_a_run_alone_equals_fit_and_the_stacked_run(data):
    train, test = data
    alone = fit_runs(train, test, [RUNS[1]], **KW)
    _same_as_fit(alone, _reference(train, test, RUNS[1]))
    stacked = fit_runs(train, test, RUNS, **KW)
    part = stacked[stacked["run"] == 1].reset_index(drop=True)
    np.testing.assert_allclose(part["test_loss"], alone["test_loss"], rtol=1e-5)


def test_given_weights_equal_fit_from_that_model(data):
    """A Hessian-initialized model's weights (hessian_init rescales mlp's kernels) train as fit."""
    train, test = data
    model = mlp(SHAPE, CLASSES, WIDTHS, "tanh", [0.3, 0.3, 0.3], 7)
    hessian_init(model, train.x[:16], train.y[:16], iters=3)
    w = model.get_weights()
    run = HeldoutRun(seed=7, lr=0.2, weights=tuple(zip(w[::2], w[1::2], strict=True)))
    frame = fit_runs(train, test, [RUNS[0], run], activation="tanh", **KW)
    _same_as_fit(frame[frame["run"] == 1], _reference(train, test, run, "tanh"))


def test_divergence_is_recorded_for_that_run_only(data):
    train, test = data
    blow = HeldoutRun(seed=4, lr=1e30, sd=[3.0, 3.0, 3.0])
    frame = fit_runs(train, test, [RUNS[0], blow, RUNS[1]], **KW)
    ref = _reference(train, test, blow)
    assert not np.isfinite(ref["test_loss"].iloc[-1])  # the reference stops at a non-finite loss
    mine = frame[frame["run"] == 1]
    assert mine["diverged"].all() and frame.attrs["diverged"] == {1: int(ref["step"].iloc[-1])}
    assert mine["step"].tolist() == ref["step"].tolist()
    for r in (0, 2):
        assert not frame[frame["run"] == r]["diverged"].any()
        _same_as_fit(frame[frame["run"] == r], _reference(train, test, [RUNS[0], blow, RUNS[1]][r]))


def test_draws_are_fits():
    rng = np.random.default_rng(11)
    expected = [rng.integers(0, 50, size=6) for _ in range(4)]
    np.testing.assert_array_equal(fit_draws(11, 50, 6, 4), np.stack(expected))


def test_held_out_scores_against_numpy():
    rng = np.random.default_rng(0)
    f32 = np.float32
    w = [(rng.normal(size=(3, 5, 4)).astype(f32), rng.normal(size=(3, 4)).astype(f32)),
         (rng.normal(size=(3, 4, 2)).astype(f32), rng.normal(size=(3, 2)).astype(f32))]  # fmt: skip
    x, y = rng.random((9, 5)), rng.integers(0, 2, 9)
    loss, acc = held_out_scores(w, x, y, ("tanh", "linear"))
    for r in range(3):
        z = np.tanh(x @ w[0][0][r] + w[0][1][r]) @ w[1][0][r] + w[1][1][r]
        lse = np.log(np.exp(z).sum(1))
        assert loss[r] == pytest.approx(np.mean(lse - z[np.arange(9), y]), rel=1e-5)
        assert acc[r] == pytest.approx(np.mean(z.argmax(1) == y))


def test_rejects_bad_settings(data):
    train, test = data
    with pytest.raises(ValueError):
        fit_runs(train, test, [], **KW)
    with pytest.raises(ValueError):
        fit_runs(train, test, [HeldoutRun(lr=-1.0)], **KW)
    with pytest.raises(ValueError):
        fit_runs(train, test, [HeldoutRun(weights=((np.zeros((2, 2)), np.zeros(2)),))], **KW)
