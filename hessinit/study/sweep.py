"""One grid loop for every experiment: :func:`sweep`.

It calls a function at each point of a Cartesian product of settings and stacks the results in
one tidy frame.

Imports: itertools and pandas only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import pandas as pd


def _as_frame(result) -> pd.DataFrame:
    if isinstance(result, pd.DataFrame):
        return result.copy()
    if isinstance(result, dict):
        return pd.DataFrame([result])
    if isinstance(result, list) and all(isinstance(r, dict) for r in result):
        return pd.DataFrame(result)
    raise TypeError(
        f"the swept function must return a dict, a list of dicts or a DataFrame, "
        f"not {type(result).__name__}"
    )


def sweep(fn: Callable, **axes: Iterable) -> pd.DataFrame:
    """``fn(**point)`` at every point of the grid ``axes``, stacked in one tidy frame.

    The grid is the Cartesian product A_1 x ... x A_k of the axes in the
    order given, the last axis varying fastest, so that the calls come in the order of the nested
    loops ``for a_1 in A_1: ... for a_k in A_k: fn(a_1=a_1, ..., a_k=a_k)``. Every row of a
    point's result gets the point's values as leading columns (in axis order), except an axis the
    result already has as a column, which is kept as the result has it.

    Args:
        fn: called with one keyword argument per axis; returns a dict (one row), a list of dicts
            or a DataFrame.
        **axes: name -> the values of that axis (any iterable; it is read once).

    Returns:
        The results concatenated in call order, with a fresh ``RangeIndex``.

    Raises:
        ValueError: when no axis is given or an axis is empty.
        TypeError: when ``fn`` returns anything else than a dict, a list of dicts or a frame.

    Example:
        >>> sweep(lambda a, b: {"product": a * b}, a=[1, 2], b=[10, 20, 30])
           a   b  product
        0  1  10       10
        1  1  20       20
        2  1  30       30
        3  2  10       20
        4  2  20       40
        5  2  30       60
        >>> sweep(lambda n: [{"k": k} for k in range(n)], n=[1, 2])
           n  k
        0  1  0
        1  2  0
        2  2  1
    """
    if not axes:
        raise ValueError("sweep needs at least one axis")
    names = list(axes)
    values = [list(v) for v in axes.values()]
    empty = [name for name, v in zip(names, values, strict=True) if not v]
    if empty:
        raise ValueError(f"empty axes: {empty}")
    frames = []
    for point in itertools.product(*values):
        kwargs = dict(zip(names, point, strict=True))
        frame = _as_frame(fn(**kwargs))
        new = [name for name in names if name not in frame.columns]
        for i, name in enumerate(new):
            column = pd.Series([kwargs[name]] * len(frame), index=frame.index)
            frame.insert(i, name, column)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
