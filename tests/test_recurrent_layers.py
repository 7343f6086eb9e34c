"""Recurrent layers: SimpleRNN, LSTM, GRU, their cells, RNN over custom and stacked cells,
Bidirectional, masking, dropout, stateful layers, and an LSTM that learns a sequence task.

Forward results are checked against numpy implementations written from the Keras equations
(keras-formats.md §5), not against kgraph code."""
import time

import numpy as np
import pytest

from harness import run_layer_test
from kgraph import keras, ops

RNG = np.random.default_rng(0)


# -- numpy references ---------------------------------------------------------------------------
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_simple_step(weights):
    W, U, b = weights

    def step(x, states):
        h = np.tanh(x @ W + b + states[0] @ U)
        return h, [h]
    return step


def np_lstm_step(weights):
    W, U, b = weights

    def step(x, states):
        h, c = states
        i, f, g, o = np.split(x @ W + h @ U + b, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        return h, [h, c]
    return step


def np_gru_step(weights, reset_after=True):
    W, U, b = weights

    def step(x, states):
        h = states[0]
        u = h.shape[-1]
        if reset_after:
            xz, xr, xh = np.split(x @ W + b[0], 3, axis=-1)
            rz, rr, rh = np.split(h @ U + b[1], 3, axis=-1)
            z, r = sigmoid(xz + rz), sigmoid(xr + rr)
            candidate = np.tanh(xh + r * rh)
        else:
            xz, xr, xh = np.split(x @ W + b, 3, axis=-1)
            z, r = sigmoid(xz + h @ U[:, :u]), sigmoid(xr + h @ U[:, u:2 * u])
            candidate = np.tanh(xh + (r * h) @ U[:, 2 * u:])
        h = z * h + (1 - z) * candidate
        return h, [h]
    return step


def np_rnn(step, x, states, go_backwards=False, mask=None):
    """Keras' unrolled loop: masked steps keep the previous output (zeros at first) and
    states; outputs in processing order. Returns (last output, all outputs, states)."""
    order = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    outputs, prev = [], None
    for t in order:
        out, new = step(x[:, t], states)
        if mask is not None:
            m = mask[:, t][:, None]
            out = np.where(m, out, prev if prev is not None else 0.0)
            new = [np.where(m, n, o) for n, o in zip(new, states)]
        states, prev = new, out
        outputs.append(out)
    return prev, np.stack(outputs, axis=1), states


KINDS = {  # name: (layer class, extra arguments, numpy step factory, number of states)
    "simple_rnn": (keras.layers.SimpleRNN, {}, np_simple_step, 1),
    "lstm": (keras.layers.LSTM, {}, np_lstm_step, 2),
    "gru": (keras.layers.GRU, {}, lambda w: np_gru_step(w, True), 1),
    "gru_reset_before": (keras.layers.GRU, {"reset_after": False},
                         lambda w: np_gru_step(w, False), 1),
}


def make(kind, units, **kwargs):
    layer_cls, extra, _, _ = KINDS[kind]
    return layer_cls(units, **extra, **kwargs)


def randomize(layer, scale=0.5, seed=1):
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=scale, size=w.shape).astype("f4")
                       for w in layer.get_weights()])
    return [w.astype("f8") for w in layer.get_weights()]


def data(batch=3, steps=6, features=4, seed=2):
    return np.random.default_rng(seed).normal(size=(batch, steps, features)).astype("f4")


