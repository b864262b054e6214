"""Benchmark: the top-10 eigenvalues of the dense1 Hessian of the paper's MLP at B = 1,024.

The problem is ``hessinit.mlp(sd=sd, seed=0)`` (784-30-30-10, ReLU) on the first 1,024
images of mnist-5k, and the 10 largest eigenvalues of the Hessian of the mean loss restricted to
dense1's kernel (a 23,520 x 23,520 matrix, never formed). Methods, all through
``hessinit.curvature.layer_spectrum`` / ``network_spectrum`` (Lanczos with a residual check):

- ``kronecker``: the default route, H vec(V) = (1/B) sum_i x_i x_i^T V M_i from the float64
  blocks of ``layer_curvature`` (the time includes computing the blocks);
- ``autodiff_float32``: the generic forward-over-backward HVP of the float32 model, restricted
  to dense1;
- ``reference_float64``: the same generic HVP on a float64 copy of the model with ARPACK's
  tolerance at 1e-13: the slower, independent reference the others are compared with;
- ``network_float32``: the whole network's largest eigenvalue (24,790 weights) by the generic
  HVP of the float32 model.

Times are ``time.perf_counter`` wall seconds: ``cold`` is the first call (TensorFlow tracing
included), ``seconds`` the fastest of ``--repeats`` warm calls and ``cpu_seconds`` the CPU
time of that call summed over the process's threads (``time.process_time``: what the call
costs when it has the cores to itself); ``load`` is the machine's 1-minute load average when
the row was measured (wall times on a shared machine grow with it).
``rel_diff`` is max_j abs(lambda_j - lambda_j^ref) / abs(lambda_1^ref) over the k eigenvalues.

    python benchmarks/spectra.py              # sd in {1e-5, 0.01, 1}, about 2 minutes on 2 cores
    python benchmarks/spectra.py --sd 0.01    # one sd

Writes benchmarks/results/spectra.csv with columns :data:`COLUMNS`.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from hessinit.curvature import layer_spectrum, network_spectrum  # noqa: E402
from hessinit.data import load  # noqa: E402
from hessinit.nn import mlp  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = (
    "method", "sd", "B", "k", "lambda_1", "lambda_k", "rel_diff", "max_residual", "converged",
    "matvecs", "seconds", "cpu_seconds", "cold_seconds", "load",
)  # fmt: skip


def _timed(call, repeats):
    """(result, cold seconds, fastest warm (wall, CPU) seconds) of ``call()``."""
    start, cpu = time.perf_counter(), time.process_time()
    result = call()
    cold = (time.perf_counter() - start, time.process_time() - cpu)
    warm = []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        call()
        warm.append((time.perf_counter() - start, time.process_time() - cpu))
    return result, cold[0], min(warm) if warm else cold


def measure(sd, x, y, k, repeats):
    """The rows of one sd: each method's spectrum, time and agreement with the reference."""
    model = mlp(sd=sd, seed=0)
    model64 = mlp(sd=sd, seed=0, dtype="float64")
    model64.set_weights([w.astype(np.float64) for w in model.get_weights()])
    x32, x64 = x.astype(np.float32), x.astype(np.float64)
    runs = {
        "kronecker": (lambda: layer_spectrum(model, "dense1", x32, y, k=k), repeats),
        "autodiff_float32": (
            lambda: layer_spectrum(model, "dense1", x32, y, k=k, method="autodiff"),
            min(repeats, 1),
        ),
        "reference_float64": (
            lambda: layer_spectrum(model64, "dense1", x64, y, k=k, method="autodiff", tol=1e-13),
            0,
        ),
        "network_float32": (lambda: network_spectrum(model, x32, y, k=1), min(repeats, 1)),
    }
    found = {name: _timed(call, n) for name, (call, n) in runs.items()}
    ref = found["reference_float64"][0].eigenvalues
    rows = []
    for name, (s, cold, (warm, cpu)) in found.items():
        layer = name != "network_float32"
        rel = np.max(np.abs(s.eigenvalues - ref[: len(s.eigenvalues)])) / abs(ref[0])
        rows.append({
            "method": name, "sd": sd, "B": len(y), "k": len(s.eigenvalues),
            "lambda_1": s.eigenvalues[0], "lambda_k": s.eigenvalues[-1],
            "rel_diff": float(rel) if layer else float("nan"),
            "max_residual": float(np.max(s.residuals)), "converged": s.converged,
            "matvecs": s.matvecs, "seconds": warm, "cpu_seconds": cpu, "cold_seconds": cold,
            "load": os.getloadavg()[0],
        })  # fmt: skip
    return rows


def main(argv=None):
    """Run the benchmark, print the table and write the CSV."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sd", type=float, nargs="+", default=[1e-5, 0.01, 1.0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    data = load("mnist-5k")
    x, y = np.asarray(data.x[: args.batch]), np.asarray(data.y[: args.batch])
    rows = [row for sd in args.sd for row in measure(sd, x, y, args.k, args.repeats)]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "spectra.csv"
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)  # nothing half-written on failure
    print(f"{'method':<18} {'sd':>7} {'lambda_1':>10} {'rel_diff':>9} {'resid':>8} "
          f"{'mv':>5} {'seconds':>8} {'cpu':>7} {'cold':>7} {'load':>5}")  # fmt: skip
    for r in rows:
        print(f"{r['method']:<18} {r['sd']:>7g} {r['lambda_1']:>10.4g} {r['rel_diff']:>9.2e} "
              f"{r['max_residual']:>8.1e} {r['matvecs']:>5d} {r['seconds']:>8.3f} "
              f"{r['cpu_seconds']:>7.3f} {r['cold_seconds']:>7.2f} {r['load']:>5.1f}")  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
