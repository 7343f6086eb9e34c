"""The main job: build a model, train it with a progress bar on the shipped digits data,
evaluate, save, reload and predict. Run with `kgraph demo` or `python -m kgraph.demo`."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="kgraph demo")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    import kgraph as tf
    from kgraph import keras
    from kgraph.datasets import load_digits

    keras.utils.set_random_seed(42)
    (x_train, y_train), (x_test, y_test) = load_digits()
    print(f"digits: {len(x_train)} training and {len(x_test)} test images of 8x8 pixels")

    model = keras.Sequential([
        keras.Input(shape=(8, 8), name="image"),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(10, activation="softmax"),
    ], name="digits_mlp")
    model.summary()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, validation_split=0.1,
              verbose=0 if args.quiet else 1)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test loss {loss:.4f}, test accuracy {accuracy:.4f}")

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "digits.keras")
        model.save(path)
        restored = keras.models.load_model(path)
        before, after = model.predict(x_test, verbose=0), restored.predict(x_test, verbose=0)
    same = np.allclose(before, after, atol=1e-6)
    print(f"saved to .keras and reloaded: predictions identical = {same}")
    print("first five test images:", np.argmax(after[:5], axis=-1).tolist(),
          "labels:", y_test[:5].tolist())
    del tf
    return 0 if same and accuracy > 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
