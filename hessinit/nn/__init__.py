"""Networks, their loss and what hessinit knows about activations.

- :mod:`~hessinit.nn.activations`: the activation registry;
- :mod:`~hessinit.nn.losses`: softmax cross-entropy and its curvature in the logits;
- :mod:`~hessinit.nn.models`: the paper's multilayer perceptron and layer lookup;
- :mod:`~hessinit.nn.convnets`: a small CNN, a simplified GoogleNet and a small ResNet.

Imports: numpy, scipy, TensorFlow and Keras only (the bottom layer of the package).
"""

from .activations import ACTIVATIONS, REGISTRY, Activation, activation_name
from .convnets import kernel_fans, kernel_layers, simple_googlenet, small_cnn, small_resnet
from .losses import cross_entropy, mean_loss, softmax_curvature_times, softmax_saturation
from .models import dense_layers, get_dense, mlp

__all__ = [
    "ACTIVATIONS",
    "REGISTRY",
    "Activation",
    "activation_name",
    "cross_entropy",
    "dense_layers",
    "get_dense",
    "kernel_fans",
    "kernel_layers",
    "mean_loss",
    "mlp",
    "simple_googlenet",
    "small_cnn",
    "small_resnet",
    "softmax_curvature_times",
    "softmax_saturation",
]
