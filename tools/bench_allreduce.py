"""All-reduce bandwidth on this machine and the cost of per-call overhead (issue 12).

Usage: python tools/bench_allreduce.py [--ranks 2] [--max-mb 64] [--transport shm|tcp] [--json PATH]
       python tools/bench_allreduce.py --steps-per-execution   (core MLP, K=1 vs K=32)

1. MPI: the script relaunches itself as `--ranks` ranks with mpiexec (`kgraph launch`) and
   times `MPICommunicator.allreduce` of float32 buffers from 4 KiB to `--max-mb` MiB (median
   of repeats). `--transport shm` (default) lets MPICH pick, which on one host is shared
   memory; `--transport tcp` makes ranks on one host talk as if remote, through the network
   module over TCP on the loopback interface (MPIR_CVAR_NOLOCAL=1, ofi netmod, FI_PROVIDER=tcp,
   FI_TCP_IFACE=lo). Bus bandwidth is the NCCL-tests convention:
   algbw = bytes / time, busbw = algbw * 2 (n - 1) / n (what each link carries in a ring).
2. In-process: the same sizes through an `InProcessGroup` of `--ranks` threads.
3. `--steps-per-execution`: the benchmark MLP 784-256-256-10 (tools/bench.py), Adam, on
   onnxruntime: ms per training step with steps_per_execution=1 and 32, batches 32 and 128.
Do not run it while tests run (2 shared cores).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def sizes(max_mb):
    out, size = [], 4096
    while size <= max_mb * 2 ** 20:
        out.append(size)
        size *= 4
    return out


def timed(fn, min_repeats=5, budget_s=0.5):
    times, start = [], time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < budget_s:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if len(times) >= 200:
            break
    return statistics.median(times)


def row(kind, ranks, nbytes, seconds):
    algbw = nbytes / seconds / 1e9
    return {"backend": kind, "ranks": ranks, "bytes": nbytes, "ms": seconds * 1e3,
            "algbw_GBps": algbw, "busbw_GBps": algbw * 2 * (ranks - 1) / ranks}


# what --transport tcp sets for the ranks (MPICH's ch4 device as the mpich wheel builds it)
TCP_LOOPBACK = {"MPIR_CVAR_NOLOCAL": "1", "MPIR_CVAR_CH4_NETMOD": "ofi", "FI_PROVIDER": "tcp",
                "FI_TCP_IFACE": "lo"}


def mpi_worker(max_mb, out):
    from kgraph.distribute.collectives import MPICommunicator

    comm = MPICommunicator()
    rows = []
    for nbytes in sizes(max_mb):
        buf = np.ones(nbytes // 4, np.float32)
        comm.allreduce(buf)  # warm up
        comm.barrier()
        count = max(5, min(100, (256 << 20) // nbytes))  # the same on every rank
        times = []
        for _ in range(count):
            comm.barrier()
            t = time.perf_counter()
            comm.allreduce(buf)
            times.append(time.perf_counter() - t)
        worst = comm.allreduce(np.array([statistics.median(times)]), op="max")[0]
        rows.append(row("mpi", comm.size, nbytes, worst))
    if comm.rank == 0:
        with open(out, "w") as f:
            json.dump(rows, f)


def in_process(ranks, max_mb):
    from kgraph.distribute.collectives import InProcessGroup

    comms = InProcessGroup(ranks).communicators()
    rows = []
    for nbytes in sizes(max_mb):
        buf = np.ones(nbytes // 4, np.float32)

        def once():
            threads = [threading.Thread(target=c.allreduce, args=(buf,)) for c in comms[1:]]
            for t in threads:
                t.start()
            comms[0].allreduce(buf)
            for t in threads:
                t.join()
        rows.append(row("in-process", ranks, nbytes, timed(once)))
    return rows


def steps_per_execution():
    from bench import LAYERS, make_data

    from kgraph import keras

    rows = []
    for batch in (32, 128):
        x, y = make_data(batch * 64 * 4)
        for k in (1, 32):
            model = keras.Sequential([keras.Input((LAYERS[0][0],))] + [
                keras.layers.Dense(n, activation="relu" if n != 10 else "softmax")
                for _, n in LAYERS])
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                          steps_per_execution=k)
            model.fit(x[:batch * 64], y[:batch * 64], batch_size=batch, verbose=0)  # compile
            epochs = []
            for r in range(1, 4):
                part = slice(batch * 64 * r, batch * 64 * (r + 1))
                t = time.perf_counter()
                model.fit(x[part], y[part], batch_size=batch, verbose=0, shuffle=False)
                epochs.append((time.perf_counter() - t) / 64)
            rows.append({"batch": batch, "steps_per_execution": k,
                         "ms_per_step": statistics.median(epochs) * 1e3})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--max-mb", type=int, default=64)
    parser.add_argument("--transport", choices=("shm", "tcp"), default="shm")
    parser.add_argument("--json")
    parser.add_argument("--steps-per-execution", action="store_true")
    parser.add_argument("--mpi-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mpi_worker:
        return mpi_worker(args.max_mb, args.mpi_worker)
    if args.steps_per_execution:
        rows = steps_per_execution()
    else:
        import tempfile

        from kgraph.distribute import launch

        out = os.path.join(tempfile.mkdtemp(), "mpi.json")
        if args.transport == "tcp":
            os.environ.update(TCP_LOOPBACK)  # inherited by mpiexec and the ranks
        status = launch.launch(args.ranks, os.path.abspath(__file__),
                               ["--max-mb", str(args.max_mb), "--mpi-worker", out])
        if status:
            sys.exit(f"mpiexec failed with status {status}")
        with open(out) as f:
            rows = [dict(r, backend=f"mpi-{args.transport}") for r in json.load(f)]
        rows += in_process(args.ranks, args.max_mb)
    for r in rows:
        print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in r.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
