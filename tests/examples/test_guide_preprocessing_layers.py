"""keras.io guide "Working with preprocessing layers" (guides/preprocessing_layers.py, the
TensorFlow-era guide).

Each test walks one section of the guide with its code as written; `import tensorflow as tf;
from tensorflow import keras; from tensorflow.keras import layers` are kgraph's, CIFAR-10 is
random arrays of its shapes (tests/examples/example_datasets.py: 48 images). Two spellings
changed: the TF-IDF section's `output_mode="tf-idf"` (TensorFlow 2.5's spelling) is Keras 3's
`"tf_idf"` (Keras 3 refuses the old one, as kgraph does), and the augmentation recipe's
`ResNet50(weights=None, input_shape=(32, 32, 3), classes=10)` trained for `steps_per_epoch=5`
runs 1 step. Checked: adapted statistics, lookup encodings against the expected one-hot rows,
each end-to-end string model against its inner model on the vectorized text.

The hashing-trick recipe's `layers.Hashing(num_bins=64, salt=1337)` is SipHash keyed by
the salt, as TensorFlow's `to_hash_bucket_strong` (checked against TensorFlow in
tests/test_preprocessing_layers.py).
"""

import numpy as np
import pytest

from example_datasets import cifar10_load_data


def test_the_adapt_method():
    import kgraph as tf
    from kgraph.keras import layers

    data = np.array(
        [
            [0.1, 0.2, 0.3],
            [0.8, 0.9, 1.0],
            [1.5, 1.6, 1.7],
        ]
    )
    layer = layers.Normalization()
    layer.adapt(data)
    normalized_data = layer(data)
    print("Features mean: %.2f" % (normalized_data.numpy().mean()))
    print("Features std: %.2f" % (normalized_data.numpy().std()))
    np.testing.assert_allclose(normalized_data.numpy().mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(normalized_data.numpy().std(0), 1, atol=1e-3)

    data = [
        "ξεῖν᾽, ἦ τοι μὲν ὄνειροι ἀμήχανοι ἀκριτόμυθοι",
        "γίγνοντ᾽, οὐδέ τι πάντα τελείεται ἀνθρώποισι.",
        "δοιαὶ γάρ τε πύλαι ἀμενηνῶν εἰσὶν ὀνείρων:",
        "αἱ μὲν γὰρ κεράεσσι τετεύχαται, αἱ δ᾽ ἐλέφαντι:",
        "τῶν οἳ μέν κ᾽ ἔλθωσι διὰ πριστοῦ ἐλέφαντος,",
        "οἵ ῥ᾽ ἐλεφαίρονται, ἔπε᾽ ἀκράαντα φέροντες:",
        "οἱ δὲ διὰ ξεστῶν κεράων ἔλθωσι θύραζε,",
        "οἵ ῥ᾽ ἔτυμα κραίνουσι, βροτῶν ὅτε κέν τις ἴδηται.",
    ]
    layer = layers.TextVectorization()
    layer.adapt(data)
    vectorized_text = layer(data)
    print(vectorized_text)
    assert np.asarray(vectorized_text).shape[0] == 8 and np.asarray(vectorized_text).min() >= 0

    vocab = ["a", "b", "c", "d"]
    data = tf.constant([["a", "c", "d"], ["d", "z", "b"]])
    layer = layers.StringLookup(vocabulary=vocab)
    vectorized_data = layer(data)
    print(vectorized_data)
    np.testing.assert_array_equal(vectorized_data, [[1, 3, 4], [4, 0, 2]])


@pytest.mark.slow  # ~3-4 s: ResNet50's training step is compiled for the one step
def test_image_data_augmentation_recipe():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    keras.utils.set_random_seed(0)
    data_augmentation = keras.Sequential(
        [
            layers.RandomFlip("horizontal"),
            layers.RandomRotation(0.1),
            layers.RandomZoom(0.1),
        ]
    )
    (x_train, y_train), _ = cifar10_load_data(n_train=48, n_test=8)
    input_shape = x_train.shape[1:]
    classes = 10

    train_dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    train_dataset = train_dataset.batch(16).map(lambda x, y: (data_augmentation(x), y))
    images, labels = next(iter(train_dataset))
    assert np.asarray(images).shape == (16, 32, 32, 3) and np.asarray(labels).shape == (16, 1)

    inputs = keras.Input(shape=input_shape)
    x = layers.Rescaling(1.0 / 255)(inputs)  # Rescale inputs
    outputs = keras.applications.ResNet50(  # Add the rest of the model
        weights=None, input_shape=input_shape, classes=classes
    )(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    assert model.count_params() == 23_608_202  # ResNet50 with a 10-class top, as Keras counts
    history = model.fit(train_dataset, steps_per_epoch=1)  # 5 in the guide
    assert np.isfinite(history.history["loss"][0])


def test_normalizing_numerical_features():
    from kgraph import keras
    from kgraph.keras import layers

    (x_train, y_train), _ = cifar10_load_data(n_train=48, n_test=8)
    x_train = x_train.reshape((len(x_train), -1))
    input_shape = x_train.shape[1:]
    classes = 10

    normalizer = layers.Normalization()
    normalizer.adapt(x_train)
    np.testing.assert_allclose(np.asarray(normalizer.mean).reshape(-1), x_train.mean(0),
                               rtol=1e-4)

    inputs = keras.Input(shape=input_shape)
    x = normalizer(inputs)
    outputs = layers.Dense(classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x_train, y_train)
    assert np.isfinite(history.history["loss"][0])


def test_encoding_categorical_features():
    import kgraph as tf
    from kgraph.keras import layers

    data = tf.constant([["a"], ["b"], ["c"], ["b"], ["c"], ["a"]])
    lookup = layers.StringLookup(output_mode="one_hot")
    lookup.adapt(data)
    test_data = tf.constant([["a"], ["b"], ["c"], ["d"], ["e"], [""]])
    encoded_data = lookup(test_data)
    print(encoded_data)
    vocab = lookup.get_vocabulary()  # "[UNK]" first, then by frequency
    want = np.eye(4)[[vocab.index(t) if t in vocab else 0 for t in "abcde"] + [0]]
    np.testing.assert_array_equal(encoded_data, want)

    data = tf.constant([[10], [20], [20], [10], [30], [0]])
    lookup = layers.IntegerLookup(output_mode="one_hot")
    lookup.adapt(data)
    test_data = tf.constant([[10], [10], [20], [50], [60], [0]])
    encoded_data = lookup(test_data)
    print(encoded_data)
    vocab = lookup.get_vocabulary()
    index = [vocab.index(v) if v in vocab else vocab.index(-1) for v in [10, 10, 20, 50, 60, 0]]
    np.testing.assert_array_equal(encoded_data, np.eye(len(vocab))[index])

def test_hashing_trick_on_an_integer_feature():
    from kgraph.keras import layers

    data = np.random.randint(0, 100000, size=(10000, 1))
    hasher = layers.Hashing(num_bins=64, salt=1337)
    encoder = layers.CategoryEncoding(num_tokens=64, output_mode="multi_hot")
    encoded_data = encoder(hasher(data))
    print(encoded_data.shape)
    assert encoded_data.shape == (10000, 64)
    np.testing.assert_array_equal(np.asarray(encoded_data).sum(1), 1)


def _text_recipe(output_mode, ngrams=None, tokens_model=False):
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    keras.utils.set_random_seed(0)
    adapt_data = tf.constant(
        [
            "The Brain is wider than the Sky",
            "For put them side by side",
            "The one the other will contain",
            "With ease and You beside",
        ]
    )
    text_vectorizer = layers.TextVectorization(output_mode=output_mode, ngrams=ngrams)
    text_vectorizer.adapt(adapt_data)
    print(
        "Encoded text:\n",
        text_vectorizer(["The Brain is deeper than the sea"]).numpy(),
    )
    if tokens_model:
        inputs = keras.Input(shape=(None,), dtype="int64")
        x = layers.Embedding(input_dim=text_vectorizer.vocabulary_size(), output_dim=16)(inputs)
        x = layers.GRU(8)(x)
        outputs = layers.Dense(1)(x)
    else:
        inputs = keras.Input(shape=(text_vectorizer.vocabulary_size(),))
        outputs = layers.Dense(1)(inputs)
    model = keras.Model(inputs, outputs)

    train_dataset = tf.data.Dataset.from_tensor_slices(
        (["The Brain is deeper than the sea", "for if they are held Blue to Blue"], [1, 0])
    )
    train_dataset = train_dataset.batch(2).map(lambda x, y: (text_vectorizer(x), y))
    print("\nTraining model...")
    model.compile(optimizer="rmsprop", loss="mse")
    model.fit(train_dataset)

    inputs = keras.Input(shape=(1,), dtype="string")
    x = text_vectorizer(inputs)
    outputs = model(x)
    end_to_end_model = keras.Model(inputs, outputs)

    print("\nCalling end-to-end model on test string...")
    test_data = tf.constant(["The one the other will absorb"])
    test_output = end_to_end_model(test_data)
    print("Model output:", test_output)
    np.testing.assert_allclose(test_output, model(text_vectorizer(test_data)), rtol=1e-5)
    return text_vectorizer


def test_encoding_text_as_token_indices():
    vectorizer = _text_recipe("int", tokens_model=True)
    encoded = vectorizer(["The Brain is deeper than the sea"]).numpy()
    vocab = vectorizer.get_vocabulary()
    assert [vocab[i] for i in encoded[0]] == ["the", "brain", "is", "[UNK]", "than", "the",
                                              "[UNK]"]


def test_encoding_text_as_multi_hot_ngrams():
    vectorizer = _text_recipe("multi_hot", ngrams=2)
    row = vectorizer(["The Brain is deeper than the sea"]).numpy()[0]
    vocab = vectorizer.get_vocabulary()
    assert {vocab[i] for i in np.flatnonzero(row)} == {"[UNK]", "the", "brain", "is", "than",
                                                       "the brain", "brain is", "than the"}


def test_encoding_text_as_tf_idf_ngrams():
    vectorizer = _text_recipe("tf_idf", ngrams=2)  # "tf-idf" in the guide (TensorFlow 2.5)
    row = vectorizer(["The Brain is deeper than the sea"]).numpy()[0]
    assert (row >= 0).all() and row[vectorizer.get_vocabulary().index("the")] > 0
