"""Device placement scopes (`with kgraph.device('/gpu:1'):`).

Layers called inside a scope remember the device string. On a single CPU the placement is
recorded but every layer runs in the one executor; the compiler cuts graphs at device
boundaries once several executors exist (the distribution issue)."""
from __future__ import annotations

import contextlib
import re
import threading

_state = threading.local()
_PATTERN = re.compile(r"^(/job:[\w-]+)?(/replica:\d+)?(/task:\d+)?(/?(device:)?(cpu|gpu|tpu)(:\d+)?)?$",
                      re.IGNORECASE)


def current_device():
    return getattr(_state, "device", None)


@contextlib.contextmanager
def device(name):
    """Place the layers called inside this scope on `name` (e.g. "/gpu:0", "/cpu:0")."""
    if not isinstance(name, str) or not _PATTERN.match(name.strip()):
        raise ValueError(f"Invalid device specification. Received: device={name!r}; expected "
                         f"a string like '/cpu:0' or '/gpu:1'")
    saved = current_device()
    _state.device = name.strip().lower()
    try:
        yield name
    finally:
        _state.device = saved


device_scope = device
