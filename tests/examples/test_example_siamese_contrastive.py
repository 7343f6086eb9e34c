"""keras.io example "Image similarity estimation using a Siamese Network with a contrastive
loss" (examples/vision/siamese_contrastive.py).

The example's code as written, `import tensorflow as tf; from tensorflow import keras` swapped
for `import kgraph as tf; from kgraph import keras`: `make_pairs`, one embedding network shared
by two towers, a `Lambda` Euclidean distance written with `tf.math.reduce_sum/square/sqrt/
maximum` and `tf.keras.backend.epsilon()`, the contrastive loss closure, RMSprop with
accuracy, fit with validation pairs, evaluate and predict. MNIST is replaced by random digits
of its shape (300 train+validation images, 50 test); 10 epochs -> 1; plots left out.
"""
import random

import numpy as np


def test_siamese_contrastive():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    random.seed(0)
    epochs = 1
    batch_size = 16
    margin = 1

    rng = np.random.default_rng(0)
    x_train_val = rng.integers(0, 256, (300, 28, 28)).astype("uint8")
    y_train_val = rng.integers(0, 10, 300).astype("uint8")
    x_test, y_test = rng.integers(0, 256, (50, 28, 28)).astype("uint8"), \
        rng.integers(0, 10, 50).astype("uint8")
    x_train_val = x_train_val.astype("float32")
    x_test = x_test.astype("float32")
    x_train, x_val = x_train_val[:150], x_train_val[150:]
    y_train, y_val = y_train_val[:150], y_train_val[150:]

    def make_pairs(x, y):
        num_classes = max(y) + 1
        digit_indices = [np.where(y == i)[0] for i in range(num_classes)]
        pairs = []
        labels = []
        for idx1 in range(len(x)):
            x1 = x[idx1]
            label1 = y[idx1]
            idx2 = random.choice(digit_indices[label1])
            x2 = x[idx2]
            pairs += [[x1, x2]]
            labels += [1]
            label2 = random.randint(0, num_classes - 1)
            while label2 == label1:
                label2 = random.randint(0, num_classes - 1)
            idx2 = random.choice(digit_indices[label2])
            x2 = x[idx2]
            pairs += [[x1, x2]]
            labels += [0]
        return np.array(pairs), np.array(labels).astype("float32")

    pairs_train, labels_train = make_pairs(x_train, y_train)
    pairs_val, labels_val = make_pairs(x_val, y_val)
    pairs_test, labels_test = make_pairs(x_test, y_test)
    assert pairs_train.shape == (300, 2, 28, 28)
    x_train_1, x_train_2 = pairs_train[:, 0], pairs_train[:, 1]
    x_val_1, x_val_2 = pairs_val[:, 0], pairs_val[:, 1]
    x_test_1, x_test_2 = pairs_test[:, 0], pairs_test[:, 1]

    def euclidean_distance(vects):
        x, y = vects
        sum_square = tf.math.reduce_sum(tf.math.square(x - y), axis=1, keepdims=True)
        return tf.math.sqrt(tf.math.maximum(sum_square, tf.keras.backend.epsilon()))

    input = layers.Input((28, 28, 1))  # noqa: A001 - the example's name
    x = tf.keras.layers.BatchNormalization()(input)
    x = layers.Conv2D(4, (5, 5), activation="tanh")(x)
    x = layers.AveragePooling2D(pool_size=(2, 2))(x)
    x = layers.Conv2D(16, (5, 5), activation="tanh")(x)
    x = layers.AveragePooling2D(pool_size=(2, 2))(x)
    x = layers.Flatten()(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = layers.Dense(10, activation="tanh")(x)
    embedding_network = keras.Model(input, x)

    input_1 = layers.Input((28, 28, 1))
    input_2 = layers.Input((28, 28, 1))
    tower_1 = embedding_network(input_1)
    tower_2 = embedding_network(input_2)
    merge_layer = layers.Lambda(euclidean_distance)([tower_1, tower_2])
    normal_layer = tf.keras.layers.BatchNormalization()(merge_layer)
    output_layer = layers.Dense(1, activation="sigmoid")(normal_layer)
    siamese = keras.Model(inputs=[input_1, input_2], outputs=output_layer)

    def loss(margin=1):
        def contrastive_loss(y_true, y_pred):
            square_pred = tf.math.square(y_pred)
            margin_square = tf.math.square(tf.math.maximum(margin - (y_pred), 0))
            return tf.math.reduce_mean((1 - y_true) * square_pred + (y_true) * margin_square)
        return contrastive_loss

    siamese.compile(loss=loss(margin=margin), optimizer="RMSprop", metrics=["accuracy"])
    assert embedding_network.count_params() == 5_318 and siamese.count_params() == 5_324
    history = siamese.fit([x_train_1, x_train_2], labels_train,
                          validation_data=([x_val_1, x_val_2], labels_val),
                          batch_size=batch_size, epochs=epochs, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}

    results = siamese.evaluate([x_test_1, x_test_2], labels_test, verbose=0)
    assert len(results) == 2 and 0.0 <= results[1] <= 1.0
    predictions = siamese.predict([x_test_1, x_test_2], verbose=0)
    assert predictions.shape == (100, 1) and ((predictions > 0) & (predictions < 1)).all()
    # the distance layer is the example's formula on the shared tower's embeddings
    first, second = (embedding_network.predict(x, verbose=0) for x in (x_test_1, x_test_2))
    want = np.sqrt(np.maximum(((first - second) ** 2).sum(axis=1, keepdims=True), 1e-7))
    got = keras.Model(siamese.inputs, merge_layer).predict([x_test_1, x_test_2], verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
