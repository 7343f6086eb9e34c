"""Keras 3's process-wide switches and counters, and `clear_session`, which resets them.

`keras.backend.get_uid`, `keras.utils.clear_session`, `keras.config`'s interactive-logging,
traceback-filtering and flash-attention switches, and `keras.config.set_max_epochs` /
`set_max_steps_per_epoch` (debugging caps read by `fit`, `evaluate` and `predict`).
"""
from __future__ import annotations

import collections
import gc
import os
import warnings

_state: dict = {}  # what clear_session forgets (Keras' GLOBAL_STATE_TRACKER)
# Not reset by clear_session (module settings in Keras too); set from the environment as Keras
_limits = {"max_epochs": None, "max_steps_per_epoch": None}
for _key, _variable in (("max_epochs", "KERAS_MAX_EPOCHS"),
                        ("max_steps_per_epoch", "KERAS_MAX_STEPS_PER_EPOCH")):
    if _variable in os.environ:
        _limits[_key] = int(os.environ[_variable])


def clear_session(free_memory=True):
    """Reset the state Keras keeps between models: the counters behind automatic layer names
    (`dense`, `dense_1`, ...) and `get_uid`, the global dtype policy and the interactive
    logging, traceback-filtering and flash-attention switches.

    Args:
        free_memory: bool. Also run Python's garbage collector. Defaults to `True`.

    Example:
        >>> keras.utils.clear_session()
        >>> keras.layers.Dense(10).name
        'dense'
    """
    from kgraph.keras.layers.base import reset_names
    from kgraph.keras.mixed_precision import policy

    reset_names()
    _state.clear()
    policy._global["policy"] = None  # back to `DTypePolicy(floatx())`, as Keras
    if free_memory:
        gc.collect()


def get_uid(prefix=""):
    """The next integer (1, 2, ...) counted for `prefix`; `clear_session` restarts them.

    Example:
        >>> keras.backend.get_uid("dense"), keras.backend.get_uid("dense")
        (1, 2)
    """
    counts = _state.setdefault("object_name_uids", collections.defaultdict(int))
    counts[prefix] += 1
    return counts[prefix]


# -- interactive logging --------------------------------------------------------------------
def enable_interactive_logging():
    """Progress bars and fit's messages go to stdout (the default)."""
    _state["interactive_logging"] = True


def disable_interactive_logging():
    """Progress bars and fit's messages go to the `keras` logger (level INFO) instead of
    stdout, for jobs whose output nobody watches live."""
    _state["interactive_logging"] = False


def is_interactive_logging_enabled():
    """True unless `disable_interactive_logging()` was called (since the last
    `clear_session`)."""
    return _state.get("interactive_logging", True)


def print_msg(message, line_break=True):
    """`message` to stdout, or to the `keras` logger when interactive logging is off."""
    import logging
    import sys

    message = str(message)
    if is_interactive_logging_enabled():
        sys.stdout.write(f"{message}\n" if line_break else message)
        sys.stdout.flush()
    else:
        logging.getLogger("keras").info(message)


# -- traceback filtering --------------------------------------------------------------------
def enable_traceback_filtering():
    """Turn Keras' traceback filtering on (the default). kgraph keeps the switch for code that
    sets or reads it; its own errors are raised where the bad value is seen, with no internal
    frames hidden, so it changes no traceback."""
    _state["traceback_filtering"] = True


def disable_traceback_filtering():
    """Turn Keras' traceback filtering off (see `enable_traceback_filtering`)."""
    _state["traceback_filtering"] = False


def is_traceback_filtering_enabled():
    """True unless `disable_traceback_filtering()` was called."""
    return _state.get("traceback_filtering", True)


# -- flash attention ------------------------------------------------------------------------
def enable_flash_attention():
    """Let attention use flash attention where available: back to the default automatic
    choice (`is_flash_attention_enabled()` is then `None`, as in Keras). kgraph compiles
    attention as matrix products and a softmax; no executor of it has a flash kernel."""
    _state["flash_attention"] = None


def disable_flash_attention():
    """Never use flash attention: `is_flash_attention_enabled()` is then `False`."""
    _state["flash_attention"] = False


def is_flash_attention_enabled():
    """`False` after `disable_flash_attention()`, else `None` (automatic), as in Keras 3."""
    return _state.get("flash_attention")


def is_nnx_enabled():
    """Whether Flax NNX variables back Keras' (Keras on JAX only): always False in kgraph."""
    return False


# -- debugging caps on fit ------------------------------------------------------------------
def set_max_epochs(max_epochs):
    """Cap the epochs of every `fit` (for debugging; also `KERAS_MAX_EPOCHS`).

    Args:
        max_epochs: int, or `None` for no cap.
    """
    _limits["max_epochs"] = _check_limit("max_epochs", max_epochs)


def set_max_steps_per_epoch(max_steps_per_epoch):
    """Cap the steps of each epoch of `fit`, and of `evaluate` and `predict` (for debugging;
    also `KERAS_MAX_STEPS_PER_EPOCH`).

    Args:
        max_steps_per_epoch: int, or `None` for no cap.
    """
    _limits["max_steps_per_epoch"] = _check_limit("max_steps_per_epoch", max_steps_per_epoch)


def max_epochs():
    """The cap set by `set_max_epochs` or `KERAS_MAX_EPOCHS`, or `None`."""
    return _limits["max_epochs"]


def max_steps_per_epoch():
    """The cap set by `set_max_steps_per_epoch` or `KERAS_MAX_STEPS_PER_EPOCH`, or `None`."""
    return _limits["max_steps_per_epoch"]


def _check_limit(name, value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"`{name}` must be an int or None. Received: {name}={value!r}")
    return value


def capped_epochs(epochs):
    """`epochs` under `max_epochs()`, warning as Keras does when it cuts."""
    cap = _limits["max_epochs"]
    if cap and cap < epochs:
        warnings.warn(f"Limiting epochs to {cap}", stacklevel=3)
        return cap
    return epochs


def capped_steps(steps):
    """`steps` (per epoch; `None`: the whole data) under `max_steps_per_epoch()`."""
    cap = _limits["max_steps_per_epoch"]
    if cap and (not steps or cap < steps):
        warnings.warn(f"Limiting steps_per_epoch to {cap}", stacklevel=3)
        return cap
    return steps
