"""TVM-CUDA artifacts vs PyTorch (eager, torch.compile, torch.compile reduce-overhead) on one GPU.

Two halves, because the GPU machine (H100/H200, Python 3.12, PyTorch, no network) has TVM's
runtime only (../shared/gpu/make-tvm-runtime-bundle.sh):

  python tools/gpu_bench.py build [--out bench-out/gpu] [--arch sm_90]     # here, no GPU needed
  tools/gpu_bench.sh BUNDLE_DIR [--out bench-out/gpu]                      # on the GPU machine
  (= PYTHONPATH=...bundle... TVM_USE_RUNTIME_LIB=1 python3 tools/gpu_bench.py run --out ...)

Models and data are tools/bench_layers.py's (its Keras models for kgraph, its PyTorch twins,
its make_data). `build` traces kgraph's Adam train steps (MLP 784-256-256-10 batch 128; CNN
conv32-pool-conv64-pool-dense10 on 28x28x1, LSTM(64) on 50x32 -> Dense(1) with mse, and the
transformer encoder block whose Embedding gradient is ONNX ScatterElements, each batch 64) and
the MLP and CNN predict graphs at batch 1 and 1024, cross-compiles each for CUDA with every dim
fixed (the LSTM's Scan loops unrolled, as for every TVM target), and writes `<name>.so` +
`<name>.npz` (feeds, and onnxruntime's outputs to check against) and one manifest.json (names,
dtypes). `run` loads them through kgraph.runtime.tvm_exec (kernels are compiled by nvcc when a
library loads), times them and the same workloads in PyTorch, all in one process on the same
card, and prints card, driver and versions with one table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = [("mlp_train", "mlp", "train", 128), ("cnn_train", "cnn", "train", 64),
             ("lstm_train", "lstm", "train", 64), ("transformer_train", "transformer", "train", 64),
             ("mlp_predict_b1", "mlp", "predict", 1), ("mlp_predict_b1024", "mlp", "predict", 1024),
             ("cnn_predict_b1", "cnn", "predict", 1), ("cnn_predict_b1024", "cnn", "predict", 1024)]


def bench_layers():
    """tools/bench_layers.py (numpy only at import, so the GPU machine loads it too), also
    when this file is itself loaded by path."""
    tools = os.path.join(REPO, "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    import bench_layers as module

    return module


# --------------------------------------------------------------------------- build (here)
def kgraph_model(model_name):
    """bench_layers' Keras model `model_name` for kgraph, seeded, compiled (Adam, its loss)."""
    from kgraph import keras

    keras.utils.set_random_seed(0)
    bench = bench_layers().KerasLayers("kgraph", model_name)
    bench.build()
    bench.compile()
    return bench.model


def build(out, arch="sm_90", only=None, progress=print):
    """Cross-compile every workload (or those named in `only`) for CUDA into `out`."""
    from kgraph.compiler.onnx import to_onnx
    from kgraph.compiler.passes import optimize
    from kgraph.compiler.passes.scans import unroll_scans
    from kgraph.compiler.tvm import export_library
    from kgraph.compiler.tvm.importer import onnx_signature

    os.makedirs(out, exist_ok=True)
    manifest = {"arch": arch, "workloads": {}}
    for name, model_name, kind, batch in WORKLOADS:
        if only and name not in only:
            continue
        x, y = bench_layers().make_data(model_name, batch)
        model = kgraph_model(model_name)
        graph = optimize(model.trace_step(kind, x, y if kind == "train" else None))
        feeds = {"x_0": x, "y_0": y}
        feeds.update({v.node.attrs["name"]: var.numpy() for var, v in graph.variables.items()})
        looped = to_onnx(graph)  # the Scan loops as onnxruntime runs them: the reference
        onnx_model = to_onnx(unroll_scans(graph))  # TVM's ONNX importer has no Scan
        inputs, outputs, dtypes = onnx_signature(onnx_model)
        assert onnx_signature(looped) == (inputs, outputs, dtypes)
        feeds = {n: np.asarray(feeds.get(n, np.uint32(7)), dtype=dtypes[n]) for n in inputs}
        export_library(onnx_model, f"cuda:{arch}", os.path.join(out, f"{name}.so"),
                       static_shapes={n: v.shape for n, v in feeds.items()}, progress=progress)
        refs = reference_outputs(looped, feeds)
        np.savez(os.path.join(out, f"{name}.npz"), *[feeds[n] for n in inputs],
                 **{f"ref_{i}": r for i, r in enumerate(refs)})
        manifest["workloads"][name] = {"model": model_name, "kind": kind, "batch": batch,
                                       "inputs": inputs, "outputs": outputs, "dtypes": dtypes}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def reference_outputs(onnx_model, feeds):
    """The step run by onnxruntime on this CPU (its Scan loops as loops, not unrolled): what the
    GPU's outputs are checked against."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {n: feeds[n] for n in names})


# --------------------------------------------------------------------------- run (GPU box)
def register_nvcc(arch):
    """With TVM's runtime only, CUDA source in a library is compiled by this callback."""
    import ctypes
    import subprocess
    import tempfile

    import tvm
    import tvm_ffi

    lib = os.path.join(os.path.dirname(tvm.__file__), "lib", "libtvm_runtime_cuda.so")
    if os.path.exists(lib):
        ctypes.CDLL(lib, ctypes.RTLD_GLOBAL)

    def compile_cuda(code, *_):
        with tempfile.TemporaryDirectory() as tmp:
            src, fatbin = os.path.join(tmp, "k.cu"), os.path.join(tmp, "k.fatbin")
            with open(src, "w") as f:
                f.write(code)
            subprocess.run(["nvcc", "--fatbin", "-O3", f"-arch={arch}", "-o", fatbin, src],
                           check=True, capture_output=True)
            with open(fatbin, "rb") as f:
                return f.read()

    tvm_ffi.register_global_func("tvm_callback_cuda_compile", compile_cuda, override=True)


