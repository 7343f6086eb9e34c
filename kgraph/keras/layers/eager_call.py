"""A layer called on numpy data: its call traced once per input signature into a compiled
program, cached on the layer, and run. The program also returns what the call added with
`add_loss` (`layer.losses`), its output masks, and the tensors the call stored on its layers'
public attributes (so `model.block.gates` is an eager value after `model(x)`, as in
TensorFlow)."""
from __future__ import annotations

import threading

import numpy as np

from kgraph import config as kconfig
from kgraph.ir.graph import Value, current_graph
from kgraph.keras.layers.tensors import _eager
from kgraph.keras.tree import flatten, pack_like
from kgraph.tape import SymbolicValueError
from kgraph.variables import Variable

_FED = object()  # stands for a fed keyword array in an eager call's cache key
_BUILD_LOCK = threading.RLock()  # one program built at a time (Dataset.map threads)


def eager_call(layer, args, kwargs):
    """Run `layer` on arrays. Arrays among the keyword arguments (masks, initial states) are
    fed like the positional ones, so a new mask reuses the program; other keyword values are
    part of the cache key by value (never by `repr`, which numpy abbreviates)."""
    from kgraph.compiler.graph_key import static_key

    training = kwargs.get("training")
    static = {k: v for k, v in kwargs.items() if k != "training"}
    positional, keyword = flatten(args), flatten(static)
    fed = [isinstance(v, np.ndarray) for v in keyword]
    arrays = [np.asarray(a) if not isinstance(a, Variable) else a.numpy()
              for a in positional] + [v for v, f in zip(keyword, fed) if f]
    arrays = [a.astype(kconfig.floatx()) if a.dtype == np.float64 else a for a in arrays]
    static_leaves = [_FED if f else v for v, f in zip(keyword, fed)]
    key = (tuple((a.shape[1:], a.dtype.str, a.ndim) for a in arrays),
           static_key(pack_like(static, static_leaves)),
           None if training is None else bool(training),  # None: the layer default
           tuple(sub._trainable for sub in [layer] + layer._flat_layers()))
    program = layer._eager_programs.get(key)
    if program is _OP_BY_OP:
        return _run_op_by_op(layer, args, kwargs)
    if program is None:
        try:
            program = _build(layer, key, args, static, static_leaves, training, arrays,
                             len(positional))
        except SymbolicValueError:
            # the call reads its tensors' values (numpy on them: `np.clip(images, 0, 255)` in
            # the keras.io StyleGAN's `call`), which a traced program cannot give: run it op
            # by op, as TensorFlow runs a call eagerly
            layer._eager_programs[key] = _OP_BY_OP
            return _run_op_by_op(layer, args, kwargs)
    return _run(layer, program, arrays)


_OP_BY_OP = object()  # an eager-call cache entry: this signature runs op by op


def _run_op_by_op(layer, args, kwargs):
    """`layer`'s call recorded as an eager GradientTape records it, each value computed when
    numpy asks for it; the outputs come back as eager tensors (numpy results as they are)."""
    from kgraph.tape import GradientTape

    args = pack_like(args, [_eager(a) if isinstance(a, np.ndarray) else a
                            for a in flatten(args)])  # Keras converts inputs to tensors
    with GradientTape():
        out = layer._traced_call(args, kwargs)
        leaves = [_eager(np.asarray(v)) if isinstance(v, Value) else v for v in flatten(out)]
    return pack_like(out, leaves)


def _build(layer, key, args, static, static_leaves, training, arrays, n_positional):
    """The program of `layer`'s call for `key`, built once (under a lock: eager calls may come
    from several `Dataset.map(num_parallel_calls=...)` threads at once)."""
    from kgraph.compiler.program import build_program

    with _BUILD_LOCK:
        program = layer._eager_programs.get(key)
        if program is not None:
            return program
        specs = [(f"input_{i}", (None,) + a.shape[1:] if a.ndim else (), a.dtype)
                 for i, a in enumerate(arrays)]
        found = {}

        def fn(*placeholders):
            fed_values = iter(placeholders[n_positional:])
            call_kwargs = pack_like(static, [next(fed_values) if v is _FED else v
                                             for v in static_leaves])
            out = layer._traced_call(pack_like(args, placeholders[:n_positional]),
                                     {**call_kwargs, "training": training})
            graph = current_graph()
            added = list(getattr(graph, "losses", []))  # add_loss in the call
            masks = {i: v._keras_mask for i, v in enumerate(flatten(out))
                     if getattr(v, "_keras_mask", None) is not None}
            kept = tensors_kept_by_the_call(layer, graph)
            # a None among the outputs stays None (`return logits, None`: the keras.io GPT)
            nones = [i for i, v in enumerate(flatten(out)) if v is None]
            found.update(structure=out, mask_slots=list(masks), nones=nones,
                         kept=[(owner, name) for owner, name, _ in kept])
            return {**{f"output_{i}": v for i, v in enumerate(flatten(out)) if v is not None},
                    **{f"added_loss_{i}": v for i, v in enumerate(added)},
                    **{f"output_mask_{i}": m for i, m in masks.items()},
                    **{f"kept_{i}": v for i, (_, _, v) in enumerate(kept)}}

        program = build_program(f"{layer.name}_call", specs, fn)
        program.structure, program.mask_slots = found["structure"], found["mask_slots"]
        program.kept, program.nones = found["kept"], found["nones"]
        layer._eager_programs[key] = program
        return program


def _run(layer, program, arrays):
    outs = [_eager(program.to_numpy(b)) for b in program(*arrays)]
    if program.kept:  # tensors the call stored on its layers, as the eager values they are
        for (owner, name), value in zip(program.kept, outs[len(outs) - len(program.kept):]):
            object.__setattr__(owner, name, value)
        outs = outs[:len(outs) - len(program.kept)]
    count = len(flatten(program.structure)) - len(program.nones)
    n_masks = len(program.mask_slots)
    layer._eager_losses = outs[count:len(outs) - n_masks]  # `layer.losses`, as Keras
    results = outs[:count]
    for slot in program.nones:
        results.insert(slot, None)
    for slot, mask in zip(program.mask_slots, outs[len(outs) - n_masks:]):
        results[slot]._keras_mask = mask  # the output mask, as Keras 3 sets it
    return pack_like(program.structure, results)


def tensors_kept_by_the_call(layer, graph):
    """`(layer, attribute, value)` for the public attributes of `layer` and the layers it
    holds that the call being traced set to tensors of `graph` (focal_modulation_network.py
    reads `modulation.gates` after `model(images)`, as TensorFlow's eager tensors)."""
    return [(owner, name, value) for owner in layers_reachable_from(layer)
            for name, value in list(vars(owner).items())
            if not name.startswith("_") and isinstance(value, Value)
            and value.graph is graph]


def layers_reachable_from(root):
    """`root` and every layer held in its attributes, directly or in lists, tuples and dicts
    (`self.basic_layers[1].blocks[-1].modulation`), each once."""
    from kgraph.keras.layers.base import Layer

    seen, order, stack = set(), [], [root]
    while stack:
        item = stack.pop()
        if isinstance(item, Layer):
            if id(item) in seen:
                continue
            seen.add(id(item))
            order.append(item)
            stack.extend(vars(item).values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return order
