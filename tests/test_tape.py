"""GradientTape: eager custom loops and custom train_step inside fit()."""
import numpy as np
import pytest

import kgraph as tf
from kgraph import keras


def test_gradient_of_a_variable_matches_calculus():
    w = tf.Variable(np.array([1.0, -2.0, 3.0], "f4"))
    x = np.array([0.5, 1.5, -1.0], "f4")
    with tf.GradientTape() as tape:
        y = keras.ops.sum(keras.ops.square(w * x))
    (g,) = tape.gradient(y, [w])
    np.testing.assert_allclose(g, 2 * w.numpy() * x * x, rtol=1e-6)
    np.testing.assert_allclose(float(y), np.sum((w.numpy() * x) ** 2), rtol=1e-6)


def test_gradient_of_nested_sources_keeps_their_structure():
    # TensorFlow's tape: a list of per-layer variable lists (the keras.io ShiftViT example),
    # an empty list among them, or a dict
    a, b = tf.Variable(np.float32([1.0, 2.0])), tf.Variable(np.float32(3.0))
    with tf.GradientTape(persistent=True) as tape:
        y = keras.ops.sum(a * a) * b
    nested = tape.gradient(y, [[a], [], [b]])
    assert [len(g) for g in nested] == [1, 0, 1]
    np.testing.assert_allclose(nested[0][0], [6.0, 12.0])
    np.testing.assert_allclose(nested[2][0], 5.0)
    by_name = tape.gradient(y, {"b": b, "a": a})
    assert set(by_name) == {"a", "b"}
    np.testing.assert_allclose(by_name["b"], 5.0)
    np.testing.assert_allclose(by_name["a"], [6.0, 12.0])


def test_a_list_of_targets_sums_their_gradients():
    # TensorFlow: `tape.gradient([a, b], x)` is the gradient of a + b (each summed), and
    # `output_gradients` weights each target
    x = tf.Variable(np.float32([1.0, 2.0, 3.0]))
    with tf.GradientTape(persistent=True) as tape:
        a = x * x
        b = keras.ops.sum(3.0 * x)
    np.testing.assert_allclose(tape.gradient([a, b], x), 2 * x.numpy() + 3)
    np.testing.assert_allclose(tape.gradient((a, {"b": b}), [x])[0], 2 * x.numpy() + 3)
    weights = [np.float32([1.0, 0.0, 2.0]), np.float32(0.5)]
    np.testing.assert_allclose(tape.gradient([a, b], x, output_gradients=weights),
                               weights[0] * 2 * x.numpy() + 1.5)
    with pytest.raises(ValueError, match="one output gradient per target"):
        tape.gradient([a, b], x, output_gradients=[weights[0]])


def test_eager_nested_tapes_give_second_order_gradients():
    # TensorFlow's nested tapes: the inner gradient is recorded on the outer tape
    x = tf.Variable(np.float32([1.0, 2.0, -3.0]))
    w = tf.Variable(np.float32([0.5, 1.0, 2.0]))
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            y = keras.ops.sum(w * x * x * x)
        dx, dw = inner.gradient(y, [x, w])  # 3 w x^2, x^3
        np.testing.assert_allclose(dx, 3 * w.numpy() * x.numpy() ** 2)
    d2x, d2w = outer.gradient([dx, dw], [x, w])  # targets summed: 6 w x + 3 x^2, 3 x^2
    np.testing.assert_allclose(d2x, 6 * w.numpy() * x.numpy() + 3 * x.numpy() ** 2)
    np.testing.assert_allclose(d2w, 3 * x.numpy() ** 2)
    # an inner gradient taken after the outer tape stopped recording is not differentiated
    # further, as TensorFlow's: the numbers alone
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            y = keras.ops.sum(x * x)
    dx = inner.gradient(y, x)
    np.testing.assert_allclose(dx, 2 * x.numpy())
    np.testing.assert_allclose(outer.gradient(y, x), 2 * x.numpy())


def test_dense_gradients_match_finite_differences():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"),
                              keras.layers.Dense(1)])
    x = np.random.default_rng(1).normal(size=(8, 4)).astype("f4")
    y = np.random.default_rng(2).normal(size=(8, 1)).astype("f4")
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(y, model(x))
    grads = tape.gradient(loss, model.trainable_weights)

    def loss_at(weights):
        model.set_weights(weights)
        return np.mean((model.predict(x, verbose=0).astype("f8") - y) ** 2)

    base = [w.astype("f8") for w in model.get_weights()]
    eps = 1e-3
    for i in range(len(base)):
        flat = base[i].reshape(-1)
        for j in range(0, flat.size, max(1, flat.size // 4)):
            plus = [b.copy() for b in base]
            minus = [b.copy() for b in base]
            plus[i].reshape(-1)[j] += eps
            minus[i].reshape(-1)[j] -= eps
            fd = (loss_at(plus) - loss_at(minus)) / (2 * eps)
            assert abs(fd - grads[i].reshape(-1)[j]) < 2e-3
    model.set_weights(base)


def test_custom_loop_trains_and_reuses_one_compiled_graph():
    from kgraph.compiler.build import cache_size

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 5)).astype("f4")
    y = (x @ np.arange(1, 6, dtype="f4"))[:, None]
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
    optimizer = keras.optimizers.Adam(0.1)
    loss_fn = keras.losses.mean_squared_error
    dataset = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 256, 32)]
    losses = []
    for epoch in range(20):
        before = cache_size()
        for inputs, targets in dataset:
            with tf.GradientTape() as tape:
                predictions = model(inputs)
                loss_value = keras.ops.mean(loss_fn(targets, predictions))
            gradients = tape.gradient(loss_value, model.trainable_weights)
            optimizer.apply_gradients(zip(gradients, model.trainable_weights))
        losses.append(float(loss_value))
        if epoch:
            assert cache_size() == before  # every batch reuses the compiled graphs
    assert losses[-1] < 0.05 * losses[0]


