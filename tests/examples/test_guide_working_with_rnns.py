"""keras.io guide "Working with RNNs" (guides/working_with_rnns.py).

The guide's built-in RNN layers, return_sequences/return_state, an
encoder-decoder with initial_state, stateful cross-batch RNNs, Bidirectional,
cell-wrapping RNN layers, the MNIST row classifier and the nested-state
custom cell, with kgraph's imports; MNIST is random arrays of its shape and
the sizes and epochs are small.
"""

import numpy as np
import pytest

import kgraph as tf
from kgraph import keras
from kgraph.keras import layers, ops


def test_sequential_lstm_and_gru_stacks():
    model = keras.Sequential()
    model.add(layers.Embedding(input_dim=1000, output_dim=64))
    model.add(layers.LSTM(128))
    model.add(layers.Dense(10))
    assert tuple(model(np.zeros((2, 7), dtype="int32")).shape) == (2, 10)
    model = keras.Sequential()
    model.add(layers.Embedding(input_dim=1000, output_dim=64))
    model.add(layers.GRU(256, return_sequences=True))
    model.add(layers.SimpleRNN(128))
    model.add(layers.Dense(10))
    assert tuple(model(np.zeros((2, 7), dtype="int32")).shape) == (2, 10)


def test_encoder_decoder_with_initial_state():
    encoder_vocab, decoder_vocab = 1000, 2000
    encoder_input = layers.Input(shape=(None,))
    encoder_embedded = layers.Embedding(input_dim=encoder_vocab, output_dim=64)(encoder_input)
    output, state_h, state_c = layers.LSTM(64, return_state=True, name="encoder")(
        encoder_embedded)
    encoder_state = [state_h, state_c]
    decoder_input = layers.Input(shape=(None,))
    decoder_embedded = layers.Embedding(input_dim=decoder_vocab, output_dim=64)(decoder_input)
    decoder_output = layers.LSTM(64, name="decoder")(decoder_embedded,
                                                     initial_state=encoder_state)
    output = layers.Dense(10)(decoder_output)
    model = keras.Model([encoder_input, decoder_input], output)
    rng = np.random.default_rng(0)
    y = model.predict([rng.integers(0, 1000, (3, 5)), rng.integers(0, 2000, (3, 4))],
                      verbose=0)
    assert y.shape == (3, 10)


def test_stateful_lstm_cross_batch():
    paragraph1 = np.random.random((20, 10, 50)).astype(np.float32)
    paragraph2 = np.random.random((20, 10, 50)).astype(np.float32)
    lstm_layer = layers.LSTM(64, stateful=True)
    first = np.asarray(lstm_layer(paragraph1))
    second = np.asarray(lstm_layer(paragraph2))
    lstm_layer.reset_states()
    again = np.asarray(lstm_layer(paragraph2))
    assert not np.allclose(second, again)
    fresh = layers.LSTM(64)
    fresh.build(paragraph1.shape)
    fresh.set_weights(lstm_layer.get_weights())
    np.testing.assert_allclose(np.asarray(fresh(paragraph2)), again, atol=1e-5)
    assert first.shape == (20, 64)
    existing_state = lstm_layer.states
    new_lstm_layer = layers.LSTM(64)
    new_output = new_lstm_layer(paragraph1, initial_state=existing_state)
    assert tuple(new_output.shape) == (20, 64)


def test_bidirectional():
    model = keras.Sequential()
    model.add(keras.Input(shape=(5, 10)))
    model.add(layers.Bidirectional(layers.LSTM(64, return_sequences=True)))
    model.add(layers.Bidirectional(layers.LSTM(32)))
    model.add(layers.Dense(10))
    assert tuple(model.outputs[0].shape) == (None, 10)


def build_model(allow_cudnn_kernel=True, units=64, input_dim=28, output_size=10):
    if allow_cudnn_kernel:
        lstm_layer = keras.layers.LSTM(units)
    else:
        lstm_layer = keras.layers.RNN(keras.layers.LSTMCell(units))
    return keras.models.Sequential([
        keras.Input(shape=(None, input_dim)), lstm_layer,
        keras.layers.BatchNormalization(), keras.layers.Dense(output_size),
    ])


