"""plot_model (pydot + Graphviz), plot_history (matplotlib) and `kgraph plot`: valid PNG/SVG
files holding the expected node labels, and errors that say what to install."""
import shutil
import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import kgraph
from kgraph import keras
from kgraph.cli import main

pytest.importorskip("pydot")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot program is not installed")


def _model():
    inputs = keras.Input((6,), name="features")
    a = keras.layers.Dense(4, name="left")(inputs)
    b = keras.layers.Dense(4, name="right")(inputs)
    merged = keras.layers.Concatenate(name="merge")([a, b])
    inner = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, name="inner_dense")],
                             name="block")
    return keras.Model(inputs, inner(merged), name="two_branch")


def _svg_texts(path):
    tree = ET.parse(path)
    return [t.text for t in tree.iter("{http://www.w3.org/2000/svg}text") if t.text]


def _png_size(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@needs_dot
def test_plot_model_svg_has_layers_shapes_and_edges(tmp_path):
    path = tmp_path / "model.svg"
    keras.utils.plot_model(_model(), path, show_shapes=True, show_dtype=True)
    texts = _svg_texts(path)
    for label in ("left (Dense)", "right (Dense)", "merge (Concatenate)", "block (Sequential)",
                  "Output shape: (None, 8)", "Input shape: [(None, 4), (None, 4)]",
                  "Output dtype: float32"):
        assert label in texts, (label, texts)
    edges = [g.find("{http://www.w3.org/2000/svg}title").text
             for g in ET.parse(path).iter("{http://www.w3.org/2000/svg}g")
             if g.get("class") == "edge"]
    assert sorted(edges) == sorted(["features->left", "features->right", "left->merge",
                                    "right->merge", "merge->block"])


@needs_dot
def test_plot_model_png_and_expand_nested(tmp_path):
    path = tmp_path / "model.png"
    keras.utils.plot_model(_model(), path, expand_nested=True, rankdir="LR", dpi=50)
    width, height = _png_size(path)
    assert width > height > 0  # left to right
    svg = tmp_path / "nested.svg"
    keras.utils.plot_model(_model(), svg, expand_nested=True, show_layer_names=True)
    texts = _svg_texts(svg)
    assert "block/inner_dense (Dense)" in texts and "block" in texts  # the cluster's label


def test_plot_model_errors_name_the_fix(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"to_file='m\.gif'"):
        keras.utils.plot_model(_model(), "m.gif")
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` program
    with pytest.raises(kgraph.utils.PlotDependencyError, match="apt-get install graphviz"):
        keras.utils.plot_model(_model(), tmp_path / "m.png")


def test_plot_history_png(tmp_path):
    pytest.importorskip("matplotlib")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse", metrics=["mae"])
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    history = model.fit(x, x[:, :1], validation_split=0.25, epochs=3, verbose=0)
    path = tmp_path / "history.png"
    kgraph.utils.plot_history(history, path, dpi=40)
    width, height = _png_size(path)
    assert (width, height) == (400, 144)  # two panels (loss, mae) of 5 x 3.6 inches
    svg = tmp_path / "history.svg"
    kgraph.utils.plot_history(history.history, svg, metrics=["loss"])
    root = ET.parse(svg).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    lines = [e for e in root.iter("{http://www.w3.org/2000/svg}g")
             if (e.get("id") or "").startswith("line2d")]
    assert len(lines) >= 2  # train and validation (plus axis ticks)
    with pytest.raises(ValueError, match="accuracy"):
        kgraph.utils.plot_history(history, path, metrics=["accuracy"])


@needs_dot
def test_kgraph_plot_command(tmp_path, capsys):
    model_file = tmp_path / "m.keras"
    _model().save(model_file)
    out = tmp_path / "m.svg"
    assert main(["plot", str(model_file), "--output", str(out), "--show-shapes"]) == 0
    assert "merge (Concatenate)" in _svg_texts(out)
    assert main(["plot", str(model_file), "--output", str(tmp_path / "m.bmp")]) == 1
    assert "to_file=" in capsys.readouterr().err
