"""Benchmark: the exact Frobenius norm of the dense1 Hessian by the Kronecker identity against
materializing methods, Hessian tracking through training, and (``--book``) the book build.

Every measurement runs in its own spawned process, so its peak memory (VmHWM, the peak resident
set size from /proc/self/status) is its own. Times are ``time.perf_counter`` wall seconds: for
the Kronecker method the minimum over warm repeats, for the others one cold call (tracing
included). A method whose predicted memory or time (extrapolated linearly in B from the two
largest measured batches) exceeds the limits is reported as skipped with the reason, not run.

    python benchmarks/hessian_norms.py            # everything but the book, < 15 minutes
    python benchmarks/hessian_norms.py --quick    # B in {64, 256} only, about 3 minutes
    python benchmarks/hessian_norms.py --book     # also the book's cold build and rebuild

Writes benchmarks/results/hessian_norms.csv and benchmarks/results/tracking.csv with columns
method, B, value, rel_diff, seconds, peak_mb, status, note.
"""

from __future__ import annotations

import argparse
import csv
import math
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = ("method", "B", "value", "rel_diff", "seconds", "peak_mb", "status", "note")
BATCHES = (64, 256, 1024, 4096)
KRONECKER = ("kronecker", "kronecker_float32")
MATERIALIZING = ("nested_jacobian", "tf_hessians", "chunked_jacobian", "batched_hvp")
HUTCHINSON = ("hutchinson", "hutchinson_deflated")
#: Nested-jacobian figures from science.md (GB at B = 64 and 1,024), used before any measurement.
PRIOR_GB = {"nested_jacobian": {64: 8.3, 1024: 18.9}}


# --------------------------------------------------------------------------------------------
# Worker side (runs in a fresh spawned process)
# --------------------------------------------------------------------------------------------


def _proc_mb(path, key):
    """A ``key: <n> kB`` line of a /proc file, in MB."""
    with open(path) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return math.nan


def _peak_mb():
    return _proc_mb("/proc/self/status", "VmHWM")


def _setup(B):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf

    from hessinit.data import load
    from hessinit.nn import mlp

    data = load("mnist-5k")
    idx = np.random.default_rng(0).choice(len(data.y), size=B, replace=B > len(data.y))
    x, y = tf.constant(data.x[idx]), tf.constant(data.y[idx].astype(np.int32))
    return mlp(sd=0.01, seed=0), x, y


def _dense1_loss(model, x, y):
    from hessinit.nn import mean_loss

    return mean_loss(model, x, y)


def _kernel(model, name="dense1"):
    layer = model.get_layer(name)
    return getattr(layer.kernel, "value", layer.kernel)


def _m_kronecker(model, x, y, repeats=20, precision="float64"):
    from hessinit.curvature import kronecker

    kronecker.layer_hessian_norms(model, "dense1", x, y, precision=precision)  # trace
    traces = kronecker._norm_sums.experimental_get_tracing_count()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = kronecker.layer_hessian_norms(model, "dense1", x, y, precision=precision)
        times.append(time.perf_counter() - t0)
    retraced = kronecker._norm_sums.experimental_get_tracing_count() - traces
    note = f"min of {repeats} warm calls; retraces over them: {retraced}"
    if precision == "float32":
        note += "; the two Gram products in float32"
    return n.H, min(times), note


def _m_nested_jacobian(model, x, y):
    import numpy as np

    from hessinit.curvature import full_hessian

    t0 = time.perf_counter()
    H = full_hessian(model, x, y, layer="dense1", max_entries=10**10)
    value = float(np.linalg.norm(H))
    return value, time.perf_counter() - t0, "GradientTape.jacobian of the gradient (pfor)"


def _m_tf_hessians(model, x, y):
    import tensorflow as tf

    from hessinit.nn import cross_entropy

    (w1, b1), (w2, b2), (w3, b3) = [(d.kernel, d.bias) for d in model.layers[1:]]

    @tf.function
    def norm():
        # the network written out, so that tf.hessians sees dense1's kernel as a graph tensor
        w = tf.identity(w1)
        h = tf.nn.relu(tf.matmul(tf.reshape(x, [x.shape[0], -1]), w) + b1)
        z = tf.matmul(tf.nn.relu(tf.matmul(h, w2) + b2), w3) + b3
        (H,) = tf.hessians(tf.reduce_mean(cross_entropy(y, z)), w)
        return tf.norm(tf.cast(H, tf.float64))

    t0 = time.perf_counter()
    value = float(norm())
    return value, time.perf_counter() - t0, "tf.hessians in tf.function (one backward per weight)"


