"""keras.io example "Standalone Mixture-of-Experts (MoE) Layers"
(examples/keras_recipes/mixture_of_experts.py).

The Keras 3 code as written; only the imports changed (`from kgraph import keras`,
`from kgraph.keras import layers, ops, activations, optimizers`). CIFAR-10 (a download) is
replaced by random uint8 images and labels of its shapes, the 10,000-image subset cut to 160
and the test set to 64, epochs 10 -> 1. The test checks `DenseMoE` and `Conv2DMoE` against a
numpy reference of their formula, the parameter counts the layer shapes imply, the history and
the gating-weights analysis (each row a softmax over the experts).
"""
import numpy as np
import pytest


def cifar10_load_data(n_train=160, n_test=64, seed=0):
    """Like `keras.datasets.cifar10.load_data()`: uint8 (N, 32, 32, 3) images, (N, 1) labels."""
    rng = np.random.default_rng(seed)

    def split(n):
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        return images, rng.integers(0, 10, (n, 1), dtype=np.uint8)

    return split(n_train), split(n_test)


def _moe_layers():
    from kgraph import keras
    from kgraph.keras import activations, layers, ops

    class DenseMoE(layers.Layer):
        def __init__(
            self,
            units,
            n_experts,
            expert_activation=None,
            gating_activation=None,
            use_expert_bias=True,
            use_gating_bias=True,
            **kwargs,
        ):
            super().__init__(**kwargs)
            self.units = units
            self.n_experts = n_experts
            self.expert_activation = activations.get(expert_activation)
            self.gating_activation = activations.get(gating_activation)
            self.use_expert_bias = use_expert_bias
            self.use_gating_bias = use_gating_bias

        def build(self, input_shape):
            input_dim = input_shape[-1]

            # Expert kernels: (input_dim, units, n_experts)
            self.expert_kernel = self.add_weight(
                name="expert_kernel",
                shape=(input_dim, self.units, self.n_experts),
                initializer="glorot_uniform",
                trainable=True,
            )

            # Expert biases: (units, n_experts)
            if self.use_expert_bias:
                self.expert_bias = self.add_weight(
                    name="expert_bias",
                    shape=(self.units, self.n_experts),
                    initializer="zeros",
                    trainable=True,
                )

            # Gating kernel: (input_dim, n_experts)
            self.gating_kernel = self.add_weight(
                name="gating_kernel",
                shape=(input_dim, self.n_experts),
                initializer="glorot_uniform",
                trainable=True,
            )

            # Gating bias: (n_experts,)
            if self.use_gating_bias:
                self.gating_bias = self.add_weight(
                    name="gating_bias",
                    shape=(self.n_experts,),
                    initializer="zeros",
                    trainable=True,
                )

            super().build(input_shape)

        def call(self, inputs):
            # Compute expert outputs
            # Shape: (batch_size, units, n_experts)
            expert_outputs = ops.tensordot(inputs, self.expert_kernel, axes=1)

            if self.use_expert_bias:
                expert_outputs = expert_outputs + self.expert_bias

            expert_outputs = self.expert_activation(expert_outputs)

            # Compute gating weights
            # Shape: (batch_size, n_experts)
            gating_outputs = ops.tensordot(inputs, self.gating_kernel, axes=1)

            if self.use_gating_bias:
                gating_outputs = gating_outputs + self.gating_bias

            gating_outputs = self.gating_activation(gating_outputs)

            # Expand gating weights to broadcast with expert outputs
            # Shape: (batch_size, 1, n_experts)
            gating_outputs = ops.expand_dims(gating_outputs, axis=1)

            # Weighted combination of expert outputs
            # Shape: (batch_size, units)
            output = ops.sum(expert_outputs * gating_outputs, axis=-1)

            return output

        def get_config(self):
            config = super().get_config()
            config.update(
                {
                    "units": self.units,
                    "n_experts": self.n_experts,
                    "expert_activation": activations.serialize(self.expert_activation),
                    "gating_activation": activations.serialize(self.gating_activation),
                    "use_expert_bias": self.use_expert_bias,
                    "use_gating_bias": self.use_gating_bias,
                }
            )
            return config

    class Conv2DMoE(layers.Layer):
        def __init__(
            self,
            filters,
            kernel_size,
            n_experts,
            strides=1,
            padding="valid",
            expert_activation=None,
            gating_activation=None,
            use_expert_bias=True,
            use_gating_bias=True,
            **kwargs,
        ):
            super().__init__(**kwargs)
            self.filters = filters
            self.kernel_size = (
                kernel_size
                if isinstance(kernel_size, tuple)
                else (kernel_size, kernel_size)
            )
            self.n_experts = n_experts
            self.strides = strides if isinstance(strides, tuple) else (strides, strides)
            self.padding = padding
            self.expert_activation = activations.get(expert_activation)
            self.gating_activation = activations.get(gating_activation)
            self.use_expert_bias = use_expert_bias
            self.use_gating_bias = use_gating_bias

        def build(self, input_shape):
            input_channels = input_shape[-1]

            # Expert kernels: (kernel_h, kernel_w, input_channels, filters, n_experts)
            self.expert_kernel = self.add_weight(
                name="expert_kernel",
                shape=(
                    self.kernel_size[0],
                    self.kernel_size[1],
                    input_channels,
                    self.filters,
                    self.n_experts,
                ),
                initializer="glorot_uniform",
                trainable=True,
            )

            # Expert biases: (filters, n_experts)
            if self.use_expert_bias:
                self.expert_bias = self.add_weight(
                    name="expert_bias",
                    shape=(self.filters, self.n_experts),
                    initializer="zeros",
                    trainable=True,
                )

            # Gating kernel: (1, 1, input_channels, n_experts)
            # Uses 1x1 convolution for efficient per-position gating
            self.gating_kernel = self.add_weight(
                name="gating_kernel",
                shape=(1, 1, input_channels, self.n_experts),
                initializer="glorot_uniform",
                trainable=True,
            )

            # Gating bias: (n_experts,)
            if self.use_gating_bias:
                self.gating_bias = self.add_weight(
                    name="gating_bias",
                    shape=(self.n_experts,),
                    initializer="zeros",
                    trainable=True,
                )

            super().build(input_shape)

        def call(self, inputs):
            # Process each expert and collect outputs
            expert_kernel = ops.reshape(
                self.expert_kernel,
                (
                    self.kernel_size[0],
                    self.kernel_size[1],
                    ops.shape(inputs)[-1],
                    self.filters * self.n_experts,
                ),
            )

            expert_outputs = ops.conv(
                inputs,
                expert_kernel,
                strides=self.strides,
                padding=self.padding,
            )

            # Reshape output to split the experts dimension.
            output_shape = ops.shape(expert_outputs)
            expert_outputs = ops.reshape(
                expert_outputs,
                (
                    output_shape[0],
                    output_shape[1],
                    output_shape[2],
                    self.filters,
                    self.n_experts,
                ),
            )

            if self.use_expert_bias:
                expert_outputs = expert_outputs + self.expert_bias

            expert_outputs = self.expert_activation(expert_outputs)

            # Compute gating weights using 1x1 convolution
            # Shape: (batch, height, width, n_experts)
            gating_outputs = ops.conv(
                inputs,
                self.gating_kernel,
                strides=self.strides,
                padding=self.padding,
            )

            if self.use_gating_bias:
                gating_outputs = gating_outputs + self.gating_bias

            gating_outputs = self.gating_activation(gating_outputs)

            # Expand gating to broadcast with expert outputs
            # Shape: (batch, height, width, 1, n_experts)
            gating_outputs = ops.expand_dims(gating_outputs, axis=-2)

            # Weighted combination of expert outputs
            # Shape: (batch, height, width, filters)
            output = ops.sum(expert_outputs * gating_outputs, axis=-1)

            return output

        def get_config(self):
            config = super().get_config()
            config.update(
                {
                    "filters": self.filters,
                    "kernel_size": self.kernel_size,
                    "n_experts": self.n_experts,
                    "strides": self.strides,
                    "padding": self.padding,
                    "expert_activation": activations.serialize(self.expert_activation),
                    "gating_activation": activations.serialize(self.gating_activation),
                    "use_expert_bias": self.use_expert_bias,
                    "use_gating_bias": self.use_gating_bias,
                }
            )
            return config

    return DenseMoE, Conv2DMoE


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _conv2d_same(x, kernel):
    """numpy 'same' (odd kernel) cross-correlation, channels last."""
    kh, kw = kernel.shape[:2]
    padded = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
    for i in range(kh):
        for j in range(kw):
            window = padded[:, i : i + x.shape[1], j : j + x.shape[2], :]
            out += window @ kernel[i, j]
    return out


