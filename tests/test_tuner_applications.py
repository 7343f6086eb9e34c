"""kgraph.tuner.applications: KerasTuner's HyperResNet and HyperXception (search spaces with
KerasTuner's names, values and defaults; architectures checked against Keras' ResNets)."""
from __future__ import annotations

import pytest

from kgraph.tuner import HyperParameters
from kgraph.tuner.applications import HyperResNet, HyperXception


def _hp(**fixed):
    hp = HyperParameters()
    for name, value in fixed.items():
        hp.Fixed(name, value)
    return hp


def test_default_search_spaces_are_kerastuners():
    hp = HyperParameters()
    model = HyperResNet(input_shape=(32, 32, 3), classes=4).build(hp)
    assert hp.values == {"version": "v2", "conv3_depth": 4, "conv4_depth": 6,
                         "pooling": "avg", "optimizer": "adam", "learning_rate": 0.01}
    assert model.output_shape == (None, 4) and model.loss == "categorical_crossentropy"
    hp = HyperParameters()
    model = HyperXception(input_shape=(28, 28, 1), classes=10).build(hp)
    assert hp.values == {"activation": "relu", "conv2d_num_filters": 64, "kernel_size": 3,
                         "initial_strides": 2, "sep_num_filters": 256,
                         "num_residual_blocks": 4, "pooling": "avg", "num_dense_layers": 1,
                         "dropout_rate": 0.5, "dense_use_bn": True, "learning_rate": 0.001}
    assert model.output_shape == (None, 10)


def test_other_versions_and_activations_build():
    model = HyperResNet(input_shape=(32, 32, 3), include_top=False).build(
        _hp(version="next", conv3_depth=4, conv4_depth=6, pooling="max"))
    assert model.output_shape == (None, 2048) and model.layers[-1].name == "max_pool"
    model = HyperXception(input_shape=(28, 28, 1), classes=3).build(
        _hp(activation="selu", pooling="flatten", num_dense_layers=2, dropout_rate=0.2,
            sep_num_filters=128, num_residual_blocks=2))
    assert model.output_shape == (None, 3)
    assert any(type(layer).__name__ == "AlphaDropout" for layer in model.layers)


def test_bad_arguments_name_them():
    with pytest.raises(ValueError, match="classes"):
        HyperResNet(input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="input_shape"):
        HyperXception(classes=3)


@pytest.mark.slow  # two ResNet50s in each library
@pytest.mark.parametrize("version, reference", [("v1", "ResNet50"), ("v2", "ResNet50V2")])
def test_resnet_versions_equal_keras_resnet50(version, reference):
    """With conv3_depth 4 and conv4_depth 6, versions v1 and v2 are ResNet50 and ResNet50V2:
    the same layer names and parameter count as real Keras' applications."""
    keras = pytest.importorskip("keras")
    ours = HyperResNet(input_shape=(64, 64, 3), include_top=False).build(
        _hp(version=version, conv3_depth=4, conv4_depth=6))
    theirs = getattr(keras.applications, reference)(include_top=False, weights=None,
                                                   input_shape=(64, 64, 3), pooling="avg")
    assert ours.count_params() == theirs.count_params()

    def names(model):
        return [layer.name for layer in model.layers[1:] if "max_pooling" not in layer.name]

    assert names(ours) == names(theirs)
