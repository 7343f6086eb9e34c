"""Writes kgraph/keras/saving/keras_ops.json: for every Keras 3 op function that builds an
`Operation` subclass (keras.src.ops.{numpy,nn,math,core,linalg,image}), the class that a
functional model config names (`module`, `class_name`) and the class's constructor
parameters (which of the function's arguments Keras writes into the op's `config`; the rest
are the node's call arguments). Run with real Keras installed (any backend):

    KERAS_BACKEND=jax python tools/gen_keras_ops_table.py
"""
import importlib
import inspect
import json
import os

import keras

FAMILIES = ("numpy", "nn", "math", "core", "linalg", "image")
# Python operators on KerasTensors, as Keras 3 routes them (keras/src/backend/common/
# keras_tensor.py): operator -> op function
OPERATORS = {"__add__": "add", "__sub__": "subtract", "__mul__": "multiply",
             "__truediv__": "true_divide", "__floordiv__": "floor_divide", "__mod__": "mod",
             "__pow__": "power", "__matmul__": "matmul", "__neg__": "negative",
             "__abs__": "absolute", "__invert__": "logical_not", "__and__": "logical_and",
             "__or__": "logical_or", "__lt__": "less", "__le__": "less_equal",
             "__gt__": "greater", "__ge__": "greater_equal", "__getitem__": "get_item"}


def camel(name):
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def main():
    table = {}
    for family in FAMILIES:
        module = importlib.import_module(f"keras.src.ops.{family}")
        for name, fn in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != \
                    module.__name__:
                continue
            cls = getattr(module, camel(name), None)
            if not (inspect.isclass(cls) and issubclass(cls, keras.Operation)):
                continue
            init = [p.name for p in inspect.signature(cls.__init__).parameters.values()
                    if p.name not in ("self", "name") and p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                                      p.KEYWORD_ONLY)]
            call = [p.name for p in inspect.signature(fn).parameters.values()]
            table.setdefault(name, {})[family] = {"class_name": cls.__name__, "init": init,
                                                  "args": call}
    out = os.path.join(os.path.dirname(__file__), "..", "kgraph", "keras", "saving",
                       "keras_ops.json")
    with open(out, "w") as f:
        json.dump({"keras": keras.__version__, "operators": OPERATORS, "ops": table}, f,
                  indent=1, sort_keys=True)
        f.write("\n")
    print(f"{sum(len(v) for v in table.values())} op classes -> {out}")


if __name__ == "__main__":
    main()
