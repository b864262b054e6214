"""Verdicts on the paper's claims, computed from measurements, and the book's claims ledger.

Every experiment chapter of the book states a rule for each claim it tests (a threshold on a
measured number), evaluates it on each setting it measured, and writes one row per claim with
:func:`claim_row` into a small CSV (:data:`COLUMNS`). The ledger page reads those CSVs back with
:func:`ledger` and renders them with :func:`ledger_markdown`; nothing in the ledger is typed by
hand.

A verdict is one of

- ``"holds"``: the rule is met in every setting measured;
- ``"does not hold"``: it is met in none;
- ``"holds only when ..."``: it is met in some; the text after "when" names those settings
  (see :func:`verdict` and :func:`range_condition`);
- ``"inconclusive"``: a confidence interval straddles the threshold (see :func:`compare_interval`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

HOLDS = "holds"

FAILS = "does not hold"

ONLY_WHEN = "holds only when"

INCONCLUSIVE = "inconclusive"

#: Columns of a claims table, in order.
COLUMNS = ("claim", "paper", "setting", "measure", "value", "rule", "verdict", "figure", "page")

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def compare(value, op: str, threshold: float):
    """``value op threshold`` elementwise (``op`` one of ``<, <=, >, >=``); NaN compares False."""
    if op not in _OPS:
        raise ValueError(f"op must be one of {sorted(_OPS)}, got {op!r}")
    with np.errstate(invalid="ignore"):
        return _OPS[op](np.asarray(value, dtype=float), threshold)


def compare_interval(low: float, high: float, op: str, threshold: float) -> bool | None:
    """The rule ``value op threshold`` for a value known only to lie in ``[low, high]``.

    True when the whole interval meets it, False when none of it does, None (inconclusive) when
    the interval straddles the threshold.
    """
    if low > high:
        raise ValueError(f"empty interval [{low}, {high}]")
    ends = compare([low, high], op, threshold)
    if ends.all():
        return True
    if not ends.any():
        return False
    return None


def verdict(ok, where: Sequence[str] | None = None, join: str = "; ") -> str:
    """The verdict of a rule evaluated in several settings.

    ``ok``: a bool, or one bool (or None for inconclusive) per setting. ``where``: a label per
    setting, naming the settings where the rule is met in a "holds only when" verdict.

    >>> verdict([True, True])
    'holds'
    >>> verdict([True, False], where=["sd <= 0.01", "sd = 1"])
    'holds only when sd <= 0.01'
    >>> verdict([False, None])
    'inconclusive'
    """
    values = [None if v is None else bool(v) for v in np.atleast_1d(np.asarray(ok, dtype=object))]
    if not values:
        raise ValueError("no setting to judge")
    if where is not None and len(where) != len(values):
        raise ValueError(f"{len(where)} labels for {len(values)} settings")
    if any(v is None for v in values) and not any(values):
        return INCONCLUSIVE
    if all(v is True for v in values):
        return HOLDS
    if not any(values):
        return FAILS
    if where is None:
        passed = sum(v is True for v in values)
        return f"{ONLY_WHEN} in {passed} of {len(values)} settings"
    return f"{ONLY_WHEN} " + join.join(str(w) for w, v in zip(where, values, strict=True) if v)


def _fmt(x) -> str:
    return f"{x:g}"


def range_condition(values, ok, name: str = "sd") -> str | None:
    """A short condition on an ordered numeric variable that says where ``ok`` holds.

    The settings are sorted by ``values``. If the rule holds everywhere the result is
    ``"every {name}"``, nowhere ``None``; if the settings where it holds form the smallest values
    ``"{name} <= v"``, the largest ``"{name} >= v"``, a middle run ``"a <= {name} <= b"``; else
    the list ``"{name} in {a, b, ...}"``.

    >>> range_condition([1e-3, 1e-2, 1.0], [True, True, False])
    'sd <= 0.01'
    >>> range_condition([1, 2, 4], [False, True, False], name="c")
    '2 <= c <= 2'
    """
    values = np.asarray(values, dtype=float)
    ok = np.asarray(ok, dtype=bool)
    if values.shape != ok.shape or values.ndim != 1:
        raise ValueError("values and ok must be 1-d and of the same length")
    order = np.argsort(values, kind="stable")
    values, ok = values[order], ok[order]
    if not ok.any():
        return None
    if ok.all():
        return f"every {name}"
    idx = np.flatnonzero(ok)
    contiguous = idx[-1] - idx[0] + 1 == len(idx)
    if contiguous and idx[0] == 0:
        return f"{name} <= {_fmt(values[idx[-1]])}"
    if contiguous and idx[-1] == len(ok) - 1:
        return f"{name} >= {_fmt(values[idx[0]])}"
    if contiguous:
        return f"{_fmt(values[idx[0]])} <= {name} <= {_fmt(values[idx[-1]])}"
    return f"{name} in {{{', '.join(_fmt(v) for v in values[ok])}}}"


def grouped_verdict(frame: pd.DataFrame, ok: str, group: str, var: str, name: str | None = None):
    """Verdict of the boolean column ``ok`` over all rows of ``frame``. A "holds only when"
    verdict names, for each value of ``group`` where the rule holds somewhere, the range of
    ``var`` where it holds (:func:`range_condition`), e.g. ``"holds only when tanh: sd <= 0.001"``.
    """
    flags = frame[ok].astype(bool)
    if flags.all():
        return HOLDS
    if not flags.any():
        return FAILS
    labels = []
    for key, part in frame.groupby(group, sort=False):
        cond = range_condition(part[var], part[ok], name or var)
        if cond is not None:
            labels.append(f"{key}: {cond}")
    return f"{ONLY_WHEN} " + "; ".join(labels)


def claim_row(claim, paper, setting, measure, value, rule, verdict, figure, page) -> dict:
    """One row of a claims table (:data:`COLUMNS`); ``value`` must be a finite number."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"claim {claim}: the measured value is not finite ({value})")
    if not (verdict in (HOLDS, FAILS, INCONCLUSIVE) or verdict.startswith(ONLY_WHEN)):
        raise ValueError(f"claim {claim}: unknown verdict {verdict!r}")
    return dict(zip(COLUMNS, (str(claim), paper, setting, measure, value, rule, verdict, figure,
                              page), strict=True))  # fmt: skip


