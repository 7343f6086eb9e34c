"""Reshaping layers: Flatten, Reshape, Permute, RepeatVector (Keras 3 names, arguments and
configs). The batch dimension is never touched; it may be unknown until run time."""
from __future__ import annotations

import numpy as np

from kgraph import config as kconfig
from kgraph import ops
from kgraph.keras.layers.base import IncompatibleInputError, Layer

__all__ = ["Flatten", "Permute", "RepeatVector", "Reshape"]


def standardize_data_format(data_format):
    if data_format is None:
        return kconfig.image_data_format()
    value = str(data_format).lower()
    if value not in ("channels_first", "channels_last"):
        raise ValueError("The `data_format` argument must be one of 'channels_first', "
                         f"'channels_last'. Received: data_format={data_format!r}")
    return value


def reshape_keep_batch(x, dims):
    """Reshape `x` to (batch,) + dims, where `dims` holds ints and at most one -1.

    With every non-batch dim of `x` known, the -1 is resolved here and the reshape is static;
    otherwise the target shape is assembled at run time from the batch size of `x`."""
    dims = tuple(int(d) for d in dims)
    batch, rest = x.shape[0], x.shape[1:]
    if all(d is not None for d in rest):
        if -1 in dims:
            known = int(np.prod([d for d in dims if d != -1]))
            total = int(np.prod(rest))
            dims = tuple(total // known if d == -1 else d for d in dims)
        return ops.reshape_to(x, (batch,) + dims)
    runtime_batch = ops.slice_axis(ops.apply("Shape", x), 0, 1, 0)
    target = ops.concatenate([runtime_batch, np.asarray(dims, np.int64)], axis=0)
    static = (batch,) + tuple(None if d == -1 else d for d in dims)
    return ops.apply("Reshape", x, target, shape=static)


class Flatten(Layer):
    """Flattens the input without affecting the batch size: (batch, ...) -> (batch, n).

    Args:
        data_format: `"channels_last"` (default from the config) or `"channels_first"`; with
            channels first, inputs are moved to channels last before flattening so that the
            element order matches a channels-last model.

    Example:
        >>> Flatten()(np.zeros((2, 3, 4))).shape
        (2, 12)
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)
        self.input_spec_ndim = 1

    def call(self, inputs):
        rank = len(inputs.shape)
        if self.data_format == "channels_first" and rank > 2:
            inputs = ops.transpose(inputs, (0, *range(2, rank), 1))
        return reshape_keep_batch(inputs, (-1,) if rank > 1 else (1,))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Reshapes the non-batch dimensions to `target_shape`.

    Args:
        target_shape: tuple of positive ints, one of which may be -1 (inferred from the
            input size). Does not include the batch axis.

    Example:
        >>> Reshape((-1, 2))(np.zeros((5, 3, 4))).shape
        (5, 6, 2)
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        if isinstance(target_shape, (int, np.integer)):
            target_shape = (target_shape,)
        if not isinstance(target_shape, (tuple, list)) or any(
                isinstance(d, bool) or not isinstance(d, (int, np.integer)) or (d < 1 and d != -1)
                for d in target_shape) or list(target_shape).count(-1) > 1:
            raise ValueError("`target_shape` of a Reshape layer must be a tuple of positive "
                             "integers with at most one -1 (an inferred dimension). "
                             f"Received: target_shape={target_shape!r}")
        self.target_shape = tuple(int(d) for d in target_shape)

    def call(self, inputs):
        rest = inputs.shape[1:]
        if all(d is not None for d in rest):
            total = int(np.prod(rest))
            known = int(np.prod([d for d in self.target_shape if d != -1]))
            fits = total % known == 0 if -1 in self.target_shape else total == known
            if not fits:
                raise ValueError(f"Layer {self.name!r}: the total size of the tensor must be "
                                 f"unchanged. Received: input_shape={tuple(inputs.shape)}, "
                                 f"target_shape={self.target_shape}")
        return reshape_keep_batch(inputs, self.target_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}


class Permute(Layer):
    """Permutes the non-batch dimensions; `dims` is 1-based (the batch axis is 0 and stays).

    Args:
        dims: a permutation of `1..rank-1`, e.g. `(2, 1)` swaps the two non-batch axes.

    Example:
        >>> Permute((2, 1))(np.zeros((5, 3, 4))).shape
        (5, 4, 3)
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = tuple(dims) if isinstance(dims, (tuple, list)) else dims
        if not isinstance(dims, tuple) or any(
                isinstance(d, bool) or not isinstance(d, (int, np.integer)) for d in dims) or \
                sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError("Invalid permutation argument `dims` for Permute Layer. The set of "
                             "indices in `dims` must be consecutive and start from 1. "
                             f"Received: dims={dims!r}")
        self.dims = tuple(int(d) for d in dims)

    def call(self, inputs):
        if len(inputs.shape) != len(self.dims) + 1:
            raise IncompatibleInputError(
                f"Input 0 of layer {self.name!r} is incompatible with the layer: "
                f"expected ndim={len(self.dims) + 1} for dims={self.dims}, found "
                f"ndim={len(inputs.shape)}. Full shape received: "
                f"{tuple(inputs.shape)}")
        return ops.transpose(inputs, (0,) + self.dims)

    def get_config(self):
        return {**super().get_config(), "dims": self.dims}


class RepeatVector(Layer):
    """Repeats a (batch, features) input `n` times: (batch, n, features).

    Args:
        n: positive int, the number of repetitions.

    Example:
        >>> RepeatVector(3)(np.zeros((2, 4))).shape
        (2, 3, 4)
    """

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError("`n` of a RepeatVector layer must be a positive integer. "
                             f"Received: n={n!r}")
        self.n = int(n)
        self.input_spec_ndim = 2

    def call(self, inputs):
        if len(inputs.shape) != 2:
            raise IncompatibleInputError(
                f"Input 0 of layer {self.name!r} is incompatible with the layer: "
                f"expected ndim=2, found ndim={len(inputs.shape)}. Full shape "
                f"received: {tuple(inputs.shape)}")
        batch, features = inputs.shape
        column = ops.expand_dims(inputs, 1)  # (batch, 1, features)
        # Expand broadcasts both ways, as numpy does: (batch, 1, f) with (1, n, 1)
        return ops.apply("Expand", column, np.asarray([1, self.n, 1], np.int64),
                         shape=(batch, self.n, features))

    def get_config(self):
        return {**super().get_config(), "n": self.n}
