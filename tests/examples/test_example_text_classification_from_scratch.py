"""keras.io example "Text classification from scratch"
(examples/nlp/text_classification_from_scratch.py).

The Keras 3 code with only the imports changed, the aclImdb download
replaced by a generated directory of its layout (`train/{neg,pos}`,
`test/{neg,pos}`, one review per .txt file, with `<br />` tags; 48 train,
16 test reviews), `sequence_length` 500 cut to 60 and epochs from 3 to 1.

The example's `custom_standardization` (`tf.strings.lower` and
`tf.strings.regex_replace`, kgraph/strings.py) runs as written: its vocabulary has no "br"
left of the `<br />` tags; the other tests use TextVectorization's built-in
"lower_and_strip_punctuation" standardization (the same minus `<br />`), and
the example's `tf.expand_dims` in `vectorize_text` is spelled
`keras.ops.expand_dims` (kgraph's top level has no TensorFlow ops). The end-to-end model on
a string `keras.Input` runs: its `vectorize_layer` is the model's host prefix (numpy, per
batch) and the trained model its compiled part; checked against the model on the vectorized
batch.
"""

import numpy as np

WORDS = "good bad great awful movie film plot actor boring fun".split()


def _write_aclimdb(root, n_train=48, n_test=16, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        for label in ("neg", "pos"):
            folder = root / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for i in range(n // 2):
                words = rng.choice(WORDS, int(rng.integers(5, 40)))
                text = " ".join(words).capitalize() + ".<br /><br />The end!"
                (folder / f"{i}_7.txt").write_text(text, encoding="utf-8")


def _run_example(standardize):
    from kgraph import keras
    from kgraph.keras import layers, ops

    batch_size = 32
    raw_train_ds = keras.utils.text_dataset_from_directory(
        "aclImdb/train",
        batch_size=batch_size,
        validation_split=0.2,
        subset="training",
        seed=1337,
    )
    raw_val_ds = keras.utils.text_dataset_from_directory(
        "aclImdb/train",
        batch_size=batch_size,
        validation_split=0.2,
        subset="validation",
        seed=1337,
    )
    raw_test_ds = keras.utils.text_dataset_from_directory(
        "aclImdb/test", batch_size=batch_size
    )

    print(f"Number of batches in raw_train_ds: {raw_train_ds.cardinality()}")
    print(f"Number of batches in raw_val_ds: {raw_val_ds.cardinality()}")
    print(f"Number of batches in raw_test_ds: {raw_test_ds.cardinality()}")

    # Model constants.
    max_features = 20000
    embedding_dim = 128
    sequence_length = 60

    vectorize_layer = keras.layers.TextVectorization(
        standardize=standardize,
        max_tokens=max_features,
        output_mode="int",
        output_sequence_length=sequence_length,
    )

    # Let's make a text-only dataset (no labels):
    text_ds = raw_train_ds.map(lambda x, y: x)
    # Let's call `adapt`:
    vectorize_layer.adapt(text_ds)

    def vectorize_text(text, label):
        text = ops.expand_dims(text, -1)
        return vectorize_layer(text), label

    # Vectorize the data.
    train_ds = raw_train_ds.map(vectorize_text)
    val_ds = raw_val_ds.map(vectorize_text)
    test_ds = raw_test_ds.map(vectorize_text)

    # Do async prefetching / buffering of the data for best performance on GPU.
    train_ds = train_ds.cache().prefetch(buffer_size=10)
    val_ds = val_ds.cache().prefetch(buffer_size=10)
    test_ds = test_ds.cache().prefetch(buffer_size=10)

    # A integer input for vocab indices.
    inputs = keras.Input(shape=(None,), dtype="int64")
    x = layers.Embedding(max_features, embedding_dim)(inputs)
    x = layers.Dropout(0.5)(x)
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    predictions = layers.Dense(1, activation="sigmoid", name="predictions")(x)
    model = keras.Model(inputs, predictions)
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])

    epochs = 1
    model.fit(train_ds, validation_data=val_ds, epochs=epochs)

    result = model.evaluate(test_ds)
    return vectorize_layer, model, raw_test_ds, result


def _end_to_end(vectorize_layer, model, raw_test_ds):
    from kgraph import keras

    # A string input
    inputs = keras.Input(shape=(1,), dtype="string")
    # Turn strings into vocab indices
    indices = vectorize_layer(inputs)
    # Turn vocab indices into predictions
    outputs = model(indices)

    # Our end to end model
    end_to_end_model = keras.Model(inputs, outputs)
    end_to_end_model.compile(
        loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"]
    )
    # Test it with `raw_test_ds`, which yields raw strings
    return end_to_end_model, end_to_end_model.evaluate(raw_test_ds)


def test_text_classification_from_scratch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_aclimdb(tmp_path)
    vectorize_layer, _, _, result = _run_example("lower_and_strip_punctuation")
    vocab = vectorize_layer.get_vocabulary()
    assert vocab[:2] == ["", "[UNK]"] and set(WORDS) <= set(vocab)
    assert np.isfinite(result[0]) and 0.0 <= result[1] <= 1.0


def test_text_classification_end_to_end_string_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_aclimdb(tmp_path)
    vectorize_layer, model, raw_test_ds, _ = _run_example("lower_and_strip_punctuation")
    end_to_end_model, result = _end_to_end(vectorize_layer, model, raw_test_ds)
    assert np.isfinite(result[0]) and 0.0 <= result[1] <= 1.0
    texts, _ = next(iter(raw_test_ds))
    expected = model.predict(vectorize_layer(texts).numpy(), verbose=0)
    np.testing.assert_allclose(end_to_end_model.predict(texts, verbose=0), expected, atol=1e-6)


def test_text_classification_custom_standardization(tmp_path, monkeypatch):
    import re
    import string

    import kgraph as tf

    monkeypatch.chdir(tmp_path)
    _write_aclimdb(tmp_path)

    def custom_standardization(input_data):
        lowercase = tf.strings.lower(input_data)
        stripped_html = tf.strings.regex_replace(lowercase, "<br />", " ")
        return tf.strings.regex_replace(
            stripped_html, f"[{re.escape(string.punctuation)}]", ""
        )

    vectorize_layer, _, _, result = _run_example(custom_standardization)
    vocab = vectorize_layer.get_vocabulary()
    assert set(WORDS) <= set(vocab) and "br" not in vocab
    assert np.isfinite(result[0])
