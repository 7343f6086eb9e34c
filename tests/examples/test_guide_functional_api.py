"""keras.io guide "The Functional API" (guides/functional_api.py).

Each test walks one section of the guide with the guide's layer stacks,
shapes and calls: imports are kgraph's, the MNIST / CIFAR-10 downloads are
random arrays of the same shapes (a few hundred rows) and the epochs are cut
to one.
"""

import numpy as np

from kgraph import keras
from kgraph.keras import layers


def _mnist_mlp():
    inputs = keras.Input(shape=(784,))
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10)(x)
    return keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")


def test_train_evaluate_save_load(tmp_path):
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (320, 784)).astype("float32") / 255
    y_train = rng.integers(0, 10, (320,))
    model = _mnist_mlp()
    assert tuple(model.inputs[0].shape) == (None, 784)
    model.summary()
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.RMSprop(),
        metrics=["accuracy"],
    )
    history = model.fit(x_train, y_train, batch_size=64, epochs=1,
                        validation_split=0.2, verbose=0)
    assert "val_loss" in history.history
    scores = model.evaluate(x_train[:64], y_train[:64], verbose=0)
    assert len(scores) == 2 and 0.0 <= scores[1] <= 1.0
    path = str(tmp_path / "path_to_my_model.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored.predict(x_train[:8], verbose=0),
                               model.predict(x_train[:8], verbose=0), atol=1e-5)


def _encoder(name):
    encoder_input = keras.Input(shape=(28, 28, 1), name=name)
    x = layers.Conv2D(16, 3, activation="relu")(encoder_input)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    encoder_output = layers.GlobalMaxPooling2D()(x)
    return encoder_input, encoder_output


def _decode(x):
    x = layers.Reshape((4, 4, 1))(x)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu")(x)
    x = layers.UpSampling2D(3)(x)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    return layers.Conv2DTranspose(1, 3, activation="relu")(x)


def test_autoencoder_and_nested_models():
    encoder_input, encoder_output = _encoder("img")
    encoder = keras.Model(encoder_input, encoder_output, name="encoder")
    autoencoder = keras.Model(encoder_input, _decode(encoder_output), name="autoencoder")
    assert tuple(autoencoder.outputs[0].shape) == (None, 28, 28, 1)
    decoder_input = keras.Input(shape=(16,), name="encoded_img")
    decoder = keras.Model(decoder_input, _decode(decoder_input), name="decoder")
    autoencoder_input = keras.Input(shape=(28, 28, 1), name="img")
    decoded = decoder(encoder(autoencoder_input))
    chained = keras.Model(autoencoder_input, decoded, name="autoencoder")
    images = np.random.default_rng(1).random((2, 28, 28, 1)).astype("float32")
    out = chained.predict(images, verbose=0)
    assert out.shape == (2, 28, 28, 1)
    np.testing.assert_allclose(out, decoder.predict(encoder.predict(images, verbose=0),
                                                    verbose=0), atol=1e-5)


