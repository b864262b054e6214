"""Verdicts on the paper's claims: the vocabulary, each chapter's rules and the claims ledger.

Every experiment chapter of the book states a rule for each claim it tests (a comparison of a
measured number with a threshold), evaluates it on each setting it measured, and writes one row
per claim (:func:`claim_row`, columns :data:`COLUMNS`) into a small CSV. The rules of each
chapter are the functions named after it (``dominance_*``, ``init_*``, ``step_*``), which take
the measured frames of :mod:`hessinit.study.analysis` and the rule's comparison and threshold as
arguments and return the chapter's rows. The ledger page reads the CSVs back with :func:`ledger`
and renders them with :func:`ledger_markdown`; nothing in the ledger is typed by hand.

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

from .stats import mean_interval, ratio_of_means

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
)

#: Columns of the ledger's own CSV (the claims page's ``table``), the row without its text.
LEDGER_CSV_COLUMNS = ("claim", "source", "setting", "measure", "value", "low", "high", "seeds",
                      "verdict")  # fmt: skip

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}

#: How a comparison reads in a rule's text ("the interval below 0.1").
_WORDS = {"<": "below", "<=": "at most", ">": "above", ">=": "at least"}


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
) -> dict:
    """One row of a claims table.

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

    Returns:
        A dict with the keys :data:`COLUMNS`.

    Raises:
        ValueError: when ``value`` is not finite, ``source`` or ``verdict`` is unknown, or the
            interval does not contain the value.

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
    if not (verdict == HOLDS or verdict.startswith((ONLY_WHEN, NOT_TESTED, FAILS, INCONCLUSIVE))):
        raise ValueError(f"claim {claim}: unknown verdict {verdict!r}")
    if not (math.isnan(low) or low <= value) or not (math.isnan(high) or value <= high):
        raise ValueError(f"claim {claim}: the interval [{low}, {high}] misses the value {value}")
    values = (str(claim), source, wording, setting, measure, value, low, high, int(seeds), rule,
              verdict, figure, page)  # fmt: skip
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


# --- original ---

#: The authors' notebook on a large initial std, verbatim (its typos kept).
NOTEBOOK_EXPLODES = ("For big sdt, the Hessian explodes and oscillades from very big values like "
                     "100 to very small ones.")  # fmt: skip

#: The authors' notebook on a small initial std, verbatim.
NOTEBOOK_SLOW = ("For small sdt, while the hessian is very small, the gradients are very small too "
                 "and then we get very small gains.")  # fmt: skip


def _all_of(flags) -> bool | None:
    """Conjunction of comparisons that may be inconclusive (None)."""
    if any(f is False for f in flags):
        return False
    return True if all(f is True for f in flags) else None


def original_explode_rows(
    extremes: pd.DataFrame,
    peaks: pd.DataFrame,
    *,
    big: float,
    small: float,
    factor: float,
    peak: float,
    swing: float,
    setting: str,
    figure: str = "fig-original-fresh",
    page: str = "original",
) -> pd.DataFrame:
    """Claim 0.1: for a big sd the Hessian "explodes and oscillades ... like 100".

    Two readings, one row each. On dense1, the layer whose Hessian the notebook computes: the
    rule is that ||H_dense1||_F at sd ``big`` exceeds ``factor`` times its value at sd ``small``
    at some checkpoint, i.e. the 95% t-interval over seeds of the per-seed largest ratio lies
    above ``factor``. On each other layer at sd ``big``: the 95% interval of its peak ||H||_F
    lies above ``peak`` ("like 100") and that of log10(peak / trough after the peak) above
    log10 ``swing`` ("to very small ones").

    Args:
        extremes: per seed, ``high``: the largest ratio over the checkpoints
            (:func:`hessinit.study.analysis.seed_extremes` of
            :func:`hessinit.study.analysis.sd_ratio_course`).
        peaks: per (layer, seed) at sd ``big``, ``peak`` and ``swing``
            (:func:`hessinit.study.analysis.peak_swing`); dense1's rows are ignored.
        big: the large sd.
        small: the small sd.
        factor: the ratio that counts as an explosion.
        peak: the peak that counts as "very big values like 100".
        swing: the peak / trough that counts as an oscillation to "very small ones".
        setting: the training (data, steps, lr).
        figure: the figure label of the rows.
        page: the chapter.

    Returns:
        One row for dense1, then one per other layer (:func:`claims_table`).

    Example:
        >>> extremes = pd.DataFrame({"seed": [0, 1, 2], "high": [0.2, 0.25, 0.3]})
        >>> peaks = pd.DataFrame({"layer": ["dense2"] * 3, "seed": [0, 1, 2],
        ...                       "peak": [150.0, 160.0, 140.0], "swing": [50.0, 60.0, 40.0]})
        >>> rows = original_explode_rows(extremes, peaks, big=1.0, small=1e-5, factor=10,
        ...                              peak=30, swing=10, setting="tiny")
        >>> rows[["setting", "verdict"]].values.tolist()
        [['dense1, sd 1 against sd 1e-05; tiny', 'does not hold'], ['dense2 at sd 1; tiny', 'holds']]
    """  # noqa: E501
    e = mean_interval(extremes["high"])
    rows = [claim_row(
        "0.1",
        source="authors' notebook",
        wording=NOTEBOOK_EXPLODES,
        setting=f"dense1, sd {big:g} against sd {small:g}; {setting}",
        measure="largest ||H_dense1||_F(sd big) / ||H_dense1||_F(sd small) over checkpoints",
        value=e.value, low=e.low, high=e.high, seeds=e.n,
        rule=f"the 95% interval above {factor:g} (dense1 is the layer the notebook measures)",
        verdict=interval_verdict(e.low, e.high, ">", factor),
        figure=figure, page=page,
    )]  # fmt: skip
    for layer, part in peaks[peaks["layer"] != "dense1"].groupby("layer", sort=True):
        p = mean_interval(part["peak"])
        w = mean_interval(np.log10(part["swing"].to_numpy(dtype=float)))
        high = compare_interval(p.low, p.high, ">", peak)
        falls = compare_interval(w.low, w.high, ">", math.log10(swing))
        if high is True and falls is False:
            text = (f"{ONLY_WHEN} read as 'very big values like 100': the norm peaks there but "
                    f"does not fall to very small ones")  # fmt: skip
        else:
            ok = _all_of([high, falls])
            text = INCONCLUSIVE if ok is None else HOLDS if ok else FAILS
        rows.append(claim_row(
            "0.1",
            source="authors' notebook",
            wording=NOTEBOOK_EXPLODES,
            setting=f"{layer} at sd {big:g}; {setting}",
            measure=f"peak ||H_{layer}||_F over training (peak / later trough: "
            f"{10 ** w.value:.2g}, geometric mean)",
            value=p.value, low=p.low, high=p.high, seeds=p.n,
            rule=f"95% intervals of the peak above {peak:g} and of log10(peak / trough after "
            f"it) above {math.log10(swing):g}",
            verdict=text,
            figure=figure, page=page,
        ))  # fmt: skip
    return claims_table(rows)


