"""compile(graph, target) -> Compiled: optimise, emit and hand to an executor; cached by the
emitted program's bytes, so structurally identical graphs share one compiled session."""
from __future__ import annotations

import hashlib

from kgraph.compiler.passes import optimize
from kgraph.ir.graph import Graph

_CACHE: dict = {}
TARGETS = ("onnxruntime", "numpy")


def compile_graph(graph: Graph, target: str = "onnxruntime", optimized: bool = False):
    if target not in TARGETS:
        raise ValueError(f"Unknown target. Received: target={target!r}; expected one of {TARGETS}")
    if not optimized:
        graph = optimize(graph)
    if target == "numpy":
        from kgraph.runtime.numpy_exec import NumpyCompiled

        return NumpyCompiled(graph)
    from kgraph.compiler.onnx.emit import to_onnx
    from kgraph.runtime.onnx_exec import OrtCompiled

    data = to_onnx(graph).SerializeToString()
    key = (target, hashlib.sha256(data).hexdigest())
    compiled = _CACHE.get(key)
    if compiled is None:
        compiled = _CACHE[key] = OrtCompiled(data)
    return compiled


def cache_size() -> int:
    return len(_CACHE)
