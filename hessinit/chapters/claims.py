"""The claims ledger page: the words its summary sentence reads from the ledger, and its layout.

The ledger itself is built in :mod:`hessinit.study.claims` (rows from
:mod:`hessinit.study.claimdata`); this module holds what the page's prose decides from it
(:func:`sources_text`) and how the page shows it at a laptop's width: per section of kinds
(:data:`SECTIONS`, findings apart from facts and sanity checks, :func:`kind_section`), a
three-column table (:func:`compact_table`) with the details folded (:func:`details_list`).

Imports: pandas and :mod:`hessinit.study.claims`.
"""

from __future__ import annotations

import pandas as pd

from ..study import claims

#: The source of a claim that rests on this book's reading of the paper, not its words.
FORMALIZATION = "this book's formalization"


def sources_text(ledger: pd.DataFrame) -> str:
    """Say how many rows rest on each source, most frequent first.

    A row's source is the paper's text it quotes, or
    :data:`hessinit.chapters.claims.FORMALIZATION` (our reading), which
    reads "n from this book's formalizations"; any other source reads "n from the <source>".

    Args:
        ledger: rows with a ``source`` column.

    Returns:
        The counts joined by ", ".

    Example:
        >>> sources_text(pd.DataFrame({"source": ["abstract", FORMALIZATION, "abstract"]}))
        "2 from the abstract, 1 from this book's formalizations"
    """
    counts = ledger["source"].value_counts()
    return ", ".join(
        f"{n} from this book's formalizations" if s == FORMALIZATION else f"{n} from the {s}"
        for s, n in counts.items()
    )


#: The sections of the claims page, findings apart from facts and sanity checks.
SECTIONS = (("empirical",), ("fact", "sanity"))


def _digits(x: float, digits: int) -> str:
    return f"{x:.{digits}g}"


def compact_table(ledger: pd.DataFrame, digits: int = 3) -> str:
    """The ledger's rows as a three-column MyST table: claim, verdict, measured value.

    The claim links to the figure its number comes from; the verdict is followed by the head of
    the row's setting (its text before the first "; "), so that rows of one claim are told
    apart; the measured value carries its 95%
    interval (:func:`hessinit.study.claims.interval_text`). The other columns (source,
    wording, setting, measure, seeds, rule) are in :func:`details_list`, so the table fits a
    1,280 px screen. Render it with ``glue:md`` and ``:format: myst``.

    Args:
        ledger: rows of :func:`hessinit.study.claims.ledger`.
        digits: significant digits.

    Returns:
        The table, one line per row.

    Example:
        >>> rows = pd.DataFrame({"claim": ["1.2"], "verdict": ["holds"], "value": [0.05],
        ...     "low": [0.04], "high": [0.06], "figure": ["fig-a"], "page": ["dominance"],
        ...     "setting": ["tanh, sd 0.01; mnist-5k, 200 steps"]})
        >>> print(compact_table(rows).splitlines()[-1])
        | {ref}`1.2 <fig-a>` | **holds** (tanh, sd 0.01) | 0.05 [0.04, 0.06] |
    """
    lines = ["| claim | verdict | measured, 95% interval |", "|---|---|---|"]
    for row in ledger.itertuples(index=False):
        link = f"{{ref}}`{row.claim} <{claims.figure_label(row.figure, str(row.page))}>`"
        number = claims.interval_text(row.value, row.low, row.high, digits)
        where = str(getattr(row, "setting", "") or "").split("; ")[0]
        cells = (link, f"**{row.verdict}**" + (f" ({where})" if where else ""), number)
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def details_list(ledger: pd.DataFrame, digits: int = 3) -> str:
    """The details of the ledger's rows, one list item each, for a folded block of the page.

    Args:
        ledger: rows of :func:`hessinit.study.claims.ledger`.
        digits: significant digits.

    Returns:
        A Markdown list: claim, source and the quoted wording, then setting, measure with its
        value, seeds and rule.

    Example:
        >>> rows = pd.DataFrame({"claim": ["1.2"], "source": ["paper abstract"], "wording": ["w"],
        ...     "setting": ["s"], "measure": ["R/H"], "value": [0.5], "low": [float("nan")],
        ...     "high": [float("nan")], "seeds": [3], "rule": ["r"]})
        >>> print(details_list(rows).strip())
        - **1.2** (paper abstract: "w"). Setting: s. Measured: R/H = 0.5 (exact), 3 seeds. Rule: r.
    """  # noqa: E501
    items = []
    for row in ledger.itertuples(index=False):
        number = claims.interval_text(row.value, row.low, row.high, digits)
        items.append(
            f'- **{row.claim}** ({row.source}: "{row.wording}"). Setting: {row.setting}. '
            f"Measured: {row.measure} = {number}, {int(row.seeds)} seeds. Rule: {row.rule}."
        )
    return "\n".join(items) + "\n"


def kind_section(ledger: pd.DataFrame, kinds: tuple[str, ...], digits: int = 3) -> str:
    """One section of the claims page: the rows of ``kinds``, their details folded.

    The compact table (:func:`compact_table`), then the details (:func:`details_list`) in a
    dropdown admonition.

    Args:
        ledger: rows of :func:`hessinit.study.claims.ledger` with a ``kind`` column.
        kinds: the kinds of the section, e.g. ``("fact", "sanity")``.
        digits: significant digits.

    Returns:
        The MyST text ("no rows" when the ledger has none of these kinds).

    Example:
        >>> rows = pd.DataFrame({"claim": ["1.1"], "kind": ["fact"], "verdict": ["holds"],
        ...     "value": [0.0], "low": [float("nan")], "high": [float("nan")],
        ...     "figure": ["fig-a"], "page": ["p"], "source": ["s"], "wording": ["w"],
        ...     "setting": ["relu"], "measure": ["R/H"], "seeds": [2], "rule": ["r"]})
        >>> kind_section(rows, ("empirical",)).strip()
        'No rows of this kind.'
        >>> kind_section(rows, ("fact",)).splitlines()[2]
        '| {ref}`1.1 <fig-a>` | **holds** (relu) | 0 (exact) |'
    """
    part = ledger[ledger["kind"].isin(kinds)]
    if part.empty:
        return "No rows of this kind.\n"
    return (
        compact_table(part, digits)
        + "\n:::{admonition} Source, wording, setting, measure, seeds and rule of each row\n"
        + ":class: dropdown\n\n"
        + details_list(part, digits)
        + ":::\n"
    )
