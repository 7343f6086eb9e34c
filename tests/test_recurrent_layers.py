"""Recurrent layers: SimpleRNN, LSTM, GRU, their cells, RNN over custom and stacked cells,
Bidirectional, masking, dropout, stateful layers, and an LSTM that learns a sequence task.

Forward results are checked against numpy implementations written from the Keras equations
(keras-formats.md §5), not against kgraph code."""
import time

import numpy as np
import pytest

from harness import run_layer_test
from kgraph import keras, ops
from rnn_reference import *  # noqa: F401,F403 - numpy references and helpers


# -- the harness ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_layers_through_the_harness(kind, return_sequences):
    layer_cls, extra, _, _ = KINDS[kind]
    expected = (2, 5, 3) if return_sequences else (2, 3)
    run_layer_test(layer_cls, {"units": 3, "return_sequences": return_sequences, **extra},
                   (2, 5, 4), expected_output_shape=expected, expected_num_trainable_weights=3)


def cell_rnn(cell_cls, **cell_kwargs):
    """An RNN class over one fresh `cell_cls` cell, for the harness."""
    class CellRNN(keras.layers.RNN):
        def __init__(self, cell=None, **kwargs):
            super().__init__(cell or cell_cls(3, name="cell", **cell_kwargs), **kwargs)
    CellRNN.__name__ = f"RNN_{cell_cls.__name__}"
    return CellRNN


@pytest.mark.parametrize("cell_cls,kwargs", [
    (keras.layers.SimpleRNNCell, {}), (keras.layers.LSTMCell, {}),
    (keras.layers.GRUCell, {}), (keras.layers.GRUCell, {"reset_after": False}),
    (keras.layers.LSTMCell, {"use_bias": False, "unit_forget_bias": False}),
])
def test_cells_through_the_harness(cell_cls, kwargs):
    layer = run_layer_test(cell_rnn(cell_cls, **kwargs), {"return_sequences": True}, (2, 4, 5),
                           expected_output_shape=(2, 4, 3),
                           expected_num_trainable_weights=2 + kwargs.get("use_bias", True))
    assert layer.cell.kernel.name == "kernel"


def test_bidirectional_and_stacked_cells_through_the_harness():
    run_layer_test(keras.layers.Bidirectional, {"layer": keras.layers.LSTM(3)}, (2, 4, 5),
                   expected_output_shape=(2, 6), expected_num_trainable_weights=6)
    stacked = cell_rnn(lambda units, name: keras.layers.StackedRNNCells(
        [keras.layers.LSTMCell(4, name="a"), keras.layers.GRUCell(units, name="b")],
        name=name))
    run_layer_test(stacked, {}, (2, 4, 5), expected_output_shape=(2, 3),
                   expected_num_trainable_weights=6)


