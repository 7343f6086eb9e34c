"""kgraph model suite: MLP, CNNs, LSTMs, transformer (Adam) vs PyTorch eager, Keras/TF, numpy.

Usage: tools/bench_layers [--quick] [--rounds R] [--json PATH] [--markdown PATH]
                          [--only kgraph,torch,tf] [--models ...] [--profile]
(see tools/README.md). Reuses tools/bench.py's machinery: every (framework, model) pair runs in
its own child process (`--worker FW --model M`); `--profile` runs kgraph's compiled train steps
under onnxruntime's profiler in this process and prints the ops that take the time.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import (FRAMEWORKS, KerasBench, TorchBench, _epoch_timer, _try, cell, emit,  # noqa: E402
                   machine_info, speedup)

BATCH, SEED = 64, 0
MODELS = {"mlp": "MLP 784-256-256-10 (tools/bench's workload, batch 128)",
          "cnn": "CNN conv32-pool-conv64-pool-dense10",
          "cnn_full": "the CNN + Dropout(0.25) + accuracy metric + validation_split=0.1",
          "lstm": "LSTM(64) on 50x32 -> Dense(1)",
          "bilstm": "2x Bidirectional(LSTM(32)) on 200x16 -> Dense(1)",
          "transformer": "encoder block (Embedding 1000x64, 4-head attention, FFN 128, "
                         "post-norm) on 64 tokens -> 2 classes"}
BATCHES = {"mlp": bench.BATCH}  # tools/bench's MLP workload; every other model at BATCH
FULL = dict(n={"mlp": 20000, "cnn": 10000, "cnn_full": 10000, "lstm": 5000, "bilstm": 1024,
               "transformer": 4096}, epochs=3, floor_steps=20, floor_blocks=25, timeout_s=3600)
QUICK = dict(n={"mlp": 2048, "cnn": 1024, "cnn_full": 1024, "lstm": 512, "bilstm": 128,
                  "transformer": 512},
             epochs=3, floor_steps=5, floor_blocks=5, timeout_s=300)
CLASSIFIERS = ("mlp", "cnn", "cnn_full", "transformer")  # sparse categorical CE; others mse
PROFILE_STEPS, PROFILE_WARMUP, PROFILE_TOP = 20, 3, 12


def batch_of(model):
    return BATCHES.get(model, BATCH)


def make_data(model, n, seed=SEED):
    """CNN: NHWC float32 images in [0, 1) + int64 labels 0-9; LSTM: (n, 50, 32), BiLSTM:
    (n, 200, 16) float32 + float32 y; transformer: int32 tokens (n, 64) + labels 0-1."""
    if model == "mlp":
        return bench.make_data(n, seed)
    rng = np.random.default_rng(seed)
    if model in ("cnn", "cnn_full"):
        return rng.random((n, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, size=n)
    if model == "transformer":
        return rng.integers(0, 1000, (n, 64)).astype(np.int32), rng.integers(0, 2, size=n)
    steps, features = (50, 32) if model == "lstm" else (200, 16)
    return (rng.random((n, steps, features), dtype=np.float32),
            rng.random((n, 1), dtype=np.float32))


# --------------------------------------------------------------------------- frameworks
class KerasLayers(KerasBench):
    """The same Keras code for kgraph and Keras 3 on TensorFlow (NHWC, channels_last)."""

    def __init__(self, name, model):
        super().__init__(name)
        self.kind = model

    def build(self):
        keras, L = self.keras, self.keras.layers
        if self.kind == "mlp":
            return super().build()
        if self.kind == "transformer":
            self.model = self._transformer()
            return
        if self.kind in ("cnn", "cnn_full"):
            layers = [keras.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"),
                      L.MaxPooling2D(2), L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2),
                      L.Flatten()]
            layers += [L.Dropout(0.25)] if self.kind == "cnn_full" else []
            layers += [L.Dense(10, activation="softmax")]
        elif self.kind == "bilstm":
            layers = [keras.Input((200, 16)), L.Bidirectional(L.LSTM(32, return_sequences=True)),
                      L.Bidirectional(L.LSTM(32)), L.Dense(1)]
        else:
            layers = [keras.Input((50, 32)), L.LSTM(64), L.Dense(1)]
        self.model = keras.Sequential(layers)

    def _transformer(self):
        keras, L = self.keras, self.keras.layers
        tokens = keras.Input((64,), dtype="int32")
        x = L.Embedding(1000, 64)(tokens)
        x = L.LayerNormalization()(L.Add()([x, L.MultiHeadAttention(4, 16)(x, x)]))
        ffn = L.Dense(64)(L.Dense(128, activation="relu")(x))
        x = L.LayerNormalization()(L.Add()([x, ffn]))
        out = L.Dense(2, activation="softmax")(L.GlobalAveragePooling1D()(x))
        return keras.Model(tokens, out)

    def compile(self):
        self.model.compile(optimizer=self.keras.optimizers.Adam(),
                           loss="sparse_categorical_crossentropy" if self.kind in CLASSIFIERS
                           else "mse", metrics=["accuracy"] if self.kind == "cnn_full" else None)

    def first_step(self, x, y):
        """Seconds from a compiled model to its first trained batch (tracing, compiling)."""
        t = time.perf_counter()
        batch = batch_of(self.kind)
        self.model.train_on_batch(x[:batch], y[:batch])
        return time.perf_counter() - t

    def fit_epochs(self, x, y, epochs):  # bench.KerasBench.fit_epochs has batch 128 built in
        times = []
        self.model.fit(x, y, batch_size=batch_of(self.kind), epochs=epochs, verbose=0,
                       validation_split=0.1 if self.kind == "cnn_full" else 0.0,
                       callbacks=[_epoch_timer(self.keras, times)])
        return times


class TorchLayers(TorchBench):
    """Eager PyTorch as its users write it: NCHW convs, logits + CrossEntropyLoss; nn.LSTM."""

    def __init__(self, name, model):
        super().__init__(name)
        self.kind = model

    def build(self):
        torch, nn = self.torch, self.torch.nn
        torch.manual_seed(SEED)
        if self.kind == "mlp":
            return super().build()
        if self.kind in ("cnn", "cnn_full"):  # 28 -> 26 -> 13 -> 11 -> 5
            drop = [nn.Dropout(0.25)] if self.kind == "cnn_full" else []
            self.model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                                       nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                                       nn.Flatten(), *drop, nn.Linear(64 * 5 * 5, 10))
            return
        if self.kind == "bilstm":
            class BiLSTM(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.one = nn.LSTM(16, 32, batch_first=True, bidirectional=True)
                    self.two = nn.LSTM(64, 32, batch_first=True, bidirectional=True)
                    self.head = nn.Linear(64, 1)

                def forward(self, x):
                    _, (h, _) = self.two(self.one(x)[0])
                    return self.head(torch.cat([h[0], h[1]], dim=1))
            self.model = BiLSTM()
            return
        if self.kind == "transformer":
            class Encoder(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.embed = nn.Embedding(1000, 64)
                    self.block = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0,
                                                            batch_first=True)
                    self.head = nn.Linear(64, 2)

                def forward(self, x):
                    return self.head(self.block(self.embed(x)).mean(dim=1))
            self.model = Encoder()
            return

        class LSTMRegressor(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm, self.head = nn.LSTM(32, 64, batch_first=True), nn.Linear(64, 1)

            def forward(self, x):
                _, (h, _) = self.lstm(x)
                return self.head(h[-1])
        self.model = LSTMRegressor()

    def compile(self):  # Adam(eps=1e-7) as in bench.py; the LSTMs train on mse
        super().compile()
        if self.kind not in CLASSIFIERS:
            self.loss_fn = self.torch.nn.MSELoss()

    def _tensors(self, x, y):
        if self.kind in ("cnn", "cnn_full"):  # NHWC -> NCHW, outside the timing
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        if self.kind == "transformer":
            x = x.astype(np.int64)
        return self.torch.from_numpy(x), self.torch.from_numpy(y)

    def first_step(self, x, y):
        batch = batch_of(self.kind)
        X, Y = self._tensors(x[:batch], y[:batch])
        t = time.perf_counter()
        self.step(X, Y)
        return time.perf_counter() - t

    def fit_epochs(self, x, y, epochs):  # bench.TorchBench.fit_epochs has batch 128 built in
        """cnn_full as Keras runs it: 10% held out, train accuracy tracked every step,
        a validation pass (loss and accuracy) after each epoch."""
        torch, times, batch = self.torch, [], batch_of(self.kind)
        X, Y = self._tensors(x, y)
        full = self.kind == "cnn_full"
        if full:
            split = int(len(X) * 0.9)
            X, Y, VX, VY = X[:split], Y[:split], X[split:], Y[split:]
        gen = torch.Generator().manual_seed(SEED)
        for _ in range(epochs):
            t = time.perf_counter()
            perm = torch.randperm(len(X), generator=gen)
            self.model.train()
            correct = 0
            for i in range(0, len(X), batch):
                xb, yb = X[perm[i:i + batch]], Y[perm[i:i + batch]]
                if full:
                    self.opt.zero_grad()
                    out = self.model(xb)
                    self.loss_fn(out, yb).backward()
                    self.opt.step()
                    correct += int((out.argmax(1) == yb).sum())
                else:
                    self.step(xb, yb)
            if full:
                self.model.eval()
                with torch.no_grad():
                    for i in range(0, len(VX), batch):
                        out = self.model(VX[i:i + batch])
                        self.loss_fn(out, VY[i:i + batch])
                        correct += int((out.argmax(1) == VY[i:i + batch]).sum())
            times.append(time.perf_counter() - t)
        return times


BENCHES = {"kgraph": KerasLayers, "torch": TorchLayers, "tf": KerasLayers}


# --------------------------------------------------------------------------- child processes
def worker(fw, model, cfg):
    res = {}
    try:
        b = BENCHES[fw](fw, model)
    except Exception as e:  # a missing peer is skipped; a kgraph that fails to import is an error
        import traceback
        res["skipped"] = "import failed: %s: %s" % (type(e).__name__, e)
        res["errors"] = {"import": traceback.format_exc()} if fw == "kgraph" else {}
        return emit(res)
    x, y = make_data(model, cfg["n"][model])
    if _try(res, "build", b.build) and _try(res, "compile", b.compile):
        def first():
            res["first_step_s"] = b.first_step(x, y)

        def epochs():
            res["epoch_all_s"] = times = b.fit_epochs(x, y, cfg["epochs"])
            res["epoch_s"] = float(np.mean(times[1:]))
        _try(res, "first_step", first) and _try(res, "epoch", epochs)
    import resource
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    emit(res)


def run_child(args, timeout_s):
    """bench.run_child, pointed at this file (it runs `sys.executable bench.__file__ ARGS`)."""
    saved, bench.__file__ = bench.__file__, os.path.abspath(__file__)
    try:
        return bench.run_child(args, timeout_s)
    finally:
        bench.__file__ = saved


def run_all(only, cfg, models=tuple(MODELS), rounds=1):
    """Each (framework, model) in its own child process, `rounds` times, interleaved: round r
    runs every model's frameworks in an order rotated by r, so load on the machine hits each
    alike. A result keeps its median round (by epoch time) and every round's epoch time."""
    import json
    runs = {m: {fw: [] for fw in only} for m in models}
    for r in range(rounds):
        for model in models:
            order = only[r % len(only):] + only[:r % len(only)]
            for fw in order:
                print("[bench_layers] round %d/%d: %s %s ..." % (r + 1, rounds, fw, model),
                      file=sys.stderr, flush=True)
                runs[model][fw].append(run_child(["--worker", fw, "--model", model,
                                                  "--worker-cfg", json.dumps(cfg)],
                                                 cfg["timeout_s"]))
    return {m: {fw: _median_round(rs) for fw, rs in per.items()} for m, per in runs.items()}


