"""Writes tests/data/hashing_salted_golden.json: TensorFlow's `to_hash_bucket_strong` (SipHash
keyed by two ints) of a set of strings for several keys and bin counts, and what Keras 3's
`Hashing(salt=...)` layer returns, for tests/test_preprocessing_layers.py. Needs TensorFlow
(Keras 3.15.1 + TensorFlow 2.21 made the file): `python tests/data/make_hashing_salted_golden.py`.
Not run by the tests."""
import json
import os

os.environ["KERAS_BACKEND"] = "tensorflow"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

strings = ["", "a", "A", "B", "hello", "tensorflow", "x" * 7, "y" * 8, "z" * 9,
           "0123456789abcdef",
           "a longer string with spaces and more than thirty-two bytes in it", "ünïcödé", "42",
           "-7"]
keys = [[0, 0], [1337, 1337], [1, 2], [-1, 12345], [-2**63, 7]]
out = {"strings": strings, "cases": []}
for key in keys:
    for bins in (1, 7, 2**31 - 1, 2**62):
        v = tf.strings.to_hash_bucket_strong(strings, bins, key=key).numpy().tolist()
        out["cases"].append({"key": [str(k) for k in key], "num_bins": bins, "buckets": v})
# the keras layer: salt int, salt pair, mask_value, ints
layers = []
for kw, data in [({"num_bins": 64, "salt": 1337}, [["A"], ["B"], ["C"], ["D"], ["E"]]),
                 ({"num_bins": 3, "salt": [133, 137]}, [["A"], ["B"], ["C"], ["D"], ["E"]]),
                 ({"num_bins": 5, "salt": 99, "mask_value": ""}, [["A"], [""], ["C"], ["hello"]]),
                 ({"num_bins": 10, "salt": 7}, [[1, 2], [30, 400], [-5, 0]]),
                 ({"num_bins": 4, "salt": 11, "output_mode": "one_hot"}, [["a"], ["b"], ["c"]])]:
    layer = keras.layers.Hashing(**kw)
    arr = np.array(data)
    res = np.asarray(layer(arr))
    layers.append({"kwargs": kw, "inputs": data, "outputs": res.tolist(),
                   "config": layer.get_config()})
out["layers"] = layers
# the lookups' out-of-vocabulary buckets: the same keyed hash (IntegerLookup: oov_method="farmhash")
lookups = []
for cls, kw, data in [("StringLookup", {"vocabulary": ["a", "b"], "num_oov_indices": 3,
                                        "salt": 5}, ["a", "z", "q", "b", "zz", "hello"]),
                      ("StringLookup", {"vocabulary": ["a"], "num_oov_indices": 4,
                                        "salt": [3, 9], "mask_token": ""}, ["", "a", "x", "y"]),
                      ("IntegerLookup", {"vocabulary": [1, 2], "num_oov_indices": 3,
                                         "oov_method": "farmhash", "salt": [1, 2]},
                       [1, 7, 99, 2, 12345])]:
    layer = getattr(keras.layers, cls)(**kw)
    res = np.asarray(layer(np.array(data)))
    lookups.append({"class": cls, "kwargs": kw, "inputs": data, "outputs": res.tolist(),
                    "salt": layer.get_config()["salt"]})
out["lookups"] = lookups
out["versions"] = {"tensorflow": tf.__version__, "keras": keras.__version__}
json.dump(out, open(os.path.join(os.path.dirname(__file__), "hashing_salted_golden.json"), "w"),
          indent=1, default=str)
print("ok", len(out["cases"]))
