"""Trainer and model semantics Keras 3 users rely on (issue 7, part 3), each written the way
the keras.io guides and examples use it: endpoint layers, VAE sampling, GAN train steps."""
from __future__ import annotations

import numpy as np
import pytest

from kgraph import GradientTape, keras
from kgraph.keras import layers, ops


def _data(n=16, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype("float32"), rng.normal(size=(n, 1)).astype("float32")


# -- fit(x) without targets; compile() without a loss -------------------------------------------
def test_endpoint_layer_loss_from_add_loss_trains_with_fit_x_only():
    """keras.io examples/keras_recipes/endpoint_layer_pattern: compile(optimizer) only."""
    class LogisticEndpoint(layers.Layer):
        def call(self, targets, logits):
            self.add_loss(ops.mean(ops.square(targets - logits)))
            return ops.sigmoid(logits)

    x, y = _data()
    inputs = keras.Input((4,), name="inputs")
    targets = keras.Input((1,), name="targets")
    predictions = LogisticEndpoint()(targets, layers.Dense(1)(inputs))
    model = keras.Model([inputs, targets], predictions)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit({"inputs": x, "targets": y}, epochs=5, batch_size=8, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]


def test_compile_without_loss_and_no_add_loss_fails_when_training():
    x, y = _data()
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layers.Dense(1)(inputs))
    model.compile(optimizer="sgd")  # accepted, as in Keras 3
    with pytest.raises(ValueError, match="No loss to compute"):
        model.fit(x, y, verbose=0)


def _gan(backend=None):
    """keras.io examples/generative/dcgan_overriding_train_step, in small: fit(real) with no
    targets, noise drawn in the step from a SeedGenerator, real and fake concatenated along
    the unknown batch axis and differentiated."""
    generator = keras.Sequential([keras.Input((2,)), layers.Dense(4, kernel_initializer="ones")])
    discriminator = keras.Sequential([keras.Input((4,)),
                                      layers.Dense(1, kernel_initializer="ones")])

    class GAN(keras.Model):
        def __init__(self):
            super().__init__()
            self.generator, self.discriminator = generator, discriminator
            self.seed_generator = keras.random.SeedGenerator(1337)

        def train_step(self, real):
            batch = ops.shape(real)[0]
            noise = keras.random.normal((batch, 2), seed=self.seed_generator)
            combined = ops.concatenate([self.generator(noise), real], axis=0)
            labels = ops.concatenate([ops.ones_like(real[:, :1]), ops.zeros_like(real[:, :1])],
                                     axis=0)
            with GradientTape() as tape:
                d_loss = ops.mean(ops.square(self.discriminator(combined) - labels))
            weights = self.discriminator.trainable_weights
            self.optimizer.apply_gradients(zip(tape.gradient(d_loss, weights), weights))
            with GradientTape() as tape:
                g_loss = ops.mean(ops.square(self.discriminator(self.generator(noise))))
            weights = self.generator.trainable_weights
            self.optimizer.apply_gradients(zip(tape.gradient(g_loss, weights), weights))
            return {"d_loss": d_loss, "g_loss": g_loss}

    gan = GAN()
    gan.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=backend or "auto")
    return gan


def test_custom_train_step_gan_concatenates_real_and_fake_along_the_batch():
    x, _ = _data(12)
    gan = _gan()
    before = gan.discriminator.get_weights()[0].copy()
    history = gan.fit(x, epochs=2, batch_size=5, verbose=0)  # a last partial batch of 2
    assert set(history.history) == {"d_loss", "g_loss"}
    assert not np.allclose(gan.discriminator.get_weights()[0], before)


@pytest.mark.tvm
def test_gan_step_on_tvm_matches_onnxruntime():
    pytest.importorskip("tvm")
    x, _ = _data(12)
    histories = [_gan(backend).fit(x, epochs=2, batch_size=6, shuffle=False,
                                   verbose=0).history for backend in (None, "tvm")]
    for key in ("d_loss", "g_loss"):
        np.testing.assert_allclose(histories[1][key], histories[0][key], rtol=1e-4)


