"""keras.io guide "Multi-GPU distributed training with TensorFlow"
(guides/distributed_training_with_tensorflow.py).

Each test walks one section of the guide with its code as written; `import tensorflow as tf;
import keras` are `import kgraph as tf; from kgraph import keras` (the guide's
`KERAS_BACKEND="tensorflow"` line has nothing to choose here): `tf.distribute.MirroredStrategy()`
over the devices kgraph finds (the CPU here: one replica), models created, compiled, fit and
evaluated in its scope, and the fault-tolerance loop restoring the newest `.keras`
checkpoint of `./ckpt` (in the test's temporary folder). MNIST is random arrays of its shapes
(tests/examples/example_datasets.py: 256 train, 64 test; num_val_samples 10000 -> 64).
Checked: replica count, history keys, the second `run_training` restoring the first's
checkpoint (its weights, not fresh ones).
"""

import os

import numpy as np

from example_datasets import mnist_load_data


def _helpers():
    import kgraph as tf
    from kgraph import keras

    def get_compiled_model():
        inputs = keras.Input(shape=(784,))
        x = keras.layers.Dense(256, activation="relu")(inputs)
        x = keras.layers.Dense(256, activation="relu")(x)
        outputs = keras.layers.Dense(10)(x)
        model = keras.Model(inputs, outputs)
        model.compile(
            optimizer=keras.optimizers.Adam(),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy()],
        )
        return model

    def get_dataset():
        batch_size = 32
        num_val_samples = 64  # 10000 in the guide
        (x_train, y_train), (x_test, y_test) = mnist_load_data()  # keras.datasets.mnist
        x_train = x_train.reshape(-1, 784).astype("float32") / 255
        x_test = x_test.reshape(-1, 784).astype("float32") / 255
        y_train = y_train.astype("float32")
        y_test = y_test.astype("float32")
        x_val = x_train[-num_val_samples:]
        y_val = y_train[-num_val_samples:]
        x_train = x_train[:-num_val_samples]
        y_train = y_train[:-num_val_samples]
        return (
            tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(batch_size),
            tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(batch_size),
            tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(batch_size),
        )

    return get_compiled_model, get_dataset


def test_single_host_multi_device_synchronous_training():
    import kgraph as tf

    tf.keras.utils.set_random_seed(0)
    get_compiled_model, get_dataset = _helpers()
    strategy = tf.distribute.MirroredStrategy()
    print("Number of devices: {}".format(strategy.num_replicas_in_sync))
    assert strategy.num_replicas_in_sync >= 1

    with strategy.scope():
        model = get_compiled_model()
        train_dataset, val_dataset, test_dataset = get_dataset()
        history = model.fit(train_dataset, epochs=2, validation_data=val_dataset)
        loss, accuracy = model.evaluate(test_dataset)
    assert set(history.history) == {"loss", "sparse_categorical_accuracy", "val_loss",
                                    "val_sparse_categorical_accuracy"}
    assert len(history.history["loss"]) == 2 and np.isfinite(loss) and 0 <= accuracy <= 1


def test_using_callbacks_to_ensure_fault_tolerance(tmp_path, monkeypatch):
    import kgraph as tf
    from kgraph import keras

    monkeypatch.chdir(tmp_path)
    tf.keras.utils.set_random_seed(0)
    get_compiled_model, get_dataset = _helpers()
    train_dataset, val_dataset, _ = get_dataset()

    checkpoint_dir = "./ckpt"
    if not os.path.exists(checkpoint_dir):
        os.makedirs(checkpoint_dir)
    made = []

    def make_or_restore_model():
        checkpoints = [checkpoint_dir + "/" + name for name in os.listdir(checkpoint_dir)]
        if checkpoints:
            latest_checkpoint = max(checkpoints, key=os.path.getctime)
            print("Restoring from", latest_checkpoint)
            made.append(keras.models.load_model(latest_checkpoint))
            return made[-1]
        print("Creating a new model")
        made.append(get_compiled_model())
        return made[-1]

    def run_training(epochs=1):
        strategy = tf.distribute.MirroredStrategy()
        with strategy.scope():
            model = make_or_restore_model()
            callbacks = [
                keras.callbacks.ModelCheckpoint(
                    filepath=checkpoint_dir + "/ckpt-{epoch}.keras",
                    save_freq="epoch",
                )
            ]
            model.fit(
                train_dataset,
                epochs=epochs,
                callbacks=callbacks,
                validation_data=val_dataset,
                verbose=2,
            )

    run_training(epochs=1)
    trained = [np.array(w) for w in made[0].get_weights()]
    run_training(epochs=1)
    assert os.listdir(checkpoint_dir) == ["ckpt-1.keras"]  # the second run overwrote it
    assert len(made) == 2 and made[1] is not made[0]
    restored = keras.models.load_model(checkpoint_dir + "/ckpt-1.keras")
    # the second run started from the first's weights and trained on: the file holds neither
    # fresh weights nor the first run's
    assert any(np.abs(a - b).max() > 0 for a, b in zip(restored.get_weights(), trained))
    assert made[1].optimizer.iterations.numpy() == 2 * 6  # 6 steps a run, resumed at 6
