"""keras.io example "Electroencephalogram Signal Classification for action identification"
(examples/timeseries/eeg_signal_classification.py).

The stored source is the TensorFlow-era one (`from tensorflow import keras; from
tensorflow.keras import layers; import tensorflow as tf`), swapped for kgraph; its Keras
code as written: `keras.utils.to_categorical`, `tf.data.Dataset.from_tensor_slices`
shuffled and batched, the naive class-weight dict, the Conv1D/BatchNormalization/Dense
model with L2 kernel regularizers (48,988,490 parameters, as real Keras counts),
`print(conv_model.summary())`, `ModelCheckpoint("best_model.h5", save_best_only=True,
monitor="loss")`, `ReduceLROnPlateau(monitor="val_top_k_categorical_accuracy")`, Adam with
`amsgrad=True`, CategoricalCrossentropy, `TopKCategoricalAccuracy(k=3)`/`AUC`/`Precision`/
`Recall`, fit with validation data and `class_weight`, evaluate unpacked into five values,
and the prediction step of `view_evaluated_eeg_plots`.

Replaced: the 105 MB `eeg-data.csv` (a Google Drive download) and its pandas frame by
generated records of the same columns (JSON `raw_values` of 512 readings, `signal_quality`,
raw labels such as "math7" and "colorRound1-2", "unlabeled" and "everyone paired" rows);
the pandas filters, `.drop`, `.apply(json.loads)` and `.replace({"label": ...})` by the same
operations on the records (the example's label map as written); sklearn (not a dependency):
`LabelEncoder`, `MinMaxScaler` and `train_test_split(test_size=0.15, random_state=42)` by
small numpy stand-ins with the same results' shapes and meaning. The plots are left out.
epochs 30 -> 2; 70 records, BATCH_SIZE 64 as written (one batch per epoch). Marked slow
(~10 s: the 49M-parameter model as written, ~4 s of it writing its `.h5` checkpoint).
"""
import json
import random
import types

import numpy as np
import pytest

_RAW_LABELS = ["blink1", "blink3", "math2", "math7", "relax", "music", "video-ver1",
               "thinkOfItems-ver2", "colorRound1-2", "readyRound3", "instruction",
               "colorInstruction1", "unlabeled", "everyone paired"]


def _eeg_records(count, rng):
    return [{"Unnamed: 0": i, "id": int(rng.integers(1, 31)), "indra_time": "2015-05-09",
             "browser_latency": int(rng.integers(400, 600)), "reading_time": "2015-05-09",
             "attention_esense": 0, "meditation_esense": 0, "eeg_power": "[1, 2, 3]",
             "raw_values": json.dumps(rng.integers(-300, 300, 512).tolist()),
             "signal_quality": int(rng.choice([0, 0, 0, 26, 200])),
             "createdAt": "2017", "updatedAt": "2017",
             "label": _RAW_LABELS[i % len(_RAW_LABELS)]} for i in range(count)]


class _LabelEncoder:  # sklearn.preprocessing.LabelEncoder
    def fit(self, y):
        self.classes_ = np.unique(np.asarray(y))
        return self

    def transform(self, y):
        return np.searchsorted(self.classes_, np.asarray(y))

    def inverse_transform(self, y):
        return self.classes_[np.asarray(y)]


class _MinMaxScaler:  # sklearn.preprocessing.MinMaxScaler (one feature column)
    def fit_transform(self, x):
        x = np.asarray(x, dtype=np.float64)
        low, high = x.min(axis=0), x.max(axis=0)
        return (x - low) / np.where(high > low, high - low, 1.0)


def _train_test_split(x, y, test_size, random_state, shuffle):  # sklearn.model_selection's
    order = np.random.RandomState(random_state).permutation(len(x)) if shuffle else \
        np.arange(len(x))
    n_test = int(np.ceil(test_size * len(x)))
    test, train = order[:n_test], order[n_test:]
    return ([x[i] for i in train], [x[i] for i in test], [y[i] for i in train],
            [y[i] for i in test])


preprocessing = types.SimpleNamespace(LabelEncoder=_LabelEncoder, MinMaxScaler=_MinMaxScaler)
model_selection = types.SimpleNamespace(train_test_split=_train_test_split)

