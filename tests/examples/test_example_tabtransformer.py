"""keras.io example "Structured data learning with TabTransformer"
(examples/structured_data/tabtransformer.py).

The Keras 3 code as written, `import keras; from keras import layers, ops; from tensorflow
import data as tf_data` swapped for kgraph: `tf_data.experimental.make_csv_dataset` over the
header-less train/test CSV files (`column_defaults`, `na_value="?"`), mapped through
`prepare_example` (the label looked up with a `StringLookup`, the `fnlwgt` column popped as
sample weights; `num_parallel_calls=tf_data.AUTOTUNE, deterministic=False`) and
`encode_categorical` (one `StringLookup` per categorical column on the string batches),
`.cache()`; a dict of named float32 `Input`s, `Embedding`s of the looked-up indices,
`ops.expand_dims`, `ops.stack`, `create_mlp` as `keras.Sequential` blocks with
`functools.partial(layers.LayerNormalization, epsilon=1e-6)`, gelu/selu activations; the
baseline MLP and the TabTransformer (`MultiHeadAttention` blocks with Add/LayerNormalization
skips), `count_params`, `keras.utils.plot_model`, AdamW with weight decay, binary
crossentropy with sample weights, fit with validation data and evaluate. The Census Income
download and its pandas preparation (pandas is not a dependency) are replaced by what that
code writes: `train_data.csv` and `test_data.csv` without header, 15 columns in
`CSV_HEADER` order, strings with the leading space of the UCI files, the test labels
without their trailing dot; 300 and 100 random rows; the vocabularies are the sorted
strings that occur in the train rows. BATCH_SIZE 265 as written, NUM_EPOCHS 15 -> 1. Marked
slow.
"""
import csv
from functools import partial

import numpy as np
import pytest

CSV_HEADER = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "gender",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income_bracket",
]

_CATEGORIES = {
    "workclass": [" Private", " Self-emp-not-inc", " State-gov", " Federal-gov"],
    "education": [" Bachelors", " HS-grad", " Masters", " 11th", " Doctorate"],
    "marital_status": [" Never-married", " Married-civ-spouse", " Divorced"],
    "occupation": [" Adm-clerical", " Exec-managerial", " Sales", " Tech-support"],
    "relationship": [" Husband", " Wife", " Own-child", " Not-in-family"],
    "race": [" White", " Black", " Asian-Pac-Islander"],
    "gender": [" Male", " Female"],
    "native_country": [" United-States", " Cuba", " India", " Mexico"],
    "income_bracket": [" <=50K", " >50K"],
}


def _census_rows(count, rng):
    rows = []
    for _ in range(count):
        row = {name: rng.choice(values) for name, values in _CATEGORIES.items()}
        row.update(age=int(rng.integers(17, 90)), fnlwgt=int(rng.integers(10000, 900000)),
                   education_num=int(rng.integers(1, 17)),
                   capital_gain=int(rng.choice([0, 0, 0, 2174, 14084])),
                   capital_loss=int(rng.choice([0, 0, 1902])),
                   hours_per_week=int(rng.integers(1, 99)))
        rows.append([row[name] for name in CSV_HEADER])
    return rows


