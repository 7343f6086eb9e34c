"""Small graph helpers shared by the recurrent layers: time steps, zero states, weight paths."""
from __future__ import annotations

import inspect

import numpy as np

from kgraph import ops
from kgraph.ir.graph import current_graph
from kgraph.ops.movement import split
from kgraph.keras.layers.base import Layer


def time_step(sequences, t):
    """`sequences[:, t]`: the (batch, ...) slice of a (batch, time, ...) tensor."""
    return ops.squeeze(ops.slice_axis(sequences, t, t + 1, 1), 1)


def split_time(sequences):
    """`[sequences[:, t] for t in range(time)]`, as one `Split` (whose gradient is one
    Concat: a slice per step would pad every step's gradient to the whole sequence, O(time²)).
    A sequence that was stacked from steps (the output of another recurrent layer) gives back
    its pieces."""
    node = getattr(sequences, "node", None)
    if node is not None and node.op == "Concat" and node.attrs["axis"] == 1 and \
            all(piece.shape[1] == 1 for piece in node.inputs):
        return [ops.squeeze(piece, 1) for piece in node.inputs]
    return [ops.squeeze(piece, 1) for piece in split(sequences, (1,) * sequences.shape[1], 1)]


def gate_blocks(z, count):
    """The `count` equal blocks of the last axis of `z` (the gates of an LSTM or GRU step),
    as one `Split`: their gradients come back as one Concat, not a pad and an add each."""
    return split(z, (z.shape[-1] // count,) * count, -1)


def stack_steps(steps):
    """(batch, ...) tensors, one per time step -> one (batch, time, ...) tensor."""
    return ops.concatenate([ops.expand_dims(s, 1) for s in steps], axis=1)


def batch_reference(sequences):
    """A (batch, 1) tensor that carries the (maybe unknown) batch size of `sequences`."""
    ref = sequences
    for axis in range(1, sequences.ndim):
        ref = ops.slice_axis(ref, 0, 1, axis)
    return ops.stop_gradient(ops.reshape_to(ref, (sequences.shape[0], 1)))


def state_dims(size):
    """One state's dims after the batch: `(size,)` for an int, the dims of a `TensorShape`
    state size (a multi-dim state, as tf.keras 2 allows)."""
    return (int(size),) if isinstance(size, (int, np.integer)) else tuple(int(d) for d in size)


def batch_zeros(reference, width, dtype):
    """Zeros of shape (batch, width) (or (batch, *width) for a `TensorShape` width), batch
    taken from a `batch_reference` tensor.

    `Where` broadcasts the (1, width) zeros against the (batch, 1) reference without reading
    its values, so NaN or inf in the data cannot leak into the initial state."""
    from kgraph.variables import _np

    dims = state_dims(width)
    for _ in dims[1:]:
        reference = ops.expand_dims(reference, -1)
    take_zeros = np.ones((1,) * (len(dims) + 1), dtype=bool)
    return ops.where(take_zeros, np.zeros((1, *dims), dtype=_np(dtype)),
                     ops.cast(reference, dtype))


def is_shape_only_trace():
    """True while a layer is traced only to infer output shapes (a functional model being
    built, `compute_output_shape`): those graphs are never executed."""
    graph = current_graph()
    return graph is not None and graph.name.endswith("shape")


def scope_weights(prefix, layer):
    """Give the weights of a sublayer the owner's name in front of their path, as Keras'
    name scopes do: `lstm_cell/kernel` built by layer `lstm` is `lstm/lstm_cell/kernel`."""
    if not isinstance(layer, Layer):
        return
    for var in layer.weights:
        if not var.path.startswith(prefix + "/"):
            var.path = f"{prefix}/{var.path}"


def call_cell(cell, inputs, states, training):
    """One step of any cell: a Layer is called (it builds itself, sets the training mode);
    a plain object's `call` gets `training` only when it takes it."""
    if isinstance(cell, Layer):
        return cell(inputs, states, training=training)
    if "training" in inspect.signature(cell.call).parameters:
        return cell.call(inputs, states, training=training)
    return cell.call(inputs, states)


class EagerCallMixin:
    """Eager calls of recurrent layers: build from the concrete input shape first (a stateful
    layer needs the batch size), and feed `initial_state` arrays as inputs of the compiled
    call instead of baking them into it as constants."""

    def _eager_call(self, args, kwargs):
        from kgraph.keras.tree import flatten, map_structure

        if args and not self.built:  # (a structure of sequences is built from its arrays)
            self._maybe_build((map_structure(np.asarray, args[0]),) + tuple(args[1:]))
        states = getattr(self, "states", None)
        batch = np.shape(flatten(args[0])[0])[0] if args else None
        if args and states and batch != states[0].shape[0]:
            raise ValueError(f"Layer {self.name!r} is stateful with batch size "
                             f"{states[0].shape[0]}, but it received a batch of "
                             f"{batch} sequences. Every batch of a stateful "
                             f"layer must have the same size.")
        if kwargs.get("initial_state") is not None and len(args) == 1:
            kwargs = dict(kwargs)
            args = (args[0], kwargs.pop("initial_state"))
        return super()._eager_call(args, kwargs)
