"""Compiled artifacts, write side: `kgraph compile MODEL --target T --output DIR`.

Writes the directory that `kgraph.runtime.load` reads (layout in kgraph/runtime/artifact.py):
the inference ONNX graph, the TVM library for TVM targets, for `--train` the training step and
its state, and last the manifest with every file's sha256. The directory is assembled beside
`DIR` and renamed into place, so a failed compile leaves no half-made artifact.
"""
from __future__ import annotations

import io
import json
import os
import platform
import shutil
import tempfile
from importlib import metadata

import numpy as np

from kgraph.runtime.artifact import FORMAT, FORMAT_VERSION, MANIFEST, ArtifactError, sha256_bytes

TARGETS = ("cpu", "llvm", "static", "cuda")


class CompileError(ValueError):
    """A compile request kgraph cannot honour (bad target, missing batch size, ...)."""


def check_target(target: str, batch_size=None, train=False) -> str:
    """Validate `target` ("cpu", "llvm", "static", "cuda" or "cuda:sm_XX")."""
    kind, _, arch = str(target).partition(":")
    if kind not in TARGETS or (arch and (kind != "cuda" or not arch.startswith("sm_")
                                         or not arch[3:].isdigit())):
        raise CompileError(f"Unknown target. Received: target={target!r}; expected one of "
                           f"cpu, llvm, static, cuda, cuda:sm_XX (e.g. cuda:sm_90).")
    if kind == "static" and not batch_size:
        raise CompileError("The static target fixes every shape: give --batch-size N.")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise CompileError(f"--batch-size must be a positive integer. Received: "
                           f"batch_size={batch_size!r}")
    if train and kind != "cpu":
        raise CompileError(f"--train artifacts run their training step on onnxruntime: use "
                           f"--target cpu. Received: target={target!r}")
    return target


