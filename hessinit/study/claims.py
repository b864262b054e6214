"""Verdicts on the paper's claims: the vocabulary, the claim rows and the claims ledger.

Every experiment chapter of the book states a rule for each claim it tests (a comparison of a
measured number with a threshold), evaluates it on each setting it measured, and writes one row
per claim (:func:`claim_row`, columns :data:`COLUMNS`) into a small CSV. The rules of each
chapter are functions of its module in :mod:`hessinit.chapters` (e.g.
:func:`hessinit.chapters.dominance.dominance_init_rows`), which take the chapter's measured
frames and the rule's comparison and threshold as arguments and return the chapter's rows; the
rules and wordings that two chapters share are at the end of this module. The ledger page reads
the CSVs back with :func:`ledger` and renders them with :func:`ledger_markdown`; nothing in the
ledger is typed by hand.

A verdict is one of

- ``"holds"`` (:data:`HOLDS`): the rule is met in every setting measured;
- ``"does not hold"`` (:data:`FAILS`): it is met in none;
- ``"holds only when ..."`` (:data:`ONLY_WHEN`): it is met in some; the text after "when" names
  those settings (see :func:`verdict`);
- ``"inconclusive"`` (:data:`INCONCLUSIVE`): a confidence interval straddles the threshold and
  the rule is met nowhere else (see :func:`compare_interval`); where it is met elsewhere, the
  verdict is "holds only when A; inconclusive for B" (an inconclusive setting never counts as a
  failure);
- ``"not tested: ..."`` (:data:`NOT_TESTED`): the condition the claim needs was not reached; the
  text says what was.

Each row also says where the claim comes from (:data:`SOURCES`), the exact words it rests on, the
measured value with its 95% interval and the number of seeds behind it.

Imports: numpy, pandas and :mod:`hessinit.study.stats` (the intervals).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

#: The rule is met in every setting measured.
HOLDS = "holds"

#: The rule is met in no setting.
FAILS = "does not hold"

#: The rule is met in some settings; the verdict goes on to name them.
ONLY_WHEN = "holds only when"

#: An interval straddles the threshold and the rule is met nowhere else.
INCONCLUSIVE = "inconclusive"

#: The condition the claim needs was not reached (the verdict goes on to say what was).
NOT_TESTED = "not tested"

#: Where a claim comes from. The paper's body (theorems, conditions, its formulas) was not
#: available to this book, only the two abstracts and the authors' notebook; a claim the book
#: made testable by choosing a measure and a threshold is "this book's formalization".
SOURCES = ("paper abstract", "authors' notebook", "this book's formalization")

#: Columns of a claims table, in order.
COLUMNS = (
    "claim",
    "source",
    "wording",
    "setting",
    "measure",
    "value",
    "low",
    "high",
    "seeds",
    "rule",
    "verdict",
    "figure",
    "page",
    "kind",
)

#: Columns of the ledger's own CSV (the claims page's ``table``), the row without its text.
LEDGER_CSV_COLUMNS = ("claim", "kind", "source", "setting", "measure", "value", "low", "high",
                      "seeds", "verdict")  # fmt: skip

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}

#: How a comparison reads in a rule's text ("the interval below 0.1").
OP_WORDS = {"<": "below", "<=": "at most", ">": "above", ">=": "at least"}


# --------------------------------------------------------------------------------------------
# The vocabulary: comparisons and verdicts
# --------------------------------------------------------------------------------------------


def compare(value, op: str, threshold: float):
    """``value op threshold``, elementwise.

    Args:
        value: a number or an array of numbers; NaN compares False.
        op: one of ``<``, ``<=``, ``>``, ``>=``.
        threshold: the number compared with.

    Returns:
        A numpy bool (array of the shape of ``value``).

    Raises:
        ValueError: for an unknown ``op``.

    Example:
        >>> compare([0.05, 0.1, float("nan")], "<", 0.1).tolist()
        [True, False, False]
    """
    if op not in _OPS:
        raise ValueError(f"op must be one of {sorted(_OPS)}, got {op!r}")
    with np.errstate(invalid="ignore"):
        return _OPS[op](np.asarray(value, dtype=float), threshold)


def compare_interval(low: float, high: float, op: str, threshold: float) -> bool | None:
    """The rule ``value op threshold`` for a value known only to lie in ``[low, high]``.

    Args:
        low: the interval's lower end.
        high: its upper end.
        op: one of ``<``, ``<=``, ``>``, ``>=``.
        threshold: the number compared with.

    Returns:
        True when the whole interval meets the rule, False when none of it does, None
        (inconclusive) when the interval straddles the threshold.

    Raises:
        ValueError: for an empty interval (``low > high``) or an unknown ``op``.

    Example:
        >>> [compare_interval(lo, hi, "<", 0.1) for lo, hi in [(0.0, 0.05), (0.2, 0.3), (0, 1)]]
        [True, False, None]
    """
    if low > high:
        raise ValueError(f"empty interval [{low}, {high}]")
    ends = compare([low, high], op, threshold)
    if ends.all():
        return True
    if not ends.any():
        return False
    return None


def interval_verdict(low: float, high: float, op: str, threshold: float) -> str:
    """The verdict of the rule ``value op threshold`` for a value with interval ``[low, high]``.

    Args:
        low: the interval's lower end.
        high: its upper end.
        op: one of ``<``, ``<=``, ``>``, ``>=``.
        threshold: the number compared with.

    Returns:
        :data:`HOLDS` when the whole interval meets the rule, :data:`FAILS` when none of it does,
        :data:`INCONCLUSIVE` when it straddles the threshold.

    Raises:
        ValueError: for an empty interval or an unknown ``op``.

    Example:
        >>> [interval_verdict(lo, hi, ">", 0) for lo, hi in [(0.1, 0.2), (-0.2, -0.1), (-1, 1)]]
        ['holds', 'does not hold', 'inconclusive']
    """
    ok = compare_interval(low, high, op, threshold)
    return INCONCLUSIVE if ok is None else HOLDS if ok else FAILS


def verdict(ok, where: Sequence[str] | None = None, join: str = "; ") -> str:
    """The verdict of a rule evaluated in several settings.

    An inconclusive setting (None) is never counted as a failure: when the rule is met in some
    settings and inconclusive in others, the verdict says so ("holds only when A; inconclusive
    for B").

    Args:
        ok: a bool, or one bool (or None for inconclusive) per setting.
        where: a label per setting, naming the settings in a "holds only when" verdict
            (default: their count).
        join: the separator of the labels.

    Returns:
        :data:`HOLDS` when every setting meets the rule; :data:`FAILS` when none does and none is
        inconclusive; :data:`INCONCLUSIVE` when none does and some are inconclusive; else
        ``"holds only when "`` followed by the labels of the settings that meet it and, if some
        are inconclusive, ``"; inconclusive for "`` and theirs.

    Raises:
        ValueError: when there is no setting, or ``where`` has the wrong length.

    Example:
        >>> verdict([True, True])
        'holds'
        >>> verdict([True, False], where=["sd <= 0.01", "sd = 1"])
        'holds only when sd <= 0.01'
        >>> verdict([True, None, False], where=["A", "B", "C"])
        'holds only when A; inconclusive for B'
        >>> verdict([False, None])
        'inconclusive'
    """
    values = [None if v is None else bool(v) for v in np.atleast_1d(np.asarray(ok, dtype=object))]
    if not values:
        raise ValueError("no setting to judge")
    if where is not None and len(where) != len(values):
        raise ValueError(f"{len(where)} labels for {len(values)} settings")

    def labels(state) -> str:
        if where is None:
            return f"in {sum(v is state for v in values)} of {len(values)} settings"
        return join.join(str(w) for w, v in zip(where, values, strict=True) if v is state)

    passed = any(v is True for v in values)
    unsure = any(v is None for v in values)
    failed = any(v is False for v in values)
    if not unsure and not failed:
        return HOLDS
    if not passed and not unsure:
        return FAILS
    if not passed:
        return INCONCLUSIVE
    text = f"{ONLY_WHEN} {labels(True)}"
    if unsure:
        text += f"; {INCONCLUSIVE} {'for ' if where is not None else ''}{labels(None)}"
    return text


# --------------------------------------------------------------------------------------------
# Claims tables
# --------------------------------------------------------------------------------------------


def claim_row(
    claim,
    *,
    source: str,
    wording: str,
    setting: str,
    measure: str,
    value: float,
    low: float = math.nan,
    high: float = math.nan,
    seeds: int,
    rule: str,
    verdict: str,
    figure: str,
    page: str,
    kind: str = "empirical",
) -> dict:
    """One row of a claims table (built by :mod:`hessinit.study.claimdata`, its only caller).

    Args:
        claim: the claim's id, e.g. ``"1.2"`` (made a string).
        source: one of :data:`SOURCES`.
        wording: the exact words the row rests on (a quotation of the source; for a
            formalization, the words it formalizes).
        setting: what was measured.
        measure: the name of the measured number.
        value: the measured number.
        low: lower end of its 95% interval (NaN when none applies, e.g. an exact value).
        high: upper end of its 95% interval.
        seeds: number of independent seeds or batches behind ``value``.
        rule: the rule, in words.
        verdict: a verdict (see the module docstring).
        figure: the label of the figure the number comes from.
        page: the chapter.
        kind: ``"fact"``, ``"sanity"`` or ``"empirical"`` (the claims table's kind).

    Returns:
        A dict with the keys :data:`COLUMNS`.

    Raises:
        ValueError: when ``value`` is not finite, ``source``, ``kind`` or ``verdict`` is
            unknown, or the interval does not contain the value.

    Example:
        >>> row = claim_row(
        ...     "1.1", source="paper abstract", wording="the accuracy of our approximation",
        ...     setting="ReLU", measure="R/H", value=0.0, seeds=3, rule="R/H < 1e-12",
        ...     verdict="holds", figure="fig", page="p")
        >>> row["claim"], row["low"], row["seeds"]
        ('1.1', nan, 3)
    """
    value, low, high = float(value), float(low), float(high)
    if not math.isfinite(value):
        raise ValueError(f"claim {claim}: the measured value is not finite ({value})")
    if source not in SOURCES:
        raise ValueError(f"claim {claim}: source must be one of {SOURCES}, got {source!r}")
    if kind not in ("fact", "sanity", "empirical"):
        raise ValueError(f"claim {claim}: kind must be fact, sanity or empirical, got {kind!r}")
    if not (verdict == HOLDS or verdict.startswith((ONLY_WHEN, NOT_TESTED, FAILS, INCONCLUSIVE))):
        raise ValueError(f"claim {claim}: unknown verdict {verdict!r}")
    if not (math.isnan(low) or low <= value) or not (math.isnan(high) or value <= high):
        raise ValueError(f"claim {claim}: the interval [{low}, {high}] misses the value {value}")
    values = (str(claim), source, wording, setting, measure, value, low, high, int(seeds), rule,
              verdict, figure, page, kind)  # fmt: skip
    return dict(zip(COLUMNS, values, strict=True))


def claims_table(rows: Sequence[dict]) -> pd.DataFrame:
    """The rows of :func:`claim_row` as a frame.

    Args:
        rows: dicts with the keys :data:`COLUMNS`.

    Returns:
        A frame with the columns :data:`COLUMNS`, in order.

    Example:
        >>> row = claim_row("1", source="paper abstract", wording="w", setting="s", measure="m",
        ...                 value=0.5, seeds=1, rule="r", verdict="holds", figure="f", page="p")
        >>> claims_table([row]).columns.tolist() == list(COLUMNS)
        True
    """
    return pd.DataFrame(list(rows), columns=list(COLUMNS))


# --------------------------------------------------------------------------------------------
# The rules of each chapter
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# The ledger
# --------------------------------------------------------------------------------------------


def ledger(paths: Sequence[str | Path], base: str | Path = ".") -> pd.DataFrame:
    """Every claims table at ``paths`` in one frame, sorted by claim id.

    Ids sort numerically part by part (1.2 < 1.10 < 2.1 < 10.1). One claim may have several
    rows, one per setting (e.g. per layer or per dataset), never two with the same setting.

    Args:
        paths: CSV files written from :func:`claims_table`, relative to ``base``.
        base: the directory they are relative to.

    Returns:
        The rows of all tables, columns :data:`COLUMNS`.

    Raises:
        ValueError: when there is no table, a table lacks a column of :data:`COLUMNS`, a claim
            id appears twice with the same setting, or a row has no value or verdict.

    Example:
        >>> import tempfile
        >>> kw = dict(source="paper abstract", wording="w", setting="s", measure="m", value=1,
        ...           seeds=1, rule="r", verdict="holds", figure="f", page="")
        >>> rows = [claim_row(c, **kw) for c in ["1.10", "1.2"]]
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     claims_table(rows).to_csv(Path(tmp) / "a.csv", index=False)
        ...     ledger(["a.csv"], base=tmp)["claim"].tolist()
        ['1.2', '1.10']
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
    dup = table["claim"][table[["claim", "setting"]].duplicated()].tolist()
    if dup:
        raise ValueError(f"claim ids appear twice with the same setting: {dup}")
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


def _number(x, digits: int) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}g}"


