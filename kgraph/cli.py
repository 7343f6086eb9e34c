"""The `kgraph` command: compile models into artifacts, run, inspect and benchmark them,
export ONNX; plus `info` and `demo`.

User mistakes (a missing file, a bad target, a wrong input shape, a tampered artifact) print
one `kgraph <command>: error: ...` line on stderr and exit with status 1 (2 for bad command
lines, as argparse does); `KGRAPH_DEBUG=1` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".json", ".onnx")


class UserError(Exception):
    """A mistake in what the user asked for; reported without a traceback."""


def _user_errors():
    """The exception types that mean "the user's input was wrong", not "kgraph is broken"."""
    from kgraph.runtime.artifact import ArtifactError, InputError

    return (UserError, ArtifactError, InputError, ValueError, OSError, KeyError)


class Progress:
    """Progress lines on stderr with the elapsed time (silenced by --quiet)."""

    def __init__(self, quiet=False):
        self.quiet, self.start = quiet, time.perf_counter()

    def __call__(self, message):
        if not self.quiet:
            print(f"[{time.perf_counter() - self.start:7.1f}s] {message}", file=sys.stderr,
                  flush=True)


# -- models and inputs ------------------------------------------------------------------------
def _existing(path, what="file"):
    if not os.path.exists(path):
        raise UserError(f"No such {what}: {path!r}")
    return path


def load_model_file(path, weights=None):
    """A Keras model from `.keras`, legacy `.h5`, or `.json` (+ `weights`)."""
    from kgraph.keras import saving
    from kgraph.keras.models.config import model_from_json

    _existing(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in MODEL_SUFFIXES or suffix == ".onnx":
        raise UserError(f"Unsupported model file {path!r}: expected one of "
                        f"{', '.join(MODEL_SUFFIXES)}")
    if suffix == ".json":
        if weights is None:
            raise UserError(f"{path!r} holds an architecture only: give --weights FILE too.")
        with open(path) as fh:
            model = model_from_json(fh.read())
        model.load_weights(_existing(weights))
        return model
    if weights is not None:
        raise UserError("--weights goes with a .json architecture file only.")
    return saving.load_model(path)


def _read_array(path):
    _existing(path)
    if not path.lower().endswith((".npy", ".npz")):
        raise UserError(f"Inputs are numpy files (.npy, or .npz by name). Received: {path!r}")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        raise UserError(f"Cannot read {path!r} as a numpy .npy/.npz file: {e}") from None


def read_inputs(specs) -> dict | list:
    """`--input x.npy` (positional) or `--input name=x.npy` (by name); a `.npz` gives every
    input by name at once."""
    named, ordered = {}, []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = None, spec
        data = _read_array(path)
        if isinstance(data, np.lib.npyio.NpzFile):
            named.update({k: data[k] for k in data.files})
        elif name is None:
            ordered.append(data)
        else:
            named[name] = data
    if named and ordered:
        raise UserError("Give every --input as name=file.npy, or none of them.")
    return named or ordered


def write_outputs(names, values, output):
    """One output -> `output` (.npy). Several -> one .npz keyed by output name when `output`
    ends in .npz, else a folder `output` with one `<name>.npy` per output."""
    if len(values) == 1 and not output.endswith(".npz"):
        np.save(output, values[0])
        return [output if output.endswith(".npy") else output + ".npy"]
    if output.endswith(".npz"):
        np.savez(output, **dict(zip(names, values)))
        return [output]
    os.makedirs(output, exist_ok=True)
    paths = [os.path.join(output, name.replace("/", "_") + ".npy") for name in names]
    for path, value in zip(paths, values):
        np.save(path, value)
    return paths


# -- commands -------------------------------------------------------------------------------
def _info(args):
    import numpy
    import onnxruntime

    import kgraph
    from kgraph import config

    print(f"kgraph {kgraph.__version__}")
    print(f"numpy {numpy.__version__}, onnxruntime {onnxruntime.__version__} "
          f"(providers: {', '.join(onnxruntime.get_available_providers())})")
    try:
        import tvm  # noqa: F401

        print(f"apache-tvm {tvm.__version__}")
    except ImportError:
        print("apache-tvm: not installed (pip install 'kgraph[tvm]')")
    print(f"config: floatx={config.floatx()}, image_data_format={config.image_data_format()}, "
          f"backend={config.backend()}, home={config.kgraph_home()}")
    return 0


def _demo(args):
    from kgraph.demo import main as demo_main

    return demo_main(["--epochs", str(args.epochs)] + (["--quiet"] if args.quiet else []))


def _compile(args):
    from kgraph.compiler import artifact

    progress = Progress(args.quiet)
    artifact.check_target(args.target, args.batch_size, args.train)
    progress(f"loading {args.model}")
    if _existing(args.model).lower().endswith(".onnx"):
        if args.train:
            raise UserError("--train needs a Keras model file (.keras, .h5, .json): an ONNX "
                            "file holds no optimizer or loss.")
        proto = artifact.check_onnx_file(args.model)
        out = artifact.write_artifact(args.output, proto, args.target, args.batch_size,
                                      args.tune, progress, artifact.onnx_info(proto))
    else:
        model = load_model_file(args.model, args.weights)
        progress(f"tracing {model.name!r} for target {args.target}")
        out = artifact.compile_model(model, args.output, args.target, args.batch_size,
                                     args.train, args.tune, progress)
    progress(f"wrote {out}")
    return 0


def _run(args):
    from kgraph import runtime

    model = runtime.load(_existing(args.artifact, "artifact"))
    values = model.predict(read_inputs(args.input))
    values = values if isinstance(values, list) else [values]
    for path in write_outputs(model.output_names, values, args.output):
        print(path)
    return 0


def _artifact_summary(manifest) -> dict:
    keys = ("target", "batch_size", "inputs", "outputs", "model", "versions", "onnx")
    out = {k: manifest.get(k) for k in keys}
    out["kind"] = "train" if manifest.get("train") else "inference"
    out["files"] = sorted(manifest["files"])
    return out


def _model_summary(path, weights) -> dict:
    from kgraph.compiler import artifact
    from kgraph.compiler.export import model_signature

    if path.lower().endswith(".onnx"):
        proto = artifact.check_onnx_file(path)
        return {"kind": "onnx", "inputs": artifact._input_specs(proto),
                "outputs": artifact._output_specs(proto), "model": artifact.onnx_info(proto),
                "onnx": {"opset": proto.opset_import[0].version, "ir_version": proto.ir_version}}
    model = load_model_file(path, weights)
    inputs, outputs = model_signature(model)
    return {"kind": "keras", "inputs": [{"name": n, "shape": list(s), "dtype": d}
                                        for n, s, d in inputs],
            "outputs": [{"name": n, "shape": list(t.shape), "dtype": str(t.dtype)} for n, t in
                        zip(outputs, model.outputs)],
            "model": artifact.model_info(model), "targets": list(artifact.TARGETS),
            "versions": artifact.versions()}


def _inspect(args):
    from kgraph.runtime.artifact import read_manifest

    path = _existing(args.path, "model or artifact")
    info = (_artifact_summary(read_manifest(path)) if os.path.isdir(path)
            else _model_summary(path, args.weights))
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    _print_summary(info)
    return 0


def _print_summary(info):
    model = info.get("model") or {}
    print(f"{info['kind']}: {model.get('name', '?')} ({model.get('class', '?')}), "
          f"{model.get('parameters', '?')} parameters")
    if info.get("target"):
        print(f"target: {info['target']}" + (f", batch size {info['batch_size']}"
                                             if info.get("batch_size") else ""))
    for title in ("inputs", "outputs"):
        for spec in info[title]:
            shape = ", ".join("batch" if d is None else str(d) for d in spec["shape"])
            print(f"{title[:-1]:>6} {spec['name']}: ({shape}) {spec.get('dtype', '')}")
    for layer in model.get("layers", [])[:50]:
        print(f"  layer {layer['name']:<30} {layer['class']:<24} {layer['parameters']}")
    if info.get("targets"):
        print(f"targets: {', '.join(info['targets'])}")
    versions = info.get("versions") or {}
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v))


def _random_inputs(specs, batch, rng):
    feeds = {}
    for spec in specs:
        shape = (batch,) + tuple(d if d is not None else 16 for d in spec["shape"][1:])
        kind = np.dtype(spec["dtype"]).kind
        feeds[spec["name"]] = (rng.integers(0, 2, size=shape) if kind in "biu"
                               else rng.standard_normal(shape)).astype(spec["dtype"])
    return feeds


def _timed(fn, repeat):
    fn()  # warm up (first-run allocations, lazy compilation)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _bench(args):
    from kgraph import runtime

    model = runtime.load(_existing(args.artifact, "artifact"))
    rng = np.random.default_rng(0)
    small = model.batch_size or 1
    large = model.batch_size or args.batch_size
    one = _random_inputs(model.inputs, small, rng)
    many = _random_inputs(model.inputs, large, rng)
    latency = _timed(lambda: model.predict(one), args.repeat)
    per_batch = _timed(lambda: model.predict(many), max(3, args.repeat // 5))
    result = {"target": model.target, "latency_ms": latency * 1e3, "latency_batch": small,
              "throughput_per_s": large / per_batch, "throughput_batch": large}
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(f"target {model.target}: latency {latency * 1e3:.3f} ms at batch {small} "
              f"(median of {args.repeat}); throughput {large / per_batch:,.0f} samples/s at "
              f"batch {large}")
    return 0


def _export(args):
    from kgraph.compiler.export import export

    progress = Progress(args.quiet)
    progress(f"loading {args.model}")
    model = load_model_file(args.model, args.weights)
    export(model, args.output, format=args.format, batch_size=args.batch_size)
    progress(f"wrote {args.output}")
    return 0


# -- the parser -----------------------------------------------------------------------------
def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_model_args(parser):
    parser.add_argument("model", help="a .keras, legacy .h5, .json (with --weights) or an "
                                      "inference .onnx file")
    parser.add_argument("--weights", help="weights file for a .json architecture")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _add_deploy_commands(sub):
    p = sub.add_parser("compile", help="compile a model file into a deployable artifact",
                       description="Compile MODEL into an artifact directory that "
                                   "`kgraph run` and kgraph.runtime.load() read.")
    _add_model_args(p)
    p.add_argument("--target", default="cpu", help="cpu (onnxruntime), llvm (TVM on CPU), "
                   "cuda or cuda:sm_XX (TVM), static (TVM, fixed shapes; needs --batch-size)")
    p.add_argument("--output", "-o", required=True, help="the artifact directory to write")
    p.add_argument("--batch-size", type=_positive_int, help="fixed batch size (static)")
    p.add_argument("--train", action="store_true",
                   help="include the training step and its state (train_step + save)")
    p.add_argument("--tune", type=int, default=0, metavar="TRIALS",
                   help="TVM meta-schedule tuning trials (0: default schedules)")
    p.set_defaults(fn=_compile)
    p = sub.add_parser("run", help="run an artifact on .npy inputs",
                       description="Run ARTIFACT. One output is written to --output (.npy); "
                       "several go into one .npz (--output y.npz) or a folder of <name>.npy.")
    p.add_argument("artifact", help="an artifact directory made by `kgraph compile`")
    p.add_argument("--input", "-i", action="append", required=True, metavar="[NAME=]FILE",
                   help="an input .npy (in signature order) or NAME=file.npy; a .npz names "
                        "every input")
    p.add_argument("--output", "-o", required=True, help="where the outputs go")
    p.set_defaults(fn=_run)
    p = sub.add_parser("inspect", help="show the signature, layers, parameters and versions",
                       description="Describe a model file or an artifact directory.")
    p.add_argument("path", help="a model file or an artifact directory")
    p.add_argument("--weights", help="weights file for a .json architecture")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(fn=_inspect)
    p = sub.add_parser("bench", help="latency at batch 1 and throughput at a large batch",
                       description="Benchmark an artifact on random inputs.")
    p.add_argument("artifact")
    p.add_argument("--batch-size", type=_positive_int, default=256,
                   help="the large batch for throughput (default 256)")
    p.add_argument("--repeat", type=_positive_int, default=50, help="timed runs (default 50)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(fn=_bench)
    p = sub.add_parser("export", help="export a model for inference (ONNX)",
                       description="Write MODEL as an inference ONNX file.")
    _add_model_args(p)
    p.add_argument("--format", default="onnx", help="only onnx")
    p.add_argument("--output", "-o", required=True, help="the .onnx file to write")
    p.add_argument("--batch-size", type=_positive_int, help="fix the batch size")
    p.set_defaults(fn=_export)


def build_parser():
    import kgraph

    parser = argparse.ArgumentParser(
        prog="kgraph", description="kgraph: the Keras API driven by a graph compiler.")
    parser.add_argument("--version", action="version", version=f"kgraph {kgraph.__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("info", help="show versions, executors and configuration",
                   description="Show versions, executors and configuration.").set_defaults(
        fn=_info)
    demo = sub.add_parser("demo", help="train, evaluate, save, reload and predict a model",
                          description="Train a model on the bundled 8x8 digits, save, reload "
                                      "and predict.")
    demo.add_argument("--epochs", type=int, default=5)
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(fn=_demo)
    _add_deploy_commands(sub)
    from kgraph.distribute import launch  # `kgraph launch -n N script.py` (issue 12)

    launch.add_parser(sub)
    from kgraph.keras.utils import plotting  # `kgraph plot MODEL --output model.svg`

    plotting.add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "fn", None) is None:
        parser.print_help()
        return 0
    try:
        return args.fn(args)
    except _user_errors() as e:
        if os.environ.get("KGRAPH_DEBUG"):
            raise
        message = str(e) if not isinstance(e, KeyError) else f"missing {e}"
        print(f"kgraph {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
