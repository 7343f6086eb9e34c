"""The reference interpreter: runs a kgraph op graph with each op's numpy `ref`. The oracle
that every other backend is compared with."""
from __future__ import annotations

import numpy as np

from kgraph.ops.registry import get_op


class NumpyCompiled:
    def __init__(self, graph):
        self.graph = graph
        self.input_names = graph.input_names
        self.output_names = list(graph.output_names)
        self.updates = list(graph.updates.items())

    def run(self, feeds: dict) -> list:
        env = {}
        for v in self.graph.inputs:
            name = v.node.attrs["name"]
            if name not in feeds:
                raise KeyError(f"Missing input {name!r} of graph {self.graph.name!r}")
            value = np.asarray(feeds[name])
            env[v] = value if value.dtype.name == v.dtype else value.astype(v.dtype)
        for node in self.graph.nodes:
            if node.op == "Input":
                continue
            if node.op == "Constant":
                env[node.outputs[0]] = node.attrs["value"]
                continue
            result = get_op(node.op).ref(*[env[v] for v in node.inputs], **node.attrs)
            results = result if isinstance(result, tuple) else (result,)
            for out, r in zip(node.outputs, results):
                env[out] = np.asarray(r)
        return [env[v] for v in self.graph.outputs] + [env[v] for _, v in self.updates]

    def upload(self, array):
        return np.asarray(array)

    def to_numpy(self, buffer):
        return np.asarray(buffer)