def interval_text(value: float, low: float, high: float, digits: int = 3) -> str:
    """A measured number with its 95% interval, ``"v [low, high]"`` (``"v (exact)"`` without one).

    Args:
        value: the number.
        low: its interval's lower end (NaN: no interval applies).
        high: its interval's upper end.
        digits: significant digits.

    Returns:
        The text.

    Example:
        >>> interval_text(0.12345, 0.1, 0.15), interval_text(2.0, float("nan"), float("nan"))
        ('0.123 [0.1, 0.15]', '2 (exact)')
    """
    if math.isnan(float(low)) and math.isnan(float(high)):
        return f"{_number(value, digits)} (exact)"
    return f"{_number(value, digits)} [{_number(low, digits)}, {_number(high, digits)}]"


def figure_label(figure: str, page: str) -> str:
    """The label a chapter's figure has on the site: ``figure``, suffixed on per-dataset pages.

    A chapter run once per dataset (its page ``"<chapter>/<dataset>"``, e.g.
    ``"original/mnist-5k"``) shows the same figures on every dataset's page, and Sphinx needs
    labels unique in the whole book, so there each figure is ``<figure>-<dataset>``: the site's
    page decorator (``hessinit.book.page.decorate``) renames the figures by this rule, and the
    ledger links to them through this function.

    Args:
        figure: the figure's name in the chapter's notebook, e.g. ``"fig-cnn"``.
        page: the page, ``"<chapter>"`` or ``"<chapter>/<dataset>"``.

    Returns:
        The label.

    Example:
        >>> figure_label("fig-cnn", "cnn/mnist-5k"), figure_label("fig-dominance", "dominance")
        ('fig-cnn-mnist-5k', 'fig-dominance')
    """
    return f"{figure}-{page.rsplit('/', 1)[1]}" if "/" in page else figure


