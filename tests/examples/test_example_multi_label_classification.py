"""keras.io example "Large-scale multi-label text classification"
(examples/nlp/multi_label_classification.py).

The example's code as written (its stored text, the TensorFlow-era one: last modified
2020/12/23) with `from tensorflow.keras import layers; from tensorflow import keras; import
tensorflow as tf` swapped for kgraph, from the labels on: `StringLookup(output_mode=
"multi_hot")` adapted on the lists of subject terms, `invert_multi_hot`, `lookup([label])`,
`make_dataset` (`lookup(labels).numpy()`, `tf.data.Dataset.from_tensor_slices` of abstracts
(strings) and multi-hot labels, `shuffle`, `batch`), the dataset preview, a
`TextVectorization(max_tokens=vocabulary_size, ngrams=2, output_mode="tf_idf")` adapted under
`tf.device("/CPU:0")` on `train_dataset.map(lambda text, label: text)` and mapped over the
datasets (`num_parallel_calls=auto`, `prefetch`), the shallow MLP with binary cross-entropy,
fit, evaluate, and the top-3 labels of each prediction.

Replaced, as not kgraph's: the arXiv CSV download and its pandas exploration/cleaning
(deduplicated titles, rare term combinations dropped, `literal_eval`) and sklearn's stratified
`train_test_split` are plain Python over generated rows (random abstracts from a small word
list, term lists from a few combinations), giving frames with the columns the example reads
(`Frame`: `df["terms"].values`, `.iloc`, `len`, `sample`); `tf.ragged.constant(...)`
(TensorFlow's ragged tensors) is left out: the lookup takes the column of term lists itself.
Sizes cut: 240 rows, batch_size 128 -> 32, epochs 20 -> 2. Plots are left out.

The example's end-to-end inference model, `keras.Sequential([text_vectorizer,
shallow_mlp_model])`, predicts on raw strings: kgraph graphs carry no string tensors, so the
leading TextVectorization runs on the host on the data `predict` is given and the compiled
graph starts after it.
"""

import collections
from ast import literal_eval

import numpy as np

WORDS = ("graph neural network image learning model deep data training loss robust "
         "attention transformer convolution segmentation detection language policy "
         "reinforcement agent kernel bayesian inference sparse optimization gradient").split()
TERMS = ["['cs.LG', 'stat.ML']", "['cs.CV']", "['cs.CV', 'cs.LG']", "['cs.CL', 'cs.LG']",
         "['cs.LG']", "['cs.RO', 'cs.AI', 'cs.LG']", "['stat.ML']", "['eess.IV', 'cs.CV']"]


class Frame:
    """The few DataFrame accessors the example uses after its pandas preparation."""

    class Column(np.ndarray):
        values = property(lambda self: np.asarray(self))
        iloc = property(lambda self: np.asarray(self))

    def __init__(self, columns, rng):
        self.columns, self.rng = columns, rng

    def __getitem__(self, name):
        return self.columns[name].view(Frame.Column)

    def __len__(self):
        return len(self.columns["terms"])

    def sample(self, n):
        rows = self.rng.permutation(len(self))[:min(n, len(self))]
        return Frame({k: v[rows] for k, v in self.columns.items()}, self.rng)


