"""Built-in layer and loss calls replayed from a template inside eager GradientTapes
(kgraph/replay.py): the same graph and the same numbers as recording every call, and
recording kept wherever a call has effects beyond its nodes."""
import numpy as np
import pytest

import kgraph as tf
from kgraph import keras, replay
from kgraph.compiler.graph_key import graph_key
from kgraph.keras import layers


@pytest.fixture
def no_replay(monkeypatch):
    def off():
        monkeypatch.setattr(replay, "call", lambda owner, graph, key, inputs, record: record())
    return off


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 12), dtype=np.float32), rng.integers(0, 4, n)


def _mlp(seed, extra=()):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((12,)), layers.Dense(16, activation="relu"), *extra,
                             layers.Dense(4, activation="softmax")])


def _train(model, steps, batch=16, loss_fn=None):
    """The Keras guide's loop; returns the losses, the gradients of the last step and the
    tapes' graph keys."""
    x, y = _data(steps * batch)
    opt = keras.optimizers.Adam(0.01)
    loss_fn = loss_fn or keras.losses.SparseCategoricalCrossentropy()
    losses, keys = [], []
    for i in range(steps):
        xb, yb = x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        keys.append(graph_key(tape._graph, variable_names=False))
        grads = tape.gradient(loss, model.trainable_weights)
        opt.apply_gradients(zip(grads, model.trainable_weights))
        losses.append(float(loss))
    return losses, grads, keys


def test_replayed_steps_record_the_same_graph_and_numbers(no_replay):
    model = _mlp(1)
    losses, grads, keys = _train(model, 5)
    assert len(model.__dict__["_replay_templates"]) == 1  # one input signature and mode
    assert all(k == keys[0] for k in keys)  # replayed graphs equal the first, recorded one
    no_replay()
    reference = _mlp(1)
    ref_losses, ref_grads, ref_keys = _train(reference, 5)
    assert keys[0] == ref_keys[0]
    assert losses == ref_losses  # bit for bit
    for g, r in zip(grads, ref_grads):
        np.testing.assert_array_equal(g, r)
    for w, r in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(w, r)


def test_a_new_input_signature_gets_its_own_template():
    model = _mlp(2)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    x, y = _data(40)
    for xb, yb in ((x[:16], y[:16]), (x[16:32], y[16:32]), (x[32:], y[32:])):  # 16, 16, 8
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
    assert len(model.__dict__["_replay_templates"]) == 2
    assert grads[0].shape == (12, 16)
    # eagerly, outside the tape, the same model agrees with the last replayed step's loss
    expected = keras.losses.SparseCategoricalCrossentropy()(y[32:], model.predict(x[32:],
                                                                                 verbose=0))
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-6)


def test_a_model_called_twice_on_one_tape(no_replay):
    def run(model):
        x, _ = _data(16)
        out = []
        for step in range(3):
            with tf.GradientTape() as tape:
                a, b = model(x[:8]), model(x[8:])  # the second call reads variables read already
                loss = keras.ops.mean(keras.ops.square(a - b))
            out.append([np.array(g) for g in tape.gradient(loss, model.trainable_weights)])
        return out

    replayed = run(_mlp(3))
    no_replay()
    for got, want in zip(replayed, run(_mlp(3))):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_dropout_is_recorded_every_step():
    model = _mlp(4, extra=(layers.Dropout(0.5),))
    x, _ = _data(16)
    outs = []
    for step in range(3):
        with tf.GradientTape():
            outs.append(np.array(model(x, training=True)))
    assert not np.array_equal(outs[1], outs[2])  # a fresh mask each step, not a replayed one
    assert all(t is replay._INELIGIBLE for t in model.__dict__["_replay_templates"].values())


def test_batch_normalization_updates_every_step(no_replay):
    def moving_means(model):
        x, _ = _data(16)
        means = []
        for step in range(3):
            with tf.GradientTape() as tape:
                loss = keras.ops.mean(model(x, training=True))
            tape.gradient(loss, model.trainable_weights)
            means.append(np.array(model.layers[1].moving_mean))
        return means

    replayed = moving_means(_mlp(5, extra=(layers.BatchNormalization(),)))
    assert not np.array_equal(replayed[1], replayed[2])
    no_replay()
    for got, want in zip(replayed, moving_means(_mlp(5, extra=(layers.BatchNormalization(),)))):
        np.testing.assert_array_equal(got, want)


def test_user_layers_user_losses_and_lambdas_run_their_python_every_step():
    calls = {"layer": 0, "lambda": 0, "loss": 0}

    class Counting(layers.Layer):
        def call(self, x):
            calls["layer"] += 1
            return x * 2.0

    def counted(x):
        calls["lambda"] += 1
        return x + 1.0

    def user_loss(y_true, y_pred):
        calls["loss"] += 1
        return keras.ops.mean(keras.ops.square(y_pred), axis=-1)

    model = _mlp(6, extra=(Counting(), layers.Lambda(counted)))
    loss_fn = keras.losses.LossFunctionWrapper(user_loss)
    calls.update(layer=0, **{"lambda": 0})  # building the Sequential called them once
    x, y = _data(16)
    for step in range(3):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        tape.gradient(loss, model.trainable_weights)
    assert calls == {"layer": 3, "lambda": 3, "loss": 3}


def test_activity_regularizer_losses_are_added_every_step():
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((12,)),
                              layers.Dense(4, activity_regularizer=keras.regularizers.L2(0.1))])
    x, _ = _data(8)
    for step in range(3):
        with tf.GradientTape():
            out = model(x)
            penalties = model.losses
        assert len(penalties) == 1
        np.testing.assert_allclose(float(penalties[0]),
                                   0.1 * float(np.sum(np.square(np.array(out)))) / 8, rtol=1e-5)


