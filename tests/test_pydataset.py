"""`keras.utils.PyDataset` / `Sequence`: batches by index, read by workers, in fit/evaluate/
predict; errors from `__getitem__` end the loop cleanly with the original exception."""
import math
import os
import threading

import numpy as np
import pytest

from kgraph import keras
from kgraph.data import Dataset
from kgraph.keras.data_adapter import DataError
from kgraph.keras.layers.base import IncompatibleInputError


class Batches(keras.utils.PyDataset):
    def __init__(self, x, y=None, batch_size=8, fail_at=None, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size, self.fail_at = x, y, batch_size, fail_at
        self.epochs_ended = 0
        self.reads = []

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        if index == self.fail_at:
            raise KeyError(f"corrupt record in batch {index}")
        self.reads.append(index)
        lo = index * self.batch_size
        part = slice(lo, lo + self.batch_size)
        return (self.x[part],) if self.y is None else (self.x[part], self.y[part])

    def on_epoch_end(self):
        self.epochs_ended += 1


def _data(n=40):
    rng = np.random.default_rng(0)
    return rng.random((n, 3), dtype=np.float32), rng.random((n, 1), dtype=np.float32)


def _model():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


@pytest.mark.parametrize("kwargs", [{}, {"workers": 3}, {"workers": 2, "max_queue_size": 1},
                                    {"workers": 2, "use_multiprocessing": True}])
def test_fit_on_pydataset_equals_fit_on_arrays(kwargs):
    x, y = _data()
    expected = _model().fit(x, y, batch_size=8, shuffle=False, epochs=2, verbose=0)
    model = _model()
    dataset = Batches(x, y, **kwargs)
    history = model.fit(dataset, epochs=2, verbose=0)
    np.testing.assert_allclose(history.history["loss"], expected.history["loss"], rtol=1e-5)
    assert dataset.epochs_ended == 2
    np.testing.assert_allclose(model.evaluate(dataset, verbose=0),
                               model.evaluate(x, y, verbose=0), rtol=1e-5)
    np.testing.assert_allclose(model.predict(Batches(x, **kwargs), verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)


def test_sequence_alias_steps_per_epoch_and_validation_steps():
    assert keras.utils.Sequence is keras.utils.PyDataset
    x, y = _data()
    dataset = Batches(x, y, workers=2)
    history = _model().fit(dataset, epochs=3, steps_per_epoch=2, verbose=0,
                           validation_data=Batches(x, y), validation_steps=1)
    assert len(history.history["val_loss"]) == 3
    # Three epochs of 2 steps over 5 batches: batches 0-1, 2-3, 4 then 0 (a new pass).
    assert dataset.reads[:5] == [0, 1, 2, 3, 4]


def test_sample_weight_batches_and_unsized_pydataset():
    x, y = _data(16)

    class Weighted(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            part = slice(8 * i, 8 * i + 8)
            return x[part], y[part], np.zeros(8, "f4")

    model = _model()
    before = model.get_weights()
    model.fit(Weighted(), verbose=0)  # zero weights: no gradient, weights unchanged
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)

    class Unsized(keras.utils.PyDataset):  # no __len__: read until IndexError
        def __getitem__(self, i):
            if i >= 3:
                raise IndexError(i)
            return x[:4], y[:4]

    assert len(_model().predict(Unsized(workers=2), verbose=0)) == 12


def _worker_threads():
    return {t for t in threading.enumerate() if t.name.startswith("kgraph-data")}


@pytest.mark.parametrize("processes", [False, True])
def test_getitem_error_ends_fit_cleanly(processes):
    x, y = _data(80)
    before = _worker_threads()
    dataset = Batches(x, y, fail_at=4, workers=3, use_multiprocessing=processes)
    with pytest.raises(KeyError, match="corrupt record in batch 4") as info:
        _model().fit(dataset, epochs=1, verbose=0)
    assert _worker_threads() <= before  # the pool was shut down and joined
    if not processes:  # the traceback reaches the line that raised, in the worker
        assert any(entry.name == "__getitem__" for entry in info.traceback)
    else:
        assert "corrupt record" in str(info.value.__cause__)
    assert not [c for c in __import__("multiprocessing").active_children()
                if c.pid != os.getpid()]


def test_bad_batches_are_typed_errors_naming_the_batch():
    x, y = _data(16)

    class Bad(Batches):
        def __getitem__(self, index):
            return (x[:8], np.array([["a"]] * 8)) if index == 1 else super().__getitem__(index)

    with pytest.raises(DataError, match="batch 1"):
        _model().fit(Bad(x, y), verbose=0)

    class TooMany(Batches):
        def __getitem__(self, index):
            return x[:8], y[:8], y[:8], y[:8]

    with pytest.raises(DataError, match="4 items"):
        _model().fit(TooMany(x, y), verbose=0)
    with pytest.raises(ValueError, match="workers"):
        Batches(x, y, workers=0)
    with pytest.raises(DataError, match="not indexable"):
        _model().fit(Batches(x, y), validation_split=0.2, verbose=0)


class Wide(Batches):  # batch 2 has 7 features where the model takes 3
    def __getitem__(self, index):
        batch = super().__getitem__(index)
        return batch if index != 2 else (np.ones((8, 7), "f4"),) + batch[1:]


def _wide(with_y, **kwargs):
    x, y = _data(32)
    return Wide(x, y if with_y else None, **kwargs)


_WIDE_FEEDS = {
    "generator": lambda with_y: (b for b in map(_wide(with_y).__getitem__, range(4))),
    "pydataset": lambda with_y: _wide(with_y),
    "pydataset_workers": lambda with_y: _wide(with_y, workers=2),
    "dataset": lambda with_y: Dataset.from_generator(
        lambda: map(_wide(with_y).__getitem__, range(4))).prefetch(2),
}


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
@pytest.mark.parametrize("feed", sorted(_WIDE_FEEDS))
def test_a_batch_the_model_rejects_is_named(feed, method):
    before = _worker_threads()
    data = _WIDE_FEEDS[feed](method != "predict")
    with pytest.raises(DataError, match=r"expected shape \(None, 3\), but received an input of "
                                        r"shape \(None, 7\) \(batch 2 of the dataset\)$") as info:
        getattr(_model(), method)(data, verbose=0)
    # the model's own error (a ValueError, as in Keras), kept as the cause
    assert type(info.value.__cause__) is IncompatibleInputError
    assert _worker_threads() <= before
