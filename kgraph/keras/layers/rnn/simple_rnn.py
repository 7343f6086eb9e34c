"""SimpleRNNCell and SimpleRNN: `h_t = activation(x_t W + b + h_{t-1} U)`."""
from __future__ import annotations

from kgraph.keras.layers.rnn.cell_base import RecurrentCell, first_state, like_states
from kgraph.keras.layers.rnn.cell_layer import CellLayer


class SimpleRNNCell(RecurrentCell):
    """Cell class for SimpleRNN (`keras.layers.SimpleRNNCell`).

    Args:
        units: positive int, dimensionality of the output space.
        activation: activation function (default `tanh`; None is linear).
        use_bias: whether the cell has a bias vector.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers of
            `kernel` (input_dim, units), `recurrent_kernel` (units, units) and `bias`
            (units,). Defaults: glorot_uniform, orthogonal, zeros.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: weight penalties.
        kernel_constraint, recurrent_constraint, bias_constraint: weight constraints.
        dropout: fraction of the inputs to drop (one mask for all time steps).
        recurrent_dropout: fraction of the recurrent state to drop.
        seed: random seed for dropout.

    Call arguments:
        inputs: (batch, features); states: list with the (batch, units) previous state;
        training: whether dropout applies.

    Example:

    >>> cell = keras.layers.SimpleRNNCell(4)
    >>> rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    """

    gates = 1

    def recur(self, projected, states, training=False):
        h_tm1 = first_state(states)
        masks = self.recurrent_masks(h_tm1, training)
        if masks is not None:
            h_tm1 = h_tm1 * masks
        output = self.activation(projected + h_tm1 @ self.recurrent_kernel)
        return output, like_states(states, [output])


class SimpleRNN(CellLayer):
    """Fully-connected RNN where the output is fed back as the next input
    (`keras.layers.SimpleRNN`).

    Args:
        units, activation, use_bias, initializers, regularizers, constraints, dropout,
        recurrent_dropout, seed: as `SimpleRNNCell`; activity_regularizer: penalty on the
        output. return_sequences, return_state, go_backwards, stateful, unroll: as `RNN`.

    Example:

    >>> layer = keras.layers.SimpleRNN(4)
    >>> layer(np.zeros((32, 10, 8), "float32")).shape
    (32, 4)
    """

    cell_class = SimpleRNNCell
    cell_name = "simple_rnn_cell"
    config_leaves_out = ("seed",)  # Keras 3 leaves it out of SimpleRNN's config

    def __init__(self, units, activation="tanh", use_bias=True, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, **kwargs)
