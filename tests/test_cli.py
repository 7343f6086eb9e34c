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
