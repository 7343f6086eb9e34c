"""`ConvLSTM1D/2D/3D` (Keras 3 names, arguments, weights and equations): an LSTM whose input
and recurrent transformations are convolutions.

Per step, with `*` a convolution (inputs: `strides`/`padding`/`dilation_rate`; state: stride
1, `"same"`): `z = x * W + b + h * U` split along channels into gate blocks i, f, c, o;
`i = σ(z_i)`, `f = σ(z_f)`, `c = f c_{t-1} + i tanh(z_c)`, `o = σ(z_o)`, `h = o tanh(c)`.
Weights live on the `cell` sublayer as in Keras: kernel `(*kernel_size, in, 4 filters)`,
recurrent kernel `(*kernel_size, filters, 4 filters)`, bias `(4 filters,)` (forget block
initialised to ones with `unit_forget_bias`). The steps run as one `Scan` loop
(kgraph/ops/recurrence.py) after the input convolution of all frames at once; `unroll=True`
copies the step per frame instead. The time axis' length must be known.
"""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.ops import recurrence
from kgraph.keras import activations, constraints, initializers, regularizers
from kgraph.keras.layers.base import Layer
from kgraph.keras.layers.rnn.lstm import _ForgetBiasInitializer
from kgraph.keras.layers.rnn.utils import is_shape_only_trace
from kgraph.ops.conv import conv, normalize_data_format, normalize_padding, normalize_tuple

__all__ = ["ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"]

_OBJECTS = {"initializer": initializers, "regularizer": regularizers,
            "constraint": constraints}
_WEIGHT_ARGS = tuple(f"{w}_{kind}" for kind in ("initializer", "regularizer", "constraint")
                     for w in ("kernel", "recurrent", "bias"))


