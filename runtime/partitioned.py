"""Run a graph cut into per-device subgraphs (compiler/passes/partition_by_device.py).

`PartitionedCompiled` implements the executor protocol (`run`, `upload`, `to_numpy`), so a
`runtime.program.Program` binds it like any compiled graph. Each step is one subgraph compiled
for its device's executor; `run` feeds the steps in order and keeps every value a step
returns on the executor that made it (`Placed`). A value read by a step of another executor
is moved through the host (that executor's `to_numpy`, then the reader's `upload`): a
transfer. Results come back as `Placed` buffers, so a parameter updated on /gpu:1 stays there
for the next step and is read back to numpy only when someone asks (`Placed.numpy`).

Imports nothing above the runtime.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


@dataclass
class Step:
    """One subgraph: its device name, its compiled graph, what it reads and returns."""
    device: str | None
    compiled: object
    input_names: list
    output_names: list


class Placed:
    """A buffer and the executor that made it."""

    __slots__ = ("step", "buffer")

    def __init__(self, step: Step, buffer):
        self.step, self.buffer = step, buffer

    def numpy(self) -> np.ndarray:
        return np.asarray(self.step.compiled.to_numpy(self.buffer))

    @property
    def device(self):
        return self.step.device


class PartitionedCompiled:
    """Subgraphs run one after another, tensors moved between their executors.

    Args:
        steps: `Step`s in an order where each reads only graph inputs and earlier results.
        input_names: the whole graph's inputs.
        result_sources: per result, the name of the value holding it (a step output, a graph
            input or one of `constants`).
        constants: results that are constants, by name.
    """

    def __init__(self, steps, input_names, result_sources, constants=None):
        self.steps = list(steps)
        self.input_names = list(input_names)
        self.output_names = list(result_sources)
        self.constants = dict(constants or {})
        self._lock = threading.Lock()
        self.transfers = 0  # values moved between executors so far (all calls)
        producers = {n for s in self.steps for n in s.output_names}
        known = producers | set(self.input_names) | set(self.constants)
        missing = [n for s in self.steps for n in s.input_names if n not in known]
        missing += [n for n in self.output_names if n not in known]
        if missing:
            raise ValueError(f"PartitionedCompiled: values read but never produced: "
                             f"{sorted(set(missing))}")

    def run(self, feeds: dict) -> list:
        env = dict(self.constants)
        env.update(feeds)
        moved = 0
        for step in self.steps:
            step_feeds = {}
            for name in step.input_names:
                step_feeds[name], copied = _move(env[name], step)
                moved += copied
            outs = step.compiled.run(step_feeds)
            env.update((n, Placed(step, b)) for n, b in zip(step.output_names, outs))
        with self._lock:
            self.transfers += moved
        return [env[name] for name in self.output_names]

    @staticmethod
    def upload(array):
        """Host buffers: each step moves what it reads onto its own executor."""
        return np.asarray(array)

    @staticmethod
    def to_numpy(buffer) -> np.ndarray:
        if isinstance(buffer, Placed):
            return buffer.numpy()
        return buffer.numpy() if hasattr(buffer, "numpy") else np.asarray(buffer)

    def devices(self) -> list:
        """The device of each step, in running order."""
        return [step.device for step in self.steps]


def _move(value, step: Step):
    """(`value` as `step`'s executor takes it, 1 when it was copied between executors)."""
    if not isinstance(value, Placed):
        return value, 0  # host arrays: every executor takes numpy
    if value.step is step or _same_executor(value.step, step):
        return value.buffer, 0
    return step.compiled.upload(value.numpy()), 1


def _same_executor(a: Step, b: Step) -> bool:
    """Buffers of `a` feed `b` as they are: same device name and same kind of buffer (two
    onnxruntime sessions on one device share one uploader)."""
    return a.device == b.device and a.compiled.upload == b.compiled.upload
