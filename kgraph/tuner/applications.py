"""KerasTuner's pre-made hypermodels (`keras_tuner.applications`): `HyperResNet` and
`HyperXception`, the same search spaces (hyperparameter names, values and defaults) and the
same architectures as KerasTuner's, built from kgraph's Keras layers and compiled with
`loss="categorical_crossentropy"` and `metrics=["accuracy"]` when `include_top`.

    hypermodel = HyperResNet(input_shape=(28, 28, 1), classes=10)
    tuner = RandomSearch(hypermodel, objective="val_accuracy", max_trials=2)
"""
from __future__ import annotations

from kgraph import keras
from kgraph.keras import layers
from kgraph.tuner.tuner import HyperModel

_EPSILON = 1.001e-5  # the batch normalisation epsilon of the Keras ResNets


class _ImageHyperModel(HyperModel):
    """The arguments both hypermodels take, checked as KerasTuner checks them."""

    def __init__(self, include_top=True, input_shape=None, input_tensor=None, classes=None,
                 **kwargs):
        super().__init__(**kwargs)
        if include_top and classes is None:
            raise ValueError(f"{type(self).__name__}: you must specify `classes` when "
                             f"`include_top=True`. Received: classes={classes!r}")
        if input_shape is None and input_tensor is None:
            raise ValueError(f"{type(self).__name__}: you must specify either `input_shape` "
                             f"or `input_tensor`.")
        self.include_top, self.input_shape = include_top, input_shape
        self.input_tensor, self.classes = input_tensor, classes

    def _inputs(self):
        if self.input_tensor is not None:
            return keras.utils.get_source_inputs(self.input_tensor), self.input_tensor
        inputs = keras.layers.Input(shape=self.input_shape)
        return inputs, inputs


