"""`DropoutRNNCell`: the dropout masks of a recurrent cell, drawn once per sequence.

Keras uses ONE input mask and ONE recurrent mask for every time step of a sequence (Gal &
Ghahramani's variational dropout). The masks are random ops in the graph being traced, keyed
by the step's rng key and the cell's seed, so a step stays a pure function of its inputs.
"""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph import random as krandom
from kgraph.ir.graph import current_graph
from kgraph.ops.random import uniform_like

_RECURRENT_OFFSET = 1 << 12  # keeps recurrent masks apart from input masks of the same cell


class DropoutRNNCell:
    """Mixin for cells with `dropout`, `recurrent_dropout`, `seed_generator` attributes.

    `dropout_mask_count` (when set) asks for one mask per gate instead of one shared mask,
    as Keras' `implementation=1` LSTM/GRU cells do. Masks are cached for the graph being
    traced, so every time step of one sequence sees the same mask; `RNN` clears the cache
    before and after each sequence.
    """

    def _create_dropout_mask(self, step_input, rate, offset):
        count = getattr(self, "dropout_mask_count", None)
        masks = [_dropout_mask(step_input, rate, self.seed_generator.seed + offset + i)
                 for i in range(count or 1)]
        return masks if count else masks[0]

    def _cached_mask(self, attr, step_input, rate, offset):
        graph = current_graph()
        cached = getattr(self, attr, None)
        if cached is None or not _encloses(cached[0], graph):
            cached = (graph, self._create_dropout_mask(step_input, rate, offset))
            setattr(self, attr, cached)
        return cached[1]

    def get_dropout_mask(self, step_input):
        """The input mask (values 0 or 1/(1-rate)) shaped like `step_input`, or None."""
        if not self.dropout:
            return None
        return self._cached_mask("_dropout_mask_cache", step_input, self.dropout, 0)

    def get_recurrent_dropout_mask(self, step_input):
        """The recurrent-state mask shaped like `step_input`, or None."""
        if not self.recurrent_dropout:
            return None
        return self._cached_mask("_recurrent_dropout_mask_cache", step_input,
                                 self.recurrent_dropout, _RECURRENT_OFFSET)

    def reset_dropout_mask(self):
        self._dropout_mask_cache = None

    def reset_recurrent_dropout_mask(self):
        self._recurrent_dropout_mask_cache = None


def _encloses(outer, graph) -> bool:
    """`graph` is `outer` or a loop body traced inside it (which reads `outer`'s mask, drawn
    before the loop: kgraph/ops/recurrence.py)."""
    while graph is not None:
        if graph is outer:
            return True
        graph = getattr(graph, "parent", None)
    return False


def _dropout_mask(like, rate, seed):
    """Keras' `dropout(ones_like(like), rate)`: 0 where dropped, 1/(1-rate) elsewhere."""
    keep = ops.greater_equal(uniform_like(like, krandom.graph_key(), seed), np.float32(rate))
    scale = np.asarray(1.0 / (1.0 - rate), dtype=like.dtype)
    return ops.where(keep, scale, np.zeros((), dtype=like.dtype))
