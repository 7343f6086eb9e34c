"""The Callback protocol, History, the progress bar logger and CallbackList.

Logs reach callbacks with keys sorted alphabetically and values as Python floats (arrays for
vector results), as Keras 3 does (`pythonify_logs`)."""
from __future__ import annotations

from kgraph.keras.utils.progbar import Progbar


def pythonify_logs(logs):
    """Logs sorted by key, each value a Python float where it converts to one; a vector
    result (`F1Score(average=None)`) stays an array, as Keras 3 keeps it."""
    out = {}
    for key in sorted(logs or {}):
        try:
            out[key] = float(logs[key])
        except (TypeError, ValueError):
            out[key] = logs[key]
    return out


class Callback:
    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass

    # Keras 2 aliases
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass


class History(Callback):
    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        self.model.history = self


class ProgbarLogger(Callback):
    def __init__(self):
        super().__init__()
        self.progbar = None
        self.seen = 0

    def set_params(self, params):
        super().set_params(params)
        self.verbose = params.get("verbose", 1)
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def _reset(self, target=None):
        self.seen = 0
        self.progbar = Progbar(target=target, verbose=self.verbose, unit_name="step")

    def on_train_begin(self, logs=None):
        self._reset(self.target)

    def on_epoch_begin(self, epoch, logs=None):
        self._reset(self.target)
        if self.verbose and self.epochs > 1:
            from kgraph.keras.utils.global_state import print_msg

            print_msg(f"Epoch {epoch + 1}/{self.epochs}")  # stdout, or the `keras` logger

    def on_train_batch_end(self, batch, logs=None):
        self.seen = batch + 1
        self.progbar.update(self.seen, list((logs or {}).items()), finalize=False)

    def on_epoch_end(self, epoch, logs=None):
        if self.target is None:  # an unsized input: later epochs know their length (Keras)
            self.target = self.progbar.target = self.seen
        self.progbar.update(self.seen, list((logs or {}).items()), finalize=True)

    def on_test_begin(self, logs=None):
        if not self.model._in_fit:
            self._reset(self.params.get("steps"))

    def on_test_batch_end(self, batch, logs=None):
        if not self.model._in_fit:
            self.seen = batch + 1
            self.progbar.update(self.seen, list((logs or {}).items()), finalize=False)

    def on_test_end(self, logs=None):
        if not self.model._in_fit:
            self.progbar.update(self.seen, list((logs or {}).items()), finalize=True)

    def on_predict_begin(self, logs=None):
        self._reset(self.params.get("steps"))

    def on_predict_batch_end(self, batch, logs=None):
        self.seen = batch + 1
        self.progbar.update(self.seen, finalize=False)

    def on_predict_end(self, logs=None):
        self.progbar.update(self.seen, finalize=True)


class CallbackList:
    def __init__(self, callbacks=None, model=None, add_history=False, add_progbar=False,
                 **params):
        self.callbacks = list(callbacks or [])
        if add_progbar and not any(isinstance(c, ProgbarLogger) for c in self.callbacks):
            self.callbacks.append(ProgbarLogger())
        if add_history:
            self.history = History()
            self.callbacks.append(self.history)
        for c in self.callbacks:
            c.set_model(model)
            c.set_params(params)

    def __getattr__(self, name):
        if not name.startswith("on_"):
            raise AttributeError(name)

        # Keras 3 passes `logs` to every hook, `{}` when there are none: user hooks written
        # as `def on_epoch_begin(self, epoch, logs)` (no default) or `logs.get(...)` rely on it.
        arity = 2 if ("batch" in name or "epoch" in name) else 1

        def call(*args):
            args = args + (None,) * (arity - len(args))
            args = args[:-1] + ({} if args[-1] is None else args[-1],)
            for method in self.listeners(name):
                method(*args)
        return call

    def listeners(self, name):
        """The methods a call of hook `name` runs, in order: each callback's own `name` and,
        for the train batch hooks, its Keras 2 alias (`on_batch_end`), leaving out the
        `Callback` base class's no-ops, as tf.keras skips batch hooks nobody implements (the
        trainer then reads no per-step logs back). Worked out again when `callbacks`
        changes."""
        callbacks = tuple(self.callbacks)
        cache = self.__dict__.setdefault("_listeners", {})
        hit = cache.get(name)
        if hit is not None and len(hit[0]) == len(callbacks) and \
                all(a is b for a, b in zip(hit[0], callbacks)):
            return hit[1]
        hooks = (name,) + _ALIASES.get(name, ())
        methods = []
        for c in callbacks:
            for hook in hooks:
                method = getattr(c, hook)
                if getattr(method, "__func__", None) is not getattr(Callback, hook):
                    methods.append(method)
        methods = tuple(methods)
        cache[name] = (callbacks, methods)
        return methods


_ALIASES = {"on_train_batch_begin": ("on_batch_begin",),
            "on_train_batch_end": ("on_batch_end",)}
