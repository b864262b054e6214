"""The book: its run grid, the papermill runner, the site build and the helpers notebooks call.

- :mod:`~hessinit.book.grid`: ``book/grid.yml`` expanded into runs, and the code hash;
- :mod:`~hessinit.book.runner`: ``build``, the pipeline that runs the grid in dependency order
  and builds the site, through its steps :mod:`~hessinit.book.plan` (what to do with a run: its
  key, skip or job), :mod:`~hessinit.book.schedule` (execute the jobs, record what comes back),
  :mod:`~hessinit.book.manifest` (run records and the manifests that verify outputs) and
  :mod:`~hessinit.book.render` (the site and its Colab edition);
- :mod:`~hessinit.book.execute`: one run executed by papermill in a temporary folder (in this
  process or on a Dask worker);
- :mod:`~hessinit.book.pool`: where runs execute: this process, or a Dask cluster;
- :mod:`~hessinit.book.notebook`: ``write_table``, ``show_table``, ``glue``, ``glue_all``,
  ``read_records``, ``versions``, ``terminal_progress_bars`` (called on import), and the
  fallback outside the runner ``benchmark_results``;
- :mod:`~hessinit.book.parameters`: ``typed_parameters`` and ``listed``, papermill parameters
  typed at the door;
- :mod:`~hessinit.book.publish`: the published results archive and ``chapter_tables``, the
  tables a collecting chapter reads outside the runner;
- :mod:`~hessinit.book.cli`: the ``python -m hessinit book`` options;
- :mod:`~hessinit.book.xref`: the Sphinx extension that resolves references to re-exported names
  on the API page.

Notebooks import what they compute from :mod:`hessinit.chapters`, :mod:`hessinit.study` and the
core themselves; this layer only runs them.

Imports: the standard library and PyYAML (papermill, nbformat, myst-nb, pandas and Sphinx when a
function that needs them is called); from the package only :mod:`hessinit.book` itself and the
dataset names of :mod:`hessinit.data` (the ``--datasets`` choices). Never the numerical core.
"""

from .notebook import (
    benchmark_results,
    glue,
    glue_all,
    in_colab,
    read_records,
    show_table,
    terminal_progress_bars,
    versions,
    write_table,
)
from .parameters import listed, typed_parameters
from .publish import chapter_tables

# No "TqdmWarning: IProgress not found" in a notebook's output (notebooks import this first).
terminal_progress_bars()

__all__ = [
    "benchmark_results",
    "chapter_tables",
    "glue",
    "glue_all",
    "in_colab",
    "listed",
    "read_records",
    "show_table",
    "terminal_progress_bars",
    "typed_parameters",
    "versions",
    "write_table",
]
