"""Writes tests/data/feature_space_keras.json: what Keras 3's FeatureSpace computes for the
columns used by tests/test_feature_space.py. Keras' FeatureSpace needs TensorFlow, so run it
where TensorFlow is installed (Keras 3.15.1 + TensorFlow 2.21 made the file):
`python tests/data/make_feature_space_golden.py`. Not run by the tests."""
import io
import json
import os
import zipfile

os.environ["KERAS_BACKEND"] = "tensorflow"

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras.utils import FeatureSpace as FS  # noqa: E402

def columns(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return {"fl": rng.normal(2.0, 3.0, n).round(2).astype("float32"),
            "fr": rng.uniform(0, 10, n).round(1).astype("float32"),
            "fn": rng.normal(50, 10, n).round(1).astype("float32"),
            "fd": rng.uniform(0, 100, n).round(0).astype("float32"),
            "ic": rng.choice([3, 7, 7, 11, 11, 11, 20], n).astype("int32"),
            "sc": rng.choice(["red", "green", "green", "blue", "blue", "blue", "teal"], n),
            "sh": rng.choice(["alpha", "beta", "gamma", "delta"], n),
            "ih": rng.integers(-50, 50, n).astype("int32")}

def features():
    return {"fl": "float", "fr": FS.float_rescaled(scale=0.5, offset=1.0),
            "fn": "float_normalized", "fd": FS.float_discretized(num_bins=4),
            "ic": "integer_categorical", "sc": FS.string_categorical(max_tokens=3),
            "sh": FS.string_hashed(num_bins=8), "ih": "integer_hashed"}

train, probe = columns(), columns(8, seed=1)
probe["sc"][0] = "never-seen"; probe["ic"][1] = 999
out = {"train": {k: v.tolist() for k, v in train.items()},
       "probe": {k: v.tolist() for k, v in probe.items()}}
fs = FS(features(), crosses=[("ic", "sc"), FS.cross(("sh", "ih"), crossing_dim=16)],
        crossing_dim=8, hashing_dim=16)
fs.adapt(tf.data.Dataset.from_tensor_slices(train).batch(16))
out["concat"] = np.asarray(fs(probe)).tolist()
out["boundaries"] = [float(b) for b in fs.preprocessors["fd"].bin_boundaries]
out["vocab_ic"] = [int(v) for v in fs.preprocessors["ic"].get_vocabulary()]
out["vocab_sc"] = [str(t) for t in fs.preprocessors["sc"].get_vocabulary()]
out["single"] = np.asarray(fs({k: v[0] for k, v in probe.items()})).tolist()
enc = fs.get_encoded_features(); out["encoded_shape"] = list(enc.shape)
cfg = fs.get_config(); out["config"] = json.loads(json.dumps(cfg, default=str))
saved = os.path.join(os.path.dirname(os.path.abspath(__file__)), "feature_space_keras.keras")
fs.save(saved)  # read back by kgraph in the test (its vocabularies are assets)
z = zipfile.ZipFile(saved)
paths = []
h5py.File(io.BytesIO(z.read("model.weights.h5"))).visit(paths.append)
out["h5_paths"] = paths
# dict mode, int outputs, unbatched adapt
fd = FS({"ic": FS.integer_categorical(output_mode="int", num_oov_indices=0),
         "sc": FS.string_categorical(output_mode="int"),
         "fd": FS.float_discretized(num_bins=3, output_mode="int"),
         "fn": "float_normalized", "sh": FS.string_hashed(num_bins=5, output_mode="int")},
        crosses=[FS.cross(("ic", "sc"), crossing_dim=32, output_mode="int"),
                 FS.cross(("sc", "sh"), crossing_dim=4)], output_mode="dict")
sub = {k: train[k] for k in ("ic", "sc", "fd", "fn", "sh")}
fd.adapt(tf.data.Dataset.from_tensor_slices(sub))
p = {k: probe[k][2:6] for k in sub}
res = fd(p)
out["dict"] = {k: np.asarray(v).tolist() for k, v in res.items()}
out["dict_dtypes"] = {k: str(np.asarray(v).dtype) for k, v in res.items()}
out["dict_single"] = {k: np.asarray(v).tolist() for k, v in fd({k: v[0] for k, v in p.items()}).items()}
out["dict_boundaries"] = [float(b) for b in fd.preprocessors["fd"].bin_boundaries]
encd = fd.get_encoded_features()
out["dict_encoded"] = {k: [list(v.shape), v.dtype] for k, v in encd.items()}
# a model on the raw inputs of a FeatureSpace, saved by Keras (its graph holds each layer)
small = {"n": np.array([10., 20., 30., 40.], "float32"), "s": np.array(["a", "b", "b", "c"]),
         "i": np.array([1, 2, 2, 3], "int32"), "d": np.array([0.5, 1.5, 2.5, 3.5], "float32")}
fm = FS({"n": "float_normalized", "s": "string_categorical", "i": "integer_categorical",
         "d": FS.float_discretized(num_bins=3)}, crosses=[("s", "i"), ("d", "i")],
        crossing_dim=4)
fm.adapt(tf.data.Dataset.from_tensor_slices(small))
head = keras.layers.Dense(1, kernel_initializer="ones")(fm.get_encoded_features())
model = keras.Model(fm.get_inputs(), head)
model.save(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "feature_space_model_keras.keras"))
out["model_data"] = {k: v.tolist() for k, v in small.items()}
out["model_predictions"] = np.asarray(model.predict(
    {k: tf.constant(v) for k, v in small.items()}, verbose=0)).ravel().tolist()
out["concat"] = [[round(v, 7) for v in row] for row in out["concat"]]
out["_about"] = ("Keras 3.15.1 (TensorFlow 2.21 backend: Keras' FeatureSpace, HashedCrossing, "
                 "Hashing and Discretization.adapt need TensorFlow) on the columns "
                 "'train'/'probe'; written by tests/data/make_feature_space_golden.py")
target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "feature_space_keras.json")
json.dump(out, open(target, "w"), separators=(",", ":"))
