"""Claims as data: the claims table ``claims.yml`` and the engine that turns results into rows.

Each claim of the ledger is one entry of ``claims.yml`` (:data:`CLAIM_KEYS`: its id,
chapter, source, the exact wording it rests on, measure, comparison, threshold, kind, figure,
rule and what "not tested" means for it), read by :func:`read_claims`. The table is package
data (:data:`CLAIMS_FILE`, ``hessinit/study/claims.yml``; ``book/claims.yml`` links to it), so
an installed wheel and the book read the same file (:func:`claims_yml`). A chapter that supplies
a per-setting frame (:data:`FRAME_COLUMNS`: setting, value, low, high, seeds, judged) gets its
ledger row from :func:`frame_rows`, with the verdict semantics of :mod:`hessinit.study.claims`;
a chapter whose rule judges its settings itself gets its row from :func:`ledger_row`. Both take
the claim's source, wording, measure, kind and figure from the table, never from the chapter;
they are the only callers of :func:`hessinit.study.claims.claim_row`.
:func:`claim_chapters` is the ledger's chapter list, read from the same table, and
:func:`kind_counts` counts the ledger's rows per kind.

Imports: pandas, PyYAML (inside :func:`read_claims`) and :mod:`hessinit.study.claims`.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pandas as pd

from .claims import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_TESTED,
    OP_WORDS,
    SOURCES,
    claim_row,
    claims_table,
    compare,
    compare_interval,
    verdict,
)

# --------------------------------------------------------------------------------------------

#: The claims table shipped with the package (``book/claims.yml`` is a link to it).
CLAIMS_FILE = Path(__file__).with_name("claims.yml")

#: The keys of every entry of the claims table.
CLAIM_KEYS = ("id", "chapter", "source", "wording", "measure", "op", "threshold", "kind",
              "figure", "rule", "not_tested")  # fmt: skip

#: The optional keys of an entry. ``structural_kind`` is the kind of the rows a chapter marks
#: as true by the network's structure (e.g. the ReLU parts of the CNN rows, R = 0 exactly).
OPTIONAL_KEYS = ("structural_kind",)

#: The kinds of claim (mathematics verified to round-off, true by construction of the test and
#: kept as a check of the code, a finding).
KINDS = ("fact", "sanity", "empirical")

#: The columns of the per-setting frame that :func:`frame_rows` judges.
FRAME_COLUMNS = ("setting", "value", "low", "high", "seeds", "judged")

#: The sensitivity rules of the dominance claims 1.2-1.5, 5.1, 5.2 and 5.4, as triples of
#: label, quantity and threshold. Each gives a verdict at R/H < 0.1, at R/H < 0.3 and at
#: ||G|| > ||R|| (read as R/G < 1), shown beside the ledger row, which keeps the claim's own
#: threshold.
SENSITIVITY = (("R/H < 0.1", "R_over_H", 0.1), ("R/H < 0.3", "R_over_H", 0.3),
               ("||G|| > ||R||", "R_over_G", 1.0))  # fmt: skip


def read_claims(path: str | Path) -> dict[str, dict]:
    r"""The claims table ``book/claims.yml``: claim id -> entry, in the file's order.

    Args:
        path: the YAML file, a mapping with the list ``claims`` of entries with the keys
            :data:`CLAIM_KEYS`.

    Returns:
        The entries by id (each id a string).

    Raises:
        ValueError: a missing or unknown key, a repeated id, a source not in :data:`SOURCES`,
            a kind not in :data:`KINDS`, or an op that is neither a comparison nor ``"~"``.

    Example:
        >>> import tempfile
        >>> text = ("claims:\n- {id: '1.5', chapter: dominance, source: paper abstract, "
        ...         "wording: w, measure: R/H, op: '<', threshold: 0.1, kind: empirical, "
        ...         "figure: fig-a, rule: r, not_tested: never}\n")
        >>> with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        ...     _ = f.write(text)
        >>> read_claims(f.name)["1.5"]["threshold"]
        0.1
    """
    import yaml

    entries = yaml.safe_load(Path(path).read_text())["claims"]
    table = {}
    for entry in entries:
        cid = str(entry.get("id"))
        keys = set(entry) - set(OPTIONAL_KEYS)
        if keys != set(CLAIM_KEYS):
            wrong = sorted(keys ^ set(CLAIM_KEYS))
            raise ValueError(f"claim {cid}: missing or unknown keys {wrong}")
        if cid in table:
            raise ValueError(f"claim {cid} is listed twice")
        if entry["source"] not in SOURCES:
            raise ValueError(f"claim {cid}: source must be one of {SOURCES}")
        if entry["kind"] not in KINDS or entry.get("structural_kind", "fact") not in KINDS:
            raise ValueError(f"claim {cid}: kind must be one of {KINDS}")
        if entry["op"] not in (*OP_WORDS, "~"):
            raise ValueError(f"claim {cid}: op must be one of {(*OP_WORDS, '~')}")
        table[cid] = {**entry, "id": cid}
    return table


@functools.cache
def _shipped() -> dict[str, dict]:
    return read_claims(CLAIMS_FILE)


def claims_yml() -> dict[str, dict]:
    """The claims table shipped with the package (:data:`CLAIMS_FILE`), read once.

    Returns:
        :func:`read_claims` of :data:`CLAIMS_FILE` (a copy: editing it does not change the
        table).

    Example:
        >>> claims_yml()["1.1"]["kind"]
        'fact'
    """
    return {cid: dict(entry) for cid, entry in _shipped().items()}


def ledger_row(
    claim: str,
    *,
    setting: str,
    value: float,
    low: float = math.nan,
    high: float = math.nan,
    seeds: int,
    rule: str,
    verdict: str,
    detail: str | None = None,
    source: str | None = None,
    structural: bool = False,
    page: str | None = None,
) -> dict:
    """One ledger row of the claim ``claim``: the chapter's result, the table's words.

    The source, wording, measure, kind and figure come from the claims table
    (:func:`claims_yml`); the chapter supplies what it measured and judged. The measure reads
    ``"<the table's measure> (<detail>)"`` when the chapter names the setting its number comes
    from. The kind is the entry's ``kind``, or its ``structural_kind`` for a row the chapter
    marks ``structural`` (every judged setting true by the network's structure).

    Args:
        claim: the claim's id in the table.
        setting: what was measured.
        value: the measured number.
        low: lower end of its 95% interval (NaN when none applies).
        high: upper end.
        seeds: independent seeds or batches behind ``value``.
        rule: the rule, in words, with the thresholds the notebook ran with.
        verdict: the verdict (:mod:`hessinit.study.claims`).
        detail: where the number comes from (the worst setting), appended to the measure.
        source: the row's source where the table's entry names one per setting (claim 2.1:
            the abstract for the activations it names); default the entry's.
        structural: every judged setting is true by the network's structure.
        page: the page of the row (default: the entry's chapter; per-dataset pages pass
            ``"<chapter>/<dataset>"``).

    Returns:
        A row of :func:`hessinit.study.claims.claim_row` (its ``kind`` set).

    Raises:
        KeyError: an id not in the table.

    Example:
        >>> row = ledger_row("1.1", setting="relu", value=0.0, seeds=2, rule="r",
        ...                  verdict="holds")
        >>> row["kind"], row["figure"], row["measure"] == claims_yml()["1.1"]["measure"]
        ('fact', 'fig-dominance-relu', True)
    """
    entry = _shipped()[str(claim)]
    measure = entry["measure"] if detail is None else f"{entry['measure']} ({detail})"
    kind = entry.get("structural_kind", entry["kind"]) if structural else entry["kind"]
    return claim_row(
        entry["id"],
        source=entry["source"] if source is None else source,
        wording=entry["wording"],
        setting=setting,
        measure=measure,
        value=value,
        low=low,
        high=high,
        seeds=seeds,
        rule=rule,
        verdict=verdict,
        figure=entry["figure"],
        page=entry["chapter"] if page is None else page,
        kind=kind,
    )


def root_rows(
    claim: str,
    summary: pd.DataFrame,
    *,
    classic: dict,
    xtol: float,
    max_ratio: float,
    setting: str,
    page: str | None = None,
) -> pd.DataFrame:
    """A claim of op ``"~"`` (2.1, 5.3), one row per setting: c* recovers the classical value.

    The rule, with [low, high] the 95% interval of c* widened by the root's tolerance, i.e.
    [low e^-xtol, high e^xtol]: "holds" when the classical value lies in it and high / low <=
    ``max_ratio``; "inconclusive" when it lies in it but high / low > ``max_ratio`` (too wide to
    tell the classical value from one ``max_ratio`` times away); "does not hold" when it lies
    outside; "not tested" when fewer than two seeds found a sign change of the log-growth.

    Args:
        claim: the claim's id in the claims table.
        summary: rows of :func:`hessinit.study.analysis.root_summary`.
        classic: ``label`` -> ``(c, name, source)``: the classical value, its name in the text
            (e.g. "He, c = 2") and the row's source (one of
            :data:`hessinit.study.claims.SOURCES`).
        xtol: the root-finding tolerance in log c.
        max_ratio: the widest interval (high / low) that can decide.
        setting: the networks, with the label appended.
        page: the page (default: the claim's chapter).

    Returns:
        The claims rows (:func:`hessinit.study.claims.claims_table`), one per setting.

    Example:
        >>> summary = pd.DataFrame({"label": ["relu", "tanh", "wide", "none"],
        ...     "c": [2.0, 1.2, 1.5, float("nan")], "low": [1.95, 1.15, 0.5, float("nan")],
        ...     "high": [2.05, 1.25, 4.0, float("nan")], "seeds": [4, 4, 4, 0],
        ...     "c_lo": 0.5, "c_hi": 8.0})
        >>> classic = {k: (v, k, "paper abstract") for k, v in
        ...            [("relu", 2.0), ("tanh", 1.0), ("wide", 1.0), ("none", 1.0)]}
        >>> rows = root_rows("2.1", summary, classic=classic, xtol=0.01, max_ratio=1.5, setting="s")
        >>> [v.split(":")[0] for v in rows["verdict"]]
        ['holds', 'does not hold', 'inconclusive', 'not tested']
    """
    rows = []
    for r in summary.itertuples():
        value, name, source = classic[r.label]
        if r.seeds < 2:
            c = r.c if math.isfinite(r.c) else value
            rows.append(ledger_row(
                claim, source=source, setting=f"{setting}; {r.label}",
                detail="no root found", value=c, seeds=int(r.seeds),
                rule=f"{name} lies in the 95% interval of c* over the seeds",
                verdict=f"{NOT_TESTED}: the log-growth did not change sign in c between "
                f"{r.c_lo:.3g} and {r.c_hi:.3g} on {int(r.seeds)} seeds (two are needed)",
                page=page))  # fmt: skip
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
        rows.append(ledger_row(
            claim, source=source, setting=f"{setting}; {r.label}",
            detail="geometric mean over seeds",
            value=r.c, low=r.low, high=r.high, seeds=int(r.seeds),
            rule=f"{name} lies in the 95% t-interval of log c* over the seeds, widened by the "
            f"root tolerance (x e^+-{xtol:g}); inconclusive when that interval is wider than a "
            f"factor {max_ratio:g}",
            verdict=v, page=page))  # fmt: skip
    return claims_table(rows)


def kind_counts(ledger: pd.DataFrame) -> dict[str, int]:
    """How many rows of the ledger are of each kind (:data:`KINDS`, in that order).

    Args:
        ledger: rows with a ``kind`` column.

    Returns:
        kind -> number of rows, every kind of :data:`KINDS` listed (0 when none).

    Raises:
        ValueError: a kind not in :data:`KINDS`.

    Example:
        >>> kind_counts(pd.DataFrame({"kind": ["empirical", "fact", "empirical"]}))
        {'fact': 1, 'sanity': 0, 'empirical': 2}
    """
    unknown = sorted(set(ledger["kind"]) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown kinds {unknown}: a kind is one of {KINDS}")
    return {k: int((ledger["kind"] == k).sum()) for k in KINDS}


def claim_chapters(table: dict[str, dict]) -> list[str]:
    """The chapters of the claims table, in the order of their first claim (the ledger's list).

    Example:
        >>> claim_chapters({"0.1": {"chapter": "original"}, "1.1": {"chapter": "dominance"},
        ...                 "0.2": {"chapter": "original"}})
        ['original', 'dominance']
    """
    return list(dict.fromkeys(entry["chapter"] for entry in table.values()))


def frame_rows(
    entry: dict,
    frame: pd.DataFrame,
    *,
    setting: str,
    measure: str | None = None,
    threshold: float | None = None,
    page: str | None = None,
    figure: str | None = None,
) -> pd.DataFrame:
    """The ledger row of one claim from its per-setting frame: the rule of ``entry``, judged.

    Each judged setting s (``judged`` true) is met, missed or undecided by the comparison of
    its 95% interval [low_s, high_s] with the threshold (:func:`compare_interval`; a setting
    without an interval, an exact value, by :func:`compare` of its value); the verdict over the
    judged settings is :func:`verdict`, naming them by ``setting``. The row reports the worst
    judged setting: the largest value for ``<`` and ``<=``, the smallest for ``>`` and ``>=``,
    with its interval, and the fewest seeds of any judged setting. Settings not judged are
    listed in the row's setting; with none judged the verdict is "not tested", followed by the
    entry's ``not_tested`` text.

    Args:
        entry: a claim of :func:`read_claims` (``id``, ``source``, ``wording``, ``op``, ``kind``,
            ``threshold``, ``figure``, ``chapter``, ``rule``, ``measure``, ``not_tested``).
        frame: one row per setting with the columns :data:`FRAME_COLUMNS`.
        setting: what was measured, for the row's setting.
        measure: the measure's name in the row (default: the entry's).
        threshold: the threshold the notebook ran with (default: the entry's).
        page: the page of the row (default: the entry's chapter).
        figure: the figure label (default: the entry's).

    Returns:
        The claims table (:func:`claims_table`) of one row.

    Raises:
        ValueError: a missing column, or an op ``"~"`` (that rule is not a comparison).

    Example:
        >>> entry = {"id": "1.5", "chapter": "dominance", "source": "paper abstract",
        ...          "wording": "w", "measure": "R/H", "op": "<", "threshold": 0.1,
        ...          "figure": "fig-a", "rule": "r", "not_tested": "saturated", "kind": "empirical"}
        >>> frame = pd.DataFrame({"setting": ["relu", "tanh", "elu"], "value": [0.0, 0.3, 0.5],
        ...     "low": [math.nan, 0.2, 0.4], "high": [math.nan, 0.4, 0.6], "seeds": [3, 3, 1],
        ...     "judged": [True, True, False]})
        >>> row = frame_rows(entry, frame, setting="MLP").iloc[0]
        >>> row["verdict"], float(row["value"]), row["setting"]
        ('holds only when relu', 0.3, 'MLP; not judged: elu')
    """
    missing = set(FRAME_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"claim {entry['id']}: the frame misses the columns {sorted(missing)}")
    op = entry["op"]
    if op not in OP_WORDS:
        raise ValueError(f"claim {entry['id']}: op {op!r} is not a comparison")
    threshold = entry["threshold"] if threshold is None else threshold
    judged = frame[frame["judged"].astype(bool)]
    skipped = frame[~frame["judged"].astype(bool)]
    where = setting
    if len(skipped):
        where += "; not judged: " + ", ".join(map(str, skipped["setting"]))
    if len(judged):
        flags = [
            bool(compare(v, op, threshold)) if math.isnan(lo) and math.isnan(hi)
            else compare_interval(lo, hi, op, threshold)
            for v, lo, hi in zip(judged["value"], judged["low"].astype(float),
                                 judged["high"].astype(float), strict=True)
        ]  # fmt: skip
        worst = judged["value"].idxmax() if op in ("<", "<=") else judged["value"].idxmin()
        top = judged.loc[worst]
        value, low, high = top["value"], top["low"], top["high"]
        seeds = int(judged["seeds"].min())
        text = verdict(flags, [str(s) for s in judged["setting"]])
    else:
        value, low, high, seeds = 0.0, math.nan, math.nan, 0
        text = f"{NOT_TESTED}: {entry['not_tested']}"
    return claims_table([claim_row(
        entry["id"],
        source=entry["source"],
        wording=entry["wording"],
        setting=where,
        measure=entry["measure"] if measure is None else measure,
        value=value,
        low=low,
        high=high,
        seeds=seeds,
        rule=entry["rule"],
        verdict=text,
        figure=entry["figure"] if figure is None else figure,
        page=entry["chapter"] if page is None else page,
        kind=entry["kind"],
    )])  # fmt: skip
