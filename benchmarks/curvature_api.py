"""Benchmark: the curvature API on the models of issue 22, beside the materialized Hessian.

Each case is a small float64 network (20 inputs, a Dense d1 of 16 tanh units, 5 logits) on 64
random samples; for d1's kernel (320 weights) it prints the route :func:`hessinit.curvature.
spectrum` and :func:`hessinit.curvature.hessian_norms` took, lambda_1 and ||H||_F, the same from
``numpy.linalg.eigvalsh`` / ``norm`` of :func:`hessinit.curvature.full_hessian` (nested autodiff of
the model's own call), their relative differences and wall seconds (one warm call each). Cases:

- ``sequential``: the plain dense stack (the Kronecker route);
- ``ops``: ``d2(2 * d1(x) + 0.5)`` written with ``keras.ops`` in a functional model;
- ``subclassed``: the same in a subclassed model's ``call``;
- ``shared``: one Dense layer applied twice;
- ``bn``: Dense, BatchNorm, tanh, Dense, in both BatchNorm modes (``training`` True / False);
- ``softmax``: a softmax output layer, refused (the message is printed).

Then the speed of issue 22 (item 6), written to benchmarks/results/curvature_resnet.csv with
columns :data:`SPEED_COLUMNS`, the ``uptime`` load in every row:

- ``rows_per_second``: the exact columns route's rate on ``block1_conv1``'s kernel of the default
  :func:`hessinit.small_resnet` (BatchNorm after every conv, so 2P products, one row = H e_p and
  G e_p) at B = 1,024 MNIST images, from the best of two warm chunks, its trace time apart: by
  the program shared by the tensors of its shape
  (:func:`hessinit.curvature.block_products.block_products`, route ``shared``, the one the
  norms use) and, beside it in the same process, by the former program traced once per tensor
  (route ``per-tensor``), so that their ratio is measured under one load;
- ``exact_all_tensors``: all-tensor norms by the exact routes (``method="auto"``: columns for
  every conv and BatchNorm tensor, Kronecker for the logits layer), run when its prediction
  (rows / shared rate + one trace per shape) is within ``--exact-limit``
  seconds, else the prediction alone, labelled ``prediction``;
- ``hutchpp_block1_conv1`` / ``hutchpp_all_tensors``: ``method="hutchpp"`` (k = 10 sketch columns,
  m = 20 probes; tensors of P <= 50 take the exact columns), its wall time and 95% intervals (the
  all-tensor run only without ``--quick``; with it, its prediction);
- ``mlp_dense1_top10``: :func:`hessinit.curvature.spectrum` of the paper MLP's dense1 (sd 0.01),
  k = 10, on 1,024 images: the first call (cold) and the best of three warm calls.

    python benchmarks/curvature_api.py           # the API cases and the speed rows
    python benchmarks/curvature_api.py --quick   # the speed rows alone, under 3 minutes

Writes benchmarks/results/curvature_api.csv with columns :data:`COLUMNS`.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from hessinit.curvature import full_hessian, hessian_norms, spectrum  # noqa: E402
from hessinit.curvature.block_products import block_products, weight_slices  # noqa: E402
from hessinit.curvature.tensors import (  # noqa: E402
    OWN_PROGRAM,
    SMALL_LINEAR,
    _index,
    _products,
    _tf_variable,
    all_tensor_norms,
    plan_tensor,
)
from hessinit.data import load  # noqa: E402
from hessinit.nn import mlp, small_resnet  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = (
    "case", "training", "spectrum_route", "norms_route", "lambda_1", "lambda_1_ref",
    "lambda_rel_diff", "H", "H_ref", "H_rel_diff", "spectrum_seconds", "norms_seconds",
    "load", "note",
)  # fmt: skip
F, N_IN, WIDTH, K, B = "float64", 20, 16, 5, 64


def _dense(units, name, activation=None):
    init = keras.initializers.RandomNormal
    return keras.layers.Dense(units, activation, dtype=F, name=name,
                              kernel_initializer=init(0, 0.5, seed=1),
                              bias_initializer=init(0, 0.3, seed=2))  # fmt: skip


class Sub(keras.Model):
    """d2(2 * d1(x) + 0.5) in ``call``."""

    def __init__(self):
        super().__init__(dtype=F)
        self.d1, self.d2 = _dense(WIDTH, "d1", "tanh"), _dense(K, "d2")

    def call(self, x):
        return self.d2(2.0 * self.d1(x) + 0.5)


def build(case):
    """The model of ``case`` (module docstring)."""
    inputs = keras.Input((N_IN,), dtype=F)
    if case == "sequential":
        return keras.Sequential([inputs, _dense(WIDTH, "d1", "tanh"), _dense(K, "d2")])
    if case == "ops":
        d1, d2 = _dense(WIDTH, "d1", "tanh"), _dense(K, "d2")
        return keras.Model(inputs, d2(keras.ops.add(keras.ops.multiply(2.0, d1(inputs)), 0.5)))
    if case == "subclassed":
        model = Sub()
        model(np.zeros((1, N_IN)))
        return model
    if case == "shared":
        d1 = _dense(N_IN, "d1", "tanh")
        return keras.Model(inputs, _dense(K, "d2")(d1(d1(inputs))))
    if case == "bn":
        h = keras.layers.BatchNormalization(dtype=F)(_dense(WIDTH, "d1")(inputs))
        return keras.Model(inputs, _dense(K, "d2")(keras.layers.Activation("tanh", dtype=F)(h)))
    if case == "softmax":
        return keras.Sequential([inputs, _dense(WIDTH, "d1", "tanh"), _dense(K, "d2", "softmax")])
    raise ValueError(case)


def _timed(call):
    """(result, wall seconds of a warm call)."""
    call()
    start = time.perf_counter()
    out = call()
    return out, time.perf_counter() - start


def measure(case, training, x, y):
    """One row of :data:`COLUMNS`."""
    model = build(case)
    row = {"case": case, "training": training, "load": os.getloadavg()[0]}
    kernel = next(v for v in model.trainable_variables if v.path.endswith("d1/kernel"))
    try:
        s, row["spectrum_seconds"] = _timed(
            lambda: spectrum(model, x, y, kernel, training=training)
        )
        n, row["norms_seconds"] = _timed(
            lambda: hessian_norms(model, kernel, x, y, training=training)
        )
    except (TypeError, ValueError) as err:
        return {**row, "note": f"refused: {err}"}
    H = full_hessian(model, x, y, layer=kernel, training=training)
    lam, norm = float(np.linalg.eigvalsh(H).max()), float(np.linalg.norm(H))
    return {
        **row,
        "spectrum_route": s.method,
        "norms_route": n.method,
        "lambda_1": s.lambda_max,
        "lambda_1_ref": lam,
        "lambda_rel_diff": abs(s.lambda_max - lam) / abs(lam),
        "H": n.H,
        "H_ref": norm,
        "H_rel_diff": abs(n.H - norm) / norm,
        "note": "",
    }


SPEED_COLUMNS = (
    "quantity", "route", "exact", "batch", "seconds", "kind", "rows", "rows_per_second",
    "result", "load", "note",
)  # fmt: skip
SKETCH, PROBES = 10, 20


def _load():
    """The 1-minute load average, as ``uptime`` prints it."""
    return round(os.getloadavg()[0], 2)


def _timed_rows(call, rows):
    """(warm rows per second, trace seconds) of ``call``: one cold call, the best of two warm."""
    start = time.perf_counter()
    call()
    cold = time.perf_counter() - start
    warm = []
    for _ in range(2):
        start = time.perf_counter()
        call()
        warm.append(time.perf_counter() - start)
    return rows / min(warm), max(cold - min(warm), 0.0)


def _rate(model, x, y, name, shared=True, own=False):
    """(warm rows per second, trace seconds) of the exact columns route on ``name``'s kernel.

    ``shared``: through :func:`block_products` over the tensors of the kernel's shape (what
    Hutch++ and Hutchinson run), or with ``own`` over the kernel alone (what the exact columns
    of a tensor of more than ``OWN_PROGRAM`` entries run); else through the former per-tensor
    program.
    """
    v = model.get_layer(name).kernel
    plan = plan_tensor(model, v, int(x.shape[0]), method="columns")
    dtype = _tf_variable(v).dtype
    rows = np.arange(plan.chunk) % plan.size
    x, y = tf.constant(x), tf.constant(y)
    if not shared:
        V = tf.one_hot(rows, plan.size, dtype=dtype)
        args = (model, x, y, _index(model, v), V, not plan.linear, True)
        return _timed_rows(lambda: [t.numpy() for t in _products(*args)], plan.chunk)
    group = [j for j, w in enumerate(model.trainable_weights) if w.shape == v.shape]
    if own:
        group = [_index(model, v)]
    slices = weight_slices(model, group)
    where = slices[group.index(_index(model, v))]
    full = np.zeros((plan.chunk, slices[-1].stop))
    full[np.arange(plan.chunk), where.start + rows] = 1.0
    V = tf.constant(full, dtype)
    return _timed_rows(
        lambda: [
            t.numpy()
            for t in block_products(model, x, y, V, weights=group, hessian=not plan.linear)
        ],
        plan.chunk,
    )


def _rows(model, batch, method):
    """(rows on shared programs, rows on own programs, programs traced) of all-tensor norms.

    Every tensor's products run through the program of its shape and ``hessian`` flag (curved
    tensors and piecewise-linear ones of at most ``SMALL_LINEAR`` entries: H and G; larger
    piecewise-linear ones: G alone), one trace per pair, except the exact columns of a tensor
    of more than ``OWN_PROGRAM`` entries, which run a program of their own.
    """
    shared = own = 0
    programs = set()
    for v in model.trainable_weights:
        plan = plan_tensor(model, v, batch, method=method, sketch=SKETCH, probes=PROBES)
        if plan.method in ("columns", "columns-linear") and plan.size > OWN_PROGRAM:
            own += plan.size
            programs.add(v.path)
            continue
        if plan.method in ("columns", "columns-linear"):
            shared += plan.size
        elif plan.method == "hutchpp":
            shared += SKETCH + min(2 * SKETCH, plan.size) + PROBES
        else:
            continue
        programs.add((tuple(v.shape), not plan.linear or plan.size <= SMALL_LINEAR))
    return shared, own, len(programs)


def _intervals(n):
    """'H [low, high]' text of a HessianNorms' intervals (or its exact H)."""
    if not n.intervals:
        return f"H {n.H:.6g} (exact)"
    e = n.intervals["H"]
    return f"H {e.value:.6g} [{e.low:.6g}, {e.high:.6g}]"


