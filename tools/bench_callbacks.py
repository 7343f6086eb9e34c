"""What the standard callbacks cost on the benchmark MLP (784-256-256-10, Adam, batch 128,
60,000 samples), and what one BackupAndRestore backup costs next to plain h5py.

    python tools/bench_callbacks.py [--epochs 3] [--repeats 3]

Epochs with and without ModelCheckpoint (every epoch), BackupAndRestore (every 50 batches),
TensorBoard (per epoch), CSVLogger and EarlyStopping are interleaved (this machine is noisy);
the reported overhead is the median of the per-pair ratios. The backup figure writes the
MLP's full state (weights, Adam slots, metric state, metadata) with BackupAndRestore's writer
and the same arrays with a bare `h5py.File` loop, both into a temporary directory.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import h5py
import numpy as np

import kgraph
from kgraph import keras
from kgraph.keras.callbacks import training_state


def mlp():
    kgraph.random.set_seed(0)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def callbacks(folder):
    return [keras.callbacks.ModelCheckpoint(os.path.join(folder, "ckpt.weights.h5"),
                                            save_weights_only=True),
            keras.callbacks.TensorBoard(os.path.join(folder, "logs")),
            keras.callbacks.CSVLogger(os.path.join(folder, "log.csv")),
            keras.callbacks.EarlyStopping(monitor="loss", patience=5),
            keras.callbacks.BackupAndRestore(os.path.join(folder, "backup"), save_freq=50)]


def epoch_time(model, x, y, cbs):
    start = time.perf_counter()
    model.fit(x, y, batch_size=128, epochs=1, verbose=0, callbacks=cbs)
    return time.perf_counter() - start


def bench_fit(x, y, repeats):
    model = mlp()
    model.fit(x[:1024], y[:1024], batch_size=128, epochs=1, verbose=0)  # compile
    ratios, plain, full = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):
            a = epoch_time(model, x, y, None)
            b = epoch_time(model, x, y, callbacks(folder))
            plain.append(a), full.append(b), ratios.append(b / a)
    return statistics.median(plain), statistics.median(full), statistics.median(ratios)


def bench_backup(x, y, repeats=20):
    model = mlp()
    model.fit(x[:1024], y[:1024], batch_size=128, epochs=1, verbose=0)
    groups = training_state.variable_groups(model)
    arrays = {name: [v.numpy() for v in vs] for name, vs in groups.items()}
    backup, plain = [], []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(repeats):
            start = time.perf_counter()
            training_state.write_state(os.path.join(folder, "state.h5"), model,
                                       {"epoch": 0, "step": i, "logs": {}, "random":
                                        kgraph.random.get_state()})
            backup.append(time.perf_counter() - start)
            start = time.perf_counter()
            with h5py.File(os.path.join(folder, "plain.h5"), "w") as f:
                for name, values in arrays.items():
                    group = f.create_group(name)
                    for k, value in enumerate(values):
                        group.create_dataset(str(k), data=value)
            plain.append(time.perf_counter() - start)
    return statistics.median(backup), statistics.median(plain)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((60000, 784), dtype=np.float32)
    y = rng.integers(0, 10, 60000).astype("int64")
    plain, full, ratio = bench_fit(x, y, args.repeats)
    print(f"epoch without callbacks: {plain:.3f} s; with the five: {full:.3f} s; "
          f"overhead (median of paired ratios): {100 * (ratio - 1):+.1f}%")
    backup, bare = bench_backup(x, y)
    print(f"one backup of the full state: {1000 * backup:.1f} ms; the same arrays with plain "
          f"h5py: {1000 * bare:.1f} ms; ratio {backup / bare:.2f}x")


if __name__ == "__main__":
    main()
