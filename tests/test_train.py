"""Training with Hessian tracking, the Taylor step size, figures and the command line.

References are independent: the materialized Hessian of a tiny network (``full_hessian``), central
finite differences of the gradient, and the mean loss evaluated directly.
"""

import functools

import matplotlib.image
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images

from hessinit import stepsize, train
from hessinit.__main__ import main
from hessinit.curvature import full_hessian
from hessinit.nn import mean_loss, mlp
from hessinit.study import figures


@pytest.fixture(scope="module")
def tiny():
    return random_images(48, (4, 3), 4, seed=3)


KW = dict(widths=(6, 5), steps=12, batch_size=8, hessian_every=4, progress=False)


def test_frame_layout_and_another_seed_differs(tiny):
    """The layout of the frame; another seed gives other losses. (That the same seed gives the
    same frame: test_initial_hessian_and_spectra_match_materialized_reference, two runs of seed
    5 equal in every column.)"""
    frame = train.run(tiny, 0.3, **KW)
    other = train.run(tiny, 0.3, seed=2, **KW)
    assert not np.allclose(frame["loss"], other["loss"])
    assert list(frame.columns) == list(train.COLUMNS)
    # one row per step (0..12) and layer
    assert len(frame) == 13 * 3
    assert set(frame["layer"]) == {"dense1", "dense2", "dense3"}
    checkpoints = sorted(frame.loc[frame["H"].notna(), "step"].unique())
    assert checkpoints == [0, 4, 8, 12]
    assert frame.attrs["diverged_at"] is None
    # the last step only measures: no step size; every other step took lr
    assert frame.loc[frame["step"] == 12, "lr"].isna().all()
    assert (frame.loc[frame["step"] < 12, "lr"] == 0.01).all()


def test_batches_follow_the_documented_draws(tiny):
    """One generator, default_rng(seed): the Hessian batch (without replacement), one fixed
    mini-batch, then one mini-batch per step; the losses at step 0 are those batches' losses on
    the freshly built network, evaluated directly."""
    frame = train.run(tiny, 0.3, seed=4, **dict(KW, hessian_batch=16))
    rng = np.random.default_rng(4)
    h_idx = rng.choice(48, size=16, replace=False)
    rng.integers(0, 48, size=8)  # the fixed batch of same_batch=True
    idx = rng.integers(0, 48, size=8)
    model = mlp((4, 3), 4, widths=(6, 5), sd=0.3, seed=4)
    first = frame.query("step == 0").iloc[0]
    assert first["loss"] == pytest.approx(float(mean_loss(model, tiny.x[idx], tiny.y[idx])), 1e-6)
    h_loss = float(mean_loss(model, tiny.x[h_idx], tiny.y[h_idx]))
    assert first["hessian_loss"] == pytest.approx(h_loss, rel=1e-6)


def test_initial_hessian_and_spectra_match_materialized_reference(tiny):
    """With the Hessian batch equal to the whole (permuted) data set, the step-0 norms are those of
    the full Hessian of the freshly built network on all the data; spectra=True adds lambda_max
    per layer and for the network at the checkpoints, at step 0 the largest eigenvalues of those
    materialized Hessians (the float32 model: agreement to float32 accuracy), and changes nothing
    else: a run of the same seed without it gives the same frame."""
    frame = train.run(tiny, 0.3, hessian_batch=len(tiny.y), seed=5, spectra=True, **KW)
    assert list(frame.columns) == list(train.COLUMNS) + list(train.SPECTRA_COLUMNS)
    at = frame["H"].notna()
    assert frame.loc[at, "lambda_converged"].eq(True).all()
    assert frame.loc[~at, ["lambda_max", "lambda_max_network"]].isna().all().all()
    assert frame.loc[at, "lambda_max"].gt(0).all()
    model = mlp((4, 3), 4, widths=(6, 5), sd=0.3, seed=5)
    full = full_hessian(model, tiny.x, tiny.y)  # each kernel's Hessian is a diagonal block
    for name in ("dense1", "dense2", "dense3"):
        h = _block(model, full, model.get_layer(name).kernel)
        row = frame.query("step == 0 and layer == @name").iloc[0]
        assert row["H"] == pytest.approx(np.linalg.norm(h), rel=1e-4)
        assert row["lambda_max"] == pytest.approx(np.linalg.eigvalsh(h).max(), rel=1e-4)
    loss = float(mean_loss(model, tiny.x, tiny.y))
    assert frame.query("step == 0")["hessian_loss"].iloc[0] == pytest.approx(loss, rel=1e-5)
    ref = np.linalg.eigvalsh(full).max()
    network = frame.query("step == 0")["lambda_max_network"]
    assert network.nunique() == 1 and network.iloc[0] == pytest.approx(ref, rel=1e-4)
    # the network's top eigenvalue bounds each layer's (a diagonal block's) from above
    assert (frame.loc[at, "lambda_max"] <= frame.loc[at, "lambda_max_network"] * (1 + 1e-5)).all()
    # tracking does not change the training itself, and the same seed gives the same frame
    plain = train.run(tiny, 0.3, hessian_batch=len(tiny.y), seed=5, **KW)
    assert frame[list(train.COLUMNS)].equals(plain)


