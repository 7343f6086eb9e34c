"""keras.io example "Recommendations with Transformer" (Behavior Sequence Transformer)
(examples/structured_data/movielens_recommendations_transformers.py).

The stored source is the TensorFlow-era one (`from tensorflow import keras`,
`tensorflow.keras.layers.experimental.preprocessing.StringLookup`); no Keras 3 version
exists. Imports swapped for kgraph (`import kgraph as tf`, `from kgraph import keras`,
`from kgraph.keras import layers`, `StringLookup` from `kgraph.keras.layers`).

The MovieLens-1M download and its pandas preparation (pandas and sklearn are not
dependencies) are replaced by what that code writes: users, movies (with the 18 genre
columns) and time-ordered ratings generated in Python, cut into sequences by the example's
own `create_sequences` (as written), joined with the user features and written as the
`|`-separated header-less `train_data.csv`/`test_data.csv` (comma-joined movie ids and
ratings, 85/15 split); 40 users, 30 movies. The `_process` map's `tf.strings.split(...)
.to_tensor()` and `tf.strings.to_number` (TensorFlow string ops) are written with numpy.

Runs: `make_csv_dataset(field_delim="|", num_epochs=None)` with that map (checked: the
target movie and rating are the last of each sequence), and the model: its
`layers.Input(dtype=tf.string)`s and the `StringLookup` layers on them are its host prefix
(run in numpy on every batch, kgraph/keras/models/host_prefix.py), the rest is compiled.
"""
import csv
import math

import numpy as np

sequence_length = 4
step_size = 2

genres = [
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
]


def create_sequences(values, window_size, step_size):
    sequences = []
    start_index = 0
    while True:
        end_index = start_index + window_size
        seq = values[start_index:end_index]
        if len(seq) < window_size:
            seq = values[-window_size:]
            if len(seq) == window_size:
                sequences.append(seq)
            break
        sequences.append(seq)
        start_index += step_size
    return sequences


def _movielens(tmp_path, n_users=40, n_movies=30, seed=0):
    """What the example's pandas code builds and writes: the user/movie tables, the CSV
    files and their header."""
    rng = np.random.default_rng(seed)
    users = [{"user_id": f"user_{u}", "sex": str(rng.choice(["F", "M"])),
              "age_group": f"group_{rng.choice([1, 18, 25, 35, 45])}",
              "occupation": f"occupation_{rng.integers(0, 21)}"} for u in range(1, n_users + 1)]
    movie_ids = [f"movie_{m}" for m in range(1, n_movies + 1)]
    genre_vectors = (rng.random((n_movies, len(genres))) < 0.2).astype(int)
    rows = []
    for user in users:
        count = int(rng.integers(5, 12))  # ratings already in timestamp order
        movies = [movie_ids[i] for i in rng.choice(n_movies, count, replace=False)]
        ratings = [float(r) for r in rng.integers(1, 6, count)]
        for seq_movies, seq_ratings in zip(create_sequences(movies, sequence_length, step_size),
                                           create_sequences(ratings, sequence_length, step_size)):
            rows.append([user["user_id"], ",".join(seq_movies),
                         ",".join(str(v) for v in seq_ratings),
                         user["sex"], user["age_group"], user["occupation"]])
    order = rng.permutation(len(rows))
    split = int(0.85 * len(rows))
    for name, part in (("train_data.csv", order[:split]), ("test_data.csv", order[split:])):
        with open(tmp_path / name, "w", newline="") as f:
            csv.writer(f, delimiter="|").writerows(rows[i] for i in part)
    header = ["user_id", "sequence_movie_ids", "sequence_ratings", "sex", "age_group",
              "occupation"]
    vocabulary = {
        "user_id": [u["user_id"] for u in users],
        "movie_id": movie_ids,
        "sex": list(dict.fromkeys(u["sex"] for u in users)),
        "age_group": list(dict.fromkeys(u["age_group"] for u in users)),
        "occupation": list(dict.fromkeys(u["occupation"] for u in users)),
    }
    return header, vocabulary, genre_vectors, split


