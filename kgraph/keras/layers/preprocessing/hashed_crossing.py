"""`HashedCrossing` (Keras 3): crosses of categorical features by the hashing trick, as TF's
`tf.sparse.cross_hashed` computes them, so the bins equal Keras'. Per sample, a 64-bit state
starts at the key 0xDECAFCAFFE and takes each feature in turn by FarmHash's `FingerprintCat64`
(a string feature enters as its Fingerprint64, an integer as its own 64 bits); the bin is the
state modulo `num_bins`. It runs on the host (numpy in, numpy out), as `Hashing` does."""
from __future__ import annotations

import numpy as np

from kgraph.keras.layers.preprocessing.categorical import encoded_shape
from kgraph.keras.layers.preprocessing.hashing import fingerprint64
from kgraph.keras.layers.preprocessing.host_layer import HostLayer, HostOutput, as_host_array

__all__ = ["HashedCrossing"]

_MASK = (1 << 64) - 1
CROSS_HASH_KEY = 0xDECAFCAFFE  # TF's default `hash_key` of the sparse cross ops
_CAT_MUL = 0xC6A4A7935BD1E995


def _shift_mix(v):
    return v ^ (v >> 47)


def fingerprint_cat64(first: int, second: int) -> int:
    """FarmHash's `FingerprintCat64`: two 64-bit fingerprints combined into one."""
    result = first ^ _CAT_MUL
    result ^= (_shift_mix((second * _CAT_MUL) & _MASK) * _CAT_MUL) & _MASK
    result = (result * _CAT_MUL) & _MASK
    result = (_shift_mix(result) * _CAT_MUL) & _MASK
    return _shift_mix(result)


def feature_fingerprint(value) -> int:
    """A feature value as the cross sees it: strings by Fingerprint64, integers as is."""
    if isinstance(value, str):
        return fingerprint64(value.encode("utf-8"))
    if isinstance(value, bytes):
        return fingerprint64(value)
    return int(value) & _MASK


def cross_bin(values, num_bins) -> int:
    state = CROSS_HASH_KEY
    for value in values:
        state = fingerprint_cat64(state, feature_fingerprint(value))
    return state % num_bins


class HashedCrossing(HostLayer):
    """Crosses categorical features by hashing: `hash(concatenate(features)) % num_bins`.

    Inputs are a list or tuple of at least two integer or string features of one shape:
    `()`, `(batch_size,)` or `(batch_size, 1)`.

    Args:
        num_bins: number of hash bins.
        output_mode: `"int"` (default: the bin indices) or `"one_hot"`.
        sparse: must be False (kgraph has no sparse tensors).

    Example:
        >>> layer = HashedCrossing(num_bins=5)
        >>> layer((np.array(["A", "B", "A", "B", "A"]), np.array([101, 101, 101, 102, 102])))
        array([1, 4, 1, 1, 3])
    """

    def __init__(self, num_bins, output_mode="int", sparse=False, name=None, dtype=None,
                 **kwargs):
        if output_mode == "int" and dtype is None:
            dtype = "int64"
        super().__init__(name=name, dtype=dtype, **kwargs)
        if sparse:
            raise ValueError(f"HashedCrossing: sparse=True is not supported by kgraph (no "
                             f"sparse tensors). Received: sparse={sparse}")
        if not isinstance(output_mode, str) or output_mode not in ("int", "one_hot"):
            raise ValueError(f"Unknown value for `output_mode` argument of HashedCrossing. "
                             f"Allowed values are: ('int', 'one_hot'). Received: "
                             f"output_mode={output_mode}")
        if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or \
                num_bins <= 0:
            raise ValueError(f"HashedCrossing: `num_bins` must be a positive integer. "
                             f"Received: num_bins={num_bins!r}")
        self.num_bins, self.output_mode, self.sparse = int(num_bins), output_mode, sparse

    def host_call(self, inputs):
        features = self._checked_features(inputs)
        shape = features[0].shape
        columns = [f.reshape(-1) for f in features]
        bins = np.array([cross_bin(row, self.num_bins) for row in zip(*columns)],
                        dtype=np.int64).reshape(shape)
        return self.encode(bins, self.num_bins)

    def _checked_features(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"`HashedCrossing` should be called on a list or tuple of "
                             f"inputs. Received: inputs={inputs}")
        if len(inputs) < 2:
            raise ValueError(f"`HashedCrossing` should be called on at least two inputs. "
                             f"Received: inputs={inputs}")
        features = [as_host_array(x) for x in inputs]
        first = features[0].shape
        if len(first) > 2 or (len(first) == 2 and first[-1] != 1):
            raise ValueError(f"All `HashedCrossing` inputs should have shape `()`, "
                             f"`(batch_size)` or `(batch_size, 1)`. Received: inputs={inputs}")
        if any(f.shape != first for f in features[1:]):
            raise ValueError(f"All `HashedCrossing` inputs should have equal shape. "
                             f"Received: inputs={inputs}")
        for f in features:
            strings = f.dtype == object and all(isinstance(v, str) for v in f.ravel())
            if f.dtype.kind not in "iu" and not strings:
                raise ValueError(f"All `HashedCrossing` inputs should have an integer or "
                                 f"string dtype. Received: inputs={inputs}")
        return features

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 or \
                not all(isinstance(s, tuple) for s in input_shape):
            raise ValueError(f"Expected as input a list/tuple of 2 tensors. "
                             f"Received input_shape={input_shape}")
        if input_shape[0][-1:] != input_shape[1][-1:]:
            raise ValueError(f"Expected the two input tensors to have identical shapes. "
                             f"Received input_shape={input_shape}")
        return encoded_shape(input_shape[0], self.output_mode, self.num_bins)

    def host_output_specs(self, input_shapes):
        shapes = list(input_shapes)  # two features or more (a FeatureSpace cross of three)
        if len(shapes) > 2 and any(s != shapes[0] for s in shapes):
            raise ValueError(f"All `HashedCrossing` inputs should have equal shape. "
                             f"Received input_shape={shapes}")
        return HostOutput(self.compute_output_shape(shapes[:2]),
                          "int64" if self.output_mode == "int" else "float32")

    def get_config(self):
        return {"num_bins": self.num_bins, "output_mode": self.output_mode,
                "sparse": self.sparse, "name": self.name, "dtype": self.dtype}
