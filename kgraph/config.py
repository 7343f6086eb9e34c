"""Global configuration: `$KGRAPH_HOME/kgraph.json` (image_data_format, epsilon, floatx, backend).

`$KGRAPH_HOME` defaults to `~/.kgraph`. When the home directory is not writable it falls back
to a per-user directory, `<tmp>/.kgraph-<uid>`, created with mode 0700 and used only while it
is a real directory owned by this user that nobody else can write; otherwise kgraph warns and
uses a fresh private directory for this process. kgraph never writes to `~/.keras`, which
belongs to real Keras.

The first time kgraph is imported and `kgraph.json` does not exist, the file is created with
the defaults (as Keras does with `~/.keras/keras.json`); an existing file is never rewritten
except by `save_config()`, and a home that cannot be written is silently left alone.

Environment variables override the file: `KGRAPH_FLOATX`, `KGRAPH_EPSILON`,
`KGRAPH_IMAGE_DATA_FORMAT` and `KGRAPH_BACKEND`. Values are validated wherever they come from:
a bad entry in `kgraph.json` or in a variable warns with a `ConfigWarning` naming it and keeps
the default; importing kgraph never fails on them.
"""
from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import stat
import tempfile
import types
import warnings
from typing import NamedTuple

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
    path = config_path()
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


def config_path() -> str:
    """The path of the configuration file, `$KGRAPH_HOME/kgraph.json`."""
    return os.path.join(kgraph_home(), "kgraph.json")


def _create_default_file(path):
    """Write the defaults to `path` unless a file is already there (first use). The JSON goes
    to a private temp file first and is hard-linked into place, so a concurrent reader never
    sees half a file and a concurrent creator's file is never replaced."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".kgraph.json.", suffix=".tmp",
                                   dir=os.path.dirname(path))
    except OSError:
        return  # a read-only home: run on the defaults, as Keras does
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_DEFAULTS, f, indent=4)
        os.link(tmp, path)
    except OSError:
        pass  # someone else created it first, or links are unsupported: keep theirs
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


# environment variable -> key it overrides; each value goes through the key's validator
ENVIRONMENT = {"KGRAPH_FLOATX": "floatx", "KGRAPH_EPSILON": "epsilon",
               "KGRAPH_IMAGE_DATA_FORMAT": "image_data_format", "KGRAPH_BACKEND": "backend"}


def _from_environment(name, key):
    value = os.environ[name]
    if key != "epsilon":
        return value
    try:
        return float(value)
    except ValueError:
        return value  # the validator warns, quoting it


def _load():
    path = config_path()
    if not os.path.lexists(path):
        _create_default_file(path)
    data = _read_file()
    for key in _DEFAULTS:
        if key in data:
            _apply(key, data[key], path)
    for name, key in ENVIRONMENT.items():
        if os.environ.get(name):
            _apply(key, _from_environment(name, key), name)


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

    atomic_write(config_path(), write)


def experimental_connect_to_cluster(cluster_spec_or_resolver, job_name="localhost",
                                    task_index=0, protocol=None, make_master_device_default=True):
    """Connect to the cluster a resolver found (`TPUClusterResolver`: the static target);
    see kgraph.distribute.cluster_resolver."""
    from kgraph.distribute.cluster_resolver import connect_to_cluster

    return connect_to_cluster(cluster_spec_or_resolver, job_name, task_index, protocol,
                              make_master_device_default)


def set_soft_device_placement(enabled):
    """Whether layers placed on a missing device (`kgraph.device('/gpu:1')`) run on the CPU
    with one warning (True, the default) or make compiling fail (False); see kgraph.device."""
    from kgraph.device import set_soft_device_placement as set_soft

    set_soft(enabled)


def get_soft_device_placement() -> bool:
    from kgraph.device import get_soft_device_placement as get_soft

    return get_soft()


_op_determinism = False


def enable_op_determinism():
    """`tf.config.experimental.enable_op_determinism()`: ask that the same program on the same
    inputs give bit-identical results. On the CPU kgraph already does (onnxruntime's CPU
    kernels, seeded initializers/shuffles/dropout, `tf.data` `map` keeping the order:
    tests/test_reproducibility.py); the request is recorded (`op_determinism_enabled()`) for
    executors with nondeterministic kernels (onnxruntime's CUDA provider). Call it at the start
    of the program, as TensorFlow asks."""
    global _op_determinism
    _op_determinism = True


def op_determinism_enabled() -> bool:
    """Whether `enable_op_determinism()` was called."""
    return _op_determinism


class LogicalDevice(NamedTuple):
    """A device as `tf.config.list_logical_devices` names it ("/device:GPU:0", "GPU")."""
    name: str
    device_type: str


class PhysicalDevice(NamedTuple):
    """A device as `tf.config.list_physical_devices` names it ("/physical_device:CPU:0")."""
    name: str
    device_type: str


def _devices(device_type, prefix, kind, what):
    from kgraph.distribute.mirrored import local_devices

    if device_type is not None and str(device_type).upper() not in ("CPU", "GPU"):
        raise ValueError(f"tf.config.{what}: device_type must be 'CPU', 'GPU' or None. "
                         f"Received: device_type={device_type!r}")
    gpus = [d for d in local_devices() if d.startswith("/gpu")]
    names = [("CPU", 0)] + [("GPU", int(d.split(":")[1])) for d in gpus]
    return [kind(f"{prefix}:{t}:{i}", t) for t, i in names
            if device_type is None or t == str(device_type).upper()]


def list_physical_devices(device_type=None):
    """`tf.config.list_physical_devices`: the CPU and every GPU onnxruntime's CUDA provider can
    use (as `MirroredStrategy` finds them), of `device_type` ("CPU", "GPU"; None: all)."""
    return _devices(device_type, "/physical_device", PhysicalDevice, "list_physical_devices")


def list_logical_devices(device_type=None):
    """`tf.config.list_logical_devices`: one logical device per physical one (kgraph does not
    split devices); their names go to `kgraph.device(...)` and `MirroredStrategy(...)`."""
    return _devices(device_type, "/device", LogicalDevice, "list_logical_devices")


# `tf.config.experimental.*`
experimental = types.SimpleNamespace(enable_op_determinism=enable_op_determinism,
                                     list_physical_devices=list_physical_devices,
                                     list_logical_devices=list_logical_devices)