def _block(model, full, variable):
    """The diagonal block of ``variable`` in ``full``, a matrix over all of ``model``'s trainable
    weights in ``full_hessian``'s order (each variable flattened row-major, one after another):
    ``full_hessian(model, x, y, layer=variable)`` without a second nested autodiff."""
    start = 0
    for v in model.trainable_variables:
        size = int(np.prod(v.shape))
        if v is variable:
            return full[start : start + size, start : start + size]
        start += size
    raise KeyError(variable.path)


def test_fresh_batches_versus_same_batch(tiny):
    """With a vanishing step the weights stay put, so the mini-batch loss only reflects which
    batch was drawn: constant for the original notebook's bug, varying when fixed."""
    kw = dict(KW, steps=6)
    same = train.run(tiny, 0.3, lr=1e-12, same_batch=True, **kw)
    fresh = train.run(tiny, 0.3, lr=1e-12, **kw)
    assert np.ptp(same["loss"]) < 1e-6
    assert np.ptp(fresh["loss"]) > 1e-3


def test_sgd_step_is_plain_gradient_descent(tiny):
    """Training on one batch for one step equals w - lr * grad computed directly."""
    model = mlp((4, 3), 4, widths=(6, 5), sd=0.3, seed=0)
    ref = mlp((4, 3), 4, widths=(6, 5), sd=0.3, seed=0)
    x, y = tf.constant(tiny.x[:8]), tf.constant(tiny.y[:8])
    train._sgd_step(model, x, y, tf.constant(0.1))
    with tf.GradientTape() as tape:
        loss = mean_loss(ref, x, y)
    grads = tape.gradient(loss, ref.trainable_variables)
    for v, w, g in zip(model.trainable_variables, ref.trainable_variables, grads, strict=True):
        np.testing.assert_allclose(v.numpy(), w.numpy() - 0.1 * g.numpy(), rtol=1e-6, atol=1e-7)


def test_taylor_step_against_full_hessian_and_finite_differences(tiny):
    model = mlp((4, 3), 4, widths=(5,), sd=0.5, seed=0, dtype="float64")
    x, y = tiny.x.astype(np.float64), tiny.y
    t = stepsize.taylor_step(model, x, y, lr=1e-3)
    _, grads = stepsize.gradient(model, x, y)
    g = np.concatenate([v.numpy().ravel() for v in grads])
    H = full_hessian(model, x, y)
    assert t.grad_norm == pytest.approx(np.linalg.norm(g), rel=1e-10)
    assert t.gHg == pytest.approx(g @ H @ g, rel=1e-8)
    assert t.gamma_star == pytest.approx(g @ g / (g @ H @ g), rel=1e-8)
    # A small step: the quadratic model is accurate to third order.
    assert t.realised == pytest.approx(t.predicted, rel=1e-3)
    # Realised decrease is the loss difference evaluated directly; taylor_step left the weights.
    before = [v.numpy().copy() for v in model.trainable_variables]
    moved = mlp((4, 3), 4, widths=(5,), sd=0.5, seed=0, dtype="float64")
    for v, w, d in zip(moved.trainable_variables, before, grads, strict=True):
        v.assign(w - t.gamma_star * d.numpy())
    after = float(mean_loss(moved, x, y))
    assert t.realised_star == pytest.approx(t.loss - after, rel=1e-10)
    stepsize.taylor_step(model, x, y, lr=1e-3)
    for v, b in zip(model.trainable_variables, before, strict=True):
        np.testing.assert_array_equal(v.numpy(), b)

    # Central finite difference of the gradient along g gives H g.
    def grad_at(shift):
        for v, d in zip(model.trainable_variables, grads, strict=True):
            v.assign_add(shift * d)
        _, gs = stepsize.gradient(model, x, y)
        for v, d in zip(model.trainable_variables, grads, strict=True):
            v.assign_sub(shift * d)
        return np.concatenate([v.numpy().ravel() for v in gs])

    eps = 1e-5
    fd = (grad_at(eps) - grad_at(-eps)) / (2 * eps)
    assert g @ fd == pytest.approx(t.gHg, rel=1e-5)


