"""Convolutional networks in training: the Hessian norm at init as a diagnostic, and tracking.

Two questions of the CNN chapter's training section, on the networks of
:data:`hessinit.study.convnets.NETWORKS` that train in inference mode (:data:`TRAINED`: no
BatchNorm):

- **Trainability.** For many initializations (the schemes, and sigma_l^2 = c / fan_in_l for a
  sweep of c, a convolution's fan-in k k c_in), the per-kernel Hessian norms ||H_l||_F at
  initialization (:func:`init_measures`) against the held-out loss after a short SGD run, at
  one fixed step and at the step of a grid that is best for the initialization on selection
  seeds apart from the judged ones (:func:`sgd_outcomes`, :func:`select_lrs`,
  :func:`trainability`). As in the diagnostic chapter, a diagnostic is
  useful if its Spearman rank correlation with the outcome is strong and stronger than that of
  a trivial predictor (the initial loss, the initial gradient norm): :func:`rank_table`,
  :func:`rank_gaps`, claim 5.5 (:func:`trainability_rows`).
- **Tracking.** Per kernel ||H||_F, ||G||_F, ||R||_F and lambda_max (per kernel and of the whole
  network) through a short training by :func:`hessinit.train.run` (:func:`track`); the worst
  kernel's ||R|| / ||H|| at every checkpoint with its interval over seeds
  (:func:`dominance_course`, claim 5.6: :func:`tracking_rows`) and the step against the
  stability bound 2 / lambda_max (:func:`stability`).

The trainability runs of one network (initializations x seeds x step sizes) train together
as compiled programs (:func:`hessinit.train.stacked_cnn.fit_runs`), each equal to its own
Keras run to float32 rounding. The tracked runs still train one at a time through
:func:`hessinit.train.run`: their checkpoints need each run's per-kernel norms from
:mod:`hessinit.curvature.tensors` (exact where R = 0 by structure, else a Hutchinson-type
estimate, on a Keras model) and a Lanczos spectrum of the whole network, routes that take one
network at a time; the Kronecker route that :mod:`hessinit.train.stacked` vectorizes over runs
needs a dense layer's per-sample inputs, which a convolution's kernel does not have.

Imports: numpy, pandas, the core (:mod:`hessinit.init`, :mod:`hessinit.nn`,
:mod:`hessinit.curvature`, :mod:`hessinit.stepsize`, :mod:`hessinit.train`), matplotlib and
the shared study layer (:mod:`hessinit.study.convnets`, :mod:`hessinit.study.analysis`,
:mod:`hessinit.study.claims`, :mod:`hessinit.study.figures`, :mod:`hessinit.study.stats`).
The figure of the tracking section is :func:`plot_cnn_tracking`.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import init
from ..curvature.tensors import layer_tensor_norms, logits_linear_in
from ..nn import kernel_fans, kernel_layers
from ..stepsize import gradient
from ..study import analysis, claims, convnets, stats
from ..study.claimdata import ledger_row
from ..study.figures import layer_color, style
from ..train import run
from ..train.stacked_cnn import fit_runs

#: The networks of :data:`hessinit.study.convnets.NETWORKS` this page trains (no BatchNorm: the
#: training steps run in inference mode, where BatchNorm would keep its initial statistics).
TRAINED = ("cnn relu", "cnn tanh", "resnet")


#: The norm :func:`init_measures` counts a kernel Hessian norm that underflowed to 0 at, in
#: ``H_dev`` (float32's smallest normal number): a saturated softmax, Lambda_i = 0 in float32.
_TINY = float(np.finfo(np.float32).tiny)


def _check_networks(networks):
    """Raise ValueError for a network this page does not train."""
    for network in networks:
        if network not in TRAINED:
            raise ValueError(f"network {network!r} is not trained here; choose from {TRAINED}")


def images(data):
    """The record's images as (N, H, W, C) float32 and labels as int32; grey images get C = 1.

    Args:
        data: a dataset record with ``x`` and ``y`` (:class:`hessinit.data.Dataset`).

    Returns:
        ``(x, y)`` numpy arrays.

    Example:
        >>> from hessinit.data import Dataset
        >>> data = Dataset(np.zeros((2, 6, 6)), [0, 1], "tiny", 2, (6, 6), "zeros")
        >>> [a.shape for a in images(data)]
        [(2, 6, 6, 1), (2,)]
    """
    x = np.asarray(data.x, np.float32)
    if x.ndim == 3:
        x = x[..., None]
    return x, np.asarray(data.y, np.int32)


def _schemes(model, schemes, seed):
    """Set ``model``'s kernels to those of each scheme in turn (with ``seed``); yield the scheme.

    The kernels of :func:`hessinit.study.convnets.build` are sigma_l Z_l with Z_l the standard
    normal draws of ``np.random.default_rng([seed, l])`` (:mod:`hessinit.nn.convnets`), so one
    model object (of the network, never trained: zero biases) takes every seed's and scheme's
    weights exactly, and the compiled products it is passed to are traced once rather than once
    per setting.
    """
    layers = kernel_layers(model)
    bases = [np.random.default_rng([seed, k]).standard_normal(tuple(layer.kernel.shape))
             for k, layer in enumerate(layers, start=1)]  # fmt: skip
    for scheme in schemes:
        sds = init.model_kernel_sds(scheme, model)
        for layer, base, sd in zip(layers, bases, sds, strict=True):
            layer.kernel.assign((float(sd) * base).astype(layer.kernel.dtype))
        yield scheme


def init_measures(data, networks, inits, seeds, *, hessian_batch=128, probes=4,
                  fallback="hutchpp", **kwargs):  # fmt: skip
    """Candidate diagnostics at initialization: kernel Hessian norms and two trivial baselines.

    For each network, initialization and seed, on ``hessian_batch`` images drawn without
    replacement by ``np.random.default_rng(seed)``, with the network of
    :func:`hessinit.study.convnets.build`: ||H_l||_F of every kernel tensor l (exact where the
    logits are piecewise linear in it, so R = 0, else the ``fallback`` estimate, as in
    :func:`hessinit.chapters.cnn.kernel_norms`), the first kernel's (``H_first``, the one the
    original experiment scales), their sum and maximum, the distance of the fan-in-normalized
    norms from the data's level, ``H_dev`` = sum_l abs(log10(||H_l||_F / fan_in_l / level)) with
    level :func:`hessinit.init.reference_level` (the diagnostic chapter's; a norm that
    underflows to 0 in float32, as under a saturated softmax, counts as float32's smallest
    normal number, 1.2e-38, so that setting is the farthest from the level rather than
    undefined), and the baselines L(w_0) and ||grad L(w_0)||.

    Args:
        data: the training record (``x``, ``y``, ``num_classes``).
        networks: names of :data:`TRAINED`.
        inits: schemes (names or numbers c for c / fan_in, every kernel).
        seeds: seeds of the kernels (the same as :func:`sgd_outcomes`') and of the batch.
        hessian_batch: the batch size B.
        probes: Hutchinson probes per estimated tensor (at least 2).
        fallback: the estimate where R is not 0 by structure: ``"hutchpp"`` (deflated: a
            sketch of the top directions taken exactly, ``probes`` Hutchinson probes of the
            rest; exact columns when the tensor is that small) or ``"hutchinson"``.
        **kwargs: passed to :func:`hessinit.study.convnets.build` (e.g. ``channels``).

    Returns:
        One row per (network, init, seed): ``network, init, seed``, :data:`HESSIAN_PREDICTORS`,
        :data:`BASELINES` and ``exact`` (every norm exact).

    Raises:
        ValueError: a network outside :data:`TRAINED`.

    Example:
        >>> from hessinit.data import Dataset
        >>> rng = np.random.default_rng(0)
        >>> data = Dataset(rng.random((8, 6, 6), np.float32), rng.integers(0, 3, 8), "tiny", 3,
        ...                (6, 6), "random")
        >>> out = init_measures(data, ["cnn relu"], ["he", 4.0], [0], hessian_batch=8,
        ...                     num_classes=3, channels=(2, 2))
        >>> out[["init", "exact"]].values.tolist()
        [['he', True], ['c=4', True]]
        >>> bool((out.H_sum > out.H_max).all() and (out.H_max >= out.H_first).all())
        True
    """
    _check_networks(networks)
    x_all, y_all = images(data)
    rows = []
    for network in networks:
        model = convnets.build(network, inits[0], seeds[0], input_shape=x_all.shape[1:], **kwargs)
        for seed in seeds:
            rng = np.random.default_rng(seed)
            idx = rng.choice(len(y_all), size=min(hessian_batch, len(y_all)), replace=False)
            x, y = x_all[idx], y_all[idx]
            for scheme in _schemes(model, inits, seed):
                level = init.reference_level(x, int(model.output_shape[-1]))
                hs, dev, exact = [], 0.0, True
                for layer in kernel_layers(model):
                    n = layer_tensor_norms(model, layer, x, y, weight="kernel", max_products=0,
                                           fallback=fallback, probes=probes,
                                           seed=seed)  # fmt: skip
                    hs.append(n.H)
                    h = max(n.H, _TINY)  # a saturated softmax: H underflows to 0
                    dev += abs(math.log10(h / kernel_fans(layer.kernel.shape)[0] / level))
                    exact = exact and n.method not in ("hutchinson", "hutchpp")
                loss, g = gradient(model, x, y)
                grad = math.sqrt(sum(float(np.sum(np.square(t.numpy(), dtype=np.float64)))
                                     for t in g))  # fmt: skip
                rows.append({"network": network, "init": init.scheme_label(scheme),
                             "seed": seed, "H_first": hs[0], "H_sum": sum(hs), "H_max": max(hs),
                             "H_dev": dev, "loss0": float(loss), "grad_norm0": grad,
                             "exact": exact})  # fmt: skip
    order = {init.scheme_label(s): k for k, s in enumerate(inits)}
    frame = pd.DataFrame(rows)
    keys = [frame["network"].map(list(networks).index), frame["init"].map(order), frame["seed"]]
    return frame.iloc[np.lexsort(keys[::-1])].reset_index(drop=True)


def sgd_outcomes(train, held_out, networks, inits, seeds, lrs, *, steps, batch_size=32,
                 **kwargs):  # fmt: skip
    """Held-out loss before and after a short SGD run, per network, init, seed and step size.

    For each network, initialization and seed, the network of
    :func:`hessinit.study.convnets.build` is trained from the same weights on the same mini-batches
    (``steps`` x ``batch_size`` rows drawn with replacement by ``np.random.default_rng(seed)``)
    at every step size of ``lrs`` (w <- w - lr g in float32), and the mean cross-entropy on all
    of ``held_out`` is taken before and after. All runs of one network (initializations x
    seeds x step sizes) train together as compiled programs of grouped convolutions
    (:func:`hessinit.train.stacked_cnn.fit_runs`); each equals the run of
    :func:`hessinit.stepsize.sgd_steps` on its own Keras model to float32 rounding.

    Args:
        train: the training record.
        held_out: the held-out record.
        networks: names of :data:`TRAINED`.
        inits: schemes (names or numbers c).
        seeds: seeds of the kernels and of the mini-batches.
        lrs: the step sizes, or a dict of them per (network, init label), such as
            :func:`evaluation_lrs` gives.
        steps: SGD steps per run.
        batch_size: the mini-batch size b.
        **kwargs: passed to :func:`hessinit.study.convnets.build`.

    Returns:
        The rows :func:`hessinit.study.analysis.final_eval` reads, with the network: ``network,
        init, seed, schedule`` (``"lr=<lr>"``), ``lr``, ``step`` (0 and ``steps``),
        ``eval_loss`` (NaN after a run that diverged).

    Raises:
        ValueError: a network outside :data:`TRAINED`.

    Example:
        >>> from hessinit.data import Dataset
        >>> rng = np.random.default_rng(0)
        >>> data = Dataset(rng.random((16, 6, 6), np.float32), rng.integers(0, 3, 16), "tiny",
        ...                3, (6, 6), "random")
        >>> out = sgd_outcomes(data, data, ["cnn relu"], ["he"], [0], [0.1, 1e20], steps=5,
        ...                    batch_size=4, num_classes=3, channels=(2, 2))
        >>> out[["schedule", "step"]].values.tolist()
        [['lr=0.1', 0], ['lr=0.1', 5], ['lr=1e+20', 0], ['lr=1e+20', 5]]
        >>> bool(out.eval_loss[0] == out.eval_loss[2]), bool(np.isnan(out.eval_loss[3]))  # diverged
        (True, True)
    """
    _check_networks(networks)
    x_all, y_all = images(train)
    x_test, y_test = images(held_out)
    rows = []
    for network in networks:
        start = convnets.build(network, "he", 0, input_shape=x_all.shape[1:], **kwargs)
        weights, rates, batches, keys = [], [], [], []
        for seed in seeds:
            drawn = np.random.default_rng(seed).integers(0, len(y_all), (steps, batch_size))
            for scheme in _schemes(start, inits, seed):
                initial = start.get_weights()
                label = init.scheme_label(scheme)
                for lr in lrs[network, label] if isinstance(lrs, dict) else lrs:
                    weights.append(initial)
                    rates.append(float(lr))
                    batches.append(drawn)
                    keys.append((label, seed, float(lr)))
        out = fit_runs(start, weights, rates, np.stack(batches), x_all, y_all, x_test, y_test)
        for (label, seed, lr), before, after in zip(keys, out["before"], out["after"],
                                                    strict=True):  # fmt: skip
            base = {"network": network, "init": label, "seed": seed,
                    "schedule": f"lr={lr:g}", "lr": lr}  # fmt: skip
            rows.append({**base, "step": 0, "eval_loss": float(before)})
            final = float(after) if math.isfinite(after) else math.nan
            rows.append({**base, "step": steps, "eval_loss": final})
    return pd.DataFrame(rows)


def trainability(measures: pd.DataFrame, grid: pd.DataFrame, lr: float, lrs,
                 choice: pd.DataFrame | None = None) -> pd.DataFrame:  # fmt: skip
    """Per (network, init, seed): the measures at init next to the outcomes of training.

    Per network, the outcomes of :func:`hessinit.study.analysis.outcomes`: ``loss_fixed`` at
    the step ``lr`` and ``loss_tuned`` at the initialization's best step of ``lrs`` (lowest
    mean final loss over seeds; a diverged run counts +inf), or, with ``choice``, at the step
    :func:`select_lrs` chose for the (network, init) on other seeds. A diverged run is a
    failure to train, so for the ranks its loss is set above every finite one (the largest
    finite final loss of the network plus 1) instead of being dropped; ``diverged`` says which
    runs at ``lr`` diverged.

    Args:
        measures: rows of :func:`init_measures`.
        grid: rows of :func:`sgd_outcomes`.
        lr: the fixed step.
        lrs: the steps the tuned one is chosen from (unused with ``choice``).
        choice: rows of :func:`select_lrs` (``network, init, tuned_lr``), or None.

    Returns:
        ``measures`` with ``loss_fixed, loss_tuned, tuned_lr, diverged``.

    Example:
        >>> grid = pd.DataFrame({"network": "n", "init": "a", "seed": [0, 0, 0, 0],
        ...                      "schedule": ["lr=0.1"] * 2 + ["lr=1"] * 2,
        ...                      "lr": [0.1, 0.1, 1.0, 1.0], "step": [0, 9, 0, 9],
        ...                      "eval_loss": [2.3, 0.7, 2.3, float("nan")]})
        >>> measures = pd.DataFrame({"network": ["n"], "init": ["a"], "seed": [0]})
        >>> out = trainability(measures, grid, 1.0, [0.1, 1.0])
        >>> out[["loss_fixed", "loss_tuned", "tuned_lr", "diverged"]].values.tolist()
        [[1.7, 0.7, 0.1, True]]
    """
    parts = []
    names = [f"lr={v:g}" for v in lrs]
    for network, part in grid.groupby("network", sort=False):
        final = analysis.final_eval(part.drop(columns="network"))
        worst = final["final_loss"].max()
        ceiling = (worst if math.isfinite(worst) else 0.0) + 1.0
        if choice is None:
            out = analysis.outcomes(final, f"lr={lr:g}", names)
        else:
            out = _chosen_outcomes(final, lr, choice[choice["network"] == network])
        out["diverged"] = ~np.isfinite(out["loss_fixed"])
        out[["loss_fixed", "loss_tuned"]] = out[["loss_fixed", "loss_tuned"]].fillna(ceiling)
        parts.append(out.assign(network=network))
    return measures.merge(pd.concat(parts, ignore_index=True), on=["network", "init", "seed"])


def _chosen_outcomes(final, lr, choice):
    """Per (init, seed): the final loss at ``lr`` and at the init's chosen ``tuned_lr``."""
    tuned = dict(zip(choice["init"], choice["tuned_lr"], strict=True))
    rows = []
    for (label, seed), part in final.groupby(["init", "seed"], sort=False):
        at = dict(zip(part["lr"].astype(float), part["final_loss"], strict=True))
        rows.append({"init": label, "seed": seed, "loss_fixed": at[float(lr)],
                     "loss_tuned": at[float(tuned[label])],
                     "tuned_lr": float(tuned[label])})  # fmt: skip
    return pd.DataFrame(rows)


