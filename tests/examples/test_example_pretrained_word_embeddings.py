"""keras.io example "Using pre-trained word embeddings"
(examples/nlp/pretrained_word_embeddings.py).

The Keras 3 code as written with `import tensorflow.data as tf_data; import keras; from
keras import layers` swapped for kgraph: the header-stripping reader of the newsgroup
directories, the seeded shuffles and the validation split, `TextVectorization(max_tokens=
20000, output_sequence_length=200)` adapted on a batched `tf_data.Dataset` of the texts and
called on a nested list and on `(N, 1)` string arrays (`.numpy()`), the GloVe text file read
with `np.fromstring(coefs, "f", sep=" ")` into the embedding matrix, a frozen `Embedding`
built with `build((1,))` and given it by `set_weights`, the Conv1D/MaxPooling1D/
GlobalMaxPooling1D classifier on `Input(shape=(None,), dtype="int32")`, `model.summary()`,
fit with `metrics=["acc"]` and validation data.

Replaced: the news20 download (`keras.utils.get_file(..., untar=True)`) by generated
`20_newsgroup/<class>/<id>` files (20 classes, 4 messages each: 10 header lines and a body of
words), and the 822 MB GloVe zip by a generated `glove.6B.100d.txt` holding 100-d vectors of
part of the vocabulary (hits and misses). epochs 20 -> 1.
The end-to-end model on `keras.Input(shape=(1,), dtype="string")` runs: the vectorizer is its
host prefix (numpy, per call) and the classifier its compiled part; checked against the
classifier on the vectorized text.
"""
import os
import pathlib

import numpy as np

_WORDS = ("the of and to a in is that for it graphics space hockey car bike god windows mac "
          "driver image orbit team game engine ride faith file disk nasa puck model render "
          "launch goal speed helmet church dos apple card video moon score brake").split()
_CLASSES = ["alt.atheism", "comp.graphics", "comp.os.ms-windows.misc", "comp.sys.ibm.pc.hardware",
            "comp.sys.mac.hardware", "comp.windows.x", "misc.forsale", "rec.autos",
            "rec.motorcycles", "rec.sport.baseball", "rec.sport.hockey", "sci.crypt",
            "sci.electronics", "sci.med", "sci.space", "soc.religion.christian",
            "talk.politics.guns", "talk.politics.mideast", "talk.politics.misc",
            "talk.religion.misc"]


def _write_news20(root, rng):
    for c, name in enumerate(_CLASSES):
        os.makedirs(root / "20_newsgroup" / name)
        for k in range(4):
            header = [f"Newsgroups: {name}", f"Path: cantaloupe.srv.cs.cmu.edu!{k}",
                      "From: someone@example.edu", "Subject: Re: a question",
                      f"Message-ID: <{c}{k}@example.edu>", "Sender: news@example.edu",
                      "Organization: Example University", "References: <1@example.edu>",
                      "Date: 5 Apr 93 12:00:00 GMT", "Lines: 12"]
            body = [" ".join(rng.choice(_WORDS, int(rng.integers(5, 30))))
                    for _ in range(int(rng.integers(3, 12)))]
            with open(root / "20_newsgroup" / name / str(38987 + 10 * c + k), "w",
                      encoding="latin-1") as f:
                f.write("\n".join(header + body))


def _write_glove(path, rng):
    with open(path, "w") as f:
        for word in _WORDS[::2] + ["unrelated", "words"]:  # half of the vocabulary: misses too
            f.write(word + " " + " ".join(f"{v:.5f}" for v in rng.normal(size=100)) + "\n")