def _get_dataset_from_csv(tf, CSV_HEADER):
    def get_dataset_from_csv(csv_file_path, num_epochs=None, shuffle=False, batch_size=128):
        def _process(features):
            movie_ids_string = features["sequence_movie_ids"]
            # tf.strings.split(movie_ids_string, ",").to_tensor(), in numpy
            sequence_movie_ids = np.array(
                [np.char.split(np.char.decode(np.asarray(s, "S"), "utf-8"), ",").item()
                 for s in movie_ids_string])

            # The last movie id in the sequence is the target movie.
            features["target_movie_id"] = sequence_movie_ids[:, -1]
            features["sequence_movie_ids"] = sequence_movie_ids[:, :-1]

            ratings_string = features["sequence_ratings"]
            # tf.strings.to_number(tf.strings.split(ratings_string, ","), float32), in numpy
            sequence_ratings = np.array(
                [[float(v) for v in np.asarray(s, "S").item().decode().split(",")]
                 for s in ratings_string], "float32")

            # The last rating in the sequence is the target for the model to predict.
            target = sequence_ratings[:, -1]
            features["sequence_ratings"] = sequence_ratings[:, :-1]

            return features, target

        dataset = tf.data.experimental.make_csv_dataset(
            csv_file_path,
            batch_size=batch_size,
            column_names=CSV_HEADER,
            num_epochs=num_epochs,
            header=False,
            field_delim="|",
            shuffle=shuffle,
        ).map(_process)

        return dataset

    return get_dataset_from_csv


def test_movielens_dataset_pipeline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import kgraph as tf

    CSV_HEADER, _, _, n_train = _movielens(tmp_path)
    get_dataset_from_csv = _get_dataset_from_csv(tf, CSV_HEADER)
    batch_size = 265
    train_dataset = get_dataset_from_csv("train_data.csv", shuffle=True, batch_size=batch_size)
    features, target = next(iter(train_dataset))  # num_epochs=None repeats the file
    assert len(target) == batch_size > n_train
    assert np.asarray(features["sequence_movie_ids"]).shape == (batch_size, sequence_length - 1)
    assert np.asarray(features["target_movie_id"]).shape == (batch_size,)
    assert np.asarray(features["sequence_ratings"]).shape == (batch_size, sequence_length - 1)
    test_dataset = get_dataset_from_csv("test_data.csv", num_epochs=1, batch_size=batch_size)
    with open("test_data.csv") as f:
        rows = list(csv.reader(f, delimiter="|"))
    features, target = next(iter(test_dataset))
    np.testing.assert_array_equal(np.asarray(target),
                                  [float(r[2].split(",")[-1]) for r in rows])
    assert [str(m) for m in np.asarray(features["target_movie_id"])] == \
        [r[1].split(",")[-1] for r in rows]


