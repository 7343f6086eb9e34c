"""`MirroredStrategy` (replicas in this process) and `MultiWorkerMirroredStrategy` (one
process per worker over MPI): synchronous data parallelism with gradients all-reduced every
step. See docs/distributed.md."""
from __future__ import annotations

import os
import re

import numpy as np

from kgraph.distribute.strategy import Strategy

_DEVICE = re.compile(r"^/?(job:\w+/)?(replica:\d+/)?(task:\d+/)?(device:)?(cpu|gpu|xpu):\d+$",
                     re.IGNORECASE)


def local_devices():
    """The devices replicas run on by default: one per visible GPU, else the one CPU."""
    try:
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            count = _cuda_device_count()
            if count:
                return [f"/gpu:{i}" for i in range(count)]
    except ImportError:
        pass
    return ["/cpu:0"]


def _cuda_device_count():
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    return 1


class MirroredStrategy(Strategy):
    """Synchronous training on several replicas of the model in this process.

    Each training step splits the global batch (the `batch_size` given to `fit`) into one
    slice per replica; every replica runs the model's gradient graph on its slice (in its
    own thread; onnxruntime releases the GIL), the gradients are averaged by an all-reduce,
    and the optimizer applies one update to the shared weights. With the same global batch
    and seed the weights equal one-device training (to float32 rounding).

    Args:
        devices: device strings, one replica each (`["/cpu:0", "/cpu:1"]`: on a CPU, N
            names give N replica executors sharing the cores). Defaults to every visible
            GPU, else one CPU replica.
        cross_device_ops: accepted for compatibility; the in-process all-reduce is used.

    Example:

    ```python
    strategy = kgraph.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, batch_size=64)  # each step: 2 replicas of 32 samples
    ```
    """

    def __init__(self, devices=None, cross_device_ops=None):
        devices = list(devices) if devices is not None else local_devices()
        # tf.config.list_logical_devices("GPU") gives LogicalDevice(name, device_type)s
        devices = [getattr(d, "name", d) if hasattr(d, "device_type") else d for d in devices]
        if not devices:
            raise ValueError("MirroredStrategy: `devices` is empty. Received: devices=[]")
        for d in devices:
            if not isinstance(d, str) or not _DEVICE.match(d.strip()):
                raise ValueError(f"MirroredStrategy: invalid device {d!r}; expected strings "
                                 f"like '/cpu:0' or '/gpu:1'. Received: devices={devices!r}")
        self.devices = tuple(d.strip().lower() for d in devices)

    @property
    def num_replicas_in_sync(self):
        return len(self.devices) * self._workers()

    def _workers(self):
        return 1

    def _cross(self):
        return None

    def build_train_step(self, model, x, y, sw, steps):
        from kgraph.distribute.replicated_step import ReplicatedTrainStep

        if self.num_replicas_in_sync == 1 and self._cross() is None:
            return None  # one replica: the fused step is the same computation, faster
        return ReplicatedTrainStep(model, (x, y, sw), len(self.devices), self._cross(), steps)


class MultiWorkerMirroredStrategy(MirroredStrategy):
    """Synchronous training with one process per worker, over MPI.

    Launch the same script on every worker: `mpiexec -n 4 python -m mpi4py train.py` (or
    `kgraph launch -n 4 train.py`). Every worker builds the same model; the first step
    broadcasts worker 0's initial weights. Each step, every worker takes its slice of the
    global batch (automatic sharding: all workers read the same data in the same order,
    shuffled with a seed agreed at start-up), computes gradients, and the gradients are
    summed across workers by MPI all-reduce (fused buckets). Results equal one process
    training on the global batch. Worker 0 is the chief (`strategy.extended.should_checkpoint`).

    `TF_CONFIG` is not used to launch workers: start them with MPI. Under MPI, a worker that
    dies ends the whole job (run ranks under `python -m mpi4py`).

    Args:
        communication_options: accepted for compatibility.
        cluster_resolver: accepted for compatibility (MPI decides the cluster).
        communicator: a `Communicator` to use instead of MPI's world (tests).
    """

    def __init__(self, communication_options=None, cluster_resolver=None, communicator=None):
        super().__init__(devices=["/cpu:0"])
        if communicator is None:
            from kgraph.distribute.collectives import MPICommunicator

            communicator = MPICommunicator()
        self.communicator = communicator
        self._agree_on_seed()
        self._synced = set()

    def _workers(self):
        return self.communicator.size

    def _cross(self):
        return self.communicator

    @property
    def cluster_resolver(self):
        return self

    @property
    def task_id(self):
        return self.communicator.rank

    task_type = "worker"

    @property
    def should_checkpoint(self):
        return self.communicator.rank == 0

    should_save_summary = should_checkpoint

    def _agree_on_seed(self):
        """Give every worker worker 0's seed when the script set none, so shuffles (and
        hence each worker's share of every batch) agree."""
        from kgraph import random as krandom

        seeded = krandom._state["seed"] is not None
        seed = int(np.random.SeedSequence().entropy & 0x7FFFFFFF)
        seed = self.communicator.broadcast(None if seeded else seed)
        if not seeded and seed is not None:
            krandom.set_seed(seed)

    def build_train_step(self, model, x, y, sw, steps):
        self.broadcast_weights(model)
        return super().build_train_step(model, x, y, sw, steps)

    def broadcast_weights(self, model):
        """Give every worker worker 0's model weights (once per model)."""
        if id(model) in self._synced:
            return
        for var in model.weights:
            var.assign(self.communicator.broadcast(var.numpy()))
        self._synced.add(id(model))
