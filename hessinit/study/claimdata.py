"""Claims as data: the claims table ``book/claims.yml`` and the engine that judges a frame.

Each claim of the ledger is one entry of ``book/claims.yml`` (:data:`CLAIM_KEYS`: its id,
chapter, source, the exact wording it rests on, measure, comparison, threshold, kind, figure,
rule and what "not tested" means for it), read by :func:`read_claims`. A chapter that supplies a
per-setting frame (:data:`FRAME_COLUMNS`: setting, value, low, high, seeds, judged) gets its
ledger row from :func:`frame_rows`, with the verdict semantics of :mod:`hessinit.study.claims`;
:func:`claim_chapters` is the ledger's chapter list, read from the same table.

Imports: pandas, PyYAML (inside :func:`read_claims`) and :mod:`hessinit.study.claims`.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .claims import (
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

#: The keys of every entry of ``book/claims.yml``.
CLAIM_KEYS = ("id", "chapter", "source", "wording", "measure", "op", "threshold", "kind",
              "figure", "rule", "not_tested")  # fmt: skip

#: The kinds of claim (true by construction, a property of the measurement, a finding).
KINDS = ("fact", "sanity", "empirical")

#: The columns of the per-setting frame that :func:`frame_rows` judges.
FRAME_COLUMNS = ("setting", "value", "low", "high", "seeds", "judged")


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
        if set(entry) != set(CLAIM_KEYS):
            wrong = sorted(set(entry) ^ set(CLAIM_KEYS))
            raise ValueError(f"claim {cid}: missing or unknown keys {wrong}")
        if cid in table:
            raise ValueError(f"claim {cid} is listed twice")
        if entry["source"] not in SOURCES:
            raise ValueError(f"claim {cid}: source must be one of {SOURCES}")
        if entry["kind"] not in KINDS:
            raise ValueError(f"claim {cid}: kind must be one of {KINDS}")
        if entry["op"] not in (*OP_WORDS, "~"):
            raise ValueError(f"claim {cid}: op must be one of {(*OP_WORDS, '~')}")
        table[cid] = {**entry, "id": cid}
    return table


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
        entry: a claim of :func:`read_claims` (``id``, ``source``, ``wording``, ``op``,
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
        ...          "figure": "fig-a", "rule": "r", "not_tested": "saturated"}
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
    )])  # fmt: skip
