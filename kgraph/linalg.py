"""`tf.linalg`: the matrix functions of kgraph/tf_names.py under the module path TensorFlow code
reaches them by (`tf.linalg.matmul(a, b, transpose_b=True)`, `tf.linalg.einsum`; the keras.io
semantic-image-clustering example). Each is the `keras.ops` function of the same meaning, with
TensorFlow's argument names and defaults."""
from kgraph.tf_names import einsum, eye, matmul  # noqa: F401

__all__ = ["einsum", "eye", "matmul"]
