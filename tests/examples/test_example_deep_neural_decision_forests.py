"""keras.io example "Classification with Neural Decision Forests"
(examples/structured_data/deep_neural_decision_forests.py, Keras 3 version).

The code as written with `import keras; from keras import layers, ops; from
keras.layers import StringLookup; from tensorflow import data as tf_data` swapped for
kgraph: `tf_data.experimental.make_csv_dataset` (`na_value="?"`, `label_name`) mapped
through the target and per-column `StringLookup`s, `.cache()`; named float32/int32 scalar
`Input`s, `Embedding`s sized from the module-level `lookup` (the last one of the loop, as
written), `ops.expand_dims` of the numeric features, BatchNormalization; the
`NeuralDecisionTree` model (`self.add_weight` in `__init__`, a constant feature mask from
`ops.convert_to_tensor`, `ops.shape(features)[0]` of the traced batch given to `ops.ones`
and `ops.reshape`, `ops.tile`, slices of the routing probabilities level by level,
`keras.activations.softmax` of the leaf weights) and the `NeuralDecisionForest` of
subclassed trees (`ops.zeros([batch_size, num_classes])` accumulated), Adam, sparse
categorical crossentropy and accuracy, fit and evaluate.

The Census Income download and its pandas preparation (pandas is not a dependency) are
replaced by what that code writes: `train_data.csv` and `test_data.csv` without header, 15
columns in `CSV_HEADER` order, the UCI files' leading spaces, test labels without the
trailing dot; 300 and 100 random rows; the vocabularies are the sorted strings that occur
in the train rows (`native_country`'s the largest, as in the UCI file: the example sizes
every categorical `Embedding` by that last lookup). num_epochs 10 -> 1; depths, tree counts and batch size as written.
Checked: a tree's output is its numpy forward pass (rows of class probabilities summing to 1).
"""
import csv

import numpy as np

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
    "workclass": [" Private", " Self-emp-not-inc", " State-gov", " ?"],
    "education": [" Bachelors", " HS-grad", " Masters", " 11th", " Doctorate"],
    "marital_status": [" Never-married", " Married-civ-spouse", " Divorced"],
    "occupation": [" Adm-clerical", " Exec-managerial", " Sales", " Tech-support"],
    "relationship": [" Husband", " Wife", " Own-child", " Not-in-family"],
    "race": [" White", " Black", " Asian-Pac-Islander"],
    "gender": [" Male", " Female"],
    # The largest vocabulary, as in the UCI file (the example sizes every Embedding by it).
    "native_country": [" United-States", " Cuba", " India", " Mexico", " Canada",
                       " Germany", " Japan", " Peru", " Italy"],
    "income_bracket": [" <=50K", " >50K"],
}


def _census_rows(count, rng):
    rows = []
    for _ in range(count):
        row = {name: str(rng.choice(values)) for name, values in _CATEGORIES.items()}
        row.update(age=int(rng.integers(17, 90)), fnlwgt=int(rng.integers(10000, 900000)),
                   education_num=int(rng.integers(1, 17)),
                   capital_gain=int(rng.choice([0, 0, 0, 2174, 14084])),
                   capital_loss=int(rng.choice([0, 0, 1902])),
                   hours_per_week=int(rng.integers(1, 99)))
        rows.append([row[name] for name in CSV_HEADER])
    return rows


