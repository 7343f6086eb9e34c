"""'same' pooling with stride 1 over spatial axes of unknown size (kgraph/ops/pool.py): its
padding does not depend on the size, so the layers pool an open image size (InceptionV3's
average-pooling branches; the keras.io deep dream example runs it at three image sizes)."""
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


def test_strided_same_pooling_still_needs_the_size():
    with pytest.raises(ValueError, match="needs static spatial dims when strides > 1"):
        layers.MaxPooling2D(2, padding="same")(keras.Input((None, None, 3)))


def test_inception_v3_without_top_leaves_the_size_open():
    model = keras.applications.InceptionV3(weights=None, include_top=False)
    assert model.input.shape == (None, None, None, 3)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 80, 90, 3)).astype("float32")
    static = keras.applications.InceptionV3(weights=None, include_top=False,
                                            input_shape=(80, 90, 3))
    static.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict(x, verbose=0), static.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)