def original_slow_rows(
    gains: pd.DataFrame,
    *,
    small: float,
    fraction: float,
    min_gain: float,
    setting: str,
    figure: str = "fig-original-fresh",
    page: str = "original",
) -> pd.DataFrame:
    """Claim 0.2: for a small sd "we get very small gains".

    The baseline is the strongest other sd measured: the one with the lowest mean final loss
    (not the largest gain, which a bad start inflates). The value is the ratio of mean gains,
    small sd over that baseline, over the same seeds (paired: same Hessian batch and
    mini-batches), with its delta-method 95% interval
    (:func:`hessinit.study.stats.ratio_of_means`); the rule: the interval lies below
    ``fraction``. When no sd gained ``min_gain`` nats on average, the claim is not tested.

    Args:
        gains: per (sd, seed), ``gain`` and ``loss_end``
            (:func:`hessinit.study.analysis.loss_gains`).
        small: the small sd.
        fraction: the largest share of the baseline's gain that counts as "very small".
        min_gain: the mean gain (nats) the baseline must reach for the claim to be testable.
        setting: the training.
        figure: the figure label of the row.
        page: the chapter.

    Returns:
        The claims row (:func:`claims_table`).

    Example:
        >>> gains = pd.DataFrame({"sd": [1e-5] * 3 + [1.0] * 3, "seed": [0, 1, 2] * 2,
        ...                       "gain": [0.1, 0.12, 0.08, 1.0, 1.1, 0.9], "loss_end": 1.0})
        >>> row = original_slow_rows(gains, small=1e-5, fraction=0.5, min_gain=0.1, setting="t")
        >>> row[["value", "verdict"]].round(3).values.tolist()
        [[0.1, 'holds']]
        >>> original_slow_rows(gains.assign(gain=0.01), small=1e-5, fraction=0.5, min_gain=0.1,
        ...                    setting="t")["verdict"][0]  # doctest: +ELLIPSIS
        'not tested: the baseline gained less than 0.1 nats on average (0.01 at sd 1)'
    """
    table = gains.pivot_table(index="seed", columns="sd", values="gain").dropna()
    others = table.drop(columns=[small])
    final = gains[gains["sd"] != small].groupby("sd")["loss_end"].mean()
    best = final.idxmin()
    base = dict(claim="0.2", source="authors' notebook", wording=NOTEBOOK_SLOW,
                setting=f"sd {small:g} against the sd with the lowest final loss ({best:g}); "
                f"{setting}",
                seeds=len(table), figure=figure, page=page)  # fmt: skip
    if not others[best].mean() >= min_gain:
        return claims_table([claim_row(
            **base, measure=f"mean loss gain at sd {best:g} (nats)", value=others[best].mean(),
            rule=f"testable once some sd gains {min_gain:g} nats",
            verdict=f"{NOT_TESTED}: the baseline gained less than {min_gain:g} nats on average "
            f"({others[best].mean():.3g} at sd {best:g})",
        )])  # fmt: skip
    r = ratio_of_means(table[small], table[best])
    return claims_table([claim_row(
        **base,
        measure="loss gain on the Hessian batch, small sd / best sd (ratio of means)",
        value=r.value, low=r.low, high=r.high,
        rule=f"the 95% interval below {fraction:g} (a 'very small' gain)",
        verdict=interval_verdict(r.low, r.high, "<", fraction),
    )])  # fmt: skip


# --- dominance ---


#: The words claims 1.1-1.5 formalize (the paper's body, with its conditions, was not available).
DOMINANCE_WORDING = (
    "authors' notebook: \"We empirically validate ... that for neural networks, under certain "
    'conditions, the first term dominates!"; ACML 2021 abstract: "We demonstrate both '
    'theoretically and empirically the accuracy of our approximation"'
)


def dominance_relu_rows(
    check: pd.DataFrame,
    *,
    threshold: float,
    setting: str,
    figure: str = "fig-dominance-relu",
    page: str = "dominance",
) -> pd.DataFrame:
    """Claim 1.1: for ReLU, R = 0 on each layer's block, measured from the autodiff matrices.

    The rule: ||H_l - G_l||_F / ||H_l||_F < ``threshold`` (a round-off level) for every layer
    and seed, with H_l and G_l materialized by autodiff
    (:func:`hessinit.study.experiments.relu_exactness`), never the zero-curvature shortcut. The
    value is the largest ratio; an exact computation, so no interval. Rows of other activations
    (the control) are ignored here, and so are blocks with H_l = 0 (every unit dead: R_l = 0
    too, and the ratio is undefined).

    Args:
        check: rows of :func:`hessinit.study.experiments.relu_exactness`.
        threshold: the round-off level, e.g. 1e-10.
        setting: the networks and data.
        figure: the figure label of the row.
        page: the chapter.

    Returns:
        The claims row (:func:`claims_table`).

    Example:
        >>> check = pd.DataFrame({"activation": ["relu"] * 2 + ["tanh"], "seed": [0, 1, 0],
        ...                       "layer": "dense1", "R_over_H": [1e-17, 3e-16, 0.4]})
        >>> dominance_relu_rows(check, threshold=1e-10, setting="tiny")[
        ...     ["value", "seeds", "verdict"]].values.tolist()
        [[3e-16, 2, 'holds']]
        >>> dominance_relu_rows(check.assign(R_over_H=[1e-17, 1e-3, 0.4]), threshold=1e-10,
        ...                     setting="")["verdict"][0]
        'holds only when seed 0'
    """
    relu = check[check["activation"] == "relu"].dropna(subset=["R_over_H"])  # NaN: H_l = 0
    worst = relu.groupby("seed", sort=False)["R_over_H"].max()
    return claims_table([claim_row(
            "1.1",
            source="this book's formalization",
            wording=DOMINANCE_WORDING,
            setting=f"ReLU; {setting}",
            measure="largest ||H_l - G_l||_F / ||H_l||_F over layer blocks and seeds (autodiff)",
            value=worst.max(),
            seeds=len(worst),
            rule=f"||H_l - G_l||_F / ||H_l||_F < {threshold:g} (round-off) on every layer block",
            verdict=verdict(compare(worst.values, "<", threshold),
                            [f"seed {s}" for s in worst.index]),
            figure=figure,
            page=page,
        )])  # fmt: skip


