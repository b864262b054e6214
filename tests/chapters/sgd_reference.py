"""The SGD grid trained run by run: the reference for the stacked grids.

``sgd_grid_alone`` is ``hessinit.study.experiments.sgd_grid`` as it was before it trained every
run in one program: each (init, seed) network is a Keras ``mlp``, each schedule trains it alone
by ``hessinit.stepsize.sgd_steps`` (its own compiled loop, fixed steps or fractions of gamma*
from ``curvature_along_gradient``), each evaluation is ``hessinit.nn.mean_loss`` on the Keras
model. Tests compare the stacked trainers with it.
"""

import numpy as np
import pandas as pd

from hessinit.nn import mean_loss, mlp
from hessinit.stepsize import sgd_steps


def sgd_grid_alone(data, schedules, inits, seeds, *, steps, batch_size=32, eval_every=50,
                   eval_batch=512, held_out=None, widths=(30, 30), pairs=None):  # fmt: skip
    """The rows of ``sgd_grid`` (same arguments), every run trained alone; ``pairs``: the
    (init, seed) pairs to train (default all), in that order."""
    x_all, y_all = np.asarray(data.x, np.float32), np.asarray(data.y, np.int32)
    n, shape = len(y_all), x_all.shape[1:]
    # one model for every run: stepsize.sgd_steps traces once per schedule kind and chunk shape
    model = mlp(shape, data.num_classes, widths, sd=1.0, seed=0)
    rows = []
    for init, seed in [(i, s) for i in inits for s in seeds] if pairs is None else pairs:
        rng = np.random.default_rng(seed)
        if held_out is None:
            idx = rng.choice(n, size=min(eval_batch, n), replace=False)
            x_e, y_e = x_all[idx], y_all[idx]
        else:
            x_e = np.asarray(held_out.x, np.float32)
            y_e = np.asarray(held_out.y, np.int32)
        batches = rng.integers(0, n, size=(steps, batch_size))
        start = mlp(shape, data.num_classes, widths, sd=inits[init], seed=seed)
        weights = start.get_weights()
        for name, lr in schedules.items():
            model.set_weights(weights)
            rate = float(lr) if isinstance(lr, (int, float)) else np.nan
            at = 0
            while True:
                loss = float(mean_loss(model, x_e, y_e))
                if not np.isfinite(loss):
                    at, loss = steps, np.nan
                rows.append({"init": init, "seed": seed, "schedule": name, "lr": rate,
                             "step": at, "eval_loss": loss})  # fmt: skip
                if at >= steps:
                    break
                chunk = batches[at : at + eval_every]
                sgd_steps(model, x_all, y_all, chunk, lr)
                at += len(chunk)
    return pd.DataFrame(rows)
