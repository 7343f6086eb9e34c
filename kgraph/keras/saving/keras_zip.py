"""The Keras 3 `.keras` archive (keras-formats.md §4): a ZIP_STORED zip holding
`metadata.json`, `config.json` and `model.weights.h5`, in that order.

Reading never extracts anything to disk. Members are checked first: names that would land
outside the archive (absolute, `..`, drive letters, backslashes), symlinks, duplicates and
encrypted members are refused with `UnsafeFileError`. A member is read in chunks, counting
what it really expands to against both its declared size and the load limit
(`KGRAPH_MAX_LOAD_BYTES`, by default 16 times the archive's size: Keras stores members
uncompressed), so a small archive never expands into gigabytes of memory.
"""
from __future__ import annotations

import datetime
import io
import json
import os
import re
import stat
import zipfile

import h5py

from kgraph.keras import saving_safety
from kgraph.keras.saving import h5_safe
from kgraph.keras.saving.compile_config import compile_from_config
from kgraph.keras.saving.errors import InvalidFileError, LoadLimitError, UnsafeFileError
from kgraph.keras.saving.weights_store import load_weights_from_h5, save_weights_to_h5

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
METADATA, CONFIG, WEIGHTS = "metadata.json", "config.json", "model.weights.h5"
MAX_JSON_BYTES = 256 * 1024 ** 2
CHUNK_BYTES = 1024 ** 2


def write_keras_archive(model, fileobj) -> None:
    """Write `model` (config, weights, optimizer state) as a `.keras` archive."""
    from kgraph import keras
    from kgraph.keras.models.config import serialize_model

    config_json = json.dumps(serialize_model(model))
    metadata = json.dumps({"keras_version": keras.__version__,
                           "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")})
    weights = io.BytesIO()
    with h5py.File(weights, "w") as f:
        save_weights_to_h5(model, f)
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(METADATA, metadata)
        zf.writestr(CONFIG, config_json)
        zf.writestr(WEIGHTS, weights.getvalue())
        write_object_assets(model, zf)


def _asset_folder(path) -> str:
    return f"assets/{path}/" if path else "assets/"


def write_object_assets(model, zf) -> None:
    """Files an object's own `save_assets(inner_path)` writes (a custom layer's vocabulary)
    stored under `assets/<path>/`, at the object's path in the weights walk, as Keras does."""
    import tempfile

    from kgraph.keras.saving.weights_store import walk

    for obj, path in walk(model):
        if not callable(getattr(obj, "save_assets", None)):
            continue
        with tempfile.TemporaryDirectory() as inner:
            obj.save_assets(inner)
            for folder, _, files in os.walk(inner):
                for file in sorted(files):
                    full = os.path.join(folder, file)
                    name = os.path.relpath(full, inner).replace(os.sep, "/")
                    zf.write(full, _asset_folder(path) + name)


def load_object_assets(model, archive) -> None:
    """Hand each object with `load_assets(inner_path)` a folder holding its saved assets."""
    import tempfile

    from kgraph.keras.saving.weights_store import walk

    for obj, path in walk(model):
        if not callable(getattr(obj, "load_assets", None)):
            continue
        prefix = _asset_folder(path)
        with tempfile.TemporaryDirectory() as inner:
            for name in archive.members:  # names checked safe when the archive was opened
                if name.startswith(prefix) and not name.endswith("/"):
                    target = os.path.join(inner, *name[len(prefix):].split("/"))
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with open(target, "wb") as out:
                        out.write(archive.read(name).getvalue())
            obj.load_assets(inner)


