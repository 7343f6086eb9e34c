"""keras.io example "Deep Dream" (examples/generative/deep_dream.py).

The stored source (TensorFlow-era: `import tensorflow as tf; from tensorflow import keras;
from tensorflow.keras.applications import inception_v3`) with those imports swapped for kgraph:
`keras.utils.load_img`/`img_to_array`/`inception_v3.preprocess_input`, an InceptionV3 without
its top and without an input shape (it runs at each octave's size) and a feature extractor
returning the `mixed4`-`mixed7` activations as a dict, the loss over non-border pixels scaled
by `tf.reduce_prod(tf.cast(tf.shape(activation), "float32"))`, the `@tf.function` gradient
ascent step (`tape.watch` of the image argument, gradients normalized by their mean absolute
value), the octave loop (`tf.image.resize` down and up, the lost detail re-injected,
`tf.identity`), `save_img` of the deprocessed result. Changes: the `get_file` download is a
generated JPEG, `weights="imagenet"` (a download) is `None`, the IPython displays are left out;
sizes: the image is 150x180 (three octaves of 76x91, 107x128 and 150x180, the smallest
InceptionV3's `mixed7` block takes), 20 iterations per octave -> 2. Checked: the loss against
numpy on the extractor's activations, each ascent step moving the image by at most the step size
on average (none at the first octave, whose 3x4 feature maps have an empty inner crop), the saved
PNG. Marked slow (~6 s: InceptionV3's gradient at three sizes).
"""

import numpy as np
import pytest


@pytest.mark.slow
def test_deep_dream(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras.applications import inception_v3

    rng = np.random.default_rng(0)
    base_image_path = str(tmp_path / "sky.jpg")
    Image.fromarray(rng.integers(0, 256, (150, 180, 3), dtype=np.uint8)).save(base_image_path)
    result_prefix = "sky_dream"

    layer_settings = {
        "mixed4": 1.0,
        "mixed5": 1.5,
        "mixed6": 2.0,
        "mixed7": 2.5,
    }

    step = 0.01  # Gradient ascent step size
    num_octave = 3  # Number of scales at which to run gradient ascent
    octave_scale = 1.4  # Size ratio between scales
    iterations = 2  # Number of ascent steps per scale
    max_loss = 15.0

    def preprocess_image(image_path):
        # Util function to open, resize and format pictures
        # into appropriate arrays.
        img = keras.utils.load_img(image_path)
        img = keras.utils.img_to_array(img)
        img = np.expand_dims(img, axis=0)
        img = inception_v3.preprocess_input(img)
        return img

    def deprocess_image(x):
        # Util function to convert a NumPy array into a valid image.
        x = x.reshape((x.shape[1], x.shape[2], 3))
        # Undo inception v3 preprocessing
        x /= 2.0
        x += 0.5
        x *= 255.0
        # Convert to uint8 and clip to the valid range [0, 255]
        x = np.clip(x, 0, 255).astype("uint8")
        return x

    # Build an InceptionV3 model (weights="imagenet" is a download)
    model = inception_v3.InceptionV3(weights=None, include_top=False)

    # Get the symbolic outputs of each "key" layer (we gave them unique names).
    outputs_dict = dict(
        [
            (layer.name, layer.output)
            for layer in [model.get_layer(name) for name in layer_settings.keys()]
        ]
    )

    # Set up a model that returns the activation values for every target layer
    # (as a dict)
    feature_extractor = keras.Model(inputs=model.inputs, outputs=outputs_dict)

    def compute_loss(input_image):
        features = feature_extractor(input_image)
        # Initialize the loss
        loss = tf.zeros(shape=())
        for name in features.keys():
            coeff = layer_settings[name]
            activation = features[name]
            # We avoid border artifacts by only involving non-border pixels in the loss.
            scaling = tf.reduce_prod(tf.cast(tf.shape(activation), "float32"))
            loss += coeff * tf.reduce_sum(tf.square(activation[:, 2:-2, 2:-2, :])) / scaling
        return loss

    @tf.function
    def gradient_ascent_step(img, learning_rate):
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = compute_loss(img)
        # Compute gradients.
        grads = tape.gradient(loss, img)
        # Normalize gradients.
        grads /= tf.maximum(tf.reduce_mean(tf.abs(grads)), 1e-6)
        img += learning_rate * grads
        return loss, img

    steps = []

    def gradient_ascent_loop(img, iterations, learning_rate, max_loss=None):
        for i in range(iterations):
            before = np.array(img)
            loss, img = gradient_ascent_step(img, learning_rate)
            steps.append((before, np.array(img), float(loss)))
            if max_loss is not None and loss > max_loss:
                break
            print("... Loss value at step %d: %.2f" % (i, loss))
        return img

    original_img = preprocess_image(base_image_path)
    original_shape = original_img.shape[1:3]

    # the loss against numpy on the extractor's activations
    features = {k: np.asarray(v) for k, v in feature_extractor(original_img).items()}
    expected = sum(layer_settings[k] * np.sum(a[:, 2:-2, 2:-2, :] ** 2) / a.size
                   for k, a in features.items())
    np.testing.assert_allclose(float(compute_loss(original_img)), expected, rtol=1e-4)

    successive_shapes = [original_shape]
    for i in range(1, num_octave):
        shape = tuple([int(dim / (octave_scale**i)) for dim in original_shape])
        successive_shapes.append(shape)
    successive_shapes = successive_shapes[::-1]
    assert successive_shapes == [(76, 91), (107, 128), (150, 180)]
    shrunk_original_img = tf.image.resize(original_img, successive_shapes[0])

    img = tf.identity(original_img)  # Make a copy
    for i, shape in enumerate(successive_shapes):
        print("Processing octave %d with shape %s" % (i, shape))
        img = tf.image.resize(img, shape)
        img = gradient_ascent_loop(
            img, iterations=iterations, learning_rate=step, max_loss=max_loss
        )
        upscaled_shrunk_original_img = tf.image.resize(shrunk_original_img, shape)
        same_size_original = tf.image.resize(original_img, shape)
        lost_detail = same_size_original - upscaled_shrunk_original_img

        img += lost_detail
        shrunk_original_img = tf.image.resize(original_img, shape)

    keras.utils.save_img(result_prefix + ".png", deprocess_image(img.numpy()))

    # each step moves the image by learning_rate times the gradient over max(its mean
    # absolute value, 1e-6): at most `step` on average (less for the untrained network's tiny
    # gradients); at the first octave (76x91) the mixed4-7 maps are 3x4, their [2:-2, 2:-2] crop is
    # empty, so the loss and the gradient are 0 and the image stays (as it would in Keras)
    assert len(steps) == num_octave * iterations
    for k, (before, after, loss_value) in enumerate(steps):
        if k < iterations:
            assert loss_value == 0.0 and np.array_equal(after, before)
        else:
            assert loss_value > 0
            assert 0 < np.mean(np.abs(after - before)) <= step * (1 + 1e-3)
    assert keras.utils.load_img(result_prefix + ".png").size == (180, 150)
