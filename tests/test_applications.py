"""kgraph.applications (issue 13, part 4): Keras Applications' parameter counts and layer
names, small-input forwards, Keras weight files loaded by layer name, weights='imagenet' from
$KGRAPH_HOME/models only, preprocess_input / decode_predictions, and the FAQ's fine-tuning
blocks with a frozen ResNet50 standing for `ResNet50Base`."""
import json

import h5py
import numpy as np
import pytest

from faq_blocks import block
from kgraph import applications as apps
from kgraph import config, keras
from kgraph.applications.imagenet_utils import WeightsNotFoundError
from kgraph.keras.saving.errors import WeightMismatchError

# (builder, kwargs, total, trainable) from Keras Applications' summary()
COUNTS = [
    (apps.ResNet50, {}, 25_636_712, 25_583_592),
    (apps.ResNet50, {"include_top": False}, 23_587_712, 23_534_592),
    (apps.ResNet101, {}, 44_707_176, 44_601_832),
    (apps.ResNet152, {}, 60_419_944, 60_268_520),
    (apps.ResNet50V2, {}, 25_613_800, 25_568_360),
    (apps.ResNet50V2, {"include_top": False}, 23_564_800, 23_519_360),
    (apps.ResNet101V2, {}, 44_675_560, 44_577_896),
    (apps.ResNet152V2, {}, 60_380_648, 60_236_904),
    (apps.InceptionV3, {}, 23_851_784, 23_817_352),
    (apps.InceptionV3, {"include_top": False}, 21_802_784, 21_768_352),
    (apps.MobileNetV2, {}, 3_538_984, 3_504_872),
    (apps.MobileNetV2, {"include_top": False}, 2_257_984, 2_223_872),
    (apps.EfficientNetB0, {}, 5_330_571, 5_288_548),
    (apps.EfficientNetB0, {"include_top": False}, 4_049_571, 4_007_548),
    (apps.VGG16, {"include_top": False}, 14_714_688, 14_714_688),
    (apps.VGG19, {"include_top": False}, 20_024_384, 20_024_384),
    (apps.Xception, {}, 22_910_480, 22_855_952),
    (apps.Xception, {"include_top": False}, 20_861_480, 20_806_952),
    (apps.DenseNet121, {}, 8_062_504, 7_978_856),
    (apps.DenseNet121, {"include_top": False}, 7_037_504, 6_953_856),
    (apps.DenseNet169, {}, 14_307_880, 14_149_480),
    (apps.DenseNet201, {}, 20_242_984, 20_013_928),
]


def _trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


@pytest.mark.parametrize("builder, kwargs, total, trainable", COUNTS,
                         ids=[f"{b.__name__}-{'top' if not k else 'notop'}"
                              for b, k, _, _ in COUNTS])
def test_parameter_counts_equal_keras(builder, kwargs, total, trainable):
    model = builder(weights=None, **kwargs)
    assert (model.count_params(), _trainable(model)) == (total, trainable)


@pytest.mark.slow
def test_vgg16_with_its_top_has_keras_parameter_count():
    assert apps.VGG16(weights=None).count_params() == 138_357_544
    assert apps.VGG19(weights=None).count_params() == 143_667_240


