"""`keras.preprocessing`: the dataset loaders under the names the Keras FAQ and older guides use
(`tf.keras.preprocessing.image_dataset_from_directory`), and the submodules `image`
(`array_to_img`, ...) and `sequence` (`pad_sequences`); the same functions as `keras.utils`."""
from kgraph.keras.preprocessing import image, sequence  # noqa: F401
from kgraph.keras.utils import (image_dataset_from_directory,  # noqa: F401
                                text_dataset_from_directory, timeseries_dataset_from_array)
from kgraph.keras.utils import pad_sequences  # noqa: F401

__all__ = ["image_dataset_from_directory", "text_dataset_from_directory",
           "timeseries_dataset_from_array", "pad_sequences"]
