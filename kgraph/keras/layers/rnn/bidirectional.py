"""`Bidirectional`: one copy of a recurrent layer reads the sequence forwards, another
backwards, and their outputs are merged. Weights: forward layer's, then backward layer's."""
from __future__ import annotations

import copy

from kgraph import ops
from kgraph.keras.layers.base import Layer
from kgraph.keras.layers.rnn.utils import (EagerCallMixin, scope_weights, split_time,
                                           stack_steps)
from kgraph.keras.serialization import CustomObjectScope
from kgraph.keras.tree import flatten

MERGE_MODES = ("sum", "mul", "ave", "concat", None)


class Bidirectional(EagerCallMixin, Layer):
    """Bidirectional wrapper for RNNs (`keras.layers.Bidirectional`).

    Args:
        layer: a recurrent layer (`RNN`, `LSTM`, `GRU`, ...). It is copied from its config:
            the wrapper's layers have fresh weights.
        merge_mode: how outputs are combined: "concat" (default), "sum", "mul", "ave", or
            None (a list of both outputs).
        weights: optional initial weights, forward then backward.
        backward_layer: optional layer for the backward direction; it must have
            `go_backwards` opposite to `layer` and the same `stateful`, `return_sequences`,
            `return_state`.

    Call arguments: as the wrapped layer's; the first half of `initial_state` goes to the
    forward layer, the second half to the backward layer.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((5, 10)),
    ...     keras.layers.Bidirectional(keras.layers.LSTM(10, return_sequences=True)),
    ...     keras.layers.Bidirectional(keras.layers.LSTM(10)),
    ...     keras.layers.Dense(5, activation="softmax")])
    """

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None,
                 **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(f"Please initialize `Bidirectional` layer with a "
                             f"`keras.layers.Layer` instance. Received: {layer!r}")
        if backward_layer is not None and not isinstance(backward_layer, Layer):
            raise ValueError(f"`backward_layer` need to be a `keras.layers.Layer` instance. "
                             f"Received: {backward_layer!r}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"Invalid merge mode. Received: {merge_mode!r}. Merge mode "
                             f"should be one of {{\"sum\", \"mul\", \"ave\", \"concat\", None}}")
        super().__init__(**kwargs)
        if self._batch_input_shape is None:  # `Bidirectional(LSTM(.., input_shape=..))`
            self._batch_input_shape = layer._batch_input_shape
        self.forward_layer = clone_layer(layer, name="forward_" + _drop(layer.name, "forward_"))
        if backward_layer is None:
            backward_layer = clone_layer(layer, go_backwards=True,
                                         name="backward_" + _drop(layer.name, "backward_"))
            # ours alone: a looping RNN gives its outputs in input order, not processing
            # order, so they need not be reversed twice (`_merge_sequences`)
            backward_layer._aligned_outputs = True
        self.backward_layer = backward_layer
        self._verify_layer_config()
        for sub in (self.forward_layer, self.backward_layer):
            if getattr(sub, "zero_output_for_mask", None) is not None:
                sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self._initial_weights = weights
        self.stateful = layer.stateful
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.supports_masking = True
        self.input_spec_ndim = 3

    def _verify_layer_config(self):
        forward, backward = self.forward_layer, self.backward_layer
        if forward.go_backwards == backward.go_backwards:
            raise ValueError(f"Forward layer and backward layer should have different "
                             f"`go_backwards` value. Received: forward_layer.go_backwards="
                             f"{forward.go_backwards}, backward_layer.go_backwards="
                             f"{backward.go_backwards}")
        for attr in ("stateful", "return_sequences", "return_state"):
            if getattr(forward, attr) != getattr(backward, attr):
                raise ValueError(f"Forward layer and backward layer are expected to have the "
                                 f"same value for attribute {attr!r}, got "
                                 f"{getattr(forward, attr)!r} for forward layer and "
                                 f"{getattr(backward, attr)!r} for backward layer")

    def build(self, sequences_shape, initial_state_shape=None):
        for sub in (self.forward_layer, self.backward_layer):
            if not sub.built:
                sub._build_input_shape = tuple(sequences_shape)
                sub.build(tuple(sequences_shape))
                sub.built = True
                scope_weights(self.name, sub)
        self.built = True
        if self._initial_weights:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def call(self, sequences, initial_state=None, mask=None, training=None):
        forward_state = backward_state = None
        if initial_state is not None:
            states = flatten(initial_state)
            half = len(states) // 2
            forward_state, backward_state = states[:half], states[half:]
        y = self.forward_layer(sequences, initial_state=forward_state, mask=mask,
                               training=training)
        y_rev = self.backward_layer(sequences, initial_state=backward_state, mask=mask,
                                    training=training)
        states = ()
        if self.return_state:
            states = tuple(y[1:]) + tuple(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        aligned = getattr(self.backward_layer, "_aligned_outputs", False) and \
            not _stacked(y_rev)  # a loop's outputs (see __init__)
        output = _merge_sequences(self.merge_mode, y, y_rev, aligned) \
            if self.return_sequences else _merge(self.merge_mode, y, y_rev)
        if not self.return_state:
            return output
        return (output + states) if self.merge_mode is None else (output,) + states

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if self.return_sequences:
            output_mask = [mask, mask] if self.merge_mode is None else mask
        else:
            output_mask = [None, None] if self.merge_mode is None else None
        if not self.return_state:
            return output_mask
        outputs = output_mask if self.merge_mode is None else [output_mask]
        n_states = len(self.forward_layer.state_size) * 2 \
            if hasattr(self.forward_layer, "state_size") else 0
        return list(outputs) + [None] * n_states

    # -- states ---------------------------------------------------------------------------
    @property
    def states(self):
        forward, backward = self.forward_layer.states, self.backward_layer.states
        return tuple(forward) + tuple(backward) if forward and backward else None

    def reset_state(self):
        if not self.stateful:
            raise AttributeError(f"Layer {self.name!r} must be stateful to reset its states.")
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    reset_states = reset_state

    # -- config ---------------------------------------------------------------------------
    def get_config(self):
        from kgraph.keras.saving.serialization_lib import serialize_keras_object

        return {**super().get_config(), "merge_mode": self.merge_mode,
                "layer": serialize_keras_object(self.forward_layer),
                "backward_layer": serialize_keras_object(self.backward_layer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from kgraph.keras.saving.serialization_lib import deserialize_keras_object

        config = copy.deepcopy(config)
        config["layer"] = deserialize_keras_object(config["layer"],
                                                   custom_objects=custom_objects)
        backward = config.pop("backward_layer", None)
        if backward is not None:
            backward = deserialize_keras_object(backward, custom_objects=custom_objects)
            backward._aligned_outputs = True  # made here: ours alone (see __init__)
            config["backward_layer"] = backward
        return cls(**config)


def clone_layer(layer, **overrides):
    """A fresh layer from `layer`'s config (no weights shared). The classes of the layer and
    its sublayers (a custom cell, say) are in scope while the config is read back."""
    config = {**layer.get_config(), **overrides}
    classes = {type(sub).__name__: type(sub) for sub in [layer] + layer._flat_layers()}
    with CustomObjectScope(classes):
        return type(layer).from_config(config)


def _drop(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else name


def _merge_sequences(mode, y, y_rev, aligned=False):
    """Merge with the backward output reversed in time (unless `aligned`: already in input
    order). Unrolled outputs (stacked from steps) merge step by step, so an unrolled recurrent
    layer on top takes its steps without slicing; the outputs of loops (`Scan`) merge as whole
    sequences."""
    if y.shape[1] is None:  # shape-only trace
        return _merge(mode, y, y_rev)
    if not (_stacked(y) and _stacked(y_rev)):
        return _merge(mode, y, y_rev if aligned else ops.flip(y_rev, 1))
    pairs = zip(split_time(y), reversed(split_time(y_rev)))
    merged = [_merge(mode, a, b) for a, b in pairs]
    if mode is None:
        return stack_steps([a for a, _ in merged]), stack_steps([b for _, b in merged])
    return stack_steps(merged)


def _stacked(y):
    node = getattr(y, "node", None)
    return node is not None and node.op == "Concat" and node.attrs["axis"] == 1


def _merge(mode, y, y_rev):
    if mode == "concat":
        return ops.concatenate([y, y_rev], axis=-1)
    if mode == "sum":
        return y + y_rev
    if mode == "ave":
        return (y + y_rev) / 2.0
    if mode == "mul":
        return y * y_rev
    return (y, y_rev)
