"""kgraph.compiler.tvm: ONNX step graphs compiled by Apache TVM (Relax) for the CPU (LLVM),
CUDA and static-shape targets, through a verified disk cache.

Public API: `compile_onnx(model, device="cpu", static_shapes=None, tune_trials=0)` returns a
`kgraph.runtime.tvm_exec.TvmCompiled`; `export_library(model, target, path, ...)` writes one
shared library that `kgraph.runtime.tvm_exec.load_library` loads with TVM's runtime alone.
"""
from kgraph.compiler.tvm.build import build_executable, compile_onnx, export_library
from kgraph.compiler.tvm.disk_cache import DiskCache, UnsafeCacheWarning
from kgraph.compiler.tvm.targets import tvm_target

__all__ = ["compile_onnx", "export_library", "build_executable", "DiskCache",
           "UnsafeCacheWarning", "tvm_target"]
