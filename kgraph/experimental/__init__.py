"""`tf.experimental`: `tf.experimental.numpy` (kgraph/experimental/numpy.py)."""
from kgraph.experimental import numpy  # noqa: F401
