"""KGRAPH_HOME, kgraph.json validation and the environment variables (issue 9, case 3)."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from kgraph import config


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A kgraph.config whose settings are restored afterwards, with no home directory (so the
    per-user fallback under `tmp_path` is used) and no KGRAPH_* variables."""
    saved = dict(config._config)
    for name in ("KGRAPH_HOME", "KGRAPH_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(config.os.path, "expanduser", lambda p: str(tmp_path / "no-home"))
    monkeypatch.setattr(config.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(config, "_private_home", None)
    yield tmp_path / f".kgraph-{os.getuid()}"
    config._config.clear()
    config._config.update(saved)


def _plant(directory, values):
    directory.mkdir(exist_ok=True)
    (directory / "kgraph.json").write_text(json.dumps(values))


def test_fallback_is_per_user_and_private(fresh):
    home = config.kgraph_home()
    assert home == str(fresh)
    assert (os.stat(home).st_mode & 0o777) == 0o700


@pytest.mark.parametrize("tamper", ["world_writable", "other_owner", "symlink"])
def test_fallback_planted_by_someone_else_is_refused(fresh, tmp_path, tamper):
    planted = {"floatx": "float16", "epsilon": 0.4, "image_data_format": "channels_first"}
    if tamper == "symlink":
        _plant(tmp_path / "attacker", planted)
        os.symlink(tmp_path / "attacker", fresh)
    else:
        _plant(fresh, planted)
        if tamper == "world_writable":
            os.chmod(fresh, 0o777)
        else:
            if os.getuid() != 0:
                pytest.skip("changing a directory's owner needs root")
            os.chown(fresh, 12345, 12345)
    with pytest.warns(config.ConfigWarning, match="not a directory owned by this user"):
        home = config.kgraph_home()
    assert home != str(fresh) and (os.stat(home).st_mode & 0o777) == 0o700
    config._load()
    assert (config.floatx(), config.epsilon(), config.image_data_format()) == (
        "float32", 1e-07, "channels_last")


@pytest.mark.parametrize("content", ["[1, 2]", "42", "{bad json", '"text"'])
def test_config_that_is_not_an_object_warns_and_keeps_defaults(fresh, content):
    fresh.mkdir(mode=0o700)
    (fresh / "kgraph.json").write_text(content)
    with pytest.warns(config.ConfigWarning, match="Ignoring"):
        config._load()
    assert config.floatx() == "float32"


@pytest.mark.parametrize("key,value", [("floatx", "int8"), ("epsilon", "abc"),
                                       ("epsilon", -1.0), ("image_data_format", "nhwc"),
                                       ("backend", "cuda-please")])
def test_bad_values_warn_and_keep_defaults(fresh, key, value):
    fresh.mkdir(mode=0o700)
    _plant(fresh, {key: value, "floatx": "float64"} if key != "floatx" else {key: value})
    with pytest.warns(config.ConfigWarning, match=key):
        config._load()
    assert config._config[key] == config._DEFAULTS[key]
    if key != "floatx":
        assert config.floatx() == "float64"  # the good entries still apply


def test_kgraph_backend_overrides_the_file_and_is_validated(fresh, monkeypatch):
    fresh.mkdir(mode=0o700)
    _plant(fresh, {"backend": "numpy"})
    monkeypatch.setenv("KGRAPH_BACKEND", "tvm:cuda")
    config._load()
    assert config.backend() == "tvm:cuda"
    monkeypatch.setenv("KGRAPH_BACKEND", "gpu")
    config._config["backend"] = "onnxruntime"
    with pytest.warns(config.ConfigWarning, match="KGRAPH_BACKEND.*'gpu'"):
        config._load()
    assert config.backend() == "numpy"


def test_setters_validate():
    saved = dict(config._config)
    try:
        for setter, bad in ((config.set_floatx, "int8"), (config.set_epsilon, "abc"),
                            (config.set_backend, "cuda-please"),
                            (config.set_image_data_format, "nhwc")):
            with pytest.raises(ValueError, match=repr(bad)):
                setter(bad)
        config.set_epsilon(np.float32(1e-3))
        config.set_backend("tvm:cuda")
    finally:
        config._config.clear()
        config._config.update(saved)


def test_save_config_uses_a_fresh_temp_file_not_a_planted_link(fresh, tmp_path):
    fresh.mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, fresh / "kgraph.json.tmp")  # the old fixed temp name
    config.save_config()
    assert victim.read_text() == "precious"
    assert json.loads((fresh / "kgraph.json").read_text())["floatx"] == config.floatx()
    assert sorted(p.name for p in fresh.iterdir()) == ["kgraph.json", "kgraph.json.tmp"]


def test_import_never_fails_on_a_bad_config(tmp_path):
    (tmp_path / "kgraph.json").write_text("[1, 2, 3]")
    env = dict(os.environ, KGRAPH_HOME=str(tmp_path), KGRAPH_BACKEND="nope")
    done = subprocess.run([sys.executable, "-c", "import kgraph.config as c; print(c.backend())"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "onnxruntime"
    assert "KGRAPH_BACKEND" in done.stderr and "JSON object" in done.stderr


def test_kgraph_num_threads_garbage_warns_naming_the_variable(monkeypatch):
    from kgraph.runtime import onnx_exec

    monkeypatch.setenv("KGRAPH_NUM_THREADS", "abc")
    with pytest.warns(config.ConfigWarning, match="KGRAPH_NUM_THREADS='abc'"):
        assert onnx_exec.num_threads() == 0
    monkeypatch.setenv("KGRAPH_NUM_THREADS", "3")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert onnx_exec.num_threads() == 3


@pytest.mark.parametrize("opt_in", [False, True])
def test_onnxruntime_telemetry_store_is_off_unless_opted_in(tmp_path, opt_in):
    """Not opted in: kgraph sets ORT_DISABLE_TELEMETRY before onnxruntime loads and nothing
    lands in ~/.cache/Microsoft. Opted in: kgraph leaves onnxruntime's own default alone
    (whether onnxruntime then writes its store depends on its build, so only our part is
    asserted)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME", "KGRAPH_ORT_TELEMETRY")}
    env.update(HOME=str(tmp_path), **({"KGRAPH_ORT_TELEMETRY": "1"} if opt_in else {}))
    code = ("import os, numpy as np; from kgraph import keras; "
            "m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name='secret')]); "
            "m.predict_on_batch(np.ones((1, 2), 'f4')); "
            "print(os.environ.get('ORT_DISABLE_TELEMETRY'))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == ("None" if opt_in else "1")
    if not opt_in:
        assert not (tmp_path / ".cache" / "Microsoft").exists()
