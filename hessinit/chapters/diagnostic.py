"""The diagnostic chapter: is the Hessian norm at initialization a useful diagnostic?

In the order the page reads: the candidate diagnostics at initialization
(:func:`init_diagnostics`), the training of every initialization at every step size as one
compiled program (:func:`train_grid`), the deviation of the layer norms from a level
(:func:`deviation`) and claim 4.1 (:func:`diagnostic_rows`). The outcomes, the rank
correlations and their gaps are shared with the CNN training chapter
(:mod:`hessinit.study.analysis`), as is the figure (:func:`hessinit.study.figures.plot_diagnostic`).

Imports: numpy, pandas, the core (:mod:`hessinit.nn`, :mod:`hessinit.curvature`,
:mod:`hessinit.stepsize`) and the shared study layer (:mod:`hessinit.study.claims`,
:mod:`hessinit.study.experiments` for the SGD grid, :mod:`hessinit.study.sweep`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..curvature import hessian_norms_all_layers
from ..nn import mlp
from ..study.claimdata import ledger_row
from ..study.claims import (
    NotReached,
    abs_interval,
    claims_table,
    compare_interval,
    verdict,
)
from ..study.experiments import sgd_grid
from ..study.sweep import sweep


def init_diagnostics(data, inits: dict, seeds, *, hessian_batch=256, widths=(30, 30)):
    """Candidate diagnostics at initialization: layer Hessian norms and two trivial baselines.

    For each initialization and seed, on a batch of ``hessian_batch`` training images drawn
    without replacement from ``np.random.default_rng(seed)``: the exact ||H_l||_F of every dense
    layer (:func:`hessinit.curvature.hessian_norms_all_layers`), their sum and maximum over
    layers, and the baselines the loss L(w_0) and the gradient norm ||grad L(w_0)|| of the
    whole network.

    Args:
        data: the training record.
        inits: label -> ``sd`` of :func:`hessinit.nn.mlp`.
        seeds: seeds of the weights (the same as :func:`sgd_grid`'s) and of the batch.
        hessian_batch: the batch size B.
        widths: hidden widths.

    Returns:
        One row per (init, seed): ``init, seed``, ``H_<layer>`` per dense layer, ``H_sum``,
        ``H_max``, ``loss0``, ``grad_norm0``.

    Example:
        >>> from hessinit.data import load
        >>> frame = init_diagnostics(load("mnist-5k", n=32), {"a": 0.1}, [0], hessian_batch=8,
        ...                          widths=(3,))
        >>> frame.columns.tolist()
        ['init', 'seed', 'H_dense1', 'H_dense2', 'H_sum', 'H_max', 'loss0', 'grad_norm0']
    """
    from ..stepsize import gradient

    x_all, y_all = np.asarray(data.x, np.float32), np.asarray(data.y, np.int32)

    def point(init, seed):
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(y_all), size=min(hessian_batch, len(y_all)), replace=False)
        x, y = x_all[idx], y_all[idx]
        model = mlp(x_all.shape[1:], data.num_classes, widths, sd=inits[init], seed=seed)
        norms = hessian_norms_all_layers(model, x, y)
        h = {f"H_{name}": float(v.H) for name, v in norms.items()}
        loss, g = gradient(model, x, y)
        grad = float(np.sqrt(sum(float(np.sum(np.square(t.numpy(), dtype=np.float64))) for t in g)))
        return {**h, "H_sum": sum(h.values()), "H_max": max(h.values()),
                "loss0": float(loss), "grad_norm0": grad}  # fmt: skip

    return sweep(point, init=list(inits), seed=list(seeds))


def train_grid(train, held_out, inits: dict, lrs, seeds, *, steps, batch_size=32,
               widths=(30, 30)):  # fmt: skip
    """Every initialization, seed and step size trained as one compiled program, scored held out.

    Run (init, seed, lr) is ``mlp(widths, sd=inits[init], seed=seed)`` trained by plain
    SGD w <- w - lr grad L_B(w) for ``steps`` steps on mini-batches drawn from
    ``np.random.default_rng(seed)`` (one ``integers(0, n, size=batch_size)`` per step, as
    :func:`hessinit.train.fit` draws them: the step sizes of one (init, seed) are paired), all
    runs together: :func:`hessinit.study.experiments.sgd_grid` with one fixed schedule
    ``"lr=<lr>"`` per step size, evaluated on ``held_out`` at step 0 and at ``steps``.

    Args:
        train: the training record.
        held_out: the record the loss is evaluated on.
        inits: label -> ``sd`` of :func:`hessinit.nn.mlp`.
        lrs: the step sizes.
        seeds: seeds of the weights and of the draws.
        steps: SGD steps.
        batch_size: the mini-batch size.
        widths: hidden widths.

    Returns:
        The rows of ``sgd_grid``: ``init, seed, schedule`` (``"lr=<lr>"``), ``lr``, ``step``,
        ``eval_loss``; a run whose held-out loss is not finite has NaN at ``steps``
        (diverged).

    Example:
        >>> from hessinit.data import load, split
        >>> train, test = split(load("mnist-5k", n=40), 8)
        >>> frame = train_grid(train, test, {"a": 0.1}, [0.01, 0.1], [0], steps=2, widths=(3,))
        >>> frame[["schedule", "step"]].values.tolist()
        [['lr=0.01', 0], ['lr=0.01', 2], ['lr=0.1', 0], ['lr=0.1', 2]]
    """
    schedules = {f"lr={float(lr):g}": float(lr) for lr in lrs}
    return sgd_grid(train, schedules, inits, seeds, steps=steps, batch_size=batch_size,
                    eval_every=max(steps, 1), held_out=held_out, widths=widths)  # fmt: skip


def selected_outcomes(selection: pd.DataFrame, final: pd.DataFrame, fixed_lr: float):
    """Per (init, seed), the final loss at a fixed step and at the step tuned on other seeds.

    The tuned lr of an initialization is the one with the lowest mean final held-out loss over
    the *selection* runs (a diverged run counts +inf;
    :func:`hessinit.study.analysis.tuned_lr_interior`), whose seeds are not the evaluation
    seeds of ``final``; the outcome of an evaluation run is then its final loss at that lr.
    Whether each tuned lr lies strictly inside the grid comes with it.

    Args:
        selection: :func:`hessinit.study.analysis.final_eval` rows of the selection runs
            (``init, seed, lr, final_loss``).
        final: the same of the evaluation runs, every lr of the grid.
        fixed_lr: the step of the untuned outcome.

    Returns:
        ``(outcomes, tuned)``: one row per (init, seed) of ``final`` with ``loss_fixed``,
        ``loss_tuned``, ``tuned_lr``; and ``tuned_lr_interior``'s table (``init``,
        ``tuned_lr``, ``interior``, ``reached``, ...).

    Raises:
        ValueError: the selection and evaluation runs share a seed.

    Example:
        >>> sel = pd.DataFrame({"init": "a", "seed": 9, "lr": [0.1, 0.3, 1.0],
        ...                     "final_loss": [0.5, 0.2, 0.4]})
        >>> fin = pd.DataFrame({"init": "a", "seed": 0, "lr": [0.1, 0.3, 1.0],
        ...                     "final_loss": [0.6, 0.3, 0.1]})
        >>> out, tuned = selected_outcomes(sel, fin, 0.1)
        >>> out.values.tolist(), bool(tuned["interior"][0])
        ([['a', 0, 0.6, 0.3, 0.3]], True)
    """
    from ..study.analysis import tuned_lr_interior

    shared = sorted(set(selection["seed"]) & set(final["seed"]))
    if shared:
        raise ValueError(f"selection seeds {shared} are also evaluation seeds")
    tuned = tuned_lr_interior(selection, setting="init", score="final_loss")
    best = tuned.set_index("init")["tuned_lr"]
    wide = final.pivot_table(index=["init", "seed"], columns="lr", values="final_loss",
                             dropna=False, sort=False)  # fmt: skip
    rows = [{"init": init, "seed": seed, "loss_fixed": losses[fixed_lr],
             "loss_tuned": losses[best[init]], "tuned_lr": best[init]}
            for (init, seed), losses in wide.iterrows()]  # fmt: skip
    return pd.DataFrame(rows), tuned


def edge_words(tuned: pd.DataFrame) -> str:
    """The initializations whose tuned lr lies at an edge of the grid, in words ("" if none).

    Args:
        tuned: rows of :func:`hessinit.study.analysis.tuned_lr_interior` (``init``,
            ``tuned_lr``, ``interior``, ``edge``, ``lr_min``, ``lr_max``).

    Returns:
        ``"lr grid edge (0.01 to 3) for a (3, the largest), b (0.01, the smallest)"``, or "".

    Example:
        >>> tuned = pd.DataFrame({"init": ["a", "b"], "tuned_lr": [3.0, 0.1],
        ...     "interior": [False, True], "edge": ["largest", ""], "lr_min": 0.01, "lr_max": 3.0})
        >>> edge_words(tuned)
        'lr grid edge (0.01 to 3) for a (3, the largest)'
    """
    bad = tuned[~tuned["interior"].astype(bool)]
    if bad.empty:
        return ""
    span = f"({tuned['lr_min'].min():g} to {tuned['lr_max'].max():g})"
    names = ", ".join(f"{r.init} ({r.tuned_lr:g}, the {r.edge or 'only grid point'})"
                      for r in bad.itertuples())  # fmt: skip
    return f"lr grid edge {span} for {names}"


def deviation(diag: pd.DataFrame, fan_ins: dict, level: float) -> pd.Series:
    """Distance of the layers' normalized Hessian norms from a level, in decades, summed.

    ``sum_l abs(log10(||H_l||_F / n_in,l / level))``, zero when every layer sits at the level (the
    paper's principle, "controlling the norm of the layers' Hessians", read as keeping each
    near one data-given level such as :func:`hessinit.init.reference_level`).

    Args:
        diag: rows with ``H_<layer>`` columns.
        fan_ins: layer name -> n_in.
        level: the level.

    Returns:
        One value per row.

    Example:
        >>> diag = pd.DataFrame({"H_dense1": [10.0], "H_dense2": [0.1]})
        >>> deviation(diag, {"dense1": 10, "dense2": 1}, 1.0).tolist()
        [1.0]
    """
    total = 0.0
    for name, n_in in fan_ins.items():
        total = total + np.abs(np.log10(diag[f"H_{name}"] / n_in / level))
    return total


def diagnostic_rows(
    corr: pd.DataFrame,
    gaps: pd.DataFrame,
    *,
    threshold: float,
    setting: str,
    outcome: str | None = None,
    edge: str = "",
    page: str = "diagnostic",
) -> pd.DataFrame:
    """Claims 4.1 and 4.2: the Hessian norm at initialization predicts the loss after training.

    With ``outcome`` the rows judge that outcome only (the tuned outcome is the page's
    headline, the fixed-step one is reported beside it); with ``edge`` (the words of a tuned
    lr at the grid's edge) both rows read "not tested"
    (:class:`hessinit.study.claims.NotReached`): an edge lr is not a tuned one.

    4.1, per (Hessian predictor, outcome): the 95% interval of abs(rho) (Spearman per seed,
    Student t interval over seeds; :func:`abs_interval`) lies above ``threshold``: holds; below it:
    does not hold; else inconclusive (:func:`interval_verdict`). The settings combine by
    :func:`verdict`, naming the predictors and outcomes where it holds. The row's value is the
    abs(rho) of the setting with the highest lower end.

    4.2, per outcome: the Hessian predictor with the highest abs(rho) lower end ranks the outcome
    better than the best trivial baseline: the paired t interval over seeds of
    abs(rho_Hessian) - abs(rho_baseline) (:func:`hessinit.study.analysis.rank_gap`) lies above 0.
    The row's value is the smallest gap over the outcomes.

    Args:
        corr: rows of :func:`hessinit.study.analysis.rank_correlations` with a ``kind``
            column, ``"hessian"`` or ``"baseline"``.
        gaps: one row per outcome: ``outcome``, ``hessian``, ``baseline``, ``gap``, ``low``,
            ``high``.
        threshold: the abs(rho) that counts as useful.
        setting: the initializations and training.
        outcome: the outcome judged (default: every outcome in ``corr``).
        edge: non-empty: the outcome's lr grid edge, in words.
        page: the chapter.

    Returns:
        The two claims rows (:func:`claims_table`).

    Example:
        >>> corr = pd.DataFrame({"predictor": ["H_sum", "loss0"], "outcome": "y",
        ...                      "kind": ["hessian", "baseline"], "rho": [0.3, 0.9],
        ...                      "low": [-0.1, 0.8], "high": [0.6, 0.95], "n": 5})
        >>> gaps = pd.DataFrame({"outcome": ["y"], "hessian": "H_sum", "baseline": "loss0",
        ...                      "gap": [-0.6], "low": [-0.9], "high": [-0.3]})
        >>> rows = diagnostic_rows(corr, gaps, threshold=0.5, setting="tiny")
        >>> rows[["claim", "verdict"]].values.tolist()
        [['4.1', 'inconclusive'], ['4.2', 'does not hold']]
        >>> diagnostic_rows(corr, gaps, threshold=0.5, setting="tiny", outcome="y",
        ...                 edge="lr grid edge for he")["verdict"].tolist()
        ['not tested: lr grid edge for he', 'not tested: lr grid edge for he']
    """
    if outcome is not None:
        corr = corr[corr["outcome"] == outcome]
        gaps = gaps[gaps["outcome"] == outcome].reset_index(drop=True)
    hess = corr[corr["kind"] == "hessian"].reset_index(drop=True)
    ends = [abs_interval(lo, hi) for lo, hi in zip(hess["low"], hess["high"], strict=True)]
    oks = [compare_interval(lo, hi, ">", threshold) for lo, hi in ends]
    where = [f"{p} with {o}" for p, o in zip(hess["predictor"], hess["outcome"], strict=True)]
    top = int(np.argmax([lo for lo, _ in ends]))
    lo, hi = ends[top]
    worst = gaps.loc[gaps["gap"].idxmin()]
    gap_ok = [compare_interval(a, b, ">", 0) for a, b in zip(gaps["low"], gaps["high"],
                                                            strict=True)]  # fmt: skip
    n = int(corr["n"].max())
    return claims_table([
        ledger_row(
            "4.1",
            setting=f"{setting}; best: {hess['predictor'][top]} with {hess['outcome'][top]}",
            value=abs(hess["rho"][top]),
            low=lo,
            high=hi,
            seeds=n,
            rule=f"95% interval of |rho| above {threshold:g} (per-seed rho, Student t interval "
                 "over seeds); "
                 "the Hessian predictors are each layer's norm, their sum, max and the "
                 "distance from a data-given level",
            verdict=verdict(NotReached(edge)) if edge else verdict(oks, where),
            page=page,
        ),
        ledger_row(
            "4.2",
            setting=f"{setting}; {worst['hessian']} against {worst['baseline']} "
                    f"({worst['outcome']})",
            detail="worst outcome",
            value=worst["gap"],
            low=worst["low"],
            high=worst["high"],
            seeds=n,
            rule="paired t interval over seeds of the gap above 0: the Hessian norm ranks the "
                 "initializations better than the initial loss or gradient norm",
            verdict=verdict(NotReached(edge)) if edge
            else verdict(gap_ok, [str(o) for o in gaps["outcome"]]),
            page=page,
        ),
    ])  # fmt: skip