def test_mnist_rows_lstm_and_rnn_cell_agree():
    rng = np.random.default_rng(1)
    x_train = rng.integers(0, 256, (128, 28, 28)).astype("float32") / 255.0
    y_train = rng.integers(0, 10, (128,))
    model = build_model(allow_cudnn_kernel=True)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  optimizer="sgd", metrics=["accuracy"])
    model.fit(x_train, y_train, validation_data=(x_train[:32], y_train[:32]),
              batch_size=64, epochs=1, verbose=0)
    slow_model = build_model(allow_cudnn_kernel=False)
    slow_model.set_weights(model.get_weights())
    np.testing.assert_allclose(slow_model.predict(x_train[:8], verbose=0),
                               model.predict(x_train[:8], verbose=0), atol=1e-4)


class NestedCell(keras.layers.Layer):
    def __init__(self, unit_1, unit_2, unit_3, **kwargs):
        self.unit_1 = unit_1
        self.unit_2 = unit_2
        self.unit_3 = unit_3
        self.state_size = [tf.TensorShape([unit_1]), tf.TensorShape([unit_2, unit_3])]
        self.output_size = [tf.TensorShape([unit_1]), tf.TensorShape([unit_2, unit_3])]
        super().__init__(**kwargs)

    def build(self, input_shapes):
        i1 = input_shapes[0][1]
        i2 = input_shapes[1][1]
        i3 = input_shapes[1][2]
        self.kernel_1 = self.add_weight(shape=(i1, self.unit_1), initializer="uniform",
                                        name="kernel_1")
        self.kernel_2_3 = self.add_weight(shape=(i2, i3, self.unit_2, self.unit_3),
                                          initializer="uniform", name="kernel_2_3")

    def call(self, inputs, states):
        # inputs should be in [(batch, input_1), (batch, input_2, input_3)]
        # state should be in shape [(batch, unit_1), (batch, unit_2, unit_3)]
        input_1, input_2 = tf.nest.flatten(inputs)
        s1, s2 = states
        output_1 = tf.matmul(input_1, self.kernel_1)
        output_2_3 = tf.einsum("bij,ijkl->bkl", input_2, self.kernel_2_3)
        state_1 = s1 + output_1
        state_2_3 = s2 + output_2_3
        output = (output_1, output_2_3)
        new_states = (state_1, state_2_3)
        return output, new_states

    def get_config(self):
        return {"unit_1": self.unit_1, "unit_2": self.unit_2, "unit_3": self.unit_3}


def test_nested_state_custom_cell():
    unit_1, unit_2, unit_3 = 10, 20, 30
    i1, i2, i3 = 32, 64, 32
    batch_size, num_batches, timestep = 8, 2, 5
    cell = NestedCell(unit_1, unit_2, unit_3)
    rnn = keras.layers.RNN(cell)
    input_1 = keras.Input((None, i1))
    input_2 = keras.Input((None, i2, i3))
    outputs = rnn((input_1, input_2))
    model = keras.models.Model([input_1, input_2], outputs)
    model.compile(optimizer="adam", loss="mse", metrics=["accuracy"])
    n = batch_size * num_batches
    input_1_data = np.random.random((n, timestep, i1))
    input_2_data = np.random.random((n, timestep, i2, i3))
    target_1_data = np.random.random((n, unit_1))
    target_2_data = np.random.random((n, unit_2, unit_3))
    history = model.fit([input_1_data, input_2_data], [target_1_data, target_2_data],
                        batch_size=batch_size, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # the last step's outputs, against numpy (the states accumulate; the output is the step's)
    k1, k23 = cell.kernel_1.numpy(), cell.kernel_2_3.numpy()
    out_1, out_2_3 = model.predict([input_1_data, input_2_data], verbose=0)
    np.testing.assert_allclose(out_1, input_1_data[:, -1] @ k1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out_2_3, np.einsum("bij,ijkl->bkl", input_2_data[:, -1], k23),
                               rtol=1e-4, atol=1e-4)
    # every step's outputs and the final states: the states are the sums over time
    full = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    (seq_1, seq_2_3), s1, s2 = full((input_1_data[:4], input_2_data[:4]))
    assert seq_1.shape == (4, timestep, unit_1) and seq_2_3.shape == (4, timestep, unit_2, unit_3)
    np.testing.assert_allclose(s1, np.einsum("bti,iu->bu", input_1_data[:4], k1), rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_allclose(s2, np.einsum("btij,ijkl->bkl", input_2_data[:4], k23),
                               rtol=1e-4, atol=1e-3)