def test_divergence_is_recorded_not_raised(tiny):
    frame = train.run(tiny, [3.0] * 3, activation="linear", lr=100.0,
                      **dict(KW, steps=200))  # fmt: skip
    step = frame.attrs["diverged_at"]
    assert step is not None and step < 200
    assert not np.isfinite(frame["loss"].iloc[-1])
    assert frame["step"].max() == step


def test_taylor_learning_rate(tiny):
    # full-batch steps: on one batch a fraction of gamma* follows the quadratic model's descent
    frame = train.run(tiny, 0.3, lr=("taylor", 0.5), **dict(KW, batch_size=48))
    lrs = frame.loc[frame["step"] < 12, "lr"]
    assert (lrs >= 0).all() and lrs.nunique() > 1
    on_hessian_batch = frame["hessian_loss"].dropna()
    assert on_hessian_batch.iloc[-1] < on_hessian_batch.iloc[0]


def test_bad_arguments(tiny):
    with pytest.raises(ValueError, match="lr"):
        train.run(tiny, 0.3, lr=-1, **KW)
    with pytest.raises(ValueError, match="positive"):
        train.run(tiny, -0.3, **KW)


def test_training_curves_figure(tiny, tmp_path):
    frame = train.experiment(tiny, sds=(0.01, 1.0), **KW)
    fig = figures.training_curves(frame, quantity="H")
    assert len(fig.axes) == 4  # two panels, each with a twin axis
    labels = [ax.get_xlabel() for ax in fig.axes[:2]]
    assert labels == ["SGD step", "SGD step"]
    path = tmp_path / "fig.png"
    figures.save(fig, path)
    image = matplotlib.image.imread(path)
    assert image.shape[2] == 3 or np.all(image[..., 3] == 1.0)  # opaque
    assert np.allclose(image[0, 0, :3], 1.0)  # white corner


