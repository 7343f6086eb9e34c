"""keras.io example "Visualizing what convnets learn"
(examples/vision/visualizing_what_convnets_learn.py).

The example's code as written (its stored text is the TensorFlow-era one: `import tensorflow as
tf; from tensorflow import keras`, swapped for kgraph): `keras.applications.ResNet50V2(
include_top=False)` without an input shape (the image size left open, as Keras leaves it), a
feature extractor to `get_layer("conv3_block4_out").output`, `compute_loss` slicing
`activation[:, 2:-2, 2:-2, filter_index]`, the `@tf.function` gradient-ascent step (`tape.watch`
on the image, `tape.gradient` with respect to it, `tf.math.l2_normalize`, `img += lr * grads`)
called with a Python filter index and learning rate, `tf.random.uniform` initial images,
`deprocess_image` on `img[0].numpy()`, `keras.preprocessing.image.save_img` of each filter and
of the stitched grid.

Replaced: `weights="imagenet"` by `weights=None` (a download). Sizes cut: 180x180 images ->
72x72 (the 25-pixel crop leaves 22x22), 30 iterations -> 3, the 8x8 grid of 64 filters -> 2x2.
The IPython `display` calls are left out.

Checked: each step's loss is the mean of the filter's activation (in numpy, from the feature
extractor's prediction on the image the step was given), and the image moves by
`learning_rate` along a unit-norm gradient; the gradient ascent raises the filter's activation.
The steps are recorded as views (`np.asarray`): `deprocess_image` edits `img[0].numpy()` in
place, which must leave the tensor alone. Marked slow (~6 s: four filters, one trace each).
"""

import os

import numpy as np
import pytest


@pytest.mark.slow
def test_visualizing_what_convnets_learn(tmp_path, monkeypatch):
    import kgraph as tf
    from kgraph import keras

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)

    # The dimensions of our input image
    img_width = 72  # 180 in the example
    img_height = 72
    # Our target layer: we will visualize the filters from this layer.
    # See `model.summary()` for list of layer names, if you want to change this.
    layer_name = "conv3_block4_out"

    # Build a ResNet50V2 model loaded with pre-trained ImageNet weights
    model = keras.applications.ResNet50V2(weights=None, include_top=False)  # "imagenet"

    # Set up a model that returns the activation values for our target layer
    layer = model.get_layer(name=layer_name)
    feature_extractor = keras.Model(inputs=model.inputs, outputs=layer.output)

    def compute_loss(input_image, filter_index):
        activation = feature_extractor(input_image)
        # We avoid border artifacts by only involving non-border pixels in the loss.
        filter_activation = activation[:, 2:-2, 2:-2, filter_index]
        return tf.reduce_mean(filter_activation)

    @tf.function
    def gradient_ascent_step(img, filter_index, learning_rate):
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = compute_loss(img, filter_index)
        # Compute gradients.
        grads = tape.gradient(loss, img)
        # Normalize gradients.
        grads = tf.math.l2_normalize(grads)
        img += learning_rate * grads
        return loss, img

    def initialize_image():
        # We start from a gray image with some random noise
        img = tf.random.uniform((1, img_width, img_height, 3))
        # ResNet50V2 expects inputs in the range [-1, +1].
        # Here we scale our random inputs to [-0.125, +0.125]
        return (img - 0.5) * 0.25

    steps = []  # (filter, image in, loss, image out) of each step, for the check

    def visualize_filter(filter_index):
        # We run gradient ascent for 20 steps
        iterations = 3  # 30 in the example
        learning_rate = 10.0
        img = initialize_image()
        for iteration in range(iterations):
            before = np.asarray(img)
            loss, img = gradient_ascent_step(img, filter_index, learning_rate)
            steps.append((filter_index, before, float(loss), np.asarray(img)))

        # Decode the resulting input image
        img = deprocess_image(img[0].numpy())
        return loss, img

    def deprocess_image(img):
        # Normalize array: center on 0., ensure variance is 0.15
        img -= img.mean()
        img /= img.std() + 1e-5
        img *= 0.15

        # Center crop
        img = img[25:-25, 25:-25, :]

        # Clip to [0, 1]
        img += 0.5
        img = np.clip(img, 0, 1)

        # Convert to RGB array
        img *= 255
        img = np.clip(img, 0, 255).astype("uint8")
        return img

    loss, img = visualize_filter(0)
    keras.preprocessing.image.save_img("0.png", img)

    # Compute image inputs that maximize per-filter activations
    # for the first 64 filters of our target layer
    all_imgs = []
    for filter_index in range(4):  # range(64) in the example
        print("Processing filter %d" % (filter_index,))
        loss, img = visualize_filter(filter_index)
        all_imgs.append(img)

    # Build a black picture with enough space for
    # our 8 x 8 filters of size 128 x 128, with a 5px margin in between
    margin = 5
    n = 2  # 8 in the example
    cropped_width = img_width - 25 * 2
    cropped_height = img_height - 25 * 2
    width = n * cropped_width + (n - 1) * margin
    height = n * cropped_height + (n - 1) * margin
    stitched_filters = np.zeros((width, height, 3))

    # Fill the picture with our saved filters
    for i in range(n):
        for j in range(n):
            img = all_imgs[i * n + j]
            stitched_filters[
                (cropped_width + margin) * i : (cropped_width + margin) * i + cropped_width,
                (cropped_height + margin) * j : (cropped_height + margin) * j
                + cropped_height,
                :,
            ] = img
    keras.preprocessing.image.save_img("stiched_filters.png", stitched_filters)

    assert model.input.shape == (None, None, None, 3)
    assert all(img.shape == (22, 22, 3) and img.dtype == np.uint8 for img in all_imgs)
    with keras.utils.load_img("stiched_filters.png") as grid:
        assert grid.size == (49, 49)
    assert os.path.exists("0.png")
    for filter_index, before, loss, after in steps:
        activation = feature_extractor.predict(before, verbose=0)
        np.testing.assert_allclose(loss, activation[:, 2:-2, 2:-2, filter_index].mean(),
                                   rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(after - before), 10.0, rtol=1e-4)
    for filter_index in range(4):  # each filter's activation went up over its 3 steps
        run = [loss for f, _, loss, _ in steps[3:] if f == filter_index]
        assert run[-1] > run[0]
