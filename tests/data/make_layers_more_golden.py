"""Writes tests/data/layers_more_golden.npz: what real Keras 3 (3.15.1, JAX backend) returns
for layers whose eager call in Keras takes seconds to compile (MelSpectrogram's stft, the
image histogram layers) and the random image layers' `transform_images` given fixed draws, for
tests/test_layers_more.py and tests/test_augmentation_more.py.
`python tests/data/make_layers_more_golden.py` rewrites it. Not run by the tests."""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras.src.random.seed_generator import SeedGenerator, draw_seed  # noqa: E402

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
    "auto_contrast1": ("AutoContrast", {}, "images_flat"),  # one channel constant
    "clahe0": ("ContrastLimitedAdaptiveHistogramEqualization", {"tile_grid_size": (3, 2)},
               "images_big"),
    "clahe1": ("ContrastLimitedAdaptiveHistogramEqualization",
               {"tile_grid_size": (4, 4), "clip_limit": 0.0}, "images4"),
    "clahe2": ("ContrastLimitedAdaptiveHistogramEqualization",
               {"value_range": (0, 1), "tile_grid_size": (2, 2), "clip_limit": 2.0,
                "data_format": "channels_first"}, "images01"),
}


def inputs():
    rng = np.random.default_rng(0)
    return {"audio": rng.normal(size=(2, 1000)).astype("float32"),
            "audio_one": rng.normal(size=(600,)).astype("float32"),
            "images": rng.uniform(0, 255, (3, 8, 7, 3)).astype("float32").round(),
            "images01": rng.uniform(0.2, 0.7, (2, 6, 5, 3)).astype("float32"),
            "images4": rng.uniform(0, 255, (4, 6, 5, 3)).astype("float32").round(),
            "images_big": rng.uniform(0, 255, (4, 24, 20, 3)).astype("float32").round(),
            "images_flat": np.concatenate([rng.uniform(0, 255, (3, 6, 5, 2)).round(),
                                           np.full((3, 6, 5, 1), 7.0)], -1).astype("float32")}


U = np.array([0.1, 0.55, 0.9, 0.3], np.float32)  # per-image draws fed to Keras and kgraph
CORNERS = np.repeat(np.float32([[[0, 0], [4, 0], [0, 5], [4, 5]]]), 4, 0)  # 6x5 images
MOVES = (np.random.default_rng(7).uniform(size=(4, 4, 2)).astype("float32") - 0.5) * 0.6
BOXES = np.stack([U * 2, U * 2 + 2.5, U[::-1] * 3, U[::-1] * 3 + 2])  # x0, x1, y0, y1
# random layers: `transform_images` given fixed draws, in kgraph's draw layout (converted to
# Keras' below); the tests feed the same draws to kgraph's `transform`
TRANSFORMS = [
    ("Solarization", {"addition_factor": 0.3, "threshold_factor": (0.2, 0.8)},
     {"additions": U * 60, "thresholds": U[::-1] * 200}),
    ("RandomInvert", {}, {"apply_inversion": U < 0.5}),
    ("RandomPosterization", {"factor": (1, 8)}, {"shift_factor": np.float32([7, 4, 1, 2])}),
    ("RandomGrayscale", {"factor": 0.4}, {"should_apply": U < 0.5}),
    ("RandomColorDegeneration", {"factor": 0.7}, {"factor": U * 1.4 - 0.7}),
    ("RandomSaturation", {"factor": 0.5}, {"factor": U * 2}),
    ("RandomHue", {"factor": 0.5, "value_range": (0, 255)}, {"factor": U - 0.5}),
    ("RandomSharpness", {"factor": 0.8}, {"factor": U * 0.8}),
    ("RandomGaussianBlur", {"kernel_size": (3, 5), "sigma": (0.3, 0.9)},
     {"should_apply_blur": U < 0.6, "blur_factor": np.float32([0.7, 0.4])}),
    ("RandomShear", {"x_factor": 0.3, "y_factor": (0.1, 0.2)},
     {"shear_factor": np.stack([U * 0.6 - 0.3, U[::-1] * 0.2], 1)}),
    ("RandomShear", {"x_factor": 0.3, "interpolation": "nearest", "fill_mode": "constant",
                     "fill_value": 9.0},
     {"shear_factor": np.stack([U * 0.6 - 0.3, U[::-1] * 0.2], 1)}),
    ("MixUp", {}, {"mix_weight": U, "permutation_order": np.array([2, 0, 3, 1])}),
    ("CutMix", {}, {"boxes": BOXES, "permutation_order": np.array([2, 0, 3, 1])}),
    ("RandomErasing", {"fill_value": 7.0}, {"boxes": BOXES, "apply_erasing": U < 0.6}),
    ("RandomErasing", {}, {"boxes": BOXES, "apply_erasing": U < 0.6, "fill_value": "noise"}),
    ("RandomPerspective", {}, {"apply_perspective": U < 0.6, "start_points": CORNERS,
                               "end_points": CORNERS * (1 + MOVES)}),
    ("RandomElasticTransform", {}, {"apply_transform": U < 0.6, "distortion_factor": 0.8,
                                    "field": "jax"}),
    ("RandomElasticTransform", {"interpolation": "nearest", "fill_mode": "constant",
                                "fill_value": 5.0, "scale": (0.5, 0.9)},
     {"apply_transform": U < 0.6, "distortion_factor": 0.7, "field": "jax"}),
    ("RandomPerspective", {"interpolation": "nearest", "fill_value": 3.0, "scale": 0.6},
     {"apply_perspective": U < 0.6, "start_points": CORNERS,
      "end_points": CORNERS * (1 + MOVES)}),
]
PER_IMAGE_4D = ("Solarization", "RandomColorDegeneration")