def arxiv_frames(num_rows=240, seed=0):
    """Generated arXiv rows, cleaned and split as the example's pandas/sklearn code does."""
    rng = np.random.default_rng(seed)
    rows = [(f"title {rng.integers(0, num_rows * 9 // 10)}",
             " ".join(rng.choice(WORDS, rng.integers(12, 30))),
             TERMS[rng.integers(0, len(TERMS))] if i else "['math.OC']")
            for i in range(num_rows)]
    seen, unique = set(), []  # arxiv_data[~arxiv_data["titles"].duplicated()]
    for title, summary, terms in rows:
        if title not in seen:
            seen.add(title)
            unique.append((summary, terms))
    counts = collections.Counter(terms for _, terms in unique)  # groupby(...).filter(len > 1)
    kept = [(summary, literal_eval(terms)) for summary, terms in unique if counts[terms] > 1]
    test_rows = []  # train_test_split(test_size=0.1, stratify=terms)
    for group in sorted({str(t) for _, t in kept}):
        members = [i for i, (_, t) in enumerate(kept) if str(t) == group]
        test_rows += list(rng.permutation(members)[:max(1, round(0.1 * len(members)))])
    test_rows = rng.permutation(test_rows)
    split = {"train": [i for i in range(len(kept)) if i not in set(test_rows)],
             "val": test_rows[: len(test_rows) // 2], "test": test_rows[len(test_rows) // 2:]}

    def frame(indices):
        terms = np.empty(len(indices), dtype=object)
        terms[:] = [kept[i][1] for i in indices]
        return Frame({"summaries": np.array([kept[i][0] for i in indices], dtype=object),
                      "terms": terms}, rng)

    return frame(split["train"]), frame(split["val"]), frame(split["test"])


def _prepare():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    keras.utils.set_random_seed(0)
    train_df, val_df, test_df = arxiv_frames()
    print(f"Number of rows in training set: {len(train_df)}")
    print(f"Number of rows in validation set: {len(val_df)}")
    print(f"Number of rows in test set: {len(test_df)}")

    terms = train_df["terms"].values
    lookup = tf.keras.layers.StringLookup(output_mode="multi_hot")
    lookup.adapt(terms)
    vocab = lookup.get_vocabulary()

    def invert_multi_hot(encoded_labels):
        """Reverse a single multi-hot encoded label to a tuple of vocab terms."""
        hot_indices = np.argwhere(encoded_labels == 1.0)[..., 0]
        return np.take(vocab, hot_indices)

    print("Vocabulary:\n")
    print(vocab)

    sample_label = train_df["terms"].iloc[0]
    print(f"Original label: {sample_label}")

    label_binarized = lookup([sample_label])
    print(f"Label-binarized representation: {label_binarized}")
    assert sorted(invert_multi_hot(label_binarized[0])) == sorted(sample_label)

    max_seqlen = 150
    batch_size = 32
    padding_token = "<pad>"
    auto = tf.data.AUTOTUNE

    def make_dataset(dataframe, is_train=True):
        labels = dataframe["terms"].values
        label_binarized = lookup(labels).numpy()
        dataset = tf.data.Dataset.from_tensor_slices(
            (dataframe["summaries"].values, label_binarized)
        )
        dataset = dataset.shuffle(batch_size * 10) if is_train else dataset
        return dataset.batch(batch_size)

    train_dataset = make_dataset(train_df, is_train=True)
    validation_dataset = make_dataset(val_df, is_train=False)
    test_dataset = make_dataset(test_df, is_train=False)

    text_batch, label_batch = next(iter(train_dataset))

    for i, text in enumerate(text_batch[:5]):
        label = label_batch[i].numpy()[None, ...]
        print(f"Abstract: {text}")
        print(f"Label(s): {invert_multi_hot(label[0])}")
        print(" ")

    # Source: https://stackoverflow.com/a/18937309/7636462
    vocabulary = set()
    for summary in train_df["summaries"].values:  # .str.lower().str.split().apply(update)
        vocabulary.update(summary.lower().split())
    vocabulary_size = len(vocabulary)
    print(vocabulary_size)

    text_vectorizer = layers.TextVectorization(
        max_tokens=vocabulary_size, ngrams=2, output_mode="tf_idf"
    )

    # `TextVectorization` layer needs to be adapted as per the vocabulary from our
    # training set.
    with tf.device("/CPU:0"):
        text_vectorizer.adapt(train_dataset.map(lambda text, label: text))

    train_dataset = train_dataset.map(
        lambda text, label: (text_vectorizer(text), label), num_parallel_calls=auto
    ).prefetch(auto)
    validation_dataset = validation_dataset.map(
        lambda text, label: (text_vectorizer(text), label), num_parallel_calls=auto
    ).prefetch(auto)
    test_dataset = test_dataset.map(
        lambda text, label: (text_vectorizer(text), label), num_parallel_calls=auto
    ).prefetch(auto)

    def make_model():
        shallow_mlp_model = keras.Sequential(
            [
                layers.Dense(512, activation="relu"),
                layers.Dense(256, activation="relu"),
                layers.Dense(lookup.vocabulary_size(), activation="sigmoid"),
            ]  # More on why "sigmoid" has been used here in a moment.
        )
        return shallow_mlp_model

    epochs = 2

    shallow_mlp_model = make_model()
    shallow_mlp_model.compile(
        loss="binary_crossentropy", optimizer="adam", metrics=["binary_accuracy"]
    )

    history = shallow_mlp_model.fit(
        train_dataset, validation_data=validation_dataset, epochs=epochs
    )

    _, binary_acc = shallow_mlp_model.evaluate(test_dataset)
    print(f"Categorical accuracy on the test set: {round(binary_acc * 100, 2)}%.")
    return locals()


def test_multi_label_classification():
    from kgraph.keras import layers

    env = _prepare()
    lookup, vocab, history = env["lookup"], env["vocab"], env["history"]
    # 8 term combinations over 7 subjects (the one-off "math.OC" row was filtered out)
    assert vocab[0] == "[UNK]" and len(vocab) == 8 and "math.OC" not in vocab
    assert set(history.history) == {"loss", "binary_accuracy", "val_loss",
                                    "val_binary_accuracy"}
    assert 0.0 <= env["binary_acc"] <= 1.0
    # the tf-idf vectors the model trained on: the vectorizer's idf times the bigram counts
    text_vectorizer, train_df = env["text_vectorizer"], env["train_df"]
    text = train_df["summaries"].values[:1]
    vector = text_vectorizer(text)
    tokens = text[0].lower().split()
    bigrams = tokens + [" ".join(pair) for pair in zip(tokens, tokens[1:])]
    vocabulary = text_vectorizer.get_vocabulary()
    idf = text_vectorizer._lookup_layer.idf_weights
    expected = np.zeros(len(vocabulary), np.float32)
    for gram in bigrams:
        index = vocabulary.index(gram) if gram in vocabulary else 1
        expected[index] += idf[index]
    assert vector.shape == (1, env["vocabulary_size"])
    np.testing.assert_allclose(vector[0], expected, rtol=1e-6)
    # the multi-hot labels of a batch decode back to the rows' term lists
    labels = lookup(train_df["terms"].values[:4]).numpy()
    for row, terms in zip(labels, train_df["terms"].values[:4]):
        assert sorted(env["invert_multi_hot"](row)) == sorted(terms)
    assert isinstance(text_vectorizer, layers.TextVectorization)


def test_multi_label_classification_inference_model_on_raw_strings():
    from kgraph import keras

    env = _prepare()
    text_vectorizer, shallow_mlp_model = env["text_vectorizer"], env["shallow_mlp_model"]
    make_dataset, test_df, lookup = env["make_dataset"], env["test_df"], env["lookup"]
    invert_multi_hot = env["invert_multi_hot"]

    # Create a model for inference.
    model_for_inference = keras.Sequential([text_vectorizer, shallow_mlp_model])

    # Create a small dataset just for demoing inference.
    inference_dataset = make_dataset(test_df.sample(100), is_train=False)
    text_batch, label_batch = next(iter(inference_dataset))
    predicted_probabilities = model_for_inference.predict(text_batch)

    # Perform inference.
    for i, text in enumerate(text_batch[:5]):
        label = label_batch[i].numpy()[None, ...]
        print(f"Abstract: {text}")
        print(f"Label(s): {invert_multi_hot(label[0])}")
        predicted_proba = [proba for proba in predicted_probabilities[i]]
        top_3_labels = [
            x
            for _, x in sorted(
                zip(predicted_probabilities[i], lookup.get_vocabulary()),
                key=lambda pair: pair[0],
                reverse=True,
            )
        ][:3]
        print(f"Predicted Label(s): ({', '.join([label for label in top_3_labels])})")
        print(" ")
        assert len(predicted_proba) == len(lookup.get_vocabulary()) and len(top_3_labels) == 3
    # the strings are vectorized on the host, then the trained MLP runs
    np.testing.assert_allclose(
        predicted_probabilities,
        shallow_mlp_model.predict(text_vectorizer(text_batch), verbose=0), rtol=1e-6)
