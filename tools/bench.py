"""kgraph benchmark: MLP 784-256-256-10 with Adam vs PyTorch, Keras/TF and the numpy-sgemm floor.

Usage: tools/bench [--quick] [--json PATH] [--only kgraph,torch,tf]   (see tools/README.md)
Each framework runs in its own child process (`--worker FW`), its cold start in another one
(`--cold FW`). Only time/os/sys/numpy load at module level; other stdlib modules are imported
where used, so that a cold child times the framework rather than bench.py.
"""
import time
_T0 = time.perf_counter()  # first statement: the clock of a `--cold` child starts here
import os  # noqa: E402
import sys  # noqa: E402
import numpy as np  # noqa: E402  (counted in the cold child's import phase)

LAYERS = [(784, 256), (256, 256), (256, 10)]
BATCH, PREDICT_BATCH, SEED = 128, 1024, 0
FRAMEWORKS = {"kgraph": "kgraph", "torch": "PyTorch", "tf": "Keras/TF"}
FULL = dict(n=60000, epochs=3, lat_calls=2000, lat_budget_s=10.0, predict_reps=3, timeout_s=3600)
QUICK = dict(n=4096, epochs=2, lat_calls=200, lat_budget_s=0.5, predict_reps=1, timeout_s=120)


def make_data(n, seed=SEED):
    rng = np.random.default_rng(seed)
    x = rng.random((n, LAYERS[0][0]), dtype=np.float32)
    return x, rng.integers(0, LAYERS[-1][1], size=n)  # float32 x, int64 labels 0-9


# --------------------------------------------------------------------------- frameworks
class KerasBench:
    """The same Keras code for kgraph (`from kgraph import keras`) and Keras 3 on TensorFlow."""

    def __init__(self, name):
        if name == "kgraph":
            from kgraph import keras
        else:
            from tensorflow import keras
        self.keras = keras

    def build(self):
        keras, Dense = self.keras, self.keras.layers.Dense
        self.model = keras.Sequential([keras.Input((784,)), Dense(256, activation="relu"),
                                       Dense(256, activation="relu"),
                                       Dense(10, activation="softmax")])

    def compile(self):
        self.model.compile(optimizer=self.keras.optimizers.Adam(),
                           loss="sparse_categorical_crossentropy")

    def fit_epochs(self, x, y, epochs):
        times = []
        self.model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0,
                       callbacks=[_epoch_timer(self.keras, times)])
        return times

    def predict(self, x):
        return self.model.predict(x, batch_size=PREDICT_BATCH, verbose=0)

    def latency_fns(self, x1):
        m = self.model
        return {"pob": lambda: m.predict_on_batch(x1), "predict": lambda: m.predict(x1, verbose=0),
                "call": lambda: m(x1)}


def _epoch_timer(keras, times):
    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)
    return EpochTimer()


class TorchBench:
    """The MLP in eager PyTorch; its softmax is folded into CrossEntropyLoss (on logits)."""

    def __init__(self, name="torch"):
        import torch
        self.torch = torch

    def build(self):
        nn = self.torch.nn
        self.torch.manual_seed(SEED)
        self.model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                   nn.Linear(256, 10))

    def compile(self):
        self.opt = self.torch.optim.Adam(self.model.parameters(), lr=1e-3, eps=1e-7)
        self.loss_fn = self.torch.nn.CrossEntropyLoss()

    def step(self, xb, yb):
        self.opt.zero_grad(set_to_none=True)
        self.loss_fn(self.model(xb), yb).backward()
        self.opt.step()

    def fit_epochs(self, x, y, epochs):
        torch, times = self.torch, []
        X, Y, gen = torch.from_numpy(x), torch.from_numpy(y), torch.Generator().manual_seed(SEED)
        for _ in range(epochs):
            t = time.perf_counter()
            perm = torch.randperm(len(X), generator=gen)
            for i in range(0, len(X), BATCH):
                self.step(X[perm[i:i + BATCH]], Y[perm[i:i + BATCH]])
            times.append(time.perf_counter() - t)
        return times

    def predict(self, x):
        torch, b = self.torch, PREDICT_BATCH
        with torch.inference_mode():
            return np.concatenate([torch.softmax(self.model(torch.from_numpy(x[i:i + b])), -1)
                                   .numpy() for i in range(0, len(x), b)])

    def latency_fns(self, x1):  # no predict_on_batch in torch: both predict rows use predict()
        t1 = self.torch.from_numpy(x1)
        return {"pob": lambda: self.predict(x1), "predict": lambda: self.predict(x1),
                "call": lambda: self.model(t1)}


