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
import re
from collections.abc import Sequence
from dataclasses import dataclass
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

#: The rule fails significantly in some settings and some others are undecided or untested; it
#: may be met in others (the verdict goes on to name them all): "does not hold for B; ...".
FAILS_FOR = "does not hold for"

#: The estimator cannot decide the claim, whatever the budget (the verdict goes on to say why).
NOT_TESTABLE = "not testable with this estimator"

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


@dataclass(frozen=True)
class NotReached:
    """A setting where the claim's condition was not reached (an outcome of :func:`verdict`).

    Attributes:
        reached: what was reached instead, in words that follow "not tested for A (...)", e.g.
            ``"lowest loss 0.31 nats"``.
    """

    reached: str


@dataclass(frozen=True)
class Untestable:
    """A setting this estimator cannot decide, whatever the budget (an outcome of :func:`verdict`).

    Attributes:
        reason: why, e.g. ``"the layers' levels spread by 165x"``.
    """

    reason: str


def _outcome(v):
    """One setting's outcome: True, False, None (undecided), a NotReached or an Untestable."""
    if isinstance(v, NotReached | Untestable) or v is None:
        return v
    if isinstance(v, float | np.floating) and math.isnan(v):
        return None
    return bool(v)


def verdict(ok, where: Sequence[str] | None = None, join: str = ", ") -> str:
    """The verdict of a rule evaluated in several settings, naming every setting's outcome.

    Each setting's outcome is one of: met (True), not met (False), undecided (None: its interval
    straddles the threshold), not tested (:class:`NotReached`: the condition the claim needs was
    not reached) or not testable (:class:`Untestable`: the estimator cannot decide). With P, F,
    U, N, X the settings of each outcome, the verdict is

    - :data:`HOLDS` when every setting is in P; :data:`FAILS` when every one is in F;
      :data:`INCONCLUSIVE` when every one is in U; ``"not tested: <reached>"`` or
      ``"not testable with this estimator: <reason>"`` when every one is in N (X) for the same
      reason;
    - ``"holds only when P"`` when the settings are all in P or F (exactly: the rule fails in
      every other setting);
    - else, when F is not empty, ``"does not hold for F"`` followed by ``"holds for P"`` (when P
      is not empty), then the clauses of U, N and X below; when F is empty and P is not,
      ``"holds only when P"`` followed by those clauses; when both are empty, those clauses
      alone. They are ``"inconclusive for U"``, ``"not tested for N (<reached>)"`` and
      ``"not testable with this estimator for X (<reason>)"`` (one clause per distinct text).

    So a significant failure is never hidden (it is named, or, in "holds only when P", every
    setting not named failed), and a verdict reads plain "inconclusive" only when no setting
    was decided. Without ``where`` the settings are counted ("in 1 of 3
    settings") instead of named. :func:`verdict_phrase` makes any verdict a verb phrase.

    Args:
        ok: an outcome, or one outcome per setting (bools, None, :class:`NotReached`,
            :class:`Untestable`; a NaN counts as None).
        where: a label per setting (default: the settings are counted).
        join: the separator of the labels within one clause.

    Returns:
        The verdict.

    Raises:
        ValueError: when there is no setting, or ``where`` has the wrong length.

    Example:
        >>> verdict([True, True])
        'holds'
        >>> verdict([True, False], where=["sd <= 0.01", "sd = 1"])
        'holds only when sd <= 0.01'
        >>> verdict([None, False, None], where=["A", "B", "C"])
        'does not hold for B; inconclusive for A, C'
        >>> verdict([True, False, None], where=["A", "B", "C"])
        'does not hold for B; holds for A; inconclusive for C'
        >>> verdict([True, None, NotReached("loss 0.4")], where=["A", "B", "C"])
        'holds only when A; inconclusive for B; not tested for C (loss 0.4)'
        >>> verdict([NotReached("loss 0.4")] * 2)
        'not tested: loss 0.4'
    """
    if isinstance(ok, np.ndarray | pd.Series):
        raw = list(np.atleast_1d(np.asarray(ok, dtype=object)).ravel())
    else:
        raw = list(ok) if isinstance(ok, list | tuple) else [ok]
    values = [_outcome(v) for v in raw]
    if not values:
        raise ValueError("no setting to judge")
    if where is not None and len(where) != len(values):
        raise ValueError(f"{len(where)} labels for {len(values)} settings")
    n = len(values)

    def names(index: list[int]) -> str:
        if where is None:
            return f"in {len(index)} of {n} settings"
        return join.join(str(where[i]) for i in index)

    def clause(head: str, index: list[int], note: str = "") -> str:
        word = " for " if where is not None else " "
        return f"{head}{word}{names(index)}" + (f" ({note})" if note else "")

    def grouped(kind, attr: str) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for i, v in enumerate(values):
            if isinstance(v, kind):
                groups.setdefault(getattr(v, attr), []).append(i)
        return groups

    passed = [i for i, v in enumerate(values) if v is True]
    failed = [i for i, v in enumerate(values) if v is False]
    unsure = [i for i, v in enumerate(values) if v is None]
    reached, reasons = grouped(NotReached, "reached"), grouped(Untestable, "reason")
    if len(passed) == n:
        return HOLDS
    if len(failed) == n:
        return FAILS
    if len(unsure) == n:
        return INCONCLUSIVE
    if len(reached) == 1 and sum(map(len, reached.values())) == n:
        return f"{NOT_TESTED}: {next(iter(reached))}"
    if len(reasons) == 1 and sum(map(len, reasons.values())) == n:
        return f"{NOT_TESTABLE}: {next(iter(reasons))}"
    others = unsure or reached or reasons
    if passed and failed and not others:
        return f"{ONLY_WHEN} {names(passed)}"  # exact: it fails in every other setting
    clauses = []
    if failed:
        clauses.append(clause(FAILS, failed))
        if passed:
            clauses.append(clause(HOLDS, passed))
    elif passed:
        clauses.append(f"{ONLY_WHEN} {names(passed)}")
    if unsure:
        clauses.append(clause(INCONCLUSIVE, unsure))
    clauses += [clause(NOT_TESTED, index, note) for note, index in reached.items()]
    clauses += [clause(NOT_TESTABLE, index, note) for note, index in reasons.items()]
    return "; ".join(clauses)