def test_command_line_experiment(tmp_path, capsys):
    """Two sds x two seeds as one program: one tidy CSV, whose runs equal train.run's."""
    from hessinit.data import load

    out = tmp_path / "out"
    code = main(["experiment", "--steps", "4", "--hessian-every", "2", "--hessian-batch", "64",
                 "--n", "300", "--sd", "0.01", "1", "--seed", "0", "3",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    frame = __import__("pandas").read_csv(out / "mnist-5k.csv")
    for column in ("sd", "seed", "step", "layer", "H", "G", "R", "loss"):
        assert column in frame
    assert sorted(frame["sd"].unique()) == [0.01, 1.0] and sorted(frame["seed"].unique()) == [0, 3]
    assert len(frame) == 4 * 5 * 3  # runs x steps 0..4 x layers
    ref = train.run(load("mnist-5k", n=300, seed=0), 1.0, seed=3, steps=4, hessian_every=2,
                    hessian_batch=64, progress=False)  # fmt: skip
    mine = frame.query("sd == 1.0 and seed == 3").reset_index(drop=True)
    for column in ("H", "G", "loss"):
        a, b = mine[column].to_numpy(float), ref[column].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a[~np.isnan(b)], b[~np.isnan(b)], rtol=1e-5)
    assert (out / "mnist-5k.png").stat().st_size > 10_000
    assert sorted(p.name for p in out.iterdir()) == ["mnist-5k.csv", "mnist-5k.png"]
    text = capsys.readouterr().out
    assert "4 runs of 4 steps" in text and "Hessian norms at init" in text


def test_command_line_errors(tmp_path, capsys):
    try:  # argparse's choices exit with 2; a check of the command's own returns 2
        code = main(["experiment", "--dataset", "imagenet", "--out", str(tmp_path)])
    except SystemExit as stop:
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err
    assert "mnist-5k" in err and "imagenet" in err
    assert not any(tmp_path.iterdir())
    with pytest.raises(SystemExit):
        main(["experiment", "--sd", "-1"])


def test_fit_reports_held_out_accuracy_computed_directly(tiny):
    from hessinit.data import Dataset

    train_part = Dataset(tiny.x[:36], tiny.y[:36], "tiny", 4, (4, 3), "test")
    test_part = Dataset(tiny.x[36:], tiny.y[36:], "tiny", 4, (4, 3), "test")
    model = mlp((4, 3), 4, widths=(6, 5), sd=[0.5] * 3, seed=0)
    frame = train.fit(model, train_part, test_part, steps=20, eval_every=10, batch_size=8,
                      lr=0.1, progress=False)  # fmt: skip
    assert list(frame["step"]) == [0, 10, 20]
    logits = model(test_part.x).numpy()
    accuracy = np.mean(logits.argmax(axis=1) == test_part.y)
    assert frame["test_accuracy"].iloc[-1] == pytest.approx(accuracy)
    assert frame["test_loss"].iloc[-1] == pytest.approx(
        float(mean_loss(model, test_part.x, test_part.y)), rel=1e-6
    )
    assert np.isnan(frame["loss"].iloc[0]) and np.isfinite(frame["loss"].iloc[1:]).all()


# --- convolutional models: train.run(model=...) ---


@functools.cache
def _images():
    return random_images(24, (6, 6), 3, seed=7)


@pytest.fixture(scope="module")
def tiny_images():
    return _images()


def _cnn(activation, seed=0):
    from hessinit.nn import small_cnn

    return small_cnn((6, 6, 1), 3, channels=(2, 2), activation=activation, sd=[0.5] * 3,
                     seed=seed)  # fmt: skip


#: What the CNN runs below share: the Hessian batch is all 24 images, two checkpoints (0, 4).
CONV_KW = dict(hessian_batch=24, seed=2, **dict(KW, steps=4))


@functools.cache
def _conv_run(activation):
    """``(model, frame)``: a CNN trained in place by ``train.run`` with exact per-kernel norms
    and spectra; run once per activation for the tests of this module (they only read it)."""
    model = _cnn(activation)
    frame = train.run(_images(), model=model, tensor_options={"method": "columns"},
                      spectra=True, **CONV_KW)  # fmt: skip
    return model, frame


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_conv_model_norms_and_spectra_match_materialized(tiny_images, activation):
    """A CNN passed as ``model``: at step 0 each kernel's H, G, R (exact columns) and lambda_max,
    and the network's lambda_max, are those of the materialized Hessian and Gauss-Newton matrix
    of the fresh network on all the data; the model object is the one trained."""
    from hessinit.curvature import full_gauss_newton

    model, frame = _conv_run(activation)
    fresh = _cnn(activation)
    x = tiny_images.x.reshape(24, 6, 6, 1)
    assert frame["layer"].unique().tolist() == ["conv1", "conv2", "dense"]
    assert frame.loc[frame["H"].notna(), "lambda_converged"].eq(True).all()
    # H and G over all weights; each kernel's matrices are diagonal blocks
    full = full_hessian(fresh, x, tiny_images.y)
    full_g = full_gauss_newton(fresh, x, tiny_images.y)
    for name in ("conv1", "conv2", "dense"):
        kernel = fresh.get_layer(name).kernel
        h, g = _block(fresh, full, kernel), _block(fresh, full_g, kernel)
        row = frame.query("step == 0 and layer == @name").iloc[0]
        assert row["H"] == pytest.approx(np.linalg.norm(h), rel=1e-4)
        assert row["G"] == pytest.approx(np.linalg.norm(g), rel=1e-4)
        assert row["R"] == pytest.approx(np.linalg.norm(h - g), rel=1e-3, abs=1e-6)
        assert row["lambda_max"] == pytest.approx(np.linalg.eigvalsh(h).max(), rel=1e-3)
    if activation == "relu":  # the logits are piecewise linear in every kernel
        assert frame["R"].dropna().abs().max() < 1e-6
    else:
        assert frame.query("layer == 'conv1'")["R"].dropna().gt(0).all()
    network = np.linalg.eigvalsh(full).max()
    assert frame.query("step == 0")["lambda_max_network"].iloc[0] == pytest.approx(network, 1e-3)
    # the given model was trained in place: its weights left the fresh ones
    assert not np.allclose(model.get_layer("conv1").kernel, fresh.get_layer("conv1").kernel)
    loss = float(mean_loss(fresh, x, tiny_images.y))
    assert frame.query("step == 0")["hessian_loss"].iloc[0] == pytest.approx(loss, rel=1e-5)


def test_conv_model_refused_with_batchnorm_or_wrong_input(tiny_images):
    from hessinit.nn import small_resnet

    bn = small_resnet((6, 6, 1), 3, channels=2, blocks=1, batchnorm=True)
    with pytest.raises(ValueError, match="BatchNorm"):
        train.run(tiny_images, model=bn, **KW)
    from hessinit.nn import small_cnn

    with pytest.raises(ValueError, match="shape"):
        train.run(tiny_images, model=small_cnn((8, 8, 1), 3, channels=(2, 2)), **KW)


def test_network_only_spectra_skip_the_layers_and_keep_the_network(tiny_images):
    """spectra="network" records the same network lambda_max as spectra=True, no layer's."""
    kw = dict(tensor_options={"method": "columns"}, **CONV_KW)
    _, both = _conv_run("tanh")  # spectra=True, the same run
    network = train.run(tiny_images, model=_cnn("tanh"), spectra="network", **kw)
    assert network["lambda_max"].isna().all()
    at = network["H"].notna()
    np.testing.assert_allclose(network.loc[at, "lambda_max_network"],
                               both.loc[at, "lambda_max_network"], rtol=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="spectra"):
        train.run(tiny_images, model=_cnn("tanh"), spectra="layers", **kw)