BENCHES = {"kgraph": KerasBench, "torch": TorchBench, "tf": KerasBench}


# --------------------------------------------------------------------------- child processes
def cold_child(fw):
    """Fresh process: import -> build -> compile -> first train step, timed from `_T0`."""
    out = {}
    try:
        bench = BENCHES[fw](fw)
        out["import_s"] = time.perf_counter() - _T0
        bench.build()
        bench.compile()
        out["build_compile_s"] = time.perf_counter() - _T0 - out["import_s"]
        bench.fit_epochs(*make_data(BATCH), epochs=1)  # one epoch of one batch = first step
        out["total_s"] = time.perf_counter() - _T0
    except Exception:
        import traceback
        out["errors"] = {"cold": traceback.format_exc()}
    emit(out)


def emit(out):
    import json
    print("RESULT " + json.dumps(out), flush=True)


def _try(res, key, fn):
    """Run fn(); on failure keep the traceback in res['errors'][key]. True on success."""
    try:
        fn()
        return True
    except Exception:
        import traceback
        res.setdefault("errors", {})[key] = traceback.format_exc()
        return False


def measure_latency(res, key, fn, cfg, warmup=20):
    fn()  # the first call may compile
    times, deadline = [], time.perf_counter() + cfg["lat_budget_s"]
    while len(times) < cfg["lat_calls"] + warmup and time.perf_counter() < deadline:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times = times[min(warmup, len(times) // 4):]  # drop the warm-up calls
    res["lat_%s_ms" % key], res["lat_%s_calls" % key] = float(np.median(times)) * 1e3, len(times)


def measure_epochs(res, bench, x, y, cfg):
    res["epoch_all_s"] = times = bench.fit_epochs(x, y, cfg["epochs"])
    res["epoch_s"] = float(np.mean(times[1:]))


def measure_predict(res, bench, x, cfg):
    bench.predict(x[:2 * PREDICT_BATCH])  # warm-up (compiles the predict graph)
    t = time.perf_counter()
    for _ in range(cfg["predict_reps"]):
        bench.predict(x)
    res["predict_sps"] = len(x) * cfg["predict_reps"] / (time.perf_counter() - t)


def worker(fw, cfg):
    res = {}
    try:
        bench = BENCHES[fw](fw)
    except Exception as e:  # a missing peer is skipped; a kgraph that fails to import is an error
        import traceback
        res["skipped"] = "import failed: %s: %s" % (type(e).__name__, e)
        res["errors"] = {"import": traceback.format_exc()} if fw == "kgraph" else {}
        return emit(res)
    x, y = make_data(cfg["n"])
    if _try(res, "build", bench.build):
        if _try(res, "compile", bench.compile):
            _try(res, "epoch", lambda: measure_epochs(res, bench, x, y, cfg))
        _try(res, "predict", lambda: measure_predict(res, bench, x, cfg))
        for key, fn in bench.latency_fns(x[:1]).items():
            _try(res, "lat_" + key, lambda: measure_latency(res, key, fn, cfg))
    emit(res)


def run_child(args, timeout_s):
    """Run `bench.py ARGS` afresh; return its `RESULT` dict ({"errors": ...} if it failed)."""
    import json
    import subprocess
    t = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, __file__] + args, capture_output=True, text=True,
                           timeout=timeout_s, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    except subprocess.TimeoutExpired:
        return {"errors": {args[0][2:]: "child %s timed out after %d s" % (args, timeout_s)}}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        return {"errors": {args[0][2:]: "child %s failed (rc %d):\n%s" % (
            args, p.returncode, p.stderr[-4000:])}}
    return dict(json.loads(lines[-1][len("RESULT "):]), parent_wall_s=time.perf_counter() - t)


def run_all(only, cfg):
    import json
    results = {}
    for fw in only:
        print("[bench] %s: measuring ..." % fw, file=sys.stderr, flush=True)
        res = results[fw] = run_child(["--worker", fw, "--worker-cfg", json.dumps(cfg)],
                                      cfg["timeout_s"])
        if not res.get("skipped"):
            print("[bench] %s: cold start ..." % fw, file=sys.stderr, flush=True)
            cold = run_child(["--cold", fw], cfg["timeout_s"])
            res["errors"] = dict(res.get("errors", {}), **cold.pop("errors", {}))
            res.update({"cold_" + k: v for k, v in cold.items()})
    return results


# --------------------------------------------------------------------------- numpy floor
def epoch_flops(n):
    macs = sum(i * o for i, o in LAYERS)
    input_grad_macs = sum(i * o for i, o in LAYERS[1:])  # no input grad for the first layer
    return 2 * n * (macs + macs + input_grad_macs)  # forward + weight grads + input grads


def measure_floor(n, steps=20, blocks=25):
    """Time one training step's matmuls (x@W, g@W.T, x.T@g at batch 128) with np.matmul; the
    best block gives the throughput (a floor: the least time numpy needs)."""
    rng = np.random.default_rng(SEED)
    ops = []
    for k, (i, o) in enumerate(LAYERS):
        x, w, g = (rng.random(s, dtype=np.float32) for s in [(BATCH, i), (i, o), (BATCH, o)])
        ops.append((x, w, np.empty((BATCH, o), np.float32)))
        if k:
            ops.append((g, w.T, np.empty((BATCH, i), np.float32)))
        ops.append((x.T, g, np.empty((i, o), np.float32)))
    runs = []
    for _ in range(blocks + 1):  # the first block is a warm-up
        t = time.perf_counter()
        for _ in range(steps):
            for a, b, out in ops:
                np.matmul(a, b, out=out)
        runs.append((time.perf_counter() - t) / steps)
    flops_per_s = epoch_flops(BATCH) / min(runs[1:])
    return {"epoch_s": epoch_flops(n) / flops_per_s, "gflops": flops_per_s / 1e9,
            "epoch_gflop": epoch_flops(n) / 1e9}


# --------------------------------------------------------------------------- report
ROWS = [  # key, label, higher_is_better
    ("epoch_s", "train: s/epoch (mean of epochs 2..)", False),
    ("predict_sps", "predict: samples/s (batch 1024)", True),
    ("lat_pob_ms", "predict_on_batch(x1): ms (median)", False),
    ("lat_predict_ms", "predict(x1, verbose=0): ms (median)", False),
    ("lat_call_ms", "model(x1): ms (median)", False),
    ("cold_import_s", "cold: import s", False),
    ("cold_total_s", "cold: import->first train step s", False),
    ("cold_parent_wall_s", "cold: process wall seen by parent s", False),
]
TARGETS = {  # key: [(text, check(kgraph, tf, floor) -> True/False/None)]; printed, not asserted
    "epoch_s": [("<= 1.3x floor", lambda kg, tf, fl: kg <= 1.3 * fl),
                (">= 3x faster than TF", lambda kg, tf, fl: None if tf is None else tf >= 3 * kg)],
    "lat_pob_ms": [("<= 0.1 ms", lambda kg, tf, fl: kg <= 0.1)],
    "lat_predict_ms": [("<= 1 ms", lambda kg, tf, fl: kg <= 1.0)],
    "cold_total_s": [("<= 1.0 s", lambda kg, tf, fl: kg <= 1.0)],
}


def cell(res, key):
    res = res or {}
    if res.get(key) is not None:
        return ("{:,.0f}" if key == "predict_sps" else "{:.4g}").format(res[key])
    return "skip" if res.get("skipped") else "ERR" if res.get("errors") else "-"


def speedup(kg, other, higher_is_better):
    if kg is None or other is None:
        return "-"
    return "%.2fx" % (kg / other if higher_is_better else other / kg)


def target_cell(key, kg, tf, floor):
    verdict = {True: " (met)", False: " (MISSED)", None: ""}
    text = "; ".join(text + verdict[None if kg is None else ok(kg, tf, floor)]
                     for text, ok in TARGETS.get(key, []))
    if key == "epoch_s":
        text += reach_note(tf, 3, floor, kg)
    return text


def reach_note(tf, times, floor, kg=None):
    """Whether "`times` x faster than TF" is possible at all: TF's epoch / `times` against the
    same run's GEMM floor (the least time numpy's sgemm needs for the epoch's products). A
    kgraph epoch `kg` already under the floor (Winograd convolutions need fewer products)
    shows that the floor does not bound it."""
    if tf is None or not floor:
        return ""
    goal = tf / times
    if goal < floor and kg is not None and kg < floor:
        return (" [TF/%d = %.3g s is below the %.3g s GEMM floor, which kgraph's %.3g s already"
                " beats (fewer products than the GEMMs): the floor does not bound it]"
                % (times, goal, floor, kg))
    if goal < floor:
        return (" [TF/%d = %.3g s is below the %.3g s GEMM floor: out of reach on this machine]"
                % (times, goal, floor))
    return " [TF/%d = %.3g s, GEMM floor %.3g s: reachable in principle]" % (times, goal, floor)


def print_table(results, floor):
    print("| metric | kgraph | PyTorch | Keras/TF | floor | kgraph/floor | kgraph vs TF (x faster)"
          " | kgraph vs PyTorch (x faster) | target (not asserted) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for key, label, hib in ROWS:
        kg, to, tf = ((results.get(fw) or {}).get(key) for fw in ("kgraph", "torch", "tf"))
        fl = floor["epoch_s"] if key == "epoch_s" else None
        print("| %s |" % " | ".join([
            label, *(cell(results.get(fw), key) for fw in ("kgraph", "torch", "tf")),
            "{:.4g}".format(fl) if fl else "-", "%.2fx" % (kg / fl) if fl and kg else "-",
            speedup(kg, tf, hib), speedup(kg, to, hib), target_cell(key, kg, tf, fl)]))


def machine_info():
    import datetime
    import platform
    from importlib import metadata
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    versions, dists = {"python": platform.python_version()}, metadata.packages_distributions()
    for name in "numpy onnxruntime torch tensorflow keras kgraph".split():
        try:
            versions[name] = metadata.version((dists.get(name) or [name])[0])  # tensorflow-cpu
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu,
            "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
            "load_1min": os.getloadavg()[0], "versions": versions}


def print_header(info, cfg, floor):
    print("# kgraph benchmark: MLP 784-256-256-10, Adam, sparse CE, batch %d\n" % BATCH)
    print("date %s | CPU %s | cores %d (usable %d) | 1-min load average at start %.1f" % (
        info["date"], info["cpu"], info["cores"], info["cores_usable"], info["load_1min"]))
    print("versions: " + ", ".join("%s %s" % kv for kv in info["versions"].items()))
    print("samples %d, epochs %d (first excluded), latency: up to %d calls / %.1f s each" % (
        cfg["n"], cfg["epochs"], cfg["lat_calls"], cfg["lat_budget_s"]))
    print("floor: %.2f GFLOP per epoch / %.1f GFLOP/s (np.matmul float32 at one step's shapes, "
          "best block) = %.4g s\n" % (floor["epoch_gflop"], floor["gflops"], floor["epoch_s"]))


def print_notes(results, cfg):
    print("\nnotes:\n- PyTorch: eager, CrossEntropyLoss on logits (the Keras models end in a "
          "softmax layer + sparse CE), Adam(eps=1e-7), shuffled index batches; its predict rows "
          "= inference_mode numpy->softmax->numpy, model(x1) = plain eager call.")
    for fw, res in results.items():
        name = FRAMEWORKS[fw]
        if res.get("skipped"):
            print("- %s skipped: %s" % (name, res["skipped"]))
        if res.get("epoch_all_s"):
            print("- %s epochs (s): %s" % (name, ", ".join("%.3g" % t for t in res["epoch_all_s"])))
        short = ["%s %d" % (k, res["lat_%s_calls" % k]) for k in ("pob", "predict", "call")
                 if res.get("lat_%s_calls" % k, cfg["lat_calls"]) < cfg["lat_calls"]]
        if short:
            print("- %s latency: only %s calls fit the time budget" % (name, ", ".join(short)))


def print_errors(results):
    for fw, res in results.items():
        for key, tb in (res.get("errors") or {}).items():
            print("\n## %s error in %s\n```\n%s\n```" % (FRAMEWORKS[fw], key, tb.rstrip()))


def parse_args(argv):
    import argparse
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: fewer samples/epochs (<60 s)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--only", default="kgraph,torch,tf", help="comma list of kgraph,torch,tf")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--worker-cfg", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    if not args.only or set(args.only) - set(FRAMEWORKS):
        p.error("--only takes a comma list of " + ",".join(FRAMEWORKS))
    return args


def main(argv):
    import json
    args = parse_args(argv)
    if args.worker:
        return worker(args.worker, json.loads(args.worker_cfg))
    cfg = dict(QUICK if args.quick else FULL)
    info, floor = machine_info(), measure_floor(cfg["n"])
    results = run_all(args.only, cfg)
    print_header(info, cfg, floor)
    print_table(results, floor)
    print_notes(results, cfg)
    print_errors(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "config": cfg, "floor": floor, "results": results}, f,
                      indent=2)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--cold":
        cold_child(sys.argv[2])
    else:
        main(sys.argv[1:])
