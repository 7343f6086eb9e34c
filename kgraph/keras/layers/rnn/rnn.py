"""`RNN`: runs a recurrent cell over the time axis of a sequence.

The built-in cells (LSTM, GRU, SimpleRNN) run as one loop node, a `Scan` over the time-major
sequence (kgraph/ops/recurrence.py): the graph, its compile time and its memory do not grow
with the sequence length, and the backward pass is a reverse loop over saved step values.
`unroll=True` (as Keras), custom cells and half-precision cells unroll the steps instead, a
copy per step, which the sequence's static length allows. Masked time steps keep the previous
output and states (Keras' semantics). A stateful layer keeps its
states in non-trainable variables of shape (batch, units): every call reads them as its
initial state and assigns its final state to them, which the compiled step stores back.
"""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.ops import recurrence
from kgraph.keras.layers.base import IncompatibleInputError, Layer
from kgraph.keras.layers.rnn.cell_base import RecurrentCell
from kgraph.keras.layers.rnn.stacked_rnn_cells import StackedRNNCells
from kgraph.keras.layers.rnn.utils import (EagerCallMixin, batch_reference, batch_zeros,
                                           state_dims,
                                           call_cell, is_shape_only_trace, scope_weights,
                                           split_time, stack_steps, time_step)
from kgraph.ir.graph import Value
from kgraph.keras.tree import flatten, map_shape_structure, pack_like
from kgraph.tensor_shape import TensorShape
from kgraph.variables import Variable


