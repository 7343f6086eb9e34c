"""keras.io example "Grad-CAM class activation visualization" (examples/vision/grad_cam.py).

The Keras 3 code as written (last modified 2021/03/07; `import tensorflow as tf; import keras`
swapped for kgraph): `keras.applications.xception.Xception` with its `preprocess_input` and
`decode_predictions`, `load_img(target_size=(299, 299))`/`img_to_array`, the last layer's
softmax removed by `model.layers[-1].activation = None`, `predict`, and `make_gradcam_heatmap`:
a model from `model.input` to `[model.get_layer("block14_sepconv2_act").output, model.output]`
called under `tf.GradientTape`, `tf.argmax(preds[0])`, the gradient of `preds[:, pred_index]`
with respect to the conv activations (a model output, not a variable), `tf.reduce_mean`,
`@ pooled_grads[..., tf.newaxis]`, `tf.squeeze`, `tf.maximum`/`tf.math.reduce_max`,
`.numpy()`; `save_and_display_gradcam` colours the heatmap with matplotlib's "jet" colormap
and superimposes it with `array_to_img`/`img_to_array` into `cam.jpg`; then the second image
with `top=2` and the heatmaps for classes 260 and 285.

Replaced: `weights="imagenet"` by `weights=None` (the ImageNet weights are a download), the
two downloaded images by random Pillow images of other sizes, the downloaded ImageNet class
index (`decode_predictions`) by a generated `imagenet_class_index.json` in `$KGRAPH_HOME/models`.
The IPython `display` calls and `plt.matshow` are left out. The stored source has the
`with tf.GradientTape()` block dedented out of `make_gradcam_heatmap` (a formatting slip: it
reads the function's arguments); it is indented back into the function here.

Checked: with the head being global average pooling then a Dense layer, the gradient of class
c's logit with respect to the last conv activations A is W[:, c] / (H * W) at every position,
so the heatmap is relu(A @ W[:, c]) / max, computed in numpy from A and the Dense kernel.
Marked slow (3-7 s: Xception at 299x299, as written).
"""

import json
import os

import numpy as np
import pytest


def _write_images_and_class_index(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for name, size in (("african_elephant.jpg", (400, 300)), ("cat_and_dog.jpg", (320, 200))):
        path = os.path.join(root, name)
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path, format="PNG" if name.startswith("af") else "JPEG")
        paths.append(path)
    os.makedirs(os.path.join(root, "home", "models"))
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    with open(os.path.join(root, "home", "models", "imagenet_class_index.json"), "w") as f:
        json.dump(index, f)
    return paths


