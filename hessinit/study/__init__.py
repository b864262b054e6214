"""The shared study layer: what two or more chapters of the book use.

- :mod:`~hessinit.study.sweep`: :func:`~hessinit.study.sweep.sweep`, the one grid loop;
- :mod:`~hessinit.study.stats`: confidence intervals for means, paired differences and ratios;
- :mod:`~hessinit.study.claims`: the verdict vocabulary, the claim rows and the claims ledger
  (with the per-dataset figure label rule), and the rules and wordings several chapters share;
- :mod:`~hessinit.study.claimdata`: the claims table ``book/claims.yml`` and the engine that
  turns a chapter's per-setting frame into its ledger row;
- :mod:`~hessinit.study.experiments`: experiments shared by chapters (the tiny problem, the SGD
  grid);
- :mod:`~hessinit.study.analysis`: summaries shared by chapters (roots, outcomes, rank
  correlations);
- :mod:`~hessinit.study.convnets`: the convolutional networks of the CNN chapters;
- :mod:`~hessinit.study.figures`: the figure style and the figures several pages draw.

What one chapter alone computes is in its module of :mod:`hessinit.chapters`, the layer above.
The submodules load on first use, so that ``from hessinit.study import claims`` needs neither
TensorFlow nor matplotlib.

Imports: the core (:mod:`hessinit.nn`, :mod:`hessinit.curvature`, :mod:`hessinit.data`,
:mod:`hessinit.train`, :mod:`hessinit.stepsize`, :mod:`hessinit.init`); never
:mod:`hessinit.chapters` or :mod:`hessinit.book`.
"""

import importlib

__all__ = ["analysis", "claimdata", "claims", "convnets", "experiments", "figures", "stats",
           "sweep"]  # fmt: skip


def __getattr__(name):
    if name in __all__:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