def ledger_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """The ledger as a MyST table: provenance, measure, 95% interval, seeds, verdict, figure link.

    Render it with ``glue:md`` and ``:format: myst`` so that the ``{ref}`` links resolve.

    Args:
        table: rows of :func:`ledger`.
        digits: significant digits of the measured number and its interval.

    Returns:
        The Markdown table, one row per claim and setting.

    Example:
        >>> row = claim_row("1", source="paper abstract", wording="w", setting="s", measure="R/H",
        ...                 value=0.12345, low=0.1, high=0.2, seeds=5, rule="r", verdict="holds",
        ...                 figure="fig-a", page="pg")
        >>> print(ledger_markdown(claims_table([row])).splitlines()[-1])
        | 1 | paper abstract | "w" | s | R/H = 0.123 [0.1, 0.2] | 5 | r | **holds** | {ref}`figure <fig-a>` |
    """  # noqa: E501
    lines = [
        "| claim | source | wording it rests on | setting | measured, 95% interval | seeds "
        "| rule | verdict | figure |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table.itertuples(index=False):
        number = f"{row.measure} = {interval_text(row.value, row.low, row.high, digits)}"
        link = f"{{ref}}`figure <{figure_label(row.figure, str(row.page))}>`"
        cells = (row.claim, row.source, f'"{row.wording}"', row.setting, number, int(row.seeds),
                 row.rule, f"**{row.verdict}**", link)  # fmt: skip
        lines.append("| " + " | ".join(_cell(v) for v in cells) + " |")
    return "\n".join(lines) + "\n"


def verdict_counts(table: pd.DataFrame) -> dict:
    """How many rows hold, hold only in part, do not hold, are inconclusive or were not tested.

    A verdict counts by how it starts ("inconclusive for B; does not hold for C" is
    inconclusive).

    Args:
        table: rows with a ``verdict`` column.

    Returns:
        :data:`HOLDS`, :data:`ONLY_WHEN`, :data:`FAILS`, :data:`INCONCLUSIVE`,
        :data:`NOT_TESTED` -> count.

    Example:
        >>> verdict_counts(pd.DataFrame({"verdict": ["holds", "holds only when tanh",
        ...                                          "inconclusive for a; does not hold for b"]}))
        {'holds': 1, 'holds only when': 1, 'does not hold': 0, 'inconclusive': 1, 'not tested': 0}
    """
    kinds = (ONLY_WHEN, NOT_TESTED, INCONCLUSIVE, FAILS)

    def kind(v) -> str:
        return next((k for k in kinds if str(v).startswith(k)), str(v))

    counted = table["verdict"].map(kind)
    order = (HOLDS, ONLY_WHEN, FAILS, INCONCLUSIVE, NOT_TESTED)
    return {k: int((counted == k).sum()) for k in order}


# --------------------------------------------------------------------------------------------
# Rules and wordings that two or more chapters share
# --------------------------------------------------------------------------------------------


def interval_flags(frame: pd.DataFrame, op: str, threshold: float) -> list:
    """compare_interval over the rows' ``low``/``high`` (None where inconclusive)."""
    return [compare_interval(lo, hi, op, threshold)
            for lo, hi in zip(frame["low"], frame["high"], strict=True)]  # fmt: skip


def abs_interval(low: float, high: float) -> tuple[float, float]:
    """The interval of abs(rho) for rho in [low, high].

    Args:
        low: lower end of rho's interval.
        high: upper end.

    Returns:
        ``(low, high)`` of abs(rho): [low, high] if low >= 0, [-high, -low] if high <= 0, else
        [0, max(-low, high)].

    Example:
        >>> abs_interval(0.2, 0.6), abs_interval(-0.9, -0.6), abs_interval(-0.3, 0.5)
        ((0.2, 0.6), (0.6, 0.9), (0.0, 0.5))
    """
    if low >= 0:
        return low, high
    if high <= 0:
        return -high, -low
    return 0.0, max(-low, high)