# -- numerics against numpy -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("go_backwards", [False, True])
def test_forward_matches_numpy(kind, go_backwards):
    _, _, np_step, n_states = KINDS[kind]
    layer = make(kind, 5, return_sequences=True, return_state=True, go_backwards=go_backwards)
    x = data()
    layer(x)
    step = np_step(randomize(layer))
    zeros = [np.zeros((3, 5))] * n_states
    last, seq, states = np_rnn(step, x.astype("f8"), zeros, go_backwards)
    out = layer(x)
    assert len(out) == 1 + n_states
    np.testing.assert_allclose(out[0], seq, rtol=1e-5, atol=1e-5)
    for got, want in zip(out[1:], states):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    last_only = make(kind, 5, go_backwards=go_backwards)
    last_only(x)
    last_only.set_weights(layer.get_weights())
    np.testing.assert_allclose(last_only(x), last, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_initial_state_symbolic_and_eager(kind):
    _, _, np_step, n_states = KINDS[kind]
    layer = make(kind, 4, return_sequences=True)
    x = data(features=3)
    init = [RNG.normal(size=(3, 4)).astype("f4") for _ in range(n_states)]
    inputs = keras.Input((6, 3))
    state_inputs = [keras.Input((4,)) for _ in range(n_states)]
    model = keras.Model([inputs] + state_inputs, layer(inputs, initial_state=state_inputs))
    step = np_step(randomize(layer))
    _, seq, _ = np_rnn(step, x.astype("f8"), [s.astype("f8") for s in init])
    np.testing.assert_allclose(model.predict([x] + init, verbose=0), seq, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer(x, initial_state=init), seq, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("go_backwards", [False, True])
def test_masked_steps_keep_the_previous_state(kind, go_backwards):
    _, _, np_step, n_states = KINDS[kind]
    x = data(batch=4, steps=7)
    x[0, 5:] = 0.0  # right padding
    x[1, :2] = 0.0  # left padding: the first outputs are zeros
    x[2, 3] = 0.0  # a hole in the middle
    mask = np.abs(x).sum(-1) != 0
    inputs = keras.Input((7, 4))
    layer = make(kind, 3, return_sequences=True, return_state=True, go_backwards=go_backwards)
    outputs = layer(ZeroMasking()(inputs))
    model = keras.Model(inputs, list(outputs))
    step = np_step(randomize(layer))
    _, seq, states = np_rnn(step, x.astype("f8"), [np.zeros((4, 3))] * n_states,
                            go_backwards, mask)
    got = model.predict(x, verbose=0)
    np.testing.assert_allclose(got[0], seq, rtol=1e-5, atol=1e-5)
    for g, want in zip(got[1:], states):
        np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-5)


def test_the_output_mask_follows_return_sequences():
    inputs = keras.Input((5, 2))
    masked = ZeroMasking()(inputs)
    seq = keras.layers.LSTM(3, return_sequences=True)(masked)
    assert seq._mask_spec is not None
    assert keras.layers.LSTM(3)(masked)._mask_spec is None
    x = np.ones((2, 5, 2), "f4")
    x[0, 3:] = 0.0
    pooled = keras.Model(inputs, keras.layers.SimpleRNN(2)(seq)).predict(x, verbose=0)
    assert pooled.shape == (2, 2) and np.all(np.isfinite(pooled))


def test_embedding_mask_zero_reaches_the_lstm():
    if not hasattr(keras.layers, "Embedding"):
        pytest.skip("keras.layers.Embedding is not in this tree yet")
    tokens = np.array([[3, 1, 2, 0, 0], [4, 2, 0, 0, 0]])
    inputs = keras.Input((5,), dtype="int64")
    embedding = keras.layers.Embedding(6, 3, mask_zero=True)
    layer = keras.layers.LSTM(4)
    model = keras.Model(inputs, layer(embedding(inputs)))
    step = np_lstm_step(randomize(layer))
    vectors = embedding.get_weights()[0][tokens].astype("f8")
    last, _, _ = np_rnn(step, vectors, [np.zeros((2, 4))] * 2, mask=tokens != 0)
    np.testing.assert_allclose(model.predict(tokens, verbose=0), last, rtol=1e-5, atol=1e-5)


def test_unknown_time_steps_in_a_functional_model():
    inputs = keras.Input((None, 3))
    layer = keras.layers.GRU(4, return_sequences=True)
    out = layer(inputs)
    assert out.shape == (None, None, 4)
    model = keras.Model(inputs, out)
    x = data(batch=2, steps=7, features=3)
    step = np_gru_step(randomize(layer))
    _, seq, _ = np_rnn(step, x.astype("f8"), [np.zeros((2, 4))])
    np.testing.assert_allclose(model.predict(x, verbose=0), seq, rtol=1e-5, atol=1e-5)


# -- real Keras ------------------------------------------------------------------------------------
REAL_KERAS_CASES = [
    ("SimpleRNN", {}), ("LSTM", {}), ("GRU", {}), ("GRU", {"reset_after": False}),
    ("LSTM", {"return_sequences": True, "return_state": True, "go_backwards": True}),
    ("GRU", {"return_sequences": True, "stateful": False, "dropout": 0.1, "seed": 3}),
]


def layer_config(layer):
    import json

    return json.loads(json.dumps(layer.get_config()))


@pytest.mark.parametrize("name,kwargs", REAL_KERAS_CASES + [
    ("Bidirectional", {"merge_mode": "concat"}), ("Bidirectional", {"merge_mode": "sum"})])
def test_outputs_config_and_weight_paths_match_real_keras(name, kwargs):
    """Masked inputs through real Keras 3 and kgraph, same weights (skipped without Keras)."""
    real = pytest.importorskip("keras")

    def build(lib, masking):
        if name == "Bidirectional":
            layer = lib.layers.Bidirectional(lib.layers.LSTM(3, return_sequences=True,
                                                             name="lstm"), name="rnn", **kwargs)
        else:
            layer = getattr(lib.layers, name)(units=5, name="rnn", **kwargs)
        inputs = lib.Input((6, 4))
        outputs = layer(masking()(inputs))
        return layer, lib.Model(inputs, list(outputs) if isinstance(outputs, tuple) else outputs)

    theirs, their_model = build(real, real.layers.Masking)
    ours, our_model = build(keras, ZeroMasking)
    our_model.set_weights(their_model.get_weights())
    x = data(steps=6)
    x[0, 4:], x[1, :2], x[2, 3] = 0.0, 0.0, 0.0
    for got, want in zip(flatten_outputs(our_model.predict(x, verbose=0)),
                         flatten_outputs(their_model.predict(x, verbose=0))):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert layer_config(ours) == layer_config(theirs)
    assert [w.path for w in ours.weights] == [w.path for w in theirs.weights]


def test_stateful_predictions_match_real_keras():
    """A stateful GRU fed a sequence in two chunks gives, on the second chunk, what real Keras
    gives for the whole sequence in one call (the FAQ's stateful semantics). The oracle is the
    one-call run, not Keras' own stateful predict_on_batch: on the JAX backend Keras 3 does not
    carry the states from one predict_on_batch to the next (on TensorFlow it does, and matches
    kgraph to 6e-8)."""
    real = pytest.importorskip("keras")
    stateful = keras.Sequential([keras.Input((3, 2), batch_size=4),
                                 keras.layers.GRU(5, stateful=True), keras.layers.Dense(1)])
    first, whole = (real.Sequential([real.Input((steps, 2)), real.layers.GRU(5),
                                     real.layers.Dense(1)]) for steps in (3, 6))
    whole.set_weights(first.get_weights())
    stateful.set_weights(first.get_weights())
    x = data(batch=4, steps=6, features=2)
    for chunk, oracle, seen in ((x[:, :3], first, x[:, :3]), (x[:, 3:], whole, x)):
        got = np.asarray(stateful.predict_on_batch(chunk))
        np.testing.assert_allclose(got, np.asarray(oracle.predict_on_batch(seen)), rtol=1e-5,
                                   atol=1e-6)


def flatten_outputs(out):
    return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]


