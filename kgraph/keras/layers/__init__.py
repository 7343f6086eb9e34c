"""`keras.layers`."""
from kgraph.keras.layers.base import KerasTensor, Layer  # noqa: F401
from kgraph.keras.layers.core import (Activation, Dense, Dropout, Identity, Input,  # noqa: F401
                                      InputLayer, Lambda)

try:  # filled in by sibling modules as they land
    from kgraph.keras.layers.activation import *  # noqa: F401,F403
    from kgraph.keras.layers.merge import *  # noqa: F401,F403
    from kgraph.keras.layers.reshaping import *  # noqa: F401,F403
except ImportError:  # pragma: no cover
    pass
