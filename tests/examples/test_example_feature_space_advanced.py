"""keras.io example "FeatureSpace advanced use cases"
(examples/structured_data/feature_space_advanced.py).

The example's code as written, `import keras; from keras.utils import FeatureSpace; import
tensorflow as tf` swapped for kgraph's (its `os.environ["KERAS_BACKEND"] = "tensorflow"` line
left out): the label `StringLookup` mapped over `from_tensor_slices((dict(dataframe), labels))`,
`example_feature_space` adapting one-feature FeatureSpaces and calling them on one unbatched
example (`integer_hashed`/`string_hashed` one-hot, `float_discretized`, `string_categorical`
with an OOV index, `integer_categorical` without, an `age` x `job` cross of `crossing_dim=8`,
and `FeatureSpace.feature(preprocessor=TextVectorization(output_mode="tf_idf"))`), the final
FeatureSpace (13 features, three crosses, `output_mode="concat"`) adapted on batches, called,
saved with `feature_space.save`, mapped over the datasets, the model on
`get_encoded_features()`, fit, the FeatureSpace reloaded with `keras.saving.load_model`, and the
inference model on `get_inputs()` predicting a dict of one raw sample.

The bank-marketing zip (a download) and its pandas frame are replaced by the columns the
example keeps (`bank_marketing_columns`: 200 generated clients with the file's value sets;
`duration` dropped and `previously_contacted` made as the example does, in numpy), the
DataFrame by a dict of columns (`len` of it is the number of columns: the shuffle buffer),
`sample(frac=0.2, random_state=0)`/`drop` by a seeded split. Epochs 20 -> 1. Checked: the
one-hot widths of each one-feature space, the concatenated width (the sum of its parts), the
reloaded FeatureSpace's encoding equal to the trained one's, a probability out of the
inference model.
"""

import numpy as np

JOBS = ["admin.", "blue-collar", "entrepreneur", "housemaid", "management", "retired",
        "self-employed", "services", "student", "technician", "unemployed", "unknown"]


def bank_marketing_columns(rows=200, seed=0):
    """What the example's pandas frame holds after its `drop("duration")`, column by column."""
    rng = np.random.default_rng(seed)
    pick = lambda values: rng.choice(values, rows)  # noqa: E731
    columns = {
        "age": rng.integers(18, 90, rows).astype("int64"),
        "job": pick(JOBS),
        "marital": pick(["divorced", "married", "single", "unknown"]),
        "education": pick(["basic.4y", "basic.6y", "basic.9y", "high.school", "illiterate",
                           "professional.course", "university.degree", "unknown"]),
        "default": pick(["no", "unknown", "yes"]),
        "housing": pick(["no", "unknown", "yes"]),
        "loan": pick(["no", "unknown", "yes"]),
        "contact": pick(["cellular", "telephone"]),
        "month": pick(["apr", "aug", "dec", "jul", "jun", "mar", "may", "nov", "oct", "sep"]),
        "day_of_week": pick(["fri", "mon", "thu", "tue", "wed"]),
        "campaign": rng.integers(1, 36, rows).astype("int64"),
        "pdays": np.where(rng.random(rows) < 0.9, 999, rng.integers(0, 28, rows)),
        "previous": rng.integers(0, 7, rows).astype("int64"),
        "poutcome": pick(["failure", "nonexistent", "success"]),
        "emp.var.rate": pick([-3.4, -1.8, -0.1, 1.1, 1.4]),
        "cons.price.idx": rng.uniform(92.2, 94.8, rows).round(3),
        "cons.conf.idx": rng.uniform(-50.8, -26.9, rows).round(1),
        "euribor3m": rng.uniform(0.6, 5.1, rows).round(3),
        "nr.employed": pick([4963.6, 5099.1, 5191.0, 5228.1]),
        "y": pick(["no", "yes"]),
    }
    columns["pdays"] = columns["pdays"].astype("int64")
    for name in ("job", "education", "default", "housing", "loan", "poutcome"):  # all present
        values = sorted(set(columns[name].tolist()))
        columns[name][: len(values)] = values
    columns["job"][: len(JOBS)] = JOBS
    return columns