def test_concat_gradient_along_unknown_axis_matches_numpy():
    from kgraph.compiler.autodiff import gradients
    from kgraph.compiler.build import compile_graph
    from kgraph.ir.graph import Graph, tracing

    weights = np.random.default_rng(1).normal(size=(5, 3)).astype("float32")
    graph = Graph("concat_grad")
    with tracing(graph):
        a = graph.placeholder("a", (None, 3), "float32")
        b = graph.placeholder("b", (None, 3), "float32")
        w = graph.placeholder("w", (None, 3), "float32")
        loss = ops.sum(ops.concatenate([a * 2.0, b], axis=0) * w)
        ga, gb = gradients(graph, loss, [a, b])
        graph.set_outputs({"ga": ga, "gb": gb})
    feeds = {"a": np.ones((2, 3), "float32"), "b": np.ones((3, 3), "float32"), "w": weights}
    program = compile_graph(graph)
    got_a, got_b = (program.to_numpy(o) for o in program.run(feeds))
    np.testing.assert_allclose(got_a, 2.0 * weights[:2], rtol=1e-6)
    np.testing.assert_allclose(got_b, weights[2:], rtol=1e-6)


def test_compute_loss_override_without_training_argument():
    class Model(keras.Model):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
            return ops.mean(ops.abs(y - y_pred))

    x, y = _data()
    inputs = keras.Input((4,))
    model = Model(inputs, layers.Dense(1)(inputs))
    model.compile(optimizer="sgd")
    model.fit(x, y, verbose=0)
    expected = np.mean(np.abs(y - model.predict(x, verbose=0)))
    assert model.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-5)


# -- keras.random ----------------------------------------------------------------------------
def test_random_eager_int_seed_repeats_and_seed_generator_advances():
    rnd = keras.random
    np.testing.assert_array_equal(rnd.uniform((3, 2), seed=7), rnd.uniform((3, 2), seed=7))
    gen = rnd.SeedGenerator(1)
    first, second = rnd.normal((50,), seed=gen), rnd.normal((50,), seed=gen)
    assert first.dtype == np.float32 and not np.allclose(first, second)
    again = rnd.SeedGenerator(1)
    np.testing.assert_array_equal(rnd.normal((50,), seed=again), first)


def test_random_distributions_have_keras_statistics():
    rnd = keras.random
    normal = rnd.normal((20000,), mean=1.0, stddev=2.0, seed=1)
    assert normal.mean() == pytest.approx(1.0, abs=0.05) and normal.std() == pytest.approx(
        2.0, abs=0.05)
    truncated = rnd.truncated_normal((20000,), seed=2)
    assert np.abs(truncated).max() <= 2.0 and truncated.std() == pytest.approx(0.88, abs=0.02)
    uniform = rnd.uniform((20000,), minval=-1.0, maxval=3.0, seed=3)
    assert uniform.min() >= -1.0 and uniform.max() < 3.0
    ints = rnd.randint((20000,), 2, 5, seed=4)
    assert ints.dtype == np.int32 and set(np.unique(ints)) == {2, 3, 4}
    dropped = rnd.dropout(np.ones((100, 100), "float32"), 0.25, seed=5)
    assert set(np.unique(dropped)) <= {0.0, np.float32(1 / 0.75)}
    assert (dropped == 0).mean() == pytest.approx(0.25, abs=0.02)
    assert sorted(rnd.shuffle(np.arange(10), seed=6)) == list(range(10))
    draws = rnd.categorical(np.log(np.array([[0.2, 0.8], [0.9, 0.1]], "float32")), 4000, seed=7)
    assert draws.shape == (2, 4000)
    np.testing.assert_allclose(draws.mean(axis=1), [0.8, 0.1], atol=0.03)


@pytest.mark.parametrize("alpha", [0.2, 0.7, 1.0, 3.5])
def test_random_gamma_and_beta_follow_their_distributions(alpha):
    stats = pytest.importorskip("scipy.stats")
    draws = keras.random.gamma((20000,), alpha=alpha, seed=3)
    assert draws.dtype == np.float32 and (draws >= 0).all()
    assert stats.kstest(draws, stats.gamma(alpha).cdf).pvalue > 1e-3
    np.testing.assert_array_equal(draws, keras.random.gamma((20000,), alpha=alpha, seed=3))
    mixed = keras.random.beta((20000,), alpha, 0.5, seed=4)
    assert stats.kstest(mixed, stats.beta(alpha, 0.5).cdf).pvalue > 1e-3
    with pytest.raises(ValueError, match="alpha"):
        keras.random.gamma((2,), alpha=0.0)


