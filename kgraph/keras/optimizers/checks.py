"""Argument checks shared by the optimizers: each error names the optimizer and quotes the value."""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np


def is_schedule(value) -> bool:
    from kgraph.keras.optimizers.schedules import LearningRateSchedule

    return isinstance(value, LearningRateSchedule)


def is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_number(owner, name, value, low=-math.inf, high=math.inf, low_open=False,
                 high_open=False, allow_none=False):
    """Raise ValueError unless `value` is a real number in the given interval."""
    if value is None and allow_none:
        return
    ok = is_number(value) and not math.isnan(value)
    ok = ok and (value > low if low_open else value >= low)
    ok = ok and (value < high if high_open else value <= high)
    if ok:
        return
    if high == math.inf:
        what = f"a number {'>' if low_open else '>='} {low}"
    else:
        what = f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    raise ValueError(f"{owner}: `{name}` must be {what}. Received: {name}={value!r}")


def check_learning_rate(owner, value):
    if is_schedule(value):
        return
    if callable(value):
        raise ValueError(f"{owner}: a callable `learning_rate` is not supported (the update "
                         "is compiled once); subclass "
                         "`keras.optimizers.schedules.LearningRateSchedule` instead. "
                         f"Received: learning_rate={value!r}")
    if not (is_number(value) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{owner}: `learning_rate` must be a non-negative float or a "
                         f"`LearningRateSchedule`. Received: learning_rate={value!r}")


def check_base_arguments(owner, args: dict):
    """Check the arguments every optimizer takes (`args`: the base `__init__`'s locals)."""
    check_learning_rate(owner, args["learning_rate"])
    clip = {k: args[k] for k in ("clipnorm", "clipvalue", "global_clipnorm")}
    if sum(v is not None for v in clip.values()) > 1:
        raise ValueError(f"{owner}: only one of `clipnorm`, `clipvalue` and `global_clipnorm` "
                         "can be set. Received: " + ", ".join(f"{k}={v}" for k, v in clip.items()))
    for key, value in clip.items():
        check_number(owner, key, value, low=0, allow_none=True)
    check_number(owner, "weight_decay", args["weight_decay"], low=0, allow_none=True)
    check_number(owner, "loss_scale_factor", args["loss_scale_factor"], low=0, low_open=True,
                 allow_none=True)
    steps = args["gradient_accumulation_steps"]
    if steps and not (isinstance(steps, numbers.Integral) and steps >= 2):
        raise ValueError(f"{owner}: `gradient_accumulation_steps` must be an integer >= 2. "
                         f"Received: gradient_accumulation_steps={steps!r}")
    if args["use_ema"]:
        check_number(owner, "ema_momentum", args["ema_momentum"], 0, 1)
        freq = args["ema_overwrite_frequency"]
        if freq and not (isinstance(freq, numbers.Integral) and freq >= 1):
            raise ValueError(f"{owner}: `ema_overwrite_frequency` must be an integer >= 1 or "
                             f"None. Received: ema_overwrite_frequency={freq!r}")


def filter_empty_gradients(grads, variables):
    """Drop `(None, variable)` pairs with a warning, as Keras does; all None is an error."""
    pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
    if not pairs:
        raise ValueError("No gradients provided for any variable. Received: "
                         f"variables={[v.path for v in variables]}")
    if len(pairs) < len(grads):
        missing = [v.path for g, v in zip(grads, variables) if g is None]
        warnings.warn(f"Gradients do not exist for variables {missing} when minimizing the "
                      "loss. If using `model.compile()`, did you forget to provide a `loss` "
                      "argument?", stacklevel=3)
    return [g for g, _ in pairs], [v for _, v in pairs]


def check_weight_list(variables, weights):
    if len(weights) != len(variables):
        raise ValueError(f"set_weights(): the optimizer has {len(variables)} variables; "
                         f"received a list of {len(weights)} weights.")
    for var, w in zip(variables, weights):
        if int(np.size(w)) != int(np.prod(var.shape)):
            raise ValueError(f"Optimizer variable {var.path!r} has shape {var.shape}, not "
                             f"compatible with the provided weight shape {np.shape(w)}.")