def _interval_flags(frame: pd.DataFrame, op: str, threshold: float) -> list:
    """compare_interval over the rows' ``low``/``high`` (None where inconclusive)."""
    return [compare_interval(lo, hi, op, threshold)
            for lo, hi in zip(frame["low"], frame["high"], strict=True)]  # fmt: skip


def dominance_init_rows(
    summary: pd.DataFrame,
    *,
    op: str,
    threshold: float,
    setting: str,
    figure: str = "fig-dominance-init",
    page: str = "dominance",
) -> pd.DataFrame:
    """Claims 1.2-1.3: the linearization term dominates each layer's block at initialization.

    For each smooth (non-ReLU) setting the rule is judged on the 95% interval over seeds of the
    worst layer's ||R_l||_F / ||H_l||_F (:func:`interval_verdict`'s reading: met when the whole
    interval meets ``op threshold``, inconclusive when it straddles it). Claim 1.2: the standard
    schemes on every layer (``init`` not "sd"); claim 1.3: the sd grid (only dense1 or every
    layer scaled). Saturated settings (no unsaturated seed: H ~ 0, the ratio undefined) are not
    judged; they are named in the row's setting. The value is the largest mean ratio over the
    judged settings, with its interval, and its measure gives ||G||/||H|| there.

    Args:
        summary: rows of :func:`hessinit.study.analysis.init_intervals`.
        op: the comparison, e.g. ``"<"``.
        threshold: the threshold, e.g. 0.1.
        setting: the network and data, e.g. ``"784-30-30-10 MLP, 256 images per seed"``.
        figure: the figure label of the rows.
        page: the chapter.

    Returns:
        The two claims rows (:func:`claims_table`); a claim with no judged setting is
        :data:`NOT_TESTED`.

    Example:
        >>> nan = float("nan")
        >>> summary = pd.DataFrame({
        ...     "activation": ["tanh"] * 4, "init": ["lecun", "he", "sd", "sd"],
        ...     "scaling": ["all", "all", "all", "all"], "sd": [nan, nan, 0.01, 10.0],
        ...     "R_over_H": [0.05, 0.3, 0.5, nan], "low": [0.04, 0.2, 0.05, nan],
        ...     "high": [0.06, 0.4, 0.9, nan], "G_over_H": [1.0, 0.9, 0.5, nan],
        ...     "seeds": [5, 5, 5, 0], "saturated": [0, 0, 0, 5]})
        >>> rows = dominance_init_rows(summary, op="<", threshold=0.1, setting="tiny")
        >>> rows["verdict"].tolist()
        ['holds only when tanh lecun', 'inconclusive']
        >>> "saturated (not judged): tanh all sd=10" in rows["setting"][1]
        True
    """
    smooth = summary[summary["activation"] != "relu"]
    names = ", ".join(dict.fromkeys(smooth["activation"]))
    rows = []
    parts = (("1.2", smooth[smooth["init"] != "sd"], "standard schemes on every layer"),
             ("1.3", smooth[smooth["init"] == "sd"], "N(0, sd^2) kernels"))  # fmt: skip
    for claim, part, label in parts:
        judged = part[part["seeds"] >= 2]
        sat = part[part["seeds"] < 2]

        def labels(frame):
            return [f"{a} {i}" if i != "sd" else f"{a} {c} sd={s:g}" for a, i, c, s in
                    zip(frame["activation"], frame["init"], frame["scaling"], frame["sd"],
                        strict=True)]  # fmt: skip

        where = f"{names}; {label}; {setting}"
        if claim == "1.3" and len(part):
            scal = " and ".join(f"{c} scaled" for c in dict.fromkeys(part["scaling"]))
            where += f"; sd from {part['sd'].min():g} to {part['sd'].max():g}, {scal}"
        if len(sat):
            where += "; saturated (not judged): " + ", ".join(labels(sat))
        if len(judged):
            top = judged.loc[judged["R_over_H"].idxmax()]
            value, low, high = top["R_over_H"], top["low"], top["high"]
            name = labels(top.to_frame().T)[0]
            measure = (
                f"largest mean over settings of the worst layer's R/H ({name}; "
                f"G/H there {top['G_over_H']:.3g})"
            )
            text = verdict(_interval_flags(judged, op, threshold), labels(judged))
            seeds = int(judged["seeds"].min())
        else:
            value, low, high, seeds = 0.0, math.nan, math.nan, 0
            measure = "none: every setting saturated"
            text = f"{NOT_TESTED}: every setting saturated the softmax"
        rows.append(claim_row(
            claim,
            source="this book's formalization",
            wording=DOMINANCE_WORDING,
            setting=where,
            measure=measure,
            value=value,
            low=low,
            high=high,
            seeds=seeds,
            rule=f"the 95% interval over seeds of the worst layer's R/H {_WORDS[op]} "
                 f"{threshold:g}, per setting",
            verdict=text,
            figure=figure,
            page=page,
        ))  # fmt: skip
    return claims_table(rows)


