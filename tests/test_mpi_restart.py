"""Multi-worker fault tolerance and chief-only writing (issue 12): a 2-rank job killed
mid-epoch restarts with `BackupAndRestore`, resumes where the chief's backup left it and
finishes with the weights of an uninterrupted run; only worker 0 writes checkpoints, backups,
CSV logs and TensorBoard events."""
import csv
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kgraph import keras
from kgraph.distribute.strategy import Strategy

TRAIN = textwrap.dedent('''
    import os, sys
    import numpy as np
    import kgraph as tf
    from kgraph import keras

    out, phase, work = sys.argv[1], sys.argv[2], sys.argv[3]
    if phase == "single":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    tf.random.set_seed(3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 10)).astype("float32")
    y = rng.integers(0, 3, 160).astype("int64")
    with strategy.scope():
        model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(3)])
        model.compile(optimizer="adam", metrics=["accuracy"],
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    epochs = []

    def on_batch_end(batch, logs):
        if phase == "kill" and strategy.task_id == 1 and epochs[-1] == 1 and batch == 2:
            os.kill(os.getpid(), 9)  # a worker dies mid-epoch, after a backup at batch 2

    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(work, "backup"), save_freq=2),
        keras.callbacks.ModelCheckpoint(os.path.join(work, "ckpt", "e{epoch}.weights.h5"),
                                        save_weights_only=True),
        keras.callbacks.CSVLogger(os.path.join(work, "log.csv"), append=True),
        keras.callbacks.TensorBoard(os.path.join(work, "tb")),
        keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: epochs.append(e),
                                       on_train_batch_end=on_batch_end),
    ]
    model.fit(x, y, batch_size=40, epochs=3, verbose=0, callbacks=callbacks)
    if strategy.should_checkpoint:
        np.savez(out, *model.get_weights(), epochs=np.array(epochs))
''')


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd()] + sys.path)
    return env


def _run(script, out, phase, work, workers=2):
    from kgraph.distribute import launch

    args = [str(out), phase, str(work)]
    cmd = (launch.command(workers, script, args) if workers > 1
           else [sys.executable, script] + args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=_env())


@pytest.mark.mpi
def test_killed_two_worker_job_resumes_from_backup_and_finishes(tmp_path):
    pytest.importorskip("mpi4py")
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    work, single = tmp_path / "job", tmp_path / "single"
    killed = _run(str(script), tmp_path / "never.npz", "kill", work)
    assert killed.returncode != 0 and not (tmp_path / "never.npz").exists()
    assert os.listdir(work / "backup")  # the chief backed up before the kill
    resumed = _run(str(script), tmp_path / "multi.npz", "resume", work)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    plain = _run(str(script), tmp_path / "one.npz", "single", single, workers=1)
    assert plain.returncode == 0, plain.stderr[-3000:]

    multi, one = np.load(tmp_path / "multi.npz"), np.load(tmp_path / "one.npz")
    assert list(multi["epochs"]) == [1, 2]  # resumed in the epoch the kill interrupted
    assert list(one["epochs"]) == [0, 1, 2]
    for k in [k for k in one.files if k.startswith("arr_")]:
        np.testing.assert_allclose(multi[k], one[k], atol=1e-5, rtol=0)
    assert not os.listdir(work / "backup")  # deleted by the chief when training finished
    # one writer: the CSV holds each epoch once (the killed run logged epoch 0), one event
    # file per TensorBoard run and restart, checkpoints of every epoch
    with open(work / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    events = [n for n in os.listdir(work / "tb" / "train") if "tfevents" in n]
    assert len(events) == 2, events
    assert sorted(os.listdir(work / "ckpt")) == [f"e{i}.weights.h5" for i in (1, 2, 3)]


class _Worker(Strategy):
    """Stands in for a multi-worker strategy as seen from worker `task_id` (fused step)."""

    def __init__(self, task_id):
        self.task_id = task_id

    @property
    def should_checkpoint(self):
        return self.task_id == 0


def test_non_chief_workers_write_nothing(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.__dict__["_distribute_strategy"] = _Worker(1)
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 2), "float32")
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"), save_freq=1,
                                              delete_checkpoint=False)
    callbacks = [backup,
                 keras.callbacks.ModelCheckpoint(str(tmp_path / "m.weights.h5"),
                                                 save_weights_only=True),
                 keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
                 keras.callbacks.TensorBoard(str(tmp_path / "tb"))]
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=callbacks)
    assert os.listdir(tmp_path) == []
    model.__dict__["_distribute_strategy"] = _Worker(0)  # the chief writes all four
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=callbacks)
    assert sorted(os.listdir(tmp_path)) == ["backup", "log.csv", "m.weights.h5", "tb"]
