"""keras.io example "Structured data classification with FeatureSpace"
(examples/structured_data/structured_data_classification_with_feature_space.py, the Keras 3
version).

The example's code as written, `import tensorflow as tf; import keras; from keras.utils import
FeatureSpace` swapped for kgraph's; its `os.environ["KERAS_BACKEND"] = "tensorflow"` line is
left out (it would choose the backend of the real Keras other tests compare with). The
heart-disease CSV (a download, read with pandas, which is not a dependency) is replaced by the
columns its pandas code yields (`heart_disease_columns`: 120 random rows of the 14 columns
with their dtypes), `dataframe.shape` by the pair it prints, `dataframe.head()` left out,
`dataframe.sample(frac=0.2, random_state=1337)`/`drop` by a seeded split of the rows, and the
DataFrame by a dict of its columns (whose `len` is the number of columns: the shuffle buffer
is 13 instead of the row count). Epochs 20 -> 1.

Both FeatureSpaces are built (the string-typed one and the customized one), the customized one
is adapted on the label-free Dataset, called on a batch, mapped over the Datasets
(`num_parallel_calls=tf.data.AUTOTUNE`), the training model takes its encoded features and
the inference model its raw dict inputs (the FeatureSpace runs as the model's host prefix, in
numpy; kgraph/keras/layers/preprocessing/feature_space.py).
"""
import numpy as np
from example_datasets import heart_disease_columns

COLUMN_NAMES = [
    "age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak",
    "slope", "ca", "thal", "target",
]


