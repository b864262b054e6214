"""The claims ledger page: the words its summary sentence reads from the ledger.

The ledger itself is built in :mod:`hessinit.study.claims`; this module holds only what the
page's prose decides from it.

Imports: pandas.
"""

from __future__ import annotations

import pandas as pd

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
