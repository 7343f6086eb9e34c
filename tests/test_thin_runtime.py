"""The thin-runtime promise: a fresh venv holding only numpy + onnxruntime (from PyPI) and
kgraph installed with `--no-deps` runs a compiled artifact, fine-tunes a `--train` artifact
and saves it, with outputs equal to the model's, and never imports onnx, h5py, networkx,
scipy or tvm."""
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest

from kgraph import keras
from kgraph.compiler.artifact import compile_model

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = ["onnx", "h5py", "networkx", "scipy", "tvm", "kgraph.keras", "kgraph.compiler",
             "kgraph.ops", "kgraph.ir"]

SCRIPT = """
import json, sys
import numpy as np
import kgraph
from kgraph import runtime
folder = sys.argv[1]
x, y = np.load(folder + "/x.npy"), np.load(folder + "/y.npy")
np.save(folder + "/predicted.npy", runtime.load(folder + "/art").predict(x))
trainable = runtime.load(folder + "/train_art")
losses = [trainable.train_step(x, y)["loss"] for _ in range(2)]
trainable.save()
np.save(folder + "/tuned.npy", runtime.load(folder + "/train_art").predict(x))
print(json.dumps({"kgraph": kgraph.__file__, "losses": losses,
                  "imported": sorted(m for m in %r if m in sys.modules)}))
"""


def _python(folder) -> str:
    return str(folder / "venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))


def _pip(folder, *args):
    done = subprocess.run([_python(folder), "-m", "pip", "install", "-q",
                           "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_artifact_runs_in_a_venv_with_only_numpy_and_onnxruntime(tmp_path):
    venv.create(tmp_path / "venv", with_pip=True)
    _pip(tmp_path, "numpy", "onnxruntime")
    _pip(tmp_path, "--no-deps", str(REPO))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5)).astype("float32")
    y = rng.integers(0, 3, size=16)
    model = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    compile_model(model, tmp_path / "art")
    compile_model(model, tmp_path / "train_art", train=True)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    done = subprocess.run([_python(tmp_path), "-c", SCRIPT % (FORBIDDEN,), str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert str(tmp_path / "venv") in report["kgraph"]  # the installed copy, not the checkout
    assert report["imported"] == []
    np.testing.assert_allclose(np.load(tmp_path / "predicted.npy"), model.predict(x, verbose=0),
                               atol=1e-5)
    for loss in report["losses"]:  # the same two steps on the model itself
        model.reset_metrics()
        assert loss == pytest.approx(model.train_on_batch(x, y), abs=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "tuned.npy"), model.predict(x, verbose=0),
                               atol=1e-5)
