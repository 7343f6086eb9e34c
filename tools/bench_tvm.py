"""TVM-CPU vs onnxruntime-CPU: per-step time of the same compiled train step.

Usage: python tools/bench_tvm.py [--trials N] [--repeats R] [--steps S] [--only mlp,cnn]

Workloads: the benchmark MLP 784-256-256-10 (Adam, batch 128; tools/bench.py) and the CNN
conv32-pool-conv64-pool-dense10 on 28x28x1 (Adam, batch 64; tools/bench_layers.py). Each train
step graph is traced once and compiled three ways: onnxruntime, TVM with the default CPU
schedules (untuned), TVM tuned (`tune_trials=N`, the batch fixed by `static_shapes`). Timing is
interleaved: each repeat runs S steps on every executor in turn, so drift in machine load
lands on all of them; the figure is the median over repeats of the per-step time. Compiles go
to a fresh temporary KGRAPH_HOME so the tuned column really tunes.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
BATCH = {"mlp": 128, "cnn": 64}


def build_model(name):
    from kgraph import keras
    from kgraph.applications import MLP

    keras.utils.set_random_seed(0)
    if name == "mlp":
        model = MLP()
    else:
        L = keras.layers
        model = keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"),
                                  L.MaxPooling2D(2), L.Conv2D(64, 3, activation="relu"),
                                  L.MaxPooling2D(2), L.Flatten(),
                                  L.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    return model


def step_graph(name):
    """(ONNX train step, feeds) for one batch of random data."""
    from kgraph.compiler.onnx import to_onnx
    from kgraph.compiler.passes import optimize

    rng = np.random.default_rng(0)
    batch = BATCH[name]
    shape = (batch, 784) if name == "mlp" else (batch, 28, 28, 1)
    x, y = rng.random(shape, dtype=np.float32), rng.integers(0, 10, batch)
    model = build_model(name)
    graph = optimize(model.trace_step("train", x, y))
    feeds = {"x_0": x, "y_0": y}
    feeds.update({v.node.attrs["name"]: var.numpy() for var, v in graph.variables.items()})
    onnx_model = to_onnx(graph)
    names = [i.name for i in onnx_model.graph.input]
    return onnx_model, {n: np.asarray(feeds.get(n, np.uint32(7))) for n in names}


def executors(onnx_model, feeds, trials, log):
    from kgraph.compiler.tvm import compile_onnx
    from kgraph.runtime.onnx_exec import OrtCompiled

    static = {n: v.shape for n, v in feeds.items()}
    started = time.perf_counter()
    made = {"onnxruntime": OrtCompiled(onnx_model.SerializeToString())}
    made["tvm"] = compile_onnx(onnx_model)
    log(f"  untuned TVM compile: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    made[f"tvm tuned ({trials})"] = compile_onnx(onnx_model, static_shapes=static,
                                                 tune_trials=trials)
    log(f"  tuned TVM compile ({trials} trials): {time.perf_counter() - started:.1f} s")
    return made


def check_equal(made, feeds):
    want = [np.asarray(made["onnxruntime"].to_numpy(o)) for o in made["onnxruntime"].run(feeds)]
    for name, compiled in made.items():
        got = [np.asarray(compiled.to_numpy(o)) for o in compiled.run(feeds)]
        worst = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want))
        if worst > 1e-3:
            raise SystemExit(f"{name} disagrees with onnxruntime by {worst}")


def interleaved(made, feeds, repeats, steps):
    resident = {name: {k: c.upload(v) for k, v in feeds.items()} for name, c in made.items()}
    times = {name: [] for name in made}
    for name, compiled in made.items():  # warm-up
        compiled.run(resident[name])
    for _ in range(repeats):
        for name, compiled in made.items():
            start = time.perf_counter()
            for _ in range(steps):
                compiled.run(resident[name])
            times[name].append((time.perf_counter() - start) / steps)
    return {name: float(np.median(t)) for name, t in times.items()}


def machine():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(l.split(":", 1)[1].strip() for l in out.splitlines()
                     if l.startswith("Model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--only", default="mlp,cnn")
    args = parser.parse_args(argv)
    os.environ["KGRAPH_HOME"] = tempfile.mkdtemp(prefix="kgraph-bench-tvm-")
    import onnxruntime
    import tvm

    log = print
    log(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; machine: {machine()}")
    log(f"tvm {tvm.__version__}, onnxruntime {onnxruntime.__version__}, numpy {np.__version__}")
    rows = []
    for name in args.only.split(","):
        log(f"{name} (batch {BATCH[name]}):")
        onnx_model, feeds = step_graph(name)
        made = executors(onnx_model, feeds, args.trials, log)
        check_equal(made, feeds)
        medians = interleaved(made, feeds, args.repeats, args.steps)
        base = medians["onnxruntime"]
        for executor, seconds in medians.items():
            rows.append((name, executor, seconds * 1e3, seconds / base))
    log("")
    log("| train step | executor | ms/step (median) | ratio to onnxruntime |")
    log("|---|---|---|---|")
    for name, executor, ms, ratio in rows:
        log(f"| {name} | {executor} | {ms:.2f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
