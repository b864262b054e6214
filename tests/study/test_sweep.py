"""sweep: the one grid loop, and the experiment grids built on it against their single calls."""

import pandas as pd
import pytest
from conftest import random_images

from hessinit import init, train
from hessinit.chapters import dominance_network, init_schemes
from hessinit.nn import mlp
from hessinit.study.sweep import sweep


@pytest.fixture(scope="module")
def tiny():
    return random_images(24, (3, 3), 3, seed=11)


def test_calls_come_in_the_order_of_the_nested_loops():
    calls = []

    def fn(a, b, c):
        calls.append((a, b, c))
        return {"n": len(calls)}

    out = sweep(fn, a=[1, 2], b="xy", c=(0.5, 0.25))
    expected = [(a, b, c) for a in [1, 2] for b in "xy" for c in (0.5, 0.25)]
    assert calls == expected
    assert list(out.columns) == ["a", "b", "c", "n"]
    assert list(out.itertuples(index=False, name=None)) == [(*p, k + 1) for k, p in
                                                            enumerate(expected)]  # fmt: skip
    assert list(out.index) == list(range(8))


def test_results_may_be_a_dict_a_list_of_dicts_or_a_frame():
    def fn(kind):
        if kind == "dict":
            return {"v": 1.0}
        if kind == "list":
            return [{"v": 2.0}, {"v": 3.0}]
        return pd.DataFrame({"v": [4.0]}, index=[7])

    out = sweep(fn, kind=["dict", "list", "frame"])
    assert out["kind"].tolist() == ["dict", "list", "list", "frame"]
    assert out["v"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert out["v"].dtype == "float64"


def test_an_axis_the_result_already_has_is_kept_where_it_is():
    frame = pd.DataFrame({"x": [0], "sd": [9.0]})
    out = sweep(lambda sd, seed: frame.assign(sd=sd), sd=[0.5], seed=[3])
    assert list(out.columns) == ["seed", "x", "sd"]
    assert out["sd"].tolist() == [0.5]
    assert frame["sd"].tolist() == [9.0]  # the function's frame is not changed


def test_axis_values_that_are_not_scalars_fill_one_cell_each():
    out = sweep(lambda setting: [{"k": 0}, {"k": 1}], setting=[("relu", 0.0, [1, 2])])
    assert out["setting"].tolist() == [("relu", 0.0, [1, 2])] * 2


def test_errors():
    with pytest.raises(ValueError, match="at least one axis"):
        sweep(lambda: {})
    with pytest.raises(ValueError, match="empty axes"):
        sweep(lambda a, b: {}, a=[1], b=[])
    with pytest.raises(TypeError, match="dict, a list of dicts or a DataFrame"):
        sweep(lambda a: 3.0, a=[1])


def test_whole_network_grid_matches_single_networks(tiny):
    grid = dominance_network.whole_network_grid(tiny, ("tanh", "relu"), (0.5, 1.0), widths=(5, 4),
                                                n=24, probes=6, deflate=2, seed=1)  # fmt: skip
    assert len(grid) == 2 * 2 * 6  # H, G, R, R/H, G/H and R/G per network
    assert list(grid.columns[-2:]) == ["activation", "sd"]
    model = mlp((3, 3), 3, widths=(5, 4), activation="relu", sd=1.0, seed=1)
    one = dominance_network.whole_network(model, tiny.x, tiny.y, probes=6, deflate=2, seed=1)
    got = grid.query("activation == 'relu' and sd == 1.0").reset_index(drop=True)
    pd.testing.assert_frame_equal(got.drop(columns=["activation", "sd"]), one, rtol=1e-6)


# step_size.schedule_runs against train.run: tests/chapters/test_step_size.py


def test_fit_schemes_stack_the_single_fits(tiny):
    train_set, test_set = random_images(16, (3, 3), 3, seed=1), random_images(8, (3, 3), 3, seed=2)
    fits = init_schemes.fit_schemes(train_set, test_set, ["lecun", "hessian"], (4,), "relu",
                                   [0, 1], steps=2, lr=0.1, batch_size=4, eval_every=1,
                                   hessian_batch=8)  # fmt: skip
    assert list(fits.columns) == ["step", "loss", "test_loss", "test_accuracy", "init", "seed"]
    assert list(dict.fromkeys(zip(fits["seed"], fits["init"], strict=True))) == [
        (0, "lecun"), (0, "hessian"), (1, "lecun"), (1, "hessian")
    ]  # fmt: skip
    tables = fits.attrs["hessian_init"]
    assert tables["seed"].tolist() == [0, 0, 1, 1] and "converged" in tables
    sds = init.kernel_sds("lecun", (4,), (3, 3), 3)
    model = mlp((3, 3), 3, (4,), "relu", sds, 1)
    one = train.fit(model, train_set, test_set, steps=2, lr=0.1, batch_size=4, eval_every=1,
                    seed=1, progress=False)  # fmt: skip
    got = fits.query("init == 'lecun' and seed == 1").drop(columns=["init", "seed"])
    pd.testing.assert_frame_equal(got.reset_index(drop=True), one, rtol=1e-6)
