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

from kgraph.keras.layers.base import KerasTensor  # noqa: F401,E402
from kgraph.keras.losses import Loss  # noqa: F401,E402
from kgraph.keras.metrics import Metric  # noqa: F401,E402
from kgraph.keras.optimizers import Optimizer  # noqa: F401,E402
from kgraph.keras.initializers import Initializer  # noqa: F401,E402
from kgraph.keras.regularizers import Regularizer  # noqa: F401,E402
from kgraph.keras.constraints import Constraint  # noqa: F401,E402
from kgraph.keras.name_scope import name_scope  # noqa: F401,E402

__version__ = "3.15.1"  # the Keras API level this mirrors


def version() -> str:
    """The Keras API version kgraph implements (`keras.version()`)."""
    return __version__


def _register_keras_module_paths():
    """The packages re-exported here from elsewhere in kgraph are importable under their
    Keras module paths too (`from keras.applications import imagenet_utils` in the keras.io
    MobileViT example, `from keras.ops import image`), as the same module objects."""
    import sys

    for name, package in (("ops", ops), ("random", random), ("applications", applications)):
        prefix = package.__name__
        for loaded in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
            sys.modules.setdefault(f"{__name__}.{name}{loaded[len(prefix):]}",
                                   sys.modules[loaded])


_register_keras_module_paths()
