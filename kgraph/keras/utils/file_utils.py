"""`keras.utils.get_file`: fetch a file into `$KGRAPH_HOME/datasets`, check its hash, and
extract zip/tar archives without letting a member escape the target directory."""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile


class ArchiveError(ValueError):
    """An archive member that would land outside the extraction directory (`../`, an
    absolute path, or a link pointing out)."""


class FileHashError(ValueError):
    """A fetched file whose hash differs from `file_hash`."""


def cache_dir(cache_subdir="datasets", cache_dir=None):
    from kgraph import config

    root = os.path.expanduser(cache_dir) if cache_dir else config.kgraph_home()
    path = os.path.join(root, cache_subdir)
    os.makedirs(path, exist_ok=True)
    return path


def hash_file(path, algorithm="sha256", chunk_size=1 << 20):
    """The hex digest of the file at `path` (`"sha256"`, `"md5"`, or `"auto"`: sha256)."""
    digest = hashlib.md5() if algorithm == "md5" else hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_hash(path, file_hash, algorithm, name):
    if algorithm == "auto":
        algorithm = "md5" if len(file_hash) == 32 else "sha256"
    actual = hash_file(path, algorithm)
    if actual != file_hash:
        raise FileHashError(f"{name!r} has {algorithm} {actual}, not the expected {file_hash}; "
                            f"it was not kept. Check `file_hash` or the origin.")


def _inside(root, target):
    root = os.path.realpath(root)
    return os.path.commonpath([root, os.path.realpath(target)]) == root


def _safe_tar_members(archive, target):
    for member in archive.getmembers():
        where = os.path.join(target, member.name)
        if not _inside(target, where):
            raise ArchiveError(f"Archive member {member.name!r} would be written outside "
                               f"{target!r}; nothing was extracted.")
        if member.issym() or member.islnk():
            base = target if member.islnk() else os.path.dirname(where)
            if os.path.isabs(member.linkname) or not _inside(
                    target, os.path.join(base, member.linkname)):
                raise ArchiveError(f"Archive member {member.name!r} links to "
                                   f"{member.linkname!r}, outside {target!r}; nothing was "
                                   f"extracted.")
        elif not (member.isfile() or member.isdir()):
            raise ArchiveError(f"Archive member {member.name!r} is a device or fifo; refused.")
    return archive.getmembers()


def extract_archive(path, target):
    """Extract a zip or tar(.gz/.bz2/.xz) file into `target`, checking every member first."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if os.path.isabs(name) or not _inside(target, os.path.join(target, name)):
                    raise ArchiveError(f"Archive member {name!r} would be written outside "
                                       f"{target!r}; nothing was extracted.")
            archive.extractall(target)
        return target
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            members = _safe_tar_members(archive, target)
            archive.extractall(target, members=members)
        return target
    raise ArchiveError(f"{path!r} is neither a zip nor a tar archive.")


def _fetch(origin, destination, final):
    parsed = urllib.parse.urlparse(origin)
    if parsed.scheme in ("", "file"):
        source = urllib.request.url2pathname(parsed.path) if parsed.scheme else origin
        if not os.path.isfile(source):
            raise FileNotFoundError(f"get_file: {source!r} does not exist.")
        shutil.copyfile(source, destination)
        return
    try:
        with urllib.request.urlopen(origin, timeout=60) as response, \
                open(destination, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as error:
        raise ConnectionError(f"get_file: could not download {origin!r} ({error}). When "
                              f"offline, place the file at {final!r}.") from None


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None,
             cache_subdir="datasets", hash_algorithm="auto", extract=False,
             archive_format="auto", cache_dir=None, force_download=False):
    """The local path of `fname`, fetched from `origin` (an http(s) URL, a `file://` URL or a
    local path) into `$KGRAPH_HOME/<cache_subdir>` unless already there.

    Args:
        fname: the file name in the cache (default: the last part of `origin`).
        origin: where to fetch it from.
        file_hash: expected sha256 (or md5) hex digest; a mismatch raises `FileHashError`.
        extract: extract a zip/tar file next to it; returns the extraction directory. Members
            that would land outside it (`..`, absolute paths, links out) raise `ArchiveError`.
        cache_dir, cache_subdir: where the cache lives.
        force_download: fetch even when the file is cached.

    Returns:
        The path of the file (or of the extracted directory).
    """
    if origin is None and fname is None:
        raise ValueError("get_file: pass `origin` (and optionally `fname`).")
    fname = fname or os.path.basename(urllib.parse.urlparse(origin).path)
    directory = _cache_dir(cache_subdir, cache_dir)
    path = os.path.join(directory, fname)
    file_hash = file_hash or md5_hash
    if force_download or not os.path.exists(path):
        if origin is None:
            raise FileNotFoundError(f"get_file: {path!r} is not cached and no `origin` was "
                                    f"given.")
        handle, partial = tempfile.mkstemp(dir=directory, prefix=".download-")
        os.close(handle)
        try:
            _fetch(origin, partial, path)
            if file_hash:
                _check_hash(partial, file_hash, hash_algorithm, f"{fname} from {origin}")
            os.replace(partial, path)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
    elif file_hash:
        _check_hash(path, file_hash, hash_algorithm, path)
    if extract or untar:
        target = path.rsplit(".tar", 1)[0] if ".tar" in fname else os.path.splitext(path)[0]
        if not os.path.isdir(target):
            staging = tempfile.mkdtemp(dir=directory, prefix=".extract-")
            try:
                extract_archive(path, staging)
                os.replace(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return target
    return path


_cache_dir = cache_dir
