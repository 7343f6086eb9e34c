"""GradientTape loop vs `fit`: ms per training step on the benchmark MLP (tools/bench.py).

Usage: python tools/bench_tape.py [--repeats 7] [--steps 50] [--batch 128] [--profile]

Both loops train the same MLP 784-256-256-10 (relu, relu, softmax), Adam, sparse categorical
crossentropy, on the same random data. One repeat times `--steps` steps of each, interleaved
(fit, tape, fit, tape, ...) so that load on the machine hits both alike, on samples neither
loop has seen (a model that memorises repeated batches saturates its softmax and both loops
slow down several-fold, which would measure the data, not the loop); the table shows the
median over repeats, the spread (min-max), the ratio of medians and the median of the
per-repeat ratios (each repeat's pair ran back to back, so it is the steadier figure). `fit` is timed per epoch
of `--steps` batches (a first, compiling block is left out for both); the tape loop is the Keras
guide's custom loop (forward under the tape, `tape.gradient`, `optimizer.apply_gradients`),
eagerly and with its step under `kgraph.function` (the guide's `@tf.function` section).
A phase breakdown of the tape step follows (record / gradient / apply, median ms), and
`--profile` prints a cProfile of the tape loop. Do not run it while tests run.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench import LAYERS, SEED, make_data  # noqa: E402  (tools/bench.py's workload)


def build_model(keras):
    Dense = keras.layers.Dense
    return keras.Sequential([keras.Input((LAYERS[0][0],)), Dense(256, activation="relu"),
                             Dense(256, activation="relu"), Dense(10, activation="softmax")])


class TapeLoop:
    """The custom training loop of the Keras guide, with each phase timed."""

    def __init__(self, tf, keras):
        self.tf, self.model = tf, build_model(keras)
        self.optimizer = keras.optimizers.Adam()
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy()
        self.phases = {"record": [], "gradient": [], "apply": []}

    def step(self, x, y):
        t0 = time.perf_counter()
        with self.tf.GradientTape() as tape:
            loss = self.loss_fn(y, self.model(x, training=True))
        t1 = time.perf_counter()
        grads = tape.gradient(loss, self.model.trainable_weights)
        t2 = time.perf_counter()
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_weights))
        t3 = time.perf_counter()
        for name, dt in zip(self.phases, (t1 - t0, t2 - t1, t3 - t2)):
            self.phases[name].append(dt)
        return loss

    def run(self, batches):
        t = time.perf_counter()
        for x, y in batches:
            self.step(x, y)
        return (time.perf_counter() - t) / len(batches)


class FunctionLoop(TapeLoop):
    """The same loop with its step under `kgraph.function` (the guide's `@tf.function`
    section): traced once, then one executor call per step (its phase timers run while
    tracing only, so they are not reported)."""

    def __init__(self, tf, keras):
        super().__init__(tf, keras)
        self.step = tf.function(super().step)


class FitLoop:
    def __init__(self, keras, batch):
        self.model = build_model(keras)
        self.model.compile(optimizer=keras.optimizers.Adam(),
                           loss="sparse_categorical_crossentropy")
        self.batch = batch

    def run(self, x, y):
        t = time.perf_counter()
        self.model.fit(x, y, batch_size=self.batch, epochs=1, verbose=0)
        return (time.perf_counter() - t) / (len(x) // self.batch)


def measure(repeats, steps, batch):
    import kgraph as tf
    from kgraph import keras
    from kgraph.compiler import build

    keras.utils.set_random_seed(SEED)
    x, y = make_data((repeats + 1) * steps * batch)
    blocks = [(x[i:i + steps * batch], y[i:i + steps * batch])
              for i in range(0, len(x), steps * batch)]
    fit, tape, function = FitLoop(keras, batch), TapeLoop(tf, keras), FunctionLoop(tf, keras)
    fit.run(*blocks[0])  # the first block compiles the loops' programs
    tape.run(_batches(*blocks[0], batch))
    function.run(_batches(*blocks[0], batch))
    before = build.stats()
    times = {"fit": [], "tape": [], "tape in kgraph.function": []}
    for bx, by in blocks[1:]:  # fresh samples each repeat: no loop sees a batch twice
        times["fit"].append(fit.run(bx, by))
        times["tape"].append(tape.run(_batches(bx, by, batch)))
        times["tape in kgraph.function"].append(function.run(_batches(bx, by, batch)))
    after = build.stats()
    work = {k: after.get(k, 0) - before.get(k, 0) for k in
            ("traces", "autodiffs", "optimizations", "emissions", "compilations")}
    return times, tape, work


def _batches(x, y, batch):
    return [(x[i:i + batch], y[i:i + batch]) for i in range(0, len(x), batch)]


def report(times, tape, work, args):
    import onnxruntime

    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"date: {time.strftime('%Y-%m-%d %H:%M')}  machine: {platform.processor() or platform.machine()}"
          f", {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}  python {platform.python_version()}"
          f"  onnxruntime {onnxruntime.__version__}")
    print(f"MLP {'-'.join(str(i) for i, _ in LAYERS)}-{LAYERS[-1][1]}, Adam, batch {args.batch}, "
          f"{args.steps} steps x {args.repeats} repeats (interleaved)\n")
    print("| loop | ms/step (median) | min-max |")
    print("|---|---|---|")
    for k, v in times.items():
        print(f"| {k} | {med[k]:.3f} | {min(v) * 1e3:.3f}-{max(v) * 1e3:.3f} |")
    for loop in ("tape", "tape in kgraph.function"):
        paired = statistics.median(t / f for t, f in zip(times[loop], times["fit"]))
        print(f"\n{loop} / fit: {med[loop] / med['fit']:.2f}x as a ratio of medians, "
              f"{paired:.2f}x as the median of each repeat's ratio (target <= 1.3x)")
    phases = ", ".join(f"{k} {statistics.median(v) * 1e3:.3f}" for k, v in tape.phases.items())
    print(f"tape phases, median ms: {phases}")
    print(f"compiler work during the timed steps (must be 0): {work}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    times, tape, work = measure(args.repeats, args.steps, args.batch)
    report(times, tape, work, args)
    if args.profile:
        import cProfile
        import pstats

        x, y = make_data(args.steps * args.batch, seed=SEED + 1)
        profiler = cProfile.Profile()
        profiler.runcall(tape.run, _batches(x, y, args.batch))
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
