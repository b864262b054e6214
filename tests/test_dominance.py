"""Gauss-Newton dominance: per-layer ratios against materialized Hessians, whole-network intervals
against the exact norms of the full matrices."""

import numpy as np
import pytest
from conftest import random_images

from hessinit.curvature import full_gauss_newton, full_hessian
from hessinit.nn import mlp
from hessinit.study import experiments


@pytest.fixture(scope="module")
def tiny():
    return random_images(24, (3, 3), 3, seed=7)


def test_scaled_stds():
    assert experiments.scaled_stds(0.1, "dense1", 3) == 0.1
    assert experiments.scaled_stds(0.1, "all", 3) == [0.1, 0.1, 0.1]
    with pytest.raises(ValueError, match="dense1"):
        experiments.scaled_stds(0.1, "some", 3)


def test_at_init_against_full_matrices(tiny):
    frame = experiments.at_init(
        tiny, activations=("tanh", "relu"), sds=(0.5, 2.0), widths=(5, 4), n=24
    )
    assert len(frame) == 2 * 2 * 2 * 3
    row = frame.query(
        "activation == 'tanh' and scaling == 'all' and sd == 2.0 and layer == 'dense1'"
    )
    model = mlp((3, 3), 3, widths=(5, 4), activation="tanh", kernel_std=[2.0] * 3, seed=0)
    H = full_hessian(model, tiny.x, tiny.y, layer="dense1")
    G = full_gauss_newton(model, tiny.x, tiny.y, layer="dense1")
    assert row["G_over_H"].item() == pytest.approx(np.linalg.norm(G) / np.linalg.norm(H), rel=1e-4)
    assert row["R_over_H"].item() == pytest.approx(
        np.linalg.norm(H - G) / np.linalg.norm(H), rel=1e-4
    )
    relu = frame.query("activation == 'relu'")
    assert (relu["R_over_H"] == 0).all() and np.allclose(relu["G_over_H"], 1.0)


def test_along_training_adds_activation_and_ratios(tiny):
    frame = experiments.along_training(
        tiny, ("tanh", "softplus"), 0.5, scaling="all", widths=(5, 4), steps=4,
        hessian_every=2, batch_size=8, progress=False,
    )  # fmt: skip
    assert set(frame["activation"]) == {"tanh", "softplus"}
    checkpoints = frame.dropna(subset=["H"])
    hidden = checkpoints["layer"] != "dense3"
    assert (checkpoints.loc[hidden, "R_over_H"] > 0).all()
    assert (checkpoints.loc[~hidden, "R_over_H"] == 0).all()  # the logits layer is linear


def test_whole_network_intervals_cover_exact_norms(tiny):
    model = mlp((3, 3), 3, widths=(5, 4), activation="tanh", kernel_std=[1.0] * 3, seed=1,
                dtype="float64")  # fmt: skip
    x = tiny.x.astype(np.float64)
    frame = experiments.whole_network(model, x, tiny.y, probes=60, deflate=8, seed=3)
    H = full_hessian(model, x, tiny.y)
    G = full_gauss_newton(model, x, tiny.y)
    exact = {"H": np.linalg.norm(H), "G": np.linalg.norm(G), "R": np.linalg.norm(H - G)}
    for row in frame.itertuples():
        assert row.low <= exact[row.term] <= row.high, (row, exact[row.term])
        assert row.high - row.low < 0.3 * exact[row.term]


def test_whole_network_grid_matches_single_networks(tiny):
    grid = experiments.whole_network_grid(tiny, ("tanh", "relu"), (0.5, 1.0), widths=(5, 4), n=24,
                                        probes=6, deflate=2, seed=1)  # fmt: skip
    assert len(grid) == 2 * 2 * 3
    model = mlp((3, 3), 3, widths=(5, 4), activation="relu", kernel_std=1.0, seed=1)
    one = experiments.whole_network(model, tiny.x, tiny.y, probes=6, deflate=2, seed=1)
    got = grid.query("activation == 'relu' and sd == 1.0").reset_index(drop=True)
    np.testing.assert_allclose(got["value"], one["value"], rtol=1e-6)
