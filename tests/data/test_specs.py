"""The dataset records of hessinit.data.specs: complete, consistent, and enough to add a dataset.

Shapes and class counts are checked against the values documented in tinyfiles.SHAPES (written
down independently of the records), and every record's reader against tiny files in its format.
"""

import os
import shutil

import numpy as np
import pytest
from tinyfiles import (
    SHAPES,
    WRITERS,
    tiny_files_are_not_checksummed,  # noqa: F401  autouse: no published hashes
    write_mnist,
)

from hessinit import data
from hessinit.data import CacheFile, DatasetSpec, readers, specs


def test_names_are_the_records():
    assert data.NAMES == tuple(data.SPECS) == specs.NAMES
    assert data.NAMES == ("mnist-5k", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn")
    for name, spec in data.SPECS.items():
        assert spec.name == name


@pytest.mark.parametrize("name", list(SHAPES))
def test_every_record_is_complete(name):
    spec = data.SPECS[name]
    assert callable(spec.reader)
    assert (spec.input_shape, spec.num_classes) == SHAPES[name]
    assert bool(spec.files) != (spec.source is not None)  # cached or embedded, never both
    for f in spec.files:
        assert f.origin.startswith(("https://", "http://")) and f.published
        assert not f.path.startswith("/") and "\\" not in f.path
        assert f.hash is None or len(f.hash) in (32, 64)  # md5 or sha256 hex
        assert all(not m.startswith("/") for m in f.members)


def test_every_cached_record_has_a_tiny_file_writer():
    """A new record needs a writer in tinyfiles.WRITERS, so its reader is tested below."""
    assert set(WRITERS) == {name for name, spec in data.SPECS.items() if spec.files}


@pytest.mark.parametrize("name", list(WRITERS))
def test_every_reader_reads_its_format(keras_cache, name):
    x, y = WRITERS[name](keras_cache)
    spec = data.SPECS[name]
    paths, _ = data.locate(spec)
    assert all(os.path.isfile(p) for p in paths)
    rx, ry = spec.reader(paths)
    assert rx.dtype == np.uint8 and rx.shape == (len(y), *spec.input_shape)
    np.testing.assert_array_equal(rx, x)
    np.testing.assert_array_equal(ry, y)


def test_origins_one_per_published_file():
    files = [f for spec in data.SPECS.values() for f in spec.files]
    assert len({f.published for f in files}) == len(files)  # no two files share a name
    assert data.ORIGINS == {f.published: f.origin for f in files}
    assert data.ORIGINS["cifar-10-python.tar.gz"].endswith("/cifar-10-python.tar.gz")
    assert data.ORIGINS["mnist.npz"].startswith("https://storage.googleapis.com/")


def test_unknown_dataset_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid names") as err:
        data.load("imagenet")
    assert "'imagenet'" in str(err.value)
    for name in data.NAMES:
        assert name in str(err.value)


def test_offline_error_says_where_to_put_each_file(keras_cache):
    for name, spec in data.SPECS.items():
        where = data.expected_location(spec)
        for f in spec.files:
            assert str(keras_cache / "datasets" / f.path) in where, name
            if f.is_archive:
                assert f.published in where and f"{f.path}_archive" in where


def test_a_record_needs_files_or_a_source():
    with pytest.raises(ValueError, match="either files"):
        DatasetSpec("nothing", (2,), 2, readers.read_npz)
    with pytest.raises(ValueError, match="either files"):
        DatasetSpec(
            "both", (2,), 2, readers.read_npz,
            files=(CacheFile("a.npz", "https://example.org/a.npz"),), source=lambda: "here",
        )  # fmt: skip


def test_adding_a_dataset_is_one_record(keras_cache, monkeypatch):
    """A new dataset in a known format needs one record; load and the cache machinery follow."""
    x, y = write_mnist(keras_cache)
    folder = keras_cache / "datasets" / "digits"
    folder.mkdir()
    shutil.move(keras_cache / "datasets" / "mnist.npz", folder / "digits.npz")
    spec = DatasetSpec(
        name="digits",
        input_shape=(28, 28),
        num_classes=10,
        reader=readers.read_npz,
        files=(CacheFile("digits/digits.npz", "https://example.org/data/digits.npz"),),
    )
    monkeypatch.setitem(data.SPECS, "digits", spec)
    ds = data.load("digits")
    np.testing.assert_allclose(ds.x, x / 255, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(ds.y, y)
    assert ds.name == "digits" and ds.source == str(folder / "digits.npz")
