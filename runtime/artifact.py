"""Compiled artifacts, read side: `kgraph.runtime.load(path)`.

An artifact is one directory (written by `kgraph compile`, see kgraph/compiler/artifact.py):

    manifest.json    format, signature (names, shapes with None = symbolic batch, dtypes),
                     target, versions, and the sha256 of every other file
    model.onnx       the inference graph, weights as initializers
    model.<target>.so    the TVM library, for TVM targets
    train.onnx, state.npz    for `--train` artifacts: the training step and its state

Reading needs numpy plus onnxruntime (or TVM's runtime for a TVM target) and nothing else of
kgraph: no onnx, h5py, networkx or scipy. Every file's checksum is verified before anything is
loaded; a tampered, truncated or incomplete artifact raises `ArtifactError` naming the file.
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

FORMAT = "kgraph-artifact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TVM_TARGETS = ("llvm", "static", "cuda")


class ArtifactError(ValueError):
    """An artifact that is missing, incomplete, tampered with or of an unknown format."""


class InputError(ValueError):
    """Inputs that do not match an artifact's signature."""


# -- files ----------------------------------------------------------------------------------
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(path) -> dict:
    """The verified manifest of the artifact directory `path`: known format, every listed
    file present, inside the directory and matching its sha256."""
    path = os.fspath(path)
    manifest_path = os.path.join(path, MANIFEST)
    if not os.path.isdir(path):
        raise ArtifactError(f"Not an artifact directory: {path!r} (make one with "
                            f"`kgraph compile MODEL --output DIR`)")
    try:
        with open(manifest_path, "rb") as fh:
            manifest = json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"Incomplete artifact {path!r}: {MANIFEST} is missing") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ArtifactError(f"Corrupt manifest {manifest_path!r}: {e}") from None
    _check_format(manifest, manifest_path)
    for name, digest in manifest["files"].items():
        verify_file(path, name, digest)
    return manifest


def _check_format(manifest, manifest_path):
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{manifest_path!r} is not a kgraph artifact manifest (format "
                            f"{manifest.get('format') if isinstance(manifest, dict) else None!r})")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(f"{manifest_path!r} has format_version={version!r}; this kgraph "
                            f"reads version {FORMAT_VERSION}. Recompile the model.")
    for key in ("files", "inputs", "outputs", "target", "graph"):
        if key not in manifest:
            raise ArtifactError(f"Incomplete manifest {manifest_path!r}: no {key!r} entry")


