"""keras.io example "Structured data learning with Wide, Deep, and Cross networks"
(examples/structured_data/wide_deep_cross_networks.py).

The Keras 3 code as written, `from tensorflow import data as tf_data; import keras` swapped for
kgraph: `tf_data.experimental.make_csv_dataset` over the train/test CSV files with
`column_defaults` ([0] for numbers and the label, ["NA"] for strings) and `.map(process)`
to dicts, `.cache()`; a dict of named `Input`s (float32 and string scalars), `StringLookup`
with `output_mode="binary"` (one-hot) or `"int"` into an `Embedding`, `keras.ops.expand_dims`
on the inputs, `layers.concatenate`; the baseline, Wide & Deep and Deep & Cross models
(`x0 * x + cross` on KerasTensors), each drawn with `keras.utils.plot_model` and trained for
one epoch and evaluated. The Covertype download and its pandas preparation (pandas is not a
dependency) are replaced by what that code writes: `train_data.csv` and `test_data.csv` with
the 13 `CSV_HEADER` columns (10 integer features, `area_type_*` and `soil_type_*` strings, the
label 0..6), 400 and 100 random rows; the vocabularies are the strings that occur, as
`data[...].unique()` lists them. batch_size 265 as written.

The string `Input`s, the `expand_dims` on them and the `StringLookup`s form each model's host
prefix (run in numpy on every batch, kgraph/keras/models/host_prefix.py); the compiled part
starts at the lookups' outputs.
"""
import csv
import math

import numpy as np
import pytest

CSV_HEADER = [
    "Elevation",
    "Aspect",
    "Slope",
    "Horizontal_Distance_To_Hydrology",
    "Vertical_Distance_To_Hydrology",
    "Horizontal_Distance_To_Roadways",
    "Hillshade_9am",
    "Hillshade_Noon",
    "Hillshade_3pm",
    "Horizontal_Distance_To_Fire_Points",
    "Wilderness_Area",
    "Soil_Type",
    "Cover_Type",
]


def _covertype_rows(count, rng):
    """Rows as the example's pandas code writes them: 10 integer features, the one-hot
    wilderness/soil columns turned into `area_type_k`/`soil_type_k`, the label minus one."""
    rows = []
    for _ in range(count):
        numbers = rng.integers(0, 3000, 10).tolist()
        area = f"area_type_{rng.integers(4) + 1}"
        soil = f"soil_type_{rng.integers(40) + 1}"
        rows.append(numbers + [area, soil, int(rng.integers(7))])
    return rows


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_HEADER)
        writer.writerows(rows)


def _unique(values):
    return list(dict.fromkeys(values))


