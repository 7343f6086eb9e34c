"""Data pipeline figures (issue 11): prefetch overlap and tf.data pipeline vs arrays.

    python tools/bench_data.py [--repeats 5]

1. Overlap: a generator that sleeps `io` seconds per batch (simulated I/O) feeding an MLP
   whose step takes about as long; one epoch plain vs `.prefetch(AUTOTUNE)`.
2. Pipeline vs arrays: the benchmark MLP (784-256-10, batch 128, 60k samples scaled down)
   fed by `from_tensor_slices(...).shuffle().batch().prefetch()` vs by numpy arrays.
Runs are interleaved and the median of `--repeats` is reported."""
import argparse
import statistics
import time

import numpy as np

import kgraph as tf
from kgraph import keras


def mlp(features=784):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(256, "relu"),
                              keras.layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def overlap(repeats, steps=40, io=0.01):
    x = np.random.rand(512, 784).astype("f4")
    y = np.random.randint(0, 10, 512)
    model = mlp()
    model.fit(x, y, batch_size=512, verbose=0)  # compile
    compute = statistics.median(timed(lambda: model.train_on_batch(x, y)) for _ in range(10))

    def batches():
        for _ in range(steps):
            time.sleep(io)
            yield x, y

    source = tf.data.Dataset.from_generator(batches)
    plain, ahead = [], []
    for _ in range(repeats):
        plain.append(timed(lambda: model.fit(source, verbose=0)))
        ahead.append(timed(lambda: model.fit(source.prefetch(tf.data.AUTOTUNE), verbose=0)))
    print(f"overlap: {steps} steps, io {io * 1e3:.1f} ms/batch, compute {compute * 1e3:.1f} "
          f"ms/step -> sum {steps * (io + compute):.3f} s, max {steps * max(io, compute):.3f}"
          f" s; plain {statistics.median(plain):.3f} s, prefetch "
          f"{statistics.median(ahead):.3f} s")


def pipeline_vs_arrays(repeats, samples=15360, batch=128):
    x = np.random.rand(samples, 784).astype("f4")
    y = np.random.randint(0, 10, samples)
    model = mlp()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(4096).batch(batch).prefetch(
        tf.data.AUTOTUNE)
    arrays, pipeline = [], []
    steps = -(-samples // batch)
    for _ in range(repeats):
        arrays.append(timed(lambda: model.fit(x, y, batch_size=batch, verbose=0)) / steps)
        pipeline.append(timed(lambda: model.fit(ds, verbose=0)) / steps)
    a, p = statistics.median(arrays), statistics.median(pipeline)
    print(f"pipeline vs arrays: {a * 1e3:.3f} ms/step arrays, {p * 1e3:.3f} ms/step "
          f"pipeline, ratio {p / a:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    overlap(args.repeats)
    pipeline_vs_arrays(args.repeats)
