"""fit/evaluate/predict semantics, as the Keras FAQ describes them."""
import numpy as np
import pytest

from kgraph import keras


def _linear(units=1, in_dim=3, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((in_dim,)), keras.layers.Dense(units, name="d")])


def _data(n=50, in_dim=3, out=1, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, in_dim)).astype("f4"), rng.normal(size=(n, out)).astype("f4")


def _mse(model, x, y, sw=None):
    err = np.mean((model.predict(x, verbose=0) - y) ** 2, axis=-1)
    if sw is None:
        return err.mean()
    return (err * sw).sum() / len(err)


def test_validation_split_is_last_fraction_unshuffled_and_fixed():
    x, y = _data(50)
    model = _linear()
    model.compile(keras.optimizers.SGD(0.0), "mse")  # weights never move
    history = model.fit(x, y, epochs=3, validation_split=0.2, verbose=0, batch_size=7)
    expected = _mse(model, x[40:], y[40:])
    np.testing.assert_allclose(history.history["val_loss"], [expected] * 3, rtol=1e-5)
    np.testing.assert_allclose(history.history["loss"], [_mse(model, x[:40], y[:40])] * 3,
                               rtol=1e-5)


def test_shuffle_is_global_per_epoch_and_changes_order():
    from kgraph.keras.data_adapter import ArrayAdapter

    x = np.arange(20, dtype="f4")[:, None]
    adapter = ArrayAdapter(x, x, batch_size=6, shuffle=True)
    epochs = [np.concatenate([b[0][:, 0] for b in adapter.batches()]) for _ in range(3)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(20))  # every sample once
    assert not np.array_equal(epochs[0], epochs[1])
    assert not np.array_equal(epochs[0], np.arange(20))
    plain = ArrayAdapter(x, x, batch_size=6, shuffle=False)
    assert [len(b[0]) for b in plain.batches()] == [6, 6, 6, 2]


def test_shuffle_changes_training_and_is_reproducible():
    x, y = _data(64)

    def final(shuffle, seed):
        model = _linear(seed=0)
        model.compile(keras.optimizers.SGD(0.1), "mse")
        keras.utils.set_random_seed(seed)
        model.fit(x, y, epochs=2, batch_size=8, shuffle=shuffle, verbose=0)
        return model.get_weights()[0]

    assert not np.allclose(final(False, 3), final(True, 3))
    np.testing.assert_array_equal(final(True, 3), final(True, 3))


def test_sample_weight_and_class_weight():
    x, y = _data(40)
    sw = np.random.default_rng(2).uniform(0, 2, 40).astype("f4")
    model = _linear()
    model.compile(keras.optimizers.SGD(0.0), "mse")
    loss = model.evaluate(x, y, sample_weight=sw, verbose=0, batch_size=40)
    np.testing.assert_allclose(loss, _mse(model, x, y, sw), rtol=1e-5)

    labels = (np.arange(40) % 2).astype("int64")[:, None]
    target = labels.astype("f4")
    weights = {0: 1.0, 1: 3.0}
    history = model.fit(x, target, class_weight=weights, epochs=1, batch_size=40, verbose=0)
    expected = _mse(model, x, target, np.where(labels[:, 0] == 1, 3.0, 1.0))
    np.testing.assert_allclose(history.history["loss"][0], expected, rtol=1e-5)


def test_partial_last_batch_uses_one_graph_and_weights_by_size():
    x, y = _data(70)
    model = _linear()
    model.compile(keras.optimizers.SGD(0.0), "mse")
    loss = model.evaluate(x, y, batch_size=32, verbose=0)
    np.testing.assert_allclose(loss, _mse(model, x, y), rtol=1e-5)
    assert len([k for k in model._programs if k[0] == "test"]) == 1
    assert model.predict(x, batch_size=32, verbose=0).shape == (70, 1)