@pytest.mark.slow
def test_wide_deep_cross_networks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from kgraph import data as tf_data
    from kgraph import keras
    from kgraph.keras import layers

    rng = np.random.default_rng(0)
    train_rows, test_rows = _covertype_rows(400, rng), _covertype_rows(100, rng)
    all_rows = train_rows + test_rows

    train_data_file = "train_data.csv"
    test_data_file = "test_data.csv"
    _write_csv(train_data_file, train_rows)
    _write_csv(test_data_file, test_rows)

    TARGET_FEATURE_NAME = "Cover_Type"

    TARGET_FEATURE_LABELS = ["0", "1", "2", "3", "4", "5", "6"]

    NUMERIC_FEATURE_NAMES = [
        "Aspect",
        "Elevation",
        "Hillshade_3pm",
        "Hillshade_9am",
        "Hillshade_Noon",
        "Horizontal_Distance_To_Fire_Points",
        "Horizontal_Distance_To_Hydrology",
        "Horizontal_Distance_To_Roadways",
        "Slope",
        "Vertical_Distance_To_Hydrology",
    ]

    CATEGORICAL_FEATURES_WITH_VOCABULARY = {
        "Soil_Type": _unique(row[11] for row in all_rows),
        "Wilderness_Area": _unique(row[10] for row in all_rows),
    }

    CATEGORICAL_FEATURE_NAMES = list(CATEGORICAL_FEATURES_WITH_VOCABULARY.keys())

    FEATURE_NAMES = NUMERIC_FEATURE_NAMES + CATEGORICAL_FEATURE_NAMES

    COLUMN_DEFAULTS = [
        [0] if feature_name in NUMERIC_FEATURE_NAMES + [TARGET_FEATURE_NAME] else ["NA"]
        for feature_name in CSV_HEADER
    ]

    NUM_CLASSES = len(TARGET_FEATURE_LABELS)

    def process(features, target):
        return dict(features), target

    def get_dataset_from_csv(csv_file_path, batch_size, shuffle=False):
        dataset = tf_data.experimental.make_csv_dataset(
            csv_file_path,
            batch_size=batch_size,
            column_names=CSV_HEADER,
            column_defaults=COLUMN_DEFAULTS,
            label_name=TARGET_FEATURE_NAME,
            num_epochs=1,
            header=True,
            shuffle=shuffle,
        ).map(process)
        return dataset.cache()

    learning_rate = 0.001
    dropout_rate = 0.1
    batch_size = 265
    num_epochs = 1

    hidden_units = [32, 32]
    accuracies = []

    def run_experiment(model):
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=[keras.metrics.SparseCategoricalAccuracy()],
        )

        train_dataset = get_dataset_from_csv(train_data_file, batch_size, shuffle=True)

        test_dataset = get_dataset_from_csv(test_data_file, batch_size)

        print("Start training the model...")
        history = model.fit(train_dataset, epochs=num_epochs, verbose=0)
        print("Model training finished")

        _, accuracy = model.evaluate(test_dataset, verbose=0)

        print(f"Test accuracy: {round(accuracy * 100, 2)}%")
        assert np.isfinite(history.history["loss"][0])
        accuracies.append(accuracy)

    def create_model_inputs():
        inputs = {}
        for feature_name in FEATURE_NAMES:
            if feature_name in NUMERIC_FEATURE_NAMES:
                inputs[feature_name] = layers.Input(
                    name=feature_name, shape=(), dtype="float32"
                )
            else:
                inputs[feature_name] = layers.Input(
                    name=feature_name, shape=(), dtype="string"
                )
        return inputs

    def encode_inputs(inputs, use_embedding=False):
        encoded_features = []
        for feature_name in inputs:
            if feature_name in CATEGORICAL_FEATURE_NAMES:
                vocabulary = CATEGORICAL_FEATURES_WITH_VOCABULARY[feature_name]
                lookup = layers.StringLookup(
                    vocabulary=vocabulary,
                    mask_token=None,
                    num_oov_indices=0,
                    output_mode="int" if use_embedding else "binary",
                )
                if use_embedding:
                    encoded_feature = lookup(inputs[feature_name])
                    embedding_dims = int(math.sqrt(len(vocabulary)))
                    embedding = layers.Embedding(
                        input_dim=len(vocabulary), output_dim=embedding_dims
                    )
                    encoded_feature = embedding(encoded_feature)
                else:
                    encoded_feature = lookup(
                        keras.ops.expand_dims(inputs[feature_name], -1)
                    )
            else:
                encoded_feature = keras.ops.expand_dims(inputs[feature_name], -1)

            encoded_features.append(encoded_feature)

        all_features = layers.concatenate(encoded_features)
        return all_features

    def create_baseline_model():
        inputs = create_model_inputs()
        features = encode_inputs(inputs)

        for units in hidden_units:
            features = layers.Dense(units)(features)
            features = layers.BatchNormalization()(features)
            features = layers.ReLU()(features)
            features = layers.Dropout(dropout_rate)(features)

        outputs = layers.Dense(units=NUM_CLASSES, activation="softmax")(features)
        model = keras.Model(inputs=inputs, outputs=outputs)
        return model

    baseline_model = create_baseline_model()
    keras.utils.plot_model(baseline_model, show_shapes=True, rankdir="LR")
    run_experiment(baseline_model)

    def create_wide_and_deep_model():
        inputs = create_model_inputs()
        wide = encode_inputs(inputs)
        wide = layers.BatchNormalization()(wide)

        deep = encode_inputs(inputs, use_embedding=True)
        for units in hidden_units:
            deep = layers.Dense(units)(deep)
            deep = layers.BatchNormalization()(deep)
            deep = layers.ReLU()(deep)
            deep = layers.Dropout(dropout_rate)(deep)

        merged = layers.concatenate([wide, deep])
        outputs = layers.Dense(units=NUM_CLASSES, activation="softmax")(merged)
        model = keras.Model(inputs=inputs, outputs=outputs)
        return model

    wide_and_deep_model = create_wide_and_deep_model()
    keras.utils.plot_model(wide_and_deep_model, show_shapes=True, rankdir="LR")
    run_experiment(wide_and_deep_model)

    def create_deep_and_cross_model():
        inputs = create_model_inputs()
        x0 = encode_inputs(inputs, use_embedding=True)

        cross = x0
        for _ in hidden_units:
            units = cross.shape[-1]
            x = layers.Dense(units)(cross)
            cross = x0 * x + cross
        cross = layers.BatchNormalization()(cross)

        deep = x0
        for units in hidden_units:
            deep = layers.Dense(units)(deep)
            deep = layers.BatchNormalization()(deep)
            deep = layers.ReLU()(deep)
            deep = layers.Dropout(dropout_rate)(deep)

        merged = layers.concatenate([cross, deep])
        outputs = layers.Dense(units=NUM_CLASSES, activation="softmax")(merged)
        model = keras.Model(inputs=inputs, outputs=outputs)
        return model

    deep_and_cross_model = create_deep_and_cross_model()
    keras.utils.plot_model(deep_and_cross_model, show_shapes=True, rankdir="LR")
    run_experiment(deep_and_cross_model)

    assert len(accuracies) == 3 and all(0.0 <= a <= 1.0 for a in accuracies)
