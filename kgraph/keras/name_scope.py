"""`keras.name_scope`: a named block of code (Keras 3's context manager)."""
from __future__ import annotations

import threading

_stack = threading.local()


class name_scope:  # noqa: N801 - the Keras name
    """Open a name scope: `with keras.name_scope("encoder"): ...`.

    Scopes nest ("outer/inner"); `current_path()` gives the path of the open ones. kgraph's
    variables keep their layer paths: the scope is recorded, not prefixed to weight names.

    Args:
        name: str, the scope's name (non-empty).
        caller: optional object opening the scope (kept as `caller`).
        deduplicate: with the same name as the enclosing scope, do not repeat it in the path.
        override_parent: str, a path that replaces the enclosing scopes.
    """

    def __init__(self, name, caller=None, deduplicate=True, override_parent=None):
        if not isinstance(name, str) or not name:
            raise ValueError(f"name_scope: `name` must be a non-empty string. Received: "
                             f"name={name!r}")
        self.name, self.caller = name, caller
        self.deduplicate, self.override_parent = deduplicate, override_parent

    def __enter__(self):
        stack = _scopes()
        parent = self.override_parent if self.override_parent is not None else (
            stack[-1] if stack else "")
        repeat = self.deduplicate and parent.rsplit("/", 1)[-1] == self.name
        stack.append(parent if repeat else f"{parent}/{self.name}".lstrip("/"))
        return self

    def __exit__(self, *exc):
        _scopes().pop()


def _scopes() -> list:
    if not hasattr(_stack, "paths"):
        _stack.paths = []
    return _stack.paths


def current_path() -> str:
    """The path of the open name scopes ("" outside any)."""
    stack = _scopes()
    return stack[-1] if stack else ""
