"""Work ahead of the consumer: a background producer thread (`prefetch`) and a bounded window
of calls running on a pool of threads or processes (`map(num_parallel_calls=)`, PyDataset
workers).

Both hold a bounded number of items (the buffer capacity, or the window of calls in flight),
so memory stays constant however long the stream is. Both are generators whose `finally`
stops and joins their workers: exhausting them, breaking out of them, closing them, or an
exception from the source all end the threads or processes. An exception raised by the
source or by a call is re-raised to the consumer as the same object, traceback included (a
process pool chains the worker's traceback as its `__cause__`).
"""
from __future__ import annotations

import collections
import concurrent.futures as futures
import multiprocessing
import os
import threading

AUTOTUNE = -1
AUTOTUNE_MAX_DEPTH = 8  # the most batches AUTOTUNE lets a prefetch buffer hold


def autotune_workers():
    """The number of parallel calls `AUTOTUNE` means: the CPUs this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)


class _Buffer:
    """A bounded FIFO between one producer thread and one consumer. With `grow_to`, the
    capacity grows by one (up to `grow_to`) each time the consumer finds it empty: the
    `AUTOTUNE` depth is the smallest that keeps the consumer from waiting."""

    def __init__(self, capacity, grow_to=None):
        self.capacity, self.grow_to = capacity, grow_to or capacity
        self.items = collections.deque()
        self.closed = self.finished = False
        self.cond = threading.Condition()

    def put(self, item):
        """False when the consumer has gone (the producer should stop)."""
        with self.cond:
            while len(self.items) >= self.capacity and not self.closed:
                self.cond.wait()
            if self.closed:
                return False
            self.items.append(item)
            self.cond.notify_all()
            return True

    def finish(self):
        with self.cond:
            self.finished = True
            self.cond.notify_all()

    def get(self):
        """The next item, or raise `StopIteration` once the producer has finished."""
        with self.cond:
            if not self.items and not self.finished and self.capacity < self.grow_to:
                self.capacity += 1
                self.cond.notify_all()
            while not self.items and not self.finished:
                self.cond.wait()
            if not self.items:
                raise StopIteration
            item = self.items.popleft()
            self.cond.notify_all()
            return item

    def close(self):
        with self.cond:
            self.closed = True
            self.items.clear()
            self.cond.notify_all()


_ERROR = object()


def _produce(make_iterator, buffer):
    iterator = None
    try:
        iterator = iter(make_iterator())
        for item in iterator:
            if not buffer.put((None, item)):
                break
    except BaseException as error:  # noqa: BLE001 -- handed to the consumer, re-raised there
        buffer.put((_ERROR, error))
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
        buffer.finish()


def prefetched(make_iterator, depth):
    """Iterate `make_iterator()` on a background thread, keeping up to `depth` items ready
    (`AUTOTUNE`: a depth that grows from 1 while the consumer has to wait, at most
    `AUTOTUNE_MAX_DEPTH`)."""
    depth = int(depth)
    if depth == AUTOTUNE:
        buffer = _Buffer(1, AUTOTUNE_MAX_DEPTH)
    elif depth > 0:
        buffer = _Buffer(depth)
    else:
        raise ValueError(f"`buffer_size` must be a positive integer or AUTOTUNE (-1). "
                         f"Received: buffer_size={depth}")
    thread = threading.Thread(target=_produce, args=(make_iterator, buffer), daemon=True,
                              name="kgraph-prefetch")
    thread.start()
    try:
        while True:
            try:
                tag, item = buffer.get()
            except StopIteration:
                return
            if tag is _ERROR:
                raise item
            yield item
    finally:
        buffer.close()
        thread.join()


# -- pools ----------------------------------------------------------------------------------
_SHARED = {}


def _install(fn):
    _SHARED["fn"] = fn


def _call_installed(arg):
    return _SHARED["fn"](arg)


def make_pool(fn, workers, processes=False):
    """`(pool, submit)`: `submit(arg)` runs `fn(arg)` on one of `workers` threads, or
    processes when `processes` (forked where the platform allows, so `fn` and what it refers
    to need not pickle; arguments and results do)."""
    if not processes:
        pool = futures.ThreadPoolExecutor(workers, thread_name_prefix="kgraph-data")
        return pool, lambda arg: pool.submit(fn, arg)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    pool = futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                                       initializer=_install, initargs=(fn,))
    return pool, lambda arg: pool.submit(_call_installed, arg)


def pooled_map(fn, items, workers, window=None, ordered=True, processes=False):
    """`fn(item)` for every item of `items`, computed by `workers` threads (or processes)
    with at most `window` calls in flight (default `2 * workers`). Results come in the order
    of `items`, or as they complete when `ordered` is false."""
    window = max(int(window or 2 * workers), 1)
    pool, submit = make_pool(fn, workers, processes)
    pending = collections.deque()
    try:
        for item in items:
            pending.append(submit(item))
            if len(pending) >= window:
                yield _next_result(pending, ordered)
        while pending:
            yield _next_result(pending, ordered)
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _next_result(pending, ordered):
    if ordered:
        return pending.popleft().result()
    done, _ = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
    first = next(f for f in pending if f in done)
    pending.remove(first)
    return first.result()
