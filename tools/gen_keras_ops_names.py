"""Writes tests/data/keras_ops_names.txt: every public `keras.ops` name of the installed Keras
3 (functions at the top level and in the sub-namespaces `keras.ops.<sub>`, written
`sub.name`), which tests/test_keras_ops_coverage.py checks kgraph against. Run with real
Keras installed (any backend):

    KERAS_BACKEND=jax python3 tools/gen_keras_ops_names.py
"""
import inspect
import os

import keras

SUBSPACES = ("nn", "numpy", "linalg", "image", "core")  # core: absent in Keras 3.15
OUT = os.path.join(os.path.dirname(__file__), os.pardir, "tests", "data",
                   "keras_ops_names.txt")


def public_functions(module, prefix=""):
    return [prefix + name for name in dir(module)
            if not name.startswith("_") and not inspect.ismodule(getattr(module, name))]


def namespace_names():
    names = public_functions(keras.ops)
    for sub in SUBSPACES:
        if hasattr(keras.ops, sub):
            names += public_functions(getattr(keras.ops, sub), sub + ".")
    return names


def main():
    names = namespace_names()
    subspaces = ",".join(SUBSPACES)
    header = [
        (f"# Keras {keras.__version__} public `keras.ops` names, one per line; `sub.name` is "
         "`keras.ops.sub.name`."),
        ("# Written by tools/gen_keras_ops_names.py "
         "(`KERAS_BACKEND=jax python3 tools/gen_keras_ops_names.py`)"),
        (f"# from the installed Keras: dir() of keras.ops and of keras.ops.{{{subspaces}}}, "
         "modules left out."),
        "# Checked by tests/test_keras_ops_coverage.py against kgraph.keras.ops and docs/guide.md.",
    ]
    with open(OUT, "w") as f:
        f.write("\n".join(header + sorted(set(names))) + "\n")
    print(f"{len(set(names))} names -> {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
