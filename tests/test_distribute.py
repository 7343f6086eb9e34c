"""MirroredStrategy: replicas in one process, gradients all-reduced between a gradient graph
and an apply graph; weights after training equal one-device training (issue 12)."""
import contextlib
import threading

import numpy as np
import pytest

import kgraph as tf
from kgraph import keras
from kgraph.distribute import collectives, split_step

CPUS = ["/cpu:0", "/cpu:1", "/cpu:2"]


def data(n=250, features=12, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, features)).astype("float32"),
            rng.integers(0, classes, n).astype("int64"))


def mlp(strategy=None, optimizer="adam", features=12, classes=4):
    tf.random.set_seed(7)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = keras.Sequential([keras.Input((features,)),
                                  keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(classes)])
        model.compile(optimizer=optimizer,
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[keras.metrics.SparseCategoricalAccuracy()])
    return model


def assert_same_weights(a, b, atol=1e-5):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, atol=atol, rtol=0)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_mirrored_equals_single_device(optimizer):
    x, y = data()
    single = mlp(None, optimizer)
    h1 = single.fit(x, y, batch_size=64, epochs=2, verbose=0)
    strategy = tf.distribute.MirroredStrategy(CPUS)
    assert strategy.num_replicas_in_sync == 3
    mirrored = mlp(strategy, optimizer)
    h2 = mirrored.fit(x, y, batch_size=64, epochs=2, verbose=0)  # 250 = 3*64 + 58: uneven
    assert_same_weights(single, mirrored)
    for name in h1.history:
        np.testing.assert_allclose(h1.history[name], h2.history[name], rtol=1e-5)
    program = next(iter(mirrored._programs.values()))
    assert type(program).__name__ == "ReplicatedTrainStep" and program.num_replicas == 3


def test_replicas_run_in_threads_on_their_slices(monkeypatch):
    x, y = data(n=64)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    model = mlp(strategy, "sgd")
    seen = []
    original = split_step.ReplicaProgram.run

    def spy(self, arrays):
        seen.append((threading.current_thread().name, len(arrays[0])))
        return original(self, arrays)
    monkeypatch.setattr(split_step.ReplicaProgram, "run", spy)
    model.train_on_batch(x[:10], y[:10])
    assert sorted(n for _, n in seen) == [5, 5]
    assert all(name.startswith("kgraph-replica") for name, _ in seen)


def test_steps_per_execution_and_evaluate_under_strategy():
    x, y = data(n=128)
    single = mlp(None, "sgd")
    single.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                   steps_per_execution=2)
    single.fit(x, y, batch_size=32, verbose=0, shuffle=False)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    model = mlp(strategy, "sgd")
    with strategy.scope():
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                      steps_per_execution=2)
    model.fit(x, y, batch_size=32, verbose=0, shuffle=False)
    assert_same_weights(single, model)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0),
                               single.evaluate(x, y, verbose=0), rtol=1e-5)


def test_one_replica_uses_the_fused_step():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    model = mlp(strategy, "sgd")
    x, y = data(n=32)
    model.fit(x, y, batch_size=16, verbose=0)
    assert all(type(p).__name__ == "Program" for p in model._programs.values())


def test_bad_devices_are_quoted():
    with pytest.raises(ValueError, match="'/tpu:x'"):
        tf.distribute.MirroredStrategy(["/cpu:0", "/tpu:x"])
    with pytest.raises(ValueError, match="empty"):
        tf.distribute.MirroredStrategy([])


def test_scope_is_the_current_strategy():
    strategy = tf.distribute.MirroredStrategy(CPUS)
    assert not tf.distribute.has_strategy()
    with strategy.scope() as s:
        assert s is strategy and tf.distribute.get_strategy() is strategy
    assert tf.distribute.get_strategy().num_replicas_in_sync == 1


# -- collectives -------------------------------------------------------------------------

def run_ranks(comms, fn):
    results = [None] * len(comms)

    def target(i):
        results[i] = fn(comms[i])
    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(comms))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_in_process_collectives():
    comms = collectives.InProcessGroup(3).communicators()
    out = run_ranks(comms, lambda c: c.allreduce(np.full(4, c.rank + 1.0)))
    for o in out:
        np.testing.assert_array_equal(o, np.full(4, 6.0))
    out = run_ranks(comms, lambda c: c.allreduce(np.array([c.rank]), op="max"))
    assert [int(o[0]) for o in out] == [2, 2, 2]
    out = run_ranks(comms, lambda c: c.broadcast(np.array([c.rank * 10]), root=1))
    assert [int(o[0]) for o in out] == [10, 10, 10]
    out = run_ranks(comms, lambda c: [int(a[0]) for a in c.allgather(np.array([c.rank]))])
    assert out == [[0, 1, 2]] * 3
    assert run_ranks(comms, lambda c: c.barrier()) == [None] * 3


def test_fused_allreduce_buckets():
    arrays = [np.ones((3, 4), "float32"), np.arange(5, dtype="int64"),
              np.full(10, 2.0, "float32"), np.ones(100, "float32")]
    assert collectives.buckets(arrays, bucket_bytes=100) == [[0, 2], [3], [1]]
    comms = collectives.InProcessGroup(2).communicators()
    out = run_ranks(comms, lambda c: collectives.allreduce_fused(c, arrays, bucket_bytes=100))
    for reduced in out:
        for a, r in zip(arrays, reduced):
            assert r.dtype == a.dtype and r.shape == a.shape
            np.testing.assert_array_equal(r, 2 * a)


def test_a_missing_rank_fails_instead_of_hanging():
    group = collectives.InProcessGroup(2, timeout=0.5)
    with pytest.raises(collectives.CollectiveError, match="did not arrive"):
        group.communicators()[0].allreduce(np.ones(2))


def test_bad_reduction_op_is_quoted():
    comm = collectives.InProcessGroup(1).communicators()[0]
    with pytest.raises(ValueError, match="'mean'"):
        comm.allreduce(np.ones(2), op="mean")


def test_nccl_is_a_marked_stub():
    with pytest.raises(NotImplementedError, match="stub"):
        collectives.NCCLCommunicator()


def test_replica_slices_split_evenly():
    assert split_step.replica_slices(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert split_step.replica_slices(1, 2) == [(0, 1), (1, 1)]


def test_variables_created_outside_the_scope_are_refused():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="outside")])
    strategy = tf.distribute.MirroredStrategy(CPUS)
    with strategy.scope():
        with pytest.raises(tf.distribute.DistributionScopeError,
                           match=r"'outside/kernel'.*created outside that scope"):
            model.compile(optimizer="sgd", loss="mse")


def test_fewer_samples_than_replicas():
    x, y = data(n=2)
    single, mirrored = mlp(None, "sgd"), mlp(tf.distribute.MirroredStrategy(CPUS), "sgd")
    single.train_on_batch(x, y)
    mirrored.train_on_batch(x, y)  # the third replica has no rows and sends zeros
    assert_same_weights(single, mirrored)