def test_feature_space_advanced(tmp_path, monkeypatch):
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras.utils import FeatureSpace

    monkeypatch.chdir(tmp_path)  # feature_space.save("myfeaturespace.keras") lands here
    keras.utils.set_random_seed(0)

    dataframe = bank_marketing_columns()  # pd.read_csv(...), then drop("duration")
    dataframe["previously_contacted"] = np.array(
        [0 if x == 999 else 1 for x in dataframe["pdays"]], dtype="int64"
    )  # dataframe["pdays"].map(lambda x: 0 if x == 999 else 1)
    rows = len(dataframe["age"])
    valid_rows = np.random.default_rng(0).permutation(rows)[: int(0.2 * rows)]
    train_rows = np.setdiff1d(np.arange(rows), valid_rows)
    valid_dataframe = {name: column[valid_rows] for name, column in dataframe.items()}
    train_dataframe = {name: column[train_rows] for name, column in dataframe.items()}
    print(
        f"Using {len(train_rows)} samples for training and "
        f"{len(valid_rows)} for validation"
    )

    label_lookup = keras.layers.StringLookup(
        vocabulary=["no", "yes"],
        num_oov_indices=0,
    )

    def encode_label(x, y):
        encoded_y = label_lookup(y)
        return x, encoded_y

    def dataframe_to_dataset(dataframe):
        dataframe = dataframe.copy()
        labels = dataframe.pop("y")
        ds = tf.data.Dataset.from_tensor_slices((dict(dataframe), labels))
        ds = ds.map(encode_label, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.shuffle(buffer_size=len(dataframe))
        return ds

    train_ds = dataframe_to_dataset(train_dataframe)
    valid_ds = dataframe_to_dataset(valid_dataframe)

    for x, y in dataframe_to_dataset(train_dataframe).take(1):
        print(f"Input: {x}")
        print(f"Target: {y}")
        assert int(y) in (0, 1)

    train_ds_with_no_labels = train_ds.map(lambda x, _: x)
    widths = {}

    def example_feature_space(dataset, feature_space, feature_names):
        feature_space.adapt(dataset)
        for x in dataset.take(1):
            inputs = {feature_name: x[feature_name] for feature_name in feature_names}
            preprocessed_x = feature_space(inputs)
            print(f"Input: {[{k:v.numpy()} for k, v in inputs.items()]}")
            print(
                f"Preprocessed output: {[{k:v.numpy()} for k, v in preprocessed_x.items()]}"
            )
            widths.update({k: np.asarray(v.numpy()).shape for k, v in preprocessed_x.items()})

    feature_space = FeatureSpace(
        features={
            "campaign": FeatureSpace.integer_hashed(num_bins=4, output_mode="one_hot")
        },
        output_mode="dict",
    )
    example_feature_space(train_ds_with_no_labels, feature_space, ["campaign"])
    assert widths["campaign"][-1] == 4

    feature_space = FeatureSpace(
        features={
            "education": FeatureSpace.string_hashed(num_bins=3, output_mode="one_hot")
        },
        output_mode="dict",
    )
    example_feature_space(train_ds_with_no_labels, feature_space, ["education"])
    assert widths["education"][-1] == 3

    feature_space = FeatureSpace(
        features={"age": FeatureSpace.float_discretized(num_bins=3, output_mode="one_hot")},
        output_mode="dict",
    )
    example_feature_space(train_ds_with_no_labels, feature_space, ["age"])
    assert widths["age"][-1] == 3

    feature_space = FeatureSpace(
        features={
            "default": FeatureSpace.string_categorical(
                num_oov_indices=1, output_mode="one_hot"
            )
        },
        output_mode="dict",
    )
    example_feature_space(train_ds_with_no_labels, feature_space, ["default"])
    assert widths["default"][-1] == 3 + 1  # three values and the OOV index

    feature_space = FeatureSpace(
        features={
            "previously_contacted": FeatureSpace.integer_categorical(
                num_oov_indices=0, output_mode="one_hot"
            )
        },
        output_mode="dict",
    )
    example_feature_space(train_ds_with_no_labels, feature_space, ["previously_contacted"])
    assert widths["previously_contacted"][-1] == 2

    feature_space = FeatureSpace(
        features={
            "age": FeatureSpace.integer_hashed(num_bins=6, output_mode="one_hot"),
            "job": FeatureSpace.string_categorical(
                num_oov_indices=0, output_mode="one_hot"
            ),
        },
        crosses=[
            FeatureSpace.cross(
                feature_names=("age", "job"),
                crossing_dim=8,
                output_mode="one_hot",
            )
        ],
        output_mode="dict",
    )
    example_feature_space(train_ds_with_no_labels, feature_space, ["age", "job"])
    assert widths["age_X_job"][-1] == 8 and widths["job"][-1] == len(JOBS)

    custom_layer = keras.layers.TextVectorization(output_mode="tf_idf")
    feature_space = FeatureSpace(
        features={
            "education": FeatureSpace.feature(
                preprocessor=custom_layer, dtype="string", output_mode="float"
            )
        },
        output_mode="dict",
    )
    example_feature_space(train_ds_with_no_labels, feature_space, ["education"])
    assert widths["education"][-1] == custom_layer.vocabulary_size()

    feature_space = FeatureSpace(
        features={
            "previously_contacted": FeatureSpace.integer_categorical(num_oov_indices=0),
            "marital": FeatureSpace.string_categorical(num_oov_indices=0),
            "education": FeatureSpace.string_categorical(num_oov_indices=0),
            "default": FeatureSpace.string_categorical(num_oov_indices=0),
            "housing": FeatureSpace.string_categorical(num_oov_indices=0),
            "loan": FeatureSpace.string_categorical(num_oov_indices=0),
            "contact": FeatureSpace.string_categorical(num_oov_indices=0),
            "month": FeatureSpace.string_categorical(num_oov_indices=0),
            "day_of_week": FeatureSpace.string_categorical(num_oov_indices=0),
            "poutcome": FeatureSpace.string_categorical(num_oov_indices=0),
            "job": FeatureSpace.string_hashed(num_bins=3),
            "pdays": FeatureSpace.integer_hashed(num_bins=4),
            "age": FeatureSpace.float_discretized(num_bins=4),
            "campaign": FeatureSpace.float_normalized(),
            "previous": FeatureSpace.float_normalized(),
            "emp.var.rate": FeatureSpace.float_normalized(),
            "cons.price.idx": FeatureSpace.float_normalized(),
            "cons.conf.idx": FeatureSpace.float_normalized(),
            "euribor3m": FeatureSpace.float_normalized(),
            "nr.employed": FeatureSpace.float_normalized(),
        },
        crosses=[
            FeatureSpace.cross(feature_names=("age", "job"), crossing_dim=8),
            FeatureSpace.cross(feature_names=("housing", "loan"), crossing_dim=6),
            FeatureSpace.cross(
                feature_names=("poutcome", "previously_contacted"), crossing_dim=2
            ),
        ],
        output_mode="concat",
    )

    train_ds = train_ds.batch(32)
    valid_ds = valid_ds.batch(32)

    train_ds_with_no_labels = train_ds.map(lambda x, _: x)
    feature_space.adapt(train_ds_with_no_labels)

    for x, _ in train_ds.take(1):
        preprocessed_x = feature_space(x)
        print(f"preprocessed_x shape: {preprocessed_x.shape}")
        print(f"preprocessed_x sample: \n{preprocessed_x[0]}")
    # 2 + 4 + 8 + 3 + 3 + 3 + 2 + 10 + 5 + 3 one-hot, 3 + 4 + 4 bins, 7 normalized, 8 + 6 + 2
    assert preprocessed_x.shape == (32, 43 + 11 + 7 + 16)

    feature_space.save("myfeaturespace.keras")

    preprocessed_train_ds = train_ds.map(
        lambda x, y: (feature_space(x), y), num_parallel_calls=tf.data.AUTOTUNE
    ).prefetch(tf.data.AUTOTUNE)
    preprocessed_valid_ds = valid_ds.map(
        lambda x, y: (feature_space(x), y), num_parallel_calls=tf.data.AUTOTUNE
    ).prefetch(tf.data.AUTOTUNE)

    encoded_features = feature_space.get_encoded_features()
    print(encoded_features)

    x = keras.layers.Dense(64, activation="relu")(encoded_features)
    x = keras.layers.Dropout(0.5)(x)
    output = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs=encoded_features, outputs=output)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(
        preprocessed_train_ds, validation_data=preprocessed_valid_ds, epochs=1, verbose=2
    )  # epochs=20 in the example
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}

    loaded_feature_space = keras.saving.load_model("myfeaturespace.keras")
    for x, _ in valid_ds.take(1):
        np.testing.assert_allclose(loaded_feature_space(x), feature_space(x), rtol=1e-6)

    dict_inputs = loaded_feature_space.get_inputs()
    encoded_features = loaded_feature_space.get_encoded_features()
    print(encoded_features)
    print(dict_inputs)

    outputs = model(encoded_features)
    inference_model = keras.Model(inputs=dict_inputs, outputs=outputs)

    sample = {
        "age": 30,
        "job": "blue-collar",
        "marital": "married",
        "education": "basic.9y",
        "default": "no",
        "housing": "yes",
        "loan": "no",
        "contact": "cellular",
        "month": "may",
        "day_of_week": "fri",
        "campaign": 2,
        "pdays": 999,
        "previous": 0,
        "poutcome": "nonexistent",
        "emp.var.rate": -1.8,
        "cons.price.idx": 92.893,
        "cons.conf.idx": -46.2,
        "euribor3m": 1.313,
        "nr.employed": 5099.1,
        "previously_contacted": 0,
    }
    input_dict = {
        name: keras.ops.convert_to_tensor([value]) for name, value in sample.items()
    }
    predictions = inference_model.predict(input_dict)
    print(
        f"This particular client has a {100 * predictions[0][0]:.2f}% probability "
        "of subscribing a term deposit, as evaluated by our model."
    )
    assert predictions.shape == (1, 1) and 0.0 <= predictions[0][0] <= 1.0
