"""One module per chapter of the book: its experiment, summaries, claim rules and figures.

Each module is named after its page (``book/<name>.md``) and holds what only that chapter
computes, in the order the page reads: the experiment that measures, the summaries with their
intervals, the rule functions that turn them into claim rows, and the figures.

- :mod:`~hessinit.chapters.chain_rule`: H = G + R checked, block norms, the Kronecker pattern;
- :mod:`~hessinit.chapters.original`: the paper's training runs per sd, claims 0.1 and 0.2;
- :mod:`~hessinit.chapters.sd_sweep`: the Hessian norm at initialization against the sd;
- :mod:`~hessinit.chapters.dominance` and :mod:`~hessinit.chapters.dominance_network`: does G
  dominate H (claims 1.1-1.5), per layer and for the whole network;
- :mod:`~hessinit.chapters.init_schemes`: the depth-stable variance, claims 2.1 and 2.2;
- :mod:`~hessinit.chapters.step_size` (with :mod:`~hessinit.chapters.step_stability`): the step
  the Hessian suggests, claims 3.1-3.6;
- :mod:`~hessinit.chapters.diagnostic`: the Hessian norm as a diagnostic, claim 4.1;
- :mod:`~hessinit.chapters.cnn` (with :mod:`~hessinit.chapters.cnn_depth`) and
  :mod:`~hessinit.chapters.cnn_training`: convolutional networks at initialization and in
  training, claims 5.1-5.6;
- :mod:`~hessinit.chapters.followups`: whole-network G/R in training, lambda_max against 2/lr,
  the Hessian batch size;
- :mod:`~hessinit.chapters.performance`: the benchmark's timings.

What two or more chapters use is in the shared layer below, :mod:`hessinit.study` (statistics,
the claims engine and ledger, the figure style, the grid loop, shared experiments); a chapter
never imports another chapter. The submodules load on first use.

Imports: the core and :mod:`hessinit.study`; never :mod:`hessinit.book`.
"""

import importlib

__all__ = ["chain_rule", "cnn", "cnn_depth", "cnn_training", "diagnostic", "dominance",
           "dominance_network", "followups", "init_schemes", "original", "performance",
           "sd_sweep", "step_size", "step_stability"]  # fmt: skip


def __getattr__(name):
    if name in __all__:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
