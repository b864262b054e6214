"""hessinit.study.figures: every figure draws from a small synthetic frame, and every figure a
notebook cell draws is shown, not only the first of a session."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from hessinit.study import figures  # noqa: E402

CELLS = [
    "import pandas as pd\nfrom hessinit.study import figures\n"
    "frame = pd.DataFrame({'sd': [1.0, 1.0], 'step': [0, 1], 'layer': ['dense1'] * 2,\n"
    "    'loss': [2.0, 1.0], 'H': [1.0, 2.0], 'G': [1.0, 2.0], 'R': [0.0, 0.0]})\n"
    "figures.training_curves(frame, 'H');",
    "figures.training_curves(frame, 'G');",
    "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2]);",
]


def test_every_figure_of_a_notebook_is_displayed():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    for cell in nb.cells:
        images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        assert len(images) == 1, cell.source


LAYERS = ["dense1", "dense2"]


def _lines(fig):
    return [line for ax in fig.axes for line in ax.get_lines()]


def test_training_curves_and_save(tmp_path):
    frame = pd.DataFrame({"sd": [0.1] * 4 + [1.0] * 4, "step": [0, 0, 1, 1] * 2,
                          "layer": LAYERS * 4, "loss": 2.0, "H": 1.0, "G": 1.0,
                          "R": 0.0})  # fmt: skip
    fig = figures.training_curves(frame, "H", title="t")
    assert len(fig.axes) == 4  # two panels, each with a right axis
    figures.save(fig, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0
    assert not plt.fignum_exists(fig.number)


def test_chain_rule_block_norms_and_kron_pattern():
    check = pd.DataFrame({"activation": ["relu"] * 2 + ["tanh"] * 2, "layer": LAYERS * 2,
                          "G": [1.0, 2.0, 1.0, 2.0], "R": [0.0, 0.0, 0.5, 0.0]})  # fmt: skip
    assert len(figures.plot_chain_rule(check).axes) == 2
    blocks = pd.DataFrame({"activation": "relu", "row": ["dense1", "dense1", "dense2", "dense2"],
                           "col": LAYERS * 2, "R": [0.0, 1.0, 1.0, 0.0]})  # fmt: skip
    fig = figures.plot_block_norms(blocks)
    assert fig.axes[0].get_images()[0].get_array().shape == (2, 2)
    fig = figures.plot_kron_pattern(np.arange(36.0).reshape(6, 6), tile=3)
    ax = fig.axes[0]
    assert ax.get_images()[0].get_array().shape == (6, 6)
    assert len(ax.get_lines()) == 2  # one horizontal and one vertical tile border
    plt.close("all")


def test_sweep_and_benchmark():
    summary = pd.DataFrame({"dataset": "d", "sd": [0.01, 1.0] * 2, "layer": ["dense1"] * 2 +
                            ["dense2"] * 2, "H_init": [1.0, 0.5, 1e-4, 1.0],
                            "p_max": [0.1, 0.9] * 2})  # fmt: skip
    assert len(_lines(figures.plot_sweep(summary))) == 3  # two layers, one saturation curve
    norms = pd.DataFrame({"method": ["kronecker", "kronecker", "batched_hvp"], "B": [64, 128, 64],
                          "seconds": [0.1, 0.2, 2.0], "status": "ok"})  # fmt: skip
    assert len(_lines(figures.plot_benchmark(norms))) == 2
    plt.close("all")


def test_step_size_figures():
    schedule = "lr=0.01"
    cp = pd.DataFrame({"schedule": [schedule] * 4 + ["1 gamma*"] * 4,
                       "sd": [0.1, 0.1, 1.0, 1.0] * 2,
                       "seed": 0, "step": [0, 5] * 4, "gamma_star": [1.0, 2.0] * 4,
                       "predicted_star": 0.1, "realised_star": 0.05,
                       "hessian_loss": [2.0, 1.0] * 4})  # fmt: skip
    fig = figures.plot_gamma(cp, schedule)
    assert len(fig.axes[0].get_lines()) == 2  # one line per sd
    fig = figures.plot_schedules(cp)
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 2]  # two schedules per sd
    plt.close("all")


def _shown_px(fig, text):
    """The height in px a text of ``fig`` shows at in the book's 688 px column (100 px per inch,
    a figure wider than the column scaled down to it)."""
    width_px = fig.get_size_inches()[0] * fig.dpi
    return text.get_fontsize() / 72 * fig.dpi * min(1.0, 688 / width_px)


def test_figures_fit_the_column_with_text_of_10_px_or_more():
    sds = [1e-5, 0.01, 1.0, 10.0]
    frame = pd.DataFrame({"sd": np.repeat(sds, 4), "step": [0, 0, 1, 1] * 4,
                          "layer": LAYERS * 8, "loss": 2.0, "H": 1.0, "G": 1.0,
                          "R": 0.0})  # fmt: skip
    wide = figures.training_curves(frame, "H", title="four panels")
    log_axes = [ax.yaxis for ax in wide.axes if ax.get_yscale() == "log"]
    assert log_axes  # the Hessian norms: narrowed, they keep only the decades' labels
    assert all(isinstance(a.get_minor_formatter(), mticker.NullFormatter) for a in log_axes)
    fig, ax = plt.subplots(figsize=(12, 3))  # drawn outside figures.style: left as it is
    ax.set_title("tiny", fontsize=5)
    assert fig.get_size_inches()[0] == 12 and _shown_px(fig, ax.title) < 6
    for fig in (wide, figures.plot_kron_pattern(np.eye(4), tile=2)):
        assert fig.get_size_inches()[0] <= 688 / 100 + 0.1
        texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
        assert texts and min(_shown_px(fig, t) for t in texts) >= 10
    plt.close("all")


def test_stability_and_sharpness_figures():
    outcomes = pd.DataFrame({"sd": [0.01] * 3 + [1.0] * 3, "seed": 0,
                             "lr": [0.1, 0.3, 1.0] * 2, "lr_over_bound": [0.1, 0.3, 1.0] * 2,
                             "final_loss": [0.5, 3.0, np.nan] * 2,
                             "unstable": [False, True, True] * 2,
                             "diverged": [False, False, True] * 2})  # fmt: skip
    fig = figures.plot_stability(outcomes)
    assert len(fig.axes) == 2 and [len(ax.get_lines()) for ax in fig.axes] == [1, 1]  # bound
    track = pd.DataFrame({"sd": 1.0, "seed": 0, "step": [0, 0, 1, 1, 2, 2],
                          "layer": LAYERS * 3,
                          "lambda_max": [1.0, 2.0, np.nan, np.nan, 1.5, 2.5],
                          "lambda_max_network": [3.0, 3.0, np.nan, np.nan, 4.0, 4.0]})  # fmt: skip
    fig = figures.plot_sharpness(track, lr=0.01)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4  # two layers, the network and the bound 2 / lr
    assert lines[2].get_ydata().tolist() == [3.0, 4.0]  # the network, NaN rows skipped
    assert lines[3].get_ydata()[0] == 200.0
    plt.close("all")