KERAS_NAMES = {
    apps.ResNet50: ["conv1_pad", "conv1_conv", "conv1_bn", "pool1_pool", "conv2_block1_0_conv",
                    "conv3_block4_2_bn", "conv5_block3_add", "conv5_block3_out", "avg_pool",
                    "predictions"],
    apps.ResNet50V2: ["conv1_pad", "conv1_conv", "pool1_pool", "conv2_block1_preact_bn",
                      "conv2_block1_preact_relu", "conv2_block1_0_conv", "conv2_block3_2_pad",
                      "conv4_block6_3_conv", "conv5_block3_out", "post_bn", "post_relu",
                      "avg_pool", "predictions"],
    apps.MobileNetV2: ["Conv1", "bn_Conv1", "Conv1_relu", "expanded_conv_depthwise",
                       "expanded_conv_project_BN", "block_1_pad", "block_16_project_BN",
                       "block_2_add", "Conv_1", "Conv_1_bn", "out_relu", "predictions"],
    apps.EfficientNetB0: ["rescaling", "normalization", "stem_conv_pad", "stem_conv",
                          "block1a_se_excite", "block2b_drop", "block2b_add", "block6d_dwconv",
                          "block7a_project_bn", "top_conv", "top_activation", "top_dropout",
                          "predictions"],
    apps.VGG16: ["block1_conv1", "block3_conv3", "block5_pool", "flatten", "fc1", "fc2",
                 "predictions"],
    apps.VGG19: ["block1_conv1", "block3_conv4", "block5_conv4", "block5_pool"],
    apps.DenseNet121: ["conv1_conv", "conv1_bn", "conv1_relu", "pool1", "conv2_block1_0_bn",
                       "conv2_block1_1_conv", "conv2_block6_concat", "pool2_bn", "pool2_conv",
                       "pool2_pool", "conv5_block16_2_conv", "bn", "relu", "avg_pool",
                       "predictions"],
    apps.Xception: ["block1_conv1", "block1_conv1_bn", "block1_conv2_act", "block2_sepconv1",
                    "block2_sepconv2_act", "block2_pool", "block4_sepconv1_act",
                    "block12_sepconv3_bn", "block13_pool", "block14_sepconv2_act", "avg_pool",
                    "predictions"],
}


@pytest.mark.parametrize("builder", list(KERAS_NAMES), ids=lambda b: b.__name__)
def test_layer_names_are_keras_applications_names(builder):
    vgg = builder in (apps.VGG16, apps.VGG19)
    kwargs = {"input_shape": (32, 32, 3), "include_top": False} if vgg else {}
    names = {layer.name for layer in builder(weights=None, **kwargs).layers}
    expected = [n for n in KERAS_NAMES[builder] if not vgg or "block" in n]
    assert set(expected) <= names, sorted(set(expected) - names)


