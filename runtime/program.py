"""A compiled graph bound to the variables it reads and updates.

Calling a Program feeds the named arrays plus every variable's resident buffer, runs the
compiled graph once, stores each updated variable's new buffer back on the variable (no numpy
copy), and returns the remaining outputs as backend buffers. Where the compiled graph allows it
(its `aliases`: an optimizer's slots and weights) and the variable's buffer is its own to give
(`Variable.donatable`), the new value is written into the old buffer instead of a fresh one.

A Program may be called from any number of threads at once: each thread runs through its own
binder (an onnxruntime IOBinding remembers what was bound last, so one shared binder would mix
one thread's inputs with another's outputs). Updated variables are stored back by whichever
call finishes last; the trainer serialises the calls that update state (fit, evaluate).
"""
from __future__ import annotations

import threading

import numpy as np


class Program:
    """`key_name`: the graph's rng key input, fed `next_key()` (a fresh uint32 per call; the
    caller supplies the generator, so the runtime imports nothing above it)."""

    def __init__(self, compiled, feed_names, variables, updated, result_names, key_name=None,
                 next_key=None, prologue=None):
        if key_name is not None and next_key is None:
            raise ValueError(f"Program: the graph reads an rng key ({key_name!r}); pass "
                             f"`next_key`, the function that makes a fresh one per call")
        self.compiled = compiled
        self.key_name, self.next_key = key_name, next_key
        # A Program over what the graph computes from variables alone (no feeds, no updates),
        # whose results feed this one: rerun only when one of its variables' buffers changed.
        self.prologue = prologue
        self._prologue_cache = None  # (the variables' buffers, the prologue's results)
        self.feed_names = list(feed_names)
        self.variables = list(variables)  # (input name, Variable) read by the graph
        self.updated = list(updated)  # Variables whose new value follows the results
        self.result_names = list(result_names)
        self._per_thread = threading.local()
        # (updated index, input name, output name) of each update the graph may write in place
        aliases = getattr(compiled, "aliases", None) or {}
        inputs = {id(var): name for name, var in self.variables}
        names = compiled.output_names[len(self.result_names):] if aliases else ()
        self._in_place = [(j, inputs[id(var)], out)
                          for j, (var, out) in enumerate(zip(self.updated, names))
                          if id(var) in inputs and aliases.get(out) == inputs[id(var)]]
        self._lent = frozenset(name for _, name, _ in self._in_place)

    def _runner(self):
        """This thread's binder (made on a thread's first call), or the compiled graph itself
        for executors without binders."""
        try:
            return self._per_thread.runner
        except AttributeError:
            compiled = self.compiled
            runner = compiled.binder() if hasattr(compiled, "binder") else compiled
            self._per_thread.runner = runner
            return runner

    def __call__(self, *arrays, pinned=None, defer=None):
        """`pinned`: {Variable: buffer} fed instead of those variables' current buffers (the
        values a GradientTape recorded against, read after the weights moved on). `defer`: a
        set of updated Variables whose new buffers are returned, as {Variable: buffer} after
        the results, instead of stored (the caller commits or drops them).

        A call that repeats this thread's last one — the same array objects (a resident
        dataset's, an index buffer rewritten in place), every variable still holding the
        buffer that call left it (`Variable.kept`) — hands the runner the same feeds again
        (`OrtBinder.run` then binds nothing anew)."""
        upload = self.compiled.upload
        last = self._per_thread.__dict__.get("last") if pinned is None and defer is None \
            else None
        repeat = last is not None and len(arrays) == len(last[0]) and \
            all(a is b for a, b in zip(arrays, last[0])) and \
            all(var.kept(buf, upload, written) for var, buf, written in last[3])
        if repeat:
            feeds, into = last[1], last[2]
        else:
            self._per_thread.last = None
            feeds, into = self._feeds(arrays, upload, pinned, defer)
        outs = self._runner().run(feeds, into) if into else self._runner().run(feeds)
        n = len(self.result_names)
        held = {}
        for var, buf in zip(self.updated, outs[n:]):  # (the same buffer where in place)
            if defer and var in defer:
                held[var] = buf
            else:  # the executor that made it; a step's own buffer until something reads it
                var.set_device_buffer(buf, upload, donatable=True)
        # repeatable: every update in place, and the caller's arrays device buffers it keeps
        # (a host array it passes again may have been changed, and was uploaded as it was)
        if not repeat and not pinned and defer is None and self.key_name is None and \
                self.prologue is None and len(into) == len(self.updated) and \
                not any(isinstance(a, np.ndarray) for a in arrays):
            written = {id(var) for var in self.updated}
            self._per_thread.last = (arrays, feeds, into, [
                (var, feeds[name], id(var) in written) for name, var in self.variables])
        return (outs[:n], held) if defer is not None else outs[:n]

    def _feeds(self, arrays, upload, pinned, defer):
        """The feeds of a call (the arrays, the variables' buffers, the rng key, the
        prologue's results) and `into`: the updates to write in place."""
        feeds = dict(zip(self.feed_names, arrays))
        for name, var in self.variables:
            buffer = pinned.get(var) if pinned else None
            feeds[name] = buffer if buffer is not None else \
                var.device_buffer(upload, lend=name in self._lent)
        if self.key_name is not None:
            feeds[self.key_name] = self.next_key()
        if self.prologue is not None:
            feeds.update(zip(self.prologue.result_names, self._prologue_results()))
        into = {}
        for j, name, out in self._in_place:
            var = self.updated[j]
            if not (pinned and var in pinned) and not (defer and var in defer) and \
                    var.donatable(upload):
                into[out] = feeds[name]
        return feeds, into

    def release(self):
        """Let go of what this thread's last call fed (a resident dataset's arrays): the
        runner keeps its inputs bound until the next call rebinds them."""
        self._per_thread.last = None
        runner = self._per_thread.__dict__.get("runner")
        if runner is not None and hasattr(runner, "unbind"):
            runner.unbind(self.feed_names)

    def _prologue_results(self) -> list:
        prologue = self.prologue
        upload = prologue.compiled.upload
        buffers = [var.device_buffer(upload) for _, var in prologue.variables]
        cached = self._prologue_cache  # read once: another thread may replace it meanwhile
        if cached is not None and all(a is b for a, b in zip(cached[0], buffers)):
            return cached[1]
        results = prologue()
        self._prologue_cache = (buffers, results)
        return results

    def to_numpy(self, buffer):
        return self.compiled.to_numpy(buffer)
