"""`kgraph.function` (tf.function): one trace per signature, one executor call per step, the
same training as the eager GradientTape loop it compiles."""
import numpy as np
import pytest

import kgraph as tf
from kgraph import keras
from kgraph.compiler import build


def _mlp(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(8,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3)(hidden))


def _data(n=64, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8)).astype("f4"), rng.integers(0, 3, n)


def _loop(compiled):
    """The Keras guide's loop (forward under a tape, gradient, optimizer.apply, metric),
    eager or under kgraph.function; returns the weights, losses and accuracy."""
    model = _mlp()
    optimizer = keras.optimizers.Adam(1e-2)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    accuracy = keras.metrics.SparseCategoricalAccuracy()

    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = loss_fn(y, logits)
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply(grads, model.trainable_weights)
        accuracy.update_state(y, logits)
        return loss

    step = tf.function(train_step) if compiled else train_step
    x, y = _data()
    losses = [float(step(x[i:i + 16], y[i:i + 16])) for _ in range(3) for i in range(0, 64, 16)]
    return model.get_weights(), losses, float(accuracy.result())


def test_compiled_step_trains_exactly_as_the_eager_tape_loop():
    eager_weights, eager_losses, eager_acc = _loop(compiled=False)
    weights, losses, acc = _loop(compiled=True)
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-5, atol=1e-6)
    for w, e in zip(weights, eager_weights):
        np.testing.assert_allclose(w, e, rtol=1e-4, atol=1e-6)
    assert acc == eager_acc
    assert losses[-1] < losses[0]


def test_traced_once_per_signature_then_one_call_per_step():
    model = _mlp()
    traced = []

    @tf.function
    def predict(x, scale=1.0):
        traced.append(x.shape)  # a Python side effect: runs while tracing only
        return model(x) * scale

    x, _ = _data()
    first = predict(x[:16])
    before = build.stats()
    for i in range(16, 64, 16):
        out = predict(x[i:i + 16])
    after = build.stats()
    assert len(traced) == 1
    assert all(after.get(k, 0) == before.get(k, 0) for k in
               ("traces", "autodiffs", "optimizations", "emissions", "compilations"))
    np.testing.assert_allclose(out, model.predict_on_batch(x[48:]), rtol=1e-6, atol=1e-6)
    assert isinstance(first, np.ndarray) and first.shape == (16, 3)
    predict(x[:5])  # a new shape retraces, as tf.function does
    np.testing.assert_allclose(predict(x[:16], scale=2.0), 2 * first, rtol=1e-6)  # a new value
    assert len(traced) == 3


def test_input_signature_with_an_open_batch_dim_traces_once():
    model = _mlp()
    traced = []

    @tf.function(input_signature=[tf.TensorSpec((None, 8), "float32")])
    def predict(x):
        traced.append(1)
        return model(x)

    x, _ = _data()
    for n in (16, 5, 64):
        np.testing.assert_allclose(predict(x[:n]), model.predict_on_batch(x[:n]), rtol=1e-6,
                                   atol=1e-6)
    assert len(traced) == 1
    with pytest.raises(ValueError, match="input_signature"):
        predict(np.zeros((2, 7), "f4"))


def test_structures_methods_and_nesting():
    model = _mlp()

    class Scorer:
        def __init__(self, factor):
            self.factor = factor

        @tf.function
        def both(self, inputs):
            out = model(inputs["x"])
            return {"scaled": out * self.factor, "raw": out, "note": "constant"}

    x, _ = _data()
    want = model.predict_on_batch(x[:4])
    got = Scorer(3.0).both({"x": x[:4]})
    assert got["note"] == "constant"
    np.testing.assert_allclose(got["raw"], want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got["scaled"], 3 * want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(Scorer(-1.0).both({"x": x[:4]})["scaled"], -want, rtol=1e-6,
                               atol=1e-6)  # another instance: its own trace

    @tf.function
    def nothing(x):
        model(x)

    assert nothing(x[:2]) is None


def test_a_function_called_inside_fit_is_inlined_into_the_step():
    @tf.function
    def squared_error(y, y_pred):
        return keras.ops.mean(keras.ops.square(y - y_pred), axis=-1)

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss=squared_error)
    x, _ = _data()
    history = model.fit(x, x[:, :1], epochs=2, verbose=0).history
    assert history["loss"][1] < history["loss"][0]


def test_unknown_options_are_refused():
    with pytest.raises(TypeError, match="experimental_nonsense"):
        tf.function(lambda x: x, experimental_nonsense=True)
    assert tf.function(jit_compile=True, reduce_retracing=True)(lambda x: x * 2)(
        np.ones(2, "f4")).tolist() == [2.0, 2.0]


def test_numpy_of_a_result_is_a_copy_as_in_tensorflow():
    # visualizing_what_convnets_learn.py edits `img[0].numpy()` in place (`img -= img.mean()`)
    # and still reads `img` afterwards
    @tf.function
    def step(img):
        return img * 2.0

    out = step(np.ones((1, 2, 2), "float32"))
    edited = out[0].numpy()
    edited -= 5.0
    np.testing.assert_array_equal(out, np.full((1, 2, 2), 2.0))
    eager = keras.layers.Dense(2, kernel_initializer="ones")(np.ones((1, 3), "float32"))
    eager.numpy()[0] = 7.0
    np.testing.assert_array_equal(eager, [[3.0, 3.0]])


def test_iterating_a_1d_result_gives_tensors_with_numpy():
    # vivit.py: `for testsample, label in zip(testsamples, labels): label.numpy()`
    @tf.function
    def labels(x):
        return x * 2.0

    out = labels(np.array([1.0, 2.0, 3.0], "float32"))
    items = list(out)
    assert [float(v.numpy()) for v in items] == [2.0, 4.0, 6.0]
    assert all(v.shape == () for v in items)
    rows = list(labels(np.ones((2, 3), "float32")))
    assert len(rows) == 2 and rows[0].numpy().shape == (3,)