def claims_table(rows: Sequence[dict]) -> pd.DataFrame:
    """The rows of :func:`claim_row` as a frame with :data:`COLUMNS`."""
    return pd.DataFrame(list(rows), columns=list(COLUMNS))


def ledger(paths: Sequence[str | Path], base: str | Path = ".") -> pd.DataFrame:
    """Every claims table at ``paths`` (relative to ``base``) in one frame sorted by claim id.

    Raises ``ValueError`` when there is no table, a table lacks a column of :data:`COLUMNS`, a
    claim id appears twice, or a row has no value or verdict.
    """
    if not paths:
        raise ValueError("no claims table: did the chapters run?")
    frames = []
    for p in paths:
        frame = pd.read_csv(Path(base) / p, dtype={"claim": str})
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{p}: missing columns {missing}")
        frames.append(frame[list(COLUMNS)])
    table = pd.concat(frames, ignore_index=True)
    dup = table["claim"][table["claim"].duplicated()].tolist()
    if dup:
        raise ValueError(f"claim ids appear twice: {dup}")
    if table[["value", "verdict"]].isna().any().any():
        raise ValueError("a claim has no measured value or no verdict")
    key = table["claim"].map(_claim_key)
    return table.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)


def _claim_key(claim: str):
    parts = []
    for piece in str(claim).replace("-", ".").split("."):
        parts.append(f"{int(piece):06d}" if piece.isdigit() else piece)
    return ".".join(parts)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def ledger_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """The ledger as a MyST table: one row per claim, the number with ``digits`` significant
    digits, and a ``{ref}`` link to the figure label of each row (render with ``glue:md`` and
    ``:format: myst`` so that the links resolve)."""
    lines = [
        "| claim | the paper says | setting | measured | rule | verdict | figure |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in table.itertuples(index=False):
        number = f"{row.measure} = {row.value:.{digits}g}"
        link = f"{{ref}}`figure <{row.figure}>`"
        cells = (row.claim, row.paper, row.setting, number, row.rule, f"**{row.verdict}**", link)
        lines.append("| " + " | ".join(_cell(v) for v in cells) + " |")
    return "\n".join(lines) + "\n"


def verdict_counts(table: pd.DataFrame) -> dict:
    """How many claims hold, hold only in part, do not hold, are inconclusive."""
    kinds = table["verdict"].map(
        lambda v: "holds only when" if str(v).startswith(ONLY_WHEN) else str(v)
    )
    return {k: int((kinds == k).sum()) for k in (HOLDS, ONLY_WHEN, FAILS, INCONCLUSIVE)}


def explode_verdict(course):
    """A sentence on whether dense1's Hessian grows ('explodes') at the largest std, from
    :func:`dense1_course`; the numbers come from the frame."""
    big = course.loc[course["sd"].idxmax()]
    small = course.loc[course["sd"].idxmin()]
    grows = big["H_max"] > 10 * small["H_max"]
    swing = big["H_max"] / big["H_min"] if big["H_min"] > 0 else math.inf
    if grows:
        head = "This run agrees: at the largest std dense1's Hessian norm grows beyond ten times"
    else:
        head = (
            "This run does not agree: at the largest std dense1's Hessian norm stays below "
            "ten times"
        )
    return (
        f"{head} its value at the smallest std (sd = {big['sd']:g}: "
        f"{big['H_min']:.3g} to {big['H_max']:.3g} over training, a max/min ratio of {swing:.3g}; "
        f"sd = {small['sd']:g}: {small['H_min']:.3g} to {small['H_max']:.3g})."
    )
