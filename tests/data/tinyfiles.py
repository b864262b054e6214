"""Tiny dataset files in the exact formats and Keras cache layout that hessinit.data reads.

Each writer puts a few random images into a Keras cache root and returns the uint8 images and
labels it wrote, the independent reference the loaded record is checked against.
"""

import gzip
import pickle
import struct
import tarfile
from dataclasses import replace

import keras  # noqa: F401  imported before any test sets KERAS_HOME: its import writes keras.json
import numpy as np
import pytest

from hessinit import data

N = 12  # images per tiny file

#: The records as published (with their hashes), before any test replaces them.
PUBLISHED = dict(data.SPECS)


def unhashed(spec):
    """``spec`` with every file's hash removed (the tiny files cannot match a published hash)."""
    return replace(spec, files=tuple(replace(f, hash=None) for f in spec.files))


@pytest.fixture(autouse=True)
def tiny_files_are_not_checksummed(monkeypatch):
    """The records without their published hashes, for the tests on tiny stand-in files.

    Autouse in every test module that imports it (tests/data has no conftest.py of its own:
    the suite's modules import ``conftest`` by name, so a second one would shadow the root's).
    """
    for name, spec in PUBLISHED.items():
        monkeypatch.setitem(data.SPECS, name, unhashed(spec))


def pixels(shape, seed=0):
    """Uniform random uint8 pixels."""
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def labels(k, num_classes, seed=1):
    """Uniform random uint8 labels in 0..num_classes-1."""
    return np.random.default_rng(seed).integers(0, num_classes, size=k).astype(np.uint8)


def write_mnist(home, shape=(28, 28)):
    """``datasets/mnist.npz`` with train and test arrays, as Keras serves it."""
    x, y = pixels((N, *shape)), labels(N, 10)
    path = home / "datasets" / "mnist.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    return x, y


def idx_gz(path, arr):
    """IDX format as served by Fashion-MNIST: big-endian magic, dims, then raw uint8."""
    header = struct.pack(">I", 0x0800 + arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.tobytes())


def write_fashion(home, which=("images", "labels")):
    """``datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``."""
    x, y = pixels((N, 28, 28)), labels(N, 10)
    d = home / "datasets" / "fashion-mnist"
    d.mkdir(parents=True, exist_ok=True)
    if "images" in which:
        idx_gz(d / "train-images-idx3-ubyte.gz", x)
        idx_gz(d / "t10k-images-idx3-ubyte.gz", x[:2])
    if "labels" in which:
        idx_gz(d / "train-labels-idx1-ubyte.gz", y)
        idx_gz(d / "t10k-labels-idx1-ubyte.gz", y[:2])
    return x, y


def cifar_files(name):
    """(filename, dict) pairs of a tiny CIFAR in the original pickled-batch format."""
    if name == "cifar10":
        rows, ys = pixels((5 * N, 3072)), labels(5 * N, 10)
        batches = [
            (
                f"data_batch_{i + 1}",
                {b"data": rows[i * N : (i + 1) * N], b"labels": ys[i * N : (i + 1) * N].tolist()},
            )
            for i in range(5)
        ]
        batches.append(("test_batch", {b"data": rows[:2], b"labels": ys[:2].tolist()}))
        batches.append(("batches.meta", {b"label_names": [b"c%d" % i for i in range(10)]}))
    else:
        rows, ys = pixels((N, 3072)), labels(N, 100)
        train = {b"data": rows, b"fine_labels": ys.tolist(), b"coarse_labels": [0] * N}
        batches = [("train", train), ("test", {b"data": rows[:2], b"fine_labels": [0, 1]})]
        batches.append(("meta", {b"fine_label_names": [b"f%d" % i for i in range(100)]}))
    # Expected images: rows are channel-major (3, 32, 32) -> (32, 32, 3).
    return batches, rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), ys


#: Keras 3's extraction folder and the folder inside the archive.
CIFAR_DIRS = {
    "cifar10": ("cifar-10-batches-py-target", "cifar-10-batches-py"),
    "cifar100": ("cifar-100-python-target", "cifar-100-python"),
}


def write_cifar(home, name, as_archive=False):
    """The extracted CIFAR folder, or only the ``<dir>-target_archive`` Keras 3 keeps."""
    batches, x, y = cifar_files(name)
    target, inner = CIFAR_DIRS[name]
    stage = home / "stage" if as_archive else home / "datasets" / target
    (stage / inner).mkdir(parents=True)
    for fname, d in batches:
        with open(stage / inner / fname, "wb") as f:
            pickle.dump(d, f, protocol=3)  # BINBYTES like the Py2 originals; no _codecs
    if as_archive:  # what Keras 3 keeps after downloading cifar-*-python.tar.gz
        (home / "datasets").mkdir(parents=True, exist_ok=True)
        with tarfile.open(home / "datasets" / f"{target}_archive", "w:gz") as tar:
            tar.add(stage / inner, arcname=inner)
    return x, y


def write_svhn(home):
    """``datasets/svhn/train_32x32.mat``: X (32, 32, 3, N), y (N, 1) with digit 0 as 10."""
    import scipy.io

    x, y = pixels((N, 32, 32, 3)), labels(N, 10)
    y_mat = np.where(y == 0, 10, y).reshape(-1, 1)
    path = home / "datasets" / "svhn" / "train_32x32.mat"
    path.parent.mkdir(parents=True)
    scipy.io.savemat(path, {"X": np.transpose(x, (1, 2, 3, 0)), "y": y_mat})
    return x, y


#: A writer for every dataset read from the Keras cache (every record with files).
WRITERS = {
    "mnist": write_mnist,
    "fashion_mnist": write_fashion,
    "cifar10": lambda h: write_cifar(h, "cifar10"),
    "cifar100": lambda h: write_cifar(h, "cifar100"),
    "svhn": write_svhn,
}

#: Image shape and number of classes of each dataset, as documented (not read from the records).
SHAPES = {
    "mnist-5k": ((28, 28), 10),
    "mnist": ((28, 28), 10),
    "fashion_mnist": ((28, 28), 10),
    "cifar10": ((32, 32, 3), 10),
    "cifar100": ((32, 32, 3), 100),
    "svhn": ((32, 32, 3), 10),
}


def check(ds, name, x, y):
    """``ds`` is the record of ``name`` holding the uint8 images ``x`` / 255 and labels ``y``."""
    shape, num_classes = SHAPES[name]
    assert ds.name == name and ds.num_classes == num_classes
    assert ds.input_shape == shape == ds.x.shape[1:]
    assert ds.x.dtype == np.float32 and ds.y.dtype == np.int32
    assert ds.x.shape == (len(y), *shape) and ds.y.shape == (len(y),)
    assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0
    np.testing.assert_allclose(ds.x, x.astype(np.float32) / 255, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(ds.y, y)
