"""Time per run-step of R stacked runs (hessinit.train.stacked) against today's single-run step.

The paper's MLP (784-30-30-10, ReLU) at batch 32 on mnist-5k. For R in (1, 6, 18, 60, 180)
it times :func:`hessinit.train.stacked.sgd_steps` (R weight sets stacked, one compiled step for
all, CHUNK steps per call; compiled by XLA, ``stacked_xla``, and as a TensorFlow graph,
``stacked_graph``; ``sgd_steps`` picks XLA up to XLA_MAX_RUNS runs) and, in the same process,
the step :func:`hessinit.train.run` takes today (``train._sgd_step`` on a Keras model, one
mini-batch drawn and copied per step, as ``run`` does). Each figure is the fastest of
``--repeats`` timed blocks after a warm-up call.

The FLOP floor of one run-step: forward 2 b sum_k n_{k-1} n_k, the kernels' gradients as much
again, the inputs' gradients 2 b sum_{k >= 2} n_{k-1} n_k (the images need none) and the update
2 x (number of weights): 3.29 MFLOP for this network at b = 32. The floor time is that over the
float32 matmul rate this machine achieves on a 1024^3 product, measured in the same run.

``gather_only`` times what the floor leaves out: picking each run's own mini-batch of images
(R x 32 rows of the 5,000) in a compiled loop, with no arithmetic on them; its
``flop_floor_ratio`` is the fraction of the floor that this memory traffic alone costs.

Writes ``benchmarks/results/stacked_training.csv`` with columns
``method, R, seconds_per_run_step, speedup_vs_single, flop_floor_ratio, gflops, load``.

Usage: ``python benchmarks/stacked_training.py [--steps 256] [--repeats 3] [--runs 1 6 18]``
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HESSINIT_OFFLINE", "1")
RESULTS = Path(__file__).resolve().parent / "results" / "stacked_training.csv"


def flops_per_step(fans, batch):
    """FLOPs of one SGD step of a dense stack (see the module docstring)."""
    products = [a * b for a, b in zip(fans[:-1], fans[1:], strict=True)]
    params = sum(products) + sum(fans[1:])
    return 2 * batch * sum(products) * 2 + 2 * batch * sum(products[1:]) + 2 * params


def fastest(call, repeats):
    """Seconds of the fastest of ``repeats`` calls of ``call()`` (warm it up first)."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_rate(tf, repeats):
    """Achieved float32 GFLOP/s of a 1024^3 matmul (the fastest of ``repeats`` blocks)."""
    a = tf.random.normal((1024, 1024))
    f = tf.function(lambda a: tf.matmul(a, a))
    f(a).numpy()

    def block():
        for _ in range(10):
            out = f(a)
        out.numpy()

    return 2 * 1024**3 / (fastest(block, repeats) / 10) / 1e9


def gather_time(tf, x, idx, repeats):
    """Seconds per run-step of gathering each run's batch rows ``idx`` (steps, R, b) of ``x``."""

    @tf.function
    def gather_all(x, idx):
        def body(s, acc):  # read one value of each gathered batch so the gather is not pruned
            return s + 1, acc + tf.reduce_sum(tf.gather(x, idx[s])[:, :, 0])

        return tf.while_loop(lambda s, _: s < idx.shape[0], body, (0, 0.0))[1]

    gather_all(x, idx).numpy()
    return fastest(lambda: gather_all(x, idx).numpy(), repeats) / (idx.shape[0] * idx.shape[1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=256, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks per figure")
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 6, 18, 60, 180])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import tensorflow as tf

    from hessinit import train
    from hessinit.data import load
    from hessinit.nn import mlp
    from hessinit.train import stacked

    data = load("mnist-5k")
    x_all = data.x.reshape(len(data.y), -1).astype(np.float32)
    y_all = data.y.astype(np.int32)
    n, batch = len(y_all), 32
    fans = (784, 30, 30, 10)
    flops = flops_per_step(fans, batch)
    rows = []
    rate = matmul_rate(tf, args.repeats)
    floor = flops / (rate * 1e9)
    print(f"FLOPs per run-step {flops / 1e6:.2f} M; matmul {rate:.1f} GFLOP/s; "
          f"floor {floor * 1e6:.1f} us per run-step; load {os.getloadavg()[0]:.2f}")  # fmt: skip

    # today's step: train._sgd_step on a Keras model, one fresh batch per step as train.run
    model = mlp((28, 28), 10, sd=0.01, seed=0)
    rng = np.random.default_rng(0)
    xs = data.x.astype(np.float32)

    def single(steps):
        for _ in range(steps):
            idx = rng.integers(0, n, size=batch)
            loss = train._sgd_step(model, tf.constant(xs[idx]), tf.constant(y_all[idx]),
                                   tf.constant(0.01, tf.float32))  # fmt: skip
            float(loss)  # train.run reads every step's loss

    single(10)
    single_time = fastest(lambda: single(args.steps), args.repeats) / args.steps
    rows.append(("train_run_step", 1, single_time, 1.0, single_time / floor, rate))
    ratio = single_time / floor
    print(f"train.run step:   {single_time * 1e3:.3f} ms per run-step, {ratio:.1f}x floor")

    x_t, y_t = tf.constant(x_all), tf.constant(y_all)
    acts = ("relu", "relu", "linear")
    for R in args.runs:
        per_run = [stacked.initial_weights(fans, (0.01, None, None), s) for s in range(R)]
        weights = stacked.stack_weights(per_run)
        lr = np.full(R, 0.01, np.float32)
        idx = rng.integers(0, n, size=(args.steps, R, batch))
        for jit, method in ((True, "stacked_xla"), (False, "stacked_graph")):
            w, _ = stacked.sgd_steps(weights, x_t, y_t, idx[: stacked.CHUNK], lr, acts, jit=jit)
            best = np.inf
            for _ in range(args.repeats):  # each block trains on from the last one's weights
                start = time.perf_counter()
                w, losses = stacked.sgd_steps(w, x_t, y_t, idx, lr, acts, jit=jit)
                best = min(best, (time.perf_counter() - start) / (args.steps * R))
            assert np.isfinite(losses).all()
            rows.append((method, R, best, single_time / best, best / floor, rate))
            print(f"{method:13s} R = {R:3d}: {best * 1e3:.4f} ms per run-step, "
                  f"{single_time / best:.1f}x cheaper than train.run's step, "
                  f"{best / floor:.2f}x floor")  # fmt: skip
        best = gather_time(tf, x_t, tf.constant(idx), args.repeats)
        rows.append(("gather_only", R, best, "", best / floor, rate))
        print(f"gather_only   R = {R:3d}: {best * 1e3:.4f} ms per run-step, "
              f"{best / floor:.2f} of the floor")  # fmt: skip
    load = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["method", "R", "seconds_per_run_step", "speedup_vs_single",
                      "flop_floor_ratio", "gflops", "load"])  # fmt: skip
        for method, R, sec, speed, ratio, gf in rows:
            speed = speed if speed == "" else f"{speed:.2f}"
            out.writerow([method, R, f"{sec:.3e}", speed, f"{ratio:.2f}", f"{gf:.1f}",
                          f"{load:.2f}"])  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
