"""Custom `save_assets(inner_path)`/`load_assets(inner_path)` in `.keras` archives, as the
keras.io "Customizing Saving and Serialization" guide writes them: the files land under
`assets/<object path>/` and come back in a folder handed to `load_assets`."""
import os
import zipfile

import numpy as np

from kgraph import keras


@keras.saving.register_keras_serializable(package="test_saving_assets")
class Tagged(keras.layers.Dense):
    def __init__(self, tag=None, **kwargs):
        super().__init__(**kwargs)
        self.tag = tag

    def save_assets(self, inner_path):
        os.makedirs(os.path.join(inner_path, "sub"))
        with open(os.path.join(inner_path, "sub", "tag.txt"), "w") as f:
            f.write(self.tag)

    def load_assets(self, inner_path):
        with open(os.path.join(inner_path, "sub", "tag.txt")) as f:
            self.tag = f.read().upper()


def test_custom_assets_round_trip(tmp_path):
    model = keras.Sequential([keras.Input((3,)), Tagged(tag="abc", units=2),
                              keras.layers.Dense(1)])
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    names = zipfile.ZipFile(path).namelist()
    assets = [n for n in names if n.startswith("assets/")]
    assert len(assets) == 1 and assets[0].endswith("/sub/tag.txt")
    restored = keras.models.load_model(path)
    assert restored.layers[0].tag == "ABC"  # from the file (the config holds no tag)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    assert keras.utils.register_keras_serializable is keras.saving.register_keras_serializable
