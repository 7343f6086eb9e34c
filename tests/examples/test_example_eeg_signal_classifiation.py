"""keras.io example "EEG Signal Classifiation" (examples/structured_data/EEG_Signal_Classifiation.py,
a 2022 example under structured_data; not the later timeseries/eeg_signal_classification).

The example's code as written with `from tensorflow.keras...` swapped for kgraph: the eight
`eeg_power` band values of each recording as features, the 68 label names encoded and then
*normalized* as a regression target, a `Sequential` of six `Dense(128, kernel_regularizer=
regularizers.l2(1e-5))` + `Dropout(0.3)` blocks (the first with `input_shape`) and `Dense(68)`,
`compile("adam", "mse", metrics=["mae"])`, fit with `validation_split=0.2`, evaluate.

The Kaggle `eeg-data.csv` read by pandas (not a dependency) is replaced by the columns the
example keeps: 300 generated recordings (eight band powers as JSON lists, a label of 68
names); sklearn's `LabelEncoder` and `train_test_split` by their numpy equivalents
(`np.unique(..., return_inverse=True)`: the encoder's sorted classes; a seeded permutation);
the `(30013, 8)` array is sized by the data. Epochs 100 -> 1. Checked: the loss of a scalar
target against 68 outputs is numpy's mean of the broadcast squared errors (Keras 3 expands the
target's rank) plus the L2 terms, and the parameter count.
"""

import json

import numpy as np


def eeg_data(n=300, seed=0):
    """Stand-in for eeg-data.csv's `eeg_power` (JSON lists of 8 values) and `label` columns."""
    rng = np.random.default_rng(seed)
    names = [f"task{i}" for i in range(68)]
    eeg_power = [json.dumps(rng.integers(0, 10 ** 6, 8).tolist()) for _ in range(n)]
    labels = np.array([names[i % 68] for i in rng.permutation(n)])
    return eeg_power, labels


def test_eeg_signal_classifiation():
    from kgraph import keras
    from kgraph.keras.models import Sequential
    from kgraph.keras.layers import Dense, Dropout
    from kgraph.keras import regularizers

    keras.utils.set_random_seed(0)
    eeg_power, label = eeg_data()  # pd.read_csv("eeg-data.csv"), its columns dropped

    eeg_power = [json.loads(v) for v in eeg_power]  # df.eeg_power.map(json.loads)
    assert len(np.unique(label)) == 68

    data = np.empty(shape=(len(eeg_power), 8))  # (30013, 8) in the example
    for i in range(len(eeg_power)):
        element = np.asarray(eeg_power[i])
        data[i] = element

    targets = label
    classes, targets = np.unique(targets, return_inverse=True)  # LabelEncoder fit/transform
    targets = (targets - targets.mean(axis=0)) / targets.std()

    order = np.random.default_rng(1).permutation(len(data))  # train_test_split(0.3, shuffle)
    cut = int(len(data) * 0.7)
    data_train, data_test = data[order[:cut]], data[order[cut:]]
    targets_train, targets_test = targets[order[:cut]], targets[order[cut:]]

    dropout_rate = 0.3
    weight_decay = 1e-5

    model = Sequential(
        [
            Dense(
                128,
                kernel_regularizer=regularizers.l2(weight_decay),
                activation="relu",
                input_shape=(data_train.shape[1],),
            ),
            Dropout(dropout_rate),
            Dense(128, kernel_regularizer=regularizers.l2(weight_decay), activation="relu"),
            Dropout(dropout_rate),
            Dense(128, kernel_regularizer=regularizers.l2(weight_decay), activation="relu"),
            Dropout(dropout_rate),
            Dense(128, kernel_regularizer=regularizers.l2(weight_decay), activation="relu"),
            Dropout(dropout_rate),
            Dense(128, kernel_regularizer=regularizers.l2(weight_decay), activation="relu"),
            Dropout(dropout_rate),
            Dense(128, kernel_regularizer=regularizers.l2(weight_decay), activation="relu"),
            Dropout(dropout_rate),
            Dense(68),
        ]
    )
    model.summary()
    assert model.count_params() == 8 * 128 + 128 + 5 * (128 * 128 + 128) + 128 * 68 + 68

    model.compile(optimizer="adam", loss="mse", metrics=["mae"])

    history = model.fit(
        data_train, targets_train, epochs=1, validation_split=0.2, batch_size=64
    )  # epochs=100 in the example
    assert set(history.history) == {"loss", "mae", "val_loss", "val_mae"}

    loss, mae = model.evaluate(data_test, targets_test)
    pred = model.predict(data_test, verbose=0)
    errors = pred - targets_test[:, None].astype("float32")  # the target broadcast to 68
    l2 = sum(weight_decay * np.sum(np.square(layer.get_weights()[0]))
             for layer in model.layers if isinstance(layer, Dense) and layer.kernel_regularizer)
    np.testing.assert_allclose(loss, np.mean(errors ** 2) + l2, rtol=1e-3)
    np.testing.assert_allclose(mae, np.mean(np.abs(errors)), rtol=1e-3)
