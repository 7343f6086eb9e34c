"""keras.io example "Vector-Quantized Variational Autoencoders"
(examples/generative/vq_vae.py).

The example's code as written, `from tensorflow import keras; from tensorflow.keras import
layers; import tensorflow as tf` swapped for kgraph: the VectorQuantizer (a `tf.Variable`
codebook from `tf.random_uniform_initializer`, straight-through `tf.stop_gradient`, the
commitment and codebook losses through `add_loss`), the VQVAETrainer's GradientTape
train_step over `self.vqvae.losses`, reconstructions, the discrete codes
(`get_code_indices(...).numpy()`), and the PixelCNN prior over one-hot codes trained on
them; then the codebook lookup and the decoder on a grid of codes.

Left out: the codebook *sampling* section builds its sampler from TensorFlow Probability
(`tfp.layers.DistributionLambda(tfp.distributions.Categorical)`), which is not part of
TensorFlow or Keras; the embedding lookup and decoding that follow it run here on the
PixelCNN's most likely codes instead of sampled ones. MNIST is replaced by random digits of
its shapes (64 train, 16 test); epochs 30 -> 1 for both models, batch_size 128 -> 32; the
matplotlib figures are left out (the arrays they show are computed and checked).
"""

import numpy as np
from example_datasets import mnist_load_data


