"""`StringLookup` and `IntegerLookup` (Keras 3 names, arguments, vocabulary layout and output
modes). Indices: `[mask_token] + [OOV] * num_oov_indices + vocabulary`; `adapt()` orders
tokens by count, ties by token (descending), as Keras' IndexLookup. Both run on the host on
numpy arrays (see host_layer.py); `IntegerLookup` with integer inputs also runs inside the
graph (an equality against each vocabulary entry), so it may sit in a model. A ragged batch
(token lists of different lengths, TensorFlow's `tf.ragged.constant` data) is adapted on and,
in the multi_hot/count/tf_idf modes, encoded one vector per row."""
from __future__ import annotations

import collections

import numpy as np

from kgraph import ops
from kgraph.keras.layers.base import KerasTensor
from kgraph.keras.layers.preprocessing.adapt_data import iterate_batches
from kgraph.keras.layers.preprocessing.categorical import encode_categorical, encoded_shape
from kgraph.keras.layers.preprocessing.hashing import hash_bucket, salt_key
from kgraph.keras.layers.preprocessing.host_layer import (HostLayer, RowBatches, as_host_array,
                                                          ragged_rows)

__all__ = ["IntegerLookup", "StringLookup"]

LOOKUP_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


def sorted_vocabulary(counts, limit):
    """Tokens by count, ties by token, both descending (Keras' lexsort(...)[::-1])."""
    tokens = sorted(counts, key=lambda t: (counts[t], t), reverse=True)
    return tokens if limit is None else tokens[:limit]