def test_callbacks_are_called_in_order():
    x, y = _data(20)
    model = _linear()
    model.compile("sgd", "mse")
    calls = []

    class Recorder(keras.callbacks.Callback):
        def __getattribute__(self, name):
            if name.startswith("on_"):
                return lambda *a, **k: calls.append(name)
            return object.__getattribute__(self, name)

    model.fit(x, y, epochs=2, batch_size=10, validation_data=(x, y), verbose=0,
              callbacks=[Recorder()])
    core = [c for c in calls if c not in ("on_batch_begin", "on_batch_end")]
    epoch = (["on_epoch_begin"] + ["on_train_batch_begin", "on_train_batch_end"] * 2
             + ["on_test_begin"] + ["on_test_batch_begin", "on_test_batch_end"] * 2
             + ["on_test_end", "on_epoch_end"])
    assert core == ["on_train_begin"] + epoch * 2 + ["on_train_end"]


def test_history_keys_sorted_and_params():
    x, y = _data(20)
    model = _linear()
    model.compile("sgd", "mse", metrics=["mae"])
    history = model.fit(x, y, epochs=2, batch_size=10, validation_split=0.5, verbose=0)
    assert list(history.history) == ["loss", "mae", "val_loss", "val_mae"]
    assert history.epoch == [0, 1]
    assert model.history is history


def test_trainable_is_captured_at_compile():
    x, y = _data(20)
    model = _linear()
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.layers[0].trainable = False  # no effect until the next compile()
    before = model.get_weights()[0].copy()
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.allclose(before, model.get_weights()[0])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    before = model.get_weights()[0].copy()
    model.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(before, model.get_weights()[0])


def test_regularization_in_training_and_evaluation_loss():
    """Keras 3.15's compute_loss adds the regularization penalties whatever `training` is:
    fit and evaluate report the same loss (checked with real Keras: a Dense(1) with ones
    and L2(0.5) on zero inputs gives 1.5 in fit, evaluate and validation)."""
    x, y = _data(30)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
        1, kernel_regularizer=keras.regularizers.L2(0.5))])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    history = model.fit(x, y, epochs=1, batch_size=30, verbose=0, validation_data=(x, y))
    penalty = 0.5 * np.sum(model.get_weights()[0] ** 2)
    np.testing.assert_allclose(history.history["loss"][0], _mse(model, x, y) + penalty, rtol=1e-5)
    np.testing.assert_allclose(history.history["val_loss"][0], _mse(model, x, y) + penalty,
                               rtol=1e-5)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), _mse(model, x, y) + penalty,
                               rtol=1e-5)


def test_train_test_predict_on_batch_and_call():
    x, y = _data(16)
    model = _linear()
    model.compile(keras.optimizers.SGD(0.0), "mse", metrics=["mae"])
    loss, mae = model.test_on_batch(x, y)
    np.testing.assert_allclose(loss, _mse(model, x, y), rtol=1e-5)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "mae"}
    np.testing.assert_allclose(model.predict_on_batch(x), model(x), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(model(x[:1])), model.predict(x[:1], verbose=0),
                               rtol=1e-6)


def test_multi_input_multi_output_functional():
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    shared = keras.layers.Dense(4, name="shared")
    h = keras.layers.Concatenate()([shared(a), keras.layers.Dense(4)(b)])
    out1 = keras.layers.Dense(1, name="out1")(h)
    out2 = keras.layers.Dense(2, name="out2")(h)
    model = keras.Model([a, b], [out1, out2])
    model.compile("adam", ["mse", "mae"], loss_weights=[1.0, 0.5])
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(12, 3)).astype("f4"), rng.normal(size=(12, 2)).astype("f4")
    ya, yb = rng.normal(size=(12, 1)).astype("f4"), rng.normal(size=(12, 2)).astype("f4")
    history = model.fit([xa, xb], [ya, yb], epochs=2, batch_size=4, verbose=0)
    assert {"loss", "out1_loss", "out2_loss"} <= set(history.history)
    pa, pb = model.predict([xa, xb], verbose=0)
    assert pa.shape == (12, 1) and pb.shape == (12, 2)
    logs = model.evaluate([xa, xb], [ya, yb], verbose=0, return_dict=True)
    expected = np.mean((pa - ya) ** 2) + 0.5 * np.mean(np.abs(pb - yb))
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5)


