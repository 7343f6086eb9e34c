"""keras.io example "Graph representation learning with node2vec"
(examples/graph/node2vec_movielens.py).

The example's code as written (its stored text, the TensorFlow-era one) with `import tensorflow
as tf; from tensorflow import keras; from tensorflow.keras import layers` swapped for kgraph:
pair and item frequencies of the movies each user rated >= 5, a networkx graph with PMI
edge weights, node2vec's biased random walks (`next_step` with `p`/`q`), skip-gram examples
from `keras.preprocessing.sequence.skipgrams` (tf.keras 2) counted into weights, a
`tf.data.Dataset.from_tensor_slices((dict, labels, weights))` shuffled and batched with
`drop_remainder`, the skip-gram model on two named scalar int32 `Input`s sharing an
`Embedding` (`he_normal`, an L2 regularizer) joined by `layers.Dot(axes=1)`,
`BinaryCrossentropy(from_logits=True)`, `tf.keras.utils.plot_model`, and related movies by
`tf.linalg.matmul(tf.math.l2_normalize(...), ..., transpose_b=True)` and `tf.math.top_k`
(`indices.numpy().tolist()`), then the `.tsv` files for the Embedding Projector.

The MovieLens download (`urlretrieve`, `ZipFile`) and its pandas frames are replaced by the
arrays the pandas code yields (pandas is not a dependency): 30 movies (the five queried titles
among them) and 60 users who each rate 20 movies: those of one of three clusters 5, the others 3 or 4; the
pandas lookups and `groupby("userId")` are written with numpy. Sizes cut: batch_size 1024 ->
64, num_epochs 10 -> 2. The matplotlib plot is left out. Checked: every walk has `num_steps`
nodes linked by graph edges, the examples' labels and weights, the similarity matrix against
numpy and the top 5 indices against its sort.
"""

import math
import random
from collections import defaultdict

import networkx as nx
import numpy as np
from tqdm import tqdm

QUERY_MOVIES = [
    "Matrix, The (1999)",
    "Star Wars: Episode IV - A New Hope (1977)",
    "Lion King, The (1994)",
    "Terminator 2: Judgment Day (1991)",
    "Godfather, The (1972)",
]


def movielens_arrays(num_movies=30, num_users=60, seed=0):
    """Stand-in for movies.csv (movieId, title) and ratings.csv (userId, movieId, rating)."""
    rng = np.random.default_rng(seed)
    movie_ids = np.arange(1, num_movies + 1)
    titles = np.array(QUERY_MOVIES + [f"Movie {i} (19{60 + i})" for i in
                                      range(len(QUERY_MOVIES), num_movies)])
    user_ids, rated_ids, ratings = [], [], []
    for user in range(1, num_users + 1):
        liked = user % 3  # the cluster of movies this user rates 5
        for movie in rng.choice(movie_ids, 20, replace=False):
            user_ids.append(user)
            rated_ids.append(movie)
            ratings.append(5.0 if movie % 3 == liked else float(rng.choice([3, 4])))
    return (movie_ids, titles), (np.array(user_ids), np.array(rated_ids), np.array(ratings))


