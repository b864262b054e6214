"""Many runs as one program (hessinit.train.stacked, stacked_tracking) against references.

References: today's single-run trainer ``train.run`` (its own Keras model, its own compiled
step, its own Hessian tracking), the same run trained alone, the layer Hessians materialized by
nested autodiff (``full_hessian``, ``full_gauss_newton``) and the single-run Kronecker norms of
``hessinit.curvature``.
"""

import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images

from hessinit import stepsize, train
from hessinit.curvature import full_gauss_newton, full_hessian, hessian_norms_all_layers
from hessinit.nn import mlp
from hessinit.train import stacked, stacked_tracking
from hessinit.train.stacked import Run


@pytest.fixture(scope="module")
def tiny():
    return random_images(48, (4, 3), 4, seed=3)


KW = dict(widths=(6, 5), steps=12, batch_size=8, hessian_every=4, hessian_batch=16, progress=False)


def _close(mine, ref, column, rtol):
    a, b = mine[column].to_numpy(float), ref[column].to_numpy(float)
    assert np.array_equal(np.isnan(a), np.isnan(b)), column
    ok = ~np.isnan(b)
    np.testing.assert_allclose(a[ok], b[ok], rtol=rtol, atol=0, err_msg=column)


def _same_as_train_run(mine, ref, rtol=1e-5):
    assert len(mine) == len(ref)
    assert mine["step"].tolist() == ref["step"].tolist()
    assert mine["layer"].tolist() == ref["layer"].tolist()
    for column in ("loss", "lr", "H", "G", "R", "hessian_loss", "grad_norm"):
        _close(mine, ref, column, rtol)
    # <G, R> may cancel to far below ||G|| ||R||: compare on that scale
    scale = (ref["G"] * ref["R"]).to_numpy(float)
    diff = np.abs(mine["GR"].to_numpy(float) - ref["GR"].to_numpy(float))
    ok = ~np.isnan(scale)
    assert np.all(diff[ok] <= rtol * scale[ok] + 1e-300)


def test_initial_weights_equal_mlp():
    for sds in [(0.5, None, None), (1e-5, 0.2, 3.0), (None, None, None)]:
        weights = stacked.initial_weights((12, 6, 5, 4), sds, seed=11)
        model = mlp((4, 3), 4, widths=(6, 5), sd=list(sds), seed=11)
        for (w, b), layer in zip(weights, model.layers[1:], strict=True):
            assert np.array_equal(w, layer.kernel.numpy())
            assert np.array_equal(b, layer.bias.numpy())


@pytest.mark.parametrize("activation", ["relu", pytest.param("tanh", marks=pytest.mark.slow)])
def test_each_run_equals_train_run(tiny, activation):
    """Seeds, sds, per-layer sds and learning rates mixed in one program: every run equals
    train.run with the same settings (weights, batches, Hessian batch), to float rounding."""
    runs = [
        Run(seed=0, sd=0.3),
        Run(seed=1, sd=1.0),
        Run(seed=2, sd=[0.7, 0.4, None], lr=0.05),
    ]
    frame = stacked.train_runs(tiny, runs, activation=activation, **KW)
    assert list(frame.columns) == list(stacked.COLUMNS)
    assert not frame["diverged"].any() and frame.attrs["diverged"] == {}
    for r, run in enumerate(runs):
        ref = train.run(tiny, run.sd, lr=run.lr, seed=run.seed, activation=activation, **KW)
        mine = frame[frame["run"] == r].reset_index(drop=True)
        assert (mine["sd"] == ref["sd"]).all() and (mine["seed"] == run.seed).all()
        _same_as_train_run(mine, ref)
    # the per-layer run records dense1's sd, as train.run does
    assert runs[-1].sd == (0.7, 0.4, None) and (frame.loc[frame["run"] == 2, "sd"] == 0.7).all()
    if activation == "tanh":
        assert frame["R"].max() > 0  # the curvature term is exercised


def test_same_batch_and_some_layers_equal_train_run(tiny):
    """The original notebook's one mini-batch, and only some layers tracked."""
    kw = dict(KW, same_batch=True, layers=["dense1", "dense3"])
    frame = stacked.train_runs(tiny, [Run(seed=5, sd=0.5)], **kw)
    ref = train.run(tiny, 0.5, seed=5, **kw)
    assert ref["layer"].unique().tolist() == ["dense1", "dense3"]
    _same_as_train_run(frame.reset_index(drop=True), ref)


