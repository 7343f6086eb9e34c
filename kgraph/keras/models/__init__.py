"""`keras.models`."""
from kgraph.keras.models.model import Functional, Model  # noqa: F401
from kgraph.keras.models.sequential import Sequential  # noqa: F401
