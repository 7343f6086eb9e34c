"""LSTMCell and LSTM (Hochreiter 1997), Keras' equations and weight layout:

`z = x W + h U + b` split into gate blocks i, f, c, o; `i = σ(z_i)`, `f = σ(z_f)`,
`c = f c_{t-1} + i tanh(z_c)`, `o = σ(z_o)`, `h = o tanh(c)`. Kernel (in, 4u), recurrent
kernel (u, 4u), bias (4u,); `unit_forget_bias` initialises the f block of the bias to ones.
"""
from __future__ import annotations

import numpy as np

from kgraph.keras import activations, initializers
from kgraph.keras.layers.rnn.cell_base import RecurrentCell
from kgraph.keras.layers.rnn.cell_layer import CellLayer
from kgraph.keras.layers.rnn.utils import gate_blocks
from kgraph.ops.lstm_gates import lstm_gates
from kgraph.runtime import native_ops


class LSTMCell(RecurrentCell):
    """Cell class for the LSTM layer (`keras.layers.LSTMCell`).

    Args:
        units: positive int, dimensionality of the output space.
        activation: activation of the cell input and output (default `tanh`).
        recurrent_activation: activation of the gates (default `sigmoid`).
        use_bias: whether the cell has a bias vector.
        kernel_initializer, recurrent_initializer, bias_initializer: defaults
            glorot_uniform, orthogonal, zeros.
        unit_forget_bias: add 1 to the forget-gate bias at initialization (default True).
        kernel_regularizer, recurrent_regularizer, bias_regularizer, kernel_constraint,
        recurrent_constraint, bias_constraint: weight penalties and constraints.
        dropout, recurrent_dropout: fractions of the inputs / recurrent state to drop
            (masks fixed across time steps; with recurrent dropout, one mask per gate).
        seed: random seed for dropout.

    Call arguments:
        inputs: (batch, features); states: `[h, c]`, each (batch, units); training.

    Example:

    >>> rnn = keras.layers.RNN(keras.layers.LSTMCell(4))
    >>> rnn(np.zeros((32, 10, 8), "float32")).shape
    (32, 4)
    """

    gates = 4

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, unit_forget_bias=True, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias
        self.state_size = [units, units]

    def bias_weight_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        return _ForgetBiasInitializer(self.bias_initializer, self.units)

    def recur(self, projected, states, training=False):
        h_tm1, c_tm1 = states[0], states[1]
        product = _recurrent_product(self, h_tm1, training)
        if self._one_gates_op(projected):
            h, c = lstm_gates(projected, product, c_tm1)
            return h, [h, c]
        z = projected + product
        z_i, z_f, z_c, z_o = gate_blocks(z, 4)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c_tm1 + i * self.activation(z_c)
        o = self.recurrent_activation(z_o)
        h = o * self.activation(c)
        return h, [h, c]

    def _one_gates_op(self, projected):
        """Whether the step's gate arithmetic is one `LSTMGates` op: Keras' default
        activations, float32, and kgraph's onnxruntime operators to run it (elsewhere the
        separate ops, whose backward loop reads derivatives computed before it, are faster)."""
        return (self.activation is activations.tanh
                and self.recurrent_activation is activations.sigmoid
                and projected.dtype == "float32" and len(projected.shape) == 2
                and native_ops.available())

    def get_config(self):
        return {**super().get_config(),
                "recurrent_activation": activations.serialize(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias}


def _recurrent_product(cell, h_tm1, training):
    """`h U`, with one recurrent dropout mask per gate block when dropout applies."""
    masks = cell.recurrent_masks(h_tm1, training)
    return cell.masked_product(h_tm1, masks, cell.recurrent_kernel)


class _ForgetBiasInitializer:
    """Keras' unit_forget_bias: [init(u), ones(u), init(2u)]."""

    def __init__(self, base, units):
        self.base, self.units = base, units

    def __call__(self, shape, dtype=None):
        u = self.units
        ones = initializers.get("ones")((u,), dtype=dtype)
        parts = [self.base((u,), dtype=dtype), ones, self.base((2 * u,), dtype=dtype)]
        return np.concatenate([np.asarray(p) for p in parts])


class LSTM(CellLayer):
    """Long Short-Term Memory layer (`keras.layers.LSTM`).

    Args:
        units and the cell arguments of `LSTMCell`; activity_regularizer;
        return_sequences, return_state, go_backwards, stateful, unroll: as `RNN`;
        use_cudnn: accepted for Keras compatibility ("auto", True, False).

    Example:

    >>> lstm = keras.layers.LSTM(4, return_sequences=True, return_state=True)
    >>> whole_sequence, final_memory_state, final_carry_state = lstm(
    ...     np.zeros((32, 10, 8), "float32"))
    """

    cell_class = LSTMCell
    cell_name = "lstm_cell"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, **kwargs):
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, use_bias=use_bias,
                         **kwargs)

