"""keras.io example "Collaborative Filtering for Movie Recommendations"
(examples/structured_data/collaborative_filtering_movielens.py).

The Keras 3 model and training code as written; only the imports changed.
The MovieLens download and its pandas preparation are replaced by the arrays
that preparation yields: `x` rows of (user index, movie index), `y` ratings
scaled to [0, 1], with the example's 90/10 split (600 ratings, 30 users,
80 movies); epochs cut from 5 to 2. The recommendation step keeps the
example's `predict` on (user, movie) pairs.
"""

import numpy as np


def _prepared_ratings(num_users=30, num_movies=80, n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = np.stack([rng.integers(0, num_users, n), rng.integers(0, num_movies, n)], 1)
    rating = rng.choice(np.arange(0.5, 5.5, 0.5), n).astype(np.float32)
    min_rating, max_rating = 0.5, 5.0
    y = (rating - min_rating) / (max_rating - min_rating)
    return x, y


def test_collaborative_filtering_movielens():
    from kgraph import keras
    from kgraph.keras import layers, ops

    num_users, num_movies = 30, 80
    x, y = _prepared_ratings(num_users, num_movies)
    # Assuming training on 90% of the data and validating on 10%.
    train_indices = int(0.9 * len(x))
    x_train, x_val, y_train, y_val = (
        x[:train_indices],
        x[train_indices:],
        y[:train_indices],
        y[train_indices:],
    )

    EMBEDDING_SIZE = 50

    class RecommenderNet(keras.Model):
        def __init__(self, num_users, num_movies, embedding_size, **kwargs):
            super().__init__(**kwargs)
            self.num_users = num_users
            self.num_movies = num_movies
            self.embedding_size = embedding_size
            self.user_embedding = layers.Embedding(
                num_users,
                embedding_size,
                embeddings_initializer="he_normal",
                embeddings_regularizer=keras.regularizers.l2(1e-6),
            )
            self.user_bias = layers.Embedding(num_users, 1)
            self.movie_embedding = layers.Embedding(
                num_movies,
                embedding_size,
                embeddings_initializer="he_normal",
                embeddings_regularizer=keras.regularizers.l2(1e-6),
            )
            self.movie_bias = layers.Embedding(num_movies, 1)

        def call(self, inputs):
            user_vector = self.user_embedding(inputs[:, 0])
            user_bias = self.user_bias(inputs[:, 0])
            movie_vector = self.movie_embedding(inputs[:, 1])
            movie_bias = self.movie_bias(inputs[:, 1])
            dot_user_movie = ops.tensordot(user_vector, movie_vector, 2)
            # Add all the components (including bias)
            x = dot_user_movie + user_bias + movie_bias
            # The sigmoid activation forces the rating to between 0 and 11
            return ops.nn.sigmoid(x)

    model = RecommenderNet(num_users, num_movies, EMBEDDING_SIZE)
    model.compile(
        loss=keras.losses.BinaryCrossentropy(),
        optimizer=keras.optimizers.Adam(learning_rate=0.001),
    )

    history = model.fit(
        x=x_train,
        y=y_train,
        batch_size=64,
        epochs=2,
        verbose=1,
        validation_data=(x_val, y_val),
    )

    # Let us get a user and see the top recommendations.
    movies_not_watched = np.arange(10)
    user_movie_array = np.hstack(
        (np.full((len(movies_not_watched), 1), 3), movies_not_watched[:, None])
    )
    ratings = model.predict(user_movie_array).flatten()
    top_ratings_indices = ratings.argsort()[-10:][::-1]

    assert len(history.history["loss"]) == 2
    assert all(np.isfinite(history.history["val_loss"]))
    assert ratings.shape == (10,) and ((ratings > 0) & (ratings < 1)).all()
    assert sorted(top_ratings_indices) == list(range(10))

    # the example's tensordot over both axes is one scalar per batch (as in
    # Keras): check the model against numpy with the trained weights
    pairs = user_movie_array
    u = np.asarray(model.user_embedding.embeddings)[pairs[:, 0]]
    m = np.asarray(model.movie_embedding.embeddings)[pairs[:, 1]]
    ub = np.asarray(model.user_bias.embeddings)[pairs[:, 0]]
    mb = np.asarray(model.movie_bias.embeddings)[pairs[:, 1]]
    expected = 1 / (1 + np.exp(-(np.sum(u * m) + ub + mb)))
    np.testing.assert_allclose(ratings, expected.flatten(), rtol=1e-4, atol=1e-6)
