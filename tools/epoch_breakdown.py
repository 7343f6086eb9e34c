"""Where a kgraph training epoch goes, against the suite's numpy floor (not a test).

Usage: python tools/epoch_breakdown.py [--model mlp] [--rounds 6]

For one tools/bench_layers model, in one process and in turn each round: a `fit` epoch; the
time inside onnxruntime's runs during it (the rest is the host: binding, Python, and the
batch gathering where `fit` gathers on the host); the step's matrix products alone
(tools/bench_layers.GEMMS: forward, weight and input gradients at the same shapes and
transposes) as one onnxruntime session of just those Gemm nodes, run once per step; kgraph's AdamUpdate of the model's trainable weights alone,
likewise; the epoch's shuffled batches gathered alone on the host (kgraph's data adapter: every
framework pays this copy, the floor leaves it out; kgraph's `fit` on arrays now makes it inside
the step, a Gather in the runs); and the numpy floor (bench_layers.measure_floor). Prints each
round and the medians of the ratios to the floor: the products alone against the floor say
what onnxruntime's GEMMs cost at these shapes, the runs minus the products what the other
kernels cost. Numpy's products for the floor leave OpenBLAS's threads spinning for ~0.1 s,
which slowed the next epoch by 20-25%: each round waits that out.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_layers as bl  # noqa: E402


def gemm_session(model):
    """A session of the step's products alone and a function running it `steps` times."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from kgraph.runtime.onnx_exec import _session_options

    rng = np.random.default_rng(bl.SEED)
    nodes, feeds = [], {}

    def gemm(a_shape, b_shape, trans_a=0, trans_b=0):
        i = len(nodes)
        a = rng.random(a_shape[::-1] if trans_a else a_shape, dtype=np.float32)
        b = rng.random(b_shape[::-1] if trans_b else b_shape, dtype=np.float32)
        feeds[f"a{i}"], feeds[f"b{i}"] = a, b
        nodes.append(helper.make_node("Gemm", [f"a{i}", f"b{i}"], [f"y{i}"], transA=trans_a,
                                      transB=trans_b))

    for m, k, n, reps, ik in bl.GEMMS[model]:
        for _ in range(reps):
            gemm((m, k), (k, n))                # x @ w
            gemm((k, m), (m, n), trans_a=1)     # x.T @ g
            if ik:
                gemm((m, n), (n, ik), trans_b=1)  # g @ w[:ik].T
    info = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, None)  # noqa: E731
    proto = helper.make_model(
        helper.make_graph(nodes, "gemms", [info(k) for k in feeds],
                          [info(n.output[0]) for n in nodes]),
        opset_imports=[helper.make_opsetid("", 18)])
    proto.ir_version = 9
    session = ort.InferenceSession(proto.SerializeToString(), _session_options(native=True))
    return _bound_runner(session, feeds, [n.output[0] for n in nodes])


def adam_session(shapes):
    """kgraph's AdamUpdate over variables of `shapes` alone, one session, and a function
    running it `steps` times (the updates of a step, without the products that feed them),
    each written into its variable's and slots' buffers as the trainer writes them."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from kgraph.runtime.onnx_exec import _session_options

    rng = np.random.default_rng(bl.SEED)
    nodes, feeds = [], {"alpha": np.array(1e-3, np.float32)}
    for i, shape in enumerate(shapes):
        names = [f"{part}{i}" for part in ("var", "g", "m", "v")]
        for name in names:
            feeds[name] = rng.random(shape, dtype=np.float32)
        nodes.append(helper.make_node("AdamUpdate", names + ["alpha"],
                                      [f"var{i}_new", f"m{i}_new", f"v{i}_new"],
                                      domain="kgraph", decay_m=0.1, decay_v=0.001,
                                      epsilon=1e-7))
    info = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, None)  # noqa: E731
    proto = helper.make_model(
        helper.make_graph(nodes, "adam", [info(k) for k in feeds],
                          [info(o) for n in nodes for o in n.output]),
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("kgraph", 1)])
    proto.ir_version = 9
    session = ort.InferenceSession(proto.SerializeToString(), _session_options(native=True))
    return _bound_runner(session, feeds, [o for n in nodes for o in n.output],
                         {o: i for n in nodes for o, i in zip(n.output, [n.input[0]] +
                                                              list(n.input[2:4]))})


def _bound_runner(session, feeds, outputs, in_place=None):
    """A function running `session` on `feeds` through one binding `steps` times; `in_place`:
    {output: input} written into the input's buffer."""
    import onnxruntime as ort

    binding, values = session.io_binding(), {}
    for name, value in feeds.items():
        values[name] = ort.OrtValue.ortvalue_from_numpy(value)
        binding.bind_ortvalue_input(name, values[name])
    for name in outputs:
        if in_place and name in in_place:
            binding.bind_ortvalue_output(name, values[in_place[name]])
        else:
            binding.bind_output(name)
    options = ort.RunOptions()

    def run(steps):
        start = time.perf_counter()
        for _ in range(steps):
            session._sess.run_with_iobinding(binding._iobinding, options)
        return time.perf_counter() - start
    return run