def test_targets_for_only_the_outputs_with_a_loss():
    """`loss=[fn, None]` with one target (the keras.io miniature GPT returns its embeddings as
    a second output): as Keras 3, the target pairs with the output that has a loss."""
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    out = keras.layers.Dense(2, name="out")(hidden)
    model = keras.Model(inputs, [out, hidden])
    model.compile("sgd", loss=["mse", None], metrics=[["mae"], None])
    x, y = _data(n=12, out=2)
    model.fit(x, y, batch_size=4, verbose=0)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    pred, _ = model.predict(x, verbose=0)
    np.testing.assert_allclose(logs["loss"], np.mean((pred - y) ** 2), rtol=1e-5)
    np.testing.assert_allclose(logs["out_mae"], np.mean(np.abs(pred - y)), rtol=1e-5)
    with pytest.raises(ValueError, match="1 with a loss"):
        model.fit(x, [y, y, y], verbose=0)


def test_nested_model_and_shared_layers_train():
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="tanh")],
                             name="inner")
    x_in = keras.Input((3,))
    out = keras.layers.Dense(1)(inner(inner(x_in)))
    model = keras.Model(x_in, out)
    assert len(model.trainable_weights) == 4
    x, y = _data(32)
    model.compile(keras.optimizers.Adam(0.05), "mse")
    history = model.fit(x, y, epochs=8, verbose=0, batch_size=8)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_learning_lowers_loss_on_a_real_task():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("f4")
    y = (x[:, :1] * 2 - x[:, 1:2] + 0.5).astype("f4")
    model = _linear(in_dim=4)
    model.compile(keras.optimizers.Adam(0.1), "mse")
    model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 1e-3


def test_verbose_progress_bar_format(capsys):
    x, y = _data(20)
    model = _linear()
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=2, batch_size=10, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "\x1b[1m2/2\x1b[0m \x1b[32m━━━━━━━━━━━━━━━━━━━━\x1b[0m\x1b[37m\x1b[0m" in out
    assert " - loss: " in out
    model.fit(x, y, epochs=1, batch_size=10, verbose=2)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("2/2 - ") and "/step - loss: " in line
    model.fit(x, y, epochs=1, batch_size=10, verbose=0)
    assert capsys.readouterr().out == ""


def test_errors_are_typed_and_quote_values():
    from kgraph.keras.data_adapter import DataError
    from kgraph.keras.trainer import NotCompiledError

    model = _linear()
    x, y = _data(10)
    with pytest.raises(NotCompiledError, match="compile"):
        model.fit(x, y)
    with pytest.raises(ValueError, match="nope"):
        model.compile("nope", "mse")
    with pytest.raises(ValueError, match="not_a_loss"):
        model.compile("sgd", "not_a_loss")
    with pytest.raises(ValueError, match="bad_metric"):
        model.compile("sgd", "mse", metrics=["bad_metric"])
    model.compile("sgd", "mse")
    with pytest.raises(DataError, match="10.*9|9.*10"):
        model.fit(x, y[:9], verbose=0)
    with pytest.raises(ValueError, match=r"\(None, 3\).*\(10, 5\)|shape"):
        model.predict(np.zeros((10, 5), "f4"), verbose=0)
    with pytest.raises(ValueError, match="units=-1"):
        keras.layers.Dense(-1)
    with pytest.raises(DataError, match="batch_size"):
        model.fit(x, y, batch_size=0, verbose=0)
    before = model.get_weights()
    with pytest.raises(ValueError):
        model.fit(np.zeros((10, 4), "f4"), y, verbose=0)
    for b, a in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # nothing was trained


def test_integer_inputs_and_flat_targets():
    # Keras' EarlyStopping docstring: int64 inputs, y of shape (5,) for a (5, 10) output
    model = keras.Sequential([keras.layers.Dense(10)])
    model.compile(keras.optimizers.SGD(), loss="mse")
    history = model.fit(np.arange(100).reshape(5, 20), np.zeros(5), epochs=3, batch_size=1,
                        verbose=0)
    assert len(history.history["loss"]) == 3
    out = model.predict(np.arange(20).reshape(1, 20), verbose=0)
    assert out.dtype == np.float32 and out.shape == (1, 10)


