"""`keras.ops.pad` (numpy's `pad`): constant padding is the Pad primitive; the "edge",
"reflect", "symmetric" and "wrap" modes pick, along each padded axis, the input positions numpy
would copy there (`np.pad(np.arange(n), (before, after), mode)`, so widths larger than the axis
repeat as numpy's do) with one Gather, whose gradient sums back into them. Those modes need the
padded axes' sizes known while tracing; constant padding does not.
"""
from __future__ import annotations

import numpy as np

from kgraph.ops import movement as mv
from kgraph.ops.api_util import axis_index, rank, static_dim

_INDEXED_MODES = {"edge": "edge", "reflect": "reflect", "symmetric": "symmetric",
                  "wrap": "wrap", "circular": "wrap"}
_NUMPY_ONLY_MODES = ("linear_ramp", "maximum", "mean", "median", "minimum", "empty")


def pad_widths(pad_width, ndim):
    """`pad_width` as one `(before, after)` pair per axis (an int, one pair for every axis, or
    one pair or one-element tuple per axis, as Keras takes it)."""
    try:
        widths = np.asarray(pad_width, dtype=np.int64)
        if widths.ndim:  # (pad,), (before, after) or per-axis rows of one or two
            widths = widths.reshape(-1, widths.shape[-1])
        widths = np.broadcast_to(widths, (ndim, 2))
    except (TypeError, ValueError) as e:
        raise ValueError(f"`pad_width` must be an int, a (before, after) pair, or one pair per "
                         f"axis of the {ndim}-D input. Received: pad_width={pad_width!r}") from e
    if (widths < 0).any():
        raise ValueError(f"`pad_width` must not be negative. Received: pad_width={pad_width!r}")
    return [(int(b), int(a)) for b, a in widths]


def pad(x, pad_width, mode="constant", constant_values=None):
    """Pad a tensor (`keras.ops.pad`, numpy's rules).

    Args:
        x: Tensor to pad.
        pad_width: `((before_1, after_1), ..., (before_N, after_N))`, one `(before, after)`
            pair for every axis, or an int for all sides.
        mode: `"constant"` (the default), `"edge"`, `"reflect"`, `"symmetric"` or `"wrap"`
            (`"circular"`).
        constant_values: the value of constant padding (0 by default); only with
            `mode="constant"`.

    Returns:
        The padded tensor.

    Example:
    >>> pad(np.float32([1, 2, 3]), (2, 1), mode="reflect")
    array([3., 2., 1., 2., 3., 2.], dtype=float32)
    """
    widths = pad_widths(pad_width, rank(x))
    mode = str(mode).lower()
    if mode == "constant":
        return mv.pad(x, widths, 0.0 if constant_values is None else constant_values)
    if mode not in _INDEXED_MODES:
        detail = " (numpy's statistics modes are not supported)" if mode in _NUMPY_ONLY_MODES \
            else ""
        raise ValueError(f"keras.ops.pad: mode must be one of 'constant', "
                         f"{', '.join(repr(m) for m in _INDEXED_MODES)}{detail}. "
                         f"Received: mode={mode!r}")
    if constant_values is not None:
        raise ValueError(f"keras.ops.pad: `constant_values` is only used with mode='constant'. "
                         f"Received: constant_values={constant_values!r}, mode={mode!r}")
    for axis, (before, after) in enumerate(widths):
        if before or after:
            n = static_dim(x, axis, f"pad(mode={mode!r})")
            if n == 0:
                raise ValueError(f"keras.ops.pad: mode={mode!r} cannot pad the empty axis "
                                 f"{axis}. Received: pad_width={pad_width!r}")
            positions = np.pad(np.arange(n, dtype=np.int64), (before, after),
                               mode=_INDEXED_MODES[mode])
            x = mv.apply("Gather", x, positions, axis=axis_index(axis, rank(x), "pad"))
    return x
