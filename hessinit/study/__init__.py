"""The studies the book reports: experiments, their analysis, the claims' verdicts and figures.

- :mod:`~hessinit.study.sweep`: :func:`~hessinit.study.sweep.sweep`, the one grid loop;
- :mod:`~hessinit.study.experiments`: grids of networks and curvature measurements (frames);
- :mod:`~hessinit.study.analysis`: pure pandas summaries, ratios and intervals;
- :mod:`~hessinit.study.claims`: the verdict vocabulary, each chapter's rules and the ledger;
- :mod:`~hessinit.study.stats`: confidence intervals for means, paired differences and ratios;
- :mod:`~hessinit.study.figures`: every figure of the book (drawing only).

The submodules load on first use, so that ``from hessinit.study import claims`` needs neither
TensorFlow nor matplotlib.

Imports: the core (:mod:`hessinit.nn`, :mod:`hessinit.curvature`, :mod:`hessinit.data`,
:mod:`hessinit.train`, :mod:`hessinit.stepsize`, :mod:`hessinit.init`); never :mod:`hessinit.book`.
"""

import importlib

__all__ = ["analysis", "claims", "experiments", "figures", "stats", "sweep"]


def __getattr__(name):
    if name in __all__:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
