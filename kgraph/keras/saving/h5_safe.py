"""Hardened HDF5 access (keras-formats.md §4 "Hardened reader").

A file is scanned once when opened: soft links and external links anywhere, external or
virtual datasets, non-numeric datasets and "shape bombs" (declared > 4 GiB and > 1000x the
stored bytes) are refused with `UnsafeFileError` before any value is read. Readers then only
use hard-linked groups and datasets. No pickle is involved anywhere: values are plain
numeric arrays.
"""
from __future__ import annotations

import h5py
import numpy as np

from kgraph.keras.saving.errors import InvalidFileError, UnsafeFileError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
HDF5_OBJECT_HEADER_LIMIT = 64512
SHAPE_BOMB_BYTES = 4 * 1024 ** 3
SHAPE_BOMB_RATIO = 1000
MAX_OBJECTS = 1_000_000


def open_h5(source, label=None) -> h5py.File:
    """Open `source` (a path or a file object) read-only and check the whole file."""
    label = label or source
    try:
        f = h5py.File(source, "r")
    except (OSError, ValueError) as e:
        raise InvalidFileError(f"{label}: not a readable HDF5 file ({e})") from None
    try:
        check_file(f, label)
    except Exception:
        f.close()
        raise
    return f


def check_file(f: h5py.File, label) -> None:
    """Refuse links that leave the file and datasets that are not plain stored arrays."""
    problems, count = [], [0]

    def visit_link(name, link):  # h5py callbacks must not raise: record and stop instead
        count[0] += 1
        if count[0] > MAX_OBJECTS:
            problems.append(UnsafeFileError(f"{label}: more than {MAX_OBJECTS} HDF5 objects"))
        elif isinstance(link, h5py.ExternalLink):
            problems.append(UnsafeFileError(
                f"{label}: HDF5 external link {name!r} -> {link.filename}:{link.path} refused "
                f"(it could read another file)"))
        elif isinstance(link, h5py.SoftLink):
            problems.append(UnsafeFileError(f"{label}: HDF5 soft link {name!r} -> "
                                            f"{link.path!r} refused"))
        return True if problems else None

    def visit_object(name, obj):
        if isinstance(obj, h5py.Dataset):
            try:
                check_dataset(obj, label)
            except UnsafeFileError as e:
                problems.append(e)
                return True
        return None

    _visit_links(f, visit_link)
    if not problems:
        f.visititems(visit_object)
    if problems:
        raise problems[0]


def _visit_links(group, fn, prefix=""):
    if hasattr(group, "visititems_links"):
        group.visititems_links(fn)
        return
    seen = set()  # h5py < 3.11: walk by hand, each group once (hard links may form cycles)
    stack = [(group, prefix)]
    while stack:
        g, base = stack.pop()
        for key in g:
            link = g.get(key, getlink=True)
            if fn(base + key, link) is not None:
                return
            if isinstance(link, h5py.HardLink):
                child = g[key]
                token = child.id.__hash__()
                if isinstance(child, h5py.Group) and token not in seen:
                    seen.add(token)
                    stack.append((child, base + key + "/"))


def check_dataset(ds: h5py.Dataset, label) -> None:
    name = ds.name
    if ds.external:
        raise UnsafeFileError(f"{label}: dataset {name!r} keeps its data in external files "
                              f"{[e[0] for e in ds.external]}; refused")
    if ds.is_virtual:
        raise UnsafeFileError(f"{label}: dataset {name!r} is a virtual dataset (it maps "
                              f"other files); refused")
    kind = ds.dtype.kind  # complex too is refused: assigning it would drop the imaginary part
    if kind not in "biuf" and not _is_bfloat16(ds):
        raise UnsafeFileError(f"{label}: dataset {name!r} has dtype {ds.dtype}, not a "
                              f"numeric weight array; refused")
    declared = int(np.prod(ds.shape, dtype=np.float64) * ds.dtype.itemsize) if ds.shape else \
        ds.dtype.itemsize
    stored = ds.id.get_storage_size()
    if declared > SHAPE_BOMB_BYTES and declared > SHAPE_BOMB_RATIO * max(stored, 1):
        raise UnsafeFileError(f"{label}: dataset {name!r} declares shape {ds.shape} "
                              f"({declared} bytes) but stores only {stored} bytes; refused as "
                              f"a shape bomb")