def gather_epoch(x, y, batch):
    """A function timing one epoch of shuffled batch gathers alone, on the host."""
    from kgraph.keras import data_adapter

    adapter = data_adapter.make_adapter(x, y, batch_size=batch, shuffle=True)

    def run():
        start = time.perf_counter()
        for _ in adapter.batches():
            pass
        return time.perf_counter() - start
    return run


class RunTimer:
    """Adds up the time spent inside onnxruntime's runs of every kgraph step binder."""

    def __init__(self):
        from kgraph.runtime import onnx_exec

        self.total = 0.0
        timer, original = self, onnx_exec.OrtBinder.run

        class Session:  # the binder's session with its run timed
            def __init__(self, real):
                self._real = real

            def __getattr__(self, name):
                return getattr(self._real, name)

            def run_with_iobinding(self, *args):
                start = time.perf_counter()
                self._real.run_with_iobinding(*args)
                timer.total += time.perf_counter() - start

        def run(binder, feeds, into=None):
            if not isinstance(binder.session._sess, Session):
                binder.session = type("Timed", (), {"_sess": Session(binder.session._sess)})()
            return original(binder, feeds, into)
        onnx_exec.OrtBinder.run = run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mlp", choices=sorted(bl.GEMMS))
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    model, n = args.model, bl.FULL["n"][args.model]
    bench = bl.KerasLayers("kgraph", model)
    bench.build()
    bench.compile()
    x, y = bl.make_data(model, n)
    bench.fit_epochs(x[:10 * bl.batch_of(model)], y[:10 * bl.batch_of(model)], 1)
    steps = -(-n // bl.batch_of(model))
    gemms, timer = gemm_session(model), RunTimer()
    gathers = gather_epoch(x, y, bl.batch_of(model))
    adam = adam_session([tuple(w.shape) for w in bench.model.trainable_weights])
    gemms(10), adam(10)
    time.sleep(0.5)
    rows = []
    for _ in range(args.rounds):
        timer.total = 0.0
        start = time.perf_counter()
        bench.fit_epochs(x, y, 1)
        epoch = time.perf_counter() - start
        runs, alone, updates, gathered = timer.total, gemms(steps), adam(steps), gathers()
        floor = bl.measure_floor(model, n, bl.FULL["floor_steps"], 3)["epoch_s"]
        time.sleep(0.5)  # numpy's OpenBLAS threads spin on after its products, taking a core
        rows.append((epoch, runs, alone, updates, gathered, floor))
        print(f"epoch {epoch:.3f} s | runs {runs:.3f} | products alone {alone:.3f} | Adam alone "
              f"{updates:.3f} | gathers alone {gathered:.3f} | floor {floor:.3f} | over the "
              f"floor: epoch {epoch / floor:.2f}, runs {runs / floor:.2f}, products "
              f"{alone / floor:.2f}, Adam {updates / floor:.2f}, gathers {gathered / floor:.2f}",
              flush=True)
    a = np.array(rows)
    over = np.median(a[:, :5] / a[:, 5:], axis=0)
    print(f"{model}, medians of {args.rounds} rounds, over the floor: epoch {over[0]:.2f}, runs "
          f"{over[1]:.2f}, products alone {over[2]:.2f}, Adam alone {over[3]:.2f}, gathers "
          f"alone {over[4]:.2f}; the runs' other kernels "
          f"{np.median(a[:, 1] - a[:, 2] - a[:, 3]) * 1e3:.1f} ms, the host "
          f"{np.median(a[:, 0] - a[:, 1]) * 1e3:.1f} ms an epoch")


if __name__ == "__main__":
    main()
