"""The configuration file (issue 13, part 2): `$KGRAPH_HOME/kgraph.json` created with defaults
on first use, honoured by `keras.config` / `keras.backend` and by layers, overridden by
environment variables, and ignored with a warning naming it when malformed."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kgraph import config, keras

DEFAULTS = {"image_data_format": "channels_last", "epsilon": 1e-07, "floatx": "float32",
            "backend": "onnxruntime"}
REPORT = ("import json, numpy as np; from kgraph import keras; "
          "d = keras.layers.Dense(2); d.build((None, 3)); "
          "print(json.dumps({'floatx': keras.config.floatx(), 'epsilon': keras.backend.epsilon(), "
          "'image_data_format': keras.backend.image_data_format(), "
          "'backend': keras.config.backend(), 'kernel': str(d.kernel.numpy().dtype), "
          "'conv': keras.layers.Conv2D(1, 1).data_format}))")


def _run(tmp_path, code=REPORT, **env_vars):
    """Run `code` in a fresh interpreter whose HOME is `tmp_path/home` and which sees no
    KGRAPH_* variables except `env_vars`; returns (parsed last stdout line, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGRAPH_")}
    env.update(HOME=str(tmp_path / "home"), **env_vars)
    (tmp_path / "home").mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_first_use_creates_the_file_with_defaults_in_the_default_home(tmp_path):
    report, stderr = _run(tmp_path)
    path = tmp_path / "home" / ".kgraph" / "kgraph.json"
    assert json.loads(path.read_text()) == DEFAULTS
    assert (os.stat(path.parent).st_mode & 0o777) == 0o700
    assert not (tmp_path / "home" / ".keras").exists()  # ~/.keras belongs to real Keras
    assert report["floatx"] == "float32" and report["kernel"] == "float32"
    assert "ConfigWarning" not in stderr
    assert sorted(os.listdir(path.parent)) == ["kgraph.json"]  # no temp file left behind


def test_values_in_the_file_are_honoured_and_the_file_is_kept(tmp_path):
    home = tmp_path / "kg"
    home.mkdir()
    values = {"image_data_format": "channels_first", "epsilon": 1e-4, "floatx": "float64",
              "backend": "numpy", "extra": "kept"}
    (home / "kgraph.json").write_text(json.dumps(values))
    report, _ = _run(tmp_path, KGRAPH_HOME=str(home))
    assert report == {"floatx": "float64", "epsilon": 1e-4, "image_data_format": "channels_first",
                      "backend": "numpy", "kernel": "float64", "conv": "channels_first"}
    assert json.loads((home / "kgraph.json").read_text()) == values
    assert not (tmp_path / "home" / ".kgraph").exists()


def test_environment_variables_override_the_file(tmp_path):
    home = tmp_path / "kg"
    home.mkdir()
    (home / "kgraph.json").write_text(json.dumps({"floatx": "float64", "epsilon": 1e-4}))
    report, _ = _run(tmp_path, KGRAPH_HOME=str(home), KGRAPH_FLOATX="float32",
                     KGRAPH_EPSILON="0.001", KGRAPH_IMAGE_DATA_FORMAT="channels_first",
                     KGRAPH_BACKEND="numpy")
    assert report == {"floatx": "float32", "epsilon": 1e-3, "image_data_format": "channels_first",
                      "backend": "numpy", "kernel": "float32", "conv": "channels_first"}


def test_bad_environment_values_warn_naming_the_variable(tmp_path):
    report, stderr = _run(tmp_path, KGRAPH_HOME=str(tmp_path / "kg"), KGRAPH_EPSILON="tiny",
                          KGRAPH_FLOATX="int8")
    assert "KGRAPH_EPSILON" in stderr and "'tiny'" in stderr
    assert "KGRAPH_FLOATX" in stderr and "'int8'" in stderr
    assert (report["epsilon"], report["floatx"]) == (1e-07, "float32")


def test_malformed_file_warns_naming_it_uses_defaults_and_is_not_overwritten(tmp_path):
    home = tmp_path / "kg"
    home.mkdir()
    (home / "kgraph.json").write_text('{"floatx": "float64",')
    report, stderr = _run(tmp_path, KGRAPH_HOME=str(home))
    assert "ConfigWarning" in stderr and str(home / "kgraph.json") in stderr
    assert report["floatx"] == "float32" and report["kernel"] == "float32"
    assert (home / "kgraph.json").read_text() == '{"floatx": "float64",'


def test_a_home_that_cannot_be_created_runs_on_defaults(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    report, stderr = _run(tmp_path, KGRAPH_HOME=str(blocker / "kg"))
    assert report["floatx"] == "float32" and report["kernel"] == "float32"
    assert str(blocker / "kg" / "kgraph.json") in stderr  # the warning names the file
    assert blocker.read_text() == "not a directory"


def test_create_default_file_never_replaces_an_existing_one(tmp_path):
    path = tmp_path / "kgraph.json"
    path.write_text('{"floatx": "float64"}')
    config._create_default_file(str(path))
    assert path.read_text() == '{"floatx": "float64"}'
    assert os.listdir(tmp_path) == ["kgraph.json"]


@pytest.fixture
def restore_config():
    saved = dict(config._config)
    yield
    config._config.clear()
    config._config.update(saved)


def test_setters_of_keras_config_and_backend_are_honoured_by_layers(restore_config):
    keras.config.set_floatx("float64")
    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    assert dense.kernel.numpy().dtype == np.float64 and keras.backend.floatx() == "float64"
    keras.backend.set_floatx("float32")
    keras.backend.set_epsilon(1e-5)
    assert keras.config.epsilon() == 1e-5
    keras.config.set_image_data_format("channels_first")
    model = keras.Sequential([keras.Input((3, 8, 8)), keras.layers.Conv2D(4, 3)])
    assert model.predict(np.ones((2, 3, 8, 8), "float32"), verbose=0).shape == (2, 4, 6, 6)
    with pytest.raises(ValueError, match="'nhwc'"):
        keras.backend.set_image_data_format("nhwc")
    assert keras.backend.backend() == "kgraph"


def test_save_config_persists_the_setters(restore_config, tmp_path, monkeypatch):
    monkeypatch.setenv("KGRAPH_HOME", str(tmp_path))
    keras.config.set_epsilon(1e-3)
    keras.config.save_config()
    assert json.loads((tmp_path / "kgraph.json").read_text())["epsilon"] == 1e-3
    assert keras.config.config_path() == str(tmp_path / "kgraph.json")
