"""Serving one model from many threads gives exactly the single-thread results, and models
built and discarded do not pile up onnxruntime threads (issue 9, cases 1 and 4)."""
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from kgraph import keras

BATCH_SIZES = (1, 2, 3, 5, 8, 13)


def _mlp(seed=0, width=16):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(width, activation="tanh"),
                              keras.layers.Dense(4)])
    model.compile("sgd", "mse", metrics=["mae"])
    return model


def _inputs():
    rng = np.random.default_rng(0)
    return {n: rng.normal(size=(n, 6)).astype("f4") for n in BATCH_SIZES}


def _hammer(fn, expected, threads=16, calls=500):
    """Run `fn(batch_size)` `calls` times in each of `threads` threads (cold start: no warm-up
    call, so concurrent first calls build the step graph too); count results that differ."""
    barrier = threading.Barrier(threads)

    def worker(t):
        barrier.wait()
        wrong = 0
        for i in range(calls):
            n = BATCH_SIZES[(t + i) % len(BATCH_SIZES)]
            if not np.array_equal(fn(n), expected[n]):
                wrong += 1
        return wrong

    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(worker, range(threads)))


def test_predict_on_batch_from_16_threads_matches_single_thread():
    xs = _inputs()
    expected = {n: _mlp().predict_on_batch(x) for n, x in xs.items()}
    model = _mlp()
    assert _hammer(lambda n: model.predict_on_batch(xs[n]), expected) == 0


def test_call_and_predict_from_threads_match_single_thread():
    xs = _inputs()
    reference = _mlp()
    expected = {n: np.asarray(reference(x)) for n, x in xs.items()}
    model = _mlp()
    assert _hammer(lambda n: np.asarray(model(xs[n])), expected, threads=8, calls=100) == 0
    assert _hammer(lambda n: model.predict(xs[n], verbose=0), expected, threads=8,
                   calls=50) == 0


def test_evaluate_from_threads_matches_single_thread():
    xs = _inputs()
    ys = {n: np.full((n, 4), 0.5, "f4") for n in BATCH_SIZES}
    reference = _mlp()
    expected = {n: np.array(reference.evaluate(xs[n], ys[n], verbose=0)) for n in BATCH_SIZES}
    model = _mlp()
    wrong = _hammer(lambda n: np.array(model.evaluate(xs[n], ys[n], verbose=0)), expected,
                    threads=8, calls=40)
    assert wrong == 0


def test_fit_from_two_threads_serialises():
    x = np.random.default_rng(1).normal(size=(64, 6)).astype("f4")
    y = np.zeros((64, 4), "f4")
    reference = _mlp()
    for _ in range(2):
        reference.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    model = _mlp()
    running, log = [], []

    class Watch(keras.callbacks.Callback):
        """Counts batches of the two fits that run at the same time."""

        def on_train_batch_begin(self, batch, logs=None):
            running.append(threading.get_ident())
            log.append((threading.get_ident(), len(running)))
            time.sleep(0.002)  # room for the other thread to step in, were it allowed

        def on_train_batch_end(self, batch, logs=None):
            running.remove(threading.get_ident())

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: model.fit(x, y, epochs=2, batch_size=16, shuffle=False,
                                          verbose=0, callbacks=[Watch()]), range(2)))
    assert len(log) == 16 and max(n for _, n in log) == 1, "batches of two fits overlapped"
    order = [thread for thread, _ in log]
    assert order == sorted(order, key=order.index), "the two fits interleaved"
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


_CHURN = """
import os, sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_threads import _mlp

def thread_count():
    return len(os.listdir("/proc/self/task"))

def rss_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))

x = np.ones((3, 6), "f4")

def one_model(i):
    model = _mlp(seed=i, width=8 + i)  # no two alike: sharing sessions cannot bound threads
    model.predict_on_batch(x)
    model.fit(x, np.zeros((3, 4), "f4"), epochs=1, verbose=0)
    return model

for i in range(20):  # warm up: imports, allocator arenas
    one_model(i)
threads, rss = thread_count(), rss_kib()
for i in range(200):
    one_model(i)
after = thread_count()
import gc
gc.collect()  # the discarded models still in reference cycles, and their sessions, go
print(threads, after, thread_count(), rss_kib() - rss)
"""


