"""ResNet50 at 224x224 on the CPU: kgraph (onnxruntime) vs PyTorch eager, in one run.

Usage: python tools/bench_applications.py [--repeats 10] [--threads N] [--no-torch]

Figures (median over `--repeats`, with the min-max spread):
  - compile time: `kgraph.applications.ResNet50(weights=None)` built, then the first
    `predict_on_batch` (lowering, passes, ONNX emission, onnxruntime session creation and
    one run), minus one steady batch-1 run: graph build -> session ready;
  - inference latency at batch 1 and 32 (`predict_on_batch` vs `torch.no_grad()` forward,
    eval mode);
  - one training step at batch 8 (SGD, sparse categorical crossentropy; `train_on_batch`
    vs forward + backward + `optimizer.step()`).
The PyTorch model is torchvision's resnet50 when torchvision imports, else the same
architecture written here (ResNet v1.5 differs from Keras' v1 only in where the stride of the
first block sits: stride on the 3x3 vs the 1x1 convolution; the FLOPs differ by ~0.1%).
torch and torchvision are not test dependencies. The two frameworks run alternately, repeat by
repeat, so load on a shared machine hits both alike; do not run it while tests run.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np


def median_ms(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), min(times), max(times)


# -- kgraph --------------------------------------------------------------------------------
def kgraph_runners(rng):
    from kgraph import keras
    from kgraph.applications import ResNet50

    x1 = rng.random((1, 224, 224, 3), dtype=np.float32)
    x32 = rng.random((32, 224, 224, 3), dtype=np.float32)
    start = time.perf_counter()
    model = ResNet50(weights=None)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    model.predict_on_batch(x1)
    first_s = time.perf_counter() - start
    steady_ms = median_ms(lambda: model.predict_on_batch(x1), 3)[0]
    trainer = ResNet50(weights=None)
    trainer.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    x8, y8 = x32[:8], rng.integers(0, 1000, (8,))
    start = time.perf_counter()
    trainer.train_on_batch(x8, y8)
    train_first_s = time.perf_counter() - start
    return {"compile": (build_s, first_s - steady_ms / 1e3, train_first_s),
            "batch1": lambda: model.predict_on_batch(x1),
            "batch32": lambda: model.predict_on_batch(x32),
            "train8": lambda: trainer.train_on_batch(x8, y8)}


# -- PyTorch -------------------------------------------------------------------------------
def torch_resnet50(torch):
    try:
        from torchvision.models import resnet50

        return resnet50(), "torchvision resnet50"
    except Exception:  # not installed, or a build that does not match torch
        pass
    nn = torch.nn

    class Bottleneck(nn.Module):
        def __init__(self, cin, width, stride):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, width, 1, stride, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                nn.Conv2d(width, 4 * width, 1, bias=False), nn.BatchNorm2d(4 * width))
            self.short = nn.Identity() if stride == 1 and cin == 4 * width else nn.Sequential(
                nn.Conv2d(cin, 4 * width, 1, stride, bias=False), nn.BatchNorm2d(4 * width))

        def forward(self, x):
            return torch.relu(self.body(x) + self.short(x))

    layers, cin = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                   nn.MaxPool2d(3, 2, 1)], 64
    for stage, (width, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
        for i in range(blocks):
            layers.append(Bottleneck(cin, width, 2 if i == 0 and stage else 1))
            cin = 4 * width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000)]
    return nn.Sequential(*layers), "ResNet50 v1 written in torch.nn (no torchvision)"


def torch_runners(rng, threads):
    import torch

    torch.set_num_threads(threads)
    model, label = torch_resnet50(torch)
    model.eval()
    x1 = torch.from_numpy(rng.random((1, 3, 224, 224), dtype=np.float32))
    x32 = torch.from_numpy(rng.random((32, 3, 224, 224), dtype=np.float32))
    trainer, _ = torch_resnet50(torch)
    trainer.train()
    optimizer = torch.optim.SGD(trainer.parameters(), lr=0.01)
    x8, y8 = x32[:8], torch.from_numpy(rng.integers(0, 1000, (8,)))

    def infer(x):
        with torch.no_grad():
            model(x)

    def train():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(trainer(x8), y8).backward()
        optimizer.step()

    return label, {"batch1": lambda: infer(x1), "batch32": lambda: infer(x32), "train8": train}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("KGRAPH_NUM_THREADS", str(args.threads))
    rng = np.random.default_rng(0)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{args.threads} threads, load average {os.getloadavg()[0]:.2f}")
    ours = kgraph_runners(rng)
    build_s, compile_s, train_first_s = ours["compile"]
    print(f"kgraph ResNet50: model build {build_s:.2f} s, compile (graph build -> session "
          f"ready) {compile_s:.2f} s, first train step (compile + run) {train_first_s:.2f} s")
    theirs, label = {}, None
    if not args.no_torch:
        label, theirs = torch_runners(rng, args.threads)
        print(f"PyTorch {__import__('torch').__version__} eager: {label}")
    for name, what in (("batch1", "inference, batch 1"), ("batch32", "inference, batch 32"),
                       ("train8", "training step, batch 8")):
        warm = [ours[name]()] + ([theirs[name]()] if theirs else [])  # noqa: F841
        results = {"kgraph": [], "torch": []}
        for _ in range(args.repeats):  # alternate, so load hits both alike
            results["kgraph"].append(median_ms(ours[name], 1)[0])
            if theirs:
                results["torch"].append(median_ms(theirs[name], 1)[0])
        row = f"{what:24s} kgraph {statistics.median(results['kgraph']):8.1f} ms " \
              f"({min(results['kgraph']):.1f}-{max(results['kgraph']):.1f})"
        if theirs:
            ratio = statistics.median(results["kgraph"]) / statistics.median(results["torch"])
            row += f"   torch {statistics.median(results['torch']):8.1f} ms " \
                   f"({min(results['torch']):.1f}-{max(results['torch']):.1f})   " \
                   f"kgraph/torch {ratio:.2f}"
        print(row)


if __name__ == "__main__":
    main()
