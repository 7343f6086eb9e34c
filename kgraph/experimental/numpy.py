"""`tf.experimental.numpy` ("TensorFlow NumPy", `import tensorflow.experimental.numpy as tnp`):
numpy's functions on tensors, for layers and losses written in the numpy style (the keras.io
TensorFlow NumPy example's `tnp.matmul`, `tnp.maximum`, `tnp.mean`, `tnp.square`).

Each name is the `keras.ops.numpy` function of the same name (kgraph/ops/numpy_namespace.py):
it runs eagerly on arrays, records ops inside traced steps and takes functional tensors, with
Keras' dtype rules. Eager results are eager tensors (`.numpy()`), and `tnp.ndarray` is
`tf.Tensor`, as in TensorFlow.
"""
from __future__ import annotations

import types

from kgraph.ops import numpy as _numpy
from kgraph.tf_names import Tensor as ndarray  # noqa: F401
from kgraph.tf_names import eager_tensors as _eager_tensors


def _export():
    for name, fn in vars(_numpy).items():
        if not name.startswith("_") and isinstance(fn, types.FunctionType):
            globals()[name] = _eager_tensors(fn)


_export()
