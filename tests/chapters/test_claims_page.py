"""The claims page's summary words, on synthetic ledgers."""

import pandas as pd

from hessinit.chapters import claims as page


def test_sources_text_orders_by_count_and_words_formalizations():
    ledger = pd.DataFrame({"source": [page.FORMALIZATION] * 3 + ["notebook"]})
    assert page.sources_text(ledger) == "3 from this book's formalizations, 1 from the notebook"


def test_sources_text_single_source():
    ledger = pd.DataFrame({"source": ["abstract"]})
    assert page.sources_text(ledger) == "1 from the abstract"
