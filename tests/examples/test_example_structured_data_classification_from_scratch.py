"""keras.io example "Structured data classification from scratch"
(examples/structured_data/structured_data_classification_from_scratch.py, the Keras 3
version: lookups in the `tf.data` pipeline, a numeric model).

`import keras; from keras import layers; import tensorflow as tf` swapped for kgraph's. The
heart-disease CSV (a download, read with pandas, which is not a dependency) is replaced by the
columns its pandas code yields: 120 random rows of the 14 columns with their dtypes (int64
categoricals, int64/float64 numerics, the string `thal` column), `dataframe.sample(frac=0.2,
random_state=1337)` by a seeded permutation, `dict(dataframe)` by a dict of those columns.
Epochs 50 -> 2.

The example picks the lookup class with `features[name].dtype == "string"`, TensorFlow's
string dtype: kgraph's tf.data hands text to map functions as arrays whose dtype equals
"string" (kgraph/data/structure.py `StringTensor`), so it runs as written; it also runs with
that test spelled for numpy (`dtype.kind in "US"`).
"""
import numpy as np
import pytest
from example_datasets import heart_disease_columns

COLUMN_NAMES = [
    "age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak",
    "slope", "ca", "thal", "target",
]


def _run_example(is_string):
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    dataframe = heart_disease_columns(COLUMN_NAMES)
    val_rows = np.random.default_rng(1337).permutation(120)[: int(0.2 * 120)]
    train_rows = np.setdiff1d(np.arange(120), val_rows)
    val_dataframe = {name: column[val_rows] for name, column in dataframe.items()}
    train_dataframe = {name: column[train_rows] for name, column in dataframe.items()}

    print(
        f"Using {len(train_rows)} samples for training "
        f"and {len(val_rows)} for validation"
    )

    # Target feature name.
    TARGET_FEATURE_NAME = "target"
    # Numeric feature names.
    NUMERIC_FEATURE_NAMES = ["age", "trestbps", "thalach", "oldpeak", "slope", "chol"]

    CATEGORICAL_FEATURES_WITH_VOCABULARY = {
        feature_name: sorted(
            [
                # Integer categorcal must be int and string must be str
                value if dataframe[feature_name].dtype == "int64" else str(value)
                for value in list(np.unique(dataframe[feature_name]))
            ]
        )
        for feature_name in COLUMN_NAMES
        if feature_name not in list(NUMERIC_FEATURE_NAMES + [TARGET_FEATURE_NAME])
    }
    # All features names.
    FEATURE_NAMES = NUMERIC_FEATURE_NAMES + list(
        CATEGORICAL_FEATURES_WITH_VOCABULARY.keys()
    )

    def encode_categorical(features, target):
        for feature_name in features:
            if feature_name in CATEGORICAL_FEATURES_WITH_VOCABULARY:
                lookup_class = (
                    layers.StringLookup
                    if is_string(features[feature_name].dtype)
                    else layers.IntegerLookup
                )
                vocabulary = CATEGORICAL_FEATURES_WITH_VOCABULARY[feature_name]
                # Create a lookup to convert a string values to an integer indices.
                # Since we are not using a mask token nor expecting any out of vocabulary
                # (oov) token, we set mask_token to None and  num_oov_indices to 0.
                index = lookup_class(
                    vocabulary=vocabulary,
                    mask_token=None,
                    num_oov_indices=0,
                    output_mode="binary",
                )
                # Convert the string input values into integer indices.
                value_index = index(features[feature_name])
                features[feature_name] = value_index

            else:
                pass

        # Change features from OrderedDict to Dict to match Inputs as they are Dict.
        return dict(features), target

    def encode_numerical_feature(feature, name, dataset):
        # Create a Normalization layer for our feature
        normalizer = layers.Normalization()
        # Prepare a Dataset that only yields our feature
        feature_ds = dataset.map(lambda x, y: x[name])
        feature_ds = feature_ds.map(lambda x: tf.expand_dims(x, -1))
        # Learn the statistics of the data
        normalizer.adapt(feature_ds)
        # Normalize the input feature
        encoded_feature = normalizer(feature)
        return encoded_feature

    def dataframe_to_dataset(dataframe):
        dataframe = dict(dataframe)
        labels = dataframe.pop("target")
        ds = tf.data.Dataset.from_tensor_slices((dict(dataframe), labels)).map(
            encode_categorical
        )
        ds = ds.shuffle(buffer_size=len(labels))
        return ds

    train_ds = dataframe_to_dataset(train_dataframe)
    val_ds = dataframe_to_dataset(val_dataframe)

    for x, y in train_ds.take(1):
        print("Input:", x)
        print("Target:", y)

    train_ds = train_ds.batch(32)
    val_ds = val_ds.batch(32)

    def create_model_inputs():
        inputs = {}

        # This a helper function for creating categorical features
        def create_input_helper(feature_name):
            num_categories = len(CATEGORICAL_FEATURES_WITH_VOCABULARY[feature_name])
            inputs[feature_name] = layers.Input(
                name=feature_name, shape=(num_categories,), dtype="int64"
            )
            return inputs

        for feature_name in FEATURE_NAMES:
            if feature_name in CATEGORICAL_FEATURES_WITH_VOCABULARY:
                # Categorical features
                create_input_helper(feature_name)
            else:
                # Make them float32, they are Real numbers
                feature_input = layers.Input(name=feature_name, shape=(1,), dtype="float32")
                # Process the Inputs here
                inputs[feature_name] = encode_numerical_feature(
                    feature_input, feature_name, train_ds
                )
        return inputs

    # This Layer defines the logic of the Model to perform the classification
    class Classifier(keras.layers.Layer):

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense_1 = layers.Dense(32, activation="relu")
            self.dropout = layers.Dropout(0.5)
            self.dense_2 = layers.Dense(1, activation="sigmoid")

        def call(self, inputs):
            all_features = layers.concatenate(list(inputs.values()))
            x = self.dense_1(all_features)
            x = self.dropout(x)
            output = self.dense_2(x)
            return output

        # Surpress build warnings
        def build(self, input_shape):
            self.built = True

    # Create the Classifier model
    def create_model():
        all_inputs = create_model_inputs()
        output = Classifier()(all_inputs)
        model = keras.Model(all_inputs, output)
        return model

    model = create_model()
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])

    history = model.fit(train_ds, epochs=2, validation_data=val_ds)

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

    # Given the category (in the sample above - key) and the category value (in the sample
    # above - value), we return its one-hot encoding
    def get_cat_encoding(cat, cat_value):
        # Create a list of zeros with the same length as categories
        encoding = [0] * len(cat)
        # Find the index of category_value in categories and set the corresponding position to 1
        if cat_value in cat:
            encoding[cat.index(cat_value)] = 1
        return encoding

    for name, value in sample.items():
        if name in CATEGORICAL_FEATURES_WITH_VOCABULARY:
            sample.update(
                {
                    name: get_cat_encoding(
                        CATEGORICAL_FEATURES_WITH_VOCABULARY[name], sample[name]
                    )
                }
            )
    # Convert inputs to tensors
    input_dict = {name: tf.convert_to_tensor([value]) for name, value in sample.items()}
    predictions = model.predict(input_dict)

    print(
        f"This particular patient had a {100 * predictions[0][0]:.1f} "
        "percent probability of having a heart disease, "
        "as evaluated by our model."
    )
    return model, history, predictions, CATEGORICAL_FEATURES_WITH_VOCABULARY