class ZeroMasking(keras.layers.Layer):
    """Like keras.layers.Masking(0.0): a step whose features are all zero is masked."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x):
        return x

    def compute_mask(self, inputs, mask=None):
        return ops.not_equal(ops.sum(ops.abs(inputs), axis=-1), 0.0)


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
    real = pytest.importorskip("keras")
    models = [lib.Sequential([lib.Input((3, 2), batch_size=4), lib.layers.GRU(5, stateful=True),
                              lib.layers.Dense(1)]) for lib in (real, keras)]
    models[1].set_weights(models[0].get_weights())
    x = data(batch=4, steps=6, features=2)
    for chunk in (x[:, :3], x[:, 3:]):
        want, got = (np.asarray(m.predict_on_batch(chunk)) for m in models)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


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


# -- Bidirectional --------------------------------------------------------------------------------
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_merge_modes(merge_mode, return_sequences):
    x = data(features=3)
    layer = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=return_sequences,
                                                         name="lstm"), merge_mode=merge_mode)
    layer(x)
    assert [w.path.split("/")[1:3] for w in layer.weights] == \
        [["forward_lstm", "lstm_cell"]] * 3 + [["backward_lstm", "lstm_cell"]] * 3
    weights = randomize(layer)
    zeros = [np.zeros((3, 4))] * 2
    f_last, f_seq, _ = np_rnn(np_lstm_step(weights[:3]), x.astype("f8"), zeros)
    b_last, b_seq, _ = np_rnn(np_lstm_step(weights[3:]), x.astype("f8"), zeros, True)
    y, y_rev = (f_seq, b_seq[:, ::-1]) if return_sequences else (f_last, b_last)
    expected = {"concat": np.concatenate([y, y_rev], -1), "sum": y + y_rev, "mul": y * y_rev,
                "ave": (y + y_rev) / 2, None: (y, y_rev)}[merge_mode]
    got = layer(x)
    if merge_mode is None:
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_bidirectional_return_state_backward_layer_and_config():
    forward = keras.layers.GRU(3, return_state=True)
    backward = keras.layers.GRU(3, return_state=True, go_backwards=True, activation="relu")
    layer = keras.layers.Bidirectional(forward, backward_layer=backward)
    inputs = keras.Input((5, 2))
    out, h_forward, h_backward = layer(inputs)
    assert out.shape == (None, 6) and h_forward.shape == h_backward.shape == (None, 3)
    config = layer.get_config()
    assert config["layer"]["config"]["name"].startswith("forward_")
    clone = keras.layers.Bidirectional.from_config(config)
    assert clone.backward_layer.activation is keras.activations.relu
    with pytest.raises(ValueError, match="go_backwards"):
        keras.layers.Bidirectional(keras.layers.LSTM(2), backward_layer=keras.layers.LSTM(2))
    with pytest.raises(ValueError, match="merge_mode|Merge mode"):
        keras.layers.Bidirectional(keras.layers.LSTM(2), merge_mode="max")


def test_bidirectional_in_a_model_trains_and_saves(tmp_path):
    model = keras.Sequential([keras.Input((6, 3)), keras.layers.Bidirectional(
        keras.layers.LSTM(4, return_sequences=True)), keras.layers.GRU(2)])
    model.compile("adam", "mse")
    x, y = data(batch=8, features=3), RNG.normal(size=(8, 2)).astype("f4")
    model.fit(x, y, epochs=2, verbose=0)
    path = str(tmp_path / "rnn.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


# -- dropout --------------------------------------------------------------------------------------
def test_dropout_changes_only_the_training_output():
    x = data(features=3)
    plain = keras.layers.LSTM(4, return_sequences=True)
    dropped = keras.layers.LSTM(4, return_sequences=True, dropout=0.5, recurrent_dropout=0.3)
    plain(x)
    dropped(x)
    dropped.set_weights(plain.get_weights())
    np.testing.assert_allclose(dropped(x), plain(x), rtol=1e-6)
    np.testing.assert_allclose(dropped(x, training=False), plain(x), rtol=1e-6)
    assert not np.allclose(dropped(x, training=True), plain(x), atol=1e-3)


def identity_rnn(**kwargs):
    """A linear SimpleRNN with identity kernels: h_t = x_t * m + (h_{t-1} * m_r)."""
    layer = keras.layers.SimpleRNN(6, activation=None, use_bias=False, return_sequences=True,
                                   **kwargs)
    layer(np.ones((4, 5, 6), "f4"))
    layer.set_weights([np.eye(6, dtype="f4"), np.eye(6, dtype="f4")])
    return layer


def test_dropout_masks_are_the_same_at_every_time_step():
    x = np.ones((4, 5, 6), "f4")
    out = np.asarray(identity_rnn(dropout=0.5, seed=3)(x, training=True))
    steps = np.diff(out, axis=1)  # h_t - h_{t-1} = x_t * mask: the same mask every step
    np.testing.assert_allclose(steps, np.broadcast_to(out[:, :1], steps.shape), atol=1e-6)
    assert set(np.unique(out[:, 0])) <= {0.0, 2.0} and 0 < out[:, 0].mean() < 2
    rec = np.asarray(identity_rnn(recurrent_dropout=0.5, seed=4)(x, training=True))
    dropped = rec[:, -1] == 1.0  # a dropped unit forgets its state at every step
    np.testing.assert_allclose(rec[dropped[:, None, :].repeat(5, 1)], 1.0)
    assert dropped.any() and not dropped.all()
    assert np.all(np.diff(rec, axis=1)[np.broadcast_to(~dropped[:, None], (4, 4, 6))] > 0)


def test_training_with_dropout_is_reproducible_from_the_global_seed():
    def losses():
        keras.utils.set_random_seed(5)
        model = keras.Sequential([keras.Input((6, 3)),
                                  keras.layers.GRU(4, dropout=0.2, recurrent_dropout=0.2),
                                  keras.layers.Dense(1)])
        model.compile("adam", "mse")
        return model.fit(data(batch=16, features=3), np.ones((16, 1), "f4"), epochs=3,
                         batch_size=8, verbose=0).history["loss"]

    first = losses()
    assert np.all(np.isfinite(first)) and first == losses()


# -- stateful layers ------------------------------------------------------------------------------
def stateful_model(kind="lstm", batch=4, steps=3, features=2):
    model = keras.Sequential([make(kind, 5, stateful=True, batch_size=batch,
                                   input_shape=(steps, features)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
def test_stateful_predict_on_batch_continues_the_sequence(kind):
    model = stateful_model(kind, steps=3)
    whole = stateful_model(kind, steps=6)
    whole.set_weights(model.get_weights())
    x = data(batch=4, steps=6, features=2)
    expected = whole.predict_on_batch(x)
    first = model.predict_on_batch(x[:, :3])
    np.testing.assert_allclose(model.predict_on_batch(x[:, 3:]), expected, rtol=1e-5, atol=1e-6)
    assert any(np.abs(v.numpy()).sum() > 0 for v in model.layers[0].states)
    model.reset_states()
    assert all(np.all(v.numpy() == 0) for v in model.layers[0].states)
    np.testing.assert_allclose(model.predict_on_batch(x[:, :3]), first, rtol=1e-6)
    model.layers[0].reset_states()
    np.testing.assert_allclose(model.predict(x[:, :3], batch_size=4, verbose=0), first,
                               rtol=1e-6)


def test_stateful_states_carry_through_fit_train_on_batch_and_eager_calls():
    model = stateful_model()
    layer = model.layers[0]
    assert len(layer.weights) == 3 and [v.shape for v in layer.states] == [(4, 5)] * 2
    x, y = data(batch=8, steps=3, features=2), np.ones((8, 1), "f4")
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    after_fit = [v.numpy().copy() for v in layer.states]
    assert np.abs(after_fit[0]).sum() > 0
    model.train_on_batch(x[:4], y[:4])
    assert not np.allclose(layer.states[0].numpy(), after_fit[0])
    layer.reset_states()
    eager = keras.layers.LSTM(5, stateful=True)
    eager(x[:4])
    once = eager.states[0].numpy().copy()
    eager(x[:4])
    assert eager.states[0].shape == (4, 5) and not np.allclose(eager.states[0].numpy(), once)


def test_stateful_bidirectional_resets_both_directions():
    layer = keras.layers.Bidirectional(keras.layers.GRU(3, stateful=True))
    layer(data(batch=2, steps=4, features=2))
    assert len(layer.states) == 2 and all(np.abs(s.numpy()).sum() > 0 for s in layer.states)
    layer.reset_states()
    assert all(np.all(s.numpy() == 0) for s in layer.states)


def test_stateful_needs_a_known_batch_size():
    with pytest.raises(ValueError, match="batch_size=32"):
        keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4, stateful=True)])
    with pytest.raises(AttributeError, match="not stateful"):
        keras.layers.LSTM(2).reset_states()
    layer = keras.layers.LSTM(2, stateful=True)
    layer(data(batch=4))
    with pytest.raises(ValueError, match="batch size 4.*batch of 3"):
        layer(data(batch=3))


# -- argument errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("build,match", [
    (lambda: keras.layers.LSTM(0), "units"),
    (lambda: keras.layers.GRUCell(-2), "-2"),
    (lambda: keras.layers.RNN(object()), "call"),
    (lambda: keras.layers.LSTM(3, use_cudnn="yes"), "use_cudnn"),
])
def test_bad_arguments_raise_value_error(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_inputs_of_the_wrong_rank_are_refused():
    with pytest.raises(ValueError, match="ndim=3, found ndim=2"):
        keras.layers.LSTM(3)(keras.Input((4,)))
    with pytest.raises(ValueError, match="initial state"):
        keras.layers.LSTM(3)(keras.Input((4, 2)), initial_state=[keras.Input((3,))])


# -- learning -------------------------------------------------------------------------------------
def pm_one_sequences(n, steps, seed):
    return np.random.default_rng(seed).choice([-1.0, 1.0], size=(n, steps, 1)).astype("f4")


def fit_timed(model, x, y, epochs):
    start = time.perf_counter()
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return time.perf_counter() - start


def test_an_lstm_learns_the_sign_of_a_sum():
    """Many-to-one: y = 1 when the sum of 11 values ±1 is positive."""
    keras.utils.set_random_seed(0)
    x, x_test = pm_one_sequences(2000, 11, 0), pm_one_sequences(500, 11, 1)
    label = lambda s: (s.sum(axis=(1, 2)) > 0).astype("f4")[:, None]  # noqa: E731
    model = keras.Sequential([keras.Input((11, 1)), keras.layers.LSTM(16),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy", metrics=["accuracy"])
    seconds = fit_timed(model, x, label(x), epochs=6)
    _, accuracy = model.evaluate(x_test, label(x_test), verbose=0)
    print(f"sum-sign: held-out accuracy {accuracy:.3f} after {seconds:.1f} s of fit")
    assert accuracy >= 0.95


def test_an_lstm_learns_parity():
    """Many-to-many: at each step, the parity of the number of -1s so far (10 steps). The
    held-out accuracy is that of the parity of the whole sequence (the last step)."""
    keras.utils.set_random_seed(0)
    x, x_test = pm_one_sequences(2000, 10, 0), pm_one_sequences(500, 10, 1)
    label = lambda s: (np.cumsum(s < 0, axis=1) % 2).astype("f4")  # noqa: E731
    model = keras.Sequential([keras.Input((10, 1)), keras.layers.LSTM(16, return_sequences=True),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(0.02), "binary_crossentropy")
    seconds = fit_timed(model, x, label(x), epochs=4)
    predicted = model.predict(x_test, verbose=0)[:, -1] > 0.5
    accuracy = float(np.mean(predicted == label(x_test)[:, -1].astype(bool)))
    print(f"parity: held-out accuracy {accuracy:.3f} after {seconds:.1f} s of fit")
    assert accuracy >= 0.95


# -- the compiled step on each backend ------------------------------------------------------------
def recurrent_step_graph():
    """A train step through masking, a Bidirectional LSTM with dropout and a GRU."""
    from kgraph.compiler.passes import optimize

    keras.utils.set_random_seed(0)
    inputs = keras.Input((5, 3))
    x = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True, dropout=0.2,
                                                     recurrent_dropout=0.2))(ZeroMasking()(inputs))
    model = keras.Model(inputs, keras.layers.GRU(2, reset_after=False)(x))
    model.compile(keras.optimizers.Adam(0.01), "mse")
    x = data(batch=4, steps=5, features=3)
    x[0, 3:] = 0.0
    y = RNG.normal(size=(4, 2)).astype("f4")
    graph = optimize(model.trace_step("train", x, y))
    feeds = {"x_0": x, "y_0": y, "rng_key": np.uint32(7)}
    feeds.update({v.node.attrs["name"]: var.numpy() for var, v in graph.variables.items()})
    return graph, feeds


def test_recurrent_train_step_on_onnxruntime_matches_the_numpy_reference():
    from kgraph.compiler.build import compile_graph

    graph, feeds = recurrent_step_graph()
    want = compile_graph(graph, "numpy", optimized=True).run(feeds)
    compiled = compile_graph(graph, optimized=True)
    got = [compiled.to_numpy(o) for o in compiled.run(feeds)]
    assert len(got) == len(want) > 10
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


@pytest.mark.tvm
def test_recurrent_train_step_on_tvm_matches_the_numpy_reference():
    tvm = pytest.importorskip("tvm")
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    from kgraph.compiler.build import compile_graph
    from kgraph.compiler.onnx import to_onnx

    graph, feeds = recurrent_step_graph()
    want = compile_graph(graph, "numpy", optimized=True).run(feeds)
    model = to_onnx(graph)
    vm = relax.VirtualMachine(tvm.compile(from_onnx(model, keep_params_in_input=False),
                                          target="llvm"), tvm.cpu())
    names = [i.name for i in model.graph.input]
    result = vm["main"](*[tvm.runtime.tensor(np.asarray(feeds[n])) for n in names])
    for g, w in zip([r.numpy() for r in result], want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
