"""Pure pandas summaries that two or more chapters share: roots, outcomes, rank correlations.

Nothing here builds a network, draws a figure or states a verdict. :func:`root_summary` serves
the initialization and CNN chapters; :func:`final_eval`, :func:`best_fixed`, :func:`outcomes`,
:func:`rank_correlations`, :func:`rank_gap` and :func:`tuned_lr_interior` the step-size,
diagnostic, initialization and CNN training chapters. A chapter's own summaries are in its
module of :mod:`hessinit.chapters`.

Imports: numpy, pandas and :mod:`hessinit.study.stats` (inside the functions that need it).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def root_summary(roots: pd.DataFrame) -> pd.DataFrame:
    """Per setting: the depth-stable c* over seeds with a 95% interval, and the layers' spread.

    The interval is Student t on log c* over the seeds that found a root
    (:func:`hessinit.study.stats.mean_interval`), mapped back by exp: ``c`` is the geometric
    mean of c*. The within-network spread of a seed is max_l h_l / min_l h_l in its deepest
    network at its c*.

    Args:
        roots: rows of :func:`hessinit.chapters.init_schemes.stable_roots`.

    Returns:
        One row per ``label`` (in order): ``activation``, ``dropout``, ``c``, ``low``, ``high``,
        ``seeds`` (with a root), ``tried`` (seeds run), ``c_lo`` and ``c_hi`` (the widest
        bracket searched), ``spread`` (geometric mean over seeds) and ``spread_max``.

    Example:
        >>> roots = pd.DataFrame({"label": "relu", "activation": "relu", "dropout": 0.0,
        ...     "seed": [0, 0, 1, 1], "c_star": [2.0, 2.0, 2.0, 2.0], "bracketed": True,
        ...     "c_lo": 1.0, "c_hi": 4.0, "depth": 3, "layer": [1, 2, 1, 2],
        ...     "H_norm": [1.0, 2.0, 1.0, 4.0]})
        >>> root_summary(roots)[["c", "low", "high", "spread_max"]].values.tolist()
        [[2.0, 2.0, 2.0, 4.0]]
    """
    from . import stats  # the study layer's intervals (Student t over seeds)

    rows = []
    for label, part in roots.groupby("label", sort=False):
        per_seed = part.groupby("seed").first()
        ok = per_seed[per_seed["bracketed"].astype(bool)]
        row = {"label": label, "activation": part["activation"].iloc[0],
               "dropout": float(part["dropout"].iloc[0]), "c": math.nan, "low": math.nan,
               "high": math.nan, "seeds": len(ok), "tried": len(per_seed),
               "c_lo": per_seed["c_lo"].min(), "c_hi": per_seed["c_hi"].max(),
               "spread": math.nan, "spread_max": math.nan}  # fmt: skip
        if len(ok):
            est = stats.mean_interval(np.log(ok["c_star"].to_numpy(float)))
            row.update(c=math.exp(est.value), low=math.exp(est.low), high=math.exp(est.high))
            good = part[part["seed"].isin(ok.index)]
            deep = good[good["depth"] == good["depth"].max()]
            spread = deep.groupby("seed")["H_norm"].agg(lambda h: h.max() / h.min())
            row.update(spread=float(np.exp(np.log(spread).mean())), spread_max=spread.max())
        rows.append(row)
    return pd.DataFrame(rows)


def final_eval(frame: pd.DataFrame) -> pd.DataFrame:
    """The last evaluation of every run of :func:`hessinit.study.experiments.sgd_grid`.

    Args:
        frame: rows with ``init, seed, schedule, lr, step, eval_loss``.

    Returns:
        One row per (init, seed, schedule): ``final_loss`` (NaN: diverged) and ``diverged``.

    Example:
        >>> frame = pd.DataFrame({"init": 1.0, "seed": 0, "schedule": "a", "lr": 0.1,
        ...                       "step": [0, 5], "eval_loss": [2.3, float("nan")]})
        >>> final_eval(frame)[["final_loss", "diverged"]].values.tolist()
        [[nan, True]]
    """
    last = frame.sort_values("step").groupby(["init", "seed", "schedule"], sort=False).tail(1)
    last = last.rename(columns={"eval_loss": "final_loss"}).drop(columns="step")
    last["diverged"] = ~np.isfinite(last["final_loss"])
    return last.sort_index().reset_index(drop=True)


def best_fixed(final: pd.DataFrame, fixed) -> pd.DataFrame:
    """Per initialization, the fixed schedule with the lowest mean final loss over seeds.

    A diverged run's loss counts as +inf, so a schedule that diverged on any seed is chosen
    only when every schedule did.

    Args:
        final: rows of :func:`final_eval`.
        fixed: the names of the fixed-step schedules to choose from.

    Returns:
        One row per ``init``: ``best`` (the schedule), ``lr``, ``mean_loss``.

    Example:
        >>> final = pd.DataFrame({"init": 1.0, "seed": [0, 0, 1, 1], "schedule": ["a", "b"] * 2,
        ...                       "lr": [0.1, 1.0] * 2,
        ...                       "final_loss": [0.5, 0.3, 0.6, float("nan")]})
        >>> best_fixed(final, ["a", "b"]).values.tolist()
        [[1.0, 'a', 0.1, 0.55]]
    """
    part = final[final["schedule"].isin(list(fixed))].copy()
    part["score"] = part["final_loss"].fillna(np.inf)
    means = part.groupby(["init", "schedule"], sort=False).agg(
        mean_loss=("score", "mean"), lr=("lr", "first")
    )
    best = means.loc[means.groupby(level="init", sort=False)["mean_loss"].idxmin()]
    best = best.reset_index().rename(columns={"schedule": "best"})
    return best[["init", "best", "lr", "mean_loss"]]


def outcomes(final: pd.DataFrame, fixed_lr: str, tuned) -> pd.DataFrame:
    """Per (init, seed), the final loss at one fixed step and at the initialization's tuned step.

    The tuned step is, per initialization, the schedule of ``tuned`` with the lowest mean final
    loss over seeds (:func:`best_fixed`; a diverged run counts +inf).

    Args:
        final: rows of :func:`final_eval`.
        fixed_lr: the schedule of the untuned outcome.
        tuned: the schedules the tuned step is chosen from.

    Returns:
        One row per (init, seed): ``loss_fixed``, ``loss_tuned``, ``tuned_lr``.

    Example:
        >>> final = pd.DataFrame({"init": "a", "seed": [0, 0, 1, 1], "schedule": ["x", "y"] * 2,
        ...                       "lr": [0.01, 0.1] * 2, "final_loss": [1.0, 0.5, 1.2, 0.4]})
        >>> outcomes(final, "x", ["x", "y"]).values.tolist()
        [['a', 0, 1.0, 0.5, 0.1], ['a', 1, 1.2, 0.4, 0.1]]
    """
    best = best_fixed(final, tuned).set_index("init")
    wide = final.pivot_table(index=["init", "seed"], columns="schedule", values="final_loss",
                             dropna=False, sort=False)  # fmt: skip
    rows = []
    for (init, seed), losses in wide.iterrows():
        rows.append({"init": init, "seed": seed, "loss_fixed": losses[fixed_lr],
                     "loss_tuned": losses[best.loc[init, "best"]],
                     "tuned_lr": best.loc[init, "lr"]})  # fmt: skip
    return pd.DataFrame(rows)


def _ranks(values) -> np.ndarray:
    return pd.Series(values).rank().to_numpy()


def _spearman(x, y) -> float:
    rx, ry = _ranks(x), _ranks(y)
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def rank_correlations(table: pd.DataFrame, predictors, outcomes, unit: str = "seed",
                      n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Spearman's rho of every predictor with every outcome, within each ``unit``, over the units.

    rho is computed within each unit (the Pearson correlation of the ranks of its rows, ties
    averaged) and averaged over the units; its 95% interval is the Student t interval of the
    per-unit values (:func:`hessinit.study.stats.spearman_interval`). Rows with a non-finite
    predictor or outcome (a diverged run) are dropped.

    Args:
        table: one row per (setting, unit).
        predictors: the predictor columns.
        outcomes: the outcome columns.
        unit: the column of the independent unit.
        n_boot: unused (kept for callers of the former bootstrap).
        seed: unused (kept for callers of the former bootstrap).

    Returns:
        One row per (predictor, outcome): ``rho, low, high, n`` (units), ``rows``.

    Example:
        >>> table = pd.DataFrame({"x": [1, 2, 3] * 2, "y": [1, 2, 3, 2, 4, 3],
        ...                       "seed": [0] * 3 + [1] * 3})
        >>> rank_correlations(table, ["x"], ["y"])[["rho", "n"]].round(3).values.tolist()
        [[0.75, 2.0]]
    """
    from .stats import spearman_interval

    rows = []
    for outcome in outcomes:
        for predictor in predictors:
            e = spearman_interval(table[predictor], table[outcome], table[unit], n_boot=n_boot,
                                  seed=seed)  # fmt: skip
            keep = np.isfinite(table[predictor]) & np.isfinite(table[outcome])
            rows.append({"predictor": predictor, "outcome": outcome, "rho": e.value,
                         "low": e.low, "high": e.high, "n": e.n,
                         "rows": int(keep.sum())})  # fmt: skip
    return pd.DataFrame(rows)


