"""What SimpleRNNCell, LSTMCell and GRUCell share: arguments, weights, config, dropout, and
the split of a step into an input projection and a recurrent update
(`call` = `recur(project(inputs), states)`, Keras' numbers).

`RNN` runs the whole step per time step. Projecting all time steps with ONE matmul before
the loop looks faster, but the backward pass then slices the gradient of a (batch, time,
gates) tensor once per step, and each slice's gradient is a pad to the full tensor:
O(time²), 4x slower on a 50-step LSTM epoch.
"""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph import random as krandom
from kgraph.keras import activations, constraints, initializers, regularizers
from kgraph.keras.layers.base import Layer
from kgraph.keras.layers.rnn.dropout_rnn_cell import DropoutRNNCell


class RecurrentCell(Layer, DropoutRNNCell):
    """Base class of the built-in cells. Subclasses set `gates` (kernel blocks: 1, 4 or 3)
    and implement `recur(projected_inputs, states, training)`."""

    gates = 1

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise ValueError(f"Received an invalid value for argument `units`, expected a "
                             f"positive integer, got {units!r}.")
        self.implementation = kwargs.pop("implementation", 2)
        super().__init__(**kwargs)
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        if self.recurrent_dropout != 0.0 and self.gates > 1:
            self.implementation = 1  # Keras: one mask per gate when recurrent dropout is on
        if self.implementation == 1 and self.gates > 1:
            self.dropout_mask_count = self.gates
        self.seed = seed
        self.seed_generator = krandom.SeedGenerator(seed)
        self.state_size = units
        self.output_size = units

    # -- weights ----------------------------------------------------------------------------
    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(f"Layer {self.name!r}: the last dimension of the inputs must be "
                             f"defined. Received: input_shape={tuple(input_shape)}")
        width = self.units * self.gates
        self.kernel = self.add_weight(shape=(input_dim, width), name="kernel",
                                      initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(shape=(self.units, width),
                                                name="recurrent_kernel",
                                                initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(shape=self.bias_shape(), name="bias",
                                        initializer=self.bias_weight_initializer(),
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)
        self.built = True

    def bias_shape(self):
        return (self.units * self.gates,)

    def bias_weight_initializer(self):
        return self.bias_initializer

    def input_bias(self):
        return self.bias

    # -- computing --------------------------------------------------------------------------
    def call(self, inputs, states, training=False):
        return self.recur(self.project(inputs, training), states, training)

    def project(self, inputs, training=False):
        """The input part of the gates of one step, `inputs @ kernel + bias`."""
        masks = self.get_dropout_mask(inputs) if training and 0.0 < self.dropout < 1.0 else None
        z = self.masked_product(inputs, masks, self.kernel)
        bias = self.input_bias()
        return z if bias is None else z + bias

    def recurrent_masks(self, h_tm1, training):
        if training and 0.0 < self.recurrent_dropout < 1.0:
            return self.get_recurrent_dropout_mask(h_tm1)
        return None

    def masked_product(self, x, masks, kernel):
        """`x @ kernel`; with a list of masks, gate block k sees `x * masks[k]`."""
        if isinstance(masks, list):
            u = kernel.shape[1] // len(masks)
            return ops.concatenate([ops.matmul(x * m, kernel[:, k * u:(k + 1) * u])
                                    for k, m in enumerate(masks)], axis=-1)
        return ops.matmul(x if masks is None else x * masks, kernel)

    def recur(self, projected, states, training=False):
        raise NotImplementedError

    def get_initial_state(self, batch_size=None):
        sizes = self.state_size if isinstance(self.state_size, list) else [self.state_size]
        return [np.zeros((batch_size, d), dtype=self.dtype) for d in sizes]

    # -- config -----------------------------------------------------------------------------
    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed}


def first_state(states):
    return states[0] if isinstance(states, (list, tuple)) else states


def like_states(states, new):
    """Return new states in the form they came in: a list, or a single tensor."""
    return new if isinstance(states, (list, tuple)) else new[0]