def _m_chunked_jacobian(model, x, y, rows=784):
    import tensorflow as tf

    kernel = _kernel(model)
    n = int(tf.size(kernel))

    @tf.function
    def chunk_sq(start):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                loss = _dense1_loss(model, x, y)
            g = tf.reshape(inner.gradient(loss, kernel), [-1])[start : start + rows]
        J = outer.jacobian(g, kernel, experimental_use_pfor=True)
        return tf.reduce_sum(tf.square(tf.cast(J, tf.float64)))

    t0 = time.perf_counter()
    total = sum(float(chunk_sq(tf.constant(s))) for s in range(0, n, rows))
    note = f"jacobian of {rows} gradient entries at a time; squared norm accumulated"
    return math.sqrt(total), time.perf_counter() - t0, note


def _hvp_fn(model, x, y):
    import tensorflow as tf

    kernel = _kernel(model)

    def one(v):
        with tf.autodiff.ForwardAccumulator(kernel, v) as acc:
            with tf.GradientTape() as tape:
                loss = _dense1_loss(model, x, y)
            g = tape.gradient(loss, kernel)
        return acc.jvp(g)

    return kernel, one


def _m_batched_hvp(model, x, y, batch=392):
    import tensorflow as tf

    kernel, one = _hvp_fn(model, x, y)
    n_in, n_out = kernel.shape
    n = n_in * n_out

    @tf.function
    def block_sq(start):
        eye = tf.one_hot(tf.range(start, start + batch), n, dtype=kernel.dtype)
        V = tf.reshape(eye, [batch, n_in, n_out])
        Hv = tf.vectorized_map(one, V)
        return tf.reduce_sum(tf.square(tf.cast(Hv, tf.float64)))

    t0 = time.perf_counter()
    total = sum(float(block_sq(tf.constant(s))) for s in range(0, n, batch))
    note = f"all {n} unit vectors, {batch} HVPs at a time (vectorized forward-over-backward)"
    return math.sqrt(total), time.perf_counter() - t0, note


def _m_hutchinson(model, x, y, deflate=0, target=0.05, max_probes=3000, seed=0):
    import numpy as np
    import tensorflow as tf

    kernel, one = _hvp_fn(model, x, y)
    shape = kernel.shape
    n = int(np.prod(shape))
    matvec_tf = tf.function(one)
    rng = np.random.default_rng(seed)

    def matvec(v):
        return matvec_tf(tf.constant(v.reshape(shape), kernel.dtype)).numpy().ravel()

    t0 = time.perf_counter()
    exact, Q = 0.0, None
    if deflate:
        sketch = np.stack([matvec(matvec(s)) for s in rng.standard_normal((deflate, n))], 1)
        Q, _ = np.linalg.qr(sketch.astype(np.float64))
        exact = sum(float(np.sum(matvec(q).astype(np.float64) ** 2)) for q in Q.T)
    samples = []
    while True:
        v = rng.choice([-1.0, 1.0], size=n)
        if Q is not None:
            v = v - Q @ (Q.T @ v)
        samples.append(float(np.sum(matvec(v).astype(np.float64) ** 2)))
        m = len(samples)
        if m >= 10:
            s = np.asarray(samples)
            total = exact + s.mean()
            half = 1.96 * s.std(ddof=1) / math.sqrt(m)
            # 95% interval of the norm: sqrt(total +- half), relative half-width ~ half / 2 total
            if half / (2 * total) <= target or m >= max_probes:
                break
    elapsed = time.perf_counter() - t0
    rel = half / (2 * total)
    products = m + (3 * deflate if deflate else 0)
    note = (
        f"{m} probes{f' + {deflate}-dim deflation' if deflate else ''} ({products} HVPs) for a "
        f"95% interval of +-{100 * rel:.1f}%"
    )
    return math.sqrt(total), elapsed, note


