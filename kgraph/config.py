"""Global configuration: `$KGRAPH_HOME/kgraph.json` (image_data_format, epsilon, floatx, backend).

`$KGRAPH_HOME` defaults to `~/.kgraph`, or `/tmp/.kgraph` when the home directory is not
writable. kgraph never writes to `~/.keras`, which belongs to real Keras.
"""
from __future__ import annotations

import json
import os

_DEFAULTS = {"image_data_format": "channels_last", "epsilon": 1e-07, "floatx": "float32",
             "backend": "onnxruntime"}
_config = dict(_DEFAULTS)


def kgraph_home() -> str:
    home = os.environ.get("KGRAPH_HOME")
    if home:
        return home
    base = os.path.expanduser("~")
    if os.access(base, os.W_OK):
        return os.path.join(base, ".kgraph")
    return os.path.join("/tmp", ".kgraph")


def _load():
    path = os.path.join(kgraph_home(), "kgraph.json")
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return
    for key in _DEFAULTS:
        if key in data:
            _config[key] = data[key]


_load()


def floatx() -> str:
    return _config["floatx"]


def set_floatx(value: str):
    if value not in ("float16", "bfloat16", "float32", "float64"):
        raise ValueError(f"Unknown floatx type. Received: value={value!r}")
    _config["floatx"] = value


def epsilon() -> float:
    return _config["epsilon"]


def set_epsilon(value: float):
    _config["epsilon"] = float(value)


def image_data_format() -> str:
    return _config["image_data_format"]


def set_image_data_format(value: str):
    if value not in ("channels_last", "channels_first"):
        raise ValueError(f"Unknown data_format. Received: value={value!r}")
    _config["image_data_format"] = value


def backend() -> str:
    return _config["backend"]


def set_backend(value: str):
    if value not in ("onnxruntime", "numpy", "tvm"):
        raise ValueError(f"Unknown executor backend. Received: value={value!r}")
    _config["backend"] = value


def save_config():
    """Write the current configuration to `$KGRAPH_HOME/kgraph.json` (atomically)."""
    home = kgraph_home()
    os.makedirs(home, exist_ok=True)
    path = os.path.join(home, "kgraph.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(_config, f, indent=4)
    os.replace(tmp, path)