@pytest.mark.slow
def test_tabtransformer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from kgraph import data as tf_data
    from kgraph import keras
    from kgraph.keras import layers, ops

    rng = np.random.default_rng(0)
    train_rows, test_rows = _census_rows(300, rng), _census_rows(100, rng)

    train_data_file = "train_data.csv"
    test_data_file = "test_data.csv"
    for path, rows in ((train_data_file, train_rows), (test_data_file, test_rows)):
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows(rows)

    NUMERIC_FEATURE_NAMES = [
        "age",
        "education_num",
        "capital_gain",
        "capital_loss",
        "hours_per_week",
    ]
    CATEGORICAL_FEATURES_WITH_VOCABULARY = {
        name: sorted({row[CSV_HEADER.index(name)] for row in train_rows})
        for name in ("workclass", "education", "marital_status", "occupation",
                     "relationship", "race", "gender", "native_country")
    }
    WEIGHT_COLUMN_NAME = "fnlwgt"
    CATEGORICAL_FEATURE_NAMES = list(CATEGORICAL_FEATURES_WITH_VOCABULARY.keys())
    FEATURE_NAMES = NUMERIC_FEATURE_NAMES + CATEGORICAL_FEATURE_NAMES
    COLUMN_DEFAULTS = [
        [0.0] if feature_name in NUMERIC_FEATURE_NAMES + [WEIGHT_COLUMN_NAME] else ["NA"]
        for feature_name in CSV_HEADER
    ]
    TARGET_FEATURE_NAME = "income_bracket"
    TARGET_LABELS = [" <=50K", " >50K"]

    LEARNING_RATE = 0.001
    WEIGHT_DECAY = 0.0001
    DROPOUT_RATE = 0.2
    BATCH_SIZE = 265
    NUM_EPOCHS = 1

    NUM_TRANSFORMER_BLOCKS = 3  # Number of transformer blocks.
    NUM_HEADS = 4  # Number of attention heads.
    EMBEDDING_DIMS = 16  # Embedding dimensions of the categorical features.
    MLP_HIDDEN_UNITS_FACTORS = [
        2,
        1,
    ]  # MLP hidden layer units, as factors of the number of inputs.
    NUM_MLP_BLOCKS = 2  # Number of MLP blocks in the baseline model.

    target_label_lookup = layers.StringLookup(
        vocabulary=TARGET_LABELS, mask_token=None, num_oov_indices=0
    )

    def prepare_example(features, target):
        target_index = target_label_lookup(target)
        weights = features.pop(WEIGHT_COLUMN_NAME)
        return features, target_index, weights

    lookup_dict = {}
    for feature_name in CATEGORICAL_FEATURE_NAMES:
        vocabulary = CATEGORICAL_FEATURES_WITH_VOCABULARY[feature_name]
        lookup = layers.StringLookup(
            vocabulary=vocabulary, mask_token=None, num_oov_indices=0
        )
        lookup_dict[feature_name] = lookup

    def encode_categorical(batch_x, batch_y, weights):
        for feature_name in CATEGORICAL_FEATURE_NAMES:
            batch_x[feature_name] = lookup_dict[feature_name](batch_x[feature_name])

        return batch_x, batch_y, weights

    def get_dataset_from_csv(csv_file_path, batch_size=128, shuffle=False):
        dataset = (
            tf_data.experimental.make_csv_dataset(
                csv_file_path,
                batch_size=batch_size,
                column_names=CSV_HEADER,
                column_defaults=COLUMN_DEFAULTS,
                label_name=TARGET_FEATURE_NAME,
                num_epochs=1,
                header=False,
                na_value="?",
                shuffle=shuffle,
            )
            .map(prepare_example, num_parallel_calls=tf_data.AUTOTUNE, deterministic=False)
            .map(encode_categorical)
        )
        return dataset.cache()

    def run_experiment(
        model,
        train_data_file,
        test_data_file,
        num_epochs,
        learning_rate,
        weight_decay,
        batch_size,
    ):
        optimizer = keras.optimizers.AdamW(
            learning_rate=learning_rate, weight_decay=weight_decay
        )

        model.compile(
            optimizer=optimizer,
            loss=keras.losses.BinaryCrossentropy(),
            metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
        )

        train_dataset = get_dataset_from_csv(train_data_file, batch_size, shuffle=True)
        validation_dataset = get_dataset_from_csv(test_data_file, batch_size)

        print("Start training the model...")
        history = model.fit(
            train_dataset, epochs=num_epochs, validation_data=validation_dataset, verbose=0
        )
        print("Model training finished")

        _, accuracy = model.evaluate(validation_dataset, verbose=0)

        print(f"Validation accuracy: {round(accuracy * 100, 2)}%")
        assert 0.0 <= accuracy <= 1.0

        return history

    def create_model_inputs():
        inputs = {}
        for feature_name in FEATURE_NAMES:
            if feature_name in NUMERIC_FEATURE_NAMES:
                inputs[feature_name] = layers.Input(
                    name=feature_name, shape=(), dtype="float32"
                )
            else:
                inputs[feature_name] = layers.Input(
                    name=feature_name, shape=(), dtype="float32"
                )
        return inputs

    def encode_inputs(inputs, embedding_dims):
        encoded_categorical_feature_list = []
        numerical_feature_list = []

        for feature_name in inputs:
            if feature_name in CATEGORICAL_FEATURE_NAMES:
                vocabulary = CATEGORICAL_FEATURES_WITH_VOCABULARY[feature_name]
                embedding = layers.Embedding(
                    input_dim=len(vocabulary), output_dim=embedding_dims
                )
                encoded_categorical_feature = embedding(inputs[feature_name])
                encoded_categorical_feature_list.append(encoded_categorical_feature)

            else:
                numerical_feature = ops.expand_dims(inputs[feature_name], -1)
                numerical_feature_list.append(numerical_feature)

        return encoded_categorical_feature_list, numerical_feature_list

    def create_mlp(hidden_units, dropout_rate, activation, normalization_layer, name=None):
        mlp_layers = []
        for units in hidden_units:
            mlp_layers.append(normalization_layer()),
            mlp_layers.append(layers.Dense(units, activation=activation))
            mlp_layers.append(layers.Dropout(dropout_rate))

        return keras.Sequential(mlp_layers, name=name)

    def create_baseline_model(
        embedding_dims, num_mlp_blocks, mlp_hidden_units_factors, dropout_rate
    ):
        inputs = create_model_inputs()
        encoded_categorical_feature_list, numerical_feature_list = encode_inputs(
            inputs, embedding_dims
        )
        features = layers.concatenate(
            encoded_categorical_feature_list + numerical_feature_list
        )
        feedforward_units = [features.shape[-1]]

        for layer_idx in range(num_mlp_blocks):
            features = create_mlp(
                hidden_units=feedforward_units,
                dropout_rate=dropout_rate,
                activation=keras.activations.gelu,
                normalization_layer=layers.LayerNormalization,
                name=f"feedforward_{layer_idx}",
            )(features)

        mlp_hidden_units = [
            factor * features.shape[-1] for factor in mlp_hidden_units_factors
        ]
        features = create_mlp(
            hidden_units=mlp_hidden_units,
            dropout_rate=dropout_rate,
            activation=keras.activations.selu,
            normalization_layer=layers.BatchNormalization,
            name="MLP",
        )(features)

        outputs = layers.Dense(units=1, activation="sigmoid", name="sigmoid")(features)
        model = keras.Model(inputs=inputs, outputs=outputs)
        return model

    baseline_model = create_baseline_model(
        embedding_dims=EMBEDDING_DIMS,
        num_mlp_blocks=NUM_MLP_BLOCKS,
        mlp_hidden_units_factors=MLP_HIDDEN_UNITS_FACTORS,
        dropout_rate=DROPOUT_RATE,
    )

    print("Total model weights:", baseline_model.count_params())
    # 8 embeddings of 16 beside 5 numbers: 133 features
    assert baseline_model.get_layer("feedforward_0").output.shape == (None, 133)
    keras.utils.plot_model(baseline_model, show_shapes=True, rankdir="LR")

    history = run_experiment(
        model=baseline_model,
        train_data_file=train_data_file,
        test_data_file=test_data_file,
        num_epochs=NUM_EPOCHS,
        learning_rate=LEARNING_RATE,
        weight_decay=WEIGHT_DECAY,
        batch_size=BATCH_SIZE,
    )
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert np.isfinite(history.history["val_loss"][0])

    def create_tabtransformer_classifier(
        num_transformer_blocks,
        num_heads,
        embedding_dims,
        mlp_hidden_units_factors,
        dropout_rate,
        use_column_embedding=False,
    ):
        inputs = create_model_inputs()
        encoded_categorical_feature_list, numerical_feature_list = encode_inputs(
            inputs, embedding_dims
        )
        encoded_categorical_features = ops.stack(encoded_categorical_feature_list, axis=1)
        numerical_features = layers.concatenate(numerical_feature_list)

        if use_column_embedding:
            num_columns = encoded_categorical_features.shape[1]
            column_embedding = layers.Embedding(
                input_dim=num_columns, output_dim=embedding_dims
            )
            column_indices = ops.arange(start=0, stop=num_columns, step=1)
            encoded_categorical_features = encoded_categorical_features + column_embedding(
                column_indices
            )

        for block_idx in range(num_transformer_blocks):
            attention_output = layers.MultiHeadAttention(
                num_heads=num_heads,
                key_dim=embedding_dims,
                dropout=dropout_rate,
                name=f"multihead_attention_{block_idx}",
            )(encoded_categorical_features, encoded_categorical_features)
            x = layers.Add(name=f"skip_connection1_{block_idx}")(
                [attention_output, encoded_categorical_features]
            )
            x = layers.LayerNormalization(name=f"layer_norm1_{block_idx}", epsilon=1e-6)(x)
            feedforward_output = create_mlp(
                hidden_units=[embedding_dims],
                dropout_rate=dropout_rate,
                activation=keras.activations.gelu,
                normalization_layer=partial(
                    layers.LayerNormalization, epsilon=1e-6
                ),  # using partial to provide keyword arguments before initialization
                name=f"feedforward_{block_idx}",
            )(x)
            x = layers.Add(name=f"skip_connection2_{block_idx}")([feedforward_output, x])
            encoded_categorical_features = layers.LayerNormalization(
                name=f"layer_norm2_{block_idx}", epsilon=1e-6
            )(x)

        categorical_features = layers.Flatten()(encoded_categorical_features)
        numerical_features = layers.LayerNormalization(epsilon=1e-6)(numerical_features)
        features = layers.concatenate([categorical_features, numerical_features])

        mlp_hidden_units = [
            factor * features.shape[-1] for factor in mlp_hidden_units_factors
        ]
        features = create_mlp(
            hidden_units=mlp_hidden_units,
            dropout_rate=dropout_rate,
            activation=keras.activations.selu,
            normalization_layer=layers.BatchNormalization,
            name="MLP",
        )(features)

        outputs = layers.Dense(units=1, activation="sigmoid", name="sigmoid")(features)
        model = keras.Model(inputs=inputs, outputs=outputs)
        return model

    tabtransformer_model = create_tabtransformer_classifier(
        num_transformer_blocks=NUM_TRANSFORMER_BLOCKS,
        num_heads=NUM_HEADS,
        embedding_dims=EMBEDDING_DIMS,
        mlp_hidden_units_factors=MLP_HIDDEN_UNITS_FACTORS,
        dropout_rate=DROPOUT_RATE,
    )

    print("Total model weights:", tabtransformer_model.count_params())
    assert tabtransformer_model.get_layer("layer_norm2_2").output.shape == (None, 8, 16)
    keras.utils.plot_model(tabtransformer_model, show_shapes=True, rankdir="LR")

    history = run_experiment(
        model=tabtransformer_model,
        train_data_file=train_data_file,
        test_data_file=test_data_file,
        num_epochs=NUM_EPOCHS,
        learning_rate=LEARNING_RATE,
        weight_decay=WEIGHT_DECAY,
        batch_size=BATCH_SIZE,
    )
    assert np.isfinite(history.history["loss"][0])
    assert np.isfinite(history.history["val_loss"][0])
