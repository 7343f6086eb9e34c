"""'same' pooling over spatial axes of unknown size (kgraph/ops/pool.py): with stride 1 its
padding does not depend on the size, so the layers pool an open image size (InceptionV3's
average-pooling branches; the keras.io deep dream example runs it at three image sizes); with
larger strides the input is padded at run time."""
import numpy as np
import pytest

from kgraph import keras
from kgraph.keras import layers


@pytest.mark.parametrize("layer", [layers.AveragePooling2D, layers.MaxPooling2D])
def test_stride_one_same_pooling_runs_at_any_size_as_the_static_layer(layer):
    inputs = keras.Input((None, None, 2))
    open_model = keras.Model(inputs, layer(3, strides=1, padding="same")(inputs))
    assert open_model.output.shape == (None, None, None, 2)
    rng = np.random.default_rng(0)
    for size in ((5, 4), (7, 9)):
        x = rng.normal(size=(2,) + size + (2,)).astype("float32")
        fixed = keras.Input(size + (2,))
        static_model = keras.Model(fixed, layer(3, strides=1, padding="same")(fixed))
        np.testing.assert_allclose(open_model.predict(x, verbose=0),
                                   static_model.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.parametrize("layer", [layers.AveragePooling2D, layers.MaxPooling2D])
def test_strided_same_pooling_pads_at_run_time(layer):
    """With strides > 1 the padding depends on the size: the input is padded at run time
    (tests/test_open_size_same_padding.py has more)."""
    inputs = keras.Input((None, None, 3))
    open_model = keras.Model(inputs, layer(2, padding="same")(inputs))
    rng = np.random.default_rng(2)
    for size in ((5, 4), (7, 9), (1, 1)):
        x = rng.normal(size=(2,) + size + (3,)).astype("float32")
        fixed = keras.Input(size + (3,))
        static_model = keras.Model(fixed, layer(2, padding="same")(fixed))
        np.testing.assert_allclose(open_model.predict(x, verbose=0),
                                   static_model.predict(x, verbose=0), rtol=1e-6)


def test_inception_v3_without_top_leaves_the_size_open():
    model = keras.applications.InceptionV3(weights=None, include_top=False)
    assert model.input.shape == (None, None, None, 3)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 80, 90, 3)).astype("float32")
    static = keras.applications.InceptionV3(weights=None, include_top=False,
                                            input_shape=(80, 90, 3))
    static.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict(x, verbose=0), static.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)
