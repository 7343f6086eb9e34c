"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot, and their
functional forms (`add([a, b])`). Each is called on a list of tensors with the same batch size.

Elementwise merges follow Keras: non-batch dims are compared right-aligned (1 broadcasts, an
unknown dim matches anything), and a lower-rank input gets size-1 axes inserted after the batch
axis.
"""
from __future__ import annotations

import numpy as np

from kgraph import config as kconfig
from kgraph import ops
from kgraph.keras.layers.base import Layer

__all__ = ["Add", "Average", "Concatenate", "Dot", "Maximum", "Minimum", "Multiply",
           "Subtract", "add", "average", "concatenate", "dot", "maximum", "minimum",
           "multiply", "subtract"]


def _shapes(inputs):
    return [tuple(x.shape) for x in inputs]


def _broadcast_non_batch(a, b):
    """Keras' rule for the non-batch dims of merged inputs (right-aligned); None on a clash."""
    if len(a) < len(b):
        a, b = b, a
    out = list(a[:len(a) - len(b)])
    for i, j in zip(a[len(a) - len(b):], b):
        if i is not None and j is not None and 1 not in (i, j) and i != j:
            return None
        out.append(None if None in (i, j) else j if i == 1 else i)
    return tuple(out)


def _transpose(x, perm):
    return x if list(perm) == list(range(len(perm))) else ops.transpose(x, perm)


class Merge(Layer):
    """Base of the elementwise merges: validates the inputs, then folds `_merge` over them."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def _check_list(self, inputs, exactly=None):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"A merge layer ({type(self).__name__}) should be called on a list "
                             f"of inputs. Received: inputs={inputs!r} (not a list of tensors)")
        if len(inputs) < 1 or (exactly is not None and len(inputs) != exactly):
            expected = f"exactly {exactly}" if exactly else "at least 1"
            raise ValueError(f"A `{type(self).__name__}` layer should be called on {expected} "
                             f"input{'s' if exactly != 1 else ''}. Received {len(inputs)} "
                             f"inputs with shapes {_shapes(inputs)}")
        batches = {x.shape[0] for x in inputs if len(x.shape) and x.shape[0] is not None}
        if len(batches) > 1:
            raise ValueError("Cannot merge tensors with different batch sizes. Received: "
                             f"input shapes {_shapes(inputs)}")

    def _check_elementwise(self, inputs):
        shapes = _shapes(inputs)
        out = shapes[0][1:]
        for shape in shapes[1:]:
            out = _broadcast_non_batch(out, shape[1:])
            if out is None:
                raise ValueError(f"Layer {self.name!r} ({type(self).__name__}): inputs have "
                                 f"incompatible shapes. Received: input shapes {shapes}")

    def call(self, inputs):
        self._check_list(inputs, getattr(self, "_arity", None))
        self._check_elementwise(inputs)
        rank = max(len(x.shape) for x in inputs)
        aligned = []
        for x in inputs:
            for _ in range(rank - len(x.shape)):
                x = ops.expand_dims(x, 1)
            aligned.append(x)
        return self._merge(aligned)

    def _merge(self, inputs):
        raise NotImplementedError

    def compute_mask(self, inputs, mask=None):
        """Keras: the inputs' masks AND-ed together (inputs without a mask don't restrict)."""
        if not self.supports_masking:
            return None
        masks = [m for m in (mask if isinstance(mask, (list, tuple)) else [mask])
                 if m is not None]
        return _fold(ops.logical_and, masks) if masks else None


def _fold(fn, inputs):
    out = inputs[0]
    for x in inputs[1:]:
        out = fn(out, x)
    return out


class Add(Merge):
    """Elementwise sum of a list of inputs: `Add()([a, b, c])` is `a + b + c`."""

    def _merge(self, inputs):
        return _fold(ops.add, inputs)


class Subtract(Merge):
    """`Subtract()([a, b])` is `a - b`; takes exactly two inputs."""

    _arity = 2

    def _merge(self, inputs):
        return ops.subtract(inputs[0], inputs[1])


class Multiply(Merge):
    """Elementwise product of a list of inputs."""

    def _merge(self, inputs):
        return _fold(ops.multiply, inputs)


class Average(Merge):
    """Elementwise mean of a list of inputs."""

    def _merge(self, inputs):
        return _fold(ops.add, inputs) / float(len(inputs))


class Maximum(Merge):
    """Elementwise maximum of a list of inputs."""

    def _merge(self, inputs):
        return _fold(ops.maximum, inputs)


class Minimum(Merge):
    """Elementwise minimum of a list of inputs."""

    def _merge(self, inputs):
        return _fold(ops.minimum, inputs)


class Concatenate(Merge):
    """Concatenates a list of inputs along `axis`; all other dims must match.

    Args:
        axis: the concatenation axis (default -1, the last).

    Example:
        >>> Concatenate()([np.zeros((2, 3)), np.ones((2, 4))]).shape
        (2, 7)
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"`axis` of a Concatenate layer must be an integer. "
                             f"Received: axis={axis!r}")
        self.axis = int(axis)

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or not inputs:
            raise ValueError("A `Concatenate` layer should be called on a non-empty list of "
                             f"inputs. Received: inputs={inputs!r}")
        shapes = _shapes(inputs)
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes) or not -rank <= self.axis < rank:
            raise ValueError(self._mismatch(shapes))
        axis = self.axis % rank
        for i in range(rank):
            sizes = {s[i] for s in shapes if s[i] is not None}
            if i != axis and len(sizes) > 1:
                raise ValueError(self._mismatch(shapes))
        return ops.concatenate(list(inputs), axis=axis)

    def _mismatch(self, shapes):
        return (f"A `Concatenate` layer requires inputs of the same rank with matching shapes "
                f"except for the concatenation axis. Received: axis={self.axis}, input shapes "
                f"{shapes}")

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def _l2_normalize(x, axis):
    inverse_norm = ops.minimum(1.0 / ops.sqrt(ops.sum(ops.square(x), axis, keepdims=True)),
                               1.0 / kconfig.epsilon())
    return x * inverse_norm