def verify_file(directory, name, digest) -> bytes:
    """The bytes of `name` inside `directory`, after checking its sha256 against `digest`."""
    if os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        raise ArtifactError(f"Artifact {directory!r} lists a file outside itself: {name!r}")
    full = os.path.join(directory, name)
    try:
        with open(full, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ArtifactError(f"Incomplete artifact {directory!r}: {name} is missing") from None
    if sha256_bytes(data) != digest:
        raise ArtifactError(f"Checksum mismatch for {full!r}: the file was modified or "
                            f"truncated after compilation ({len(data)} bytes). Recompile it.")
    return data


# -- executors ------------------------------------------------------------------------------
def _ort_executor(model_bytes, output_names):
    from kgraph.runtime.onnx_exec import OrtCompiled

    return OrtCompiled(model_bytes, output_names=list(output_names))


def _tvm_executor(path, target, inputs, output_names):
    from kgraph.runtime import tvm_exec

    device = "cuda" if target.startswith("cuda") else "cpu"
    try:
        tvm_exec.tvm_device(device)  # before loading: a CUDA library needs a CUDA device
        return tvm_exec.load_library(path, [s["name"] for s in inputs], list(output_names),
                                     device=device,
                                     input_dtypes={s["name"]: s["dtype"] for s in inputs})
    except ImportError as e:
        raise ArtifactError(f"Artifact {path!r} (target {target}) needs TVM's runtime: "
                            f"pip install apache-tvm ({e})") from None
    except tvm_exec.TvmDeviceError as e:
        raise ArtifactError(f"Artifact {path!r} (target {target}) cannot run here: {e}") from None


# -- inputs ---------------------------------------------------------------------------------
def named_feeds(specs, x, what="input") -> dict:
    """`x` (one array, a list in signature order, or a dict by name) as {name: array} with
    each array cast to its declared dtype and its shape checked."""
    names = [s["name"] for s in specs]
    if isinstance(x, dict):
        unknown = sorted(set(x) - set(names))
        missing = [n for n in names if n not in x]
        if unknown or missing:
            raise InputError(f"The {what}s are named {names}. Received names {sorted(x)} "
                             f"(missing {missing}, unknown {unknown}).")
        arrays = [x[n] for n in names]
    else:
        arrays = list(x) if isinstance(x, (list, tuple)) else [x]
        if len(arrays) != len(names):
            raise InputError(f"Expected {len(names)} {what}(s) {names}; received "
                             f"{len(arrays)}.")
    return {s["name"]: _checked(s, a, what) for s, a in zip(specs, arrays)}


def _checked(spec, array, what):
    array = np.asarray(array)
    shape = spec["shape"]
    if array.ndim == len(shape) + 1 and array.shape[-1] == 1:  # labels given as a column
        array = array.reshape(array.shape[:-1])
    if array.ndim != len(shape) or any(d is not None and d != g for d, g in
                                       zip(shape[1:], array.shape[1:])):
        raise InputError(f"{what.capitalize()} {spec['name']!r} expects shape "
                         f"{_shape_text(shape)}; received an array of shape {array.shape}.")
    if array.dtype.kind not in "biuf":
        raise InputError(f"{what.capitalize()} {spec['name']!r} must be numeric; received "
                         f"dtype {array.dtype}.")
    return np.ascontiguousarray(array, dtype=spec["dtype"])


def _shape_text(shape):
    return "(" + ", ".join("batch" if d is None else str(d) for d in shape) + ")"


def _batch_sizes(feeds) -> int:
    sizes = {a.shape[0] for a in feeds.values()}
    if len(sizes) != 1:
        raise InputError(f"Every input needs the same batch size; received {sorted(sizes)}.")
    return sizes.pop()


# -- the loaded artifact --------------------------------------------------------------------
class Artifact:
    """A loaded inference artifact: `predict(x)` with x one array, a list or a dict by name."""

    def __init__(self, path, manifest):
        self.path, self.manifest = os.fspath(path), manifest
        self.target = manifest["target"]
        self.inputs, self.outputs = manifest["inputs"], manifest["outputs"]
        self.input_names = [s["name"] for s in self.inputs]
        self.output_names = [s["name"] for s in self.outputs]
        self.batch_size = manifest.get("batch_size")  # fixed by static targets
        self._executor = self._load_executor()

    def _file(self, name) -> bytes:
        return verify_file(self.path, name, self.manifest["files"][name])

    def _load_executor(self):
        library = self.manifest.get("library")
        if self.target in ("cpu",) or library is None:
            return _ort_executor(self._file(self.manifest["graph"]), self.output_names)
        return _tvm_executor(os.path.join(self.path, library), self.target, self.inputs,
                             self.output_names)

    def run(self, feeds: dict) -> dict:
        """Outputs by name for one call on already checked `feeds`."""
        executor = self._executor
        if self.batch_size is None:
            return dict(zip(self.output_names, [executor.to_numpy(b)
                                                for b in executor.run(feeds)]))
        return self._run_static(feeds)

    def _run_static(self, feeds):
        """Fixed-batch libraries: run in chunks of `batch_size`, the last one zero-padded."""
        n, size = _batch_sizes(feeds), self.batch_size
        chunks = []
        for start in range(0, n, size):
            part = {k: v[start:start + size] for k, v in feeds.items()}
            pad = size - len(next(iter(part.values())))
            if pad:
                part = {k: np.concatenate([v, np.zeros((pad,) + v.shape[1:], v.dtype)])
                        for k, v in part.items()}
            outs = self._executor.run(part)
            chunks.append([self._executor.to_numpy(b)[:size - pad] for b in outs])
        return {name: np.concatenate(parts) for name, parts in
                zip(self.output_names, zip(*chunks))}

    def predict(self, x):
        """The model's outputs for `x`: one array for a one-output model, else a list in
        output order (as `model.predict`)."""
        feeds = named_feeds(self.inputs, x)
        _batch_sizes(feeds)
        outs = self.run(feeds)
        values = [outs[n] for n in self.output_names]
        return values[0] if len(values) == 1 else values

    __call__ = predict

    def __repr__(self):
        return (f"<kgraph artifact {self.path!r} target={self.target} inputs="
                f"{self.input_names} outputs={self.output_names}>")


def load(path):
    """Load a compiled artifact directory (`kgraph compile ... --output DIR`).

    Args:
        path: the artifact directory.

    Returns:
        An object with `predict(x)`; a `--train` artifact also has `train_step(x, y)` and
        `save()`.

    Example:

    ```python
    from kgraph import runtime
    model = runtime.load("artifact/")
    y = model.predict(x)
    ```
    """
    manifest = read_manifest(path)
    if manifest.get("train") is not None:
        from kgraph.runtime.trainable_artifact import TrainableArtifact

        return TrainableArtifact(path, manifest)
    return Artifact(path, manifest)
