"""The verdict vocabulary (hessinit.study.claims.verdict and its phrases) on every combination of
per-setting outcomes over 1-4 settings: pass, fail, undecided, not tested, not testable.

The expected verdict is built here from the definition (which settings have which outcome), by
reading the verdict back into its clauses, not by calling the code under test twice.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest

from hessinit.study import claims
from hessinit.study.claims import NotReached, Untestable

PASS, FAIL, UNSURE = True, False, None
REACHED = NotReached("lowest loss 0.4 nats")
REASON = Untestable("spread 165x")
OUTCOMES = (PASS, FAIL, UNSURE, REACHED, REASON)
NAMES = {PASS: "pass", FAIL: "fail", UNSURE: "unsure", REACHED: "untested", REASON: "untestable"}
COMBINATIONS = [c for n in range(1, 5) for c in itertools.product(OUTCOMES, repeat=n)]


def _name(outcome) -> str:
    for key, name in NAMES.items():
        if outcome is key or (outcome == key and type(outcome) is type(key)):
            return name
    raise AssertionError(outcome)


def _clauses(text: str, labels: list[str]) -> dict[str, set[str]]:
    """The verdict read back: outcome name -> the labels its clause names (labels joined ', ')."""
    heads = [("holds only when ", "pass"), ("holds for ", "pass"), ("does not hold for ", "fail"),
             ("inconclusive for ", "unsure"), ("not tested for ", "untested"),
             ("not testable with this estimator for ", "untestable")]  # fmt: skip
    found: dict[str, set[str]] = {}
    for clause in text.split("; "):
        head, name = next((h, n) for h, n in heads if clause.startswith(h))
        rest = clause[len(head) :]
        rest = re.sub(r" \((lowest loss 0\.4 nats|spread 165x)\)$", "", rest)
        names = set(rest.split(", "))
        assert names <= set(labels), (text, names)
        assert name not in found, f"two clauses for {name}: {text}"
        found[name] = names
    return found


@pytest.mark.parametrize("combo", COMBINATIONS, ids=lambda c: "-".join(map(_name, c)))
def test_every_combination_names_every_setting_by_its_outcome(combo):
    labels = [f"s{i}" for i in range(len(combo))]
    text = claims.verdict(list(combo), where=labels, join=", ")
    truth: dict[str, set[str]] = {}
    for label, outcome in zip(labels, combo, strict=True):
        truth.setdefault(_name(outcome), set()).add(label)
    kinds = set(truth)
    if kinds == {"pass"}:
        assert text == "holds"
    elif kinds == {"fail"}:
        assert text == "does not hold"
    elif kinds == {"unsure"}:
        assert text == "inconclusive"
    elif kinds == {"untested"}:
        assert text == "not tested: lowest loss 0.4 nats"
    elif kinds == {"untestable"}:
        assert text == "not testable with this estimator: spread 165x"
    elif kinds == {"pass", "fail"}:  # exact: every setting not named failed
        assert text == "holds only when " + ", ".join(sorted(truth["pass"], key=labels.index))
    else:
        assert _clauses(text, labels) == truth, text
        # the head: a failure first, else a pass, else undecided, else not tested
        head = next(k for k in ("fail", "pass", "unsure", "untested", "untestable") if k in kinds)
        assert text.startswith({"pass": "holds only when", "fail": "does not hold for",
                                "unsure": "inconclusive for", "untested": "not tested for",
                                "untestable": "not testable"}[head])  # fmt: skip
        if "fail" in kinds and "pass" in kinds:
            assert "; holds for " in text
    # the failures are never hidden, and plain "inconclusive" means nothing was decided
    if "fail" in kinds:
        assert "does not hold" in text or kinds == {"pass", "fail"}
    assert (text == "inconclusive") == (kinds == {"unsure"})
    # the kind it counts under
    expected_kind = {
        frozenset({"pass"}): "holds",
        frozenset({"fail"}): "does not hold",
        frozenset({"unsure"}): "inconclusive",
    }.get(frozenset(kinds))
    if expected_kind is None:
        if "fail" in kinds and kinds != {"pass", "fail"}:
            expected_kind = "does not hold for"
        elif "pass" in kinds:
            expected_kind = "holds only when"
        elif "unsure" in kinds:
            expected_kind = "inconclusive"
        elif "untested" in kinds:
            expected_kind = "not tested"
        else:
            expected_kind = "not testable with this estimator"
    assert claims.verdict_kind(text) == expected_kind
    # glued after a subject, every clause has a verb
    phrase = claims.verdict_phrase(text)
    pieces = re.split(r", (?=(?:holds|does|is|was) )| and (?=(?:holds|does|is|was) )", phrase)
    assert len(pieces) == len(text.split("; ")), phrase
    for piece in pieces:
        assert piece.startswith(("holds", "does not hold", "is inconclusive", "was not tested",
                                 "is not testable")), phrase  # fmt: skip


@pytest.mark.parametrize("combo", [c for c in COMBINATIONS if len(c) <= 3])
def test_without_labels_the_settings_are_counted(combo):
    text = claims.verdict(list(combo))
    labelled = claims.verdict(list(combo), where=[f"s{i}" for i in range(len(combo))])
    assert claims.verdict_kind(text) == claims.verdict_kind(labelled)
    n = len(combo)
    kinds = {_name(o) for o in combo}
    for outcome, head in [
        (FAIL, "does not hold in"),
        (UNSURE, "inconclusive in"),
        (PASS, "holds in" if "fail" in kinds and len(kinds) > 2 else "holds only when in"),
    ]:
        k = sum(_name(o) == _name(outcome) for o in combo)
        if 0 < k < n and not (kinds == {"pass", "fail"} and outcome is FAIL):
            assert f"{head} {k} of {n} settings" in text, text


def test_the_issue_cases_no_longer_read_inconclusive():
    assert claims.verdict([None, False, None], where=list("ABC")) == (
        "does not hold for B; inconclusive for A, C"
    )
    assert claims.verdict([False, False, None], where=list("ABC")) == (
        "does not hold for A, B; inconclusive for C"
    )
    assert claims.verdict([None, False, None]) == (
        "does not hold in 1 of 3 settings; inconclusive in 2 of 3 settings"
    )
    # a pass, a significant failure and an undecided setting: all named, the failure first
    assert claims.verdict([True, False, None], where=list("ABC")) == (
        "does not hold for B; holds for A; inconclusive for C"
    )
    # a pass and failures only: "only" says that every other setting failed
    assert claims.verdict([True, False, False], where=list("ABC")) == "holds only when A"


def test_outcomes_as_numpy_bools_nan_and_bare_values():
    assert claims.verdict(np.array([True, True])) == "holds"
    assert claims.verdict(np.bool_(False)) == "does not hold"
    assert claims.verdict(np.float64("nan")) == "inconclusive"
    assert claims.verdict(pd.Series([True, None], dtype=object), where=["a", "b"]) == (
        "holds only when a; inconclusive for b"
    )
    assert claims.verdict(NotReached("x")) == "not tested: x"
    assert claims.verdict([NotReached("x"), NotReached("y")], where=["a", "b"]) == (
        "not tested for a (x); not tested for b (y)"
    )
    with pytest.raises(ValueError, match="no setting"):
        claims.verdict([])
    with pytest.raises(ValueError, match="labels"):
        claims.verdict([True, False], where=["a"])


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("holds", "holds"),
        ("does not hold", "does not hold"),
        ("inconclusive", "is inconclusive"),
        ("not tested: 20 steps only", "was not tested: 20 steps only"),
        ("not testable with this estimator: spread", "is not testable with this estimator: spread"),
        (
            "holds only when A, B; inconclusive for C",
            "holds only when A, B and is inconclusive for C",
        ),
        ("does not hold: c* = 3 lies above 2", "does not hold: c* = 3 lies above 2"),
        ("does not hold (no detectable difference)", "does not hold (no detectable difference)"),
        (
            "does not hold for B; inconclusive for A; not tested for C (x)",
            "does not hold for B, is inconclusive for A and was not tested for C (x)",
        ),
    ],
)
def test_verdict_phrase_reads_after_a_subject(text, phrase):
    assert claims.verdict_phrase(text) == phrase


@pytest.mark.parametrize(
    ("x", "kw", "expected"),
    [
        (0.012, {}, "better by 0.01"),
        (-0.012, {}, "worse by 0.01"),
        (-0.004, {}, "no different"),
        (0.0, {}, "no different"),
        (-0.0072, {"fmt": ".3f"}, "worse by 0.007"),
        (3.0, {"fmt": ".3g", "more": "higher", "less": "lower"}, "higher by 3"),
        (-3.0, {"fmt": ".3g", "more": "higher", "less": "lower"}, "lower by 3"),
    ],
)
def test_difference_phrase_never_reads_a_negative_size(x, kw, expected):
    text = claims.difference_phrase(x, **kw)
    assert text == expected and "-" not in text


def test_difference_phrase_rejects_nan():
    with pytest.raises(ValueError):
        claims.difference_phrase(float("nan"))


def test_verdict_counts_every_kind_once_and_rejects_unknown():
    verdicts = ["holds", "holds only when a; does not hold for b", "does not hold",
                "does not hold: c* = 3", "inconclusive", "not tested: 20 steps",
                "does not hold for b; inconclusive for a", "not testable with this estimator: x",
                "inconclusive for a; not tested for b (x)"]  # fmt: skip
    counts = claims.verdict_counts(pd.DataFrame({"verdict": verdicts}))
    assert counts == {"holds": 1, "holds only when": 1, "does not hold": 2, "inconclusive": 2,
                      "not tested": 1, "does not hold for": 1,
                      "not testable with this estimator": 1}  # fmt: skip
    assert sum(counts.values()) == len(verdicts)
    with pytest.raises(ValueError, match="no kind"):
        claims.verdict_counts(pd.DataFrame({"verdict": ["perhaps"]}))


def test_interval_verdict_and_verdict_agree_on_one_setting():
    for low, high in [(0.1, 0.2), (-0.2, -0.1), (-1.0, 1.0)]:
        ok = claims.compare_interval(low, high, ">", 0)
        assert claims.interval_verdict(low, high, ">", 0) == claims.verdict([ok])
