"""compile_onnx and export_library: ONNX graph -> TVM library -> TvmCompiled."""
from __future__ import annotations

import onnx
import tvm

from kgraph.compiler.tvm.disk_cache import DiskCache, entry_key
from kgraph.compiler.tvm.importer import input_specs, onnx_signature, to_relax
from kgraph.compiler.tvm.pipeline import default_pipeline
from kgraph.compiler.tvm.targets import tvm_target
from kgraph.runtime.tvm_exec import TvmCompiled, load_library, tvm_device


def build_executable(model: onnx.ModelProto, target: str, static_shapes=None, tune_trials=0,
                     progress=None, cache: DiskCache | None = None):
    """Import, optionally tune, and compile `model` for the named target; a tvm Executable."""
    if target == "static":
        _require_static(model, static_shapes)
    mod = to_relax(model, static_shapes)
    tvm_tgt = tvm_target(target)
    if progress:
        progress(f"compiling {model.graph.name or 'graph'} for {target}")
    if tune_trials:
        return _tuned(model, mod, tvm_tgt, target, static_shapes, tune_trials, progress, cache)
    return _compile(mod, tvm_tgt, lambda fuse: default_pipeline(tvm_tgt, fuse))


def _tuned(model, mod, tvm_tgt, target, static_shapes, tune_trials, progress, cache):
    from kgraph.compiler.tvm import tuning

    if tvm_tgt.kind.name != "llvm":
        raise NotImplementedError(f"Tuning is implemented for CPU targets only. Received: "
                                  f"target={target!r}, tune_trials={tune_trials}")
    cache = cache or DiskCache()
    work_dir = cache.tuning_dir(entry_key(model.SerializeToString(), target, static_shapes))

    def compile_with(params):
        return _compile(mod, tvm_tgt, lambda fuse: tuning.pipeline_for(tvm_tgt, params, fuse))

    best = tuning.tune(compile_with, input_specs(model, static_shapes), work_dir,
                       tune_trials, progress)
    return compile_with(best)


def _compile(mod, target, pipeline):
    """tvm.compile with operator fusion, or without it where fusion breaks the shape lowering
    of a dynamic-length op (see pipeline.cpu_pipeline)."""
    try:
        return tvm.compile(mod, target=target, relax_pipeline=pipeline(True))
    except tvm.error.InternalError as error:
        if "has not been computed" not in str(error):
            raise
        return tvm.compile(mod, target=target, relax_pipeline=pipeline(False))


def _require_static(model, static_shapes):
    fixed = set(static_shapes or {})
    unknown = [i.name for i in model.graph.input if i.name not in fixed and any(
        not d.HasField("dim_value") for d in i.type.tensor_type.shape.dim)]
    if unknown:
        raise ValueError(f"The static target needs every input dim fixed; static_shapes must "
                         f"give shapes for {unknown}. Received: static_shapes={static_shapes!r}")


def _cuda_target(device: str) -> str:
    """"cuda:sm_XX" for the card behind `device` when there is one; plain "cuda" otherwise."""
    try:
        dev = tvm.runtime.cuda(int(device.partition(":")[2] or 0))
        if dev.exist:
            return "cuda:sm_" + dev.compute_version.replace(".", "")
    except Exception:  # noqa: BLE001  (no CUDA runtime: the default architecture)
        pass
    return "cuda"


def compile_onnx(model: onnx.ModelProto, device="cpu", static_shapes=None, tune_trials=0):
    """Compile an ONNX graph with TVM into an executor, through the disk cache.

    Args:
        model: the ONNX ModelProto (kgraph's emitter output).
        device: "cpu" (LLVM), "cuda" or "cuda:N".
        static_shapes: optional {input name: shape} fixing dims (Relax then plans memory
            statically, and tuning can measure every kernel).
        tune_trials: meta-schedule trial budget (CPU only); 0 uses the default schedules.

    Returns:
        A `kgraph.runtime.tvm_exec.TvmCompiled`.

    Raises:
        TvmDeviceError: `device` does not exist here (no CUDA device for "cuda").

    Example:
        >>> compiled = compile_onnx(to_onnx(graph))  # doctest: +SKIP
        >>> outputs = compiled.run({"x": x})  # doctest: +SKIP
    """
    device = str(device)
    tvm_device(device)  # no device, no compile: TvmDeviceError names it before minutes of work
    target = _cuda_target(device) if device.startswith("cuda") else "llvm"
    inputs, outputs, dtypes = onnx_signature(model)
    cache = DiskCache()
    key = entry_key(model.SerializeToString(), target, static_shapes, tune_trials)
    path = cache.lookup(key)
    if path is None:
        executable = build_executable(model, target, static_shapes, tune_trials, cache=cache)
        path = cache.store(key, executable.export_library)
        if path is None:
            return TvmCompiled(executable, inputs, outputs, device, dtypes)
    return load_library(path, inputs, outputs, device, dtypes)


def export_library(model: onnx.ModelProto, target: str, path: str, static_shapes=None,
                   tune_trials=0, progress=None) -> str:
    """Compile `model` for `target` and write one shared library file at `path`.

    Args:
        model: the ONNX ModelProto.
        target: "llvm", "cuda", "cuda:sm_XX" or "static" (LLVM with every dim fixed by
            `static_shapes`, so Relax plans all memory ahead). CUDA cross-compiles without a
            GPU: the library holds CUDA source compiled when it is loaded.
        path: the `.so` file to write.
        static_shapes: {input name: shape}; required for "static" where dims are unknown.
        tune_trials: meta-schedule trial budget (CPU targets).
        progress: optional callable(str) told what a long compile is doing.

    Returns:
        `path`. Load it with `kgraph.runtime.tvm_exec.load_library`.
    """
    executable = build_executable(model, target, static_shapes, tune_trials, progress)
    executable.export_library(str(path))
    if progress:
        progress(f"wrote {path}")
    return str(path)


__all__ = ["compile_onnx", "export_library", "build_executable"]