def dominance_training_rows(
    intervals: pd.DataFrame,
    *,
    op: str,
    threshold: float,
    target: float,
    setting: str,
    figure: str = "fig-dominance-training",
    page: str = "dominance",
) -> pd.DataFrame:
    """Claim 1.4: the linearization term dominates each layer's block once the loss is low.

    Judged only on runs whose Hessian-batch loss reached ``target``; per smooth activation, the
    95% interval over those seeds of the final worst layer's R/H against ``op threshold``. An
    activation with fewer than 2 seeds at the target is not judged: it is named in the setting
    and cannot be among the activations where the rule holds. No activation with 2 seeds at the
    target: :data:`NOT_TESTED`, naming the lowest loss reached.
    The value is the largest mean over the judged activations.

    Args:
        intervals: rows of :func:`hessinit.study.analysis.training_intervals`.
        op: the comparison, e.g. ``"<"``.
        threshold: the threshold.
        target: the loss (nats, on the Hessian batch) a run must reach.
        setting: the training, e.g. ``"784-30-30-10, SGD lr 0.1, 3000 steps"``.
        figure: the figure label of the row.
        page: the chapter.

    Returns:
        The claims row (:func:`claims_table`).

    Example:
        >>> nan = float("nan")
        >>> iv = pd.DataFrame({"R_over_H": [0.05, 0.3], "low": [0.03, 0.2], "high": [0.07, 0.4],
        ...                    "G_over_H": [1.0, 0.9], "seeds": [3, 3], "runs": [3, 3],
        ...                    "loss_min": [0.05, 0.06]},
        ...                   index=pd.Index(["tanh", "gelu"], name="activation"))
        >>> dominance_training_rows(iv, op="<", threshold=0.1, target=0.1, setting="")[
        ...     ["value", "verdict"]].values.tolist()
        [[0.3, 'holds only when tanh']]
        >>> unreached = iv.assign(R_over_H=nan, low=nan, high=nan, seeds=0, loss_min=0.4)
        >>> dominance_training_rows(unreached, op="<", threshold=0.1, target=0.1,
        ...                         setting="")["verdict"][0]
        'not tested: the lowest Hessian-batch loss reached was 0.4 nats (target <= 0.1)'
    """
    smooth = intervals[intervals.index != "relu"]
    judged = smooth[smooth["seeds"] >= 2]
    missed = smooth[smooth["seeds"] < 2]
    where = f"{setting}; target loss <= {target:g} nats on the Hessian batch"
    if len(missed):
        where += "; target not reached by 2 seeds: " + ", ".join(
            f"{a} (lowest loss {v:.3g})" for a, v in missed["loss_min"].items()
        )
    if len(judged):
        top = judged.loc[judged["R_over_H"].idxmax()]
        value, low, high = top["R_over_H"], top["low"], top["high"]
        seeds = int(judged["seeds"].min())
        measure = (
            f"largest mean final worst-layer R/H over activations ({top.name}; G/H there "
            f"{top['G_over_H']:.3g})"
        )
        # an activation that did not reach the target is not among the settings where it holds
        flags = _interval_flags(judged, op, threshold) + [False] * len(missed)
        text = verdict(flags, [*judged.index, *missed.index])
    else:
        value, low, high, seeds = smooth["loss_min"].min(), math.nan, math.nan, 0
        measure = "lowest Hessian-batch loss reached (nats); R/H not judged"
        text = (
            f"{NOT_TESTED}: the lowest Hessian-batch loss reached was {value:.3g} nats "
            f"(target <= {target:g})"
        )
    return claims_table([claim_row(
            "1.4",
            source="this book's formalization",
            wording=DOMINANCE_WORDING,
            setting=where,
            measure=measure,
            value=value,
            low=low,
            high=high,
            seeds=seeds,
            rule=f"after training to a loss <= {target:g}: the 95% interval over seeds of the "
                 f"worst layer's R/H {_WORDS[op]} {threshold:g}, per activation",
            verdict=text,
            figure=figure,
            page=page,
        )])  # fmt: skip


def dominance_whole_rows(
    ratios: pd.DataFrame,
    *,
    op: str,
    threshold: float,
    setting: str,
    figure: str = "fig-dominance-whole",
    page: str = "dominance",
) -> pd.DataFrame:
    """Claim 1.5: the linearization term dominates the Hessian of the whole network.

    For each network the rule ``||R||_F / ||H||_F op threshold``, over all weights with the
    cross-layer blocks, is judged on the paired 95% interval of the ratio
    (:func:`hessinit.curvature.hutchinson_norms`: H, G, R from the same probes). The value is
    the largest ratio over the networks, with its interval; ``seeds`` is the number of probes.

    Args:
        ratios: rows of :func:`hessinit.study.analysis.whole_network_ratios` (``activation``,
            ``sd``, ``R_over_H``, ``low``, ``high``, ``G_over_H``, ``probes``).
        op: the comparison, e.g. ``"<"``.
        threshold: the threshold.
        setting: the estimate's setting (weights, stds, images, probes).
        figure: the figure label of the row.
        page: the chapter.

    Returns:
        The claims row (:func:`claims_table`).

    Example:
        >>> ratios = pd.DataFrame({"activation": ["relu", "tanh"], "sd": [0.1, 0.1],
        ...                        "R_over_H": [0.5, 0.08], "low": [0.3, 0.05],
        ...                        "high": [0.7, 0.09], "G_over_H": [0.9, 1.0], "probes": 20})
        >>> row = dominance_whole_rows(ratios, op="<", threshold=0.1, setting="tiny")
        >>> row[["value", "seeds", "verdict"]].values.tolist()
        [[0.5, 20, 'holds only when tanh sd=0.1']]
        >>> straddles = ratios.assign(high=[0.7, 0.2])  # tanh's interval straddles 0.1
        >>> dominance_whole_rows(straddles, op="<", threshold=0.1, setting="")["verdict"][0]
        'inconclusive'
    """
    where = [f"{a} sd={s:g}" for a, s in zip(ratios["activation"], ratios["sd"], strict=True)]
    top = ratios.loc[ratios["R_over_H"].idxmax()]
    return claims_table([claim_row(
            "1.5",
            source="this book's formalization",
            wording=DOMINANCE_WORDING,
            setting=setting,
            measure=f"largest whole-network R/H over the networks ({top['activation']} "
                    f"sd={top['sd']:g}; G/H there {top['G_over_H']:.3g})",
            value=top["R_over_H"],
            low=top["low"],
            high=top["high"],
            seeds=int(ratios["probes"].min()),
            rule=f"the paired 95% interval (same probes) of the whole network's R/H "
                 f"{_WORDS[op]} {threshold:g}, per network",
            verdict=verdict(_interval_flags(ratios, op, threshold), where),
            figure=figure,
            page=page,
        )])  # fmt: skip


# --- init_schemes ---


#: The abstracts' words claims 2.1 and 2.2 rest on (arXiv v1 and ACML 2021).
INIT_RECOVERS = (
    "The proposed approach is more systematic and recovers previous results for DNN activations "
    "such as smooth functions, dropouts, and ReLU."
)
INIT_IMPROVES = (
    "we develop an approximated chain rule for Hessians which along with the principle of "
    "controlling the norm of the layers' Hessians, can be used to explain, generalize and "
    "improve upon existing initialization schemes."
)


