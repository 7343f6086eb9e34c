"""`keras.optimizers`."""
from kgraph.keras.optimizers import schedules  # noqa: F401
from kgraph.keras.optimizers.adam import Adam
from kgraph.keras.optimizers.base import Optimizer
from kgraph.keras.optimizers.sgd import SGD
from kgraph.keras.serialization import lookup

ALL = {"SGD": SGD, "Adam": Adam}


def get(identifier):
    if isinstance(identifier, Optimizer):
        return identifier
    if identifier is None:
        raise ValueError("compile(): `optimizer` must be given. Received: optimizer=None")
    table = {**ALL, **{k.lower(): v for k, v in ALL.items()}}
    try:
        found = lookup("optimizer", identifier, table)
    except ValueError:
        raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}. Known "
                         f"optimizers: {sorted(k.lower() for k in ALL)}") from None
    return found() if isinstance(found, type) else found


def serialize(optimizer):
    return {"module": "keras.optimizers", "class_name": type(optimizer).__name__,
            "config": optimizer.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None):
    return get(config)
