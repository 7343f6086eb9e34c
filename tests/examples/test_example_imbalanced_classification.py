"""keras.io example "Imbalanced classification: credit card fraud detection"
(examples/structured_data/imbalanced_classification.py).

The Keras 3 code as written; only the imports changed, the Kaggle
`creditcard.csv` replaced by a generated file of its layout (header, 30
quoted float columns, quoted 0/1 class; 600 rows, ~3% fraud), epochs cut
from 30 to 2.
"""

import numpy as np


def _write_creditcard_csv(fname, rows=600, seed=0):
    rng = np.random.default_rng(seed)
    names = ["Time"] + [f"V{i}" for i in range(1, 29)] + ["Amount", "Class"]
    lines = [",".join(f'"{n}"' for n in names)]
    for _ in range(rows):
        values = rng.normal(size=30)
        label = int(rng.random() < 0.03)
        lines.append(",".join([f"{v:.6f}" for v in values] + [f'"{label}"']))
    lines[2] = lines[2][: lines[2].rindex(",")] + ',"1"'  # at least one fraud
    fname.write_text("\n".join(lines) + "\n")


def test_imbalanced_classification(tmp_path, monkeypatch):
    from kgraph import keras

    monkeypatch.chdir(tmp_path)
    fname = tmp_path / "creditcard.csv"
    _write_creditcard_csv(fname)

    all_features = []
    all_targets = []
    with open(fname) as f:
        for i, line in enumerate(f):
            if i == 0:
                print("HEADER:", line.strip())
                continue  # Skip header
            fields = line.strip().split(",")
            all_features.append([float(v.replace('"', "")) for v in fields[:-1]])
            all_targets.append([int(fields[-1].replace('"', ""))])
            if i == 1:
                print("EXAMPLE FEATURES:", all_features[-1])

    features = np.array(all_features, dtype="float32")
    targets = np.array(all_targets, dtype="uint8")
    print("features.shape:", features.shape)
    print("targets.shape:", targets.shape)

    num_val_samples = int(len(features) * 0.2)
    train_features = features[:-num_val_samples]
    train_targets = targets[:-num_val_samples]
    val_features = features[-num_val_samples:]
    val_targets = targets[-num_val_samples:]

    print("Number of training samples:", len(train_features))
    print("Number of validation samples:", len(val_features))

    counts = np.bincount(train_targets[:, 0])
    print(
        "Number of positive samples in training data: {} ({:.2f}% of total)".format(
            counts[1], 100 * float(counts[1]) / len(train_targets)
        )
    )

    weight_for_0 = 1.0 / counts[0]
    weight_for_1 = 1.0 / counts[1]

    mean = np.mean(train_features, axis=0)
    train_features -= mean
    val_features -= mean
    std = np.std(train_features, axis=0)
    train_features /= std
    val_features /= std

    model = keras.Sequential(
        [
            keras.Input(shape=train_features.shape[1:]),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.summary()

    metrics = [
        keras.metrics.FalseNegatives(name="fn"),
        keras.metrics.FalsePositives(name="fp"),
        keras.metrics.TrueNegatives(name="tn"),
        keras.metrics.TruePositives(name="tp"),
        keras.metrics.Precision(name="precision"),
        keras.metrics.Recall(name="recall"),
    ]

    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=metrics
    )

    callbacks = [keras.callbacks.ModelCheckpoint("fraud_model_at_epoch_{epoch}.keras")]
    class_weight = {0: weight_for_0, 1: weight_for_1}

    history = model.fit(
        train_features,
        train_targets,
        batch_size=2048,
        epochs=2,
        verbose=2,
        callbacks=callbacks,
        validation_data=(val_features, val_targets),
        class_weight=class_weight,
    )

    assert features.shape == (600, 30) and targets.shape == (600, 1)
    hist = history.history
    # the confusion counts of each epoch cover every training sample once
    for epoch in range(2):
        total = sum(hist[k][epoch] for k in ("fn", "fp", "tn", "tp"))
        assert total == len(train_features)
        val_total = sum(hist["val_" + k][epoch] for k in ("fn", "fp", "tn", "tp"))
        assert val_total == len(val_features)
    assert (tmp_path / "fraud_model_at_epoch_1.keras").exists()
    assert (tmp_path / "fraud_model_at_epoch_2.keras").exists()
