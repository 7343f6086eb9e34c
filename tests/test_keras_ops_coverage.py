"""Every Keras 3 `keras.ops` name (tests/data/keras_ops_names.txt) is implemented in
`kgraph.keras.ops` or listed, with a reason, in docs/guide.md's "ops not implemented" table."""
from __future__ import annotations

import os
import re

from kgraph import keras

HERE = os.path.dirname(__file__)
GUIDE = os.path.join(HERE, os.pardir, "docs", "guide.md")


def keras_names():
    with open(os.path.join(HERE, "data", "keras_ops_names.txt")) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def resolve(name):
    obj = keras.ops
    for part in name.split("."):
        if not hasattr(obj, part):
            return None
        obj = getattr(obj, part)
    return obj


def not_implemented_table():
    text = open(GUIDE).read()
    section = text.split("### ops not implemented", 1)[1]
    rows = {}
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        match = re.match(r"\|\s*([\w.]+)\s*\|\s*(.*?)\s*\|\s*$", line)
        if match and match.group(1) != "name":
            rows[match.group(1)] = match.group(2)
    return rows


def test_the_name_list_is_keras_3s():
    names = keras_names()
    assert len(names) > 500 and len(set(names)) == len(names)
    for expected in ("ones", "einsum", "fori_loop", "nn.relu", "linalg.svd", "image.resize",
                     "numpy.tensordot"):
        assert expected in names


def test_the_name_list_is_the_installed_keras_namespace():
    """The list is what tools/gen_keras_ops_names.py reads from the Keras version its header
    names (skipped when another version, or none, is installed)."""
    import importlib.util

    import pytest

    real = pytest.importorskip("keras")
    with open(os.path.join(HERE, "data", "keras_ops_names.txt")) as f:
        version = re.match(r"# Keras (\S+) ", f.readline()).group(1)
    if real.__version__ != version:
        pytest.skip(f"the list is Keras {version}'s; Keras {real.__version__} is installed")
    spec = importlib.util.spec_from_file_location(
        "gen_keras_ops_names", os.path.join(HERE, os.pardir, "tools", "gen_keras_ops_names.py"))
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert sorted(set(generator.namespace_names())) == keras_names()


def test_every_keras_ops_name_is_implemented_or_listed_with_a_reason():
    table = not_implemented_table()
    missing = [n for n in keras_names() if resolve(n) is None and not table.get(n)]
    assert not missing, f"keras.ops names neither implemented nor in docs/guide.md: {missing}"


def test_the_not_implemented_table_lists_only_missing_names():
    implemented = [n for n in not_implemented_table() if resolve(n) is not None]
    assert not implemented, f"implemented, yet listed as missing in docs/guide.md: {implemented}"
    unknown = sorted(set(not_implemented_table()) - set(keras_names()))
    assert not unknown, f"names in the table that Keras does not have: {unknown}"


def test_implemented_names_are_callable():
    for name in keras_names():
        obj = resolve(name)
        assert obj is None or callable(obj), f"keras.ops.{name} is not callable: {obj!r}"
