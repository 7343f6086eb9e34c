"""`Hashing` (Keras 3): values to `num_bins` buckets by FarmHash Fingerprint64 of their string
form, TF's `to_hash_bucket_fast`, so bins equal Keras' (integers are hashed as their decimal
strings, as Keras does). With a `salt`, SipHash-2-4 keyed by it (`siphashc`), TF's
`to_hash_bucket_strong`, as Keras. It runs on the host (numpy in, numpy out): the 64-bit string
hash has no counterpart among the graph's primitives."""
from __future__ import annotations

import struct

import numpy as np

from kgraph.keras.layers.preprocessing.host_layer import HostLayer, as_host_array

__all__ = ["Hashing"]

_MASK = (1 << 64) - 1
K0, K1, K2 = 0xC3A5C85C97CB3127, 0xB492B66FBE98F273, 0x9AE16A3B2F90404F


def _fetch64(s, i):
    return int.from_bytes(s[i:i + 8], "little")


def _fetch32(s, i):
    return int.from_bytes(s[i:i + 4], "little")


def _rotate(v, shift):
    return v if shift == 0 else ((v >> shift) | (v << (64 - shift))) & _MASK


def _shift_mix(v):
    return v ^ (v >> 47)


def _hash16(u, v, mul):
    a = ((u ^ v) * mul) & _MASK
    a ^= a >> 47
    b = ((v ^ a) * mul) & _MASK
    b ^= b >> 47
    return (b * mul) & _MASK


def _hash_0_to_16(s):
    n = len(s)
    if n >= 8:
        mul = K2 + n * 2
        a = (_fetch64(s, 0) + K2) & _MASK
        b = _fetch64(s, n - 8)
        c = (_rotate(b, 37) * mul + a) & _MASK
        d = ((_rotate(a, 25) + b) * mul) & _MASK
        return _hash16(c, d, mul)
    if n >= 4:
        mul = K2 + n * 2
        return _hash16((n + (_fetch32(s, 0) << 3)) & _MASK, _fetch32(s, n - 4), mul)
    if n > 0:
        y = s[0] + (s[n >> 1] << 8)
        z = n + (s[n - 1] << 2)
        return (_shift_mix(((y * K2) ^ (z * K0)) & _MASK) * K2) & _MASK
    return K2


def _ends(s, first_mul, mul):
    """The four words both medium-length hashes start from (first two, last two)."""
    n = len(s)
    return ((_fetch64(s, 0) * first_mul) & _MASK, _fetch64(s, 8),
            (_fetch64(s, n - 8) * mul) & _MASK, (_fetch64(s, n - 16) * K2) & _MASK)


def _hash_17_to_32(s):
    mul = K2 + len(s) * 2
    a, b, c, d = _ends(s, K1, mul)
    return _hash16((_rotate((a + b) & _MASK, 43) + _rotate(c, 30) + d) & _MASK,
                   (a + _rotate((b + K2) & _MASK, 18) + c) & _MASK, mul)


def _hash_33_to_64(s):
    n = len(s)
    mul = K2 + n * 2
    a, b, c, d = _ends(s, K2, mul)
    y = (_rotate((a + b) & _MASK, 43) + _rotate(c, 30) + d) & _MASK
    z = _hash16(y, (a + _rotate((b + K2) & _MASK, 18) + c) & _MASK, mul)
    e = (_fetch64(s, 16) * mul) & _MASK
    f = _fetch64(s, 24)
    g = ((y + _fetch64(s, n - 32)) * mul) & _MASK
    h = ((z + _fetch64(s, n - 24)) * mul) & _MASK
    return _hash16((_rotate((e + f) & _MASK, 43) + _rotate(g, 30) + h) & _MASK,
                   (e + _rotate((f + a) & _MASK, 18) + g) & _MASK, mul)


def _weak32(s, i, a, b):
    w, x, y, z = (_fetch64(s, i + k) for k in (0, 8, 16, 24))
    a = (a + w) & _MASK
    b = _rotate((b + a + z) & _MASK, 21)
    c = a
    a = (a + x + y) & _MASK
    b = (b + _rotate(a, 44)) & _MASK
    return (a + z) & _MASK, (b + c) & _MASK


