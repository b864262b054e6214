"""Checksums of cached files, corrupt-file errors and the switch that forbids downloads.

References: the published sha256 of Keras' ``mnist.npz`` (from its record, computed by nobody
here), digests computed by :mod:`hashlib` on the files the tests write, and a spy on
``keras.utils.get_file`` that fails the test if a download is attempted.
"""

import hashlib
import os
from dataclasses import replace

import keras
import numpy as np
import pytest
from tinyfiles import (
    PUBLISHED,
    tiny_files_are_not_checksummed,  # noqa: F401  autouse: no published hashes
    write_mnist,
    write_svhn,
)

from hessinit import data
from hessinit.data import cache


@pytest.fixture
def no_download(monkeypatch):
    """Fail the test if anything calls keras.utils.get_file."""

    def spy(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {kwargs.get('origin')}")

    monkeypatch.setattr(keras.utils, "get_file", spy)


def test_the_suite_runs_with_downloads_switched_off():
    assert os.environ.get(data.OFFLINE_ENV) == "1"
    assert not data.downloads_allowed()


@pytest.mark.parametrize("value", ["", "0", "false", "No"])
def test_downloads_allowed_unless_switched_off(monkeypatch, value):
    monkeypatch.setenv(data.OFFLINE_ENV, value)
    assert data.downloads_allowed()
    monkeypatch.delenv(data.OFFLINE_ENV)
    assert data.downloads_allowed()


@pytest.mark.parametrize("name", ["mnist", "cifar10", "svhn"])
def test_offline_switch_refuses_to_download(keras_cache, no_download, monkeypatch, name):
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    with pytest.raises(data.DatasetUnavailableError) as err:
        data.load(name)
    msg = str(err.value)
    assert "HESSINIT_OFFLINE=1" in msg and "downloads are switched off" in msg
    assert repr(name) in msg and data.expected_location(data.SPECS[name]) in msg
    assert not isinstance(err.value, data.DatasetCorruptError)
    assert not keras_cache.exists()  # nothing created


def _published(monkeypatch, name):
    """Restore the published record (with its hash) of ``name`` for this test."""
    monkeypatch.setitem(data.SPECS, name, PUBLISHED[name])
    return PUBLISHED[name]


def test_truncated_mnist_names_dataset_path_and_remedy(keras_cache, no_download, monkeypatch):
    spec = _published(monkeypatch, "mnist")
    write_mnist(keras_cache)
    path = keras_cache / "datasets" / "mnist.npz"
    path.write_bytes(path.read_bytes()[:1000])  # an interrupted download
    with pytest.raises(data.DatasetCorruptError) as err:
        data.load("mnist")
    msg = str(err.value)
    assert "Dataset 'mnist'" in msg and f"{path} (1000 bytes) is corrupt" in msg
    assert hashlib.sha256(path.read_bytes()).hexdigest() in msg and spec.files[0].hash in msg
    assert f"Delete {path} (the next load downloads it again)" in msg
    assert data.ORIGINS["mnist.npz"] in msg and "pickled" not in msg
    assert isinstance(err.value, data.DatasetUnavailableError)  # reported as unavailable
    assert path.exists()  # the user's file is left for them to inspect


def test_a_file_with_the_published_hash_is_accepted_once(keras_cache, monkeypatch):
    """A record whose hash is the file's own digest accepts it, and does not hash it twice."""
    x, y = write_mnist(keras_cache)
    path = keras_cache / "datasets" / "mnist.npz"
    spec = PUBLISHED["mnist"]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(
        data.SPECS, "mnist", replace(spec, files=(replace(spec.files[0], hash=digest),))
    )
    calls = []
    real = cache._digest
    monkeypatch.setattr(cache, "_digest", lambda *a: calls.append(a) or real(*a))
    np.testing.assert_array_equal(data.load("mnist").y, y)
    np.testing.assert_array_equal(data.load("mnist").y, y)
    assert len(calls) == 1
    os.utime(path, ns=(1, 1))  # a changed file (new mtime) is checked again
    data.load("mnist")
    assert len(calls) == 2


def test_md5_records_are_checked(keras_cache, no_download, monkeypatch):
    _published(monkeypatch, "svhn")
    write_svhn(keras_cache)
    path = keras_cache / "datasets" / "svhn" / "train_32x32.mat"
    with pytest.raises(data.DatasetCorruptError, match="its md5 is") as err:
        data.load("svhn")
    assert hashlib.md5(path.read_bytes()).hexdigest() in str(err.value)


def test_a_corrupt_kept_archive_is_not_extracted(keras_cache, no_download, monkeypatch):
    _published(monkeypatch, "cifar10")
    (keras_cache / "datasets").mkdir(parents=True)
    archive = keras_cache / "datasets" / "cifar-10-batches-py-target_archive"
    archive.write_bytes(b"\x1f\x8b half a download")
    with pytest.raises(data.DatasetCorruptError, match="cifar-10-python.tar.gz") as err:
        data.load("cifar10")
    assert str(archive) in str(err.value)
    assert not (keras_cache / "datasets" / "cifar-10-batches-py-target").exists()


def test_unreadable_file_without_hash_names_dataset_path_and_remedy(keras_cache, no_download):
    """Without a recorded hash (here: the tiny-file records), the reader's failure is reported."""
    write_mnist(keras_cache)
    path = keras_cache / "datasets" / "mnist.npz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(data.DatasetCorruptError) as err:
        data.load("mnist")
    msg = str(err.value)
    assert f"Dataset 'mnist': the cached file(s) at {path} cannot be read" in msg
    assert f"Delete {path}" in msg


def test_bad_fashion_files_name_their_folder(keras_cache, no_download):
    folder = keras_cache / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (folder / name).write_bytes(b"not gzip")
    with pytest.raises(data.DatasetCorruptError, match="fashion_mnist") as err:
        data.load("fashion_mnist")
    assert f"cached file(s) at {folder} cannot be read" in str(err.value)