def select_lrs(selection: pd.DataFrame) -> pd.DataFrame:
    """Per (network, init): the step of the grid with the lowest mean held-out loss, interior?

    On rows of :func:`sgd_outcomes` for selection seeds (disjoint from the seeds the outcomes
    are judged on), the tuned step of each (network, initialization) and whether it lies
    strictly inside the grid (:func:`hessinit.study.analysis.tuned_lr_interior`; a diverged
    run counts as the worst).

    Args:
        selection: rows of :func:`sgd_outcomes`.

    Returns:
        One row per (network, init): ``network, init, tuned_lr, lr_min, lr_max, n_lrs,
        interior, edge, reached``.

    Example:
        >>> sel = pd.DataFrame({"network": "n", "init": "a", "seed": 9, "schedule": "",
        ...                     "lr": [0.03, 0.03, 0.1, 0.1, 0.3, 0.3], "step": [0, 5] * 3,
        ...                     "eval_loss": [2.3, 0.9, 2.3, 0.5, 2.3, float("nan")]})
        >>> select_lrs(sel)[["init", "tuned_lr", "interior"]].values.tolist()
        [['a', 0.1, True]]
    """
    final = selection[selection["step"] == selection["step"].max()]
    return analysis.tuned_lr_interior(final, setting=["network", "init"], lr="lr",
                                      score="eval_loss")  # fmt: skip