class Sampling(layers.Layer):
    """keras.io examples/generative/vae: z = mean + exp(log_var / 2) * epsilon."""

    def __init__(self, seed=1337, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch, dim = ops.shape(z_mean)[0], ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def _vae(seed=1337):
    inputs = keras.Input((4,))
    z_mean, z_log_var = layers.Dense(2)(inputs), layers.Dense(2)(inputs)
    z = Sampling(seed)([z_mean, z_log_var])
    return keras.Model(inputs, [z_mean, z])


def test_random_inside_call_follows_the_unknown_batch_and_is_reproducible_from_the_seed():
    x, _ = _data(7)
    one, two = _vae(), _vae()
    two.set_weights(one.get_weights())
    mean_1, z_1 = one.predict(x, verbose=0)
    mean_2, z_2 = two.predict(x, verbose=0)
    assert z_1.shape == (7, 2)
    np.testing.assert_array_equal(z_1, z_2)  # same seed, same draws
    assert not np.allclose(z_1, mean_1)
    _, z_3 = one.predict(x, verbose=0)
    assert not np.allclose(z_3, z_1)  # the generator advanced


# -- inputs: dtypes and dicts --------------------------------------------------------------------
def test_bool_and_int_inputs_to_dense_compute_in_float32():
    x = np.random.default_rng(2).random((8, 4)) > 0.5
    for dtype in ("bool", "int32"):
        inputs = keras.Input((4,), dtype=dtype)
        dense = layers.Dense(1)
        model = keras.Model(inputs, dense(inputs))
        kernel, bias = dense.get_weights()
        got = model.predict(x.astype(dtype), verbose=0)
        # float32 sums in another order: a value near zero differs in its last bits
        np.testing.assert_allclose(got, x.astype("float32") @ kernel + bias, rtol=1e-6,
                                   atol=1e-7)


def test_dict_inputs_are_matched_by_input_name_not_sorted_key():
    zeta, alpha = keras.Input((1,), name="zeta"), keras.Input((2,), name="alpha")
    model = keras.Model([zeta, alpha], layers.Concatenate()([zeta, alpha]))
    data = {"zeta": np.full((3, 1), 5.0, "float32"), "alpha": np.zeros((3, 2), "float32")}
    np.testing.assert_array_equal(model.predict(data, verbose=0)[:, 0], [5.0] * 3)
    np.testing.assert_array_equal(np.asarray(model(data))[:, 0], [5.0] * 3)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(data, np.zeros((3, 3), "float32"), verbose=0)
    with pytest.raises(ValueError, match="alpha"):
        model.predict({"zeta": data["zeta"], "other": data["alpha"]}, verbose=0)


# -- callbacks ---------------------------------------------------------------------------------
def test_callbacks_receive_empty_dict_logs_where_keras_passes_them():
    seen = []

    class Recorder(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(logs)

        def on_epoch_begin(self, epoch, logs=None):
            seen.append(logs)

        def on_train_batch_begin(self, batch, logs=None):
            seen.append(logs)

        def on_predict_begin(self, logs=None):
            seen.append(logs)

    x, y = _data(4)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[Recorder()])
    model.predict(x, verbose=0, callbacks=[Recorder()])
    assert seen == [{}, {}, {}, {}]


# -- layers: eager add_loss, masks -----------------------------------------------------------------
def test_sublayers_and_variables_set_before_super_init_are_tracked_in_keras_order():
    """Keras tracks what a subclass assigns before calling `super().__init__()` (the Switch
    Transformer example's experts and router): weights in assignment order."""
    class Switch(layers.Layer):
        def __init__(self):
            self.experts = [keras.Sequential([layers.Dense(3, name=f"e{i}")]) for i in range(2)]
            self.route = layers.Dense(2, name="route")
            super().__init__()
            self.scale = keras.Variable(np.float32(2.0), name="scale")

        def call(self, x):
            return self.route(x) * self.scale + sum(e(x)[:, :2] for e in self.experts)

    switch = Switch()
    out = switch(np.ones((1, 4), "float32"))
    assert out.shape == (1, 2)
    # Keras 3: the layer's own variables, then its sublayers' in assignment order
    assert [w.path.split("/")[-2:] for w in switch.weights] == [
        ["scale"], ["e0", "kernel"], ["e0", "bias"], ["e1", "kernel"], ["e1", "bias"],
        ["route", "kernel"], ["route", "bias"]]
    assert len(switch.trainable_weights) == 7


def test_keras_ops_on_keras_tensors_build_functional_model_nodes():
    """Keras 3 applies any keras.ops function to a functional model's symbolic tensors (the
    VQ-VAE example's `tf.one_hot(keras.Input(..., dtype=tf.int32), 128)`)."""
    codes = keras.Input((3, 3), dtype="int32")
    images = keras.Input((4, 4, 2))
    one_hot = ops.one_hot(codes, 5)
    joined = ops.concatenate([one_hot, one_hot * 2.0], axis=-1)
    small = ops.image.resize(images, (2, 2), interpolation="nearest")
    out = ops.sum(joined, axis=-1) + ops.mean(small, axis=(1, 2, 3))[:, None, None]
    assert one_hot.shape == (None, 3, 3, 5) and joined.shape == (None, 3, 3, 10)
    model = keras.Model([codes, images], out)
    c = np.arange(18).reshape(2, 3, 3) % 5
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 2)).astype("float32")
    eager_small = ops.image.resize(x, (2, 2), interpolation="nearest")
    want = 3.0 + np.asarray(eager_small).mean(axis=(1, 2, 3))[:, None, None]
    np.testing.assert_allclose(model.predict([c, x], verbose=0), np.broadcast_to(want, (2, 3, 3)),
                               rtol=1e-5)
    np.testing.assert_allclose(ops.one_hot(np.array([1]), 3), [[0.0, 1.0, 0.0]])  # eager


