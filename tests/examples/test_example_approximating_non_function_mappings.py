"""keras.io example "Approximating non-Function Mappings with Mixture Density Networks"
(examples/keras_recipes/approximating_non_function_mappings.py).

The example's code as written with `import keras_core; from keras_core import callbacks,
layers, optimizers; import tensorflow as tf` swapped for kgraph: the noisy spiral, the plain MLP
`Sequential` (no `Input`) fit with `EarlyStopping(monitor="val_loss")` and `validation_split`,
`elu_plus_one_plus_epsilon` (`keras_core.activations.elu`, `keras_core.backend.epsilon()`), the
`MixtureDensityOutput` layer (three `Dense` sublayers built explicitly in `build`, its
`trainable_weights`/`non_trainable_weights` properties overridden, `layers.concatenate(...,
name="mdn_outputs")` in `call`), the MDN `Sequential` trained with `EarlyStopping(monitor="loss",
restore_best_weights=True)` and `ReduceLROnPlateau`, `predict`, and the numpy sampler applied
with `np.apply_along_axis`.

**Partly**: the MDN loss builds its mixture with TensorFlow Probability (`tfd.Categorical`,
`tfd.MultivariateNormalDiag`, `tfd.Mixture(...).log_prob`), which is not in kgraph; the test
keeps the loss function's `tf.reshape`/`tf.split` lines and computes the same negative
log-likelihood with `keras.ops` (log-softmax of the mixture logits plus diagonal Gaussian
log-densities, log-sum-exp over the components; checked against a float64 numpy mixture
density). Sizes: 10000 spiral points -> 400, epochs 300 -> 1 each. Plots are left out.
"""

import math

import numpy as np


