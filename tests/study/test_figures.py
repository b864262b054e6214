"""hessinit.study.figures: the shared figures draw from a small synthetic frame, and every figure a
notebook cell draws is shown, not only the first of a session."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from hessinit.chapters import chain_rule  # noqa: E402
from hessinit.study import figures  # noqa: E402

CELLS = [
    "import pandas as pd\nfrom hessinit.study import figures\n"
    "frame = pd.DataFrame({'sd': [1.0, 1.0], 'step': [0, 1], 'layer': ['dense1'] * 2,\n"
    "    'loss': [2.0, 1.0], 'H': [1.0, 2.0], 'G': [1.0, 2.0], 'R': [0.0, 0.0]})\n"
    "figures.training_curves(frame, 'H');",
    "figures.training_curves(frame, 'G');",
    "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2]);",
]


@pytest.mark.slow  # executes a notebook
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
    for fig in (wide, chain_rule.plot_kron_pattern(np.eye(4), tile=2)):
        assert fig.get_size_inches()[0] <= 688 / 100 + 0.1
        texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
        assert texts and min(_shown_px(fig, t) for t in texts) >= 10
    plt.close("all")
