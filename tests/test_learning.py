"""Learning for real: a CNN trained with fit() on the shipped UCI 8x8 digits."""
from kgraph import keras
from kgraph.datasets import load_digits


def digits_cnn(seed=0, backend=None):
    """The digits CNN, compiled (also trained on TVM by test_tvm_executor.py)."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"], backend=backend)
    return model


def test_cnn_learns_digits_to_97_percent():
    (x, y), (x_test, y_test) = load_digits()
    model = digits_cnn()
    model.fit(x[..., None], y, batch_size=32, epochs=15, verbose=0)
    loss, accuracy = model.evaluate(x_test[..., None], y_test, verbose=0)
    assert accuracy >= 0.97, f"test accuracy {accuracy:.4f} on {len(y_test)} held-out digits"