@pytest.mark.slow
def test_200_models_built_and_discarded_keep_threads_and_rss_bounded():
    """In a fresh process (a test suite's other live models would count otherwise)."""
    code = _CHURN.format(tests=os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    warm, after, collected, grown_kib = map(int, out.stdout.split()[-4:])
    # sessions of discarded models wait for the cyclic collector, within the thread budget
    budget = 16 * os.cpu_count()
    assert warm <= budget + os.cpu_count() + 6, f"{warm} threads after 20 models"
    assert after <= budget + os.cpu_count() + 6, f"{after} threads after 220 models"
    assert collected <= os.cpu_count() + 6, f"{collected} threads once collected"
    assert grown_kib < 64 * 1024, f"RSS grew by {grown_kib} KiB over 200 models"


_LIVE = """
import os, sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_threads import _mlp

x = np.ones((3, 6), "f4")
live = []
for i in range(30):  # all kept alive, no two alike
    model = _mlp(seed=i, width=8 + i)
    model.predict_on_batch(x)
    model.fit(x, np.zeros((3, 4), "f4"), epochs=1, verbose=0)
    live.append(model)
print(len(os.listdir("/proc/self/task")))
"""


@pytest.mark.slow
@pytest.mark.parametrize("threads", ["", "16"])
def test_30_live_models_keep_threads_bounded(threads):
    """Each session's pool comes from a process-wide budget (16 per core by default), so
    live models do not add threads beyond it: 30 of them with KGRAPH_NUM_THREADS=16 made
    900+."""
    code = _LIVE.format(tests=os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, KGRAPH_NUM_THREADS=threads)
    env.pop("KGRAPH_MAX_THREADS", None)
    env.pop("KGRAPH_ORT_GLOBAL_THREADS", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=env, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    count = int(out.stdout.split()[-1])
    assert count <= 16 * os.cpu_count() + 8, f"{count} threads with 30 live models"


def test_thread_budget_is_given_back_when_a_session_goes(monkeypatch):
    """A session made when the budget is spent runs on the calling thread; freeing a session
    gives its threads to the next one."""
    import gc

    from kgraph.runtime import onnx_exec

    monkeypatch.setenv("KGRAPH_NUM_THREADS", "3")
    monkeypatch.delenv("KGRAPH_ORT_GLOBAL_THREADS", raising=False)
    gc.collect()
    monkeypatch.setenv("KGRAPH_MAX_THREADS", str(onnx_exec._BUDGET.held + 2))
    first = _mlp(width=9)
    first.predict_on_batch(np.ones((2, 6), "f4"))
    assert onnx_exec.thread_budget() - onnx_exec._BUDGET.held == 0
    second = _mlp(width=10)
    expected = second.predict_on_batch(np.ones((2, 6), "f4"))  # no threads left: still runs
    del first
    gc.collect()
    assert onnx_exec.thread_budget() - onnx_exec._BUDGET.held == 2
    np.testing.assert_array_equal(second.predict_on_batch(np.ones((2, 6), "f4")), expected)


def test_invalid_thread_budget_warns_and_keeps_the_default(monkeypatch):
    from kgraph.config import ConfigWarning
    from kgraph.runtime import onnx_exec

    monkeypatch.setenv("KGRAPH_MAX_THREADS", "lots")
    with pytest.warns(ConfigWarning, match="KGRAPH_MAX_THREADS='lots'"):
        assert onnx_exec.thread_budget() == 16 * onnx_exec.physical_cores()


def test_collections_for_the_thread_budget_take_at_most_a_tenth_of_the_time():
    """A full collection (0.2 s in a test process) ran before every session made while the
    budget was short, though the short sessions were live ones: a quarter of a test run."""
    from kgraph.runtime.onnx_exec import _Collector

    now, runs = [100.0], []

    def collect():
        runs.append(now[0])
        now[0] += 0.2  # a collection that takes 0.2 s

    collector = _Collector(clock=lambda: now[0], collect=collect)
    assert collector.due()
    collector.collect()
    assert collector.cost == pytest.approx(0.2) and not collector.due()
    now[0] += 1.9
    assert not collector.due()
    now[0] += 0.11  # 2 s after it ended: 10x its cost
    assert collector.due()
