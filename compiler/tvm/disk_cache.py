"""The disk cache of compiled TVM libraries: `$KGRAPH_HOME/cache/tvm/<key>.so`.

Keys hash the ONNX graph, the target, the static shapes, the tuning budget and the kgraph and
TVM versions. Each entry's sha256 is stored beside it and checked before the library is loaded,
so a corrupted or swapped file is discarded and rebuilt, never loaded. The directory is created
0700 and refused (with a warning; compiles then stay in memory) when another user owns it or
when group or others may write to it.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import warnings

CACHE_FORMAT = 1  # bump when the pipeline changes what a key's library holds


class UnsafeCacheWarning(UserWarning):
    """The cache directory is not private to this user; nothing is read from or written to it."""


def cache_root() -> str:
    from kgraph import config

    return os.path.join(config.kgraph_home(), "cache", "tvm")


def entry_key(model_bytes: bytes, target: str, static_shapes=None, tune_trials=0) -> str:
    """The cache key of one compile: graph + target + shapes + tuning budget + versions."""
    import tvm

    import kgraph

    header = json.dumps({"target": target, "tune_trials": int(tune_trials),
                         "static_shapes": {k: list(map(int, v))
                                           for k, v in sorted((static_shapes or {}).items())},
                         "kgraph": kgraph.__version__, "tvm": tvm.__version__,
                         "format": CACHE_FORMAT}, sort_keys=True)
    digest = hashlib.sha256(header.encode())
    digest.update(model_bytes)
    return digest.hexdigest()


def private_dir(path: str) -> str | None:
    """`path` (and its missing parents) created 0700; None, with a warning, when it exists but
    is owned by another user or writable by group or others."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.stat(path)
    except OSError as error:
        warnings.warn(f"kgraph cannot use the TVM cache directory {path!r} ({error}); "
                      f"compiling in memory", UnsafeCacheWarning, stacklevel=3)
        return None
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        warnings.warn(f"kgraph refuses the TVM cache directory {path!r}: owned by uid "
                      f"{info.st_uid} with mode {stat.filemode(info.st_mode)}; it must belong "
                      f"to uid {os.getuid()} and not be group- or world-writable (chmod 700 "
                      f"it). Compiling in memory", UnsafeCacheWarning, stacklevel=3)
        return None
    return path


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DiskCache:
    """Verified library files under one private directory."""

    def __init__(self, root: str | None = None):
        root = root or cache_root()
        parent_ok = private_dir(os.path.dirname(root)) is not None
        self.root = private_dir(root) if parent_ok else None

    @property
    def usable(self) -> bool:
        return self.root is not None

    def _paths(self, key):
        base = os.path.join(self.root, key)
        return base + ".so", base + ".sha256"

    def lookup(self, key: str) -> str | None:
        """The verified library path of `key`, or None (a bad entry is deleted)."""
        if not self.usable:
            return None
        library, checksum = self._paths(key)
        if not os.path.exists(library):
            return None
        try:
            with open(checksum) as f:
                expected = f.read().strip()
        except OSError:
            expected = None
        if expected != sha256_file(library):
            warnings.warn(f"kgraph discarded the TVM cache entry {library!r}: its sha256 does "
                          f"not match the stored checksum; rebuilding", stacklevel=3)
            self.discard(key)
            return None
        return library

    def store(self, key: str, write) -> str | None:
        """Write an entry with `write(path)` (atomically: temp file + rename); its path."""
        if not self.usable:
            return None
        library, checksum = self._paths(key)
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            staged = os.path.join(tmp, "lib.so")
            write(staged)
            digest = sha256_file(staged)
            with open(os.path.join(tmp, "sha256"), "w") as f:
                f.write(digest)
            os.replace(os.path.join(tmp, "sha256"), checksum)
            os.replace(staged, library)
        return library

    def discard(self, key: str):
        for path in self._paths(key):
            if os.path.exists(path):
                os.remove(path)

    def tuning_dir(self, key: str) -> str:
        """Where the tuning records of graph `key` live (a temporary directory when the cache
        is refused)."""
        if not self.usable:
            return tempfile.mkdtemp(prefix="kgraph-tuning-")
        path = os.path.join(self.root, "tuning", key)
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path

