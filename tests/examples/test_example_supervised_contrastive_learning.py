"""keras.io example "Supervised Contrastive Learning"
(examples/vision/supervised-contrastive-learning.py).

The example's code as written (its stored text, the TensorFlow-era one: last modified
2020/11/30, with Keras 2.x layer names) with `import tensorflow as tf; from tensorflow import
keras; from tensorflow.keras import layers` swapped for kgraph: `Normalization.adapt` in the
augmentation Sequential, an encoder wrapping `keras.applications.ResNet50V2(include_top=False,
weights=None, pooling="avg")`, the baseline classifier trained end to end, the
`SupervisedContrastiveLoss` (a `keras.losses.Loss` overriding `__call__` itself, with
`tf.math.l2_normalize`, `tf.divide`, `tf.matmul`, `tf.transpose`, `tf.squeeze`) pretraining
the encoder with a projection head, then a classifier on the frozen encoder
(`layer.trainable = False` for each encoder layer).

Two TensorFlow-only pieces are replaced, minimally: TensorFlow Addons' `tfa.losses.npairs_loss`
(tfa is TensorFlow-only and retired) by a stand-in `tfa` namespace whose `npairs_loss` is TFA's
definition in `keras.ops` (softmax cross-entropy of the logits against the row-normalized
label-equality matrix, as the example's Keras 3 port writes it), and the augmentation's
`RandomWidth(0.2)`/`RandomHeight(0.2)` (tf.keras 2 layers that Keras 3 no longer has; its port
of this example drops them too) are left out.

CIFAR-10 is replaced by random arrays of its shapes (`example_datasets.cifar10_load_data`,
32 train, 16 test); sizes cut: batch_size 265 -> 16, num_epochs 50 -> 1, hidden_units
512 -> 64, projection_units 128 -> 32 (the ResNet50V2 encoder is kept whole). Marked slow
(three fits of a 190-layer encoder).
"""

import types

import numpy as np
import pytest
from example_datasets import cifar10_load_data


def npairs_loss(y_true, y_pred):
    """Stand-in for `tfa.losses.npairs_loss` (TensorFlow Addons' definition in keras.ops)."""
    from kgraph.keras import ops

    y_true = ops.expand_dims(y_true, -1)
    y_true = ops.cast(ops.equal(y_true, ops.transpose(y_true)), y_pred.dtype)
    y_true = y_true / ops.sum(y_true, 1, keepdims=True)
    loss = ops.categorical_crossentropy(y_true, y_pred, from_logits=True)
    return ops.mean(loss)


