"""The `kgraph` console script."""
import subprocess
import sys

import kgraph
from kgraph.cli import main


def test_version_and_help(capsys):
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert capsys.readouterr().out.strip() == f"kgraph {kgraph.__version__}"
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "info" in out


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "floatx=float32" in out


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "kgraph.cli", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("kgraph ")


# -- compile / run / inspect / bench / export ------------------------------------------------
import json  # noqa: E402
import os  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from kgraph import keras  # noqa: E402

SUBCOMMANDS = ["info", "demo", "compile", "run", "inspect", "bench", "export"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A trained two-output model saved as .keras and as .json + weights, with inputs."""
    folder = tmp_path_factory.mktemp("cli")
    a, b = keras.Input(shape=(3,), name="a"), keras.Input(shape=(2,), name="b")
    h = keras.layers.Dense(4, activation="relu")(keras.layers.Concatenate()([a, b]))
    model = keras.Model([a, b], [keras.layers.Dense(2, name="p")(h),
                                 keras.layers.Dense(1, name="q")(h)])
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(6, 3)).astype("float32"), rng.normal(size=(6, 2)).astype("float32")]
    model.fit(x, [np.ones((6, 2)), np.ones((6, 1))], epochs=1, verbose=0)
    model.save(str(folder / "m.keras"))
    (folder / "m.json").write_text(model.to_json())
    model.save_weights(str(folder / "m.weights.h5"))
    np.save(folder / "a.npy", x[0])
    np.save(folder / "b.npy", x[1])
    return folder, model.predict(x, verbose=0)


def test_every_subcommand_has_help(capsys):
    for command in SUBCOMMANDS:
        with pytest.raises(SystemExit) as e:
            main([command, "--help"])
        assert e.value.code == 0
        assert f"usage: kgraph {command}" in capsys.readouterr().out


def test_compile_run_inspect_bench(files, capsys):
    folder, (p, q) = files
    art, out = str(folder / "art"), str(folder / "out")
    assert main(["compile", str(folder / "m.keras"), "--target", "cpu", "-o", art]) == 0
    assert "wrote" in capsys.readouterr().err  # progress goes to stderr
    assert main(["run", art, "--input", f"b={folder / 'b.npy'}", "--input",
                 f"a={folder / 'a.npy'}", "--output", out]) == 0
    np.testing.assert_allclose(np.load(os.path.join(out, "p.npy")), p, atol=1e-5)
    np.testing.assert_allclose(np.load(os.path.join(out, "q.npy")), q, atol=1e-5)
    assert main(["run", art, "-i", str(folder / "a.npy"), "-i", str(folder / "b.npy"),
                 "-o", str(folder / "y.npz")]) == 0
    with np.load(folder / "y.npz", allow_pickle=False) as y:
        np.testing.assert_allclose(y["q"], q, atol=1e-5)
    capsys.readouterr()
    assert main(["inspect", art, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["target"] == "cpu" and info["model"]["parameters"] == 24 + 10 + 5
    assert [s["name"] for s in info["outputs"]] == ["p", "q"] and info["versions"]["onnx"]
    assert main(["bench", art, "--repeat", "3", "--batch-size", "64", "--json"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["latency_batch"] == 1 and bench["throughput_batch"] == 64
    assert bench["latency_ms"] > 0 and bench["throughput_per_s"] > 0


def test_json_with_weights_and_export(files, capsys):
    folder, (p, _) = files
    onnx_path = str(folder / "m.onnx")
    assert main(["export", str(folder / "m.json"), "--weights", str(folder / "m.weights.h5"),
                 "--format", "onnx", "--output", onnx_path, "--quiet"]) == 0
    assert main(["inspect", onnx_path]) == 0
    assert "output p: (batch, 2) float32" in capsys.readouterr().out
    art = str(folder / "from_onnx")
    assert main(["compile", onnx_path, "-o", art, "--quiet"]) == 0
    assert main(["run", art, "-i", str(folder / "a.npy"), "-i", str(folder / "b.npy"),
                 "-o", str(folder / "o2")]) == 0
    np.testing.assert_allclose(np.load(folder / "o2" / "p.npy"), p, atol=1e-5)


@pytest.mark.parametrize("argv, message", [
    (["compile", "missing.keras", "-o", "{d}/x"], "No such file: 'missing.keras'"),
    (["compile", "{d}/m.keras", "--target", "tpu", "-o", "{d}/x"], "target='tpu'"),
    (["compile", "{d}/m.keras", "--target", "static", "-o", "{d}/x"], "--batch-size"),
    (["compile", "{d}/m.json", "-o", "{d}/x"], "--weights"),
    (["run", "{d}/art", "-i", "{d}/b.npy", "-i", "{d}/b.npy", "-o", "{d}/y.npz"],
     "Input 'a' expects shape (batch, 3); received an array of shape (6, 2)"),
    (["run", "{d}/tampered", "-i", "{d}/a.npy", "-i", "{d}/b.npy", "-o", "{d}/y.npz"],
     "Checksum mismatch"),
    (["export", "{d}/m.keras", "--format", "tf_saved_model", "-o", "{d}/s"],
     "format='tf_saved_model'"),
])
def test_user_mistakes_exit_non_zero_without_traceback(files, argv, message, capsys):
    folder, _ = files
    if not (folder / "art").exists():
        main(["compile", str(folder / "m.keras"), "-o", str(folder / "art"), "--quiet"])
    if not (folder / "tampered").exists():
        main(["compile", str(folder / "m.keras"), "-o", str(folder / "tampered"), "--quiet"])
        with open(folder / "tampered" / "model.onnx", "ab") as fh:
            fh.write(b"\0")
    assert main([a.replace("{d}", str(folder)) for a in argv]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("error:") == 1


def test_console_script_reports_errors_on_stderr(tmp_path):
    done = subprocess.run([sys.executable, "-m", "kgraph.cli", "run", str(tmp_path / "none"),
                           "-i", "x.npy", "-o", "y.npy"], capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("kgraph run: error: No such artifact") and \
        "Traceback" not in done.stderr
