"""The tiny stand-in files of tests/data are not the published files: their records lose the hash.

Every test here runs with the records of :data:`hessinit.data.SPECS` copied without their
published hashes (``tinyfiles.unhashed``), so that the readers and the cache layout can be tested
on tiny files in the same formats. ``tinyfiles.PUBLISHED`` keeps the real records, for the tests
of the checksum itself.
"""

import pytest
from tinyfiles import PUBLISHED, unhashed

from hessinit import data


@pytest.fixture(autouse=True)
def tiny_files_are_not_checksummed(monkeypatch):
    for name, spec in PUBLISHED.items():
        monkeypatch.setitem(data.SPECS, name, unhashed(spec))