def test_taylor_columns_equal_train_run(tiny):
    """With taylor=True the Taylor and saturation columns are train.run's, run by run."""
    runs = [Run(seed=0, sd=0.5), Run(seed=1, sd=1.0, lr=0.05)]
    frame = stacked.train_runs(tiny, runs, activation="tanh", taylor=True, **KW)
    assert list(frame.columns) == list(stacked.COLUMNS) + list(stacked.TAYLOR_COLUMNS)
    for r, run in enumerate(runs):
        ref = train.run(tiny, run.sd, lr=run.lr, seed=run.seed, activation="tanh", **KW)
        mine = frame[frame["run"] == r].reset_index(drop=True)
        _same_as_train_run(mine, ref)
        for column in stacked.TAYLOR_COLUMNS:
            _close(mine, ref, column, 1e-4)


def test_run_alone_and_among_others_agree(tiny):
    target = Run(seed=4, sd=0.6, lr=0.03)
    others = [Run(seed=s, sd=sd) for s in (0, 9) for sd in (0.1, 2.0)]
    alone = stacked.train_runs(tiny, [target], **KW)
    among = stacked.train_runs(tiny, [*others[:2], target, *others[2:]], **KW)
    mine = among[among["run"] == 2].reset_index(drop=True)
    alone = alone.assign(run=2)
    for column in ("loss", "H", "G", "R", "hessian_loss", "grad_norm"):
        _close(mine, alone, column, 1e-6)


def test_many_runs_take_the_graph_step_and_agree_with_xla(tiny):
    """Above XLA_MAX_RUNS the step runs as a TensorFlow graph: a run among that many equals
    the same run alone (XLA-compiled) to float rounding."""
    others = [Run(seed=s, sd=0.4) for s in range(10, 10 + stacked.XLA_MAX_RUNS)]
    target = Run(seed=4, sd=0.6, lr=0.03)
    among = stacked.train_runs(tiny, [*others, target], **KW)
    alone = stacked.train_runs(tiny, [target], **KW).assign(run=len(others))
    mine = among[among["run"] == len(others)].reset_index(drop=True)
    for column in ("loss", "H", "G", "hessian_loss", "grad_norm"):
        _close(mine, alone, column, 1e-5)


def test_a_diverging_run_is_flagged_and_the_others_go_on(tiny):
    """One absurd learning rate: that run ends at its first non-finite loss, as train.run's
    does; the runs beside it equal their own train.run."""
    kw = dict(KW, steps=200, hessian_every=50)
    sds = (3.0, 3.0, 3.0)
    runs = [Run(seed=1, sd=0.3), Run(seed=1, sd=sds, lr=100.0), Run(seed=2, sd=0.3)]
    frame = stacked.train_runs(tiny, runs, activation="linear", **kw)
    bad = train.run(tiny, sds, lr=100.0, seed=1, activation="linear", **kw)
    step = bad.attrs["diverged_at"]
    assert step is not None and frame.attrs["diverged"] == {1: step}
    diverged = frame[frame["run"] == 1]
    assert diverged["diverged"].all() and diverged["step"].max() == step
    assert not np.isfinite(diverged["loss"].iloc[-1])
    for r in (0, 2):
        mine = frame[frame["run"] == r].reset_index(drop=True)
        assert not mine["diverged"].any()
        ref = train.run(tiny, 0.3, seed=runs[r].seed, activation="linear", **kw)
        _same_as_train_run(mine, ref)


def _alone(tiny, sd, seed, idx, lr, activation):
    """The reference: one run on its own float32 Keras mlp, hessinit.stepsize.sgd_steps."""
    model = mlp((4, 3), 4, widths=(6, 5), activation=activation, sd=list(sd), seed=seed)
    losses = stepsize.sgd_steps(model, tiny.x, tiny.y, idx, lr)
    return losses, model.get_weights()


