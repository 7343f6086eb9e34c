"""`SpectralNormalization`: a wrapper that divides the wrapped layer's kernel by its largest
singular value, estimated by power iteration (Miyato et al. 2018), as Keras 3 does.

In a training call the estimate and the normalized kernel are computed inside the traced step:
`vector_u` (non-trainable, `(1, units)`) is assigned its new value, and the wrapped layer runs
on `kernel / sigma`. As Keras on JAX: in `fit` the gradient flows through the normalization
into the stored (raw) kernel, which the optimizer updates (the same under a GradientTape); a
direct call on arrays with `training=True` writes `kernel / sigma` back, as Keras' eager call
does. An all-zero kernel is left as it is. Inference uses the kernel as stored."""
from __future__ import annotations

from kgraph import ops
from kgraph.ir.graph import current_graph
from kgraph.keras import initializers
from kgraph.keras.layers.base import KerasTensor
from kgraph.keras.layers.wrapper import InputSpec, Wrapper

__all__ = ["SpectralNormalization"]


class SpectralNormalization(Wrapper):
    """Spectral normalization of the `kernel` (or `embeddings`) of a wrapped layer.

    Args:
        layer: a layer with a `kernel` (`Dense`, `Conv2D`, ...) or `embeddings` (`Embedding`).
        power_iterations: int > 0, power-iteration steps per training call.

    Example:
        >>> sn = SpectralNormalization(keras.layers.Dense(10))
        >>> sn(np.random.rand(2, 4).astype("float32"), training=True).shape  # (2, 10)
    """

    def __init__(self, layer, power_iterations=1, **kwargs):
        super().__init__(layer, **kwargs)
        if power_iterations <= 0:
            raise ValueError("`power_iterations` should be greater than zero. Received: "
                             f"`power_iterations={power_iterations}`")
        self.power_iterations = power_iterations

    def build(self, input_shape):
        super().build(input_shape)
        self.input_spec = InputSpec(min_ndim=1, axes={-1: input_shape[-1]})
        if hasattr(self.layer, "kernel"):
            self.kernel = self.layer.kernel
        elif hasattr(self.layer, "embeddings"):
            self.kernel = self.layer.embeddings
        else:
            raise ValueError(f"{type(self.layer).__name__} object has no attribute 'kernel' "
                             f"nor 'embeddings'")
        self.kernel_shape = tuple(self.kernel.shape)
        self.vector_u = self.add_weight(
            shape=(1, self.kernel_shape[-1]), name="vector_u", trainable=False,
            initializer=initializers.TruncatedNormal(stddev=0.02), dtype=self.kernel.dtype)

    def __call__(self, *args, **kwargs):
        # a direct call on arrays writes kernel / sigma back, as Keras' eager call; a step
        # (fit, a GradientTape) does not. Set without a version bump: no retrace.
        self.__dict__["_direct_call"] = current_graph() is None and not any(
            isinstance(a, KerasTensor) for a in args)
        try:
            return super().__call__(*args, **kwargs)
        finally:
            self.__dict__["_direct_call"] = False

    def call(self, inputs, training=False):
        if not training:
            return ops.cast(self.layer(inputs), inputs.dtype)
        vector_u, kernel = self.normalized_weights()
        self.vector_u.assign(vector_u)
        graph = current_graph()
        if graph is None or self.__dict__.get("_direct_call"):
            self.kernel.assign(kernel)
            return ops.cast(self.layer(inputs), inputs.dtype)
        # in a step the wrapped layer reads kernel / sigma and the stored kernel stays raw
        # (Keras on JAX drops a trainable variable's assignment in a training step: the
        # gradient flows through the normalization into the raw kernel)
        missing = object()
        before = graph.updates.get(self.kernel, missing)
        self.kernel.assign(kernel)
        try:
            output = self.layer(inputs)
        finally:
            if before is missing:
                del graph.updates[self.kernel]
            else:
                graph.updates[self.kernel] = before
        return ops.cast(output, inputs.dtype)

    def normalized_weights(self):
        """(new `vector_u`, kernel / sigma); both unchanged for an all-zero kernel."""
        kernel, old_u = self.kernel.value, self.vector_u.value
        weights = ops.reshape(kernel, (-1, self.kernel_shape[-1]))
        vector_u = old_u
        for _ in range(self.power_iterations):
            vector_v = ops.normalize(ops.matmul(vector_u, ops.transpose(weights)), axis=None)
            vector_u = ops.normalize(ops.matmul(vector_v, weights), axis=None)
        vector_u, vector_v = ops.stop_gradient(vector_u), ops.stop_gradient(vector_v)
        sigma = ops.matmul(ops.matmul(vector_v, weights), ops.transpose(vector_u))
        zero = ops.all(ops.equal(kernel, 0))
        # a zero kernel gives sigma 0: divide by 1 so no NaN reaches the gradient either
        sigma = ops.where(zero, ops.ones_like(sigma), sigma)
        vector_u = ops.where(zero, old_u, vector_u)
        return (ops.cast(vector_u, self.vector_u.dtype),
                ops.cast(ops.reshape(kernel / sigma, self.kernel_shape), self.kernel.dtype))

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}