def init_root_rows(
    summary: pd.DataFrame,
    *,
    classic: dict,
    xtol: float,
    max_ratio: float,
    setting: str,
    figure: str = "fig-init-roots",
    page: str = "init_schemes",
) -> pd.DataFrame:
    """Claim 2.1, one row per setting: the depth-stable c* recovers the classical variance.

    The rule, with [low, high] the 95% interval of c* widened by the root's tolerance, i.e.
    [low e^-xtol, high e^xtol]: "holds" when the classical value lies in it and high / low <=
    ``max_ratio``; "inconclusive" when it lies in it but high / low > ``max_ratio`` (too wide to
    tell the classical value from one ``max_ratio`` times away); "does not hold" when it lies
    outside; "not tested" when fewer than two seeds found a sign change of the log-growth.

    Args:
        summary: rows of :func:`hessinit.study.analysis.root_summary`.
        classic: ``label`` -> ``(c, name, source)``: the classical value, its name in the text
            (e.g. "He, c = 2") and the row's source (one of :data:`SOURCES`).
        xtol: the root-finding tolerance in log c.
        max_ratio: the widest interval (high / low) that can decide.
        setting: the networks, with the label appended.
        figure: the figure label of the rows.
        page: the chapter.

    Returns:
        The claims rows (:func:`claims_table`).

    Example:
        >>> summary = pd.DataFrame({"label": ["relu", "tanh", "wide", "none"],
        ...     "c": [2.0, 1.2, 1.5, float("nan")], "low": [1.95, 1.15, 0.5, float("nan")],
        ...     "high": [2.05, 1.25, 4.0, float("nan")], "seeds": [4, 4, 4, 0],
        ...     "c_lo": 0.5, "c_hi": 8.0})
        >>> classic = {k: (v, k, "paper abstract") for k, v in
        ...            [("relu", 2.0), ("tanh", 1.0), ("wide", 1.0), ("none", 1.0)]}
        >>> rows = init_root_rows(summary, classic=classic, xtol=0.01, max_ratio=1.5, setting="s")
        >>> [v.split(":")[0] for v in rows["verdict"]]
        ['holds', 'does not hold', 'inconclusive', 'not tested']
    """
    rows = []
    for r in summary.itertuples():
        value, name, source = classic[r.label]
        if r.seeds < 2:
            c = r.c if math.isfinite(r.c) else value
            rows.append(claim_row(
                "2.1", source=source, wording=INIT_RECOVERS, setting=f"{setting}; {r.label}",
                measure="depth-stable variance factor c* (no root found)", value=c,
                seeds=int(r.seeds),
                rule=f"{name} lies in the 95% interval of c* over the seeds",
                verdict=f"{NOT_TESTED}: the log-growth did not change sign in c between "
                f"{r.c_lo:.3g} and {r.c_hi:.3g} on {int(r.seeds)} seeds (two are needed)",
                figure=figure, page=page))  # fmt: skip
            continue
        lo, hi = r.low * math.exp(-xtol), r.high * math.exp(xtol)
        inside = lo <= value <= hi
        if inside and hi / lo > max_ratio:
            v = INCONCLUSIVE
        elif inside:
            v = HOLDS
        else:
            side = "above" if value < lo else "below"
            v = f"{FAILS}: c* = {r.c:.3g} [{r.low:.3g}, {r.high:.3g}] lies {side} {value:g}"
        rows.append(claim_row(
            "2.1", source=source, wording=INIT_RECOVERS, setting=f"{setting}; {r.label}",
            measure="depth-stable variance factor c* (geometric mean over seeds)",
            value=r.c, low=r.low, high=r.high, seeds=int(r.seeds),
            rule=f"{name} lies in the 95% t-interval of log c* over the seeds, widened by the "
            f"root tolerance (x e^+-{xtol:g}); inconclusive when that interval is wider than a "
            f"factor {max_ratio:g}",
            verdict=v, figure=figure, page=page))  # fmt: skip
    return claims_table(rows)


def init_improves_rows(
    diffs: pd.DataFrame,
    *,
    margin: float,
    setting: str,
    figure: str = "fig-init-paired",
    page: str = "init_schemes",
) -> pd.DataFrame:
    """Claim 2.2, one row per rival: the Hessian-based initializer beats it in held-out accuracy.

    On the paired accuracy difference (Hessian-based minus rival) with 95% interval [low, high]:
    "holds" when low > 0; "does not hold (no detectable difference)" when the interval lies
    inside (-``margin``, ``margin``); "does not hold" when high < 0; else "inconclusive".

    Args:
        diffs: rows of :func:`hessinit.study.analysis.paired_differences` (the
            ``test_accuracy`` rows are used).
        margin: the equivalence margin, in accuracy (0.005 = half a point).
        setting: the training, with the rival appended.
        figure: the figure label of the rows.
        page: the chapter.

    Returns:
        The claims rows (:func:`claims_table`).

    Example:
        >>> diffs = pd.DataFrame({"rival": ["a", "b", "c", "d"], "score": "test_accuracy",
        ...     "value": [0.02, 0.0, -0.02, 0.004], "low": [0.01, -0.002, -0.03, -0.004],
        ...     "high": [0.03, 0.002, -0.01, 0.012], "seeds": 10})
        >>> init_improves_rows(diffs, margin=0.005, setting="s")["verdict"].tolist()
        ['holds', 'does not hold (no detectable difference)', 'does not hold', 'inconclusive']
    """
    rows = []
    for r in diffs[diffs["score"] == "test_accuracy"].itertuples():
        if -margin < r.low and r.high < margin:
            v = f"{FAILS} (no detectable difference)"
        else:
            v = interval_verdict(r.low, r.high, ">", 0.0)
        rows.append(claim_row(
            "2.2", source="this book's formalization", wording=INIT_IMPROVES,
            setting=f"{setting}; versus {r.rival}",
            measure="held-out accuracy, Hessian-based minus rival (paired by seed)",
            value=r.value, low=r.low, high=r.high, seeds=int(r.seeds),
            rule=f"95% t-interval of the paired difference above 0; inside +-{margin:g}: no "
            "detectable difference; below 0: worse",
            verdict=v, figure=figure, page=page))  # fmt: skip
    return claims_table(rows)


# --- step_size ---

#: The authors' notebook on step sizes, the words claims 3.1-3.4 rest on (typo as written).
STEP_WORDING = "the Hessian matrix calculation allows us to drive the optimization (step size)"


def _sd_label(sd) -> str:
    return f"sd = {sd:g}"


