"""`keras.optimizers`: the optimizers, `get`, `serialize` and `deserialize`."""
from kgraph.keras.optimizers import legacy, schedules  # noqa: F401
from kgraph.keras.optimizers.adadelta import Adadelta
from kgraph.keras.optimizers.adafactor import Adafactor
from kgraph.keras.optimizers.adagrad import Adagrad
from kgraph.keras.optimizers.adam import Adam
from kgraph.keras.optimizers.adamax import Adamax
from kgraph.keras.optimizers.adamw import AdamW
from kgraph.keras.optimizers.base import Optimizer
from kgraph.keras.optimizers.ftrl import Ftrl
from kgraph.keras.optimizers.lamb import Lamb
from kgraph.keras.optimizers.lion import Lion
from kgraph.keras.optimizers.loss_scale_optimizer import LossScaleOptimizer
from kgraph.keras.optimizers.multi_optimizer import MultiOptimizer, OptimizerMap
from kgraph.keras.optimizers.muon import Muon
from kgraph.keras.optimizers.nadam import Nadam
from kgraph.keras.optimizers.rmsprop import RMSprop
from kgraph.keras.optimizers.schedule_free_adamw import ScheduleFreeAdamW
from kgraph.keras.optimizers.sgd import SGD
from kgraph.keras.serialization import CustomObjectScope, lookup

ALL = {cls.__name__: cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax,
                                     Nadam, Lamb, LossScaleOptimizer, Lion, Adafactor, Ftrl,
                                     Muon, ScheduleFreeAdamW, MultiOptimizer, OptimizerMap)}
# Keras 3 resolves built-in names case-insensitively ("rmsprop", "RMSprop", "RMSPROP").
_BY_LOWER_NAME = {name.lower(): name for name in ALL}


def get(identifier):
    """An optimizer from an instance, a name (`"rmsprop"`) or a `{class_name, config}` dict.

    Raises:
        ValueError: the identifier names no known optimizer (the bad name is quoted).
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if identifier is None:
        raise ValueError("compile(): `optimizer` must be given. Received: optimizer=None")
    if isinstance(identifier, str):
        return deserialize({"class_name": identifier, "config": {}})
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}")


def serialize(optimizer):
    """The Keras 3 dict form: `{module, class_name, config, registered_name}`."""
    return {"module": "keras.optimizers", "class_name": type(optimizer).__name__,
            "config": optimizer.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None):
    """An optimizer from `serialize()`'s dict (or a `{class_name, config}` dict)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Could not interpret optimizer identifier: {config!r}")
    name = config["class_name"]
    name = _BY_LOWER_NAME.get(name.lower(), name) if isinstance(name, str) else name
    with CustomObjectScope(custom_objects or {}):
        try:
            cls = lookup("optimizer", name, ALL)
        except ValueError:
            raise ValueError(f"Could not interpret optimizer identifier: {config['class_name']!r}"
                             f". Known optimizers: {sorted(_BY_LOWER_NAME)}") from None
        if cls is OptimizerMap:  # Keras 3 deserializes the map through here too
            return cls.from_config(dict(config.get("config") or {}), custom_objects)
        if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
            raise ValueError(f"Could not interpret optimizer identifier: {config['class_name']!r}"
                             f" (it resolves to {cls!r}, not an Optimizer class)")
        return cls.from_config(dict(config.get("config") or {}))
