"""`TextVectorization` (Keras 3 names, arguments and outputs), on the host: numpy string or
object arrays (or lists of str) in, numpy integer/float arrays out (see host_layer.py).

Standardization, splitting and n-grams follow Keras' defaults: `lower_and_strip_punctuation`
lowercases and removes the characters of Keras' `DEFAULT_STRIP_REGEX`; `whitespace` splits
on runs of whitespace; n-grams join tokens with a space. The vocabulary is a `StringLookup`
with mask token `""` (index 0) and OOV token `"[UNK]"` (index 1). Callables given as
`standardize` / `split` take and return Python strings / lists of strings.
"""
from __future__ import annotations

import re

import numpy as np

from kgraph.keras.layers.preprocessing.adapt_data import iterate_batches
from kgraph.keras.layers.preprocessing.host_layer import HostLayer, RowBatches, as_host_array
from kgraph.keras.layers.preprocessing.lookup import StringLookup

__all__ = ["TextVectorization"]

DEFAULT_STRIP_REGEX = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", None)
SPLIT = ("whitespace", "character", None)


class TextVectorization(HostLayer):
    """Turns raw strings into token indices (`output_mode="int"`) or bag-of-words vectors.

    Args:
        max_tokens: largest vocabulary size, the mask and OOV tokens included.
        standardize: `"lower_and_strip_punctuation"` (default), `"lower"`,
            `"strip_punctuation"`, None, or a callable on one string.
        split: `"whitespace"` (default), `"character"`, None, or a callable.
        ngrams: None, an int (all n-grams up to it) or a tuple of n.
        output_mode: `"int"` (default), `"multi_hot"`, `"count"` or `"tf_idf"`.
        output_sequence_length: pad/truncate `"int"` outputs to this length (otherwise the
            longest sequence of the batch).
        pad_to_max_tokens: encodings have `max_tokens` entries.
        vocabulary: optional list of tokens (or a path to a file with one per line).
        idf_weights: weights for `"tf_idf"`.
        sparse, ragged: must be False.
        encoding: accepted for compatibility.

    Example:
        >>> layer = TextVectorization(output_sequence_length=4)
        >>> layer.adapt(np.array(["the cat sat", "the dog"]))
        >>> layer(np.array(["the cat", "a dog sat"]))  # [[2, 3, 0, 0], [1, 4, 5, 0]]
    """

    takes_strings_only = True

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation",
                 split="whitespace", ngrams=None, output_mode="int",
                 output_sequence_length=None, pad_to_max_tokens=False, vocabulary=None,
                 idf_weights=None, sparse=False, ragged=False, encoding="utf-8", name=None,
                 **kwargs):
        kwargs.pop("vocabulary_size", None)
        super().__init__(name=name, **kwargs)
        if not (standardize in STANDARDIZE or callable(standardize)):
            raise ValueError(f"Invalid value for argument `standardize`. Expected one of "
                             f"{list(STANDARDIZE)} or a callable. "
                             f"Received: standardize={standardize!r}")
        if not (split in SPLIT or callable(split)):
            raise ValueError(f"Invalid value for argument `split`. Expected one of "
                             f"{list(SPLIT)} or a callable. Received: split={split!r}")
        if output_mode not in ("int", "multi_hot", "count", "tf_idf"):
            raise ValueError(f"Invalid value for argument `output_mode`. Received: "
                             f"output_mode={output_mode!r}")
        if output_sequence_length is not None and output_mode != "int":
            raise ValueError(f"`output_sequence_length` must not be set if `output_mode` is "
                             f"not 'int'. Received: output_sequence_length="
                             f"{output_sequence_length}.")
        if ragged or sparse:
            raise ValueError("TextVectorization: ragged and sparse outputs are not supported "
                             "by kgraph.")
        if isinstance(ngrams, int) and not isinstance(ngrams, bool):
            ngrams = tuple(range(1, ngrams + 1))
        self.max_tokens, self.standardize, self.split = max_tokens, standardize, split
        self.ngrams, self.output_mode = ngrams, output_mode
        self.output_sequence_length = output_sequence_length
        self.pad_to_max_tokens, self.encoding = pad_to_max_tokens, encoding
        self.sparse, self.ragged = sparse, ragged
        if isinstance(vocabulary, str):
            with open(vocabulary, encoding="utf-8") as f:
                vocabulary = [line.rstrip("\n") for line in f]
        self._lookup_layer = StringLookup(
            max_tokens=max_tokens, mask_token="", vocabulary=vocabulary,
            idf_weights=idf_weights, output_mode=output_mode,
            pad_to_max_tokens=pad_to_max_tokens, name=f"{self.name}_lookup")

    # -- text to tokens ---------------------------------------------------------------------
    def _standardize(self, text):
        if callable(self.standardize):
            return self.standardize(text)
        if self.standardize in ("lower", "lower_and_strip_punctuation"):
            text = text.lower()
        if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            text = re.sub(DEFAULT_STRIP_REGEX, "", text)
        return text

    def _split(self, text):
        if callable(self.split):
            return list(self.split(text))
        if self.split == "whitespace":
            return text.split()
        if self.split == "character":
            return list(text)
        return [text]

    def _with_ngrams(self, tokens):
        if not self.ngrams:
            return tokens
        return [" ".join(tokens[i:i + n]) for n in self.ngrams
                for i in range(len(tokens) - n + 1)]

    def tokenize(self, text):
        """One string to its list of tokens (standardized, split, n-grams)."""
        if isinstance(text, bytes):
            text = text.decode(self.encoding)
        return self._with_ngrams(self._split(self._standardize(str(text))))

    def _documents(self, inputs):
        array = as_host_array(inputs)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim > 1:
            raise ValueError(f"TextVectorization takes a batch of strings of shape (batch,) "
                             f"or (batch, 1). Received shape {array.shape}")
        return [self.tokenize(t) for t in np.atleast_1d(array)]

    # -- vocabulary -------------------------------------------------------------------------
    def adapt(self, data, batch_size=None, steps=None):
        """Build the vocabulary (and idf weights) from strings: an array, a list, a Dataset
        or any iterable of batches of strings."""
        documents = [np.array(tokens, dtype=object) for batch in iterate_batches(data)
                     for tokens in self._documents(batch)]
        self._lookup_layer.adapt(RowBatches(documents))

    def load_vocabulary_asset(self, text):
        """Set the vocabulary from a Keras `vocabulary.txt` asset."""
        self._lookup_layer.load_vocabulary_asset(text)

    def get_vocabulary(self, include_special_tokens=True):
        return self._lookup_layer.get_vocabulary(include_special_tokens)

    def set_vocabulary(self, vocabulary, idf_weights=None):
        self._lookup_layer.set_vocabulary(vocabulary, idf_weights)

    def vocabulary_size(self):
        return self._lookup_layer.vocabulary_size()

    # -- calling ----------------------------------------------------------------------------
    def host_call(self, inputs):
        out = self._encode(self._documents(inputs))
        # one string (a tf.data map over unbatched text) gives one row, without a batch axis,
        # as TensorFlow's split of a scalar string does
        return out[0] if as_host_array(inputs).ndim == 0 else out

    def _encode(self, documents):
        lookup = self._lookup_layer
        if self.output_mode != "int":
            depth, idf = lookup._depth(), lookup._padded_idf()
            rows = [lookup.encode(np.array([lookup._lookup(t) for t in d], np.int64), depth,
                                  idf_weights=idf) if d else np.zeros(depth, np.float32)
                    for d in documents]
            return np.stack(rows).astype(np.float32)
        length = self.output_sequence_length or max([len(d) for d in documents] + [0])
        out = np.zeros((len(documents), length), np.int64)
        for row, tokens in enumerate(documents):
            ids = [lookup._lookup(t) for t in tokens][:length]
            out[row, :len(ids)] = ids
        return out

    def compute_output_shape(self, input_shape):
        batch = tuple(input_shape)[:1]
        if self.output_mode == "int":
            return batch + (self.output_sequence_length,)
        return batch + (self._lookup_layer._depth(),)

    def get_config(self):
        lookup = self._lookup_layer
        return {**super().get_config(), "max_tokens": self.max_tokens,
                "standardize": self.standardize if not callable(self.standardize) else None,
                "split": self.split if not callable(self.split) else None,
                "ngrams": list(self.ngrams) if self.ngrams else None,
                "output_mode": self.output_mode,
                "output_sequence_length": self.output_sequence_length,
                "pad_to_max_tokens": self.pad_to_max_tokens, "sparse": self.sparse,
                "ragged": self.ragged, "encoding": self.encoding,
                "vocabulary": lookup.get_vocabulary(include_special_tokens=False) or None,
                "idf_weights": None if lookup.idf_weights is None else
                lookup.idf_weights.tolist(), "vocabulary_size": lookup.vocabulary_size()}

