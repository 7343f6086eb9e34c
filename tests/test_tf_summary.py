"""`tf.summary` (kgraph/summary.py): scalars and histograms written by a file writer's
`as_default()` block, read back with tensorboard's EventAccumulator."""
import numpy as np
import pytest

import kgraph as tf

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator")


def _read(run_dir):
    acc = event_accumulator.EventAccumulator(str(run_dir),
                                             size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def test_scalars_and_histograms_in_the_default_writer(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path / "run"))
    assert tf.summary.scalar("loss", 1.0, step=0) is False  # no default writer: not written
    with writer.as_default():
        for step, value in enumerate([0.5, np.float32(0.25), np.array([0.125])]):
            assert tf.summary.scalar("jaccard_score", value, step=step)
        writer.flush()
    with writer.as_default(step=7):
        assert tf.summary.histogram("weights", np.arange(10.0), buckets=5)
    acc = _read(tmp_path / "run")
    assert [(e.step, e.value) for e in acc.Scalars("jaccard_score")] == [
        (0, 0.5), (1, 0.25), (2, 0.125)]
    (histo,) = acc.Histograms("weights")
    assert histo.step == 7 and histo.histogram_value.num == 10
    assert sum(histo.histogram_value.bucket) == 10 and len(histo.histogram_value.bucket) == 5
    assert "loss" not in acc.Tags()["scalars"]


def test_set_as_default_and_errors(tmp_path):
    writer = tf.summary.create_file_writer(tmp_path)
    writer.set_as_default(step=3)
    try:
        assert tf.summary.scalar("x", 2.0)
        tf.summary.flush()
        with pytest.raises(ValueError, match=r"data must be a scalar.*\(2,\)"):
            tf.summary.scalar("x", [1.0, 2.0])
        with tf.summary.create_file_writer(tmp_path / "other").as_default():
            with pytest.raises(ValueError, match="step=None"):
                tf.summary.scalar("x", 1.0)
    finally:
        tf.summary.create_noop_writer().set_as_default()
        writer.close()
    assert tf.summary.scalar("x", 5.0, step=4) is False
    assert [(e.step, e.value) for e in _read(tmp_path).Scalars("x")] == [(3, 2.0)]
    with pytest.raises(TypeError, match="logdir=3"):
        tf.summary.create_file_writer(3)
