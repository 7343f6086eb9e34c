"""keras.io example "Knowledge distillation recipes"
(examples/keras_recipes/better_knowledge_distillation.py), partly.

The Keras 3 source (TensorFlow backend) as written, with `import keras; import tensorflow as tf`
swapped for kgraph: the tf.data pipeline (`tf.image.resize`/`random_crop`/
`random_flip_left_right` for training, `tf.image.central_crop` + resize otherwise, a batch-level
`mixup` with `tf.random.uniform([], 0, 1)` and `tf.reverse(images, axis=[0])`), the student
`keras.applications.ResNet50V2(weights=None, classes=102, classifier_activation="linear")`, the
`Distiller` with its `metrics` property, `train_step` (`tf.GradientTape`, `tf.nn.softmax`,
`apply_gradients(zip(...))`) and `test_step` (`compiled_metrics`), the `WarmUpCosine` schedule
(`tf.cos`, `tf.where(..., name=...)`) driving `AdamW(clipnorm=...)`, `fit(steps_per_epoch=...,
validation_data=...)` and the student's own `compile(metrics=["accuracy"])` + `evaluate`.
What does not run as written: the teacher is a downloaded BiT SavedModel read with
`keras.layers.TFSMLayer` (TensorFlow SavedModel only), replaced by a small untrained
convolutional model with the same input and 102 logits; the pretrained-student download at the
end is left out, and so are the plots (the schedule's values are checked against numpy instead).
`student.evaluate(test_ds)` after `student_model.compile(metrics=["accuracy"])` raises "No loss
to compute" (Keras 3 on TensorFlow, the example's backend, raises it too; the stored output is
tf.keras 2's, which printed loss 0), so the test asserts that error and takes the top-1
accuracy from `predict`.
`tfds.load("oxford_flowers102")` is replaced by `tf.data.Dataset.from_tensor_slices` of random
uint8 images (48x48) and int64 labels. Sizes: BIGGER 160 -> 40, RESIZE 128 -> 32 (the smallest
ResNet50V2 takes), BATCH_SIZE 64 -> 8, 16 training / 8 validation / 8 test images, 1 epoch.
Marked slow (ResNet50V2's train, test and evaluate programs).
"""

import math

import numpy as np
import pytest

RESNET50V2_102_CLASSES_PARAMS = 23_773_798  # real Keras 3.15, classes=102


def _flowers_like(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 48, 48, 3), dtype=np.uint8)
    return images, rng.integers(0, 102, (n,)).astype(np.int64)


