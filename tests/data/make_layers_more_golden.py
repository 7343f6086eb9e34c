"""Writes tests/data/layers_more_golden.npz: what real Keras 3 (3.15.1, JAX backend) returns
for layers whose eager call in Keras takes seconds to compile (MelSpectrogram's stft, the
image histogram layers), for tests/test_layers_more.py and tests/test_augmentation_more.py.
`python tests/data/make_layers_more_golden.py` rewrites it. Not run by the tests."""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# the cases, also read by the tests: (layer class, kwargs, input name)
CASES = {
    "mel0": ("MelSpectrogram", {"fft_length": 256, "sequence_stride": 64, "num_mel_bins": 20},
             "audio"),
    "mel1": ("MelSpectrogram", {"fft_length": 128, "sequence_length": 100,
                                "sequence_stride": 50, "window": "hamming",
                                "power_to_db": False, "sampling_rate": 8000,
                                "num_mel_bins": 16, "max_freq": 3000.0, "mag_exp": 1.0},
             "audio"),
    "mel2": ("MelSpectrogram", {"fft_length": 64, "sequence_stride": 32, "num_mel_bins": 8,
                                "ref_power": 2.0, "top_db": 20.0, "min_freq": 100.0}, "audio"),
    # deterministic image layers (Equalization's JAX histogram is a 256-step Python loop)
    "equalization0": ("Equalization", {}, "images"),
    "equalization1": ("Equalization", {"value_range": (0, 1), "bins": 64,
                                       "data_format": "channels_first"}, "images01"),
    "auto_contrast0": ("AutoContrast", {"value_range": (0, 1)}, "images01"),
}


def inputs():
    rng = np.random.default_rng(0)
    return {"audio": rng.normal(size=(2, 1000)).astype("float32"),
            "audio_one": rng.normal(size=(600,)).astype("float32"),
            "images": rng.uniform(0, 255, (3, 8, 7, 3)).astype("float32").round(),
            "images01": rng.uniform(0.2, 0.7, (2, 6, 5, 3)).astype("float32")}


def main():
    data = inputs()
    out = {f"input_{k}": v for k, v in data.items()}
    for name, (cls, kwargs, source) in CASES.items():
        layer = getattr(keras.layers, cls)(**kwargs)
        out[name] = np.asarray(layer(data[source], training=True)
                               if cls != "MelSpectrogram" else layer(data[source]))
        if cls == "MelSpectrogram":
            out[name + "_one"] = np.asarray(layer(data["audio_one"]))
        out[name + "_config"] = np.asarray(json.dumps(layer.get_config()))
    np.savez_compressed(os.path.join(HERE, "layers_more_golden.npz"), **out)


if __name__ == "__main__":
    main()