def test_non_persistent_tape_refuses_a_second_gradient():
    w = tf.Variable(np.ones(2, "f4"))
    with tf.GradientTape() as tape:
        y = keras.ops.sum(w * w)
    tape.gradient(y, w)
    with pytest.raises(RuntimeError, match="persistent"):
        tape.gradient(y, w)


def test_custom_train_step_keras2_and_keras3_styles():
    class Keras2Style(keras.Model):
        def train_step(self, data):
            x, y, sample_weight = data
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compiled_loss(y, y_pred, sample_weight=sample_weight,
                                          regularization_losses=self.losses)
            trainable_vars = self.trainable_variables
            gradients = tape.gradient(loss, trainable_vars)
            self.optimizer.apply_gradients(zip(gradients, trainable_vars))
            self.compiled_metrics.update_state(y, y_pred, sample_weight=sample_weight)
            return {m.name: m.result() for m in self.metrics}

    class Keras3Style(keras.Model):
        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            return self.compute_metrics(x, y, y_pred, loss=loss)

    rng = np.random.default_rng(0)
    x = rng.random((200, 8)).astype("f4")
    y = (x.sum(axis=1, keepdims=True) / 8).astype("f4")
    for cls, kwargs in ((Keras2Style, {"sample_weight": np.ones(200, "f4")}), (Keras3Style, {})):
        keras.utils.set_random_seed(0)
        inputs = keras.Input(shape=(8,))
        model = cls(inputs, keras.layers.Dense(1)(inputs))
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse", metrics=["mae"])
        history = model.fit(x, y, epochs=5, verbose=0, **kwargs)
        assert history.history["loss"][-1] < history.history["loss"][0]
        assert set(history.history) == {"loss", "mae"}


def test_array_times_variable_is_recorded_like_variable_times_array():
    import kgraph as tf

    v = tf.Variable(np.array([1.0, 2.0], "float32"))
    scale = np.array([3.0, 5.0], "float32")
    with tf.GradientTape() as tape:
        loss = tf.ops.sum(scale * v)  # the array on the left
    np.testing.assert_allclose(tape.gradient(loss, v), scale)
    np.testing.assert_allclose(scale * v, [3.0, 10.0])  # eagerly, still a product


def test_values_read_after_apply_gradients_are_those_of_the_recorded_forward_pass():
    """The Keras guide's loop updates its metric with the logits AFTER apply_gradients: they
    must be the logits the forward pass computed (as in eager TensorFlow), not a rerun with
    the updated weights; a persistent tape's second gradient also uses the recorded ones."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.SGD(1.0)
    x, y = np.ones((4, 3), "f4"), np.zeros((4, 2), "f4")
    before = model.predict_on_batch(x)
    with tf.GradientTape(persistent=True) as tape:
        logits = model(x, training=True)
        loss = keras.losses.MeanSquaredError()(y, logits)
    first = tape.gradient(loss, model.trainable_weights)
    first = [np.array(g) for g in first]
    optimizer.apply_gradients(zip(first, model.trainable_weights))
    assert not np.allclose(model.predict_on_batch(x), before)  # the weights did move
    np.testing.assert_array_equal(np.asarray(logits), before)
    second = tape.gradient(loss, model.trainable_weights)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(np.asarray(b), a)


def test_discarded_recordings_do_not_pin_old_weights_without_bound(monkeypatch):
    """A recording's values, nodes and graph form reference cycles, so a discarded tape (and the
    weight buffers its values were recorded against) waits for the cyclic collector; an eager
    loop over a 32 MB model grew past 2.9 GB that way. Past the pin budget the young
    generations are collected: the recordings still pinning weights stay few."""
    import gc

    from kgraph import tape as tape_module

    monkeypatch.setenv("KGRAPH_TAPE_PIN_BUDGET", "1")  # the floor: 4 recordings' worth
    gc.collect()
    # as if an earlier loop over a larger model left survivors of a collection, since freed:
    # their floor must not stop this loop's collections (it did, failing in the full suite)
    monkeypatch.setattr(tape_module._PINS, "floor", 1 << 40)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(4)])
    opt, loss_fn = keras.optimizers.Adam(), keras.losses.MeanSquaredError()
    x, y = np.random.rand(8, 64).astype("float32"), np.zeros((8, 4), "float32")
    gc.disable()  # only the budget collects: the count below does not depend on allocations
    try:
        for step in range(30):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_weights)
            opt.apply_gradients(zip(grads, model.trainable_weights))
        assert len(tape_module._PINS.live) <= 6
    finally:
        gc.enable()


def test_tapes_in_two_threads_share_the_pin_budget(monkeypatch):
    """Two threads record and apply eager tapes at once while the pin budget collects."""
    import threading

    monkeypatch.setenv("KGRAPH_TAPE_PIN_BUDGET", "1")
    errors = []

    def loop(seed):
        try:
            keras.utils.set_random_seed(seed)
            model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8),
                                      keras.layers.Dense(2)])
            opt, loss_fn = keras.optimizers.SGD(0.1), keras.losses.MeanSquaredError()
            x, y = np.random.rand(4, 16).astype("float32"), np.zeros((4, 2), "float32")
            for step in range(25):
                with tf.GradientTape() as tape:
                    loss = loss_fn(y, model(x))
                grads = tape.gradient(loss, model.trainable_weights)
                opt.apply_gradients(zip(grads, model.trainable_weights))
            assert np.isfinite(float(loss))
        except Exception as e:  # reported below, with the thread's traceback
            errors.append(e)

    threads = [threading.Thread(target=loop, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
