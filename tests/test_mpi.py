"""MultiWorkerMirroredStrategy over MPI: 2 local worker processes on loopback (mpiexec +
`python -m mpi4py`), equality with one process at the same global batch, a killed worker
ending the job, `kgraph launch` (issue 12)."""
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip("mpi4py")
pytestmark = pytest.mark.mpi

from kgraph.distribute import launch  # noqa: E402

TRAIN = textwrap.dedent('''
    import sys
    import numpy as np
    import kgraph as tf
    from kgraph import keras

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    tf.random.set_seed(3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 10)).astype("float32")
    y = rng.integers(0, 3, 200).astype("int64")
    with strategy.scope():
        model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(3)])
        model.compile(optimizer="adam", metrics=["accuracy"],
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callbacks = [keras.callbacks.LambdaCallback(on_train_batch_end=KILL)] if KILL else []
    history = model.fit(x, y, batch_size=50, epochs=2, verbose=0, callbacks=callbacks)
    if strategy.should_checkpoint:
        np.savez(sys.argv[1], *model.get_weights(),
                 loss=np.array(history.history["loss"]),
                 replicas=np.array(strategy.num_replicas_in_sync))
''')

SINGLE = TRAIN.replace("strategy = tf.distribute.MultiWorkerMirroredStrategy()",
                       "strategy = tf.distribute.MirroredStrategy(['/cpu:0'])")


def write(tmp_path, source, kill=None):
    script = tmp_path / "train.py"
    script.write_text(f"KILL = {kill}\n" + source)
    return str(script)


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([os.getcwd()] + sys.path)
    return e


def run_workers(script, out, n=2, timeout=120):
    cmd = launch.command(n, script, [str(out)])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env())


@pytest.mark.slow
def test_two_workers_equal_one_process(tmp_path):
    result = run_workers(write(tmp_path, TRAIN), tmp_path / "multi.npz")
    assert result.returncode == 0, result.stderr[-3000:]
    single = subprocess.run([sys.executable, write(tmp_path, SINGLE), str(tmp_path / "one.npz")],
                            capture_output=True, text=True, timeout=120, env=env())
    assert single.returncode == 0, single.stderr[-3000:]
    multi, one = np.load(tmp_path / "multi.npz"), np.load(tmp_path / "one.npz")
    assert int(multi["replicas"]) == 2 and int(one["replicas"]) == 1
    weights = [k for k in one.files if k.startswith("arr_")]
    assert weights
    for k in weights:
        np.testing.assert_allclose(multi[k], one[k], atol=1e-5, rtol=0)
    np.testing.assert_allclose(multi["loss"], one["loss"], rtol=1e-5)


KILL_RANK_1 = ("lambda batch, logs: __import__('os').kill(__import__('os').getpid(), 9) "
               "if batch == 1 and strategy.task_id == 1 else None")


@pytest.mark.slow
def test_killing_a_worker_ends_the_job_nonzero(tmp_path):
    script = write(tmp_path, TRAIN, kill=KILL_RANK_1)
    cmd = launch.command(2, script, [str(tmp_path / "never.npz")])
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the job hung after a worker was killed")
    assert process.returncode != 0
    assert not (tmp_path / "never.npz").exists()


def test_kill_is_noticed_within_five_seconds(tmp_path):
    """Rank 1 dies while rank 0 waits in an all-reduce: mpiexec ends the job in < 5 s."""
    script = tmp_path / "die.py"
    script.write_text(textwrap.dedent('''
        import os, sys, time
        import numpy as np
        from kgraph.distribute.collectives import MPICommunicator
        comm = MPICommunicator()
        comm.allreduce(np.ones(4))
        if comm.rank == 1:
            open(sys.argv[1], "w").close()
            os.kill(os.getpid(), 9)
        comm.allreduce(np.ones(4))
        open(sys.argv[1] + ".survived", "w").close()
    '''))
    marker = tmp_path / "killed"
    process = subprocess.Popen(launch.command(2, str(script), [str(marker)]),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    killed_at = time.monotonic()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the job still ran 5 s after a worker was killed")
    assert marker.exists(), process.stderr.read()[-2000:]
    assert time.monotonic() - killed_at < 5
    assert process.returncode != 0
    assert not (tmp_path / "killed.survived").exists()


def test_mpi_collectives(tmp_path):
    script = tmp_path / "coll.py"
    script.write_text(textwrap.dedent('''
        import sys
        import numpy as np
        from kgraph.distribute.collectives import MPICommunicator, allreduce_fused
        c = MPICommunicator()
        arrays = [np.full((2, 3), c.rank + 1.0, "float32"), np.array([c.rank], "int64")]
        fused = allreduce_fused(c, arrays, bucket_bytes=8)
        gathered = c.allgather(np.array([c.rank]))
        value = c.broadcast(np.array([42 + c.rank]), root=1)
        c.barrier()
        if c.rank == 0:
            np.savez(sys.argv[1], f0=fused[0], f1=fused[1], g=np.concatenate(gathered),
                     b=value, mx=c.allreduce(np.array([c.rank]), op="max"))
        else:
            c.allreduce(np.array([c.rank]), op="max")
    '''))
    result = run_workers(str(script), tmp_path / "c.npz", n=3)
    assert result.returncode == 0, result.stderr[-3000:]
    out = np.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(out["f0"], np.full((2, 3), 6.0))
    assert out["f0"].dtype == np.float32 and out["f1"].tolist() == [3]
    assert out["g"].tolist() == [0, 1, 2] and out["b"].tolist() == [43]
    assert out["mx"].tolist() == [2]


def test_launch_cli_runs_the_script_and_reports_failure(tmp_path):
    ok = tmp_path / "ok.py"
    ok.write_text("from mpi4py import MPI\nimport sys\n"
                  "open(sys.argv[1] + str(MPI.COMM_WORLD.Get_rank()), 'w').close()\n")
    cli = [sys.executable, "-m", "kgraph.cli", "launch", "-n", "2"]
    result = subprocess.run(cli + [str(ok), str(tmp_path / "rank")], capture_output=True,
                            text=True, timeout=60, env=env())
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "rank0").exists() and (tmp_path / "rank1").exists()
    bad = tmp_path / "bad.py"
    bad.write_text("raise SystemExit(3)\n")
    assert subprocess.run(cli + [str(bad)], capture_output=True, timeout=60,
                          env=env()).returncode != 0
    missing = subprocess.run(cli + [str(tmp_path / "nope.py")], capture_output=True,
                             text=True, timeout=60, env=env())
    assert missing.returncode == 1 and "no such script" in missing.stderr


def test_launch_rejects_bad_worker_counts(tmp_path):
    with pytest.raises(launch.LaunchError, match="-n 0"):
        launch.command(0, __file__)
