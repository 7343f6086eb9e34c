"""tf.keras 2's `keras.preprocessing.sequence.TimeseriesGenerator`
(kgraph/keras/preprocessing/sequence.py): windows and targets against their definition, the
batch count, stride/sampling_rate/reverse/shuffle, use in `fit`, errors."""
import numpy as np
import pytest

from kgraph import keras
from kgraph.keras.preprocessing.sequence import TimeseriesGenerator

DATA = np.arange(50, dtype="float32").reshape(25, 2)
TARGETS = np.arange(25, dtype="float32") * 10


@pytest.mark.parametrize("length, sampling_rate, stride, start, end, batch", [
    (2, 1, 1, 0, None, 1), (5, 2, 3, 1, 20, 4), (4, 1, 2, 0, None, 32)])
def test_windows_and_targets_follow_the_definition(length, sampling_rate, stride, start, end,
                                                   batch):
    g = TimeseriesGenerator(DATA, TARGETS, length, sampling_rate=sampling_rate, stride=stride,
                            start_index=start, end_index=end, batch_size=batch)
    rows = list(range(start + length, (24 if end is None else end) + 1, stride))
    assert len(g) == -(-len(rows) // batch)
    x = np.concatenate([g[i][0] for i in range(len(g))])
    y = np.concatenate([g[i][1] for i in range(len(g))])
    np.testing.assert_array_equal(x, [DATA[r - length:r:sampling_rate] for r in rows])
    np.testing.assert_array_equal(y, TARGETS[rows])
    reversed_g = TimeseriesGenerator(DATA, TARGETS, length, sampling_rate=sampling_rate,
                                     stride=stride, start_index=start, end_index=end,
                                     batch_size=batch, reverse=True)
    np.testing.assert_array_equal(reversed_g[0][0], g[0][0][:, ::-1])


def test_the_keras_io_example_first_window_and_fit():
    # multivariate_timeseries_forecasting_using_lstm.py: the 3rd day's value is the target
    # of the first two days
    x, y = TimeseriesGenerator(DATA, TARGETS, length=2, sampling_rate=1, batch_size=1)[0]
    np.testing.assert_array_equal(x, DATA[None, 0:2])
    np.testing.assert_array_equal(y, TARGETS[2:3])
    shuffled = TimeseriesGenerator(DATA, TARGETS, length=3, shuffle=True, batch_size=8)
    sx, sy = shuffled[0]
    for window, target in zip(sx, sy):  # a random row's window and its target
        row = int(target) // 10
        np.testing.assert_array_equal(window, DATA[row - 3:row])
    model = keras.Sequential([keras.Input((3, 2)), keras.layers.Flatten(),
                              keras.layers.Dense(1)])
    model.compile("adam", "mse")
    history = model.fit(TimeseriesGenerator(DATA, TARGETS, length=3, batch_size=8), epochs=2,
                        verbose=0)
    assert len(history.history["loss"]) == 2
    assert model.predict(TimeseriesGenerator(DATA, TARGETS, length=3, batch_size=8),
                         verbose=0).shape == (22, 1)


def test_errors_name_the_lengths():
    with pytest.raises(ValueError, match=r"len\(data\)=25, len\(targets\)=24"):
        TimeseriesGenerator(DATA, TARGETS[:-1], length=2)
    with pytest.raises(ValueError, match="start_index \\+ length=30, end_index=24"):
        TimeseriesGenerator(DATA, TARGETS, length=30)
