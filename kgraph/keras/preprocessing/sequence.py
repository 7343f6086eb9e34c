"""`keras.preprocessing.sequence`: `pad_sequences` under the module name older code imports."""
from kgraph.keras.utils import pad_sequences

__all__ = ["pad_sequences"]
