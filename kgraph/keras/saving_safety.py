"""Safety switches of loading: safe deserialization (`keras.config.enable_unsafe_deserialization`)
and the memory budget of one load (`KGRAPH_MAX_LOAD_BYTES`).

This module stays import-light: `Layer.add_weight` asks it, before allocating, whether a
weight built from a loaded config fits the budget of the load in progress.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
import warnings

_state = {"unsafe": False}
_local = threading.local()

LIMIT_VARIABLE = "KGRAPH_MAX_LOAD_BYTES"
DEFAULT_MAX_LOAD_BYTES = 4 * 1024 ** 3  # a config that comes without a file
MIN_FILE_LIMIT = 64 * 1024 ** 2
FILE_SIZE_MULTIPLE = 16  # Keras stores .keras members uncompressed: a ratio of 1


class UnsafeDeserializationError(ValueError):
    pass


def enable_unsafe_deserialization():
    _state["unsafe"] = True


def check_lambda_allowed(name):
    if not _state["unsafe"]:
        raise UnsafeDeserializationError(
            f"Refusing to deserialize Lambda layer {name!r}: it would run Python code stored in "
            f"the file. If you trust the file, call "
            f"kgraph.keras.config.enable_unsafe_deserialization() first.")


# -- the memory budget of a load ------------------------------------------------------------
def max_load_bytes(file_size=None) -> int:
    """The most bytes one load may allocate: `KGRAPH_MAX_LOAD_BYTES` when set; else
    `FILE_SIZE_MULTIPLE` times the file's size (at least 64 MiB), or 4 GiB for a config
    given without a file (`model_from_json`)."""
    raw = os.environ.get(LIMIT_VARIABLE, "").strip()
    if raw:
        try:
            value = int(raw)
            if value <= 0:
                raise ValueError
            return value
        except ValueError:
            from kgraph.config import ConfigWarning

            warnings.warn(f"{LIMIT_VARIABLE} must be a positive number of bytes; using the "
                          f"default. Received: {LIMIT_VARIABLE}={raw!r}", ConfigWarning,
                          stacklevel=2)
    if file_size is None:
        return DEFAULT_MAX_LOAD_BYTES
    return max(MIN_FILE_LIMIT, FILE_SIZE_MULTIPLE * int(file_size))


class _Budget:
    def __init__(self, limit, label):
        self.limit, self.label, self.used = limit, label, 0


@contextlib.contextmanager
def load_budget(limit=None, label=None):
    """Count what the load in this block allocates against `limit` bytes. Nested blocks
    share the outermost budget (a `.keras` load and the config it rebuilds are one load)."""
    if getattr(_local, "budget", None) is not None:
        yield _local.budget
        return
    _local.budget = _Budget(max_load_bytes() if limit is None else limit, label)
    try:
        yield _local.budget
    finally:
        _local.budget = None


def format_bytes(n) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def charge(nbytes, what) -> None:
    """Add `nbytes` (about to be allocated for `what`: a string, or a function giving it,
    called only for the error) to the load in progress; raise `LoadLimitError` when the load
    would pass its limit. Outside a load: nothing."""
    budget = getattr(_local, "budget", None)
    if budget is None:
        return
    budget.used += nbytes
    if budget.used > budget.limit:
        from kgraph.keras.saving.errors import LoadLimitError

        where = f"{budget.label}: " if budget.label else ""
        total = "" if budget.used == nbytes else \
            f"; this load would then hold {format_bytes(budget.used)}"
        what = what() if callable(what) else what
        raise LoadLimitError(
            f"{where}{what} needs {format_bytes(nbytes)}{total}, more than the load limit of "
            f"{format_bytes(budget.limit)} ({budget.limit} bytes). Refused before allocating. "
            f"If you trust the file, raise the limit with {LIMIT_VARIABLE}=<bytes>.")


def check_weight_allocation(layer, name, shape, dtype) -> None:
    """Charge a weight `Layer.add_weight` is about to create to the load in progress, naming
    the layer and the config arguments its shape comes from."""
    if getattr(_local, "budget", None) is None:
        return
    import numpy as np

    dims = [int(d) for d in shape]
    if any(d < 0 for d in dims):
        from kgraph.keras.saving.errors import InvalidConfigError

        raise InvalidConfigError(f"Layer {layer.name!r} ({type(layer).__name__}): weight "
                                 f"{name!r} would have a negative shape {tuple(dims)}")
    nbytes = math.prod(dims) * np.dtype(_numpy_dtype(dtype)).itemsize
    charge(nbytes, lambda: f"layer {layer.name!r} ({type(layer).__name__}"
                           f"{_arguments(layer, dims)}): weight {name!r} of shape {tuple(dims)} "
                           f"{dtype}")


def _numpy_dtype(dtype):
    name = str(dtype)
    return "float16" if name == "bfloat16" else name  # same itemsize, no ml_dtypes needed


def _arguments(layer, dims) -> str:
    """`, units=8589934592`: the config arguments equal to a dimension of the weight."""
    try:
        config = layer.get_config()
    except Exception:  # a half-built custom layer: the shape alone still names the problem
        return ""
    sizes = {d for d in dims if d > 1}
    found = []
    for key, value in config.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, int) and not isinstance(v, bool) and v in sizes for v in values):
            found.append(f"{key}={value!r}")
    return ", " + ", ".join(found) if found else ", from its input shape"