class KerasArchive:
    """A checked, read-only view of a `.keras` file."""

    def __init__(self, source, label):
        self.label = label
        self.limit = saving_safety.max_load_bytes(_size_of(source))
        try:
            self.zf = zipfile.ZipFile(source, "r")
        except (zipfile.BadZipFile, OSError) as e:
            raise InvalidFileError(f"{label}: not a valid .keras (zip) archive ({e})") from None
        try:
            self.members = _check_members(self.zf, label)
        except Exception:
            self.zf.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.zf.close()

    def read(self, name, limit=None) -> io.BytesIO:
        """The member `name`, expanded in memory: at most its declared size and at most
        `limit` (never more than the load limit) bytes, counted while it expands."""
        info = self.members.get(name)
        if info is None:
            raise InvalidFileError(f"{self.label}: the archive has no {name!r} member")
        limit = self.limit if limit is None else min(limit, self.limit)
        if info.file_size > limit:
            raise LoadLimitError(
                f"{self.label}: zip member {name!r} declares {info.file_size} bytes "
                f"({info.compress_size} stored), more than the {limit} bytes allowed for it; "
                f"refused before expanding it. If you trust the file, raise the limit with "
                f"{saving_safety.LIMIT_VARIABLE}=<bytes>.")
        out = io.BytesIO()
        try:
            with self.zf.open(info) as fh:
                while chunk := fh.read(CHUNK_BYTES):
                    if out.tell() + len(chunk) > info.file_size:
                        raise UnsafeFileError(f"{self.label}: zip member {name!r} expands "
                                              f"beyond its declared size {info.file_size}")
                    out.write(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, zlib_error()) as e:
            raise InvalidFileError(f"{self.label}: member {name!r} is corrupt ({e})") from None
        if out.tell() != info.file_size:
            raise InvalidFileError(f"{self.label}: zip member {name!r} expands to "
                                   f"{out.tell()} bytes, not its declared {info.file_size}")
        out.seek(0)
        return out

    def read_json(self, name):
        text = self.read(name, MAX_JSON_BYTES).getvalue()
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as e:
            raise InvalidFileError(f"{self.label}: {name} is not valid JSON ({e})") from None

    def open_weights(self):
        if WEIGHTS not in self.members:
            other = [n for n in self.members if n.startswith("model.weights")]
            raise InvalidFileError(f"{self.label}: the archive has no {WEIGHTS!r} member "
                                   f"(found {other or sorted(self.members)}); only HDF5 weights "
                                   f"are supported")
        return h5_safe.open_h5(self.read(WEIGHTS), f"{self.label}:{WEIGHTS}")


def _unsafe_name(name) -> bool:
    parts = name.replace("\\", "/").split("/")
    return (name.startswith("/") or "\\" in name or "\x00" in name or ".." in parts
            or re.match(r"^[A-Za-z]:", name) is not None)


def _check_members(zf, label) -> dict:
    members = {}
    for info in zf.infolist():
        name = info.filename
        if _unsafe_name(name):
            raise UnsafeFileError(f"{label}: zip member {name!r} points outside the archive")
        if name in members:
            raise UnsafeFileError(f"{label}: zip member {name!r} appears twice")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeFileError(f"{label}: zip member {name!r} is a symbolic link")
        if info.flag_bits & 0x1:
            raise InvalidFileError(f"{label}: zip member {name!r} is encrypted")
        members[name] = info
    return members


def _size_of(source) -> int | None:
    """The archive's size in bytes (None for a file object: the limit is then absolute)."""
    return os.path.getsize(source) if isinstance(source, (str, os.PathLike)) else None


def zlib_error():
    import zlib

    return zlib.error


def load_keras_archive(source, label, custom_objects=None, compile=True, safe_mode=True):
    """The model stored in a `.keras` archive, compiled when it has a compile_config."""
    from kgraph.keras.models.config import deserialize_model
    from kgraph.keras.saving.serialization_lib import check_config_safety

    with KerasArchive(source, label) as archive:
        config = archive.read_json(CONFIG)
        if not isinstance(config, dict):
            raise InvalidFileError(f"{label}: config.json does not hold a model config")
        check_config_safety(config, safe_mode)
        compile_config = config.pop("compile_config", None)
        model = deserialize_model(config, custom_objects, safe_mode)
        if compile and compile_config:
            compile_from_config(model, compile_config, custom_objects, label)
        with archive.open_weights() as f:
            load_weights_from_h5(model, f, label)
        load_vocabulary_assets(model, archive)
        load_object_assets(model, archive)
    return model


def load_vocabulary_assets(model, archive) -> None:
    """Adapted lookup vocabularies that Keras saved as assets (`assets/<path>/vocabulary.txt`,
    at the object's path in the weights walk); kgraph writes them into the config instead."""
    from kgraph.keras.saving.weights_store import walk

    for obj, path in walk(model):
        name = f"assets/{path}/vocabulary.txt" if path else "assets/vocabulary.txt"
        if name in archive.members and hasattr(obj, "load_vocabulary_asset"):
            obj.load_vocabulary_asset(archive.read(name).getvalue().decode("utf-8"))


def load_archive_weights(model, source, label, skip_mismatch=False) -> None:
    with KerasArchive(source, label) as archive, archive.open_weights() as f:
        load_weights_from_h5(model, f, label, skip_mismatch)