@pytest.mark.parametrize("jit", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_taylor_and_fixed_steps_in_one_program_equal_each_run_alone(tiny, jit):
    """Fixed steps and fractions of gamma* of each mini-batch, interleaved in one program (the
    Taylor runs are not the last ones): every run's losses and weights equal the run trained
    alone by hessinit.stepsize.sgd_steps (g^T H g from its own H g product). jit=True: XLA
    (slow: XLA compiles the Taylor step for seconds)."""
    sds = [(0.5, None, None), (1.0, 0.3, None), (0.5, None, None), (0.2, 0.2, 0.2)]
    seeds, lrs = [0, 1, 0, 2], [("taylor", 0.5), 0.1, 0.3, ("taylor", 1.0)]
    rng = np.random.default_rng(5)
    idx = rng.integers(0, len(tiny.y), size=(20, 4, 8))
    fans = (12, 6, 5, 4)
    weights = stacked.stack_weights([stacked.initial_weights(fans, sd, s)
                                     for sd, s in zip(sds, seeds, strict=True)])  # fmt: skip
    taylor = [isinstance(lr, tuple) for lr in lrs]
    steps = [lr[1] if isinstance(lr, tuple) else lr for lr in lrs]
    x, y = tf.constant(tiny.x.reshape(len(tiny.y), -1)), tf.constant(tiny.y)
    acts = ("tanh", "tanh", "linear")
    weights, losses = stacked.sgd_steps(weights, x, y, idx, steps, acts, jit=jit, taylor=taylor)
    assert losses.shape == (20, 4)
    for r in range(4):
        ref_losses, ref_weights = _alone(tiny, sds[r], seeds[r], idx[:, r], lrs[r], "tanh")
        np.testing.assert_allclose(losses[:, r], ref_losses, rtol=1e-5)
        mine = [t.numpy()[r] for pair in weights for t in pair]
        for a, b in zip(mine, ref_weights, strict=True):  # float32 rounding of each tensor
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())
    assert np.isfinite(losses).all()


def test_sgd_steps_needs_one_lr_and_one_taylor_flag_per_run():
    weights = stacked.stack_weights([stacked.initial_weights((3, 2), (0.1,), s) for s in (0, 1)])
    x, y, idx = tf.ones((4, 3)), tf.constant([0, 1, 0, 1]), np.zeros((1, 2, 2), int)
    with pytest.raises(ValueError, match="one entry per run"):
        stacked.sgd_steps(weights, x, y, idx, [0.1], ("linear",))
    with pytest.raises(ValueError, match="one entry per run"):
        stacked.sgd_steps(weights, x, y, idx, [0.1, 0.1], ("linear",), taylor=[True])


def test_batch_losses_equal_mean_loss_in_groups_of_runs(tiny, monkeypatch):
    """Each run on its own rows; with a tiny memory budget the runs go in groups of two."""
    from hessinit.nn import mean_loss

    monkeypatch.setattr(stacked, "_EVAL_BYTES", 2 * 4 * 10 * 12)  # two runs of 10 rows at once
    fans, seeds = (12, 6, 5, 4), [3, 4, 5]
    per_run = [stacked.initial_weights(fans, (0.5, None, None), s) for s in seeds]
    rows = np.random.default_rng(0).integers(0, len(tiny.y), size=(3, 10))
    x, y = tf.constant(tiny.x.reshape(len(tiny.y), -1)), tf.constant(tiny.y)
    out = stacked.batch_losses(
        stacked.stack_weights(per_run), x, y, rows, ("relu",) * 2 + ("linear",)
    )
    for r, s in enumerate(seeds):
        model = mlp((4, 3), 4, widths=(6, 5), sd=0.5, seed=s)
        ref = float(mean_loss(model, tiny.x[rows[r]], tiny.y[rows[r]]))
        assert out[r] == pytest.approx(ref, rel=1e-6)


def _stack(models):
    """The kernels and biases of Keras models stacked on a run axis (float64)."""
    layers = [[m.get_layer(f"dense{k}") for m in models] for k in (1, 2, 3)]
    return [
        (np.stack([d.kernel.numpy() for d in ds]), np.stack([d.bias.numpy() for d in ds]))
        for ds in layers
    ]