def _m_small_layers(model, x, y, repeats=3):
    """Per-call time of materializing dense2 and dense3 (nested jacobian), warm."""
    import numpy as np

    from hessinit.curvature import full_hessian

    out = {}
    for name in ("dense2", "dense3"):
        full_hessian(model, x, y, layer=name)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.linalg.norm(full_hessian(model, x, y, layer=name))
            times.append(time.perf_counter() - t0)
        out[name] = min(times)
    return out


def _m_tracking():
    from hessinit import train
    from hessinit.curvature import kronecker
    from hessinit.data import load

    data = load("mnist-5k")
    t0 = time.perf_counter()
    frame = train.experiment(data, progress=False)
    elapsed = time.perf_counter() - t0
    checkpoints = int(frame["H"].notna().sum())
    traces = kronecker._norm_sums.experimental_get_tracing_count()
    return checkpoints, elapsed, traces


def worker(task, queue):
    try:
        kind, method, B = task
        if kind == "baseline":
            _setup(B)
            queue.put({"value": math.nan, "seconds": 0.0, "note": "import TF, load data, build"})
        elif kind == "norm":
            model, x, y = _setup(B)
            fn = {
                "kronecker": _m_kronecker,
                "kronecker_float32": lambda m, a, b: _m_kronecker(m, a, b, precision="float32"),
                "nested_jacobian": _m_nested_jacobian,
                "tf_hessians": _m_tf_hessians,
                "chunked_jacobian": _m_chunked_jacobian,
                "batched_hvp": _m_batched_hvp,
                "hutchinson": _m_hutchinson,
                "hutchinson_deflated": lambda m, a, b: _m_hutchinson(m, a, b, deflate=20),
            }[method]
            value, seconds, note = fn(model, x, y)
            queue.put({"value": value, "seconds": seconds, "note": note})
        elif kind == "small_layers":
            model, x, y = _setup(B)
            queue.put({"times": _m_small_layers(model, x, y)})
        elif kind == "tracking":
            checkpoints, seconds, traces = _m_tracking()
            queue.put({"checkpoints": checkpoints, "seconds": seconds, "traces": traces})
        queue.put({"peak_mb": _peak_mb()})
    except BaseException as err:  # reported, not raised: the table shows the failure
        queue.put({"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"})
        queue.put({"peak_mb": _peak_mb()})


# --------------------------------------------------------------------------------------------
# Driver side
# --------------------------------------------------------------------------------------------


