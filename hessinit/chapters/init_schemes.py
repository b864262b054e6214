"""The initialization schemes chapter: the depth-stable variance, and Hessian init in training.

In the order the page reads: the depth-stable variance measured by root finding
(:func:`stable_roots`, summarized by :func:`hessinit.study.analysis.root_summary`, figure
:func:`plot_roots`; claim 2.1 by :func:`init_root_rows`); the schemes
trained with a tuned step (:func:`fit_schemes`, :func:`tuned_fits`; the tuned step and whether
it is interior to the grid by :func:`tuned_lrs`), their paired differences
(:func:`paired_differences`) and claim 2.2 (:func:`init_improves_rows`, figure
:func:`plot_paired`). The claims' words come from the claims table
(:func:`hessinit.study.claimdata.ledger_row`).

Imports: numpy, pandas, matplotlib, the core (:mod:`hessinit.nn`, :mod:`hessinit.init`,
:mod:`hessinit.train`) and the shared study layer (:mod:`hessinit.study.claims`,
:mod:`hessinit.study.analysis`, :mod:`hessinit.study.experiments`, :mod:`hessinit.study.figures`,
:mod:`hessinit.study.stats`, :mod:`hessinit.study.sweep`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..init import DepthGrowth, hessian_init, kernel_sds, reference_level
from ..nn import mlp
from ..study.claimdata import ledger_row, root_rows
from ..study.claims import (
    FAILS,
    NotReached,
    Untestable,
    claims_table,
    interval_verdict,
    verdict,
)
from ..study.experiments import keys_last
from ..study.figures import LAYER_COLORS, style
from ..study.sweep import sweep
from ..train import fit


class InteriorGrowth(DepthGrowth):
    """:class:`hessinit.init.DepthGrowth` with the level fitted on the interior layers only.

    A network of D hidden layers has dense layers 1, ..., D + 1; its interior level is the
    geometric mean of h_l over l = 2, ..., D (the first layer sees raw pixels, the last one
    feeds the softmax, and both bend the profile whatever c is). The log-growth g(c) is the
    least-squares slope of the log interior level against the number of dense layers. Every
    depth needs at least two hidden layers (one interior layer).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.random((16, 4, 4), np.float32), rng.integers(0, 3, 16)
        >>> g = InteriorGrowth(x, y, "relu", depths=(2, 3), hidden=6, num_classes=3)
        >>> bool(g(1.0) < g(4.0))
        True
    """

    def __init__(self, x, y, activation, depths, hidden, seed=0, dropout=0.0, num_classes=10):
        if min(depths) < 2:
            raise ValueError(f"interior layers need at least two hidden layers, got {depths}")
        super().__init__(x, y, activation, depths, hidden, seed, dropout, num_classes)

    def __call__(self, c: float) -> float:
        """The log-growth per added layer of the interior level (NaN: a level not finite)."""
        frame = self.profile(c)
        self.last_profile = frame
        inner = frame[(frame["layer"] > 1) & (frame["layer"] < frame["depth"] + 1)]
        with np.errstate(divide="ignore"):
            level = inner.assign(log_h=np.log(inner["H_norm"])).groupby("depth")["log_h"].mean()
        if not np.all(np.isfinite(level.to_numpy())):
            return float("nan")
        return float(np.polyfit(level.index.to_numpy(float), level.to_numpy(), 1)[0])


def stable_roots(images, settings, depths, hidden, batch, seeds, xtol=0.01, num_classes=10,
                 interior=False):  # fmt: skip
    """The depth-stable variance factor c* of every setting, found separately for every seed.

    For each setting and seed, a :class:`hessinit.init.DepthGrowth` on ``batch`` images drawn
    without replacement by ``np.random.default_rng(seed)`` (independent batches and kernels per
    seed) is solved for log-growth 0 by :func:`hessinit.init.depth_stable_variance`.

    Args:
        images: a :func:`hessinit.data.load` record.
        settings: ``(label, activation, dropout rate, guess)`` tuples; ``guess`` only centres
            the first bracket.
        depths: numbers of hidden layers, at least two distinct.
        hidden: units per hidden layer.
        batch: images per Hessian.
        seeds: one root per seed.
        xtol: the root's tolerance in log c.
        num_classes: the output width.
        interior: fit the level on the interior layers (:class:`InteriorGrowth`; every depth at
            least 2) instead of all layers.

    Returns:
        One row per (setting, seed, depth, layer) of the networks at the root: ``label``,
        ``activation``, ``dropout``, ``seed``, ``c_star`` (NaN without a sign change),
        ``log_growth`` (at the root), ``bracketed``, ``c_lo``, ``c_hi`` (the last bracket),
        ``evaluations``, ``depth`` (hidden layers), ``layer``, ``H_norm``; a seed without a
        root has one row with ``depth``, ``layer`` and ``H_norm`` NaN.

    Example:
        >>> from hessinit.data import load
        >>> d = load("mnist-5k", n=16)
        >>> out = stable_roots(d, [("relu", "relu", 0.0, 2.0)], [1, 2], 4, 8, [0])
        >>> bool(out["bracketed"].all()), sorted(set(out["depth"]))
        (True, [1, 2])
    """
    from ..init import depth_stable_variance

    kind = InteriorGrowth if interior else DepthGrowth

    def solve(setting, seed):
        label, activation, rate, guess = setting
        idx = np.random.default_rng(seed).choice(len(images.y), batch, replace=False)
        growth = kind(images.x[idx], images.y[idx], activation, depths, hidden, seed,
                             rate, num_classes)  # fmt: skip
        root = depth_stable_variance(growth, guess, xtol=xtol)
        head = {"label": label, "activation": activation, "dropout": rate, "c_star": root.c,
                "log_growth": root.log_growth, "bracketed": root.bracketed,
                "c_lo": root.bracket[0], "c_hi": root.bracket[1],
                "evaluations": root.evaluations}  # fmt: skip
        if not root.bracketed:
            return pd.DataFrame([{**head, "depth": np.nan, "layer": np.nan, "H_norm": np.nan}])
        return root.profile.assign(**head)[[*head, "depth", "layer", "H_norm"]]

    frame = sweep(solve, setting=settings, seed=seeds)
    cols = ["label", "activation", "dropout", "seed"]
    return frame[cols + [c for c in frame.columns if c not in cols + ["setting"]]]


def plot_roots(summary: pd.DataFrame, classic: dict):
    """The depth-stable c* per setting (95% interval over seeds) against the classical value.

    Args:
        summary: rows of :func:`hessinit.study.analysis.root_summary`.
        classic: ``label`` -> ``(c, ...)``: the classical value of each setting.

    Returns:
        The figure.
    """
    with style():
        fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(summary) + 1.2), layout="constrained")
        ys = np.arange(len(summary))[::-1]
        ok = summary["seeds"] >= 2
        s = summary[ok]
        ax.errorbar(s["c"], ys[ok.to_numpy()], xerr=[s["c"] - s["low"], s["high"] - s["c"]],
                    fmt="o", ms=4, capsize=3, color=LAYER_COLORS[0],
                    label="c* (95% interval)")  # fmt: skip
        ax.plot([classic[k][0] for k in summary["label"]], ys, "x", ms=7, color="black",
                label="classical value")  # fmt: skip
        ax.set_yticks(ys, summary["label"])
        ax.set_xscale("log")
        ax.set_xlabel("variance factor c (kernel variance c / fan-in)")
        ax.legend(frameon=False, fontsize=8, loc="lower right")
    return fig


def fit_schemes(train_data, test_data, inits, widths, activation, seeds, steps, lr, batch_size,
                eval_every, hessian_batch=256):  # fmt: skip
    """Train ``mlp(widths, activation)`` from each initializer for each seed.

    Each network is trained by :func:`hessinit.train.fit`. ``"hessian"`` means He's kernels, then
    :func:`hessinit.init.hessian_init` to the data's reference level
    (:func:`hessinit.init.reference_level`) on the first ``hessian_batch`` training images.

    Args:
        train_data: the training record (see :func:`hessinit.data.split`).
        test_data: the held-out record.
        inits: initializer names: ``"lecun"``, ``"glorot"``, ``"he"`` or ``"hessian"``.
        widths: hidden layer widths.
        activation: the hidden activation.
        seeds: seeds of the kernels and of the mini-batches, one training each.
        steps: SGD steps.
        lr: the SGD step size.
        batch_size: mini-batch size.
        eval_every: steps between held-out evaluations.
        hessian_batch: images for the Hessian-based initializer.

    Returns:
        The stacked frames of ``fit`` with ``init`` and ``seed`` columns last;
        ``frame.attrs["hessian_init"]`` holds the initializer's per-seed tables (with ``seed``,
        ``converged`` and ``seconds``), or None when ``"hessian"`` is not in ``inits``.

    Example:
        >>> from hessinit.data import load, split
        >>> train_set, test_set = split(load("mnist-5k", n=24), 8)
        >>> fits = fit_schemes(train_set, test_set, ["he"], (3,), "relu", [0, 1], steps=2, lr=0.1,
        ...                    batch_size=4, eval_every=2)
        >>> fits[["step", "init", "seed"]].values.tolist()
        [[0, 'he', 0], [2, 'he', 0], [0, 'he', 1], [2, 'he', 1]]
    """
    shape = train_data.x.shape[1:]
    x_h, y_h = train_data.x[:hessian_batch], train_data.y[:hessian_batch]
    tables = []

    def train(seed, init):
        scheme = "he" if init == "hessian" else init
        sds = kernel_sds(scheme, widths, shape, train_data.num_classes)
        model = mlp(shape, train_data.num_classes, widths, activation, sds, seed)
        if init == "hessian":
            result = hessian_init(model, x_h, y_h, target=reference_level(x_h))
            tables.append(result.table.assign(seed=seed, converged=result.converged,
                                              seconds=result.seconds))  # fmt: skip
        return fit(model, train_data, test_data, steps=steps, lr=lr, batch_size=batch_size,
                   eval_every=eval_every, seed=seed, progress=False)  # fmt: skip

    out = keys_last(sweep(train, seed=seeds, init=inits), ["init", "seed"])
    out.attrs["hessian_init"] = pd.concat(tables, ignore_index=True) if tables else None
    return out


def fit_scheme_grid(train_data, test_data, inits, widths, activation, seeds, lrs, steps,
                    batch_size, eval_every, hessian_batch=256):  # fmt: skip
    """Every (init, seed, lr) of :func:`fit_schemes` trained as one compiled program.

    Each run starts from the weights :func:`fit_schemes` gives ``fit`` (``mlp``'s normal
    kernels, drawn by :func:`hessinit.train.stacked.initial_weights`; for ``"hessian"`` He's
    rescaled by :func:`hessinit.init.hessian_init`, solved once per seed), and all train together
    by :func:`hessinit.train.heldout.fit_runs`: one stacked SGD step, each run equal to
    :func:`fit_schemes`' ``fit`` of it to float32 rounding.

    Args:
        train_data: the training record.
        test_data: the held-out record.
        inits: initializer names (see :func:`fit_schemes`).
        widths: hidden layer widths.
        activation: the hidden activation.
        seeds: seeds of the kernels and of the mini-batches.
        lrs: one step size, a list tried by every init, or init -> step size (a dict).
        steps: SGD steps.
        batch_size: mini-batch size.
        eval_every: steps between held-out evaluations.
        hessian_batch: images for the Hessian-based initializer.

    Returns:
        ``fit``'s columns (``step``, ``loss``, ``test_loss``, ``test_accuracy``), then
        ``diverged``, ``init``, ``seed`` and ``lr``; ``attrs["hessian_init"]`` as
        :func:`fit_schemes`.

    Example:
        >>> from hessinit.data import load, split
        >>> train_set, test_set = split(load("mnist-5k", n=24), 8)
        >>> fits = fit_scheme_grid(train_set, test_set, ["he"], (3,), "relu", [0], [0.1, 0.3],
        ...                        steps=2, batch_size=4, eval_every=2)
        >>> fits[["step", "init", "seed", "lr"]].values.tolist()
        [[0, 'he', 0, 0.1], [2, 'he', 0, 0.1], [0, 'he', 0, 0.3], [2, 'he', 0, 0.3]]
    """
    from ..train.heldout import HeldoutRun, fit_runs

    shape = train_data.x.shape[1:]
    x_h, y_h = train_data.x[:hessian_batch], train_data.y[:hessian_batch]
    runs, keys, tables = [], [], []
    for init in inits:
        grid = lrs.get(init) if isinstance(lrs, dict) else lrs
        grid = [float(grid)] if np.ndim(grid) == 0 else [float(v) for v in grid]
        scheme = "he" if init == "hessian" else init
        sds = kernel_sds(scheme, widths, shape, train_data.num_classes)
        for seed in seeds:
            weights = None
            if init == "hessian":
                model = mlp(shape, train_data.num_classes, widths, activation, sds, seed)
                result = hessian_init(model, x_h, y_h, target=reference_level(x_h))
                tables.append(result.table.assign(seed=seed, converged=result.converged,
                                                  seconds=result.seconds))  # fmt: skip
                w = model.get_weights()
                weights = tuple(zip(w[::2], w[1::2], strict=True))
            for lr in grid:
                runs.append(HeldoutRun(seed=int(seed), lr=lr, sd=sds,
                                       weights=weights))  # fmt: skip
                keys.append((init, seed, lr))
    tables = pd.concat(tables, ignore_index=True) if tables else None
    frame = fit_runs(train_data, test_data, runs, widths=widths, activation=activation,
                     steps=steps, batch_size=batch_size, eval_every=eval_every)  # fmt: skip
    which = frame["run"].to_numpy()
    out = frame[["step", "loss", "test_loss", "test_accuracy", "diverged"]].assign(
        init=[keys[r][0] for r in which], seed=[keys[r][1] for r in which],
        lr=[keys[r][2] for r in which],
    )  # fmt: skip
    out.attrs = {"hessian_init": tables}
    return out


def tuned_fits(train_data, val_data, test_data, inits, widths, activation, lrs, select_seeds,
               seeds, steps, batch_size, hessian_batch=256):  # fmt: skip
    """Each initializer trained at its own best step size, chosen on a validation split.

    Selection: every lr in ``lrs`` from every initializer on ``select_seeds``, evaluated on
    ``val_data``, all trained as one compiled program (:func:`fit_scheme_grid`; each run
    equals :func:`fit_schemes`' to float32 rounding); each initializer's lr is the one
    :func:`tuned_lrs` picks (the highest mean validation accuracy; ties: the lower mean
    validation loss). Then every initializer at its lr on ``seeds``, as one program, evaluated
    on ``test_data``. The same seed gives every initializer the same mini-batch order and the
    same normal draws (scaled per scheme; ``"hessian"`` rescales He's).

    Args:
        train_data: the training record.
        val_data: the validation record (selection only).
        test_data: the held-out record (final scores only).
        inits: initializer names (see :func:`fit_schemes`).
        widths: hidden layer widths.
        activation: the hidden activation.
        lrs: the step sizes tried.
        select_seeds: seeds of the selection runs, disjoint from ``seeds`` (the step size is not
            tuned on the runs it is judged on).
        seeds: seeds of the final runs.
        steps: SGD steps.
        batch_size: mini-batch size.
        hessian_batch: images for the Hessian-based initializer.

    Returns:
        ``(selection, final)``: the last evaluations of the selection runs (``init``, ``seed``,
        ``lr``, ``test_loss``, ``test_accuracy``, the latter two on ``val_data``) and of the
        final runs (same columns, on ``test_data``); ``final.attrs["hessian_init"]`` holds the
        initializer's tables.

    Example:
        >>> from hessinit.data import load, split
        >>> rest, test_set = split(load("mnist-5k", n=40), 8)
        >>> train_set, val_set = split(rest, 8, seed=1)
        >>> sel, fin = tuned_fits(train_set, val_set, test_set, ["he"], (3,), "relu", [0.01, 0.1],
        ...                       [9], [0, 1], steps=2, batch_size=4)
        >>> sorted(set(sel["lr"])), fin[["init", "seed"]].values.tolist()
        ([0.01, 0.1], [['he', 0], ['he', 1]])

    Raises:
        ValueError: when ``select_seeds`` and ``seeds`` share a seed.
    """
    shared = sorted(set(select_seeds) & set(seeds))
    if shared:
        raise ValueError(f"selection seeds {shared} are also evaluation seeds")

    def ends(frame):
        """The last evaluation of every run: a diverged run's row reads NaN at ``steps``."""
        end = frame.groupby(["init", "seed", "lr"], sort=False).tail(1).reset_index(drop=True)
        bad = end["step"] < steps
        end.loc[bad, ["test_loss", "test_accuracy"]] = np.nan
        end.loc[bad, "step"] = steps
        end.attrs = {}
        return end.drop(columns="diverged")

    selection = ends(fit_scheme_grid(train_data, val_data, inits, widths, activation,
                                     select_seeds, lrs, steps, batch_size, steps,
                                     hessian_batch))  # fmt: skip
    best = tuned_lrs(selection).set_index("init")["tuned_lr"]
    out = fit_scheme_grid(train_data, test_data, inits, widths, activation, seeds,
                          {k: float(best[k]) for k in inits}, steps, batch_size, steps,
                          hessian_batch)  # fmt: skip
    final = ends(out)
    final.attrs["hessian_init"] = out.attrs["hessian_init"]
    return selection, final


def tuned_lrs(selection: pd.DataFrame) -> pd.DataFrame:
    """Each initializer's tuned step size on the selection runs, and whether it is interior.

    Per initializer and lr, the mean validation accuracy and loss over the selection seeds; the
    tuned lr ranks first by accuracy (higher first; ties: the lower loss; a non-finite mean
    counts as the worst). :func:`hessinit.study.analysis.tuned_lr_interior` on that ranking
    says whether the tuned lr lies strictly inside the grid: at its smallest or largest lr the
    optimum may lie outside the grid, and a comparison with that initializer is not tested.

    Args:
        selection: the selection runs of :func:`tuned_fits` (``init``, ``lr``, ``seed``,
            ``test_accuracy``, ``test_loss``; the scores are on the validation split).

    Returns:
        One row per initializer (in order of first appearance): ``init``, ``tuned_lr``,
        ``val_accuracy`` and ``val_loss`` (the means at the tuned lr), ``lr_min``, ``lr_max``,
        ``n_lrs``, ``interior``, ``edge`` and ``reached`` (see ``tuned_lr_interior``).

    Example:
        >>> sel = pd.DataFrame({"init": ["he"] * 3 + ["lecun"] * 3, "seed": 100,
        ...     "lr": [0.01, 0.1, 1.0] * 2, "test_accuracy": [0.8, 0.9, 0.85, 0.7, 0.8, 0.9],
        ...     "test_loss": [0.6, 0.3, 0.4, 0.9, 0.7, 0.5]})
        >>> tuned_lrs(sel)[["init", "tuned_lr", "interior", "edge"]].values.tolist()
        [['he', 0.1, True, ''], ['lecun', 1.0, False, 'largest']]
    """
    from ..study.analysis import tuned_lr_interior

    means = selection.groupby(["init", "lr"], sort=False)[["test_accuracy", "test_loss"]].mean()
    means = means.reset_index()
    acc = means["test_accuracy"].where(np.isfinite(means["test_accuracy"]), -np.inf)
    loss = means["test_loss"].where(np.isfinite(means["test_loss"]), np.inf)
    order = np.lexsort((loss.to_numpy(), -acc.to_numpy()))  # accuracy first, then loss
    means["rank"] = np.empty(len(means))
    means.loc[means.index[order], "rank"] = np.arange(len(means), dtype=float)
    out = tuned_lr_interior(means, setting="init", score="rank", lower_is_better=True)
    at = means.set_index(["init", "lr"])
    picked = [at.loc[(k, lr)] for k, lr in zip(out["init"], out["tuned_lr"], strict=True)]
    out.insert(2, "val_accuracy", [float(p["test_accuracy"]) for p in picked])
    out.insert(3, "val_loss", [float(p["test_loss"]) for p in picked])
    return out


def paired_differences(final: pd.DataFrame, challenger: str = "hessian",
                       columns=("test_accuracy", "test_loss")) -> pd.DataFrame:  # fmt: skip
    """The challenger's final score minus each rival's, paired by seed, with 95% t-intervals.

    For rival r and score s, d_k = s_k(challenger) - s_k(r) over the seeds k both ran, and the
    interval is :func:`hessinit.study.stats.paired_difference` (Student t on the d_k).

    Args:
        final: one row per (``init``, ``seed``) with the score ``columns`` (e.g. the ``final``
            frame of :func:`hessinit.chapters.init_schemes.tuned_fits`).
        challenger: the ``init`` compared with every other.
        columns: the scores.

    Returns:
        One row per (rival, score): ``rival``, ``score``, ``value``, ``low``, ``high``,
        ``seeds``.

    Example:
        >>> final = pd.DataFrame({"init": ["he", "hessian"] * 3, "seed": [0, 0, 1, 1, 2, 2],
        ...                       "test_accuracy": [0.90, 0.91, 0.90, 0.92, 0.90, 0.93]})
        >>> paired_differences(final, columns=["test_accuracy"]).round(4).values.tolist()
        [['he', 'test_accuracy', 0.02, -0.0048, 0.0448, 3]]
    """
    from ..study import stats  # the study layer's intervals (Student t over seeds)

    rows = []
    for score in columns:
        wide = final.pivot_table(index="seed", columns="init", values=score)
        for rival in [c for c in wide.columns if c != challenger]:
            both = wide[[challenger, rival]].dropna()
            est = stats.paired_difference(both[challenger], both[rival])
            rows.append({"rival": rival, "score": score, "value": est.value, "low": est.low,
                         "high": est.high, "seeds": est.n})  # fmt: skip
    return pd.DataFrame(rows)


#: The abstract's words claim 2.2 rests on (ACML 2021).
def interior_spread(roots: pd.DataFrame) -> pd.DataFrame:
    """Per setting, the within-network spread of the interior layers' levels at c*.

    For each seed with a root, in its deepest network (D hidden layers) at its c*, the spread is
    max_l h_l / min_l h_l over the interior layers l = 2, ..., D; the summary is the geometric
    mean over seeds and the largest seed's value.

    Args:
        roots: rows of :func:`stable_roots`.

    Returns:
        One row per ``label`` (in order): ``spread_interior`` (geometric mean over seeds) and
        ``spread_interior_max``; NaN without a root or without two interior layers.

    Example:
        >>> roots = pd.DataFrame({"label": "a", "seed": [0] * 4 + [1] * 4, "depth": 3,
        ...     "layer": [1, 2, 3, 4] * 2, "H_norm": [9, 1, 4, 9, 9, 2, 2, 9]})
        >>> interior_spread(roots).round(3).values.tolist()
        [['a', 2.0, 4.0]]
    """
    rows = []
    for label, part in roots.groupby("label", sort=False):
        good = part.dropna(subset=["H_norm"])
        deep = good[good["depth"] == good["depth"].max()]
        inner = deep[(deep["layer"] > 1) & (deep["layer"] < deep["depth"] + 1)]
        per_seed = inner.groupby("seed")["H_norm"].agg(lambda h: h.max() / h.min())
        per_seed = per_seed[inner.groupby("seed").size() >= 2]
        ok = len(per_seed) > 0
        rows.append({"label": label,
                     "spread_interior": float(np.exp(np.log(per_seed).mean())) if ok else np.nan,
                     "spread_interior_max": float(per_seed.max()) if ok else np.nan})  # fmt: skip
    return pd.DataFrame(rows)


def init_root_rows(
    summary: pd.DataFrame,
    *,
    classic: dict,
    xtol: float,
    max_ratio: float,
    setting: str,
    spread: pd.DataFrame | None = None,
    max_spread: float | None = None,
    page: str = "init_schemes",
) -> pd.DataFrame:
    """Claim 2.1, one row per setting: the depth-stable c* recovers the classical variance.

    The rule of :func:`hessinit.study.claimdata.root_rows` (shared with the CNN chapter's
    claim 5.3) on the MLP roots; then, with ``spread`` and ``max_spread``, a setting whose
    interior layers' levels within one network spread by more than a factor ``max_spread``
    (geometric mean over seeds, :func:`interior_spread`) reads "not testable with this
    estimator": the layers sit at no common level, so a level held constant across depth says
    nothing about the layers, and more seeds cannot change that.

    Args:
        summary: rows of :func:`hessinit.study.analysis.root_summary`.
        classic: ``label`` -> ``(c, name, source)``: the classical value, its name in the text
            (e.g. "He, c = 2") and the row's source.
        xtol: the root-finding tolerance in log c.
        max_ratio: the widest interval (high / low) that can decide.
        setting: the networks, with the label appended.
        spread: rows of :func:`interior_spread` (default: the spread is not checked).
        max_spread: the largest within-network spread (max / min of the interior h_l) at which
            one level describes the layers.
        page: the chapter.

    Returns:
        The claims rows, claim ``"2.1"``.

    Example:
        >>> summary = pd.DataFrame({"label": ["relu", "sigmoid"], "c": [2.0, 3.0],
        ...     "low": [1.95, 2.9], "high": [2.05, 3.1], "seeds": [4, 4], "c_lo": 0.5,
        ...     "c_hi": 8.0})
        >>> classic = {"relu": (2.0, "He, c = 2", "paper abstract"),
        ...            "sigmoid": (3.0, "c = 3", "this book's formalization")}
        >>> spread = pd.DataFrame({"label": ["relu", "sigmoid"], "spread_interior": [1.5, 165.0],
        ...                        "spread_interior_max": [2.0, 300.0]})
        >>> rows = init_root_rows(summary, classic=classic, xtol=0.01, max_ratio=1.5,
        ...                       setting="s", spread=spread, max_spread=10)
        >>> [v[:32] for v in rows["verdict"]]
        ['holds', 'not testable with this estimator']
    """
    rows = root_rows("2.1", summary, classic=classic, xtol=xtol, max_ratio=max_ratio,
                     setting=setting, page=page)  # fmt: skip
    if spread is None or max_spread is None:
        return rows
    by = spread.set_index("label")["spread_interior"]
    rows = rows.copy()
    for i, label in enumerate(summary["label"]):
        rows.loc[i, "rule"] += (f"; not testable where the interior layers' levels within one "
                                f"network spread by more than x{max_spread:g}")  # fmt: skip
        x = by.get(label, np.nan)
        if np.isfinite(x) and x > max_spread:
            rows.loc[i, "verdict"] = verdict(Untestable(
                f"the interior layers' levels within one network at c* spread by x{x:.3g} "
                f"(geometric mean over seeds), above x{max_spread:g}: no common level"
            ))  # fmt: skip
    return rows


def init_improves_rows(
    diffs: pd.DataFrame,
    *,
    margin: float,
    setting: str,
    tuned: pd.DataFrame | None = None,
    challenger: str = "hessian",
    page: str = "init_schemes",
) -> pd.DataFrame:
    """Claim 2.2, one row per rival: the Hessian-based initializer beats it in held-out accuracy.

    On the paired accuracy difference (Hessian-based minus rival) with 95% interval [low, high]:
    "holds" when low > 0; "does not hold (no detectable difference)" when the interval lies
    inside (-``margin``, ``margin``); "does not hold" when high < 0; else "inconclusive". With
    ``tuned`` (:func:`tuned_lrs`), a comparison in which the challenger's or the rival's tuned
    step size lies at an edge of the lr grid is "not tested" (a
    :class:`hessinit.study.claims.NotReached` naming the edge): a better step outside the grid
    could change the comparison, so an edge baseline is not a tuned one.

    Args:
        diffs: rows of :func:`hessinit.chapters.init_schemes.paired_differences` (the
            ``test_accuracy`` rows are used).
        margin: the equivalence margin, in accuracy (0.005 = half a point).
        setting: the training, with the rival appended.
        tuned: :func:`tuned_lrs` of the selection runs (default: the step sizes are not
            checked).
        challenger: the ``init`` of ``tuned`` the rivals are compared with.
        page: the chapter.

    Returns:
        The claims rows (:func:`claims_table`).

    Example:
        >>> diffs = pd.DataFrame({"rival": ["a", "b", "c", "d"], "score": "test_accuracy",
        ...     "value": [0.02, 0.0, -0.02, 0.004], "low": [0.01, -0.002, -0.03, -0.004],
        ...     "high": [0.03, 0.002, -0.01, 0.012], "seeds": 10})
        >>> init_improves_rows(diffs, margin=0.005, setting="s")["verdict"].tolist()
        ['holds', 'does not hold (no detectable difference)', 'does not hold', 'inconclusive']
        >>> tuned = pd.DataFrame({"init": ["hessian", "a", "b", "c", "d"],
        ...     "interior": [True, True, False, True, True],
        ...     "reached": ["", "", "lr grid edge: the tuned lr 1 is the largest of 0.1, 0.3, 1",
        ...                 "", ""]})
        >>> init_improves_rows(diffs, margin=0.005, setting="s", tuned=tuned)["verdict"][1]
        'not tested: lr grid edge for b: the tuned lr 1 is the largest of 0.1, 0.3, 1'
    """
    edges = {} if tuned is None else lr_edges(tuned)
    rows = []
    for r in diffs[diffs["score"] == "test_accuracy"].itertuples():
        if tuned is not None and (challenger not in set(tuned["init"])
                                  or r.rival not in set(tuned["init"])):  # fmt: skip
            raise ValueError(f"no tuned lr for {challenger} or {r.rival}")
        edge = [edges[k] for k in (r.rival, challenger) if k in edges]
        if edge:
            v = verdict(NotReached(" and ".join(edge)))
        elif -margin < r.low and r.high < margin:
            v = f"{FAILS} (no detectable difference)"
        else:
            v = interval_verdict(r.low, r.high, ">", 0.0)
        rows.append(ledger_row(
            "2.2", setting=f"{setting}; versus {r.rival}",
            value=r.value, low=r.low, high=r.high, seeds=int(r.seeds),
            rule=f"95% t-interval of the paired difference above 0; inside +-{margin:g}: no "
            "detectable difference; below 0: worse"
            + ("" if tuned is None else "; not tested when either tuned lr is at the grid's "
               "edge"),
            verdict=v, page=page))  # fmt: skip
    return claims_table(rows)


def lr_edges(tuned: pd.DataFrame) -> dict:
    """The edge words of every initializer whose tuned step size is not interior to the grid.

    Args:
        tuned: rows of :func:`tuned_lrs` (``init``, ``interior``, ``reached``).

    Returns:
        ``init`` -> ``"lr grid edge for <init>: the tuned lr ... is the largest of ..."``, for the
        initializers with ``interior`` False only.

    Example:
        >>> tuned = pd.DataFrame({"init": ["he", "lecun"], "interior": [True, False],
        ...     "reached": ["", "lr grid edge: the tuned lr 0.01 is the smallest of 0.01, 0.1, 1"]})
        >>> lr_edges(tuned)
        {'lecun': 'lr grid edge for lecun: the tuned lr 0.01 is the smallest of 0.01, 0.1, 1'}
    """
    head = "lr grid edge"
    return {r.init: (f"{head} for {r.init}" + r.reached[len(head):]
                     if r.reached.startswith(head) else f"{head} for {r.init}: {r.reached}")
            for r in tuned.itertuples() if not r.interior}  # fmt: skip


def plot_paired(diffs: pd.DataFrame, margin: float):
    """Paired differences, Hessian-based minus each rival, with 95% intervals, per score.

    Args:
        diffs: rows of :func:`hessinit.chapters.init_schemes.paired_differences`.
        margin: the accuracy equivalence margin, drawn as a band.

    Returns:
        The figure: one panel per score.
    """
    scores = list(dict.fromkeys(diffs["score"]))
    with style():
        fig, axes = plt.subplots(1, len(scores), figsize=(3.2 * len(scores) + 0.6, 2.8),
                                 squeeze=False, layout="constrained")  # fmt: skip
        for ax, score in zip(axes[0], scores, strict=True):
            d = diffs[diffs["score"] == score]
            ys = np.arange(len(d))[::-1]
            ax.errorbar(d["value"], ys, xerr=[d["value"] - d["low"], d["high"] - d["value"]],
                        fmt="o", ms=4, capsize=3, color=LAYER_COLORS[2])  # fmt: skip
            ax.axvline(0, color="black", lw=0.8)
            if score == "test_accuracy":
                ax.axvspan(-margin, margin, color="grey", alpha=0.2, lw=0)
            ax.set_yticks(ys, [f"vs {r}" for r in d["rival"]])
            ax.set_xlabel(f"Hessian-based minus rival: {score.replace('_', ' ')}")
    return fig


# --------------------------------------------------------------------------------------------
# The words the page's prose reads from the measurements
# --------------------------------------------------------------------------------------------

#: The settings whose c* the text states one by one (label in the roots' summary).
ACTIVATIONS = ("relu", "tanh", "linear", "sigmoid", "softplus")


def _verdicts(rows: pd.DataFrame) -> str:
    """Each row's verdict after the last "; "-part of its setting, joined by "; "."""
    pairs = zip(rows["setting"], rows["verdict"], strict=True)
    return "; ".join(f"{s.split('; ')[-1]}: {v}" for s, v in pairs)


def root_words(summary: pd.DataFrame, classic: dict, root_claims: pd.DataFrame) -> dict:
    """What the depth-stable variance section says: c* per setting against its classical value.

    For each of :data:`ACTIVATIONS`: ``c_<a>`` is "c* [low, high]", ``spread_<a>`` the spread
    of the seeds' roots and ``mf_<a>`` the classical value; ``c_drop`` the dropout settings with
    their 2q; ``spread_all`` the smallest spread to the largest ``spread_max``; ``v21`` the
    verdict per setting.

    Args:
        summary: :func:`hessinit.study.analysis.root_summary` (``label``, ``c``, ``low``,
            ``high``, ``spread``, ``spread_max``, ``dropout``).
        classic: label -> (classical c, its name, source).
        root_claims: :func:`init_root_rows` (``setting``, ``verdict``).

    Returns:
        Glue name -> text.

    Example:
        >>> labels = [*ACTIVATIONS, "relu, q = 0.5"]
        >>> summary = pd.DataFrame({"label": labels, "c": [2.0, 1, 1, 3, 2, 1.1],
        ...     "low": [1.9, 0.9, 0.9, 2.9, 1.9, 1.0], "high": [2.1, 1.1, 1.1, 3.1, 2.1, 1.2],
        ...     "spread": [1.01] * 6, "spread_max": [1.05] * 5 + [1.2],
        ...     "dropout": [0.0] * 5 + [0.5]})
        >>> classic = {k: (c, "", "") for k, c in zip(labels, [2, 1, 1, 3.5, 2, 1])}
        >>> rows = pd.DataFrame({"setting": ["MLPs; relu"], "verdict": ["holds"]})
        >>> words = root_words(summary, classic, rows)
        >>> words["c_relu"], words["mf_sigmoid"], words["c_drop"], words["v21"]
        ('2 [1.9, 2.1]', '3.5', 'q = 0.5: 1.1 [1, 1.2] (2q = 1)', 'relu: holds')
    """
    by = summary.set_index("label")
    words = {}
    for a in ACTIVATIONS:
        words[f"c_{a}"] = f"{by.loc[a, 'c']:.3g} [{by.loc[a, 'low']:.3g}, {by.loc[a, 'high']:.3g}]"
        words[f"spread_{a}"] = f"{by.loc[a, 'spread']:.3g}"
        words[f"mf_{a}"] = f"{classic[a][0]:.3g}"
    drops = summary[summary["dropout"] > 0]
    words["c_drop"] = "; ".join(
        f"q = {1 - r.dropout:g}: {r.c:.3g} [{r.low:.3g}, {r.high:.3g}] "
        f"(2q = {2 * (1 - r.dropout):g})"
        for r in drops.itertuples()
    )
    words["spread_all"] = f"{summary['spread'].min():.3g} to {summary['spread_max'].max():.3g}"
    words["v21"] = _verdicts(root_claims)
    return words


def lr_interior_text(tuned: pd.DataFrame, inits) -> str:
    """Whether each initializer's tuned step size lies inside the grid, as the page says it.

    Args:
        tuned: rows of :func:`tuned_lrs` (``init``, ``tuned_lr``, ``interior``, ``edge``,
            ``lr_min``, ``lr_max``).
        inits: the initializers, in the order the text names them.

    Returns:
        The sentence(s) the page prints.

    Example:
        >>> tuned = pd.DataFrame({"init": ["he", "lecun"], "tuned_lr": [0.1, 1.0],
        ...     "interior": [True, False], "edge": ["", "largest"], "lr_min": 0.01,
        ...     "lr_max": 1.0})
        >>> lr_interior_text(tuned, ["lecun", "he"])
        'At an edge of the grid (0.01 to 1): lecun (1, the largest). A step outside the grid might serve it better, so a comparison with it is not tested.'
        >>> lr_interior_text(tuned.iloc[:1], ["he"])
        'Every tuned step size lies inside the grid (0.01 to 1): the grid brackets each optimum.'
    """  # noqa: E501
    by = tuned.set_index("init")
    span = f"({by['lr_min'].min():g} to {by['lr_max'].max():g})"
    edge = [k for k in inits if not by.loc[k, "interior"]]
    if not edge:
        return f"Every tuned step size lies inside the grid {span}: the grid brackets each optimum."
    where = ", ".join(
        f"{k} ({by.loc[k, 'tuned_lr']:g}, the {by.loc[k, 'edge'] or 'only grid point'})"
        for k in edge
    )
    one = len(edge) == 1
    return (
        f"At an edge of the grid {span}: {where}. A step outside the grid might serve "
        f"{'it' if one else 'them'} better, so a comparison with {'it' if one else 'them'} is "
        "not tested."
    )


def training_words(final: pd.DataFrame, inits, tuned: pd.DataFrame,
                   improve_claims: pd.DataFrame) -> dict:  # fmt: skip
    """What the tuned-training section says: tuned steps, interior or not, accuracies, verdicts.

    Args:
        final: :func:`tuned_fits`' final runs (``init``, ``lr``, ``test_accuracy``; its
            ``attrs["hessian_init"]`` has the Hessian initializer's ``scale`` per seed).
        inits: The initializers, in the order the text names them.
        tuned: :func:`tuned_lrs` of the selection runs.
        improve_claims: :func:`init_improves_rows` (``setting``, ``verdict``).

    Returns:
        ``{"lr_chosen", "lr_interior", "acc_text", "scale_text", "v22"}`` -> text;
        ``lr_chosen`` marks each tuned lr "interior" or "edge".

    Example:
        >>> final = pd.DataFrame({"init": ["he", "he", "hessian"], "lr": [0.1, 0.1, 0.03],
        ...                       "test_accuracy": [0.8, 0.9, 0.7]})
        >>> final.attrs["hessian_init"] = pd.DataFrame({"scale": [0.5, 1.25]})
        >>> tuned = pd.DataFrame({"init": ["he", "hessian"], "tuned_lr": [0.1, 0.03],
        ...     "interior": [False, True], "edge": ["largest", ""], "lr_min": 0.01,
        ...     "lr_max": 0.1})
        >>> rows = pd.DataFrame({"setting": ["MLP; vs he"], "verdict": ["does not hold"]})
        >>> words = training_words(final, ["he", "hessian"], tuned, rows)
        >>> words["lr_chosen"], words["acc_text"], words["scale_text"], words["v22"]
        ('he 0.1 (edge), hessian 0.03 (interior)', 'he 0.850, hessian 0.700', '0.50 to 1.25', 'vs he: does not hold')
    """  # noqa: E501
    by = tuned.set_index("init")
    lr_of = final.groupby("init")["lr"].first()
    if any(not np.isclose(lr_of[k], by.loc[k, "tuned_lr"]) for k in inits):
        raise ValueError("the final runs' step sizes are not the tuned ones")
    acc = final.groupby("init")["test_accuracy"].mean()
    scales = final.attrs["hessian_init"]
    return {
        "lr_chosen": ", ".join(
            f"{k} {lr_of[k]:g} ({'interior' if by.loc[k, 'interior'] else 'edge'})" for k in inits
        ),
        "lr_interior": lr_interior_text(tuned, inits),
        "acc_text": ", ".join(f"{k} {acc[k]:.3f}" for k in inits),
        "scale_text": f"{scales['scale'].min():.2f} to {scales['scale'].max():.2f}",
        "v22": _verdicts(improve_claims),
    }