def test_subclassed_model_trains_and_rejects_non_numeric_data():
    from kgraph.keras.data_adapter import DataError

    class TwoLayer(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(8, activation="relu")
            self.drop = keras.layers.Dropout(0.1)
            self.out = keras.layers.Dense(1)

        def call(self, x, training=False):
            return self.out(self.drop(self.hidden(x), training=training))

    keras.utils.set_random_seed(0)
    model = TwoLayer()
    model.compile(keras.optimizers.Adam(0.02), "mse")
    x = np.random.default_rng(0).random((64, 4)).astype("f4")
    y = x.sum(axis=1, keepdims=True)
    history = model.fit(x, y, epochs=30, verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
    assert len(model.trainable_weights) == 4 and model(x[:2]).shape == (2, 1)
    with pytest.raises(DataError, match="numeric.*<U1"):
        model.fit(np.array([["a"] * 4] * 64), y, verbose=0)


def test_a_weight_snapshot_keeps_its_value_while_training_goes_on():
    """Variable.snapshot() holds the executor's buffer of that step: later steps write new
    buffers and must not re-point it (onnxruntime's IOBinding output vector, iterated,
    yields references into its slots, which the next run overwrites)."""
    from kgraph.variables import snapshot_to_numpy

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("f4")
    y = np.random.default_rng(1).normal(size=(32, 3)).astype("f4")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    kernel = model.trainable_weights[0]
    held, copied = kernel.snapshot(), kernel.numpy().copy()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert not np.array_equal(kernel.numpy(), copied)
    np.testing.assert_array_equal(snapshot_to_numpy(held), copied)


def test_validation_data_that_yields_no_batches_is_a_typed_error():
    """A timeseries dataset whose windows are longer than its rows yields nothing: fit says
    so instead of failing inside its logs."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((8, 3), "f4"), np.ones((8, 1), "f4")
    empty = keras.utils.timeseries_dataset_from_array(np.ones((4, 3), "f4"), None,
                                                      sequence_length=10, batch_size=2)
    assert list(empty) == []
    with pytest.raises(ValueError, match="validation data yielded no batches"):
        model.fit(x, y, epochs=1, verbose=0, validation_data=empty.map(lambda s: (s, s)))


def test_dict_inputs_with_extra_keys_are_matched_by_name_and_the_rest_ignored():
    # Keras 3 feeds a dict-input model the keys it names and warns about the others (the
    # keras.io decision-forests example fits on CSV batches carrying an unused column).
    keras.utils.set_random_seed(0)
    a, b = keras.Input((), name="a"), keras.Input((), name="b")
    model = keras.Model({"b": b, "a": a}, keras.layers.Subtract()([a, b]))
    x = {"a": np.float32([1, 2, 3]), "b": np.float32([10, 20, 30])}
    extra = {"0_first": np.float32([7, 7, 7]), **x, "z": np.float32([5, 5, 5])}
    with pytest.warns(UserWarning, match=r"\['0_first', 'z'\] are not model inputs"):
        np.testing.assert_allclose(np.asarray(model(extra)), x["a"] - x["b"])
    with pytest.warns(UserWarning, match="not model inputs"):
        np.testing.assert_allclose(model.predict(extra, verbose=0), x["a"] - x["b"])
    model.compile("sgd", "mse")
    with pytest.warns(UserWarning, match="not model inputs"):
        logs = model.evaluate(extra, np.zeros(3, "f4"), verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["loss"], np.mean((x["a"] - x["b"]) ** 2), rtol=1e-6)


def test_model_loss_is_what_compile_was_given():
    # Keras 3 keeps compile's `loss` as `model.loss`; a train_step may call it (the keras.io
    # DDPM example's `self.loss(noise, pred_noise)`).
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert model.loss is None
    mse = keras.losses.MeanSquaredError()
    model.compile("sgd", loss=mse)
    assert model.loss is mse
    y, p = np.float32([[1.0], [2.0]]), np.float32([[0.0], [4.0]])
    np.testing.assert_allclose(float(model.loss(y, p)), 2.5)
    model.compile("sgd", loss="mae")
    assert model.loss == "mae"


def test_run_eagerly_runs_the_steps_python_on_values_with_the_compiled_results():
    # the keras.io debugging tips: prints inside train_step see values under run_eagerly=True
    x, y = _data(40)
    seen = []

    class Printing(keras.Model):
        def train_step(self, data):
            seen.append(float(keras.ops.max(data[0])))  # a value: fails on a traced one
            return super().train_step(data)

    def build(run_eagerly):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((3,))
        model = Printing(inputs, keras.layers.Dense(1)(inputs))
        model.compile(keras.optimizers.SGD(0.1), "mse", metrics=["mae"],
                      run_eagerly=run_eagerly, steps_per_execution=2)
        return model

    eager, compiled = build(True), build(False)
    assert eager.run_eagerly and not compiled.run_eagerly
    h_eager = eager.fit(x, y, batch_size=8, epochs=2, validation_split=0.2, verbose=0,
                        shuffle=False)
    assert seen == [float(x[i:i + 8].max()) for i in range(0, 32, 8)] * 2
    with pytest.raises(ValueError, match="is symbolic"):  # traced: no value to print
        compiled.fit(x, y, batch_size=8, epochs=1, verbose=0)
    seen.clear()
    Printing.train_step = keras.Model.train_step
    h_compiled = compiled.fit(x, y, batch_size=8, epochs=2, validation_split=0.2, verbose=0,
                              shuffle=False)
    for key in ("loss", "mae", "val_loss", "val_mae"):
        np.testing.assert_allclose(h_eager.history[key], h_compiled.history[key], rtol=1e-5)
    np.testing.assert_allclose(eager.predict(x, verbose=0), compiled.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert eager.evaluate(x, y, verbose=0) == pytest.approx(compiled.evaluate(x, y, verbose=0))


def test_run_eagerly_is_saved_in_the_compile_config(tmp_path):
    model = _linear()
    model.compile("sgd", "mse", run_eagerly=True)
    model.save(tmp_path / "eager.keras")
    loaded = keras.models.load_model(tmp_path / "eager.keras")
    from kgraph.keras.saving.compile_config import get_compile_config

    assert loaded.run_eagerly and get_compile_config(loaded)["run_eagerly"] is True


def test_metrics_held_as_attributes_are_tracked_and_fit_list_inputs_arrive_as_a_tuple():
    # wgan-graphs.py: metrics created in an overridden compile (no `metrics` property) are
    # the model's metrics, as Keras tracks them; fit([a, b]) hands train_step ((a, b),)
    seen = {}

    class Model(keras.Model):
        def compile(self, **kwargs):
            super().compile(**kwargs)
            self.tracker = keras.metrics.Mean(name="first_leaf")

        def train_step(self, data):
            seen["data"] = data
            self.tracker.update_state(keras.ops.mean(data[0][0]))
            return {m.name: m.result() for m in self.metrics}

    a, b = keras.Input((2,)), keras.Input((3,))
    model = Model([a, b], keras.layers.Dense(1)(keras.layers.concatenate([a, b])))
    model.compile(optimizer="sgd")
    assert [m.name for m in model.metrics] == ["loss", "first_leaf"]
    x = [np.full((4, 2), 3.0, "f4"), np.ones((4, 3), "f4")]
    history = model.fit(x, epochs=1, batch_size=4, verbose=0)
    assert isinstance(seen["data"], tuple) and isinstance(seen["data"][0], tuple)
    assert history.history["first_leaf"] == [3.0]


def test_a_variable_is_an_array_input_of_call_predict_and_a_traced_call():
    # TensorFlow: `model(tf.Variable(x))` is `model(x)`; traced, the variable is read when the
    # function runs (an assignment after tracing is seen)
    import kgraph as tf

    x, _ = _data(4)
    model = _linear()
    variable = tf.Variable(x)
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(model(variable), expected, rtol=1e-6)
    np.testing.assert_allclose(model.predict(variable, verbose=0), expected, rtol=1e-6)
    traced = tf.function(lambda: model(variable))
    np.testing.assert_allclose(traced(), expected, rtol=1e-6)
    variable.assign(2 * x)
    np.testing.assert_allclose(traced(), model.predict(2 * x, verbose=0), rtol=1e-6)