def test_stacked_norms_equal_the_materialized_layer_hessians():
    """Two runs of a 3-5-4-3 tanh network (float64), each on its own batch: H and G of every
    kernel from the matrices by nested autodiff, R = H - G."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 7, 3)), rng.integers(0, 3, (2, 7))
    models = [mlp((3,), 3, (5, 4), "tanh", sd=[0.8, 1.1, 0.9], seed=s, dtype="float64")
              for s in (0, 1)]  # fmt: skip
    for m in models:  # non-zero biases, so that the recursion's bias terms are exercised
        for v in m.trainable_variables[1::2]:
            v.assign(rng.normal(scale=0.3, size=v.shape))
    out = stacked_tracking.stacked_norms(_stack(models), x, y, ("tanh", "tanh", "linear"))
    for r, model in enumerate(models):
        for k in range(3):
            H = full_hessian(model, x[r], y[r], layer=k)
            G = full_gauss_newton(model, x[r], y[r], layer=k)
            assert out["H"][r, k] == pytest.approx(np.linalg.norm(H), rel=1e-10)
            assert out["G"][r, k] == pytest.approx(np.linalg.norm(G), rel=1e-10)
            assert out["R"][r, k] == pytest.approx(np.linalg.norm(H - G), rel=1e-8, abs=1e-14)
            assert out["GR"][r, k] == pytest.approx(np.sum(G * (H - G)), rel=1e-8, abs=1e-14)
        logits = model(x[r]).numpy()
        assert out["accuracy"][r] == pytest.approx(np.mean(logits.argmax(1) == y[r]))


def test_stacked_norms_at_tiny_sd_equal_the_single_run_norms():
    """Every layer N(0, 1e-5^2): Hessian entries far below float32's normal range, so only a
    float64 computation keeps them; the batched norms equal hessian_norms_all_layers'."""
    rng = np.random.default_rng(1)
    x, y = rng.random((3, 20, 12)).astype(np.float32), rng.integers(0, 4, (3, 20))
    models = [mlp((12,), 4, (6, 5), "tanh", sd=[1e-5] * 3, seed=s) for s in range(3)]
    out = stacked_tracking.stacked_norms(_stack(models), x, y, ("tanh", "tanh", "linear"))
    for r, model in enumerate(models):
        ref = hessian_norms_all_layers(model, x[r], y[r])
        for k, name in enumerate(ref):
            assert out["H"][r, k] == pytest.approx(ref[name].H, rel=1e-9)
            assert out["G"][r, k] == pytest.approx(ref[name].G, rel=1e-9)
            assert out["R"][r, k] == pytest.approx(ref[name].R, rel=1e-9, abs=1e-300)
    assert 0 < out["H"][:, 2].max() < 1e-6  # the logits layer's H ~ sd^4 scale: tiny, not 0


def test_the_step_is_traced_once_per_architecture_and_shape(tiny):
    stacked.train_runs(tiny, stacked.grid(sds=(0.5,), seeds=(0, 1)), **KW)
    traces = stacked._sgd_chunk.experimental_get_tracing_count()
    # other seeds, sds, learning rates and a different number of steps: the same program
    runs = [Run(seed=7, sd=0.1, lr=0.2), Run(seed=8, sd=2.0)]
    stacked.train_runs(tiny, runs, **dict(KW, steps=40))
    assert stacked._sgd_chunk.experimental_get_tracing_count() == traces


def test_bad_arguments(tiny):
    with pytest.raises(ValueError, match="lr"):
        stacked.train_runs(tiny, [Run(lr=-1.0)], **KW)
    with pytest.raises(ValueError, match="empty"):
        stacked.train_runs(tiny, [], **KW)
    with pytest.raises(ValueError, match="REGISTRY"):
        stacked.train_runs(tiny, [Run()], activation="swish", **KW)
    with pytest.raises(ValueError, match="dense9"):
        stacked.train_runs(tiny, [Run()], layers=["dense9"], **KW)
    with pytest.raises(ValueError, match="positive"):
        stacked.train_runs(tiny, [Run(sd=-0.3)], **KW)
    with pytest.raises(ValueError, match="one entry per dense layer"):
        stacked.train_runs(tiny, [Run(sd=(0.1, 0.1))], **KW)