def versions() -> dict:
    """Versions of what made the artifact (tvm read from package metadata, not imported)."""
    import kgraph

    out = {"kgraph": kgraph.__version__, "python": platform.python_version()}
    for dist in ("numpy", "onnx", "onnxruntime", "apache-tvm"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _specs(items):
    return [{"name": n, "shape": list(s), "dtype": str(np.dtype(d))} for n, s, d in items]


def _output_specs(onnx_model):
    from onnx import helper

    specs = []
    for value in onnx_model.graph.output:
        t = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        specs.append({"name": value.name, "shape": dims,
                      "dtype": str(helper.tensor_dtype_to_np_dtype(t.elem_type))})
    return specs


def _input_specs(onnx_model):
    initializers = {i.name for i in onnx_model.graph.initializer}
    proto = type(onnx_model.graph)()
    proto.output.extend(i for i in onnx_model.graph.input if i.name not in initializers)
    return _output_specs(type(onnx_model)(graph=proto))


class ArtifactWriter:
    """Collects files and manifest entries, then publishes the directory in one rename."""

    def __init__(self, output_dir):
        self.output_dir = os.path.abspath(os.fspath(output_dir))
        _check_replaceable(self.output_dir)
        parent = os.path.dirname(self.output_dir)
        os.makedirs(parent, exist_ok=True)
        self.tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(self.output_dir)}.")
        self.files = {}

    def path(self, name):
        return os.path.join(self.tmp, name)

    def add(self, name, data: bytes):
        with open(self.path(name), "wb") as fh:
            fh.write(data)
        self.files[name] = sha256_bytes(data)

    def add_existing(self, name):
        with open(self.path(name), "rb") as fh:
            self.files[name] = sha256_bytes(fh.read())

    def publish(self, manifest: dict) -> str:
        manifest = dict(manifest, format=FORMAT, format_version=FORMAT_VERSION,
                        files=dict(sorted(self.files.items())))
        with open(self.path(MANIFEST), "w") as fh:
            json.dump(manifest, fh, indent=2, sort_keys=True)
        old = None
        if os.path.exists(self.output_dir):
            old = self.output_dir + ".old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.output_dir, old)
        os.replace(self.tmp, self.output_dir)
        if old:
            shutil.rmtree(old, ignore_errors=True)
        return self.output_dir

    def discard(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def _check_replaceable(path):
    """Only an earlier artifact or an empty folder is replaced, never other files."""
    if os.path.exists(path) and (not os.path.isdir(path) or (
            os.listdir(path) and not os.path.exists(os.path.join(path, MANIFEST)))):
        raise ArtifactError(f"Refusing to overwrite {path!r}: it exists and is not a kgraph "
                            f"artifact. Choose another --output.")


def _tvm_library(writer, onnx_model, target, static_shapes, tune_trials, progress):
    try:
        from kgraph.compiler.tvm import export_library
    except ImportError as e:
        raise CompileError(f"Target {target!r} compiles with Apache TVM, which is not "
                           f"installed: pip install 'kgraph[tvm]' ({e})") from None
    name = f"model.{target.replace(':', '_')}.so"
    export_library(onnx_model, target, writer.path(name), static_shapes=static_shapes,
                   tune_trials=tune_trials, progress=progress)
    writer.add_existing(name)
    return name


def write_artifact(output_dir, onnx_model, target="cpu", batch_size=None, tune_trials=0,
                   progress=None, model_info=None, train=None) -> str:
    """Write an artifact for an inference `onnx_model` (weights as initializers).

    Args:
        output_dir: the artifact directory (replaced if it holds an earlier artifact).
        onnx_model: the inference `onnx.ModelProto`, batch dimension symbolic.
        target: "cpu" (onnxruntime), "llvm", "static" or "cuda[:sm_XX]" (TVM).
        batch_size: the fixed batch of a static target.
        tune_trials: meta-schedule trials for TVM targets (0: default schedules).
        progress: a callable receiving progress messages (e.g. printing to stderr).
        model_info: name, layers and parameter counts for `kgraph inspect`.
        train: the `--train` part, from `train_files` (files + manifest entry).

    Returns:
        The artifact directory.
    """
    check_target(target, batch_size, train is not None)
    progress = progress or (lambda message: None)
    inputs, outputs = _input_specs(onnx_model), _output_specs(onnx_model)
    if target == "static":
        for spec in inputs + outputs:
            spec["shape"][0] = batch_size
    writer = ArtifactWriter(output_dir)
    try:
        writer.add("model.onnx", onnx_model.SerializeToString())
        manifest = {"target": target, "graph": "model.onnx", "inputs": inputs,
                    "outputs": outputs, "batch_size": batch_size if target == "static" else None,
                    "versions": versions(), "model": model_info or {}, "library": None,
                    "onnx": {"opset": onnx_model.opset_import[0].version,
                             "ir_version": onnx_model.ir_version}}
        if target != "cpu":
            progress(f"compiling for {target} with TVM"
                     + (f" ({tune_trials} tuning trials)" if tune_trials else ""))
            static = ({s["name"]: tuple(s["shape"]) for s in inputs} if target == "static"
                      else None)
            manifest["library"] = _tvm_library(writer, onnx_model, target, static,
                                               tune_trials, progress)
        if train is not None:
            for name, data in train["files"].items():
                writer.add(name, data)
            manifest["train"] = train["manifest"]
        return writer.publish(manifest)
    except BaseException:
        writer.discard()
        raise


def npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def model_info(model) -> dict:
    """What `kgraph inspect` shows about the model inside an artifact."""
    layers = [{"name": layer.name, "class": type(layer).__name__,
               "parameters": layer.count_params()} for layer in model.layers]
    return {"name": model.name, "class": type(model).__name__, "layers": layers,
            "parameters": model.count_params(),
            "trainable_parameters": int(sum(np.prod(v.shape) for v in model.trainable_weights))}


def _label_sample(model, output):
    """A one-sample label batch for output tensor `output` (sparse losses take class ids)."""
    config = getattr(model, "_compile_config", None) or {}
    loss = config.get("loss")
    names = [loss] if not isinstance(loss, (list, dict)) else (
        list(loss.values()) if isinstance(loss, dict) else loss)
    sparse = any("sparse" in (x if isinstance(x, str) else type(x).__name__).lower()
                 for x in names if x is not None)
    shape = tuple(output.shape[1:-1] if sparse else output.shape[1:])
    return np.zeros((1,) + shape, "int64" if sparse else "float32")


def _metric_initial_values(model, names) -> dict:
    """Metric accumulators as `reset_state()` leaves them (the model's own are restored)."""
    out = {}
    for metric in model.metrics:
        held = [np.array(v.numpy(), copy=True) for v in metric.variables]
        metric.reset_state()
        out.update({names[v]: np.array(v.numpy(), copy=True) for v in metric.variables
                    if v in names})
        for v, value in zip(metric.variables, held):
            v.assign(value)
    return out


def train_files(model, frozen: dict) -> dict:
    """The `--train` part of an artifact: the training step graph, its state, and the
    manifest entry that `TrainableArtifact` reads. `frozen` maps the inference graph's
    initializer names to their variables."""
    from kgraph import random as krandom
    from kgraph.compiler.onnx.emit import to_onnx, update_name
    from kgraph.compiler.passes import optimize
    from kgraph.keras.tree import pack_like

    if not getattr(model, "compiled", False):
        raise CompileError(f"--train needs a compiled model: model {model.name!r} was saved "
                           f"without compile() (no optimizer or loss).")
    x = pack_like(model._inputs_struct, [np.zeros((1,) + tuple(t.shape[1:]), t.dtype)
                                         for t in model.inputs])
    ys = [_label_sample(model, t) for t in model.outputs]
    graph = optimize(model.trace_step("train", x, ys[0] if len(ys) == 1 else ys))
    names = {var: v.node.attrs["name"] for var, v in graph.variables.items()}
    metric_ids = {id(v) for m in model.metrics for v in m.variables}
    state = {names[var]: np.asarray(var.numpy()) for var in names}
    state.update(_metric_initial_values(model, names))
    state["__rng__"] = np.asarray([krandom.draw_seed(), 0], dtype=np.int64)
    key = getattr(graph, "rng_key", None)
    feeds = [{"name": name, "role": name.rsplit("_", 1)[0], "dtype": v.dtype,
              "shape": list(v.shape)} for name, v in
             ((v.node.attrs["name"], v) for v in graph.inputs) if name in graph.feed_names]
    spec = {"graph": "train.onnx", "state": "state.npz", "feeds": feeds,
            "results": list(graph.output_names), "variables": list(state)[:-1],
            "updates": {names[var]: update_name(var, graph) for var in graph.updates},
            "metric_state": [names[var] for var in names if id(var) in metric_ids],
            "rng_key": key.node.attrs["name"] if key is not None else None,
            "parameters": {init: names[var] for init, var in frozen.items() if var in names},
            "revision": 0}
    files = {"train.onnx": to_onnx(graph).SerializeToString(), "state.npz": npz_bytes(state)}
    return {"files": files, "manifest": spec}


def compile_model(model, output_dir, target="cpu", batch_size=None, train=False,
                  tune_trials=0, progress=None) -> str:
    """Compile a built Keras `model` into an artifact directory; see `write_artifact`.

    Example:

    ```python
    from kgraph.compiler.artifact import compile_model
    compile_model(model, "artifact/", target="cpu")
    ```
    """
    from kgraph.compiler.export import inference_model

    check_target(target, batch_size, train)
    onnx_model, frozen = inference_model(model, unroll_loops=target != "cpu")  # TVM: no Scan
    train_part = train_files(model, frozen) if train else None
    return write_artifact(output_dir, onnx_model, target, batch_size, tune_trials, progress,
                          model_info(model), train_part)


MIN_OPSET, MAX_IR_VERSION = 7, 10  # what the onnxruntime kgraph pins reads


def check_onnx_file(path):
    """Load an inference `.onnx` file given to `kgraph compile`, refusing external data
    outside its folder and opset / IR versions outside what onnxruntime reads here.

    Returns:
        The `onnx.ModelProto` with any external data loaded into it.
    """
    import onnx
    from onnx import external_data_helper

    folder = os.path.dirname(os.path.abspath(path))
    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises several types on bad bytes
        raise CompileError(f"{path!r} is not a readable ONNX model: {e}") from None
    for tensor in external_data_helper._get_all_tensors(proto):
        if external_data_helper.uses_external_data(tensor):
            location = {e.key: e.value for e in tensor.external_data}.get("location", "")
            full = os.path.realpath(os.path.join(folder, location))
            if os.path.isabs(location) or not full.startswith(os.path.realpath(folder) + os.sep):
                raise CompileError(f"{path!r}: tensor {tensor.name!r} points at external data "
                                   f"outside the model's folder: location={location!r}")
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                default=None)
    if opset is None or not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise CompileError(f"{path!r}: opset {opset} is outside the supported range "
                           f"{MIN_OPSET}..{onnx.defs.onnx_opset_version()}")
    if not 3 <= proto.ir_version <= MAX_IR_VERSION:
        raise CompileError(f"{path!r}: IR version {proto.ir_version} is outside the supported "
                           f"range 3..{MAX_IR_VERSION}")
    external_data_helper.load_external_data_for_model(proto, folder)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as e:
        raise CompileError(f"{path!r} is not a valid ONNX model: {e}") from None
    return proto


def onnx_info(proto) -> dict:
    """`kgraph inspect` facts about an ONNX model given to `compile`."""
    count = sum(int(np.prod(t.dims)) for t in proto.graph.initializer)
    return {"name": proto.graph.name, "class": "onnx", "parameters": count,
            "layers": [{"name": n.name or n.op_type, "class": n.op_type, "parameters": 0}
                       for n in proto.graph.node]}
