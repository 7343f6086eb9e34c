"""The optional tuning path: measure variants of the default CPU schedule on the real step.

TVM 0.27's meta-schedule cannot run from the PyPI build: creating a TuneContext serializes the
kernel with ffi::ToJSONGraph, which crashes the process (SIGSEGV; `tvm.ir.save_json` of any TIR
module does the same). So `tune_trials=N` compiles the whole graph with up to N settings of
the CPU rule (register-tile rows, vector lanes, the threading threshold), times each on inputs
of the graph's shapes (symbolic dims at `TUNING_BATCH` unless `static_shapes` fix them), and
keeps the fastest. The result is recorded per graph key and reused by the next compile.
"""
from __future__ import annotations

import itertools
import json
import os
import time

import numpy as np
import tvm
from tvm.s_tir import dlight

from kgraph.compiler.tvm.cpu_schedule import PARALLEL_MIN, ROWS, VECTOR, CpuFallback
from kgraph.compiler.tvm.pipeline import cpu_pipeline

RECORDS = "kgraph_tuning.json"
TUNING_BATCH = 128
DEFAULT = {"rows": ROWS, "vector": VECTOR, "parallel_min": PARALLEL_MIN}


def candidates():
    """Schedule settings in trial order: the default, then one setting changed, then two..."""
    grid = [dict(zip(DEFAULT, values)) for values in itertools.product(
        (4, 2, 8), (16, 8, 32), (4096, 1024, 32768))]
    return sorted(grid, key=lambda c: sum(c[k] != DEFAULT[k] for k in DEFAULT))


def pipeline_for(target, params, fuse=True):
    return cpu_pipeline(target, [dlight.ApplyDefaultSchedule(CpuFallback(**params))], fuse)


def tune(compile_with, input_specs, work_dir: str, trials: int, progress=None) -> dict:
    """The fastest schedule settings of up to `trials` candidates, from `work_dir` when a
    previous compile of the same graph measured them.

    Args:
        compile_with: callable(params) -> tvm Executable.
        input_specs: [(shape with None for unknown dims, numpy dtype name)] in input order.
    """
    path = os.path.join(work_dir, RECORDS)
    if os.path.exists(path):
        with open(path) as f:
            best = json.load(f)["best"]
        if progress:
            progress(f"tuning record reused from {path}: {best}")
        return best
    args = _example_inputs(input_specs)
    trials_done = []
    for params in candidates()[:max(1, int(trials))]:
        seconds = _time(compile_with(params), args)
        trials_done.append({"params": params, "seconds": seconds})
        if progress:
            progress(f"schedule {params}: {seconds * 1e3:.3f} ms")
    best = min(trials_done, key=lambda t: t["seconds"])["params"]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"best": best, "trials": trials_done}, f, indent=1)
    os.replace(tmp, path)
    return best


def _example_inputs(input_specs):
    rng = np.random.default_rng(0)
    arrays = []
    for shape, dtype in input_specs:
        shape = [TUNING_BATCH if d is None else int(d) for d in shape]
        if np.dtype(dtype).kind in "iub":  # labels, indices, keys: 0 is always in range
            arrays.append(np.zeros(shape, dtype))
        else:
            arrays.append(rng.random(shape).astype(dtype) * 0.1)
    return arrays


def _time(executable, arrays, repeats=5) -> float:
    device = tvm.cpu()
    vm = tvm.runtime.vm.VirtualMachine(executable, device)
    args = [tvm.runtime.tensor(a, device) for a in arrays]
    vm["main"](*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        vm["main"](*args)
        times.append(time.perf_counter() - start)
    return float(np.median(times))