def test_as_written_with_tensorflow_string_dtype_test():
    """The example's own test, `features[name].dtype == "string"`: tf.data hands text to
    the map function as arrays whose dtype equals TensorFlow's "string" (StringTensor)."""
    model, _, predictions, vocabularies = _run_example(lambda dtype: dtype == "string")
    assert vocabularies["thal"] == ["fixed", "normal", "reversible"]
    assert np.all((predictions >= 0) & (predictions <= 1))


def test_structured_data_classification_from_scratch():
    model, history, predictions, vocabularies = _run_example(lambda dtype: dtype.kind in "US")
    assert vocabularies["thal"] == ["fixed", "normal", "reversible"]
    assert vocabularies["cp"] == [0, 1, 2, 3, 4]
    assert len(model.inputs) == 13
    # 6 numerics + one-hot widths 2+5+2+3+2+4+3 = 27 features into Dense(32); the model's
    # numeric inputs are the Normalization outputs (as the example builds it), so the
    # normalizers are outside the model, as in Keras
    assert model.count_params() == (27 * 32 + 32) + (32 + 1)
    hist = history.history
    assert set(hist) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert np.isfinite(hist["loss"]).all()
    assert predictions.shape == (1, 1) and 0.0 <= float(predictions[0][0]) <= 1.0