#: The first words of each kind of verdict, longest first (the order :func:`verdict_kind` tries).
_KIND_HEADS = (
    (ONLY_WHEN, ONLY_WHEN),
    (NOT_TESTABLE, NOT_TESTABLE),
    (NOT_TESTED, NOT_TESTED),
    (INCONCLUSIVE, INCONCLUSIVE),
    (f"{FAILS} for ", FAILS_FOR),
    (f"{FAILS} in ", FAILS_FOR),
    (FAILS, FAILS),
)


def verdict_kind(text: str) -> str | None:
    """The kind of a verdict, by how it starts: the key it counts under in :func:`verdict_counts`.

    Args:
        text: a verdict.

    Returns:
        :data:`HOLDS` (the text is exactly "holds"), :data:`ONLY_WHEN`, :data:`FAILS_FOR`
        ("does not hold for A; ...": fails in some settings, undecided in others), :data:`FAILS`,
        :data:`INCONCLUSIVE`, :data:`NOT_TESTED` or :data:`NOT_TESTABLE`; None for a text that
        is no verdict.

    Example:
        >>> [verdict_kind(v) for v in ["holds", "does not hold: c* = 3", "does not hold for B; "
        ...  "inconclusive for A", "not testable with this estimator: spread", "maybe"]]
        ['holds', 'does not hold', 'does not hold for', 'not testable with this estimator', None]
    """
    text = str(text)
    if text == HOLDS:
        return HOLDS
    return next((kind for head, kind in _KIND_HEADS if text.startswith(head)), None)


#: A clause of a verdict starts with one of these words (see :func:`verdict`).
_CLAUSE = re.compile(r"; (?=(?:holds|does not hold|inconclusive|not tested|not testable)\b)")

