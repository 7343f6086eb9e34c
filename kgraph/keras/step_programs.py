"""Step programs of a model: tracing `fit`/`evaluate`/`predict`'s step into one graph and
compiling it, cached by the batch's shapes (one program for every size of the axes a model's
Inputs leave open, when the step can be traced so)."""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.ir.graph import current_graph
from kgraph.keras import concurrency, execution, input_checks
from kgraph.keras.tree import flatten, pack_like


class StepPrograms:
    """The program cache of a Trainer (`self._programs`, `self._closed_keys`)."""

    def _program(self, kind, batch, steps=1, leaves=None, indexed=False):
        """The compiled program for `kind` on batches shaped like `batch`; with steps > 1,
        `batch` holds `steps` batches stacked on axis 0 and the program runs them all. A
        model whose Inputs leave axes open gets one program for every size of them, unless
        its step cannot be traced so (then one per size, as for every other model).
        `leaves`: execution.leaves(batch), where the caller has them. `indexed`: `batch`
        holds whole arrays, and the program takes the sample indices of its batch (or of its
        `steps` batches, stacked) as one more input (`trace_step`).

        The last answer is kept with the batch's exact shapes: a training loop's batches
        repeat them, and working out the key again costs more than its step's small kernels."""
        leaves = execution.leaves(batch) if leaves is None else leaves
        seen = (kind, steps, indexed, batch[1] is None, batch[2] is None,
                getattr(self.optimizer, "_schedule", None)) + \
            tuple((a.shape, a.dtype) for a in leaves)
        last = self.__dict__.get("_last_program")
        if last is not None and last[0] == seen and self._programs.get(last[1]) is last[2]:
            return last[2]
        key, program = self._find_program(kind, batch, steps, indexed)
        self.__dict__["_last_program"] = (seen, key, program)
        return program

    def _find_program(self, kind, batch, steps, indexed=False):
        """(cache key, program) for `_program`."""
        opened = {} if self._is_static() else self._open_axes(batch[0],
                                                               1 if indexed else steps)
        if opened:
            key = self._program_key(kind, batch, steps, opened, indexed=indexed)
            if key not in self._closed_keys:
                try:
                    return key, self._cached_program(key, kind, batch, steps, opened, indexed)
                except Exception:  # noqa: BLE001 - a step that needs those sizes: per size
                    self._closed_keys.add(key)
        key = self._program_key(kind, batch, steps, sized=bool(opened), indexed=indexed)
        return key, self._cached_program(key, kind, batch, steps, indexed=indexed)

    def _program_key(self, kind, batch, steps, opened=None, sized=False, indexed=False):
        """The programs' cache key: the step, the leaves' non-batch shapes (the `opened` axes
        of the x leaves as None) and dtypes, which of y and sample weights are given, and
        the optimizer's schedule."""
        x, y, sw = batch
        cut = 0 if self._is_static() else (2 if steps > 1 and not indexed else 1)
        shapes = []
        for i, a in enumerate(a for a in flatten((x, y, sw)) if a is not None):
            shape = a.shape
            if opened and i in opened:  # (the x leaves come first)
                shape = tuple(None if j in opened[i] else d for j, d in enumerate(shape))
            shapes.append((shape[cut:], a.dtype.str))
        # A schedule set after compile() is traced into a new step (held here, so its id
        # cannot be reused by another object while the key lives).
        return (kind, steps) + (("sized",) if sized else ()) + (("indexed",) if indexed
                                                                 else ()) + tuple(shapes) + (
            y is None, sw is None, getattr(self.optimizer, "_schedule", None))

    def _cached_program(self, key, kind, batch, steps, opened=None, indexed=False):
        program = self._programs.get(key)
        if program is None:
            with concurrency.model_lock(self):  # concurrent first calls build it once
                return self._programs.get(key) or self._new_program(key, kind, batch, steps,
                                                                    opened, indexed)
        return program

    def _open_axes(self, x, steps):
        """{input leaf index: axes} that the model's Inputs leave open (None) past the batch,
        as `Input((None, features))`: a step traced with them open runs every length (a
        recurrence is a loop of any length) instead of one program per length. Models
        without symbolic inputs (subclassed) have none."""
        declared = self._declared_open_axes()
        if not declared:
            return {}
        leaves, lead = flatten(x), (1 if steps == 1 else 2)
        if len(leaves) != len(declared):
            return {}
        return {i: tuple(lead - 1 + j for j in axes) for i, (leaf, (rank, axes)) in
                enumerate(zip(leaves, declared)) if axes and np.ndim(leaf) == rank + lead - 1}

    def _declared_open_axes(self):
        """[(rank, open axes past the batch)] of the model's Inputs, or None; worked out
        once per set of Inputs (a Sequential may be rebuilt with others)."""
        inputs = getattr(self, "_inputs_struct", None)
        if inputs is None or getattr(self, "_graph", None) is None:
            return None
        cached = self.__dict__.get("_open_inputs")
        if cached is None or cached[0] is not inputs:
            shapes = [tuple(getattr(t, "shape", ()) or ()) for t in flatten(inputs)]
            declared = [(len(shape), tuple(j for j in range(1, len(shape)) if shape[j] is None))
                        for shape in shapes]
            cached = self._open_inputs = (inputs, declared if any(a for _, a in declared)
                                          else None)
        return cached[1]

    def _new_program(self, key, kind, batch, steps, opened=None, indexed=False):
        x, y, sw = batch
        self._ensure_built(execution.leaves(x)[0][0] if steps > 1 and not indexed else x)
        program = self._build_program(kind, x, y, sw, steps, opened, indexed)
        program.stateful = [layer for layer in self._flat_layers()
                            if getattr(layer, "stateful", False) and
                            getattr(layer, "states", None)]
        program.input_checks = input_checks.plan(self, kind, x, y)
        self._programs[key] = program
        for hook in self.__dict__.get("_program_hooks", ()):  # BackupAndRestore: metric state
            hook(kind)
        return program

    def _ensure_built(self, x):
        if getattr(self, "_graph", None) is None and hasattr(self, "_stack"):
            first = flatten(x)[0]
            self.build((None,) + tuple(first.shape[1:]))

    def _is_static(self):
        return getattr(self, "_backend", None) in execution.STATIC_TARGETS

    def _build_program(self, kind, x, y, sw, steps=1, opened=None, indexed=False):
        from kgraph.compiler.program import program_of
        from kgraph.distribute.strategy import train_step_for

        replicated = train_step_for(self, x, y, sw, steps) if kind == "train" else None
        if replicated is not None:  # a mirrored strategy: split step + all-reduce
            if opened or indexed:
                raise ValueError("a replicated step is traced for the batch itself")
            return replicated
        graph = self.trace_step(kind, x, y, sw, steps=steps, static=self._is_static(),
                                opened=opened, indexed=indexed)
        return program_of(graph, getattr(self, "_backend", None))

    def trace_step(self, kind, x, y=None, sw=None, steps=1, static=False, opened=None,
                   indexed=False):
        """The op graph of one train/test/predict step for batches shaped like `x, y, sw`;
        what `fit`/`evaluate`/`predict` compile. The batch dimension is left unknown unless
        `static`, and so are the axes `opened` names ({x leaf index: axes}). With `steps` > 1
        the arrays hold `steps` batches stacked on axis 0 and the graph runs that many steps
        in a row, each on the state the previous one wrote. `indexed`: `x, y, sw` are whole
        datasets and the graph takes one more input, `batch_index`: the sample indices of
        the batch (`steps` > 1: of each batch, stacked), which it gathers first."""
        from kgraph.compiler.program import trace_graph

        lead = 1 if steps == 1 or indexed else 2
        specs, structure = [], []
        for tag, data in (("x", x), ("y", y), ("sample_weight", sw)):
            leaves = flatten(data) if data is not None else []
            for i, a in enumerate(leaves):
                shape = a.shape if static else a.shape[:lead - 1] + (None,) + a.shape[lead:]
                if tag == "x" and opened and i in opened:
                    shape = tuple(None if j in opened[i] else d for j, d in enumerate(shape))
                specs.append((f"{tag}_{i}", shape, a.dtype))
            structure.append((data, len(leaves)))
        if indexed:
            specs.append(("batch_index", (None,) if steps == 1 else (steps, None),
                          np.dtype(np.int64)))

        def step(placeholders):
            parts, i = [], 0
            for data, n in structure:
                parts.append(pack_like(data, placeholders[i:i + n]) if data is not None else None)
                i += n
            with self._compiled_trainability():
                return getattr(self, f"_{kind}_graph")(*parts)

        def fn(*placeholders):
            if indexed:
                index = placeholders[-1]
                placeholders = [ops.take(p, index, axis=0) for p in placeholders[:-1]]
            if steps == 1:
                return step(placeholders)
            graph = current_graph()
            for k in range(steps):
                graph.rng_step = k  # each step draws its own dropout masks (kgraph.random)
                results = step([ops.squeeze(ops.slice_axis(p, k, k + 1, 0), 0)
                                for p in placeholders])
            graph.rng_step = 0
            return results

        return trace_graph(f"{self.name}_{kind}", specs, fn)
