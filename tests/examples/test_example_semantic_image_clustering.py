"""keras.io example "Semantic Image Clustering" (examples/vision/semantic_image_clustering.py).

The example's code as written (its stored text is the TensorFlow-era one: `import tensorflow as
tf; from tensorflow import keras; from tensorflow.keras import layers`, swapped for kgraph):
`Normalization.adapt` in the preprocessing Sequential, the augmentation Sequential
(RandomTranslation/RandomRotation/RandomZoom with `fill_mode="nearest"`, RandomFlip) called on
one image, the encoder `Sequential([ResNet50V2(include_top=False, weights=None, pooling="avg"),
Dense])` (image size left open), the `RepresentationLearner` (preprocessing and two
augmentations concatenated by `layers.Concatenate(axis=0)` inside `call`, a projector with
Dropout/BatchNormalization/ReLU, the contrastive loss with `tf.shape(...)[0] // batch_size`,
`tf.linalg.matmul(transpose_b=True)`, `tf.tile(tf.eye(batch_size), ...)` of traced counts and
`categorical_crossentropy(from_logits=True)`, `train_step`/`test_step` with a `metrics`
property), `encoder.predict`, `tf.math.l2_normalize`, nearest neighbours by `tf.linalg.matmul`
and `tf.math.top_k` over tqdm batches, the two `Loss` subclasses overriding `__call__`
(`tf.ones_like`, `binary_crossentropy(from_logits=True)`; `tf.cast(tf.shape(p)[-1],
tf.dtypes.float32)`, `tf.math.log`, `tf.clip_by_value`), the clustering model and the
two-input/two-output clustering learner (`tf.reshape` of a KerasTensor, `tf.linalg.einsum`, a
`Lambda` squeeze named "similarity"), a frozen encoder, `fit` on a dict of inputs with
`tf.gather(x_data, neighbours)`, and the cluster analysis (`tf.math.argmax(...).numpy()`,
`tf.math.reduce_max(...).numpy()`, cluster sizes and accuracies).

Replaced: CIFAR-10 by random arrays (`example_datasets.cifar10_load_data`, 24 + 8 images);
TensorFlow Addons' AdamW by `keras.optimizers.AdamW`; tf.keras 2 names absent from Keras 3 by
their Keras 3 ones: `layers.experimental.preprocessing.X` -> `layers.X`,
`keras.experimental.CosineDecay` -> `keras.optimizers.schedules.CosineDecay`, and the
clustering fit's single target `y=labels` (tf.keras 2 gave it to both outputs; Keras 3 refuses
it as kgraph does) -> `y=[labels, labels]`. Sizes cut:
representation_dim 512 -> 64, projection_units 128 -> 32, batch sizes 512/500 -> 16/8, epochs
50 -> 1. The matplotlib figures are left out (the augmentation calls they show are made).

Checked: the contrastive loss, both clustering losses and the neighbours against numpy; the
cluster sizes add up to the data; the frozen encoder is unchanged by the clustering fit.
Marked slow (~25 s: the ResNet50V2 encoder in four programs).
"""

from collections import defaultdict

import numpy as np
import pytest

from example_datasets import cifar10_load_data


