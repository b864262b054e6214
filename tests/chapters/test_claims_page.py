"""The claims page's summary words, on synthetic ledgers."""

import pandas as pd

from hessinit.chapters import claims as page


def test_sources_text_orders_by_count_and_words_formalizations():
    ledger = pd.DataFrame({"source": [page.FORMALIZATION] * 3 + ["notebook"]})
    assert page.sources_text(ledger) == "3 from this book's formalizations, 1 from the notebook"


def test_sources_text_single_source():
    ledger = pd.DataFrame({"source": ["abstract"]})
    assert page.sources_text(ledger) == "1 from the abstract"


def _ledger():
    nan = float("nan")
    return pd.DataFrame({
        "claim": ["1.1", "1.2", "3.1", "2.1"], "kind": ["fact", "empirical", "sanity", "empirical"],
        "source": ["s"] * 4, "wording": ["a | b", "w", "w", "w"],
        "setting": ["relu", "tanh", "sd", "relu"], "measure": ["R/H"] * 4,
        "value": [0.0, 0.12345, 0.5, 2.0], "low": [nan, 0.1, 0.4, 1.9],
        "high": [nan, 0.15, 0.6, 2.1], "seeds": [2, 5, 3, 4],
        "rule": ["r"] * 4, "verdict": ["holds", "does not hold", "holds", "holds"],
        "figure": ["fig-a", "fig-b", "fig-c", "fig-d"], "page": ["p", "p", "p", "cnn/mnist-5k"],
    })  # fmt: skip


def test_compact_table_has_three_columns_and_links_the_figure():
    lines = page.compact_table(_ledger()).splitlines()
    assert lines[0] == "| claim | verdict | measured, 95% interval |"
    assert all(line.count(" | ") == 2 for line in lines[2:])  # three cells, no pipe leaks
    assert lines[3] == "| {ref}`1.2 <fig-b>` | **does not hold** (tanh) | 0.123 [0.1, 0.15] |"
    assert "{ref}`2.1 <fig-d-mnist-5k>`" in lines[5]  # per-dataset pages suffix the label


def test_sections_show_findings_apart_from_facts_and_sanity_checks():
    ledger = _ledger()
    findings = page.kind_section(ledger, page.SECTIONS[0])
    checks = page.kind_section(ledger, page.SECTIONS[1])
    assert "1.2 <" in findings and "2.1 <" in findings and "1.1 <" not in findings
    assert "1.1 <" in checks and "3.1 <" in checks and "1.2 <" not in checks
    assert ":class: dropdown" in findings and '"a | b"' in checks  # details folded, in full
    assert checks.count("\n- **") == 2
    assert page.kind_section(ledger[ledger["kind"] == "fact"], ("sanity",)).startswith("No rows")
