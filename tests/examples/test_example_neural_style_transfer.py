"""keras.io example "Neural style transfer" (examples/generative/neural_style_transfer.py).

The stored source (TensorFlow-era: `import tensorflow as tf; from tensorflow import keras;
from tensorflow.keras.applications import vgg19`) with those imports swapped for kgraph: the
`load_img`/`img_to_array`/`vgg19.preprocess_input` preprocessing into `tf.convert_to_tensor`,
`deprocess_image`, the Gram matrix (`tf.transpose`, `tf.reshape` by `tf.shape(x)[0]`,
`tf.matmul`), the style, content and total-variation losses (`tf.pow`), a VGG19 feature
extractor returning a dict of every layer's output, the `@tf.function` loss-and-gradients
step differentiating with respect to a `tf.Variable` argument, SGD with `ExponentialDecay`
through `apply_gradients([(grads, combination_image)])`, `save_img` PNGs. Changes: the two
`keras.utils.get_file` downloads are generated JPEGs, `VGG19(weights="imagenet")` (a
download) is `weights=None`, the IPython displays are left out; sizes: img_nrows 400 -> 32,
4000 iterations saved every 100 -> 4 saved every 2. Checked: the Gram matrix and the losses
against numpy, the first step's gradient against the loss's central difference along a
random direction, the saved images. Marked slow (~4 s: VGG19's forward and backward pass).
"""

import numpy as np
import pytest


def _write_jpeg(path, size, seed):
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, size[::-1] + (3,), dtype=np.uint8)).save(path)
    return str(path)


