"""compile(graph, target) -> Compiled: optimise, emit and hand to an executor; cached by the
emitted program's bytes, so structurally identical graphs share one compiled session."""
from __future__ import annotations

import hashlib

from kgraph.compiler.passes import optimize
from kgraph.ir.graph import Graph

_CACHE: dict = {}
# Executors a graph can be compiled for in this process. "tvm" is TVM on the CPU (LLVM);
# "tvm:cuda" TVM on the first CUDA device; "static" / "static:cuda" TVM with every shape fixed
# (the trainer traces such graphs with concrete batch dimensions: see keras/execution.py).
TARGETS = ("onnxruntime", "numpy", "tvm", "tvm:cuda", "static", "static:cuda")


def resolve_target(target=None) -> str:
    """The canonical executor name for `target`; None means the configured backend
    (`kgraph.config.set_backend`, `KGRAPH_BACKEND`, `$KGRAPH_HOME/kgraph.json`)."""
    if target is None:
        from kgraph import config

        target = config.backend()
    target = {"llvm": "tvm", "tvm:llvm": "tvm", "cuda": "tvm:cuda"}.get(target, target)
    if target not in TARGETS:
        raise ValueError(f"Unknown executor target. Received: target={target!r}; expected one "
                         f"of {TARGETS}")
    return target


def compile_graph(graph: Graph, target: str | None = None, optimized: bool = False):
    target = resolve_target(target)
    if not optimized:
        graph = optimize(graph)
    if target == "numpy":
        from kgraph.runtime.numpy_exec import NumpyCompiled

        return NumpyCompiled(graph)
    from kgraph.compiler.onnx.emit import to_onnx
    from kgraph.runtime.onnx_exec import OrtCompiled

    model = to_onnx(graph)
    data = model.SerializeToString()
    key = (target, hashlib.sha256(data).hexdigest())
    compiled = _CACHE.get(key)
    if compiled is None:
        if target == "onnxruntime":
            compiled = OrtCompiled(data)
        else:
            from kgraph.compiler.tvm import compile_onnx

            compiled = compile_onnx(model, device="cuda" if target.endswith(":cuda") else "cpu")
        _CACHE[key] = compiled
    return compiled


def cache_size() -> int:
    return len(_CACHE)