@pytest.mark.slow
def test_semantic_image_clustering():
    from tqdm import tqdm

    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    keras.utils.set_random_seed(0)
    np.random.seed(0)

    num_classes = 10
    input_shape = (32, 32, 3)

    (x_train, y_train), (x_test, y_test) = cifar10_load_data(24, 8)
    x_data = np.concatenate([x_train, x_test])
    y_data = np.concatenate([y_train, y_test])

    print("x_data shape:", x_data.shape, "- y_data shape:", y_data.shape)

    classes = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]

    target_size = 32  # Resize the input images.
    representation_dim = 64  # 512: The dimensions of the features vector.
    projection_units = 32  # 128: The projection head of the representation learner.
    num_clusters = 20  # Number of clusters.
    k_neighbours = 5  # Number of neighbours to consider during cluster learning.
    tune_encoder_during_clustering = False  # Freeze the encoder in the cluster learning.

    data_preprocessing = keras.Sequential(
        [
            layers.Resizing(target_size, target_size),
            layers.Normalization(),
        ]
    )
    # Compute the mean and the variance from the data for normalization.
    data_preprocessing.layers[-1].adapt(x_data)

    data_augmentation = keras.Sequential(
        [
            layers.RandomTranslation(
                height_factor=(-0.2, 0.2), width_factor=(-0.2, 0.2), fill_mode="nearest"
            ),
            layers.RandomFlip(mode="horizontal"),
            layers.RandomRotation(
                factor=0.15, fill_mode="nearest"
            ),
            layers.RandomZoom(
                height_factor=(-0.3, 0.1), width_factor=(-0.3, 0.1), fill_mode="nearest"
            )
        ]
    )

    image_idx = np.random.choice(range(x_data.shape[0]))
    image = x_data[image_idx]
    image_class = classes[y_data[image_idx][0]]

    for i in range(9):
        augmented_images = data_augmentation(np.array([image]))
        shown = augmented_images[0].numpy().astype("uint8")  # plt.imshow in the example
    assert shown.shape == (32, 32, 3)

    def create_encoder(representation_dim):
        encoder = keras.Sequential(
            [
                keras.applications.ResNet50V2(
                    include_top=False, weights=None, pooling="avg"
                ),
                layers.Dense(representation_dim),
            ]
        )
        return encoder

    class RepresentationLearner(keras.Model):
        def __init__(
            self,
            encoder,
            projection_units,
            num_augmentations,
            temperature=1.0,
            dropout_rate=0.1,
            l2_normalize=False,
            **kwargs
        ):
            super(RepresentationLearner, self).__init__(**kwargs)
            self.encoder = encoder
            # Create projection head.
            self.projector = keras.Sequential(
                [
                    layers.Dropout(dropout_rate),
                    layers.Dense(units=projection_units, use_bias=False),
                    layers.BatchNormalization(),
                    layers.ReLU(),
                ]
            )
            self.num_augmentations = num_augmentations
            self.temperature = temperature
            self.l2_normalize = l2_normalize
            self.loss_tracker = keras.metrics.Mean(name="loss")

        @property
        def metrics(self):
            return [self.loss_tracker]

        def compute_contrastive_loss(self, feature_vectors, batch_size):
            num_augmentations = tf.shape(feature_vectors)[0] // batch_size
            if self.l2_normalize:
                feature_vectors = tf.math.l2_normalize(feature_vectors, -1)
            # The logits shape is [num_augmentations * batch_size, num_augmentations * batch_size].
            logits = (
                tf.linalg.matmul(feature_vectors, feature_vectors, transpose_b=True)
                / self.temperature
            )
            # Apply log-max trick for numerical stability.
            logits_max = tf.math.reduce_max(logits, axis=1)
            logits = logits - logits_max
            # The shape of targets is [num_augmentations * batch_size, num_augmentations * batch_size].
            # targets is a matrix consits of num_augmentations submatrices of shape [batch_size * batch_size].
            # Each [batch_size * batch_size] submatrix is an identity matrix (diagonal entries are ones).
            targets = tf.tile(tf.eye(batch_size), [num_augmentations, num_augmentations])
            # Compute cross entropy loss
            return keras.losses.categorical_crossentropy(
                y_true=targets, y_pred=logits, from_logits=True
            )

        def call(self, inputs):
            # Preprocess the input images.
            preprocessed = data_preprocessing(inputs)
            # Create augmented versions of the images.
            augmented = []
            for _ in range(self.num_augmentations):
                augmented.append(data_augmentation(preprocessed))
            augmented = layers.Concatenate(axis=0)(augmented)
            # Generate embedding representations of the images.
            features = self.encoder(augmented)
            # Apply projection head.
            return self.projector(features)

        def train_step(self, inputs):
            batch_size = tf.shape(inputs)[0]
            # Run the forward pass and compute the contrastive loss
            with tf.GradientTape() as tape:
                feature_vectors = self(inputs, training=True)
                loss = self.compute_contrastive_loss(feature_vectors, batch_size)
            # Compute gradients
            trainable_vars = self.trainable_variables
            gradients = tape.gradient(loss, trainable_vars)
            # Update weights
            self.optimizer.apply_gradients(zip(gradients, trainable_vars))
            # Update loss tracker metric
            self.loss_tracker.update_state(loss)
            # Return a dict mapping metric names to current value
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, inputs):
            batch_size = tf.shape(inputs)[0]
            feature_vectors = self(inputs, training=False)
            loss = self.compute_contrastive_loss(feature_vectors, batch_size)
            self.loss_tracker.update_state(loss)
            return {"loss": self.loss_tracker.result()}

    # Create vision encoder.
    encoder = create_encoder(representation_dim)
    # Create representation learner.
    representation_learner = RepresentationLearner(
        encoder, projection_units, num_augmentations=2, temperature=0.1
    )
    # Create a a Cosine decay learning rate scheduler.
    lr_scheduler = keras.optimizers.schedules.CosineDecay(  # keras.experimental.CosineDecay
        initial_learning_rate=0.001, decay_steps=500, alpha=0.1
    )
    # Compile the model.
    representation_learner.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=lr_scheduler, weight_decay=0.0001),
    )
    # Fit the model.
    history = representation_learner.fit(
        x=x_data,
        batch_size=16,  # 512
        epochs=1,  # 50
    )

    batch_size = 8  # 500
    # Get the feature vector representations of the images.
    feature_vectors = encoder.predict(x_data, batch_size=batch_size, verbose=1)
    # Normalize the feature vectores.
    feature_vectors = tf.math.l2_normalize(feature_vectors, -1)

    neighbours = []
    num_batches = feature_vectors.shape[0] // batch_size
    for batch_idx in tqdm(range(num_batches)):
        start_idx = batch_idx * batch_size
        end_idx = start_idx + batch_size
        current_batch = feature_vectors[start_idx:end_idx]
        # Compute the dot similarity.
        similarities = tf.linalg.matmul(current_batch, feature_vectors, transpose_b=True)
        # Get the indices of most similar vectors.
        _, indices = tf.math.top_k(similarities, k=k_neighbours + 1, sorted=True)
        # Add the indices to the neighbours.
        neighbours.append(indices[..., 1:])

    neighbours = np.reshape(np.array(neighbours), (-1, k_neighbours))

    class ClustersConsistencyLoss(keras.losses.Loss):
        def __init__(self):
            super(ClustersConsistencyLoss, self).__init__()

        def __call__(self, target, similarity, sample_weight=None):
            # Set targets to be ones.
            target = tf.ones_like(similarity)
            # Compute cross entropy loss.
            loss = keras.losses.binary_crossentropy(
                y_true=target, y_pred=similarity, from_logits=True
            )
            return tf.math.reduce_mean(loss)

    class ClustersEntropyLoss(keras.losses.Loss):
        def __init__(self, entropy_loss_weight=1.0):
            super(ClustersEntropyLoss, self).__init__()
            self.entropy_loss_weight = entropy_loss_weight

        def __call__(self, target, cluster_probabilities, sample_weight=None):
            # Ideal entropy = log(num_clusters).
            num_clusters = tf.cast(tf.shape(cluster_probabilities)[-1], tf.dtypes.float32)
            target = tf.math.log(num_clusters)
            # Compute the overall clusters distribution.
            cluster_probabilities = tf.math.reduce_mean(cluster_probabilities, axis=0)
            # Replacing zero probabilities - if any - with a very small value.
            cluster_probabilities = tf.clip_by_value(
                cluster_probabilities, clip_value_min=1e-8, clip_value_max=1.0
            )
            # Compute the entropy over the clusters.
            entropy = -tf.math.reduce_sum(
                cluster_probabilities * tf.math.log(cluster_probabilities)
            )
            # Compute the difference between the target and the actual.
            loss = target - entropy
            return loss

    def create_clustering_model(encoder, num_clusters, name=None):
        inputs = keras.Input(shape=input_shape)
        # Preprocess the input images.
        preprocessed = data_preprocessing(inputs)
        # Apply data augmentation to the images.
        augmented = data_augmentation(preprocessed)
        # Generate embedding representations of the images.
        features = encoder(augmented)
        # Assign the images to clusters.
        outputs = layers.Dense(units=num_clusters, activation="softmax")(features)
        # Create the model.
        model = keras.Model(inputs=inputs, outputs=outputs, name=name)
        return model

    def create_clustering_learner(clustering_model):
        anchor = keras.Input(shape=input_shape, name="anchors")
        neighbours = keras.Input(
            shape=tuple([k_neighbours]) + input_shape, name="neighbours"
        )
        # Changes neighbours shape to [batch_size * k_neighbours, width, height, channels]
        neighbours_reshaped = tf.reshape(neighbours, shape=tuple([-1]) + input_shape)
        # anchor_clustering shape: [batch_size, num_clusters]
        anchor_clustering = clustering_model(anchor)
        # neighbours_clustering shape: [batch_size * k_neighbours, num_clusters]
        neighbours_clustering = clustering_model(neighbours_reshaped)
        # Convert neighbours_clustering shape to [batch_size, k_neighbours, num_clusters]
        neighbours_clustering = tf.reshape(
            neighbours_clustering,
            shape=(-1, k_neighbours, tf.shape(neighbours_clustering)[-1]),
        )
        # similarity shape: [batch_size, 1, k_neighbours]
        similarity = tf.linalg.einsum(
            "bij,bkj->bik", tf.expand_dims(anchor_clustering, axis=1), neighbours_clustering
        )
        # similarity shape:  [batch_size, k_neighbours]
        similarity = layers.Lambda(lambda x: tf.squeeze(x, axis=1), name="similarity")(
            similarity
        )
        # Create the model.
        model = keras.Model(
            inputs=[anchor, neighbours],
            outputs=[similarity, anchor_clustering],
            name="clustering_learner",
        )
        return model

    # If tune_encoder_during_clustering is set to False,
    # then freeze the encoder weights.
    for layer in encoder.layers:
        layer.trainable = tune_encoder_during_clustering
    # Create the clustering model and learner.
    clustering_model = create_clustering_model(encoder, num_clusters, name="clustering")
    clustering_learner = create_clustering_learner(clustering_model)
    # Instantiate the model losses.
    losses = [ClustersConsistencyLoss(), ClustersEntropyLoss(entropy_loss_weight=5)]
    # Create the model inputs and labels.
    inputs = {"anchors": x_data, "neighbours": tf.gather(x_data, neighbours)}
    labels = tf.ones(shape=(x_data.shape[0]))
    # Compile the model.
    clustering_learner.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=0.0005, weight_decay=0.0001),
        loss=losses,
    )

    encoder_before = [w.numpy().copy() for w in encoder.weights]
    # Begin training the model.
    # `y=labels` in the example: tf.keras 2 gave one target to every output; Keras 3 (and
    # kgraph) want one per output
    clustering_learner.fit(x=inputs, y=[labels, labels], batch_size=16, epochs=1)  # 512, 50

    # Get the cluster probability distribution of the input images.
    clustering_probs = clustering_model.predict(x_data, batch_size=batch_size, verbose=1)
    # Get the cluster of the highest probability.
    cluster_assignments = tf.math.argmax(clustering_probs, axis=-1).numpy()
    # Store the clustering confidence.
    # Images with the highest clustering confidence are considered the 'prototypes'
    # of the clusters.
    cluster_confidence = tf.math.reduce_max(clustering_probs, axis=-1).numpy()

    clusters = defaultdict(list)
    for idx, c in enumerate(cluster_assignments):
        clusters[c].append((idx, cluster_confidence[idx]))

    for c in range(num_clusters):
        print("cluster", c, ":", len(clusters[c]))

    cluster_label_counts = dict()

    accuracies = []
    for c in range(num_clusters):
        cluster_label_counts[c] = [0] * num_classes
        instances = clusters[c]
        for i, _ in instances:
            cluster_label_counts[c][y_data[i][0]] += 1

        cluster_label_idx = np.argmax(cluster_label_counts[c])
        correct_count = np.max(cluster_label_counts[c])
        cluster_size = len(clusters[c])
        accuracy = (
            np.round((correct_count / cluster_size) * 100, 2) if cluster_size > 0 else 0
        )
        cluster_label = classes[cluster_label_idx]
        print("cluster", c, "label is:", cluster_label, " -  accuracy:", accuracy, "%")
        accuracies.append(accuracy)

    assert set(history.history) == {"loss"} and np.isfinite(history.history["loss"][0])
    assert sum(len(clusters[c]) for c in range(num_clusters)) == len(x_data) == 32
    assert all(0 <= a <= 100 for a in accuracies)
    for w, before in zip(encoder.weights, encoder_before):  # frozen during clustering
        np.testing.assert_array_equal(w.numpy(), before)

    # neighbours: the k most similar other images, by cosine similarity, in numpy
    vectors = np.asarray(feature_vectors)
    order = np.argsort(-(vectors @ vectors.T), axis=1, kind="stable")
    top = np.sort(-(vectors @ vectors.T), axis=1)
    assert np.array_equal(neighbours[:, 0], order[:, 1]) or np.allclose(
        top[:, 0], top[:, 1], atol=1e-6)
    assert neighbours.shape == (32, k_neighbours)

    # the losses against numpy
    rng = np.random.default_rng(4)
    features = rng.normal(size=(6, 5)).astype("float32")
    loss = representation_learner.compute_contrastive_loss(features, 3)
    logits = features @ features.T / 0.1
    logits = logits - logits.max(axis=1)  # as written: broadcast along the last axis
    targets = np.tile(np.eye(3), (2, 2))
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(loss, -(targets * log_probs).sum(axis=1), rtol=1e-4)

    similarity = rng.normal(size=(4, 5)).astype("float32")
    consistency = ClustersConsistencyLoss()(None, similarity)
    expected = np.mean(np.log1p(np.exp(-similarity)))
    np.testing.assert_allclose(consistency, expected, rtol=1e-5)
    probabilities = rng.dirichlet(np.ones(num_clusters), size=6).astype("float32")
    entropy_loss = ClustersEntropyLoss(entropy_loss_weight=5)(None, probabilities)
    mean = probabilities.mean(axis=0)
    np.testing.assert_allclose(entropy_loss, np.log(num_clusters) + np.sum(mean * np.log(mean)),
                               rtol=1e-4, atol=1e-6)