#: How each clause of a verdict reads after a subject ("the rule ...").
_VERBS = (
    (INCONCLUSIVE, "is "),
    (NOT_TESTABLE, "is "),
    (NOT_TESTED, "was "),
)


def verdict_phrase(text: str) -> str:
    """A verdict as a verb phrase that follows a subject: "the rule " + ``verdict_phrase(v)``.

    "holds ..." and "does not hold ..." read as they are; "inconclusive" becomes "is
    inconclusive", "not tested" "was not tested" and "not testable ..." "is not testable ...".
    The clauses of a compound verdict (:func:`verdict`) are joined by commas and a final "and".

    Args:
        text: a verdict.

    Returns:
        The phrase.

    Example:
        >>> verdict_phrase("inconclusive")
        'is inconclusive'
        >>> verdict_phrase("does not hold for B; inconclusive for A; not tested for C (loss 0.4)")
        'does not hold for B, is inconclusive for A and was not tested for C (loss 0.4)'
        >>> verdict_phrase("holds only when tanh")
        'holds only when tanh'
    """
    parts = []
    for part in _CLAUSE.split(str(text)):
        verb = next((v for head, v in _VERBS if part.startswith(head)), "")
        parts.append(verb + part)
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def difference_phrase(x: float, fmt: str = ".2f", more: str = "better", less: str = "worse",
                      same: str = "no different") -> str:  # fmt: skip
    """A signed difference in words: "better by 0.01", "worse by 0.01", never "better by -0.01".

    Args:
        x: the difference, positive meaning ``more``.
        fmt: the format of its size.
        more: the word for a positive difference.
        less: the word for a negative one.
        same: the words for a difference that the format rounds to zero.

    Returns:
        ``"<more> by |x|"``, ``"<less> by |x|"`` or ``same``.

    Raises:
        ValueError: when ``x`` is not finite.

    Example:
        >>> difference_phrase(0.012), difference_phrase(-0.012), difference_phrase(0.001)
        ('better by 0.01', 'worse by 0.01', 'no different')
        >>> difference_phrase(-2.5, fmt=".3g", more="higher", less="lower")
        'lower by 2.5'
    """
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"the difference is not finite ({x})")
    size = format(abs(x), fmt)
    if float(size) == 0:
        return same
    return f"{more if x > 0 else less} by {size}"


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
    if verdict_kind(verdict) is None:
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
    """How many rows have each kind of verdict (:func:`verdict_kind`).

    The keys are the five of the first ledger, then the two kinds added since: :data:`HOLDS`
    ("holds"), :data:`ONLY_WHEN` ("holds only when"), :data:`FAILS` ("does not hold": in every
    setting), :data:`INCONCLUSIVE` ("inconclusive"), :data:`NOT_TESTED` ("not tested"),
    :data:`FAILS_FOR` ("does not hold for": a significant failure in some settings and a pass in
    none) and :data:`NOT_TESTABLE` ("not testable with this estimator"). Every row counts under
    exactly one key, so the counts add up to the rows.

    Args:
        table: rows with a ``verdict`` column.

    Returns:
        The seven keys above -> count, in that order.

    Raises:
        ValueError: when a row's verdict is of no kind.

    Example:
        >>> counts = verdict_counts(pd.DataFrame({"verdict": ["holds", "holds only when tanh",
        ...     "inconclusive for a; does not hold for b",
        ...     "does not hold for b; inconclusive for a"]}))
        >>> list(counts.values()), list(counts)[5:]
        ([1, 1, 0, 1, 0, 1, 0], ['does not hold for', 'not testable with this estimator'])
    """
    kinds = table["verdict"].map(verdict_kind)
    unknown = table["verdict"][kinds.isna()].tolist()
    if unknown:
        raise ValueError(f"verdicts of no kind: {unknown}")
    order = (HOLDS, ONLY_WHEN, FAILS, INCONCLUSIVE, NOT_TESTED, FAILS_FOR, NOT_TESTABLE)
    return {k: int((kinds == k).sum()) for k in order}


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