def speed(batch=1024, quick=False, exact_limit=120.0):
    """The rows of :data:`SPEED_COLUMNS` (module docstring)."""
    data = load("mnist-5k")
    x = np.asarray(data.x[:batch], np.float32).reshape(batch, 28, 28, 1)
    y = np.asarray(data.y[:batch])
    model = small_resnet()
    rows = []

    def row(quantity, route, exact, seconds, kind, n_rows=None, rate=None, result="", note=""):
        rows.append(dict(quantity=quantity, route=route, exact=exact, batch=batch,
                         seconds=round(seconds, 3), kind=kind, rows=n_rows,
                         rows_per_second=None if rate is None else round(rate, 3),
                         result=result, load=_load(), note=note))  # fmt: skip
        print(f"{quantity:>22} {route:>8} exact={exact!s:5} {seconds:9.2f} s ({kind}) "
              f"{result} load {rows[-1]['load']} {note}", flush=True)  # fmt: skip

    old_rate, old_trace = _rate(model, x, y, "block1_conv1", shared=False)
    rate, trace = _rate(model, x, y, "block1_conv1")
    row("rows_per_second", "per-tensor", True, 1 / old_rate, "measured", 1, old_rate,
        note=f"block1_conv1 kernel, per-tensor program; trace {old_trace:.1f} s")  # fmt: skip
    row("rows_per_second", "shared", True, 1 / rate, "measured", 1, rate,
        note=f"block1_conv1 kernel, program shared by its shape; trace {trace:.1f} s; "
             f"rate {rate / old_rate:.2f}x, trace {trace / max(old_trace, 1e-9):.2f}x the "
             "per-tensor program's, same process")  # fmt: skip
    shared, own, t_exact = _rows(model, batch, "auto")
    n_exact = shared + own
    # own programs run as the per-tensor one did; every trace is counted at the larger time
    predicted = shared / rate + own / old_rate + t_exact * max(trace, old_trace)
    if predicted <= exact_limit and not quick:
        start = time.perf_counter()
        norms = all_tensor_norms(model, x, y)
        row("exact_all_tensors", "auto", True, time.perf_counter() - start, "measured",
            n_exact, rate, _intervals(norms["block1_conv1/kernel"]))  # fmt: skip
    else:
        row("exact_all_tensors", "auto", True, predicted, "prediction", n_exact, rate,
            note=f"{shared} rows at the shared rate, {own} at the per-tensor rate, "
                 f"{t_exact} traces")  # fmt: skip
    start = time.perf_counter()
    one = hessian_norms(model, "block1_conv1", x, y, method="hutchpp", sketch=SKETCH,
                        probes=PROBES)  # fmt: skip
    row("hutchpp_block1_conv1", one.method, False, time.perf_counter() - start, "measured",
        SKETCH + 2 * SKETCH + PROBES, None, _intervals(one), "program already traced")  # fmt: skip
    n_est, own_est, t_est = _rows(model, batch, "hutchpp")
    assert own_est == 0  # Hutch++ runs every tensor on its shape's program
    if quick:
        row("hutchpp_all_tensors", "hutchpp", False, n_est / rate + t_est * max(trace, old_trace),
            "prediction", n_est, rate,
            note=f"{n_est} rows at the shared rate + {t_est} shared traces")  # fmt: skip
    else:
        start = time.perf_counter()
        norms = all_tensor_norms(model, x, y, method="hutchpp", sketch=SKETCH, probes=PROBES)
        row("hutchpp_all_tensors", "hutchpp", False, time.perf_counter() - start, "measured",
            n_est, rate, _intervals(norms["block2_conv2/kernel"]), "block2_conv2")  # fmt: skip
    net = mlp(sd=0.01, seed=0)
    xm, ym = np.asarray(data.x[:1024], np.float32), np.asarray(data.y[:1024])
    start = time.perf_counter()
    s = spectrum(net, xm, ym, "dense1", k=10)
    row("mlp_dense1_top10", s.method, True, time.perf_counter() - start, "cold",
        result=f"lambda_1 {s.lambda_max:.6g}")  # fmt: skip
    warm = []
    for _ in range(3):
        start = time.perf_counter()
        spectrum(net, xm, ym, "dense1", k=10)
        warm.append(time.perf_counter() - start)
    row("mlp_dense1_top10", s.method, True, min(warm), "warm (best of 3)",
        result=f"lambda_1 {s.lambda_max:.6g}")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "curvature_resnet.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, SPEED_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main():
    """Measure every case, print the table and write the CSVs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the speed rows alone, < 3 min")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--exact-limit", type=float, default=120.0,
                        help="run the exact norms only if predicted within this")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        speed(args.batch, quick=True, exact_limit=args.exact_limit)
        return
    api()
    speed(args.batch, exact_limit=args.exact_limit)


def api():
    """The API cases: print the table and write curvature_api.csv."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((B, N_IN)), rng.integers(0, K, B)
    cases = [("sequential", True), ("ops", True), ("subclassed", True), ("shared", True),
             ("bn", True), ("bn", False), ("softmax", True)]  # fmt: skip
    rows = [measure(case, training, x, y) for case, training in cases]
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "curvature_api.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    for r in rows:
        if r.get("note"):
            print(f"{r['case']:>10}: {r['note'][:110]}")
            continue
        print(
            f"{r['case']:>10} training={r['training']!s:5} routes {r['spectrum_route']}/"
            f"{r['norms_route']}: lambda_1 {r['lambda_1']:.6f} (ref {r['lambda_1_ref']:.6f}, "
            f"rel {r['lambda_rel_diff']:.1e}), ||H|| {r['H']:.6f} (ref {r['H_ref']:.6f}, rel "
            f"{r['H_rel_diff']:.1e}), {r['spectrum_seconds']:.3f} s / {r['norms_seconds']:.3f} s"
        )


if __name__ == "__main__":
    main()
