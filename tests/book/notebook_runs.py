"""Every committed notebook as a reader runs it outside the book's runner: order and parameters.

The small parameters are the ``small`` overrides of ``book/grid.yml`` (one run per notebook;
``sd_run`` at one sd). Collecting chapters get no ``tables``: ``sd_sweep`` trains its sd runs
itself, ``claims`` finds the chapters' tables written next to it, as in Colab. Shared by
test_papermill.py (the host's kernel) and test_colab.py (a Colab-like environment).
"""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

#: The notebooks in an order where every chapter's inputs exist before it runs.
KNOWN = (
    "chain_rule",
    "original",
    "sd_run",
    "sd_sweep",
    "dominance",
    "init_schemes",
    "step_size",
    "diagnostic",
    "cnn",
    "claims",
    "performance",
    "reproducibility",
)


def small_parameters():
    """``{notebook: parameters}``: each grid entry's parameters updated by its small overrides."""
    grid = yaml.safe_load((ROOT / "book" / "grid.yml").read_text())
    out = {}
    for entry in grid["runs"]:
        small = dict(entry.get("small", {}))
        params = {**entry.get("parameters", {}), **small}
        params.pop("results", None)  # the runner's relative path: the notebook looks it up
        sds = small.pop("sd", None) or entry.get("sd")
        if entry["notebook"] == "sd_run":
            params["sd"] = sds[len(sds) // 2]
            out["sd_sweep"] = {k: params[k] for k in ("steps", "hessian_every", "hessian_batch")}
            out["sd_sweep"]["sds"] = [sds[0], sds[-1]]
        out.setdefault(entry["notebook"], {}).update(params)
    return out


def cli_arguments(parameters):
    """papermill ``-p`` arguments; lists in the documented text form ``-p sds "[0.1, 1]"``."""
    args = []
    for name, value in parameters.items():
        if isinstance(value, list):
            text = "[" + ", ".join(str(v) for v in value) + "]"  # strings unquoted: [tanh, gelu]
        else:
            text = str(value)
        args += ["-p", name, text]
    return args


def notebooks():
    """Every committed notebook (book/*.ipynb), in :data:`KNOWN` order; new ones before claims."""
    names = {p.stem for p in (ROOT / "book").glob("*.ipynb")}
    new = sorted(names - set(KNOWN))
    at = KNOWN.index("claims")
    order = [*KNOWN[:at], *new, *KNOWN[at:]]
    return [name for name in order if name in names]
