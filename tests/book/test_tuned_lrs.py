"""Every tuned baseline of the small book is interior, or its claim row says it is not tested.

A step size tuned on a grid whose best value is the grid's smallest or largest is not a tuned
one: the better step may lie outside. The chapters that tune a step per initialization (claim
2.2 in ``init_schemes``, 4.1/4.2 in ``diagnostic``, 5.5 in ``cnn_training``) write the choice
with an ``interior`` column (:func:`hessinit.study.analysis.tuned_lr_interior`). This test reads
those tables from the small book's outputs and checks the chapters' own claim tables against
them: where every tuned lr is interior no row of the claim reads "lr grid edge"; where one is at
an edge, a row of the claim reads "not tested" for that reason, so no verdict rests on it.
"""

from __future__ import annotations

import pandas as pd
import pytest

#: Per chapter: its tuned-lr table and claim table under _runs/site, and the claims they feed.
TUNED = {
    "init_schemes": ("init_schemes_tuned_lrs.csv", "init_schemes.csv", ("2.2",)),
    "diagnostic": ("diagnostic_tuned_lrs.csv", "diagnostic.csv", ("4.1", "4.2")),
    "cnn_training": ("cnn_training/mnist-5k_tuned_lrs.csv", "cnn_training/mnist-5k.csv", ("5.5",)),
}


@pytest.mark.slow
@pytest.mark.parametrize("chapter", sorted(TUNED))
def test_tuned_lrs_are_interior_or_the_claim_is_not_tested(small_book, chapter):
    root, _ = small_book
    tuned_csv, claims_csv, ids = TUNED[chapter]
    site = root / "_runs" / "site"
    tuned = pd.read_csv(site / tuned_csv)
    claims = pd.read_csv(site / claims_csv, dtype={"claim": str})
    rows = claims[claims["claim"].isin(ids)]
    assert len(tuned) and len(rows), (chapter, len(tuned), len(rows))
    edge_rows = rows[rows["verdict"].str.contains("lr grid edge", regex=False)]
    if tuned["interior"].astype(bool).all():
        assert edge_rows.empty, edge_rows["verdict"].tolist()
    else:
        assert not edge_rows.empty, rows["verdict"].tolist()
        assert edge_rows["verdict"].str.contains("not tested", regex=False).all()
