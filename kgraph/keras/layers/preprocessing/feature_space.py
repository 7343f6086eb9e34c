"""`keras.utils.FeatureSpace` (Keras 3): one object that indexes, preprocesses, crosses and
encodes the features of structured data, given as a dict of columns.

Each feature has a preprocessing layer (`Normalization`, `Discretization`, `Rescaling`,
`IntegerLookup`, `StringLookup`, `Hashing`, or one of your own), adapted on a Dataset of dicts;
crosses hash the preprocessed values of several features (`HashedCrossing`); categorical
results are one-hot encoded (`CategoryEncoding`) and everything is concatenated into one
vector, or returned as a dict.

In kgraph the FeatureSpace runs on the host, in numpy, as one host layer (see host_layer.py):
called on a dict of arrays (or in `Dataset.map`) it returns eager arrays, and
`get_encoded_features()` is its call on the dict of `get_inputs()`, a host node, so a model
built on the raw inputs runs the whole FeatureSpace before its compiled part (strings never
enter the graph), and a model built on the encoded features takes the encoded vector.
"""
from __future__ import annotations

import numpy as np

from kgraph.keras.layers.base import KerasTensor, Layer, unique_name
from kgraph.keras.layers.preprocessing.categorical import CategoryEncoding, Discretization
from kgraph.keras.layers.preprocessing.hashed_crossing import HashedCrossing
from kgraph.keras.layers.preprocessing.hashing import Hashing
from kgraph.keras.layers.preprocessing.host_layer import HostLayer, HostOutput, as_host_array
from kgraph.keras.layers.preprocessing.lookup import IntegerLookup, StringLookup
from kgraph.keras.layers.preprocessing.normalization import Normalization, Rescaling
from kgraph.keras.tree import flatten

__all__ = ["FeatureSpace"]

_MODULE = "keras.src.layers.preprocessing.feature_space"  # where Keras' helper classes live


def _checked_mode(output_mode, allowed):
    if output_mode not in allowed:
        raise ValueError(f"Invalid value for argument `output_mode`. Expected one of "
                         f"{{{', '.join(repr(m) for m in sorted(allowed))}}}. "
                         f"Received: output_mode={output_mode}")
    return output_mode


def _is_entry(value, class_name):
    return isinstance(value, dict) and value.get("class_name") == class_name


class Cross:
    """A feature cross: the features it hashes together, into `crossing_dim` bins."""

    def __init__(self, feature_names, crossing_dim, output_mode="one_hot"):
        self.output_mode = _checked_mode(output_mode, {"int", "one_hot"})
        self.feature_names = tuple(feature_names)
        self.crossing_dim = crossing_dim

    @property
    def name(self):
        return "_X_".join(self.feature_names)

    def get_config(self):
        return {"feature_names": self.feature_names, "crossing_dim": self.crossing_dim,
                "output_mode": self.output_mode}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Feature:
    """A feature: its input dtype, its preprocessing layer and how its result is encoded
    (`"float"`, `"int"` or `"one_hot"`)."""

    def __init__(self, dtype, preprocessor, output_mode):
        self.output_mode = _checked_mode(output_mode, {"int", "one_hot", "float"})
        if isinstance(preprocessor, dict):
            from kgraph.keras.saving.serialization_lib import deserialize_keras_object

            preprocessor = deserialize_keras_object(preprocessor)
        self.dtype, self.preprocessor = dtype, preprocessor

    def get_config(self):
        from kgraph.keras.saving.serialization_lib import serialize_keras_object

        return {"dtype": self.dtype,
                "preprocessor": serialize_keras_object(self.preprocessor),
                "output_mode": self.output_mode}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _entry(obj):
    """Keras' serialized form of a `Feature` or `Cross`."""
    name = type(obj).__name__
    return {"module": _MODULE, "class_name": name, "config": obj.get_config(),
            "registered_name": name}


