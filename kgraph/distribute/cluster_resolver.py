"""Cluster resolvers (`tf.distribute.cluster_resolver`).

kgraph has no TPU driver. Its "TPU-like" device is the static target: every training step
compiled ahead of time by TVM with all shapes fixed, `steps_per_execution` steps per
executor call (see kgraph/keras/execution.py). `TPUClusterResolver` resolves to such a
target: `"static"` (TVM on this machine's CPU) unless told otherwise by the `tpu` argument or
the `KGRAPH_TPU_TARGET` environment variable (`"static:cuda"`: TVM with fixed shapes on the
first CUDA GPU). What it resolved to is printed by the FAQ's `cluster_spec()` line.
"""
from __future__ import annotations

import os

from kgraph.keras.execution import STATIC_TARGETS


class ClusterSpec:
    """The jobs of a cluster: {job name: [task addresses]} (`tf.train.ClusterSpec`)."""

    def __init__(self, cluster):
        self._cluster = {job: list(tasks) for job, tasks in dict(cluster).items()}

    def as_dict(self):
        return {job: list(tasks) for job, tasks in self._cluster.items()}

    def jobs(self):
        return list(self._cluster)

    def num_tasks(self, job):
        return len(self._cluster[job])

    def __repr__(self):
        return f"ClusterSpec({self._cluster!r})"


class TPUClusterResolver:
    """Find the static ("TPU-like") target that `TPUStrategy` compiles for.

    Args:
        tpu: `None`/`""`/`"local"` (the default: `KGRAPH_TPU_TARGET`, else `"static"`, TVM
            on this CPU), or a static target name: `"static"` or `"static:cuda"`. A Cloud TPU
            name or `grpc://` address raises: kgraph cannot drive a real TPU.
        zone, project: accepted for compatibility; unused.

    Example:

    >>> tpu = kgraph.distribute.cluster_resolver.TPUClusterResolver()
    >>> tpu.cluster_spec().as_dict()["worker"]
    ['localhost/static (TVM, fixed shapes, cpu)']
    """

    def __init__(self, tpu=None, zone=None, project=None, job_name="worker",
                 coordinator_name=None, coordinator_address=None):
        name = tpu if tpu not in (None, "", "local") else os.environ.get(
            "KGRAPH_TPU_TARGET", "static")
        if name not in STATIC_TARGETS:
            raise ValueError(
                f"TPUClusterResolver: kgraph cannot reach a TPU named {name!r}; its TPU-like "
                f"device is a static target, one of {list(STATIC_TARGETS)} (argument `tpu` "
                f"or KGRAPH_TPU_TARGET). Received: tpu={tpu!r}")
        self.target = name
        self.job_name = job_name
        self.task_type, self.task_id = job_name, 0
        self.environment = "local"

    @property
    def device_kind(self):
        return "cuda" if self.target.endswith(":cuda") else "cpu"

    def describe(self):
        """Where steps run, in words."""
        return f"localhost/{self.target.split(':')[0]} (TVM, fixed shapes, {self.device_kind})"

    def cluster_spec(self):
        return ClusterSpec({self.job_name: [self.describe()]})

    def master(self, task_type=None, task_id=None, rpc_layer=None):
        return ""

    def num_accelerators(self, task_type=None, task_id=None, config_proto=None):
        return {"TPU": 0, "GPU": 1 if self.device_kind == "cuda" else 0}

    def __repr__(self):
        return f"<TPUClusterResolver target={self.target!r}>"


_connected = {}


def connect_to_cluster(cluster_spec_or_resolver, job_name="localhost", task_index=0,
                       protocol=None, make_master_device_default=True):
    """`tf.config.experimental_connect_to_cluster`: remember the cluster to run on. For a
    `TPUClusterResolver` this checks that its static target can compile (TVM installed)."""
    target = getattr(cluster_spec_or_resolver, "target", None)
    if target is None and not isinstance(cluster_spec_or_resolver, ClusterSpec):
        raise TypeError(f"experimental_connect_to_cluster expects a cluster resolver or a "
                        f"ClusterSpec. Received: {cluster_spec_or_resolver!r}")
    if target is not None:
        require_tvm(target)
    _connected["cluster"] = cluster_spec_or_resolver
    return None


def require_tvm(target):
    try:
        import tvm  # noqa: F401
    except ImportError as e:
        raise ImportError(f"The static target {target!r} compiles with Apache TVM, which is "
                          f"not installed: pip install 'kgraph[tvm]'") from e


def connected_cluster():
    return _connected.get("cluster")
