"""`keras.ops.segment_sum`/`segment_max` with `num_segments` a traced scalar (`ops.shape(x)[0]`
of an axis left open, as a layer called eagerly traces its input), against numpy."""
import numpy as np

from kgraph.keras import layers, ops


class _Segments(layers.Layer):
    def call(self, inputs):
        nodes, edges = inputs
        count = ops.shape(nodes)[0]
        rows = ops.take(nodes, edges[:, 1], axis=0)
        return (ops.segment_sum(rows, edges[:, 0], num_segments=count),
                ops.segment_max(rows, edges[:, 0], num_segments=count))


def test_segment_ops_with_a_traced_count():
    rng = np.random.default_rng(0)
    nodes = rng.normal(size=(6, 3)).astype(np.float32)
    edges = np.array([[0, 1], [0, 2], [3, 3], [5, 0], [3, 4]], np.int32)
    total, top = _Segments()([nodes, edges])
    want_sum = np.zeros((6, 3), np.float32)
    np.add.at(want_sum, edges[:, 0], nodes[edges[:, 1]])
    want_max = np.full((6, 3), np.finfo(np.float32).min, np.float32)
    np.maximum.at(want_max, edges[:, 0], nodes[edges[:, 1]])
    assert total.shape == (6, 3)
    np.testing.assert_allclose(total, want_sum, rtol=1e-6)
    np.testing.assert_allclose(top, want_max, rtol=1e-6)


def test_segment_sum_with_a_static_count_keeps_working():
    data = np.arange(8, dtype=np.float32).reshape(4, 2)
    np.testing.assert_allclose(ops.segment_sum(data, np.array([1, 0, 1, 3]), num_segments=5),
                               [[2, 3], [4, 6], [0, 0], [6, 7], [0, 0]])
