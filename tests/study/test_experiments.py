"""hessinit.study.experiments against materialized Hessians and single calls."""

import numpy as np
import pytest
from conftest import random_images

from hessinit.curvature import full_gauss_newton, full_hessian
from hessinit.nn import mlp
from hessinit.study import experiments


@pytest.fixture(scope="module")
def tiny():
    return random_images(24, (3, 3), 3, seed=7)


def test_chain_rule_holds_to_round_off_and_relu_has_no_own_block_curvature():
    check = experiments.chain_rule_check(activations=("relu", "tanh"), n=8, widths=(4, 3))
    assert list(check.columns[:3]) == ["activation", "layer", "shape"]
    assert list(check["activation"]) == ["relu"] * 3 + ["tanh"] * 3
    assert list(check["layer"]) == ["dense1", "dense2", "dense3"] * 2
    assert list(check["shape"][:3]) == ["49x4", "4x3", "3x10"]
    assert (check[["err_H", "err_G", "err_R", "err_norm"]] < 1e-10).all().all()
    relu = check[check["activation"] == "relu"]
    assert (relu["R"] <= 1e-12 * relu["H"]).all()
    tanh = check[check["activation"] == "tanh"]
    assert (tanh["R"] > 1e-3 * tanh["H"]).iloc[:2].all()  # hidden layers: f'' != 0


def test_relu_curvature_lives_off_the_diagonal_blocks():
    blocks = experiments.block_norms(activations=("relu",), n=8, widths=(4, 3))
    assert list(blocks.columns) == ["activation", "row", "col", "H", "G", "R"]
    assert len(blocks) == 9
    diag = blocks[blocks["row"] == blocks["col"]]
    off = blocks[blocks["row"] != blocks["col"]]
    assert (diag["R"] <= 1e-12 * diag["H"]).all()
    assert (off["R"] > 1e-3 * off["H"]).all()


def test_block_norms_cut_the_full_hessian_at_the_kernels():
    blocks = experiments.block_norms(activations=("tanh",), n=6, widths=(3,))
    model, x, y = experiments.tiny_problem("tanh", n=6, widths=(3,))
    H = full_hessian(model, x, y)
    kernel2 = slice(49 * 3 + 3, 49 * 3 + 3 + 3 * 10)  # after dense1's kernel and bias
    got = blocks.query("row == 'dense1' and col == 'dense2'")["H"].item()
    assert got == pytest.approx(np.linalg.norm(H[: 49 * 3, kernel2]), rel=1e-12)


def test_kron_pattern_is_the_corner_of_dense1s_hessian():
    block = experiments.kron_pattern("relu", n=6, widths=(3,), rows=2)
    model, x, y = experiments.tiny_problem("relu", n=6, widths=(3,))
    H = full_hessian(model, x, y, layer="dense1")
    np.testing.assert_array_equal(block, H[:6, :6])


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
    assert list(frame.columns) == ["activation", "scaling", "sd", "layer", "H", "G", "R", "GR",
                                   "G_over_H", "R_over_H"]  # fmt: skip
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
    assert list(frame.columns[-4:]) == ["activation", "scaling", "G_over_H", "R_over_H"]
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
    assert list(frame.columns) == ["term", "value", "low", "high", "probes", "deflate"]
    H = full_hessian(model, x, tiny.y)
    G = full_gauss_newton(model, x, tiny.y)
    exact = {"H": np.linalg.norm(H), "G": np.linalg.norm(G), "R": np.linalg.norm(H - G)}
    exact["R_over_H"], exact["G_over_H"] = exact["R"] / exact["H"], exact["G"] / exact["H"]
    assert frame["term"].tolist() == list(exact)
    for row in frame.itertuples():
        assert row.low <= exact[row.term] <= row.high, (row, exact[row.term])
        assert row.high - row.low < 0.3 * exact[row.term]