@pytest.mark.slow
def test_neural_style_transfer(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    monkeypatch.chdir(tmp_path)
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras.applications import vgg19

    base_image_path = _write_jpeg(tmp_path / "paris.jpg", (48, 40), 0)
    style_reference_image_path = _write_jpeg(tmp_path / "starry_night.jpg", (50, 44), 1)
    result_prefix = "paris_generated"

    # Weights of the different loss components
    total_variation_weight = 1e-6
    style_weight = 1e-6
    content_weight = 2.5e-8

    # Dimensions of the generated picture.
    width, height = keras.preprocessing.image.load_img(base_image_path).size
    img_nrows = 32
    img_ncols = int(width * img_nrows / height)

    def preprocess_image(image_path):
        # Util function to open, resize and format pictures into appropriate tensors
        img = keras.preprocessing.image.load_img(
            image_path, target_size=(img_nrows, img_ncols)
        )
        img = keras.preprocessing.image.img_to_array(img)
        img = np.expand_dims(img, axis=0)
        img = vgg19.preprocess_input(img)
        return tf.convert_to_tensor(img)

    def deprocess_image(x):
        # Util function to convert a tensor into a valid image
        x = x.reshape((img_nrows, img_ncols, 3))
        # Remove zero-center by mean pixel
        x[:, :, 0] += 103.939
        x[:, :, 1] += 116.779
        x[:, :, 2] += 123.68
        # 'BGR'->'RGB'
        x = x[:, :, ::-1]
        x = np.clip(x, 0, 255).astype("uint8")
        return x

    def gram_matrix(x):
        x = tf.transpose(x, (2, 0, 1))
        features = tf.reshape(x, (tf.shape(x)[0], -1))
        gram = tf.matmul(features, tf.transpose(features))
        return gram

    def style_loss(style, combination):
        S = gram_matrix(style)
        C = gram_matrix(combination)
        channels = 3
        size = img_nrows * img_ncols
        return tf.reduce_sum(tf.square(S - C)) / (4.0 * (channels**2) * (size**2))

    def content_loss(base, combination):
        return tf.reduce_sum(tf.square(combination - base))

    def total_variation_loss(x):
        a = tf.square(
            x[:, : img_nrows - 1, : img_ncols - 1, :] - x[:, 1:, : img_ncols - 1, :]
        )
        b = tf.square(
            x[:, : img_nrows - 1, : img_ncols - 1, :] - x[:, : img_nrows - 1, 1:, :]
        )
        return tf.reduce_sum(tf.pow(a + b, 1.25))

    # numpy references of the three losses
    rng = np.random.default_rng(2)
    f1, f2 = rng.normal(size=(2, 4, 5, 6)).astype("float32")
    g1 = f1.reshape(20, 6).T @ f1.reshape(20, 6)
    g2 = f2.reshape(20, 6).T @ f2.reshape(20, 6)
    np.testing.assert_allclose(gram_matrix(f1), g1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(style_loss(f1, f2),
                               np.sum((g1 - g2) ** 2) / (4.0 * 9 * (img_nrows * img_ncols) ** 2),
                               rtol=1e-5)
    np.testing.assert_allclose(content_loss(f1, f2), np.sum((f2 - f1) ** 2), rtol=1e-5)
    image = rng.normal(size=(1, img_nrows, img_ncols, 3)).astype("float32")
    a = (image[:, :-1, :-1] - image[:, 1:, :-1]) ** 2
    b = (image[:, :-1, :-1] - image[:, :-1, 1:]) ** 2
    np.testing.assert_allclose(total_variation_loss(image), np.sum((a + b) ** 1.25), rtol=1e-5)

    # Build a VGG19 model (weights="imagenet" is a download)
    model = vgg19.VGG19(weights=None, include_top=False)

    # Get the symbolic outputs of each "key" layer (we gave them unique names).
    outputs_dict = dict([(layer.name, layer.output) for layer in model.layers])

    # Set up a model that returns the activation values for every layer in
    # VGG19 (as a dict).
    feature_extractor = keras.Model(inputs=model.inputs, outputs=outputs_dict)

    # List of layers to use for the style loss.
    style_layer_names = [
        "block1_conv1",
        "block2_conv1",
        "block3_conv1",
        "block4_conv1",
        "block5_conv1",
    ]
    # The layer to use for the content loss.
    content_layer_name = "block5_conv2"

    def compute_loss(combination_image, base_image, style_reference_image):
        input_tensor = tf.concat(
            [base_image, style_reference_image, combination_image], axis=0
        )
        features = feature_extractor(input_tensor)

        # Initialize the loss
        loss = tf.zeros(shape=())

        # Add content loss
        layer_features = features[content_layer_name]
        base_image_features = layer_features[0, :, :, :]
        combination_features = layer_features[2, :, :, :]
        loss = loss + content_weight * content_loss(
            base_image_features, combination_features
        )
        # Add style loss
        for layer_name in style_layer_names:
            layer_features = features[layer_name]
            style_reference_features = layer_features[1, :, :, :]
            combination_features = layer_features[2, :, :, :]
            sl = style_loss(style_reference_features, combination_features)
            loss += (style_weight / len(style_layer_names)) * sl

        # Add total variation loss
        loss += total_variation_weight * total_variation_loss(combination_image)
        return loss

    @tf.function
    def compute_loss_and_grads(combination_image, base_image, style_reference_image):
        with tf.GradientTape() as tape:
            loss = compute_loss(combination_image, base_image, style_reference_image)
        grads = tape.gradient(loss, combination_image)
        return loss, grads

    optimizer = keras.optimizers.SGD(
        keras.optimizers.schedules.ExponentialDecay(
            initial_learning_rate=100.0, decay_steps=100, decay_rate=0.96
        )
    )

    base_image = preprocess_image(base_image_path)
    style_reference_image = preprocess_image(style_reference_image_path)
    combination_image = tf.Variable(preprocess_image(base_image_path))
    assert tuple(base_image.shape) == (1, img_nrows, img_ncols, 3) and img_ncols == 38

    # the gradient the loop applies, against a central difference of the loss
    start = np.array(combination_image.numpy())
    loss0, grads0 = compute_loss_and_grads(combination_image, base_image, style_reference_image)
    direction = np.random.default_rng(3).normal(size=start.shape).astype("float32")
    eps = 1.0
    losses = []
    for sign in (1, -1):
        losses.append(float(compute_loss(start + sign * eps * direction, base_image,
                                         style_reference_image)))
    numeric = (losses[0] - losses[1]) / (2 * eps)
    assert float(np.sum(np.asarray(grads0) * direction)) == pytest.approx(numeric, rel=2e-2)

    iterations = 4
    for i in range(1, iterations + 1):
        loss, grads = compute_loss_and_grads(
            combination_image, base_image, style_reference_image
        )
        optimizer.apply_gradients([(grads, combination_image)])
        if i % 2 == 0:
            print("Iteration %d: loss=%.2f" % (i, loss))
            img = deprocess_image(combination_image.numpy())
            fname = result_prefix + "_at_iteration_%d.png" % i
            keras.preprocessing.image.save_img(fname, img)

    assert np.isfinite(float(loss))
    assert not np.array_equal(combination_image.numpy(), start)
    saved = keras.preprocessing.image.load_img(result_prefix + "_at_iteration_4.png")
    assert saved.size == (img_ncols, img_nrows)