def rank_gap(table: pd.DataFrame, a: str, b: str, outcome: str, unit: str = "seed",
             n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:  # fmt: skip
    """abs(rho(a, outcome)) - abs(rho(b, outcome)) with a paired t interval over units.

    Both correlations are computed within each unit on the same rows, and the per-unit
    differences (each rho signed by its predictor's mean direction) get a Student t interval
    (:func:`hessinit.study.stats.spearman_gap`): the interval is that of the difference itself,
    and nothing forces it to contain more than its own t interval does.

    Args:
        table: one row per (setting, unit).
        a: the challenger predictor's column.
        b: the rival predictor's column.
        outcome: the outcome column.
        unit: the column of the independent unit.
        n_boot: unused (kept for callers of the former bootstrap).
        seed: unused (kept for callers of the former bootstrap).

    Returns:
        ``(gap, low, high)``, the 95% interval.

    Example:
        >>> table = pd.DataFrame({"a": [1, 2, 3] * 2, "b": [3, 1, 2] * 2, "y": [1, 2, 3] * 2,
        ...                       "seed": [0] * 3 + [1] * 3})
        >>> [round(v, 6) for v in rank_gap(table, "a", "b", "y")]  # |1| - |-0.5| on every seed
        [0.5, 0.5, 0.5]
    """
    from .stats import spearman_gap

    del n_boot, seed
    e = spearman_gap(table[a], table[b], table[outcome], table[unit])
    return float(e.value), float(e.low), float(e.high)


def tuned_lr_interior(table: pd.DataFrame, setting="setting", lr: str = "lr",
                      score: str = "score", lower_is_better: bool = True):  # fmt: skip
    """Per setting, whether the tuned learning rate lies strictly inside the grid tried.

    The tuned lr of a setting is the one with the best mean score over its rows (seeds); a
    non-finite score (a diverged run) counts as the worst. A tuned lr at the smallest or largest
    lr of the setting's grid is an edge: the optimum may lie outside the grid, so a comparison
    with that baseline is "not tested: lr grid edge" (``reached`` gives the words for a
    :class:`hessinit.study.claims.NotReached`). A grid of fewer than three lrs has no interior.

    Args:
        table: one row per (setting, lr, seed) or per (setting, lr).
        setting: the setting column, or a list of columns.
        lr: the learning-rate column.
        score: the score column.
        lower_is_better: True for a loss, False for an accuracy.

    Returns:
        One row per setting (in order of first appearance): the setting column(s), ``tuned_lr``,
        ``lr_min``, ``lr_max``, ``n_lrs``, ``interior`` (bool), ``edge`` ("smallest",
        "largest" or "") and ``reached`` (e.g. ``"lr grid edge: the tuned lr 0.1 is the
        largest of 0.01, 0.03, 0.1"``, empty when interior).

    Example:
        >>> table = pd.DataFrame({"setting": ["he"] * 3 + ["lecun"] * 3,
        ...                       "lr": [0.01, 0.03, 0.1] * 2,
        ...                       "score": [0.5, 0.3, 0.4, 0.5, 0.4, 0.3]})
        >>> out = tuned_lr_interior(table)
        >>> out[["setting", "tuned_lr", "interior", "edge"]].values.tolist()
        [['he', 0.03, True, ''], ['lecun', 0.1, False, 'largest']]
        >>> out["reached"][1]
        'lr grid edge: the tuned lr 0.1 is the largest of 0.01, 0.03, 0.1'
    """
    keys = [setting] if isinstance(setting, str) else list(setting)
    part = table[[*keys, lr, score]].copy()
    worst = np.inf if lower_is_better else -np.inf
    part[score] = part[score].astype(float).where(np.isfinite(part[score].astype(float)), worst)
    rows = []
    for key, group in part.groupby(keys, sort=False):
        means = group.groupby(lr)[score].mean()
        grid = np.sort(means.index.to_numpy(dtype=float))
        best = float(means.idxmin() if lower_is_better else means.idxmax())
        edge = "smallest" if best == grid[0] else "largest" if best == grid[-1] else ""
        interior = len(grid) >= 3 and not edge
        text = (
            ""
            if interior
            else (
                f"lr grid edge: the tuned lr {best:g} is the {edge} of "
                + ", ".join(f"{g:g}" for g in grid)
            )
        )
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys, key, strict=True)), "tuned_lr": best,
                     "lr_min": grid[0], "lr_max": grid[-1], "n_lrs": len(grid),
                     "interior": bool(interior), "edge": edge, "reached": text})  # fmt: skip
    return pd.DataFrame(rows)