_LABEL_MAP = {
    "blink1": "blink", "blink2": "blink", "blink3": "blink", "blink4": "blink",
    "blink5": "blink",
    **{f"math{i}": "math" for i in range(1, 13)},
    "thinkOfItems-ver1": "thinkOfItems", "thinkOfItems-ver2": "thinkOfItems",
    "video-ver1": "video", "video-ver2": "video",
    "thinkOfItemsInstruction-ver1": "thinkOfItemsInstruction",
    "thinkOfItemsInstruction-ver2": "thinkOfItemsInstruction",
    **{f"colorRound{r}-{i}": f"colorRound{r}" for r in range(1, 6) for i in range(1, 7)},
    "colorInstruction1": "colorInstruction", "colorInstruction2": "colorInstruction",
    **{f"readyRound{i}": "readyRound" for i in range(1, 6)},
    **{f"colorRound{i}": "colorRound" for i in range(1, 6)},
}  # the example's `eeg.replace({"label": {...}})` mapping, entry for entry


@pytest.mark.slow
def test_eeg_signal_classification(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    QUALITY_THRESHOLD = 128
    BATCH_SIZE = 64
    SHUFFLE_BUFFER_SIZE = BATCH_SIZE * 2

    # pd.read_csv("eeg-data.csv") and the frame operations, on records
    eeg = _eeg_records(70, np.random.default_rng(0))
    eeg = [r for r in eeg if r["label"] not in ("unlabeled", "everyone paired")]
    for r in eeg:
        for column in ["indra_time", "Unnamed: 0", "browser_latency", "reading_time",
                       "attention_esense", "meditation_esense", "updatedAt", "createdAt"]:
            del r[column]

    def convert_string_data_to_values(value_string):
        str_list = json.loads(value_string)
        return str_list

    for r in eeg:
        r["raw_values"] = convert_string_data_to_values(r["raw_values"])
    eeg = [r for r in eeg if r["signal_quality"] < QUALITY_THRESHOLD]
    for r in eeg:
        r["label"] = _LABEL_MAP.get(r["label"], r["label"])

    le = preprocessing.LabelEncoder()  # Generates a look-up table
    le.fit([r["label"] for r in eeg])
    for r, code in zip(eeg, le.transform([r["label"] for r in eeg])):
        r["label"] = int(code)

    num_classes = len({r["label"] for r in eeg})
    print(num_classes)

    scaler = preprocessing.MinMaxScaler()
    series_list = [
        scaler.fit_transform(np.asarray(i).reshape(-1, 1)) for i in [r["raw_values"] for r in eeg]
    ]

    labels_list = [i for i in [r["label"] for r in eeg]]

    x_train, x_test, y_train, y_test = model_selection.train_test_split(
        series_list, labels_list, test_size=0.15, random_state=42, shuffle=True
    )

    x_train = np.asarray(x_train).astype(np.float32).reshape(-1, 512, 1)
    y_train = np.asarray(y_train).astype(np.float32).reshape(-1, 1)
    y_train = keras.utils.to_categorical(y_train)

    x_test = np.asarray(x_test).astype(np.float32).reshape(-1, 512, 1)
    y_test = np.asarray(y_test).astype(np.float32).reshape(-1, 1)
    y_test = keras.utils.to_categorical(y_test)

    train_dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    test_dataset = tf.data.Dataset.from_tensor_slices((x_test, y_test))

    train_dataset = train_dataset.shuffle(SHUFFLE_BUFFER_SIZE).batch(BATCH_SIZE)
    test_dataset = test_dataset.batch(BATCH_SIZE)

    vals_dict = {}
    for i in [r["label"] for r in eeg]:
        if i in vals_dict.keys():
            vals_dict[i] += 1
        else:
            vals_dict[i] = 1
    total = sum(vals_dict.values())

    weight_dict = {k: (1 - (v / total)) for k, v in vals_dict.items()}
    print(weight_dict)

    def create_model():
        input_layer = keras.Input(shape=(512, 1))

        x = layers.Conv1D(
            filters=32, kernel_size=3, strides=2, activation="relu", padding="same"
        )(input_layer)
        x = layers.BatchNormalization()(x)

        x = layers.Conv1D(
            filters=64, kernel_size=3, strides=2, activation="relu", padding="same"
        )(x)
        x = layers.BatchNormalization()(x)

        x = layers.Conv1D(
            filters=128, kernel_size=5, strides=2, activation="relu", padding="same"
        )(x)
        x = layers.BatchNormalization()(x)

        x = layers.Conv1D(
            filters=256, kernel_size=5, strides=2, activation="relu", padding="same"
        )(x)
        x = layers.BatchNormalization()(x)

        x = layers.Conv1D(
            filters=512, kernel_size=7, strides=2, activation="relu", padding="same"
        )(x)
        x = layers.BatchNormalization()(x)

        x = layers.Conv1D(
            filters=1024, kernel_size=7, strides=2, activation="relu", padding="same"
        )(x)
        x = layers.BatchNormalization()(x)

        x = layers.Dropout(0.2)(x)

        x = layers.Flatten()(x)

        x = layers.Dense(4096, activation="relu")(x)
        x = layers.Dropout(0.2)(x)

        x = layers.Dense(
            2048, activation="relu", kernel_regularizer=keras.regularizers.L2()
        )(x)
        x = layers.Dropout(0.2)(x)

        x = layers.Dense(
            1024, activation="relu", kernel_regularizer=keras.regularizers.L2()
        )(x)
        x = layers.Dropout(0.2)(x)
        x = layers.Dense(
            128, activation="relu", kernel_regularizer=keras.regularizers.L2()
        )(x)
        output_layer = layers.Dense(num_classes, activation="softmax")(x)

        return keras.Model(inputs=input_layer, outputs=output_layer)

    conv_model = create_model()

    print(conv_model.summary())

    epochs = 2

    callbacks = [
        keras.callbacks.ModelCheckpoint(
            "best_model.h5", save_best_only=True, monitor="loss"
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_top_k_categorical_accuracy",
            factor=0.2,
            patience=2,
            min_lr=0.000001,
        ),
    ]

    optimizer = keras.optimizers.Adam(amsgrad=True, learning_rate=0.001)
    loss = keras.losses.CategoricalCrossentropy()

    conv_model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=[
            keras.metrics.TopKCategoricalAccuracy(k=3),
            keras.metrics.AUC(),
            keras.metrics.Precision(),
            keras.metrics.Recall(),
        ],
    )

    conv_model_history = conv_model.fit(
        train_dataset,
        epochs=epochs,
        callbacks=callbacks,
        validation_data=test_dataset,
        class_weight=weight_dict,
        verbose=0,
    )

    loss, accuracy, auc, precision, recall = conv_model.evaluate(test_dataset, verbose=0)
    print(f"Loss : {loss}")
    print(f"Top 3 Categorical Accuracy : {accuracy}")

    def view_evaluated_eeg_plots(model):  # its prediction step (the plots left out)
        start_index = random.randint(10, len(eeg))
        end_index = start_index + 11
        data = [r["raw_values"] for r in eeg[start_index:end_index + 1]]
        data_array = [scaler.fit_transform(np.asarray(i).reshape(-1, 1)) for i in data]
        data_array = [np.asarray(data_array).astype(np.float32).reshape(-1, 512, 1)]
        original_labels = [r["label"] for r in eeg[start_index:end_index + 1]]
        predicted_labels = np.argmax(model.predict(data_array, verbose=0), axis=1)
        original_labels = [
            le.inverse_transform(np.array(label).reshape(-1))[0]
            for label in original_labels
        ]
        predicted_labels = [
            le.inverse_transform(np.array(label).reshape(-1))[0]
            for label in predicted_labels
        ]
        return original_labels, predicted_labels

    random.seed(0)
    original_labels, predicted_labels = view_evaluated_eeg_plots(conv_model)

    assert num_classes == 10 and conv_model.count_params() == 48988490
    assert sorted(conv_model_history.history) == [
        "auc", "learning_rate", "loss", "precision", "recall", "top_k_categorical_accuracy",
        "val_auc", "val_loss", "val_precision", "val_recall",
        "val_top_k_categorical_accuracy"]
    assert all(0.0 <= v <= 1.0 for v in (accuracy, auc, precision, recall))
    assert len(predicted_labels) == len(original_labels) > 0
    assert set(predicted_labels) <= set(le.classes_)
    assert (tmp_path / "best_model.h5").exists()
