"""`keras.preprocessing`: the dataset loaders under the names the Keras FAQ and older guides use
(`tf.keras.preprocessing.image_dataset_from_directory`); the same functions as `keras.utils`."""
from kgraph.keras.utils import (image_dataset_from_directory,  # noqa: F401
                                text_dataset_from_directory, timeseries_dataset_from_array)
from kgraph.keras.utils import pad_sequences  # noqa: F401

__all__ = ["image_dataset_from_directory", "text_dataset_from_directory",
           "timeseries_dataset_from_array", "pad_sequences"]
