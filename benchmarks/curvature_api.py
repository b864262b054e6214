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

    python benchmarks/curvature_api.py   # about a minute on 2 cores

Writes benchmarks/results/curvature_api.csv with columns :data:`COLUMNS`.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from hessinit.curvature import full_hessian, hessian_norms, spectrum  # noqa: E402

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


def main():
    """Measure every case, print the table and write the CSV."""
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
