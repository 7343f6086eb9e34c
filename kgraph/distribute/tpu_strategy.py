"""`TPUStrategy`: train on the static ("TPU-like") target a `TPUClusterResolver` found."""
from __future__ import annotations

from kgraph.distribute.strategy import Strategy


class TPUStrategy(Strategy):
    """Models compiled inside `scope()` run every step on the resolver's static target:
    whole steps compiled ahead with fixed shapes (batches must all have one size: arrays
    whose sample count divides by the batch size, datasets batched with
    `drop_remainder=True`), and `steps_per_execution=K` steps per executor call.
    A `backend` given to `compile()` explicitly wins.

    Args:
        tpu_cluster_resolver: a `TPUClusterResolver` (default: a new one).
        experimental_device_assignment: accepted for compatibility.
    """

    num_replicas_in_sync = 1

    def __init__(self, tpu_cluster_resolver=None, experimental_device_assignment=None):
        from kgraph.distribute.cluster_resolver import TPUClusterResolver

        self.cluster_resolver = tpu_cluster_resolver or TPUClusterResolver()

    def default_backend(self):
        return self.cluster_resolver.target

    def __repr__(self):
        return (f"<TPUStrategy target={self.cluster_resolver.target!r} "
                f"num_replicas_in_sync=1>")
