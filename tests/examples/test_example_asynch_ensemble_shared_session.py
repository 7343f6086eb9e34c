"""keras.io example "Asynchronous ensemble with sharing of the tensorflow session"
(examples/keras_recipes/asynch_ensemble_shared_session.py).

The example's code as written with `import tensorflow as tf; from tensorflow.keras...` swapped
for kgraph: four CNNs built on `tf.identity` of one shared `Input` under `tf.device(...)` scopes
(each sub-model's input is that identity, not an `Input`), the ensemble model averaging
`tf.stack`ed softmax outputs with `tf.reduce_mean`, each member compiled and fit, and
`evaluate_model` (`predict` timing and accuracy) on every member and on the ensemble.

`datasets.cifar10.load_data()` is replaced by random arrays of CIFAR-10's shapes
(tests/examples/example_datasets.py); NB_SAMPLES 6000 -> 64. Checked: the ensemble's
prediction is the mean of its members' predictions and the members share no weights.
"""

import numpy as np

from example_datasets import cifar10_load_data


def test_asynch_ensemble_shared_session():
    import time
    import warnings

    import kgraph as tf
    from kgraph.keras.utils import to_categorical
    from kgraph.keras import Input, Model, layers

    warnings.filterwarnings("ignore")
    tf.keras.utils.set_random_seed(0)

    (train_images, train_labels), (test_images, test_labels) = cifar10_load_data()
    train_images, test_images = train_images / 255.0, test_images / 255.0
    train_labels = to_categorical(train_labels)
    test_labels = to_categorical(test_labels)

    NB_SAMPLES = 64  # 6000 in the example
    train_images = train_images[:NB_SAMPLES]
    train_labels = train_labels[:NB_SAMPLES]
    test_images = test_images[:NB_SAMPLES]
    test_labels = test_labels[:NB_SAMPLES]

    ENSEMBLE_SIZE = 4
    NB_EPOCHS = 1
    GPUIDS = [-1, -1, -1, -1]  # asignement of models with devices
    BATCH_SIZE = 16

    def keras_model(x):
        x = layers.Conv2D(32, (3, 3), activation="relu")(x)
        x = layers.MaxPooling2D((2, 2))(x)
        x = layers.Conv2D(64, (3, 3), activation="relu")(x)
        x = layers.MaxPooling2D((2, 2))(x)
        x = layers.Conv2D(64, (3, 3), activation="relu")(x)
        x = layers.Flatten()(x)
        x = layers.Dense(64, activation="relu")(x)
        x = layers.Dense(10, activation="softmax")(x)
        x = layers.Softmax()(x)
        return x

    def evaluate_model(model, x, y):
        start_time = time.time()
        y_pred = model.predict(x, batch_size=BATCH_SIZE)
        enlapsed = time.time() - start_time
        acc = np.mean(np.argmax(y, axis=1) == np.argmax(y_pred, axis=1))
        return {"accuracy": round(acc, 2), "time": round(enlapsed, 2)}

    def from_gpu_id_to_device_name(gpuid):
        if gpuid == -1:
            return "/device:CPU:0"
        else:
            return "/device:GPU:" + str(gpuid)

    class ensemble:
        def __init__(self, ensemble_size, gpus):
            self.loss = "categorical_crossentropy"
            self.opt = "adam"

            self.model_list = []
            output_list = []

            with tf.device(from_gpu_id_to_device_name(gpus[0])):
                input = Input(shape=(32, 32, 3))

            for i in range(ensemble_size):
                with tf.device(from_gpu_id_to_device_name(gpus[i])):
                    input_i = tf.identity(input)
                    output_i = keras_model(input_i)
                    model_i = Model(inputs=input_i, outputs=output_i)
                    output_list.append(output_i)
                    self.model_list.append(model_i)

            with tf.device(from_gpu_id_to_device_name(gpus[0])):
                merge = tf.stack(output_list, axis=-1)
                combined_predictions = tf.reduce_mean(merge, axis=-1)

            self.ensemble = Model(inputs=input, outputs=combined_predictions)
            self.ensemble.compile(loss=self.loss, optimizer=self.opt)

        def fit(self, train_images, train_labels):
            for model_i in self.model_list:
                model_i.compile(loss=self.loss, optimizer=self.opt)
                model_i.fit(
                    x=train_images, y=train_labels, batch_size=BATCH_SIZE, epochs=NB_EPOCHS
                )

        def predict(self, x, batch_size):
            return self.ensemble.predict(x, batch_size=batch_size)

    ensemble = ensemble(ensemble_size=ENSEMBLE_SIZE, gpus=GPUIDS)
    ensemble.fit(train_images, train_labels)

    for i, base_model in enumerate(ensemble.model_list):
        info = evaluate_model(base_model, test_images, test_labels)
        print(f"Model id: {i} accuracy: {info['accuracy']} time: {info['time']}")
        assert 0.0 <= info["accuracy"] <= 1.0

    info = evaluate_model(ensemble, test_images, test_labels)
    print(f"Ensemble accuracy: {info['accuracy']} inference time: {info['time']}")

    members = [m.predict(test_images, verbose=0) for m in ensemble.model_list]
    np.testing.assert_allclose(ensemble.predict(test_images, batch_size=BATCH_SIZE),
                               np.mean(members, axis=0), rtol=1e-5, atol=1e-6)
    kernels = [id(m.layers[-2].weights[0]) for m in ensemble.model_list]  # the last Dense
    assert len(set(kernels)) == ENSEMBLE_SIZE and len(ensemble.ensemble.weights) == 4 * 10
