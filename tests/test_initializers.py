"""keras.initializers' snake_case names: Keras 3 exports each initializer class under its
config alias too (`keras.initializers.glorot_uniform()(shape=...)`, as the keras.io
traffic-forecasting example calls it)."""
import numpy as np
import pytest

from kgraph import keras


def test_snake_case_names_are_the_initializer_classes_keras_exports():
    real_keras = pytest.importorskip("keras")
    theirs = {name for name in dir(real_keras.initializers)
              if name[0].islower() and isinstance(getattr(real_keras.initializers, name), type)}
    theirs.discard("stft")  # keras.initializers.STFT (audio front ends) is not in kgraph
    for name in sorted(theirs):
        ours = getattr(keras.initializers, name)
        assert ours.__name__ == getattr(real_keras.initializers, name).__name__, name
        assert keras.initializers.get(name).__class__ is ours  # the same class get() resolves


def test_glorot_uniform_called_as_the_example_does():
    values = keras.initializers.glorot_uniform(seed=3)(shape=(6, 10), dtype="float32")
    limit = np.sqrt(6.0 / (6 + 10))
    assert values.shape == (6, 10) and values.dtype == np.float32
    assert np.abs(values).max() <= limit and values.std() > limit / 4