def _is_bfloat16(ds) -> bool:
    return ds.dtype.kind == "V" and ds.dtype.itemsize == 2 and \
        _attr_str(ds.attrs.get("dtype")) == "bfloat16"


def read_dataset(ds, label=None) -> np.ndarray:
    """The array stored in `ds` (checked again: callers may hold a group of another file).
    Plain arrays pass through, so callers can mix stored and in-memory values."""
    if not isinstance(ds, h5py.Dataset):
        return np.asarray(ds)
    check_dataset(ds, label or ds.file.filename)
    stored_as = _attr_str(ds.attrs.get("dtype"))
    if stored_as == "bfloat16":
        import ml_dtypes

        raw = ds[()]
        if raw.dtype.kind == "V":
            return np.frombuffer(raw.tobytes(), dtype=ml_dtypes.bfloat16).reshape(ds.shape)
        return np.asarray(raw).astype(ml_dtypes.bfloat16)
    return np.asarray(ds[()])


def child(group, name, label=None):
    """`group[name]` through hard links only; None when absent. `name` may contain '/'."""
    node = group
    for part in [p for p in str(name).split("/") if p]:
        if not isinstance(node, h5py.Group):
            return None
        link = node.get(part, getlink=True)
        if link is None:
            return None
        if not isinstance(link, h5py.HardLink):
            raise UnsafeFileError(f"{label or group.file.filename}: link {part!r} under "
                                  f"{node.name!r} is not a hard link; refused")
        node = node[part]
    return node


def _attr_str(value):
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _attr_str(value.item())
    return value


def read_string_attr(obj, name):
    """A scalar string attribute (bytes or str) as str, or None."""
    if name not in obj.attrs:
        return None
    value = _attr_str(obj.attrs[name])
    return value if isinstance(value, str) else str(value)


def read_string_list(group, name) -> list:
    """A list-of-strings attribute, also in its chunked form `name0`, `name1`, ..."""
    if name in group.attrs:
        return _as_str_list(group.attrs[name])
    out, chunk = [], 0
    while f"{name}{chunk}" in group.attrs:
        out.extend(_as_str_list(group.attrs[f"{name}{chunk}"]))
        chunk += 1
    return out


def _as_str_list(value) -> list:
    values = np.atleast_1d(np.asarray(value, dtype=object)) if not isinstance(
        value, (list, tuple)) else list(value)
    return [_attr_str(v) if isinstance(_attr_str(v), str) else str(v) for v in values]


def has_string_list(group, name) -> bool:
    return name in group.attrs or f"{name}0" in group.attrs


def write_string_list(group, name, names: list) -> None:
    """Write `names` as an attribute, split into chunks over HDF5's object header limit."""
    encoded = [n.encode("utf8") for n in names]
    too_long = [n for n in encoded if len(n) > HDF5_OBJECT_HEADER_LIMIT]
    if too_long:
        raise ValueError(f"Cannot save attribute {name!r}: the names {too_long[:3]} are longer "
                         f"than {HDF5_OBJECT_HEADER_LIMIT} bytes")
    data = np.asarray(encoded) if encoded else np.asarray([])
    chunks = 1
    parts = np.array_split(data, chunks)
    while any(p.nbytes > HDF5_OBJECT_HEADER_LIMIT for p in parts):
        chunks += 1
        parts = np.array_split(data, chunks)
    if chunks == 1:
        group.attrs[name] = data
    else:
        for i, part in enumerate(parts):
            group.attrs[f"{name}{i}"] = part


def write_dataset(group, name, value) -> None:
    """Store a weight value; bfloat16 is stored as float32 with attr dtype="bfloat16"."""
    value = np.asarray(value)
    if value.dtype.name == "bfloat16":
        ds = group.create_dataset(name, data=value.astype(np.float32))
        ds.attrs["dtype"] = "bfloat16"
    else:
        group.create_dataset(name, data=value)
