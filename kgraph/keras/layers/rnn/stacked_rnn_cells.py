"""`StackedRNNCells`: several cells run one after the other inside each time step."""
from __future__ import annotations

import numpy as np

from kgraph.keras.layers.base import Layer
from kgraph.keras.layers.rnn.utils import call_cell, scope_weights


class StackedRNNCells(Layer):
    """Wrapper allowing a stack of RNN cells to behave as a single cell
    (`keras.layers.StackedRNNCells`); `RNN([cell_a, cell_b])` builds one.

    Args:
        cells: list of RNN cell instances; the output of cell k is the input of cell k+1.

    Example:

    >>> cells = [keras.layers.LSTMCell(8), keras.layers.LSTMCell(8)]
    >>> layer = keras.layers.RNN(keras.layers.StackedRNNCells(cells))
    """

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        for cell in cells:
            if not callable(getattr(cell, "call", None)):
                raise ValueError(f"All cells must have a `call` method. Received cell without "
                                 f"a `call` method: {cell!r}")
            if getattr(cell, "state_size", None) is None:
                raise ValueError(f"All cells must have a `state_size` attribute. Received "
                                 f"cell without a `state_size`: {cell!r}")
        self.cells = list(cells)

    @property
    def state_size(self):
        return [c.state_size for c in self.cells]

    @property
    def output_size(self):
        last = self.cells[-1]
        if getattr(last, "output_size", None) is not None:
            return last.output_size
        size = last.state_size
        return size[0] if isinstance(size, (list, tuple)) else size

    def get_initial_state(self, batch_size=None):
        states = []
        for cell in self.cells:
            make = getattr(cell, "get_initial_state", None)
            if make is not None:
                states.append(make(batch_size=batch_size))
            elif isinstance(cell.state_size, int):
                states.append(np.zeros((batch_size, cell.state_size), self.dtype))
            else:
                states.append([np.zeros((batch_size, d), self.dtype) for d in cell.state_size])
        return states

    def build(self, input_shape):
        for cell in self.cells:
            if isinstance(cell, Layer) and not cell.built:
                cell._build_input_shape = tuple(input_shape)
                cell.build(tuple(input_shape))
                cell.built = True
                scope_weights(self.name, cell)
            input_shape = (input_shape[0], _output_size(cell))
        self.built = True

    def call(self, inputs, states, training=False):
        new_states = []
        for cell, cell_states in zip(self.cells, states):
            is_list = isinstance(cell_states, (list, tuple))
            cell_states = list(cell_states) if is_list else [cell_states]
            inputs, cell_states = call_cell(cell, inputs, cell_states, training)
            cell_states = list(cell_states) if isinstance(cell_states, (list, tuple)) \
                else [cell_states]
            new_states.append(cell_states[0] if len(cell_states) == 1 and not is_list
                              else cell_states)
        return inputs, new_states

    def get_config(self):
        from kgraph.keras.saving.serialization_lib import serialize_keras_object

        return {**super().get_config(),
                "cells": [serialize_keras_object(cell) for cell in self.cells]}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from kgraph.keras.saving.serialization_lib import deserialize_keras_object

        config = dict(config)
        cells = [deserialize_keras_object(c, custom_objects=custom_objects)
                 for c in config.pop("cells")]
        return cls(cells, **config)


def _output_size(cell):
    if getattr(cell, "output_size", None) is not None:
        return cell.output_size
    size = cell.state_size
    return size[0] if isinstance(size, (list, tuple)) else size