def batch_dot(x, y, axes):
    """Keras `batch_dot`: contract axis `axes[0]` of x with `axes[1]` of y per batch entry.
    The result drops both axes; a rank-1 result gets a trailing axis of size 1."""
    a0, a1 = axes
    x_rank, y_rank = len(x.shape), len(y.shape)
    x = _transpose(x, [i for i in range(x_rank) if i != a0] + [a0])  # contracted axis last
    y = _transpose(y, [0, a1] + [i for i in range(1, y_rank) if i != a1])  # ... second
    x_mid, y_rest = x.shape[1:-1], y.shape[2:]
    if x_rank == 3 and y_rank == 3:  # (batch, n, d) @ (batch, d, m): n may be unknown
        return ops.matmul(x, y)      # (pointnet_segmentation.py: points of an open count)
    for d in x_mid + y_rest:
        if d is None:
            raise ValueError(f"Dot: the non-batch dims must be known. Received: input shapes "
                             f"{tuple(x.shape)} and {tuple(y.shape)}")
    batch, depth = x.shape[0], x.shape[-1]
    x3 = ops.reshape_to(x, (batch, int(np.prod(x_mid)), depth))
    y3 = ops.reshape_to(y, (y.shape[0], y.shape[1], int(np.prod(y_rest))))
    out = ops.matmul(x3, y3)  # (batch, prod(x_mid), prod(y_rest))
    dims = tuple(x_mid) + tuple(y_rest)
    return ops.reshape_to(out, (out.shape[0],) + (dims if dims else (1,)))


class Dot(Merge):
    """Dot product of two inputs along the given axes, per batch entry.

    Args:
        axes: int, or a pair of ints (one per input); the axis to contract (not the batch
            axis 0). Negative values count from the end.
        normalize: if True, L2-normalize both inputs along those axes first, so that the
            result is the cosine similarity.

    Example:
        >>> Dot(axes=1)([np.ones((2, 3)), np.ones((2, 3))]).shape
        (2, 1)
    """

    _arity = 2

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axes, (list, tuple)):
            if len(axes) != 2 or any(isinstance(a, bool) or not isinstance(a, (int, np.integer))
                                     for a in axes):
                raise ValueError("Invalid format for argument `axes`: it should contain two "
                                 f"integers. Received: axes={axes!r}")
            axes = tuple(int(a) for a in axes)
        elif isinstance(axes, bool) or not isinstance(axes, (int, np.integer)):
            raise ValueError("Invalid type for argument `axes`: it should be a list or an int. "
                             f"Received: axes={axes!r}")
        else:
            axes = int(axes)
        self.axes = axes
        self.normalize = bool(normalize)
        self.supports_masking = False

    def call(self, inputs):
        self._check_list(inputs, 2)
        x, y = inputs
        shapes = _shapes(inputs)
        if len(x.shape) < 2 or len(y.shape) < 2:
            raise ValueError(f"Layer {self.name!r} (Dot) needs inputs of rank >= 2. Received: "
                             f"input shapes {shapes}")
        pair = self.axes if isinstance(self.axes, tuple) else (self.axes, self.axes)
        axes = []
        for a, shape in zip(pair, shapes):
            if not -len(shape) <= a < len(shape) or a % len(shape) == 0:
                raise ValueError(f"Layer {self.name!r} (Dot): invalid axes={self.axes!r} for "
                                 f"input shapes {shapes}; axis 0 (the batch) cannot be "
                                 f"contracted")
            axes.append(a % len(shape))
        d0, d1 = shapes[0][axes[0]], shapes[1][axes[1]]
        if d0 is not None and d1 is not None and d0 != d1:
            raise ValueError(f"Layer {self.name!r} (Dot): incompatible input shapes: axis "
                             f"values {d0} (at axis {axes[0]}) != {d1} (at axis {axes[1]}). "
                             f"Full input shapes: {shapes[0]}, {shapes[1]}")
        if self.normalize:
            x, y = _l2_normalize(x, axes[0]), _l2_normalize(y, axes[1])
        return batch_dot(x, y, axes)

    def get_config(self):
        axes = list(self.axes) if isinstance(self.axes, tuple) else self.axes
        return {**super().get_config(), "axes": axes, "normalize": self.normalize}


# -- functional forms ----------------------------------------------------------------------
def add(inputs, **kwargs):
    """Functional form of `Add`: `add([a, b])`."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """Functional form of `Subtract`: `subtract([a, b])`."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """Functional form of `Multiply`."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """Functional form of `Average`."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """Functional form of `Maximum`."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """Functional form of `Minimum`."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """Functional form of `Concatenate`: `concatenate([a, b], axis=-1)`."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    """Functional form of `Dot`: `dot([a, b], axes=1)`."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
