"""`kgraph.keras`: the Keras API, compiled. `from kgraph import keras` then use it as Keras."""
from kgraph.keras import (activations, callbacks, constraints, initializers, layers,  # noqa: F401
                          losses, metrics, models, optimizers, regularizers)
from kgraph.keras.layers import Input, Layer  # noqa: F401
from kgraph.keras.models import Model, Sequential  # noqa: F401
from kgraph.variables import Variable  # noqa: F401
from kgraph.keras import utils  # noqa: F401,E402
from kgraph import datasets  # noqa: F401,E402  (keras.datasets)
from kgraph.keras import config  # noqa: F401,E402
from kgraph.keras import backend  # noqa: F401,E402
from kgraph.keras import saving  # noqa: F401,E402
from kgraph.keras import mixed_precision  # noqa: F401,E402
from kgraph.keras import preprocessing  # noqa: F401,E402  (keras.preprocessing loaders)
from kgraph import ops  # noqa: F401,E402
from kgraph import random  # noqa: F401,E402
from kgraph import applications  # noqa: F401,E402  (keras.applications)

__version__ = "3.15.1"  # the Keras API level this mirrors
