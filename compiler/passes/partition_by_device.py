"""Cut a graph whose nodes are placed on devices into per-device subgraphs.

Layers called in a `kgraph.device` scope label their nodes (`graph.placement`) and autodiff
labels each gradient node with its forward node's device. Nodes nobody placed (the loss, the
metrics, the optimizer update) follow their first placed input, else their first user; what
is left runs on the model's own executor (device None).

The cut: each node gets a stage number, the longest path to it counting one per device change
(`s(n) = max over inputs p of s(p) + [device(p) != device(n)]`). Nodes of one device and one
stage form one subgraph; an edge between subgraphs goes from a lower stage to a higher one or
stays on one device, so running subgraphs by stage is a valid order. A forward pass on
/gpu:0 then /gpu:1 and its backward pass give four subgraphs: gpu0, gpu1 (forward, loss and
its gradient), gpu0 (backward and update). Values crossing between devices are the transfers;
constants are copied into each subgraph that reads them instead.

`partition_by_device(graph)` returns a `Partition` (pure IR, nothing compiled);
`compile_partition` compiles each subgraph for its device's executor into a
`runtime.partitioned.PartitionedCompiled`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kgraph.device import device_executors, executor_for, get_soft_device_placement, placement_of
from kgraph.ir.graph import Graph, Value

_FED = ("Input", "Constant")  # not computed by any subgraph: fed, or copied into each reader


@dataclass
class Stage:
    """One subgraph: the nodes of one device at one stage number."""
    device: str | None
    number: int
    graph: Graph
    input_names: list = field(default_factory=list)
    output_names: list = field(default_factory=list)


@dataclass
class Partition:
    stages: list
    devices: dict  # node id -> device (None: the model's own executor)
    transfers: list  # (value name, from device, to device), one per value and reader device
    input_names: list  # the whole graph's inputs
    result_sources: list  # per result (outputs, then updates): the value name that holds it
    constants: dict = field(default_factory=dict)  # results that are constants, by name


def has_placement(graph: Graph) -> bool:
    return bool(placement_of(graph))


def placement_key(graph: Graph) -> tuple:
    """What the compile cache must tell apart: the labels by node position, the device map
    and the soft-placement switch. () for an unplaced graph."""
    placement = placement_of(graph)
    if not placement:
        return ()
    labels = tuple((i, placement[n.id]) for i, n in enumerate(graph.nodes) if n.id in placement)
    return ("placed", labels, tuple(sorted(device_executors().items())),
            get_soft_device_placement())


def assign_devices(graph: Graph) -> dict:
    """node id -> device for every computed node (None: the model's own executor)."""
    placement = placement_of(graph)
    devices = {n.id: placement[n.id] for n in graph.nodes
               if n.id in placement and n.op not in _FED}
    for node in graph.nodes:  # unplaced nodes follow their first placed input
        if node.id not in devices and node.op not in _FED:
            found = [devices[v.node.id] for v in node.inputs if v.node.id in devices]
            if found:
                devices[node.id] = found[0]
    users = graph.users()
    for node in reversed(graph.nodes):  # ... else their first placed user
        if node.id not in devices and node.op not in _FED:
            found = [devices[u.id] for v in node.outputs for u in users.get(v, ())
                     if u.id in devices]
            devices[node.id] = found[0] if found else None
    return devices


def runs_on_one_executor(graph: Graph, target: str) -> bool:
    """Whether every device of `graph` runs on `target` itself (missing GPUs fallen back to
    the CPU, or `/cpu:0` with a CPU target) and none was mapped by `set_device_executors`:
    then the graph is compiled whole, as if unplaced."""
    devices = list(dict.fromkeys(assign_devices(graph).values()))  # in graph order
    if set(devices) & set(device_executors()):
        return False
    return all(executor_for(d, target) == target for d in devices)


def partition_by_device(graph: Graph) -> Partition:
    """The subgraphs of `graph`, in an order that runs them correctly one after another."""
    devices = assign_devices(graph)
    numbers = {}
    for node in graph.nodes:
        if node.op not in _FED:
            numbers[node.id] = max([numbers[v.node.id] + (devices[v.node.id] != devices[node.id])
                                    for v in node.inputs if v.node.id in numbers], default=0)
    groups: dict = {}
    for node in graph.nodes:
        if node.op not in _FED:
            groups.setdefault((numbers[node.id], devices[node.id]), []).append(node)
    order = sorted(groups, key=lambda k: (k[0], graph.nodes.index(groups[k][0])))
    results = list(graph.outputs) + list(graph.updates.values())
    needed = _values_needed_outside(graph, groups, results)
    stages = [_stage(device, number, groups[(number, device)], needed) for number, device in order]
    constants = {value_name(v): v.node.attrs["value"] for v in results
                 if v.node.op == "Constant"}
    return Partition(stages, devices, _transfers(graph, devices), graph.input_names,
                     [value_name(v) for v in results], constants)


def value_name(value: Value) -> str:
    """The name a value travels under between subgraphs (a graph input keeps its own)."""
    if value.node.op == "Input":
        return value.node.attrs["name"]
    return f"__placed_{value.node.id}_{value.index}"


def _values_needed_outside(graph, groups, results) -> set:
    """Values read by a subgraph other than the one computing them, or returned."""
    home = {n.id: key for key, nodes in groups.items() for n in nodes}
    needed = {v for v in results if v.node.op not in _FED}
    for node in graph.nodes:
        for v in node.inputs:
            if v.node.id in home and home[v.node.id] != home.get(node.id):
                needed.add(v)
    return needed


def _stage(device, number, nodes, needed) -> Stage:
    """A graph of `nodes`: outside values become inputs, constants are copied in."""
    sub = Graph(f"stage{number}_{(device or 'default').strip('/').replace(':', '')}")
    vmap = {}
    ours = {n.id for n in nodes}

    def local(v):
        if v not in vmap:
            if v.node.op == "Constant":
                vmap[v] = sub.constant(v.node.attrs["value"])
            else:
                vmap[v] = sub.placeholder(value_name(v), v.shape, v.dtype)
        return vmap[v]

    for node in nodes:
        inputs = [vmap[v] if v.node.id in ours else local(v) for v in node.inputs]
        outs = sub.add_node(node.op, inputs, node.attrs, [v.type for v in node.outputs])
        vmap.update(zip(node.outputs, outs))
    returned = {value_name(v): vmap[v] for n in nodes for v in n.outputs if v in needed}
    sub.set_outputs(returned)
    return Stage(device, number, sub, sub.input_names, list(returned))


def _transfers(graph, devices) -> list:
    """(value name, from device, to device) for each computed value read on another device."""
    seen, out = set(), []
    for node in graph.nodes:
        for v in node.inputs:
            if v.node.id not in devices or node.id not in devices:
                continue
            src, dst = devices[v.node.id], devices[node.id]
            if src != dst and (v, dst) not in seen:
                seen.add((v, dst))
                out.append((value_name(v), src, dst))
    return out


def compile_partition(partition: Partition, target: str):
    """Compile each subgraph for its device's executor (`kgraph.device.executor_for`)."""
    from kgraph.compiler.build import compile_graph
    from kgraph.runtime.partitioned import PartitionedCompiled, Step

    steps = [Step(stage.device, compile_graph(stage.graph, executor_for(stage.device, target),
                                              optimized=True, cache=False),
                  stage.input_names, stage.output_names)
             for stage in partition.stages]
    return PartitionedCompiled(steps, partition.input_names, partition.result_sources,
                               partition.constants)
