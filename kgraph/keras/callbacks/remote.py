"""`keras.callbacks.RemoteMonitor` and `keras.callbacks.SwapEMAWeights`."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import warnings

import numpy as np

from kgraph.keras.callbacks.callback import Callback


class RemoteMonitor(Callback):
    """POST the epoch logs to a server at the end of every epoch.

    The payload is `{"epoch": epoch, **logs}`: as a JSON body with `send_as_json=True`,
    otherwise as a form field `field` holding that JSON (Keras' two formats). A server that
    cannot be reached gives a warning, never an error.

    Args:
        root: The root URL of the server. Defaults to `"http://localhost:9000"`.
        path: The path, relative to `root`, to POST to. Defaults to
            `"/publish/epoch/end/"`.
        field: The form field that holds the JSON (unused with `send_as_json`).
        headers: Optional dictionary of extra HTTP headers.
        send_as_json: Send the payload as `application/json`.

    Example:

    ```python
    monitor = keras.callbacks.RemoteMonitor(root="http://127.0.0.1:9000",
                                            send_as_json=True)
    model.fit(x, y, callbacks=[monitor])
    ```
    """

    def __init__(self, root="http://localhost:9000", path="/publish/epoch/end/", field="data",
                 headers=None, send_as_json=False):
        super().__init__()
        self.root, self.path, self.field = root, path, field
        self.headers = dict(headers or {})
        self.send_as_json = send_as_json

    def on_epoch_end(self, epoch, logs=None):
        send = {"epoch": epoch}
        for key, value in (logs or {}).items():
            send[key] = value.item() if isinstance(value, (np.ndarray, np.generic)) else value
        if self.send_as_json:
            body = json.dumps(send).encode()
            headers = {"Content-Type": "application/json", **self.headers}
        else:
            body = urllib.parse.urlencode({self.field: json.dumps(send)}).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded", **self.headers}
        request = urllib.request.Request(self.root + self.path, data=body, headers=headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except (urllib.error.URLError, OSError) as e:
            warnings.warn("Could not reach RemoteMonitor root server at "
                          f"{self.root!r} ({e}).", stacklevel=2)


class SwapEMAWeights(Callback):
    """Evaluate (and optionally checkpoint) with the optimizer's moving averages.

    With an optimizer made with `use_ema=True`, the model's trainable weights and their
    moving averages trade places for every evaluation (validation inside `fit`, `evaluate`,
    `predict` given this callback) and trade back afterwards, so training goes on from the
    raw weights. With `swap_on_epoch=True` they also trade places at the end of every epoch,
    for the callbacks that follow this one (a `ModelCheckpoint` saves the averages), and
    back at the start of the next.

    Args:
        swap_on_epoch: Also hold the averages in the model from the end of each epoch to
            the start of the next. Defaults to `False`.

    Raises:
        ValueError: when the model's optimizer does not keep moving averages.

    Example:

    ```python
    model.compile(optimizer=keras.optimizers.SGD(use_ema=True), loss="mse")
    model.fit(x, y, callbacks=[keras.callbacks.SwapEMAWeights(swap_on_epoch=True),
                               keras.callbacks.ModelCheckpoint("best.keras")])
    ```
    """

    def __init__(self, swap_on_epoch=False):
        super().__init__()
        self.swap_on_epoch = swap_on_epoch
        self._swapped = False

    def _pairs(self):
        optimizer = self.model.optimizer
        if not getattr(optimizer, "use_ema", False):
            raise ValueError("SwapEMAWeights must be used when `use_ema=True` is set on the "
                             f"optimizer. Received: use_ema={getattr(optimizer, 'use_ema', None)}")
        if not optimizer.built:
            optimizer.build(self.model.trainable_weights)
        return [(var, optimizer._base_slots[id(var)]["average"])
                for var in self.model.trainable_weights if id(var) in optimizer._base_slots]

    def _swap(self, to_average):
        if self._swapped == to_average:
            return
        for var, average in self._pairs():
            raw = var.numpy()
            var.assign(average.numpy())
            average.assign(raw)
        self._swapped = to_average

    def on_train_begin(self, logs=None):
        self._pairs()  # fail early without use_ema
        self._swapped = False

    def on_epoch_begin(self, epoch, logs=None):
        self._swap(False)

    def on_epoch_end(self, epoch, logs=None):
        if not self.swap_on_epoch:
            return
        self._swap(True)
        if epoch == self.params.get("epochs", 0) - 1:
            # fit() ends by giving the variables their averages (finalize_variable_values):
            # the averages must hold the moving averages again, not the raw weights.
            for var, average in self._pairs():
                average.assign(var.numpy())
            self._swapped = False

    def on_test_begin(self, logs=None):
        self._held_before_test = self._swapped
        self._swap(True)

    def on_test_end(self, logs=None):
        self._swap(self._held_before_test)

    def on_predict_begin(self, logs=None):
        self.on_test_begin(logs)

    def on_predict_end(self, logs=None):
        self.on_test_end(logs)
