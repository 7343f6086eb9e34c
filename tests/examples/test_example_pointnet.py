"""keras.io example "Point cloud classification with PointNet" (examples/vision/pointnet.py).

The Keras 3 code as written (last modified 2024/01/09) with `from tensorflow import data as
tf_data; from keras import ops; import keras; from keras import layers` swapped for kgraph:
a tf.data pipeline whose `augment` map jitters with `keras.random.uniform(points.shape, ...,
dtype="float64")` and reorders with `keras.random.shuffle`, `take`/`skip` train/validation
split of a shuffled dataset, `conv_bn`/`dense_bn` blocks (Conv1D kernel 1, BatchNormalization
momentum 0), two T-nets whose last Dense carries the custom `OrthogonalRegularizer`
(`ops.eye`, `ops.reshape(x, (-1, k, k))`, `ops.tensordot(x, x, axes=(2, 2))`) as an
activity regularizer, `layers.Dot(axes=(2, 1))`, then `predict` on a test batch and
`ops.argmax(preds, -1)[i].numpy()` looked up in CLASS_MAP.

The ModelNet10 download and its trimesh sampling (`parse_dataset`) are replaced by random
point clouds of the sampled shape `(N, NUM_POINTS, 3)` (float64, as `mesh.sample` gives) with
a class map of ModelNet10's folder names; sizes cut: NUM_POINTS 2048 -> 64 (the weights do not
depend on it: 748,979 parameters, as keras.io prints), 40 train / 16 test clouds, BATCH_SIZE
32 -> 8, epochs 20 -> 1. The mesh display and the matplotlib scatter plots are left out (their
titles are built). One TensorFlow-backend idiom is spelled portably: the title's
`CLASS_MAP[preds[i].numpy()]` on a `keras.ops.argmax` result is `CLASS_MAP[int(preds[i])]`
(keras.ops results are arrays, as on Keras' JAX backend, where `.numpy()` fails the same way).
"""

import numpy as np