# -- weights --------------------------------------------------------------------------------------
def test_weight_names_shapes_and_initial_values():
    lstm = keras.layers.LSTM(4)
    lstm(data(features=3))
    assert [w.name for w in lstm.weights] == ["kernel", "recurrent_kernel", "bias"]
    assert [w.path for w in lstm.weights] == [f"{lstm.name}/lstm_cell/{n}" for n in
                                              ("kernel", "recurrent_kernel", "bias")]
    assert [w.shape for w in lstm.weights] == [(3, 16), (4, 16), (16,)]
    assert lstm.cell.kernel is lstm.weights[0]
    bias = lstm.cell.bias.numpy()
    np.testing.assert_array_equal(bias, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    u = lstm.cell.recurrent_kernel.numpy()
    np.testing.assert_allclose(u @ u.T, np.eye(4), atol=1e-5)  # one orthogonal (u, 4u) matrix
    gru, gru_before = keras.layers.GRU(5), keras.layers.GRU(5, reset_after=False)
    gru(data(features=3))
    gru_before(data(features=3))
    assert [w.shape for w in gru.weights] == [(3, 15), (5, 15), (2, 15)]
    assert [w.shape for w in gru_before.weights] == [(3, 15), (5, 15), (15,)]
    simple = keras.layers.SimpleRNN(2, use_bias=False)
    simple(data(features=3))
    assert [w.shape for w in simple.weights] == [(3, 2), (2, 2)]


def test_regularizers_and_constraints_reach_the_cell():
    layer = keras.layers.LSTM(3, kernel_regularizer="l2", recurrent_regularizer="l1",
                              bias_constraint="non_neg")
    layer(data(features=2))
    assert len(layer.losses) == 2
    assert layer.cell.bias.constraint is not None
    config = layer.get_config()
    assert config["kernel_regularizer"]["class_name"] == "L2"
    assert keras.layers.LSTM.from_config(config).kernel_regularizer is not None


def test_a_tf_keras_layer_config_loads():
    config = {"name": "lstm", "trainable": True, "dtype": "float32", "return_sequences": False,
              "return_state": False, "go_backwards": False, "stateful": False, "unroll": False,
              "time_major": False, "units": 3, "activation": "tanh",
              "recurrent_activation": "sigmoid", "use_bias": True, "unit_forget_bias": True,
              "dropout": 0.0, "recurrent_dropout": 0.0, "implementation": 2}
    layer = keras.layers.LSTM.from_config(config)
    assert layer(data(features=2)).shape == (3, 3)


def test_config_has_the_keras_keys():
    config = keras.layers.GRU(3, reset_after=False, dropout=0.1, seed=7).get_config()
    for key in ("units", "activation", "recurrent_activation", "use_bias", "reset_after",
                "return_sequences", "return_state", "go_backwards", "stateful", "unroll",
                "dropout", "recurrent_dropout", "seed", "zero_output_for_mask"):
        assert key in config
    assert "cell" not in config and config["reset_after"] is False
    rnn_config = keras.layers.RNN(keras.layers.LSTMCell(2)).get_config()
    assert rnn_config["cell"]["class_name"] == "LSTMCell"
    assert "seed" not in keras.layers.SimpleRNN(2).get_config()  # as Keras 3 writes it


# -- custom and stacked cells ---------------------------------------------------------------------
@keras.saving.register_keras_serializable("test_rnn")
class MinimalRNNCell(keras.layers.Layer):
    """The custom cell of Keras' RNN docstring."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                      initializer="uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                initializer="uniform", name="recurrent_kernel")

    def call(self, inputs, states):
        output = ops.matmul(inputs, self.kernel) + ops.matmul(states[0], self.recurrent_kernel)
        return output, [output]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def np_minimal_step(weights):
    W, U = weights

    def step(x, states):
        out = x @ W + states[0] @ U
        return out, [out]
    return step


def test_custom_cell_and_a_list_of_custom_cells():
    x = data(features=3)
    layer = keras.layers.RNN(MinimalRNNCell(4), return_sequences=True)
    layer(x)
    _, seq, _ = np_rnn(np_minimal_step(randomize(layer, 0.3)), x.astype("f8"), [np.zeros((3, 4))])
    np.testing.assert_allclose(layer(x), seq, rtol=1e-5, atol=1e-5)
    stacked = keras.layers.RNN([MinimalRNNCell(4), MinimalRNNCell(2)], return_state=True)
    out, s1, s2 = stacked(x)
    assert isinstance(stacked.cell, keras.layers.StackedRNNCells)
    assert out.shape == (3, 2) and s1.shape == (3, 4) and s2.shape == (3, 2)
    clone = keras.layers.RNN.from_config(stacked.get_config())
    clone(x)
    clone.set_weights(stacked.get_weights())
    np.testing.assert_allclose(clone(x)[0], out, rtol=1e-6)


def test_stacked_cells_equal_chained_layers():
    x = data(features=3)
    stacked = keras.layers.RNN([keras.layers.LSTMCell(4), keras.layers.GRUCell(2)],
                               return_sequences=True)
    stacked(x)
    first = keras.layers.LSTM(4, return_sequences=True)
    second = keras.layers.GRU(2, return_sequences=True)
    second(first(x))
    weights = randomize(stacked)
    first.set_weights(weights[:3])
    second.set_weights(weights[3:])
    np.testing.assert_allclose(stacked(x), second(first(x)), rtol=1e-5, atol=1e-5)
    cell = stacked.cell
    assert stacked.weights[0].path == f"{stacked.name}/{cell.name}/{cell.cells[0].name}/kernel"


def test_rnn_cell_with_a_tensor_shape_state_size():
    # tf.keras 2: a TensorShape state_size is ONE state of that shape per sequence (the keras.io
    # temporal_latent_bottleneck cell's TensorShape([chunk_size, dims]))
    import kgraph as tf

    class MatrixCell(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.state_size = tf.TensorShape([2, 3])
            self.output_size = tf.TensorShape([2, 3])

        def build(self, input_shape):
            self.w = self.add_weight(shape=(3, 3), initializer="glorot_uniform")

        def call(self, inputs, states):
            new = keras.ops.tanh(inputs + keras.ops.matmul(states[0], self.w))
            return new * 2.0, [new]

    x = np.random.default_rng(0).normal(size=(4, 5, 2, 3)).astype("float32")
    layer = keras.layers.RNN(MatrixCell(), return_sequences=True, return_state=True)
    outputs, state = layer(x)
    w = layer.cell.w.numpy()
    h = np.zeros((4, 2, 3), "float32")
    for t in range(5):
        h = np.tanh(x[:, t] + h @ w)
        np.testing.assert_allclose(outputs[:, t], 2 * h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state, h, rtol=1e-5, atol=1e-5)
    assert [s.shape for s in layer.get_initial_state(3)] == [(3, 2, 3)]
    inputs = keras.Input((5, 2, 3))  # open batch: zero states from the traced batch size
    model = keras.Model(inputs, keras.layers.RNN(MatrixCell())(inputs))
    model.layers[-1].cell.w.assign(w)
    np.testing.assert_allclose(model.predict(x, verbose=0), 2 * h, rtol=1e-5, atol=1e-5)
