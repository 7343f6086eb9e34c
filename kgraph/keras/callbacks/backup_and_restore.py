"""`keras.callbacks.BackupAndRestore`: resume a killed `fit` where it stopped, bit for bit."""
from __future__ import annotations

import contextlib
import os
import threading

from kgraph import random as krandom
from kgraph.distribute.strategy import is_chief
from kgraph.keras.callbacks import training_state
from kgraph.keras.callbacks.callback import Callback
from kgraph.keras.callbacks.monitor import BatchCounter, check_save_freq

LATEST = "latest.backup.h5"
PREVIOUS = "previous.backup.h5"


class BackupAndRestore(Callback):
    """Back up the training state regularly; a `fit` restarted after a crash resumes from it.

    The backup holds everything the next training step depends on: weights, optimizer slots
    and iteration count, metric accumulators, the epoch and the batch reached in it, the
    random state (dropout keys) and the data order (the shuffle of arrays and of
    `kgraph.data` pipelines). A process killed at any moment, SIGKILL included, and started
    again with the same script (same seed, same data, same callbacks) ends with final
    weights bit-identical to a run that was never interrupted. Backups are atomic: the
    previous one stays valid until the new one is complete. A backup takes a snapshot of the
    state (references to the executor's buffers, which later steps never write into) and is
    written by a background thread while training goes on; the next backup, and the end of
    `fit`, wait for it. A run killed before a write completes resumes from the backup before.

    The model must be built before `fit()`, and the callback is best placed last in the
    list, so that an epoch-end backup sees what other callbacks changed (a learning rate).
    State kept by other callbacks (EarlyStopping's patience count) is not backed up.

    Args:
        backup_dir: Directory where the backup is stored. It must not be shared by runs
            that train concurrently.
        save_freq: `"epoch"` (back up at the end of every epoch) or an integer N (back up
            after every N training batches; with `steps_per_execution`, at the end of the
            execution that reaches N). Defaults to `"epoch"`.
        double_checkpoint: Also keep the backup before the latest, used when the latest
            cannot be read (a disk error). Defaults to `False`.
        delete_checkpoint: Delete the backup when training ends normally. Defaults to
            `True`.

    Raises:
        ValueError: for an empty `backup_dir` or a `save_freq` that is neither `"epoch"`
            nor a positive integer.

    Example:

    ```python
    callback = keras.callbacks.BackupAndRestore(backup_dir="/tmp/backup", save_freq=50)
    model.fit(x, y, epochs=10, callbacks=[callback])  # killed? run the same line again
    ```
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False,
                 delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError(f"Empty `backup_dir` argument passed. Received: "
                             f"backup_dir={backup_dir!r}")
        check_save_freq(save_freq)
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self._batches = BatchCounter(save_freq)
        self._epoch = 0
        self._epoch_random = None  # kgraph.random's state as the current epoch began
        self._pending_metrics = {}  # metric name -> saved accumulators, until restored
        self._writer = None  # the thread writing the latest backup
        self._write_error = None

    @property
    def _paths(self):
        return [os.path.join(self.backup_dir, name) for name in (LATEST, PREVIOUS)]

    # -- restore --------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        if not self.model.built:
            raise ValueError("To use the BackupAndRestore callback, your model must be built "
                             "before you call `fit()`. Call it on data, `build()` it, or give "
                             f"it an `Input`. Model {self.model.name!r} is not built.")
        if is_chief(self.model):  # every worker restores the chief's backup; it alone writes
            os.makedirs(self.backup_dir, exist_ok=True)
        state = self._read_backup()
        if state is None:
            return
        meta, arrays = state
        groups = training_state.variable_groups(self.model)
        for name in ("weights", "optimizer"):
            training_state.assign_group(name, groups[name], arrays.get(name, []),
                                        self._paths[0])
        krandom.set_state(meta["random"])
        self._pending_metrics = {name: values for name, values in arrays.items()
                                 if name.startswith("metrics/")} if meta["step"] else {}
        self.model.__dict__["_resume_at"] = (meta["epoch"], meta["step"], meta["logs"])

    def _read_backup(self):
        """The latest readable backup, or None when there is none."""
        paths = self._paths if self.double_checkpoint else self._paths[:1]
        error = None
        for path in paths:
            if not os.path.exists(path):
                continue
            try:
                return training_state.read_state(path)
            except training_state.TrainingStateError as e:
                error = error or e
        if error is not None:
            raise error
        return None

    def _restore_metrics(self, kind="train"):
        """Give the metrics that exist now their saved accumulators (once each)."""
        if kind != "train" or not self._pending_metrics:
            return
        groups = training_state.variable_groups(self.model)
        for name in [n for n in self._pending_metrics if n in groups]:
            training_state.assign_group(name, groups[name], self._pending_metrics.pop(name),
                                        self._paths[0])

    # -- back up --------------------------------------------------------------------------
    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._batches.new_epoch()
        self._epoch_random = krandom.get_state()
        if self._pending_metrics:  # the resumed epoch: after fit's reset_metrics()
            self._restore_metrics()
            hooks = self.model.__dict__.setdefault("_program_hooks", [])
            hooks.append(self._restore_metrics)  # metrics built by the step's first trace

    def on_train_batch_end(self, batch, logs=None):
        if self._batches.due(batch):
            random = dict(self._epoch_random, counter=krandom.get_state()["counter"])
            self._save(self._epoch, batch + 1, logs, random)

    def on_epoch_end(self, epoch, logs=None):
        self._pending_metrics = {}
        hooks = self.model.__dict__.get("_program_hooks", [])
        if self._restore_metrics in hooks:
            hooks.remove(self._restore_metrics)
        if self.save_freq == "epoch":
            self._save(epoch + 1, 0, {}, krandom.get_state())

    def _save(self, epoch, step, logs, random):
        if not is_chief(self.model):
            return
        meta = {"epoch": epoch, "step": step, "logs": dict(logs or {}), "random": random}
        snapshot = training_state.snapshot_state(self.model)
        self._wait()
        self._writer = threading.Thread(target=self._write, args=(snapshot, meta),
                                        name="kgraph-backup", daemon=False)
        self._writer.start()

    def _write(self, snapshot, meta):
        try:
            latest, previous = self._paths
            if self.double_checkpoint and os.path.exists(latest):
                os.replace(latest, previous)
            training_state.write_snapshot(latest, snapshot, meta)
        except BaseException as error:  # noqa: BLE001  (re-raised in the training thread)
            self._write_error = error

    def _wait(self):
        """Wait for the backup being written; raise its error, if it failed."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        error, self._write_error = self._write_error, None
        if error is not None:
            raise error

    def on_train_end(self, logs=None):
        self._wait()
        if self.delete_checkpoint and is_chief(self.model):
            for path in self._paths:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)


def resume_point(model, initial_epoch):
    """`(epoch, batches already done in it, their logs)` where `fit` starts: the position a
    BackupAndRestore restored in `on_train_begin`, else `(initial_epoch, 0, None)`."""
    resume = model.__dict__.pop("_resume_at", None)
    if resume is None:
        return initial_epoch, 0, None
    epoch, step, logs = resume
    return int(epoch), int(step), logs or None