def _run_example(tmp_path, monkeypatch):
    """The example up to the end-to-end model; returns what that part uses."""
    monkeypatch.chdir(tmp_path)
    rng_files = np.random.default_rng(0)
    _write_news20(tmp_path, rng_files)
    _write_glove(tmp_path / "glove.6B.100d.txt", rng_files)

    from kgraph import data as tf_data
    from kgraph import keras
    from kgraph.keras import layers

    def get_file(fname, origin, untar):  # the news20 download: already "extracted" here
        assert fname == "news20.tar.gz" and untar
        return str(tmp_path / "news20.tar.gz")

    monkeypatch.setattr(keras.utils, "get_file", get_file)

    data_path = keras.utils.get_file(
        "news20.tar.gz",
        "http://www.cs.cmu.edu/afs/cs.cmu.edu/project/theo-20/www/data/news20.tar.gz",
        untar=True,
    )
    data_dir = pathlib.Path(data_path).parent / "20_newsgroup"
    dirnames = os.listdir(data_dir)
    print("Number of directories:", len(dirnames))
    fnames = os.listdir(data_dir / "comp.graphics")
    print("Number of files in comp.graphics:", len(fnames))
    print(open(data_dir / "comp.graphics" / "38997").read())

    samples = []
    labels = []
    class_names = []
    class_index = 0
    for dirname in sorted(os.listdir(data_dir)):
        class_names.append(dirname)
        dirpath = data_dir / dirname
        fnames = os.listdir(dirpath)
        print("Processing %s, %d files found" % (dirname, len(fnames)))
        for fname in fnames:
            fpath = dirpath / fname
            f = open(fpath, encoding="latin-1")
            content = f.read()
            lines = content.split("\n")
            lines = lines[10:]
            content = "\n".join(lines)
            samples.append(content)
            labels.append(class_index)
        class_index += 1

    # Shuffle the data
    seed = 1337
    rng = np.random.RandomState(seed)
    rng.shuffle(samples)
    rng = np.random.RandomState(seed)
    rng.shuffle(labels)

    # Extract a training & validation split
    validation_split = 0.2
    num_validation_samples = int(validation_split * len(samples))
    train_samples = samples[:-num_validation_samples]
    val_samples = samples[-num_validation_samples:]
    train_labels = labels[:-num_validation_samples]
    val_labels = labels[-num_validation_samples:]

    vectorizer = layers.TextVectorization(max_tokens=20000, output_sequence_length=200)
    text_ds = tf_data.Dataset.from_tensor_slices(train_samples).batch(128)
    vectorizer.adapt(text_ds)

    vectorizer.get_vocabulary()[:5]

    output = vectorizer([["the cat sat on the mat"]])
    first = output.numpy()[0, :6]

    voc = vectorizer.get_vocabulary()
    word_index = dict(zip(voc, range(len(voc))))

    test = ["the", "cat", "sat", "on", "the", "mat"]
    assert list(first) == [word_index.get(w, 1) for w in test]  # "cat", "sat", "mat": OOV

    path_to_glove_file = "glove.6B.100d.txt"

    embeddings_index = {}
    with open(path_to_glove_file) as f:
        for line in f:
            word, coefs = line.split(maxsplit=1)
            coefs = np.fromstring(coefs, "f", sep=" ")
            embeddings_index[word] = coefs

    print("Found %s word vectors." % len(embeddings_index))

    num_tokens = len(voc) + 2
    embedding_dim = 100
    hits = 0
    misses = 0

    # Prepare embedding matrix
    embedding_matrix = np.zeros((num_tokens, embedding_dim))
    for word, i in word_index.items():
        embedding_vector = embeddings_index.get(word)
        if embedding_vector is not None:
            embedding_matrix[i] = embedding_vector
            hits += 1
        else:
            misses += 1
    print("Converted %d words (%d misses)" % (hits, misses))
    assert hits > 0 and misses > 0

    from kgraph.keras.layers import Embedding

    embedding_layer = Embedding(
        num_tokens,
        embedding_dim,
        trainable=False,
    )
    embedding_layer.build((1,))
    embedding_layer.set_weights([embedding_matrix])

    int_sequences_input = keras.Input(shape=(None,), dtype="int32")
    embedded_sequences = embedding_layer(int_sequences_input)
    x = layers.Conv1D(128, 5, activation="relu")(embedded_sequences)
    x = layers.MaxPooling1D(5)(x)
    x = layers.Conv1D(128, 5, activation="relu")(x)
    x = layers.MaxPooling1D(5)(x)
    x = layers.Conv1D(128, 5, activation="relu")(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    preds = layers.Dense(len(class_names), activation="softmax")(x)
    model = keras.Model(int_sequences_input, preds)
    model.summary()

    x_train = vectorizer(np.array([[s] for s in train_samples])).numpy()
    x_val = vectorizer(np.array([[s] for s in val_samples])).numpy()

    y_train = np.array(train_labels)
    y_val = np.array(val_labels)

    model.compile(
        loss="sparse_categorical_crossentropy", optimizer="rmsprop", metrics=["acc"]
    )
    history = model.fit(x_train, y_train, batch_size=128, epochs=1,
                        validation_data=(x_val, y_val), verbose=0)

    frozen = embedding_layer.get_weights()[0]
    np.testing.assert_array_equal(frozen, embedding_matrix.astype("float32"))  # trainable=False
    assert x_train.shape == (64, 200) and x_val.shape == (16, 200)
    assert sorted(history.history) == ["acc", "loss", "val_acc", "val_loss"]
    # The classifier's trainable parameters, as keras.io's summary prints them (247,316),
    # and the frozen embedding's num_tokens * 100.
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen_count = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert trainable == 247316 and frozen_count == num_tokens * 100
    return keras, vectorizer, model, class_names


def test_pretrained_word_embeddings(tmp_path, monkeypatch):
    _run_example(tmp_path, monkeypatch)


def test_pretrained_word_embeddings_end_to_end(tmp_path, monkeypatch):
    keras, vectorizer, model, class_names = _run_example(tmp_path, monkeypatch)

    string_input = keras.Input(shape=(1,), dtype="string")
    x = vectorizer(string_input)
    preds = model(x)
    end_to_end_model = keras.Model(string_input, preds)

    probabilities = end_to_end_model(
        keras.ops.convert_to_tensor(
            [["this message is about computer graphics and 3D modeling"]]
        )
    )

    print(class_names[np.argmax(probabilities[0])])
    text = np.array([["this message is about computer graphics and 3D modeling"]], object)
    expected = model.predict(vectorizer(text).numpy(), verbose=0)
    np.testing.assert_allclose(np.asarray(probabilities), expected, atol=1e-6)
