"""hessinit.data.cache: the Keras cache layout, offline errors and what a failure leaves behind.

The layout is checked against Keras' own ``get_file`` and ``keras.datasets`` loaders; downloads
go to a local port that refuses connections, so no test touches the network.
"""

import os

import keras
import numpy as np
import pytest
from keras.src.backend import config
from keras.src.datasets.cifar import load_batch as keras_load_batch
from tinyfiles import (
    CIFAR_DIRS,
    N,
    check,
    tiny_files_are_not_checksummed,  # noqa: F401  autouse: no published hashes
    write_cifar,
    write_fashion,
)

from hessinit import data
from hessinit.data import cache


@pytest.fixture
def offline(monkeypatch):
    """Point every download at a local port that refuses connections at once.

    Downloads are allowed for these tests (HESSINIT_OFFLINE unset): they test what a failed
    download leaves behind, and the port refuses before any byte leaves the machine.
    """
    monkeypatch.delenv(data.OFFLINE_ENV, raising=False)
    for fname in data.ORIGINS:
        monkeypatch.setitem(data.ORIGINS, fname, f"http://127.0.0.1:9/{fname}")


def test_keras_home_reads_the_environment_at_call_time(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "a"))
    assert data.keras_home() == str(tmp_path / "a")
    monkeypatch.setenv("KERAS_HOME", "~/b")
    assert data.keras_home() == os.path.join(os.path.expanduser("~"), "b")
    monkeypatch.delenv("KERAS_HOME")
    assert os.path.basename(data.keras_home()) == ".keras"
    assert cache.cache_path("svhn/x.mat") == os.path.join(
        data.keras_home(), "datasets", "svhn", "x.mat"
    )


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_layout_matches_keras_get_file(keras_cache, name):
    """Keras' own get_file (as called by keras.datasets.cifar*) resolves to the same folder,
    and Keras' own (restricted) batch reader reads our tiny batches."""
    write_cifar(keras_cache, name, as_archive=True)
    target, inner = CIFAR_DIRS[name]
    path = keras.utils.get_file(
        fname=target, origin="http://127.0.0.1:9/x.tar.gz", extract=True, cache_dir=str(keras_cache)
    )
    assert os.path.samefile(path, keras_cache / "datasets" / target)
    ds = data.load(name)
    assert ds.source == os.path.join(path, inner)
    fname, key = ("data_batch_1", "labels") if name == "cifar10" else ("train", "fine_labels")
    kx, ky = keras_load_batch(os.path.join(ds.source, fname), label_key=key)
    np.testing.assert_array_equal(kx.transpose(0, 2, 3, 1).astype(np.float32) / 255, ds.x[:N])
    np.testing.assert_array_equal(ky, ds.y[:N])


def test_fashion_layout_matches_keras_loader(keras_cache, monkeypatch):
    """The real keras.datasets.fashion_mnist loader reads the same files we do."""
    x, y = write_fashion(keras_cache)
    monkeypatch.setattr(config, "_KERAS_DIR", str(keras_cache))  # Keras reads KERAS_HOME at import
    (kx, ky), _ = keras.datasets.fashion_mnist.load_data()
    np.testing.assert_array_equal(kx, x)
    np.testing.assert_array_equal(ky, y)
    check(data.load("fashion_mnist"), "fashion_mnist", kx, ky)


#: Where each dataset's offline error must tell the user to put a copy.
EXPECTED = {
    "mnist": ["datasets/mnist.npz"],
    "fashion_mnist": [
        "datasets/fashion-mnist/train-images-idx3-ubyte.gz",
        "datasets/fashion-mnist/train-labels-idx1-ubyte.gz",
    ],
    "cifar10": [
        "datasets/cifar-10-batches-py-target/cifar-10-batches-py",
        "datasets/cifar-10-batches-py-target_archive",
    ],
    "cifar100": [
        "datasets/cifar-100-python-target/cifar-100-python",
        "datasets/cifar-100-python-target_archive",
    ],
    "svhn": ["datasets/svhn/train_32x32.mat"],
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_no_network_error_and_no_leftovers(keras_cache, offline, name):
    with pytest.raises(data.DatasetUnavailableError) as err:
        data.load(name)
    msg = str(err.value)
    assert isinstance(err.value, RuntimeError)
    assert repr(name) in msg and "mnist-5k" in msg and "127.0.0.1:9" in msg
    for where in EXPECTED[name]:
        assert str(keras_cache / where) in msg
    assert "Put a pre-downloaded copy at: " + str(keras_cache / EXPECTED[name][0]) in msg
    assert not keras_cache.exists(), list(keras_cache.rglob("*"))  # nothing partial left behind


def test_no_network_keeps_existing_files(keras_cache, offline):
    """A failed download removes only what it created, never files that were there before."""
    write_fashion(keras_cache, which=("images",))
    other = keras_cache / "datasets" / "keep.txt"
    other.write_text("x")
    before = sorted(keras_cache.rglob("*"))
    with pytest.raises(data.DatasetUnavailableError, match="train-labels-idx1-ubyte.gz"):
        data.load("fashion_mnist")
    assert sorted(keras_cache.rglob("*")) == before
    # an existing, empty cache root also stays as it was
    with pytest.raises(data.DatasetUnavailableError):
        data.load("svhn")
    assert sorted(keras_cache.rglob("*")) == before


def test_corrupt_cifar_archive(keras_cache):
    (keras_cache / "datasets").mkdir(parents=True)
    archive = keras_cache / "datasets" / "cifar-10-batches-py-target_archive"
    archive.write_bytes(b"not a tarball")
    with pytest.raises(data.DatasetUnavailableError, match="could not extract") as err:
        data.load("cifar10")
    assert "cifar-10-python.tar.gz" in str(err.value) and "mnist-5k" in str(err.value)
    assert archive.exists()
    assert not (keras_cache / "datasets" / "cifar-10-batches-py-target").exists()