class IndexLookup(HostLayer):
    """Shared machinery of `StringLookup` and `IntegerLookup`."""

    def __init__(self, max_tokens, num_oov_indices, mask_token, oov_token, vocabulary=None,
                 idf_weights=None, invert=False, output_mode="int", sparse=False,
                 pad_to_max_tokens=False, oov_method="floormod", salt=None, **kwargs):
        # Keras 3.15 configs also hold the vocabulary's size (the vocabulary itself is then
        # an asset of the .keras file, read after the model is rebuilt)
        self._frozen_vocabulary_size = kwargs.pop("vocabulary_size", None)
        super().__init__(**kwargs)
        if oov_method not in ("floormod", "farmhash"):
            raise ValueError(f"Unknown value for `oov_method` argument of "
                             f"{type(self).__name__}. Allowed values are: ('floormod', "
                             f"'farmhash'). Received: oov_method={oov_method}")
        if salt is not None and oov_method != "farmhash" and self._integer_keys():
            raise ValueError(f"`salt` can only be used when `oov_method='farmhash'`. "
                             f"Received: oov_method={oov_method}")
        self.oov_method = oov_method
        self.salt = salt_key(salt, "IndexLookup", "a tuple of 2 integers")  # keyed SipHash
        # Keras' deprecated names, still accepted (the keras.io structured-data example)
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        if output_mode not in LOOKUP_MODES:
            raise ValueError(f"Invalid value for argument `output_mode`. Expected one of "
                             f"{list(LOOKUP_MODES)}. Received: output_mode={output_mode}")
        if invert and output_mode != "int":
            raise ValueError(f"`output_mode` must be `'int'` when `invert` is true. "
                             f"Received: output_mode={output_mode}")
        if num_oov_indices < 0:
            raise ValueError(f"`num_oov_indices` must be greater than or equal to 0. "
                             f"Received: num_oov_indices={num_oov_indices}")
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(f"If set, `max_tokens` must be greater than 1. "
                             f"Received: max_tokens={max_tokens}")
        if sparse:
            raise ValueError(f"{type(self).__name__}: sparse=True is not supported by kgraph.")
        self.max_tokens, self.num_oov_indices = max_tokens, int(num_oov_indices)
        self.mask_token, self.oov_token = mask_token, oov_token
        self.invert, self.output_mode, self.sparse = invert, output_mode, sparse
        self.pad_to_max_tokens = pad_to_max_tokens
        self.idf_weights = None
        self._vocabulary = []
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)

    # -- vocabulary -----------------------------------------------------------------------
    def _token_start(self):
        return (self.mask_token is not None) + self.num_oov_indices

    def _clean_token(self, token):
        return token

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Use `vocabulary` (tokens without the mask/OOV entries, or with them leading)."""
        tokens = [self._clean_token(t) for t in np.asarray(vocabulary, dtype=object).ravel()]
        specials = ([self.mask_token] if self.mask_token is not None else []) + \
            [self.oov_token] * self.num_oov_indices
        if tokens[:len(specials)] == specials:
            tokens = tokens[len(specials):]
        if len(set(tokens)) != len(tokens):
            repeated = sorted({t for t in tokens if tokens.count(t) > 1}, key=str)
            raise ValueError(f"The passed vocabulary has at least one repeated term. "
                             f"Please uniquify your dataset. The repeated terms are {repeated}")
        if self.mask_token is not None and self.mask_token in tokens:
            raise ValueError(f"Found reserved mask token at unexpected location in "
                             f"`vocabulary`. Received: mask_token={self.mask_token!r}")
        self._vocabulary = tokens
        if idf_weights is not None:
            idf = np.asarray(idf_weights, np.float32).ravel()
            if len(idf) == len(tokens):  # weights of the tokens only: specials take the mean
                idf = np.concatenate([[idf.mean() if len(idf) else 0.0] * self._token_start(),
                                      idf])
            self.idf_weights = idf.astype(np.float32)
        self._index = {t: i + self._token_start() for i, t in enumerate(tokens)}

    def get_vocabulary(self, include_special_tokens=True):
        if not include_special_tokens:
            return list(self._vocabulary)
        return ([self.mask_token] if self.mask_token is not None else []) + \
            [self.oov_token] * self.num_oov_indices + list(self._vocabulary)

    def vocabulary_size(self):
        return self._token_start() + len(self._vocabulary)

    def _depth(self):
        if self.pad_to_max_tokens and self.max_tokens:
            return self.max_tokens
        if not self._vocabulary and self._frozen_vocabulary_size:
            return self._frozen_vocabulary_size  # until the vocabulary asset is read
        return self.vocabulary_size()

    def load_vocabulary_asset(self, text):
        """Set the vocabulary from a Keras `vocabulary.txt` asset (one token a line, the
        special tokens first)."""
        lines = text.splitlines()
        while lines and lines[-1] == "":
            lines.pop()
        self.set_vocabulary(lines, self.idf_weights)

    def adapt(self, data, steps=None):
        """Set the vocabulary to the most frequent tokens of `data` (arrays or batches, or the
        rows of a ragged batch: a list of token lists of different lengths)."""
        rows = ragged_rows(data)
        if rows is not None:
            data = RowBatches(rows)
        counts = collections.Counter()
        for batch in iterate_batches(data):
            counts.update(self._clean_token(t) for t in as_host_array(batch).ravel())
        for special in (self.mask_token, self.oov_token):
            counts.pop(special, None)
        limit = None if self.max_tokens is None else self.max_tokens - self._token_start()
        tokens = sorted_vocabulary(counts, limit)
        idf = None
        if self.output_mode == "tf_idf":
            idf = self._idf(data, tokens)
        self.set_vocabulary(tokens, idf)

    def _idf(self, data, tokens):
        """Keras' inverse document frequency `log(1 + num_documents / (1 + df))` per index
        (the mask and OOV entries take the mean, as Keras pads them)."""
        documents = [set(as_host_array(row).ravel().tolist()) for batch in iterate_batches(data)
                     for row in np.atleast_2d(as_host_array(batch))]
        df = np.array([sum(t in d for d in documents) for t in tokens], np.float64)
        idf = np.log(1.0 + len(documents) / (1.0 + df))
        head = [float(np.mean(idf)) if len(idf) else 0.0] * self._token_start()
        return np.concatenate([head, idf]).astype(np.float32)

    # -- lookup ---------------------------------------------------------------------------
    def _lookup(self, token):
        token = self._clean_token(token)
        if self.mask_token is not None and token == self.mask_token:
            return 0
        index = self._index.get(token) if self._vocabulary else None
        if index is not None:
            return index
        if self.num_oov_indices == 0:
            raise ValueError(f"{type(self).__name__}: {token!r} is not in the vocabulary and "
                             f"num_oov_indices=0.")
        offset = self.mask_token is not None
        return offset + (0 if self.num_oov_indices == 1 else self._oov_bucket(token))

    def _oov_bucket(self, token):
        return hash_bucket(token, self.num_oov_indices, self.salt)

    @staticmethod
    def _integer_keys():
        return False

    def _inverse(self, index):
        vocabulary = self.get_vocabulary()
        index = int(index)
        if 0 <= index < len(vocabulary):
            return vocabulary[index]
        return self.oov_token

    def host_call(self, inputs, count_weights=None):
        if not hasattr(self, "_index"):
            self.set_vocabulary([])
        rows = ragged_rows(inputs)
        if rows is not None:
            return self._encode_rows(rows, count_weights)
        values = as_host_array(inputs)
        if self.invert:
            return np.vectorize(self._inverse, otypes=[object])(values) if values.size \
                else values.astype(object)
        indices = np.vectorize(self._lookup, otypes=[np.int64])(values) if values.size \
            else values.astype(np.int64)
        return self.encode(indices, self._depth(), count_weights, self._padded_idf())

    def _encode_rows(self, rows, count_weights):
        """A ragged batch: each row's tokens encoded into one `(depth,)` vector (multi_hot,
        count, tf_idf), as Keras encodes a ragged batch; per-token outputs would be ragged."""
        if self.invert or self.output_mode in ("int", "one_hot") or count_weights is not None:
            raise ValueError(f"{type(self).__name__}: rows of different lengths (a ragged "
                             f"batch) give ragged results with output_mode={self.output_mode!r}"
                             f"{' and invert=True' if self.invert else ''}, and kgraph has no "
                             f"ragged tensors (nor count_weights for them); pad the rows to one "
                             f"length, or use output_mode 'multi_hot', 'count' or 'tf_idf'.")
        depth, idf = self._depth(), self._padded_idf()
        encoded = [self.encode(np.array([self._lookup(t) for t in row], np.int64), depth,
                               idf_weights=idf) if len(row) else np.zeros(depth, np.float32)
                   for row in rows]
        return np.stack(encoded).astype(np.float32)

    def _padded_idf(self):
        if self.idf_weights is None:
            return None
        return np.pad(self.idf_weights, (0, self._depth() - len(self.idf_weights)))

    def compute_output_shape(self, input_shape):
        return encoded_shape(input_shape, "int" if self.invert else self.output_mode,
                             self._depth())

    def get_config(self):
        vocabulary = [v.item() if isinstance(v, np.generic) else v for v in self._vocabulary]
        return {**super().get_config(), "invert": self.invert, "max_tokens": self.max_tokens,
                "num_oov_indices": self.num_oov_indices, "oov_token": self.oov_token,
                "mask_token": self.mask_token, "output_mode": self.output_mode,
                "sparse": self.sparse, "pad_to_max_tokens": self.pad_to_max_tokens,
                "vocabulary": vocabulary or None,
                "idf_weights": None if self.idf_weights is None else self.idf_weights.tolist(),
                "oov_method": self.oov_method, "salt": self.salt}


class StringLookup(IndexLookup):
    """Maps strings to integer indices from a vocabulary (host-side: numpy string/object
    arrays in, numpy out).

    Args:
        max_tokens: largest vocabulary size, special tokens included (None: no limit).
        num_oov_indices: number of out-of-vocabulary indices (default 1).
        mask_token: the token meaning "masked" (index 0), default None.
        oov_token: the token of the OOV indices with `invert=True` (default `"[UNK]"`).
        vocabulary: optional list of tokens.
        idf_weights: with `output_mode="tf_idf"`, the weight of each index.
        invert: map indices back to strings.
        output_mode: `"int"` (default), `"one_hot"`, `"multi_hot"`, `"count"`, `"tf_idf"`.
        pad_to_max_tokens: encodings have `max_tokens` entries.
        sparse: must be False.
        encoding: accepted for compatibility (strings are Python `str`).

    Example:
        >>> StringLookup(vocabulary=["a", "b", "c", "d"])(np.array([["a", "c", "d"],
        ...                                                         ["d", "z", "b"]]))
        array([[1, 3, 4], [4, 0, 2]])
    """

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token="[UNK]",
                 vocabulary=None, idf_weights=None, invert=False, output_mode="int",
                 pad_to_max_tokens=False, sparse=False, encoding="utf-8", name=None, **kwargs):
        kwargs.pop("vocabulary_dtype", None)
        self.encoding = encoding
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, vocabulary,
                         idf_weights, invert, output_mode, sparse, pad_to_max_tokens,
                         name=name, **kwargs)

    def _clean_token(self, token):
        return token.decode(self.encoding) if isinstance(token, bytes) else str(token)

    def get_config(self):
        return {**super().get_config(), "encoding": self.encoding}


class IntegerLookup(IndexLookup):
    """Maps integers to contiguous indices from a vocabulary. Integer inputs also work inside
    a model (in the graph); numpy arrays are looked up on the host.

    Args:
        max_tokens, num_oov_indices, vocabulary, idf_weights, invert, output_mode,
        pad_to_max_tokens, sparse: as `StringLookup`.
        mask_token: the integer meaning "masked" (index 0), default None.
        oov_token: the value of the OOV indices with `invert=True` (default -1).
        vocabulary_dtype: `"int64"` (default) or `"int32"`.

    Example:
        >>> IntegerLookup(vocabulary=[12, 36, 1138, 42])(np.array([[12, 1138, 42],
        ...                                                        [42, 1000, 36]]))
        array([[1, 3, 4], [4, 0, 2]])
    """

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1,
                 vocabulary=None, vocabulary_dtype="int64", idf_weights=None, invert=False,
                 output_mode="int", sparse=False, pad_to_max_tokens=False, name=None,
                 **kwargs):
        self.vocabulary_dtype = vocabulary_dtype
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, vocabulary,
                         idf_weights, invert, output_mode, sparse, pad_to_max_tokens,
                         name=name, **kwargs)

    runs_in_graph = True  # a Sequential it leads gives it the graph's integer input

    def _clean_token(self, token):
        return int(token)

    def _oov_bucket(self, token):
        if self.oov_method == "farmhash":  # the decimal string, hashed as Keras does
            return hash_bucket(int(token), self.num_oov_indices, self.salt)
        return int(token) % self.num_oov_indices

    @staticmethod
    def _integer_keys():
        return True

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, KerasTensor) or type(inputs).__name__ == "Value":
            return super(HostLayer, self).__call__(inputs, *args, **kwargs)
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, count_weights=None):
        """In-graph lookup: index = sum over vocabulary entries of (x == entry) * index."""
        if self.invert or self.num_oov_indices > 1 or self.output_mode == "tf_idf":
            raise ValueError(f"IntegerLookup inside a model supports invert=False, "
                             f"num_oov_indices <= 1 and no tf_idf; apply the layer to the "
                             f"data instead. Received: invert={self.invert}, "
                             f"num_oov_indices={self.num_oov_indices}, "
                             f"output_mode={self.output_mode!r}")
        x = ops.expand_dims(ops.cast(inputs, "int64"), -1)
        vocab = np.asarray(self._vocabulary, np.int64)
        positions = np.arange(len(vocab), dtype=np.int64) + self._token_start()
        found = ops.cast(ops.equal(x, vocab), "int64")
        index = ops.sum(found * positions, axis=-1)
        oov = np.int64(self.mask_token is not None)
        index = ops.where(ops.equal(ops.sum(found, axis=-1), 0), oov, index)
        if self.mask_token is not None:
            index = ops.where(ops.equal(x[..., 0], np.int64(self.mask_token)), np.int64(0),
                              index)
        return encode_categorical(index, self.output_mode, self._depth(), "float32",
                                  count_weights) if self.output_mode != "int" else index

    def get_config(self):
        return {**super().get_config(), "vocabulary_dtype": self.vocabulary_dtype}