def step_model_rows(
    gains: pd.DataFrame,
    *,
    setting: str,
    figure: str = "fig-step-gamma",
    page: str = "step_size",
) -> pd.DataFrame:
    """Claims 3.1 and 3.2: the second-order term of the Taylor model earns its keep.

    Along -g the linear model predicts the decrease gamma g^T g of a step gamma and the
    quadratic one gamma g^T g - gamma^2 g^T H g / 2. Per run (sd, seed) the gain is the mean
    over checkpoints of abs(relative error) of the linear model minus that of the quadratic one
    (:func:`hessinit.study.analysis.model_errors`): claim 3.1 at the fixed step (``gain``),
    claim 3.2 at gamma* = g^T g / g^T H g (``gain_star``). The rule, per sd: the 95%
    t-interval over seeds of the mean gain lies above 0 (:func:`interval_verdict`); the sds
    combine by :func:`verdict`. The row's value is the mean gain over seeds of each seed's
    average over the sds, with its t-interval.

    Args:
        gains: one row per (sd, seed) with ``gain`` and ``gain_star``
            (:func:`hessinit.study.analysis.seed_means` of the checkpoints).
        setting: the training.
        figure: the figure label of the rows.
        page: the chapter.

    Returns:
        The two claims rows (:func:`claims_table`).

    Example:
        >>> gains = pd.DataFrame({"sd": [0.01] * 3 + [1.0] * 3, "seed": [0, 1, 2] * 2,
        ...                       "gain": [0.1, 0.11, 0.12, -0.1, 0.0, 0.1],
        ...                       "gain_star": [-0.5, -0.6, -0.55] * 2})
        >>> rows = step_model_rows(gains, setting="tiny")
        >>> rows[["claim", "verdict"]].values.tolist()
        [['3.1', 'holds only when sd = 0.01; inconclusive for sd = 1'], ['3.2', 'does not hold']]
    """
    from .stats import mean_interval

    rows = []
    for claim, column, step in (("3.1", "gain", "at the fixed step"),
                                ("3.2", "gain_star", "at gamma*")):  # fmt: skip
        oks, where, per_sd = [], [], []
        for sd, part in gains.groupby("sd"):
            e = mean_interval(part[column])
            oks.append(compare_interval(e.low, e.high, ">", 0))
            where.append(_sd_label(sd))
            per_sd.append(f"{_sd_label(sd)}: {e.value:.3g} [{e.low:.3g}, {e.high:.3g}]")
        pooled = mean_interval(gains.groupby("seed")[column].mean())
        rows.append(claim_row(
            claim,
            source="this book's formalization",
            wording=STEP_WORDING,
            setting=f"{setting}; {step}; gain per sd {'; '.join(per_sd)}",
            measure="|rel. error| linear minus quadratic model (mean over sds and checkpoints)",
            value=pooled.value,
            low=pooled.low,
            high=pooled.high,
            seeds=gains["seed"].nunique(),
            rule="the quadratic model (with g'Hg) predicts the realised decrease better than "
                 "the linear one: per sd the 95% t-interval over seeds of the mean gain is "
                 "above 0",
            verdict=verdict(oks, where),
            figure=figure,
            page=page,
        ))  # fmt: skip
    return claims_table(rows)


def step_training_rows(
    diffs: pd.DataFrame,
    best: pd.DataFrame,
    *,
    taylor: Sequence[str],
    setting: str,
    figure: str = "fig-step-training",
    page: str = "step_size",
) -> pd.DataFrame:
    """Claims 3.3, 3.4, ...: a Taylor step ends lower than the best tuned fixed step.

    For each Taylor schedule (in order, claims 3.3, 3.4, ...) and each sd: the paired
    differences over seeds of final loss, Taylor minus the sd's best fixed step
    (:func:`hessinit.study.analysis.best_fixed`, chosen on the same seeds: optimistic for the
    baseline). The rule per sd: the 95% t-interval of the mean difference lies below 0
    (:func:`interval_verdict`); a Taylor run that diverged on any seed loses the sd outright.
    The sds combine by :func:`verdict`. The row's value is the mean over seeds of each seed's
    difference averaged over the sds (finite runs), with its t-interval.

    Args:
        diffs: rows of :func:`hessinit.study.analysis.against_best` with an ``init`` column
            holding the sd.
        best: rows of :func:`hessinit.study.analysis.best_fixed` (``init``, ``lr``).
        taylor: the Taylor schedules, in claim order.
        setting: the training.
        figure: the figure label of the rows.
        page: the chapter.

    Returns:
        One claims row per Taylor schedule (:func:`claims_table`).

    Example:
        >>> diffs = pd.DataFrame({"init": [0.01] * 3 + [1.0] * 3, "challenger": "t",
        ...                       "seed": [0, 1, 2] * 2,
        ...                       "diff": [-0.2, -0.21, -0.19, 0.1, 0.3, 0.2],
        ...                       "challenger_diverged": False})
        >>> best = pd.DataFrame({"init": [0.01, 1.0], "lr": [0.3, 0.1]})
        >>> rows = step_training_rows(diffs, best, taylor=["t"], setting="tiny")
        >>> rows[["claim", "verdict"]].values.tolist()
        [['3.3', 'holds only when sd = 0.01; inconclusive for sd = 1']]
    """
    from .stats import mean_interval

    lrs = ", ".join(f"{_sd_label(i)}: {lr:g}" for i, lr in zip(best["init"], best["lr"],
                                                              strict=True))  # fmt: skip
    rows = []
    for i, name in enumerate(taylor):
        mine = diffs[diffs["challenger"] == name]
        oks, where, per_sd = [], [], []
        for sd, part in mine.groupby("init"):
            if part["challenger_diverged"].any():
                oks.append(False)
                per_sd.append(f"{_sd_label(sd)}: diverged")
            else:
                e = mean_interval(part["diff"])
                oks.append(compare_interval(e.low, e.high, "<", 0))
                per_sd.append(f"{_sd_label(sd)}: {e.value:.3g} [{e.low:.3g}, {e.high:.3g}]")
            where.append(_sd_label(sd))
        finite = mine[np.isfinite(mine["diff"])]
        pooled = mean_interval(finite.groupby("seed")["diff"].mean())
        diverged = int(mine["challenger_diverged"].sum())
        rows.append(claim_row(
            f"3.{3 + i}",
            source="this book's formalization",
            wording=STEP_WORDING,
            setting=f"{setting}; {name} against the best fixed lr per sd ({lrs}); "
                    f"{diverged} diverged {name} runs; difference per sd {'; '.join(per_sd)}",
            measure="final loss, Taylor minus best fixed step (nats, mean over sds)",
            value=pooled.value,
            low=pooled.low,
            high=pooled.high,
            seeds=mine["seed"].nunique(),
            rule="per sd, the 95% t-interval of the paired final-loss difference over seeds "
                 "is below 0 (a diverged Taylor run loses)",
            verdict=verdict(oks, where),
            figure=figure,
            page=page,
        ))  # fmt: skip
    return claims_table(rows)


