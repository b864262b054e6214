"""The convolutional networks of the CNN chapters, by name, with a scheme's kernels.

Shared by :mod:`hessinit.chapters.cnn` (the networks at initialization) and
:mod:`hessinit.chapters.cnn_training` (the same networks trained): :data:`NETWORKS` names each
builder of :mod:`hessinit.nn.convnets` with its options, :func:`build` draws one with the
kernels of an initialization scheme.

Imports: :mod:`hessinit.init` and :mod:`hessinit.nn`.
"""

from __future__ import annotations

from .. import init
from ..nn.convnets import small_cnn, small_resnet

#: The chapter's networks, each name mapped to its builder and the builder's keyword arguments.
NETWORKS = {
    "cnn relu": (small_cnn, {"activation": "relu"}),
    "cnn tanh": (small_cnn, {"activation": "tanh"}),
    "resnet": (small_resnet, {"batchnorm": False}),
    "resnet bn": (small_resnet, {"batchnorm": True}),
}


def build(network: str, scheme: str | float, seed: int, input_shape=(28, 28, 1), **kwargs):
    """One of :data:`NETWORKS` with every kernel drawn from N(0, sigma_l^2) of ``scheme``.

    Args:
        network: a key of :data:`NETWORKS`.
        scheme: as in :func:`hessinit.init.scheme_sd` (conv fan-in k k c_in).
        seed: the kernels' seed.
        input_shape: (height, width, channels) of one image.
        **kwargs: passed to the builder (e.g. ``channels``, ``dtype``).

    Returns:
        The Keras model.

    Raises:
        ValueError: an unknown network.

    Example:
        >>> import numpy as np
        >>> m = build("cnn relu", "he", 0, input_shape=(6, 6, 1), channels=(2, 2))
        >>> round(float(np.std(m.get_layer("conv2").kernel.numpy()) ** 2 * 18), 1)
        1.8
    """
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}; choose one of {list(NETWORKS)}")
    builder, options = NETWORKS[network]
    options = {**options, **kwargs, "input_shape": input_shape, "seed": seed}
    sds = init.model_kernel_sds(scheme, builder(**options))
    return builder(**options, sd=sds)
