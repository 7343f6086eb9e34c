"""GRUCell and GRU (Cho et al. 2014), Keras' equations and weight layout (gate blocks z, r, h).

reset_after=True (default): `[xz, xr, xh] = x W + b[0]`, `[rz, rr, rh] = h U + b[1]`,
`z = σ(xz + rz)`, `r = σ(xr + rr)`, `ĥ = tanh(xh + r rh)`; bias (2, 3u).
reset_after=False: `ĥ = tanh(xh + (r h) U_h)`, bias (3u,) on the input side only.
Both: `h = z h_{t-1} + (1 - z) ĥ`.
"""
from __future__ import annotations

from kgraph import ops
from kgraph.keras import activations
from kgraph.keras.layers.rnn.cell_base import RecurrentCell, first_state, like_states
from kgraph.keras.layers.rnn.cell_layer import CellLayer
from kgraph.keras.layers.rnn.utils import gate_blocks


class GRUCell(RecurrentCell):
    """Cell class for the GRU layer (`keras.layers.GRUCell`).

    Args:
        units: positive int, dimensionality of the output space.
        activation: activation of the candidate state (default `tanh`).
        recurrent_activation: activation of the gates (default `sigmoid`).
        use_bias: whether the cell has biases.
        kernel_initializer, recurrent_initializer, bias_initializer, regularizers,
        constraints, dropout, recurrent_dropout, seed: as `LSTMCell`.
        reset_after: apply the reset gate after the recurrent matmul (True, default,
            cuDNN-compatible, bias (2, 3u)) or before it (False, bias (3u,)).

    Call arguments:
        inputs: (batch, features); states: `[h]` (batch, units); training.

    Example:

    >>> rnn = keras.layers.RNN(keras.layers.GRUCell(4), return_state=True)
    """

    gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, reset_after=True, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = reset_after

    def bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def input_bias(self):
        if self.bias is None or not self.reset_after:
            return self.bias
        return self.bias[0]

    def recur(self, projected, states, training=False):
        h_tm1 = first_state(states)
        u, kernel = self.units, self.recurrent_kernel
        masks = self.recurrent_masks(h_tm1, training)
        h_z, h_r, h_h = masks_applied(h_tm1, masks)
        x_z, x_r, x_h = gate_blocks(projected, 3)
        if self.reset_after:
            inner = self.masked_product(h_tm1, masks, kernel)
            if self.bias is not None:
                inner = inner + self.bias[1]
            r_z, r_r, r_h = gate_blocks(inner, 3)
        else:
            r_z, r_r = ops.matmul(h_z, kernel[:, :u]), ops.matmul(h_r, kernel[:, u:2 * u])
        z = self.recurrent_activation(x_z + r_z)
        r = self.recurrent_activation(x_r + r_r)
        if self.reset_after:
            candidate = self.activation(x_h + r * r_h)
        else:
            candidate = self.activation(x_h + ops.matmul(r * h_h, kernel[:, 2 * u:]))
        h = z * h_tm1 + (1.0 - z) * candidate
        return h, like_states(states, [h])

    def get_config(self):
        return {**super().get_config(),
                "recurrent_activation": activations.serialize(self.recurrent_activation),
                "reset_after": self.reset_after}


def masks_applied(h, masks):
    """(h_z, h_r, h_h): the state seen by each gate block."""
    if masks is None:
        return h, h, h
    if not isinstance(masks, list):
        return h * masks, h * masks, h * masks
    return tuple(h * m for m in masks)


class GRU(CellLayer):
    """Gated Recurrent Unit layer (`keras.layers.GRU`).

    Args:
        units and the cell arguments of `GRUCell` (reset_after included);
        activity_regularizer; return_sequences, return_state, go_backwards, stateful,
        unroll: as `RNN`; use_cudnn: accepted for Keras compatibility.

    Example:

    >>> gru = keras.layers.GRU(4, return_sequences=True, return_state=True)
    >>> whole_sequence, final_state = gru(np.zeros((32, 10, 8), "float32"))
    """

    cell_class = GRUCell
    cell_name = "gru_cell"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, **kwargs):
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, use_bias=use_bias,
                         **kwargs)