def test_small_input_forwards():
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    features = apps.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3),
                             pooling="avg")
    assert features.predict(apps.resnet50.preprocess_input(x), verbose=0).shape == (2, 2048)
    classifier = apps.MobileNetV2(weights=None, input_shape=(32, 32, 3), classes=7)
    probabilities = classifier.predict(apps.mobilenet_v2.preprocess_input(x), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    efficient = apps.EfficientNetB0(weights=None, include_top=False, input_shape=(32, 32, 3),
                                    pooling="max")
    out = efficient.predict(x, verbose=0)
    assert out.shape == (2, 1280) and np.isfinite(out).all()
    vgg = apps.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    assert vgg.predict(x, verbose=0).shape == (2, 1, 1, 512)



@pytest.mark.parametrize("builder", [apps.ResNet50V2, apps.VGG16, apps.EfficientNetB0,
                                     apps.DenseNet121])
def test_without_top_and_input_shape_the_size_is_open_as_in_keras(builder):
    # visualizing_what_convnets_learn.py feeds 180x180 images to ResNet50V2(include_top=False)
    model = builder(weights=None, include_top=False)
    assert model.input.shape == (None, None, None, 3)
    rng = np.random.default_rng(2)
    # sizes whose every strided stage is even: EfficientNet's `correct_pad` (Keras') pads an
    # open size as an even one, so an odd stage would differ from the static model, as in Keras
    for size in (32, 64):
        x = rng.uniform(0, 255, (1, size, size, 3)).astype("float32")
        static = builder(weights=None, include_top=False, input_shape=(size, size, 3))
        static.set_weights(model.get_weights())
        np.testing.assert_allclose(model.predict(x, verbose=0), static.predict(x, verbose=0),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("builder, size", [(apps.Xception, 299), (apps.MobileNetV2, 224)])
def test_models_with_strided_same_convolutions_keep_their_default_size(builder, size):
    # (InceptionV3's 'same' layers have stride 1: its size is open, test_open_size_same_pooling)
    assert builder(weights=None, include_top=False).input.shape == (None, size, size, 3)


def _perturb_batchnorm(model, seed=1):
    """Non-trivial moving statistics, so that loading them is visible in the outputs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([w + rng.uniform(0.1, 0.5, w.shape).astype(w.dtype)
                               for w in layer.get_weights()])


def _keras_style_file(model, path):
    """A legacy HDF5 weights file as Keras Applications ship them, with `layer_names` in a
    shuffled order (so only loading by name can get every layer right)."""
    model.save_weights(path)
    with h5py.File(path, "r+") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        f.attrs["layer_names"] = np.array(names[::-1], dtype="S")
    return path


def test_keras_weight_file_loads_by_layer_name(tmp_path):
    kwargs = {"include_top": False, "input_shape": (32, 32, 3), "pooling": "avg"}
    source = apps.ResNet50(weights=None, **kwargs)
    _perturb_batchnorm(source)
    path = _keras_style_file(source, str(tmp_path / "resnet50_notop.h5"))
    loaded = apps.ResNet50(weights=path, **kwargs)
    x = np.random.default_rng(2).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), source.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(WeightMismatchError, match="no weights for .* layers"):
        apps.MobileNetV2(weights=path, include_top=False, input_shape=(32, 32, 3))


# -- weight files written by real Keras (its legacy HDF5 writer, as Keras Applications' files) --
def _real_keras_model(real_keras, name, kwargs, seed=0):
    """Real Keras' application with deterministic random weights: kernels scaled by their fan-in
    (activations stay near 1 through the depth), batch-norm statistics and biases non-trivial.
    The model is built in a StatelessScope and its variables initialized from these values:
    Keras on JAX would otherwise compile one XLA random kernel per weight shape (~17 s per model
    on two cores)."""
    with real_keras.StatelessScope(initialize_variables=False):
        model = getattr(real_keras.applications, name)(weights=None, **kwargs)
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if variable.name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) == 1:
            value = rng.normal(0.0, 0.1, shape)
        else:
            fan_in = np.prod(shape[:2] if "depthwise" in variable.name else shape[:-1])
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        value = value.astype("float32")
        variable._initializer = lambda shape, dtype, value=value: value
    with real_keras.StatelessScope():  # leaving it initializes the deferred variables
        pass
    return model


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras' writer
@pytest.mark.parametrize("name, kwargs", [
    ("MobileNetV2", {"input_shape": (32, 32, 3), "alpha": 0.35, "classes": 10,
                     "classifier_activation": None}),
    ("ResNet50", {"input_shape": (32, 32, 3), "include_top": False, "pooling": "avg"}),
    ("ResNet50V2", {"input_shape": (32, 32, 3), "include_top": False, "pooling": "avg"}),
    ("DenseNet121", {"input_shape": (32, 32, 3), "include_top": False, "pooling": "avg"}),
])
def test_weight_file_written_by_real_keras_loads_by_name(tmp_path, name, kwargs):
    real_keras = pytest.importorskip("keras")
    legacy_h5 = pytest.importorskip("keras.src.legacy.saving.legacy_h5_format")
    theirs = _real_keras_model(real_keras, name, kwargs)
    path = str(tmp_path / f"{name.lower()}.h5")
    with h5py.File(path, "w") as f:  # Keras 3's save_weights only writes '.weights.h5'
        legacy_h5.save_weights_to_hdf5_group(f, theirs)
    ours = getattr(apps, name)(weights=path, **kwargs)
    x = np.random.default_rng(8).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    want = np.asarray(theirs.predict(x, verbose=0))
    assert want.std() > 0.05  # outputs that tell weights apart
    np.testing.assert_allclose(ours.predict(x, verbose=0), want, rtol=1e-5,
                               atol=1e-5 * np.abs(want).max())


def test_efficientnet_normalization_statistics_come_from_the_file(tmp_path):
    source = apps.EfficientNetB0(weights=None, include_top=False, input_shape=(32, 32, 3))
    normalization = source.get_layer("normalization")
    normalization.adapt(np.random.default_rng(3).uniform(0, 1, (8, 32, 32, 3)))
    path = _keras_style_file(source, str(tmp_path / "efficientnetb0_notop.h5"))
    loaded = apps.EfficientNetB0(weights=path, include_top=False, input_shape=(32, 32, 3))
    for got, want in zip(loaded.get_layer("normalization").get_weights(),
                         normalization.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert [w.name for w in normalization.weights] == ["mean", "variance", "count"]


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KGRAPH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize("builder, kwargs, file_name", [
    (apps.ResNet50, {}, "resnet50_weights_tf_dim_ordering_tf_kernels.h5"),
    (apps.ResNet101, {"include_top": False}, "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    (apps.MobileNetV2, {"include_top": False},
     "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
    (apps.VGG16, {"include_top": False}, "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    (apps.VGG19, {}, "vgg19_weights_tf_dim_ordering_tf_kernels.h5"),
    (apps.EfficientNetB0, {}, "efficientnetb0.h5"),
])
def test_imagenet_weights_name_the_exact_local_file(empty_home, builder, kwargs, file_name):
    with pytest.raises(WeightsNotFoundError) as info:
        builder(weights="imagenet", **kwargs)
    assert repr(str(empty_home / "models" / file_name)) in str(info.value)
    assert "https://" in str(info.value)


def test_imagenet_weights_load_from_kgraph_home(empty_home):
    kwargs = {"include_top": False, "input_shape": (224, 224, 3)}
    source = apps.MobileNetV2(weights=None, alpha=0.35, **kwargs)
    _perturb_batchnorm(source)
    (empty_home / "models").mkdir(parents=True)
    _keras_style_file(source, str(empty_home / "models" /
                                  "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"))
    loaded = apps.MobileNetV2(weights="imagenet", alpha=0.35, **kwargs)
    for a, b in zip(loaded.weights, source.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("kwargs, text", [
    ({"weights": "imagenet", "classes": 10}, "classes=10"),
    ({"weights": None, "include_top": False, "pooling": "sum"}, "pooling='sum'"),
    ({"weights": None, "include_top": False, "input_shape": (16, 16, 3)}, "(16, 16, 3)"),
    ({"weights": None, "include_top": False, "input_shape": (32, 32)}, "(32, 32)"),
    ({"weights": "no/such/file.h5"}, "no/such/file.h5"),
    ({"weights": "imagenet", "classifier_activation": "relu"}, "'relu'"),
    ({"weights": "imagenet", "input_shape": (64, 64, 3)}, "(64, 64, 3)"),
])
def test_bad_arguments_quote_the_value(kwargs, text):
    with pytest.raises(ValueError) as info:
        apps.ResNet50(**kwargs)
    assert text in str(info.value)


def test_preprocess_input_modes():
    x = np.arange(2 * 2 * 2 * 3, dtype="float32").reshape(2, 2, 2, 3) * 10
    caffe = apps.resnet50.preprocess_input(x.copy())
    np.testing.assert_allclose(caffe, x[..., ::-1] - np.array([103.939, 116.779, 123.68]),
                               rtol=1e-6)
    np.testing.assert_allclose(apps.vgg16.preprocess_input(x.copy()), caffe)
    np.testing.assert_allclose(apps.vgg19.preprocess_input(x.copy()), caffe)
    np.testing.assert_allclose(apps.mobilenet_v2.preprocess_input(x.copy()), x / 127.5 - 1)
    np.testing.assert_allclose(apps.resnet_v2.preprocess_input(x.copy()), x / 127.5 - 1)
    assert apps.efficientnet.preprocess_input(x) is x
    torch = apps.imagenet_utils.preprocess_input(x.copy(), mode="torch")
    np.testing.assert_allclose(torch, (x / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225],
                               rtol=1e-5)
    first = np.moveaxis(x, -1, 1)
    np.testing.assert_allclose(apps.resnet50.preprocess_input(first.copy(),
                                                              data_format="channels_first"),
                               np.moveaxis(caffe, -1, 1), rtol=1e-6)
    uint8 = apps.mobilenet_v2.preprocess_input(np.full((1, 1, 1, 3), 255, np.uint8))
    assert uint8.dtype == np.float32 and uint8.max() == 1.0
    with pytest.raises(ValueError, match="'lab'"):
        apps.imagenet_utils.preprocess_input(x, mode="lab")


def test_preprocess_input_inside_a_model_matches_numpy():
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, apps.resnet50.preprocess_input(inputs))
    x = np.random.default_rng(4).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               apps.resnet50.preprocess_input(x.copy()), rtol=1e-5)


def test_decode_predictions_reads_the_local_class_index(empty_home):
    preds = np.zeros((2, 1000), "float32")
    preds[0, [3, 7, 1]] = [0.5, 0.3, 0.2]
    preds[1, 999] = 1.0
    with pytest.raises(WeightsNotFoundError, match="imagenet_class_index.json"):
        apps.resnet50.decode_predictions(preds)
    (empty_home / "models").mkdir(parents=True)
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    (empty_home / "models" / "imagenet_class_index.json").write_text(json.dumps(index))
    decoded = apps.resnet50.decode_predictions(preds, top=3)
    assert [(a, b) for a, b, _ in decoded[0]] == [("n00000003", "class_3"),
                                                    ("n00000007", "class_7"),
                                                    ("n00000001", "class_1")]
    assert decoded[1][0][:2] == ("n00000999", "class_999") and decoded[1][0][2] == 1.0
    with pytest.raises(ValueError, match=r"\(2, 10\)"):
        apps.resnet50.decode_predictions(np.zeros((2, 10)))


# -- the FAQ's fine-tuning blocks, with a frozen ResNet50 as `ResNet50Base` -----------------
FINE_TUNING_PRELUDE = """
import numpy as np
import kgraph as tf
from kgraph import keras
from kgraph.keras.layers import Dense
from kgraph.keras.models import Sequential
from kgraph.applications import ResNet50


def ResNet50Base(input_shape, weights):
    # the FAQ's pre-trained base: Keras' ResNet50 without its top, 'pretrained' being the
    # Keras-named weight file the test wrote
    return ResNet50(include_top=False, weights=WEIGHTS[weights], input_shape=input_shape,
                    pooling="avg")
"""


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    source = apps.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3),
                           pooling="avg")
    _perturb_batchnorm(source)
    path = str(tmp_path_factory.mktemp("weights") / "resnet50_notop.h5")
    return source, _keras_style_file(source, path)


def _assert_same_layer_weights(model, source):
    for layer in (layer for layer in source.layers if layer.weights):
        for a, b in zip(model.get_layer(layer.name).get_weights(), layer.get_weights()):
            np.testing.assert_array_equal(a, b)


def _run_fine_tuning(code, path, **names):
    namespace = {"WEIGHTS": {"pretrained": path}, **names}
    exec(compile(FINE_TUNING_PRELUDE, "prelude", "exec"), namespace)
    exec(compile(code, "faq", "exec"), namespace)
    return namespace


def test_faq_fine_tuning_with_fit_runs_on_a_frozen_resnet50(pretrained):
    source, path = pretrained
    code = block("freeze layers", 1).replace(
        "model.compile(...)", "model.compile(optimizer='adam', loss='mse')").replace(
        "model.fit(...)", "model.fit(X, Y, epochs=2, batch_size=8, verbose=0)")
    rng = np.random.default_rng(5)
    x, y = rng.uniform(-1, 1, (16, 32, 32, 3)).astype("float32"), rng.random((16, 10))
    ns = _run_fine_tuning(code, path, X=x, Y=y)
    _assert_same_layer_weights(ns["model"].layers[0], source)  # loaded, unchanged by fit
    assert ns["model"].evaluate(x, y, verbose=0) < ns["model"].history.history["loss"][0]


def test_faq_fine_tuning_with_a_custom_loop_runs_on_a_frozen_resnet50(pretrained):
    source, path = pretrained
    setup = ("rng = np.random.default_rng(6)\n"
             "dataset = [(rng.uniform(-1, 1, (4, 32, 32, 3)).astype('float32'), "
             "rng.random((4, 10)).astype('float32')) for _ in range(2)]\n"
             "loss_fn = keras.losses.MeanSquaredError()\n"
             "optimizer = keras.optimizers.SGD(0.1)\n")
    ns = _run_fine_tuning(setup + block("freeze layers", 2), path)
    assert len(ns["model"].trainable_weights) == 2
    _assert_same_layer_weights(ns["model"].layers[0], source)
    assert float(ns["loss_value"]) >= 0 and config.floatx() == "float32"


# -- the preprocessing layers EfficientNet needs --------------------------------------------
def test_rescaling_and_normalization_layers_match_numpy_and_round_trip():
    rng = np.random.default_rng(7)
    data = rng.uniform(0, 9, (16, 3, 4)).astype("float32")
    inputs = keras.Input((3, 4))
    scaled = keras.layers.Rescaling([1.0, 2.0, 3.0, 4.0], offset=-1.0, name="scale")(inputs)
    normalization = keras.layers.Normalization(axis=-1, name="norm")
    model = keras.Model(inputs, normalization(scaled))
    normalization.adapt(data * [1, 2, 3, 4] - 1)
    want = (data * [1, 2, 3, 4] - 1 - (data * [1, 2, 3, 4] - 1).mean(axis=(0, 1))) / \
        (data * [1, 2, 3, 4] - 1).std(axis=(0, 1))
    np.testing.assert_allclose(model.predict(data, verbose=0), want, rtol=1e-4, atol=1e-4)
    assert normalization.get_weights()[2] == 48  # count: samples reduced over
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict(data, verbose=0), want, rtol=1e-4, atol=1e-4)
    fixed = keras.layers.Normalization(axis=None, mean=2.0, variance=4.0, invert=True)
    np.testing.assert_allclose(fixed(np.array([[0.0, 1.0]], "float32")), [[2.0, 4.0]])
    assert fixed.weights == []
    with pytest.raises(ValueError, match="mean=1.0, variance=None"):
        keras.layers.Normalization(mean=1.0)
    with pytest.raises(ValueError, match="scale='big'"):
        keras.layers.Rescaling("big")


def test_inception_v3_computes_what_real_keras_does_with_its_weights():
    """Keras leaves InceptionV3's convolutions unnamed, so its weights are copied in order
    (both build the layers in the same order; trainable and non-trainable lists each, as
    kgraph's `model.weights` lists all trainable weights first) rather than loaded by name."""
    real_keras = pytest.importorskip("keras")
    kwargs = {"input_shape": (75, 75, 3), "include_top": False, "pooling": "avg"}
    theirs = _real_keras_model(real_keras, "InceptionV3", kwargs)
    ours = apps.InceptionV3(weights=None, **kwargs)
    assert [layer.name for layer in ours.layers if layer.name.startswith("mixed")] == \
        [layer.name for layer in theirs.layers if layer.name.startswith("mixed")]
    for mine, real in ((ours.trainable_weights, theirs.trainable_weights),
                       (ours.non_trainable_weights, theirs.non_trainable_weights)):
        assert len(mine) == len(real)
        for variable, value in zip(mine, real):
            variable.assign(np.asarray(value))
    x = apps.inception_v3.preprocess_input(
        np.random.default_rng(3).uniform(0, 255, (2, 75, 75, 3)).astype("float32"))
    want = np.asarray(theirs.predict(x, verbose=0))
    assert want.std() > 0.05
    np.testing.assert_allclose(ours.predict(x, verbose=0), want, rtol=1e-4,
                               atol=1e-4 * np.abs(want).max())
    with pytest.raises(ValueError, match="weights='imagenet'"):
        apps.InceptionV3()
