"""kgraph.runtime: executors that run compiled graphs, and `load(path)` for compiled artifacts.

Imports neither onnx nor TVM's compiler nor anything of kgraph above it, so a deployment box
needs only numpy plus onnxruntime (or TVM's runtime library). Submodules load on first use.
"""
import importlib

_ATTRIBUTES = {
    "load": ("kgraph.runtime.artifact", "load"),
    "Artifact": ("kgraph.runtime.artifact", "Artifact"),
    "ArtifactError": ("kgraph.runtime.artifact", "ArtifactError"),
    "InputError": ("kgraph.runtime.artifact", "InputError"),
    "TrainableArtifact": ("kgraph.runtime.trainable_artifact", "TrainableArtifact"),
}


def __getattr__(name):
    if name not in _ATTRIBUTES:
        raise AttributeError(f"module 'kgraph.runtime' has no attribute {name!r}")
    module, attribute = _ATTRIBUTES[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_ATTRIBUTES))
