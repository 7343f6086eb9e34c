"""keras.io example "End to End Masked Language Modeling & Fine-Tuning with BERT from Scratch"
(examples/nlp/mlm_and_finetune_with_bert.py, the 2020 draft of masked_language_modeling).

The example's code as written with `import tensorflow as tf; from tensorflow import keras;
from tensorflow.keras import layers; from tensorflow.keras.layers.experimental.preprocessing
import TextVectorization` swapped for kgraph (`TextVectorization` from `kgraph.keras.layers`:
tf.keras 2's experimental path is not in Keras 3): `TextVectorization(standardize=None)` adapted
on a list of reviews, its vocabulary cut and `set_vocabulary` with "[MASK]" last, the mask id
from `vectorize_layer(["[MASK]"]).numpy()`, BERT-style 15% masking in numpy with sample
weights, a `from_tensor_slices((x, y, sample_weight))` dataset, the one-block MLM model
(`MultiHeadAttention(query, value, key)`, a `Sequential` feed-forward without `Input`), fit,
the classifier around the trained model (`GlobalMaxPooling1D`), and the end-to-end model on `keras.Input(shape=(1,),
dtype="string")` (the vectorizer its host prefix) evaluated on a dataset of raw review strings.

`pd.read_csv("IMDb_Reviews.csv")` (a download; pandas is not a dependency) is replaced by the
columns it yields: 48 generated reviews and 0/1 sentiments (the 25,000/25,000 split cut to
32/16). VOCAB_SIZE 20000 -> 200 and MAX_LEN 128 -> 32 (the MLM head is vocab-wide at every
position); epochs 3 and 5 -> 1. Checked: the mask id is the vocabulary's last entry, masked
positions alone carry weight, the end-to-end model on raw strings scores as the classifier on
the encoded strings.

**xfail**: `mlm_model.save("bert_mlm_model.h5")` and its reload. The model adds KerasTensors
with `+` (`embedding_layer + attention_output`): Keras 3 writes such a node as an operation
(`keras.src.ops.numpy.Add`), which a `.keras` file round-trips (tests/test_op_node_configs.py)
but the legacy `.h5` format does not, in Keras 3.15 itself either (its reload raises
"TypeError: too many positional arguments"; kgraph's rebuilds the node as the Add layer and
fails the same way), so the classifier is built on the trained model in memory.
"""

import types

import numpy as np
import pytest