def test_movielens_recommendations_transformers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers
    from kgraph.keras.layers import StringLookup

    CSV_HEADER, CATEGORICAL_FEATURES_WITH_VOCABULARY, genre_vectors, n_train = \
        _movielens(tmp_path)
    get_dataset_from_csv = _get_dataset_from_csv(tf, CSV_HEADER)
    train_data_file, test_data_file = "train_data.csv", "test_data.csv"

    USER_FEATURES = ["sex", "age_group", "occupation"]

    def create_model_inputs():
        return {
            "user_id": layers.Input(name="user_id", shape=(1,), dtype=tf.string),
            "sequence_movie_ids": layers.Input(
                name="sequence_movie_ids", shape=(sequence_length - 1,), dtype=tf.string
            ),
            "target_movie_id": layers.Input(
                name="target_movie_id", shape=(1,), dtype=tf.string
            ),
            "sequence_ratings": layers.Input(
                name="sequence_ratings", shape=(sequence_length - 1,), dtype=tf.float32
            ),
            "sex": layers.Input(name="sex", shape=(1,), dtype=tf.string),
            "age_group": layers.Input(name="age_group", shape=(1,), dtype=tf.string),
            "occupation": layers.Input(name="occupation", shape=(1,), dtype=tf.string),
        }

    def encode_input_features(
        inputs,
        include_user_id=True,
        include_user_features=True,
        include_movie_features=True,
    ):
        encoded_transformer_features = []
        encoded_other_features = []

        other_feature_names = []
        if include_user_id:
            other_feature_names.append("user_id")
        if include_user_features:
            other_feature_names.extend(USER_FEATURES)

        for feature_name in other_feature_names:
            feature = inputs[feature_name]
            vocabulary = CATEGORICAL_FEATURES_WITH_VOCABULARY[feature_name]
            idx = StringLookup(vocabulary=vocabulary, mask_token=None, num_oov_indices=0)(
                feature
            )
            embedding_dims = int(math.sqrt(len(vocabulary)))
            embedding_encoder = layers.Embedding(
                input_dim=len(vocabulary),
                output_dim=embedding_dims,
                name=f"{feature_name}_embedding",
            )
            encoded_feature = embedding_encoder(idx)
            encoded_other_features.append(encoded_feature)

        if len(encoded_other_features) > 1:
            encoded_other_features = layers.concatenate(encoded_other_features)
        elif len(encoded_other_features) == 1:
            encoded_other_features = encoded_other_features[0]
        else:
            encoded_other_features = None

        movie_vocabulary = CATEGORICAL_FEATURES_WITH_VOCABULARY["movie_id"]
        movie_embedding_dims = int(math.sqrt(len(movie_vocabulary)))
        movie_index_lookup = StringLookup(
            vocabulary=movie_vocabulary,
            mask_token=None,
            num_oov_indices=0,
            name="movie_index_lookup",
        )
        movie_embedding_encoder = layers.Embedding(
            input_dim=len(movie_vocabulary),
            output_dim=movie_embedding_dims,
            name="movie_embedding",
        )
        movie_genres_lookup = layers.Embedding(
            input_dim=genre_vectors.shape[0],
            output_dim=genre_vectors.shape[1],
            embeddings_initializer=tf.keras.initializers.Constant(genre_vectors),
            trainable=False,
            name="genres_vector",
        )
        movie_embedding_processor = layers.Dense(
            units=movie_embedding_dims,
            activation="relu",
            name="process_movie_embedding_with_genres",
        )

        def _encode_movie(movie_id):
            movie_idx = movie_index_lookup(movie_id)
            movie_embedding = movie_embedding_encoder(movie_idx)
            encoded_movie = movie_embedding
            if include_movie_features:
                movie_genres_vector = movie_genres_lookup(movie_idx)
                encoded_movie = movie_embedding_processor(
                    layers.concatenate([movie_embedding, movie_genres_vector])
                )
            return encoded_movie

        target_movie_id = inputs["target_movie_id"]
        encoded_target_movie = _encode_movie(target_movie_id)

        sequence_movies_ids = inputs["sequence_movie_ids"]
        encoded_sequence_movies = _encode_movie(sequence_movies_ids)
        position_embedding_encoder = layers.Embedding(
            input_dim=sequence_length,
            output_dim=movie_embedding_dims,
            name="position_embedding",
        )
        positions = tf.range(start=0, limit=sequence_length - 1, delta=1)
        encodded_positions = position_embedding_encoder(positions)
        sequence_ratings = tf.expand_dims(inputs["sequence_ratings"], -1)
        encoded_sequence_movies_with_poistion_and_rating = layers.Multiply()(
            [(encoded_sequence_movies + encodded_positions), sequence_ratings]
        )

        for encoded_movie in tf.unstack(
            encoded_sequence_movies_with_poistion_and_rating, axis=1
        ):
            encoded_transformer_features.append(tf.expand_dims(encoded_movie, 1))
        encoded_transformer_features.append(encoded_target_movie)

        encoded_transformer_features = layers.concatenate(
            encoded_transformer_features, axis=1
        )

        return encoded_transformer_features, encoded_other_features

    include_user_id = False
    include_user_features = False
    include_movie_features = False

    hidden_units = [256, 128]
    dropout_rate = 0.1
    num_heads = 3

    def create_model():
        inputs = create_model_inputs()
        transformer_features, other_features = encode_input_features(
            inputs, include_user_id, include_user_features, include_movie_features
        )

        attention_output = layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=transformer_features.shape[2], dropout=dropout_rate
        )(transformer_features, transformer_features)

        attention_output = layers.Dropout(dropout_rate)(attention_output)
        x1 = layers.Add()([transformer_features, attention_output])
        x1 = layers.LayerNormalization()(x1)
        x2 = layers.LeakyReLU()(x1)
        x2 = layers.Dense(units=x2.shape[-1])(x2)
        x2 = layers.Dropout(dropout_rate)(x2)
        transformer_features = layers.Add()([x1, x2])
        transformer_features = layers.LayerNormalization()(transformer_features)
        features = layers.Flatten()(transformer_features)

        if other_features is not None:
            features = layers.concatenate(
                [features, layers.Reshape([other_features.shape[-1]])(other_features)]
            )

        for num_units in hidden_units:
            features = layers.Dense(num_units)(features)
            features = layers.BatchNormalization()(features)
            features = layers.LeakyReLU()(features)
            features = layers.Dropout(dropout_rate)(features)

        outputs = layers.Dense(units=1)(features)
        model = keras.Model(inputs=inputs, outputs=outputs)
        return model

    model = create_model()

    learning_rate = 0.01
    batch_size = 265
    num_epochs = 1

    model.compile(
        optimizer=keras.optimizers.Adagrad(learning_rate=learning_rate),
        loss=keras.losses.MeanSquaredError(),
        metrics=[keras.metrics.MeanAbsoluteError()],
    )
    train_dataset = get_dataset_from_csv(train_data_file, shuffle=True, batch_size=batch_size)
    history = model.fit(train_dataset, epochs=num_epochs,
                        steps_per_epoch=max(1, n_train // batch_size), verbose=0)
    test_dataset = get_dataset_from_csv(test_data_file, num_epochs=1, batch_size=batch_size)
    _, rmse = model.evaluate(test_dataset, verbose=0)
    assert sorted(history.history) == ["loss", "mean_absolute_error"]
    assert rmse >= 0