def evaluation_lrs(choice: pd.DataFrame, lr: float) -> dict:
    """Per (network, init): the steps the judged seeds train at, the fixed one and the chosen.

    Args:
        choice: rows of :func:`select_lrs`.
        lr: the fixed step.

    Returns:
        ``{(network, init): [steps]}`` for :func:`sgd_outcomes`' ``lrs``.

    Example:
        >>> choice = pd.DataFrame({"network": "n", "init": ["a", "b"], "tuned_lr": [0.1, 0.01]})
        >>> evaluation_lrs(choice, 0.01)
        {('n', 'a'): [0.01, 0.1], ('n', 'b'): [0.01]}
    """
    return {(n, i): sorted({float(lr), float(t)})
            for n, i, t in zip(choice["network"], choice["init"], choice["tuned_lr"],
                               strict=True)}  # fmt: skip


def rank_table(table: pd.DataFrame, predictors, baselines, outcomes, n_boot: int = 2000):
    """Spearman's rho of every predictor with every outcome per network, with its interval.

    :func:`hessinit.study.analysis.rank_correlations` (per-seed rho, Student t interval over
    seeds) on each network's rows.

    Args:
        table: rows of :func:`trainability`.
        predictors: the Hessian predictors (``kind`` ``"hessian"``).
        baselines: the trivial predictors (``kind`` ``"baseline"``).
        outcomes: the outcome columns.
        n_boot: unused (kept for callers of the former bootstrap).

    Returns:
        One row per (network, predictor, outcome): ``network, predictor, outcome, kind, rho,
        low, high, n, rows``.

    Example:
        >>> table = pd.DataFrame({"network": "n", "seed": [0, 0, 0, 1, 1, 1],
        ...                       "h": [1, 2, 3] * 2, "b": [3, 1, 2] * 2, "y": [1, 2, 3] * 2})
        >>> out = rank_table(table, ["h"], ["b"], ["y"], n_boot=50)
        >>> out[["predictor", "kind"]].values.tolist(), out["rho"].round(6).tolist()
        ([['h', 'hessian'], ['b', 'baseline']], [1.0, -0.5])
    """
    parts = []
    for network, part in table.groupby("network", sort=False):
        corr = analysis.rank_correlations(part, [*predictors, *baselines], outcomes,
                                          n_boot=n_boot)  # fmt: skip
        corr.insert(0, "network", network)
        corr.insert(3, "kind", ["hessian" if p in predictors else "baseline"
                                for p in corr["predictor"]])  # fmt: skip
        parts.append(corr)
    return pd.concat(parts, ignore_index=True)


