"""Shared test data."""

import numpy as np

from hessinit.data import Dataset


def random_images(n, shape, num_classes, seed):
    """A small dataset record of uniform random images in [0, 1) and random labels."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape)).astype(np.float32)
    y = rng.integers(0, num_classes, n).astype(np.int32)
    return Dataset(x, y, "tiny", num_classes, tuple(shape), "random")