def test_node2vec_movielens(tmp_path, monkeypatch):
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(1)

    (movies_movieId, movies_title), (ratings_userId, ratings_movieId, ratings_rating) = \
        movielens_arrays()
    # Create a `movieId` string.
    movies_movieId = np.array([f"movie_{x}" for x in movies_movieId])
    # Convert the `ratings` to floating point
    ratings_rating = np.array([float(x) for x in ratings_rating])
    # Create the `movie_id` string.
    ratings_movieId = np.array([f"movie_{x}" for x in ratings_movieId])

    print("Movies data shape:", (len(movies_movieId), 3))
    print("Ratings data shape:", (len(ratings_movieId), 4))

    def get_movie_title_by_id(movieId):
        return list(movies_title[movies_movieId == movieId])[0]

    def get_movie_id_by_title(title):
        return list(movies_movieId[movies_title == title])[0]

    min_rating = 5
    pair_frequency = defaultdict(int)
    item_frequency = defaultdict(int)

    # Filter instances where rating is greater than or equal to min_rating.
    rated = ratings_rating >= min_rating
    # Group instances by user (pandas' groupby: users in order, rows in their order).
    movies_grouped_by_users = [
        (user, ratings_movieId[rated & (ratings_userId == user)])
        for user in np.unique(ratings_userId[rated])]
    for group in tqdm(
        movies_grouped_by_users,
        position=0,
        leave=True,
        desc="Compute movie rating frequencies",
    ):
        # Get a list of movies rated by the user.
        current_movies = list(group[1])

        for i in range(len(current_movies)):
            item_frequency[current_movies[i]] += 1
            for j in range(i + 1, len(current_movies)):
                x = min(current_movies[i], current_movies[j])
                y = max(current_movies[i], current_movies[j])
                pair_frequency[(x, y)] += 1

    min_weight = 10
    D = math.log(sum(item_frequency.values()))

    # Create the movies undirected graph.
    movies_graph = nx.Graph()
    # Add weighted edges between movies.
    # This automatically adds the movie nodes to the graph.
    for pair in tqdm(
        pair_frequency, position=0, leave=True, desc="Creating the movie graph"
    ):
        x, y = pair
        xy_frequency = pair_frequency[pair]
        x_frequency = item_frequency[x]
        y_frequency = item_frequency[y]
        pmi = math.log(xy_frequency) - math.log(x_frequency) - math.log(y_frequency) + D
        weight = pmi * xy_frequency
        # Only include edges with weight >= min_weight.
        if weight >= min_weight:
            movies_graph.add_edge(x, y, weight=weight)

    print("Total number of graph nodes:", movies_graph.number_of_nodes())
    print("Total number of graph edges:", movies_graph.number_of_edges())

    degrees = []
    for node in movies_graph.nodes:
        degrees.append(movies_graph.degree[node])

    print("Average node degree:", round(sum(degrees) / len(degrees), 2))

    vocabulary = ["NA"] + list(movies_graph.nodes)
    vocabulary_lookup = {token: idx for idx, token in enumerate(vocabulary)}
    assert all(get_movie_id_by_title(t) in vocabulary_lookup for t in QUERY_MOVIES)

    def next_step(graph, previous, current, p, q):
        neighbors = list(graph.neighbors(current))

        weights = []
        # Adjust the weights of the edges to the neighbors with respect to p and q.
        for neighbor in neighbors:
            if neighbor == previous:
                # Control the probability to return to the previous node.
                weights.append(graph[current][neighbor]["weight"] / p)
            elif graph.has_edge(neighbor, previous):
                # The probability of visiting a local node.
                weights.append(graph[current][neighbor]["weight"])
            else:
                # Control the probability to move forward.
                weights.append(graph[current][neighbor]["weight"] / q)

        # Compute the probabilities of visiting each neighbor.
        weight_sum = sum(weights)
        probabilities = [weight / weight_sum for weight in weights]
        # Probabilistically select a neighbor to visit.
        next = np.random.choice(neighbors, size=1, p=probabilities)[0]
        return next

    def random_walk(graph, num_walks, num_steps, p, q):
        walks = []
        nodes = list(graph.nodes())
        # Perform multiple iterations of the random walk.
        for walk_iteration in range(num_walks):
            random.shuffle(nodes)

            for node in tqdm(
                nodes,
                position=0,
                leave=True,
                desc=f"Random walks iteration {walk_iteration + 1} of {num_walks}",
            ):
                # Start the walk with a random node from the graph.
                walk = [node]
                # Randomly walk for num_steps.
                while len(walk) < num_steps:
                    current = walk[-1]
                    previous = walk[-2] if len(walk) > 1 else None
                    # Compute the next node to visit.
                    next = next_step(graph, previous, current, p, q)
                    walk.append(next)
                # Replace node ids (movie ids) in the walk with token ids.
                walk = [vocabulary_lookup[token] for token in walk]
                # Add the walk to the generated sequence.
                walks.append(walk)

        return walks

    # Random walk return parameter.
    p = 1
    # Random walk in-out parameter.
    q = 1
    # Number of iterations of random walks.
    num_walks = 5
    # Number of steps of each random walk.
    num_steps = 10
    walks = random_walk(movies_graph, num_walks, num_steps, p, q)

    print("Number of walks generated:", len(walks))
    assert len(walks) == num_walks * movies_graph.number_of_nodes()
    assert all(len(w) == num_steps and all(movies_graph.has_edge(
        vocabulary[a], vocabulary[b]) for a, b in zip(w, w[1:])) for w in walks)

    def generate_examples(sequences, window_size, num_negative_samples, vocabulary_size):
        example_weights = defaultdict(int)
        # Iterate over all sequences (walks).
        for sequence in tqdm(
            sequences,
            position=0,
            leave=True,
            desc=f"Generating postive and negative examples",
        ):
            # Generate positive and negative skip-gram pairs for a sequence (walk).
            pairs, labels = keras.preprocessing.sequence.skipgrams(
                sequence,
                vocabulary_size=vocabulary_size,
                window_size=window_size,
                negative_samples=num_negative_samples,
            )
            for idx in range(len(pairs)):
                pair = pairs[idx]
                label = labels[idx]
                target, context = min(pair[0], pair[1]), max(pair[0], pair[1])
                if target == context:
                    continue
                entry = (target, context, label)
                example_weights[entry] += 1

        targets, contexts, labels, weights = [], [], [], []
        for entry in example_weights:
            weight = example_weights[entry]
            target, context, label = entry
            targets.append(target)
            contexts.append(context)
            labels.append(label)
            weights.append(weight)

        return np.array(targets), np.array(contexts), np.array(labels), np.array(weights)

    num_negative_samples = 4
    targets, contexts, labels, weights = generate_examples(
        sequences=walks,
        window_size=num_steps,
        num_negative_samples=num_negative_samples,
        vocabulary_size=len(vocabulary),
    )

    print(f"Targets shape: {targets.shape}")
    print(f"Contexts shape: {contexts.shape}")
    print(f"Labels shape: {labels.shape}")
    print(f"Weights shape: {weights.shape}")
    assert set(labels.tolist()) == {0, 1} and weights.min() >= 1 and np.all(targets < contexts)

    batch_size = 64  # 1024 in the example

    def create_dataset(targets, contexts, labels, weights, batch_size):
        inputs = {
            "target": targets,
            "context": contexts,
        }
        dataset = tf.data.Dataset.from_tensor_slices((inputs, labels, weights))
        dataset = dataset.shuffle(buffer_size=batch_size * 2)
        dataset = dataset.batch(batch_size, drop_remainder=True)
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
        return dataset

    dataset = create_dataset(
        targets=targets,
        contexts=contexts,
        labels=labels,
        weights=weights,
        batch_size=batch_size,
    )

    learning_rate = 0.001
    embedding_dim = 50
    num_epochs = 2  # 10 in the example

    def create_model(vocabulary_size, embedding_dim):

        inputs = {
            "target": layers.Input(name="target", shape=(), dtype="int32"),
            "context": layers.Input(name="context", shape=(), dtype="int32"),
        }
        # Initialize item embeddings.
        embed_item = layers.Embedding(
            input_dim=vocabulary_size,
            output_dim=embedding_dim,
            embeddings_initializer="he_normal",
            embeddings_regularizer=keras.regularizers.l2(1e-6),
            name="item_embeddings",
        )
        # Lookup embeddings for target.
        target_embeddings = embed_item(inputs["target"])
        # Lookup embeddings for context.
        context_embeddings = embed_item(inputs["context"])
        # Compute dot similarity between target and context embeddings.
        logits = layers.Dot(axes=1, normalize=False, name="dot_similarity")(
            [target_embeddings, context_embeddings]
        )
        # Create the model.
        model = keras.Model(inputs=inputs, outputs=logits)
        return model

    model = create_model(len(vocabulary), embedding_dim)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    assert model.output_shape == (None, 1)

    tf.keras.utils.plot_model(
        model, show_shapes=True, show_dtype=True, show_layer_names=True,
    )

    history = model.fit(dataset, epochs=num_epochs)
    assert len(history.history["loss"]) == num_epochs

    movie_embeddings = model.get_layer("item_embeddings").get_weights()[0]
    print("Embeddings shape:", movie_embeddings.shape)
    assert movie_embeddings.shape == (len(vocabulary), embedding_dim)

    query_movies = QUERY_MOVIES

    query_embeddings = []

    for movie_title in query_movies:
        movieId = get_movie_id_by_title(movie_title)
        token_id = vocabulary_lookup[movieId]
        movie_embedding = movie_embeddings[token_id]
        query_embeddings.append(movie_embedding)

    query_embeddings = np.array(query_embeddings)

    similarities = tf.linalg.matmul(
        tf.math.l2_normalize(query_embeddings),
        tf.math.l2_normalize(movie_embeddings),
        transpose_b=True,
    )

    _, indices = tf.math.top_k(similarities, k=5)
    indices = indices.numpy().tolist()

    # tf.math.l2_normalize without an axis normalizes the whole array (TensorFlow's default)
    want = (query_embeddings / np.linalg.norm(query_embeddings)) @ (
        movie_embeddings / np.linalg.norm(movie_embeddings)).T
    np.testing.assert_allclose(np.asarray(similarities), want, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(np.array(indices), np.argsort(-want, axis=1)[:, :5])
    # The printing below looks each related token up as a movie, as written: the padding
    # token "NA" (an untrained embedding) among the top 5 would fail it, which this seed
    # avoids on a vocabulary of 31 (MovieLens has thousands).
    assert all(0 not in row for row in indices)

    for idx, title in enumerate(query_movies):
        print(title)
        print("".rjust(len(title), "-"))
        similar_tokens = indices[idx]
        for token in similar_tokens:
            similar_movieId = vocabulary[token]
            similar_title = get_movie_title_by_id(similar_movieId)
            print(f"- {similar_title}")
        print()

    import io

    out_v = io.open("embeddings.tsv", "w", encoding="utf-8")
    out_m = io.open("metadata.tsv", "w", encoding="utf-8")

    for idx, movie_id in enumerate(vocabulary[1:]):
        movie_title = list(movies_title[movies_movieId == movie_id])[0]
        vector = movie_embeddings[idx]
        out_v.write("\t".join([str(x) for x in vector]) + "\n")
        out_m.write(movie_title + "\n")

    out_v.close()
    out_m.close()
    assert len(open("metadata.tsv").read().splitlines()) == len(vocabulary) - 1