#: The Hessian predictors :func:`init_measures` returns.
HESSIAN_PREDICTORS = ("H_first", "H_sum", "H_max", "H_dev")


#: The trivial predictors :func:`init_measures` returns.
BASELINES = ("loss0", "grad_norm0")


def rank_gaps(table: pd.DataFrame, corr: pd.DataFrame, n_boot: int = 2000) -> pd.DataFrame:
    """Per (network, outcome): the best Hessian predictor against the best trivial one.

    The best Hessian predictor has the highest lower end of abs(rho)'s interval
    (:func:`hessinit.study.claims.abs_interval`; choosing it after seeing the data favours the
    claim), the best baseline the largest abs(rho); the gap abs(rho_Hessian) - abs(rho_baseline)
    has a paired t interval over seeds (:func:`hessinit.study.analysis.rank_gap`).

    Args:
        table: rows of :func:`trainability`.
        corr: rows of :func:`rank_table`.
        n_boot: unused (kept for callers of the former bootstrap).

    Returns:
        One row per (network, outcome): ``network, outcome, hessian, baseline, rho_hessian,
        rho_low, rho_high`` (abs(rho) of the Hessian predictor and its interval), ``gap, low,
        high``.

    Example:
        >>> table = pd.DataFrame({"network": "n", "seed": [0, 0, 0, 1, 1, 1],
        ...                       "h": [1, 2, 3] * 2, "b": [3, 1, 2] * 2, "y": [1, 2, 3] * 2})
        >>> corr = rank_table(table, ["h"], ["b"], ["y"], n_boot=50)
        >>> gaps = rank_gaps(table, corr, n_boot=50)
        >>> gaps[["hessian", "baseline"]].values.tolist(), round(float(gaps["gap"][0]), 6)
        ([['h', 'b']], 0.5)
    """
    rows = []
    for (network, outcome), part in corr.groupby(["network", "outcome"], sort=False):
        hess = part[part["kind"] == "hessian"]
        ends = [claims.abs_interval(lo, hi) for lo, hi in zip(hess["low"], hess["high"],
                                                             strict=True)]  # fmt: skip
        top = int(np.argmax([lo for lo, _ in ends]))
        base = part[part["kind"] == "baseline"]
        best = base.loc[base["rho"].abs().idxmax()]
        mine = table[table["network"] == network].reset_index(drop=True)
        gap, low, high = analysis.rank_gap(mine, hess["predictor"].iloc[top], best["predictor"],
                                           outcome, n_boot=n_boot)  # fmt: skip
        rows.append({"network": network, "outcome": outcome,
                     "hessian": hess["predictor"].iloc[top], "baseline": best["predictor"],
                     "rho_hessian": abs(hess["rho"].iloc[top]), "rho_low": ends[top][0],
                     "rho_high": ends[top][1], "gap": gap, "low": low,
                     "high": high})  # fmt: skip
    return pd.DataFrame(rows)