def test_vq_vae():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    class VectorQuantizer(layers.Layer):
        def __init__(self, num_embeddings, embedding_dim, beta=0.25, **kwargs):
            super().__init__(**kwargs)
            self.embedding_dim = embedding_dim
            self.num_embeddings = num_embeddings

            # The `beta` parameter is best kept between [0.25, 2] as per the paper.
            self.beta = beta

            # Initialize the embeddings which we will quantize.
            w_init = tf.random_uniform_initializer()
            self.embeddings = tf.Variable(
                initial_value=w_init(
                    shape=(self.embedding_dim, self.num_embeddings), dtype="float32"
                ),
                trainable=True,
                name="embeddings_vqvae",
            )

        def call(self, x):
            # Calculate the input shape of the inputs and
            # then flatten the inputs keeping `embedding_dim` intact.
            input_shape = tf.shape(x)
            flattened = tf.reshape(x, [-1, self.embedding_dim])

            # Quantization.
            encoding_indices = self.get_code_indices(flattened)
            encodings = tf.one_hot(encoding_indices, self.num_embeddings)
            quantized = tf.matmul(encodings, self.embeddings, transpose_b=True)

            # Reshape the quantized values back to the original input shape
            quantized = tf.reshape(quantized, input_shape)

            # Calculate vector quantization loss and add that to the layer. You can learn more
            # about adding losses to different layers here:
            # https://keras.io/guides/making_new_layers_and_models_via_subclassing/. Check
            # the original paper to get a handle on the formulation of the loss function.
            commitment_loss = self.beta * tf.reduce_mean(
                (tf.stop_gradient(quantized) - x) ** 2
            )
            codebook_loss = tf.reduce_mean(
                (quantized - tf.stop_gradient(x)) ** 2
            )
            self.add_loss(commitment_loss + codebook_loss)

            # Straight-through estimator.
            quantized = x + tf.stop_gradient(quantized - x)
            return quantized

        def get_code_indices(self, flattened_inputs):
            # Calculate L2-normalized distance between the inputs and the codes.
            similarity = tf.matmul(flattened_inputs, self.embeddings)
            distances = (
                tf.reduce_sum(flattened_inputs**2, axis=1, keepdims=True)
                + tf.reduce_sum(self.embeddings**2, axis=0)
                - 2 * similarity
            )

            # Derive the indices for minimum distances.
            encoding_indices = tf.argmin(distances, axis=1)
            return encoding_indices

    def get_encoder(latent_dim=16):
        encoder_inputs = keras.Input(shape=(28, 28, 1))
        x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(
            encoder_inputs
        )
        x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
        encoder_outputs = layers.Conv2D(latent_dim, 1, padding="same")(x)
        return keras.Model(encoder_inputs, encoder_outputs, name="encoder")

    def get_decoder(latent_dim=16):
        latent_inputs = keras.Input(shape=get_encoder(latent_dim).output.shape[1:])
        x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(
            latent_inputs
        )
        x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
        decoder_outputs = layers.Conv2DTranspose(1, 3, padding="same")(x)
        return keras.Model(latent_inputs, decoder_outputs, name="decoder")

    def get_vqvae(latent_dim=16, num_embeddings=64):
        vq_layer = VectorQuantizer(num_embeddings, latent_dim, name="vector_quantizer")
        encoder = get_encoder(latent_dim)
        decoder = get_decoder(latent_dim)
        inputs = keras.Input(shape=(28, 28, 1))
        encoder_outputs = encoder(inputs)
        quantized_latents = vq_layer(encoder_outputs)
        reconstructions = decoder(quantized_latents)
        return keras.Model(inputs, reconstructions, name="vq_vae")

    get_vqvae().summary()

    class VQVAETrainer(keras.models.Model):
        def __init__(self, train_variance, latent_dim=32, num_embeddings=128, **kwargs):
            super().__init__(**kwargs)
            self.train_variance = train_variance
            self.latent_dim = latent_dim
            self.num_embeddings = num_embeddings

            self.vqvae = get_vqvae(self.latent_dim, self.num_embeddings)

            self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
            self.reconstruction_loss_tracker = keras.metrics.Mean(
                name="reconstruction_loss"
            )
            self.vq_loss_tracker = keras.metrics.Mean(name="vq_loss")

        @property
        def metrics(self):
            return [
                self.total_loss_tracker,
                self.reconstruction_loss_tracker,
                self.vq_loss_tracker,
            ]

        def train_step(self, x):
            with tf.GradientTape() as tape:
                # Outputs from the VQ-VAE.
                reconstructions = self.vqvae(x)

                # Calculate the losses.
                reconstruction_loss = (
                    tf.reduce_mean((x - reconstructions) ** 2) / self.train_variance
                )
                total_loss = reconstruction_loss + sum(self.vqvae.losses)

            # Backpropagation.
            grads = tape.gradient(total_loss, self.vqvae.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.vqvae.trainable_variables))

            # Loss tracking.
            self.total_loss_tracker.update_state(total_loss)
            self.reconstruction_loss_tracker.update_state(reconstruction_loss)
            self.vq_loss_tracker.update_state(sum(self.vqvae.losses))

            # Log results.
            return {
                "loss": self.total_loss_tracker.result(),
                "reconstruction_loss": self.reconstruction_loss_tracker.result(),
                "vqvae_loss": self.vq_loss_tracker.result(),
            }

    (x_train, _), (x_test, _) = mnist_load_data(n_train=64, n_test=16)

    x_train = np.expand_dims(x_train, -1)
    x_test = np.expand_dims(x_test, -1)
    x_train_scaled = (x_train / 255.0) - 0.5
    x_test_scaled = (x_test / 255.0) - 0.5

    data_variance = np.var(x_train / 255.0)

    vqvae_trainer = VQVAETrainer(data_variance, latent_dim=16, num_embeddings=128)
    vqvae_trainer.compile(optimizer=keras.optimizers.Adam())
    codebook_before = vqvae_trainer.vqvae.get_layer("vector_quantizer").embeddings.numpy()
    history = vqvae_trainer.fit(x_train_scaled, epochs=1, batch_size=32)

    hist = history.history
    assert set(hist) >= {"loss", "reconstruction_loss", "vqvae_loss"}
    np.testing.assert_allclose(
        hist["loss"][0], hist["reconstruction_loss"][0] + hist["vqvae_loss"][0], rtol=1e-4)
    # the codebook is a trained weight (the codebook loss reaches it)
    assert len(vqvae_trainer.vqvae.trainable_variables) == 13
    codebook_after = vqvae_trainer.vqvae.get_layer("vector_quantizer").embeddings.numpy()
    assert not np.allclose(codebook_before, codebook_after)

    trained_vqvae_model = vqvae_trainer.vqvae
    idx = np.random.choice(len(x_test_scaled), 10)
    test_images = x_test_scaled[idx]
    reconstructions_test = trained_vqvae_model.predict(test_images)
    assert reconstructions_test.shape == (10, 28, 28, 1)

    encoder = vqvae_trainer.vqvae.get_layer("encoder")
    quantizer = vqvae_trainer.vqvae.get_layer("vector_quantizer")

    encoded_outputs = encoder.predict(test_images)
    flat_enc_outputs = encoded_outputs.reshape(-1, encoded_outputs.shape[-1])
    codebook_indices = quantizer.get_code_indices(flat_enc_outputs)
    codebook_indices = codebook_indices.numpy().reshape(encoded_outputs.shape[:-1])
    assert codebook_indices.shape == (10, 7, 7)
    # each code is the codebook column nearest its encoder output
    codebook = quantizer.embeddings.numpy()
    nearest = ((flat_enc_outputs[:, :, None] - codebook[None]) ** 2).sum(1).argmin(1)
    np.testing.assert_array_equal(codebook_indices.reshape(-1), nearest)

    num_residual_blocks = 2
    num_pixelcnn_layers = 2
    pixelcnn_input_shape = encoded_outputs.shape[1:-1]
    print(f"Input shape of the PixelCNN: {pixelcnn_input_shape}")

    # The first layer is the PixelCNN layer. This layer simply
    # builds on the 2D convolutional layer, but includes masking.
    class PixelConvLayer(layers.Layer):
        def __init__(self, mask_type, **kwargs):
            super().__init__()
            self.mask_type = mask_type
            self.conv = layers.Conv2D(**kwargs)

        def build(self, input_shape):
            # Build the conv2d layer to initialize kernel variables
            self.conv.build(input_shape)
            # Use the initialized kernel to create the mask
            kernel_shape = self.conv.kernel.get_shape()
            self.mask = np.zeros(shape=kernel_shape)
            self.mask[: kernel_shape[0] // 2, ...] = 1.0
            self.mask[kernel_shape[0] // 2, : kernel_shape[1] // 2, ...] = 1.0
            if self.mask_type == "B":
                self.mask[kernel_shape[0] // 2, kernel_shape[1] // 2, ...] = 1.0

        def call(self, inputs):
            self.conv.kernel.assign(self.conv.kernel * self.mask)
            return self.conv(inputs)

    # Next, we build our residual block layer.
    # This is just a normal residual block, but based on the PixelConvLayer.
    class ResidualBlock(keras.layers.Layer):
        def __init__(self, filters, **kwargs):
            super().__init__(**kwargs)
            self.conv1 = keras.layers.Conv2D(
                filters=filters, kernel_size=1, activation="relu"
            )
            self.pixel_conv = PixelConvLayer(
                mask_type="B",
                filters=filters // 2,
                kernel_size=3,
                activation="relu",
                padding="same",
            )
            self.conv2 = keras.layers.Conv2D(
                filters=filters, kernel_size=1, activation="relu"
            )

        def call(self, inputs):
            x = self.conv1(inputs)
            x = self.pixel_conv(x)
            x = self.conv2(x)
            return keras.layers.add([inputs, x])

    pixelcnn_inputs = keras.Input(shape=pixelcnn_input_shape, dtype=tf.int32)
    ohe = tf.one_hot(pixelcnn_inputs, vqvae_trainer.num_embeddings)
    x = PixelConvLayer(
        mask_type="A", filters=128, kernel_size=7, activation="relu", padding="same"
    )(ohe)

    for _ in range(num_residual_blocks):
        x = ResidualBlock(filters=128)(x)

    for _ in range(num_pixelcnn_layers):
        x = PixelConvLayer(
            mask_type="B",
            filters=128,
            kernel_size=1,
            strides=1,
            activation="relu",
            padding="valid",
        )(x)

    out = keras.layers.Conv2D(
        filters=vqvae_trainer.num_embeddings, kernel_size=1, strides=1, padding="valid"
    )(x)

    pixel_cnn = keras.Model(pixelcnn_inputs, out, name="pixel_cnn")
    pixel_cnn.summary()

    # Generate the codebook indices.
    encoded_outputs = encoder.predict(x_train_scaled)
    flat_enc_outputs = encoded_outputs.reshape(-1, encoded_outputs.shape[-1])
    codebook_indices = quantizer.get_code_indices(flat_enc_outputs)

    codebook_indices = codebook_indices.numpy().reshape(encoded_outputs.shape[:-1])
    print(f"Shape of the training data for PixelCNN: {codebook_indices.shape}")

    pixel_cnn.compile(
        optimizer=keras.optimizers.Adam(3e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    pixel_history = pixel_cnn.fit(
        x=codebook_indices,
        y=codebook_indices,
        batch_size=32,
        epochs=1,
        validation_split=0.1,
    )
    assert np.isfinite(pixel_history.history["loss"]).all()

    # (the tfp sampler is left out) the PixelCNN's most likely codes as the priors
    priors = pixel_cnn.predict(np.zeros((10, 7, 7), "int32"), verbose=0).argmax(-1)
    batch = 10

    # Perform an embedding lookup.
    pretrained_embeddings = quantizer.embeddings
    priors_ohe = tf.one_hot(priors.astype("int32"), vqvae_trainer.num_embeddings).numpy()
    quantized = tf.matmul(
        priors_ohe.astype("float32"), pretrained_embeddings, transpose_b=True
    )
    quantized = tf.reshape(quantized, (-1, *(encoded_outputs.shape[1:])))

    # Generate novel images.
    decoder = vqvae_trainer.vqvae.get_layer("decoder")
    generated_samples = decoder.predict(quantized)
    assert generated_samples.shape == (batch, 28, 28, 1)
    np.testing.assert_allclose(np.asarray(quantized)[0, 0, 0],
                               codebook[:, priors[0, 0, 0]], rtol=1e-6)