class ConvLSTMCell(Layer):
    """One ConvLSTM step; holds the weights (`kernel`, `recurrent_kernel`, `bias`)."""

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid",
                 data_format=None, dilation_rate=1, activation="tanh",
                 recurrent_activation="sigmoid", use_bias=True, unit_forget_bias=True,
                 **kwargs):
        objects = {k: kwargs.pop(k, None) for k in _WEIGHT_ARGS}
        super().__init__(**kwargs)
        self.rank, self.filters = rank, int(filters)
        self.kernel_size = normalize_tuple(kernel_size, rank, "kernel_size")
        self.strides = normalize_tuple(strides, rank, "strides")
        self.dilation_rate = normalize_tuple(dilation_rate, rank, "dilation_rate")
        self.padding = normalize_padding(padding, False)
        self.data_format = normalize_data_format(data_format)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias, self.unit_forget_bias = use_bias, unit_forget_bias
        defaults = {"kernel_initializer": "glorot_uniform",
                    "recurrent_initializer": "orthogonal", "bias_initializer": "zeros"}
        for key in _WEIGHT_ARGS:
            module = _OBJECTS[key.rsplit("_", 1)[1]]
            setattr(self, key, module.get(objects[key] or defaults.get(key)))

    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape):
        channels = input_shape[self._channel_axis()]
        width = 4 * self.filters
        self.kernel = self.add_weight(shape=self.kernel_size + (channels, width), name="kernel",
                                      initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(
            shape=self.kernel_size + (self.filters, width), name="recurrent_kernel",
            initializer=self.recurrent_initializer, regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint)
        self.bias = None
        if self.use_bias:
            init = _ForgetBiasInitializer(self.bias_initializer, self.filters) \
                if self.unit_forget_bias else self.bias_initializer
            self.bias = self.add_weight(shape=(width,), name="bias", initializer=init,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)
        self.built = True

    def input_conv(self, x):
        return conv(x, self.kernel, self.strides, self.padding, self.data_format,
                    self.dilation_rate, bias=self.bias)

    def step(self, projected, h_tm1, c_tm1):
        z = projected + conv(h_tm1, self.recurrent_kernel, 1, "same", self.data_format)
        i, f, c, o = ops.split(z, 4, axis=self._channel_axis())
        c = self.recurrent_activation(f) * c_tm1 + \
            self.recurrent_activation(i) * self.activation(c)
        h = self.recurrent_activation(o) * self.activation(c)
        return h, c

    def zero_state(self, projected):
        first = ops.split(projected, 4, axis=self._channel_axis())[0]
        return first * 0.0


class ConvLSTM(Layer):
    """Base of ConvLSTM1D/2D/3D: unrolls `ConvLSTMCell` over the (known) time axis."""

    rank = None

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, **kwargs):
        self.unroll = bool(kwargs.pop("unroll", False))
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if dropout or recurrent_dropout or stateful:
            raise NotImplementedError(
                f"{type(self).__name__}: dropout, recurrent_dropout and stateful are not "
                f"implemented in kgraph. Received: dropout={dropout}, recurrent_dropout="
                f"{recurrent_dropout}, stateful={stateful}")
        self.cell = ConvLSTMCell(
            self.rank, filters, kernel_size, strides, padding, data_format, dilation_rate,
            activation, recurrent_activation, use_bias, unit_forget_bias,
            kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint, name="conv_lstm_cell", dtype=self.dtype_policy)
        self.return_sequences, self.return_state = return_sequences, return_state
        self.go_backwards, self.seed = go_backwards, seed

    def build(self, input_shape):
        if len(input_shape) != self.rank + 3:
            raise ValueError(f"{type(self).__name__} expects inputs of rank {self.rank + 3} "
                             f"(batch, time, ...). Received: input_shape={tuple(input_shape)}")
        self.cell.build((input_shape[0],) + tuple(input_shape[2:]))
        self.built = True

    def call(self, sequences, initial_state=None, training=False):
        steps = sequences.shape[1]
        if steps is None and is_shape_only_trace():
            # a functional model being built: one step gives the types; the compiled step
            # sees the real length and unrolls it (as RNN does)
            steps, unknown_length = 1, True
        elif steps is None:
            raise ValueError(f"{type(self).__name__}: the time axis is unrolled in the graph, "
                             f"so its length must be known. Received: shape "
                             f"{tuple(sequences.shape)}")
        else:
            unknown_length = False
        if not (unknown_length or self.unroll) and \
                self.cell.compute_dtype in ("float32", "float64"):  # recurrence.ScanBodyError
            return self._loop(sequences, initial_state)
        order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        h = c = None
        if initial_state is not None:
            h, c = initial_state
        outputs = []
        for t in order:
            projected = self.cell.input_conv(sequences[:, t])
            if h is None:
                h = c = self.cell.zero_state(projected)
            h, c = self.cell.step(projected, h, c)
            outputs.append(h)
        output = ops.stack(outputs, axis=1) if self.return_sequences else h
        if unknown_length and self.return_sequences:
            shape = (output.shape[0], None) + tuple(output.shape[2:])
            output = ops.apply("Expand", output, np.ones(len(shape), np.int64), shape=shape)
        return [output, h, c] if self.return_state else output

    def _loop(self, sequences, initial_state):
        """All frames' input convolution as one, then the recurrence as a `Scan` over time."""
        frames = ops.transpose(sequences, (1, 0) + tuple(range(2, sequences.ndim)))
        steps = frames.shape[0]
        projected = self.cell.input_conv(ops.reshape(frames, (-1,) + tuple(frames.shape[2:])))
        projected = ops.reshape(projected, (steps, -1) + tuple(projected.shape[1:]))
        if initial_state is None:
            h = c = self.cell.zero_state(projected[0])
        else:
            h, c = initial_state

        def step(carry, slices):
            h, c = self.cell.step(slices[0], carry[0], carry[1])
            return [h, c], [h] if self.return_sequences else []

        (h, c), stacked = recurrence.scan(step, [h, c], [projected],
                                          reverse=self.go_backwards, name=f"{self.name}_step")
        output = h
        if self.return_sequences:
            output = ops.flip(stacked[0], 0) if self.go_backwards else stacked[0]
            output = ops.transpose(output, (1, 0) + tuple(range(2, output.ndim)))
        return [output, h, c] if self.return_state else output

    def get_config(self):
        cell = self.cell
        config = {"filters": cell.filters, "kernel_size": cell.kernel_size,
                  "strides": cell.strides, "padding": cell.padding,
                  "data_format": cell.data_format, "dilation_rate": cell.dilation_rate,
                  "activation": activations.serialize(cell.activation),
                  "recurrent_activation": activations.serialize(cell.recurrent_activation),
                  "use_bias": cell.use_bias, "unit_forget_bias": cell.unit_forget_bias}
        for key in _WEIGHT_ARGS:
            config[key] = _OBJECTS[key.rsplit("_", 1)[1]].serialize(getattr(cell, key))
        return {**super().get_config(), **config, "dropout": 0.0, "recurrent_dropout": 0.0,
                "seed": self.seed, "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards,
                "stateful": False, "unroll": self.unroll}


class ConvLSTM1D(ConvLSTM):
    """1D convolutional LSTM over `(batch, time, steps, channels)` inputs.

    Args:
        filters, kernel_size, strides, padding ("valid"/"same"), data_format, dilation_rate:
            the input convolution (the recurrent one is stride 1, "same").
        activation (tanh), recurrent_activation (sigmoid), use_bias, unit_forget_bias,
        kernel/recurrent/bias initializer, regularizer and constraint: as `LSTM`.
        return_sequences, return_state, go_backwards: as `LSTM`.
        dropout, recurrent_dropout, stateful: not implemented (must be 0 / False).

    Example:
        >>> ConvLSTM1D(4, 3)(np.zeros((2, 5, 8, 3), "float32")).shape  # (2, 6, 4)
    """

    rank = 1


class ConvLSTM2D(ConvLSTM):
    """2D convolutional LSTM over `(batch, time, rows, cols, channels)` inputs (arguments as
    `ConvLSTM1D`).

    Example:
        >>> ConvLSTM2D(4, 3, padding="same")(np.zeros((2, 5, 8, 8, 3), "float32")).shape
        (2, 8, 8, 4)
    """

    rank = 2


class ConvLSTM3D(ConvLSTM):
    """3D convolutional LSTM over `(batch, time, d1, d2, d3, channels)` inputs (arguments as
    `ConvLSTM1D`)."""

    rank = 3