class RNN(EagerCallMixin, Layer):
    """Base class for recurrent layers (`keras.layers.RNN`).

    Args:
        cell: an RNN cell: an object with `call(inputs, states[, training])` returning
            `(output, new_states)` and a `state_size` attribute (an int, or a list with one
            entry per state); or a list of cells, stacked with `StackedRNNCells`.
        return_sequences: whether to return the output of every time step (batch, time,
            units) or only the last one (batch, units).
        return_state: whether to return the final states after the output.
        go_backwards: process the sequence from its end; outputs come in processing order.
        stateful: reuse the final state of sample i of a batch as the initial state of
            sample i in the next batch. Needs a fixed batch size.
        unroll: copy the step once per time step instead of looping (see above).
        zero_output_for_mask: masked steps output zeros instead of the previous output.

    Call arguments:
        sequences: a tensor of shape (batch, time, features), or a nested structure of
            (batch, time, ...) tensors (a cell taking structured steps: its `build` gets the
            structure of step shapes, its `call` the structure of step slices).
        initial_state: a tensor or list of tensors, the initial states.
        mask: boolean (batch, time); False steps are skipped.
        training: passed on to the cell (dropout).

    Example:

    >>> rnn = keras.layers.RNN(keras.layers.LSTMCell(4), return_sequences=True)
    >>> rnn(np.zeros((2, 10, 8), "float32")).shape
    (2, 10, 4)
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False, **kwargs):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        if not callable(getattr(cell, "call", None)):
            raise ValueError(f"Argument `cell` should have a `call` method. Received: "
                             f"cell={cell!r}")
        if not isinstance(getattr(cell, "state_size", None), (int, list, tuple)):
            raise ValueError(f"The RNN cell should have a `state_size` attribute (single "
                             f"integer or list of integers, one integer per RNN state). "
                             f"Received: cell={cell!r}")
        if kwargs.pop("time_major", False):  # tf-keras configs write time_major=False
            raise ValueError("time_major=True is not supported: inputs are (batch, time, ...).")
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        self.input_spec_ndim = 3
        self._states = None  # the variables of a stateful layer (kept out of `weights`)

    @property
    def state_size(self):
        size = self.cell.state_size
        return [size] if isinstance(size, (int, TensorShape)) else list(size)

    @property
    def states(self):
        """The state variables of a stateful layer (None before it is built)."""
        return self._states

    # -- building -----------------------------------------------------------------------
    def build(self, sequences_shape, initial_state_shape=None):
        shapes = []  # one (batch, time, ...) shape, or those of a structure of sequences
        map_shape_structure(lambda s: shapes.append(tuple(s)), sequences_shape)
        for shape in shapes:
            if len(shape) < 3:
                raise IncompatibleInputError(
                    f"Input 0 of layer {self.name!r} is incompatible with the layer: "
                    f"expected ndim=3, found ndim={len(shape)}. Full shape "
                    f"received: {sequences_shape}")
        shape = shapes[0]
        if isinstance(self.cell, Layer) and not self.cell.built:
            # the step shape, or the structure of them, as Keras hands it to the cell
            step_shape = map_shape_structure(lambda s: (s[0],) + tuple(s[2:]),
                                             sequences_shape)
            self.cell._build_input_shape = step_shape
            self.cell.build(step_shape)
            self.cell.built = True
            scope_weights(self.name, self.cell)
        if self.stateful:
            if self._states is None:
                self._create_state_variables(shape)
            else:
                self.reset_state()
        self.built = True

    def _create_state_variables(self, shape):
        batch = shape[0]
        if batch is None:
            raise ValueError(
                f"Layer {self.name!r} is stateful, so it needs a fixed batch size, but its "
                f"input has an unknown batch size: input shape {shape}. Pass the batch size "
                f"to the first layer of the model, e.g. `batch_size=32` next to "
                f"`input_shape=` (or `batch_input_shape=`/`batch_shape=`), or use "
                f"`keras.Input(shape, batch_size=32)`.")
        zeros = flatten(self._state_template(lambda d: np.zeros((batch, *state_dims(d)),
                                                                self.dtype)))
        self._states = [Variable(z, trainable=False, name="rnn_state" + (f"_{i}" if i else ""),
                                 path=f"{self.name}/rnn_state" + (f"_{i}" if i else ""))
                        for i, z in enumerate(zeros)]

    def _state_template(self, make):
        """The nested structure of the states (one entry per `state_size` item; a
        `TensorShape` item is one state of that shape per sequence, as tf.keras 2)."""
        def build(size):
            if isinstance(size, (int, TensorShape)):
                return make(size)
            return [build(s) for s in size]
        return [build(s) for s in self.state_size]

    def reset_state(self, states=None):
        """Zero the states of a stateful layer (or set them to `states`, numpy arrays)."""
        if self._states is None:
            if not self.stateful:
                raise AttributeError(f"Layer {self.name!r} is not stateful; it has no states "
                                     f"to reset.")
            return
        values = [None] * len(self._states) if states is None else flatten(states)
        if len(values) != len(self._states):
            raise ValueError(f"Layer {self.name!r} has {len(self._states)} states. "
                             f"Received: {len(values)} values")
        for var, value in zip(self._states, values):
            var.assign(np.zeros(var.shape, var.dtype) if value is None else value)

    reset_states = reset_state

    def get_initial_state(self, batch_size):
        """Zero initial states for a batch of `batch_size` sequences (numpy arrays)."""
        make = getattr(self.cell, "get_initial_state", None)
        if make is not None:
            init = make(batch_size=batch_size)
            return list(init) if isinstance(init, (list, tuple)) else [init]
        return self._state_template(lambda d: np.zeros((batch_size, *state_dims(d)),
                                                       self.dtype))

    # -- calling --------------------------------------------------------------------------
    def call(self, sequences, initial_state=None, mask=None, training=False):
        first = flatten(sequences)[0]  # a structure of sequences shares batch and time
        states = self._initial_states(first, initial_state)
        if first.shape[1] is None and (is_shape_only_trace() or
                                       not self._loops(sequences, training)):
            return self._shape_only_call(sequences, states, training)  # (a loop runs any
            # number of steps: a step traced with the length open is one program for all)
        _reset_dropout_masks(self.cell)
        try:
            last, outputs, states = self._unroll(sequences, states, mask, training)
        finally:
            _reset_dropout_masks(self.cell)
        if self.stateful:
            for var, value in zip(self._states, flatten(states)):
                var.assign(value)
        output = outputs if self.return_sequences else last
        return (output, *states) if self.return_state else output

    def _initial_states(self, sequences, initial_state):
        template = self._state_template(lambda d: 0)
        if initial_state is None:
            if not self.stateful:
                return self._zero_states(sequences)
            initial_state = [var.value for var in self._states]
        flat = flatten(initial_state)
        if len(flat) != len(flatten(template)):
            raise ValueError(f"Layer {self.name!r} expects {len(flatten(template))} initial "
                             f"state tensor(s) (state_size={self.cell.state_size}), but it "
                             f"received {len(flat)}.")
        return pack_like(template, flat)

    def _zero_states(self, sequences):
        batch = sequences.shape[0]
        if batch is not None:
            return self.get_initial_state(batch)
        reference = batch_reference(sequences)
        return self._state_template(lambda d: batch_zeros(reference, d, sequences.dtype))

    def _unroll(self, sequences, states, mask, training):
        cell = self.cell
        if self._loops(sequences, training):
            return self._scan(sequences, states, mask, training)
        if self._projects_once(sequences, training):
            # the input part of every step's gates as ONE product over the whole sequence
            # (and its gradients as one product each), split into steps: the cell's `recur`
            # then adds the recurrent part step by step
            steps = split_time(cell.project(sequences, training))

            def step(inputs, states):
                return cell.recur(inputs, states, training)
        else:
            pieces = [split_time(x) for x in flatten(sequences)]
            steps = [pack_like(sequences, list(at_t)) for at_t in zip(*pieces)]

            def step(inputs, states):
                return call_cell(cell, inputs, states, training)
        order = range(len(steps) - 1, -1, -1) if self.go_backwards else range(len(steps))
        mask = None if mask is None else ops.cast(flatten(mask)[0], "bool")
        outputs, output = [], None
        for t in order:
            new_output, new_states = step(steps[t], states)
            new_states = list(new_states) if isinstance(new_states, (list, tuple)) \
                else [new_states]
            if mask is not None:
                new_output, new_states = self._masked(ops.slice_axis(mask, t, t + 1, 1),
                                                      new_output, new_states, output, states)
            output, states = new_output, new_states
            if self.return_sequences:
                outputs.append(output)
        stacked = None
        if outputs:  # each output of a structured step stacked over time
            stacked = pack_like(outputs[0], [stack_steps(list(per_output)) for per_output in
                                             zip(*[flatten(o) for o in outputs])])
        return output, stacked, states

    def _loops(self, sequences, training):
        """Whether the steps run as one loop node (a `Scan`) rather than unrolled: a built-in
        cell (`_projects_once`), computing in float32/float64, and `unroll=False`, as Keras'
        `unroll`. Dropout masks are drawn once per sequence before the loop, as unrolled."""
        cell = self.cell
        if not isinstance(sequences, Value):  # a structure of sequences: a custom cell's
            return False
        return not self.unroll and sequences.shape[1] != 0 and \
            self._projects_once(sequences, training, time_major=True) and \
            cell.compute_dtype in ("float32", "float64")  # see recurrence.ScanBodyError

    def _scan(self, sequences, states, mask, training):
        """The steps as one `Scan` over time-major sequences (kgraph/ops/recurrence.py). The
        input projection of all steps is one product before the loop, as unrolled. A built-in
        cell's output is its first state, so the last output is that final state."""
        cell, structure = self.cell, states
        flat = flatten(states)
        # the dropout masks, one per sequence as Keras draws them, before the loop: the input
        # mask (batch, features) broadcasts over the time-major sequence, the body reads the
        # recurrent one
        if training and 0.0 < cell.dropout < 1.0:
            cell.get_dropout_mask(time_step(sequences, 0))
        cell.recurrent_masks(flat[0], training)
        projected = cell.project(ops.transpose(sequences, (1, 0, 2)), training)  # (T, B, G)
        xs = [projected]
        if mask is not None:
            xs.append(ops.transpose(ops.cast(flatten(mask)[0], "bool"), (1, 0)))
            flat = flat + [ops.zeros_like(flat[0])]  # the previous output, for masked steps

        def step(carry, slices):
            output, new_states = cell.recur(slices[0], pack_like(structure, carry[:len(
                flatten(structure))]), training)
            new_states = flatten(new_states)
            if mask is None:
                return new_states, [output] if self.return_sequences else []
            output, new_states = self._masked(ops.expand_dims(slices[1], 1), output,
                                              new_states, carry[-1], carry[:len(new_states)])
            return flatten(new_states) + [output], [output] if self.return_sequences else []

        finals, stacked = recurrence.scan(step, flat, xs, reverse=self.go_backwards,
                                          name=f"{self.name}_step")
        outputs = None
        if self.return_sequences:
            outputs = stacked[0]
            if self.go_backwards and not getattr(self, "_aligned_outputs", False):
                outputs = ops.flip(outputs, 0)  # in processing order, as Keras
            outputs = ops.transpose(outputs, (1, 0) + tuple(range(2, outputs.ndim)))
        last = finals[-1] if mask is not None else finals[0]
        return last, outputs, pack_like(structure, finals[:len(flatten(structure))])

    def _projects_once(self, sequences, training, time_major=False):
        """Whether the whole sequence's input projection can be one product: a built-in cell
        (LSTM, GRU, SimpleRNN: `project` then `recur`), computing in this layer's dtype,
        without input dropout (whose per-step mask broadcasts over a time-major sequence
        only: `time_major` says the projection will be of one)."""
        cell = self.cell
        if not isinstance(cell, RecurrentCell) or cell.compute_dtype != self.compute_dtype:
            return False
        if training and 0.0 < cell.dropout < 1.0 and not time_major:
            return False
        if not cell.built:
            cell._maybe_build((time_step(sequences, 0),))
        return True

    def _masked(self, mask_t, output, states, prev_output, prev_states):
        """Where the step is masked, keep the previous states and output (or zeros)."""
        previous = [None] * len(flatten(output)) if prev_output is None else flatten(
            prev_output)
        kept_outputs = []
        for new, old in zip(flatten(output), previous):
            zero = np.zeros((), dtype=new.dtype)
            fallback = zero if self.zero_output_for_mask or old is None else old
            kept_outputs.append(ops.where(_expand(mask_t, new), new, fallback))
        output = pack_like(output, kept_outputs)
        kept = [ops.where(_expand(mask_t, new), new, old)
                for new, old in zip(flatten(states), flatten(prev_states))]
        return output, pack_like(states, kept)

    def _shape_only_call(self, sequences, states, training):
        """Unknown number of time steps: only types are needed (a functional model is being
        built); the compiled step sees the real length and unrolls it."""
        if not is_shape_only_trace():
            raise ValueError(f"Layer {self.name!r} needs a known number of time steps to run: "
                             f"kgraph unrolls recurrent layers in the compiled graph. "
                             f"Received: input shape {tuple(sequences.shape)}")
        first_step = pack_like(sequences, [time_step(x, 0) for x in flatten(sequences)])
        output, states = call_cell(self.cell, first_step, states, training)
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        _reset_dropout_masks(self.cell)
        if self.return_sequences:
            def over_time(out):
                shape = (out.shape[0], None) + tuple(out.shape[1:])
                return ops.apply("Expand", ops.expand_dims(out, 1),
                                 np.ones(len(shape), np.int64), shape=shape)

            output = pack_like(output, [over_time(o) for o in flatten(output)])
        return (output, *states) if self.return_state else output

    def compute_mask(self, inputs, mask=None):
        mask = flatten(mask)[0] if mask is not None else None
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(flatten(self._state_template(lambda d: 0)))
        return output_mask

    # -- config ---------------------------------------------------------------------------
    def get_config(self):
        from kgraph.keras.saving.serialization_lib import serialize_keras_object

        return {**super().get_config(), "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards,
                "stateful": self.stateful, "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask,
                "cell": serialize_keras_object(self.cell)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from kgraph.keras.saving.serialization_lib import deserialize_keras_object

        config = dict(config)
        cell = deserialize_keras_object(config.pop("cell"), custom_objects=custom_objects)
        return cls(cell, **config)


def _expand(mask_t, like):
    """A (batch, 1) step mask reshaped to broadcast against `like`."""
    if like.ndim == 2:
        return mask_t
    return ops.reshape_to(mask_t, (mask_t.shape[0],) + (1,) * (like.ndim - 1))


def _reset_dropout_masks(cell):
    for c in [cell] + (cell._flat_layers() if isinstance(cell, Layer) else []):
        if hasattr(c, "reset_dropout_mask"):
            c.reset_dropout_mask()
            c.reset_recurrent_dropout_mask()
