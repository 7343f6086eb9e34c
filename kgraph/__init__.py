"""kgraph: the Keras API driven by a graph compiler.

    import kgraph as tf
    from kgraph import keras
"""
__version__ = "0.1.0"

from kgraph import config, ops, random  # noqa: F401,E402
from kgraph import keras  # noqa: F401,E402
from kgraph.device import device, device_scope  # noqa: F401,E402
from kgraph.tape import GradientTape  # noqa: F401,E402
from kgraph.variables import Variable  # noqa: F401,E402
