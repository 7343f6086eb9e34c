"""Relax pipelines. CPU: TVM's default passes with the schedule rule of cpu_schedule.py between
legalization and lowering. CUDA: TVM's default passes and dlight GPU rules, each rule guarded
so that one that cannot handle a kernel (dlight's GEMV asserts on some of a training step's
reductions) hands it to the next rule instead of failing the build."""
from __future__ import annotations

import tvm
from tvm.relax.backend.cpu_generic import pipeline as cpu_generic
from tvm.relax.backend.cuda import pipeline as cuda_passes
from tvm.s_tir import dlight

from kgraph.compiler.tvm.cpu_schedule import CpuFallback


class Guarded(dlight.ScheduleRule):
    """A dlight rule that declines (returns None) where the wrapped rule raises."""

    def __init__(self, rule):
        self.rule = rule

    def apply(self, func, target, tunable):
        try:
            return self.rule.apply(func, target, tunable)
        except Exception:  # noqa: BLE001  (dlight signals "not my pattern" by asserting)
            return None

    def is_target_available(self, target) -> bool:
        return self.rule.is_target_available(target)


def gpu_rules():
    return [Guarded(r) for r in (dlight.gpu.Matmul(), dlight.gpu.GEMV(), dlight.gpu.Reduction(),
                                 dlight.gpu.GeneralReduction())] + [dlight.gpu.Fallback()]


def _sequential(target, passes):
    @tvm.transform.module_pass(opt_level=0, name="kgraph_tvm_pipeline")
    def _pipeline(mod, _ctx):
        with target:
            return tvm.transform.Sequential(passes)(mod)

    return _pipeline


def cpu_pipeline(target, schedule=None, fuse=True):
    """TVM's CPU pipeline with `schedule` passes (default: the CPU schedule rule).

    `fuse=False` leaves out operator fusion, as TVM's own generic build pipeline does: fusion
    loses the shape computation of some dynamic-length ops (an `arange` over a symbolic
    length), which VMShapeLower then rejects; `build_executable` retries without it.
    """
    schedule = [dlight.ApplyDefaultSchedule(CpuFallback())] if schedule is None else schedule
    legalize = (cpu_generic.legalize_passes(target) if fuse
                else [tvm.relax.transform.LegalizeOps()])
    return _sequential(target, cpu_generic.library_dispatch_passes(target)
                       + legalize + list(schedule)
                       + cpu_generic.dataflow_lower_passes(target)
                       + cpu_generic.finalize_passes(target))


def cuda_pipeline(target, fuse=True):
    legalize = ([p for p in cuda_passes.legalize_passes(target)
                 if not isinstance(p, dlight.ApplyDefaultSchedule)] if fuse
                else [tvm.relax.transform.LegalizeOps()])
    return _sequential(target, cuda_passes.library_dispatch_passes(target) + legalize
                       + [dlight.ApplyDefaultSchedule(*gpu_rules())]
                       + cuda_passes.dataflow_lower_passes(target)
                       + cuda_passes.finalize_passes(target))


def default_pipeline(target, fuse=True):
    """The pipeline `compile_onnx` uses for `target` when nothing is tuned."""
    if target.kind.name == "llvm":
        return cpu_pipeline(target, fuse=fuse)
    if target.kind.name == "cuda":
        return cuda_pipeline(target, fuse)
    return tvm.relax.get_default_pipeline(target)