def test_moe_layers_match_their_formula():
    DenseMoE, Conv2DMoE = _moe_layers()
    rng = np.random.default_rng(1)

    dense = DenseMoE(5, n_experts=3, expert_activation="relu", gating_activation="softmax")
    x = rng.normal(size=(4, 7)).astype("float32")
    y = np.asarray(dense(x))
    kernel, bias, gate_kernel, gate_bias = [np.asarray(w) for w in dense.get_weights()]
    experts = np.maximum(np.einsum("bi,iue->bue", x, kernel) + bias, 0)
    gates = _softmax(x @ gate_kernel + gate_bias)
    np.testing.assert_allclose(y, (experts * gates[:, None, :]).sum(-1), rtol=1e-5, atol=1e-6)
    assert dense.get_config()["gating_activation"] == "softmax"

    conv = Conv2DMoE(4, 3, n_experts=2, padding="same", expert_activation="relu",
                     gating_activation="softmax")
    x = rng.normal(size=(2, 6, 6, 3)).astype("float32")
    y = np.asarray(conv(x))
    kernel, bias, gate_kernel, gate_bias = [np.asarray(w) for w in conv.get_weights()]
    experts = _conv2d_same(x, kernel.reshape(3, 3, 3, 8)).reshape(2, 6, 6, 4, 2)
    experts = np.maximum(experts + bias, 0)
    gates = _softmax(_conv2d_same(x, gate_kernel) + gate_bias)
    np.testing.assert_allclose(y, (experts * gates[..., None, :]).sum(-1), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.slow
def test_mixture_of_experts():
    from kgraph import keras
    from kgraph.keras import layers, ops, optimizers

    DenseMoE, Conv2DMoE = _moe_layers()

    # Load CIFAR-10 dataset
    (x_train, y_train), (x_test, y_test) = cifar10_load_data()

    # Normalize pixel values
    x_train = x_train.astype("float32") / 255.0
    x_test = x_test.astype("float32") / 255.0

    # Use a subset for faster training in this demo
    subset_size = 160
    x_train = x_train[:subset_size]
    y_train = y_train[:subset_size]

    print(f"Training samples: {len(x_train)}")
    print(f"Test samples: {len(x_test)}")

    def create_baseline_model():
        inputs = keras.Input(shape=(32, 32, 3))

        # Convolutional feature extraction
        x = layers.Conv2D(32, 3, activation="relu", padding="same")(inputs)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(2)(x)

        x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(2)(x)

        # Dense classification head
        x = layers.Flatten()(x)
        x = layers.Dense(128, activation="relu")(x)
        x = layers.Dropout(0.5)(x)
        x = layers.Dense(64, activation="relu")(x)
        outputs = layers.Dense(10, activation="softmax")(x)

        model = keras.Model(inputs, outputs, name="baseline_model")
        return model

    def create_moe_model():
        inputs = keras.Input(shape=(32, 32, 3))

        # MoE convolutional feature extraction
        x = Conv2DMoE(
            32,
            3,
            n_experts=4,
            padding="same",
            expert_activation="relu",
            gating_activation="softmax",
        )(inputs)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(2)(x)

        x = Conv2DMoE(
            64,
            3,
            n_experts=4,
            padding="same",
            expert_activation="relu",
            gating_activation="softmax",
        )(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(2)(x)

        # MoE dense classification head
        x = layers.Flatten()(x)
        x = DenseMoE(
            128,
            n_experts=8,
            expert_activation="relu",
            gating_activation="softmax",
        )(x)
        x = layers.Dropout(0.5)(x)
        x = DenseMoE(
            64,
            n_experts=4,
            expert_activation="relu",
            gating_activation="softmax",
        )(x)
        outputs = layers.Dense(10, activation="softmax")(x)

        model = keras.Model(inputs, outputs, name="moe_model")
        return model

    # Training parameters
    epochs = 1
    batch_size = 128

    # Create and compile baseline model
    print("BASELINE MODEL")
    baseline_model = create_baseline_model()
    baseline_model.compile(
        optimizer=optimizers.Adam(learning_rate=0.001),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    baseline_model.summary()

    # Train baseline
    print("\nTraining baseline model...")
    baseline_history = baseline_model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        validation_split=0.2,
        verbose=1,
    )

    # Evaluate baseline
    baseline_test_loss, baseline_test_acc = baseline_model.evaluate(
        x_test, y_test, verbose=0
    )
    print(f"\nBaseline Test Accuracy: {baseline_test_acc:.4f}")

    # Create and compile MoE model
    print("\nMIXTURE-OF-EXPERTS MODEL")
    moe_model = create_moe_model()
    moe_model.compile(
        optimizer=optimizers.Adam(learning_rate=0.001),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    moe_model.summary()

    # Train MoE model
    print("\nTraining MoE model...")
    moe_history = moe_model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        validation_split=0.2,
        verbose=1,
    )

    # Evaluate MoE model
    moe_test_loss, moe_test_acc = moe_model.evaluate(x_test, y_test, verbose=0)
    print(f"\nMoE Test Accuracy: {moe_test_acc:.4f}")

    # Compare results
    print("\nMODEL COMPARISON")
    print(
        f"Baseline - Params: {baseline_model.count_params():,} | "
        f"Test Accuracy: {baseline_test_acc:.4f}"
    )
    print(
        f"MoE Model - Params: {moe_model.count_params():,} | "
        f"Test Accuracy: {moe_test_acc:.4f}"
    )

    # Get the first DenseMoE layer from the MoE model
    dense_moe_layer = None
    for layer in moe_model.layers:
        if isinstance(layer, DenseMoE):
            dense_moe_layer = layer
            break

    if dense_moe_layer:
        # Create a model to extract features before the MoE layer
        feature_extractor = keras.Model(
            inputs=moe_model.input,
            outputs=dense_moe_layer.input,  # Input to the first DenseMoE layer
        )

        # Get features for a sample of test data
        test_features = feature_extractor.predict(x_test[:100], verbose=0)

        # Compute gating weights for these samples
        gating_layer = layers.Dense(
            units=dense_moe_layer.n_experts,
            activation=dense_moe_layer.gating_activation,
            use_bias=dense_moe_layer.use_gating_bias,
        )
        gating_layer.build(test_features.shape)
        weights = [dense_moe_layer.gating_kernel]
        if dense_moe_layer.use_gating_bias:
            weights.append(dense_moe_layer.gating_bias)
        gating_layer.set_weights(weights)
        gating_weights = gating_layer(test_features)

        # Convert to numpy for analysis
        gating_weights_np = ops.convert_to_numpy(gating_weights)

        print("\nGating weights distribution across experts:")
        print(f"Mean gating weights per expert: {gating_weights_np.mean(axis=0)}")
        print(f"Std of gating weights per expert: {gating_weights_np.std(axis=0)}")

    # Conv2D 3x3x3x32 + 32 ... as Keras counts them (BatchNormalization's 4 weights each)
    assert baseline_model.count_params() == (
        (3 * 3 * 3 * 32 + 32) + 4 * 32 + (3 * 3 * 32 * 64 + 64) + 4 * 64
        + (8 * 8 * 64 * 128 + 128) + (128 * 64 + 64) + (64 * 10 + 10)
    )
    assert moe_model.count_params() == (
        (3 * 3 * 3 * 32 * 4 + 32 * 4 + 3 * 4 + 4) + 4 * 32
        + (3 * 3 * 32 * 64 * 4 + 64 * 4 + 32 * 4 + 4) + 4 * 64
        + (4096 * 128 * 8 + 128 * 8 + 4096 * 8 + 8) + (128 * 64 * 4 + 64 * 4 + 128 * 4 + 4)
        + (64 * 10 + 10)
    )
    for history in (baseline_history, moe_history):
        assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert np.isfinite(history.history["loss"]).all()
    assert 0.0 <= moe_test_acc <= 1.0 and np.isfinite(moe_test_loss)
    assert dense_moe_layer is not None and dense_moe_layer.n_experts == 8
    assert test_features.shape == (64, 4096)
    assert gating_weights_np.shape == (64, 8)
    np.testing.assert_allclose(gating_weights_np.sum(axis=1), 1.0, rtol=1e-5)
