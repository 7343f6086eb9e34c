"""The optional tuning path: meta-schedule with a trial budget over the kernels whose shapes are
all known, records kept per graph key so a second compile of the same graph reuses them.

Kernels with a symbolic dim (the batch) cannot be measured, so they keep the default schedule;
compile with `static_shapes` to fix the batch and tune the whole step.
"""
from __future__ import annotations

import os

import tvm
from tvm.s_tir import dlight
from tvm.s_tir import meta_schedule as ms

from kgraph.compiler.tvm.cpu_schedule import CpuFallback
from kgraph.compiler.tvm.pipeline import cpu_pipeline


def tuning_target(target):
    """Meta-schedule needs the CPU core count on an LLVM target."""
    if target.kind.name == "llvm":
        return tvm.target.Target({"kind": "llvm", "num-cores": os.cpu_count() or 1})
    return target


def _is_static(task) -> bool:
    func = next(iter(task.dispatched[0].functions.values()))
    return all(isinstance(d, tvm.tirx.IntImm) for buf in func.buffer_map.values()
               for d in buf.shape)


def tune(mod, target, work_dir: str, trials: int, progress=None):
    """Tune `mod`'s static kernels for `target` with `trials` measurements in all, the records
    in `work_dir` (reused as they are when the directory already holds a database)."""
    database_file = os.path.join(work_dir, "database_tuning_record.json")
    if os.path.exists(database_file) and os.path.getsize(database_file) > 0:
        if progress:
            progress(f"tuning records reused from {work_dir}")
        return ms.database.JSONDatabase(work_dir=work_dir)
    tasks = [t for t in ms.relax_integration.extract_tasks(mod, target) if _is_static(t)]
    if progress:
        progress(f"tuning {len(tasks)} kernels with {trials} trials (records: {work_dir})")
    database = ms.database.JSONDatabase(work_dir=work_dir)
    if not tasks:
        return database
    contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
        tasks, work_dir=work_dir, strategy="evolutionary", seed=0)
    per_iter = max(1, min(64, trials // max(1, len(tasks))))
    return ms.tune_tasks(tasks=contexts, task_weights=weights, work_dir=work_dir,
                         max_trials_global=trials, num_trials_per_iter=per_iter,
                         database=database)


def tuned_pipeline(target, database):
    """TVM's CPU pipeline with the tuned kernels from `database` and the default CPU schedule
    for the rest."""
    apply_records = tvm.transform.module_pass(opt_level=0, name="kgraph_apply_tuning")(
        lambda mod, _ctx: _apply(mod, database))
    return cpu_pipeline(target, [apply_records, dlight.ApplyDefaultSchedule(CpuFallback())])


def _apply(mod, database):
    with database:
        return tvm.relax.transform.MetaScheduleApplyDatabase()(mod)