@pytest.mark.slow
def test_grad_cam(tmp_path, monkeypatch):
    import matplotlib as mpl

    import kgraph as tf
    from kgraph import keras

    elephant_path, cat_and_dog_path = _write_images_and_class_index(str(tmp_path))
    monkeypatch.setenv("KGRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)

    model_builder = keras.applications.xception.Xception
    img_size = (299, 299)
    preprocess_input = keras.applications.xception.preprocess_input
    decode_predictions = keras.applications.xception.decode_predictions

    last_conv_layer_name = "block14_sepconv2_act"

    # The local path to our target image
    img_path = elephant_path  # keras.utils.get_file("african_elephant.jpg", ...)

    def get_img_array(img_path, size):
        # `img` is a PIL image of size 299x299
        img = keras.utils.load_img(img_path, target_size=size)
        # `array` is a float32 Numpy array of shape (299, 299, 3)
        array = keras.utils.img_to_array(img)
        # We add a dimension to transform our array into a "batch"
        # of size (1, 299, 299, 3)
        array = np.expand_dims(array, axis=0)
        return array

    def make_gradcam_heatmap(img_array, model, last_conv_layer_name, pred_index=None):
        # First, we create a model that maps the input image to the activations
        # of the last conv layer as well as the output predictions
        grad_model = keras.models.Model(
            model.input, [model.get_layer(last_conv_layer_name).output, model.output]
        )

        # Then, we compute the gradient of the top predicted class for our input image
        # with respect to the activations of the last conv layer
        with tf.GradientTape() as tape:
            last_conv_layer_output, preds = grad_model(img_array)
            if pred_index is None:
                pred_index = tf.argmax(preds[0])
            class_channel = preds[:, pred_index]

        # This is the gradient of the output neuron (top predicted or chosen)
        # with regard to the output feature map of the last conv layer
        grads = tape.gradient(class_channel, last_conv_layer_output)

        # This is a vector where each entry is the mean intensity of the gradient
        # over a specific feature map channel
        pooled_grads = tf.reduce_mean(grads, axis=(0, 1, 2))

        # We multiply each channel in the feature map array
        # by "how important this channel is" with regard to the top predicted class
        # then sum all the channels to obtain the heatmap class activation
        last_conv_layer_output = last_conv_layer_output[0]
        heatmap = last_conv_layer_output @ pooled_grads[..., tf.newaxis]
        heatmap = tf.squeeze(heatmap)

        # For visualization purpose, we will also normalize the heatmap between 0 & 1
        heatmap = tf.maximum(heatmap, 0) / tf.math.reduce_max(heatmap)
        return heatmap.numpy()

    # Prepare image
    img_array = preprocess_input(get_img_array(img_path, size=img_size))

    # Make model
    model = model_builder(weights=None)  # weights="imagenet" in the example (a download)

    # Remove last layer's softmax
    model.layers[-1].activation = None

    # Print what the top predicted class is
    preds = model.predict(img_array)
    decoded = decode_predictions(preds, top=1)[0]
    print("Predicted:", decoded)

    # Generate class activation heatmap
    heatmap = make_gradcam_heatmap(img_array, model, last_conv_layer_name)

    def save_and_display_gradcam(img_path, heatmap, cam_path="cam.jpg", alpha=0.4):
        # Load the original image
        img = keras.utils.load_img(img_path)
        img = keras.utils.img_to_array(img)

        # Rescale heatmap to a range 0-255
        heatmap = np.uint8(255 * heatmap)

        # Use jet colormap to colorize heatmap
        jet = mpl.colormaps["jet"]

        # Use RGB values of the colormap
        jet_colors = jet(np.arange(256))[:, :3]
        jet_heatmap = jet_colors[heatmap]

        # Create an image with RGB colorized heatmap
        jet_heatmap = keras.utils.array_to_img(jet_heatmap)
        jet_heatmap = jet_heatmap.resize((img.shape[1], img.shape[0]))
        jet_heatmap = keras.utils.img_to_array(jet_heatmap)

        # Superimpose the heatmap on original image
        superimposed_img = jet_heatmap * alpha + img
        superimposed_img = keras.utils.array_to_img(superimposed_img)

        # Save the superimposed image
        superimposed_img.save(cam_path)

    save_and_display_gradcam(img_path, heatmap)

    # the head is GlobalAveragePooling2D -> Dense: d logit_c / dA = W[:, c] / (H * W) everywhere
    conv_model = keras.models.Model(model.input, model.get_layer(last_conv_layer_name).output)
    kernel = model.layers[-1].kernel.numpy()

    def numpy_heatmap(img_array, pred_index):
        activations = conv_model.predict(img_array, verbose=0)[0]
        cam = activations @ kernel[:, pred_index]
        return np.maximum(cam, 0) / cam.max()

    top = int(np.argmax(preds[0]))
    assert decoded[0][:2] == (f"n{top:08d}", f"class_{top}")
    assert heatmap.shape == (10, 10) and heatmap.max() == 1.0
    np.testing.assert_allclose(heatmap, numpy_heatmap(img_array, top), atol=1e-4)
    with keras.utils.load_img("cam.jpg") as cam:
        assert cam.size == (400, 300)

    img_path = cat_and_dog_path  # keras.utils.get_file("cat_and_dog.jpg", ...)

    # Prepare image
    img_array = preprocess_input(get_img_array(img_path, size=img_size))

    # Print what the two top predicted classes are
    preds = model.predict(img_array)
    decoded = decode_predictions(preds, top=2)[0]
    print("Predicted:", decoded)

    heatmap = make_gradcam_heatmap(img_array, model, last_conv_layer_name, pred_index=260)
    save_and_display_gradcam(img_path, heatmap)
    np.testing.assert_allclose(heatmap, numpy_heatmap(img_array, 260), atol=1e-4)

    heatmap = make_gradcam_heatmap(img_array, model, last_conv_layer_name, pred_index=285)
    save_and_display_gradcam(img_path, heatmap)
    np.testing.assert_allclose(heatmap, numpy_heatmap(img_array, 285), atol=1e-4)
    assert [row[2] for row in decoded] == sorted(preds[0])[::-1][:2]
