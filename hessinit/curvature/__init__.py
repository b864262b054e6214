"""Curvature of the loss: exact layer Hessians split by the chain rule, products and estimates.

One public API: :func:`hessian_norms` (one tensor's ||H||, ||G||, ||R||, any model, the route
proved), :func:`spectrum` (eigenpairs of one tensor or the whole network, ``which`` LA/LM/SA),
:func:`hutchinson_trace` and :func:`spectral_density` (trace with an interval, SLQ density),
all keyword-only options, ``term`` H/G/R and one ``training`` default (:data:`TRAINING`: BatchNorm
on batch statistics, dropout off). Older names are kept as deprecated aliases
(``hessinit.curvature.DEPRECATED``).

- :mod:`~hessinit.curvature.graph`: what a model's functional graph proves, and the forward pass;
- :mod:`~hessinit.curvature.inputs`: model, inputs, labels and layer checked at the door;
- :mod:`~hessinit.curvature.norms`: :func:`hessian_norms`, the one norms entry point;
- :mod:`~hessinit.curvature.operators`: H, G, R of a tensor or the network as a product;
- :mod:`~hessinit.curvature.density`: Hutchinson trace and stochastic Lanczos quadrature;
- :mod:`~hessinit.curvature.layers`: the layer protocol (what is read off a Keras model);
- :mod:`~hessinit.curvature.blocks`: per-sample blocks A_i (Gauss-Newton) and R_i (curvature);
- :mod:`~hessinit.curvature.kronecker`: exact Frobenius norms from the Kronecker identity;
- :mod:`~hessinit.curvature.products`: Hessian-, Gauss-Newton- and curvature-vector products;
- :mod:`~hessinit.curvature.hutchinson`: whole-network norm estimates with intervals;
- :mod:`~hessinit.curvature.tensors`: H, G, R per weight tensor of any Keras model (convolutions,
  pooling, BatchNorm, residual and inception blocks), exact or estimated;
- :mod:`~hessinit.curvature.tensor_requests`: those norms as generators of product requests,
  run in lockstep so that tensors of one shape share calls;
- :mod:`~hessinit.curvature.jacobians`: per-sample Jacobians of a conv or dense weight and the
  Gauss-Newton norm from them;
- :mod:`~hessinit.curvature.spectra`: top eigenvalues of layer and network Hessians (Lanczos);
- :mod:`~hessinit.curvature.reference`: materialized matrices for tests and small models.

Imports: numpy, scipy, TensorFlow, Keras and :mod:`hessinit.nn` only (never study or book).
"""

import logging

from .blocks import layer_curvature
from .density import (
    SpectralDensity,
    TraceEstimate,
    hutchinson_trace,
    lanczos_quadrature,
    spectral_density,
    trace_estimate,
)
from .graph import TRAINING, dense_stack_issue, forward, is_dense_stack
from .hutchinson import (
    CurvatureEstimates,
    NormEstimate,
    hutchinson_norm,
    hutchinson_norms,
    ratio_estimate,
)
from .inputs import check_call, resolve_weight
from .jacobians import gauss_newton_norm, sample_jacobians
from .kronecker import (
    PRECISIONS,
    HessianNorms,
    hessian_norms_all_layers,
    input_gram,
    kron_norms,
)
from .layers import dropout_masks
from .norms import NORM_METHODS, hessian_norms, layer_hessian_norms
from .operators import CurvatureOperator, curvature_operator
from .products import curvature_vp, gnvp, hvp, hvp_graph, num_params, term_product, tf_variables
from .reference import MAX_FULL_ENTRIES, full_gauss_newton, full_hessian, kron_matrix
from .spectra import (
    NotConvergedError,
    Spectrum,
    layer_spectrum,
    network_spectrum,
    spectrum,
    top_eigenvalues,
)
from .tensors import (
    SUPPORTED_LAYERS,
    TensorPlan,
    all_tensor_norms,
    layer_tensor_norms,
    logits_linear_in,
    plan_tensor,
    tensor_hessian_norms,
    tensors_hessian_norms,
    training_logits,
)

#: Deprecated names (kept one release) -> the one public function that replaces them.
DEPRECATED = {
    "layer_hessian_norms": "hessian_norms",
    "tensor_hessian_norms": "hessian_norms",
    "layer_tensor_norms": "hessian_norms",
    "layer_spectrum": "spectrum",
    "network_spectrum": "spectrum",
}

__all__ = [
    "CurvatureEstimates",
    "CurvatureOperator",
    "DEPRECATED",
    "HessianNorms",
    "MAX_FULL_ENTRIES",
    "NORM_METHODS",
    "NormEstimate",
    "NotConvergedError",
    "PRECISIONS",
    "SUPPORTED_LAYERS",
    "SpectralDensity",
    "Spectrum",
    "TRAINING",
    "TensorPlan",
    "TraceEstimate",
    "all_tensor_norms",
    "check_call",
    "curvature_operator",
    "curvature_vp",
    "dense_stack_issue",
    "dropout_masks",
    "forward",
    "full_gauss_newton",
    "full_hessian",
    "gauss_newton_norm",
    "gnvp",
    "hessian_norms",
    "hessian_norms_all_layers",
    "hutchinson_norm",
    "hutchinson_norms",
    "hutchinson_trace",
    "hvp",
    "hvp_graph",
    "input_gram",
    "is_dense_stack",
    "kron_matrix",
    "kron_norms",
    "lanczos_quadrature",
    "layer_curvature",
    "layer_hessian_norms",
    "layer_spectrum",
    "layer_tensor_norms",
    "logits_linear_in",
    "network_spectrum",
    "num_params",
    "plan_tensor",
    "ratio_estimate",
    "resolve_weight",
    "sample_jacobians",
    "spectral_density",
    "spectrum",
    "tensor_hessian_norms",
    "tensors_hessian_norms",
    "term_product",
    "tf_variables",
    "top_eigenvalues",
    "trace_estimate",
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