def track(data, networks, scheme, seeds, *, probes=4, fallback="hutchpp",
          **kwargs) -> pd.DataFrame:  # fmt: skip
    """Per-kernel H, G, R (and lambda_max) of each network through SGD, by :func:`hessinit.train.run`.

    For each network and seed, the network of :func:`hessinit.study.convnets.build` under
    ``scheme`` (kernels' seed ``seed``; one model object per network takes each seed's initial
    weights) is trained by :func:`hessinit.train.run` with ``model=``, which draws its Hessian batch and fresh mini-batches from
    ``np.random.default_rng(seed)``; each kernel's norms are exact where the logits are
    piecewise linear in it (R = 0 by structure), else the ``fallback`` estimate (``probes``
    Hutchinson probes, deflated by default).

    Args:
        data: the training record.
        networks: names of :data:`TRAINED`.
        scheme: the initialization (a name or a number c).
        seeds: the seeds.
        probes: Hutchinson probes per estimated tensor and checkpoint.
        fallback: the estimate where R is not 0 by structure (as in :func:`init_measures`).
        **kwargs: passed to :func:`hessinit.train.run` (``steps``, ``lr``, ``batch_size``,
            ``hessian_every``, ``hessian_batch``, ``spectra``), except ``build``: a dict for
            :func:`hessinit.study.convnets.build` (e.g. ``{"channels": (4, 8)}``).

    Returns:
        The frames of :func:`hessinit.train.run`, stacked, with ``network`` first, ``init``
        and ``exact`` (the tensor's norms are exact) added; ``attrs["diverged"]`` lists the
        (network, seed) runs that diverged.

    Raises:
        ValueError: a network outside :data:`TRAINED`.

    Example:
        >>> from hessinit.data import Dataset
        >>> rng = np.random.default_rng(0)
        >>> data = Dataset(rng.random((16, 6, 6), np.float32), rng.integers(0, 3, 16), "tiny",
        ...                3, (6, 6), "random")
        >>> out = track(data, ["cnn tanh"], "he", [0], steps=2, hessian_every=2, batch_size=4,
        ...             hessian_batch=8, build={"num_classes": 3, "channels": (2, 2)})
        >>> out.dropna(subset=["H"])[["step", "layer", "exact"]].values.tolist()
        [[0, 'conv1', False], [0, 'conv2', False], [0, 'dense', True], [2, 'conv1', False], [2, 'conv2', False], [2, 'dense', True]]
    """  # noqa: E501
    _check_networks(networks)
    build = dict(kwargs.pop("build", {}))
    x = images(data)[0]
    frames, diverged = [], []
    for network in networks:
        model = convnets.build(network, scheme, seeds[0], input_shape=x.shape[1:], **build)
        exact = {layer.name: logits_linear_in(model, layer.kernel)
                 for layer in kernel_layers(model)}  # fmt: skip
        for seed in seeds:
            # one model object per network, so train.run's compiled products are traced once
            fresh = convnets.build(network, scheme, seed, input_shape=x.shape[1:], **build)
            model.set_weights(fresh.get_weights())
            options = {"max_products": 0, "fallback": fallback, "probes": probes, "seed": seed}
            frame = run(data, math.nan, model=model, seed=seed, tensor_options=options,
                        progress=False, **kwargs)  # fmt: skip
            if frame.attrs["diverged_at"] is not None:
                diverged.append((network, seed))
            frame.insert(0, "network", network)
            frame.insert(1, "init", init.scheme_label(scheme))
            frame["exact"] = frame["layer"].map(exact)
            frames.append(frame.drop(columns=["sd", "dataset"]))
    out = pd.concat(frames, ignore_index=True)
    out.attrs["diverged"] = diverged
    return out


