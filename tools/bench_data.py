"""Data pipeline figures (issue 11): prefetch overlap, tf.data pipeline vs arrays, and peak
memory over an on-disk array.

    python tools/bench_data.py [--repeats 5]
    python tools/bench_data.py --rss 128 4096 [--dir /tmp]

1. Overlap: a generator that sleeps `io` seconds per batch (simulated I/O) feeding an MLP
   whose step takes about as long; one epoch plain vs `.prefetch(AUTOTUNE)`.
2. Pipeline vs arrays: the benchmark MLP (784-256-10, batch 128, 60k samples scaled down)
   fed by `from_tensor_slices(...).shuffle().batch().prefetch()` vs by numpy arrays.
Runs are interleaved and the median of `--repeats` is reported.
3. `--rss SIZE_MB...`: peak RSS of one epoch streamed from a SIZE_MB file of float32 rows
   (written and read with plain file I/O, 1 MB batches, deleted afterwards), one fresh process
   per feed: a generator, a PyDataset with 2 workers, and a
   `from_generator().map(num_parallel_calls=2).prefetch(AUTOTUNE)` pipeline (fit then
   evaluate; predict alone, as its result grows with the file: 4 bytes a row), plus a baseline
   process that runs a single batch. The model is
   the one of tests/test_streaming.py (256-32-1, Adam, MSE), which runs the same child
   (`--rss-child`) to check that the peak does not grow with the file."""
import argparse
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
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


# -- peak memory over an on-disk array ------------------------------------------------------
FEATURES, BATCH = 256, 1024  # a batch of float32 rows is 1 MB
FEEDS = ("generator", "pipeline", "pydataset", "evaluate")


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def write_rows(path, megabytes):
    """`megabytes` of random float32 rows, written in chunks (never whole in memory); returns
    the number of rows."""
    with open(path, "wb") as f:
        for _ in range(0, megabytes * 2**20 // (4 * FEATURES), BATCH):
            f.write(np.random.rand(BATCH, FEATURES).astype("f4").tobytes())
    return os.path.getsize(path) // (4 * FEATURES)


def stream(path, rows, model, feeds):
    """One epoch per feed over the file, each batch read with file I/O (no memmap)."""
    def read(lo):
        with open(path, "rb") as f:
            f.seek(lo * FEATURES * 4)
            x = np.frombuffer(f.read(BATCH * FEATURES * 4), "f4").reshape(-1, FEATURES)
        return x, x[:, :1]

    def batches():
        for lo in range(0, rows, BATCH):
            yield read(lo)

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return math.ceil(rows / BATCH)

        def __getitem__(self, i):
            return read(i * BATCH)

    pipeline = tf.data.Dataset.from_generator(batches).map(
        lambda x, y: (x * 2, y), num_parallel_calls=2).prefetch(tf.data.AUTOTUNE)
    runs = {"one batch": lambda: model.train_on_batch(*read(0)),
            "generator": lambda: model.fit(batches(), verbose=0),
            "pipeline": lambda: model.fit(pipeline, verbose=0),
            "pydataset": lambda: model.fit(Batches(workers=2, max_queue_size=4), verbose=0),
            "evaluate": lambda: model.evaluate(pipeline, verbose=0),
            "predict": lambda: model.predict(pipeline.map(lambda x, y: x), verbose=0)}
    for feed in feeds:
        runs[feed]()


def rss_child(path, feeds, sizes):
    """Print the peak RSS (MB) after streaming `feeds` over `path`: once per size in `sizes`
    (each file written, streamed and deleted in turn, the model kept), or once over the file
    already at `path` when `sizes` is empty."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(32, "relu"),
                              keras.layers.Dense(1)])
    model.compile("adam", "mse")
    if not sizes:
        stream(path, os.path.getsize(path) // (4 * FEATURES), model, feeds)
        print(peak_rss_mb())
    for megabytes in sizes:
        rows = write_rows(path, megabytes)
        stream(path, rows, model, feeds)
        os.remove(path)
        print(peak_rss_mb())


def peak_rss(sizes, directory):
    """The peak RSS of each feed, in its own process, over a file of each size in `sizes`."""
    feeds = {"one train_on_batch (baseline)": ["one batch"], "generator": ["generator"],
             "PyDataset(workers=2)": ["pydataset"],
             "map+prefetch pipeline (fit, evaluate)": ["pipeline", "evaluate"],
             "map+prefetch pipeline, predict": ["predict"]}
    for megabytes in sizes:
        free = shutil.disk_usage(directory).free // 2**20
        if free < megabytes + 1024:
            sys.exit(f"--rss {megabytes}: {directory} has {free} MB free; pass --dir")
        path = os.path.join(directory, f"kgraph-bench-rss-{os.getpid()}.bin")
        try:
            start = time.perf_counter()
            rows = write_rows(path, megabytes)
            print(f"{megabytes} MB file ({rows} rows of {FEATURES} float32) written in "
                  f"{time.perf_counter() - start:.0f} s")
            for name, parts in feeds.items():
                start = time.perf_counter()
                out = subprocess.run([sys.executable, __file__, "--rss-child", path,
                                      "--feeds", ",".join(parts)],
                                     capture_output=True, text=True, check=True)
                print(f"peak RSS, {megabytes} MB, {name}: {out.stdout.split()[-1]} MB "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
        finally:
            if os.path.exists(path):
                os.remove(path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rss", type=int, nargs="+", metavar="SIZE_MB",
                        help="peak RSS of one streamed epoch over files of these sizes")
    parser.add_argument("--dir", default=tempfile.gettempdir(),
                        help="where --rss writes its file (deleted afterwards)")
    parser.add_argument("--rss-child", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--feeds", default=",".join(FEEDS), help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, [f for f in args.feeds.split(",") if f], args.sizes)
    elif args.rss:
        peak_rss(args.rss, args.dir)
    else:
        overlap(args.repeats)
        pipeline_vs_arrays(args.repeats)
