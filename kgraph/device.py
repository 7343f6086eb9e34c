"""Device placement (`with kgraph.device('/gpu:1'):`, the FAQ's `device_scope`).

A layer created inside a scope, or called inside one, is placed on that device: the op nodes
its call adds to a traced graph are labelled with the device (`graph.placement`, node id ->
device name), and the gradient nodes autodiff writes for them follow their forward node. The
compiler cuts a labelled graph at device boundaries into one subgraph per device and stage
(compiler/passes/partition_by_device.py) and the runtime runs them on their executors,
moving tensors between them (runtime/partitioned.py).

Which executor a device name means: `set_device_executors` maps names to executor targets
(tests stand two CPU executors in for two GPUs); otherwise `/cpu:N` is the CPU executor and
`/gpu:N` the CUDA one where a GPU is visible. Without the named GPU, placement falls back to
the CPU with one warning, or raises `DevicePlacementError` after
`kgraph.config.set_soft_device_placement(False)` (TensorFlow's name and default).

Stdlib only: `kgraph/__init__.py` imports this module eagerly.
"""
from __future__ import annotations

import contextlib
import re
import threading
import warnings

_state = threading.local()
_PATTERN = re.compile(r"^(/job:[\w-]+)?(/replica:\d+)?(/task:\d+)?(/?(device:)?(cpu|gpu|tpu)(:\d+)?)?$",
                      re.IGNORECASE)
_KIND = re.compile(r"(cpu|gpu|tpu)(?::(\d+))?$", re.IGNORECASE)
_settings = {"soft": True, "executors": {}, "warned": False}


class DevicePlacementError(ValueError):
    """A device named in a scope is not available and soft placement is off."""


class DevicePlacementWarning(UserWarning):
    """A named device is missing and its layers run on the CPU instead (said once)."""


def current_device():
    """The device of the innermost `kgraph.device` scope, or None outside any scope."""
    return getattr(_state, "device", None)


@contextlib.contextmanager
def device(name):
    """Place the layers created or called inside this scope on `name`.

    Args:
        name: a TensorFlow device string such as "/cpu:0", "/gpu:1" or
            "/job:localhost/replica:0/task:0/device:GPU:0".

    Example:
        >>> with kgraph.device("/gpu:0"):
        ...     encoded_a = shared_lstm(tweet_a)
    """
    if not isinstance(name, str) or not _PATTERN.match(name.strip()):
        raise ValueError(f"Invalid device specification. Received: device={name!r}; expected "
                         f"a string like '/cpu:0' or '/gpu:1'")
    saved = current_device()
    _state.device = canonical(name)
    try:
        yield name
    finally:
        _state.device = saved


device_scope = device


def canonical(name: str) -> str:
    """"/job:x/replica:0/task:0/device:GPU:1" -> "/gpu:1"; "/gpu" -> "/gpu:0"; "" stays ""."""
    match = _KIND.search(name.strip())
    if match is None:
        return name.strip().lower()
    return f"/{match.group(1).lower()}:{match.group(2) or 0}"


@contextlib.contextmanager
def placed_on(name):
    """`device(name)` when `name` is set, nothing otherwise (a layer graph replaying calls)."""
    if not name:
        yield
        return
    with device(name):
        yield


@contextlib.contextmanager
def labelling(graph, name):
    """Label the nodes added to `graph` inside this block with device `name` (nodes an inner
    block labelled keep their device). A None graph or name labels nothing."""
    if graph is None or not name:
        yield
        return
    start = len(graph.nodes)
    try:
        yield
    finally:
        placement = placement_of(graph, create=True)
        for node in graph.nodes[start:]:
            placement.setdefault(node.id, name)


def placement_of(graph, create: bool = False) -> dict:
    """The graph's node id -> device labels ({} when nothing in it was placed)."""
    placement = getattr(graph, "placement", None)
    if placement is None:
        placement = {}
        if create:
            graph.placement = placement
    return placement


# -- which executor runs a device ---------------------------------------------------------------
def set_soft_device_placement(enabled: bool):
    """True (the default): a device that is not available falls back to the CPU with one
    warning. False: compiling a graph placed on it raises `DevicePlacementError`."""
    _settings["soft"] = bool(enabled)


def get_soft_device_placement() -> bool:
    return _settings["soft"]


def set_device_executors(mapping: dict | None):
    """Run the layers placed on each device name with the given executor target, e.g.
    `{"/gpu:0": "onnxruntime", "/gpu:1": "numpy"}` (several CPU executors standing in for
    devices). None or {} restores the default mapping."""
    mapping = dict(mapping or {})
    for name in mapping:
        if not isinstance(name, str) or not _PATTERN.match(name.strip()):
            raise ValueError(f"Invalid device specification. Received: device={name!r}")
    _settings["executors"] = {canonical(k): v for k, v in mapping.items()}


def device_executors() -> dict:
    return dict(_settings["executors"])


def executor_for(name, default_target: str) -> str:
    """The executor target running the nodes placed on device `name` (None: unplaced nodes,
    which run on `default_target`, the model's executor)."""
    if not name:
        return default_target
    mapped = _settings["executors"].get(name)
    if mapped is not None:
        return mapped
    kind, index = _KIND.search(name).groups()
    cpu_target = {"tvm:cuda": "tvm", "static:cuda": "static"}.get(default_target, default_target)
    if kind.lower() == "cpu":
        return cpu_target
    if kind.lower() == "gpu" and int(index or 0) < _visible_gpus():
        return default_target if default_target.endswith(":cuda") else "onnxruntime"
    return _fall_back(name, cpu_target)


def _visible_gpus() -> int:
    from kgraph.distribute.mirrored import local_devices

    return sum(d.startswith("/gpu") for d in local_devices())


def _fall_back(name: str, cpu_target: str) -> str:
    if not _settings["soft"]:
        raise DevicePlacementError(
            f"Could not satisfy device specification {name!r}: no such device is visible "
            f"(GPUs visible: {_visible_gpus()}). Place the layers on an available device, or "
            f"call kgraph.config.set_soft_device_placement(True) to run them on the CPU.")
    if not _settings["warned"]:
        _settings["warned"] = True
        warnings.warn(f"Device {name!r} is not available; layers placed on it (and any other "
                      f"missing device) run on the CPU ({cpu_target!r}). Results are unchanged.",
                      DevicePlacementWarning, stacklevel=2)
    return cpu_target