def dominance_course(frame: pd.DataFrame) -> pd.DataFrame:
    """Per network and checkpoint: the worst kernel's ||R|| / ||H||, mean over seeds, interval.

    At each checkpoint of each seed the worst kernel is the one with the largest ||R||_F /
    ||H||_F; its ratio is averaged over the seeds (:func:`hessinit.study.stats.mean_interval`,
    Student t; a Hutchinson estimate's probe noise is part of the spread).

    Args:
        frame: rows of :func:`track`.

    Returns:
        One row per (network, step) checkpoint: ``network, step, R_over_H, low, high,
        G_over_H, loss`` (the Hessian-batch loss, mean over seeds), ``seeds``, ``exact``
        (every tensor's norms exact).

    Example:
        >>> frame = pd.DataFrame({"network": "n", "seed": [0, 0, 1, 1], "step": 0,
        ...                       "layer": ["a", "b"] * 2, "H": 1.0, "G": 0.9,
        ...                       "R": [0.1, 0.3, 0.5, 0.2], "hessian_loss": 2.0,
        ...                       "exact": False})
        >>> row = dominance_course(frame).iloc[0]
        >>> float(row["R_over_H"]), int(row["seeds"]), bool(row["exact"])
        (0.4, 2, False)
    """
    cp = frame.dropna(subset=["H"]).assign(R_over_H=lambda f: f["R"] / f["H"],
                                           G_over_H=lambda f: f["G"] / f["H"])  # fmt: skip
    rows = []
    for (network, step), part in cp.groupby(["network", "step"], sort=False):
        good = part.dropna(subset=["R_over_H"])
        worst = good.loc[good.groupby("seed")["R_over_H"].idxmax()]
        r = stats.mean_interval(worst["R_over_H"]) if len(worst) > 1 else None
        value = float(worst["R_over_H"].mean())
        rows.append({"network": network, "step": int(step), "R_over_H": value,
                     "low": r.low if r else math.nan, "high": r.high if r else math.nan,
                     "G_over_H": float(worst["G_over_H"].mean()),
                     "loss": float(part.drop_duplicates("seed")["hessian_loss"].mean()),
                     "seeds": len(worst), "exact": bool(part["exact"].all())})  # fmt: skip
    return pd.DataFrame(rows)