def _tree_reference(tree, features):
    """NeuralDecisionTree.call in numpy: route through the levels, mix the leaf softmaxes."""
    mask = np.asarray(tree.used_features_mask)
    kernel, bias = tree.decision_fn.get_weights()
    d = 1 / (1 + np.exp(-((features @ mask.T) @ kernel + bias)))
    decisions = np.stack([d, 1 - d], axis=2)
    mu = np.ones((len(features), 1, 1), "float32")
    begin, end = 1, 2
    for level in range(tree.depth):
        mu = np.tile(mu.reshape(len(features), -1, 1), (1, 1, 2)) * decisions[:, begin:end]
        begin, end = end, end + 2 ** (level + 1)
    pi = np.asarray(tree.pi)
    probs = np.exp(pi - pi.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    return mu.reshape(len(features), tree.num_leaves) @ probs


def test_deep_neural_decision_forests(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import math

    from kgraph import data as tf_data
    from kgraph import keras
    from kgraph.keras import layers, ops
    from kgraph.keras.layers import StringLookup

    rng = np.random.default_rng(0)
    train_rows, test_rows = _census_rows(300, rng), _census_rows(100, rng)
    train_data_file = "train_data.csv"
    test_data_file = "test_data.csv"
    for path, rows in ((train_data_file, train_rows), (test_data_file, test_rows)):
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows(rows)

    # A list of the numerical feature names.
    NUMERIC_FEATURE_NAMES = [
        "age",
        "education_num",
        "capital_gain",
        "capital_loss",
        "hours_per_week",
    ]
    # A dictionary of the categorical features and their vocabulary (from the train rows).
    CATEGORICAL_FEATURES_WITH_VOCABULARY = {
        name: sorted({row[CSV_HEADER.index(name)] for row in train_rows})
        for name in ("workclass", "education", "marital_status", "occupation",
                     "relationship", "race", "gender", "native_country")
    }
    # A list of the columns to ignore from the dataset.
    IGNORE_COLUMN_NAMES = ["fnlwgt"]
    # A list of the categorical feature names.
    CATEGORICAL_FEATURE_NAMES = list(CATEGORICAL_FEATURES_WITH_VOCABULARY.keys())
    # A list of all the input features.
    FEATURE_NAMES = NUMERIC_FEATURE_NAMES + CATEGORICAL_FEATURE_NAMES
    # A list of column default values for each feature.
    COLUMN_DEFAULTS = [
        [0.0] if feature_name in NUMERIC_FEATURE_NAMES + IGNORE_COLUMN_NAMES else ["NA"]
        for feature_name in CSV_HEADER
    ]
    # The name of the target feature.
    TARGET_FEATURE_NAME = "income_bracket"
    # A list of the labels of the target features.
    TARGET_LABELS = [" <=50K", " >50K"]

    target_label_lookup = StringLookup(
        vocabulary=TARGET_LABELS, mask_token=None, num_oov_indices=0
    )

    lookup_dict = {}
    for feature_name in CATEGORICAL_FEATURE_NAMES:
        vocabulary = CATEGORICAL_FEATURES_WITH_VOCABULARY[feature_name]
        lookup = StringLookup(vocabulary=vocabulary, mask_token=None, num_oov_indices=0)
        lookup_dict[feature_name] = lookup

    def encode_categorical(batch_x, batch_y):
        for feature_name in CATEGORICAL_FEATURE_NAMES:
            batch_x[feature_name] = lookup_dict[feature_name](batch_x[feature_name])

        return batch_x, batch_y

    def get_dataset_from_csv(csv_file_path, shuffle=False, batch_size=128):
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
            .map(lambda features, target: (features, target_label_lookup(target)))
            .map(encode_categorical)
        )

        return dataset.cache()

    def create_model_inputs():
        inputs = {}
        for feature_name in FEATURE_NAMES:
            if feature_name in NUMERIC_FEATURE_NAMES:
                inputs[feature_name] = layers.Input(
                    name=feature_name, shape=(), dtype="float32"
                )
            else:
                inputs[feature_name] = layers.Input(
                    name=feature_name, shape=(), dtype="int32"
                )
        return inputs

    def encode_inputs(inputs):
        encoded_features = []
        for feature_name in inputs:
            if feature_name in CATEGORICAL_FEATURE_NAMES:
                value_index = inputs[feature_name]
                embedding_dims = int(math.sqrt(lookup.vocabulary_size()))
                # Create an embedding layer with the specified dimensions.
                embedding = layers.Embedding(
                    input_dim=lookup.vocabulary_size(), output_dim=embedding_dims
                )
                # Convert the index values to embedding representations.
                encoded_feature = embedding(value_index)
            else:
                # Use the numerical features as-is.
                encoded_feature = inputs[feature_name]
                if inputs[feature_name].shape[-1] is None:
                    encoded_feature = keras.ops.expand_dims(encoded_feature, -1)

            encoded_features.append(encoded_feature)

        encoded_features = layers.concatenate(encoded_features)
        return encoded_features

    class NeuralDecisionTree(keras.Model):
        def __init__(self, depth, num_features, used_features_rate, num_classes):
            super().__init__()
            self.depth = depth
            self.num_leaves = 2**depth
            self.num_classes = num_classes

            # Create a mask for the randomly selected features.
            num_used_features = int(num_features * used_features_rate)
            one_hot = np.eye(num_features)
            sampled_feature_indices = np.random.choice(
                np.arange(num_features), num_used_features, replace=False
            )
            self.used_features_mask = ops.convert_to_tensor(
                one_hot[sampled_feature_indices], dtype="float32"
            )

            # Initialize the weights of the classes in leaves.
            self.pi = self.add_weight(
                initializer="random_normal",
                shape=[self.num_leaves, self.num_classes],
                dtype="float32",
                trainable=True,
            )

            # Initialize the stochastic routing layer.
            self.decision_fn = layers.Dense(
                units=self.num_leaves, activation="sigmoid", name="decision"
            )

        def call(self, features):
            batch_size = ops.shape(features)[0]

            # Apply the feature mask to the input features.
            features = ops.matmul(
                features, ops.transpose(self.used_features_mask)
            )  # [batch_size, num_used_features]
            # Compute the routing probabilities.
            decisions = ops.expand_dims(
                self.decision_fn(features), axis=2
            )  # [batch_size, num_leaves, 1]
            # Concatenate the routing probabilities with their complements.
            decisions = layers.concatenate(
                [decisions, 1 - decisions], axis=2
            )  # [batch_size, num_leaves, 2]

            mu = ops.ones([batch_size, 1, 1])

            begin_idx = 1
            end_idx = 2
            # Traverse the tree in breadth-first order.
            for level in range(self.depth):
                mu = ops.reshape(mu, [batch_size, -1, 1])  # [batch_size, 2 ** level, 1]
                mu = ops.tile(mu, (1, 1, 2))  # [batch_size, 2 ** level, 2]
                level_decisions = decisions[
                    :, begin_idx:end_idx, :
                ]  # [batch_size, 2 ** level, 2]
                mu = mu * level_decisions  # [batch_size, 2**level, 2]
                begin_idx = end_idx
                end_idx = begin_idx + 2 ** (level + 1)

            mu = ops.reshape(mu, [batch_size, self.num_leaves])  # [batch_size, num_leaves]
            probabilities = keras.activations.softmax(self.pi)  # [num_leaves, num_classes]
            outputs = ops.matmul(mu, probabilities)  # [batch_size, num_classes]
            return outputs

    class NeuralDecisionForest(keras.Model):
        def __init__(self, num_trees, depth, num_features, used_features_rate, num_classes):
            super().__init__()
            self.ensemble = []
            # Initialize the ensemble by adding NeuralDecisionTree instances.
            # Each tree will have its own randomly selected input features to use.
            for _ in range(num_trees):
                self.ensemble.append(
                    NeuralDecisionTree(depth, num_features, used_features_rate, num_classes)
                )

        def call(self, inputs):
            # Initialize the outputs: a [batch_size, num_classes] matrix of zeros.
            batch_size = ops.shape(inputs)[0]
            outputs = ops.zeros([batch_size, num_classes])

            # Aggregate the outputs of trees in the ensemble.
            for tree in self.ensemble:
                outputs += tree(inputs)
            # Divide the outputs by the ensemble size to get the average.
            outputs /= len(self.ensemble)
            return outputs

    learning_rate = 0.01
    batch_size = 265
    num_epochs = 1
    accuracies = []

    def run_experiment(model):
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=[keras.metrics.SparseCategoricalAccuracy()],
        )

        print("Start training the model...")
        train_dataset = get_dataset_from_csv(
            train_data_file, shuffle=True, batch_size=batch_size
        )

        model.fit(train_dataset, epochs=num_epochs, verbose=0)
        print("Model training finished")

        print("Evaluating the model on the test data...")
        test_dataset = get_dataset_from_csv(test_data_file, batch_size=batch_size)

        _, accuracy = model.evaluate(test_dataset, verbose=0)
        print(f"Test accuracy: {round(accuracy * 100, 2)}%")
        accuracies.append(accuracy)

    num_trees = 10
    depth = 10
    used_features_rate = 1.0
    num_classes = len(TARGET_LABELS)

    def create_tree_model():
        inputs = create_model_inputs()
        features = encode_inputs(inputs)
        features = layers.BatchNormalization()(features)
        num_features = features.shape[1]

        tree = NeuralDecisionTree(depth, num_features, used_features_rate, num_classes)

        outputs = tree(features)
        model = keras.Model(inputs=inputs, outputs=outputs)
        return model

    tree_model = create_tree_model()
    run_experiment(tree_model)

    num_trees = 25
    depth = 5
    used_features_rate = 0.5

    def create_forest_model():
        inputs = create_model_inputs()
        features = encode_inputs(inputs)
        features = layers.BatchNormalization()(features)
        num_features = features.shape[1]

        forest_model = NeuralDecisionForest(
            num_trees, depth, num_features, used_features_rate, num_classes
        )

        outputs = forest_model(features)
        model = keras.Model(inputs=inputs, outputs=outputs)
        return model

    forest_model = create_forest_model()

    run_experiment(forest_model)

    assert len(accuracies) == 2 and all(0.0 <= a <= 1.0 for a in accuracies)
    # 5 numeric features and 8 embeddings of int(sqrt(9)) = 3 dims (native_country's lookup).
    assert tuple(tree_model.layers[-1].used_features_mask.shape) == (29, 29)
    forest = forest_model.layers[-1]
    assert len(forest.ensemble) == 25
    assert tuple(forest.ensemble[0].used_features_mask.shape) == (14, 29)
    # Each tree's forward pass equals numpy's; a forest averages probability rows.
    features = rng.normal(size=(7, 29)).astype("float32")
    for tree in (tree_model.layers[-1], forest.ensemble[3]):
        out = np.asarray(tree(features))
        np.testing.assert_allclose(out, _tree_reference(tree, features), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(forest(features)).sum(1), 1.0, rtol=1e-5)