def step_stability_rows(
    outcomes: pd.DataFrame,
    *,
    setting: str,
    first: int = 5,
    figure: str = "fig-step-stability",
    page: str = "step_size",
) -> pd.DataFrame:
    """The stability bound 2 / lambda_max at initialization as a rule for fixed steps.

    On a quadratic with Hessian H, gradient descent with step lr converges iff
    lr < 2 / lambda_max(H). Read for the network with lambda_max of the whole network's Hessian
    at initialization (:func:`hessinit.study.analysis.stability_outcomes`), in two claims:
    claim 3.n with n = ``first``, a step below the bound trains (final loss below the initial
    one, no divergence); claim 3.(n + 1), a step above it fails. The rule of each, per sd:
    every run of the grid on that side of the bound (every step and seed) does as claimed; an
    sd without such runs is left out, and a claim without any is not tested. The sds combine by
    :func:`verdict`. A row's value is the mean over seeds of each seed's fraction of its runs
    on that side that did as claimed, with its t-interval.

    Args:
        outcomes: rows of :func:`hessinit.study.analysis.stability_outcomes`.
        setting: the training.
        first: n, the first claim being 3.n.
        figure: the figure label of the rows.
        page: the chapter.

    Returns:
        The two claims rows (:func:`claims_table`).

    Example:
        >>> outcomes = pd.DataFrame({"sd": [0.01] * 4 + [1.0] * 4, "seed": [0, 0, 1, 1] * 2,
        ...                          "lr": [0.1, 1.0] * 4,
        ...                          "predicted": [False, True] * 4,
        ...                          "unstable": [False, True] * 2 + [False, False] * 2})
        >>> rows = step_stability_rows(outcomes, setting="tiny")
        >>> rows[["claim", "verdict"]].values.tolist()
        [['3.5', 'holds'], ['3.6', 'holds only when sd = 0.01']]
    """
    from .stats import mean_interval

    rows = []
    sides = ((False, "below", "trains", "trained"), (True, "above", "fails", "failed"))
    for i, (above, side, does, did) in enumerate(sides):
        mine = outcomes[outcomes["predicted"] == above]
        claimed = mine["unstable"] == above  # did as the claim says
        oks, where = [], []
        for sd, part in claimed.groupby(mine["sd"]):
            oks.append(bool(part.all()))
            where.append(_sd_label(sd))
        base = dict(
            source="this book's formalization",
            wording=STEP_WORDING,
            seeds=outcomes["seed"].nunique(),
            rule=f"per sd, every fixed step of the grid {side} 2 / lambda_max of the network's "
            f"Hessian at initialization {does} (fails: diverges or ends with a loss not below "
            "the initial one)",
            figure=figure,
            page=page,
        )
        if mine.empty:
            rows.append(claim_row(
                f"3.{first + i}", **base,
                setting=f"{setting}; {len(outcomes)} fixed-step runs",
                measure=f"fixed-step runs with lr {side} 2/lambda_max(init)",
                value=0,
                verdict=f"{NOT_TESTED}: no fixed step of the grid is {side} the bound",
            ))  # fmt: skip
            continue
        pooled = mean_interval(claimed.groupby(mine["seed"]).mean())
        rows.append(claim_row(
            f"3.{first + i}", **base,
            setting=f"{setting}; {int(claimed.sum())} of the {len(mine)} fixed-step runs with "
                    f"lr {side} 2/lambda_max(init) {did}",
            measure=f"fraction of fixed-step runs {side} 2/lambda_max(init) that {did}",
            value=pooled.value,
            low=pooled.low,
            high=pooled.high,
            verdict=verdict(oks, where),
        ))  # fmt: skip
    return claims_table(rows)


# --- diagnostic ---

#: The abstracts' words claim 4.1 rests on.
DIAGNOSTIC_WORDING = (
    "the Hessian norm is a useful diagnostic tool which helps to rigorously initialize and "
    "evaluate initialization schemes (ACML 2021); tracking the Hessian norm is a useful "
    "diagnostic tool (arXiv v1)"
)


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


