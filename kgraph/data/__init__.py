"""`tf.data`: lazy input pipelines over numpy arrays and files.

    import kgraph as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1024).batch(32)
    model.fit(dataset.prefetch(tf.data.AUTOTUNE), epochs=2)
"""
from kgraph.data import experimental  # noqa: F401
from kgraph.data.dataset import (AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY,  # noqa: F401
                                 Dataset, TensorSpec)
from kgraph.data.sources import TextLineDataset  # noqa: F401
from kgraph.data.storage import DatasetFileError  # noqa: F401
from kgraph.data.transforms import Options  # noqa: F401
