"""`tf.tpu.experimental`."""
from __future__ import annotations


class Topology:
    """What `initialize_tpu_system` found: one task with one static-target core."""

    def __init__(self, resolver):
        self.target = resolver.target
        self.num_tasks, self.num_tpus_per_task = 1, 1
        self.mesh_shape = (1, 1, 1, 1)

    def __repr__(self):
        return f"<Topology target={self.target!r} cores=1>"


def initialize_tpu_system(cluster_resolver=None):
    """Check that the resolver's static target can compile (Apache TVM importable; the
    CUDA device present for "static:cuda") and return its `Topology`.

    Args:
        cluster_resolver: a `TPUClusterResolver` (default: a new one).

    Returns:
        A `Topology` naming the target.
    """
    from kgraph.distribute.cluster_resolver import TPUClusterResolver, require_tvm

    resolver = cluster_resolver or TPUClusterResolver()
    require_tvm(resolver.target)
    if resolver.device_kind == "cuda":
        import tvm

        if not tvm.cuda(0).exist:
            raise RuntimeError(f"initialize_tpu_system: the target {resolver.target!r} needs a "
                               f"CUDA GPU and none is visible. Use tpu='static' (the CPU).")
    return Topology(resolver)


def shutdown_tpu_system(cluster_resolver=None):
    """Nothing to release: executors end with the models that hold them."""
    return None
