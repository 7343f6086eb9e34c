"""Global configuration: `$KGRAPH_HOME/kgraph.json` (image_data_format, epsilon, floatx, backend).

`$KGRAPH_HOME` defaults to `~/.kgraph`. When the home directory is not writable it falls back
to a per-user directory, `<tmp>/.kgraph-<uid>`, created with mode 0700 and used only while it
is a real directory owned by this user that nobody else can write; otherwise kgraph warns and
uses a fresh private directory for this process. kgraph never writes to `~/.keras`, which
belongs to real Keras.

Values are validated wherever they come from: a bad entry in `kgraph.json` or in the
`KGRAPH_BACKEND` environment variable (which overrides the file's `backend`) warns with a
`ConfigWarning` naming it and keeps the default; importing kgraph never fails on them.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import stat
import tempfile
import warnings

BACKENDS = ("onnxruntime", "numpy", "tvm", "tvm:cuda")
FLOATX = ("float16", "bfloat16", "float32", "float64")
DATA_FORMATS = ("channels_last", "channels_first")
_DEFAULTS = {"image_data_format": "channels_last", "epsilon": 1e-07, "floatx": "float32",
             "backend": "onnxruntime"}
_config = dict(_DEFAULTS)
_private_home = None  # the per-process directory used when the shared fallback is unsafe


class ConfigWarning(UserWarning):
    """A configuration value (file entry or environment variable) was invalid and its default
    is used instead."""


def _check_choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"Unknown {name}. Received: {name}={value!r}; expected one of "
                         f"{choices}")
    return value


def _check_epsilon(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value) or not 0 < value < 1:
        raise ValueError(f"`epsilon` must be a positive number below 1. Received: "
                         f"epsilon={value!r}")
    return float(value)


_VALIDATORS = {"image_data_format": lambda v: _check_choice("image_data_format", v, DATA_FORMATS),
               "epsilon": _check_epsilon,
               "floatx": lambda v: _check_choice("floatx", v, FLOATX),
               "backend": lambda v: _check_choice("backend", v, BACKENDS)}


def _uid():
    return os.getuid() if hasattr(os, "getuid") else None


def _is_private_dir(path) -> bool:
    """A real directory (not a link) owned by this user and not group/world-writable."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    uid = _uid()
    return stat.S_ISDIR(info.st_mode) and (uid is None or info.st_uid == uid) and \
        not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _fallback_home() -> str:
    global _private_home
    path = os.path.join(tempfile.gettempdir(), f".kgraph-{_uid() if _uid() is not None else 0}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        path = None
    if path is not None and _is_private_dir(path):
        return path
    if _private_home is None:
        _private_home = tempfile.mkdtemp(prefix="kgraph-")
        warnings.warn(f"The per-user kgraph directory {path!r} is not a directory owned by "
                      f"this user and private to it; ignoring it and using {_private_home!r} "
                      f"for this process. Set KGRAPH_HOME to choose one.", ConfigWarning,
                      stacklevel=3)
    return _private_home


def kgraph_home() -> str:
    """The directory holding `kgraph.json` and kgraph's caches (see the module docstring)."""
    home = os.environ.get("KGRAPH_HOME")
    if home:
        return home
    base = os.path.expanduser("~")
    if os.path.isdir(base) and os.access(base, os.W_OK):
        return os.path.join(base, ".kgraph")
    return _fallback_home()


def _read_file() -> dict:
    path = os.path.join(kgraph_home(), "kgraph.json")
    try:
        with open(path) as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ValueError("not a regular file")
            data = json.loads(f.read(1 << 20))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        warnings.warn(f"Ignoring {path}: {e}", ConfigWarning, stacklevel=3)
        return {}
    if not isinstance(data, dict):
        warnings.warn(f"Ignoring {path}: it must hold a JSON object. Received a "
                      f"{type(data).__name__}", ConfigWarning, stacklevel=3)
        return {}
    return data


def _apply(key, value, source):
    try:
        _config[key] = _VALIDATORS[key](value)
    except ValueError as e:
        warnings.warn(f"{source}: {e}. Using the default {key}={_DEFAULTS[key]!r}.",
                      ConfigWarning, stacklevel=3)


def _load():
    data = _read_file()
    for key in _DEFAULTS:
        if key in data:
            _apply(key, data[key], os.path.join(kgraph_home(), "kgraph.json"))
    env = os.environ.get("KGRAPH_BACKEND")
    if env:
        _apply("backend", env, "KGRAPH_BACKEND")


_load()


def floatx() -> str:
    return _config["floatx"]


def set_floatx(value: str):
    _config["floatx"] = _check_choice("floatx", value, FLOATX)


def epsilon() -> float:
    return _config["epsilon"]


def set_epsilon(value: float):
    _config["epsilon"] = _check_epsilon(value)


def image_data_format() -> str:
    return _config["image_data_format"]


def set_image_data_format(value: str):
    _config["image_data_format"] = _check_choice("image_data_format", value, DATA_FORMATS)


def backend() -> str:
    return _config["backend"]


def set_backend(value: str):
    """Choose the executor: one of "onnxruntime", "numpy", "tvm" (TVM on the CPU), "tvm:cuda"."""
    _config["backend"] = _check_choice("backend", value, BACKENDS)


def save_config():
    """Write the current configuration to `$KGRAPH_HOME/kgraph.json` atomically: through a
    fresh temp file (created exclusively, in the same directory) renamed over the old one."""
    from kgraph.runtime.atomic_file import atomic_write

    home = kgraph_home()
    os.makedirs(home, mode=0o700, exist_ok=True)

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(_config, f, indent=4)

    atomic_write(os.path.join(home, "kgraph.json"), write)