class HyperResNet(_ImageHyperModel):
    """A tunable ResNet: `version` v1 (ResNet), v2 (pre-activation) or next (ResNeXt, 32
    groups), the depth of its third and fourth stacks, the global pooling, and (with
    `include_top`) the optimizer and its learning rate.

    Args:
        include_top: end with a softmax `Dense(classes)` and compile the model.
        input_shape: `(height, width, channels)`; or give `input_tensor`.
        input_tensor: a Keras tensor (the output of `keras.Input`) to build on.
        classes: the number of classes (needed with `include_top`).
        **kwargs: `HyperModel` arguments (`name`, `tunable`).
    """

    def build(self, hp):
        version = hp.Choice("version", ["v1", "v2", "next"], default="v2")
        conv3_depth = hp.Choice("conv3_depth", [4, 8])
        conv4_depth = hp.Choice("conv4_depth", [6, 23, 36])
        preact, use_bias = version == "v2", version != "next"
        inputs, x = self._inputs()
        x = layers.ZeroPadding2D(((3, 3), (3, 3)), name="conv1_pad")(x)
        x = layers.Conv2D(64, 7, strides=2, use_bias=use_bias, name="conv1_conv")(x)
        if not preact:
            x = _bn_relu(x, "conv1")
        x = layers.ZeroPadding2D(((1, 1), (1, 1)), name="pool1_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
        stack, widths = {"v1": (_stack_v1, (64, 128, 256, 512)),
                         "v2": (_stack_v2, (64, 128, 256, 512)),
                         "next": (_stack_next, (64, 256, 512, 1024))}[version]
        depths = (3, conv3_depth, conv4_depth, 3)
        for i, (filters, blocks) in enumerate(zip(widths, depths)):
            # v1 downsamples in every stack but the first, v2 and next in every stack but
            # the last (v2 in a stack's last block, the others in its first)
            stride = (1 if i == 0 else 2) if version == "v1" else (1 if i == 3 else 2)
            x = stack(x, filters, blocks, stride, f"conv{i + 2}")
        if preact:
            x = _bn_relu(x, "post")
        pooling = hp.Choice("pooling", ["avg", "max"], default="avg")
        pool = layers.GlobalAveragePooling2D if pooling == "avg" else layers.GlobalMaxPooling2D
        x = pool(name=f"{pooling}_pool")(x)
        if not self.include_top:
            return keras.Model(inputs, x, name="ResNet")
        x = layers.Dense(self.classes, activation="softmax", name="probs")(x)
        model = keras.Model(inputs, x, name="ResNet")
        optimizer = keras.optimizers.get(
            hp.Choice("optimizer", ["adam", "rmsprop", "sgd"], default="adam"))
        optimizer.learning_rate = hp.Choice("learning_rate", [0.1, 0.01, 0.001], default=0.01)
        model.compile(optimizer=optimizer, loss="categorical_crossentropy",
                      metrics=["accuracy"])
        return model


def _bn(x, name):
    return layers.BatchNormalization(axis=-1, epsilon=_EPSILON, name=name)(x)


def _bn_relu(x, prefix):
    return layers.Activation("relu", name=f"{prefix}_relu")(_bn(x, f"{prefix}_bn"))


def _stack_v1(x, filters, blocks, stride, name):
    """ResNet v1 bottleneck blocks, the first with a projection shortcut and `stride`."""
    for b in range(1, blocks + 1):
        prefix, s = f"{name}_block{b}", stride if b == 1 else 1
        shortcut = x
        if b == 1:
            shortcut = _bn(layers.Conv2D(4 * filters, 1, strides=s, name=f"{prefix}_0_conv")(x),
                           f"{prefix}_0_bn")
        y = _bn_relu(layers.Conv2D(filters, 1, strides=s, name=f"{prefix}_1_conv")(x),
                     f"{prefix}_1")
        y = _bn_relu(layers.Conv2D(filters, 3, padding="same", name=f"{prefix}_2_conv")(y),
                     f"{prefix}_2")
        y = _bn(layers.Conv2D(4 * filters, 1, name=f"{prefix}_3_conv")(y), f"{prefix}_3_bn")
        x = layers.Activation("relu", name=f"{prefix}_out")(
            layers.Add(name=f"{prefix}_add")([shortcut, y]))
    return x


def _stack_v2(x, filters, blocks, stride, name):
    """Pre-activation (v2) blocks: a projection shortcut in the first, `stride` in the last
    (its shortcut a 1x1 max pooling of that stride)."""
    for b in range(1, blocks + 1):
        prefix, s = f"{name}_block{b}", stride if b == blocks else 1
        preact = _bn_relu(x, f"{prefix}_preact")
        if b == 1:
            shortcut = layers.Conv2D(4 * filters, 1, strides=s, name=f"{prefix}_0_conv")(preact)
        else:
            shortcut = layers.MaxPooling2D(1, strides=s)(x) if s > 1 else x
        y = layers.Conv2D(filters, 1, use_bias=False, name=f"{prefix}_1_conv")(preact)
        y = layers.ZeroPadding2D(((1, 1), (1, 1)), name=f"{prefix}_2_pad")(
            _bn_relu(y, f"{prefix}_1"))
        y = layers.Conv2D(filters, 3, strides=s, use_bias=False, name=f"{prefix}_2_conv")(y)
        y = layers.Conv2D(4 * filters, 1, name=f"{prefix}_3_conv")(_bn_relu(y, f"{prefix}_2"))
        x = layers.Add(name=f"{prefix}_out")([shortcut, y])
    return x


def _stack_next(x, filters, blocks, stride, name, groups=32):
    """ResNeXt blocks: the grouped 3x3 convolution as a depthwise convolution of
    `filters / groups` channels per input channel summed within each group."""
    per_group = filters // groups
    for b in range(1, blocks + 1):
        prefix, s = f"{name}_block{b}", stride if b == 1 else 1
        shortcut = x
        if b == 1:
            shortcut = _bn(layers.Conv2D((64 // groups) * filters, 1, strides=s, use_bias=False,
                                         name=f"{prefix}_0_conv")(x), f"{prefix}_0_bn")
        y = _bn_relu(layers.Conv2D(filters, 1, use_bias=False, name=f"{prefix}_1_conv")(x),
                     f"{prefix}_1")
        y = layers.ZeroPadding2D(((1, 1), (1, 1)), name=f"{prefix}_2_pad")(y)
        y = layers.DepthwiseConv2D(3, strides=s, depth_multiplier=per_group, use_bias=False,
                                   name=f"{prefix}_2_conv")(y)
        spatial = tuple(y.shape[1:-1])
        y = layers.Reshape(spatial + (groups, per_group, per_group))(y)
        y = layers.Lambda(lambda t: sum(t[:, :, :, :, i] for i in range(per_group)),
                          name=f"{prefix}_2_reduce")(y)
        y = _bn_relu(layers.Reshape(spatial + (filters,))(y), f"{prefix}_2")
        y = _bn(layers.Conv2D((64 // groups) * filters, 1, use_bias=False,
                              name=f"{prefix}_3_conv")(y), f"{prefix}_3_bn")
        x = layers.Activation("relu", name=f"{prefix}_out")(
            layers.Add(name=f"{prefix}_add")([shortcut, y]))
    return x


class HyperXception(_ImageHyperModel):
    """A tunable Xception: the activation (relu with batch normalisation, or selu), the entry
    convolution's filters and kernel size, the separable convolutions' filters and number of
    residual blocks, the pooling, and (with `include_top`) the dense layers, their dropout
    and batch normalisation, and Adam's learning rate.

    Args: as `HyperResNet`.
    """

    def build(self, hp):
        activation = hp.Choice("activation", ["relu", "selu"])
        inputs, x = self._inputs()
        filters = hp.Choice("conv2d_num_filters", [32, 64, 128], default=64)
        kernel_size = hp.Choice("kernel_size", [3, 5])
        strides = hp.Choice("initial_strides", [2])
        x = _conv_unit(layers.Conv2D, x, filters, kernel_size, activation, strides=strides)
        sep_filters = hp.Int("sep_num_filters", 128, 768, step=128, default=256)
        for _ in range(hp.Int("num_residual_blocks", 2, 8, default=4)):
            x = _xception_residual(x, sep_filters, activation, max_pooling=False)
        x = _xception_residual(x, 2 * sep_filters, activation, max_pooling=True)
        pooling = hp.Choice("pooling", ["avg", "flatten", "max"])
        x = {"avg": layers.GlobalAveragePooling2D, "flatten": layers.Flatten,
             "max": layers.GlobalMaxPooling2D}[pooling]()(x)
        if not self.include_top:
            return keras.Model(inputs, x, name="Xception")
        num_dense = hp.Int("num_dense_layers", 1, 3)
        dropout = hp.Float("dropout_rate", 0.0, 0.6, step=0.1, default=0.5)
        batchnorm = hp.Choice("dense_use_bn", [True, False])
        for _ in range(num_dense):
            x = _dense_unit(x, self.classes, activation, batchnorm, dropout)
        model = keras.Model(inputs, layers.Dense(self.classes, activation="softmax")(x),
                            name="Xception")
        model.compile(optimizer=keras.optimizers.Adam(
            hp.Choice("learning_rate", [1e-3, 1e-4, 1e-5])),
            loss="categorical_crossentropy", metrics=["accuracy"])
        return model


def _conv_unit(conv, x, filters, kernel_size, activation, strides=1):
    """A (separable) convolution: selu with LeCun initialisation, or relu after a batch
    normalisation of the bias-free convolution."""
    if activation == "selu":
        # LeCun initialisation for a plain convolution; a separable one keeps its default
        # depthwise/pointwise initializers (KerasTuner's `kernel_initializer` is not one of
        # theirs and is ignored by tf.keras)
        extra = {"kernel_initializer": "lecun_normal"} if conv is layers.Conv2D else {}
        return conv(filters, kernel_size, strides=strides, padding="same", activation="selu",
                    **extra)(x)
    x = conv(filters, kernel_size, strides=strides, padding="same", use_bias=False)(x)
    return layers.Activation("relu")(layers.BatchNormalization()(x))


def _xception_residual(x, filters, activation, max_pooling):
    if max_pooling:
        shortcut = layers.Conv2D(filters, 1, strides=2, padding="same")(x)
    elif filters != x.shape[-1]:
        shortcut = layers.Conv2D(filters, 1, padding="same")(x)
    else:
        shortcut = x
    for _ in range(2):
        x = _conv_unit(layers.SeparableConv2D, x, filters, 3, activation)
    if max_pooling:
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    return layers.add([x, shortcut])


def _dense_unit(x, units, activation, batchnorm, dropout):
    if activation == "selu":
        x = layers.Dense(units, activation="selu", kernel_initializer="lecun_normal")(x)
        return layers.AlphaDropout(dropout)(x) if dropout else x
    x = layers.Dense(units, activation="relu")(x)
    if batchnorm:
        x = layers.BatchNormalization()(x)
    return layers.Dropout(dropout)(x) if dropout else x