def _hash_long(s):
    n, seed = len(s), 81
    x = seed
    y = (seed * K1 + 113) & _MASK
    z = (_shift_mix((y * K2 + 113) & _MASK) * K2) & _MASK
    v, w = (0, 0), (0, 0)
    x = (x * K2 + _fetch64(s, 0)) & _MASK
    end = ((n - 1) // 64) * 64
    last64 = end + ((n - 1) & 63) - 63
    i = 0
    while True:
        x = (_rotate((x + y + v[0] + _fetch64(s, i + 8)) & _MASK, 37) * K1) & _MASK
        y = (_rotate((y + v[1] + _fetch64(s, i + 48)) & _MASK, 42) * K1) & _MASK
        x ^= w[1]
        y = (y + v[0] + _fetch64(s, i + 40)) & _MASK
        z = (_rotate((z + w[0]) & _MASK, 33) * K1) & _MASK
        v = _weak32(s, i, (v[1] * K1) & _MASK, (x + w[0]) & _MASK)
        w = _weak32(s, i + 32, (z + w[1]) & _MASK, (y + _fetch64(s, i + 16)) & _MASK)
        z, x = x, z
        i += 64
        if i == end:
            break
    mul = K1 + ((z & 0xFF) << 1)
    i = last64
    w = ((w[0] + ((n - 1) & 63)) & _MASK, w[1])
    v = ((v[0] + w[0]) & _MASK, v[1])
    w = ((w[0] + v[0]) & _MASK, w[1])
    x = (_rotate((x + y + v[0] + _fetch64(s, i + 8)) & _MASK, 37) * mul) & _MASK
    y = (_rotate((y + v[1] + _fetch64(s, i + 48)) & _MASK, 42) * mul) & _MASK
    x ^= (w[1] * 9) & _MASK
    y = (y + v[0] * 9 + _fetch64(s, i + 40)) & _MASK
    z = (_rotate((z + w[0]) & _MASK, 33) * mul) & _MASK
    v = _weak32(s, i, (v[1] * mul) & _MASK, (x + w[0]) & _MASK)
    w = _weak32(s, i + 32, (z + w[1]) & _MASK, (y + _fetch64(s, i + 16)) & _MASK)
    z, x = x, z
    return _hash16((_hash16(v[0], w[0], mul) + _shift_mix(y) * K0 + z) & _MASK,
                   (_hash16(v[1], w[1], mul) + x) & _MASK, mul)


def fingerprint64(data: bytes) -> int:
    """FarmHash Fingerprint64 (farmhashna::Hash64) of `data`, as TF's `Fingerprint64`."""
    n = len(data)
    if n <= 16:
        return _hash_0_to_16(data)
    if n <= 32:
        return _hash_17_to_32(data)
    if n <= 64:
        return _hash_33_to_64(data)
    return _hash_long(data)


def token_bytes(value) -> bytes:
    """A value's string form as TF hashes it (ints as decimal strings)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (int, np.integer)):
        return str(int(value)).encode()
    return str(value).encode("utf-8")


def hash_bucket(value, num_bins, salt=None) -> int:
    """`value`'s bin: TF's `to_hash_bucket_fast`, or `to_hash_bucket_strong` with the key
    `salt` (two ints, read as uint64 as TF does)."""
    if salt is None:
        return fingerprint64(token_bytes(value)) % num_bins
    try:
        from siphashc import siphash
    except ImportError as error:
        raise ImportError("Hashing with a `salt` hashes with SipHash from the `siphashc` "
                          "package: pip install siphashc (or kgraph[preprocessing])") from error
    key = struct.pack("<QQ", *(int(k) & _MASK for k in salt))
    return siphash(key, token_bytes(value)) % num_bins


def salt_key(salt, owner="Hashing", pair="a tuple of size 2 integers"):
    """Keras' `salt` argument as its two-int key (an int k is [k, k]), or None; else the
    ValueError Keras raises, naming `owner`."""
    if salt is None:
        return None
    if isinstance(salt, (tuple, list)) and len(salt) == 2:
        return list(salt)
    if isinstance(salt, int) and not isinstance(salt, bool):
        return [salt, salt]
    raise ValueError(f"The `salt` argument for `{owner}` can only be {pair}, or a single "
                     f"integer. Received: salt={salt}.")


class Hashing(HostLayer):
    """Hashes strings or integers into `num_bins` bins (`to_hash_bucket_fast`, or with a
    `salt` the keyed `to_hash_bucket_strong`).

    With `mask_value`, that value maps to 0 and the others to `1 + hash % (num_bins - 1)`.

    Args:
        num_bins: number of bins (including the mask bin).
        mask_value: the value that means "masked" (maps to bin 0).
        salt: None, an int k (the key [k, k]) or two ints: hash with SipHash-2-4 keyed by
            them, so bins differ from unsalted ones and from other salts.
        output_mode: `"int"` (default), `"one_hot"`, `"multi_hot"` or `"count"`.
        sparse: must be False.

    Example:
        >>> Hashing(num_bins=3)(np.array([["A"], ["B"], ["C"], ["D"], ["E"]]))
        array([[1], [0], [1], [1], [2]])
    """

    def __init__(self, num_bins, mask_value=None, salt=None, output_mode="int", sparse=False,
                 dtype=None, **kwargs):
        if dtype is None:  # Keras' default, which its int mode requires of a config
            dtype = "int64" if output_mode == "int" else "float32"
        super().__init__(dtype=dtype, **kwargs)
        if num_bins is None or num_bins <= 0:
            raise ValueError(f"The `num_bins` for `Hashing` cannot be `None` or non-positive "
                             f"values. Received: num_bins={num_bins}.")
        self.num_bins, self.mask_value = int(num_bins), mask_value
        self.salt = salt_key(salt)
        self.output_mode, self.sparse = output_mode, sparse

    def host_call(self, inputs):
        values = as_host_array(inputs)
        if self.mask_value is None:
            bins = np.vectorize(lambda v: hash_bucket(v, self.num_bins, self.salt),
                                otypes=[np.int64])
            out = bins(values) if values.size else values.astype(np.int64)
        else:
            def masked(v):
                if v == self.mask_value:
                    return 0
                return 1 + hash_bucket(v, self.num_bins - 1, self.salt)
            out = np.vectorize(masked, otypes=[np.int64])(values) if values.size else \
                values.astype(np.int64)
        return self.encode(out, self.num_bins)

    def compute_output_shape(self, input_shape):
        from kgraph.keras.layers.preprocessing.categorical import encoded_shape

        return encoded_shape(input_shape, self.output_mode, self.num_bins)

    def get_config(self):
        return {**super().get_config(), "num_bins": self.num_bins,
                "salt": self.salt, "mask_value": self.mask_value,
                "output_mode": self.output_mode, "sparse": self.sparse}