def run_isolated(task, timeout):
    """Run ``task`` in a spawned process; its result dict, with ``peak_mb`` and ``wall``."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=worker, args=(task, queue))
    t0 = time.perf_counter()
    proc.start()
    result = {}
    try:
        while "peak_mb" not in result:
            remaining = timeout - (time.perf_counter() - t0)
            if remaining <= 0:
                raise TimeoutError
            result.update(queue.get(timeout=remaining))
    except Exception:
        proc.kill()
        result = {"error": f"timed out after {timeout:.0f} s", "peak_mb": math.nan}
    proc.join(30)
    if proc.exitcode not in (0, None) and "peak_mb" not in result:
        result = {"error": f"process died (exit {proc.exitcode})", "peak_mb": math.nan}
    result["wall"] = time.perf_counter() - t0
    return result


def mem_total_mb():
    return _proc_mb("/proc/meminfo", "MemTotal")


def predict(points, B, floor=0.0, slope=None):
    """Linear extrapolation in B from the two largest measured (B, value) points; from one point,
    ``slope`` if given, else proportionally to B above ``floor``."""
    points = sorted(p for p in points if math.isfinite(p[1]))
    if not points:
        return math.nan
    if len(points) == 1:
        b0, v0 = points[0]
        if slope is not None:
            return v0 + slope * (B - b0)
        return floor + (v0 - floor) * B / b0
    (b0, v0), (b1, v1) = points[-2:]
    slope = (v1 - v0) / (b1 - b0)
    return v1 + max(slope, 0.0) * (B - b1)


def fmt(v, digits=6):
    if isinstance(v, float):
        if not math.isfinite(v):
            return ""
        return f"{v:.{digits}g}"
    return str(v)


def print_table(rows, title):
    print(f"\n{title}")
    widths = {c: max(len(c), *(len(fmt(r[c])) for r in rows)) for c in COLUMNS if c != "note"}
    print("  ".join(c.ljust(widths[c]) for c in COLUMNS if c != "note") + "  note")
    for r in rows:
        cells = [fmt(r[c]).ljust(widths[c]) for c in COLUMNS if c != "note"]
        print("  ".join(cells) + "  " + r["note"])
    sys.stdout.flush()


def write_csv(rows, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({c: fmt(r[c], 10) for c in COLUMNS})
    tmp.replace(path)


def row(method, B, value=math.nan, ref=math.nan, seconds=math.nan, peak=math.nan, status="ok",
        note=""):  # fmt: skip
    rel = abs(value - ref) / ref if math.isfinite(value) and math.isfinite(ref) else math.nan
    return dict(method=method, B=B, value=value, rel_diff=rel, seconds=seconds, peak_mb=peak,
                status=status, note=note)  # fmt: skip


def norms_part(batches, max_seconds, mem_limit_mb, deadline):
    rows = []
    base = run_isolated(("baseline", "baseline", 64), 300)
    baseline_mb = base["peak_mb"]
    rows.append(row("baseline", 0, peak=baseline_mb, note="import TensorFlow, load mnist-5k, mlp"))
    print(f"baseline process (import TF + load data + build model): {baseline_mb:.0f} MB peak")
    measured = {m: [] for m in (*MATERIALIZING, *HUTCHINSON)}  # (B, seconds, peak_mb)
    for B in batches:
        ref = math.nan  # the float64 Kronecker value, which every rel_diff is taken against
        for method in KRONECKER:
            k = run_isolated(("norm", method, B), 300)
            value = k.get("value", math.nan)
            ref = value if method == "kronecker" else ref
            status = "error" if "error" in k else "ok"
            extra = f"; {baseline_mb and k['peak_mb'] - baseline_mb:+.0f} MB over baseline"
            rows.append(row(method, B, value, ref, k.get("seconds", math.nan), k["peak_mb"],
                            status, k.get("error", k.get("note", "")) + extra))  # fmt: skip
            print_table(rows[-1:], f"B = {B}")
        for method in (*MATERIALIZING, *HUTCHINSON):
            pts = measured[method]
            t_pred = predict([(b, s) for b, s, _ in pts], B)
            prior = [(b, 1024 * g) for b, g in PRIOR_GB.get(method, {}).items()]
            slope = (prior[1][1] - prior[0][1]) / (prior[1][0] - prior[0][0]) if prior else None
            m_pred = predict([(b, p) for b, _, p in pts] or prior, B, baseline_mb, slope)
            reason = None
            if math.isfinite(m_pred) and m_pred > mem_limit_mb:
                gb, limit = m_pred / 1024, mem_limit_mb / 1024
                reason = f"predicted peak {gb:.1f} GB > limit {limit:.1f} GB"
            elif math.isfinite(t_pred) and t_pred > max_seconds:
                reason = f"predicted {t_pred:.0f} s > limit {max_seconds:.0f} s"
            elif time.perf_counter() + (t_pred if math.isfinite(t_pred) else 0) > deadline:
                reason = "the script's time budget (--budget) is spent"
            if reason:
                rows.append(row(method, B, status="skipped", note=reason))
            else:
                r = run_isolated(("norm", method, B), max_seconds * 1.5 + 60)
                if "error" in r:
                    rows.append(row(method, B, peak=r["peak_mb"], status="error", note=r["error"]))
                else:
                    pts.append((B, r["seconds"], r["peak_mb"]))
                    rows.append(row(method, B, r["value"], ref, r["seconds"], r["peak_mb"],
                                    "ok", r["note"]))  # fmt: skip
            print_table(rows[-1:], f"B = {B}")
    for B in batches:
        at_b = [x for x in rows if x["B"] == B and x["status"] == "ok"]
        mats = [x for x in at_b if x["method"] in MATERIALIZING]
        for kron in [x for x in at_b if x["method"] in KRONECKER]:
            if mats:
                best = min(mats, key=lambda x: x["seconds"])
                ratio = best["seconds"] / kron["seconds"]
                kron["note"] += f"; {ratio:.0f}x faster than {best['method']}"
    return rows, baseline_mb


def tracking_part(norm_rows):
    rows = []
    r = run_isolated(("tracking", "tracking", 1024), 900)
    if "error" in r:
        rows.append(row("tracking_kronecker", 1024, status="error", note=r["error"]))
        return rows
    ck = r["checkpoints"] // 3  # rows with H: checkpoints x 3 layers
    rows.append(row("tracking_kronecker", 1024, float(ck), seconds=r["seconds"],
                    peak=r["peak_mb"], note=f"train.experiment: 3 sds x 1000 steps, {ck} "
                    f"checkpoints x 3 layers (H, G, R, Taylor); _norm_sums traced "
                    f"{r['traces']} times"))  # fmt: skip
    mats = [x for x in norm_rows if x["method"] in MATERIALIZING and x["B"] == 1024]
    mats = [x for x in mats if x["status"] == "ok"]
    small = run_isolated(("small_layers", "small", 1024), 600)
    if not mats or "error" in small:
        rows.append(row("tracking_materializing", 1024, status="skipped",
                        note="no materializing dense1 measurement at B = 1024"))  # fmt: skip
        return rows
    best = min(mats, key=lambda x: x["seconds"])
    t2, t3 = small["times"]["dense2"], small["times"]["dense3"]
    per = best["seconds"] + t2 + t3
    rows.append(row("tracking_materializing", 1024, float(ck), seconds=ck * per,
                    status="extrapolated",
                    note=f"{ck} x ({best['method']} dense1 {best['seconds']:.1f} s + nested "
                    f"jacobian dense2 {t2 * 1e3:.0f} ms + dense3 {t3 * 1e3:.0f} ms), "
                    "training steps not counted"))  # fmt: skip
    return rows


def book_part(extra_args=()):
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "book-clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        check = subprocess.run([sys.executable, "-m", "hessinit", "book", "--help"], cwd=clone,
                               capture_output=True, text=True, timeout=120)  # fmt: skip
        if check.returncode != 0:
            note = "not available: python -m hessinit book does not exist yet"
            return [row("book_cold", 0, status="not available", note=note)]
        env = dict(os.environ, PYTHONPATH=str(clone))
        for name in ("book_cold", "book_rebuild"):
            t0 = time.perf_counter()
            cmd = [sys.executable, "-m", "hessinit", "book", *extra_args]
            p = subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True,
                               timeout=3600)  # fmt: skip
            status = "ok" if p.returncode == 0 else f"exit {p.returncode}"
            note = "fresh clone" if name == "book_cold" else "no change since the cold build"
            note += f"; python -m hessinit book {' '.join(extra_args)}".rstrip()
            rows.append(row(name, 0, seconds=time.perf_counter() - t0, status=status, note=note))
        shutil.rmtree(clone, ignore_errors=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="B in {64, 256}, no tracking")
    parser.add_argument("--book", action="store_true", help="also time the book build")
    parser.add_argument("--book-args", default="",
                        help='arguments for python -m hessinit book, e.g. "--small"')  # fmt: skip
    parser.add_argument("--no-tracking", action="store_true")
    parser.add_argument("--max-seconds", type=float, default=150.0,
                        help="skip a run predicted to take longer (default 150)")  # fmt: skip
    parser.add_argument("--budget", type=float, default=780.0,
                        help="seconds for the norms and tracking parts (default 780)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    total_mb = mem_total_mb()
    mem_limit = 0.75 * total_mb  # headroom for other processes on a shared machine
    print(f"machine: {os.cpu_count()} cores, {total_mb / 1024:.1f} GiB; memory limit per run "
          f"{mem_limit / 1024:.1f} GiB, time limit per run {args.max_seconds:.0f} s")  # fmt: skip
    batches = BATCHES[:2] if args.quick else BATCHES
    deadline = t0 + args.budget - (0 if args.quick or args.no_tracking else 90)
    rows, _ = norms_part(batches, args.max_seconds, mem_limit, deadline)
    print_table(rows, "Frobenius norm of the dense1 Hessian (784 x 30 kernel), mnist-5k")
    write_csv(rows, args.out / "hessian_norms.csv")
    track = []
    if not (args.quick or args.no_tracking):
        track += tracking_part(rows)
    if args.book:
        track += book_part(args.book_args.split())
    if track:
        print_table(track, "Hessian tracking (and book)")
        write_csv(track, args.out / "tracking.csv")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
