"""Op-table rows of the loop primitive `Scan` (kgraph/ops/recurrence.py): an RNN-like step
h_t = tanh(h_{t-1} w + x_t) scanned forward and in reverse; the row's output reads both the
stacked step outputs and the final carry, so both gradients are checked."""
import numpy as np

from kgraph import ops
from kgraph.ops.recurrence import scan

from op_table import Row, normal


def _scanned(reverse):
    def fn(x, w, h0):
        def step(carry, slices):
            h = ops.tanh(ops.matmul(carry[0], w) + slices[0])
            return [h], [h * 0.5]

        (h_last,), (ys,) = scan(step, [h0], [x], reverse=reverse)
        return ys + ops.expand_dims(h_last, 0)
    return fn


def _expected(reverse):
    def expect(x, w, h0):
        h, ys = h0, np.zeros(x.shape[:2] + (w.shape[1],))
        for t in (range(len(x) - 1, -1, -1) if reverse else range(len(x))):
            h = np.tanh(h @ w + x[t])
            ys[t] = 0.5 * h
        return ys + h[None]
    return expect


ROWS = [Row(f"scan_{'reverse' if reverse else 'forward'}", _scanned(reverse),
            (normal(4, 2, 3), normal(3, 3, scale=0.5), normal(2, 3)), _expected(reverse),
            op="Scan")
        for reverse in (False, True)]