@pytest.mark.slow
def test_supervised_contrastive_learning():
    import kgraph as tf
    import numpy as np
    from kgraph import keras
    from kgraph.keras import layers

    tfa = types.SimpleNamespace(losses=types.SimpleNamespace(npairs_loss=npairs_loss))
    keras.utils.set_random_seed(0)

    num_classes = 10
    input_shape = (32, 32, 3)

    # Load the train and test data splits
    (x_train, y_train), (x_test, y_test) = cifar10_load_data(n_train=16, n_test=8)

    # Display shapes of train and test datasets
    print(f"x_train shape: {x_train.shape} - y_train shape: {y_train.shape}")
    print(f"x_test shape: {x_test.shape} - y_test shape: {y_test.shape}")

    data_augmentation = keras.Sequential(
        [
            layers.Normalization(),
            layers.RandomFlip("horizontal"),
            layers.RandomRotation(0.02),
        ]
    )

    # Setting the state of the normalization layer.
    data_augmentation.layers[0].adapt(x_train)

    def create_encoder():
        resnet = keras.applications.ResNet50V2(
            include_top=False, weights=None, input_shape=input_shape, pooling="avg"
        )

        inputs = keras.Input(shape=input_shape)
        augmented = data_augmentation(inputs)
        outputs = resnet(augmented)
        model = keras.Model(inputs=inputs, outputs=outputs, name="cifar10-encoder")
        return model

    encoder = create_encoder()
    encoder.summary()
    assert encoder.output_shape == (None, 2048)

    learning_rate = 0.001
    batch_size = 8
    hidden_units = 64
    projection_units = 32
    num_epochs = 1
    dropout_rate = 0.5
    temperature = 0.05

    def create_classifier(encoder, trainable=True):

        for layer in encoder.layers:
            layer.trainable = trainable

        inputs = keras.Input(shape=input_shape)
        features = encoder(inputs)
        features = layers.Dropout(dropout_rate)(features)
        features = layers.Dense(hidden_units, activation="relu")(features)
        features = layers.Dropout(dropout_rate)(features)
        outputs = layers.Dense(num_classes, activation="softmax")(features)

        model = keras.Model(inputs=inputs, outputs=outputs, name="cifar10-classifier")
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=[keras.metrics.SparseCategoricalAccuracy()],
        )
        return model

    encoder = create_encoder()
    classifier = create_classifier(encoder)
    classifier.summary()

    history = classifier.fit(x=x_train, y=y_train, batch_size=batch_size, epochs=num_epochs)

    accuracy = classifier.evaluate(x_test, y_test)[1]
    print(f"Test accuracy: {round(accuracy * 100, 2)}%")
    assert set(history.history) == {"loss", "sparse_categorical_accuracy"}
    assert 0.0 <= accuracy <= 1.0

    class SupervisedContrastiveLoss(keras.losses.Loss):
        def __init__(self, temperature=1, name=None):
            super(SupervisedContrastiveLoss, self).__init__(name=name)
            self.temperature = temperature

        def __call__(self, labels, feature_vectors, sample_weight=None):
            # Normalize feature vectors
            feature_vectors_normalized = tf.math.l2_normalize(feature_vectors, axis=1)
            # Compute logits
            logits = tf.divide(
                tf.matmul(
                    feature_vectors_normalized, tf.transpose(feature_vectors_normalized)
                ),
                self.temperature,
            )
            return tfa.losses.npairs_loss(tf.squeeze(labels), logits)

    # The loss against numpy: softmax cross-entropy of the cosine similarities over the
    # temperature, against the label-equality rows normalized to sum to 1
    features = np.random.default_rng(1).normal(size=(6, 5)).astype("float32")
    labels = np.array([[0], [1], [0], [2], [1], [0]], "uint8")
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    logits = unit @ unit.T / temperature
    same = (labels == labels.T).astype("float64")
    targets = same / same.sum(1, keepdims=True)
    log_softmax = logits - logits.max(1, keepdims=True)
    log_softmax = log_softmax - np.log(np.exp(log_softmax).sum(1, keepdims=True))
    np.testing.assert_allclose(
        float(SupervisedContrastiveLoss(temperature)(labels, features)),
        -(targets * log_softmax).sum(1).mean(), rtol=1e-4)

    def add_projection_head(encoder):
        inputs = keras.Input(shape=input_shape)
        features = encoder(inputs)
        outputs = layers.Dense(projection_units, activation="relu")(features)
        model = keras.Model(
            inputs=inputs, outputs=outputs, name="cifar-encoder_with_projection-head"
        )
        return model

    encoder = create_encoder()

    encoder_with_projection_head = add_projection_head(encoder)
    encoder_with_projection_head.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=SupervisedContrastiveLoss(temperature),
    )

    encoder_with_projection_head.summary()

    history = encoder_with_projection_head.fit(
        x=x_train, y=y_train, batch_size=batch_size, epochs=num_epochs
    )
    assert set(history.history) == {"loss"} and np.isfinite(history.history["loss"]).all()

    classifier = create_classifier(encoder, trainable=False)
    pretrained = [w.numpy().copy() for w in encoder.weights]

    history = classifier.fit(x=x_train, y=y_train, batch_size=batch_size, epochs=num_epochs)

    accuracy = classifier.evaluate(x_test, y_test)[1]
    print(f"Test accuracy: {round(accuracy * 100, 2)}%")

    # the frozen encoder (batch-norm statistics included) did not move; only the head trained
    for before, after in zip(pretrained, encoder.weights):
        np.testing.assert_array_equal(before, after.numpy())
    head = (2048 * hidden_units + hidden_units) + (hidden_units * num_classes + num_classes)
    assert sum(int(np.prod(w.shape)) for w in classifier.trainable_weights) == head
    # ResNet50V2 without its top (as Keras Applications) + Normalization's mean/variance/count
    assert encoder.count_params() == 23_564_800 + 7
    assert 0.0 <= accuracy <= 1.0
