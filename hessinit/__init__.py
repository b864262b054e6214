"""hessinit: exact layer Hessians, their chain-rule split, and weight initialization.

The executable companion to M. Skorski, A. Temperoni and M. Theobald, *Revisiting Weight
Initialization of Deep Neural Networks*, ACML 2021.

The package is layered; a module imports only from its own layer or the layers below:

1. core: :mod:`hessinit.nn` (models, loss, activation registry), :mod:`hessinit.curvature`
   (exact layer Hessians, products, estimates), :mod:`hessinit.data` (datasets),
   :mod:`hessinit.train`, :mod:`hessinit.stepsize`, :mod:`hessinit.init`;
2. :mod:`hessinit.study`: what two or more chapters share (statistics, the claims engine and
   ledger, the figure style, shared experiments);
3. :mod:`hessinit.chapters`: one module per page of the book (its experiment, summaries, claim
   rules and figures); a chapter never imports another;
4. :mod:`hessinit.book`: the run grid, the papermill runner and the notebook helpers;
5. ``hessinit.__main__``: the command line.

The core imports none of :mod:`hessinit.study`, :mod:`hessinit.chapters` and
:mod:`hessinit.book`; no module imports another's private name or sits on an import cycle;
``tests/test_layering.py`` checks these rules on every module.

Imports: nothing at import time but the standard library. The public API below is re-exported
here and loaded on first use, so ``import hessinit`` stays cheap (TensorFlow is imported only
when a numerical function is first touched):

>>> import hessinit as hi
>>> hi.mlp(sd=0.01, seed=0).count_params()
24790
"""

import importlib
import importlib.metadata
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:  # the one source of the version is pyproject.toml, read from the installed metadata
    __version__ = importlib.metadata.version("hessinit")
except importlib.metadata.PackageNotFoundError:  # a checkout on the path, not installed
    __version__ = "unknown"

#: Public name -> the module that defines it.
_API = {
    # nn
    "ACTIVATIONS": "nn",
    "cross_entropy": "nn",
    "mean_loss": "nn",
    "mlp": "nn",
    "small_cnn": "nn",
    "simple_googlenet": "nn",
    "small_resnet": "nn",
    "dense_layers": "nn",
    "get_dense": "nn",
    "softmax_saturation": "nn",
    # curvature
    "HessianNorms": "curvature",
    "NormEstimate": "curvature",
    "Spectrum": "curvature",
    "SpectralDensity": "curvature",
    "TraceEstimate": "curvature",
    "hessian_norms": "curvature",
    "spectrum": "curvature",
    "hutchinson_trace": "curvature",
    "spectral_density": "curvature",
    # curvature, deprecated aliases kept one release (hessinit.curvature.DEPRECATED)
    "layer_hessian_norms": "curvature",
    "layer_tensor_norms": "curvature",
    "tensor_hessian_norms": "curvature",
    "all_tensor_norms": "curvature",
    "hessian_norms_all_layers": "curvature",
    "layer_curvature": "curvature",
    "kron_norms": "curvature",
    "input_gram": "curvature",
    "dropout_masks": "curvature",
    "hvp": "curvature",
    "gnvp": "curvature",
    "curvature_vp": "curvature",
    "hutchinson_norm": "curvature",
    "layer_spectrum": "curvature",
    "network_spectrum": "curvature",
    "full_hessian": "curvature",
    "full_gauss_newton": "curvature",
    # data
    "Dataset": "data",
    "DatasetUnavailableError": "data",
    "load": "data",
    "split": "data",
    # training, step size, initialization
    "run": "train",
    "experiment": "train",
    "fit": "train",
    "train_runs": "train.stacked",
    "Run": "train.stacked",
    "taylor_step": "stepsize",
    "gamma_star": "stepsize",
    "kernel_sds": "init",
    "depth_profile": "init",
    "hessian_init": "init",
}

_SUBPACKAGES = ("nn", "curvature", "data", "train", "stepsize", "init", "study", "chapters", "book")

__all__ = sorted(_API) + list(_SUBPACKAGES)


def __getattr__(name):
    """Import the module that defines a public name (or a subpackage) on first use."""
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'hessinit' has no attribute {name!r}")


def __dir__():
    """The public names, loaded or not."""
    return __all__