def keras_draws(layer, name, draws, images):
    """kgraph's draws in the layout of Keras' `get_random_transformation`."""
    out = {k: v for k, v in draws.items() if k != "boxes"}
    if name in PER_IMAGE_4D:
        out = {k: v.reshape(-1, 1, 1, 1) for k, v in out.items()}
    if name == "RandomPosterization":
        out["shift_factor"] = out["shift_factor"].astype("uint8")
    if name == "RandomGrayscale":
        out = out["should_apply"].reshape(-1, 1, 1, 1)
    if "boxes" in draws:
        masks = layer._generate_batch_mask(images.shape, tuple(draws["boxes"]))
        out["batch_masks"] = masks[0] if name == "CutMix" else masks
    if name == "RandomElasticTransform":  # Keras draws the field from this seed
        out = {"apply_transform": draws["apply_transform"],
               "distortion_factor": np.float32(draws["distortion_factor"]),
               "seed": SeedGenerator(42)}
    if name == "RandomErasing":
        out["fill_value"] = np.asarray(layer._get_fill_value(images, images.shape, 1)) \
            if layer.fill_value is not None else draws["fill_value"]
    return out


def transforms(data, out):
    for i, (cls, kwargs, draws) in enumerate(TRANSFORMS):
        for data_format in ("channels_last", "channels_first"):
            key = f"t{i}_{data_format[9:]}"
            images = data["images4"] if data_format == "channels_last" else \
                data["images4"].transpose(0, 3, 1, 2)
            layer = getattr(keras.layers, cls)(data_format=data_format, **kwargs)
            if cls == "RandomElasticTransform":  # larger images: the blur has taps
                images = data["images_big"] if data_format == "channels_last" else \
                    data["images_big"].transpose(0, 3, 1, 2)
            fed = dict(draws)
            if fed.get("field") == "jax":
                fed["field"] = np.asarray(jax.random.normal(
                    draw_seed(SeedGenerator(42)), (4, 24, 20), dtype="float32"))
            if isinstance(fed.get("fill_value"), str):
                fed["fill_value"] = np.clip(np.random.default_rng(4).normal(
                    size=images.shape) * 255, 0, 255).astype("float32")
            out[key] = np.asarray(layer.transform_images(
                images, keras_draws(layer, cls, fed, images), training=True))
            out[key + "_class"] = np.asarray(cls)
            out[key + "_config"] = np.asarray(json.dumps(layer.get_config()))
            for name, value in fed.items():
                out[f"{key}_draw_{name}"] = np.asarray(value)
            if cls == "MixUp":
                labels = np.eye(4, dtype="float32")
                out[key + "_labels"] = np.asarray(layer.transform_labels(labels, fed))


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
    transforms(data, out)
    np.savez_compressed(os.path.join(HERE, "layers_more_golden.npz"), **out)


if __name__ == "__main__":
    main()