def test_pointnet():
    from kgraph import data as tf_data
    from kgraph.keras import ops
    from kgraph import keras
    from kgraph.keras import layers

    keras.utils.set_random_seed(seed=42)

    def parse_dataset(num_points=2048):
        # stand-in for the ModelNet10 meshes sampled with trimesh: same shapes and dtypes
        rng = np.random.default_rng(0)
        folders = ["bathtub", "bed", "chair", "desk", "dresser",
                   "monitor", "night_stand", "sofa", "table", "toilet"]
        class_map = dict(enumerate(folders))
        train_points = rng.uniform(-1, 1, (40, num_points, 3))
        test_points = rng.uniform(-1, 1, (16, num_points, 3))
        train_labels = np.arange(40) % len(folders)
        test_labels = np.arange(16) % len(folders)
        return train_points, test_points, train_labels, test_labels, class_map

    NUM_POINTS = 64
    NUM_CLASSES = 10
    BATCH_SIZE = 8

    train_points, test_points, train_labels, test_labels, CLASS_MAP = parse_dataset(
        NUM_POINTS
    )

    def augment(points, label):
        # jitter points
        points += keras.random.uniform(points.shape, -0.005, 0.005, dtype="float64")
        # shuffle points
        points = keras.random.shuffle(points)
        return points, label

    train_size = 0.8
    dataset = tf_data.Dataset.from_tensor_slices((train_points, train_labels))
    test_dataset = tf_data.Dataset.from_tensor_slices((test_points, test_labels))
    train_dataset_size = int(len(dataset) * train_size)

    dataset = dataset.shuffle(len(train_points)).map(augment)
    test_dataset = test_dataset.shuffle(len(test_points)).batch(BATCH_SIZE)

    train_dataset = dataset.take(train_dataset_size).batch(BATCH_SIZE)
    validation_dataset = dataset.skip(train_dataset_size).batch(BATCH_SIZE)

    def conv_bn(x, filters):
        x = layers.Conv1D(filters, kernel_size=1, padding="valid")(x)
        x = layers.BatchNormalization(momentum=0.0)(x)
        return layers.Activation("relu")(x)

    def dense_bn(x, filters):
        x = layers.Dense(filters)(x)
        x = layers.BatchNormalization(momentum=0.0)(x)
        return layers.Activation("relu")(x)

    class OrthogonalRegularizer(keras.regularizers.Regularizer):
        def __init__(self, num_features, l2reg=0.001):
            self.num_features = num_features
            self.l2reg = l2reg
            self.eye = ops.eye(num_features)

        def __call__(self, x):
            x = ops.reshape(x, (-1, self.num_features, self.num_features))
            xxt = ops.tensordot(x, x, axes=(2, 2))
            xxt = ops.reshape(xxt, (-1, self.num_features, self.num_features))
            return ops.sum(self.l2reg * ops.square(xxt - self.eye))

    def tnet(inputs, num_features):
        # Initialise bias as the identity matrix
        bias = keras.initializers.Constant(np.eye(num_features).flatten())
        reg = OrthogonalRegularizer(num_features)

        x = conv_bn(inputs, 32)
        x = conv_bn(x, 64)
        x = conv_bn(x, 512)
        x = layers.GlobalMaxPooling1D()(x)
        x = dense_bn(x, 256)
        x = dense_bn(x, 128)
        x = layers.Dense(
            num_features * num_features,
            kernel_initializer="zeros",
            bias_initializer=bias,
            activity_regularizer=reg,
        )(x)
        feat_T = layers.Reshape((num_features, num_features))(x)
        # Apply affine transformation to input features
        return layers.Dot(axes=(2, 1))([inputs, feat_T])

    inputs = keras.Input(shape=(NUM_POINTS, 3))

    x = tnet(inputs, 3)
    x = conv_bn(x, 32)
    x = conv_bn(x, 32)
    x = tnet(x, 32)
    x = conv_bn(x, 32)
    x = conv_bn(x, 64)
    x = conv_bn(x, 512)
    x = layers.GlobalMaxPooling1D()(x)
    x = dense_bn(x, 256)
    x = layers.Dropout(0.3)(x)
    x = dense_bn(x, 128)
    x = layers.Dropout(0.3)(x)

    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)

    model = keras.Model(inputs=inputs, outputs=outputs, name="pointnet")
    model.summary()

    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=keras.optimizers.Adam(learning_rate=0.001),
        metrics=["sparse_categorical_accuracy"],
    )

    history = model.fit(train_dataset, epochs=1, validation_data=validation_dataset)

    data = test_dataset.take(1)

    points, labels = list(data)[0]
    points = points[:8, ...]
    labels = labels[:8, ...]

    # run test data through model
    preds = model.predict(points)
    preds = ops.argmax(preds, -1)

    points = points.numpy()

    titles = []
    for i in range(8):
        titles.append(
            "pred: {:}, label: {:}".format(
                CLASS_MAP[int(preds[i])], CLASS_MAP[labels.numpy()[i]]
            )
        )

    assert model.count_params() == 748979  # the example's printed summary
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 742899
    assert set(history.history) >= {
        "loss", "sparse_categorical_accuracy", "val_loss", "val_sparse_categorical_accuracy"}
    assert points.shape == (8, NUM_POINTS, 3) and len(titles) == 8

    # the regularizer on a batch of transforms, in numpy: sum over every pair of the batch
    # (tensordot contracts only the last axes, as the example writes it)
    t = np.random.default_rng(1).normal(size=(2, 9)).astype("float32")
    reg = OrthogonalRegularizer(3)
    m = t.reshape(-1, 3, 3)
    xxt = np.einsum("aij,bkj->aibk", m, m).reshape(-1, 3, 3)
    expected = np.sum(0.001 * np.square(xxt - np.eye(3)))
    np.testing.assert_allclose(float(reg(t)), expected, rtol=1e-5)
