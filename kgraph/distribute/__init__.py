"""`kgraph.distribute`: distribution strategies and collectives (`tf.distribute`).

- `MirroredStrategy`: replicas in this process, gradients all-reduced every step.
- `MultiWorkerMirroredStrategy`: one process per worker over MPI.
- `experimental.TPUStrategy` with `cluster_resolver.TPUClusterResolver`: the static target.
- `collectives`: the `Communicator` interface and its in-process / MPI backends.

Submodules load on first use, so `kgraph.variables` may import the scope state cheaply.
"""
import importlib

_ATTRIBUTES = {
    "MirroredStrategy": ("kgraph.distribute.mirrored", "MirroredStrategy"),
    "MultiWorkerMirroredStrategy": ("kgraph.distribute.mirrored",
                                    "MultiWorkerMirroredStrategy"),
    "TPUStrategy": ("kgraph.distribute.tpu_strategy", "TPUStrategy"),
    "Strategy": ("kgraph.distribute.strategy", "Strategy"),
    "get_strategy": ("kgraph.distribute.strategy", "get_strategy"),
    "has_strategy": ("kgraph.distribute.strategy", "has_strategy"),
    "in_cross_replica_context": ("kgraph.distribute.strategy", "in_cross_replica_context"),
    "DistributionScopeError": ("kgraph.distribute.strategy", "DistributionScopeError"),
    "Communicator": ("kgraph.distribute.collectives", "Communicator"),
}
_SUBMODULES = ("cluster_resolver", "experimental", "collectives", "strategy", "mirrored",
               "launch")


def __getattr__(name):
    if name in _ATTRIBUTES:
        module, attribute = _ATTRIBUTES[name]
        value = getattr(importlib.import_module(module), attribute)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"kgraph.distribute.{name}")
    else:
        raise AttributeError(f"module 'kgraph.distribute' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_ATTRIBUTES) | set(_SUBMODULES))
