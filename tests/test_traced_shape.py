"""`ops.shape(x)` of a traced tensor with an unknown batch feeds `ops.ones/zeros/full` and
`keras.random.*` with x's runtime size (the DCGAN train step of the keras.io examples)."""

import numpy as np

from kgraph import keras
from kgraph.keras import ops


class _ShapeProbe(keras.Model):
    """A train step that builds tensors from `ops.shape` of a batch and of a doubled batch."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.seed_generator = keras.random.SeedGenerator(3)

    def call(self, x):
        return self.dense(x)

    def train_step(self, x):
        batch = ops.shape(x)[0]
        both = ops.concatenate([x, x], axis=0)
        labels = ops.concatenate([ops.ones((batch, 1)), ops.zeros((batch, 1))], axis=0)
        noise = keras.random.uniform(ops.shape(both), seed=self.seed_generator)
        filled = ops.full(ops.shape(both), 2.0)
        return {
            "ones": ops.sum(labels),
            "labels_rows": ops.sum(ops.ones_like(labels)),
            "noise_size": ops.sum(ops.ones_like(noise)),
            "noise_max": ops.max(noise),
            "filled": ops.sum(filled),
        }


def test_shape_of_traced_batch_sizes_creation_and_random_ops():
    model = _ShapeProbe()
    model.compile(optimizer="sgd")
    x = np.random.default_rng(0).normal(size=(12, 3)).astype("float32")
    logs = model.fit(x, batch_size=4, epochs=1, verbose=0).history
    assert logs["ones"][-1] == 4.0
    assert logs["labels_rows"][-1] == 8.0
    assert logs["noise_size"][-1] == 8 * 3
    assert 0.0 <= logs["noise_max"][-1] < 1.0
    assert logs["filled"][-1] == 2.0 * 8 * 3


def test_shape_outside_tracing_is_a_plain_tuple():
    shape = ops.shape(np.zeros((2, 5)))
    assert shape == (2, 5) and type(shape) is tuple
    np.testing.assert_array_equal(ops.ones(shape), np.ones((2, 5), np.float32))


class _Tensordot(keras.layers.Layer):
    def __init__(self, axes, **kwargs):
        super().__init__(**kwargs)
        self.axes = axes

    def call(self, a, b):
        return ops.expand_dims(ops.tensordot(a, b, self.axes), 0)


def test_tensordot_contracts_the_unknown_batch_axis():
    """`ops.tensordot` over axes that include the traced batch (the collaborative-filtering
    example's `tensordot(user_vector, movie_vector, 2)`), against numpy."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 5)).astype("float32")
    b = rng.normal(size=(6, 5)).astype("float32")
    c = rng.normal(size=(6, 4)).astype("float32")
    for axes, second, expected in [
        (2, b, np.tensordot(a, b, 2)),
        (([0], [0]), c, np.tensordot(a, c, ([0], [0]))),
    ]:
        x1 = keras.Input((5,))
        x2 = keras.Input(second.shape[1:])
        model = keras.Model([x1, x2], _Tensordot(axes)(x1, x2))
        out = model.predict([a, second], batch_size=6, verbose=0)
        np.testing.assert_allclose(out[0], expected, rtol=1e-5, atol=1e-5)


def test_bool_data_into_a_float_input_is_cast_as_keras():
    """Bool one-hot arrays fed to a float32 `Input` (the char-LSTM example) train and predict
    as the same data in float32."""
    x = np.zeros((8, 5, 3), bool)
    x[np.arange(8), np.arange(8) % 5, np.arange(8) % 3] = True
    y = np.eye(3, dtype=bool)[np.arange(8) % 3]
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="rmsprop")
    history = model.fit(x, y, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               model.predict(x.astype("float32"), verbose=0), rtol=1e-6)


class _Repeat(keras.layers.Layer):
    def __init__(self, repeats, axis, **kwargs):
        super().__init__(**kwargs)
        self.repeats, self.axis = repeats, axis

    def call(self, x):
        return ops.reshape(ops.repeat(x, self.repeats, axis=self.axis), (1, -1))


def test_repeat_along_the_unknown_batch_axis():
    """`ops.repeat` by one count along an axis of unknown size (the conditional-GAN example's
    `ops.repeat(labels[:, :, None, None], repeats=[784])`), against numpy."""
    x = np.arange(12, dtype="float32").reshape(3, 4)
    for repeats, axis in [([2], None), (3, 0)]:
        inputs = keras.Input((4,))
        model = keras.Model(inputs, _Repeat(repeats, axis)(inputs))
        out = model.predict(x, batch_size=3, verbose=0)
        np.testing.assert_array_equal(out[0], np.repeat(x, repeats, axis=axis).ravel())


def test_tensordot_keeps_unknown_free_dims_of_both_operands():
    """`ops.tensordot(x, x, axes=(2, 2))` of a traced (batch, k, k) tensor has two unknown
    free dims, (batch, k, batch, k) (the keras.io PointNet OrthogonalRegularizer): forward
    against numpy, and as an activity regularizer whose loss a training step differentiates."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 3, 3)).astype("float32")
    inp = keras.Input((3, 3))
    model = keras.Model(inp, _Tensordot(([2], [2]))(inp, inp))
    out = model.predict(x, batch_size=4, verbose=0)
    np.testing.assert_allclose(out[0], np.tensordot(x, x, ([2], [2])), rtol=1e-5, atol=1e-5)

    def orthogonal(t):
        t = ops.reshape(t, (-1, 2, 2))
        xxt = ops.reshape(ops.tensordot(t, t, axes=(2, 2)), (-1, 2, 2))
        return ops.sum(0.1 * ops.square(xxt - ops.eye(2)))

    dense = keras.layers.Dense(4, kernel_initializer="ones", activity_regularizer=orthogonal)
    model = keras.Sequential([keras.Input((3,)), dense])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    features = rng.normal(size=(5, 3)).astype("float32") * 0.1
    t = (features @ np.ones((3, 4), np.float32)).reshape(-1, 2, 2)
    xxt = np.einsum("aij,bkj->aibk", t, t).reshape(-1, 2, 2)
    penalty = 0.1 * np.sum(np.square(xxt - np.eye(2)))
    loss = model.fit(features, np.zeros((5, 4)), batch_size=5, verbose=0).history["loss"][0]
    # the activity penalty is divided by the batch size, as Keras 3
    np.testing.assert_allclose(loss, penalty / 5 + np.mean(np.square(t)), rtol=1e-4)


def test_integer_images_into_a_float_input_are_cast_as_keras():
    """uint8 images fed to a model whose float32 `Input` comes from a nested functional model
    (semantic_image_clustering.py: `encoder.predict(x_data)` of a Sequential around
    ResNet50V2) are converted to the Input's dtype, as Keras converts inputs."""
    inner_input = keras.Input((4, 4, 3))
    inner = keras.Model(inner_input, keras.layers.Conv2D(2, 3)(inner_input))
    model = keras.Sequential([inner, keras.layers.Flatten()])
    x = np.random.default_rng(0).integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               model.predict(x.astype("float32"), verbose=0), rtol=1e-6)
    ints = keras.Input((2,), dtype="int32")
    counter = keras.Model(ints, keras.ops.sum(ints, axis=-1))
    assert counter.predict(np.array([[1.7, 2.2]], "float32"), verbose=0).tolist() == [3]