def plot_cnn_tracking(frame: pd.DataFrame, threshold: float = 0.1):
    """Per kernel tensor, ||H||_F and ||G||_F (top) and ||R||/||H|| (bottom) through training.

    One column per network; one colour per kernel tensor, the mean over seeds at each
    checkpoint; the dotted line in the bottom row is the threshold of the dominance rule.

    Args:
        frame: rows of :func:`hessinit.chapters.cnn_training.track` (NaN rows off the
            checkpoints are skipped).
        threshold: the R/H threshold.

    Returns:
        The figure.
    """
    cp = frame.dropna(subset=["H"]).assign(R_over_H=lambda f: f["R"] / f["H"])
    with style():
        nets = list(dict.fromkeys(cp["network"]))
        fig, axes = plt.subplots(2, len(nets), figsize=(2.3 * len(nets) + 0.8, 5.0),
                                 sharex=True, squeeze=False, layout="constrained")  # fmt: skip
        for k, net in enumerate(nets):
            part = cp[cp["network"] == net]
            tensors = list(dict.fromkeys(part["layer"]))
            top, bottom = axes[0, k], axes[1, k]
            for name in tensors:
                mean = part[part["layer"] == name].groupby("step")[["H", "G", "R_over_H"]].mean()
                color = layer_color(tensors, name)
                top.plot(mean.index, mean["H"], lw=1.4, color=color, label=f"{name} ‖H‖")
                top.plot(mean.index, mean["G"], lw=1.0, ls="--", color=color)
                bottom.plot(mean.index, mean["R_over_H"], "o-", ms=3, lw=1.2, color=color,
                            label=name)  # fmt: skip
            bottom.axhline(threshold, color="grey", ls=":", lw=1)
            top.set_yscale("log")
            top.set_title(net, fontsize=9)
            bottom.set_xlabel("SGD step")
            bottom.legend(frameon=False, fontsize=7)
        axes[0, 0].set_ylabel("‖H‖_F (solid), ‖G‖_F (dashed)")
        axes[1, 0].set_ylabel("‖R‖_F / ‖H‖_F")
    return fig


def stability(frame: pd.DataFrame, lr: float) -> pd.DataFrame:
    """The network's lambda_max at the first and last checkpoint against the bound 2 / lr.

    Gradient descent with step lr on a quadratic with Hessian H is stable iff
    lr < 2 / lambda_max(H); ``lr_over_bound`` = lr lambda_max / 2 (above 1: unstable on the
    quadratic model).

    Args:
        frame: rows of :func:`track` with ``spectra=True``.
        lr: the step trained with.

    Returns:
        One row per (network, checkpoint) for the first and the last: ``network, step,
        lambda_max`` (mean over seeds of the network's), ``lambda_low``, ``lambda_high`` (min
        and max over seeds), ``lr_over_bound``, ``loss`` (Hessian-batch loss, mean), ``seeds``.

    Example:
        >>> frame = pd.DataFrame({"network": "n", "seed": [0, 1, 0, 1], "step": [0, 0, 5, 5],
        ...                       "H": 1.0, "lambda_max_network": [10.0, 30.0, 40.0, 40.0],
        ...                       "hessian_loss": [2.3, 2.3, 1.0, 1.2]})
        >>> stability(frame, 0.1)[["step", "lambda_max", "lr_over_bound"]].values.tolist()
        [[0.0, 20.0, 1.0], [5.0, 40.0, 2.0]]
    """
    cp = frame.dropna(subset=["H"]).drop_duplicates(["network", "seed", "step"])
    rows = []
    for network, part in cp.groupby("network", sort=False):
        for step in (part["step"].min(), part["step"].max()):
            at = part[part["step"] == step]
            lam = at["lambda_max_network"]
            rows.append({"network": network, "step": int(step), "lambda_max": lam.mean(),
                         "lambda_low": lam.min(), "lambda_high": lam.max(),
                         "lr_over_bound": lr * lam.mean() / 2,
                         "loss": at["hessian_loss"].mean(), "seeds": len(at)})  # fmt: skip
    return pd.DataFrame(rows)


def trainability_rows(gaps: pd.DataFrame, *, threshold: float, seeds: int, setting: str,
                      choice: pd.DataFrame | None = None,
                      page: str = "cnn_training") -> pd.DataFrame:  # fmt: skip
    """Claim 5.5: the Hessian norm at initialization is a useful diagnostic of CNN training.

    The diagnostic chapter's formalization (claims 4.1 and 4.2) in one rule per (network,
    outcome): the best Hessian predictor's abs(rho) interval lies above ``threshold`` AND the
    paired interval of its gap over the best trivial predictor lies above 0 (met: both do; not
    met: either lies wholly on the wrong side; else inconclusive,
    :func:`hessinit.study.claims.compare_interval`). The settings combine by
    :func:`hessinit.study.claims.verdict`. The value is the abs(rho) of the setting with the
    highest lower end, with its interval. With ``choice``, the tuned outcome of a network where
    some initialization's chosen step lies at the edge of its grid is not tested
    (:class:`hessinit.study.claims.NotReached`, "lr grid edge"): its baseline may be untuned.

    Args:
        gaps: rows of :func:`rank_gaps`.
        threshold: the abs(rho) that counts as a useful ranking.
        seeds: the number of seeds behind the correlations.
        setting: the networks, initializations and training.
        choice: rows of :func:`select_lrs`, or None (no check of the grid's edge).
        page: the chapter.

    Returns:
        The claims row (:func:`hessinit.study.claims.claims_table`).

    Example:
        >>> gaps = pd.DataFrame({"network": ["a", "b"], "outcome": "y", "hessian": "H_sum",
        ...                      "baseline": "loss0", "rho_hessian": [0.9, 0.8],
        ...                      "rho_low": [0.7, 0.6], "rho_high": [1.0, 0.9],
        ...                      "gap": [0.3, -0.1], "low": [0.1, -0.3], "high": [0.5, 0.1]})
        >>> trainability_rows(gaps, threshold=0.5, seeds=3, setting="")["verdict"][0]
        'holds only when a, y; inconclusive for b, y'
    """
    flags = []
    for lo, hi, g_lo, g_hi in zip(gaps["rho_low"], gaps["rho_high"], gaps["low"], gaps["high"],
                                  strict=True):  # fmt: skip
        ranks = claims.compare_interval(lo, hi, ">", threshold)
        beats = claims.compare_interval(g_lo, g_hi, ">", 0)
        flags.append(False if False in (ranks, beats) else None if None in (ranks, beats)
                     else True)  # fmt: skip
    for k, (network, outcome) in enumerate(zip(gaps["network"], gaps["outcome"], strict=True)):
        edge = (
            []
            if choice is None or outcome != "loss_tuned"
            else list(
                choice.loc[
                    (choice["network"] == network) & ~choice["interior"].astype(bool), "init"
                ]
            )
        )
        if edge:
            flags[k] = claims.NotReached(f"lr grid edge: the tuned lr of {', '.join(edge)} is "
                                         "at the grid's edge")  # fmt: skip
    where = [f"{n}, {o}" for n, o in zip(gaps["network"], gaps["outcome"], strict=True)]
    top = gaps.loc[gaps["rho_low"].idxmax()]
    return claims.claims_table([ledger_row(
        "5.5",
        setting=f"{setting}; best: {top['hessian']} for {top['outcome']} ({top['network']}), "
                f"gap over {top['baseline']} {top['gap']:.2f} [{top['low']:.2f}, "
                f"{top['high']:.2f}]",
        value=top["rho_hessian"],
        low=top["rho_low"],
        high=top["rho_high"],
        seeds=seeds,
        rule=f"per network and outcome: 95% interval of |rho| above {threshold:g} and the "
             "paired interval of |rho| minus the best trivial predictor's (initial loss or "
             "gradient norm) above 0 (per-seed rho, Student t interval over seeds)",
        verdict=claims.verdict(flags, where),
        page=page,
    )])  # fmt: skip


