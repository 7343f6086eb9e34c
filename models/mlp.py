"""A multilayer perceptron: Flatten -> Dense(relu) x N -> Dense(softmax)."""
from __future__ import annotations


def MLP(input_shape=(784,), hidden_units=(256, 256), classes=10, activation="relu",
        classifier_activation="softmax", dropout=0.0, name="mlp"):
    """Build the MLP used by the benchmarks and the demo.

    Args:
        input_shape: shape of one sample (flattened if it has more than one axis).
        hidden_units: width of each hidden Dense layer.
        classes: number of outputs.
        activation: activation of the hidden layers.
        classifier_activation: activation of the last layer (None for logits).
        dropout: dropout rate after each hidden layer (0 for none).
        name: model name.

    Returns:
        A `keras.Sequential` model.

    Example:
    >>> from kgraph.applications import MLP
    >>> MLP(hidden_units=(8,), classes=3).output_shape
    (None, 3)
    """
    from kgraph import keras

    layers = [keras.Input(shape=tuple(input_shape), name="input")]
    if len(input_shape) > 1:
        layers.append(keras.layers.Flatten(name="flatten"))
    for i, units in enumerate(hidden_units):
        layers.append(keras.layers.Dense(units, activation=activation, name=f"dense_{i}"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout, name=f"dropout_{i}"))
    layers.append(keras.layers.Dense(classes, activation=classifier_activation,
                                     name="predictions"))
    return keras.Sequential(layers, name=name)
