"""The studies the book reports: experiments, their analysis, the claims' verdicts and figures.

- :mod:`~hessinit.study.experiments`: grids of networks and curvature measurements (frames);
- :mod:`~hessinit.study.analysis`: pure pandas summaries, ratios and intervals;
- :mod:`~hessinit.study.claims`: the verdict vocabulary, each chapter's rules and the ledger;
- :mod:`~hessinit.study.figures`: every figure of the book.

Imports: the core (:mod:`hessinit.nn`, :mod:`hessinit.curvature`, :mod:`hessinit.data`,
:mod:`hessinit.train`, :mod:`hessinit.stepsize`, :mod:`hessinit.init`); never :mod:`hessinit.book`.
"""

from . import analysis, claims, experiments, figures

__all__ = ["analysis", "claims", "experiments", "figures"]