def imdb_reviews(n=48, seed=0):
    """Stand-in for IMDb_Reviews.csv's `review` and `sentiment` columns."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(150)]
    reviews = np.array([" ".join(rng.choice(words, int(rng.integers(20, 45)))) for _ in range(n)],
                       dtype=object)
    column = lambda values: types.SimpleNamespace(values=values)  # noqa: E731
    return types.SimpleNamespace(review=column(reviews),
                                 sentiment=column(rng.integers(0, 2, n).astype("int64")))


def test_mlm_and_finetune_with_bert(tmp_path, monkeypatch):
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers
    from kgraph.keras.layers import TextVectorization
    from dataclasses import dataclass

    monkeypatch.chdir(tmp_path)  # the example saves bert_mlm_model.h5 where it runs
    keras.utils.set_random_seed(0)

    @dataclass
    class Config:
        MAX_LEN = 32  # 128 in the example
        BATCH_SIZE = 16
        LR = 1e-5
        VOCAB_SIZE = 200  # 20000
        EMBED_DIM = 32
        NUM_HEAD = 2  # used in bert model
        FF_DIM = 32  # used in bert model

    flags = Config()

    data = imdb_reviews()  # pd.read_csv("IMDb_Reviews.csv")

    def get_vectorize_layer(texts, vocab_size, max_seq, special_tokens=["[MASK]"]):
        vectorize_layer = TextVectorization(
            max_tokens=vocab_size,
            output_mode="int",
            standardize=None,
            output_sequence_length=max_seq,
        )
        vectorize_layer.adapt(texts)
        vocab = vectorize_layer.get_vocabulary()
        vocab = vocab[2 : vocab_size - len(special_tokens)] + ["[MASK]"]
        vectorize_layer.set_vocabulary(vocab)
        return vectorize_layer

    vectorize_layer = get_vectorize_layer(
        data.review.values.tolist(),
        flags.VOCAB_SIZE,
        flags.MAX_LEN,
        special_tokens=["[MASK]"],
    )

    mask_token_id = vectorize_layer(["[MASK]"]).numpy()[0][0]
    assert mask_token_id == len(vectorize_layer.get_vocabulary()) - 1

    def encode(texts):
        encoded_texts = vectorize_layer(texts)
        return encoded_texts.numpy()

    def get_masked_input_and_labels(encoded_texts):
        inp_mask = np.random.rand(*encoded_texts.shape) < 0.15
        inp_mask[encoded_texts <= 2] = False
        labels = -1 * np.ones(encoded_texts.shape, dtype=int)
        labels[inp_mask] = encoded_texts[inp_mask]
        encoded_texts_masked = np.copy(encoded_texts)
        inp_mask_2mask = inp_mask & (np.random.rand(*encoded_texts.shape) < 0.90)
        encoded_texts_masked[inp_mask_2mask] = mask_token_id
        inp_mask_2random = inp_mask_2mask & (np.random.rand(*encoded_texts.shape) < 1 / 9)
        encoded_texts_masked[inp_mask_2random] = np.random.randint(
            3, mask_token_id, inp_mask_2random.sum()
        )
        sample_weights = np.ones(labels.shape)
        sample_weights[labels == -1] = 0
        y_labels = np.copy(encoded_texts)
        return encoded_texts_masked, y_labels, sample_weights

    x_train = encode(data.review.values[0:32])  # [0:25000] in the example
    y_train = data.sentiment.values[0:32]
    assert x_train.shape == (32, flags.MAX_LEN)

    train_classifier_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    train_classifier_ds = train_classifier_ds.shuffle(1000).batch(flags.BATCH_SIZE)

    x_eval = data.review.values[32:]  # [25000:]
    y_eval = data.sentiment.values[32:]

    eval_classifier_ds = tf.data.Dataset.from_tensor_slices((x_eval, y_eval))
    eval_classifier_ds = eval_classifier_ds.shuffle(1000).batch(flags.BATCH_SIZE)

    x_masked_train, y_masked_labels, sample_weights = get_masked_input_and_labels(x_train)
    unweighted = sample_weights == 0
    assert (x_masked_train[unweighted] == x_train[unweighted]).all()  # only weighted ones change
    assert (y_masked_labels == x_train).all() and 0 < sample_weights.mean() < 0.3
    assert (sample_weights[x_train <= 2] == 0).all()  # padding and [UNK] are never masked

    mlm_ds = tf.data.Dataset.from_tensor_slices(
        (x_masked_train, y_masked_labels, sample_weights)
    )
    mlm_ds = mlm_ds.shuffle(1000).batch(flags.BATCH_SIZE)

    def create_masked_language_bert_model():
        inputs = layers.Input((flags.MAX_LEN,), dtype=tf.int64)
        embedding_layer = layers.Embedding(flags.VOCAB_SIZE, flags.EMBED_DIM)(inputs)
        query = layers.Dense(flags.EMBED_DIM)(embedding_layer)
        value = layers.Dense(flags.EMBED_DIM)(embedding_layer)
        key = layers.Dense(flags.EMBED_DIM)(embedding_layer)
        attention_output = layers.MultiHeadAttention(
            num_heads=flags.NUM_HEAD, key_dim=flags.EMBED_DIM // flags.NUM_HEAD
        )(query, value, key)
        attention_output = layers.Dropout(0.1)(attention_output)
        attention_output = layers.LayerNormalization(epsilon=1e-6)(
            embedding_layer + attention_output
        )
        ffn = keras.Sequential(
            [layers.Dense(flags.FF_DIM, activation="relu"), layers.Dense(flags.EMBED_DIM),]
        )
        ffn_output = ffn(attention_output)
        ffn_output = layers.Dropout(0.1)(ffn_output)
        sequence_output = layers.LayerNormalization(epsilon=1e-6)(
            attention_output + ffn_output
        )
        outputs = layers.Dense(flags.VOCAB_SIZE)(sequence_output)
        mlm_model = keras.Model(inputs, outputs, name="mlm_model")
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        optimizer = keras.optimizers.Adam(learning_rate=flags.LR)
        mlm_model.compile(optimizer=optimizer, loss=loss_fn)
        return mlm_model

    mlm_model = create_masked_language_bert_model()
    mlm_model.summary()

    history = mlm_model.fit(mlm_ds, epochs=1)  # 3 in the example
    assert np.isfinite(history.history["loss"][0])
    # mlm_model.save("bert_mlm_model.h5") and keras.models.load_model("bert_mlm_model.h5"):
    # not yet (xfail below); the classifier takes the trained model itself
    pretrained_bert_model = mlm_model

    def create_classifier_bert_model():
        inputs = layers.Input((flags.MAX_LEN,), dtype=tf.int64)
        sequence_output = pretrained_bert_model(inputs)
        pooled_output = layers.GlobalMaxPooling1D()(sequence_output)
        outputs = layers.Dense(1, activation="sigmoid")(pooled_output)
        classifer_model = keras.Model(inputs, outputs, name="classification")
        optimizer = keras.optimizers.Adam(learning_rate=flags.LR)
        classifer_model.compile(
            optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"]
        )
        return classifer_model

    classifer_model = create_classifier_bert_model()
    classifer_model.summary()

    classifer_model.fit(train_classifier_ds, epochs=1)  # 5 in the example

    def get_end_to_end(model):
        inputs_string = keras.Input(shape=(1,), dtype="string")
        indices = vectorize_layer(inputs_string)
        outputs = model(indices)
        end_to_end_model = keras.Model(inputs_string, outputs, name="end_to_end_model")
        optimizer = keras.optimizers.Adam(learning_rate=flags.LR)
        end_to_end_model.compile(
            optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"]
        )
        return end_to_end_model

    end_to_end_classification_model = get_end_to_end(classifer_model)
    loss, accuracy = end_to_end_classification_model.evaluate(eval_classifier_ds)
    want_loss, want_accuracy = classifer_model.evaluate(encode(x_eval), y_eval, verbose=0)
    np.testing.assert_allclose([loss, accuracy], [want_loss, want_accuracy], rtol=1e-4)


@pytest.mark.xfail(strict=True, reason="an op node (KerasTensor arithmetic) in a legacy .h5 "
                   "file does not reload, in Keras 3.15 either; .keras files round-trip")
def test_saving_a_model_that_adds_keras_tensors_as_the_example_does(tmp_path):
    from kgraph import keras
    from kgraph.keras import layers

    inputs = layers.Input((8,), dtype="int64")
    embedding_layer = layers.Embedding(20, 4)(inputs)
    attention_output = layers.Dense(4)(embedding_layer)
    outputs = layers.LayerNormalization(epsilon=1e-6)(embedding_layer + attention_output)
    model = keras.Model(inputs, outputs, name="mlm_model")
    model.save(tmp_path / "bert_mlm_model.h5")
    reloaded = keras.models.load_model(tmp_path / "bert_mlm_model.h5")
    x = np.arange(16).reshape(2, 8) % 20
    np.testing.assert_allclose(reloaded.predict(x), model.predict(x), rtol=1e-5)