def test_approximating_non_function_mappings():
    import kgraph as tf
    from kgraph import keras as keras_core
    from kgraph.keras import callbacks, layers, ops

    keras_core.utils.set_random_seed(0)

    def normalize(x):
        return (x - np.min(x)) / (np.max(x) - np.min(x))

    def create_noisy_spiral(n, jitter_std=0.2, revolutions=2):
        angle = np.random.uniform(0, 2 * np.pi * revolutions, [n])
        r = angle
        x = r * np.cos(angle)
        y = r * np.sin(angle)
        result = np.stack([x, y], axis=1)
        result = result + np.random.normal(scale=jitter_std, size=[n, 2])
        result = 5 * normalize(result)
        return result

    xy = create_noisy_spiral(400)  # 10000 in the example
    x, y = xy[:, 0:1], xy[:, 1:]

    N_HIDDEN = 128

    model = keras_core.Sequential(
        [
            layers.Dense(N_HIDDEN, activation="relu"),
            layers.Dense(N_HIDDEN, activation="relu"),
            layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    model.fit(
        x,
        y,
        epochs=1,  # 300 in the example
        batch_size=128,
        validation_split=0.15,
        callbacks=[callbacks.EarlyStopping(monitor="val_loss", patience=10)],
    )
    y_pred = model.predict(x)
    assert y_pred.shape == (400, 1)

    def elu_plus_one_plus_epsilon(x):
        return keras_core.activations.elu(x) + 1 + keras_core.backend.epsilon()

    class MixtureDensityOutput(layers.Layer):
        def __init__(self, output_dimension, num_mixtures, **kwargs):
            super().__init__(**kwargs)
            self.output_dim = output_dimension
            self.num_mix = num_mixtures
            self.mdn_mus = layers.Dense(
                self.num_mix * self.output_dim, name="mdn_mus"
            )  # mix*output vals, no activation
            self.mdn_sigmas = layers.Dense(
                self.num_mix * self.output_dim,
                activation=elu_plus_one_plus_epsilon,
                name="mdn_sigmas",
            )  # mix*output vals exp activation
            self.mdn_pi = layers.Dense(self.num_mix, name="mdn_pi")  # mix vals, logits

        def build(self, input_shape):
            self.mdn_mus.build(input_shape)
            self.mdn_sigmas.build(input_shape)
            self.mdn_pi.build(input_shape)
            super().build(input_shape)

        @property
        def trainable_weights(self):
            return (
                self.mdn_mus.trainable_weights
                + self.mdn_sigmas.trainable_weights
                + self.mdn_pi.trainable_weights
            )

        @property
        def non_trainable_weights(self):
            return (
                self.mdn_mus.non_trainable_weights
                + self.mdn_sigmas.non_trainable_weights
                + self.mdn_pi.non_trainable_weights
            )

        def call(self, x, mask=None):
            return layers.concatenate(
                [self.mdn_mus(x), self.mdn_sigmas(x), self.mdn_pi(x)], name="mdn_outputs"
            )

    OUTPUT_DIMS = 1
    N_MIXES = 20

    mdn_network = keras_core.Sequential(
        [
            layers.Dense(N_HIDDEN, activation="relu"),
            layers.Dense(N_HIDDEN, activation="relu"),
            MixtureDensityOutput(OUTPUT_DIMS, N_MIXES),
        ]
    )

    def get_mixture_loss_func(output_dim, num_mixes):
        def mdn_loss_func(y_true, y_pred):
            y_pred = tf.reshape(
                y_pred,
                [-1, (2 * num_mixes * output_dim) + num_mixes],
                name="reshape_ypreds",
            )
            y_true = tf.reshape(y_true, [-1, output_dim], name="reshape_ytrue")
            out_mu, out_sigma, out_pi = tf.split(
                y_pred,
                num_or_size_splits=[
                    num_mixes * output_dim,
                    num_mixes * output_dim,
                    num_mixes,
                ],
                axis=-1,
                name="mdn_coef_split",
            )
            # tfd.Mixture(cat=tfd.Categorical(logits=out_pi), components=[
            #     tfd.MultivariateNormalDiag(loc, scale) ...]).log_prob(y_true), in keras.ops:
            mus = ops.reshape(out_mu, (-1, num_mixes, output_dim))
            sigs = ops.reshape(out_sigma, (-1, num_mixes, output_dim))
            z = (ops.expand_dims(y_true, 1) - mus) / sigs
            component = ops.sum(-0.5 * z**2 - ops.log(sigs) - 0.5 * math.log(2 * math.pi), -1)
            log_prob = ops.logsumexp(ops.log_softmax(out_pi, axis=-1) + component, axis=-1)
            loss = -log_prob  # tf.negative(loss)
            loss = tf.reduce_mean(loss)
            return loss

        return mdn_loss_func

    loss_fn = get_mixture_loss_func(OUTPUT_DIMS, N_MIXES)
    mdn_network.compile(loss=loss_fn, optimizer="adam")

    mdn_network.fit(
        x,
        y,
        epochs=1,  # 300 in the example
        batch_size=128,
        validation_split=0.15,
        callbacks=[
            callbacks.EarlyStopping(monitor="loss", patience=10, restore_best_weights=True),
            callbacks.ReduceLROnPlateau(monitor="loss", patience=5),
        ],
    )
    mdn_layer = mdn_network.layers[-1]
    assert len(mdn_layer.trainable_weights) == 6 and mdn_layer.non_trainable_weights == []
    assert len(mdn_network.trainable_weights) == 10

    y_pred_mixture = mdn_network.predict(x)
    print(y_pred_mixture.shape)
    assert y_pred_mixture.shape == (400, 3 * N_MIXES)
    assert (y_pred_mixture[:, N_MIXES : 2 * N_MIXES] > 0).all()  # sigmas: elu + 1 + eps

    # the loss is the mixture's negative log-likelihood (numpy, float64)
    p = y_pred_mixture[:8].astype("float64")
    mu, sig, logits = p[:, :N_MIXES], p[:, N_MIXES : 2 * N_MIXES], p[:, 2 * N_MIXES :]
    weights = np.exp(logits - logits.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    density = np.sum(weights * np.exp(-0.5 * ((y[:8] - mu) / sig) ** 2)
                     / (sig * np.sqrt(2 * np.pi)), axis=1)
    np.testing.assert_allclose(float(loss_fn(y[:8], y_pred_mixture[:8])),
                               -np.mean(np.log(density)), rtol=1e-4)

    def split_mixture_params(params, output_dim, num_mixes):
        mus = params[: num_mixes * output_dim]
        sigs = params[num_mixes * output_dim : 2 * num_mixes * output_dim]
        pi_logits = params[-num_mixes:]
        return mus, sigs, pi_logits

    def softmax(w, t=1.0):
        e = np.array(w) / t  # adjust temperature
        e -= e.max()  # subtract max to protect from exploding exp values.
        e = np.exp(e)
        dist = e / np.sum(e)
        return dist

    def sample_from_categorical(dist):
        r = np.random.rand(1)  # uniform random number in [0,1]
        accumulate = 0
        for i in range(0, dist.size):
            accumulate += dist[i]
            if accumulate >= r:
                return i
        tf.logging.info("Error sampling categorical model.")  # (kgraph has no tf.logging)
        return -1

    def sample_from_output(params, output_dim, num_mixes, temp=1.0, sigma_temp=1.0):
        mus, sigs, pi_logits = split_mixture_params(params, output_dim, num_mixes)
        pis = softmax(pi_logits, t=temp)
        m = sample_from_categorical(pis)
        mus_vector = mus[m * output_dim : (m + 1) * output_dim]
        sig_vector = sigs[m * output_dim : (m + 1) * output_dim]
        scale_matrix = np.identity(output_dim) * sig_vector  # scale matrix from diag
        cov_matrix = np.matmul(scale_matrix, scale_matrix.T)  # cov is scale squared.
        cov_matrix = cov_matrix * sigma_temp  # adjust for sigma temperature
        sample = np.random.multivariate_normal(mus_vector, cov_matrix, 1)
        return sample

    y_samples = np.apply_along_axis(
        sample_from_output, 1, y_pred_mixture, 1, N_MIXES, temp=1.0
    )
    assert y_samples.shape == (400, 1, 1) and np.isfinite(y_samples).all()