def test_variable_takes_tensorflows_initial_value_and_get_shape():
    import kgraph as tf

    var = tf.Variable(initial_value=np.ones((2, 3), "float32"), trainable=False, name="v")
    assert var.get_shape() == (2, 3) and not var.trainable
    with pytest.raises(ValueError, match="initial_value"):
        tf.Variable(name="nothing")


def test_variable_numpy_is_a_fresh_copy_as_tensorflows():
    import kgraph as tf

    var = tf.Variable(np.float32([1.0, 2.0]))
    read, as_array = var.numpy(), np.asarray(var)
    read[0], as_array[1] = 99.0, -5.0  # the user's in-place edits leave the variable alone
    np.testing.assert_array_equal(var.numpy(), [1.0, 2.0])
    var.assign([3.0, 4.0])
    var.assign_add(np.float32([1.0, 1.0]))
    np.testing.assert_array_equal(read, [99.0, 2.0])  # nor do later assignments change a read
    np.testing.assert_array_equal(var, [4.0, 5.0])
    with pytest.raises(ValueError, match="copy=False"):
        np.asarray(var, dtype="float64", copy=False)
    # a value a training step left in the executor's buffer: each read is the caller's own
    model = keras.Sequential([keras.Input((2,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    kernel = model.layers[0].kernel
    before = kernel.numpy()
    model.fit(np.ones((4, 2), "f4"), np.zeros((4, 1), "f4"), epochs=1, verbose=0)
    first, second = kernel.numpy(), kernel.numpy()
    assert not np.array_equal(first, before) and first is not second
    first += 1.0
    np.testing.assert_array_equal(kernel.numpy(), second)


def test_layer_losses_hold_add_loss_values_after_an_eager_call():
    class ActivityPenalty(layers.Layer):
        def call(self, inputs):
            self.add_loss(0.5 * ops.sum(ops.square(inputs)))
            return inputs

    layer = ActivityPenalty()
    x, _ = _data(3)
    layer(x)
    assert len(layer.losses) == 1
    assert float(layer.losses[0]) == pytest.approx(0.5 * np.sum(x ** 2), rel=1e-5)
    layer(x[:1])  # the next call replaces them, as in Keras
    assert float(layer.losses[0]) == pytest.approx(0.5 * np.sum(x[:1] ** 2), rel=1e-5)


def test_embedding_mask_reaches_a_mask_consuming_layer_through_dense():
    """keras.io guides/understanding_masking_and_padding: a custom layer after Dense."""
    class MaskedMean(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs, mask=None):
            weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
            return ops.sum(inputs * weights, axis=1) / ops.sum(weights, axis=1)

        def compute_mask(self, inputs, mask=None):
            return None

    tokens = keras.Input((5,), dtype="int32")
    hidden = layers.Dense(3)(layers.Embedding(10, 3, mask_zero=True)(tokens))
    model = keras.Model(tokens, MaskedMean()(hidden))
    ids = np.array([[1, 2, 0, 0, 0], [3, 0, 0, 0, 0]], "int32")
    full = keras.Model(tokens, hidden).predict(ids, verbose=0)
    np.testing.assert_allclose(model.predict(ids, verbose=0),
                               [full[0, :2].mean(0), full[1, :1].mean(0)], rtol=1e-5)


# -- serialization ------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="semantics_test")
def doubled_relu(x):
    return ops.relu(x) * 2.0


def test_registered_function_works_as_an_activation_by_name_and_survives_a_keras_file(tmp_path):
    x, _ = _data(3)
    inputs = keras.Input((4,))
    dense = layers.Dense(2, activation="doubled_relu")
    model = keras.Model(inputs, dense(inputs))
    kernel, bias = dense.get_weights()
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               2.0 * np.maximum(x @ kernel + bias, 0), rtol=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("obj", [
    keras.regularizers.L1(0.3), keras.regularizers.L2(0.2), keras.regularizers.L1L2(0.1, 0.2),
    keras.initializers.GlorotUniform(seed=1), keras.constraints.MaxNorm(2.0),
    keras.optimizers.Adam(0.01), keras.losses.MeanSquaredError(), keras.metrics.MeanSquaredError()],
    ids=lambda o: type(o).__module__.split(".")[2] + "." + type(o).__name__)
def test_builtin_objects_round_trip_through_keras_configs(obj):
    config = keras.saving.serialize_keras_object(obj)
    assert config["module"].startswith("keras.") and config["class_name"] == type(obj).__name__
    back = keras.saving.deserialize_keras_object(config)
    assert type(back) is type(obj) and back.get_config() == obj.get_config()


def test_functions_serialize_in_keras_3_form():
    config = keras.saving.serialize_keras_object(doubled_relu)
    assert config == {"module": __name__, "class_name": "function", "config": "doubled_relu",
                      "registered_name": "semantics_test>doubled_relu"}
    assert keras.saving.deserialize_keras_object(config) is doubled_relu
    relu = keras.saving.serialize_keras_object(keras.activations.relu)
    assert keras.saving.deserialize_keras_object(relu) is keras.activations.relu


def test_layers_serialize_deserialize_keeps_regularizers():
    dense = layers.Dense(3, activation="tanh", kernel_regularizer=keras.regularizers.L1(0.01))
    config = keras.layers.serialize(dense)
    assert config["class_name"] == "Dense" and config["module"] == "keras.layers"
    back = keras.layers.deserialize(config)
    assert isinstance(back, layers.Dense) and back.get_config() == dense.get_config()
    assert isinstance(back.kernel_regularizer, keras.regularizers.L1)


def test_clone_model_functional_with_clone_function_and_input_tensors():
    inputs = keras.Input((4,), name="features")
    hidden = layers.Dense(3, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, layers.Dense(1, name="head")(hidden))
    seen = []

    def clone_function(layer):
        seen.append(layer.name)
        return layers.Dense.from_config({**layer.get_config(), "name": layer.name + "_c"})

    new_inputs = keras.Input((4,), name="new_features")
    clone = keras.models.clone_model(model, input_tensors=new_inputs,
                                     clone_function=clone_function)
    assert seen == ["hidden", "head"]
    assert [layer.name for layer in clone.layers] == ["new_features", "hidden_c", "head_c"]
    assert clone.inputs[0] is new_inputs
    assert all(a is not b for a, b in zip(clone.weights, model.weights))
    clone.set_weights(model.get_weights())
    x, _ = _data(5)
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0))


def test_clone_model_sequential_and_shared_layers():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(2), layers.Dense(1)])
    clone = keras.models.clone_model(model)
    assert isinstance(clone, keras.Sequential) and len(clone.layers) == 2
    clone.set_weights(model.get_weights())
    x, _ = _data(3)
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0))

    shared = layers.Dense(4)
    inputs = keras.Input((4,))
    twice = keras.Model(inputs, shared(shared(inputs)))
    clone = keras.models.clone_model(twice)
    assert len(clone.weights) == 2  # the shared layer is cloned once


