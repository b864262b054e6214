"""The chain rule chapter (hessinit.chapters.chain_rule): the split H = G + R, block norms and the
Kronecker pattern against full matrices, and its figures.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from hessinit.chapters import chain_rule  # noqa: E402
from hessinit.curvature import full_hessian  # noqa: E402
from hessinit.study import experiments  # noqa: E402


def test_chain_rule_holds_to_round_off_and_relu_has_no_own_block_curvature():
    check = chain_rule.chain_rule_check(activations=("relu", "tanh"), n=8, widths=(4, 3))
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
    blocks = chain_rule.block_norms(activations=("relu",), n=8, widths=(4, 3))
    assert list(blocks.columns) == ["activation", "row", "col", "H", "G", "R"]
    assert len(blocks) == 9
    diag = blocks[blocks["row"] == blocks["col"]]
    off = blocks[blocks["row"] != blocks["col"]]
    assert (diag["R"] <= 1e-12 * diag["H"]).all()
    assert (off["R"] > 1e-3 * off["H"]).all()


def _record_full_hessian(monkeypatch, problem):
    """Let the chapter's ``full_hessian`` calls through, each checked to be on ``problem``
    (``tiny_problem``'s model, images and labels) and recorded: the reference matrix without a
    second nested autodiff of the same network (seconds each)."""
    model, x, y = problem
    seen = []

    def recorded(got_model, got_x, got_y, **kwargs):
        for a, b in zip(got_model.get_weights(), model.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(got_x, x)
        np.testing.assert_array_equal(got_y, y)
        seen.append(full_hessian(got_model, got_x, got_y, **kwargs))
        return seen[-1]

    monkeypatch.setattr(chain_rule, "full_hessian", recorded)
    return seen


def test_block_norms_cut_the_full_hessian_at_the_kernels(monkeypatch):
    problem = experiments.tiny_problem("tanh", n=6, widths=(3,))
    seen = _record_full_hessian(monkeypatch, problem)
    blocks = chain_rule.block_norms(activations=("tanh",), n=6, widths=(3,))
    (H,) = seen  # the full Hessian of tiny_problem's network over all its weights
    assert H.shape == (49 * 3 + 3 + 3 * 10 + 10,) * 2
    kernel2 = slice(49 * 3 + 3, 49 * 3 + 3 + 3 * 10)  # after dense1's kernel and bias
    got = blocks.query("row == 'dense1' and col == 'dense2'")["H"].item()
    assert got == pytest.approx(np.linalg.norm(H[: 49 * 3, kernel2]), rel=1e-12)


def test_kron_pattern_is_the_corner_of_dense1s_hessian(monkeypatch):
    problem = experiments.tiny_problem("relu", n=6, widths=(3,))
    seen = _record_full_hessian(monkeypatch, problem)
    block = chain_rule.kron_pattern("relu", n=6, widths=(3,), rows=2)
    (H,) = seen  # dense1's kernel Hessian of tiny_problem's network
    assert H.shape == (49 * 3, 49 * 3)
    np.testing.assert_array_equal(block, H[:6, :6])


LAYERS = ["dense1", "dense2"]


def test_chain_rule_block_norms_and_kron_pattern():
    check = pd.DataFrame({"activation": ["relu"] * 2 + ["tanh"] * 2, "layer": LAYERS * 2,
                          "G": [1.0, 2.0, 1.0, 2.0], "R": [0.0, 0.0, 0.5, 0.0]})  # fmt: skip
    assert len(chain_rule.plot_chain_rule(check).axes) == 2
    blocks = pd.DataFrame({"activation": "relu", "row": ["dense1", "dense1", "dense2", "dense2"],
                           "col": LAYERS * 2, "R": [0.0, 1.0, 1.0, 0.0]})  # fmt: skip
    fig = chain_rule.plot_block_norms(blocks)
    assert fig.axes[0].get_images()[0].get_array().shape == (2, 2)
    fig = chain_rule.plot_kron_pattern(np.arange(36.0).reshape(6, 6), tile=3)
    ax = fig.axes[0]
    assert ax.get_images()[0].get_array().shape == (6, 6)
    assert len(ax.get_lines()) == 2  # one horizontal and one vertical tile border
    plt.close("all")