def test_masked_outputs_are_recorded_every_step():
    keras.utils.set_random_seed(8)
    embed = layers.Embedding(10, 3, mask_zero=True)
    tokens = np.array([[1, 2, 0, 0], [3, 0, 0, 0]])
    for step in range(3):
        with tf.GradientTape():
            out = embed(tokens)
            np.testing.assert_array_equal(np.array(out._keras_mask), tokens != 0)


def test_setting_trainable_records_anew(no_replay):
    """A frozen BatchNormalization computes in inference mode (Keras 3); unfrozen, in a later
    step of the same loop, it normalises by the batch and updates its moving statistics."""
    def run():
        model = _mlp(9, extra=(layers.BatchNormalization(),))
        bn = model.layers[1]
        x, _ = _data(16)
        seen = []
        for step in range(4):
            bn.trainable = step >= 2
            with tf.GradientTape() as tape:
                loss = keras.ops.mean(model(x, training=True))
            tape.gradient(loss, model.trainable_weights)
            seen.append((float(loss), np.array(bn.moving_mean)))
        return seen

    replayed = run()
    assert np.array_equal(replayed[0][1], replayed[1][1])  # frozen: no update
    assert not np.array_equal(replayed[2][1], replayed[3][1])  # unfrozen: updates
    no_replay()
    for (loss, mean), (want_loss, want_mean) in zip(replayed, run()):
        assert loss == want_loss
        np.testing.assert_array_equal(mean, want_mean)


def test_calls_in_a_device_scope_are_placed_every_step():
    from kgraph.device import placement_of

    model = _mlp(10)
    x, _ = _data(8)
    with tf.GradientTape():
        model(x)  # recorded as a template outside any device scope
    for step in range(2):
        with tf.GradientTape() as tape, tf.device("/cpu:0"):
            model(x)
        assert placement_of(tape._graph), "the replayed call lost its device labels"


def test_a_user_activation_runs_every_step():
    calls = []

    def swish(x):
        calls.append(1)
        return x * keras.ops.sigmoid(x)

    keras.utils.set_random_seed(11)
    model = keras.Sequential([keras.Input((12,)), layers.Dense(4, activation=swish)])
    calls.clear()
    x, _ = _data(8)
    for step in range(3):
        with tf.GradientTape():
            model(x)
    assert len(calls) == 3


def test_the_trail_tells_a_reused_array_from_a_new_one(no_replay):
    """A recording made only of replayed calls is keyed by its trail; the same array passed
    twice (captured once) and two equal arrays (captured twice) are different graphs."""
    def run(replaying):
        model, mse = _mlp(12), keras.losses.MeanSquaredError()
        x, _ = _data(8)
        out = []
        for step in range(6):
            other = x if step % 2 else x + np.float32(step)  # the same object, or a new one
            with tf.GradientTape() as tape:
                loss = mse(model(x), model(other))  # only replayed calls: keyed by the trail
            assert (replay.trail_of(tape._graph) is not None) == (replaying and step > 0)
            out.append([np.array(g) for g in tape.gradient(loss, model.trainable_weights)])
        return out

    replayed = run(True)
    no_replay()
    for got, want in zip(replayed, run(False)):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def _family(name):
    L = layers
    keras.utils.set_random_seed(13)
    if name == "cnn":
        return keras.Sequential([keras.Input((8, 8, 2)), L.Conv2D(3, 3, activation="relu"),
                                 L.MaxPooling2D(), L.Flatten(), L.Dense(4)]), (8, 8, 2)
    if name == "lstm":
        return keras.Sequential([keras.Input((5, 3)), L.Bidirectional(L.LSTM(4)),
                                 L.Dense(4)]), (5, 3)
    if name == "attention":
        inputs = keras.Input((6, 4))
        x = L.MultiHeadAttention(2, 3)(inputs, inputs)
        x = L.LayerNormalization()(x + inputs)
        return keras.Model(inputs, L.Dense(4)(L.GlobalAveragePooling1D()(x))), (6, 4)
    inputs = keras.Input((4,), dtype="int64")  # an embedding model with two outputs
    e = L.Flatten()(L.Embedding(10, 3)(inputs))
    return keras.Model(inputs, [L.Dense(4)(e), L.Dense(1)(e)]), None


@pytest.mark.parametrize("name", ["cnn", "lstm", "attention", "embedding"])
def test_layer_families_replay_bit_for_bit(name, no_replay):
    def run():
        model, shape = _family(name)
        _family.last = model
        rng = np.random.default_rng(3)
        x = rng.random((6, *shape), dtype=np.float32) if shape else rng.integers(0, 10, (6, 4))
        opt, seen = keras.optimizers.Adam(0.01), []
        for step in range(4):
            with tf.GradientTape() as tape:
                out = model(x, training=True)
                loss = keras.losses.MeanSquaredError()(np.zeros((6, 4), "float32"),
                                                       out[0] if isinstance(out, list) else out)
            grads = tape.gradient(loss, model.trainable_weights)
            opt.apply_gradients(zip(grads, model.trainable_weights))
            seen.append(float(loss))
        return seen, model.get_weights()

    losses, weights = run()
    templates = _family.last.__dict__["_replay_templates"].values()
    assert any(isinstance(t, replay._Template) for t in templates)  # replayed, not recorded
    no_replay()
    want_losses, want_weights = run()
    assert losses == want_losses
    for w, r in zip(weights, want_weights):
        np.testing.assert_array_equal(w, r)


def test_replay_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("KGRAPH_TAPE_REPLAY", "0")
    model = _mlp(14)
    _train(model, 3)
    assert not model.__dict__.get("_replay_templates")