def test_wrapper_and_input_spec():
    class Twice(keras.layers.Wrapper):
        def call(self, inputs):
            return self.layer(self.layer(inputs))

    wrapper = Twice(layers.Dense(4, kernel_initializer="identity"))
    x, _ = _data(2)
    np.testing.assert_allclose(wrapper(x), x, rtol=1e-6)
    config = wrapper.get_config()
    assert config["layer"]["class_name"] == "Dense"
    assert isinstance(Twice.from_config(config).layer, layers.Dense)

    class Needs3D(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.input_spec = keras.layers.InputSpec(ndim=3, axes={-1: 2})

    with pytest.raises(ValueError, match="ndim=3"):
        Needs3D()(keras.Input((4,)))
    with pytest.raises(ValueError, match="axis -1"):
        Needs3D()(keras.Input((4, 3)))
    assert Needs3D()(keras.Input((4, 2))).shape == (None, 4, 2)


def test_top_level_names():
    assert keras.version() == keras.__version__
    for name in ("Loss", "Metric", "Optimizer", "Initializer", "Regularizer", "Constraint"):
        assert isinstance(getattr(keras, name), type)
    assert isinstance(keras.Input((2,)), keras.KerasTensor)
    assert issubclass(keras.layers.Identity, keras.layers.Layer)
    from kgraph.keras.name_scope import current_path

    with keras.name_scope("outer"):
        with keras.name_scope("inner"):
            assert current_path() == "outer/inner"
    assert current_path() == ""


def test_reexported_packages_import_by_their_keras_paths():
    # `from keras.applications import imagenet_utils` (the keras.io MobileViT example)
    from kgraph.keras.applications import imagenet_utils
    from kgraph.keras.ops import image
    import kgraph.keras.random

    assert imagenet_utils is keras.applications.imagenet_utils
    assert image is keras.ops.image and kgraph.keras.random is keras.random
    assert imagenet_utils.correct_pad(keras.Input((8, 8, 3)), 3) == ((0, 1), (0, 1))


def test_seed_generator_draws_do_not_depend_on_steps_per_execution(tmp_path):
    class Noise(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(5)

        def call(self, inputs, training=False):
            if not training:
                return inputs
            return inputs + 0.1 * keras.random.normal(ops.shape(inputs), seed=self.seed_generator)

    x, y = np.ones((16, 4), "float32"), np.zeros((16, 1), "float32")
    kernels = []
    for steps in (1, 4):
        inputs = keras.Input((4,))
        model = keras.Model(inputs, layers.Dense(1, kernel_initializer="ones")(Noise()(inputs)))
        model.compile(keras.optimizers.SGD(0.01), "mse", steps_per_execution=steps)
        model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
        assert len(model.weights) == 2  # the generator's counter is not a weight
        kernels.append(model.get_weights()[0])
    np.testing.assert_array_equal(kernels[0], kernels[1])
    assert np.ptp(kernels[0]) > 0  # the noise differed per feature
    model.save(tmp_path / "noise.keras")


@pytest.mark.parametrize("name, draw, check", [
    ("uniform", lambda x, g: keras.random.uniform(ops.shape(x), 2.0, 3.0, seed=g),
     lambda out, x: (out >= 2).all() and (out < 3).all()),
    ("truncated_normal", lambda x, g: keras.random.truncated_normal(ops.shape(x), seed=g),
     lambda out, x: (np.abs(out) <= 2).all()),
    ("randint", lambda x, g: keras.random.randint(ops.shape(x), 0, 3, seed=g),
     lambda out, x: set(np.unique(out)) <= {0, 1, 2} and out.dtype == np.int32),
    ("dropout_noise_shape", lambda x, g: keras.random.dropout(x, 0.5, (None, 1), seed=g),
     lambda out, x: all(np.array_equal(r, 2 * xr) or not r.any() for r, xr in zip(out, x))),
    ("shuffle_axis_1", lambda x, g: keras.random.shuffle(x, axis=1, seed=g),
     lambda out, x: np.array_equal(np.sort(out, axis=1), x)),
    ("categorical", lambda x, g: keras.random.categorical(x * 10.0, 3, seed=g),
     lambda out, x: out.shape == (len(x), 3) and (out == 3).mean() > 0.9),
    ("global_stream", lambda x, g: keras.random.normal(ops.shape(x)),
     lambda out, x: np.isfinite(out).all() and out.std() > 0.1),
    ("gamma", lambda x, g: keras.random.gamma(ops.shape(x), 0.5, seed=g),
     lambda out, x: (out >= 0).all() and len(np.unique(out)) == out.size),
    ("beta", lambda x, g: keras.random.beta(ops.shape(x), 0.2, 0.3, seed=g),
     lambda out, x: ((out >= 0) & (out <= 1)).all() and out.std() > 0.1),
])
def test_random_functions_inside_call_with_an_unknown_batch(name, draw, check):
    class Draw(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(11)

        def call(self, inputs):
            return draw(inputs, self.seed_generator)

    x = np.arange(1.0, 41.0, dtype="float32").reshape(10, 4)
    inputs = keras.Input((4,))
    out = keras.Model(inputs, Draw()(inputs)).predict(x, verbose=0)
    assert out.shape[0] == 10 and check(out, x)


def test_add_loss_terms_are_in_layer_losses_while_traced_and_counted_once_by_fit():
    """Keras: `model.losses` inside a train step holds the add_loss terms of that call (the
    guide's `loss_value += sum(model.losses)`); fit adds them to the compiled loss once."""
    import kgraph as tf

    class Activity(keras.layers.Layer):
        def call(self, inputs):
            self.add_loss(1e-2 * keras.ops.sum(inputs))
            return inputs

    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(1)(Activity()(inputs))
    model = keras.Model(inputs, outputs)
    x = np.arange(12, dtype="float32").reshape(4, 3) / 10
    y = np.zeros((4, 1), "float32")
    activity = 1e-2 * x.sum()
    mse = float(np.mean((model.predict_on_batch(x) - y) ** 2))

    @tf.function
    def traced_losses(x):
        model(x, training=True)
        return sum(model.losses)

    np.testing.assert_allclose(traced_losses(x), activity, rtol=1e-6)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0).history
    np.testing.assert_allclose(history["loss"][0], mse + activity, rtol=1e-5)


def test_metrics_lists_compile_metrics_and_a_custom_train_step_reports_them_as_fit_does():
    """Keras 3: `model.metrics` is [loss tracker, "compile_metrics"] from compile() on; the
    guide's custom train_step updating `for m in self.metrics` logs the same values as the
    built-in step."""
    import kgraph as tf

    class Custom(keras.Model):
        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred)
            self.optimizer.apply(tape.gradient(loss, self.trainable_variables),
                                 self.trainable_variables)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("f4"), rng.normal(size=(64, 1)).astype("f4")
    histories = []
    for cls in (keras.Model, Custom):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((4,))
        model = cls(inputs, keras.layers.Dense(1)(inputs))
        model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
        assert [m.name for m in model.metrics] == ["loss", "compile_metrics"]
        histories.append(model.fit(x, y, batch_size=16, epochs=2, verbose=0).history)
        assert model.metrics_names == ["loss", "compile_metrics"]
    plain, custom = histories
    assert set(custom) == set(plain) == {"loss", "mae"}
    for name in plain:
        np.testing.assert_allclose(custom[name], plain[name], rtol=1e-5)


def test_functional_inputs_gain_or_lose_a_trailing_unit_axis_as_keras():
    """Keras 3 adjusts a functional model's input rank by one trailing axis of size 1:
    (N, 28, 28) data fits `Input((28, 28, 1))` (the siamese-network example), (N, 3, 1) data
    fits `Input((3,))`; any other rank difference is still an error."""
    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Flatten()(inputs))
    x = np.arange(32, dtype="float32").reshape(2, 4, 4)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x.reshape(2, 16))
    flat = keras.Input((3,))
    dense = keras.Model(flat, keras.layers.Dense(2)(flat))
    y = np.ones((5, 3, 1), "float32")
    np.testing.assert_allclose(dense.predict(y, verbose=0), dense.predict(y[..., 0], verbose=0))
    with pytest.raises(ValueError, match="expects rank 4"):
        model.predict(x.reshape(2, 16), verbose=0)
