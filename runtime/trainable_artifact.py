"""`--train` artifacts: fine-tune a deployed model where it runs, on numpy + onnxruntime.

The training step is one ONNX graph (`train.onnx`) whose inputs are the batch, every piece of
state (parameters, optimizer slots and step counter, metric accumulators) and, when the model
draws randomness, a uint32 key; its outputs are the loss and metrics, then each state's new
value (`<name>:new`). State stays resident in onnxruntime between steps and is read back only
by `save()`, which writes new files and then switches the manifest to them (atomic: a reader
sees the old artifact or the new one, never a mix). The inference graph's weights are patched
in place in the serialized ONNX bytes (same shapes, so same lengths), without the onnx package.
"""
from __future__ import annotations

import io
import json
import os

import numpy as np

from kgraph.runtime.artifact import (MANIFEST, Artifact, ArtifactError, _batch_sizes,
                                     _ort_executor, named_feeds, sha256_bytes)
from kgraph.runtime.atomic_file import atomic_write_bytes

_MASK64 = (1 << 64) - 1


def rng_key(seed: int, counter: int) -> np.ndarray:
    """A uint32 step key from (seed, counter): a splitmix64 finalizer on Python ints."""
    z = (seed * 0x9E3779B97F4A7C15 + counter) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return np.asarray((z ^ (z >> 31)) & 0xFFFFFFFF, dtype=np.uint32)


# -- initializers in serialized ONNX (ModelProto.graph=7, GraphProto.initializer=5,
#    TensorProto.name=8, TensorProto.raw_data=9) ----------------------------------------------
def _varint(data, pos):
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ArtifactError("Truncated ONNX data: a varint runs past the end")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _length_fields(data, start, end):
    """(field number, start, end) of each length-delimited field in data[start:end]."""
    pos = start
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            length, pos = _varint(data, pos)
            yield number, pos, pos + length
            pos += length
        else:
            raise ArtifactError(f"Unsupported protobuf wire type {wire} in ONNX data")


def initializer_spans(model_bytes: bytes) -> dict:
    """{initializer name: (offset, length)} of each initializer's raw_data bytes."""
    spans = {}
    for number, g0, g1 in _length_fields(model_bytes, 0, len(model_bytes)):
        if number != 7:
            continue
        for field, t0, t1 in _length_fields(model_bytes, g0, g1):
            if field != 5:
                continue
            parts = {n: (a, b) for n, a, b in _length_fields(model_bytes, t0, t1) if n in (8, 9)}
            if 8 in parts and 9 in parts:
                a, b = parts[8]
                spans[model_bytes[a:b].decode("utf-8")] = parts[9]
    return spans


def patch_initializers(model_bytes: bytes, values: dict) -> bytes:
    """`model_bytes` with the raw data of initializers named in `values` replaced."""
    data, spans = bytearray(model_bytes), initializer_spans(model_bytes)
    for name, array in values.items():
        raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        start, end = spans[name]
        if end - start != len(raw):
            raise ArtifactError(f"Initializer {name!r} holds {end - start} bytes; its new "
                                f"value has {len(raw)}")
        data[start:end] = raw
    return bytes(data)


class TrainableArtifact(Artifact):
    """An artifact compiled with `--train`: `predict`, `train_step(x, y[, sample_weight])`
    and `save()`."""

    def __init__(self, path, manifest):
        super().__init__(path, manifest)
        spec = self.train_spec = manifest["train"]
        state = np.load(io.BytesIO(self._file(spec["state"])), allow_pickle=False)
        self._rng = [int(v) for v in state["__rng__"]]
        self._metric_reset = {n: state[n] for n in spec["metric_state"]}
        self._update_outputs = list(spec["updates"].values())
        self._trainer = _ort_executor(self._file(spec["graph"]),
                                      spec["results"] + self._update_outputs)
        upload = self._trainer.upload
        self._state = {n: upload(state[n]) for n in spec["variables"]
                       if n not in self._metric_reset}
        self._stale = False  # the inference session still has the loaded weights

    def train_step(self, x, y, sample_weight=None) -> dict:
        """One optimizer step on the batch `(x, y)`; returns the loss and metrics of that
        batch (metric accumulators restart at every step)."""
        spec = self.train_spec
        feeds = named_feeds([f for f in spec["feeds"] if f["role"] == "x"], x)
        feeds.update(named_feeds([f for f in spec["feeds"] if f["role"] == "y"], y, "target"))
        weights = [f for f in spec["feeds"] if f["role"] == "sample_weight"]
        if weights:
            if sample_weight is None:
                sample_weight = np.ones(_batch_sizes(feeds), weights[0]["dtype"])
            feeds.update(named_feeds(weights, sample_weight, "sample weight"))
        _batch_sizes(feeds)
        feeds.update(self._state)
        feeds.update(self._metric_reset)
        if spec["rng_key"] is not None:
            self._rng[1] += 1
            feeds[spec["rng_key"]] = rng_key(*self._rng)
        outs = self._trainer.run(feeds)
        n = len(spec["results"])
        for name, buffer in zip(spec["updates"], outs[n:]):
            if name in self._state:
                self._state[name] = buffer
        self._stale = True
        to_numpy = self._trainer.to_numpy
        return {name: float(np.asarray(to_numpy(b)).reshape(-1)[0])
                for name, b in zip(spec["results"], outs[:n])}

    def state(self) -> dict:
        """The current state arrays by graph input name (parameters, slots, step counter)."""
        return {n: np.asarray(self._trainer.to_numpy(b)) for n, b in self._state.items()}

    def _parameter_values(self, state):
        return {init: state[name] for init, name in self.train_spec["parameters"].items()}

    def predict(self, x):
        if self._stale:  # rebuild the inference session on the fine-tuned weights
            graph = patch_initializers(self._file(self.manifest["graph"]),
                                       self._parameter_values(self.state()))
            self._executor = _ort_executor(graph, self.output_names)
            self._graph_bytes, self._stale = graph, False
        return super().predict(x)

    def save(self):
        """Write the fine-tuned state back into the artifact: new graph and state files
        first, then the manifest that names them (atomically), then the old files go."""
        state = self.state()
        state.update(self._metric_reset)
        state["__rng__"] = np.asarray(self._rng, dtype=np.int64)
        buffer = io.BytesIO()
        np.savez(buffer, **state)
        graph = patch_initializers(self._file(self.manifest["graph"]),
                                   self._parameter_values(state))
        revision = int(self.train_spec.get("revision", 0)) + 1
        new = {"graph": (f"model.r{revision}.onnx", graph),
               "state": (f"state.r{revision}.npz", buffer.getvalue())}
        manifest = json.loads(json.dumps(self.manifest))
        old = [manifest["graph"], manifest["train"]["state"]]
        for key, (name, data) in new.items():
            atomic_write_bytes(os.path.join(self.path, name), data)
            manifest["files"][name] = sha256_bytes(data)
        manifest["graph"], manifest["train"]["state"] = new["graph"][0], new["state"][0]
        manifest["train"]["revision"] = revision
        for name in old:
            manifest["files"].pop(name, None)
        atomic_write_bytes(os.path.join(self.path, MANIFEST),
                     json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
        for name in old:
            os.remove(os.path.join(self.path, name))
        self.manifest, self.train_spec = manifest, manifest["train"]
        return self.path
