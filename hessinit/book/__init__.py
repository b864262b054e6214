"""The book: its run grid, the papermill runner, the site build and the helpers notebooks call.

- :mod:`~hessinit.book.notebook`: ``write_table``, ``glue``, ``read_records``, ``versions``;
- :mod:`~hessinit.book.grid`: ``book/grid.yml`` expanded into runs, and the code hash;
- :mod:`~hessinit.book.runner`: executing runs with papermill, records, the site build;
- :mod:`~hessinit.book.cli`: the ``python -m hessinit book`` options.

Imports: the standard library, PyYAML, papermill and Jupyter Book; never the numerical core
(notebooks import that themselves).
"""

from .notebook import glue, read_records, versions, write_table

__all__ = ["glue", "read_records", "versions", "write_table"]