def time_calls(fn, sync, seconds=1.0, warmup=10):
    for _ in range(warmup):
        fn()
    sync()
    times, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 20:
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _tvm_exec():
    """runtime/tvm_exec.py loaded by path: it needs numpy and TVM's runtime only, while the
    kgraph package may import modules the GPU machine lacks."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "kgraph_tvm_exec", os.path.join(REPO, "runtime", "tvm_exec.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def max_error(outputs, data):
    """Largest |gpu - cpu| / (1 + |cpu|) over every output of one step against onnxruntime's."""
    worst = 0.0
    for i, got in enumerate(outputs):
        want = data[f"ref_{i}"]
        got = np.asarray(got, dtype=np.float64).reshape(want.shape)
        worst = max(worst, float(np.max(np.abs(got - want) / (1 + np.abs(want)), initial=0)))
    return worst


def each_workload(manifest, label, measure):
    """{name: seconds per call} of `measure(name, spec)` for every workload; one that fails is
    reported and left out (its cell reads ERR), and the others still run."""
    rows = {}
    for name, spec in manifest["workloads"].items():
        try:
            rows[name] = measure(name, spec)
        except Exception as error:  # noqa: BLE001  (a GPU lease is too short to lose the rest)
            print(f"{label} {name}: failed: {type(error).__name__}: {error}", flush=True)
    return rows


def tvm_rows(out, manifest):
    load_library = _tvm_exec().load_library

    def measure(name, spec):
        start = time.perf_counter()
        compiled = load_library(os.path.join(out, f"{name}.so"), spec["inputs"], spec["outputs"],
                                "cuda", spec["dtypes"])
        data = np.load(os.path.join(out, f"{name}.npz"))
        feeds = {n: compiled.upload(data[f"arr_{i}"]) for i, n in enumerate(spec["inputs"])}
        error = max_error(compiled.run_numpy(feeds), data)
        loaded = time.perf_counter() - start
        seconds = time_calls(lambda: compiled.run(feeds), compiled.device.sync)
        print(f"TVM-CUDA {name}: {seconds * 1e3:.3f} ms; load + nvcc + first run "
              f"{loaded:.1f} s; max |gpu - onnxruntime cpu| / (1 + |cpu|) = {error:.2e}",
              flush=True)
        return seconds
    return each_workload(manifest, "TVM-CUDA", measure)


def torch_workload(spec):
    """bench_layers' PyTorch twin of the workload on the GPU, compiled there (Adam(eps=1e-7),
    the same loss as kgraph's), with the same batch as tensors (NCHW images, int64 tokens)."""
    layers = bench_layers()
    bench = layers.TorchLayers("torch", spec["model"])
    bench.build()
    bench.model.cuda()
    bench.compile()
    x, y = bench._tensors(*layers.make_data(spec["model"], spec["batch"]))
    return bench, x.cuda(), y.cuda()


def torch_rows(manifest, mode):
    def measure(name, spec):
        import torch

        bench, x, y = torch_workload(spec)
        if spec["kind"] == "train":
            step = bench.step if mode == "eager" else torch.compile(bench.step, mode=mode)

            def fn():
                step(x, y)
        else:
            bench.model.eval()
            forward = bench.model if mode == "eager" else torch.compile(bench.model, mode=mode)

            def fn():
                with torch.no_grad():
                    return torch.softmax(forward(x), -1)
        seconds = time_calls(fn, torch.cuda.synchronize)
        print(f"torch {mode} {name}: {seconds * 1e3:.3f} ms", flush=True)
        return seconds
    return each_workload(manifest, f"torch {mode}", measure)


def describe():
    import subprocess

    import torch
    import tvm

    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                          "--format=csv,noheader"], capture_output=True, text=True).stdout
    print(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"card/driver: {smi.strip()}; CUDA (torch) {torch.version.cuda}")
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, tvm {tvm.__version__}")


def run(out):
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    register_nvcc(manifest["arch"])
    describe()
    columns = {"TVM-CUDA (kgraph)": tvm_rows(out, manifest)}
    for label, mode in [("torch eager", "eager"), ("torch.compile", "default"),
                        ("torch.compile reduce-overhead", "reduce-overhead")]:
        columns[label] = torch_rows(manifest, mode)
    print("\n| workload | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name in manifest["workloads"]:
        cells = [f"{columns[c][name] * 1e3:.3f} ms" if name in columns[c] else "ERR"
                 for c in columns]
        print(f"| {name} | " + " | ".join(cells) + " |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["build", "run"])
    parser.add_argument("--out", default=os.path.join(REPO, "bench-out", "gpu"))
    parser.add_argument("--arch", default="sm_90")
    parser.add_argument("--only", default="", help="comma-separated workload names")
    args = parser.parse_args(argv)
    if args.mode == "build":
        build(args.out, args.arch, [w for w in args.only.split(",") if w])
    else:
        run(args.out)


if __name__ == "__main__":
    main()