def _run_example():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras.utils import FeatureSpace

    dataframe = heart_disease_columns(COLUMN_NAMES)
    print((len(dataframe["age"]), len(dataframe)))
    val_rows = np.random.default_rng(1337).permutation(120)[: int(0.2 * 120)]
    train_rows = np.setdiff1d(np.arange(120), val_rows)
    val_dataframe = {name: column[val_rows] for name, column in dataframe.items()}
    train_dataframe = {name: column[train_rows] for name, column in dataframe.items()}

    print(
        "Using %d samples for training and %d for validation"
        % (len(train_rows), len(val_rows))
    )

    def dataframe_to_dataset(dataframe):
        dataframe = dataframe.copy()
        labels = dataframe.pop("target")
        ds = tf.data.Dataset.from_tensor_slices((dict(dataframe), labels))
        ds = ds.shuffle(buffer_size=len(dataframe))
        return ds

    train_ds = dataframe_to_dataset(train_dataframe)
    val_ds = dataframe_to_dataset(val_dataframe)

    for x, y in train_ds.take(1):
        print("Input:", x)
        print("Target:", y)

    train_ds = train_ds.batch(32)
    val_ds = val_ds.batch(32)

    feature_space = FeatureSpace(
        features={
            # Categorical features encoded as integers
            "sex": "integer_categorical",
            "cp": "integer_categorical",
            "fbs": "integer_categorical",
            "restecg": "integer_categorical",
            "exang": "integer_categorical",
            "ca": "integer_categorical",
            # Categorical feature encoded as string
            "thal": "string_categorical",
            # Numerical features to discretize
            "age": "float_discretized",
            # Numerical features to normalize
            "trestbps": "float_normalized",
            "chol": "float_normalized",
            "thalach": "float_normalized",
            "oldpeak": "float_normalized",
            "slope": "float_normalized",
        },
        # We create additional features by hashing
        # value co-occurrences for the
        # following groups of categorical features.
        crosses=[("sex", "age"), ("thal", "ca")],
        # The hashing space for these co-occurrences
        # wil be 32-dimensional.
        crossing_dim=32,
        # Our utility will one-hot encode all categorical
        # features and concat all features into a single
        # vector (one vector per sample).
        output_mode="concat",
    )
    string_typed_space = feature_space

    feature_space = FeatureSpace(
        features={
            # Categorical features encoded as integers
            "sex": FeatureSpace.integer_categorical(num_oov_indices=0),
            "cp": FeatureSpace.integer_categorical(num_oov_indices=0),
            "fbs": FeatureSpace.integer_categorical(num_oov_indices=0),
            "restecg": FeatureSpace.integer_categorical(num_oov_indices=0),
            "exang": FeatureSpace.integer_categorical(num_oov_indices=0),
            "ca": FeatureSpace.integer_categorical(num_oov_indices=0),
            # Categorical feature encoded as string
            "thal": FeatureSpace.string_categorical(num_oov_indices=0),
            # Numerical features to discretize
            "age": FeatureSpace.float_discretized(num_bins=30),
            # Numerical features to normalize
            "trestbps": FeatureSpace.float_normalized(),
            "chol": FeatureSpace.float_normalized(),
            "thalach": FeatureSpace.float_normalized(),
            "oldpeak": FeatureSpace.float_normalized(),
            "slope": FeatureSpace.float_normalized(),
        },
        # Specify feature cross with a custom crossing dim.
        crosses=[
            FeatureSpace.cross(feature_names=("sex", "age"), crossing_dim=64),
            FeatureSpace.cross(
                feature_names=("thal", "ca"),
                crossing_dim=16,
            ),
        ],
        output_mode="concat",
    )

    train_ds_with_no_labels = train_ds.map(lambda x, _: x)
    feature_space.adapt(train_ds_with_no_labels)

    for x, _ in train_ds.take(1):
        preprocessed_x = feature_space(x)
        print("preprocessed_x.shape:", preprocessed_x.shape)
        print("preprocessed_x.dtype:", preprocessed_x.dtype)

    preprocessed_train_ds = train_ds.map(
        lambda x, y: (feature_space(x), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    preprocessed_train_ds = preprocessed_train_ds.prefetch(tf.data.AUTOTUNE)

    preprocessed_val_ds = val_ds.map(
        lambda x, y: (feature_space(x), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    preprocessed_val_ds = preprocessed_val_ds.prefetch(tf.data.AUTOTUNE)

    dict_inputs = feature_space.get_inputs()
    encoded_features = feature_space.get_encoded_features()

    x = keras.layers.Dense(32, activation="relu")(encoded_features)
    x = keras.layers.Dropout(0.5)(x)
    predictions = keras.layers.Dense(1, activation="sigmoid")(x)

    training_model = keras.Model(inputs=encoded_features, outputs=predictions)
    training_model.compile(
        optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"]
    )

    inference_model = keras.Model(inputs=dict_inputs, outputs=predictions)

    history = training_model.fit(
        preprocessed_train_ds,
        epochs=1,
        validation_data=preprocessed_val_ds,
        verbose=2,
    )

    sample = {
        "age": 60,
        "sex": 1,
        "cp": 1,
        "trestbps": 145,
        "chol": 233,
        "fbs": 1,
        "restecg": 2,
        "thalach": 150,
        "exang": 0,
        "oldpeak": 2.3,
        "slope": 3,
        "ca": 0,
        "thal": "fixed",
    }

    input_dict = {name: tf.convert_to_tensor([value]) for name, value in sample.items()}
    predictions = inference_model.predict(input_dict)

    print(
        f"This particular patient had a {100 * predictions[0][0]:.2f}% probability "
        "of having a heart disease, as evaluated by our model."
    )
    return (string_typed_space, feature_space, preprocessed_x, training_model,
            inference_model, history, sample, predictions)


def test_structured_data_classification_with_feature_space():
    (string_typed_space, feature_space, preprocessed_x, training_model, inference_model,
     history, sample, predictions) = _run_example()
    # one-hot widths (no OOV index): sex 2, cp 5, fbs 2, restecg 3, exang 2, ca 4, thal 3,
    # age 30 bins; 5 normalized floats; crosses 64 + 16
    width = 2 + 5 + 2 + 3 + 2 + 4 + 3 + 30 + 5 + 64 + 16
    assert preprocessed_x.shape == (32, width) and preprocessed_x.dtype == np.float32
    assert sorted(feature_space.preprocessors["thal"].get_vocabulary()) == \
        ["fixed", "normal", "reversible"]  # num_oov_indices=0: no "[UNK]"
    assert len(feature_space.preprocessors["age"].bin_boundaries) == 29
    assert sorted(feature_space.crossers) == ["sex_X_age", "thal_X_ca"]
    assert training_model.count_params() == (width * 32 + 32) + (32 + 1)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert np.isfinite(history.history["loss"]).all()
    # the end-to-end model equals the training model on the FeatureSpace's encoding
    encoded = feature_space({name: np.array([value]) for name, value in sample.items()})
    want = training_model.predict(encoded, verbose=0)
    assert predictions.shape == (1, 1) and 0.0 <= float(predictions[0][0]) <= 1.0
    np.testing.assert_allclose(predictions, want, rtol=1e-5)
    # the first FeatureSpace (features named by type) is built but never adapted
    assert string_typed_space.crossing_dim == 32 and not string_typed_space._is_adapted
