"""Curvature of the loss: exact layer Hessians split by the chain rule, products and estimates.

- :mod:`~hessinit.curvature.layers`: the layer protocol (what is read off a Keras model);
- :mod:`~hessinit.curvature.blocks`: per-sample blocks A_i (Gauss-Newton) and R_i (curvature);
- :mod:`~hessinit.curvature.kronecker`: exact Frobenius norms from the Kronecker identity;
- :mod:`~hessinit.curvature.products`: Hessian-, Gauss-Newton- and curvature-vector products;
- :mod:`~hessinit.curvature.hutchinson`: whole-network norm estimates with intervals;
- :mod:`~hessinit.curvature.tensors`: H, G, R per weight tensor of any Keras model (convolutions,
  pooling, BatchNorm, residual and inception blocks), exact or estimated;
- :mod:`~hessinit.curvature.spectra`: top eigenvalues of layer and network Hessians (Lanczos);
- :mod:`~hessinit.curvature.reference`: materialized matrices for tests and small models.

Imports: numpy, scipy, TensorFlow, Keras and :mod:`hessinit.nn` only (never study or book).
"""

import logging

from .blocks import layer_curvature
from .hutchinson import (
    CurvatureEstimates,
    NormEstimate,
    hutchinson_norm,
    hutchinson_norms,
    ratio_estimate,
)
from .kronecker import (
    PRECISIONS,
    HessianNorms,
    hessian_norms_all_layers,
    input_gram,
    kron_norms,
    layer_hessian_norms,
)
from .layers import dropout_masks
from .products import curvature_vp, gnvp, hvp, hvp_graph, num_params, tf_variables
from .reference import MAX_FULL_ENTRIES, full_gauss_newton, full_hessian, kron_matrix
from .spectra import NotConvergedError, Spectrum, layer_spectrum, network_spectrum, top_eigenvalues
from .tensors import (
    SUPPORTED_LAYERS,
    TensorPlan,
    all_tensor_norms,
    layer_tensor_norms,
    logits_linear_in,
    plan_tensor,
    tensor_hessian_norms,
    training_logits,
)

__all__ = [
    "CurvatureEstimates",
    "MAX_FULL_ENTRIES",
    "NotConvergedError",
    "PRECISIONS",
    "SUPPORTED_LAYERS",
    "TensorPlan",
    "Spectrum",
    "HessianNorms",
    "NormEstimate",
    "all_tensor_norms",
    "curvature_vp",
    "dropout_masks",
    "full_gauss_newton",
    "full_hessian",
    "gnvp",
    "hessian_norms_all_layers",
    "hutchinson_norm",
    "hutchinson_norms",
    "hvp",
    "hvp_graph",
    "input_gram",
    "kron_matrix",
    "kron_norms",
    "layer_curvature",
    "layer_hessian_norms",
    "layer_spectrum",
    "layer_tensor_norms",
    "logits_linear_in",
    "network_spectrum",
    "num_params",
    "plan_tensor",
    "ratio_estimate",
    "tensor_hessian_norms",
    "tf_variables",
    "top_eigenvalues",
    "training_logits",
]


class _ExpectedRetracing(logging.Filter):
    """Drop TensorFlow's "triggered tf.function retracing" warnings, keep every other record.

    The compiled functions here are traced once per model structure and batch shape, and the
    materialized references build a fresh ``pfor`` function per jacobian: retracing is how they
    work, not a defect of the caller, and the warning only clutters notebooks and logs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is anything but a retracing warning."""
        return "triggered tf.function retracing" not in record.getMessage()


logging.getLogger("tensorflow").addFilter(_ExpectedRetracing())