def _median_round(rounds):
    timed = sorted((r for r in rounds if r.get("epoch_s")), key=lambda r: r["epoch_s"])
    if not timed:
        return rounds[-1]
    result = dict(timed[(len(timed) - 1) // 2])
    result["rounds_epoch_s"] = [r.get("epoch_s") for r in rounds]
    return result


def _round_times(res, fw):
    """fw's epoch time in each round (None where the round gave none)."""
    return (res.get(fw) or {}).get("rounds_epoch_s") or []


def paired_ratio(res, fw):
    """The median over rounds of (fw's epoch / kgraph's epoch) of the same round, or None."""
    pairs = [o / k for k, o in zip(_round_times(res, "kgraph"), _round_times(res, fw))
             if k and o]
    return float(np.median(pairs)) if pairs else None


def best_round_ratio(res, fw):
    """fw's fastest round over kgraph's fastest round, or None. The host flips between a
    fast and a ~1.8x slower phase for seconds at a time (docs/benchmarks.md), so a round's
    pair can straddle two phases; each framework's fastest round is its time in the fast one."""
    kg = [t for t in _round_times(res, "kgraph") if t]
    other = [t for t in _round_times(res, fw) if t]
    return min(other) / min(kg) if kg and other else None


# --------------------------------------------------------------------------- numpy floor
# One train step's matrix products at batch 64, per layer as (M, K, N, reps, igrad_K) for a
# product (M, K) @ (K, N) run `reps` times: forward X@W, weight grad X.T@G, and input grad
# G@W[:igrad_K].T (igrad_K = 0: no input grad). Convolutions are counted as im2col GEMMs
# (M = batch*out_h*out_w, K = kh*kw*in_ch); the LSTM as one gate product [x_t, h] @ W per step
# whose input grad only goes to h (x is the model input).
GEMMS = {
    "mlp": [(bench.BATCH, n_in, n_out, 1, i and n_in)  # tools/bench's MLP, no input grad
            for i, (n_in, n_out) in enumerate(bench.LAYERS)],  # for the first layer
    "cnn": [(BATCH * 26 * 26, 9, 32, 1, 0),         # conv1: first layer, no input grad
            (BATCH * 11 * 11, 288, 64, 1, 288),     # conv2 (input grad: col2im not counted)
            (BATCH, 1600, 10, 1, 1600)],            # dense
    "lstm": [(BATCH, 32 + 64, 256, 50, 64),         # gates, 50 steps; input grad to h only
             (BATCH, 64, 1, 1, 64)],                # dense
    "bilstm": [(BATCH, 16 + 32, 128, 400, 32),      # layer 1, 200 steps x 2 directions
               (BATCH, 64 + 32, 128, 400, 96),      # layer 2: input grad to x and h
               (BATCH, 64, 1, 1, 64)],              # dense
    "transformer": [(BATCH * 64, 64, 64, 4, 64),    # q, k, v, output projections
                    (64, 16, 64, 4 * BATCH, 16),    # scores q k^T per head and sample
                    (64, 64, 16, 4 * BATCH, 64),    # attention-weighted values
                    (BATCH * 64, 64, 128, 1, 64),   # FFN up
                    (BATCH * 64, 128, 64, 1, 128),  # FFN down
                    (BATCH, 64, 2, 1, 64)],         # head
}
GEMMS["cnn_full"] = GEMMS["cnn"]  # dropout and metrics add no matrix products


def step_flops(model):
    return sum(2 * r * m * n * (2 * k + ik) for m, k, n, r, ik in GEMMS[model])


def measure_floor(model, n, steps, blocks):
    """Epoch FLOPs / np.matmul float32 throughput on one step's own GEMM shapes (best block)."""
    rng = np.random.default_rng(SEED)
    ops = []
    for m, k, n_, reps, ik in GEMMS[model]:
        x, w, g = (rng.random(s, dtype=np.float32) for s in [(m, k), (k, n_), (m, n_)])
        layer = [(x, w, np.empty((m, n_), np.float32)), (x.T, g, np.empty((k, n_), np.float32))]
        if ik:
            layer.append((g, w[:ik].T, np.empty((m, ik), np.float32)))
        ops += layer * reps
    runs = []
    for _ in range(blocks + 1):  # the first block is a warm-up
        t = time.perf_counter()
        for _ in range(steps):
            for a, b, out in ops:
                np.matmul(a, b, out=out)
        runs.append((time.perf_counter() - t) / steps)
    flops_per_s = step_flops(model) / min(runs[1:])
    epoch_flops = step_flops(model) * n / batch_of(model)
    return {"epoch_s": epoch_flops / flops_per_s, "gflops": flops_per_s / 1e9,
            "epoch_gflop": epoch_flops / 1e9}


# --------------------------------------------------------------------------- report
def targets(model, kg, to, tf, floor=None):
    """The issue's targets for `model`'s epoch: MLP >= 3x TF and <= 1.3x the floor; the others
    >= 2x TF and no slower than PyTorch eager (the transformer: no slower than TF)."""
    verdict = {True: " (met)", False: " (MISSED)", None: ""}
    times = 3 if model == "mlp" else 1 if model == "transformer" else 2
    goals = [(">= %dx faster than TF" % times if times > 1 else "not slower than TF", tf,
              tf is not None and tf >= times * (kg or 0))]
    if model == "mlp":
        goals.append(("<= 1.3x floor", floor, floor is not None and (kg or 0) <= 1.3 * floor))
    elif model != "transformer":
        goals.append(("<= PyTorch", to, to is not None and (kg or 0) <= to))
    return "; ".join(text + verdict[None if kg is None or other is None else ok]
                     for text, other, ok in goals) + \
        (bench.reach_note(tf, times, floor, kg) if times > 1 else "")


def print_report(info, cfg, floors, results):
    print("# kgraph model benchmark: %s; Adam, batch %d (MLP %d)\n" % (
        ", ".join(results), BATCH, BATCHES["mlp"]))
    print("date %s | CPU %s | cores %d (usable %d) | 1-min load average at start %.1f" % (
        info["date"], info["cpu"], info["cores"], info["cores_usable"], info["load_1min"]))
    print("versions: " + ", ".join("%s %s" % kv for kv in info["versions"].items()))
    print("samples: %s; epochs %d (first excluded); floor = the epoch's GEMM FLOPs (forward + "
          "weight grads + input grads except the first layer's; convs as im2col GEMMs, "
          "recurrent gates as one [x, h] product per step and direction) / np.matmul float32 "
          "throughput at one step's shapes (best block):" % (
              ", ".join("%s %d" % (m, cfg["n"][m]) for m in results), cfg["epochs"]))
    for model, fl in floors.items():
        print("- %s: %.2f GFLOP per epoch / %.1f GFLOP/s = %.4g s" % (
            MODELS[model], fl["epoch_gflop"], fl["gflops"], fl["epoch_s"]))
    print("\n| metric | kgraph | PyTorch | Keras/TF | floor | kgraph/floor | kgraph vs TF "
          "(x faster) | kgraph vs PyTorch (x faster) | target (not asserted) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for model, res in results.items():
        kg, to, tf = ((res.get(fw) or {}).get("epoch_s") for fw in ("kgraph", "torch", "tf"))
        fl = floors[model]["epoch_s"]
        print("| %s |" % " | ".join([
            "%s: s/epoch" % model, *(cell(res.get(fw), "epoch_s") for fw in FRAMEWORKS),
            "%.4g" % fl, "%.2fx" % (kg / fl) if kg else "-", speedup(kg, tf, False),
            speedup(kg, to, False),
            # the recurrent floors price each step's [x, h] product at small-GEMM speed, which
            # a framework hoisting the x products into one large GEMM can beat: no bound there
            targets(model, kg, to, tf, None if model in ("lstm", "bilstm") else fl)]))
        for key, label in (("first_step_s", "first train step, s (trace + compile)"),
                           ("peak_rss_mb", "peak RSS, MB")):
            kg, to, tf = ((res.get(fw) or {}).get(key) for fw in ("kgraph", "torch", "tf"))
            print("| %s |" % " | ".join([
                "%s: %s" % (model, label), *(cell(res.get(fw), key) for fw in FRAMEWORKS),
                "-", "-", speedup(kg, tf, False), speedup(kg, to, False), ""]))
    print("\nnotes:\n- models: %s. Keras (kgraph, TF): channels_last, softmax layer + sparse "
          "CE (mse for the LSTMs); PyTorch: eager, NCHW, logits + CrossEntropyLoss, nn.LSTM("
          "batch_first=True[, bidirectional=True]) + Linear, nn.TransformerEncoderLayer("
          "dropout=0), Adam(eps=1e-7), shuffled index batches; cnn_full's accuracy and "
          "validation pass computed in the loop." % "; ".join(MODELS[m] for m in results))
    for model, res in results.items():
        paired = {fw: paired_ratio(res, fw) for fw in ("tf", "torch")}
        rounds = len((res.get("kgraph") or {}).get("rounds_epoch_s") or [])
        if rounds > 1:
            print("- %s: %d interleaved rounds; median of the per-round ratios (x faster): "
                  "vs TF %s, vs PyTorch %s" % (model, rounds, *(
                      "%.2fx" % paired[fw] if paired[fw] else "-" for fw in ("tf", "torch"))))
            best = [best_round_ratio(res, fw) for fw in ("tf", "torch")]
            print("- %s: each framework's fastest round (x faster): vs TF %s, vs PyTorch %s" % (
                model, *("%.2fx" % b if b else "-" for b in best)))
        for fw, r in res.items():
            if r.get("rounds_epoch_s") and len(r["rounds_epoch_s"]) > 1:
                print("- %s %s epoch s per round: %s" % (FRAMEWORKS[fw], model, ", ".join(
                    "%.3g" % t if t else "-" for t in r["rounds_epoch_s"])))
            if r.get("skipped"):
                print("- %s %s skipped: %s" % (FRAMEWORKS[fw], model, r["skipped"]))
            if r.get("epoch_all_s"):
                print("- %s %s epochs (s): %s" % (FRAMEWORKS[fw], model,
                                                  ", ".join("%.3g" % t for t in r["epoch_all_s"])))
    for model, res in results.items():
        for fw, r in res.items():
            for key, tb in (r.get("errors") or {}).items():
                print("\n## %s %s error in %s\n```\n%s\n```" % (FRAMEWORKS[fw], model, key,
                                                               tb.rstrip()))


# --------------------------------------------------------------------------- profile
def profile_model(model, steps=PROFILE_STEPS, warmup=PROFILE_WARMUP, top=PROFILE_TOP):
    """kgraph's compiled train step of `model` under onnxruntime's profiler: ms per step by op."""
    import json
    import tempfile
    import onnxruntime as ort
    from kgraph.compiler.onnx.emit import emit
    from kgraph.compiler.passes import optimize
    from kgraph.runtime import native_ops
    from kgraph.runtime.onnx_exec import _session_options, providers  # what fit() uses

    b = KerasLayers("kgraph", model)
    b.build()
    b.compile()
    batch = batch_of(model)
    x, y = make_data(model, batch * (steps + warmup))
    b.fit_epochs(x[:batch * warmup], y[:batch * warmup], 1)  # compiles; creates the Adam slots
    t = time.perf_counter()
    b.fit_epochs(x[batch * warmup:], y[batch * warmup:], 1)
    fit_ms = (time.perf_counter() - t) / steps * 1e3
    xb, yb = x[:batch], y[:batch]
    graph = b.model.trace_step("train", xb, yb)
    native = native_ops.available()  # kgraph's operators, as fit() emits them
    data = emit(optimize(graph), native=native).to_bytes()
    feeds = {ph.node.attrs["name"]: np.asarray(var.numpy()) for var, ph in graph.variables.items()}
    feeds.update(x_0=xb, y_0=yb)
    names = {v.node.attrs["name"] for v in graph.inputs}
    if "rng_key" in names:
        feeds["rng_key"] = np.uint32(SEED)  # a scalar (kgraph.random)
    feeds = {k: v for k, v in feeds.items() if k in names}
    plain = ort.InferenceSession(data, _session_options(native=native), providers=providers())
    for _ in range(warmup):
        plain.run(None, feeds)
    t = time.perf_counter()
    for _ in range(steps):
        plain.run(None, feeds)
    run_ms = (time.perf_counter() - t) / steps * 1e3
    opts = _session_options(native=native)
    opts.enable_profiling = True
    opts.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "kgraph_%s" % model)
    sess = ort.InferenceSession(data, opts, providers=providers())
    for _ in range(warmup + steps):
        sess.run(None, feeds)
    path = sess.end_profiling()
    with open(path) as f:
        events = json.load(f)
    runs = sorted(e["ts"] for e in events if e.get("name") == "model_run")
    t0 = runs[-steps]  # leave the warm-up runs out
    ops, nodes = {}, {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= t0:
            op = e["args"].get("op_name", "?")
            agg = ops.setdefault(op, [0.0, 0])
            agg[0], agg[1] = agg[0] + e["dur"], agg[1] + 1
            shapes = "; ".join("x".join(map(str, dims)) or "scalar" for d in
                               e["args"].get("input_type_shape", []) for dims in d.values())
            nd = nodes.setdefault(e["name"][:-len("_kernel_time")], [0.0, op, shapes])
            nd[0] += e["dur"]
    total = sum(v[0] for v in ops.values())
    node_count = sum(v[1] for v in ops.values()) / steps
    print("\n### %s: kgraph train step (batch %d) under onnxruntime's profiler%s\n" % (
        MODELS[model], batch, ", kgraph's operators on" if native else ""))
    print("per step: kgraph fit (one fit call) %.2f ms | InferenceSession.run, unprofiled "
          "%.2f ms | sum of kernel times, profiled %.2f ms (%d kernels; %d steps after %d "
          "warm-up) | numpy GEMM floor %.2f ms\n" % (
              fit_ms, run_ms, total / steps / 1e3, node_count, steps, warmup,
              measure_floor(model, batch, 10, 10)["epoch_s"] * 1e3))
    print("| op | kernels/step | ms/step | share |\n|---|---:|---:|---:|")
    for op, (dur, cnt) in sorted(ops.items(), key=lambda kv: -kv[1][0])[:top]:
        print("| %s | %d | %.3f | %.0f%% |" % (op, cnt / steps, dur / steps / 1e3,
                                             100 * dur / total))
    print("\ntop nodes:\n\n| node | op | input shapes | ms/step | share |\n|---|---|---|---:|---:|")
    for name, (dur, op, shapes) in sorted(nodes.items(), key=lambda kv: -kv[1][0])[:top // 2]:
        print("| %s | %s | %s | %.3f | %.0f%% |" % (name[:40], op, shapes, dur / steps / 1e3,
                                                    100 * dur / total))
    os.remove(path)


# --------------------------------------------------------------------------- main
def parse_args(argv):
    import argparse
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: fewer samples/epochs (<90 s)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--markdown", metavar="PATH",
                   help="also append the report to this markdown file (docs/benchmarks.md) as "
                        "a dated section")
    p.add_argument("--only", default="kgraph,torch,tf", help="comma list of kgraph,torch,tf")
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma list of " + ",".join(MODELS))
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat every (framework, model) run this many times, interleaved; "
                        "report the median round and the median of per-round ratios")
    p.add_argument("--profile", action="store_true",
                   help="profile kgraph's train steps of --models with onnxruntime instead")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--model", choices=list(MODELS), help=argparse.SUPPRESS)
    p.add_argument("--worker-cfg", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    if not args.only or set(args.only) - set(FRAMEWORKS):
        p.error("--only takes a comma list of " + ",".join(FRAMEWORKS))
    args.models = [s.strip() for s in args.models.split(",") if s.strip()]
    if not args.models or set(args.models) - set(MODELS):
        p.error("--models takes a comma list of " + ",".join(MODELS))
    return args


def main(argv):
    import json
    args = parse_args(argv)
    if args.worker:
        return worker(args.worker, args.model, json.loads(args.worker_cfg))
    if args.profile:
        for model in args.models:
            profile_model(model)
        return
    cfg = dict(QUICK if args.quick else FULL)
    info = machine_info()
    floors = {m: measure_floor(m, cfg["n"][m], cfg["floor_steps"], cfg["floor_blocks"])
              for m in args.models}
    results = run_all(args.only, cfg, args.models, args.rounds)
    import contextlib
    import io
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        print_report(info, cfg, floors, results)
    print(report.getvalue(), end="")
    if args.markdown:  # the report's title becomes a section heading of the document
        title, rest = report.getvalue().split("\n", 1)
        with open(args.markdown, "a") as f:
            f.write("\n## %s (`tools/bench_layers %s`)\n%s" % (title.lstrip("# "),
                                                              " ".join(argv), rest))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "config": cfg, "floor": floors, "results": results}, f,
                      indent=2)


if __name__ == "__main__":
    main(sys.argv[1:])