@pytest.mark.slow
def test_better_knowledge_distillation():
    import kgraph as tf
    from kgraph import keras

    AUTO = tf.data.AUTOTUNE  # Used to dynamically adjust parallelism.
    BATCH_SIZE = 8

    # Comes from Table 4 and "Training setup" section.
    TEMPERATURE = 10  # Used to soften the logits before they go to softmax.
    INIT_LR = 0.003  # Initial learning rate that will be decayed over the training period.
    WEIGHT_DECAY = 0.001  # Used for regularization.
    CLIP_THRESHOLD = 1.0  # Used for clipping the gradients by L2-norm.

    BIGGER = 40
    RESIZE = 32

    train_ds, validation_ds, test_ds = (
        tf.data.Dataset.from_tensor_slices(_flowers_like(n, seed))
        for n, seed in ((16, 0), (8, 1), (8, 2))
    )
    print(f"Number of training examples: {train_ds.cardinality()}.")
    print(f"Number of validation examples: {validation_ds.cardinality()}.")
    print(f"Number of test examples: {test_ds.cardinality()}.")

    # stand-in for the downloaded TFSMLayer("T-r101x3-128") teacher
    teacher_model = keras.Sequential(
        [
            keras.Input((RESIZE, RESIZE, 3)),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(102),
        ]
    )
    teacher_model.trainable = False

    def mixup(images, labels):
        alpha = tf.random.uniform([], 0, 1)
        mixedup_images = alpha * images + (1 - alpha) * tf.reverse(images, axis=[0])
        # The labels do not matter here since they are NOT used during
        # training.
        return mixedup_images, labels

    def preprocess_image(image, label, train=True):
        image = tf.cast(image, tf.float32) / 255.0

        if train:
            image = tf.image.resize(image, (BIGGER, BIGGER))
            image = tf.image.random_crop(image, (RESIZE, RESIZE, 3))
            image = tf.image.random_flip_left_right(image)
        else:
            # Central fraction amount is from here:
            # https://git.io/J8Kda.
            image = tf.image.central_crop(image, central_fraction=0.875)
            image = tf.image.resize(image, (RESIZE, RESIZE))

        return image, label

    def prepare_dataset(dataset, train=True, batch_size=BATCH_SIZE):
        if train:
            dataset = dataset.map(preprocess_image, num_parallel_calls=AUTO)
            dataset = dataset.shuffle(BATCH_SIZE * 10)
        else:
            dataset = dataset.map(
                lambda x, y: (preprocess_image(x, y, train)), num_parallel_calls=AUTO
            )
        dataset = dataset.batch(batch_size)

        if train:
            dataset = dataset.map(mixup, num_parallel_calls=AUTO)

        dataset = dataset.prefetch(AUTO)
        return dataset

    train_ds = prepare_dataset(train_ds, True)
    validation_ds = prepare_dataset(validation_ds, False)
    test_ds = prepare_dataset(test_ds, False)

    sample_images, _ = next(iter(train_ds))
    assert sample_images.shape == (BATCH_SIZE, RESIZE, RESIZE, 3)
    assert 0.0 <= float(np.min(sample_images.numpy())) <= float(np.max(sample_images)) <= 1.0

    def get_resnetv2():
        resnet_v2 = keras.applications.ResNet50V2(
            weights=None,
            input_shape=(RESIZE, RESIZE, 3),
            classes=102,
            classifier_activation="linear",
        )
        return resnet_v2

    # as real Keras counts (the parameter count does not depend on the input size)
    assert get_resnetv2().count_params() == RESNET50V2_102_CLASSES_PARAMS

    class Distiller(tf.keras.Model):
        def __init__(self, student, teacher):
            super().__init__()
            self.student = student
            self.teacher = teacher
            self.loss_tracker = keras.metrics.Mean(name="distillation_loss")

        @property
        def metrics(self):
            metrics = super().metrics
            metrics.append(self.loss_tracker)
            return metrics

        def compile(
            self,
            optimizer,
            metrics,
            distillation_loss_fn,
            temperature=TEMPERATURE,
        ):
            super().compile(optimizer=optimizer, metrics=metrics)
            self.distillation_loss_fn = distillation_loss_fn
            self.temperature = temperature

        def train_step(self, data):
            # Unpack data
            x, _ = data

            # Forward pass of teacher
            teacher_predictions = self.teacher(x, training=False)

            with tf.GradientTape() as tape:
                # Forward pass of student
                student_predictions = self.student(x, training=True)

                # Compute loss
                distillation_loss = self.distillation_loss_fn(
                    tf.nn.softmax(teacher_predictions / self.temperature, axis=1),
                    tf.nn.softmax(student_predictions / self.temperature, axis=1),
                )

            # Compute gradients
            trainable_vars = self.student.trainable_variables
            gradients = tape.gradient(distillation_loss, trainable_vars)

            # Update weights
            self.optimizer.apply_gradients(zip(gradients, trainable_vars))

            # Report progress
            self.loss_tracker.update_state(distillation_loss)
            return {"distillation_loss": self.loss_tracker.result()}

        def test_step(self, data):
            # Unpack data
            x, y = data

            # Forward passes
            teacher_predictions = self.teacher(x, training=False)
            student_predictions = self.student(x, training=False)

            # Calculate the loss
            distillation_loss = self.distillation_loss_fn(
                tf.nn.softmax(teacher_predictions / self.temperature, axis=1),
                tf.nn.softmax(student_predictions / self.temperature, axis=1),
            )

            # Report progress
            self.loss_tracker.update_state(distillation_loss)
            self.compiled_metrics.update_state(y, student_predictions)
            results = {m.name: m.result() for m in self.metrics}
            return results

    class WarmUpCosine(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(
            self, learning_rate_base, total_steps, warmup_learning_rate, warmup_steps
        ):
            super().__init__()

            self.learning_rate_base = learning_rate_base
            self.total_steps = total_steps
            self.warmup_learning_rate = warmup_learning_rate
            self.warmup_steps = warmup_steps
            self.pi = tf.constant(np.pi)

        def __call__(self, step):
            if self.total_steps < self.warmup_steps:
                raise ValueError("Total_steps must be larger or equal to warmup_steps.")

            cos_annealed_lr = tf.cos(
                self.pi
                * (tf.cast(step, tf.float32) - self.warmup_steps)
                / float(self.total_steps - self.warmup_steps)
            )
            learning_rate = 0.5 * self.learning_rate_base * (1 + cos_annealed_lr)

            if self.warmup_steps > 0:
                if self.learning_rate_base < self.warmup_learning_rate:
                    raise ValueError(
                        "Learning_rate_base must be larger or equal to "
                        "warmup_learning_rate."
                    )
                slope = (
                    self.learning_rate_base - self.warmup_learning_rate
                ) / self.warmup_steps
                warmup_rate = slope * tf.cast(step, tf.float32) + self.warmup_learning_rate
                learning_rate = tf.where(
                    step < self.warmup_steps, warmup_rate, learning_rate
                )
            return tf.where(
                step > self.total_steps, 0.0, learning_rate, name="learning_rate"
            )

    ARTIFICIAL_EPOCHS = 1000
    ARTIFICIAL_BATCH_SIZE = 512
    DATASET_NUM_TRAIN_EXAMPLES = 16
    TOTAL_STEPS = int(
        DATASET_NUM_TRAIN_EXAMPLES / ARTIFICIAL_BATCH_SIZE * ARTIFICIAL_EPOCHS
    )
    scheduled_lrs = WarmUpCosine(
        learning_rate_base=INIT_LR,
        total_steps=TOTAL_STEPS,
        warmup_learning_rate=0.0,
        warmup_steps=10,
    )

    lrs = [scheduled_lrs(step) for step in range(TOTAL_STEPS)]
    # the plotted curve: a linear warmup, then half a cosine down to 0
    steps = np.arange(TOTAL_STEPS, dtype=np.float64)
    expected = np.where(
        steps < 10,
        INIT_LR / 10 * steps,
        0.5 * INIT_LR * (1 + np.cos(np.pi * (steps - 10) / (TOTAL_STEPS - 10))),
    )
    np.testing.assert_allclose([float(lr) for lr in lrs], expected, rtol=1e-5, atol=1e-7)

    optimizer = keras.optimizers.AdamW(
        weight_decay=WEIGHT_DECAY, learning_rate=scheduled_lrs, clipnorm=CLIP_THRESHOLD
    )

    student_model = get_resnetv2()

    distiller = Distiller(student=student_model, teacher=teacher_model)
    distiller.compile(
        optimizer,
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
        distillation_loss_fn=keras.losses.KLDivergence(),
        temperature=TEMPERATURE,
    )

    teacher_before = [np.array(w) for w in teacher_model.get_weights()]
    student_before = [np.array(w) for w in student_model.trainable_weights]
    history = distiller.fit(
        train_ds,
        steps_per_epoch=int(np.ceil(DATASET_NUM_TRAIN_EXAMPLES / BATCH_SIZE)),
        validation_data=validation_ds,
        epochs=1,  # This should be at least 1000.
    )

    student = distiller.student
    student_model.compile(metrics=["accuracy"])
    # Keras 3 on TensorFlow (the example's backend) refuses to evaluate a model compiled
    # without a loss, as kgraph does (tf.keras 2 printed loss 0; Keras 3 on JAX gives 0)
    with pytest.raises(ValueError, match="No loss to compute"):
        _, top1_accuracy = student.evaluate(test_ds)
    logits = student.predict(test_ds)
    labels = np.concatenate([y for _, y in test_ds.as_numpy_iterator()])
    top1_accuracy = float(np.mean(np.argmax(logits, -1) == labels))
    print(f"Top-1 accuracy on the test set: {round(top1_accuracy * 100, 2)}%")

    assert math.isfinite(history.history["distillation_loss"][0])
    assert math.isfinite(history.history["val_distillation_loss"][0])
    assert "val_sparse_categorical_accuracy" in history.history
    assert 0.0 <= top1_accuracy <= 1.0
    # only the student trains: the frozen teacher is not in the gradient's variables
    for before, after in zip(teacher_before, teacher_model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert any(
        not np.array_equal(b, np.asarray(a))
        for b, a in zip(student_before, student_model.trainable_weights)
    )