def tracking_rows(
    course: pd.DataFrame,
    *,
    op: str = "<",
    threshold: float,
    setting: str,
    page: str = "cnn_training",
) -> pd.DataFrame:
    """Claim 5.6: the linearization term keeps dominating each kernel's block through training.

    Per network, the rule of claims 5.1 and 1.4 at every checkpoint: the 95% interval over
    seeds of the worst kernel's R/H meets ``op threshold`` (exact values, R = 0 by structure,
    judged as they are). A network meets it when every checkpoint does, fails when some
    checkpoint fails, and is inconclusive otherwise; the networks combine by
    :func:`hessinit.study.claims.verdict`. The value is the largest mean over checkpoints and
    networks, with its interval.

    Args:
        course: rows of :func:`dominance_course`.
        op: the comparison.
        threshold: the R/H threshold.
        setting: the training.
        page: the chapter.

    Returns:
        The claims row (:func:`hessinit.study.claims.claims_table`).

    Example:
        >>> course = pd.DataFrame({"network": ["relu"] * 2 + ["tanh"] * 2, "step": [0, 9] * 2,
        ...                        "R_over_H": [0.0, 0.0, 0.05, 0.3],
        ...                        "low": [np.nan, np.nan, 0.03, 0.2],
        ...                        "high": [np.nan, np.nan, 0.07, 0.4], "G_over_H": 1.0,
        ...                        "seeds": 3, "exact": [True, True, False, False]})
        >>> tracking_rows(course, threshold=0.1, setting="")[["value", "verdict"]].values.tolist()
        [[0.3, 'holds only when relu']]
    """
    flags, names = [], []
    for network, part in course.groupby("network", sort=False):
        marks = [claims.compare(v, op, threshold) if exact
                 else claims.compare_interval(lo, hi, op, threshold)
                 if math.isfinite(lo) else None
                 for v, lo, hi, exact in zip(part["R_over_H"], part["low"], part["high"],
                                             part["exact"], strict=True)]  # fmt: skip
        marks = [None if m is None else bool(m) for m in marks]
        flags.append(False if False in marks else None if None in marks else True)
        names.append(network)
    top = course.loc[course["R_over_H"].idxmax()]
    low, high = (math.nan, math.nan) if top["exact"] else (top["low"], top["high"])
    zero = course["exact"].astype(bool) & (course["R_over_H"] == 0)
    structural = list(dict.fromkeys(course.loc[zero, "network"]))
    where = setting + ("; R = 0 by structure (piecewise linear): " + ", ".join(structural)
                       if structural else "")  # fmt: skip
    return claims.claims_table([ledger_row(
        "5.6",
        setting=where,
        detail=f"largest mean over checkpoints: {top['network']}, step {int(top['step'])}; "
               f"G/H there {top['G_over_H']:.3g}",
        structural=len(structural) == course["network"].nunique(),
        value=top["R_over_H"],
        low=low,
        high=high,
        seeds=int(course["seeds"].min()),
        rule=f"per network, at every checkpoint of the training the 95% interval over seeds "
             f"of the worst kernel's R/H {'below' if op == '<' else op} {threshold:g} (exact "
             "values judged as they are)",
        verdict=claims.verdict(flags, names),
        page=page,
    )])  # fmt: skip
