"""Shared test data: a random dataset record and an empty Keras cache root."""

import os

import numpy as np
import pytest

from hessinit.data import Dataset

# No test ever downloads a dataset: a missing file is an error (hessinit.data.downloads_allowed).
# Set here, at collection, so that notebooks and commands the tests start inherit it too.
os.environ["HESSINIT_OFFLINE"] = "1"


def random_images(n, shape, num_classes, seed):
    """A small dataset record of uniform random images in [0, 1) and random labels."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape)).astype(np.float32)
    y = rng.integers(0, num_classes, n).astype(np.int32)
    return Dataset(x, y, "tiny", num_classes, tuple(shape), "random")


@pytest.fixture
def keras_cache(tmp_path, monkeypatch):
    """A fresh Keras cache root (not yet created), set via KERAS_HOME for this test only.

    hessinit.data reads KERAS_HOME at call time. Import keras before using this fixture (its
    import writes keras.json into the cache root it finds).
    """
    root = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(root))
    return root