class TFDIdentity(Layer):
    """The preprocessor of a plain `"float"` feature (Keras' name)."""

    _keras_identity = (_MODULE, "TFDIdentity")

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class TFDConcat(Layer):
    """The concatenation of the encoded features (Keras' name)."""

    _keras_identity = (_MODULE, "TFDConcat")

    def __init__(self, axis, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs):
        from kgraph import ops

        return ops.concatenate(list(inputs), axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def _lookup_feature(lookup_class, dtype, kind, max_tokens, num_oov_indices, output_mode,
                    name):
    name = name or unique_name(kind)
    layer = lookup_class(name=f"{name}_preprocessor", max_tokens=max_tokens,
                         num_oov_indices=num_oov_indices)
    return Feature(dtype, layer, output_mode)


def _output_spec(layer, input_shape=(None, 1)):
    """(shape, dtype) of what a preprocessing layer returns for a `(batch, 1)` input."""
    dtype = layer.host_output_dtype() if isinstance(layer, HostLayer) else \
        getattr(layer, "output_dtype", layer.compute_dtype)
    return tuple(layer.compute_output_shape(input_shape)), str(dtype)


def _cardinality(layer):
    """The number of categories a preprocessing layer returns indices of (Keras' rules)."""
    if isinstance(layer, (IntegerLookup, StringLookup)):
        return layer.vocabulary_size()
    if isinstance(layer, CategoryEncoding):
        return layer.num_tokens
    if isinstance(layer, Discretization):
        return layer.num_bins
    if isinstance(layer, (HashedCrossing, Hashing)):
        return layer.num_bins
    return False  # not a standard layer: its output space is unknown


class FeatureSpace(HostLayer):
    """One-stop utility for preprocessing and encoding structured data.

    Args:
        features: dict of feature name to type: a name such as `"integer_categorical"` (the
            helper with its defaults) or a helper's result, e.g.
            `FeatureSpace.string_categorical(max_tokens=10)`.
        output_mode: `"concat"` (default: one vector per sample) or `"dict"` (a dict of
            the encoded features, crosses included).
        crosses: features to cross, e.g. `[("f1", "f2")]` or `FeatureSpace.cross(...)`.
        crossing_dim: default number of bins of a cross (32).
        hashing_dim: default number of bins of `"integer_hashed"`/`"string_hashed"` (32).
        num_discretization_bins: default bins of `"float_discretized"` (32).

    Feature types: `float`, `float_rescaled(scale, offset)`, `float_normalized`,
    `float_discretized(num_bins, bin_boundaries, output_mode)`,
    `integer_categorical(max_tokens, num_oov_indices, output_mode)`,
    `string_categorical(...)`, `integer_hashed(num_bins, output_mode)`,
    `string_hashed(num_bins, output_mode)`, `feature(dtype, preprocessor, output_mode)`.

    Example:
        >>> space = FeatureSpace({"x": "float_normalized", "c": "string_categorical"},
        ...                      crosses=[("c", "c")], crossing_dim=4)
        >>> space.adapt({"x": np.array([1.0, 3.0]), "c": np.array(["a", "b"])})
        >>> space({"x": np.array([1.0]), "c": np.array(["a"])}).shape
        (1, 8)
    """

    _keras_identity = ("keras.utils", None)

    # -- feature helpers (Keras' classmethods) ------------------------------------------------
    @classmethod
    def cross(cls, feature_names, crossing_dim, output_mode="one_hot"):
        return Cross(feature_names, crossing_dim, output_mode=output_mode)

    @classmethod
    def feature(cls, dtype, preprocessor, output_mode):
        return Feature(dtype, preprocessor, output_mode)

    @classmethod
    def float(cls, name=None):
        name = name or unique_name("float")
        return Feature("float32", TFDIdentity(dtype="float32", name=f"{name}_preprocessor"),
                       "float")

    @classmethod
    def float_rescaled(cls, scale=1.0, offset=0.0, name=None):
        name = name or unique_name("float_rescaled")
        layer = Rescaling(scale=scale, offset=offset, name=f"{name}_preprocessor")
        return Feature("float32", layer, "float")

    @classmethod
    def float_normalized(cls, name=None):
        name = name or unique_name("float_normalized")
        return Feature("float32", Normalization(axis=-1, name=f"{name}_preprocessor"), "float")

    @classmethod
    def float_discretized(cls, num_bins, bin_boundaries=None, output_mode="one_hot",
                          name=None):
        name = name or unique_name("float_discretized")
        layer = Discretization(num_bins=num_bins, bin_boundaries=bin_boundaries,
                               name=f"{name}_preprocessor")
        return Feature("float32", layer, output_mode)

    @classmethod
    def integer_categorical(cls, max_tokens=None, num_oov_indices=1, output_mode="one_hot",
                            name=None):
        return _lookup_feature(IntegerLookup, "int32", "integer_categorical", max_tokens,
                               num_oov_indices, output_mode, name)

    @classmethod
    def string_categorical(cls, max_tokens=None, num_oov_indices=1, output_mode="one_hot",
                           name=None):
        return _lookup_feature(StringLookup, "string", "string_categorical", max_tokens,
                               num_oov_indices, output_mode, name)

    @classmethod
    def string_hashed(cls, num_bins, output_mode="one_hot", name=None):
        name = name or unique_name("string_hashed")
        return Feature("string", Hashing(name=f"{name}_preprocessor", num_bins=num_bins),
                       output_mode)

    @classmethod
    def integer_hashed(cls, num_bins, output_mode="one_hot", name=None):
        name = name or unique_name("integer_hashed")
        return Feature("int32", Hashing(name=f"{name}_preprocessor", num_bins=num_bins),
                       output_mode)

    # -- construction ---------------------------------------------------------------------
    def __init__(self, features, output_mode="concat", crosses=None, crossing_dim=32,
                 hashing_dim=32, num_discretization_bins=32, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if not features:
            raise ValueError("The `features` argument cannot be None or empty.")
        self.crossing_dim, self.hashing_dim = crossing_dim, hashing_dim
        self.num_discretization_bins = num_discretization_bins
        self.features = {key: self._standardize_feature(key, value)
                         for key, value in features.items()}
        self.crosses = [self._standardize_cross(c, features) for c in crosses or []]
        self.crosses_by_name = {cross.name: cross for cross in self.crosses}
        self.output_mode = _checked_mode(output_mode, {"dict", "concat"})
        from kgraph.keras.layers.core import Input

        self.inputs = {key: Input(shape=(1,), dtype=feature.dtype, name=key)
                       for key, feature in self.features.items()}
        self.preprocessors = {key: f.preprocessor for key, f in self.features.items()}
        self.encoded_features = None
        self.crossers = {cross.name: HashedCrossing(cross.crossing_dim, name=cross.name)
                         for cross in self.crosses}
        self.one_hot_encoders = {}
        self._is_adapted = False
        self.concat = None
        self._output_specs = None
        self._sublayers_built = False

    def _standardize_feature(self, name, feature):
        if isinstance(feature, Feature):
            return feature
        if _is_entry(feature, "Feature"):
            return Feature.from_config(feature["config"])
        makers = {"float": lambda: self.float(name=name),
                  "float_normalized": lambda: self.float_normalized(name=name),
                  "float_rescaled": lambda: self.float_rescaled(name=name),
                  "float_discretized": lambda: self.float_discretized(
                      name=name, num_bins=self.num_discretization_bins),
                  "integer_categorical": lambda: self.integer_categorical(name=name),
                  "string_categorical": lambda: self.string_categorical(name=name),
                  "integer_hashed": lambda: self.integer_hashed(self.hashing_dim, name=name),
                  "string_hashed": lambda: self.string_hashed(self.hashing_dim, name=name)}
        if not isinstance(feature, str) or feature not in makers:
            raise ValueError(f"Invalid feature type: {feature}")
        return makers[feature]()

    def _standardize_cross(self, cross, features):
        if _is_entry(cross, "Cross"):
            cross = Cross.from_config(cross["config"])
        if isinstance(cross, Cross):
            return cross
        if not self.crossing_dim:
            raise ValueError("When specifying `crosses`, the argument `crossing_dim` "
                             "(dimensionality of the crossing space) should be specified "
                             "as well.")
        if any(key not in features for key in cross):
            raise ValueError(f"All features referenced in the `crosses` argument should be "
                             f"present in the `features` dict. Received unknown features: "
                             f"{cross}")
        return Cross(cross, crossing_dim=self.crossing_dim)

    # -- adapt ----------------------------------------------------------------------------
    def _list_adaptable_preprocessors(self):
        from kgraph.keras.layers.preprocessing.text_vectorization import TextVectorization

        names = []
        for key in self.features:
            layer = self.preprocessors[key]
            if isinstance(layer, Normalization) and layer.input_mean is not None:
                continue  # preset mean and variance
            if isinstance(layer, TextVectorization) and not self._is_adapted and \
                    layer.get_vocabulary(include_special_tokens=False):
                continue  # a vocabulary given to the layer
            if hasattr(layer, "adapt"):
                names.append(key)
        return names

    def adapt(self, dataset):
        """Adapt each adaptable preprocessor on its column of `dataset`: a Dataset of dicts
        (batched or not), or a dict of arrays/lists."""
        from kgraph.data import Dataset

        if not isinstance(dataset, Dataset):
            if not isinstance(dataset, dict):
                raise ValueError(f"`adapt()` can only be called on a tf.data.Dataset or a "
                                 f"dict of arrays/lists. Received instead: {dataset} (of type "
                                 f"{type(dataset)})")
            dataset = Dataset.from_tensor_slices(dataset)
        for key in self._list_adaptable_preprocessors():
            column = dataset.map(lambda x, key=key: x[key])
            rank = np.ndim(next(iter(column)))
            if rank == 0:  # unbatched scalars: batch them
                column = column.batch(32)
            if rank in (0, 1):  # a trailing axis, as the Inputs have
                column = column.map(lambda x: np.expand_dims(as_host_array(x), -1))
            self.preprocessors[key].adapt(column)
        self._is_adapted = True
        self.get_encoded_features()  # finish building
        self._sublayers_built = True

    def _check_if_adapted(self):
        if not self._is_adapted:
            if self._list_adaptable_preprocessors():
                raise ValueError("You need to call `.adapt(dataset)` on the FeatureSpace "
                                 "before you can start using it.")
            self._is_adapted = True

    def _check_if_built(self):
        if not self._sublayers_built:
            self._check_if_adapted()
            self.get_encoded_features()
            self._sublayers_built = True

    # -- symbolic use -----------------------------------------------------------------------
    def get_inputs(self):
        """The dict of `keras.Input`s (shape `(1,)`, the feature's dtype), by feature name."""
        self._check_if_built()
        return self.inputs

    def get_encoded_features(self):
        """The encoded features of `get_inputs()`: one KerasTensor (concat) or a dict."""
        self._check_if_adapted()
        if self.encoded_features is None:
            self.encoded_features = self(self.inputs)
        return self.encoded_features

    def _build_encoders(self):
        """The one-hot encoders and the output specs, checked as Keras checks them when it
        builds the encoded features (once the preprocessors are adapted)."""
        specs = {key: _output_spec(layer) for key, layer in self.preprocessors.items()}
        for cross in self.crosses:
            specs[cross.name] = ((None, 1), "int64")
        output = {}
        for key in sorted(self.features) + sorted(self.crosses_by_name):
            spec = self.features.get(key) or self.crosses_by_name[key]
            shape, dtype = specs[key]
            if spec.output_mode == "one_hot":
                if not dtype.startswith("int"):
                    raise ValueError(f"Feature '{key}' has `output_mode='one_hot'`. Thus its "
                                     f"preprocessor should return an integer dtype. Instead "
                                     f"it returns a {dtype} dtype.")
                layer = self.preprocessors.get(key) or self.crossers[key]
                cardinality = _cardinality(layer)
                if cardinality is False:
                    raise ValueError(f"Feature '{key}' has `output_mode='one_hot'`. However "
                                     f"it isn't a standard feature and the dimensionality of "
                                     f"its output space is not known, thus it cannot be "
                                     f"one-hot encoded. Try using `output_mode='int'`.")
                if cardinality is not None:
                    if key not in self.one_hot_encoders:
                        self.one_hot_encoders[key] = CategoryEncoding(
                            num_tokens=cardinality, output_mode="multi_hot")
                    shape, dtype = shape[:-1] + (cardinality,), "float32"
            if self.output_mode == "concat" and (dtype.startswith("int") or
                                                 dtype == "string"):
                raise ValueError(f"Cannot concatenate features because feature '{key}' has "
                                 f"not been encoded (it has dtype {dtype}). Consider using "
                                 f"`output_mode='dict'`.")
            output[key] = HostOutput(shape, dtype)
        if self.output_mode == "concat":
            if self.concat is None:
                self.concat = TFDConcat(axis=-1)
            widths = [spec.shape[-1] for spec in output.values()]
            total = None if None in widths else int(sum(widths))
            output = HostOutput((None, total), "float32")
        self._output_specs = output

    def host_output_specs(self, input_shapes):
        return self._output_specs

    # -- calls ------------------------------------------------------------------------------
    def __call__(self, data, *args, **kwargs):
        if any(isinstance(t, KerasTensor) for t in flatten(data)):
            self._check_if_adapted()
            self._build_encoders()
            return super().__call__(data, *args, **kwargs)  # a host node
        self._check_if_built()
        if not isinstance(data, dict):
            raise ValueError(f"A FeatureSpace can only be called with a dict. Received: "
                             f"data={data} (of type {type(data)}")
        return super().__call__(data, *args, **kwargs)

    def host_call(self, data):
        from kgraph.keras.layers.base import EagerTensor

        missing = [key for key in self.features if key not in data]
        if missing:
            raise KeyError(f"FeatureSpace {self.name!r}: the data has no column for the "
                           f"features {missing}. Received the keys {sorted(data)}")
        columns, rebatched = {}, False
        for key in self.features:
            x = as_host_array(data[key])
            if x.ndim == 0:
                x, rebatched = x.reshape(1, 1), True
            elif x.ndim == 1:
                x = x[:, None]
            columns[key] = x
        values = {key: np.asarray(self.preprocessors[key](x)) for key, x in columns.items()}
        for cross in self.crosses:
            values[cross.name] = np.asarray(self.crossers[cross.name](
                [values[key] for key in cross.feature_names]))
        encoded = {}
        for key in sorted(self.features) + sorted(self.crosses_by_name):
            encoder = self.one_hot_encoders.get(key)
            encoded[key] = np.asarray(encoder(values[key])) if encoder else values[key]
        if self.output_mode == "concat":
            merged = np.concatenate([v.astype(np.float32) for v in encoded.values()], axis=-1)
            return (merged[0] if rebatched else merged).view(EagerTensor)
        if rebatched:
            encoded = {k: v[0] if v.ndim == 2 and v.shape[0] == 1 else v
                       for k, v in encoded.items()}
        return {k: np.asarray(v).view(EagerTensor) for k, v in encoded.items()}

    # -- saving -----------------------------------------------------------------------------
    def get_config(self):
        return {"features": {key: _entry(f) for key, f in self.features.items()},
                "output_mode": self.output_mode,
                "crosses": [_entry(c) for c in self.crosses],
                "crossing_dim": self.crossing_dim, "hashing_dim": self.hashing_dim,
                "num_discretization_bins": self.num_discretization_bins}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_build_config(self):
        return {key: {} if isinstance(f.preprocessor, HostLayer) else
                {"input_shape": [None, 1]} for key, f in self.features.items()}

    def build_from_config(self, config):
        """Build the preprocessors (their weights, e.g. Normalization's statistics, are then
        loaded from the file) and mark the FeatureSpace adapted, as Keras does."""
        for key, build in (config or {}).items():
            layer = self.features[key].preprocessor
            shape = (build or {}).get("input_shape")
            if not layer.built and shape is not None:
                layer.build(tuple(shape))
                layer.built = True
        self._is_adapted = True

    def save(self, filepath):
        """Save the FeatureSpace to a `.keras` file (reload it with
        `keras.models.load_model`)."""
        from kgraph.keras.saving.saving_api import save_model

        save_model(self, filepath)
