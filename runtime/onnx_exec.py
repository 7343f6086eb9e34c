"""onnxruntime executor: an InferenceSession over serialized ONNX, fed and answered with
OrtValues so that parameters and optimizer state stay inside onnxruntime between steps."""
from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort


def _session_options():
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    threads = int(os.environ.get("KGRAPH_NUM_THREADS", "0"))
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return opts


def providers():
    available = ort.get_available_providers()
    wanted = os.environ.get("KGRAPH_ORT_PROVIDERS")
    if wanted:
        return [p for p in wanted.split(",") if p in available]
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class OrtCompiled:
    def __init__(self, model_bytes: bytes, output_names=None):
        self.session = ort.InferenceSession(model_bytes, _session_options(), providers=providers())
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = output_names or [o.name for o in self.session.get_outputs()]
        self._types = {i.name: i.type for i in self.session.get_inputs()}

    def run(self, feeds: dict) -> list:
        ort_feeds = {k: (v if isinstance(v, ort.OrtValue) else self.upload(v))
                     for k, v in feeds.items()}
        return self.session.run_with_ort_values(self.output_names, ort_feeds)

    def run_numpy(self, feeds: dict) -> list:
        return self.session.run(self.output_names, {k: np.asarray(v) for k, v in feeds.items()})

    @staticmethod
    def upload(array):
        array = np.asarray(array)
        if not array.flags.c_contiguous:  # (np.ascontiguousarray would turn 0-d into 1-d)
            array = array.copy(order="C")
        return ort.OrtValue.ortvalue_from_numpy(array)

    @staticmethod
    def to_numpy(buffer):
        return buffer.numpy() if isinstance(buffer, ort.OrtValue) else np.asarray(buffer)
