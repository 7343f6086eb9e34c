"""`tf.distribute.experimental`: the names the Keras FAQ uses."""
from kgraph.distribute.mirrored import MultiWorkerMirroredStrategy  # noqa: F401
from kgraph.distribute.tpu_strategy import TPUStrategy  # noqa: F401
