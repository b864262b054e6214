"""hessinit.study stays light: its shared summaries and claims engine import neither TensorFlow nor
matplotlib.
"""

from __future__ import annotations

import subprocess
import sys


def test_analysis_needs_neither_tensorflow_nor_matplotlib():
    code = (
        "import sys; import hessinit.study.analysis, hessinit.study.claims; "
        "assert 'tensorflow' not in sys.modules and 'matplotlib' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
