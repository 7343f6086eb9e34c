"""Recurrent layers in training: Bidirectional, dropout, stateful layers, argument errors,
an LSTM that learns sequence tasks, and the compiled step on each backend."""
import time

import numpy as np
import pytest

from harness import run_layer_test
from kgraph import keras, ops
from rnn_reference import *  # noqa: F401,F403 - numpy references and helpers


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
    from tvm_helper import assert_outputs_close, run_tvm

    from kgraph.compiler.build import compile_graph

    graph, feeds = recurrent_step_graph()
    want = compile_graph(graph, "numpy", optimized=True).run(feeds)
    assert_outputs_close(run_tvm(graph, feeds, optimized=True), want)


def test_stateful_model_refuses_a_batch_of_another_size_with_a_typed_error():
    model = keras.Sequential([keras.layers.LSTM(4, input_shape=(3, 2), batch_size=4,
                                                stateful=True), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((6, 3, 2), "float32")
    with pytest.raises(ValueError, match="fixed batch size of 4.*batch of 2 samples"):
        model.fit(x, np.zeros((6, 1), "float32"), batch_size=4, shuffle=False, verbose=0)
    assert model.predict(x[:4], batch_size=4, verbose=0).shape == (4, 1)
