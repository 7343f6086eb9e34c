"""Data that does not fit in memory: constant peak memory over on-disk data, a prefetch that
overlaps with the consumer, parallel `map`, and worker threads that always end."""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import kgraph as tf
from kgraph.data import parallel

Dataset = tf.data.Dataset

# The child that streams one epoch per feed over an on-disk file and prints its peak RSS: shared
# with the benchmark (`tools/bench_data.py --rss`), which runs it over a 4 GB file.
_BENCH_DATA = os.path.join(os.path.dirname(__file__), "..", "tools", "bench_data.py")


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_file(tmp_path):
    # A first, smaller file warms up the allocator and the executors (their pools rise over the
    # first few hundred steps, then stay flat); then a file 4x larger may not move the peak by
    # more than a few batches (1 MB each).
    out = subprocess.run([sys.executable, _BENCH_DATA, "--rss-child", str(tmp_path / "data.bin"),
                          "--sizes", "128", "512"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    small, large = map(int, out.stdout.split()[-2:])
    assert large - small < 16, (small, large)


# -- prefetch ----------------------------------------------------------------------------------
def _slow_source(n, delay):
    def gen():
        for i in range(n):
            time.sleep(delay)
            yield np.int64(i)
    return Dataset.from_generator(gen)


def test_prefetch_overlaps_production_with_consumption():
    n, delay = 12, 0.02

    def consume(ds):
        start = time.perf_counter()
        out = []
        for element in ds:
            time.sleep(delay)  # the "training step"
            out.append(int(element))
        return time.perf_counter() - start, out

    serial, values = consume(_slow_source(n, delay))
    overlapped, prefetched_values = consume(_slow_source(n, delay).prefetch(2))
    assert prefetched_values == values == list(range(n))
    assert serial > 2 * n * delay * 0.95
    assert overlapped < serial * 0.8, (serial, overlapped)


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "kgraph-prefetch"]


def test_prefetch_buffer_is_bounded_and_threads_end():
    produced = []

    def gen():
        for i in range(1000):
            produced.append(i)
            yield np.int64(i)

    iterator = iter(Dataset.from_generator(gen).prefetch(3))
    assert int(next(iterator)) == 0
    time.sleep(0.1)
    assert len(produced) <= 1 + 3 + 1  # consumed + buffered + one the producer is holding
    iterator.close()
    assert not _prefetch_threads()
    for depth in (tf.data.AUTOTUNE, 1):
        assert [int(e) for e in Dataset.range(50).prefetch(depth)] == list(range(50))
    assert not _prefetch_threads()
    with pytest.raises(ValueError, match="buffer_size"):
        list(Dataset.range(3).prefetch(-5))


def test_prefetch_reraises_the_source_error_with_its_origin():
    def gen():
        yield np.int64(1)
        raise OSError("disk gone at record 1")

    with pytest.raises(OSError, match="disk gone") as info:
        list(Dataset.from_generator(gen).prefetch(2))
    assert any(entry.name == "gen" for entry in info.traceback)
    assert not _prefetch_threads()


def test_fit_on_a_prefetched_generator_that_raises_joins_the_thread():
    from kgraph import keras

    def gen():
        for i in range(3):
            yield np.ones((4, 2), "f4"), np.ones((4, 1), "f4")
        raise RuntimeError("bad shard")

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(RuntimeError, match="bad shard"):
        model.fit(Dataset.from_generator(gen).prefetch(2), verbose=0)
    assert not _prefetch_threads()


# -- parallel map --------------------------------------------------------------------------------
def test_parallel_map_keeps_order_and_runs_in_parallel():
    def slow_square(x):
        time.sleep(0.01 * (5 - int(x) % 5))  # later elements finish first
        return x * x

    ds = Dataset.range(20)
    expected = [i * i for i in range(20)]
    assert [int(e) for e in ds.map(slow_square, num_parallel_calls=4)] == expected
    unordered = [int(e) for e in ds.map(slow_square, num_parallel_calls=4, deterministic=False)]
    assert sorted(unordered) == expected
    assert [int(e) for e in ds.map(slow_square, num_parallel_calls=tf.data.AUTOTUNE)] == expected

    start = time.perf_counter()
    list(Dataset.range(16).map(lambda x: time.sleep(0.02) or x, num_parallel_calls=8))
    assert time.perf_counter() - start < 16 * 0.02 * 0.6
    with pytest.raises(ValueError, match="num_parallel_calls"):
        Dataset.range(3).map(lambda x: x, num_parallel_calls=0)


def test_pooled_map_error_cancels_the_rest():
    calls = []

    def fn(i):
        calls.append(i)
        if i == 3:
            raise ZeroDivisionError(f"element {i}")
        return i

    with pytest.raises(ZeroDivisionError, match="element 3"):
        list(parallel.pooled_map(fn, range(10_000), workers=2, window=4))
    assert len(calls) < 20  # a bounded window: the pool did not run ahead over the stream


def test_unsized_input_is_not_counted(capsys):
    from kgraph import keras

    consumed = []

    def gen():
        for i in range(3):
            consumed.append(i)
            yield np.ones((4, 2), "f4"), np.ones((4, 1), "f4")

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(gen(), verbose=1)
    assert consumed == [0, 1, 2]  # read once, by the training loop: no counting pass
    first_line = capsys.readouterr().out.strip().splitlines()[0]
    assert first_line.startswith("1/Unknown") or "/" not in first_line.split()[0]


def test_thread_count_is_stable_over_epochs():
    from kgraph import keras

    ds = Dataset.from_tensor_slices((np.ones((32, 2), "f4"), np.ones((32, 1), "f4")))
    ds = ds.shuffle(32).batch(8).map(lambda x, y: (x, y), num_parallel_calls=2).prefetch(2)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(ds, epochs=1, verbose=0)
    before = threading.active_count()
    model.fit(ds, epochs=4, verbose=0)
    assert threading.active_count() <= before
    assert os.getpid()  # the process is still whole