def diagnostic_rows(
    corr: pd.DataFrame,
    gaps: pd.DataFrame,
    *,
    threshold: float,
    setting: str,
    figure: str = "fig-diagnostic",
    page: str = "diagnostic",
) -> pd.DataFrame:
    """Claims 4.1 and 4.2: the Hessian norm at initialization predicts the loss after training.

    4.1, per (Hessian predictor, outcome): the 95% interval of abs(rho) (Spearman, clustered
    bootstrap over seeds; :func:`abs_interval`) lies above ``threshold``: holds; below it:
    does not hold; else inconclusive (:func:`interval_verdict`). The settings combine by
    :func:`verdict`, naming the predictors and outcomes where it holds. The row's value is the
    abs(rho) of the setting with the highest lower end.

    4.2, per outcome: the Hessian predictor with the highest abs(rho) lower end ranks the outcome
    better than the best trivial baseline: the paired bootstrap interval of
    abs(rho_Hessian) - abs(rho_baseline) (:func:`hessinit.study.analysis.rank_gap`) lies above 0.
    The row's value is the smallest gap over the outcomes.

    Args:
        corr: rows of :func:`hessinit.study.analysis.rank_correlations` with a ``kind``
            column, ``"hessian"`` or ``"baseline"``.
        gaps: one row per outcome: ``outcome``, ``hessian``, ``baseline``, ``gap``, ``low``,
            ``high``.
        threshold: the abs(rho) that counts as useful.
        setting: the initializations and training.
        figure: the figure label of the rows.
        page: the chapter.

    Returns:
        The two claims rows (:func:`claims_table`).

    Example:
        >>> corr = pd.DataFrame({"predictor": ["H_sum", "loss0"], "outcome": "y",
        ...                      "kind": ["hessian", "baseline"], "rho": [0.3, 0.9],
        ...                      "low": [-0.1, 0.8], "high": [0.6, 0.95], "n": 5})
        >>> gaps = pd.DataFrame({"outcome": ["y"], "hessian": "H_sum", "baseline": "loss0",
        ...                      "gap": [-0.6], "low": [-0.9], "high": [-0.3]})
        >>> rows = diagnostic_rows(corr, gaps, threshold=0.5, setting="tiny")
        >>> rows[["claim", "verdict"]].values.tolist()
        [['4.1', 'inconclusive'], ['4.2', 'does not hold']]
    """
    hess = corr[corr["kind"] == "hessian"].reset_index(drop=True)
    ends = [abs_interval(lo, hi) for lo, hi in zip(hess["low"], hess["high"], strict=True)]
    oks = [compare_interval(lo, hi, ">", threshold) for lo, hi in ends]
    where = [f"{p} with {o}" for p, o in zip(hess["predictor"], hess["outcome"], strict=True)]
    top = int(np.argmax([lo for lo, _ in ends]))
    lo, hi = ends[top]
    worst = gaps.loc[gaps["gap"].idxmin()]
    gap_ok = [compare_interval(a, b, ">", 0) for a, b in zip(gaps["low"], gaps["high"],
                                                            strict=True)]  # fmt: skip
    n = int(corr["n"].max())
    return claims_table([
        claim_row(
            "4.1",
            source="this book's formalization",
            wording=DIAGNOSTIC_WORDING,
            setting=f"{setting}; best: {hess['predictor'][top]} with {hess['outcome'][top]}",
            measure="|Spearman rho|, Hessian norm at init vs final loss",
            value=abs(hess["rho"][top]),
            low=lo,
            high=hi,
            seeds=n,
            rule=f"95% interval of |rho| above {threshold:g} (clustered bootstrap over seeds); "
                 "the Hessian predictors are each layer's norm, their sum, max and the "
                 "distance from a data-given level",
            verdict=verdict(oks, where),
            figure=figure,
            page=page,
        ),
        claim_row(
            "4.2",
            source="this book's formalization",
            wording=DIAGNOSTIC_WORDING,
            setting=f"{setting}; {worst['hessian']} against {worst['baseline']} "
                    f"({worst['outcome']})",
            measure="|rho| Hessian predictor minus |rho| best trivial baseline (worst outcome)",
            value=worst["gap"],
            low=worst["low"],
            high=worst["high"],
            seeds=n,
            rule="paired bootstrap interval of the gap above 0: the Hessian norm ranks the "
                 "initializations better than the initial loss or gradient norm",
            verdict=verdict(gap_ok, [str(o) for o in gaps["outcome"]]),
            figure=figure,
            page=page,
        ),
    ])  # fmt: skip


# --- cnn ---


def cnn_rows(
    summary: pd.DataFrame,
    *,
    op: str,
    threshold: float,
    setting: str,
    figure: str = "fig-cnn",
    page: str = "cnn",
) -> pd.DataFrame:
    """Claims 5.1-5.2: the linearization term dominates each kernel's block in CNNs at init.

    The dominance chapter's rule (claims 1.2-1.3) carried to convolutional networks: per
    network and scheme, the 95% interval over seeds of the worst kernel tensor's
    ||R||_F / ||H||_F meets ``op threshold`` (:func:`compare_interval`; inconclusive when it
    straddles). A row whose tensors were all computed exactly (``exact``) is judged on its value:
    for piecewise-linear networks R = 0 by structure, a fact of the architecture, not evidence.
    Claim 5.1: networks without BatchNorm; claim 5.2: with BatchNorm (``network`` containing
    "bn"). The value is the largest mean ratio over the settings, with its interval.

    Args:
        summary: rows of :func:`hessinit.study.cnn.worst_intervals`.
        op: the comparison, e.g. ``"<"``.
        threshold: the threshold, e.g. 0.1.
        setting: the data and batch, e.g. ``"mnist-5k, 128 images"``.
        figure: the figure label of the rows.
        page: the chapter.

    Returns:
        The two claims rows (:func:`claims_table`); a claim with no setting is
        :data:`NOT_TESTED`.

    Example:
        >>> summary = pd.DataFrame({
        ...     "network": ["cnn relu", "cnn tanh", "resnet bn"], "init": "he",
        ...     "R_over_H": [0.0, 0.3, 1.0], "low": [0.0, 0.05, 0.9], "high": [0.0, 0.6, 1.1],
        ...     "G_over_H": [1.0, 0.9, 0.1], "seeds": 3, "exact": [True, False, False]})
        >>> cnn_rows(summary, op="<", threshold=0.1, setting="tiny")["verdict"].tolist()
        ['holds only when cnn relu he; inconclusive for cnn tanh he', 'does not hold']
    """
    bn = summary["network"].str.contains("bn")
    parts = (("5.1", summary[~bn], "without BatchNorm"), ("5.2", summary[bn], "with BatchNorm"))
    rows = []
    for claim, part, label in parts:
        labels = [f"{n} {i}" for n, i in zip(part["network"], part["init"], strict=True)]
        if len(part):
            flags = [compare(v, op, threshold) if exact else compare_interval(lo, hi, op, threshold)
                     for v, lo, hi, exact in zip(part["R_over_H"], part["low"], part["high"],
                                                 part["exact"], strict=True)]  # fmt: skip
            top = part.loc[part["R_over_H"].idxmax()]
            exact = bool(top["exact"])
            value, low, high = top["R_over_H"], top["low"], top["high"]
            if exact:
                low = high = math.nan
            name = f"{top['network']} {top['init']}"
            measure = (
                f"largest mean over settings of the worst kernel's R/H ({name}, "
                f"{'exact' if exact else 'Hutchinson'}; G/H there {top['G_over_H']:.3g})"
            )
            text, seeds = verdict(flags, labels), int(part["seeds"].min())
            structural = [lab for lab, e, v in zip(labels, part["exact"], part["R_over_H"],
                                                   strict=True) if e and v == 0]  # fmt: skip
            where = f"{label}; {setting}"
            if structural:
                where += "; R = 0 by structure (piecewise linear): " + ", ".join(structural)
        else:
            value, low, high, seeds = 0.0, math.nan, math.nan, 0
            measure, where = "none", f"{label}; {setting}"
            text = f"{NOT_TESTED}: no network {label}"
        rows.append(claim_row(
            claim,
            source="this book's formalization",
            wording=DOMINANCE_WORDING,
            setting=where,
            measure=measure,
            value=value,
            low=low,
            high=high,
            seeds=seeds,
            rule=f"the 95% interval over seeds of the worst kernel's R/H {_WORDS[op]} "
                 f"{threshold:g}, per network and scheme (exact values judged as they are)",
            verdict=text,
            figure=figure,
            page=page,
        ))  # fmt: skip
    return claims_table(rows)
