"""Safe deserialization switch (`keras.config.enable_unsafe_deserialization`)."""
from __future__ import annotations

_state = {"unsafe": False}


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
