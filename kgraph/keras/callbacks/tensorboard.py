"""`keras.callbacks.TensorBoard`: event files for TensorBoard, in Keras' layout."""
from __future__ import annotations

import json
import numbers
import os
import shutil
import tempfile
import time

from kgraph.distribute.strategy import is_chief
from kgraph.keras.callbacks.callback import Callback


def _check_profile_batch(profile_batch):
    """`(start, stop)` (1-based, inclusive; `(0, 0)` off) from an int, a pair or "a,b"."""
    value = profile_batch
    if isinstance(value, str):
        parts = value.split(",")
        value = tuple(int(v) for v in parts) if all(p.strip().isdigit() for p in parts) \
            else None
        value = value[0] if value and len(value) == 1 else value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, (tuple, list)) or len(value) != 2 or
            not all(isinstance(v, numbers.Integral) and v >= 0 for v in value) or
            value[0] > value[1] or (value[0] == 0) != (value[1] == 0)):
        raise ValueError("profile_batch must be a non-negative integer or 2-tuple of positive "
                         f"integers. A pair of positive integers signifies a range of batches "
                         f"to profile. Found: {profile_batch!r}")
    return tuple(int(v) for v in value)


class TensorBoard(Callback):
    """Write TensorBoard event files: losses, metrics and learning rate per epoch (and per
    batch on request), weight histograms and images, and the model's layer graph.

    The layout is Keras': `log_dir/train` and `log_dir/validation` runs, epoch scalars
    tagged `epoch_<name>` (validation values without their `val_` prefix, in the validation
    run), batch scalars `batch_<name>` at the global batch count, the learning rate as
    `epoch_learning_rate`, and `evaluation_<name>_vs_iterations` (validation values at the
    optimizer's iteration count). Files are written with the `tensorboard` package
    (`pip install 'kgraph[tensorboard]'`); no TensorFlow is needed. View them with
    `tensorboard --logdir=path_to_your_logs`.

    Args:
        log_dir: The directory of the event files. Defaults to `"logs"`.
        histogram_freq: Every this many epochs, write a histogram of every weight (`0`:
            never). Defaults to `0`.
        write_graph: Write the layer graph (TensorBoard's graph tab). Defaults to `True`.
        write_images: Write every weight as a grayscale image with its histogram.
        write_steps_per_second: Also log the training steps per second.
        update_freq: `"epoch"`, `"batch"` (every batch) or an integer N (every N batches):
            how often batch scalars are written. Defaults to `"epoch"`.
        profile_batch: A batch, or a pair `(start, stop)`, to profile (1-based; `0`: off).
            kgraph records the wall time of those steps as a Chrome trace
            (`log_dir/plugins/profile/<run>/steps.trace.json`, for chrome://tracing or
            Perfetto); TensorFlow's profiler tab is not written.
        embeddings_freq, embeddings_metadata: Accepted for compatibility; embeddings are not
            written.

    Raises:
        ValueError: for a bad `update_freq`, `histogram_freq` or `profile_batch`.

    Example:

    ```python
    tensorboard_callback = keras.callbacks.TensorBoard(log_dir="./logs")
    model.fit(x_train, y_train, epochs=2, callbacks=[tensorboard_callback])
    ```
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True,
                 write_images=False, write_steps_per_second=False, update_freq="epoch",
                 profile_batch=0, embeddings_freq=0, embeddings_metadata=None):
        super().__init__()
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and not (isinstance(update_freq, numbers.Integral)
                                           and not isinstance(update_freq, bool)
                                           and update_freq > 0):
            raise ValueError("TensorBoard: `update_freq` must be 'epoch', 'batch' or a "
                             f"positive integer. Received: update_freq={update_freq!r}")
        if not isinstance(histogram_freq, numbers.Integral) or histogram_freq < 0:
            raise ValueError("TensorBoard: `histogram_freq` must be an integer >= 0. "
                             f"Received: histogram_freq={histogram_freq!r}")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = int(histogram_freq)
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = update_freq
        self._profile = _check_profile_batch(profile_batch)
        self.embeddings_freq, self.embeddings_metadata = embeddings_freq, embeddings_metadata
        self._writers = {}
        self._global_train_batch = 0
        self._trace = []

    def _writer(self, run):
        from kgraph.keras.callbacks.summaries import EventWriter

        if run not in self._writers:
            self._writers[run] = EventWriter(os.path.join(self._write_dir(), run))
        return self._writers[run]

    # -- hooks ----------------------------------------------------------------------------
    def _write_dir(self):
        """`log_dir`; on a non-chief worker of a multi-worker job a temporary folder that
        `on_train_end` removes (Keras writes on worker 0 only)."""
        if is_chief(self.model):
            return self.log_dir
        if getattr(self, "_worker_dir", None) is None:
            self._worker_dir = tempfile.mkdtemp(prefix="kgraph-tensorboard-worker-")
        return self._worker_dir

    def on_train_begin(self, logs=None):
        self._global_train_batch = 0
        self._graph_written = False
        self._trace = []
        self._writer("train")  # fail early when tensorboard is missing

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start, self._epoch_batches = time.perf_counter(), 0

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1
        if self._profile[0] <= self._global_train_batch <= self._profile[1]:
            self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._epoch_batches += 1
        if self.write_graph and not self._graph_written:
            self._writer("train").graph(self.model)
            self._graph_written = True
        if self._profile[0] <= self._global_train_batch <= self._profile[1]:
            self._record_step(batch)
        if self.update_freq == "epoch" or self._global_train_batch % self.update_freq:
            return
        values = dict(logs or {})
        if self.write_steps_per_second:
            values["steps_per_second"] = self._steps_per_second()
        self._writer("train").scalars(values, self._global_train_batch, "batch_")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        if hasattr(getattr(self.model, "optimizer", None), "learning_rate"):
            train["learning_rate"] = float(self.model.optimizer.learning_rate)
        if self.write_steps_per_second:
            train["steps_per_second"] = self._steps_per_second()
        self._writer("train").scalars(train, epoch, "epoch_")
        if val:
            writer = self._writer("validation")
            writer.scalars(val, epoch, "epoch_")
            iterations = int(self.model.optimizer.iterations.numpy())
            writer.scalars({f"evaluation_{k}_vs_iterations": v for k, v in val.items()},
                           iterations)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        if self._trace:
            self._write_trace()
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
        if getattr(self, "_worker_dir", None) is not None:
            shutil.rmtree(self._worker_dir, ignore_errors=True)
            self._worker_dir = None

    # -- helpers --------------------------------------------------------------------------
    def _steps_per_second(self):
        elapsed = time.perf_counter() - self._epoch_start
        return self._epoch_batches / elapsed if elapsed > 0 else 0.0

    def _log_weights(self, epoch):
        from kgraph.keras.callbacks.summaries import weight_image

        writer = self._writer("train")
        for layer in self.model.layers:
            for weight in layer.weights:
                name = weight.path.replace(":", "_")
                value = weight.numpy()
                writer.histogram(f"{name}/histogram", value, epoch)
                image = weight_image(value) if self.write_images else None
                if image is not None:
                    writer.image(f"{name}/image", image, epoch)

    def _record_step(self, batch):
        start = self._batch_start
        self._trace.append({"name": f"train_step {self._global_train_batch}", "ph": "X",
                            "pid": os.getpid(), "tid": 0, "ts": start * 1e6,
                            "dur": (time.perf_counter() - start) * 1e6,
                            "args": {"batch": batch}})

    def _write_trace(self):
        run = time.strftime("%Y_%m_%d_%H_%M_%S")
        folder = os.path.join(self._write_dir(), "plugins", "profile", run)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "steps.trace.json"), "w") as fh:
            json.dump({"traceEvents": self._trace}, fh)