def test_ensemble_average():
    def get_model():
        inputs = keras.Input(shape=(128,))
        outputs = layers.Dense(1)(inputs)
        return keras.Model(inputs, outputs)

    members = [get_model() for _ in range(3)]
    inputs = keras.Input(shape=(128,))
    outputs = layers.average([m(inputs) for m in members])
    ensemble_model = keras.Model(inputs=inputs, outputs=outputs)
    x = np.random.default_rng(2).random((4, 128)).astype("float32")
    expected = np.mean([m.predict(x, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(ensemble_model.predict(x, verbose=0), expected, atol=1e-5)


def _ticket_model(num_tags=12, num_words=10000, num_departments=4):
    title_input = keras.Input(shape=(None,), name="title")
    body_input = keras.Input(shape=(None,), name="body")
    tags_input = keras.Input(shape=(num_tags,), name="tags")
    title_features = layers.LSTM(128)(layers.Embedding(num_words, 64)(title_input))
    body_features = layers.LSTM(32)(layers.Embedding(num_words, 64)(body_input))
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(num_departments, name="department")(x)
    return keras.Model(inputs=[title_input, body_input, tags_input],
                       outputs=[priority_pred, department_pred])


def test_multi_input_multi_output_by_name():
    model = _ticket_model()
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss={"priority": keras.losses.BinaryCrossentropy(from_logits=True),
              "department": keras.losses.CategoricalCrossentropy(from_logits=True)},
        loss_weights={"priority": 1.0, "department": 0.2},
    )
    rng = np.random.default_rng(3)
    n = 64
    data = {"title": rng.integers(10000, size=(n, 10)),
            "body": rng.integers(10000, size=(n, 20)),
            "tags": rng.integers(2, size=(n, 12)).astype("float32")}
    targets = {"priority": rng.random(size=(n, 1)),
               "department": rng.integers(2, size=(n, 4))}
    history = model.fit(data, targets, epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_toy_resnet():
    inputs = keras.Input(shape=(32, 32, 3), name="img")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    block_1_output = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_1_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_2_output = layers.add([x, block_1_output])
    x = layers.Conv2D(64, 3, activation="relu")(block_2_output)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    model = keras.Model(inputs, layers.Dense(10)(x), name="toy_resnet")
    rng = np.random.default_rng(4)
    x_train = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8).astype("float32") / 255.0
    y_train = keras.utils.to_categorical(rng.integers(0, 10, (40, 1)), 10)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                  metrics=["acc"])
    history = model.fit(x_train, y_train, batch_size=16, epochs=1,
                        validation_split=0.2, verbose=0)
    assert "val_acc" in history.history


def test_shared_layer_and_feature_extraction():
    shared_embedding = layers.Embedding(1000, 128)
    text_input_a = keras.Input(shape=(None,), dtype="int32")
    text_input_b = keras.Input(shape=(None,), dtype="int32")
    model = keras.Model([text_input_a, text_input_b],
                        [shared_embedding(text_input_a), shared_embedding(text_input_b)])
    tokens = np.arange(6, dtype="int32").reshape(1, 6)
    a, b = model.predict([tokens, tokens], verbose=0)
    np.testing.assert_allclose(a, b)
    base = _mnist_mlp()
    features_list = [layer.output for layer in base.layers]
    feat_extraction_model = keras.Model(inputs=base.input, outputs=features_list)
    feats = feat_extraction_model(np.zeros((1, 784), dtype="float32"))
    assert [tuple(f.shape) for f in feats][-1] == (1, 10)


def test_custom_layer_in_functional_model():
    class CustomDense(layers.Layer):
        def __init__(self, units=32):
            super().__init__()
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                     initializer="random_normal", trainable=True)
            self.b = self.add_weight(shape=(self.units,),
                                     initializer="random_normal", trainable=True)

        def call(self, inputs):
            return keras.ops.matmul(inputs, self.w) + self.b

        def get_config(self):
            return {"units": self.units}

    inputs = keras.Input((4,))
    model = keras.Model(inputs, CustomDense(10)(inputs))
    config = model.get_config()
    new_model = keras.Model.from_config(config, custom_objects={"CustomDense": CustomDense})
    assert tuple(new_model.outputs[0].shape) == (None, 10)


_UNITS, _TIMESTEPS, _INPUT_DIM, _BATCH = 32, 10, 5, 4


def _custom_rnn_class():
    units = _UNITS

    def get_model():
        inputs = keras.Input((None, units))
        x = layers.GlobalAveragePooling1D()(inputs)
        return keras.Model(inputs, layers.Dense(1)(x))

    model = get_model()

    class CustomRNN(layers.Layer):
        def __init__(self):
            super().__init__()
            self.units = units
            self.projection_1 = layers.Dense(units=units, activation="tanh")
            self.projection_2 = layers.Dense(units=units, activation="tanh")
            self.classifier = model

        def call(self, inputs):
            outputs = []
            state = keras.ops.zeros(shape=(inputs.shape[0], self.units))
            for t in range(inputs.shape[1]):
                x = inputs[:, t, :]
                h = self.projection_1(x)
                y = h + self.projection_2(state)
                state = y
                outputs.append(y)
            features = keras.ops.stack(outputs, axis=1)
            return self.classifier(features)

    return CustomRNN


def test_subclassed_layer_called_eagerly():
    rnn_model = _custom_rnn_class()()
    out = rnn_model(keras.ops.zeros((1, _TIMESTEPS, _INPUT_DIM)))
    assert tuple(out.shape) == (1, 1)


def test_subclassed_layer_in_functional_with_fixed_batch():
    inputs = keras.Input(batch_shape=(_BATCH, _TIMESTEPS, _INPUT_DIM))
    x = layers.Conv1D(32, 3)(inputs)
    outputs = _custom_rnn_class()()(x)
    model = keras.Model(inputs, outputs)
    assert tuple(model.outputs[0].shape) == (_BATCH, 1)
