"""BackupAndRestore: a training process SIGKILLed at random moments (inside steps, inside
backup writes) and started again ends with final weights bit-identical to an uninterrupted
run; the backup's parts (metrics, random state, data order) each matter."""
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import kgraph
from kgraph import keras
from kgraph.keras.callbacks import training_state

# The training script a test runs (and kills) in a subprocess: an MLP with dropout, Adam,
# a metric, validation, shuffled arrays or a shuffled kgraph.data pipeline. Arguments:
# backup_dir out.npz data(arrays|dataset) backend [die_at_dataset_write N].
CHILD = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import kgraph
    from kgraph import keras

    backup_dir, out, data, backend = sys.argv[1:5]
    if len(sys.argv) > 5:  # SIGKILL in the middle of writing the Nth array of a backup
        import h5py
        calls, die_at = [0], int(sys.argv[5])
        real = h5py.Group.create_dataset

        def create_dataset(self, *args, **kwargs):
            calls[0] += 1
            if calls[0] == die_at:
                os.kill(os.getpid(), 9)
            return real(self, *args, **kwargs)
        h5py.Group.create_dataset = create_dataset
    kgraph.random.set_seed(7)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(192, 6)).astype("float32")
    y = (x[:, :3].sum(1) > 0).astype("float32")
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(12, activation="relu"),
                              keras.layers.Dropout(0.25),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy", metrics=["accuracy"],
                  backend=None if backend == "default" else backend)

    class Pace(keras.callbacks.Callback):  # tells the parent where training resumed and
        def on_train_begin(self, logs=None):  # when its first step ran; slows it a bit
            resume = model.__dict__.get("_resume_at")
            print("resumed", None if resume is None else resume[:2], flush=True)
        def on_train_batch_end(self, batch, logs=None):
            print("step", flush=True)
            time.sleep(0.005)

    callbacks = [keras.callbacks.BackupAndRestore(backup_dir, save_freq=2), Pace()]
    if data == "dataset":
        train = kgraph.data.Dataset.from_tensor_slices((x, y)).shuffle(64).batch(16)
        history = model.fit(train, epochs=4, callbacks=callbacks, verbose=0,
                            validation_data=(x[:32], y[:32]))
    else:
        history = model.fit(x, y, batch_size=16, epochs=4, callbacks=callbacks, verbose=0,
                            validation_data=(x[:32], y[:32]))
    np.savez(out, *model.get_weights(), last_logs=np.array(
        [history.history[k][-1] for k in sorted(history.history)]))
""")


def _start(script, args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(script, args, timeout=120):
    """(exit code, stderr, where training resumed) of one run to its end."""
    proc = _start(script, args)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err, out.splitlines()[0].strip() if out else None


def _weights(path):
    with np.load(path) as f:
        return [f[k] for k in f.files]


def _kill_and_resume(tmp_path, data, backend, kills, write_kills=()):
    """Run the script once uninterrupted, then again with SIGKILLs (random moments after
    training started, then deterministic ones inside backup writes) and restarts until it
    finishes; return both results."""
    script = tmp_path / "train.py"
    script.write_text(CHILD)
    reference, resumed = tmp_path / "reference.npz", tmp_path / "resumed.npz"
    code, err, _ = _run(script, [tmp_path / "b0", reference, data, backend])
    assert code == 0, err
    backup, resumes = tmp_path / "b1", []
    rng = random.Random(1234)
    for die_at in write_kills:
        code, _, resume = _run(script, [backup, resumed, data, backend, die_at])
        assert code == -signal.SIGKILL and not resumed.exists()
        resumes.append(resume)
    for _ in range(kills):
        proc = _start(script, [backup, resumed, data, backend])
        resumes.append(proc.stdout.readline().strip())
        for _ in range(rng.randint(1, 9)):  # a random batch, then a random moment
            if proc.stdout.readline().strip() != "step":
                break  # resumed at the very end: nothing left to kill
        time.sleep(rng.uniform(0.0, 0.008))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        if resumed.exists():
            break
    while not resumed.exists():
        code, err, resume = _run(script, [backup, resumed, data, backend])
        assert code == 0, err
        resumes.append(resume)
    assert not os.listdir(backup), "the backup is deleted when training ends"
    points = {r for r in resumes if r != "resumed None"}
    assert len(points) >= min(3, kills), f"too few runs resumed from a backup: {resumes}"
    return _weights(reference), _weights(resumed)


@pytest.mark.slow
@pytest.mark.parametrize("data,kills", [("arrays", 10), ("dataset", 5)])
def test_sigkill_at_random_moments_resumes_bit_identical(tmp_path, data, kills):
    reference, resumed = _kill_and_resume(tmp_path, data, "default", kills,
                                          write_kills=(9, 60))
    assert len(reference) == len(resumed)
    for a, b in zip(reference, resumed):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.tvm
@pytest.mark.slow
def test_sigkill_resume_bit_identical_on_tvm(tmp_path):
    pytest.importorskip("tvm")
    reference, resumed = _kill_and_resume(tmp_path, "arrays", "tvm", kills=2, write_kills=(5,))
    for a, b in zip(reference, resumed):
        assert a.tobytes() == b.tobytes()
