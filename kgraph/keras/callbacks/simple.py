"""`keras.callbacks.LambdaCallback` and `keras.callbacks.TerminateOnNaN`."""
from __future__ import annotations

import math

from kgraph.keras.callbacks.callback import Callback


def _with_optional_logs(fn, name):
    """`fn` callable with or without its trailing `logs` argument (passed as None)."""
    arity = 2 if ("batch" in name or "epoch" in name) else 1

    def hook(*args, **kwargs):
        if "logs" not in kwargs:
            args = args + (None,) * (arity - len(args))
        return fn(*args, **kwargs)

    hook.__name__ = name
    hook.__wrapped__ = fn
    return hook


class LambdaCallback(Callback):
    """Callback for creating simple, custom callbacks on-the-fly.

    The functions are called with the same arguments as the `Callback` methods:
    `on_epoch_begin` and `on_epoch_end` get `epoch, logs`; `on_train_begin` and
    `on_train_end` get `logs`; `on_train_batch_begin` and `on_train_batch_end` get
    `batch, logs`. Any other `on_*` hook (`on_test_end=...`) may be given as a keyword
    argument too.

    Args:
        on_epoch_begin: called at the beginning of every epoch.
        on_epoch_end: called at the end of every epoch.
        on_train_begin: called at the beginning of model training.
        on_train_end: called at the end of model training.
        on_train_batch_begin: called at the beginning of every train batch.
        on_train_batch_end: called at the end of every train batch.
        kwargs: Any function in `Callback` that you want to override by passing
            `function_name=function`.

    Example:

    ```python
    # Print the batch number at the beginning of every batch.
    batch_print_callback = LambdaCallback(
        on_train_batch_begin=lambda batch, logs: print(batch))

    # Stream the epoch loss to a file in JSON format, one object per line.
    import json
    json_log = open('loss_log.json', mode='wt', buffering=1)
    json_logging_callback = LambdaCallback(
        on_epoch_end=lambda epoch, logs: json_log.write(
            json.dumps({'epoch': epoch, 'loss': logs['loss']}) + '\\n'),
        on_train_end=lambda logs: json_log.close())

    model.fit(..., callbacks=[batch_print_callback, json_logging_callback])
    ```
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end)
        for name, value in kwargs.items():
            if name.startswith("on_"):
                hooks[name] = value
            else:
                setattr(self, name, value)
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not callable(fn):
                raise ValueError(f"LambdaCallback: `{name}` must be a function. "
                                 f"Received: {name}={fn!r}")
            setattr(self, name, _with_optional_logs(fn, name))


class TerminateOnNaN(Callback):
    """Stop training when a NaN or infinite loss is encountered.

    By default training stops gracefully, by setting `model.stop_training = True` after the
    batch (`on_train_end()` of every callback still runs). With `raise_error=True` a
    `RuntimeError` is raised at once instead, skipping the other callbacks' clean-up.

    Args:
        raise_error: Raise `RuntimeError` instead of stopping gracefully. Defaults to
            `False`.

    Example:

    ```python
    model.fit(x, y, callbacks=[keras.callbacks.TerminateOnNaN()])
    ```
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        if math.isnan(loss) or math.isinf(loss):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss "
                                   f"value: {loss}. Terminating training immediately.")
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True
