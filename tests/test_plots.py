"""Figures in notebooks: every figure a cell draws is shown, not only the first of a session."""

import nbformat
from nbclient import NotebookClient

CELLS = [
    "import pandas as pd\nfrom hessinit import plots\n"
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
