"""Benchmark: per-tensor Hessian norms of convolutional networks at B = 1,024 (mnist-5k shapes).

For every weight tensor of the small CNN, the small ResNet without BatchNorm and the small ResNet
with BatchNorm (:mod:`hessinit.nn.convnets`, float32, at init), on the first 1,024 images of
mnist-5k (28x28x1):

- ``exact``: :func:`hessinit.curvature.tensors.tensor_hessian_norms` with ``method="auto"``
  (``kronecker``, ``jacobian``, ``columns-linear`` or ``columns``, whichever the plan picks;
  a column plan whose predicted time, products x the measured seconds of one product, exceeds
  ``--limit`` is reported as skipped with that prediction);
- ``hutchinson``: the same call with ``method="hutchinson"`` and ``--probes`` fixed probes, kernels
  only, with the 95% interval of ||H||_F;
- ``materialized``: ``tape.jacobian`` of the gradient (:func:`hessinit.curvature.full_hessian`),
  only for tensors of at most ``--max-materialize`` entries (default 16: at B = 1,024 the
  72 x 72 Hessian of the small CNN's conv1 kernel held 12.8 GB after 5 minutes on a shared
  2-core machine and was stopped; its pfor copies the batch's activations once per row).

Each model runs in its own spawned process; ``peak_mb`` is that process's peak resident memory
(VmHWM) after the row, so it only grows within a model. ``seconds`` are cold wall seconds
(tracing included), ``load`` the 1-minute load average when the row finished (the machine is
shared: read the times with it).

    python benchmarks/curvature_cnn.py                        # 15-30 minutes on 2 busy cores
    python benchmarks/curvature_cnn.py --models small_resnet  # one model; the others' rows kept

Writes benchmarks/results/curvature_cnn.csv (the rows of models not measured are kept).
"""

from __future__ import annotations

import argparse
import csv
import math
import multiprocessing as mp
import os
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = (
    "model",
    "tensor",
    "size",
    "method",
    "H",
    "G",
    "R",
    "H_low",
    "H_high",
    "rel_diff",
    "seconds",
    "peak_mb",
    "load",
    "status",
    "note",
)
MODELS = ("small_cnn", "small_resnet", "small_resnet_bn")


def _peak_mb():
    """This process's peak resident memory (VmHWM), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return math.nan


def _worker(name, args, queue):
    """Measure every tensor of model ``name``; put one dict per row on ``queue``."""
    import numpy as np
    import tensorflow as tf

    import hessinit.data as data
    from hessinit.curvature import full_hessian
    from hessinit.curvature.tensors import _products, plan_tensor, tensor_hessian_norms
    from hessinit.nn import small_cnn, small_resnet

    build = {
        "small_cnn": lambda: small_cnn(),
        "small_resnet": lambda: small_resnet(batchnorm=False),
        "small_resnet_bn": lambda: small_resnet(batchnorm=True),
    }[name]
    model = build()
    ds = data.load("mnist-5k")
    x = ds.x[: args.batch].reshape(-1, 28, 28, 1)
    y = ds.y[: args.batch]
    bn = name.endswith("_bn")

    def row(tensor, size, method, seconds, status="ok", note="", **values):
        out = dict.fromkeys(COLUMNS, "")
        out.update(model=name, tensor=tensor, size=size, method=method, status=status, note=note)
        out.update(seconds=seconds, peak_mb=round(_peak_mb(), 1), load=os.getloadavg()[0])
        out.update(values)
        queue.put(out)

    # seconds of one product (one row, warm), for predicting the column methods
    xt = tf.constant(x)
    yt = tf.constant(np.asarray(y, np.int32))
    V = tf.one_hot([0], int(np.prod(model.trainable_weights[0].shape)), dtype=tf.float32)
    _products(model, xt, yt, 0, V, True)
    start = time.perf_counter()
    _products(model, xt, yt, 0, V, True)
    per_product = (time.perf_counter() - start) / 2  # H v and G v together: two products
    row("(one product)", "", "hvp+gnvp", 2 * per_product, note="warm, one H v and one G v")

    for layer in model.layers:
        for v in layer.trainable_weights:
            tensor = f"{layer.name}/{v.name}"
            plan = plan_tensor(model, v, args.batch)
            size = plan.size
            exact = None
            predicted = plan.products * per_product
            if plan.method.startswith("columns") and predicted > args.limit:
                row(
                    tensor,
                    size,
                    plan.method,
                    "",
                    "skipped",
                    f"predicted {predicted:.0f} s for {plan.products} products > --limit",
                )
            else:
                start = time.perf_counter()
                exact = tensor_hessian_norms(model, v, x, y)
                row(
                    tensor,
                    size,
                    exact.method,
                    time.perf_counter() - start,
                    H=exact.H,
                    G=exact.G,
                    R=exact.R,
                    rel_diff=0.0,
                )
            if v.name == "kernel":
                start = time.perf_counter()
                est = tensor_hessian_norms(
                    model, v, x, y, method="hutchinson", probes=args.probes, seed=0
                )
                e = est.intervals["H"]
                rel = abs(est.H - exact.H) / exact.H if exact is not None and exact.H else ""
                row(
                    tensor,
                    size,
                    "hutchinson",
                    time.perf_counter() - start,
                    note=f"{args.probes} probes",
                    H=est.H,
                    G=est.G,
                    R=est.R,
                    H_low=e.low,
                    H_high=e.high,
                    rel_diff=rel,
                )
            if size <= args.max_materialize:
                start = time.perf_counter()
                H = full_hessian(model, x, y, layer=v, training=bn)
                h = float(np.linalg.norm(H))
                rel = abs(h - exact.H) / exact.H if exact is not None and exact.H else ""
                row(
                    tensor,
                    size,
                    "materialized",
                    time.perf_counter() - start,
                    H=h,
                    rel_diff=rel,
                    note="tape.jacobian of the gradient, float32",
                )
            elif v.name == "kernel":
                row(
                    tensor,
                    size,
                    "materialized",
                    "",
                    "skipped",
                    f"{size} entries > --max-materialize {args.max_materialize}",
                )


def main():
    """Run each model in its own process and write the CSV."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--probes", type=int, default=4)
    parser.add_argument("--limit", type=float, default=300.0, help="seconds per column plan")
    parser.add_argument("--max-materialize", type=int, default=16)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "curvature_cnn.csv"
    tmp = out.with_suffix(".csv.part")
    ctx = mp.get_context("spawn")
    kept = []
    if out.exists():  # the rows of the models not measured now, in their order
        with open(out, newline="") as f:
            kept = [r for r in csv.DictReader(f) if r["model"] not in args.models]
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(kept)
        for name in args.models:
            queue = ctx.Queue()
            proc = ctx.Process(target=_worker, args=(name, args, queue))
            start = time.perf_counter()
            proc.start()
            while proc.is_alive() or not queue.empty():
                try:
                    r = queue.get(timeout=1)
                except Exception:  # noqa: BLE001 (queue.Empty; keep polling)
                    continue
                writer.writerow(r)
                f.flush()
                print(
                    r["model"],
                    r["tensor"],
                    r["method"],
                    r["status"],
                    r["seconds"],
                    r["H"],
                    flush=True,
                )
            proc.join()
            print(f"{name}: {time.perf_counter() - start:.0f} s, exit {proc.exitcode}", flush=True)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
